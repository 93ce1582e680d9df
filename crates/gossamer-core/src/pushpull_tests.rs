//! Push-pull deltas (issue #16): two cores driven by hand through the
//! digest exchange, its fallbacks and hostile digests.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use gossamer_wire::{
    Alive, ClusterLabel, Confirm, FrameCodec, MemberState, MemberStatus, Message, Metadata, NodeId, NodeName, Packet,
    PushPullDelta, PushPullDigest, Update, DEFAULT_MAX_STREAM_FRAME, MAX_DIGEST_BUCKETS,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::pushpull::digest_buckets;
use crate::{Config, Output, Signal, Swim, Time};

type Core = Swim<ChaCha8Rng>;

fn codec() -> FrameCodec {
    FrameCodec::new(ClusterLabel::new("delta").unwrap())
}

fn stream_codec() -> FrameCodec {
    codec().with_max_frame_len(DEFAULT_MAX_STREAM_FRAME).unwrap()
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn id(n: &str, port: u16) -> NodeId {
    NodeId::new(n.parse().unwrap(), addr(port))
}

fn name(n: &str) -> NodeName {
    n.parse().unwrap()
}

const A: u16 = 1;
const B: u16 = 2;

/// `Config::lan()` with push-pull deltas on.
fn config() -> Config {
    Config { push_pull_deltas: true, ..Config::lan() }
}

fn core(me: &str, port: u16) -> Core {
    let mut c = Swim::new(id(me, port), config(), codec(), ChaCha8Rng::seed_from_u64(port.into()), Time::ZERO).unwrap();
    drain(&mut c);
    c
}

fn drain(core: &mut Core) -> Vec<Output> {
    std::iter::from_fn(|| core.poll_output()).collect()
}

fn alive(core: &mut Core, n: &str, port: u16, incarnation: u64) {
    let update = Update::Alive(Alive { node: id(n, port), incarnation, metadata: Metadata::new() });
    core.apply_update(Time::ZERO, update);
    drain(core);
}

fn dead(core: &mut Core, n: &str, incarnation: u64) {
    let update = Update::Confirm(Confirm { node: name(n), incarnation, from: name("x") });
    core.apply_update(Time::ZERO, update);
    drain(core);
}

/// Two cores `a` and `b` that know each other and the same `n` others
/// (`m0`.. at ports 100..), all alive at incarnation 1.
fn pair(n: u16) -> (Core, Core) {
    let (mut a, mut b) = (core("a", A), core("b", B));
    alive(&mut a, "b", B, 0);
    alive(&mut b, "a", A, 0);
    for i in 0..n {
        let member = format!("m{i}");
        alive(&mut a, &member, 100 + i, 1);
        alive(&mut b, &member, 100 + i, 1);
    }
    (a, b)
}

/// The stream requests a core asked its driver for.
fn requests(outputs: Vec<Output>) -> Vec<(SocketAddr, Bytes)> {
    outputs
        .into_iter()
        .filter_map(|o| match o {
            Output::PushPull { to, request } => Some((to, request)),
            _ => None,
        })
        .collect()
}

fn message(frame: &[u8]) -> Message {
    stream_codec().decode(frame).unwrap().message
}

fn delta(frame: &[u8]) -> PushPullDelta {
    match message(frame) {
        Message::PushPullDelta(d) => *d,
        other => panic!("not a delta: {other:?}"),
    }
}

fn frame(message: Message) -> Vec<u8> {
    let mut buf = BytesMut::new();
    stream_codec().encode(&Packet::new(message), &mut buf).unwrap();
    buf.to_vec()
}

/// Byte counts of one digest exchange `a` → `b`, run to the end: the
/// digest, its answer, and (if any) `a`'s part and `b`'s acknowledgement.
struct Exchange {
    digest: usize,
    answer: PushPullDelta,
    answer_len: usize,
    part: Option<PushPullDelta>,
    part_len: usize,
    ack_len: usize,
}

fn exchange(a: &mut Core, b: &mut Core) -> Exchange {
    a.start_digest(addr(B));
    let mut out = requests(drain(a));
    assert_eq!(out.len(), 1);
    let (to, request) = out.remove(0);
    assert_eq!(to, addr(B));
    assert!(matches!(message(&request), Message::PushPullDigest(_)));
    let response = b.handle_push_pull_request(Time::ZERO, addr(A), &request).expect("a digest is answered");
    a.handle_push_pull_response(Time::ZERO, addr(B), &response);
    let mut parts = requests(drain(a));
    let answer = delta(&response);
    let (mut part, mut part_len, mut ack_len) = (None, 0, 0);
    if let Some((to, request)) = parts.pop() {
        assert!(parts.is_empty() && to == addr(B));
        let ack = b.handle_push_pull_request(Time::ZERO, addr(A), &request).expect("a part is acknowledged");
        let acked = delta(&ack);
        assert_eq!((acked.buckets, acked.members.len()), (0, 1), "the acknowledgement is b's own state");
        a.handle_push_pull_response(Time::ZERO, addr(B), &ack);
        assert!(requests(drain(a)).is_empty(), "an acknowledgement is the end");
        part_len = request.len();
        ack_len = ack.len();
        part = Some(delta(&request));
    }
    drain(b);
    Exchange { digest: request.len(), answer, answer_len: response.len(), part, part_len, ack_len }
}

fn full_len(core: &mut Core) -> usize {
    core.start_push_pull(addr(B), false);
    requests(drain(core)).pop().unwrap().1.len()
}

#[test]
fn identical_tables_exchange_only_the_digest() {
    let (mut a, mut b) = pair(1000);
    let full = full_len(&mut a);
    let x = exchange(&mut a, &mut b);
    assert!(x.answer.differing.iter().all(|&byte| byte == 0), "nothing differs");
    assert_eq!(x.answer.members.len(), 1, "only b's own state");
    assert_eq!(x.answer.members[0].node, id("b", B));
    assert!(x.part.is_none(), "nothing to send back");
    // 1,002 members: 64 buckets of 4 bytes, against ~35 bytes a member.
    assert_eq!(digest_buckets(1002), 64);
    assert!(x.digest < 400 && x.answer_len < 100, "digest {} answer {}", x.digest, x.answer_len);
    assert!(full > 20 * x.digest, "full {full}, digest {}", x.digest);
    assert_eq!(a.metrics().push_pull_digests, 1);
    assert_eq!(a.metrics().push_pull_full_fallbacks + b.metrics().push_pull_full_fallbacks, 0);
}

#[test]
fn differing_members_cross_each_way_and_nothing_more() {
    let (mut a, mut b) = pair(1000);
    alive(&mut a, "m7", 107, 9); // a has news of m7
    alive(&mut b, "new", 99, 1); // b knows a member a does not
    let x = exchange(&mut a, &mut b);
    // b's answer: its members in two buckets (~16 each), not 1,000.
    let answered: Vec<_> = x.answer.members.iter().map(|m| m.node.name.to_string()).collect();
    assert!(answered.contains(&"new".to_string()) && answered.contains(&"m7".to_string()), "{answered:?}");
    assert!(x.answer.members.len() < 80, "{} members answered", x.answer.members.len());
    // a's part: its own state and m7 at 9, nothing b listed alike.
    let part = x.part.expect("a sends m7 back");
    let sent: Vec<_> = part.members.iter().map(|m| (m.node.name.to_string(), m.incarnation)).collect();
    assert_eq!(sent, vec![("a".to_string(), 0), ("m7".to_string(), 9)]);
    assert!(x.part_len < 200, "{} bytes", x.part_len);
    // Both now hold the other's news.
    assert_eq!(a.member(&name("new")).map(|m| m.status), Some(MemberStatus::Alive));
    assert_eq!(b.member(&name("m7")).map(|m| m.incarnation), Some(9));
    // And the next exchange is a bare digest again.
    let again = exchange(&mut a, &mut b);
    assert_eq!(again.answer.members.len(), 1);
    assert!(again.part.is_none());
}

#[test]
fn tables_far_apart_fall_back_to_full_views_each_way() {
    // b has just joined a: it knows only a.
    let (mut a, _) = pair(200);
    let mut b = core("b", B);
    alive(&mut b, "a", A, 0);
    a.set_signals(true);
    b.set_signals(true);
    let x = exchange(&mut a, &mut b);
    assert!(x.answer.is_full(), "b's answer is its whole table");
    let part = x.part.expect("a sends its whole table");
    assert!(part.is_full());
    assert_eq!(part.members.len(), 202);
    assert_eq!(b.members().count(), 202, "b learnt everyone");
    assert_eq!(b.metrics().push_pull_full_fallbacks, 1);
}

#[test]
fn a_partial_answer_revealing_a_split_is_not_merged_but_exchanged_whole() {
    let (mut a, mut b) = pair(1000);
    // Each holds dead a member the other holds alive: a split.
    dead(&mut a, "m1", 1);
    dead(&mut b, "m2", 1);
    a.set_signals(true);
    a.start_digest(addr(B));
    let request = requests(drain(&mut a)).pop().unwrap().1;
    let response = b.handle_push_pull_request(Time::ZERO, addr(A), &request).unwrap();
    assert!(!delta(&response).is_full(), "two buckets differ of 64");
    a.handle_push_pull_response(Time::ZERO, addr(B), &response);
    let out = requests(drain(&mut a));
    assert_eq!(out.len(), 1);
    match message(&out[0].1) {
        Message::PushPullRequest(state) => assert_eq!(state.members.len(), 1002, "a full view follows"),
        other => panic!("expected a full push-pull, got {other:?}"),
    }
    assert_eq!(a.member(&name("m2")).map(|m| m.status), Some(MemberStatus::Alive), "the part was not merged");
    assert!(
        !std::iter::from_fn(|| a.poll_signal()).any(|s| matches!(s, Signal::RemoteView { .. })),
        "no view reported from a part"
    );
}

#[test]
fn joins_and_full_mode_still_send_the_whole_table() {
    let (mut a, _) = pair(50);
    a.start_push_pull(addr(B), true);
    match message(&requests(drain(&mut a)).pop().unwrap().1) {
        Message::PushPullRequest(state) => assert!(state.join && state.members.len() == 52),
        other => panic!("{other:?}"),
    }
    // Without deltas the periodic exchange is the full table too.
    let mut config = Config::lan();
    config.push_pull_deltas = false;
    let mut c = Swim::new(id("c", 3), config, codec(), ChaCha8Rng::seed_from_u64(3), Time::ZERO).unwrap();
    alive(&mut c, "a", A, 0);
    c.periodic_push_pull(Time::ZERO);
    match message(&requests(drain(&mut c)).pop().unwrap().1) {
        Message::PushPullRequest(state) => assert_eq!(state.members.len(), 2),
        other => panic!("{other:?}"),
    }
    // With them it is a digest.
    a.periodic_push_pull(Time::ZERO);
    assert!(matches!(message(&requests(drain(&mut a)).pop().unwrap().1), Message::PushPullDigest(_)));
}

fn digest_of(hashes: Vec<u8>) -> Vec<u8> {
    let sender =
        MemberState { node: id("h", 66), incarnation: 0, status: MemberStatus::Alive, metadata: Metadata::new() };
    frame(Message::PushPullDigest(Box::new(PushPullDigest { sender, hashes, app_state: vec![], user_ltime: 0 })))
}

#[test]
fn hostile_digests_are_refused_and_bounded() {
    let (_, mut b) = pair(100);
    let hostile = addr(66);
    for hashes in [vec![0; 4 * 6], vec![0; 4 * 8 + 3], vec![], vec![0; 4 * 2 * MAX_DIGEST_BUCKETS]] {
        let before = b.metrics().rejected;
        assert!(b.handle_push_pull_request(Time::ZERO, hostile, &digest_of(hashes)).is_none());
        assert_eq!(b.metrics().rejected, before + 1);
    }
    assert!(b.member(&name("h")).is_none(), "nothing of a refused digest is merged");
    // The largest digest allowed is answered with at most b's table.
    let answer = b.handle_push_pull_request(Time::ZERO, hostile, &digest_of(vec![0xab; 4 * MAX_DIGEST_BUCKETS]));
    let answer = delta(&answer.expect("a valid digest is answered"));
    assert!(answer.is_full() && answer.members.len() == b.members().count());
    assert!(b.member(&name("h")).is_some(), "a valid digest's sender is merged");
    // Bogus bitmaps are refused, in either direction.
    let sender =
        MemberState { node: id("g", 66), incarnation: 0, status: MemberStatus::Alive, metadata: Metadata::new() };
    let bogus = |buckets: u32, differing: Vec<u8>, members: Vec<MemberState>| {
        frame(Message::PushPullDelta(Box::new(PushPullDelta {
            buckets,
            differing,
            members,
            app_state: vec![],
            user_ltime: 0,
        })))
    };
    for (buckets, bits, members) in [
        (16, vec![0xff], vec![sender.clone()]),
        (12, vec![0xff, 0xff], vec![sender.clone()]),
        (u32::MAX, vec![], vec![sender.clone()]),
        (8, vec![0xff], vec![]),
    ] {
        let before = b.metrics().rejected;
        assert!(b
            .handle_push_pull_request(Time::ZERO, hostile, &bogus(buckets, bits.clone(), members.clone()))
            .is_none());
        b.handle_push_pull_response(Time::ZERO, hostile, &bogus(buckets, bits, members));
        assert_eq!(b.metrics().rejected, before + 2);
    }
    assert!(b.member(&name("g")).is_none(), "nothing of a refused delta is merged");
    // An answer nobody asked for is merged like any view, but never
    // makes this node send its table back.
    b.handle_push_pull_response(Time::ZERO, hostile, &bogus(8, vec![0xff], vec![sender.clone()]));
    assert!(requests(drain(&mut b)).is_empty());
    // More members than max_push_pull_members: refused whole.
    let mut config = config();
    config.max_push_pull_members = 4;
    let mut c = Swim::new(id("c", 3), config, codec(), ChaCha8Rng::seed_from_u64(3), Time::ZERO).unwrap();
    let many = alive_states("f", 200, 5, 0);
    assert!(c.handle_push_pull_request(Time::ZERO, hostile, &bogus(0, vec![], many)).is_none());
    assert_eq!(c.metrics().push_pulls_refused, 1);
    assert_eq!(c.members().count(), 1);
}

#[test]
fn an_answer_for_another_bucket_count_is_merged_without_a_part() {
    let (mut a, b) = pair(100);
    alive(&mut a, "m3", 103, 5);
    a.start_digest(addr(B));
    drain(&mut a);
    // b answers as if asked with 4 buckets (a asked with 8).
    assert_eq!(digest_buckets(102), 8);
    let sender = b.members().find(|m| m.id.name == name("b")).unwrap().clone();
    let state = MemberState { node: sender.id, incarnation: 0, status: MemberStatus::Alive, metadata: Metadata::new() };
    let answer =
        PushPullDelta { buckets: 4, differing: vec![0x0f], members: vec![state], app_state: vec![], user_ltime: 0 };
    a.handle_push_pull_response(Time::ZERO, addr(B), &frame(Message::PushPullDelta(Box::new(answer))));
    assert!(requests(drain(&mut a)).is_empty(), "no part for an answer that does not match the digest");
    assert_eq!(a.metrics().rejected, 0, "well formed: merged");
}

/// Two cores of `n + 2` members set up for `case` (see [`push_pull_bytes`]).
fn bench_pair(n: u16, case: &str) -> (Core, Core) {
    let (mut a, mut b) = pair(n);
    match case {
        "one member changed" => alive(&mut a, "m5", 105, 7),
        "partition heal" => {
            // Each half holds the other dead.
            for i in 0..n {
                let member = format!("m{i}");
                if i % 2 == 0 {
                    dead(&mut a, &member, 1);
                } else {
                    dead(&mut b, &member, 1);
                }
            }
        }
        _ => {}
    }
    (a, b)
}

/// Bytes of one periodic exchange, full views against digest and deltas,
/// at 128, 1,000 and 10,000 members: converged tables, one member
/// changed, and two halves that each hold the other dead (a partition
/// heal's first exchange). Figures for BENCHMARKS.md:
/// `cargo test -p gossamer-core --release --lib push_pull_bytes -- --ignored --nocapture`
#[test]
#[ignore = "measurement; prints figures"]
fn push_pull_bytes() {
    println!("members | case | full views (request + answer) | deltas (digest + answer + part + ack) | ratio");
    for n in [126u16, 998, 9_998] {
        for case in ["converged", "one member changed", "partition heal"] {
            let (mut a, mut b) = bench_pair(n, case);
            a.start_push_pull(addr(B), false);
            let request = requests(drain(&mut a)).pop().unwrap().1;
            let response = b.handle_push_pull_request(Time::ZERO, addr(A), &request).unwrap();
            let full = request.len() + response.len();
            let (mut a, mut b) = bench_pair(n, case);
            let x = exchange(&mut a, &mut b);
            let total = x.digest + x.answer_len + x.part_len + x.ack_len;
            println!(
                "{} | {case} | {full} ({} + {}) | {total} ({} + {} + {} + {}) | {:.3}",
                n + 2,
                request.len(),
                response.len(),
                x.digest,
                x.answer_len,
                x.part_len,
                x.ack_len,
                total as f64 / full as f64
            );
        }
    }
}

/// `n` members alive at `incarnation`, named `{prefix}0`.. at ports
/// `first_port`..
fn alive_states(prefix: &str, first_port: u16, n: u16, incarnation: u64) -> Vec<MemberState> {
    (0..n)
        .map(|i| MemberState {
            node: id(&format!("{prefix}{i}"), first_port + i),
            incarnation,
            status: MemberStatus::Alive,
            metadata: Metadata::new(),
        })
        .collect()
}

/// A push-pull request listing `n` members new to the receiver (`j0`.. at
/// ports 1000..), its sender first.
fn view_of_newcomers(n: u16) -> Vec<u8> {
    let members = alive_states("j", 1000, n, 1);
    frame(Message::PushPullRequest(gossamer_wire::PushPull {
        join: false,
        members,
        app_state: Vec::new(),
        user_ltime: 0,
    }))
}

/// The push-pull timers among `outputs`, with their times.
fn push_pull_timers(outputs: &[Output]) -> Vec<(Time, crate::Timer)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::SetTimer { at, timer }
                if matches!(
                    timer.0,
                    crate::timer::TimerKind::Periodic { task: crate::timer::Periodic::PushPull, .. }
                ) =>
            {
                Some((*at, timer.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Issue #16, joins without a cliff: a node that learns of many members at
/// once (here 300 in one view; 2,000 nodes joining together, in the real
/// case) gossips none of them past the burst threshold: it would send each
/// `retransmit_limit` times from every node. It leaves them to push-pull,
/// and once no new member has come for two probe intervals runs its own
/// push-pulls, two, one every two probe intervals; then the usual interval.
#[test]
fn a_join_burst_is_left_to_push_pull_and_followed_by_two_push_pulls() {
    use crate::burst::BURST_SYNCS;
    let mut a = core("a", A);
    let burst_joins = a.config().join_burst;
    let queued_before = a.metrics().queued_updates;
    a.handle_push_pull_request(Time::ZERO, addr(1000), &view_of_newcomers(300)).unwrap();
    let outputs = drain(&mut a);
    let m = a.metrics();
    assert_eq!(m.alive, 301, "every newcomer is a member");
    assert_eq!(m.joins_left_to_push_pull, 300 - u64::from(burst_joins));
    assert_eq!(m.queued_updates, queued_before + burst_joins as usize, "only the first ones are gossiped");
    let probe = a.config().probe_interval;
    let (mut at, mut timer) = push_pull_timers(&outputs).pop().expect("push-pull timer re-armed");
    assert_eq!(at, 2 * probe, "two quiet probe intervals after the last newcomer");
    let mut last = at;
    for sync in 0..BURST_SYNCS {
        assert!(a.burst.syncing());
        a.handle_timer(at, timer);
        let outputs = drain(&mut a);
        assert_eq!(requests(outputs.clone()).len(), 1, "push-pull {sync} of the burst");
        last = at;
        (at, timer) = push_pull_timers(&outputs).pop().expect("re-armed");
    }
    assert_eq!(last, 2 * probe + 2 * probe * (BURST_SYNCS - 1), "one every two probe intervals");
    assert!(!a.burst.syncing(), "then the usual interval, from a random phase: {at:?}");
    assert!(at > last);
}

/// A few members new at once (fewer than the burst threshold in a probe
/// interval), or a whole small cluster (up to `BURST_MIN_MEMBERS`), are
/// gossiped as every join was before: nothing is left to push-pull and
/// the push-pull timer keeps its interval.
#[test]
fn a_few_joins_or_a_small_cluster_are_gossiped_as_before() {
    for (newcomers, members) in [(10, 1), (200, 1), (10, 400)] {
        let mut a = core("a", A);
        for i in 0..members {
            // Known already, ten every two probe intervals: no burst.
            let at = Time::from_secs(2 * u64::from(i / 10));
            let update = Update::Alive(Alive {
                node: id(&format!("m{i}"), 5000 + i),
                incarnation: 1,
                metadata: Metadata::new(),
            });
            a.apply_update(at, update);
        }
        drain(&mut a);
        let (queued_before, alive_before) = (a.metrics().queued_updates, a.metrics().alive);
        let now = Time::from_secs(10_000);
        a.handle_push_pull_request(now, addr(1000), &view_of_newcomers(newcomers)).unwrap();
        let outputs = drain(&mut a);
        let m = a.metrics();
        assert_eq!(
            (m.alive, m.joins_left_to_push_pull),
            (alive_before + newcomers as usize, 0),
            "{newcomers} new of {members}"
        );
        assert_eq!(m.queued_updates, queued_before + newcomers as usize);
        assert!(push_pull_timers(&outputs).iter().all(|&(at, _)| at > now + 10 * a.config().probe_interval));
    }
}
