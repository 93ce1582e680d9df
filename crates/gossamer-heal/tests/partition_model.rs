//! Property test: random partition schedules over 8-32 nodes end, once the
//! network is whole again and a quiet period has passed, with every live
//! node in one cluster and no member lost.
//!
//! The SWIM core is modelled at the level of the heal layer's inputs, one
//! round per virtual second:
//!
//! - gossip: two live nodes of the same network group exchange claims when
//!   at least one of them holds the other non-dead (a ping and its ack carry
//!   gossip both ways); claims are merged by SWIM precedence (higher
//!   incarnation, then dead > suspect > alive) over each connected
//!   component, and a node that sees itself suspected or dead refutes with
//!   a higher incarnation;
//! - failure detection: a member believed alive but unreachable (crashed,
//!   or in another network group) is declared dead by one node of the
//!   component (chosen by name hash, so deaths are confirmed all over a
//!   side, as on a real cut);
//! - push-pull: a `Probe` delivers each node's full view to the other's
//!   heal layer; `Rejoin` raises the incarnation above the seed's claims and
//!   adopts the seed's view, as `Swim::rejoin` does.
//!
//! Every view change is fed to `Heal::observe_member`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{id, secs};
use gossamer_heal::{choose_winner, Autoclean, Heal, HealCommand, HealConfig, HealEvent, HealOutput, Side};
use gossamer_wire::{Incarnation, MemberState, MemberStatus, Metadata, NodeId, NodeName};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Claim {
    status: MemberStatus,
    incarnation: Incarnation,
    /// Who declared it dead (for dead claims).
    by: Option<usize>,
}

impl Claim {
    fn alive(incarnation: Incarnation) -> Self {
        Claim { status: MemberStatus::Alive, incarnation, by: None }
    }

    /// SWIM precedence.
    fn beats(&self, other: &Claim) -> bool {
        (self.incarnation, self.status) > (other.incarnation, other.status)
    }
}

struct Node {
    id: NodeId,
    heal: Heal,
    incarnation: Incarnation,
    /// Claims about the other nodes, by index.
    view: BTreeMap<usize, Claim>,
    crashed: bool,
    /// `PartitionHealed` events raised after the final network heal, and
    /// whether this node was told to rejoin then.
    healed: Vec<(Side, Side)>,
    rejoined_after_heal: bool,
}

struct World {
    nodes: Vec<Node>,
    group: Vec<usize>,
    now: Duration,
    final_phase: bool,
}

fn model_config() -> HealConfig {
    HealConfig {
        settle: secs(3),
        hold_down: secs(20),
        backoff_factor: 2,
        max_hold_down: secs(160),
        flap_window: secs(600),
        probe_interval: secs(10),
        autoclean: Autoclean::Off,
        ..HealConfig::default()
    }
}

fn node_name(i: usize) -> String {
    format!("n{i:02}")
}

impl World {
    fn new(n: usize) -> Self {
        let start = secs(100);
        let nodes = (0..n)
            .map(|i| {
                // Stagger the probe timers as real nodes started at different times.
                let born = start - Duration::from_millis((i as u64 * 3_700) % 10_000);
                let mut heal = Heal::new(id(&node_name(i)), model_config(), born).unwrap();
                let view: BTreeMap<usize, Claim> = (0..n).filter(|&j| j != i).map(|j| (j, Claim::alive(0))).collect();
                for &j in view.keys() {
                    heal.observe_member(born, &id(&node_name(j)), MemberStatus::Alive, 0, &[]);
                }
                Node {
                    id: id(&node_name(i)),
                    heal,
                    incarnation: 0,
                    view,
                    crashed: false,
                    healed: Vec::new(),
                    rejoined_after_heal: false,
                }
            })
            .collect();
        World { nodes, group: vec![0; n], now: start, final_phase: false }
    }

    fn live(&self, i: usize) -> bool {
        !self.nodes[i].crashed
    }

    fn connected(&self, i: usize, j: usize) -> bool {
        self.live(i) && self.live(j) && self.group[i] == self.group[j]
    }

    fn non_dead(&self, i: usize, j: usize) -> bool {
        self.nodes[i].view.get(&j).is_some_and(|c| c.status != MemberStatus::Dead)
    }

    /// Connected components of the gossip graph.
    fn components(&self) -> Vec<Vec<usize>> {
        let n = self.nodes.len();
        let mut comp = vec![usize::MAX; n];
        let mut out = Vec::new();
        for start in (0..n).filter(|&i| self.live(i)) {
            if comp[start] != usize::MAX {
                continue;
            }
            let mut members = vec![start];
            comp[start] = out.len();
            let mut k = 0;
            while k < members.len() {
                let v = members[k];
                k += 1;
                let joining: Vec<usize> = (0..n)
                    .filter(|&w| {
                        comp[w] == usize::MAX && self.connected(v, w) && (self.non_dead(v, w) || self.non_dead(w, v))
                    })
                    .collect();
                for w in joining {
                    comp[w] = out.len();
                    members.push(w);
                }
            }
            out.push(members);
        }
        out
    }

    /// Replaces node `i`'s view, telling its heal layer what changed.
    fn set_view(&mut self, i: usize, view: BTreeMap<usize, Claim>) {
        let now = self.now;
        let changes: Vec<(usize, Claim)> =
            view.iter().filter(|(j, c)| self.nodes[i].view.get(j) != Some(c)).map(|(&j, &c)| (j, c)).collect();
        for (j, claim) in changes {
            let declared_by: Vec<NodeName> = claim.by.map(|b| self.nodes[b].id.name.clone()).into_iter().collect();
            let target = self.nodes[j].id.clone();
            self.nodes[i].heal.observe_member(now, &target, claim.status, claim.incarnation, &declared_by);
        }
        self.nodes[i].view = view;
    }

    fn gossip_round(&mut self) {
        for component in self.components() {
            let mut merged: BTreeMap<usize, Claim> = BTreeMap::new();
            let mut offer = |j: usize, claim: Claim| {
                let entry = merged.entry(j).or_insert(claim);
                if claim.beats(entry) {
                    *entry = claim;
                }
            };
            for &v in &component {
                offer(v, Claim::alive(self.nodes[v].incarnation));
                for (&j, &claim) in &self.nodes[v].view {
                    offer(j, claim);
                }
            }
            // Refutation.
            for &v in &component {
                let claim = merged[&v];
                if claim.status != MemberStatus::Alive || claim.incarnation > self.nodes[v].incarnation {
                    let next = claim.incarnation.max(self.nodes[v].incarnation) + 1;
                    self.nodes[v].incarnation = next;
                    merged.insert(v, Claim::alive(next));
                }
            }
            // Failure detection, by one node of the component per target.
            let head = component[0];
            for (&j, claim) in merged.iter_mut() {
                if claim.status != MemberStatus::Dead && !self.connected(head, j) {
                    let declarer = component[j % component.len()];
                    *claim = Claim { status: MemberStatus::Dead, incarnation: claim.incarnation, by: Some(declarer) };
                }
            }
            for &v in &component {
                let mut view = merged.clone();
                view.remove(&v);
                self.set_view(v, view);
            }
        }
    }

    fn states(&self, i: usize) -> Vec<MemberState> {
        let state = |j: usize, status, incarnation| MemberState {
            node: self.nodes[j].id.clone(),
            incarnation,
            status,
            metadata: Metadata::new(),
        };
        let mut out = vec![state(i, MemberStatus::Alive, self.nodes[i].incarnation)];
        out.extend(self.nodes[i].view.iter().map(|(&j, c)| state(j, c.status, c.incarnation)));
        out
    }

    fn index_of(&self, name: &NodeName) -> usize {
        self.nodes.iter().position(|n| &n.id.name == name).unwrap()
    }

    fn apply(&mut self, i: usize, command: HealCommand) {
        let now = self.now;
        match command {
            HealCommand::Probe { peer } => {
                let j = self.index_of(&peer.name);
                if self.connected(i, j) {
                    let (mine, theirs) = (self.states(i), self.states(j));
                    let (id_i, id_j) = (self.nodes[i].id.clone(), self.nodes[j].id.clone());
                    self.nodes[i].heal.observe_remote_view(now, &id_j, &theirs);
                    self.nodes[j].heal.observe_remote_view(now, &id_i, &mine);
                }
            }
            HealCommand::Rejoin { seeds } => {
                if self.final_phase {
                    self.nodes[i].rejoined_after_heal = true;
                }
                let Some(seed) = seeds.iter().map(|s| self.index_of(&s.name)).find(|&j| self.connected(i, j)) else {
                    return;
                };
                let seen = self.nodes[seed].view.get(&i).map_or(0, |c| c.incarnation);
                let next = self.nodes[i].incarnation.max(seen) + 1;
                self.nodes[i].incarnation = next;
                let mut view = self.nodes[seed].view.clone();
                view.remove(&i);
                view.insert(seed, Claim::alive(self.nodes[seed].incarnation));
                self.set_view(i, view);
                let mut seed_view = self.nodes[seed].view.clone();
                seed_view.insert(i, Claim::alive(next));
                self.set_view(seed, seed_view);
            }
            HealCommand::Publish(claim) => {
                // Metadata gossip: every node the publisher can reach.
                let from = self.nodes[i].id.name.clone();
                let reached: Vec<usize> = (0..self.nodes.len()).filter(|&j| j != i && self.connected(i, j)).collect();
                for j in reached {
                    self.nodes[j].heal.observe_claim(now, &from, &claim);
                }
            }
        }
    }

    fn step(&mut self) {
        self.now += secs(1);
        self.gossip_round();
        let now = self.now;
        for i in 0..self.nodes.len() {
            if !self.live(i) {
                continue;
            }
            self.nodes[i].heal.tick(now);
            while let Some(output) = self.nodes[i].heal.poll() {
                match output {
                    HealOutput::Command(command) => self.apply(i, command),
                    HealOutput::Event(HealEvent::PartitionHealed { winners, rejoined }) if self.final_phase => {
                        self.nodes[i].healed.push((winners, rejoined));
                    }
                    HealOutput::Event(_) => {}
                }
            }
        }
    }

    fn run(&mut self, seconds: u64) {
        for _ in 0..seconds {
            self.step();
        }
    }

    fn live_set(&self) -> Side {
        (0..self.nodes.len()).filter(|&i| self.live(i)).map(|i| self.nodes[i].id.name.clone()).collect()
    }

    /// Node `i`'s model view of who is live, itself included.
    fn view_live(&self, i: usize) -> Side {
        let node = &self.nodes[i];
        let mut live: Side = node
            .view
            .iter()
            .filter(|(_, c)| c.status != MemberStatus::Dead)
            .map(|(&j, _)| self.nodes[j].id.name.clone())
            .collect();
        live.insert(node.id.name.clone());
        live
    }

    fn converged(&self) -> bool {
        let live = self.live_set();
        (0..self.nodes.len())
            .filter(|&i| self.live(i))
            .all(|i| self.view_live(i) == live && self.nodes[i].heal.live_members() == live)
    }

    fn quiet(&self) -> bool {
        (0..self.nodes.len()).filter(|&i| self.live(i)).all(|i| !self.nodes[i].heal.is_settling())
    }
}

#[derive(Debug, Clone)]
struct Schedule {
    n: usize,
    groups: Vec<usize>,
    crashes: BTreeSet<usize>,
    split_for: u64,
    /// (reconnected for, split again for) pairs before the final heal.
    flaps: Vec<(u64, u64)>,
}

fn schedule() -> impl Strategy<Value = Schedule> {
    (8usize..=32).prop_flat_map(|n| {
        (
            Just(n),
            prop::collection::vec(0usize..3, n),
            prop::bool::ANY,
            prop::collection::btree_set(0..n, 0..=2),
            30u64..300,
            prop::collection::vec((1u64..40, 30u64..120), 0..=2),
        )
            .prop_map(|(n, groups, two_way, crashes, split_for, flaps)| Schedule {
                n,
                groups: if two_way { groups.into_iter().map(|g| g % 2).collect() } else { groups },
                crashes,
                split_for,
                flaps,
            })
    })
}

/// Longest the final phase may take: a few detection rounds, each at most
/// a probe interval, the settle time and the longest hold-down.
const QUIET_LIMIT: u64 = 1_500;

fn run_schedule(s: &Schedule) -> Result<(), TestCaseError> {
    let mut world = World::new(s.n);
    world.run(10);
    prop_assert!(world.converged(), "cluster did not form");
    world.group = s.groups.clone();
    for &c in &s.crashes {
        world.nodes[c].crashed = true;
    }
    world.run(s.split_for);
    // The sides as each sees itself, before the network heals.
    let mut sides: BTreeMap<usize, Side> = BTreeMap::new();
    for i in (0..s.n).filter(|&i| world.live(i)) {
        sides.entry(s.groups[i]).or_insert_with(|| world.view_live(i));
    }
    for &(up, down) in &s.flaps {
        world.group = vec![0; s.n];
        world.run(up);
        world.group = s.groups.clone();
        world.run(down);
    }
    world.group = vec![0; s.n];
    world.final_phase = true;
    let mut waited = 0;
    while !(world.converged() && world.quiet()) {
        prop_assert!(
            waited < QUIET_LIMIT,
            "not one cluster after {waited}s: live {:?}, views {:?}",
            world.live_set(),
            (0..s.n).filter(|&i| world.live(i)).map(|i| world.view_live(i).len()).collect::<Vec<_>>()
        );
        world.step();
        waited += 1;
    }
    // A quiet period: it stays one cluster, with no further heal.
    let heals_before: usize = world.nodes.iter().map(|n| n.healed.len()).sum();
    world.run(300);
    prop_assert!(world.converged());
    prop_assert_eq!(world.nodes.iter().map(|n| n.healed.len()).sum::<usize>(), heals_before);
    // A clean two-way split: every node that decided named the same winning
    // side, and no node of it was ever told to rejoin.
    let side_list: Vec<Side> = sides.values().cloned().collect();
    if s.flaps.is_empty() && side_list.len() == 2 && side_list[0].is_disjoint(&side_list[1]) {
        let winner = side_list[choose_winner(&side_list).unwrap()].clone();
        for node in world.nodes.iter().filter(|n| !n.crashed) {
            if let Some((winners, _)) = node.healed.first() {
                prop_assert!(
                    winners.is_superset(&winner),
                    "{} chose {:?}, expected {:?}",
                    node.id.name,
                    winners,
                    winner
                );
            }
            if winner.contains(&node.id.name) {
                prop_assert!(!node.rejoined_after_heal, "{} of the winning side rejoined", node.id.name);
            }
        }
        let decided = world.nodes.iter().filter(|n| !n.healed.is_empty()).count();
        prop_assert!(decided > 0, "a two-way split healed without any decision");
    }
    Ok(())
}

fn model_cases() -> u32 {
    std::env::var("HEAL_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48)
}

proptest! {
    // HEAL_MODEL_CASES raises the number of schedules for a longer soak.
    #![proptest_config(ProptestConfig { cases: model_cases(), ..ProptestConfig::default() })]

    #[test]
    fn random_partitions_end_in_one_cluster_without_losing_anyone(s in schedule()) {
        run_schedule(&s)?;
    }
}

#[test]
fn symmetric_and_lopsided_splits_heal() {
    for groups in [vec![0, 0, 0, 0, 1, 1, 1, 1], vec![0, 0, 0, 0, 0, 0, 0, 1, 1, 1], vec![0, 1, 2, 0, 1, 2, 0, 1, 2, 2]]
    {
        let s = Schedule { n: groups.len(), groups, crashes: BTreeSet::new(), split_for: 60, flaps: Vec::new() };
        run_schedule(&s).unwrap();
    }
}
