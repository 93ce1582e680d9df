//! Application data over the membership layer (issue #10): broadcasts,
//! queries, push-pull state, and the packet share reserved for them.

mod common;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{name, Net};
use gossamer_core::{Config, Output, Swim, Time, UserError, UserEvent};
use gossamer_wire::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn seed(base: u64) -> u64 {
    base + std::env::var("GOSSAMER_CORE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0) * 1000
}

/// Broadcasts node `i` delivered: (origin, key, version, payload).
fn broadcasts(net: &Net, i: usize) -> Vec<(NodeName, String, u64, Bytes)> {
    net.nodes[i]
        .user
        .iter()
        .filter_map(|(_, e)| match e {
            UserEvent::Broadcast { origin, key, version, payload } => {
                Some((origin.clone(), key.to_string(), *version, payload.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn every_broadcast_is_delivered_exactly_once_everywhere() {
    const N: usize = 30;
    let mut net = Net::converged_cluster(N, seed(101), Config::local());
    for i in 0..N {
        net.with_core(i, |core, now| {
            assert_eq!(core.broadcast(now, &format!("hello/{i}"), i.to_le_bytes().to_vec()).unwrap(), 1);
        });
    }
    let everywhere = |net: &Net| (0..N).all(|j| broadcasts(net, j).len() == N - 1);
    assert!(net.run_until_cond(Duration::from_secs(60), everywhere), "not every broadcast reached every node");
    // Let the retransmissions run out: still exactly once, and the queues drain.
    net.run_for(Duration::from_secs(20));
    for j in 0..N {
        let got = broadcasts(&net, j);
        assert_eq!(got.len(), N - 1, "node {j}");
        let mut origins: Vec<_> = got.iter().map(|(o, ..)| o.clone()).collect();
        origins.sort();
        origins.dedup();
        assert_eq!(origins.len(), N - 1, "node {j}: one delivery per origin");
        for (origin, key, version, payload) in got {
            let i = (0..N).find(|&i| name(i) == origin).unwrap();
            assert_ne!(i, j, "a node does not deliver its own broadcast");
            assert_eq!((key, version, &payload[..]), (format!("hello/{i}"), 1, &i.to_le_bytes()[..]));
        }
        let metrics = net.core(j).metrics();
        assert_eq!(metrics.user_items_delivered, N as u64 - 1);
        assert_eq!(metrics.queued_user_items, 0, "node {j}: queue drained");
        assert!(metrics.user_items_sent > 0);
        assert_eq!(metrics.user_items_dropped, 0);
    }
    assert!(net.converged(), "membership unaffected");
}

#[test]
fn a_newer_version_replaces_the_pending_one_and_is_delivered_once() {
    let mut net = Net::converged_cluster(6, seed(102), Config::local());
    net.with_core(0, |core, now| {
        assert_eq!(core.broadcast(now, "config", b"v1".to_vec()).unwrap(), 1);
        assert_eq!(core.broadcast(now, "config", b"v2".to_vec()).unwrap(), 2);
        assert_eq!(core.metrics().queued_user_items, 1, "v2 replaced v1 in the queue");
    });
    net.run_for(Duration::from_secs(10));
    for j in 1..6 {
        let got = broadcasts(&net, j);
        assert_eq!(got, vec![(name(0), "config".to_string(), 2, Bytes::from_static(b"v2"))], "node {j}");
    }
    // A later version under the same key is news again.
    net.with_core(0, |core, now| assert_eq!(core.broadcast(now, "config", b"v3".to_vec()).unwrap(), 3));
    net.run_for(Duration::from_secs(10));
    for j in 1..6 {
        let versions: Vec<_> = broadcasts(&net, j).iter().map(|b| b.2).collect();
        assert_eq!(versions, [2, 3], "node {j}");
    }
}

/// A gossip datagram from node `from` carrying `items`, as a peer would
/// send it (to replay old items).
fn replay(net: &mut Net, from: usize, to: usize, items: Vec<Update>) {
    let codec = FrameCodec::new(ClusterLabel::new("test").unwrap());
    let mut bytes = BytesMut::new();
    codec.encode(&Packet { message: Message::Gossip, updates: items }, &mut bytes).unwrap();
    net.with_core(to, |core, now| core.handle_datagram(now, common::addr(from), &bytes));
}

fn item(origin: usize, key: &str, version: u64, payload: &[u8]) -> Update {
    Update::User(UserBroadcast {
        origin: name(origin),
        key: UserKey::new(key).unwrap(),
        version,
        payload: payload.to_vec(),
    })
}

#[test]
fn a_restarted_origin_is_heard_again_once_it_has_learnt_the_clock() {
    let config = Config { user_ltime_window: 16, ..Config::local() };
    let mut net = Net::converged_cluster(4, seed(103), config);
    // Node 0 broadcasts 20 items, 10 at a time (20 at once would be more
    // than the window: the first ones would arrive too old): every clock
    // reaches 20.
    for batch in [0..10u8, 10..20] {
        net.with_core(0, |core, now| {
            for k in batch {
                assert_eq!(core.broadcast(now, &format!("k{k}"), vec![k]).unwrap(), u64::from(k) + 1);
            }
        });
        net.run_for(Duration::from_secs(5));
    }
    assert!((0..4).all(|j| net.core(j).metrics().user_ltime == 20));
    net.with_core(3, |core, now| {
        for v in 1..=3 {
            assert_eq!(core.broadcast(now, "epoch", vec![v]).unwrap(), 20 + u64::from(v), "Lamport times");
        }
    });
    net.run_for(Duration::from_secs(5));
    let epochs = |net: &Net, j: usize| -> Vec<(u64, Bytes)> {
        broadcasts(net, j).into_iter().filter(|b| b.0 == name(3)).map(|b| (b.2, b.3)).collect()
    };
    for j in 0..3 {
        assert_eq!(broadcasts(&net, j).len(), if j == 0 { 1 } else { 21 }, "node {j}");
        assert_eq!(epochs(&net, j), [(23, Bytes::from_static(&[3]))], "node {j}: v23 replaced v21 and v22");
    }

    // Node 3 restarts: its clock is 0 again. What it broadcasts before it
    // has joined is stamped 1, far behind the cluster: once the join's
    // push-pull has taught it the clock, the item is too old and is dropped
    // before it goes out.
    net.crash(3);
    net.start(3);
    net.with_core(3, |core, now| assert_eq!(core.broadcast(now, "early", b"too early".to_vec()).unwrap(), 1));
    net.join(3, &[0]);
    assert!(net.run_until_cond(Duration::from_secs(20), Net::converged));
    let metrics = net.core(3).metrics();
    assert_eq!((metrics.user_ltime, metrics.user_items_too_old, metrics.queued_user_items), (23, 1, 0));

    // Its broadcasts from now on are above everything the cluster has seen:
    // delivered, once.
    net.with_core(3, |core, now| assert_eq!(core.broadcast(now, "epoch", b"after restart".to_vec()).unwrap(), 24));
    assert!(net.run_until_cond(Duration::from_secs(10), |net| (0..3).all(|j| epochs(net, j).len() == 2)));
    net.run_for(Duration::from_secs(10));
    for j in 0..3 {
        let want = [(23, Bytes::from_static(&[3])), (24, Bytes::from_static(b"after restart"))];
        assert_eq!(epochs(&net, j), want, "node {j}");
    }

    // Items of its previous run, and older ones, replayed: none is
    // delivered again. The previous run's last epoch is remembered; an
    // earlier one is superseded; items 16 ticks behind the clock are too old.
    for j in 1..3 {
        let before = (broadcasts(&net, j).len(), net.core(j).metrics().user_items_too_old);
        let old = vec![
            item(3, "epoch", 23, &[3]),
            item(3, "epoch", 21, &[1]),
            item(0, "k19", 20, &[19]),
            item(0, "k0", 1, &[0]),
            item(0, "k7", 8, &[7]),
        ];
        replay(&mut net, 0, j, old);
        let metrics = net.core(j).metrics();
        assert_eq!(broadcasts(&net, j).len(), before.0, "node {j}: nothing delivered twice");
        assert_eq!(metrics.user_items_too_old, before.1 + 2, "node {j}: times 1 and 8 are <= 24 - 16");
        assert!(!broadcasts(&net, j).iter().any(|b| b.1 == "early"), "node {j}");
    }
}

/// Issue #10's duplicates: under churn, late joiners keep a broadcast
/// circulating far longer than its dissemination (each queues it afresh,
/// with a full budget, and passes it on to members that accepted it long
/// before). A memory of deliveries that expires with time forgot it and
/// delivered it again; the Lamport window does not.
#[test]
fn a_broadcast_kept_circulating_by_late_joiners_is_delivered_once_everywhere() {
    const FIRST: usize = 6;
    const N: usize = 36;
    // Each member sends an item up to 100 × log2(n) times: several seconds.
    let config = Config { retransmit_mult: 100, ..Config::local() };
    let mut net = Net::new(N, seed(107), config);
    for i in 1..FIRST {
        net.join(i, &[0]);
        net.run_for(Duration::from_millis(50));
    }
    let converged = |net: &Net| (0..FIRST).all(|v| (0..FIRST).all(|s| net.status(v, s) == Some(MemberStatus::Alive)));
    assert!(net.run_until_cond(Duration::from_secs(30), converged));
    let start = net.now;
    net.with_core(0, |core, now| assert_eq!(core.broadcast(now, "news", b"once".to_vec()).unwrap(), 1));
    // A member joins every 3 s (through the one before), for 90 s.
    for i in FIRST..N {
        net.run_for(Duration::from_secs(3));
        net.join(i, &[i - 1]);
    }
    net.run_for(Duration::from_secs(30));
    let mut last = Time::ZERO;
    for j in 1..N {
        let got: Vec<_> = net.nodes[j]
            .user
            .iter()
            .filter_map(|(at, e)| matches!(e, UserEvent::Broadcast { .. }).then_some(*at))
            .collect();
        assert_eq!(got.len(), 1, "node {j} delivered the broadcast {} times", got.len());
        last = last.max(got[0]);
        assert_eq!(broadcasts(&net, j)[0].2, 1);
    }
    // The setting of the bug: it circulated past the old 60 s memory.
    let circulated = last - start;
    assert!(circulated > Duration::from_secs(60), "the chain of joiners broke after {circulated:?}");
    assert!((0..N).all(|j| net.core(j).metrics().user_items_too_old == 0));
}

/// Runs `net` for `d` in small steps, answering every query addressed to a
/// node with `answer(node)` (no answer if `None`).
fn run_answering(net: &mut Net, d: Duration, answered: &mut [usize], answer: impl Fn(usize) -> Option<Vec<u8>>) {
    let until = net.now + d;
    while net.now < until {
        net.run_for(Duration::from_millis(20));
        for (j, seen) in answered.iter_mut().enumerate() {
            if net.nodes[j].core.is_none() {
                continue;
            }
            let pending: Vec<_> = net.nodes[j].user[*seen..]
                .iter()
                .filter_map(|(_, e)| match e {
                    UserEvent::Query { id, origin, .. } => Some((*id, origin.name.clone())),
                    _ => None,
                })
                .collect();
            *seen = net.nodes[j].user.len();
            if let Some(payload) = answer(j) {
                for (id, origin) in pending {
                    net.with_core(j, |core, now| core.respond(now, id, &origin, payload.clone()).unwrap());
                    *seen = net.nodes[j].user.len();
                }
            }
        }
    }
}

#[test]
fn a_query_reaches_the_filtered_members_and_reports_who_stayed_silent() {
    const N: usize = 10;
    let mut net = Net::converged_cluster(N, seed(104), Config::local());
    for i in 1..=4 {
        net.with_core(i, |core, now| {
            let mut meta = Metadata::new();
            meta.insert("role", b"db".to_vec()).unwrap();
            core.set_metadata(now, meta);
        });
    }
    let db = |net: &Net| {
        (0..N).all(|v| (1..=4).all(|i| net.view(v, i).is_some_and(|m| m.metadata.get("role") == Some(&b"db"[..]))))
    };
    assert!(net.run_until_cond(Duration::from_secs(20), db), "metadata did not spread");
    // n4 crashes just before the query: everyone still holds it alive.
    net.crash(4);
    let filter = QueryFilter { nodes: vec![], tags: vec![("role".into(), "db".into())] };
    let mut id = 0;
    net.with_core(0, |core, now| {
        id = core.query(now, "health", b"?".to_vec(), filter, Duration::from_secs(2)).unwrap()
    });
    let mut answered = vec![0; N];
    run_answering(&mut net, Duration::from_secs(4), &mut answered, |j| Some(format!("ok from {j}").into_bytes()));

    for j in 0..N {
        let asked = net.nodes[j].user.iter().filter(|(_, e)| matches!(e, UserEvent::Query { .. })).count();
        assert_eq!(asked, usize::from((1..=3).contains(&j)), "node {j}: only the live db members are asked");
    }
    let origin = &net.nodes[0].user;
    let mut responses: Vec<_> = origin
        .iter()
        .filter_map(|(_, e)| match e {
            UserEvent::QueryResponse { id: got, from, payload } if *got == id => Some((from.clone(), payload.clone())),
            _ => None,
        })
        .collect();
    responses.sort();
    let expected: Vec<_> = (1..=3).map(|j| (name(j), Bytes::from(format!("ok from {j}")))).collect();
    assert_eq!(responses, expected);
    let done: Vec<_> = origin.iter().filter(|(_, e)| matches!(e, UserEvent::QueryDone { .. })).collect();
    assert_eq!(done.len(), 1);
    let (at, UserEvent::QueryDone { id: done_id, responders, missing }) = done[0] else { unreachable!() };
    assert_eq!((*done_id, *responders, missing.clone()), (id, 3, vec![name(4)]));
    assert!(*at >= Time::from_secs(2), "reported at the deadline");
}

#[test]
fn the_origin_answers_its_own_query_and_each_member_answers_once() {
    let mut net = Net::converged_cluster(4, seed(105), Config::local());
    let filter = QueryFilter { nodes: vec![name(0), name(2)], tags: vec![] };
    let mut id = 0;
    net.with_core(0, |core, now| id = core.query(now, "who", Vec::new(), filter, Duration::from_secs(2)).unwrap());
    let mut answered = vec![0; 4];
    run_answering(&mut net, Duration::from_millis(1500), &mut answered, |j| Some(vec![j as u8]));
    // A second answer, or an answer to nothing, is refused.
    net.with_core(2, |core, now| {
        assert_eq!(core.respond(now, id, &name(0), vec![9]), Err(UserError::UnknownQuery { id, origin: name(0) }));
        assert!(matches!(core.respond(now, id + 1, &name(0), vec![9]), Err(UserError::UnknownQuery { .. })));
    });
    net.run_for(Duration::from_secs(2));
    let events: Vec<_> = net.nodes[0].user.iter().map(|(_, e)| e.clone()).collect();
    let responders: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            UserEvent::QueryResponse { from, payload, .. } => Some((from.clone(), payload[0])),
            _ => None,
        })
        .collect();
    assert_eq!(responders.len(), 2, "{events:?}");
    assert!(responders.contains(&(name(0), 0)) && responders.contains(&(name(2), 2)), "{responders:?}");
    assert!(events.contains(&UserEvent::QueryDone { id, responders: 2, missing: vec![] }), "{events:?}");
    for j in [1, 3] {
        assert!(net.nodes[j].user.is_empty(), "node {j} was not addressed");
    }
}

#[test]
fn application_state_is_exchanged_on_join_and_in_later_push_pulls() {
    let mut net = Net::new(2, seed(106), Config::local());
    net.with_core(0, |core, _| core.set_local_state(Bytes::from_static(b"state of n0")));
    net.with_core(1, |core, _| core.set_local_state(Bytes::from_static(b"state of n1")));
    net.join(1, &[0]);
    net.run_for(Duration::from_millis(100));
    let remote = |net: &Net, i: usize| -> Vec<UserEvent> {
        net.nodes[i]
            .user
            .iter()
            .filter(|(_, e)| matches!(e, UserEvent::RemoteState { .. }))
            .map(|(_, e)| e.clone())
            .collect()
    };
    // The join: n0 merges n1's request (join), n1 merges n0's response.
    let joined = UserEvent::RemoteState { from: name(1), join: true, state: Bytes::from_static(b"state of n1") };
    assert_eq!(remote(&net, 0).first(), Some(&joined));
    let answered = UserEvent::RemoteState { from: name(0), join: false, state: Bytes::from_static(b"state of n0") };
    assert_eq!(remote(&net, 1).first(), Some(&answered));
    assert!(net.run_until_cond(Duration::from_secs(10), Net::converged));
    // A new state travels with the next periodic push-pull (every 15 s here).
    net.with_core(0, |core, _| core.set_local_state(Bytes::from_static(b"n0, second state")));
    let second = UserEvent::RemoteState { from: name(0), join: false, state: Bytes::from_static(b"n0, second state") };
    assert!(
        net.run_until_cond(Duration::from_secs(40), |net| remote(net, 1).contains(&second)),
        "{:?}",
        remote(&net, 1)
    );
    // Only non-empty states are reported.
    net.with_core(0, |core, _| core.set_local_state(Bytes::new()));
    net.with_core(1, |core, _| core.set_local_state(Bytes::new()));
    net.run_for(Duration::from_secs(1));
    let before = (remote(&net, 0).len(), remote(&net, 1).len());
    net.run_for(Duration::from_secs(40));
    assert_eq!((remote(&net, 0).len(), remote(&net, 1).len()), before);
    assert!(net.core(0).metrics().push_pulls + net.core(1).metrics().push_pulls >= 4, "push-pulls did happen");
}

// ---- the packet share, on one core driven by hand ----

fn id(i: usize) -> NodeId {
    NodeId::new(
        format!("member-{i}@10.0.0.{}", i % 250 + 1).parse().unwrap(),
        format!("10.0.{}.{}:7946", i / 250, i % 250 + 1).parse().unwrap(),
    )
}

fn codec() -> FrameCodec {
    FrameCodec::new(ClusterLabel::new("share").unwrap())
}

/// A core that learnt `members` others in one push-pull, then their next
/// incarnation in a second: one `Alive` each queued (the first exchange
/// alone is a join burst, whose news is left to push-pull, not gossiped;
/// see `Config::join_burst`).
fn core_knowing(members: usize, config: Config) -> (Swim<ChaCha8Rng>, Vec<gossamer_core::Timer>) {
    let mut core = Swim::new(id(0), config, codec(), ChaCha8Rng::seed_from_u64(9), Time::ZERO).unwrap();
    let stream = codec().with_max_frame_len(DEFAULT_MAX_STREAM_FRAME).unwrap();
    let mut timers = Vec::new();
    for incarnation in [1, 2] {
        let states = (1..=members)
            .map(|i| MemberState { node: id(i), incarnation, status: MemberStatus::Alive, metadata: Metadata::new() })
            .collect();
        let mut request = BytesMut::new();
        let state = PushPull { join: false, members: states, app_state: Vec::new(), user_ltime: 0 };
        stream.encode(&Packet::new(Message::PushPullRequest(state)), &mut request).unwrap();
        core.handle_push_pull_request(Time::ZERO, id(1).addr, &request).unwrap();
        timers.extend(std::iter::from_fn(|| core.poll_output()).filter_map(|o| match o {
            Output::SetTimer { timer, .. } => Some(timer),
            _ => None,
        }));
    }
    (core, timers)
}

/// Fires every timer a second in and returns the packets sent: for each,
/// (membership bytes, membership updates, user bytes, user items, room).
fn packets_after_timers(
    core: &mut Swim<ChaCha8Rng>,
    timers: Vec<gossamer_core::Timer>,
) -> Vec<(usize, usize, usize, usize, usize)> {
    let now = Time::from_secs(1);
    for timer in timers {
        core.handle_timer(now, timer);
    }
    let codec = codec();
    let mtu = core.config().mtu;
    std::iter::from_fn(|| core.poll_output())
        .filter_map(|o| match o {
            Output::Datagram { bytes, .. } => Some(codec.decode(&bytes).unwrap()),
            _ => None,
        })
        .map(|packet| {
            let room = codec.compound(&packet.message, mtu).unwrap().remaining();
            let (mut mb, mut mn, mut ub, mut un) = (0, 0, 0, 0);
            for update in &packet.updates {
                if update.is_user() {
                    ub += update.encoded_len();
                    un += 1;
                } else {
                    mb += update.encoded_len();
                    mn += 1;
                }
            }
            (mb, mn, ub, un, room)
        })
        .collect()
}

#[test]
fn user_items_get_their_share_while_membership_updates_fill_every_packet() {
    let config = Config::lan();
    let (mut core, timers) = core_knowing(800, config.clone());
    for k in 0..5 {
        core.broadcast(Time::ZERO, &format!("k{k}"), vec![7; 40]).unwrap();
    }
    let packets = packets_after_timers(&mut core, timers);
    assert!(!packets.is_empty());
    for &(mb, _, ub, un, room) in &packets {
        assert_eq!(un, 5, "all five user items fit their share: {packets:?}");
        assert!(ub <= (room as f64 * config.user_share) as usize);
        assert!(mb + ub > room - 60, "membership filled the rest: {packets:?}");
    }
    assert!(core.metrics().queued_updates > 700, "membership still has plenty to send");
}

#[test]
fn membership_updates_get_their_share_while_user_items_fill_every_packet() {
    let config = Config::lan();
    let (mut core, timers) = core_knowing(800, config.clone());
    for k in 0..100 {
        core.broadcast(Time::ZERO, &format!("key-{k}"), vec![k as u8; 150]).unwrap();
    }
    let packets = packets_after_timers(&mut core, timers);
    assert!(!packets.is_empty());
    for &(mb, mn, ub, un, room) in &packets {
        let share = (room as f64 * config.user_share) as usize;
        assert!(un > 0 && mn > 0, "{packets:?}");
        assert!(ub <= share, "user items stay within their share when membership needs the rest: {packets:?}");
        assert!(mb >= room - share - 60, "membership got its share: {packets:?}");
    }
}

#[test]
fn a_side_that_does_not_use_its_share_leaves_it_to_the_other() {
    let config = Config::lan();
    // Few membership updates, many user items: user items take more than their share.
    let (mut core, timers) = core_knowing(2, config.clone());
    for k in 0..100 {
        core.broadcast(Time::ZERO, &format!("key-{k}"), vec![k as u8; 150]).unwrap();
    }
    let packets = packets_after_timers(&mut core, timers);
    let first = packets.first().copied().expect("a packet");
    let (mb, mn, ub, _, room) = first;
    assert_eq!(mn, 3, "every pending membership update (two members and this node): {packets:?}");
    assert!(ub > (room as f64 * config.user_share) as usize, "user items took the unused room: {packets:?}");
    assert!(mb + ub > room - 200, "{packets:?}");
    // No user item: membership gets the whole room, as before.
    let (mut core, timers) = core_knowing(800, config);
    for &(mb, _, ub, un, room) in &packets_after_timers(&mut core, timers) {
        assert_eq!((ub, un), (0, 0));
        assert!(mb > room - 60);
    }
}

#[test]
fn a_full_user_queue_drops_the_most_sent_item_and_counts_it() {
    let config = Config { user_queue_capacity: 4, ..Config::lan() };
    let (mut core, _) = core_knowing(3, config);
    for k in 0..10 {
        core.broadcast(Time::ZERO, &format!("k{k}"), vec![1]).unwrap();
    }
    let metrics = core.metrics();
    assert_eq!((metrics.queued_user_items, metrics.user_items_dropped, metrics.user_items_queued), (4, 6, 10));
}

#[test]
fn bad_user_items_are_refused_with_a_reason() {
    let (mut core, _) = core_knowing(3, Config::lan());
    let now = Time::ZERO;
    assert!(matches!(core.broadcast(now, "", vec![]), Err(UserError::Key(UserKeyError::Empty))));
    assert!(matches!(core.broadcast(now, &"k".repeat(65), vec![]), Err(UserError::Key(UserKeyError::TooLong(65)))));
    let max = core.max_user_item_len();
    assert!(max > 300 && max < 500, "{max}");
    let err = core.broadcast(now, "big", vec![0; max]).unwrap_err();
    assert!(matches!(err, UserError::TooLarge { len, max: m } if len > max && m == max), "{err:?}");
    assert!(core.broadcast(now, "fits", vec![0; max - 40]).is_ok());
    let everyone = QueryFilter::everyone();
    assert_eq!(core.query(now, "q", vec![], everyone.clone(), Duration::ZERO), Err(UserError::Timeout(Duration::ZERO)));
    let forever = Duration::from_secs(u64::MAX / 1000);
    assert_eq!(core.query(now, "q", vec![], everyone.clone(), forever), Err(UserError::Timeout(forever)));
    core.leave(now);
    assert_eq!(core.broadcast(now, "k", vec![]), Err(UserError::Leaving));
    assert_eq!(core.query(now, "q", vec![], everyone, Duration::from_secs(1)), Err(UserError::Leaving));
}
