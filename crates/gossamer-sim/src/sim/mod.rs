//! The engine: one event queue, one clock, nodes, the network, the fault
//! schedule, and the bookkeeping the report is made of.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gossamer_core::Time;
use gossamer_wire::MemberStatus;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::SimError;
use crate::heal_node::{HealFactory, ScenarioFactory};
use crate::network::{LinkModel, Network, Transmission};
use crate::node::{node_addr, node_id, node_index, NodeCounters, NodeFactory, NodeOutput, SimNode};
use crate::nodeset::{Members, NodeSet};
use crate::queue::EventQueue;
use crate::report::{
    Accuracy, AssertionResult, FaultReport, Measure, Performance, Report, Sample, SwimPrediction, Traffic,
};
use crate::scenario::{AssertSpec, FaultAction, Scenario, Start};
use crate::swim_node::{SwimFactory, SHARED_IDENTITIES_MIN_NODES};
use crate::units::Span;
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

// `Ping*`: a fallback ping over a stream (see `streams`), answered by its
// server like a push-pull request.
enum Ev<T> {
    Boot { node: u32 },
    Datagram { to: u32, from: u32, bytes: Bytes, lagged: bool },
    Timer { node: u32, generation: u32, timer: T, lagged: bool },
    StreamRequest { client: u32, generation: u32, server: u32, request: Bytes, started: Time, lagged: bool },
    StreamResponse { client: u32, generation: u32, server: u32, response: Bytes, started: Time, lagged: bool },
    StreamFailed { client: u32, generation: u32, peer: SocketAddr },
    PingRequest { client: u32, generation: u32, server: u32, request: Bytes, deadline: Time, lagged: bool },
    PingResponse { client: u32, generation: u32, server: u32, response: Bytes, deadline: Time, lagged: bool },
    PingFailed { client: u32, generation: u32, peer: SocketAddr },
    Fault(usize),
    LeaveCheck { node: u32, generation: u32 },
    Sample,
    Broadcast { node: u32, fault: usize, lagged: bool },
    ForgeRound { fault: usize, round: u32 },
    Forged { fault: usize, to: u32, bytes: Bytes, lagged: bool },
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
    /// When its current run started (boot or restart).
    up_since: Time,
    /// When it last went down (crash or leave), if it did.
    down_at: Option<Time>,
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
            up_since: Time::ZERO,
            down_at: None,
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
    /// Wall time spent building the initial nodes before the first event.
    setup: Duration,
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
/// gossamer-core nodes (with the heal layer when the scenario has a
/// `[heal]` section), or [`Simulation::with_factory`] for other nodes.
///
/// ```no_run
/// use gossamer_sim::{Scenario, Simulation};
/// let scenario = Scenario::from_file("simulations/quickstart.toml").unwrap();
/// let report = Simulation::new(scenario).unwrap().run();
/// println!("{report}");
/// assert!(report.passed);
/// ```
pub struct Simulation<F: NodeFactory = ScenarioFactory> {
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
    heal: HealLog,
    bcast: BroadcastLog,
    hostile: HostileLog,
    baseline: Baseline,
}

/// The run without broadcasts that `detection_unaffected_by_broadcasts`
/// compares with.
enum Baseline {
    None,
    /// Run at the start of [`Simulation::run`] (before this run's nodes
    /// take memory).
    Pending(Box<dyn FnOnce() -> Result<Report, SimError>>),
    Done(Box<Result<Report, String>>),
}

impl Simulation<ScenarioFactory> {
    /// A simulation of gossamer-core nodes configured by the scenario's
    /// protocol section, each with the heal layer (gossamer-heal) if the
    /// scenario's `[heal]` section enables it.
    pub fn new(scenario: Scenario) -> Result<Self, SimError> {
        let config = scenario.protocol.to_config()?;
        let label = &scenario.cluster.label;
        let shared = scenario.nodes >= SHARED_IDENTITIES_MIN_NODES;
        let factory = match scenario.heal_config(config.probe_interval)? {
            Some(heal) => ScenarioFactory::Heal(HealFactory::new(config, heal, label)?.with_shared_identities(shared)),
            None => ScenarioFactory::Swim(SwimFactory::new(config, label)?.with_shared_identities(shared)),
        };
        let wants_baseline =
            scenario.asserts.iter().any(|a| matches!(a, AssertSpec::DetectionUnaffectedByBroadcasts { .. }));
        let base = scenario.without_broadcasts();
        let mut sim = Self::with_factory(scenario, factory)?;
        if wants_baseline {
            sim.baseline = Baseline::Pending(Box::new(move || Ok(Simulation::new(base)?.run())));
        }
        Ok(sim)
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

// After the macro: textual scope makes `trace!` visible to these modules.
mod broadcast;
mod heal;
mod hostile;
mod lifecycle;
mod measure;
mod streams;

/// A trace sink the caller keeps a handle to (see [`Simulation::run_traced`]).
#[derive(Clone, Default)]
struct SharedBuf(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

use broadcast::BroadcastLog;
use heal::HealLog;
use hostile::HostileLog;
use measure::Tracker;

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
        let total = scenario.total_nodes();
        let heal_config = scenario.heal_config(period)?;
        let heal = HealLog::new(heal_config.is_some(), heal_config.and_then(|c| c.autoclean.timeout()));
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
            heal,
            bcast: BroadcastLog::new(scenario.has_broadcasts(), scenario.seed),
            hostile: HostileLog::new(scenario.has_hostile(), scenario.seed, &scenario.cluster.label)?,
            baseline: Baseline::None,
            scenario,
        })
    }

    /// The run of the same scenario without broadcasts
    /// ([`Scenario::without_broadcasts`], same seed) that the
    /// `detection_unaffected_by_broadcasts` assertion compares with.
    /// [`Simulation::new`] runs it by itself; a simulation built with
    /// [`Simulation::with_factory`] needs it given here.
    pub fn with_baseline(mut self, baseline: Report) -> Self {
        self.baseline = Baseline::Done(Box::new(Ok(baseline)));
        self
    }

    /// Writes the full event trace (deterministic bytes for a given
    /// scenario and seed) to `sink`.
    pub fn trace_to(mut self, sink: impl Write + 'static) -> Self {
        self.trace = Some(Box::new(std::io::BufWriter::new(sink)));
        self
    }

    /// Runs as [`Simulation::run`] with the trace kept in memory: the
    /// report and the trace's bytes, e.g. to check that two runs of one
    /// seed are the same byte for byte.
    ///
    /// ```
    /// use gossamer_sim::{Scenario, Simulation};
    /// let s = Scenario::from_toml("name = \"t\"\nnodes = 4\nduration = \"5 periods\"").unwrap();
    /// let (report, trace) = Simulation::new(s.clone()).unwrap().run_traced();
    /// assert!(report.passed && !trace.is_empty());
    /// assert_eq!(trace, Simulation::new(s).unwrap().run_traced().1);
    /// ```
    pub fn run_traced(self) -> (Report, Vec<u8>) {
        let buf = SharedBuf::default();
        let report = self.trace_to(buf.clone()).run();
        let bytes = buf.0.take();
        (report, bytes)
    }

    /// Runs to the end of the scenario's duration and reports.
    pub fn run(mut self) -> Report {
        self.baseline = match std::mem::replace(&mut self.baseline, Baseline::None) {
            Baseline::Pending(run) => Baseline::Done(Box::new(run().map_err(|e| e.to_string()))),
            other => other,
        };
        let wall = Instant::now();
        let n = self.scenario.nodes;
        self.add_slots(n);
        match self.scenario.cluster.start {
            Start::Join => {
                for i in 0..n {
                    let at = if i == 0 || self.cfg.join_spread.is_zero() {
                        Time::ZERO
                    } else {
                        Duration::from_nanos(self.picks.random_range(0..=self.cfg.join_spread.as_nanos() as u64))
                    };
                    self.queue.push(at, Ev::Boot { node: i });
                }
            }
            Start::Converged => self.start_converged(n),
        }
        // A converged start builds every node and its full member table
        // here; a joining one boots them as events of the run.
        self.stats.setup = wall.elapsed();
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
            Ev::PingRequest { client, generation, server, request, deadline, mut lagged } => {
                match self.gate(server, &mut lagged) {
                    // Nobody listening: the connection is refused at once.
                    Gate::Drop => self.ping_failed(client, generation, node_addr(server)),
                    Gate::Defer(at) => {
                        self.queue.push(at, Ev::PingRequest { client, generation, server, request, deadline, lagged })
                    }
                    Gate::Run => self.serve_ping(client, generation, server, request, deadline),
                }
            }
            Ev::PingResponse { client, generation, server, response, deadline, mut lagged } => {
                if self.slots[client as usize].generation != generation {
                    return;
                }
                match self.gate(client, &mut lagged) {
                    Gate::Drop => {}
                    Gate::Defer(at) => {
                        self.queue.push(at, Ev::PingResponse { client, generation, server, response, deadline, lagged })
                    }
                    Gate::Run => self.ping_answered(client, server, response, deadline),
                }
            }
            Ev::PingFailed { client, generation, peer } => self.ping_failed(client, generation, peer),
            Ev::Fault(i) => self.apply_fault(i),
            Ev::LeaveCheck { node, generation } => self.leave_check(node, generation),
            Ev::Sample => {
                self.sample();
                let next = self.now + self.cfg.sample_every;
                self.queue.push(next, Ev::Sample);
            }
            // The application calls in when the node runs: a paused node
            // broadcasts when it resumes, a slow one late, a down one not.
            Ev::Broadcast { node, fault, mut lagged } => match self.gate(node, &mut lagged) {
                Gate::Defer(at) => self.queue.push(at, Ev::Broadcast { node, fault, lagged }),
                Gate::Drop | Gate::Run => self.broadcast(node, fault),
            },
            Ev::ForgeRound { fault, round } => self.forge_round(fault, round),
            // A forged frame is an input like any other: a down node never
            // sees it, a paused one later, a slow one late.
            Ev::Forged { fault, to, bytes, mut lagged } => match self.gate(to, &mut lagged) {
                Gate::Drop => {
                    trace!(self, "drop-down forged {fault} ->{to}");
                    self.forged_done(fault);
                }
                Gate::Defer(at) => self.queue.push(at, Ev::Forged { fault, to, bytes, lagged }),
                Gate::Run => self.forged_arrives(fault, to, bytes),
            },
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
                NodeOutput::StreamPing { to, request, deadline } => self.start_ping(n, to, request, deadline),
                NodeOutput::SetTimer { at, timer } => {
                    let generation = self.slots[n as usize].generation;
                    self.queue.push(at.max(self.now), Ev::Timer { node: n, generation, timer, lagged: false });
                }
                NodeOutput::View { member, name, status } => self.observe(n, member, &name, status),
                NodeOutput::Removed { member, dead_for } => self.removed(n, member, dead_for),
                NodeOutput::Heal(note) => {
                    trace!(self, "heal {n} {note:?}");
                    self.heal.note(self.now, n, note);
                }
                NodeOutput::Delivered { origin, key, version, payload } => {
                    self.delivered(n, origin, key, version, payload)
                }
            }
        }
        self.out = out;
        self.check_yielded(n);
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
}

enum Gate {
    Run,
    Drop,
    Defer(Time),
}

/// IEEE CRC32 of a datagram, for trace lines (the same value as earlier traces).
fn crc(bytes: &[u8]) -> u32 {
    // A 32-bit CRC in a u64: the cast drops only zero bits.
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32IsoHdlc, bytes) as u32
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
