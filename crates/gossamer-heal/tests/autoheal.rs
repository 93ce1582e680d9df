//! Autoheal decisions: who wins, who rejoins, what the application hears.

mod common;

use std::collections::BTreeSet;

use common::*;
use gossamer_heal::{HealCommand, HealConfig, HealHandler};
use gossamer_wire::NodeName;

/// Runs one node of side `ours` through a detection against `theirs` (as
/// `theirs` reports itself) and the decision; returns the outputs.
fn decide(local: &str, ours: &[&str], theirs: &[&str]) -> Vec<gossamer_heal::HealOutput> {
    let mut heal = node_with_sides(local, ours, theirs, HealConfig::default(), secs(1));
    heal.observe_remote_view(secs(100), &id(theirs[0]), &view(theirs, ours));
    heal.tick(secs(109));
    assert!(healed(&drain(&mut heal.clone())).is_empty(), "decided before the settle time");
    heal.tick(secs(110));
    drain(&mut heal)
}

#[test]
fn seventy_thirty_minority_rejoins_and_majority_does_not() {
    let majority = ["m0", "m1", "m2", "m3", "m4", "m5", "m6"];
    let minority = ["a0", "a1", "a2"];
    for local in minority {
        let out = decide(local, &minority, &majority);
        assert_eq!(healed(&out), vec![(names(&majority), names(&minority))]);
        let seeds = rejoins(&out);
        assert_eq!(seeds.len(), 1, "{local}: {out:?}");
        let seed_names: Vec<String> = seeds[0].iter().map(|s| s.name.to_string()).collect();
        // The coordinator (lowest winner name) first, then the others.
        assert_eq!(seed_names, majority.to_vec());
    }
    for local in majority {
        let out = decide(local, &majority, &minority);
        assert_eq!(healed(&out), vec![(names(&majority), names(&minority))]);
        assert!(rejoins(&out).is_empty(), "{local}: {out:?}");
    }
}

#[test]
fn fifty_fifty_is_decided_the_same_on_both_sides() {
    let left = ["p1", "p3", "p5"];
    let right = ["p0", "p2", "p4"];
    let from_left = decide("p1", &left, &right);
    let from_right = decide("p2", &right, &left);
    assert_eq!(healed(&from_left), healed(&from_right));
    assert_eq!(healed(&from_left), vec![(names(&right), names(&left))]);
    assert_eq!(rejoins(&from_left).len(), 1);
    assert!(rejoins(&from_right).is_empty());
}

#[test]
fn three_way_split_goes_to_the_largest_side_and_both_others_rejoin() {
    let a = ["a0", "a1"];
    let b = ["b0", "b1", "b2", "b3"];
    let c = ["c0", "c1", "c2"];
    let all_but = |side: &[&str]| -> Vec<&str> {
        [&a[..], &b[..], &c[..]].concat().into_iter().filter(|n| !side.contains(n)).collect()
    };
    for (local, ours, others) in
        [("a0", &a[..], [&b[..], &c[..]]), ("c1", &c[..], [&a[..], &b[..]]), ("b2", &b[..], [&a[..], &c[..]])]
    {
        let mut heal = node_with_sides(local, ours, &all_but(ours), HealConfig::default(), secs(1));
        for other in others {
            heal.observe_remote_view(secs(100), &id(other[0]), &view(other, &all_but(other)));
        }
        let detections = detected(&drain(&mut heal));
        assert_eq!(detections.len(), 2, "each other side announced once");
        heal.tick(secs(110));
        let out = drain(&mut heal);
        assert_eq!(healed(&out), vec![(names(&b), names(&[&a[..], &c[..]].concat()))], "{local}");
        assert_eq!(rejoins(&out).len(), usize::from(local != "b2"), "{local}");
    }
}

#[test]
fn asymmetric_cut_with_a_bridge_is_decided_alike_on_both_sides() {
    // x sees everyone; {a0, a1} and {b0, b1, b2, b3} each hold the other
    // dead. Each side counts the bridge as its own (it cannot tell it from
    // one of its members the other side already merged), so both agree as
    // long as the sides differ by more than the bridges: 3 < 4 and 5 > 2.
    let side_a = ["a0", "a1", "x"];
    let side_b = ["b0", "b1", "b2", "b3", "x"];
    let mut a0 = node_with_sides("a0", &side_a, &["b0", "b1", "b2", "b3"], HealConfig::default(), secs(1));
    a0.observe_remote_view(secs(100), &id("b0"), &view(&side_b, &["a0", "a1"]));
    a0.tick(secs(110));
    let out = drain(&mut a0);
    assert_eq!(healed(&out), vec![(names(&["b0", "b1", "b2", "b3"]), names(&side_a))]);
    let seeds = rejoins(&out);
    assert_eq!(seeds.len(), 1);
    assert_eq!(seeds[0].first().map(|s| s.name.to_string()), Some("b0".into()));

    let mut b1 = node_with_sides("b1", &side_b, &["a0", "a1"], HealConfig::default(), secs(1));
    b1.observe_remote_view(secs(100), &id("a1"), &view(&side_a, &["b0", "b1", "b2", "b3"]));
    b1.tick(secs(110));
    let out = drain(&mut b1);
    assert_eq!(healed(&out), vec![(names(&side_b), names(&["a0", "a1"]))]);
    assert!(rejoins(&out).is_empty());

    // The bridge holds nobody dead: the others' views are no partition to it.
    let mut x = node_with_sides("x", &["a0", "a1", "b0", "b1", "b2", "b3"], &[], HealConfig::default(), secs(1));
    x.observe_remote_view(secs(100), &id("a1"), &view(&side_a, &["b0", "b1", "b2", "b3"]));
    x.observe_remote_view(secs(100), &id("b1"), &view(&side_b, &["a0", "a1"]));
    x.tick(secs(110));
    assert!(drain(&mut x).is_empty());
}

#[test]
fn a_loser_already_merged_into_the_winners_view_still_rejoins() {
    // d came back early (the core merged it) and the winners' report lists
    // it; d's own side {d, e} still lost and d must resync.
    let mut d = node_with_sides("d", &["d", "e"], &["a", "b", "c"], HealConfig::default(), secs(1));
    d.observe_remote_view(secs(100), &id("a"), &view(&["a", "b", "c", "d"], &["e"]));
    d.tick(secs(110));
    let out = drain(&mut d);
    assert_eq!(healed(&out), vec![(names(&["a", "b", "c"]), names(&["d", "e"]))]);
    assert_eq!(rejoins(&out).len(), 1);
    // And a winner a loser's report already lists does not rejoin.
    let mut a = node_with_sides("a", &["a", "b", "c"], &["d", "e"], HealConfig::default(), secs(1));
    a.observe_remote_view(secs(100), &id("d"), &view(&["a", "d", "e"], &["b", "c"]));
    a.tick(secs(110));
    let out = drain(&mut a);
    assert_eq!(healed(&out), vec![(names(&["a", "b", "c"]), names(&["d", "e"]))]);
    assert!(rejoins(&out).is_empty());
}

#[test]
fn autoheal_off_reports_but_never_rejoins() {
    let config = HealConfig { autoheal: false, ..HealConfig::default() };
    let mut heal = node_with_sides("a", &["a"], &["b", "c"], config, secs(1));
    heal.observe_remote_view(secs(100), &id("b"), &view(&["b", "c"], &["a"]));
    heal.tick(secs(200));
    let out = drain(&mut heal);
    assert_eq!(detected(&out).len(), 1);
    assert!(healed(&out).is_empty() && rejoins(&out).is_empty(), "{out:?}");
}

#[derive(Default)]
struct App {
    detected: usize,
    healed: Vec<(BTreeSet<NodeName>, bool)>,
}

impl HealHandler for App {
    fn on_partition_detected(&mut self, _: &BTreeSet<NodeName>, _: &BTreeSet<NodeName>, _: Option<bool>) {
        self.detected += 1;
    }
    fn on_partition_healed(&mut self, winners: &BTreeSet<NodeName>, _: &BTreeSet<NodeName>, local_rejoined: bool) {
        self.healed.push((winners.clone(), local_rejoined));
    }
}

#[test]
fn the_application_is_called_back_and_commands_come_back_to_the_driver() {
    let mut heal = node_with_sides("z", &["z", "y"], &["a", "b", "c"], HealConfig::default(), secs(1));
    heal.observe_remote_view(secs(100), &id("a"), &view(&["a", "b", "c"], &["z", "y"]));
    heal.tick(secs(110));
    let mut app = App::default();
    let commands = heal.dispatch(&mut app);
    assert_eq!(app.detected, 1);
    assert_eq!(app.healed, vec![(names(&["a", "b", "c"]), true)]);
    // The side's claim was published when the partition was noticed
    // (coordinator: its lowest name); then this node, on the losing side,
    // rejoins the winners.
    assert!(
        matches!(&commands[..], [HealCommand::Publish(c), HealCommand::Rejoin { seeds }] if c.coordinator == name("y") && c.size == 2 && seeds.len() == 3),
        "{commands:?}"
    );
    assert!(heal.poll().is_none());
}

#[test]
fn a_decision_on_a_partial_view_is_corrected_by_a_stronger_claim() {
    use gossamer_heal::Claim;
    // Three-way split {a0..a4} / {b0, b1, b2} / {c0, c1, c2}: b0 only heard
    // from the c side, and won that pair by name.
    let a = ["a0", "a1", "a2", "a3", "a4"];
    let b = ["b0", "b1", "b2"];
    let c = ["c0", "c1", "c2"];
    let dead: Vec<&str> = a.iter().chain(c.iter()).copied().collect();
    let mut b0 = node_with_sides("b0", &b, &dead, HealConfig::default(), secs(1));
    b0.observe_remote_view(secs(100), &id("c0"), &view(&c, &[&a[..], &b[..]].concat()));
    b0.tick(secs(110));
    let out = drain(&mut b0);
    assert_eq!(healed(&out), vec![(names(&b), names(&c))]);
    assert!(rejoins(&out).is_empty());
    // A weaker or equal claim changes nothing...
    b0.observe_claim(secs(111), &name("c1"), &Claim { seq: 1, size: 3, coordinator: name("c0") });
    assert!(drain(&mut b0).is_empty());
    // ...the a side's claim arrives: stronger, so b0 rejoins it.
    b0.observe_claim(secs(112), &name("a3"), &Claim { seq: 1, size: 5, coordinator: name("a0") });
    let out = drain(&mut b0);
    // b0 saw none of them come back yet: the coordinator is all it names.
    assert_eq!(healed(&out), vec![(names(&["a0"]), names(&b))]);
    assert_eq!(rejoins(&out).iter().map(|s| s[0].name.to_string()).collect::<Vec<_>>(), ["a0"]);
    // Once only.
    b0.observe_claim(secs(113), &name("a4"), &Claim { seq: 1, size: 5, coordinator: name("a0") });
    assert!(drain(&mut b0).is_empty());
    assert_eq!(b0.metrics().rejoins, 1);
}
