//! Traffic of gossamer beside foca 2.0.0 in virtual time (issue #16): the
//! same small discrete-event network drives `n` gossamer cores
//! (`gossamer_core::Swim`, LAN preset) or `n` foca nodes
//! (`foca::Config::new_lan(n)`, memberlist's LAN profile as foca reads it,
//! 1,400-byte packets), and counts what they send.
//!
//! Workload (the issue's): a converged start (every node knows every other
//! alive: gossamer through `Swim::start_converged`, foca through
//! `apply_many(.., do_broadcast = false, ..)`), datagram latency drawn
//! uniformly in 0.5–1.5 ms, a loss rate (0% and 10%), one crash (node
//! `n / 3`) half-way through the run. Both engines get the same network:
//! the same seeded RNG draws each datagram's fate (loss, then latency) in
//! send order, so the draws are alike but not paired (the engines send
//! different datagrams). gossamer's push-pull exchanges (foca has none) run
//! and its fallback pings over a stream (a probe unanswered in time) run
//! over a lossless stream: request and response each take one latency
//! draw; a request to a crashed node fails after one more.
//!
//! Reported per engine: datagrams and their bytes per node-period (payload
//! bytes, no UDP/IP headers; gossamer's frames carry their cluster label
//! and CRC32, foca's postcard frames carry neither), gossamer's push-pull
//! streams apart (exchanges and bytes per node-period, both directions), the
//! crash's first detection and the time until every live node declared it
//! dead (in periods after the crash), live members declared dead (false
//! positives, as (observer, member) pairs), and for gossamer suspicions of
//! live members (foca does not report suspicion).
//!
//! ```text
//! cargo run --release -p gossamer-benches --example traffic_vs_foca -- \
//!     [--nodes 128,1000] [--loss 0,0.1] [--seeds 1] [--periods 60] [--engine both|gossamer|foca]
//! cargo run --release -p gossamer-benches --example traffic_vs_foca -- --scenario FILE.toml --seeds 1..21
//! ```
//! The second form is the accuracy gate: a simulator scenario (the real
//! simulator, not this harness's network) once per seed.
//! `RETRANSMIT_LOG_BASE=10` runs gossamer with memberlist's retransmit
//! budget (`Config::retransmit_log_base`; default 2) in both forms;
//! `RETIRE_AFTER_COPIES=N` sets `Config::retire_after_copies` (0: every
//! update sent its whole budget) in the first. gossamer's datagrams are also
//! decoded and counted by message and by update kind (stderr): where one
//! crash's datagrams go.
//! Figures: BENCHMARKS.md, "Traffic vs foca (virtual time)".

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use compact_str::CompactString;
use foca::{Foca, Member as FocaMember, NoCustomBroadcast, Notification, PostcardCodec, Runtime, State};
use gossamer_core::{Config, Event, IdentityDirectory, Member, Output, Swim, Timer};
use gossamer_wire::{ClusterLabel, FrameCodec, MemberStatus, Message, Metadata, NodeId, Update};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_foca::rngs::SmallRng;

/// One protocol period (both engines: LAN, 1 s).
const PERIOD: Duration = Duration::from_secs(1);
/// Packet size limit of both engines.
const MTU: usize = 1_400;

fn addr(i: usize) -> SocketAddr {
    let i = i as u32;
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8)), 7946)
}

fn index(addr: SocketAddr) -> usize {
    match addr.ip() {
        IpAddr::V4(ip) => {
            let [_, a, b, c] = ip.octets();
            (usize::from(a) << 16) | (usize::from(b) << 8) | usize::from(c)
        }
        IpAddr::V6(_) => unreachable!("the harness uses IPv4 only"),
    }
}

fn node_name(i: usize) -> String {
    format!("n{i}")
}

// ------------------------------------------------------------- the network

/// What an engine did in answer to one input.
struct Effects<T> {
    /// (to, payload)
    datagrams: Vec<(usize, Vec<u8>)>,
    /// (to, request, is a fallback ping): a push-pull exchange or a
    /// fallback ping over a stream (gossamer only).
    streams: Vec<(usize, Vec<u8>, bool)>,
    /// (after, timer)
    timers: Vec<(Duration, T)>,
    /// Members declared dead.
    dead: Vec<usize>,
    /// Members suspected.
    suspected: Vec<usize>,
}

impl<T> Default for Effects<T> {
    fn default() -> Self {
        Self { datagrams: Vec::new(), streams: Vec::new(), timers: Vec::new(), dead: Vec::new(), suspected: Vec::new() }
    }
}

impl<T> Effects<T> {
    fn clear(&mut self) {
        self.datagrams.clear();
        self.streams.clear();
        self.timers.clear();
        self.dead.clear();
        self.suspected.clear();
    }
}

/// One engine's `n` nodes.
trait Engine {
    const NAME: &'static str;
    type Timer: Clone;
    fn start(n: usize, seed: u64, out: &mut Vec<Effects<Self::Timer>>) -> Self;
    fn datagram(&mut self, now: Duration, node: usize, from: usize, bytes: &[u8], out: &mut Effects<Self::Timer>);
    fn timer(&mut self, now: Duration, node: usize, timer: Self::Timer, out: &mut Effects<Self::Timer>);
    /// A push-pull request reached `node`: its response, if any.
    fn stream_request(
        &mut self,
        _now: Duration,
        _node: usize,
        _from: usize,
        _bytes: &[u8],
        _out: &mut Effects<Self::Timer>,
    ) -> Option<Vec<u8>> {
        None
    }
    #[allow(clippy::too_many_arguments)]
    fn stream_response(
        &mut self,
        _now: Duration,
        _node: usize,
        _from: usize,
        _bytes: &[u8],
        _ping: bool,
        _out: &mut Effects<Self::Timer>,
    ) {
    }
    fn stream_failed(
        &mut self,
        _now: Duration,
        _node: usize,
        _to: usize,
        _ping: bool,
        _out: &mut Effects<Self::Timer>,
    ) {
    }
    fn crash(&mut self, node: usize);
    /// Where the datagrams went, if the engine counts it (live nodes).
    fn breakdown(&self) -> Option<String> {
        None
    }
}

enum What<T> {
    Datagram { to: usize, from: usize, bytes: Vec<u8> },
    Timer { node: usize, timer: T },
    StreamRequest { to: usize, from: usize, bytes: Vec<u8>, ping: bool },
    StreamResponse { to: usize, from: usize, bytes: Vec<u8>, ping: bool },
    StreamFailed { node: usize, to: usize, ping: bool },
}

struct Ev<T> {
    at: Duration,
    seq: u64,
    what: What<T>,
}

impl<T> PartialEq for Ev<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<T> Eq for Ev<T> {}
impl<T> PartialOrd for Ev<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Ev<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Default, Debug, Clone)]
struct Tally {
    datagrams: u64,
    datagram_bytes: u64,
    /// Datagrams sent in the first 10 periods (the start-up burst, if any).
    early_datagrams: u64,
    streams: u64,
    stream_bytes: u64,
    /// Fallback pings over a stream (gossamer), both directions' bytes.
    stream_pings: u64,
    stream_ping_bytes: u64,
    /// Periods from the crash to the first dead declaration.
    first_detection: Option<f64>,
    /// Periods from the crash until every live node declared it dead.
    all_know: Option<f64>,
    false_dead: u64,
    false_suspicions: u64,
    node_periods: f64,
    wall: Duration,
}

struct Run {
    n: usize,
    loss: f64,
    seed: u64,
    periods: u64,
}

fn run<E: Engine>(spec: &Run) -> Tally {
    let started = Instant::now();
    let Run { n, loss, seed, periods } = *spec;
    let crashed = n / 3;
    let crash_at = PERIOD * (periods / 2) as u32;
    let end = PERIOD * periods as u32;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x006e_6574_776f_726b);
    let latency = |rng: &mut ChaCha8Rng| Duration::from_nanos(rng.random_range(500_000..=1_500_000));
    let mut queue: BinaryHeap<Ev<E::Timer>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut tally = Tally::default();
    let mut knows = vec![false; n];
    let mut up = vec![true; n];
    let mut known = 0usize;

    let mut initial: Vec<Effects<E::Timer>> = (0..n).map(|_| Effects::default()).collect();
    let mut engine = E::start(n, seed, &mut initial);
    let mut now = Duration::ZERO;
    let mut crash_done = false;

    // Applies one node's effects: sends through the network, timers.
    #[allow(clippy::too_many_arguments)]
    fn apply<T: Clone>(
        node: usize,
        now: Duration,
        fx: &mut Effects<T>,
        queue: &mut BinaryHeap<Ev<T>>,
        seq: &mut u64,
        rng: &mut ChaCha8Rng,
        loss: f64,
        tally: &mut Tally,
        latency: impl Fn(&mut ChaCha8Rng) -> Duration,
        early: bool,
    ) {
        for (to, bytes) in fx.datagrams.drain(..) {
            tally.datagrams += 1;
            tally.datagram_bytes += bytes.len() as u64;
            tally.early_datagrams += u64::from(early);
            if rng.random::<f64>() < loss {
                continue;
            }
            let at = now + latency(rng);
            *seq += 1;
            queue.push(Ev { at, seq: *seq, what: What::Datagram { to, from: node, bytes } });
        }
        for (to, bytes, ping) in fx.streams.drain(..) {
            if ping {
                tally.stream_pings += 1;
                tally.stream_ping_bytes += bytes.len() as u64;
            } else {
                tally.streams += 1;
                tally.stream_bytes += bytes.len() as u64;
            }
            let at = now + latency(rng);
            *seq += 1;
            queue.push(Ev { at, seq: *seq, what: What::StreamRequest { to, from: node, bytes, ping } });
        }
        for (after, timer) in fx.timers.drain(..) {
            *seq += 1;
            queue.push(Ev { at: now + after, seq: *seq, what: What::Timer { node, timer } });
        }
    }

    for (node, fx) in initial.iter_mut().enumerate() {
        apply(node, now, fx, &mut queue, &mut seq, &mut rng, loss, &mut tally, latency, true);
    }
    drop(initial);
    let mut fx = Effects::default();
    while let Some(ev) = queue.pop() {
        if !crash_done && ev.at >= crash_at {
            crash_done = true;
            up[crashed] = false;
            engine.crash(crashed);
            tally.node_periods -= (end - crash_at).as_secs_f64() / PERIOD.as_secs_f64();
        }
        if ev.at > end {
            break;
        }
        now = ev.at;
        fx.clear();
        let node = match ev.what {
            What::Datagram { to, from, bytes } => {
                if !up[to] {
                    continue;
                }
                engine.datagram(now, to, from, &bytes, &mut fx);
                to
            }
            What::Timer { node, timer } => {
                if !up[node] {
                    continue;
                }
                engine.timer(now, node, timer, &mut fx);
                node
            }
            What::StreamRequest { to, from, bytes, ping } => {
                if !up[to] {
                    // A refused connection: reported after a round trip.
                    seq += 1;
                    let at = now + latency(&mut rng);
                    queue.push(Ev { at, seq, what: What::StreamFailed { node: from, to, ping } });
                    continue;
                }
                if let Some(response) = engine.stream_request(now, to, from, &bytes, &mut fx) {
                    if ping {
                        tally.stream_ping_bytes += response.len() as u64;
                    } else {
                        tally.stream_bytes += response.len() as u64;
                    }
                    seq += 1;
                    let at = now + latency(&mut rng);
                    queue.push(Ev {
                        at,
                        seq,
                        what: What::StreamResponse { to: from, from: to, bytes: response, ping },
                    });
                } else {
                    seq += 1;
                    let at = now + latency(&mut rng);
                    queue.push(Ev { at, seq, what: What::StreamFailed { node: from, to, ping } });
                }
                to
            }
            What::StreamResponse { to, from, bytes, ping } => {
                if !up[to] {
                    continue;
                }
                engine.stream_response(now, to, from, &bytes, ping, &mut fx);
                to
            }
            What::StreamFailed { node, to, ping } => {
                if !up[node] {
                    continue;
                }
                engine.stream_failed(now, node, to, ping, &mut fx);
                node
            }
        };
        for &member in &fx.dead {
            if member == crashed && crash_done {
                if !knows[node] {
                    knows[node] = true;
                    known += 1;
                    let since = (now - crash_at).as_secs_f64() / PERIOD.as_secs_f64();
                    tally.first_detection.get_or_insert(since);
                    if known == n - 1 {
                        tally.all_know = Some(since);
                    }
                }
            } else {
                tally.false_dead += 1;
            }
        }
        for &member in &fx.suspected {
            if member != crashed || !crash_done {
                tally.false_suspicions += 1;
            }
        }
        let early = now < PERIOD * 10;
        apply(node, now, &mut fx, &mut queue, &mut seq, &mut rng, loss, &mut tally, latency, early);
    }
    tally.node_periods += (n as u64 * periods) as f64;
    if let Some(text) = engine.breakdown() {
        eprintln!("n={n} loss={loss} seed={seed}: {text}");
    }
    tally.wall = started.elapsed();
    tally
}

// ---------------------------------------------------------------- gossamer

struct Gossamer {
    nodes: Vec<Option<Swim<ChaCha8Rng>>>,
    /// Every datagram sent, decoded and counted by kind (the breakdown).
    kinds: Kinds,
}

/// gossamer's datagrams by message and the updates they carry by kind,
/// counted by decoding what the cores send (issue #16: where one crash's
/// datagrams go).
#[derive(Default)]
struct Kinds {
    codec: Option<FrameCodec>,
    /// Datagrams by message: ping, ack, dedicated gossip, other.
    ping: u64,
    ack: u64,
    gossip: u64,
    other: u64,
    /// Updates carried, in dedicated gossip and piggybacked on the rest.
    gossip_updates: u64,
    piggybacked: u64,
    /// Updates by kind: alive, suspect, confirm (dead), leave, application.
    alive: u64,
    suspect: u64,
    confirm: u64,
    leave: u64,
    user: u64,
    /// Distinct (member, incarnation, accuser) suspicions and (member,
    /// incarnation, confirmer) deaths sent by anyone.
    suspects: std::collections::HashSet<(String, u64, String)>,
    confirms: std::collections::HashSet<(String, u64, String)>,
}

impl Kinds {
    fn count(&mut self, bytes: &[u8]) {
        let codec = self.codec.get_or_insert_with(|| FrameCodec::new(ClusterLabel::new("traffic").unwrap()));
        let Ok(packet) = codec.decode(bytes) else { return };
        let dedicated = matches!(packet.message, Message::Gossip);
        match packet.message {
            Message::Ping(_) => self.ping += 1,
            Message::Ack(_) => self.ack += 1,
            Message::Gossip => self.gossip += 1,
            _ => self.other += 1,
        }
        let n = packet.updates.len() as u64;
        if dedicated {
            self.gossip_updates += n;
        } else {
            self.piggybacked += n;
        }
        for update in &packet.updates {
            match update {
                Update::Alive(_) => self.alive += 1,
                Update::Suspect(s) => {
                    self.suspect += 1;
                    self.suspects.insert((s.node.to_string(), s.incarnation, s.from.to_string()));
                }
                Update::Confirm(c) => {
                    self.confirm += 1;
                    self.confirms.insert((c.node.to_string(), c.incarnation, c.from.to_string()));
                }
                Update::Leave(_) => self.leave += 1,
                _ => self.user += 1,
            }
        }
    }
}

impl Gossamer {
    fn drain(&mut self, node: usize, now: Duration, out: &mut Effects<Timer>) {
        let Some(core) = self.nodes[node].as_mut() else { return };
        // The fallback ping over a stream (a probe unanswered in time), as
        // the runtime and the simulator serve it.
        if let Some(ping) = core.poll_stream_ping() {
            out.streams.push((index(ping.to), ping.request.to_vec(), true));
        }
        while let Some(output) = core.poll_output() {
            match output {
                Output::Datagram { to, bytes } => {
                    self.kinds.count(&bytes);
                    out.datagrams.push((index(to), bytes.to_vec()))
                }
                Output::PushPull { to, request } => out.streams.push((index(to), request.to_vec(), false)),
                Output::SetTimer { at, timer } => out.timers.push((at.saturating_sub(now), timer)),
                Output::Event(Event::MemberFailed(m)) => out.dead.push(index(m.id.addr)),
                Output::Event(Event::MemberSuspected(m)) => out.suspected.push(index(m.id.addr)),
                _ => {}
            }
        }
    }
}

impl Engine for Gossamer {
    const NAME: &'static str = "gossamer";
    type Timer = Timer;

    fn start(n: usize, seed: u64, out: &mut Vec<Effects<Timer>>) -> Self {
        let ids: Vec<NodeId> = (0..n).map(|i| NodeId::new(node_name(i).parse().unwrap(), addr(i))).collect();
        let members: Vec<Member> = ids
            .iter()
            .map(|id| Member { id: id.clone(), incarnation: 0, status: MemberStatus::Alive, metadata: Metadata::new() })
            .collect();
        let codec = FrameCodec::new(ClusterLabel::new("traffic").unwrap());
        let base = std::env::var("RETRANSMIT_LOG_BASE").ok().and_then(|b| b.parse().ok()).unwrap_or(2);
        let mut config = Config { mtu: MTU, retransmit_log_base: base, ..Config::lan() };
        if let Some(copies) = std::env::var("RETIRE_AFTER_COPIES").ok().and_then(|c| c.parse().ok()) {
            config.retire_after_copies = copies;
        }
        let mut nodes = Vec::with_capacity(n);
        // One identity directory for every core (as the simulator does):
        // identical behaviour, n records instead of n² (10,000 nodes fit).
        let directory = IdentityDirectory::default();
        for (i, id) in ids.iter().enumerate() {
            let rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(i as u64));
            let mut core =
                Swim::with_directory(id.clone(), config.clone(), codec.clone(), rng, Duration::ZERO, directory.clone())
                    .unwrap();
            start_known(&mut core, &members);
            nodes.push(Some(core));
        }
        let mut g = Gossamer { nodes, kinds: Kinds::default() };
        for (i, fx) in out.iter_mut().enumerate() {
            g.drain(i, Duration::ZERO, fx);
        }
        g
    }

    fn datagram(&mut self, now: Duration, node: usize, from: usize, bytes: &[u8], out: &mut Effects<Timer>) {
        if let Some(core) = self.nodes[node].as_mut() {
            core.handle_datagram(now, addr(from), bytes);
        }
        self.drain(node, now, out);
    }

    fn timer(&mut self, now: Duration, node: usize, timer: Timer, out: &mut Effects<Timer>) {
        if let Some(core) = self.nodes[node].as_mut() {
            core.handle_timer(now, timer);
        }
        self.drain(node, now, out);
    }

    fn stream_request(
        &mut self,
        now: Duration,
        node: usize,
        from: usize,
        bytes: &[u8],
        out: &mut Effects<Timer>,
    ) -> Option<Vec<u8>> {
        let response = self.nodes[node].as_mut()?.handle_stream_request(now, addr(from), bytes);
        self.drain(node, now, out);
        response.map(|b| b.to_vec())
    }

    fn stream_response(
        &mut self,
        now: Duration,
        node: usize,
        from: usize,
        bytes: &[u8],
        ping: bool,
        out: &mut Effects<Timer>,
    ) {
        if let Some(core) = self.nodes[node].as_mut() {
            if ping {
                core.handle_stream_ping_response(now, addr(from), bytes);
            } else {
                core.handle_push_pull_response(now, addr(from), bytes);
            }
        }
        self.drain(node, now, out);
    }

    fn stream_failed(&mut self, now: Duration, node: usize, to: usize, ping: bool, out: &mut Effects<Timer>) {
        if let Some(core) = self.nodes[node].as_mut() {
            if ping {
                core.stream_ping_failed(now, addr(to));
            } else {
                core.push_pull_failed(now, addr(to));
            }
        }
        self.drain(node, now, out);
    }

    fn crash(&mut self, node: usize) {
        self.nodes[node] = None;
    }

    fn breakdown(&self) -> Option<String> {
        let (mut probe, mut ack, mut gossip, mut suspicions, mut refutations, mut updates) = (0, 0, 0, 0, 0, 0);
        let mut retired = 0;
        for m in self.nodes.iter().flatten().map(|c| c.metrics()) {
            probe += m.traffic_out.probe.messages;
            ack += m.traffic_out.ack.messages;
            gossip += m.traffic_out.gossip.messages;
            suspicions += m.suspicions;
            refutations += m.refutations;
            updates += m.updates_sent;
            retired += m.updates_retired_early;
        }
        let k = &self.kinds;
        Some(format!(
            "gossamer datagrams by kind: probe {probe}, ack {ack}, gossip {gossip}; updates sent {updates}, retired early {retired}; \
             suspicions raised {suspicions}, refutations {refutations}\n  decoded: ping {}, ack {}, gossip {}, \
             other {}; updates in gossip {}, piggybacked {}; by kind: alive {}, suspect {} ({} distinct accusations), \
             confirm {} ({} distinct), leave {}, application {}",
            k.ping,
            k.ack,
            k.gossip,
            k.other,
            k.gossip_updates,
            k.piggybacked,
            k.alive,
            k.suspect,
            k.suspects.len(),
            k.confirm,
            k.confirms.len(),
            k.leave,
            k.user
        ))
    }
}

/// A converged start: every member known alive, nothing gossiped about it.
fn start_known(core: &mut Swim<ChaCha8Rng>, members: &[Member]) {
    core.start_converged(Duration::ZERO, members.iter().cloned());
}

// -------------------------------------------------------------------- foca

#[path = "../shared/foca_id.rs"]
mod foca_id;
use foca_id::FocaId;

/// Collects what foca asks of its runtime.
struct Collect<'a>(&'a mut Effects<foca::Timer<FocaId>>);

impl Runtime<FocaId> for Collect<'_> {
    fn notify(&mut self, notification: Notification<'_, FocaId>) {
        if let Notification::MemberDown(id) = notification {
            self.0.dead.push(index(id.addr));
        }
    }

    fn send_to(&mut self, to: FocaId, data: &[u8]) {
        self.0.datagrams.push((index(to.addr), data.to_vec()));
    }

    fn submit_after(&mut self, event: foca::Timer<FocaId>, after: Duration) {
        self.0.timers.push((after, event));
    }
}

type FocaNode = Foca<FocaId, PostcardCodec, SmallRng, NoCustomBroadcast>;

struct FocaEngine {
    nodes: Vec<Option<FocaNode>>,
}

impl Engine for FocaEngine {
    const NAME: &'static str = "foca";
    type Timer = foca::Timer<FocaId>;

    fn start(n: usize, seed: u64, out: &mut Vec<Effects<Self::Timer>>) -> Self {
        let ids: Vec<FocaId> =
            (0..n).map(|i| FocaId { name: CompactString::from(node_name(i)), addr: addr(i) }).collect();
        let mut config = foca::Config::new_lan(NonZeroU32::new(n as u32).expect("n > 0"));
        config.max_packet_size = MTU.try_into().expect("non-zero");
        let mut nodes = Vec::with_capacity(n);
        for (i, id) in ids.iter().enumerate() {
            let rng = <SmallRng as rand_foca::SeedableRng>::seed_from_u64(
                seed.wrapping_mul(1_000_003).wrapping_add(i as u64),
            );
            let mut foca = Foca::new(id.clone(), config.clone(), rng, PostcardCodec);
            let members = ids.iter().filter(|m| *m != id).map(|m| FocaMember::new(m.clone(), 0, State::Alive));
            foca.apply_many(members, false, Collect(&mut out[i])).expect("members accepted");
            nodes.push(Some(foca));
        }
        FocaEngine { nodes }
    }

    fn datagram(&mut self, _now: Duration, node: usize, _from: usize, bytes: &[u8], out: &mut Effects<Self::Timer>) {
        if let Some(foca) = self.nodes[node].as_mut() {
            let _ = foca.handle_data(bytes, Collect(out));
        }
    }

    fn timer(&mut self, _now: Duration, node: usize, timer: Self::Timer, out: &mut Effects<Self::Timer>) {
        if let Some(foca) = self.nodes[node].as_mut() {
            let _ = foca.handle_timer(timer, Collect(out));
        }
    }

    fn crash(&mut self, node: usize) {
        self.nodes[node] = None;
    }
}

// -------------------------------------------------------------------- main

fn list<T: std::str::FromStr>(value: &str) -> Vec<T>
where
    T::Err: std::fmt::Debug,
{
    value.split(',').map(|v| v.trim().parse().expect("a number")).collect()
}

fn report(engine: &str, spec: &Run, t: &Tally) {
    let np = t.node_periods;
    let fmt = |v: Option<f64>| v.map_or("never".to_owned(), |v| format!("{v:.2}"));
    println!(
        "| {engine} | {} | {:.0}% | {} | {:.2} | {:.0} | {:.2} | {:.3} | {:.0} | {:.3} | {:.0} | {} | {} | {} | {} | {:.1} s |",
        spec.n,
        spec.loss * 100.0,
        spec.seed,
        t.datagrams as f64 / np,
        t.datagram_bytes as f64 / np,
        t.early_datagrams as f64 / (spec.n as f64 * 10.0),
        t.streams as f64 / np,
        t.stream_bytes as f64 / np,
        t.stream_pings as f64 / np,
        (t.datagram_bytes + t.stream_bytes + t.stream_ping_bytes) as f64 / np,
        fmt(t.first_detection),
        fmt(t.all_know),
        t.false_dead,
        if engine == "foca" { "-".to_owned() } else { t.false_suspicions.to_string() },
        t.wall.as_secs_f64(),
    );
}

/// The accuracy gate: `scenario` (a simulator file) run once per seed,
/// printing live members declared dead and suspected, and the traffic.
fn gate(scenario: &str, seeds: &[u64]) {
    println!(
        "| scenario | seed | passed | live declared dead | suspicions of live | msgs/member-period | B/member-period |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let (mut dead, mut runs) = (0, 0);
    for &seed in seeds {
        let mut text = std::fs::read_to_string(scenario).expect("a readable scenario");
        if let Ok(base) = std::env::var("RETRANSMIT_LOG_BASE") {
            assert!(text.contains("[protocol]\n"), "the scenario needs a [protocol] table");
            text = text.replace("[protocol]\n", &format!("[protocol]\nretransmit_log_base = {base}\n"));
        }
        let mut s = gossamer_sim::Scenario::from_toml(&text).expect("a valid scenario");
        s.seed = seed;
        let r = gossamer_sim::Simulation::new(s).expect("a runnable scenario").run();
        println!(
            "| {} | {seed} | {} | {} | {} | {:.2} | {:.0} |",
            r.scenario,
            r.passed,
            r.accuracy.false_positives,
            r.accuracy.false_suspicions,
            r.traffic.msgs_per_member_per_period,
            r.traffic.bytes_per_member_per_period
        );
        dead += r.accuracy.false_positives;
        runs += 1;
    }
    println!("{runs} runs of {scenario}: {dead} live members declared dead");
}

fn main() {
    let mut scenario = None;
    let mut nodes = vec![128usize, 1_000];
    let mut losses = vec![0.0f64, 0.1];
    let mut seeds = vec![1u64];
    let mut periods = 60u64;
    let mut engine = "both".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--nodes" => nodes = list(&value),
            "--loss" => losses = list(&value),
            "--seeds" => {
                seeds = match value.split_once("..") {
                    Some((a, b)) => (a.parse().unwrap()..b.parse().unwrap()).collect(),
                    None => list(&value),
                }
            }
            "--periods" => periods = value.parse().expect("a number"),
            "--engine" => engine = value,
            "--scenario" => scenario = Some(value),
            other => panic!("unknown argument {other}"),
        }
    }
    if let Some(file) = scenario {
        gate(&file, &seeds);
        return;
    }
    println!(
        "| engine | nodes | loss | seed | datagrams/node-period | datagram B/node-period | datagrams/node-period, periods 0-10 | push-pulls/node-period | push-pull B/node-period | stream pings/node-period | all B/node-period | first detection (periods) | all know (periods) | live declared dead | suspicions of live | wall |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for &n in &nodes {
        for &loss in &losses {
            for &seed in &seeds {
                let spec = Run { n, loss, seed, periods };
                if engine == "both" || engine == Gossamer::NAME {
                    report(Gossamer::NAME, &spec, &run::<Gossamer>(&spec));
                }
                if engine == "both" || engine == FocaEngine::NAME {
                    report(FocaEngine::NAME, &spec, &run::<FocaEngine>(&spec));
                }
            }
        }
    }
}
