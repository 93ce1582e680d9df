//! Issue #19: failure detection in half memberlist's time with no more
//! false deaths. The `fast` preset against memberlist's own
//! timings (`memberlist` preset) on the shipped scenarios, a few fixed
//! seeds each. The full sweep (settings x sizes x 20 seeds) is
//! `scripts/detection_sweep.sh`; figures in BENCHMARKS.md.
//!
//! The simulations are 128 nodes for 45-90 periods: seconds in a release
//! build, minutes in a debug one, so these run with `--release` only.

use std::path::PathBuf;

use gossamer_sim::{Report, Scenario, Simulation};

fn scenario(file: &str, preset: &str, seed: u64) -> Scenario {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../simulations").join(file);
    let mut s = Scenario::from_file(path).unwrap();
    s.seed = seed;
    s.protocol.set("preset", preset).unwrap();
    s
}

fn run(file: &str, preset: &str, seed: u64) -> Report {
    Simulation::new(scenario(file, preset, seed)).unwrap().run()
}

/// Periods from the crash until every live member holds it dead.
fn all_know(r: &Report) -> f64 {
    let crash = r.faults.iter().find(|f| f.kind == "crash").expect("a crash fault");
    crash.all_know.as_ref().unwrap_or_else(|| panic!("crash never known by all: {r}")).periods
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[test]
#[cfg_attr(debug_assertions, ignore = "128 nodes x 45 periods x 10 runs: run with --release")]
fn the_fast_preset_knows_a_crash_in_half_memberlists_time() {
    let seeds = 1..=5;
    let fast: Vec<f64> = seeds.clone().map(|seed| all_know(&run("detection.toml", "fast", seed))).collect();
    let memberlist: Vec<f64> = seeds.map(|seed| all_know(&run("detection.toml", "memberlist", seed))).collect();
    let (fast, memberlist) = (median(fast), median(memberlist));
    println!("all know dead: fast {fast:.2} periods, memberlist {memberlist:.2}");
    assert!(fast <= 5.0, "issue #19's target at 128 nodes: {fast:.2} periods");
    assert!(fast <= 0.5 * memberlist, "{fast:.2} vs memberlist's {memberlist:.2}");
    assert!(memberlist >= 9.0, "the memberlist preset keeps memberlist's timings: {memberlist:.2}");
}

#[test]
#[cfg_attr(debug_assertions, ignore = "128 nodes x 90 periods x 4 runs: run with --release")]
fn the_fast_preset_declares_no_healthy_member_dead_in_a_gray_failure() {
    for seed in 1..=4 {
        let r = run("gray-failure.toml", "fast", seed);
        assert_eq!(r.accuracy.false_positives, 0, "seed {seed}: {r}");
        assert!(all_know(&r) <= 10.0, "seed {seed}: the crash, under 25% loss and stalls: {r}");
        assert!(r.passed, "seed {seed}: {r}");
    }
}

#[test]
#[cfg_attr(debug_assertions, ignore = "128 nodes x 90 periods x 4 runs: run with --release")]
fn the_fast_preset_declares_no_healthy_member_dead_on_a_lossy_lan() {
    for seed in 1..=4 {
        let r = run("lossy-lan.toml", "fast", seed);
        assert_eq!(r.accuracy.false_positives, 0, "seed {seed}: {r}");
        assert!(r.passed, "seed {seed}: {r}");
    }
}
