//! The adapter against the real `gossamer-core` state machine: frames and
//! events produced by `Swim` reach the heal layer, and heal commands reach
//! `Swim`. Needs `--features core-adapter`.
#![cfg(feature = "core-adapter")]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use common::*;
use gossamer_core::{Config, Event, Output, Swim};
use gossamer_heal::core_adapter::{self, AdapterError};
use gossamer_heal::{HealCommand, HealConfig};
use gossamer_wire::{
    Alive, ClusterLabel, Confirm, FrameCodec, MemberStatus, Message, Metadata, NodeId, Packet, Update,
};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn codec() -> FrameCodec {
    FrameCodec::new(ClusterLabel::new("heal-test").unwrap())
}

fn swim(n: &str, seed: u64) -> Swim<ChaCha8Rng> {
    Swim::new(id(n), Config::local(), codec(), ChaCha8Rng::seed_from_u64(seed), Duration::ZERO).unwrap()
}

/// Tells `node` (through a real datagram) that `dead` is dead, confirmed by `by`.
fn confirm_dead(node: &mut Swim<ChaCha8Rng>, dead: &NodeId, by: &str) {
    let alive = Update::Alive(Alive { node: dead.clone(), incarnation: 0, metadata: Metadata::new() });
    let confirm = Update::Confirm(Confirm { node: dead.name.clone(), incarnation: 0, from: name(by) });
    let packet = Packet { message: Message::Gossip, updates: vec![alive, confirm] };
    let mut buf = BytesMut::new();
    codec().encode(&packet, &mut buf).unwrap();
    node.handle_datagram(secs(1), id(by).addr, &buf);
}

fn push_pull_request(node: &mut Swim<ChaCha8Rng>) -> (SocketAddr, bytes::Bytes) {
    std::iter::from_fn(|| node.poll_output())
        .find_map(|o| match o {
            Output::PushPull { to, request } => Some((to, request)),
            _ => None,
        })
        .expect("a push-pull request")
}

#[test]
fn failures_and_push_pull_views_from_the_core_reveal_a_partition() {
    // Side 1: a (with its heal layer) holds b dead; side 2: b holds a dead.
    let mut a = swim("a", 1);
    let mut b = swim("b", 2);
    let mut heal_a = gossamer_heal::Heal::new(id("a"), HealConfig::default(), Duration::ZERO).unwrap();
    confirm_dead(&mut a, &id("b"), "x");
    confirm_dead(&mut b, &id("a"), "y");
    let outputs: Vec<Output> = std::iter::from_fn(|| a.poll_output()).collect();
    for output in outputs {
        if let Output::Event(event) = output {
            core_adapter::observe_event(&mut heal_a, &a, secs(1), &event);
        }
    }
    let record = heal_a.member(&name("b")).expect("b recorded");
    assert_eq!(record.status, MemberStatus::Dead);
    assert!(record.death.as_ref().unwrap().by.contains(&name("x")), "{record:?}");

    // a probes b: the heal command becomes a real push-pull request.
    core_adapter::apply(&mut a, secs(2), &HealCommand::Probe { peer: id("b") }).unwrap();
    let (to, request) = push_pull_request(&mut a);
    assert_eq!(to, id("b").addr);
    let response = b.handle_push_pull_request(secs(2), id("a").addr, &request).expect("b answers");
    core_adapter::observe_push_pull(&mut heal_a, &codec(), secs(2), to, &response);
    let out = drain(&mut heal_a);
    let detections = detected(&out);
    assert_eq!(detections.len(), 1, "{out:?}");
    assert_eq!(detections[0].1, names(&["b"]));
}

#[test]
fn a_fresh_join_is_not_a_partition() {
    let mut a = swim("a", 3);
    let mut b = swim("b", 4);
    let mut heal_b = gossamer_heal::Heal::new(id("b"), HealConfig::default(), Duration::ZERO).unwrap();
    a.join(secs(1), &[id("b").addr]);
    let (_, request) = push_pull_request(&mut a);
    core_adapter::observe_push_pull(&mut heal_b, &codec(), secs(1), id("a").addr, &request);
    let response = b.handle_push_pull_request(secs(1), id("a").addr, &request).unwrap();
    let outputs: Vec<Output> = std::iter::from_fn(|| b.poll_output()).collect();
    for output in outputs {
        if let Output::Event(event @ Event::MemberJoined(_)) = output {
            core_adapter::observe_event(&mut heal_b, &b, secs(1), &event);
        }
    }
    assert!(drain(&mut heal_b).is_empty());
    assert_eq!(heal_b.live_members(), names(&["a", "b"]));
    // Garbage instead of a frame is ignored, not fatal.
    core_adapter::observe_push_pull(&mut heal_b, &codec(), secs(1), id("a").addr, b"not a frame");
    core_adapter::observe_push_pull(&mut heal_b, &codec(), secs(1), id("a").addr, &response[..response.len() / 2]);
    assert!(drain(&mut heal_b).is_empty());
}

#[test]
fn commands_reach_the_core() {
    let mut a = swim("a", 5);
    let before = a.incarnation();
    core_adapter::apply(&mut a, secs(1), &HealCommand::Rejoin { seeds: vec![id("w")] }).unwrap();
    assert!(a.incarnation() > before);
    let (to, _) = push_pull_request(&mut a);
    assert_eq!(to, id("w").addr);
    let err = core_adapter::apply(&mut a, secs(1), &HealCommand::Remove(name("b"))).unwrap_err();
    assert!(matches!(err, AdapterError::MissingCoreHook(_)), "{err}");
}
