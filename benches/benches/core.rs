//! Protocol core costs: datagrams handled per second by one `Swim` on the
//! ping → ack path (decode, merge piggybacked updates, answer with queued
//! updates packed into the MTU), at 16, 1,000 and 100,000 members; and the
//! dissemination queue's select-and-pack cost with a deep backlog; member
//! lookup by name; one protocol period of a node whose probes are answered
//! (the probe-list walk, ping out, ack in, timers); and the merge of a
//! periodic push-pull that agrees with this node's view. Also prints the
//! live heap per known member (counting allocator) once the dissemination
//! queue has drained.
//!
//! Targets (2-core machine): ≥ 2 M messages/s per core on the steady ping →
//! ack path; ≤ 200 bytes of steady-state memory per known member.
//! `cargo bench -p gossamer-benches --bench core -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gossamer_benches::counting::{live_bytes, Counting};
use gossamer_core::{Config, Output, Swim, Time, Timer};
use gossamer_wire::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SIZES: [usize; 3] = [16, 1_000, 100_000];

fn id(i: usize) -> NodeId {
    let ip = format!("10.{}.{}.{}", i / 62_500, (i / 250) % 250, i % 250 + 1);
    NodeId::new(format!("node-{i}@{ip}").parse().unwrap(), format!("{ip}:7946").parse().unwrap())
}

fn codec() -> FrameCodec {
    FrameCodec::new(ClusterLabel::new("prod").unwrap())
}

type Core = Swim<ChaCha8Rng>;

/// A core (node 0) that knows `n` members (itself included), learned in
/// one push-pull exchange; its dissemination queue is left full.
fn core_with_members(n: usize) -> Core {
    core_with_members_and_timers(n).0
}

/// As [`core_with_members`], with the timers it asked for.
fn core_with_members_and_timers(n: usize) -> (Core, Vec<(Time, Timer)>) {
    let mut core = Swim::new(id(0), Config::lan(), codec(), ChaCha8Rng::seed_from_u64(1), Duration::ZERO).unwrap();
    let members = (1..n)
        .map(|i| MemberState { node: id(i), incarnation: 1, status: MemberStatus::Alive, metadata: Metadata::new() })
        .collect();
    let state = PushPull { join: false, members, app_state: Vec::new(), user_ltime: 0 };
    let stream = codec().with_max_frame_len(DEFAULT_MAX_STREAM_FRAME).unwrap();
    let mut frame = BytesMut::new();
    stream.encode(&Packet::new(Message::PushPullRequest(state)), &mut frame).unwrap();
    core.handle_push_pull_request(Duration::ZERO, id(1).addr, &frame).unwrap();
    let mut timers = Vec::new();
    while let Some(output) = core.poll_output() {
        if let Output::SetTimer { at, timer } = output {
            timers.push((at, timer));
        }
    }
    assert_eq!(core.members().count(), n);
    (core, timers)
}

fn ping_frame(seq: u32, updates: Vec<Update>) -> BytesMut {
    let ping = Message::Ping(Ping { seq, target: id(0).name, from: id(1) });
    let mut buf = BytesMut::new();
    codec().encode(&Packet { message: ping, updates }, &mut buf).unwrap();
    buf
}

/// Handles one ping and drains the outputs (the ack); returns its size.
fn ping_ack(core: &mut Core, from: SocketAddr, frame: &[u8]) -> usize {
    core.handle_datagram(Duration::from_secs(1), from, frame);
    let mut bytes = 0;
    while let Some(output) = core.poll_output() {
        if let gossamer_core::Output::Datagram { bytes: b, .. } = output {
            bytes += b.len();
        }
    }
    bytes
}

/// Sends pings until the dissemination queue is empty (steady state).
fn drain_queue(core: &mut Core) {
    let frame = ping_frame(1, Vec::new());
    let from = id(1).addr;
    while core.metrics().queued_updates > 0 {
        ping_ack(core, from, &frame);
    }
}

fn bench_ping_ack(c: &mut Criterion) {
    let mut group = c.benchmark_group("core/ping_ack");
    group.throughput(Throughput::Elements(1));
    let from = id(1).addr;
    for n in SIZES {
        // Steady state: nothing to disseminate, the ack goes out bare.
        // (Set-up is lazy so that a filter skips it.)
        let mut steady: Option<Core> = None;
        let frame = ping_frame(7, Vec::new());
        group.bench_function(BenchmarkId::new("steady", n), |b| {
            let core = steady.get_or_insert_with(|| {
                let mut core = core_with_members(n);
                drain_queue(&mut core);
                core
            });
            b.iter(|| black_box(ping_ack(core, from, black_box(&frame))))
        });

        // Churn: every ping piggybacks 4 fresh updates (new incarnations of
        // random members), which the core merges, queues and forwards on
        // its acks. Frames are prepared outside the timed section.
        let mut churn: Option<Core> = None;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut incarnation = 2u64;
        group.bench_function(BenchmarkId::new("piggyback", n), |b| {
            let core = churn.get_or_insert_with(|| {
                let mut core = core_with_members(n);
                drain_queue(&mut core);
                core
            });
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let chunk = left.min(4096);
                    left -= chunk;
                    let frames: Vec<_> = (0..chunk)
                        .map(|s| {
                            incarnation += 1;
                            let updates = (0..4)
                                .map(|_| {
                                    let who = rng.random_range(1..n);
                                    Update::Alive(Alive { node: id(who), incarnation, metadata: Metadata::new() })
                                })
                                .collect();
                            ping_frame(s as u32, updates)
                        })
                        .collect();
                    let start = Instant::now();
                    for frame in &frames {
                        black_box(ping_ack(core, from, frame));
                    }
                    total += start.elapsed();
                }
                total
            })
        });
        if let Some(core) = &churn {
            let m = core.metrics();
            eprintln!(
                "core/ping_ack/piggyback n={n}: {} updates piggybacked per ack on average, queue {}",
                format_args!("{:.1}", m.updates_sent as f64 / m.messages_out.max(1) as f64),
                m.queued_updates
            );
        }
    }
    group.finish();
}

/// Select-and-pack: the queue holds a deep backlog (every member's join),
/// so each ack is filled to the MTU. Compare with `steady` for the packing
/// cost alone.
fn bench_pack(c: &mut Criterion) {
    let mut group = c.benchmark_group("core/select_and_pack");
    group.throughput(Throughput::Elements(1));
    let from = id(1).addr;
    let frame = ping_frame(7, Vec::new());
    for n in [1_000, 100_000] {
        let mut backlog: Option<(Core, u64, u64)> = None;
        group.bench_function(BenchmarkId::new("full_mtu_ack", n), |b| {
            let (core, _, _) = backlog.get_or_insert_with(|| {
                let core = core_with_members(n);
                let m = core.metrics();
                (core, m.updates_sent, m.messages_out)
            });
            b.iter(|| {
                if core.metrics().queued_updates < 64 {
                    *core = core_with_members(n);
                }
                black_box(ping_ack(core, from, black_box(&frame)))
            })
        });
        if let Some((core, updates, messages)) = &backlog {
            let m = core.metrics();
            eprintln!(
                "core/select_and_pack n={n}: {:.1} updates per ack",
                (m.updates_sent.saturating_sub(*updates)) as f64
                    / (m.messages_out.saturating_sub(*messages)).max(1) as f64
            );
        }
    }
    group.finish();
}

/// Live heap per known member once the queue drained (printed, not timed).
fn memory_per_member(_: &mut Criterion) {
    for n in SIZES {
        let base = live_bytes();
        let mut core = core_with_members(n);
        drain_queue(&mut core);
        let live = live_bytes() - base;
        eprintln!("core/memory n={n}: {live} bytes live, {:.0} bytes per member", live as f64 / n as f64);
        black_box(&core);
    }
}

/// Member lookup by name (`Swim::member`), names drawn at random from the
/// members so that at 100,000 the index and slots miss the cache as they
/// do in a large cluster.
fn bench_lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("core/member_lookup");
    group.throughput(Throughput::Elements(1));
    for n in SIZES {
        let core = core_with_members(n);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let names: Vec<NodeName> = (0..4096).map(|_| id(rng.random_range(0..n)).name).collect();
        let mut i = 0;
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                i = (i + 1) % names.len();
                black_box(core.member(black_box(&names[i])).is_some())
            })
        });
    }
    group.finish();
}

/// A node driven through its own timers, its probes answered: a stand-in
/// for the network hands each ping's target an ack frame straight back.
struct Driven {
    core: Core,
    timers: Vec<(Time, Timer)>,
    now: Time,
    codec: FrameCodec,
    packet: Packet,
    scratch: Vec<u8>,
    ack: BytesMut,
}

impl Driven {
    fn new(n: usize) -> Self {
        let (core, timers) = core_with_members_and_timers(n);
        let mut driven = Self {
            core,
            timers,
            now: Duration::from_secs(1),
            codec: codec(),
            packet: Packet::new(Message::Gossip),
            scratch: Vec::new(),
            ack: BytesMut::new(),
        };
        // Empty the dissemination queue (the push-pull's news) as
        // `drain_queue` does, keeping the timers the core asks for.
        let ping = ping_frame(1, Vec::new());
        while driven.core.metrics().queued_updates > 0 {
            driven.core.handle_datagram(driven.now, id(1).addr, &ping);
            driven.drain();
        }
        driven
    }

    fn drain(&mut self) {
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::SetTimer { at, timer } => self.timers.push((at, timer)),
                Output::Datagram { to, bytes } => {
                    self.codec.decode_into(&bytes, &mut self.scratch, &mut self.packet).expect("own frame");
                    if let Message::Ping(ping) = &self.packet.message {
                        let ack = Packet::new(Message::Ack(Ack { seq: ping.seq, from: ping.target.clone() }));
                        self.ack.clear();
                        self.codec.encode(&ack, &mut self.ack).expect("ack");
                        self.core.handle_datagram(self.now, to, &self.ack);
                    }
                }
                Output::PushPull { to, .. } => self.core.push_pull_failed(self.now, to),
                Output::Event(_) | Output::User(_) => {}
            }
        }
    }

    /// Runs the timers due until `until`.
    fn run_until(&mut self, until: Time) {
        while let Some(next) = self
            .timers
            .iter()
            .enumerate()
            .filter(|(_, (at, _))| *at <= until)
            .min_by_key(|(_, (at, _))| *at)
            .map(|(i, _)| i)
        {
            let (at, timer) = self.timers.swap_remove(next);
            self.now = self.now.max(at);
            self.core.handle_timer(self.now, timer);
            self.drain();
        }
        self.now = until;
    }
}

/// One protocol period (1 s, LAN preset) of a node whose probes are all
/// answered: the probe timer walks the probe list and pings one member,
/// the ack comes back, the probe-timeout timer finds nothing to do; the
/// gossip timer sleeps (nothing queued). Includes the stand-in network's
/// decoding of the ping and encoding of the ack.
fn bench_protocol_period(c: &mut Criterion) {
    let mut group = c.benchmark_group("core/protocol_period");
    group.throughput(Throughput::Elements(1));
    let period = Config::lan().probe_interval;
    for n in SIZES {
        let mut driven = Driven::new(n);
        let probes = driven.core.metrics().probes;
        driven.run_until(driven.now + period * 10);
        assert!(driven.core.metrics().probes >= probes + 9, "the node probes once a period");
        let suspicions = driven.core.metrics().suspicions;
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                let until = driven.now + period;
                driven.run_until(until);
            })
        });
        assert_eq!(driven.core.metrics().suspicions, suspicions, "every probe was answered");
    }
    group.finish();
}

/// A periodic push-pull from a peer whose view is this node's own (the
/// steady state): decode `n` members, merge each (no news), encode the
/// response with this node's `n`.
fn bench_push_pull_merge(c: &mut Criterion) {
    let mut group = c.benchmark_group("core/push_pull_merge");
    group.sample_size(20);
    for n in [1_000, 10_000] {
        group.throughput(Throughput::Elements(n as u64));
        let mut core = core_with_members(n);
        drain_queue(&mut core);
        // This node's own view, the sender first: nothing in it is news.
        let state_of = |m: &gossamer_core::Member| MemberState {
            node: m.id.clone(),
            incarnation: m.incarnation,
            status: m.status,
            metadata: m.metadata.clone(),
        };
        let sender = core.member(&id(1).name).map(state_of).expect("member 1");
        let members =
            std::iter::once(sender).chain(core.members().filter(|m| m.id.name != id(1).name).map(state_of)).collect();
        let state = PushPull { join: false, members, app_state: Vec::new(), user_ltime: 0 };
        let stream = codec().with_max_frame_len(DEFAULT_MAX_STREAM_FRAME).unwrap();
        let mut frame = BytesMut::new();
        stream.encode(&Packet::new(Message::PushPullRequest(state)), &mut frame).unwrap();
        let from = id(1).addr;
        let now = Duration::from_secs(2);
        let response = core.handle_push_pull_request(now, from, &frame).expect("answered");
        assert!(response.len() > n * 20, "the response lists every member");
        while core.poll_output().is_some() {}
        assert_eq!(core.metrics().queued_updates, 0, "an agreeing view is no news");
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                let response = core.handle_push_pull_request(now, from, black_box(&frame));
                while core.poll_output().is_some() {}
                black_box(response)
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    memory_per_member,
    bench_ping_ack,
    bench_pack,
    bench_lookup,
    bench_protocol_period,
    bench_push_pull_merge
);
criterion_main!(benches);
