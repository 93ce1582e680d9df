//! Every shipped scenario (except large.toml, which the criterion bench
//! runs) against the real gossamer-core (and gossamer-heal for the
//! `heal-*` ones), plus determinism (the `gossamer sim` front end is tested
//! in gossamer-cli).

use std::path::PathBuf;
use std::time::Duration;

use gossamer_sim::{Report, Scenario, Simulation};

fn scenario_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../simulations").join(name)
}

fn run(name: &str) -> Report {
    let scenario = Scenario::from_file(scenario_path(name)).unwrap();
    let report = Simulation::new(scenario).unwrap().run();
    println!("{report}");
    report
}

fn assert_passes(name: &str) -> Report {
    let report = run(name);
    assert!(report.passed, "{name} failed:\n{report}");
    assert!(!report.assertions.is_empty(), "{name} asserts nothing");
    report
}

#[test]
fn quickstart() {
    let r = assert_passes("quickstart.toml");
    let crash = &r.faults[0];
    assert_eq!(crash.nodes, vec![17]);
    let (first, spread, all) = (crash.first_suspect.unwrap(), crash.all_suspect.unwrap(), crash.all_know.unwrap());
    assert!(first.periods <= spread.periods && spread.periods <= all.periods, "{crash:?}");
    assert!(crash.first_dead.is_some());
    assert_eq!(r.accuracy.false_positives, 0);
    assert!(r.traffic.msgs_per_member_per_period > 1.0);
}

#[test]
fn lossy_lan() {
    let r = assert_passes("lossy-lan.toml");
    assert!(r.traffic.lost > 0, "10% loss must drop datagrams");
    assert!(r.faults[0].nodes.len() >= 6, "5% of 128 members are slow");
}

#[test]
fn partition_heal() {
    let r = assert_passes("partition-heal.toml");
    assert!(r.faults[0].split.is_some() && r.faults[1].converged.is_some());
    assert!(r.traffic.cut > 0);
}

#[test]
fn asymmetric() {
    let r = assert_passes("asymmetric.toml");
    assert!(r.traffic.cut > 0, "the one-way cut must drop node 5's datagrams");
}

#[test]
fn churn() {
    let r = assert_passes("churn.toml");
    assert!(r.faults.iter().filter(|f| f.kind == "leave").all(|f| f.all_know.is_some()), "{r}");
    assert!(r.faults.iter().filter(|f| f.kind == "join").all(|f| f.converged.is_some()), "{r}");
}

/// The heal section of a heal scenario's report, after checking that the
/// scenario passed and that its heal assertions were evaluated.
fn assert_heal_passes(name: &str) -> (Report, gossamer_sim::HealReport) {
    let r = assert_passes(name);
    let heal = r.heal.clone().unwrap_or_else(|| panic!("{name} ran without the heal layer"));
    assert!(r.assertions.len() >= 5, "{name} has too few assertions");
    (r, heal)
}

/// Decisions and rejoins after the `heal` fault `fault`.
fn reconnection(heal: &gossamer_sim::HealReport, fault: usize) -> &gossamer_sim::HealTiming {
    heal.reconnections.iter().find(|t| t.fault == fault).expect("a heal fault")
}

#[test]
fn heal_symmetric() {
    let (_, heal) = assert_heal_passes("heal-symmetric.toml");
    let t = reconnection(&heal, 1);
    assert_eq!((t.participants, t.decided_by, t.rejoined_by), (32, 32, 16));
    let (decided, converged) = (t.all_decided.unwrap(), t.converged.unwrap());
    assert!(decided.periods >= 10.0, "the decision waits for `settle` (10 s): {decided}");
    assert!(converged.periods < decided.periods, "the core merges before the heal layer decides");
}

#[test]
fn heal_70_30() {
    let (_, heal) = assert_heal_passes("heal-70-30.toml");
    assert_eq!(heal.rejoins, 12, "exactly the minority rejoins");
}

#[test]
fn heal_asymmetric_cut() {
    let (_, heal) = assert_heal_passes("heal-asymmetric-cut.toml");
    assert_eq!(heal.rejoins, 10);
}

#[test]
fn heal_bridged_cut() {
    let (r, heal) = assert_heal_passes("heal-bridged-cut.toml");
    assert_eq!((heal.detections, heal.decisions), (0, 0));
    assert!(r.faults[0].suspicions > 0, "the cut is felt (suspicions), but refuted through the bridges");
}

#[test]
fn heal_three_way() {
    let (_, heal) = assert_heal_passes("heal-three-way.toml");
    assert_eq!(reconnection(&heal, 1).rejoined_by, 18);
}

#[test]
fn heal_flapping() {
    let (_, heal) = assert_heal_passes("heal-flapping.toml");
    // Eight cuts, but the backed-off hold-down lets each node decide far
    // fewer times.
    assert!(heal.max_decisions_per_node < 8, "{heal:?}");
    assert!(heal.decisions > 0);
}

#[test]
fn heal_split_during_churn() {
    let (_, heal) = assert_heal_passes("heal-split-during-churn.toml");
    assert_eq!(heal.rejoins, 10, "the far side (minus crashed 25 and restarted 27) rejoins");
}

#[test]
fn heal_while_crash() {
    let (r, heal) = assert_heal_passes("heal-while-crash.toml");
    assert_eq!(heal.false_removals, 0);
    // 30 survivors forget the 2 crashed nodes, each after holding it dead
    // for the 90 s autoclean at least.
    assert_eq!(heal.removals, 60);
    assert!(heal.earliest_removal.unwrap().ms >= 90_000.0, "{heal:?}");
    assert!(r.single_cluster_at_end);
}

#[test]
fn heal_immediate() {
    let (_, heal) = assert_heal_passes("heal-immediate.toml");
    let t = reconnection(&heal, 1);
    assert_eq!((t.participants, t.decided_by, t.rejoined_by), (6, 6, 2));
}

/// When the small side of a 4/2 split declared its last peer across the
/// cut dead, from a run whose cut heals only at the very end (the trace's
/// `view N sees M Dead` lines).
fn last_small_side_death(text: &str, seed: u64) -> Duration {
    let mut s = Scenario::from_toml(text).unwrap();
    s.seed = seed;
    s.faults[1].at = gossamer_sim::Span::Periods(149.0);
    let trace = String::from_utf8(Simulation::new(s).unwrap().run_traced().1).unwrap();
    let us = trace
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // "<µs> view <node> sees <member> Dead"
            let crosses = f.len() == 6 && f[1] == "view" && f[2].parse::<u32>().is_ok_and(|n| n >= 4) && f[5] == "Dead";
            (crosses && f[4].parse::<u32>().is_ok_and(|n| n < 4)).then(|| f[0].parse::<u64>().unwrap())
        })
        .max()
        .expect("the small side declares the big side dead");
    Duration::from_micros(us)
}

/// Issue #7: a cut healing right when the small side declares its last
/// peer dead (its `Confirm` crosses into the big side, which briefly holds
/// one of its own dead, while the small side still suspects others of the
/// big side). Whatever the seed and the exact moment, every node must
/// compute the same sides: the four win, the two rejoin.
#[test]
fn heal_at_the_moment_of_the_last_death_agrees_whatever_the_timing() {
    let text = std::fs::read_to_string(scenario_path("heal-immediate.toml")).unwrap();
    let mut failures = Vec::new();
    for seed in [1, 2, 3, 4, 5, 7] {
        let last = last_small_side_death(&text, seed);
        for offset_ms in [-1000i64, -400, -100, 0, 1, 50, 300, 800] {
            let at = Duration::from_millis((last.as_millis() as i64 + offset_ms) as u64);
            let mut s = Scenario::from_toml(&text).unwrap();
            s.seed = seed;
            s.faults[1].at = gossamer_sim::Span::Time(at);
            let r = Simulation::new(s).unwrap().run();
            if !r.passed {
                let failed: Vec<String> =
                    r.assertions.iter().filter(|a| !a.passed).map(|a| a.description.clone()).collect();
                failures.push(format!("seed {seed}, heal at {at:?} (last death {offset_ms:+} ms): {failed:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} runs disagree:\n{}", failures.len(), failures.join("\n"));
}

/// The heal assertions can fail: the same runs with the wrong expectations.
#[test]
fn heal_assertions_fail_on_wrong_expectations() {
    let text = std::fs::read_to_string(scenario_path("heal-symmetric.toml")).unwrap();
    let wrong = text
        .replace("group = \"low\"", "group = \"high\"")
        .replace("kind = \"rejoined\"\nfault = 1\ngroup = \"high\"", "kind = \"rejoined\"\nfault = 1\ngroup = \"0..8\"")
        .replace("periods = 60", "periods = 5");
    let r = Simulation::new(Scenario::from_toml(&wrong).unwrap()).unwrap().run();
    let failed: Vec<&str> = r.assertions.iter().filter(|a| !a.passed).map(|a| a.description.as_str()).collect();
    assert!(!r.passed);
    for what in ["winners are group \"high\"", "exactly group \"0..8\" rejoined", "within 5 periods"] {
        assert!(failed.iter().any(|d| d.contains(what)), "{what:?} should fail: {failed:?}");
    }
    // Autoclean cannot forget the crashed nodes within 50 periods: its
    // timeout alone is 90.
    let text = std::fs::read_to_string(scenario_path("heal-while-crash.toml")).unwrap();
    let wrong = text.replace("periods = 130", "periods = 50").replace("count = 28", "count = 33");
    let r = Simulation::new(Scenario::from_toml(&wrong).unwrap()).unwrap().run();
    let failed: Vec<&str> = r.assertions.iter().filter(|a| !a.passed).map(|a| a.description.as_str()).collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed.iter().any(|d| d.contains("autoclean forgets fault #2's nodes within 50 periods")), "{failed:?}");
    assert!(failed.iter().any(|d| d.contains("at least 33 nodes")), "{failed:?}");
    // Without the heal layer, heal assertions are refused up front.
    let text = std::fs::read_to_string(scenario_path("heal-symmetric.toml")).unwrap();
    let plain = text.replace("autoclean = \"24h\"", "enabled = false");
    let err = Scenario::from_toml(&plain).unwrap_err().to_string();
    assert!(err.contains("needs an enabled [heal] section"), "{err}");
}

#[test]
fn heal_runs_are_deterministic() {
    let run = |seed: u64| {
        let mut s = Scenario::from_file(scenario_path("heal-while-crash.toml")).unwrap();
        s.seed = seed;
        Simulation::new(s).unwrap().run_traced()
    };
    let (r1, a) = run(5);
    let (r2, b) = run(5);
    assert!(a == b, "two runs of heal-while-crash with seed 5 differ");
    assert!(String::from_utf8_lossy(&a).contains(" heal "), "the trace records heal decisions");
    assert_eq!(r1.heal, r2.heal);
    assert_eq!(r1.faults, r2.faults);
}

#[test]
fn large_scenario_parses() {
    let s = Scenario::from_file(scenario_path("large.toml")).unwrap();
    assert_eq!(s.nodes, 10_000);
}

fn trace(seed: u64) -> (Report, Vec<u8>) {
    let mut s = Scenario::from_file(scenario_path("quickstart.toml")).unwrap();
    s.seed = seed;
    Simulation::new(s).unwrap().run_traced()
}

#[test]
fn same_seed_gives_identical_trace_bytes() {
    let (r1, a) = trace(11);
    let (r2, b) = trace(11);
    let (_, c) = trace(12);
    assert!(a.len() > 100_000, "trace is only {} bytes", a.len());
    assert!(a == b, "two runs with seed 11 differ");
    assert!(a != c, "seeds 11 and 12 gave the same trace");
    assert_eq!(r1.faults, r2.faults);
    assert_eq!(r1.traffic, r2.traffic);
    assert_eq!(r1.samples, r2.samples);
}
