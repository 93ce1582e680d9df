//! Adversarial incarnations, Lamport times and names (issue #15), extremes
//! included (0, 1, the window ±1, the ceilings ±1, `u64::MAX - 1`,
//! `u64::MAX`), forged into a small converged cluster of real cores on the
//! in-memory network of `common`, between honest rounds. Whatever was
//! forged, once the forger stops: nothing panicked or overflowed, every
//! node holds every live node alive again at its own address (the
//! refutations propagated), no table grew past its cap and no clock past
//! its ceiling.

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::{addr, name, Net};
use gossamer_core::{Config, MAX_INCARNATION, MAX_LTIME};
use gossamer_wire::{
    Alive, ClusterLabel, Confirm, FrameCodec, Leave, MemberState, MemberStatus, Message, Metadata, NodeId, Packet,
    PushPull, Suspect, Update, UserBroadcast, UserKey, DEFAULT_MAX_STREAM_FRAME,
};
use proptest::prelude::*;

const NODES: usize = 4;
const MAX_MEMBERS: usize = 12;

/// An incarnation or Lamport time: an extreme, or relative to what the
/// target knows (`known + offset`, `known + window ± 1`...).
#[derive(Debug, Clone)]
enum Number {
    Fixed(u64),
    Known(i64),
    Window(i64),
    DoubleWindow(i64),
}

fn number() -> impl Strategy<Value = Number> + Clone {
    prop_oneof![
        prop::sample::select(vec![
            0,
            1,
            MAX_INCARNATION - 1,
            MAX_INCARNATION,
            MAX_INCARNATION + 1,
            MAX_LTIME,
            u64::MAX - 1,
            u64::MAX
        ])
        .prop_map(Number::Fixed),
        (-2i64..3).prop_map(Number::Known),
        (-1i64..2).prop_map(Number::Window),
        (-1i64..2).prop_map(Number::DoubleWindow),
    ]
}

impl Number {
    fn resolve(&self, known: u64, window: u64) -> u64 {
        let shift = |base: u64, by: i64| base.saturating_add_signed(by);
        match *self {
            Number::Fixed(n) => n,
            Number::Known(by) => shift(known, by),
            Number::Window(by) => shift(known.saturating_add(window), by),
            Number::DoubleWindow(by) => shift(known.saturating_add(window.saturating_mul(2)), by),
        }
    }
}

#[derive(Debug, Clone)]
enum Forgery {
    /// A membership claim: kind (Alive, Suspect, Confirm, Leave), about
    /// whom (a node, or a ghost name beyond them), at the subject's own or
    /// another address (for `Alive`).
    Claim { kind: u8, who: usize, elsewhere: bool, number: Number },
    /// A broadcast stamped with `number` (relative to the target's clock).
    Item { origin: usize, number: Number },
    /// A push-pull request listing claims and a clock.
    View { claims: Vec<(u8, usize, bool, Number)>, clock: Number },
    /// Honest time passing between forgeries.
    Wait(u64),
}

fn forgery() -> impl Strategy<Value = Forgery> {
    let claim = || (0u8..4, 0usize..NODES + 12, any::<bool>(), number());
    prop_oneof![
        5 => claim().prop_map(|(kind, who, elsewhere, number)| Forgery::Claim { kind, who, elsewhere, number }),
        2 => (0usize..NODES + 2, number()).prop_map(|(origin, number)| Forgery::Item { origin, number }),
        1 => (prop::collection::vec(claim(), 0..6), number()).prop_map(|(claims, clock)| Forgery::View { claims, clock }),
        2 => (0u64..3000).prop_map(Forgery::Wait),
    ]
}

fn codec() -> FrameCodec {
    FrameCodec::new(ClusterLabel::new("test").unwrap())
}

fn claim(kind: u8, who: usize, elsewhere: bool, incarnation: u64) -> Update {
    let at = if elsewhere { addr(900 + who) } else { addr(who) };
    match kind {
        0 => Update::Alive(Alive { node: NodeId::new(name(who), at), incarnation, metadata: Metadata::new() }),
        1 => Update::Suspect(Suspect { node: name(who), incarnation, from: name(NODES + 40) }),
        2 => Update::Confirm(Confirm { node: name(who), incarnation, from: name(NODES + 40) }),
        _ => Update::Leave(Leave { node: name(who), incarnation }),
    }
}

fn forge(net: &mut Net, target: usize, forgery: &Forgery) {
    let window = net.config.incarnation_window;
    let ltime_window = net.config.user_ltime_window;
    let known = |net: &Net, who: usize| net.core(target).member(&name(who)).map_or(0, |m| m.incarnation);
    let clock = net.core(target).metrics().user_ltime;
    match forgery {
        Forgery::Wait(ms) => net.run_for(Duration::from_millis(*ms)),
        Forgery::Claim { kind, who, elsewhere, number } => {
            let update = claim(*kind, *who, *elsewhere, number.resolve(known(net, *who), window));
            let mut buf = BytesMut::new();
            codec().encode(&Packet { message: Message::Gossip, updates: vec![update] }, &mut buf).unwrap();
            net.with_core(target, |core, now| core.handle_datagram(now, addr(999), &buf));
        }
        Forgery::Item { origin, number } => {
            let update = Update::User(UserBroadcast {
                origin: name(*origin),
                key: UserKey::new("k").unwrap(),
                version: number.resolve(clock, ltime_window),
                payload: Vec::new(),
            });
            let mut buf = BytesMut::new();
            codec().encode(&Packet { message: Message::Gossip, updates: vec![update] }, &mut buf).unwrap();
            net.with_core(target, |core, now| core.handle_datagram(now, addr(999), &buf));
        }
        Forgery::View { claims, clock: stamp } => {
            let members = claims
                .iter()
                .map(|(kind, who, elsewhere, number)| {
                    let incarnation = number.resolve(known(net, *who), window);
                    let at = if *elsewhere { addr(900 + who) } else { addr(*who) };
                    let status = [MemberStatus::Alive, MemberStatus::Suspect, MemberStatus::Dead, MemberStatus::Left]
                        [*kind as usize % 4];
                    MemberState { node: NodeId::new(name(*who), at), incarnation, status, metadata: Metadata::new() }
                })
                .collect();
            let state = PushPull {
                join: false,
                members,
                app_state: Vec::new(),
                user_ltime: stamp.resolve(clock, ltime_window),
            };
            let mut buf = BytesMut::new();
            let stream = codec().with_max_frame_len(DEFAULT_MAX_STREAM_FRAME).unwrap();
            stream.encode(&Packet { message: Message::PushPullRequest(state), updates: Vec::new() }, &mut buf).unwrap();
            net.with_core(target, |core, now| drop(core.handle_push_pull_request(now, addr(999), &buf)));
        }
    }
}

fn everyone_alive_at_home(net: &Net) -> bool {
    (0..NODES).all(|v| {
        (0..NODES).all(|s| net.view(v, s).is_some_and(|m| m.status == MemberStatus::Alive && m.id.addr == addr(s)))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn forged_claims_never_leave_a_permanent_lie(
        seed in any::<u64>(),
        small_window in any::<bool>(),
        forgeries in prop::collection::vec((0usize..NODES, forgery()), 1..40),
    ) {
        let window = if small_window { 4 } else { Config::local().incarnation_window };
        let config = Config {
            incarnation_window: window,
            user_ltime_window: if small_window { 8 } else { 8192 },
            max_members: MAX_MEMBERS,
            ..Config::local()
        };
        let mut net = Net::converged_cluster(NODES, seed, config);
        for (target, forgery) in &forgeries {
            forge(&mut net, *target, forgery);
            for v in 0..NODES {
                let core = net.core(v);
                prop_assert!(core.members().count() <= MAX_MEMBERS);
                prop_assert!(core.incarnation() <= MAX_INCARNATION);
                prop_assert!(core.members().all(|m| m.incarnation <= MAX_INCARNATION));
                prop_assert!(core.metrics().user_ltime <= MAX_LTIME);
                prop_assert!(core.name_conflict().is_none(), "an established node never yields");
            }
        }
        // The forger stops; the refutations propagate.
        let healed = net.run_until_cond(Duration::from_secs(600), everyone_alive_at_home);
        prop_assert!(healed, "views: {:?}", (0..NODES)
            .map(|v| (0..NODES).map(|s| net.view(v, s).map(|m| (m.status, m.incarnation, m.id.addr))).collect::<Vec<_>>())
            .collect::<Vec<_>>());
        // The clocks meet again (push-pull: a lagging clock moves up to a
        // window per exchange; a forger moved a clock at most a window per
        // forged item), then a broadcast is delivered everywhere: no clock
        // was pushed out of reach. (Items in flight while a forged time
        // moved the clocks may be lost: that is the window's price.)
        let ltime_window = net.config.user_ltime_window;
        let met = |net: &Net| {
            let clocks: Vec<u64> = (0..NODES).map(|v| net.core(v).metrics().user_ltime).collect();
            clocks.iter().max().unwrap() - clocks.iter().min().unwrap() < ltime_window / 2
        };
        prop_assert!(net.run_until_cond(Duration::from_secs(1200), met), "clocks never met");
        // Forged members (unroutable) are detected and declared dead, so
        // they stop soaking up gossip (while they live, an item's
        // retransmissions may all go to them: a flood's transient cost).
        let ghosts_gone = |net: &Net| {
            (0..NODES).all(|v| {
                net.core(v)
                    .members()
                    .filter(|m| matches!(m.status, MemberStatus::Alive | MemberStatus::Suspect))
                    .all(|m| (0..NODES).any(|s| m.id.name == name(s)))
            })
        };
        prop_assert!(net.run_until_cond(Duration::from_secs(600), ghosts_gone), "forged members never died");
        // Recently dead members still get gossip for a while: past it, every
        // gossip target is a live node (dissemination is probabilistic, and
        // a broadcast carries no anti-entropy to make up for wasted sends).
        let dead_gossip = net.config.gossip_to_the_dead_time;
        net.run_for(dead_gossip + Duration::from_secs(1));
        net.with_core(0, |core, now| drop(core.broadcast(now, "after", b"after".to_vec())));
        let delivered = |net: &Net, v: usize| net.nodes[v].user.iter().any(|(_, e)| matches!(
            e, gossamer_core::UserEvent::Broadcast { payload, .. } if &payload[..] == b"after"));
        let ok = net.run_until_cond(Duration::from_secs(30), |net| (1..NODES).all(|v| delivered(net, v)));
        prop_assert!(ok, "{:#?}", (0..NODES).map(|v| (net.core(v).metrics(), net.nodes[v].user.clone())).collect::<Vec<_>>());
    }
}

/// A time every node refuses as too far ahead, whatever the forgeries
/// before it moved (each moves how far ahead a node accepts by one window,
/// 8,192, at most): above `MAX_LTIME`, or at least 10^9.
fn far_ahead() -> impl Strategy<Value = u64> {
    prop_oneof![
        prop::sample::select(vec![u64::MAX, u64::MAX - 1, MAX_LTIME + 1, MAX_LTIME]),
        1_000_000_000u64..MAX_LTIME,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Application items and push-pull clocks too far ahead, any number of
    /// them, to any nodes, in any member's name: every node broadcasts right
    /// after, without waiting for any clock to meet, and every broadcast
    /// reaches every other node. (Before ages were judged per origin and a
    /// refused time left the stamping clock alone, a node the forgeries
    /// reached took the others' broadcasts for too old, and its own were
    /// too new for them.)
    #[test]
    fn refused_far_ahead_times_silence_no_broadcast(
        seed in any::<u64>(),
        forgeries in prop::collection::vec((0usize..NODES, 0usize..NODES + 2, far_ahead(), any::<bool>()), 1..30),
    ) {
        let mut net = Net::converged_cluster(NODES, seed, Config::local());
        for (target, origin, time, view) in &forgeries {
            let forgery = if *view {
                Forgery::View { claims: Vec::new(), clock: Number::Fixed(*time) }
            } else {
                Forgery::Item { origin: *origin, number: Number::Fixed(*time) }
            };
            forge(&mut net, *target, &forgery);
        }
        for v in 0..NODES {
            net.with_core(v, |core, now| drop(core.broadcast(now, "after", format!("after{v}").into_bytes())));
        }
        let got = |net: &Net, v: usize, from: usize| net.nodes[v].user.iter().any(|(_, e)| matches!(
            e, gossamer_core::UserEvent::Broadcast { payload, .. } if payload[..] == *format!("after{from}").as_bytes()));
        let all = |net: &Net| (0..NODES).all(|v| (0..NODES).filter(|&o| o != v).all(|o| got(net, v, o)));
        let ok = net.run_until_cond(Duration::from_secs(30), all);
        prop_assert!(ok, "{:#?}", (0..NODES).map(|v| net.core(v).metrics()).collect::<Vec<_>>());
        prop_assert!((0..NODES).all(|v| net.nodes[v].user.iter().all(|(_, e)| !matches!(
            e, gossamer_core::UserEvent::Broadcast { payload, .. } if payload.is_empty()))), "a forged item was delivered");
    }
}
