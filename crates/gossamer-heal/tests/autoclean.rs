//! Autoclean reaps the long dead, and only them.

mod common;

use common::*;
use gossamer_heal::{Autoclean, HealCommand, HealConfig, HealEvent};
use gossamer_wire::MemberStatus;

fn config(autoclean: Autoclean) -> HealConfig {
    HealConfig { autoclean, probe_interval: secs(1_000_000), ..HealConfig::default() }
}

#[test]
fn dead_members_are_removed_only_after_the_timeout() {
    let mut heal = node_with_sides("a", &["a", "b", "s"], &["d"], config(Autoclean::After(secs(3600))), secs(100));
    heal.observe_member(secs(100), &id("s"), MemberStatus::Suspect, 1, &[]);
    heal.observe_member(secs(100), &id("l"), MemberStatus::Left, 1, &[]);
    heal.tick(secs(3699));
    assert!(drain(&mut heal).is_empty());
    assert_eq!(heal.next_deadline(), secs(3700));
    heal.tick(secs(3700));
    let out = drain(&mut heal);
    let mut removed: Vec<String> = events(&out)
        .into_iter()
        .map(|e| match e {
            HealEvent::MemberRemoved(n) => n.to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    removed.sort();
    assert_eq!(removed, ["d", "l"]);
    assert!(commands(&out).contains(&HealCommand::Remove(name("d"))));
    // Alive and suspect members stay however long they have been so.
    heal.tick(secs(10_000_000));
    assert!(drain(&mut heal).is_empty());
    let left: Vec<String> = heal.members().map(|r| r.id.name.to_string()).collect();
    assert_eq!(left, ["b", "s"]);
    assert_eq!(heal.metrics().removed, 2);
}

#[test]
fn a_death_refuted_in_time_resets_the_clock() {
    let mut heal = node_with_sides("a", &["a", "b", "c", "d"], &[], config(Autoclean::After(secs(100))), secs(0));
    heal.observe_member(secs(0), &id("d"), MemberStatus::Dead, 1, &[name("b")]);
    heal.observe_member(secs(90), &id("d"), MemberStatus::Alive, 2, &[]);
    heal.observe_member(secs(95), &id("d"), MemberStatus::Dead, 2, &[name("b")]);
    heal.tick(secs(150));
    assert!(drain(&mut heal).is_empty());
    heal.tick(secs(195));
    assert_eq!(events(&drain(&mut heal)), vec![HealEvent::MemberRemoved(name("d"))]);
}

#[test]
fn zero_or_off_disables_autoclean() {
    for autoclean in [Autoclean::Off, "0".parse().unwrap(), "off".parse().unwrap()] {
        let mut heal = node_with_sides("a", &["a", "b"], &["d"], config(autoclean), secs(0));
        heal.tick(secs(100 * 365 * 86_400));
        let out = drain(&mut heal);
        assert!(events(&out).is_empty(), "{autoclean}: {out:?}");
        assert!(!commands(&out).iter().any(|c| matches!(c, HealCommand::Remove(_))), "{autoclean}");
        assert_eq!(heal.members().count(), 2);
    }
}

#[test]
fn a_removed_member_that_comes_back_joins_as_new() {
    let mut heal = node_with_sides("a", &["a", "b", "c", "e"], &["d"], config(Autoclean::After(secs(60))), secs(0));
    heal.tick(secs(60));
    drain(&mut heal);
    assert!(heal.member(&name("d")).is_none());
    heal.observe_member(secs(500), &id("d"), MemberStatus::Alive, 1, &[]);
    // No trace of the old death: no comeback, no partition signal.
    assert!(drain(&mut heal).is_empty());
    let record = heal.member(&name("d")).unwrap();
    assert_eq!((record.first_seen, record.status, record.death.clone()), (secs(500), MemberStatus::Alive, None));
}
