//! Zero allocations per message on the steady-state ping → ack path
//! (issue #8), checked with a counting global allocator.
//!
//! "Steady state": the members are known and the dissemination queue has
//! drained, so acks go out bare. Two loops:
//! - a responder that knows 1,000 members answers pings (decode, ack
//!   encode, `Output::Datagram`), and the prober's side handles the acks;
//! - two nodes driven through their own timers for hundreds of protocol
//!   periods (probe timer → ping → ack → probe acked, gossip ticks), the
//!   way a runtime drives them.
//!
//! And the steady state of dissemination: every ping carries fresh `Alive`
//! updates (new incarnations of known members), the responder merges and
//! queues them and its acks go out filled with piggybacked updates, which
//! the prober merges in turn. Decoding reuses one packet and queued updates
//! are encoded once into slots that keep their buffers, so this allocates
//! nothing per message either.
//!
//! The outgoing `Bytes` of each datagram is split from the core's reusable
//! `BytesMut`; once the driver has dropped the previous datagrams the
//! buffer reclaims its allocation, so no allocation is needed per message.

mod counting;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use counting::{allocations, Counting};
use gossamer_core::{Config, Output, Swim, Time, Timer};
use gossamer_wire::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

type Core = Swim<ChaCha8Rng>;

/// Pending timers: when, a serial number for ties, which node, the timer.
type Timers = Vec<(Time, u64, usize, Timer)>;

fn id(i: usize) -> NodeId {
    let ip = format!("10.{}.{}.{}", i / 62_500, (i / 250) % 250, i % 250 + 1);
    NodeId::new(format!("node-{i}@{ip}").parse().unwrap(), format!("{ip}:7946").parse().unwrap())
}

fn codec() -> FrameCodec {
    FrameCodec::new(ClusterLabel::new("alloc").unwrap())
}

/// Push-pull (full state, one big frame) legitimately allocates; push it
/// far out so that the measured window holds probes and gossip only.
fn config() -> Config {
    Config {
        push_pull_interval: Duration::from_secs(3600),
        reconnect_interval: Duration::from_secs(3600),
        ..Config::lan()
    }
}

fn core(i: usize, now: Time) -> Core {
    Swim::new(id(i), config(), codec(), ChaCha8Rng::seed_from_u64(i as u64 + 1), now).unwrap()
}

/// `core` learns `0..n` (everyone but itself) in one push-pull request;
/// its outputs are left for the caller.
fn learn(core: &mut Core, n: usize, now: Time) {
    let me = core.local().name.clone();
    let members = (0..n)
        .map(id)
        .filter(|node| node.name != me)
        .map(|node| MemberState { node, incarnation: 0, status: MemberStatus::Alive, metadata: Metadata::new() })
        .collect();
    let stream = codec().with_max_frame_len(DEFAULT_MAX_STREAM_FRAME).unwrap();
    let mut frame = BytesMut::new();
    let state = PushPull { join: false, members, app_state: Vec::new(), user_ltime: 0 };
    stream.encode(&Packet::new(Message::PushPullRequest(state)), &mut frame).unwrap();
    core.handle_push_pull_request(now, id(n).addr, &frame).unwrap();
}

/// The datagrams in `core`'s outputs (other outputs dropped).
fn datagrams(core: &mut Core, out: &mut Vec<(SocketAddr, Bytes)>) {
    while let Some(output) = core.poll_output() {
        if let Output::Datagram { to, bytes } = output {
            out.push((to, bytes));
        }
    }
}

#[test]
fn answering_pings_allocates_nothing_per_message() {
    const N: usize = 1_000;
    const K: u32 = 10_000;
    let now = Duration::from_secs(1);
    let (mut responder, mut prober) = (core(0, Time::ZERO), core(1, Time::ZERO));
    learn(&mut responder, N, Time::ZERO);
    learn(&mut prober, 2, Time::ZERO);
    while responder.poll_output().is_some() || prober.poll_output().is_some() {}
    let frames: Vec<BytesMut> = (0..K)
        .map(|seq| {
            let mut frame = BytesMut::new();
            let ping = Message::Ping(Ping { seq, target: id(0).name, from: id(1) });
            codec().encode(&Packet::new(ping), &mut frame).unwrap();
            frame
        })
        .collect();
    let (responder_addr, prober_addr) = (id(0).addr, id(1).addr);
    let mut out = Vec::with_capacity(16);
    let mut exchange = |responder: &mut Core, prober: &mut Core, frame: &[u8]| {
        responder.handle_datagram(now, prober_addr, frame);
        datagrams(responder, &mut out);
        for (_, ack) in out.drain(..) {
            prober.handle_datagram(now, responder_addr, &ack);
        }
        datagrams(prober, &mut out);
        out.clear();
    };
    // Warm up: drain the responder's queue (the joins it learnt), let
    // buffers reach their size. The prober only receives.
    let mut warm = 0;
    while responder.metrics().queued_updates > 0 || warm < 100 {
        exchange(&mut responder, &mut prober, &frames[0]);
        warm += 1;
        assert!(warm < 100_000, "queues never drained");
    }

    let before = (responder.metrics(), prober.metrics(), allocations());
    for frame in &frames {
        exchange(&mut responder, &mut prober, frame);
    }
    let allocated = allocations() - before.2;
    let (r, p) = (responder.metrics(), prober.metrics());
    let messages = (r.messages_in - before.0.messages_in) + (p.messages_in - before.1.messages_in);
    assert_eq!(messages, 2 * u64::from(K), "every ping answered and every ack handled");
    assert_eq!(r.messages_out - before.0.messages_out, u64::from(K));
    assert_eq!(r.updates_sent, before.0.updates_sent, "steady state: acks go out bare");
    assert_eq!(r.rejected + p.rejected, 0, "every frame decoded");
    eprintln!("{messages} messages (ping + ack) at {N} members: {allocated} allocations");
    assert_eq!(allocated, 0, "{:.4} allocations per message", allocated as f64 / messages as f64);
}

/// Two nodes driven by their own timers (a tiny driver with a timer heap),
/// as a runtime would, for many protocol periods.
#[test]
fn protocol_periods_between_two_nodes_allocate_nothing() {
    const PERIODS: u64 = 300;
    let mut nodes = [core(0, Time::ZERO), core(1, Time::ZERO)];
    learn(&mut nodes[0], 2, Time::ZERO);
    learn(&mut nodes[1], 2, Time::ZERO);
    let mut timers: Timers = Vec::with_capacity(64);
    let mut in_flight: Vec<(usize, SocketAddr, Bytes)> = Vec::with_capacity(64);
    let mut serial = 0u64;
    let mut push_pulls = 0u64;
    let addrs = [id(0).addr, id(1).addr];
    // Drain node `i`'s outputs into the heap and the in-flight list.
    let mut drain =
        |nodes: &mut [Core; 2], i: usize, timers: &mut Timers, in_flight: &mut Vec<(usize, SocketAddr, Bytes)>| {
            while let Some(output) = nodes[i].poll_output() {
                match output {
                    Output::Datagram { to, bytes } => {
                        let dest = usize::from(to == addrs[1]);
                        in_flight.push((dest, addrs[i], bytes));
                    }
                    Output::SetTimer { at, timer } => {
                        serial += 1;
                        timers.push((at, serial, i, timer));
                    }
                    Output::PushPull { .. } => push_pulls += 1,
                    _ => {}
                }
            }
        };
    for i in 0..2 {
        drain(&mut nodes, i, &mut timers, &mut in_flight);
    }
    // Runs virtual time up to `until`; datagrams are delivered at once.
    let mut run =
        |nodes: &mut [Core; 2], timers: &mut Timers, in_flight: &mut Vec<(usize, SocketAddr, Bytes)>, until: Time| {
            // The earliest timer (a linear scan: a handful are outstanding).
            while let Some(next) = (0..timers.len()).min_by_key(|&k| (timers[k].0, timers[k].1)) {
                if timers[next].0 > until {
                    break;
                }
                let (at, _, i, timer) = timers.swap_remove(next);
                nodes[i].handle_timer(at, timer);
                drain(nodes, i, timers, in_flight);
                while let Some((dest, from, bytes)) = in_flight.pop() {
                    nodes[dest].handle_datagram(at, from, &bytes);
                    drop(bytes);
                    drain(nodes, dest, timers, in_flight);
                }
            }
        };
    // Warm up past the joins' dissemination and the buffers' growth.
    let mut now = Duration::from_secs(60);
    run(&mut nodes, &mut timers, &mut in_flight, now);
    for node in &nodes {
        let m = node.metrics();
        assert!(m.queued_updates == 0 && m.alive == 2, "not settled after the warm-up: {m:?}");
    }

    let before: Vec<_> = nodes.iter().map(|n| n.metrics()).collect();
    let allocated_before = allocations();
    now += Duration::from_secs(PERIODS);
    run(&mut nodes, &mut timers, &mut in_flight, now);
    let allocated = allocations() - allocated_before;
    let after: Vec<_> = nodes.iter().map(|n| n.metrics()).collect();
    let messages: u64 = (0..2).map(|i| after[i].messages_in - before[i].messages_in).sum();
    let probes: u64 = (0..2).map(|i| after[i].probes - before[i].probes).sum();
    eprintln!(
        "{PERIODS} periods: {probes} probes, {messages} messages, {allocated} allocations, {push_pulls} push-pulls"
    );
    assert!(probes >= 2 * PERIODS - 2, "both nodes probe every period ({probes} probes)");
    assert!(messages >= 2 * probes, "every probe's ping and ack were handled ({messages} messages)");
    assert!(after.iter().all(|m| m.suspicions == 0 && m.alive == 2 && m.rejected == 0), "nobody suspected");
    assert_eq!(push_pulls, 0, "no push-pull in the window");
    assert_eq!(allocated, 0, "{:.4} allocations per message", allocated as f64 / messages as f64);
}

/// Pings carrying fresh updates, acks carrying piggybacked ones: the
/// dissemination queues never drain, and still nothing is allocated per
/// message once the queues have reached their size.
fn piggybacked_updates_allocate_nothing(n: usize) {
    const K: u32 = 4_000;
    const UPDATES_PER_PING: usize = 4;
    let now = Duration::from_secs(1);
    let (mut responder, mut prober) = (core(0, Time::ZERO), core(1, Time::ZERO));
    learn(&mut responder, n, Time::ZERO);
    learn(&mut prober, n, Time::ZERO);
    while responder.poll_output().is_some() || prober.poll_output().is_some() {}
    // Fresh incarnations of members 2.. (neither node itself), chosen by a
    // small LCG; the frames are prepared before anything is counted.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut pick = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        2 + (state >> 33) as usize % (n - 2)
    };
    let frame = |seq: u32, pick: &mut dyn FnMut() -> usize| {
        let ping = Message::Ping(Ping { seq, target: id(0).name, from: id(1) });
        let updates = (0..UPDATES_PER_PING)
            .map(|_| {
                let node = id(pick());
                Update::Alive(Alive { node, incarnation: u64::from(seq) + 1, metadata: Metadata::new() })
            })
            .collect();
        let mut buf = BytesMut::new();
        codec().encode(&Packet { message: ping, updates }, &mut buf).unwrap();
        buf
    };
    let warm_up: Vec<BytesMut> = (0..K).map(|seq| frame(seq, &mut pick)).collect();
    let frames: Vec<BytesMut> = (K..2 * K).map(|seq| frame(seq, &mut pick)).collect();
    let (responder_addr, prober_addr) = (id(0).addr, id(1).addr);
    let mut out = Vec::with_capacity(16);
    let mut exchange = |responder: &mut Core, prober: &mut Core, frame: &[u8]| {
        responder.handle_datagram(now, prober_addr, frame);
        datagrams(responder, &mut out);
        for (_, ack) in out.drain(..) {
            prober.handle_datagram(now, responder_addr, &ack);
        }
        datagrams(prober, &mut out);
        out.clear();
    };
    // Warm up with the same kind of traffic: every member's slot, the
    // buckets and the buffers reach their size.
    for frame in &warm_up {
        exchange(&mut responder, &mut prober, frame);
    }

    let before = (responder.metrics(), prober.metrics(), allocations());
    for frame in &frames {
        exchange(&mut responder, &mut prober, frame);
    }
    let allocated = allocations() - before.2;
    let (r, p) = (responder.metrics(), prober.metrics());
    let messages = (r.messages_in - before.0.messages_in) + (p.messages_in - before.1.messages_in);
    let piggybacked = r.updates_sent - before.0.updates_sent;
    assert_eq!(messages, 2 * u64::from(K), "every ping answered and every ack handled");
    assert_eq!(r.rejected + p.rejected, 0, "every frame decoded");
    assert!(r.queued_updates > 0, "the responder is still disseminating");
    assert!(piggybacked >= u64::from(K) * UPDATES_PER_PING as u64, "acks carry updates ({piggybacked} in {K} acks)");
    assert!(p.queued_updates > 0, "the prober merged the piggybacked updates and queued them on");
    eprintln!(
        "{messages} messages (ping with {UPDATES_PER_PING} updates + ack with {:.1} on average) at {n} members: \
         {allocated} allocations",
        piggybacked as f64 / f64::from(K)
    );
    assert_eq!(allocated, 0, "{:.4} allocations per message", allocated as f64 / messages as f64);
}

#[test]
fn piggybacked_updates_allocate_nothing_per_message_at_16_members() {
    piggybacked_updates_allocate_nothing(16);
}

#[test]
fn piggybacked_updates_allocate_nothing_per_message_at_1000_members() {
    piggybacked_updates_allocate_nothing(1_000);
}
