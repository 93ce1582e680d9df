//! What the nodes' heal layers reported (detections, decisions, removals),
//! the heal part of the report (time from a reconnection to the decision
//! and to one cluster), and the heal assertions.

use super::*;
use crate::node::HealNote;
use crate::report::{HealReport, HealTiming};

/// One `PartitionHealed` a node raised.
pub(super) struct Decision {
    at: Time,
    node: u32,
    winners: Vec<u32>,
    rejoined: bool,
}

/// One member a node forgot.
pub(super) struct Removal {
    at: Time,
    observer: u32,
    member: u32,
    /// How long the observer had held it dead, if it said.
    dead_for: Option<Duration>,
    /// How long the member had been down (crashed or left), if it was.
    since_down: Option<Duration>,
    /// The member was running when it was forgotten.
    running: bool,
}

/// Everything the heal layers reported, in the order it happened.
#[derive(Default)]
pub(super) struct HealLog {
    /// The scenario runs the heal layer.
    pub(super) enabled: bool,
    /// Its autoclean timeout, if any.
    pub(super) autoclean: Option<Duration>,
    detections: Vec<(Time, u32)>,
    /// Per detection (same order): whether the node's side was the majority.
    majorities: Vec<Option<bool>>,
    decisions: Vec<Decision>,
    removals: Vec<Removal>,
}

/// What the heal evaluation needs from the end of the run.
pub(super) struct HealContext<'a> {
    pub(super) scenario: &'a Scenario,
    pub(super) faults: &'a [FaultReport],
    pub(super) trackers: &'a [Tracker],
    /// Per node: when its current run started, if it is up at the end.
    pub(super) up_since: Vec<Option<Time>>,
    pub(super) period: Duration,
}

impl HealContext<'_> {
    fn fault_at(&self, i: usize) -> Option<Time> {
        self.trackers.get(i).filter(|t| t.applied).map(|t| t.at)
    }

    /// Nodes up from `at` to the end without a restart in between.
    fn participants(&self, at: Time) -> Vec<u32> {
        (0..self.up_since.len() as u32).filter(|&i| self.up_since[i as usize].is_some_and(|t| t <= at)).collect()
    }

    /// The participants an assertion checks: those of `at`, within its
    /// `among` group if it has one.
    fn checked(&self, a: &AssertSpec, at: Time) -> Vec<u32> {
        let mut who = self.participants(at);
        if let Some(among) = a.among() {
            let group = self.scenario.group_nodes(among).unwrap_or_default();
            who.retain(|n| group.contains(n));
        }
        who
    }

    fn measure(&self, from: Time, to: Time) -> Measure {
        let d = to.saturating_sub(from);
        Measure { ms: d.as_secs_f64() * 1e3, periods: d.as_secs_f64() / self.period.as_secs_f64() }
    }
}

/// The name a node goes by ([`crate::node_id`]): coordinators are the
/// lowest *name*, so `n10` comes before `n2`.
fn name(i: u32) -> String {
    format!("n{i}")
}

impl HealLog {
    pub(super) fn new(enabled: bool, autoclean: Option<Duration>) -> Self {
        Self { enabled, autoclean, ..Self::default() }
    }

    pub(super) fn note(&mut self, at: Time, node: u32, note: HealNote) {
        match note {
            HealNote::Detected { majority, .. } => {
                self.detections.push((at, node));
                self.majorities.push(majority);
            }
            HealNote::Healed { winners, rejoined } => self.decisions.push(Decision { at, node, winners, rejoined }),
        }
    }

    pub(super) fn removal(
        &mut self,
        at: Time,
        observer: u32,
        member: u32,
        dead_for: Option<Duration>,
        since_down: Option<Duration>,
        running: bool,
    ) {
        self.removals.push(Removal { at, observer, member, dead_for, since_down, running });
    }

    fn false_removals(&self) -> u64 {
        self.removals.iter().filter(|r| r.running).count() as u64
    }

    fn first_detection(&self, node: u32, from: Time, until: Time) -> Option<Time> {
        self.detections.iter().find(|&&(at, n)| n == node && at >= from && at <= until).map(|&(at, _)| at)
    }

    fn first_decision(&self, node: u32, from: Time) -> Option<&Decision> {
        self.decisions.iter().find(|d| d.node == node && d.at >= from)
    }

    fn last_decision(&self, node: u32, from: Time) -> Option<&Decision> {
        self.decisions.iter().rev().find(|d| d.node == node && d.at >= from)
    }

    fn decisions_per_node(&self) -> BTreeMap<u32, u64> {
        let mut per = BTreeMap::new();
        for d in &self.decisions {
            *per.entry(d.node).or_insert(0) += 1;
        }
        per
    }

    /// The heal section of the report; `None` for plain SWIM.
    pub(super) fn report(&self, ctx: &HealContext<'_>) -> Option<HealReport> {
        if !self.enabled {
            return None;
        }
        let reconnections = ctx
            .faults
            .iter()
            .filter(|f| f.kind == "heal")
            .filter_map(|f| Some((f, ctx.fault_at(f.index)?)))
            .map(|(f, at)| {
                let who = ctx.participants(at);
                let detected: Vec<Time> = who.iter().filter_map(|&n| self.first_detection(n, at, Time::MAX)).collect();
                let decided: Vec<&Decision> = who.iter().filter_map(|&n| self.first_decision(n, at)).collect();
                let all = |v: Vec<Time>| (v.len() == who.len()).then(|| v.into_iter().max()).flatten();
                let first_detected = self.detections.iter().find(|d| d.0 >= at).map(|d| d.0);
                let first_decided = self.decisions.iter().find(|d| d.at >= at).map(|d| d.at);
                HealTiming {
                    fault: f.index,
                    participants: who.len() as u64,
                    detected_by: detected.len() as u64,
                    decided_by: decided.len() as u64,
                    rejoined_by: who
                        .iter()
                        .filter(|&&n| self.decisions.iter().any(|d| d.node == n && d.at >= at && d.rejoined))
                        .count() as u64,
                    first_detected: first_detected.map(|t| ctx.measure(at, t)),
                    all_detected: all(detected.clone()).map(|t| ctx.measure(at, t)),
                    first_decided: first_decided.map(|t| ctx.measure(at, t)),
                    all_decided: all(decided.iter().map(|d| d.at).collect()).map(|t| ctx.measure(at, t)),
                    converged: f.converged,
                }
            })
            .collect();
        let earliest = self.removals.iter().filter_map(|r| r.dead_for).min();
        Some(HealReport {
            autoclean_ms: self.autoclean.map(|d| d.as_secs_f64() * 1e3),
            detections: self.detections.len() as u64,
            decisions: self.decisions.len() as u64,
            rejoins: self.decisions.iter().filter(|d| d.rejoined).count() as u64,
            max_decisions_per_node: self.decisions_per_node().values().copied().max().unwrap_or(0),
            removals: self.removals.len() as u64,
            false_removals: self.false_removals(),
            earliest_removal: earliest.map(|d| ctx.measure(Time::ZERO, d)),
            reconnections,
        })
    }

    /// Evaluates one heal assertion: its description, whether it held and
    /// what was measured.
    pub(super) fn evaluate(&self, a: &AssertSpec, ctx: &HealContext<'_>) -> (String, (bool, String)) {
        let not_reached = |i: usize| (false, format!("fault #{i} was not reached"));
        match a {
            AssertSpec::PartitionDetected { fault: i, count, periods, .. } => {
                let what = match count {
                    Some(c) => format!("at least {c} nodes"),
                    None => "every node".to_owned(),
                };
                let bound = periods.map_or_else(String::new, |p| format!(" within {p} periods"));
                let description = format!("partition detected by {what} after fault #{i}{bound}");
                let Some(at) = ctx.fault_at(*i) else { return (description, not_reached(*i)) };
                let until = periods.map_or(Time::MAX, |p| at + ctx.period.mul_f64(p));
                let result = match count {
                    Some(c) => {
                        // Any node counts, up at the end or not (within `among`).
                        let among = a.among().map(|g| ctx.scenario.group_nodes(g).unwrap_or_default());
                        let n = (0..ctx.up_since.len() as u32)
                            .filter(|n| among.as_ref().is_none_or(|g| g.contains(n)))
                            .filter(|&n| self.first_detection(n, at, until).is_some())
                            .count() as u64;
                        (n >= *c, format!("measured {n} nodes"))
                    }
                    None => {
                        let who = ctx.checked(a, at);
                        let missing: Vec<u32> =
                            who.iter().copied().filter(|&n| self.first_detection(n, at, until).is_none()).collect();
                        {
                            let found = who.len() - missing.len();
                            let detail = if missing.is_empty() {
                                format!("{found} of {} nodes", who.len())
                            } else {
                                format!("{found} of {} nodes; missing: {}", who.len(), list(&missing))
                            };
                            (missing.is_empty(), detail)
                        }
                    }
                };
                (description, result)
            }
            AssertSpec::HealedWithin { fault: i, periods, .. } => {
                let description =
                    format!("every node decided (PartitionHealed) within {periods} periods of fault #{i}");
                let Some(at) = ctx.fault_at(*i) else { return (description, not_reached(*i)) };
                let who = ctx.checked(a, at);
                let firsts: Vec<(u32, Option<Time>)> =
                    who.iter().map(|&n| (n, self.first_decision(n, at).map(|d| d.at))).collect();
                let missing: Vec<u32> = firsts.iter().filter(|(_, t)| t.is_none()).map(|(n, _)| *n).collect();
                let last = firsts.iter().filter_map(|(_, t)| *t).max();
                let result = match (missing.is_empty(), last) {
                    (true, Some(last)) => {
                        let m = ctx.measure(at, last);
                        (m.periods <= *periods, format!("last of {} nodes after {m}", who.len()))
                    }
                    (true, None) => (false, "no node to decide".to_owned()),
                    (false, _) => (false, format!("never decided: {}", list(&missing))),
                };
                (description, result)
            }
            AssertSpec::Winners { fault: i, group, .. } => {
                let description = format!("after fault #{i} the winners are group {group:?}");
                let Some(at) = ctx.fault_at(*i) else { return (description, not_reached(*i)) };
                let Ok(members) = ctx.scenario.group_nodes(group) else {
                    return (description, (false, "unknown group".into()));
                };
                let who = ctx.checked(a, at);
                let expected: Vec<u32> = members.iter().copied().filter(|m| who.contains(m)).collect();
                let Some(coordinator) = expected.iter().copied().min_by_key(|&m| name(m)) else {
                    return (description, (false, "no member of the group is up".into()));
                };
                let mut wrong = Vec::new();
                for &n in &who {
                    let ok = match self.last_decision(n, at) {
                        None => false,
                        Some(d) if members.contains(&n) => {
                            d.winners.iter().all(|w| members.contains(w))
                                && expected.iter().all(|e| d.winners.contains(e))
                        }
                        Some(d) => d.winners.contains(&coordinator),
                    };
                    if !ok {
                        wrong.push(n);
                    }
                }
                let detail = if wrong.is_empty() {
                    format!("{} nodes decided for coordinator n{coordinator}", who.len())
                } else {
                    let example = self.last_decision(wrong[0], at).map(|d| d.winners.clone());
                    format!("undecided or other winners on {} (node {} chose {:?})", list(&wrong), wrong[0], example)
                };
                (description, (wrong.is_empty(), detail))
            }
            AssertSpec::Rejoined { fault: i, group, .. } => {
                let description = format!("after fault #{i} exactly group {group:?} rejoined");
                let Some(at) = ctx.fault_at(*i) else { return (description, not_reached(*i)) };
                let Ok(members) = ctx.scenario.group_nodes(group) else {
                    return (description, (false, "unknown group".into()));
                };
                let who = ctx.checked(a, at);
                let rejoined = |n: u32| self.decisions.iter().any(|d| d.node == n && d.at >= at && d.rejoined);
                let missing: Vec<u32> = who.iter().copied().filter(|&n| members.contains(&n) && !rejoined(n)).collect();
                let extra: Vec<u32> = who.iter().copied().filter(|&n| !members.contains(&n) && rejoined(n)).collect();
                let count = who.iter().filter(|&&n| rejoined(n)).count();
                let ok = missing.is_empty() && extra.is_empty();
                let detail = if ok {
                    format!("{count} nodes rejoined")
                } else {
                    format!("did not rejoin: {}; rejoined though not in the group: {}", list(&missing), list(&extra))
                };
                (description, (ok, detail))
            }
            AssertSpec::NoDetectionBefore { fault: i } => {
                let description = format!("no partition detected before fault #{i}");
                let Some(at) = ctx.fault_at(*i) else { return (description, not_reached(*i)) };
                let early: Vec<&(Time, u32)> = self.detections.iter().filter(|d| d.0 < at).collect();
                let detail = match early.first() {
                    None => "none".to_owned(),
                    Some((t, n)) => {
                        format!("{} detections, first by node {n} at {:.0} ms", early.len(), t.as_secs_f64() * 1e3)
                    }
                };
                (description, (early.is_empty(), detail))
            }
            AssertSpec::Majority { fault: i, group } => {
                let description = format!("after fault #{i} exactly group {group:?} saw itself as the majority");
                let Some(at) = ctx.fault_at(*i) else { return (description, not_reached(*i)) };
                let Ok(members) = ctx.scenario.group_nodes(group) else {
                    return (description, (false, "unknown group".into()));
                };
                let seen: Vec<(u32, Option<bool>)> = self
                    .detections
                    .iter()
                    .zip(&self.majorities)
                    .filter(|((t, _), _)| *t >= at)
                    .map(|((_, n), m)| (*n, *m))
                    .collect();
                let wrong: Vec<u32> =
                    seen.iter().filter(|(n, m)| *m != Some(members.contains(n))).map(|(n, _)| *n).collect();
                let ok = !seen.is_empty() && wrong.is_empty();
                let detail =
                    format!("{} detections, {} with the wrong majority ({})", seen.len(), wrong.len(), list(&wrong));
                (description, (ok, detail))
            }
            AssertSpec::DetectionsAtMost { count } => {
                let n = self.detections.len() as u64;
                let detail = match self.detections.first() {
                    None => "measured 0".to_owned(),
                    Some((t, node)) => format!("measured {n}; first by node {node} at {:.0} ms", t.as_secs_f64() * 1e3),
                };
                (format!("at most {count} partition detections in all"), (n <= *count, detail))
            }
            AssertSpec::HealsPerNodeAtMost { count } => {
                let per = self.decisions_per_node();
                let max = per.iter().max_by_key(|(n, c)| (**c, std::cmp::Reverse(**n)));
                let detail = match max {
                    Some((n, c)) => format!("measured at most {c} (node {n}); {} in all", self.decisions.len()),
                    None => "no decision at all".to_owned(),
                };
                (format!("at most {count} heal decisions per node"), (max.is_none_or(|(_, c)| c <= count), detail))
            }
            AssertSpec::FalseRemovalsAtMost { count } => {
                let n = self.false_removals();
                let first = self.removals.iter().find(|r| r.running);
                let detail = match first {
                    None => format!("measured 0 of {} removals", self.removals.len()),
                    Some(r) => format!("measured {n}; first: node {} forgot running node {}", r.observer, r.member),
                };
                (format!("at most {count} removals of running members"), (n <= *count, detail))
            }
            AssertSpec::AutocleanWithin { periods, .. } => {
                let r = a.fault_ref().expect("has a fault");
                let i = ctx.scenario.resolve_fault(r).unwrap_or(usize::MAX);
                let description =
                    format!("autoclean forgets fault #{i}'s nodes within {periods} periods, not before its timeout");
                let (Some(at), Some(timeout)) = (ctx.fault_at(i), self.autoclean) else {
                    return (description, (false, "fault not reached or autoclean off".into()));
                };
                let subjects = &ctx.trackers[i].subject_list;
                let observers: Vec<u32> = ctx.participants(at).into_iter().filter(|o| !subjects.contains(o)).collect();
                let about: Vec<&Removal> = self.removals.iter().filter(|r| subjects.contains(&r.member)).collect();
                let early: Vec<&&Removal> = about
                    .iter()
                    .filter(|r| r.dead_for.is_none_or(|d| d < timeout) || r.since_down.is_none_or(|d| d < timeout))
                    .collect();
                let mut missing = Vec::new();
                let mut last: Option<Time> = None;
                for &o in &observers {
                    for &s in subjects {
                        match about.iter().find(|r| r.observer == o && r.member == s) {
                            Some(r) => last = last.max(Some(r.at)),
                            None => missing.push(o),
                        }
                    }
                }
                missing.dedup();
                let min_dead = about.iter().filter_map(|r| r.dead_for).min();
                let late = last.map(|t| ctx.measure(at, t));
                let ok = missing.is_empty() && early.is_empty() && late.is_some_and(|m| m.periods <= *periods);
                let detail = format!(
                    "{} removals by {} observers, last {}; shortest dead time {}; early {}; never by {}",
                    about.len(),
                    observers.len(),
                    late.map_or("never".to_owned(), |m| m.to_string()),
                    min_dead.map_or("-".to_owned(), |d| format!("{:.0} ms", d.as_secs_f64() * 1e3)),
                    early.len(),
                    list(&missing)
                );
                (description, (ok, detail))
            }
            _ => (format!("{a:?}"), (false, "not a heal assertion".to_owned())),
        }
    }
}
