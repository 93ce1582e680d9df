//! Partition detection: comebacks of members declared dead by a quorum,
//! remote views that reveal two sides, and what must not count.

mod common;

use common::*;
use gossamer_heal::{HealCommand, HealConfig, Quorum};
use gossamer_wire::MemberStatus;

#[test]
fn member_declared_dead_by_a_majority_comes_back() {
    let ours = ["a", "b", "c", "d", "e"];
    let theirs = ["f", "g", "h"];
    let mut heal = node_with_sides("a", &ours, &theirs, HealConfig::default(), secs(10));
    assert!(drain(&mut heal).is_empty());
    heal.observe_member(secs(100), &id("g"), MemberStatus::Alive, 2, &[]);
    let out = drain(&mut heal);
    let detections = detected(&out);
    assert_eq!(detections.len(), 1, "{out:?}");
    let (our_side, their_side, majority) = &detections[0];
    assert_eq!(*our_side, names(&ours));
    // g and those that died with it are presumed to be on its side.
    assert_eq!(*their_side, names(&theirs));
    assert_eq!(*majority, Some(true));
    // And g is probed at once so that its side's own view decides.
    assert!(commands(&out).contains(&HealCommand::Probe { peer: id("g") }));
    assert!(heal.is_settling());
}

#[test]
fn a_single_crash_coming_back_is_not_a_partition() {
    let mut heal = node_with_sides("a", &["a", "b", "c", "d", "e"], &[], HealConfig::default(), secs(0));
    heal.observe_member(secs(10), &id("c"), MemberStatus::Dead, 1, &[name("b")]);
    heal.observe_member(secs(60), &id("c"), MemberStatus::Alive, 2, &[]);
    assert!(detected(&drain(&mut heal)).is_empty());
    assert!(!heal.is_settling());
}

#[test]
fn disjoint_remote_view_is_detected_with_both_sides() {
    // Each side reaped the other long ago: the views share nobody.
    let mut heal = node_with_sides("a", &["a", "b", "c"], &[], HealConfig::default(), secs(0));
    heal.observe_remote_view(secs(5), &id("x"), &view(&["x", "y"], &[]));
    let out = drain(&mut heal);
    assert_eq!(detected(&out), vec![(names(&["a", "b", "c"]), names(&["x", "y"]), Some(true))]);
}

#[test]
fn mutual_dead_view_is_detected_and_majority_follows_the_quorum() {
    let ours = ["a", "b", "c"];
    let theirs = ["d", "e", "f", "g"];
    let remote = view(&theirs, &ours);
    for (quorum, majority) in [(Quorum::LastKnown, Some(false)), (Quorum::Expected(5), Some(true)), (Quorum::Off, None)]
    {
        let config = HealConfig { quorum, ..HealConfig::default() };
        let mut heal = node_with_sides("a", &ours, &theirs, config, secs(1));
        heal.observe_remote_view(secs(50), &id("d"), &remote);
        assert_eq!(detected(&drain(&mut heal)), vec![(names(&ours), names(&theirs), majority)], "{quorum:?}");
    }
}

#[test]
fn further_reports_of_a_known_side_are_not_announced_again() {
    let mut heal = node_with_sides("a", &["a", "b"], &["c", "d"], HealConfig::default(), secs(1));
    heal.observe_remote_view(secs(50), &id("c"), &view(&["c", "d"], &["a", "b"]));
    heal.observe_remote_view(secs(51), &id("d"), &view(&["c", "d"], &["a", "b"]));
    assert_eq!(detected(&drain(&mut heal)).len(), 1);
    assert_eq!(heal.metrics().detections, 1);
}

#[test]
fn gossip_lag_and_restarts_are_not_partitions() {
    let mut heal = node_with_sides("a", &["a", "b", "d"], &["c"], HealConfig::default(), secs(1));
    // Live peer d has not heard that c died and still holds b dead.
    heal.observe_remote_view(secs(5), &id("d"), &view(&["a", "c", "d"], &["b"]));
    // c restarted with an empty view.
    heal.observe_remote_view(secs(6), &id("c"), &view(&["c"], &[]));
    assert!(drain(&mut heal).is_empty());
    assert!(!heal.is_settling());
}

#[test]
fn views_about_ourselves_or_with_left_members_are_handled() {
    let mut heal = node_with_sides("a", &["a", "b"], &["c"], HealConfig::default(), secs(1));
    heal.observe_remote_view(secs(5), &id("a"), &view(&["a"], &["b", "c"]));
    let mut left_only = view(&["c"], &[]);
    left_only[0].status = MemberStatus::Left;
    // A reporter is live even if its own entry says otherwise.
    heal.observe_remote_view(secs(6), &id("c"), &left_only);
    assert!(drain(&mut heal).is_empty());
}

#[test]
fn an_episode_without_any_view_is_decided_on_the_inferred_sides() {
    let mut heal = node_with_sides("a", &["a", "b", "c"], &["d", "e"], HealConfig::default(), secs(1));
    heal.observe_member(secs(20), &id("d"), MemberStatus::Alive, 2, &[]);
    assert_eq!(detected(&drain(&mut heal)).len(), 1);
    // e comes back too, as part of the same episode: no second detection.
    heal.observe_member(secs(21), &id("e"), MemberStatus::Alive, 2, &[]);
    assert!(detected(&drain(&mut heal)).is_empty());
    // Without a report, the decision waits twice the settle time for a
    // side claim, then goes by who came back.
    heal.tick(secs(30));
    assert!(drain(&mut heal).is_empty());
    assert_eq!(heal.next_deadline(), secs(40));
    heal.tick(secs(40));
    let out = drain(&mut heal);
    assert_eq!(healed(&out), vec![(names(&["a", "b", "c"]), names(&["d", "e"]))]);
    assert!(rejoins(&out).is_empty());
    assert_eq!(heal.metrics().inferred, 1);
    assert_eq!(heal.hold_down_until(secs(40)), Some(secs(70)));
}

#[test]
fn the_inferred_minority_rejoins() {
    let mut heal = node_with_sides("d", &["d", "e"], &["a", "b", "c"], HealConfig::default(), secs(1));
    for (t, n) in [(20, "a"), (21, "c"), (23, "b")] {
        heal.observe_member(secs(t), &id(n), MemberStatus::Alive, 2, &[]);
    }
    heal.tick(secs(40));
    let out = drain(&mut heal);
    assert_eq!(healed(&out), vec![(names(&["a", "b", "c"]), names(&["d", "e"]))]);
    assert_eq!(rejoins(&out).len(), 1);
}

#[test]
fn members_that_crashed_during_the_cut_do_not_count_for_the_other_side() {
    // {a, b, c, d} against {e, f, g} where g crashed with the cut (it died
    // with the others but never comes back): 4 against 2, not 4 against 3.
    let mut heal = node_with_sides("e", &["e", "f"], &["a", "b", "c", "d", "g"], HealConfig::default(), secs(1));
    for (t, n) in [(20, "d"), (21, "c"), (22, "b"), (23, "a")] {
        heal.observe_member(secs(t), &id(n), MemberStatus::Alive, 2, &[]);
    }
    let out = drain(&mut heal);
    assert_eq!(detected(&out)[0].1, names(&["a", "b", "c", "d", "g"]), "presumed at detection");
    heal.tick(secs(40));
    let out = drain(&mut heal);
    assert_eq!(healed(&out), vec![(names(&["a", "b", "c", "d"]), names(&["e", "f"]))]);
}

#[test]
fn dead_members_are_probed_in_turn() {
    let config = HealConfig { probe_interval: secs(10), ..HealConfig::default() };
    let mut heal = node_with_sides("a", &["a", "b"], &["c", "d", "e"], config, secs(1));
    heal.observe_member(secs(1), &id("z"), MemberStatus::Left, 1, &[]);
    let mut probed = Vec::new();
    for t in 1..=60 {
        heal.tick(secs(t));
        for command in commands(&drain(&mut heal)) {
            match command {
                HealCommand::Probe { peer } => probed.push(peer.name.to_string()),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(probed, vec!["c", "d", "e", "c", "d", "e"]);
    assert!(heal.next_deadline() <= secs(70));
}

#[test]
fn extreme_times_do_not_panic() {
    let far = std::time::Duration::MAX - secs(1);
    let mut heal = node_with_sides("a", &["a", "b"], &["c"], HealConfig::default(), far);
    heal.observe_remote_view(far, &id("c"), &view(&["c"], &["a", "b"]));
    heal.tick(std::time::Duration::MAX);
    assert!(heal.next_deadline() >= far);
    assert_eq!(healed(&drain(&mut heal)).len(), 1);
}

#[test]
fn an_invalid_config_is_refused_naming_the_field() {
    let config = HealConfig { probe_interval: secs(0), ..HealConfig::default() };
    let err = gossamer_heal::Heal::new(id("a"), config, secs(0)).unwrap_err();
    assert_eq!(err.field, "probe_interval");
}

#[test]
fn a_comeback_next_to_a_refutation_of_our_own_death_is_a_partition() {
    // Below the declarer quorum (one confirmer of six), but this node just
    // had to refute its own death: the other side had declared it dead.
    let mut heal = node_with_sides("a", &["a", "b", "c", "d", "e", "f"], &[], HealConfig::default(), secs(0));
    heal.observe_member(secs(10), &id("g"), MemberStatus::Dead, 1, &[name("b")]);
    heal.observe_member(secs(10), &id("h"), MemberStatus::Dead, 1, &[name("b")]);
    heal.observe_member(secs(100), &id("g"), MemberStatus::Alive, 2, &[]);
    assert!(drain(&mut heal).is_empty());
    heal.observe_self_refuted(secs(101));
    let out = drain(&mut heal);
    assert_eq!(detected(&out), vec![(names(&["a", "b", "c", "d", "e", "f"]), names(&["g", "h"]), Some(true))]);
    heal.observe_member(secs(102), &id("h"), MemberStatus::Alive, 2, &[]);
    heal.tick(secs(121));
    assert_eq!(healed(&drain(&mut heal)), vec![(names(&["a", "b", "c", "d", "e", "f"]), names(&["g", "h"]))]);

    // A refutation alone, or long before a comeback, is no partition.
    let mut heal = node_with_sides("a", &["a", "b", "c"], &[], HealConfig::default(), secs(0));
    heal.observe_self_refuted(secs(5));
    heal.observe_member(secs(10), &id("d"), MemberStatus::Dead, 1, &[name("b")]);
    heal.observe_member(secs(100), &id("d"), MemberStatus::Alive, 2, &[]);
    assert!(drain(&mut heal).is_empty());
}

#[test]
fn side_claims_decide_where_the_other_sides_came_back_as_one() {
    use gossamer_heal::Claim;
    // Three-way split seen from {a, b, c, d}: the two other sides came back
    // together, 6 members, and look like one bigger side; their claims say
    // they are 3 and 3.
    let others = ["e", "f", "g", "h", "i", "j"];
    let mut heal = node_with_sides("b", &["a", "b", "c", "d"], &others, HealConfig::default(), secs(1));
    heal.observe_self_refuted(secs(20));
    for (t, n) in others.iter().enumerate() {
        heal.observe_member(secs(20 + t as u64 / 3), &id(n), MemberStatus::Alive, 2, &[]);
    }
    let out = drain(&mut heal);
    assert_eq!(detected(&out).len(), 1);
    // Our own side's claim went out as the partition was noticed.
    assert!(commands(&out).contains(&HealCommand::Publish(Claim { seq: 1, size: 4, coordinator: name("a") })));
    heal.observe_claim(secs(22), &name("e"), &Claim { seq: 1, size: 3, coordinator: name("e") });
    heal.observe_claim(secs(23), &name("i"), &Claim { seq: 1, size: 3, coordinator: name("h") });
    // With claims in, the decision falls after the plain settle time.
    heal.tick(secs(30));
    let out = drain(&mut heal);
    assert_eq!(healed(&out), vec![(names(&["a", "b", "c", "d"]), names(&others))]);
    assert!(rejoins(&out).is_empty(), "{out:?}");

    // A node of another side hears the stronger claim and rejoins it.
    let mut heal =
        node_with_sides("e", &["e", "f", "g"], &["a", "b", "c", "d", "h", "i", "j"], HealConfig::default(), secs(1));
    heal.observe_self_refuted(secs(20));
    for n in ["a", "b", "c", "d", "h", "i", "j"] {
        heal.observe_member(secs(20), &id(n), MemberStatus::Alive, 2, &[]);
    }
    heal.observe_claim(secs(21), &name("b"), &Claim { seq: 1, size: 4, coordinator: name("a") });
    heal.observe_claim(secs(21), &name("i"), &Claim { seq: 1, size: 3, coordinator: name("h") });
    heal.tick(secs(30));
    let out = drain(&mut heal);
    let seeds = rejoins(&out);
    assert_eq!(seeds.len(), 1);
    assert!(seeds[0].iter().any(|s| s.name == name("a")));
    assert!(healed(&out)[0].0.contains(&name("a")));
}

#[test]
fn claims_reach_nodes_that_noticed_nothing_and_are_not_replayed() {
    use gossamer_heal::Claim;
    let claim = Claim { seq: 4, size: 2, coordinator: name("d") };
    // No comeback here lately: a claim alone is no partition.
    let mut quiet = node_with_sides("b", &["a", "b", "c"], &[], HealConfig::default(), secs(0));
    quiet.observe_claim(secs(50), &name("d"), &claim);
    assert!(drain(&mut quiet).is_empty() && !quiet.is_settling());

    // d and e came back below every threshold (one declarer, no
    // refutation), but d's side claims it was cut off.
    let mut heal = node_with_sides("b", &["a", "b", "c", "x", "y", "z"], &[], HealConfig::default(), secs(0));
    heal.observe_member(secs(5), &id("d"), MemberStatus::Dead, 1, &[name("a")]);
    heal.observe_member(secs(5), &id("e"), MemberStatus::Dead, 1, &[name("a")]);
    heal.observe_member(secs(50), &id("d"), MemberStatus::Alive, 2, &[]);
    heal.observe_member(secs(50), &id("e"), MemberStatus::Alive, 2, &[]);
    assert!(drain(&mut heal).is_empty());
    heal.observe_claim(secs(51), &name("d"), &claim);
    let out = drain(&mut heal);
    assert_eq!(detected(&out), vec![(names(&["a", "b", "c", "x", "y", "z"]), names(&["d", "e"]), Some(true))]);
    heal.tick(secs(61));
    let out = drain(&mut heal);
    assert_eq!(healed(&out), vec![(names(&["a", "b", "c", "x", "y", "z"]), names(&["d", "e"]))]);
    // The same metadata seen again later is not a new claim.
    heal.observe_member(secs(200), &id("d"), MemberStatus::Dead, 2, &[name("a")]);
    heal.observe_member(secs(300), &id("d"), MemberStatus::Alive, 3, &[]);
    heal.observe_claim(secs(301), &name("d"), &claim);
    assert!(drain(&mut heal).is_empty());
}
