//! Issue #7: a cut that heals at the very moment one side declares its last
//! peer dead. That side's `Confirm` crosses the healed link and makes one of
//! the other side's own members look dead there for a moment, while the
//! small side may still hold some of the big side merely suspect. Each side
//! must still be taken as it stood before the heal, or the two sides
//! compute different winners.

mod common;

use std::time::Duration;

use common::*;
use gossamer_heal::{Claim, HealCommand, HealConfig, HealOutput};
use gossamer_wire::MemberStatus;

fn claims(outputs: &[HealOutput]) -> Vec<Claim> {
    commands(outputs)
        .into_iter()
        .filter_map(|c| match c {
            HealCommand::Publish(claim) => Some(claim),
            _ => None,
        })
        .collect()
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// The big side {a, b, c, d} held {e, f} dead for a while. The link comes
/// back and the first thing to cross is f's `Confirm` of b, sent the moment
/// f declared its last peer dead; then e comes back. b is ours: the verdict
/// came from across the cut.
#[test]
fn a_confirm_from_across_the_cut_does_not_take_our_member_off_our_side() {
    let mut heal = node_with_sides("a", &["b", "c", "d"], &["e", "f"], HealConfig::default(), secs(5));
    drain(&mut heal);
    heal.observe_member(ms(30_000), &id("b"), MemberStatus::Dead, 1, &[name("f")]);
    assert_eq!(heal.member(&name("b")).unwrap().death.as_ref().map(|d| d.foreign), Some(true));
    heal.observe_member(ms(30_100), &id("e"), MemberStatus::Alive, 2, &[]);
    let opened = drain(&mut heal);
    assert_eq!(detected(&opened), vec![(names(&["a", "b", "c", "d"]), names(&["e", "f"]), Some(true))]);
    assert_eq!(
        claims(&opened).iter().map(|c| (c.size, c.coordinator.to_string())).collect::<Vec<_>>(),
        [(4, "a".into())]
    );
    // b refutes: one of ours back, not another side coming back.
    heal.observe_member(ms(30_200), &id("b"), MemberStatus::Alive, 2, &[]);
    heal.observe_member(ms(30_300), &id("f"), MemberStatus::Alive, 2, &[]);
    assert!(detected(&drain(&mut heal)).is_empty());
    heal.tick(secs(60));
    let decided = drain(&mut heal);
    assert_eq!(healed(&decided), vec![(names(&["a", "b", "c", "d"]), names(&["e", "f"]))]);
    assert!(rejoins(&decided).is_empty(), "{decided:?}");
}

/// A verdict our own side reached is not from across the cut: a member
/// declared dead by one of ours stays off our side.
#[test]
fn a_death_declared_by_our_side_still_counts_as_theirs() {
    let mut heal = node_with_sides("a", &["b", "c", "d"], &["e", "f"], HealConfig::default(), secs(5));
    heal.observe_member(ms(29_900), &id("d"), MemberStatus::Dead, 1, &[name("c")]);
    assert_eq!(heal.member(&name("d")).unwrap().death.as_ref().map(|d| d.foreign), Some(false));
    drain(&mut heal);
    heal.observe_member(ms(30_100), &id("e"), MemberStatus::Alive, 2, &[]);
    let opened = drain(&mut heal);
    let (ours, _, _) = detected(&opened).pop().expect("the comeback opens an episode");
    assert_eq!(ours, names(&["a", "b", "c"]));
}

/// The small side {e, f} declared a and c dead, but still only suspects b
/// and d (suspect since long before the heal) when the link comes back:
/// b and d are not on its side, and it must not claim four members with
/// the big side's coordinator.
#[test]
fn members_suspect_since_long_before_the_heal_are_not_our_side() {
    let mut heal = node_with_sides("e", &["f"], &[], HealConfig::default(), secs(0));
    for n in ["a", "b", "c", "d"] {
        heal.observe_member(secs(1), &id(n), MemberStatus::Alive, 1, &[]);
    }
    for n in ["a", "b", "c", "d"] {
        heal.observe_member(secs(12), &id(n), MemberStatus::Suspect, 1, &[]);
    }
    for n in ["a", "c"] {
        heal.observe_member(secs(25), &id(n), MemberStatus::Dead, 1, &[name("e"), name("f")]);
    }
    drain(&mut heal);
    // The big side's view: it holds e and f dead.
    heal.observe_remote_view(secs(30), &id("a"), &view(&["a", "b", "c", "d"], &["e", "f"]));
    let opened = drain(&mut heal);
    assert_eq!(
        claims(&opened).iter().map(|c| (c.size, c.coordinator.to_string())).collect::<Vec<_>>(),
        [(2, "e".into())]
    );
    let (ours, _, majority) = detected(&opened).pop().expect("a partition");
    assert_eq!((ours, majority), (names(&["e", "f"]), Some(false)));
    // b refutes its suspicion now that the link is back: it comes back from
    // across the cut, like a and c.
    heal.observe_member(ms(30_300), &id("b"), MemberStatus::Alive, 2, &[]);
    assert!(heal.member(&name("b")).unwrap().returned_at.is_some());
    heal.tick(secs(40));
    let decided = drain(&mut heal);
    assert_eq!(healed(&decided), vec![(names(&["a", "b", "c", "d"]), names(&["e", "f"]))]);
    assert_eq!(rejoins(&decided).len(), 1, "{decided:?}");
}

/// A member suspected a moment before the heal (by a view merged from the
/// other side) is still ours.
#[test]
fn a_fresh_suspicion_does_not_take_our_member_off_our_side() {
    let mut heal = node_with_sides("a", &["b", "c", "d"], &["e", "f"], HealConfig::default(), secs(5));
    heal.observe_member(ms(29_500), &id("c"), MemberStatus::Suspect, 1, &[]);
    drain(&mut heal);
    heal.observe_remote_view(secs(30), &id("e"), &view(&["e", "f"], &["a", "b", "c", "d"]));
    let (ours, _, _) = detected(&drain(&mut heal)).pop().expect("a partition");
    assert_eq!(ours, names(&["a", "b", "c", "d"]));
}

/// The other side's own views can be polluted too: b's view holds a, c and
/// d dead by our verdicts that crossed the link, so its report is {b}
/// alone, sharing no member with a's report {a, c, d}. b's claim names a
/// as its coordinator, so b is on a's side: one winning side, not two.
#[test]
fn a_report_split_by_crossing_verdicts_is_joined_again_by_the_claims() {
    let mut heal = node_with_sides("e", &["f"], &["a", "b", "c", "d"], HealConfig::default(), secs(5));
    drain(&mut heal);
    heal.observe_remote_view(secs(30), &id("b"), &view(&["b"], &["a", "c", "d", "e", "f"]));
    heal.observe_remote_view(ms(30_050), &id("a"), &view(&["a", "c", "d"], &["b", "e", "f"]));
    let claim = Claim { seq: 1, size: 4, coordinator: name("a") };
    for publisher in ["a", "b", "c", "d"] {
        heal.observe_claim(ms(30_100), &name(publisher), &claim);
    }
    drain(&mut heal);
    heal.tick(secs(40));
    let decided = drain(&mut heal);
    assert_eq!(healed(&decided), vec![(names(&["a", "b", "c", "d"]), names(&["e", "f"]))]);
    assert_eq!(rejoins(&decided).len(), 1, "{decided:?}");
}
