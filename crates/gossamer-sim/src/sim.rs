//! The engine: one event queue, one clock, nodes, the network, the fault
//! schedule, and the bookkeeping the report is made of.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gossamer_core::Time;
use gossamer_wire::MemberStatus;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::SimError;
use crate::network::{LinkModel, Network, Transmission};
use crate::node::{node_addr, node_id, node_index, NodeCounters, NodeFactory, NodeOutput, SimNode};
use crate::nodeset::Members;
use crate::queue::EventQueue;
use crate::report::{
    Accuracy, AssertionResult, FaultReport, Measure, Performance, Report, Sample, SwimPrediction, Traffic,
};
use crate::scenario::{AssertSpec, FaultAction, Scenario};
use crate::swim_node::SwimFactory;
use crate::views::Views;

/// RNG stream of the network.
const STREAM_NETWORK: u64 = 0;
/// RNG stream for scenario-level picks (random node sets, boot times).
const STREAM_PICKS: u64 = 1;

/// The RNG of node `index` in its `generation` (restarts get fresh streams),
/// derived from the master seed.
pub fn node_rng(seed: u64, index: u32, generation: u32) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream((1 << 48) | ((generation as u64) << 32) | index as u64);
    rng
}

fn stream_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

enum Ev<T> {
    Boot { node: u32 },
    Datagram { to: u32, from: u32, bytes: Bytes, lagged: bool },
    Timer { node: u32, generation: u32, timer: T, lagged: bool },
    StreamRequest { client: u32, generation: u32, server: u32, request: Bytes, started: Time, lagged: bool },
    StreamResponse { client: u32, generation: u32, server: u32, response: Bytes, started: Time, lagged: bool },
    StreamFailed { client: u32, generation: u32, peer: SocketAddr },
    Fault(usize),
    LeaveCheck { node: u32, generation: u32 },
    Sample,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    NotStarted,
    Up,
    Down,
    Left,
}

struct Slot<N> {
    node: Option<N>,
    generation: u32,
    state: State,
    paused_until: Time,
    lag: Duration,
    lag_until: Time,
    leaving_since: Option<Time>,
    /// When this node last came back from a crash (restart), if ever.
    restarted_at: Option<Time>,
}

impl<N> Slot<N> {
    fn new() -> Self {
        Self {
            node: None,
            generation: 0,
            state: State::NotStarted,
            paused_until: Time::ZERO,
            lag: Duration::ZERO,
            lag_until: Time::ZERO,
            leaving_since: None,
            restarted_at: None,
        }
    }
}

/// Per-fault measurements in progress.
struct Tracker {
    at: Time,
    kind: &'static str,
    description: String,
    subjects: Members,
    subject_list: Vec<u32>,
    window_end: Time,
    detect: bool,
    converge: bool,
    split: bool,
    first_suspect: Option<Time>,
    first_dead: Option<Time>,
    all_suspect: Option<Time>,
    all_know: Option<Time>,
    split_at: Option<Time>,
    converged_at: Option<Time>,
    suspicions: u64,
    deaths: u64,
    applied: bool,
}

impl Tracker {
    /// A fault not applied (yet, or ever: scheduled after the end).
    fn pending() -> Self {
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

#[derive(Default)]
struct Stats {
    traffic: Traffic,
    accuracy: Accuracy,
    node_time: Duration,
    last_live_change: Time,
    counters: NodeCounters,
    events: u64,
}

struct Resolved {
    period: Duration,
    duration: Duration,
    seeds: u32,
    join_spread: Duration,
    leave_timeout: Duration,
    sample_every: Duration,
    stream_timeout: Duration,
    fp_grace: Duration,
    fault_times: Vec<Time>,
}

/// A simulation, ready to run. Build it with [`Simulation::new`] for
/// gossamer-core nodes, or [`Simulation::with_factory`] for other nodes.
///
/// ```no_run
/// use gossamer_sim::{Scenario, Simulation};
/// let scenario = Scenario::from_file("simulations/quickstart.toml").unwrap();
/// let report = Simulation::new(scenario).unwrap().run();
/// println!("{report}");
/// assert!(report.passed);
/// ```
pub struct Simulation<F: NodeFactory = SwimFactory> {
    scenario: Scenario,
    cfg: Resolved,
    factory: F,
    queue: EventQueue<Ev<<F::Node as SimNode>::Timer>>,
    now: Time,
    slots: Vec<Slot<F::Node>>,
    net: Network,
    views: Views,
    picks: ChaCha8Rng,
    trackers: Vec<Tracker>,
    stats: Stats,
    samples: Vec<Sample>,
    trace: Option<Box<dyn Write>>,
    out: Vec<NodeOutput<<F::Node as SimNode>::Timer>>,
    errors: Vec<String>,
}

impl Simulation<SwimFactory> {
    /// A simulation of gossamer-core nodes configured by the scenario's protocol section.
    pub fn new(scenario: Scenario) -> Result<Self, SimError> {
        let factory = SwimFactory::new(scenario.protocol.to_config(), &scenario.cluster.label)?;
        Self::with_factory(scenario, factory)
    }
}

macro_rules! trace {
    ($sim:expr, $($arg:tt)*) => {
        if let Some(w) = $sim.trace.as_mut() {
            let t = $sim.now.as_micros();
            // A failing trace sink must not change the run; the error is
            // reported once at the end through `errors`.
            if writeln!(w, "{t:>12} {}", format_args!($($arg)*)).is_err() {
                $sim.trace = None;
                $sim.errors.push("trace sink failed; trace truncated".into());
            }
        }
    };
}

impl<F: NodeFactory> Simulation<F> {
    /// A simulation of the nodes `factory` builds.
    pub fn with_factory(scenario: Scenario, factory: F) -> Result<Self, SimError> {
        scenario.validate()?;
        let period = factory.probe_interval();
        if period.is_zero() {
            return Err(SimError::invalid("probe interval must not be zero"));
        }
        let c = &scenario.cluster;
        let cfg = Resolved {
            period,
            duration: scenario.duration.resolve(period),
            seeds: c.seeds,
            join_spread: c.join_spread.resolve(period),
            leave_timeout: c.leave_timeout.resolve(period),
            sample_every: c.sample_every.resolve(period).max(Duration::from_millis(1)),
            stream_timeout: scenario.network.stream_timeout.map_or(Duration::from_secs(10), |s| s.resolve(period)),
            fp_grace: c.fp_grace.resolve(period),
            fault_times: scenario.faults.iter().map(|f| f.at.resolve(period)).collect(),
        };
        let base = LinkModel::base(&scenario.network.base_link(), period).map_err(SimError::Invalid)?;
        let mut net = Network::new(base.clone(), stream_rng(scenario.seed, STREAM_NETWORK));
        let mut picks = stream_rng(scenario.seed, STREAM_PICKS);
        let total = total_nodes(&scenario);
        for o in &scenario.network.links {
            let model = base.with(&o.link(), period).map_err(SimError::Invalid)?;
            let from = Members::new(&o.from, total, &mut picks);
            let to = Members::new(&o.to, total, &mut picks);
            net.add_override(from, to, o.symmetric, model);
        }
        Ok(Self {
            cfg,
            factory,
            queue: EventQueue::new(),
            now: Time::ZERO,
            slots: Vec::new(),
            net,
            views: Views::default(),
            picks,
            trackers: (0..scenario.faults.len()).map(|_| Tracker::pending()).collect(),
            stats: Stats::default(),
            samples: Vec::new(),
            trace: None,
            out: Vec::new(),
            errors: Vec::new(),
            scenario,
        })
    }

    /// Writes the full event trace (deterministic bytes for a given
    /// scenario and seed) to `sink`.
    pub fn trace_to(mut self, sink: impl Write + 'static) -> Self {
        self.trace = Some(Box::new(std::io::BufWriter::new(sink)));
        self
    }

    /// Runs to the end of the scenario's duration and reports.
    pub fn run(mut self) -> Report {
        let wall = Instant::now();
        let n = self.scenario.nodes;
        self.add_slots(n);
        for i in 0..n {
            let at = if i == 0 || self.cfg.join_spread.is_zero() {
                Time::ZERO
            } else {
                Duration::from_nanos(self.picks.random_range(0..=self.cfg.join_spread.as_nanos() as u64))
            };
            self.queue.push(at, Ev::Boot { node: i });
        }
        for (i, &at) in self.cfg.fault_times.clone().iter().enumerate() {
            self.queue.push(at, Ev::Fault(i));
        }
        self.queue.push(Time::ZERO, Ev::Sample);
        let end = self.cfg.duration;
        while let Some(at) = self.queue.peek_time() {
            if at > end {
                break;
            }
            let (at, ev) = self.queue.pop().expect("peeked");
            self.now = at;
            self.stats.events += 1;
            self.step(ev);
        }
        self.now = end;
        self.account_live_time();
        self.sample();
        if let Some(mut w) = self.trace.take() {
            if w.flush().is_err() {
                self.errors.push("trace sink failed to flush".into());
            }
        }
        for e in &self.errors {
            tracing::warn!(target: "gossamer_sim", "{e}");
        }
        self.report(wall.elapsed())
    }

    fn add_slots(&mut self, n: u32) {
        let total = self.slots.len() + n as usize;
        self.slots.resize_with(total, Slot::new);
        self.views.grow(total);
    }

    fn step(&mut self, ev: Ev<<F::Node as SimNode>::Timer>) {
        match ev {
            Ev::Boot { node } => self.boot(node),
            Ev::Datagram { to, from, bytes, mut lagged } => match self.gate(to, &mut lagged) {
                Gate::Drop => trace!(self, "drop-down {from}->{to} len={}", bytes.len()),
                Gate::Defer(at) => self.queue.push(at, Ev::Datagram { to, from, bytes, lagged }),
                Gate::Run => {
                    trace!(self, "recv {from}->{to} len={}", bytes.len());
                    let now = self.now;
                    if let Some(n) = self.slots[to as usize].node.as_mut() {
                        n.handle_datagram(now, node_addr(from), &bytes);
                    }
                    self.drain(to);
                }
            },
            Ev::Timer { node, generation, timer, mut lagged } => {
                if self.slots[node as usize].generation != generation {
                    return;
                }
                match self.gate(node, &mut lagged) {
                    Gate::Drop => {}
                    Gate::Defer(at) => self.queue.push(at, Ev::Timer { node, generation, timer, lagged }),
                    Gate::Run => {
                        trace!(self, "timer {node} {timer:?}");
                        let now = self.now;
                        if let Some(n) = self.slots[node as usize].node.as_mut() {
                            n.handle_timer(now, timer);
                        }
                        self.drain(node);
                    }
                }
            }
            Ev::StreamRequest { client, generation, server, request, started, mut lagged } => {
                match self.gate(server, &mut lagged) {
                    Gate::Drop => {
                        trace!(self, "stream-refused {client}->{server}");
                        let back = self.now + (self.now - started);
                        self.queue.push(back, Ev::StreamFailed { client, generation, peer: node_addr(server) });
                    }
                    Gate::Defer(at) => {
                        self.queue.push(at, Ev::StreamRequest { client, generation, server, request, started, lagged })
                    }
                    Gate::Run => self.serve_stream(client, generation, server, request, started),
                }
            }
            Ev::StreamResponse { client, generation, server, response, started, mut lagged } => {
                if self.slots[client as usize].generation != generation {
                    return;
                }
                match self.gate(client, &mut lagged) {
                    Gate::Drop => {}
                    Gate::Defer(at) => self
                        .queue
                        .push(at, Ev::StreamResponse { client, generation, server, response, started, lagged }),
                    Gate::Run => {
                        let now = self.now;
                        if now > started + self.cfg.stream_timeout {
                            self.stream_failed(client, node_addr(server));
                            return;
                        }
                        trace!(self, "stream-response {server}->{client} len={}", response.len());
                        if let Some(n) = self.slots[client as usize].node.as_mut() {
                            n.handle_push_pull_response(now, node_addr(server), &response);
                        }
                        self.drain(client);
                    }
                }
            }
            Ev::StreamFailed { client, generation, peer } => {
                if self.slots[client as usize].generation == generation && self.slots[client as usize].node.is_some() {
                    self.stream_failed(client, peer);
                }
            }
            Ev::Fault(i) => self.apply_fault(i),
            Ev::LeaveCheck { node, generation } => self.leave_check(node, generation),
            Ev::Sample => {
                self.sample();
                let next = self.now + self.cfg.sample_every;
                self.queue.push(next, Ev::Sample);
            }
        }
    }

    /// Whether a node can take an input now: it may be down, paused (the
    /// input waits until it resumes) or slowed (the input is processed late).
    fn gate(&mut self, node: u32, lagged: &mut bool) -> Gate {
        let s = &self.slots[node as usize];
        if s.node.is_none() {
            return Gate::Drop;
        }
        if s.paused_until > self.now {
            return Gate::Defer(s.paused_until);
        }
        if !*lagged && !s.lag.is_zero() && self.now < s.lag_until {
            *lagged = true;
            return Gate::Defer(self.now + s.lag);
        }
        Gate::Run
    }

    fn drain(&mut self, n: u32) {
        let mut out = std::mem::take(&mut self.out);
        if let Some(node) = self.slots[n as usize].node.as_mut() {
            while let Some(o) = node.poll_output() {
                out.push(o);
            }
        }
        for o in out.drain(..) {
            match o {
                NodeOutput::Datagram { to, bytes } => self.send_datagram(n, to, bytes),
                NodeOutput::PushPull { to, request } => self.start_stream(n, to, request),
                NodeOutput::SetTimer { at, timer } => {
                    let generation = self.slots[n as usize].generation;
                    self.queue.push(at.max(self.now), Ev::Timer { node: n, generation, timer, lagged: false });
                }
                NodeOutput::View { member, status } => self.observe(n, member, status),
            }
        }
        self.out = out;
    }

    fn send_datagram(&mut self, from: u32, to: SocketAddr, bytes: Bytes) {
        let len = bytes.len();
        let t = &mut self.stats.traffic;
        t.datagrams += 1;
        t.datagram_bytes += len as u64;
        t.max_datagram = t.max_datagram.max(len as u64);
        let Some(dst) = node_index(to).filter(|&d| (d as usize) < self.slots.len()) else {
            trace!(self, "send {from}->{to} len={len} unroutable");
            return;
        };
        match self.net.transmit(from, dst, len, self.now) {
            Transmission::Cut => {
                self.stats.traffic.cut += 1;
                trace!(self, "send {from}->{dst} len={len} crc={:08x} cut", crc(&bytes));
            }
            Transmission::Lost => {
                self.stats.traffic.lost += 1;
                trace!(self, "send {from}->{dst} len={len} crc={:08x} lost", crc(&bytes));
            }
            Transmission::Delivered(at, dup) => {
                trace!(
                    self,
                    "send {from}->{dst} len={len} crc={:08x} at={}{}",
                    crc(&bytes),
                    at.as_micros(),
                    dup.map(|d| format!(" dup={}", d.as_micros())).unwrap_or_default()
                );
                if let Some(d) = dup {
                    self.stats.traffic.duplicated += 1;
                    self.queue.push(d, Ev::Datagram { to: dst, from, bytes: bytes.clone(), lagged: false });
                }
                self.queue.push(at, Ev::Datagram { to: dst, from, bytes, lagged: false });
            }
        }
    }

    fn start_stream(&mut self, client: u32, to: SocketAddr, request: Bytes) {
        self.stats.traffic.streams += 1;
        self.stats.traffic.stream_bytes += request.len() as u64;
        let generation = self.slots[client as usize].generation;
        let started = self.now;
        let server = node_index(to).filter(|&d| (d as usize) < self.slots.len());
        let leg = server.and_then(|s| self.net.stream_leg(client, s, request.len(), self.now));
        match (server, leg) {
            (Some(server), Some(at)) => {
                trace!(self, "stream-request {client}->{server} len={} crc={:08x}", request.len(), crc(&request));
                self.queue.push(at, Ev::StreamRequest { client, generation, server, request, started, lagged: false });
            }
            _ => {
                trace!(self, "stream-request {client}->{to} unreachable");
                let at = started + self.cfg.stream_timeout;
                self.queue.push(at, Ev::StreamFailed { client, generation, peer: to });
            }
        }
    }

    fn serve_stream(&mut self, client: u32, generation: u32, server: u32, request: Bytes, started: Time) {
        let now = self.now;
        let timeout_at = (started + self.cfg.stream_timeout).max(now);
        if !self.net.reachable(client, server, now) {
            self.queue.push(timeout_at, Ev::StreamFailed { client, generation, peer: node_addr(server) });
            return;
        }
        let response = self.slots[server as usize]
            .node
            .as_mut()
            .and_then(|n| n.handle_push_pull_request(now, node_addr(client), &request));
        self.drain(server);
        let Some(response) = response else {
            trace!(self, "stream-rejected {client}->{server}");
            let back = now + (now - started);
            self.queue.push(back, Ev::StreamFailed { client, generation, peer: node_addr(server) });
            return;
        };
        self.stats.traffic.stream_bytes += response.len() as u64;
        match self.net.stream_leg(server, client, response.len(), now) {
            Some(at) => {
                trace!(self, "stream-serve {server}->{client} len={} crc={:08x}", response.len(), crc(&response));
                self.queue
                    .push(at, Ev::StreamResponse { client, generation, server, response, started, lagged: false });
            }
            None => self.queue.push(timeout_at, Ev::StreamFailed { client, generation, peer: node_addr(server) }),
        }
    }

    fn stream_failed(&mut self, client: u32, peer: SocketAddr) {
        self.stats.traffic.stream_failures += 1;
        trace!(self, "stream-failed {client}->{peer}");
        let now = self.now;
        if let Some(n) = self.slots[client as usize].node.as_mut() {
            n.push_pull_failed(now, peer);
        }
        self.drain(client);
    }

    fn seeds_for(&self, node: u32) -> Vec<SocketAddr> {
        let mut seeds: Vec<SocketAddr> = (0..self.cfg.seeds.min(self.slots.len() as u32))
            .filter(|&s| s != node && self.slots[s as usize].state == State::Up)
            .map(node_addr)
            .collect();
        if seeds.is_empty() {
            // Every seed is down: join through the lowest live member instead.
            if let Some(s) =
                (0..self.slots.len() as u32).find(|&s| s != node && self.slots[s as usize].state == State::Up)
            {
                seeds.push(node_addr(s));
            }
        }
        seeds
    }

    fn boot(&mut self, node: u32) {
        let slot = &self.slots[node as usize];
        if slot.node.is_some() {
            return;
        }
        let generation = slot.generation;
        let rng = node_rng(self.scenario.seed, node, generation);
        match self.factory.create(node_id(node), rng, self.now) {
            Ok(n) => {
                self.account_live_time();
                let slot = &mut self.slots[node as usize];
                if slot.state == State::Down {
                    slot.restarted_at = Some(self.now);
                }
                slot.node = Some(n);
                slot.state = State::Up;
                slot.paused_until = Time::ZERO;
                slot.lag = Duration::ZERO;
                slot.leaving_since = None;
                self.views.set_live(node, true);
                trace!(self, "boot {node} gen={generation}");
                let seeds = self.seeds_for(node);
                // A node boots only after every earlier event was handled,
                // so the seeds it picks are those up at this instant.
                if !seeds.is_empty() {
                    let now = self.now;
                    if let Some(n) = self.slots[node as usize].node.as_mut() {
                        n.join(now, &seeds);
                    }
                }
                self.drain(node);
                self.check_convergence();
            }
            Err(e) => {
                tracing::error!(target: "gossamer_sim", node, "node could not be created: {e}");
                self.errors.push(format!("node {node} could not be created: {e}"));
            }
        }
    }

    fn stop(&mut self, node: u32, state: State) {
        let slot = &mut self.slots[node as usize];
        if slot.node.is_none() {
            return;
        }
        self.account_live_time();
        let slot = &mut self.slots[node as usize];
        if let Some(n) = slot.node.take() {
            self.stats.counters += n.counters();
        }
        slot.state = state;
        slot.generation += 1;
        slot.leaving_since = None;
        self.views.clear_observer(node);
        self.views.set_live(node, false);
        trace!(self, "stop {node} {state:?}");
        self.check_all_know();
        self.check_convergence();
    }

    fn account_live_time(&mut self) {
        let dt = self.now - self.stats.last_live_change;
        self.stats.node_time += dt * self.views.live_count() as u32;
        self.stats.last_live_change = self.now;
    }

    fn leave_check(&mut self, node: u32, generation: u32) {
        let slot = &self.slots[node as usize];
        if slot.generation != generation || slot.node.is_none() {
            return;
        }
        let Some(since) = slot.leaving_since else { return };
        let left = slot.node.as_ref().is_some_and(|n| n.has_left());
        if left || self.now >= since + self.cfg.leave_timeout {
            trace!(self, "left {node} announced={left}");
            self.stop(node, State::Left);
        } else {
            let next = self.now + self.cfg.period / 4;
            self.queue.push(next, Ev::LeaveCheck { node, generation });
        }
    }

    fn observe(&mut self, observer: u32, member: SocketAddr, status: MemberStatus) {
        let Some(subject) = node_index(member) else { return };
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

    /// The subject runs normally and the path is open both ways: declaring
    /// it dead is a false positive.
    fn healthy_and_reachable(&self, observer: u32, subject: u32) -> bool {
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
    fn degraded(&self, subject: u32) -> bool {
        let s = &self.slots[subject as usize];
        let horizon = self.now.saturating_sub(self.cfg.fp_grace);
        s.paused_until > horizon || (!s.lag.is_zero() && s.lag_until > horizon)
    }

    /// Restarted within the grace period: a death declared now may be about
    /// its previous incarnation, which really did die.
    fn restarted_recently(&self, subject: u32) -> bool {
        self.slots[subject as usize].restarted_at.is_some_and(|t| self.now < t + self.cfg.fp_grace)
    }

    fn check_all_know(&mut self) {
        let now = self.now;
        for t in self.trackers.iter_mut().filter(|t| t.applied && t.detect && t.all_know.is_none()) {
            if t.all_suspect.is_none() && t.subject_list.iter().all(|&s| self.views.alive_views(s) == 0) {
                t.all_suspect = Some(now);
            }
            if t.subject_list.iter().all(|&s| self.views.believers(s) == 0) {
                t.all_know = Some(now);
            }
        }
    }

    fn check_convergence(&mut self) {
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

    fn check_split(&mut self) {
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

    fn sample(&mut self) {
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

    fn apply_fault(&mut self, i: usize) {
        let action = self.scenario.faults[i].action.clone();
        let n = self.slots.len() as u32;
        let now = self.now;
        let resolve = |set: &crate::nodeset::NodeSet, picks: &mut ChaCha8Rng| set.resolve(n, picks);
        let (subjects, description, window_end) = match &action {
            FaultAction::Crash { nodes } => {
                let v = resolve(nodes, &mut self.picks);
                for &x in &v {
                    self.stop(x, State::Down);
                }
                (v.clone(), format!("crash {}", list(&v)), Time::MAX)
            }
            FaultAction::Restart { nodes } => {
                let v = resolve(nodes, &mut self.picks);
                for &x in &v {
                    self.stop(x, State::Down);
                    self.boot(x);
                }
                (v.clone(), format!("restart {}", list(&v)), Time::MAX)
            }
            FaultAction::Pause { nodes, duration } => {
                let v = resolve(nodes, &mut self.picks);
                let until = now + duration.resolve(self.cfg.period);
                for &x in &v {
                    self.slots[x as usize].paused_until = until;
                }
                (v.clone(), format!("pause {} for {}", list(&v), duration), until)
            }
            FaultAction::Slow { nodes, lag, duration } => {
                let v = resolve(nodes, &mut self.picks);
                let until = duration.map_or(Time::MAX, |d| now + d.resolve(self.cfg.period));
                for &x in &v {
                    let s = &mut self.slots[x as usize];
                    s.lag = lag.resolve(self.cfg.period);
                    s.lag_until = until;
                }
                (v.clone(), format!("slow {} by {lag}", list(&v)), until)
            }
            FaultAction::Partition { groups } => {
                let gs: Vec<Vec<u32>> = groups.iter().map(|g| resolve(g, &mut self.picks)).collect();
                self.net.partition(&gs, n);
                let sizes: Vec<String> = gs.iter().map(|g| g.len().to_string()).collect();
                ((0..n).collect(), format!("partition into groups of {} (+ the rest)", sizes.join(", ")), Time::MAX)
            }
            FaultAction::OneWay { from, to } => {
                let f = resolve(from, &mut self.picks);
                let t = resolve(to, &mut self.picks);
                self.net.cut_one_way(Members::from_indices(&f, n), Members::from_indices(&t, n));
                (f.clone(), format!("one-way cut: {} no longer heard by {}", list(&f), list(&t)), Time::MAX)
            }
            FaultAction::Flap { a, b, period, duration } => {
                let av = resolve(a, &mut self.picks);
                let bv = resolve(b, &mut self.picks);
                let until = now + duration.resolve(self.cfg.period);
                let half = period.resolve(self.cfg.period) / 2;
                self.net.flap(Members::from_indices(&av, n), Members::from_indices(&bv, n), now, half, until);
                (av.clone(), format!("flap {} <-> {} every {period} for {duration}", list(&av), list(&bv)), until)
            }
            FaultAction::Heal => {
                self.net.heal();
                (Vec::new(), "heal every cut".to_owned(), Time::MAX)
            }
            FaultAction::Join { count } => {
                let first = n;
                self.add_slots(*count);
                let v: Vec<u32> = (first..first + count).collect();
                for &x in &v {
                    self.boot(x);
                }
                (v.clone(), format!("join {} new nodes", count), Time::MAX)
            }
            FaultAction::Leave { nodes } => {
                let v = resolve(nodes, &mut self.picks);
                for &x in &v {
                    let s = &mut self.slots[x as usize];
                    if s.node.is_none() || s.leaving_since.is_some() {
                        continue;
                    }
                    s.leaving_since = Some(now);
                    let generation = s.generation;
                    if let Some(node) = s.node.as_mut() {
                        node.leave(now);
                    }
                    self.drain(x);
                    self.queue.push(now, Ev::LeaveCheck { node: x, generation });
                }
                (v.clone(), format!("leave {}", list(&v)), Time::MAX)
            }
        };
        trace!(self, "fault {i} {description}");
        tracing::debug!(target: "gossamer_sim", at_ms = now.as_millis() as u64, fault = i, "{description}");
        let kind = action.kind();
        let total = self.slots.len() as u32;
        self.trackers[i] = Tracker {
            at: now,
            kind,
            description,
            subjects: Members::from_indices(&subjects, total),
            subject_list: subjects,
            window_end,
            detect: matches!(kind, "crash" | "leave"),
            converge: matches!(kind, "heal" | "join" | "restart"),
            split: kind == "partition",
            first_suspect: None,
            first_dead: None,
            all_suspect: None,
            all_know: None,
            split_at: None,
            converged_at: None,
            suspicions: 0,
            deaths: 0,
            applied: true,
        };
        self.check_all_know();
        self.check_convergence();
    }

    fn report(mut self, wall: Duration) -> Report {
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
            t.msgs_per_member_per_period = (t.datagrams + 2 * t.streams) as f64 / node_periods;
            t.bytes_per_member_per_period = (t.datagram_bytes + t.stream_bytes) as f64 / node_periods;
        }
        let single_cluster = self.views.converged() && self.views.live_count() > 0;
        for n in self.slots.iter().filter_map(|s| s.node.as_ref()) {
            self.stats.counters += n.counters();
        }
        let assertions: Vec<AssertionResult> = self
            .scenario
            .asserts
            .iter()
            .map(|a| evaluate(a, &self.scenario, &faults, &self.stats.accuracy, single_cluster))
            .collect();
        let wall_secs = wall.as_secs_f64();
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
            passed: assertions.iter().all(|a| a.passed),
            assertions,
            samples: std::mem::take(&mut self.samples),
            performance: Performance {
                wall_secs,
                events: self.stats.events,
                node_periods_per_sec: if wall_secs > 0.0 { node_periods / wall_secs } else { 0.0 },
            },
        }
    }
}

enum Gate {
    Run,
    Drop,
    Defer(Time),
}

fn crc(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

fn list(v: &[u32]) -> String {
    match v.len() {
        0 => "no nodes".into(),
        1..=8 => format!(
            "node{} {}",
            if v.len() == 1 { "" } else { "s" },
            v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
        ),
        n => format!("{n} nodes ({}, {}, ... {})", v[0], v[1], v[n - 1]),
    }
}

fn total_nodes(s: &Scenario) -> u32 {
    s.nodes + s.faults.iter().map(|f| if let FaultAction::Join { count } = f.action { count } else { 0 }).sum::<u32>()
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
    };
    AssertionResult { description, passed, detail }
}
