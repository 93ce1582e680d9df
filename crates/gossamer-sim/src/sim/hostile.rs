//! The hostile peer in the engine (issue #15): `forge` faults send the
//! frames [`Forger`] builds to the nodes, round after round, from
//! [`HOSTILE_ADDR`]; `impostor` faults start a real node under a taken
//! name. Also the bookkeeping they need: views that follow a name to
//! another address, table sizes, forged deliveries, and the hostile
//! assertions.
//!
//! Everything is keyed by fault index or node index in ordered maps, and
//! the hostile node's latency draws come from an RNG stream of its own:
//! a run stays a pure function of its seed.

use std::collections::BTreeMap;

use gossamer_wire::{NodeId, NodeName, DEFAULT_MTU};

use super::*;
use crate::hostile::{Attack, Forged, Forger, DEFAULT_PUSH_PULL_NAMES, HOSTILE_ADDR};
use crate::node::name_index;
use crate::report::{HostileFault, HostileReport};

/// RNG stream of the hostile node's frame delays.
pub(super) const STREAM_HOSTILE: u64 = 3;

/// One `forge` fault as it goes.
#[derive(Default)]
struct Forge {
    at: Time,
    frames: u64,
    bytes: u64,
    handled: u64,
    /// Frames sent and not yet taken in or dropped.
    in_flight: u64,
    /// Every round has been sent.
    sent_all: bool,
    last_frame: Option<Time>,
    /// Every frame was taken in or dropped: the attack is over.
    done_at: Option<Time>,
    /// The first instant from `done_at` on when every live member saw
    /// every live member alive.
    recovered_at: Option<Time>,
}

/// What the hostile peer did, as the run goes.
pub(super) struct HostileLog {
    /// The scenario has `forge` or `impostor` faults (otherwise nothing is
    /// checked or recorded, and the report has no hostile section).
    pub(super) enabled: bool,
    forger: Forger,
    rng: ChaCha8Rng,
    forges: BTreeMap<usize, Forge>,
    /// Impostor node → the node whose name it took.
    impostors: BTreeMap<u32, u32>,
    forged_deliveries: u64,
    max_members: u64,
    max_members_node: Option<u32>,
}

impl HostileLog {
    pub(super) fn new(enabled: bool, seed: u64, label: &str) -> Result<Self, SimError> {
        Ok(Self {
            enabled,
            forger: Forger::new(label)?,
            rng: stream_rng(seed, STREAM_HOSTILE),
            forges: BTreeMap::new(),
            impostors: BTreeMap::new(),
            forged_deliveries: 0,
            max_members: 0,
            max_members_node: None,
        })
    }

    /// The nodes holding the name of node `owner`: itself and its impostors.
    fn holders(&self, owner: u32) -> impl Iterator<Item = u32> + '_ {
        std::iter::once(owner).chain(self.impostors.iter().filter(move |(_, &o)| o == owner).map(|(&s, _)| s))
    }
}

impl<F: NodeFactory> Simulation<F> {
    /// The identity node `node` runs under: `n<node>` at its address, or
    /// for an impostor, the name it took at its own address.
    pub(super) fn identity(&self, node: u32) -> NodeId {
        match self.hostile.impostors.get(&node) {
            Some(&owner) => NodeId::new(node_id(owner).name, node_addr(node)),
            None => node_id(node),
        }
    }

    /// An `impostor` fault: a new node under `name_of`'s name boots and
    /// joins through the seeds.
    pub(super) fn start_impostor(&mut self, name_of: u32) -> u32 {
        let node = self.slots.len() as u32;
        self.add_slots(1);
        self.hostile.impostors.insert(node, name_of);
        self.boot(node);
        node
    }

    /// Round `round` of `forge` fault `fault`: one frame to every
    /// recipient up now, and the next round scheduled.
    pub(super) fn forge_round(&mut self, fault: usize, round: u32) {
        let FaultAction::Forge { attack, target, to, incarnation, ltime, rounds, every, names, accusers } =
            self.scenario.faults[fault].action.clone()
        else {
            return;
        };
        let n = self.slots.len() as u32;
        let recipients: Vec<u32> = to
            .unwrap_or_else(NodeSet::all)
            .resolve(n, &mut self.picks)
            .into_iter()
            .filter(|&r| self.slots[r as usize].node.is_some())
            .collect();
        let target_name = target.map(|t| self.identity(t).name);
        let accusers: Vec<NodeName> = accusers.map_or_else(Vec::new, |set| {
            set.resolve(n, &mut self.picks)
                .into_iter()
                .filter(|&a| Some(a) != target)
                .map(|a| self.identity(a).name)
                .collect()
        });
        // What the attacker overhears of the target: its own incarnation.
        let known_incarnation =
            target.and_then(|t| self.slots[t as usize].node.as_ref()).map_or(0, |node| node.incarnation());
        let now = self.now;
        for r in recipients {
            let bytes = match (attack, &target_name) {
                (Attack::Confirm | Attack::Suspect | Attack::Alive, Some(name)) => {
                    let number = incarnation.unwrap_or(Forged::Max).value(known_incarnation);
                    let sent = self.hostile.forges.get(&fault).map_or(0, |f| f.frames);
                    let accuser = (!accusers.is_empty()).then(|| &accusers[(sent % accusers.len() as u64) as usize]);
                    self.hostile.forger.claim(attack, name, number, accuser)
                }
                (Attack::User, Some(name)) => {
                    let clock = self.slots[r as usize].node.as_ref().map_or(0, |node| node.user_clock());
                    self.hostile.forger.claim(attack, name, ltime.unwrap_or(Forged::Max).value(clock), None)
                }
                (Attack::AliveFlood, _) => self.hostile.forger.alive_flood(DEFAULT_MTU).0,
                (Attack::PushPull, _) => {
                    let dead =
                        target.map(|t| (self.identity(t), incarnation.unwrap_or(Forged::Max).value(known_incarnation)));
                    let names = names.unwrap_or(if dead.is_some() { 0 } else { DEFAULT_PUSH_PULL_NAMES });
                    self.hostile.forger.push_pull(names, dead)
                }
                // Validation requires a target for these.
                (Attack::Confirm | Attack::Suspect | Attack::Alive | Attack::User, None) => return,
            };
            let at = now + self.net.outside_delay(&mut self.hostile.rng);
            trace!(self, "forge {fault} {attack} round={round} ->{r} len={} crc={:08x}", bytes.len(), crc(&bytes));
            let f = self.hostile.forges.entry(fault).or_default();
            f.frames += 1;
            f.bytes += bytes.len() as u64;
            f.in_flight += 1;
            self.queue.push(at, Ev::Forged { fault, to: r, bytes, lagged: false });
        }
        let f = self.hostile.forges.entry(fault).or_default();
        if round == 0 {
            f.at = now;
        }
        if round + 1 < rounds.unwrap_or(1) {
            let next = now + every.map_or(self.cfg.period, |e| e.resolve(self.cfg.period));
            self.queue.push(next, Ev::ForgeRound { fault, round: round + 1 });
        } else {
            f.sent_all = true;
            self.forge_settled(fault);
        }
    }

    /// A forged frame reaches node `to` (if it is up: the gate was passed).
    pub(super) fn forged_arrives(&mut self, fault: usize, to: u32, bytes: Bytes) {
        let stream =
            matches!(&self.scenario.faults[fault].action, FaultAction::Forge { attack, .. } if attack.is_stream());
        let now = self.now;
        trace!(self, "forged {fault} ->{to} len={}", bytes.len());
        if let Some(node) = self.slots[to as usize].node.as_mut() {
            if stream {
                // The response goes to the attacker, who ignores it.
                let _ = node.handle_push_pull_request(now, HOSTILE_ADDR, &bytes);
            } else {
                node.handle_datagram(now, HOSTILE_ADDR, &bytes);
            }
        }
        self.drain(to);
        let f = self.hostile.forges.entry(fault).or_default();
        f.handled += 1;
        f.last_frame = Some(now);
        self.forged_done(fault);
    }

    /// A forged frame was taken in or dropped.
    pub(super) fn forged_done(&mut self, fault: usize) {
        let f = self.hostile.forges.entry(fault).or_default();
        f.in_flight = f.in_flight.saturating_sub(1);
        self.forge_settled(fault);
    }

    fn forge_settled(&mut self, fault: usize) {
        let now = self.now;
        let f = self.hostile.forges.entry(fault).or_default();
        if f.sent_all && f.in_flight == 0 && f.done_at.is_none() {
            f.done_at = Some(now);
            trace!(self, "forge {fault} over");
        }
        self.check_recovered();
    }

    /// Attacks over and not yet recovered from: recovered now if every
    /// live member sees every live member alive.
    pub(super) fn check_recovered(&mut self) {
        if !self.hostile.enabled || !self.views.converged() {
            return;
        }
        let now = self.now;
        for f in self.hostile.forges.values_mut() {
            if f.done_at.is_some() && f.recovered_at.is_none() {
                f.recovered_at = Some(now);
            }
        }
    }

    /// `observer` reports `name` at `addr`. When the name belongs to a
    /// node (or its impostors) other than the one at `addr`, the observer
    /// no longer holds those others: its table keeps one entry per name
    /// (a forged `Alive` moved it to the attacker, or an impostor took it
    /// over, or the owner took it back). Returns the node at `addr`, if
    /// it is one.
    pub(super) fn follow_name(&mut self, observer: u32, addr: SocketAddr, name: &NodeName) -> Option<u32> {
        let n = self.slots.len();
        let at = node_index(addr).filter(|&s| (s as usize) < n);
        let Some(owner) = name_index(name).filter(|&o| (o as usize) < n) else { return at };
        let displaced: Vec<u32> =
            self.hostile.holders(owner).filter(|&h| Some(h) != at && h != observer && (h as usize) < n).collect();
        let mut changed = false;
        for h in displaced {
            if let Some(old) = self.views.forget(observer, h) {
                trace!(self, "view {observer} lost {h} (was {old:?}): {name} now at {addr}");
                changed = true;
            }
        }
        if changed {
            self.check_all_know();
            self.check_convergence();
        }
        at
    }

    /// Node `n` gave its name up (it was joining and found the name held
    /// at another address): the driver stops it, as the runtime refuses
    /// to start.
    pub(super) fn check_yielded(&mut self, n: u32) {
        if self.hostile.enabled && self.slots[n as usize].node.as_ref().is_some_and(|node| node.name_yielded()) {
            trace!(self, "yield {n}: its name is taken");
            self.stop(n, State::Left);
        }
    }

    /// A node delivered a forged user item to its application.
    pub(super) fn forged_delivered(&mut self, node: u32, origin: &NodeName, version: u64) {
        self.hostile.forged_deliveries += 1;
        trace!(self, "deliver {node} forged item from {origin} v={version}");
    }

    /// Samples the member tables' sizes.
    pub(super) fn sample_tables(&mut self) {
        if !self.hostile.enabled {
            return;
        }
        for (i, slot) in self.slots.iter().enumerate() {
            let Some(node) = slot.node.as_ref() else { continue };
            let len = node.table_len() as u64;
            if len > self.hostile.max_members {
                self.hostile.max_members = len;
                self.hostile.max_members_node = Some(i as u32);
            }
        }
    }

    /// The hostile section of the report (`None` without hostile faults).
    pub(super) fn hostile_report(&self) -> Option<HostileReport> {
        let h = &self.hostile;
        if !h.enabled {
            return None;
        }
        let period = self.cfg.period;
        let measure = |from: Time, to: Option<Time>| {
            to.map(|t| {
                let d = t.saturating_sub(from);
                Measure { ms: d.as_secs_f64() * 1e3, periods: d.as_secs_f64() / period.as_secs_f64() }
            })
        };
        let faults = h
            .forges
            .iter()
            .map(|(&index, f)| HostileFault {
                index,
                attack: match &self.scenario.faults[index].action {
                    FaultAction::Forge { attack, .. } => attack.to_string(),
                    other => other.kind().to_owned(),
                },
                frames: f.frames,
                bytes: f.bytes,
                handled: f.handled,
                last_frame: measure(f.at, f.last_frame),
                recovered: f.done_at.and_then(|done| measure(done, f.recovered_at)),
            })
            .collect();
        Some(HostileReport {
            faults,
            ghosts: u64::from(h.forger.ghosts()),
            forged_deliveries: h.forged_deliveries,
            max_members: h.max_members,
            max_members_node: h.max_members_node,
        })
    }

    /// Evaluates a hostile assertion at the end of the run.
    pub(super) fn evaluate_hostile(&self, a: &AssertSpec, report: Option<&HostileReport>) -> AssertionResult {
        let (description, passed, detail) = match a {
            AssertSpec::AliveAtEnd { nodes } => {
                let n = self.slots.len() as u32;
                // Deterministic sets (validated): any RNG resolves them alike.
                let subjects = nodes.resolve(n, &mut stream_rng(0, 0));
                let (mut checked, mut wrong) = (0u64, Vec::new());
                for &s in &subjects {
                    if self.slots[s as usize].node.is_none() {
                        wrong.push(format!("{s} is not up"));
                        continue;
                    }
                    let id = self.identity(s);
                    for (o, slot) in self.slots.iter().enumerate() {
                        let o = o as u32;
                        let Some(node) = slot.node.as_ref() else { continue };
                        if o == s || self.identity(o).name == id.name {
                            continue;
                        }
                        checked += 1;
                        match node.member(&id.name) {
                            Some(m) if m.status == MemberStatus::Alive && m.id.addr == id.addr => {}
                            Some(m) => wrong.push(format!(
                                "{o} holds {s} {:?} at {} (incarnation {})",
                                m.status, m.id.addr, m.incarnation
                            )),
                            None => wrong.push(format!("{o} does not know {s}")),
                        }
                    }
                }
                let shown: Vec<&str> = wrong.iter().take(4).map(String::as_str).collect();
                let detail = if wrong.is_empty() {
                    format!("{checked} views checked")
                } else {
                    format!(
                        "{} of {checked} views wrong: {}{}",
                        wrong.len(),
                        shown.join("; "),
                        if wrong.len() > 4 { "; ..." } else { "" }
                    )
                };
                (
                    format!("{} alive at their own address at every live node at the end", list(&subjects)),
                    wrong.is_empty(),
                    detail,
                )
            }
            AssertSpec::RecoveredWithin { fault, periods } => {
                let f = report.and_then(|r| r.faults.iter().find(|f| f.index == *fault));
                let (passed, detail) = match f {
                    None => (false, "the attack never ran".to_owned()),
                    Some(f) => match f.recovered {
                        Some(m) => (m.periods <= *periods, format!("measured {m} after the last forged frame")),
                        None => (false, "never recovered".to_owned()),
                    },
                };
                (
                    format!(
                        "every live member sees every live member alive within {periods} periods of forge #{fault}"
                    ),
                    passed,
                    detail,
                )
            }
            AssertSpec::MembersAtMost { count } => {
                let (max, node) = report.map_or((0, None), |r| (r.max_members, r.max_members_node));
                let at = node.map_or(String::new(), |n| format!(" (node {n})"));
                (format!("no member table above {count} members"), max <= *count, format!("largest {max}{at}"))
            }
            AssertSpec::ForgedDeliveriesAtMost { count } => {
                let delivered = report.map_or(0, |r| r.forged_deliveries);
                (
                    format!("at most {count} forged user items delivered"),
                    delivered <= *count,
                    format!("measured {delivered}"),
                )
            }
            AssertSpec::IncarnationAtMost { node, value } => {
                let (passed, detail) = match self.slots.get(*node as usize).and_then(|s| s.node.as_ref()) {
                    Some(n) => (n.incarnation() <= *value, format!("incarnation {}", n.incarnation())),
                    None => (false, "not up at the end".to_owned()),
                };
                (format!("node {node}'s incarnation at most {value} at the end"), passed, detail)
            }
            other => (format!("{other:?}"), false, "not a hostile assertion".to_owned()),
        };
        AssertionResult { description, passed, detail }
    }
}
