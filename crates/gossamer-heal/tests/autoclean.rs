//! Autoclean end to end: the heal layer's `autoclean` sets the core's
//! `dead_retention`, the core forgets the long dead on its reconnect timer,
//! and the heal layer follows the core's removals. Virtual time, the real
//! core, its timers delivered in order.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::BytesMut;
use common::*;
use gossamer_core::{Config, Output, Swim, Timer};
use gossamer_heal::{core_adapter, Autoclean, Heal, HealConfig, HealHandler};
use gossamer_wire::{
    Alive, ClusterLabel, Confirm, FrameCodec, MemberStatus, Message, Metadata, NodeName, Packet, Update,
};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[derive(Default)]
struct App {
    removed: Vec<(Duration, NodeName)>,
    now: Duration,
}

impl HealHandler for App {
    fn on_member_removed(&mut self, name: &NodeName) {
        self.removed.push((self.now, name.clone()));
    }
}

/// One node, alone on a silent network: its own timers and the gossip the
/// test injects are all that happens (so a member said alive is soon found
/// dead by the node's own probes).
struct Node {
    swim: Swim<ChaCha8Rng>,
    heal: Heal,
    app: App,
    timers: BTreeMap<(Duration, u64), Timer>,
    seq: u64,
    now: Duration,
}

fn codec() -> FrameCodec {
    FrameCodec::new(ClusterLabel::new("autoclean").unwrap())
}

impl Node {
    fn new(autoclean: Autoclean) -> Self {
        // Slow timers: days of virtual time stay cheap.
        let base = Config {
            probe_interval: secs(60),
            probe_timeout: secs(30),
            gossip_interval: secs(60),
            push_pull_interval: secs(600),
            reconnect_interval: secs(60),
            ..Config::lan()
        };
        let heal_config = HealConfig { autoclean, probe_interval: secs(600), ..HealConfig::default() };
        let config = core_adapter::core_config(&heal_config, base);
        let mut swim = Swim::new(id("a"), config, codec(), ChaCha8Rng::seed_from_u64(9), Duration::ZERO).unwrap();
        swim.set_signals(true);
        let heal = Heal::new(id("a"), heal_config, Duration::ZERO).unwrap();
        let mut node = Node { swim, heal, app: App::default(), timers: BTreeMap::new(), seq: 0, now: Duration::ZERO };
        node.drain();
        node
    }

    fn drain(&mut self) {
        self.app.now = self.now;
        core_adapter::pump(&mut self.heal, &mut self.swim, self.now, &mut self.app);
        while let Some(output) = self.swim.poll_output() {
            if let Output::SetTimer { at, timer } = output {
                self.seq += 1;
                self.timers.insert((at.max(self.now), self.seq), timer);
            }
        }
    }

    fn run_until(&mut self, end: Duration) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > end {
                break;
            }
            let ((at, _), timer) = entry.remove_entry();
            self.now = at;
            self.swim.handle_timer(at, timer);
            self.drain();
        }
        self.now = end;
    }

    fn gossip(&mut self, at: Duration, updates: Vec<Update>) {
        self.run_until(at);
        let mut buf = BytesMut::new();
        codec().encode(&Packet { message: Message::Gossip, updates }, &mut buf).unwrap();
        self.swim.handle_datagram(at, id("x").addr, &buf);
        self.drain();
    }

    fn known(&self, n: &str) -> (bool, bool) {
        (self.swim.member(&name(n)).is_some(), self.heal.member(&name(n)).is_some())
    }
}

fn alive(n: &str, incarnation: u64) -> Update {
    Update::Alive(Alive { node: id(n), incarnation, metadata: Metadata::new() })
}

fn confirm(n: &str, incarnation: u64) -> Update {
    Update::Confirm(Confirm { node: name(n), incarnation, from: name("x") })
}

#[test]
fn autoclean_sets_the_core_retention() {
    let base = Config::lan();
    let config = |autoclean: &str| {
        let heal = HealConfig { autoclean: autoclean.parse().unwrap(), ..HealConfig::default() };
        core_adapter::core_config(&heal, base.clone())
    };
    assert_eq!(config("24h").dead_retention, secs(86_400));
    assert_eq!(config("off").dead_retention, Duration::ZERO, "zero: never");
    assert_eq!(config("250ms").dead_retention, base.reconnect_interval, "rounded up to the reaping granularity");
    assert_eq!(config("off").left_retention, base.left_retention, "leaving is not autoclean's business");
    for autoclean in ["24h", "off", "250ms"] {
        config(autoclean).validate().unwrap();
    }
}

#[test]
fn the_core_forgets_the_long_dead_and_the_heal_layer_follows() {
    let mut node = Node::new(Autoclean::After(secs(3600)));
    node.gossip(secs(10), vec![alive("b", 0), confirm("b", 0)]);
    assert_eq!(node.heal.member(&name("b")).unwrap().status, MemberStatus::Dead);
    node.run_until(secs(3600));
    assert_eq!(node.known("b"), (true, true), "not yet");
    // Reaped on the first reconnect tick past the retention.
    node.run_until(secs(3610 + 2 * 60));
    assert_eq!(node.known("b"), (false, false));
    assert_eq!(node.app.removed.len(), 1);
    let (at, removed) = &node.app.removed[0];
    assert_eq!(removed, &name("b"));
    assert!((secs(3610)..=secs(3610 + 2 * 60)).contains(at), "{at:?}");
    assert_eq!(node.heal.metrics().removed, 1);
    node.run_until(secs(5 * 86_400));
    assert_eq!(node.app.removed.len(), 1, "once");
}

#[test]
fn autoclean_off_keeps_the_dead_forever() {
    let mut node = Node::new(Autoclean::Off);
    node.gossip(secs(10), vec![alive("b", 0), confirm("b", 0)]);
    node.run_until(secs(10 * 86_400));
    assert_eq!(node.known("b"), (true, true));
    assert!(node.app.removed.is_empty());
}

#[test]
fn a_death_refuted_in_time_resets_the_clock() {
    let mut node = Node::new(Autoclean::After(secs(3600)));
    node.gossip(secs(0), vec![alive("b", 0), confirm("b", 0)]);
    node.gossip(secs(3000), vec![alive("b", 1)]);
    // Dead again by 3500 s at the latest (the node's own probes find it
    // silent, or this confirmation does), but not before 3000 s.
    node.gossip(secs(3500), vec![confirm("b", 1)]);
    node.run_until(secs(6590));
    assert_eq!(node.known("b"), (true, true), "dead for less than an hour this time");
    node.run_until(secs(7100 + 2 * 60));
    assert_eq!(node.known("b"), (false, false));
}

#[test]
fn a_removed_member_that_comes_back_joins_as_new() {
    let mut node = Node::new(Autoclean::After(secs(600)));
    node.gossip(secs(0), vec![alive("b", 0), alive("c", 0), alive("d", 0), confirm("b", 0)]);
    node.run_until(secs(1000));
    assert_eq!(node.known("b"), (false, false));
    // Stale gossip about the old death is ignored; b's restart is a join.
    node.gossip(secs(2000), vec![confirm("b", 0), alive("b", 0)]);
    let record = node.heal.member(&name("b")).expect("b is back");
    assert_eq!((record.first_seen, record.status, record.death.clone()), (secs(2000), MemberStatus::Alive, None));
    assert_eq!(node.heal.metrics().detections, 0, "no comeback, no partition signal");
    assert!(node.heal.poll().is_none());
}
