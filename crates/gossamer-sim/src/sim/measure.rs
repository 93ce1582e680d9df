//! What the report is made of: per-fault trackers fed by every view change,
//! accuracy (false positives), samples for the plot, and the final report
//! with its assertions.

use gossamer_wire::NodeName;

use super::heal::HealContext;
use super::*;

/// Per-fault measurements in progress.
pub(super) struct Tracker {
    pub(super) at: Time,
    pub(super) kind: &'static str,
    pub(super) description: String,
    pub(super) subjects: Members,
    pub(super) subject_list: Vec<u32>,
    pub(super) window_end: Time,
    pub(super) detect: bool,
    pub(super) converge: bool,
    pub(super) split: bool,
    pub(super) first_suspect: Option<Time>,
    pub(super) first_dead: Option<Time>,
    pub(super) all_suspect: Option<Time>,
    pub(super) all_know: Option<Time>,
    pub(super) split_at: Option<Time>,
    pub(super) converged_at: Option<Time>,
    pub(super) suspicions: u64,
    pub(super) deaths: u64,
    pub(super) applied: bool,
}

impl Tracker {
    /// A fault not applied (yet, or ever: scheduled after the end).
    pub(super) fn pending() -> Self {
        Tracker {
            at: Time::ZERO,
            kind: "pending",
            description: "not reached before the end".into(),
            subjects: Members::default(),
            subject_list: Vec::new(),
            window_end: Time::ZERO,
            detect: false,
            converge: false,
            split: false,
            first_suspect: None,
            first_dead: None,
            all_suspect: None,
            all_know: None,
            split_at: None,
            converged_at: None,
            suspicions: 0,
            deaths: 0,
            applied: false,
        }
    }
}

impl<F: NodeFactory> Simulation<F> {
    pub(super) fn observe(&mut self, observer: u32, member: SocketAddr, name: &NodeName, status: MemberStatus) {
        // Names are followed only with a hostile peer around: elsewhere a
        // name never moves to another address.
        let subject = if self.hostile.enabled { self.follow_name(observer, member, name) } else { node_index(member) };
        let Some(subject) = subject else { return };
        if subject == observer || subject as usize >= self.slots.len() {
            return;
        }
        let old = self.views.set(observer, subject, status);
        if old == Some(status) {
            return;
        }
        trace!(self, "view {observer} sees {subject} {status:?}");
        let now = self.now;
        match status {
            MemberStatus::Suspect | MemberStatus::Dead => {
                let healthy = self.healthy_and_reachable(observer, subject);
                let degraded = self.degraded(subject);
                let stale = self.restarted_recently(subject);
                let acc = &mut self.stats.accuracy;
                if status == MemberStatus::Suspect {
                    acc.suspicions += 1;
                    acc.false_suspicions += healthy as u64;
                } else {
                    acc.deaths += 1;
                    if healthy {
                        acc.false_positives += 1;
                        trace!(self, "false-positive {observer} declared {subject} dead");
                    } else if degraded {
                        acc.deaths_of_degraded += 1;
                    } else if stale {
                        acc.deaths_of_restarted += 1;
                    }
                }
                for i in 0..self.trackers.len() {
                    let t = &self.trackers[i];
                    if !t.applied || now < t.at || now > t.window_end {
                        continue;
                    }
                    let relevant = if t.split {
                        self.net.group(observer) != self.net.group(subject)
                    } else {
                        t.subjects.contains(subject)
                    };
                    if !relevant {
                        continue;
                    }
                    let t = &mut self.trackers[i];
                    if status == MemberStatus::Suspect {
                        t.suspicions += 1;
                        t.first_suspect.get_or_insert(now);
                    } else {
                        t.deaths += 1;
                        t.first_dead.get_or_insert(now);
                        // A member declared dead without a suspicion first
                        // was detected all the same.
                        t.first_suspect.get_or_insert(now);
                    }
                }
                self.check_all_know();
            }
            MemberStatus::Left => self.check_all_know(),
            MemberStatus::Alive => {}
        }
        self.check_convergence();
    }

    /// `observer` forgot `member` (autoclean).
    pub(super) fn removed(&mut self, observer: u32, member: SocketAddr, dead_for: Option<Duration>) {
        let Some(subject) = node_index(member).filter(|&s| (s as usize) < self.slots.len() && s != observer) else {
            return;
        };
        let old = self.views.forget(observer, subject);
        let slot = &self.slots[subject as usize];
        let running = slot.node.is_some();
        let since_down = slot.down_at.filter(|_| !running).map(|t| self.now.saturating_sub(t));
        trace!(self, "removed {observer} forgot {subject} (was {old:?}, running={running})");
        self.heal.removal(self.now, observer, subject, dead_for, since_down, running);
        self.check_convergence();
    }

    /// The subject runs normally and the path is open both ways: declaring
    /// it dead is a false positive.
    pub(super) fn healthy_and_reachable(&self, observer: u32, subject: u32) -> bool {
        let s = &self.slots[subject as usize];
        s.state == State::Up
            && s.leaving_since.is_none()
            && !self.degraded(subject)
            && !self.restarted_recently(subject)
            && self.net.reachable(observer, subject, self.now)
            && self.net.reachable(subject, observer, self.now)
    }

    /// Paused or slowed now, or within the grace period before now (a
    /// suspicion raised while it was unresponsive may time out after it
    /// recovered).
    pub(super) fn degraded(&self, subject: u32) -> bool {
        let s = &self.slots[subject as usize];
        let horizon = self.now.saturating_sub(self.cfg.fp_grace);
        s.paused_until > horizon || (!s.lag.is_zero() && s.lag_until > horizon)
    }

    /// Restarted within the grace period: a death declared now may be about
    /// its previous incarnation, which really did die.
    pub(super) fn restarted_recently(&self, subject: u32) -> bool {
        self.slots[subject as usize].restarted_at.is_some_and(|t| self.now < t + self.cfg.fp_grace)
    }

    pub(super) fn check_all_know(&mut self) {
        let now = self.now;
        for t in self.trackers.iter_mut().filter(|t| t.applied && t.detect && t.all_know.is_none()) {
            if t.kind == "crash"
                && t.all_suspect.is_none()
                && t.subject_list.iter().all(|&s| self.views.alive_views(s) == 0)
            {
                t.all_suspect = Some(now);
            }
            if t.subject_list.iter().all(|&s| self.views.believers(s) == 0) {
                t.all_know = Some(now);
            }
        }
    }

    pub(super) fn check_convergence(&mut self) {
        self.check_recovered();
        if !self.trackers.iter().any(|t| t.applied && t.converge && t.converged_at.is_none()) {
            return;
        }
        if self.views.converged() {
            let now = self.now;
            for t in self.trackers.iter_mut().filter(|t| t.applied && t.converge && t.converged_at.is_none()) {
                t.converged_at = Some(now);
            }
        }
    }

    pub(super) fn check_split(&mut self) {
        let pending = self.trackers.iter().any(|t| t.applied && t.split && t.split_at.is_none());
        if !pending || self.net.group(0).is_none() {
            return;
        }
        let mut split = true;
        'outer: for o in 0..self.slots.len() as u32 {
            if !self.views.is_live(o) {
                continue;
            }
            let go = self.net.group(o);
            for (s, status) in self.views.known_by(o) {
                if status == MemberStatus::Alive && self.views.is_live(s) && self.net.group(s) != go {
                    split = false;
                    break 'outer;
                }
            }
        }
        if split {
            let now = self.now;
            for t in self.trackers.iter_mut().filter(|t| t.applied && t.split && t.split_at.is_none()) {
                t.split_at = Some(now);
            }
        }
    }

    pub(super) fn sample(&mut self) {
        self.sample_tables();
        self.check_all_know();
        self.check_convergence();
        self.check_split();
        let live = self.views.live_count();
        let [a, s, d, l] = self.views.totals();
        let per = |x: u64| if live == 0 { 0.0 } else { x as f64 / live as f64 };
        self.samples.push(Sample {
            t_ms: self.now.as_secs_f64() * 1e3,
            live,
            alive: per(a),
            suspect: per(s),
            dead: per(d),
            left: per(l),
        });
    }

    pub(super) fn report(mut self, wall: Duration) -> Report {
        let period = self.cfg.period;
        let measure = |from: Time, to: Option<Time>| {
            to.map(|t| {
                let d = t.saturating_sub(from);
                Measure { ms: d.as_secs_f64() * 1e3, periods: d.as_secs_f64() / period.as_secs_f64() }
            })
        };
        let faults: Vec<FaultReport> = self
            .trackers
            .iter()
            .enumerate()
            .map(|(i, t)| FaultReport {
                index: i,
                kind: t.kind.to_owned(),
                description: t.description.clone(),
                at_ms: t.at.as_secs_f64() * 1e3,
                nodes: t.subject_list.iter().copied().take(64).collect(),
                first_suspect: measure(t.at, t.first_suspect),
                first_dead: measure(t.at, t.first_dead),
                all_suspect: measure(t.at, t.all_suspect),
                all_know: measure(t.at, t.all_know),
                split: measure(t.at, t.split_at),
                converged: measure(t.at, t.converged_at),
                suspicions: t.suspicions,
                deaths: t.deaths,
            })
            .collect();
        let node_periods = self.stats.node_time.as_secs_f64() / period.as_secs_f64();
        let t = &mut self.stats.traffic;
        t.node_periods = node_periods;
        if node_periods > 0.0 {
            t.msgs_per_member_per_period = (t.datagrams + 2 * (t.streams + t.stream_pings)) as f64 / node_periods;
            t.bytes_per_member_per_period =
                (t.datagram_bytes + t.stream_bytes + t.stream_ping_bytes) as f64 / node_periods;
        }
        let single_cluster = self.views.converged() && self.views.live_count() > 0;
        for n in self.slots.iter().filter_map(|s| s.node.as_ref()) {
            self.stats.counters += n.counters();
        }
        let ctx = HealContext {
            scenario: &self.scenario,
            faults: &faults,
            trackers: &self.trackers,
            up_since: self.slots.iter().map(|s| s.node.as_ref().map(|_| s.up_since)).collect(),
            period,
        };
        let heal = self.heal.report(&ctx);
        let broadcasts = self.broadcast_report(&self.stats.counters);
        let hostile = self.hostile_report();
        let baseline = match &self.baseline {
            Baseline::Done(base) => Some(super::broadcast::compare(
                &faults,
                &self.stats.traffic,
                broadcasts.as_ref().map_or(0, |b| b.deliveries),
                base,
            )),
            Baseline::None | Baseline::Pending(_) => None,
        };
        let assertions: Vec<AssertionResult> = self
            .scenario
            .asserts
            .iter()
            .map(|a| {
                if a.needs_broadcasts() {
                    super::broadcast::evaluate(a, broadcasts.as_ref(), baseline.as_ref())
                } else if a.is_hostile() {
                    self.evaluate_hostile(a, hostile.as_ref())
                } else if a.needs_heal() || matches!(a, AssertSpec::FalseRemovalsAtMost { .. }) {
                    let (description, (passed, detail)) = self.heal.evaluate(a, &ctx);
                    AssertionResult { description, passed, detail }
                } else {
                    evaluate(a, &self.scenario, &faults, &self.stats.accuracy, single_cluster)
                }
            })
            .collect();
        let wall_secs = wall.as_secs_f64();
        let setup_secs = self.stats.setup.as_secs_f64().min(wall_secs);
        let per_sec = |secs: f64| if secs > 0.0 { node_periods / secs } else { 0.0 };
        let max_members = self.slots.len() as u64;
        Report {
            scenario: self.scenario.name.clone(),
            seed: self.scenario.seed,
            nodes: self.scenario.nodes,
            live_at_end: self.views.live_count(),
            duration_ms: self.cfg.duration.as_secs_f64() * 1e3,
            period_ms: period.as_secs_f64() * 1e3,
            faults,
            accuracy: self.stats.accuracy.clone(),
            protocol: self.stats.counters,
            traffic: self.stats.traffic.clone(),
            swim_prediction: SwimPrediction::for_members(max_members),
            single_cluster_at_end: single_cluster,
            heal,
            broadcasts,
            baseline,
            hostile,
            passed: assertions.iter().all(|a| a.passed),
            assertions,
            samples: std::mem::take(&mut self.samples),
            performance: Performance {
                wall_secs,
                setup_secs,
                events: self.stats.events,
                node_periods_per_sec: per_sec(wall_secs),
                run_node_periods_per_sec: per_sec(wall_secs - setup_secs),
            },
        }
    }
}

fn within(m: Option<Measure>, periods: f64) -> (bool, String) {
    match m {
        Some(m) => (m.periods <= periods, format!("measured {m}")),
        None => (false, "never happened".into()),
    }
}

fn evaluate(a: &AssertSpec, s: &Scenario, faults: &[FaultReport], acc: &Accuracy, single: bool) -> AssertionResult {
    let fault = |r| s.resolve_fault(r).and_then(|i| faults.get(i));
    let (description, (passed, detail)) = match a {
        AssertSpec::AllKnowWithin { periods, .. } => {
            let f = fault(a.fault_ref().expect("has a fault"));
            (
                format!(
                    "all live members know fault #{} ({}) within {periods} periods",
                    f.map_or(0, |f| f.index),
                    f.map_or("?", |f| &f.description)
                ),
                within(f.and_then(|f| f.all_know), *periods),
            )
        }
        AssertSpec::FirstDetectionWithin { periods, .. } => {
            let f = fault(a.fault_ref().expect("has a fault"));
            (
                format!("first detection of fault #{} within {periods} periods", f.map_or(0, |f| f.index)),
                within(f.and_then(|f| f.first_suspect), *periods),
            )
        }
        AssertSpec::ConvergedWithin { fault: i, periods } => (
            format!("single cluster within {periods} periods of fault #{i}"),
            within(faults.get(*i).and_then(|f| f.converged), *periods),
        ),
        AssertSpec::SplitWithin { fault: i, periods } => (
            format!("partition #{i} noticed by every member within {periods} periods"),
            within(faults.get(*i).and_then(|f| f.split), *periods),
        ),
        AssertSpec::FalsePositivesAtMost { count } => (
            format!("at most {count} false positives"),
            (acc.false_positives <= *count, format!("measured {}", acc.false_positives)),
        ),
        AssertSpec::DeathsAtMost { fault: i, count } => {
            let d = faults.get(*i).map_or(0, |f| f.deaths);
            (
                format!("at most {count} dead declarations about fault #{i}'s nodes"),
                (d <= *count, format!("measured {d}")),
            )
        }
        AssertSpec::SingleClusterAtEnd => {
            ("single cluster at the end".to_owned(), (single, if single { "yes".into() } else { "no".into() }))
        }
        // Evaluated from the heal log (`HealLog::evaluate`).
        other => (format!("{other:?}"), (false, "evaluated by the heal log".to_owned())),
    };
    AssertionResult { description, passed, detail }
}
