//! gossamer side by side with foca (crates.io, the Rust SWIM library), the
//! same workload through both in one run (issue #8: target ≥ 2× foca).
//!
//! Workload: one node that knows `n` members (16 or 1,000) handles pings
//! from a peer and produces the acks, outputs drained after every ping.
//! - `steady`: nothing left to disseminate, acks go out bare;
//! - `piggyback`: every ping carries 4 fresh `Alive` updates (a new
//!   incarnation of random members), which the node merges, queues and
//!   piggybacks on its acks, filled up to the packet size.
//!
//! Kept equal between the two: the cluster size; the member identity
//! (a `name@ip` string of the same length plus a socket address: foca gets
//! an identity type holding exactly gossamer's `NodeId` data); the updates
//! per ping; the packet size limit (1,400 bytes); the retransmission limit
//! of an update (gossamer's `4 × ceil(log2(n + 1))`, set as foca's
//! `max_transmissions`); the pre-encoded input frames, prepared outside
//! the timed section; the drain of every datagram (gossamer hands out a
//! `Bytes`, foca lends a slice that the bench's runtime copies into a
//! reused buffer, as a socket send would read it). Not equal: gossamer's
//! frames also carry a cluster label and a CRC32 (integrity checks foca
//! leaves to the transport); foca encodes with postcard (its own codec
//! feature), gossamer with its wire codec. No encryption on either side.
//!
//! The ratio is printed by a self-timed pass that alternates the two
//! engines in short rounds (best round each, so that load from other jobs
//! on the machine hits both alike); criterion then times each one. Memory
//! per known member (counting allocator, live heap once the queue drained)
//! and allocations per message are printed as well.
//! `cargo bench -p gossamer-benches --bench versus_foca -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroU8};
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use compact_str::CompactString;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use foca::{Codec as _, Foca, Header, Member, NoCustomBroadcast, PostcardCodec, Runtime, State};
use gossamer_benches::counting::{allocations, live_bytes, Counting};
use gossamer_core::{Config, Output, Swim};
use gossamer_wire::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_foca::rngs::SmallRng;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SIZES: [usize; 2] = [16, 1_000];
/// Fresh updates carried by each ping of the `piggyback` workload.
const UPDATES_PER_PING: usize = 4;
/// Packet size limit of both engines.
const MTU: usize = 1_400;
/// gossamer's LAN retransmission multiplier.
const RETRANSMIT_MULT: u32 = 4;
/// Frames prepared per batch, outside the timed section.
const BATCH: usize = 4_096;
/// foca's incarnations are 16-bit: engines are rebuilt (untimed) before
/// the shared incarnation counter gets there.
const MAX_INCARNATION: u64 = 60_000;

fn name(i: usize) -> String {
    let ip = format!("10.{}.{}.{}", i / 62_500, (i / 250) % 250, i % 250 + 1);
    format!("node-{i}@{ip}")
}

fn addr(i: usize) -> SocketAddr {
    format!("10.{}.{}.{}:7946", i / 62_500, (i / 250) % 250, i % 250 + 1).parse().unwrap()
}

/// gossamer's limit on sends of one update with `n` members.
fn retransmit_limit(n: usize) -> u32 {
    RETRANSMIT_MULT * (usize::BITS - n.leading_zeros())
}

/// One engine under test: a node (index 0) that knows `n` members and
/// answers pings from member 1.
trait Engine: Sized {
    const NAME: &'static str;
    type Frame;
    fn new(n: usize) -> Self;
    /// A ping from member 1 carrying `Alive` updates for `(member, incarnation)`.
    fn ping(&self, seq: u32, updates: &[(usize, u64)]) -> Self::Frame;
    /// Handles one ping and drains what it produced; returns the bytes sent.
    fn handle(&mut self, frame: &Self::Frame) -> usize;
    /// Updates still queued for dissemination.
    fn backlog(&self) -> usize;
    /// Heap the bench itself holds in the engine (its identity list), left
    /// out of the memory per member.
    fn bench_heap(&self) -> usize;
}

// ---------------------------------------------------------------- gossamer

struct Gossamer {
    core: Swim<ChaCha8Rng>,
    codec: FrameCodec,
    peer: SocketAddr,
    ids: Vec<NodeId>,
}

fn gossamer_codec() -> FrameCodec {
    FrameCodec::new(ClusterLabel::new("bench").unwrap())
}

impl Engine for Gossamer {
    const NAME: &'static str = "gossamer";
    type Frame = BytesMut;

    fn new(n: usize) -> Self {
        let ids: Vec<NodeId> = (0..n).map(|i| NodeId::new(name(i).parse().unwrap(), addr(i))).collect();
        let config = Config { mtu: MTU, retransmit_mult: RETRANSMIT_MULT, ..Config::lan() };
        let codec = gossamer_codec();
        let mut core = Swim::new(ids[0].clone(), config, codec.clone(), ChaCha8Rng::seed_from_u64(1), Duration::ZERO)
            .expect("valid configuration");
        // The members arrive in one push-pull exchange (the usual join).
        let members = ids[1..]
            .iter()
            .map(|node| MemberState {
                node: node.clone(),
                incarnation: 1,
                status: MemberStatus::Alive,
                metadata: Metadata::new(),
            })
            .collect();
        let state = PushPull { join: false, members, app_state: Vec::new(), user_ltime: 0 };
        let stream = codec.clone().with_max_frame_len(DEFAULT_MAX_STREAM_FRAME).unwrap();
        let mut frame = BytesMut::new();
        stream.encode(&Packet::new(Message::PushPullRequest(state)), &mut frame).unwrap();
        core.handle_push_pull_request(Duration::ZERO, ids[1].addr, &frame).expect("accepted");
        while core.poll_output().is_some() {}
        assert_eq!(core.members().count(), n);
        Self { core, codec, peer: ids[1].addr, ids }
    }

    fn ping(&self, seq: u32, updates: &[(usize, u64)]) -> BytesMut {
        let ping = Message::Ping(Ping { seq, target: self.ids[0].name.clone(), from: self.ids[1].clone() });
        let updates = updates
            .iter()
            .map(|&(i, incarnation)| {
                Update::Alive(Alive { node: self.ids[i].clone(), incarnation, metadata: Metadata::new() })
            })
            .collect();
        let mut buf = BytesMut::new();
        self.codec.encode(&Packet { message: ping, updates }, &mut buf).unwrap();
        buf
    }

    #[inline(never)]
    fn handle(&mut self, frame: &BytesMut) -> usize {
        self.core.handle_datagram(Duration::from_secs(1), self.peer, frame);
        let mut sent = 0;
        while let Some(output) = self.core.poll_output() {
            if let Output::Datagram { bytes, .. } = output {
                sent += bytes.len();
            }
        }
        sent
    }

    fn backlog(&self) -> usize {
        self.core.metrics().queued_updates
    }

    fn bench_heap(&self) -> usize {
        self.ids.capacity() * std::mem::size_of::<NodeId>()
    }
}

// -------------------------------------------------------------------- foca

#[path = "../shared/foca_id.rs"]
mod foca_id;
use foca_id::FocaId;

fn foca_id(i: usize) -> FocaId {
    FocaId { name: CompactString::from(name(i)), addr: addr(i) }
}

/// The driver's side of foca: datagrams are copied out (as a socket send
/// would read them), timers and notifications are ignored (no time passes).
#[derive(Default)]
struct Sink {
    sent: usize,
    out: Vec<u8>,
}

impl Runtime<FocaId> for Sink {
    fn notify(&mut self, _: foca::Notification<'_, FocaId>) {}

    fn send_to(&mut self, _: FocaId, data: &[u8]) {
        self.out.clear();
        self.out.extend_from_slice(data);
        self.sent += black_box(&self.out).len();
    }

    fn submit_after(&mut self, _: foca::Timer<FocaId>, _: Duration) {}
}

struct FocaEngine {
    foca: Foca<FocaId, PostcardCodec, SmallRng, NoCustomBroadcast>,
    sink: Sink,
    ids: Vec<FocaId>,
}

impl Engine for FocaEngine {
    const NAME: &'static str = "foca";
    type Frame = Vec<u8>;

    fn new(n: usize) -> Self {
        let ids: Vec<FocaId> = (0..n).map(foca_id).collect();
        let mut config = foca::Config::new_lan(NonZeroU32::new(n as u32).expect("n > 0"));
        config.max_packet_size = MTU.try_into().expect("non-zero");
        config.max_transmissions = NonZeroU8::new(retransmit_limit(n) as u8).expect("non-zero");
        let rng = <SmallRng as rand_foca::SeedableRng>::seed_from_u64(1);
        let mut foca = Foca::new(ids[0].clone(), config, rng, PostcardCodec);
        let mut sink = Sink::default();
        let members = ids[1..].iter().map(|id| Member::new(id.clone(), 1, State::Alive));
        foca.apply_many(members, true, &mut sink).expect("members accepted");
        assert_eq!(foca.iter_members().count(), n - 1, "foca lists the others");
        Self { foca, sink, ids }
    }

    fn ping(&self, seq: u32, updates: &[(usize, u64)]) -> Vec<u8> {
        let header = Header {
            src: self.ids[1].clone(),
            src_incarnation: 0,
            dst: self.ids[0].clone(),
            message: foca::Message::Ping(seq as u8),
        };
        let mut codec = PostcardCodec;
        let mut buf = Vec::with_capacity(MTU);
        codec.encode_header(&header, &mut buf).unwrap();
        buf.put_u16(updates.len() as u16);
        for &(i, incarnation) in updates {
            let member = Member::new(self.ids[i].clone(), incarnation as u16, State::Alive);
            codec.encode_member(&member, &mut buf).unwrap();
        }
        buf
    }

    #[inline(never)]
    fn handle(&mut self, frame: &Vec<u8>) -> usize {
        let before = self.sink.sent;
        self.foca.handle_data(frame, &mut self.sink).expect("a valid ping");
        self.sink.sent - before
    }

    fn backlog(&self) -> usize {
        self.foca.updates_backlog()
    }

    fn bench_heap(&self) -> usize {
        self.ids.capacity() * std::mem::size_of::<FocaId>() + self.sink.out.capacity()
    }
}

// --------------------------------------------------------------- workload

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Workload {
    Steady,
    Piggyback,
}

impl Workload {
    fn label(self) -> &'static str {
        match self {
            Workload::Steady => "steady",
            Workload::Piggyback => "piggyback",
        }
    }
}

/// An engine in steady state plus the generator of its input frames; the
/// update choices come from a seeded RNG, identical for both engines.
struct Rig<E: Engine> {
    engine: E,
    n: usize,
    workload: Workload,
    rng: ChaCha8Rng,
    incarnation: u64,
    seq: u32,
    steady_frame: E::Frame,
}

impl<E: Engine> Rig<E> {
    fn new(n: usize, workload: Workload) -> Self {
        let engine = E::new(n);
        let steady_frame = engine.ping(7, &[]);
        let mut rig =
            Self { engine, n, workload, rng: ChaCha8Rng::seed_from_u64(3), incarnation: 1, seq: 0, steady_frame };
        rig.drain();
        rig
    }

    /// Pings until the dissemination queue is empty (the joins are out).
    fn drain(&mut self) {
        while self.engine.backlog() > 0 {
            self.engine.handle(&self.steady_frame);
        }
    }

    /// The next `count` frames (untimed).
    fn frames(&mut self, count: usize) -> Vec<E::Frame> {
        if self.workload == Workload::Piggyback && self.incarnation + count as u64 >= MAX_INCARNATION {
            self.engine = E::new(self.n);
            self.incarnation = 1;
            self.drain();
        }
        let mut updates = Vec::with_capacity(UPDATES_PER_PING);
        (0..count)
            .map(|_| {
                self.seq = self.seq.wrapping_add(1);
                updates.clear();
                if self.workload == Workload::Piggyback {
                    self.incarnation += 1;
                    for _ in 0..UPDATES_PER_PING {
                        // Not 0 (the node itself) nor 1 (the pinging peer).
                        updates.push((self.rng.random_range(2..self.n), self.incarnation));
                    }
                }
                self.engine.ping(self.seq, &updates)
            })
            .collect()
    }

    /// Handles `frames`; returns the time taken and the bytes sent.
    /// (Not inlined: `valgrind --tool=callgrind --toggle-collect='*Rig*run*'`
    /// counts the instructions of the timed section only.)
    #[inline(never)]
    fn run(&mut self, frames: &[E::Frame]) -> (Duration, usize) {
        let start = Instant::now();
        let mut sent = 0;
        for frame in frames {
            sent += self.engine.handle(black_box(frame));
        }
        (start.elapsed(), sent)
    }
}

/// Best-of-rounds throughput (messages/s), bytes per ack and allocations
/// per message of one engine, measured in rounds interleaved with the other.
struct Tally {
    best: f64,
    bytes: usize,
    messages: usize,
    allocations: u64,
}

impl Tally {
    fn new() -> Self {
        Self { best: 0.0, bytes: 0, messages: 0, allocations: 0 }
    }

    fn round<E: Engine>(&mut self, rig: &mut Rig<E>, frames: usize) {
        let batch = rig.frames(frames);
        let allocated = allocations();
        let (took, sent) = rig.run(&batch);
        self.allocations += allocations() - allocated;
        self.best = self.best.max(frames as f64 / took.as_secs_f64());
        self.bytes += sent;
        self.messages += frames;
    }
}

/// The side-by-side pass: alternating rounds, the ratio printed.
fn ratio(_: &mut Criterion) {
    // Fewer rounds (e.g. 1) for a run under callgrind.
    let rounds: usize = std::env::var("VERSUS_FOCA_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(7);
    for workload in [Workload::Steady, Workload::Piggyback] {
        for n in SIZES {
            // One case only, e.g. `VERSUS_FOCA_ONLY=steady/n=16` (callgrind).
            let case = format!("{}/n={n}", workload.label());
            if std::env::var("VERSUS_FOCA_ONLY").is_ok_and(|only| only != case) {
                continue;
            }
            let frames = if workload == Workload::Steady { 50_000 } else { 10_000 };
            let mut g = Rig::<Gossamer>::new(n, workload);
            let mut f = Rig::<FocaEngine>::new(n, workload);
            // One untimed round each to warm caches and buffers.
            let (mut gt, mut ft) = (Tally::new(), Tally::new());
            gt.round(&mut g, frames / 10);
            ft.round(&mut f, frames / 10);
            let (mut gt, mut ft) = (Tally::new(), Tally::new());
            for _ in 0..rounds {
                gt.round(&mut g, frames);
                ft.round(&mut f, frames);
            }
            for (label, t) in [(Gossamer::NAME, &gt), (FocaEngine::NAME, &ft)] {
                eprintln!(
                    "versus_foca/{}/n={n} {label:>8}: {:>6.2} M msg/s (best of {rounds}), {:.0} B per ack, {:.3} allocations per message",
                    workload.label(),
                    t.best / 1e6,
                    t.bytes as f64 / t.messages as f64,
                    t.allocations as f64 / t.messages as f64,
                );
            }
            eprintln!("versus_foca/{}/n={n} ratio gossamer/foca: {:.2}", workload.label(), gt.best / ft.best);
        }
    }
}

/// Live heap per known member once the dissemination queue drained.
fn memory_per_member(_: &mut Criterion) {
    fn measure<E: Engine>(n: usize) -> f64 {
        let base = live_bytes();
        let rig = Rig::<E>::new(n, Workload::Steady);
        let live = live_bytes() - base - rig.engine.bench_heap() as isize;
        black_box(&rig);
        live as f64 / n as f64
    }
    // Under callgrind (`VERSUS_FOCA_ROUNDS` set) the large size is skipped:
    // foca's set-up is quadratic in the member count.
    let quick = std::env::var_os("VERSUS_FOCA_ROUNDS").is_some();
    for n in [1_000, 20_000] {
        if quick && n > 1_000 {
            continue;
        }
        let g = measure::<Gossamer>(n);
        let f = measure::<FocaEngine>(n);
        eprintln!("versus_foca/memory n={n}: gossamer {g:.0} B per member, foca {f:.0} B per member");
    }
}

fn bench_engine<E: Engine>(c: &mut Criterion, workload: Workload) {
    let mut group = c.benchmark_group(format!("versus_foca/{}", workload.label()));
    group.throughput(Throughput::Elements(1));
    for n in SIZES {
        let mut rig: Option<Rig<E>> = None;
        group.bench_function(BenchmarkId::new(E::NAME, n), |b| {
            let rig = rig.get_or_insert_with(|| Rig::new(n, workload));
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters as usize;
                while left > 0 {
                    let chunk = left.min(BATCH);
                    left -= chunk;
                    let frames = rig.frames(chunk);
                    total += rig.run(&frames).0;
                }
                total
            })
        });
    }
    group.finish();
}

fn criterion_runs(c: &mut Criterion) {
    for workload in [Workload::Steady, Workload::Piggyback] {
        bench_engine::<Gossamer>(c, workload);
        bench_engine::<FocaEngine>(c, workload);
    }
}

criterion_group!(benches, memory_per_member, ratio, criterion_runs);
criterion_main!(benches);
