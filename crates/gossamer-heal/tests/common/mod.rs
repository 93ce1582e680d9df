//! Helpers shared by the heal tests: names, ids, views and draining.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::time::Duration;

use gossamer_heal::{Heal, HealCommand, HealConfig, HealEvent, HealOutput};
use gossamer_wire::{MemberState, MemberStatus, Metadata, NodeId, NodeName};

pub fn name(n: &str) -> NodeName {
    n.parse().unwrap()
}

pub fn names(ns: &[&str]) -> BTreeSet<NodeName> {
    ns.iter().map(|n| name(n)).collect()
}

/// Every test node listens on its own loopback port, derived from its name.
pub fn id(n: &str) -> NodeId {
    let port = 7000 + n.bytes().fold(0u16, |acc, b| acc.wrapping_mul(31).wrapping_add(u16::from(b))) % 20000;
    NodeId::new(name(n), ([127, 0, 0, 1], port).into())
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A push-pull member list: `live` alive, `dead` dead.
pub fn view(live: &[&str], dead: &[&str]) -> Vec<MemberState> {
    let state = |n: &&str, status| MemberState { node: id(n), incarnation: 1, status, metadata: Metadata::new() };
    live.iter()
        .map(|n| state(n, MemberStatus::Alive))
        .chain(dead.iter().map(|n| state(n, MemberStatus::Dead)))
        .collect()
}

/// A node `local` whose side is `ours` (local included or not) and which
/// holds `theirs` dead, each declared dead by every member of `ours`.
pub fn node_with_sides(local: &str, ours: &[&str], theirs: &[&str], config: HealConfig, at: Duration) -> Heal {
    let mut heal = Heal::new(id(local), config, Duration::ZERO).unwrap();
    for n in ours {
        heal.observe_member(Duration::ZERO, &id(n), MemberStatus::Alive, 1, &[]);
    }
    for n in theirs {
        heal.observe_member(Duration::ZERO, &id(n), MemberStatus::Alive, 1, &[]);
    }
    let declarers: Vec<NodeName> = ours.iter().map(|n| name(n)).collect();
    for n in theirs {
        heal.observe_member(at, &id(n), MemberStatus::Dead, 1, &declarers);
    }
    heal
}

pub fn drain(heal: &mut Heal) -> Vec<HealOutput> {
    std::iter::from_fn(|| heal.poll()).collect()
}

pub fn events(outputs: &[HealOutput]) -> Vec<HealEvent> {
    outputs
        .iter()
        .filter_map(|o| match o {
            HealOutput::Event(e) => Some(e.clone()),
            HealOutput::Command(_) => None,
        })
        .collect()
}

pub fn commands(outputs: &[HealOutput]) -> Vec<HealCommand> {
    outputs
        .iter()
        .filter_map(|o| match o {
            HealOutput::Command(c) => Some(c.clone()),
            HealOutput::Event(_) => None,
        })
        .collect()
}

pub fn rejoins(outputs: &[HealOutput]) -> Vec<Vec<NodeId>> {
    commands(outputs)
        .into_iter()
        .filter_map(|c| match c {
            HealCommand::Rejoin { seeds } => Some(seeds),
            _ => None,
        })
        .collect()
}

pub fn healed(outputs: &[HealOutput]) -> Vec<(BTreeSet<NodeName>, BTreeSet<NodeName>)> {
    events(outputs)
        .into_iter()
        .filter_map(|e| match e {
            HealEvent::PartitionHealed { winners, rejoined } => Some((winners, rejoined)),
            _ => None,
        })
        .collect()
}

pub fn detected(outputs: &[HealOutput]) -> Vec<(BTreeSet<NodeName>, BTreeSet<NodeName>, Option<bool>)> {
    events(outputs)
        .into_iter()
        .filter_map(|e| match e {
            HealEvent::PartitionDetected { ours, theirs, majority } => Some((ours, theirs, majority)),
            _ => None,
        })
        .collect()
}
