//! Flapping links must not cause heal storms.

mod common;

use common::*;
use gossamer_heal::HealConfig;
use gossamer_wire::MemberStatus;

#[test]
fn flapping_link_heals_with_growing_hold_downs() {
    let config = HealConfig {
        settle: secs(5),
        hold_down: secs(30),
        backoff_factor: 2,
        max_hold_down: secs(240),
        flap_window: secs(3600),
        ..HealConfig::default()
    };
    let ours = ["a", "b", "c"];
    let theirs = ["d", "e"];
    let mut heal = node_with_sides("a", &ours, &theirs, config, secs(1));
    let mut heal_times = Vec::new();
    // For 30 minutes the link flaps every 10 s: the other side is alternately
    // cut off (dead) and reachable with a conflicting view.
    for t in (10..1800).step_by(10) {
        let now = secs(t);
        if (t / 10) % 2 == 0 {
            for n in theirs {
                heal.observe_member(now, &id(n), MemberStatus::Dead, 1, &[name("b")]);
            }
        } else {
            heal.observe_remote_view(now, &id("d"), &view(&theirs, &ours));
        }
        for s in 0..10 {
            heal.tick(now + secs(s));
            if !healed(&drain(&mut heal)).is_empty() {
                heal_times.push((t + s) as i64);
            }
        }
    }
    eprintln!("heal times: {heal_times:?}");
    // Gaps between heals at least double until the cap: 30, 60, 120, 240, 240...
    let gaps: Vec<i64> = heal_times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(heal_times.len() >= 3, "{heal_times:?}");
    for (i, gap) in gaps.iter().enumerate() {
        let hold = (30 * 2i64.pow(i as u32)).min(240);
        assert!(*gap >= hold, "gap {i} is {gap}s, hold-down was {hold}s: {heal_times:?}");
    }
    // Without hold-down there would be a heal every 20 s (about 90).
    assert!(heal_times.len() <= 12, "{heal_times:?}");
    assert!(heal.metrics().suppressed > 0);
}

#[test]
fn probes_pause_during_hold_down() {
    let config = HealConfig { probe_interval: secs(1), hold_down: secs(30), ..HealConfig::default() };
    let mut heal = node_with_sides("a", &["a", "b"], &["c", "d", "e"], config, secs(1));
    heal.observe_remote_view(secs(2), &id("c"), &view(&["c", "d", "e"], &["a", "b"]));
    heal.tick(secs(12));
    drain(&mut heal);
    let until = heal.hold_down_until(secs(12)).expect("hold-down running");
    assert_eq!(until, secs(42));
    for t in 13..42 {
        heal.tick(secs(t));
        assert!(drain(&mut heal).is_empty(), "at {t}s");
    }
    heal.tick(secs(42));
    assert_eq!(commands(&drain(&mut heal)).len(), 1);
}
