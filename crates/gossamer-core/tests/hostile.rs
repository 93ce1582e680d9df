//! Forged claims from a peer on the network (issue #15), on the in-memory
//! network of `common`: whatever incarnation, address or Lamport time a
//! forger sends, the cluster ends up right: a live member refutes and
//! stays alive everywhere, a live member is never moved to another
//! address, later broadcasts are still delivered, the tables stay bounded.

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::{addr, name, Net, Node};
use gossamer_core::{Config, Event, Signal, MAX_INCARNATION, MAX_LTIME};
use gossamer_wire::{
    Alive, ClusterLabel, Confirm, FrameCodec, MemberState, MemberStatus, Message, Metadata, NodeId, Packet, PushPull,
    Suspect, Update, UserBroadcast, UserKey, DEFAULT_MAX_STREAM_FRAME,
};

fn config() -> Config {
    Config::local()
}

fn codec() -> FrameCodec {
    FrameCodec::new(ClusterLabel::new("test").unwrap())
}

/// The address forged datagrams claim to come from (no node there).
fn forger() -> std::net::SocketAddr {
    addr(999)
}

/// One gossip datagram carrying `updates`, as a forger would send it.
fn datagram(updates: Vec<Update>) -> Vec<u8> {
    let mut buf = BytesMut::new();
    codec().encode(&Packet { message: Message::Gossip, updates }, &mut buf).unwrap();
    buf.to_vec()
}

/// Hands the forged datagram to every running node.
fn forge_to_all(net: &mut Net, updates: Vec<Update>) {
    let bytes = datagram(updates);
    for i in net.running() {
        net.with_core(i, |core, now| core.handle_datagram(now, forger(), &bytes));
    }
}

fn confirm(subject: usize, incarnation: u64) -> Update {
    Update::Confirm(Confirm { node: name(subject), incarnation, from: name(1) })
}

fn alive_at(subject: usize, at: std::net::SocketAddr, incarnation: u64) -> Update {
    Update::Alive(Alive { node: NodeId::new(name(subject), at), incarnation, metadata: Metadata::new() })
}

fn all_see_alive_at_home(net: &Net, subject: usize) -> bool {
    net.running()
        .into_iter()
        .all(|v| net.view(v, subject).is_some_and(|m| m.status == MemberStatus::Alive && m.id.addr == addr(subject)))
}

#[test]
fn forged_confirm_at_u64_max_is_refused_everywhere() {
    let mut net = Net::converged_cluster(5, 11, config());
    let before = net.core(2).incarnation();
    forge_to_all(&mut net, vec![confirm(2, u64::MAX)]);
    for v in net.running() {
        assert_eq!(net.status(v, 2), Some(MemberStatus::Alive), "node {v}");
        assert_eq!(net.core(v).metrics().incarnations_refused, 1, "node {v}");
    }
    net.run_for(Duration::from_secs(30));
    assert!(all_see_alive_at_home(&net, 2));
    assert_eq!(net.core(2).incarnation(), before, "nothing to refute");
    assert_eq!(net.events_about(2, |e| matches!(e, Event::MemberFailed(_))), 0);
}

#[test]
fn forged_confirm_just_below_the_ceiling_is_clamped_and_refuted() {
    // Before #15 a death at u64::MAX could never be refuted. At the
    // ceiling now, it is clamped to one window above what each node knows,
    // so the subject's refutation beats it everywhere.
    let mut net = Net::converged_cluster(5, 12, config());
    let known = net.core(2).incarnation();
    let window = config().incarnation_window;
    for ahead in [None, Some(1), Some(window + 1)] {
        // At the ceiling, just below it, just past the window.
        let incarnation = ahead.map_or(MAX_INCARNATION, |a| net.core(2).incarnation() + window + a);
        forge_to_all(&mut net, vec![confirm(2, incarnation)]);
        for v in net.running().into_iter().filter(|&v| v != 2) {
            let held = net.view(v, 2).unwrap();
            assert!(held.incarnation <= net.core(2).incarnation() + window, "node {v} holds {held:?}");
        }
        assert!(
            net.run_until_cond(Duration::from_secs(60), |net| all_see_alive_at_home(net, 2)),
            "n2 not alive everywhere again after a forged death at {incarnation}"
        );
    }
    let own = net.core(2).incarnation();
    assert!(own <= known + 3 * (window + 1), "each refutation climbs one window at most: {own}");
    assert_eq!(
        net.core(1).metrics().incarnations_clamped,
        3,
        "each forgery clamped once at n1: {:?}",
        net.core(1).metrics()
    );
    // And it stays alive.
    net.run_for(Duration::from_secs(30));
    assert!(all_see_alive_at_home(&net, 2));
}

#[test]
fn forged_alive_at_max_with_another_address_moves_nobody() {
    let mut net = Net::converged_cluster(5, 13, config());
    let elsewhere = addr(500);
    forge_to_all(&mut net, vec![alive_at(3, elsewhere, u64::MAX)]);
    forge_to_all(&mut net, vec![alive_at(3, elsewhere, MAX_INCARNATION)]);
    for v in net.running().into_iter().filter(|&v| v != 3) {
        assert_eq!(net.view(v, 3).unwrap().id.addr, addr(3), "node {v}");
        let conflicts = net.nodes[v]
            .signals
            .iter()
            .filter(|(_, s)| matches!(s, Signal::NameConflict(c) if c.name == name(3) && c.claimed == elsewhere && c.existing == addr(3) && !c.yielded))
            .count();
        assert_eq!(conflicts, 1, "node {v}: the claim at u64::MAX was refused before the address was compared");
        assert_eq!(net.core(v).metrics().name_conflicts, 1);
    }
    // The subject keeps its name: it reports the conflict and refutes.
    assert!(net.nodes[3].signals.iter().any(|(_, s)| matches!(s, Signal::NameConflict(c) if !c.yielded)));
    net.run_for(Duration::from_secs(30));
    assert!(all_see_alive_at_home(&net, 3));
    assert_eq!(net.events_about(3, |e| matches!(e, Event::MemberUpdated(_))), 0, "nobody flipped n3's address");
}

#[test]
fn a_newcomer_whose_name_is_taken_yields_and_the_holder_keeps_it() {
    let mut net = Net::converged_cluster(4, 14, config());
    // A second node named n0, at another address, joins through n1.
    let impostor = net.nodes.len();
    net.nodes.push(Node::new(NodeId::new(name(0), addr(77))));
    net.start(impostor);
    net.join(impostor, &[1]);
    assert!(
        net.run_until_cond(Duration::from_secs(10), |net| net.core(impostor).name_conflict().is_some()),
        "the newcomer did not notice its name is taken"
    );
    let conflict = net.core(impostor).name_conflict().unwrap().clone();
    assert!(conflict.yielded);
    assert_eq!((conflict.name.clone(), conflict.existing, conflict.claimed), (name(0), addr(77), addr(0)));
    assert_eq!(net.core(impostor).incarnation(), 0, "a newcomer that yields does not refute");
    assert!(net.nodes[impostor].signals.iter().any(|(_, s)| matches!(s, Signal::NameConflict(c) if c.yielded)));
    // The driver stops it (the runtime refuses to start); the holder and
    // everybody else never moved.
    net.crash(impostor);
    net.run_for(Duration::from_secs(30));
    assert!(all_see_alive_at_home(&net, 0));
    assert!(net.converged());
    assert_eq!(net.events_about(0, |e| !matches!(e, Event::MemberJoined(_))), 0, "no event about n0 at all");
}

#[test]
fn two_established_holders_do_not_flip_flop() {
    // A forger keeps claiming n0's name at another address with ever
    // higher incarnations: n0 refutes each time, nobody moves it.
    let mut net = Net::converged_cluster(4, 15, config());
    for round in 0..5 {
        let next = net.core(0).incarnation() + 1;
        forge_to_all(&mut net, vec![alive_at(0, addr(88), next)]);
        net.run_for(Duration::from_secs(2));
        assert!(all_see_alive_at_home(&net, 0), "round {round}");
        assert!(net.core(0).incarnation() > next - 1, "round {round}: n0 refuted");
    }
    assert_eq!(net.events_about(0, |e| matches!(e, Event::MemberUpdated(_))), 0);
    assert!(net.core(0).metrics().name_conflicts >= 5);
}

#[test]
fn a_dead_member_may_come_back_at_a_new_address() {
    let mut net = Net::converged_cluster(4, 16, config());
    net.crash(3);
    assert!(
        net.run_until_cond(Duration::from_secs(60), |net| (0..3).all(|v| net.status(v, 3) == Some(MemberStatus::Dead)))
    );
    // n3 restarts on another port.
    net.nodes[3].id = NodeId::new(name(3), addr(33));
    net.start(3);
    net.join(3, &[0]);
    // Accepted once it has been dead for the reclaim time (30 s), at the
    // next exchange that carries its claim.
    assert!(net.run_until_cond(Duration::from_secs(120), |net| (0..4)
        .all(|v| net.view(v, 3).is_some_and(|m| m.status == MemberStatus::Alive && m.id.addr == addr(33)))));
    assert!(net.core(3).name_conflict().is_none());
}

fn broadcast(origin: usize, version: u64) -> Update {
    Update::User(UserBroadcast {
        origin: name(origin),
        key: UserKey::new("k").unwrap(),
        version,
        payload: b"forged".to_vec(),
    })
}

fn delivered(net: &Net, viewer: usize, payload: &[u8]) -> usize {
    net.nodes[viewer]
        .user
        .iter()
        .filter(|(_, e)| matches!(e, gossamer_core::UserEvent::Broadcast { payload: p, .. } if &p[..] == payload))
        .count()
}

#[test]
fn a_forged_lamport_time_at_max_silences_nothing() {
    let mut net = Net::converged_cluster(5, 17, config());
    net.with_core(0, |core, now| drop(core.broadcast(now, "before", b"first".to_vec())));
    net.run_for(Duration::from_secs(5));
    let clock = net.core(1).metrics().user_ltime;
    let window = config().user_ltime_window;
    for version in [u64::MAX, u64::MAX - 1, MAX_LTIME + 1] {
        forge_to_all(&mut net, vec![broadcast(4, version)]);
    }
    for v in net.running() {
        let m = net.core(v).metrics();
        assert_eq!(m.user_ltime, clock, "node {v}: the clock did not move");
        assert_eq!(m.user_items_too_new, 3, "node {v}");
    }
    // Far ahead but below the ceiling: refused; the clock does not move
    // either (only how far ahead a node accepts, by one window).
    forge_to_all(&mut net, vec![broadcast(4, MAX_LTIME)]);
    for v in net.running() {
        let m = net.core(v).metrics();
        assert_eq!(m.user_ltime, clock, "node {v}: the clock did not move");
        assert_eq!(m.user_items_too_new, 4, "node {v}");
    }
    // A push-pull request carrying a clock at u64::MAX is not witnessed.
    let state = PushPull {
        join: false,
        members: vec![MemberState {
            node: NodeId::new(name(4), addr(4)),
            incarnation: 0,
            status: MemberStatus::Alive,
            metadata: Metadata::new(),
        }],
        app_state: Vec::new(),
        user_ltime: u64::MAX,
    };
    let mut buf = BytesMut::new();
    let stream = codec().with_max_frame_len(DEFAULT_MAX_STREAM_FRAME).unwrap();
    stream.encode(&Packet { message: Message::PushPullRequest(state), updates: Vec::new() }, &mut buf).unwrap();
    net.with_core(1, |core, now| drop(core.handle_push_pull_request(now, forger(), &buf)));
    assert!(net.core(1).metrics().user_ltime <= clock + window);
    // Later broadcasts are delivered everywhere.
    net.with_core(0, |core, now| drop(core.broadcast(now, "after", b"second".to_vec())));
    assert!(net.run_until_cond(Duration::from_secs(10), |net| (1..5).all(|v| delivered(net, v, b"second") == 1)));
    assert!((0..5).all(|v| delivered(&net, v, b"forged") == 0));
}

/// Hands the forged datagram to `node` only.
fn forge_to(net: &mut Net, node: usize, updates: Vec<Update>) {
    let bytes = datagram(updates);
    net.with_core(node, |core, now| core.handle_datagram(now, forger(), &bytes));
}

fn broadcast_of(origin: usize, key: &str, version: u64, payload: &[u8]) -> Update {
    Update::User(UserBroadcast {
        origin: name(origin),
        key: UserKey::new(key).unwrap(),
        version,
        payload: payload.to_vec(),
    })
}

#[test]
fn a_forged_clock_jump_at_some_nodes_silences_nobody_elses_broadcasts() {
    // simulations/hostile-user.toml at small scale: forged items far
    // ahead reach n0 and n1 only, two each, and move their clocks two
    // windows. Before per-origin staleness, n3 (not reached) stamped its
    // next broadcast at its own clock, two windows behind theirs: too old
    // for them, for good, although nothing about n3 had changed.
    let mut net = Net::converged_cluster(4, 23, config());
    let window = config().user_ltime_window;
    // n3 has been heard before: n0 and n1 remember its items, then
    // forget them when their clocks jump.
    net.with_core(3, |core, now| drop(core.broadcast(now, "setting", b"v1".to_vec())));
    assert!(net.run_until_cond(Duration::from_secs(10), |net| (0..3).all(|v| delivered(net, v, b"v1") == 1)));
    let clock = net.core(3).metrics().user_ltime;
    for v in [0, 1] {
        for version in [MAX_LTIME, MAX_LTIME - 1] {
            forge_to(&mut net, v, vec![broadcast_of(2, "x", version, b"forged")]);
        }
        assert_eq!(net.core(v).metrics().user_items_too_new, 2, "node {v}: both refused");
    }
    // n3 broadcasts at once, before it can hear of any jump (before the
    // fix: two windows behind n0's and n1's clocks).
    let mut version = 0;
    net.with_core(3, |core, now| version = core.broadcast(now, "setting", b"v2".to_vec()).unwrap());
    assert_eq!(version, clock + 1);
    assert!(
        net.run_until_cond(Duration::from_secs(10), |net| (0..3).all(|v| delivered(net, v, b"v2") == 1)),
        "n3's broadcast silenced: {:?}",
        (0..3).map(|v| (delivered(&net, v, b"v2"), net.core(v).metrics().user_items_too_old)).collect::<Vec<_>>()
    );
    // n0's next broadcast is not stamped from a forged clock either: the
    // others take it (before: two windows ahead of n2 and n3, refused as
    // too new, and lost in a small cluster).
    net.with_core(0, |core, now| version = core.broadcast(now, "ahead", b"ahead".to_vec()).unwrap());
    assert!(version < clock + window, "n0 stamped {version}");
    assert!(net.run_until_cond(Duration::from_secs(10), |net| (1..4).all(|v| delivered(net, v, b"ahead") == 1)));
    // Nothing forged reached an application, nothing was delivered twice.
    net.run_for(Duration::from_secs(10));
    for v in 0..4 {
        assert_eq!(delivered(&net, v, b"forged"), 0);
        assert!(delivered(&net, v, b"v1") <= 1 && delivered(&net, v, b"v2") <= 1, "node {v}");
    }
}

#[test]
fn a_forged_item_in_a_members_name_is_overtaken_by_its_next_broadcast() {
    // A plausible forgery under n3's name and key (one window ahead of
    // the clocks: accepted, delivered) supersedes n3's versions below
    // it. n3 hears it (accepted items are forwarded), moves its clock
    // past it, and its next broadcast under that key is news everywhere.
    let mut net = Net::converged_cluster(4, 24, config());
    let window = config().user_ltime_window;
    let clock = net.core(0).metrics().user_ltime;
    let forged = clock + window;
    forge_to(&mut net, 0, vec![broadcast_of(3, "setting", forged, b"forged")]);
    assert_eq!(delivered(&net, 0, b"forged"), 1, "plausible: accepted (no key, no way to tell)");
    assert!(
        net.run_until_cond(Duration::from_secs(30), |net| net.core(3).metrics().user_ltime >= forged),
        "n3 never heard the forgery in its name"
    );
    let mut version = 0;
    net.with_core(3, |core, now| version = core.broadcast(now, "setting", b"real".to_vec()).unwrap());
    assert!(version > forged);
    assert!(net.run_until_cond(Duration::from_secs(10), |net| (0..3).all(|v| delivered(net, v, b"real") == 1)));
    // And once every node has forgotten the forgery (a window later), its
    // replay is still refused.
    for v in 0..3 {
        net.with_core(v, |core, now| drop(core.broadcast(now, &format!("tick{v}"), Vec::new())));
    }
    let before: Vec<usize> = (0..4).map(|v| delivered(&net, v, b"forged")).collect();
    forge_to_all(&mut net, vec![broadcast_of(3, "setting", forged, b"forged")]);
    let after: Vec<usize> = (0..4).map(|v| delivered(&net, v, b"forged")).collect();
    assert_eq!(before, after, "a replay is never delivered twice");
}

#[test]
fn a_restarted_node_still_learns_a_clock_far_ahead_from_its_join() {
    let window = 16;
    let mut net = Net::converged_cluster(3, 21, Config { user_ltime_window: window, ..config() });
    for i in 0..3 * window {
        net.with_core(0, |core, now| drop(core.broadcast(now, &format!("k{i}"), b"x".to_vec())));
    }
    net.run_for(Duration::from_secs(5));
    let clock = net.core(0).metrics().user_ltime;
    assert!(clock > 2 * window);
    net.crash(2);
    net.start(2);
    net.join(2, &[0]);
    net.run_for(Duration::from_secs(3));
    assert!(net.core(2).metrics().user_ltime >= clock, "the join's answer taught the clock");
    // And its broadcasts are then delivered.
    net.with_core(2, |core, now| drop(core.broadcast(now, "back", b"again".to_vec())));
    assert!(net.run_until_cond(Duration::from_secs(10), |net| (0..2).all(|v| delivered(net, v, b"again") == 1)));
}

#[test]
fn the_member_table_is_capped() {
    let cap = 16;
    let mut net = Net::converged_cluster(3, 18, Config { max_members: cap, ..config() });
    let flood: Vec<Update> = (100..140).map(|i| alive_at(i, addr(i), 0)).collect();
    for chunk in flood.chunks(8) {
        forge_to_all(&mut net, chunk.to_vec());
    }
    for v in net.running() {
        assert_eq!(net.core(v).members().count(), cap, "node {v}");
        assert_eq!(net.core(v).metrics().members_refused, 40 - (cap as u64 - 3), "node {v}");
    }
    // The ghosts die; a legitimate newcomer then gets a dead ghost's room.
    assert!(net.run_until_cond(Duration::from_secs(120), |net| net.core(0).metrics().dead == cap - 3));
    let newcomer = net.nodes.len();
    net.nodes.push(Node::new(NodeId::new(name(newcomer), addr(newcomer))));
    net.start(newcomer);
    net.join(newcomer, &[0]);
    assert!(net.run_until_cond(Duration::from_secs(30), |net| (0..3)
        .all(|v| net.status(v, newcomer) == Some(MemberStatus::Alive))));
    assert!(net.core(0).metrics().members_evicted >= 1);
    assert!(net.running().into_iter().all(|v| net.core(v).members().count() <= cap));
}

#[test]
fn a_push_pull_view_over_the_cap_is_refused_whole() {
    let config = Config { max_push_pull_members: 8, ..config() };
    let mut net = Net::converged_cluster(2, 19, config);
    let members: Vec<MemberState> = (0..9)
        .map(|i| MemberState {
            node: NodeId::new(name(100 + i), addr(100 + i)),
            incarnation: 0,
            status: MemberStatus::Alive,
            metadata: Metadata::new(),
        })
        .collect();
    let frame = |members: Vec<MemberState>| {
        let state = PushPull { join: true, members, app_state: Vec::new(), user_ltime: 0 };
        let mut buf = BytesMut::new();
        let stream = codec().with_max_frame_len(DEFAULT_MAX_STREAM_FRAME).unwrap();
        stream.encode(&Packet { message: Message::PushPullRequest(state), updates: Vec::new() }, &mut buf).unwrap();
        buf
    };
    let mut answered = None;
    net.with_core(1, |core, now| {
        answered = Some(core.handle_push_pull_request(now, forger(), &frame(members.clone())))
    });
    assert_eq!(answered, Some(None), "refused: no answer");
    assert_eq!(net.core(1).members().count(), 2, "nothing merged");
    assert_eq!(net.core(1).metrics().push_pulls_refused, 1);
    net.with_core(1, |core, now| {
        answered = Some(core.handle_push_pull_request(now, forger(), &frame(members[..8].to_vec())))
    });
    assert!(answered.unwrap().is_some());
    assert_eq!(net.core(1).members().count(), 10, "at the cap: merged");
}

#[test]
fn forged_suspicions_far_ahead_are_clamped_and_refuted() {
    let mut net = Net::converged_cluster(4, 20, config());
    let forged = Update::Suspect(Suspect { node: name(1), incarnation: MAX_INCARNATION, from: name(2) });
    forge_to_all(&mut net, vec![forged]);
    assert!(net.run_until_cond(Duration::from_secs(30), |net| all_see_alive_at_home(net, 1)));
    assert_eq!(net.events_about(1, |e| matches!(e, Event::MemberFailed(_))), 0);
}

#[test]
fn forged_leaves_cannot_split_a_cluster_for_good() {
    // n0 and n1 hear that n2 and n3 left, n2 and n3 that n0 and n1 did:
    // nobody probes, gossips to or push-pulls with a member that left, so
    // before #15 the two halves never spoke again (each subject never
    // heard the lie about itself). Gossip to the recently left fixes it.
    let mut net = Net::converged_cluster(4, 22, config());
    let leave = |net: &Net, who: usize| {
        Update::Leave(gossamer_wire::Leave { node: name(who), incarnation: net.core(who).incarnation() })
    };
    let (about_23, about_01) =
        (datagram(vec![leave(&net, 2), leave(&net, 3)]), datagram(vec![leave(&net, 0), leave(&net, 1)]));
    for (v, bytes) in [(0, &about_23), (1, &about_23), (2, &about_01), (3, &about_01)] {
        net.with_core(v, |core, now| core.handle_datagram(now, forger(), bytes));
    }
    assert_eq!(net.status(0, 2), Some(MemberStatus::Left));
    assert_eq!(net.status(2, 0), Some(MemberStatus::Left));
    assert!(net.run_until_cond(Duration::from_secs(60), |net| (0..4).all(|s| all_see_alive_at_home(net, s))));
    net.run_for(Duration::from_secs(30));
    assert!(net.converged());
}

/// Probe periods from node 9's crash until every other node of a converged
/// 16-node cluster holds it dead, after `forged` made-up members were
/// flooded into every table (addresses where nobody answers).
fn detection_periods_after_flood(forged: usize, seed: u64) -> f64 {
    let config = Config { max_members: 1024, ..config() };
    let interval = config.probe_interval;
    let mut net = Net::converged_cluster(16, seed, config);
    // Long enough for the members to have heard from each other directly.
    net.run_for(interval * 40);
    let flood: Vec<Update> = (1000..1000 + forged).map(|i| alive_at(i, addr(i), 0)).collect();
    for chunk in flood.chunks(60) {
        forge_to_all(&mut net, chunk.to_vec());
    }
    if forged > 0 {
        let table = net.core(0).members().count();
        assert!(table > 900, "the flood is in the tables: {table} members");
    }
    net.crash(9);
    let start = net.now;
    let all_know = |net: &Net| net.running().into_iter().all(|v| net.status(v, 9) == Some(MemberStatus::Dead));
    assert!(net.run_until_cond(interval * 400, all_know), "crash never detected by all with {forged} forged members");
    let periods = (net.now - start).as_secs_f64() / interval.as_secs_f64();
    assert_eq!(net.running().into_iter().filter(|&v| net.status(v, 0) != Some(MemberStatus::Alive)).count(), 0);
    periods
}

#[test]
fn a_flood_of_forged_members_does_not_blind_failure_detection() {
    // Before the verified/unverified split, each table's ~1,000 forged
    // members took nearly every probe, gossip target and relay: the crash
    // was not detected within 400 periods.
    let mut quiet = Vec::new();
    let mut flooded = Vec::new();
    for seed in [31, 32, 33] {
        quiet.push(detection_periods_after_flood(0, seed));
        flooded.push(detection_periods_after_flood(1000, seed));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (quiet, flooded) = (mean(&quiet), mean(&flooded));
    println!("all know the crash after {quiet:.1} periods without a flood, {flooded:.1} with 1,000 forged members");
    assert!(flooded <= 2.5 * quiet + 5.0, "{flooded:.1} periods with the flood vs {quiet:.1} without");
}
