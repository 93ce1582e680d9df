//! The adapter against the real `gossamer-core` state machine: the core's
//! signal feed reaches the heal layer, and heal commands reach `Swim`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use common::*;
use gossamer_core::{Config, Output, Swim};
use gossamer_heal::core_adapter;
use gossamer_heal::{Claim, Heal, HealCommand, HealConfig, HealHandler, CLAIM_KEY};
use gossamer_wire::{
    Alive, ClusterLabel, Confirm, FrameCodec, Message, Metadata, Packet, Suspect, Update, DEFAULT_MAX_STREAM_FRAME,
};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

type Core = Swim<ChaCha8Rng>;

#[derive(Default)]
struct App;
impl HealHandler for App {}

fn codec() -> FrameCodec {
    FrameCodec::new(ClusterLabel::new("heal-test").unwrap())
}

/// A core with signals on, and its heal layer.
fn node(n: &str, seed: u64) -> (Core, Heal) {
    let heal_config = HealConfig::default();
    let config = core_adapter::core_config(&heal_config, Config::local());
    let mut swim = Swim::new(id(n), config, codec(), ChaCha8Rng::seed_from_u64(seed), Duration::ZERO).unwrap();
    swim.set_signals(true);
    (swim, Heal::new(id(n), heal_config, Duration::ZERO).unwrap())
}

/// Delivers `updates` to `swim` in a real datagram from `from`, then lets
/// the heal layer catch up; returns what the heal layer output (commands
/// already applied).
fn gossip(swim: &mut Core, heal: &mut Heal, at: Duration, from: &str, updates: Vec<Update>) -> Vec<HealCommand> {
    let packet = Packet { message: Message::Gossip, updates };
    let mut buf = BytesMut::new();
    codec().encode(&packet, &mut buf).unwrap();
    swim.handle_datagram(at, id(from).addr, &buf);
    pump_commands(swim, heal, at)
}

/// Feeds the signals to `heal` and returns its commands (not applied).
fn pump_commands(swim: &mut Core, heal: &mut Heal, at: Duration) -> Vec<HealCommand> {
    while let Some(signal) = swim.poll_signal() {
        core_adapter::observe_signal(heal, at, &signal);
    }
    heal.dispatch(&mut App)
}

fn alive(n: &str, incarnation: u64) -> Update {
    Update::Alive(Alive { node: id(n), incarnation, metadata: Metadata::new() })
}

fn confirm(n: &str, incarnation: u64, by: &str) -> Update {
    Update::Confirm(Confirm { node: name(n), incarnation, from: name(by) })
}

fn push_pull_request(node: &mut Core) -> (SocketAddr, bytes::Bytes) {
    std::iter::from_fn(|| node.poll_output())
        .find_map(|o| match o {
            Output::PushPull { to, request } => Some((to, request)),
            _ => None,
        })
        .expect("a push-pull request")
}

fn is_join(frame: &[u8]) -> bool {
    let stream = codec().with_max_frame_len(DEFAULT_MAX_STREAM_FRAME).unwrap();
    match stream.decode(frame).unwrap().message {
        Message::PushPullRequest(state) => state.join,
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_confirmer_of_a_death_reaches_the_heal_layer() {
    let (mut a, mut heal_a) = node("a", 1);
    gossip(&mut a, &mut heal_a, secs(1), "x", vec![alive("b", 0), confirm("b", 0, "x")]);
    gossip(&mut a, &mut heal_a, secs(1), "y", vec![confirm("b", 0, "y"), confirm("b", 0, "x")]);
    let record = heal_a.member(&name("b")).expect("b recorded");
    assert_eq!(record.status, gossamer_wire::MemberStatus::Dead);
    assert_eq!(record.death.as_ref().unwrap().by, names(&["x", "y"]));
}

#[test]
fn views_from_across_a_cut_reveal_the_partition_on_both_ends() {
    // Side 1: a holds b dead; side 2: b holds a dead.
    let (mut a, mut heal_a) = node("a", 1);
    let (mut b, mut heal_b) = node("b", 2);
    gossip(&mut a, &mut heal_a, secs(1), "x", vec![alive("b", 0), confirm("b", 0, "x")]);
    gossip(&mut b, &mut heal_b, secs(1), "y", vec![alive("a", 0), confirm("a", 0, "y")]);
    // a probes b: a real push-pull, not a join.
    core_adapter::apply(&mut a, secs(2), &HealCommand::Probe { peer: id("b") }).unwrap();
    let (to, request) = push_pull_request(&mut a);
    assert_eq!(to, id("b").addr);
    assert!(!is_join(&request));
    // The request arrives from an ephemeral port: the sender is still known.
    let ephemeral: SocketAddr = "127.0.0.9:51234".parse().unwrap();
    let response = b.handle_push_pull_request(secs(2), ephemeral, &request).expect("b answers");
    let commands_b = pump_commands(&mut b, &mut heal_b, secs(2));
    assert!(commands_b.iter().any(|c| matches!(c, HealCommand::Publish(_))), "{commands_b:?}");
    a.handle_push_pull_response(secs(2), to, &response);
    let commands_a = pump_commands(&mut a, &mut heal_a, secs(2));
    assert!(commands_a.iter().any(|c| matches!(c, HealCommand::Publish(_))), "{commands_a:?}");
    for heal in [&heal_a, &heal_b] {
        assert_eq!(heal.metrics().detections, 1, "{:?}", heal.local());
        assert!(heal.is_settling());
    }
    // The core merged the views as usual: each side suspects the other now,
    // after refuting the other side's verdict.
    assert!(a.incarnation() > 0 && b.incarnation() > 0);
}

#[test]
fn a_fresh_join_is_not_a_partition() {
    let (mut a, _) = node("a", 3);
    let (mut b, mut heal_b) = node("b", 4);
    a.join(secs(1), &[id("b").addr]);
    let (_, request) = push_pull_request(&mut a);
    assert!(is_join(&request));
    b.handle_push_pull_request(secs(1), id("a").addr, &request).unwrap();
    assert!(pump_commands(&mut b, &mut heal_b, secs(1)).is_empty());
    assert!(heal_b.poll().is_none());
    assert_eq!(heal_b.live_members(), names(&["a", "b"]));
}

#[test]
fn only_a_refuted_death_makes_a_comeback_a_partition_signal() {
    let (mut a, mut heal_a) = node("a", 5);
    let others = ["c", "d", "e", "f"];
    gossip(&mut a, &mut heal_a, secs(1), "c", others.iter().map(|n| alive(n, 1)).collect());
    // b dies, confirmed by one member of five: a crash, by the quorum.
    gossip(&mut a, &mut heal_a, secs(2), "x", vec![alive("b", 0), confirm("b", 0, "x")]);
    let back = gossip(&mut a, &mut heal_a, secs(30), "b", vec![alive("b", 1)]);
    assert!(back.is_empty(), "{back:?}");
    assert_eq!(heal_a.metrics().detections, 0);
    // A suspicion of a refuted: routine, no signal.
    let suspect = Update::Suspect(Suspect { node: name("a"), incarnation: 0, from: name("c") });
    assert!(gossip(&mut a, &mut heal_a, secs(31), "c", vec![suspect]).is_empty());
    assert_eq!(heal_a.metrics().detections, 0);
    // Someone held a dead: only a partition makes both sides refute deaths.
    let own = a.incarnation();
    let commands = gossip(&mut a, &mut heal_a, secs(32), "b", vec![confirm("a", own, "b")]);
    assert_eq!(heal_a.metrics().detections, 1);
    assert!(commands.contains(&HealCommand::Probe { peer: id("b") }), "{commands:?}");
}

#[test]
fn commands_reach_the_core() {
    let (mut a, _) = node("a", 6);
    let before = a.incarnation();
    core_adapter::apply(&mut a, secs(1), &HealCommand::Rejoin { seeds: vec![id("w")] }).unwrap();
    assert!(a.incarnation() > before);
    let (to, request) = push_pull_request(&mut a);
    assert_eq!(to, id("w").addr);
    assert!(is_join(&request));
    // A claim is published in the metadata, the application's keys kept.
    let mut metadata = Metadata::new();
    metadata.insert("role", b"db".to_vec()).unwrap();
    a.set_metadata(secs(1), metadata);
    let claim = Claim { seq: 1, size: 3, coordinator: name("a") };
    core_adapter::apply(&mut a, secs(2), &HealCommand::Publish(claim.clone())).unwrap();
    let me = a.member(&name("a")).unwrap();
    assert_eq!(me.metadata.get("role"), Some(&b"db"[..]));
    assert_eq!(me.metadata.get(CLAIM_KEY).and_then(Claim::decode), Some(claim));
}

#[test]
fn pump_applies_what_the_heal_layer_decides() {
    let (mut a, mut heal_a) = node("a", 7);
    gossip(&mut a, &mut heal_a, secs(1), "x", vec![alive("b", 0), confirm("b", 0, "x")]);
    while a.poll_output().is_some() {}
    // The heal layer probes a dead member every probe_interval.
    heal_a.tick(secs(3600));
    core_adapter::pump(&mut heal_a, &mut a, secs(3600), &mut App);
    let (to, request) = push_pull_request(&mut a);
    assert_eq!((to, is_join(&request)), (id("b").addr, false));
    assert!(heal_a.poll().is_none(), "everything was dispatched");
}

#[test]
fn observe_all_catches_up_with_a_core_that_already_ran() {
    let (mut a, _) = node("a", 8);
    let mut throwaway = Heal::new(id("a"), HealConfig::default(), Duration::ZERO).unwrap();
    gossip(&mut a, &mut throwaway, secs(1), "x", vec![alive("b", 0), alive("c", 0), confirm("b", 0, "x")]);
    gossip(&mut a, &mut throwaway, secs(1), "y", vec![confirm("b", 0, "y")]);
    let mut heal = Heal::new(id("a"), HealConfig::default(), secs(2)).unwrap();
    core_adapter::observe_all(&mut heal, &a, secs(2));
    assert_eq!(heal.live_members(), names(&["a", "c"]));
    assert_eq!(heal.member(&name("b")).unwrap().death.as_ref().unwrap().by, names(&["x", "y"]));
}
