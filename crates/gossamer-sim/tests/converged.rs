//! `[cluster] start = "converged"`: the initial nodes start as one cluster
//! that converged long ago (gossamer-core's `Swim::start_converged`), so a
//! crash is detected with no join storm first, and a run is still a pure
//! function of its seed.

use gossamer_sim::{Report, Scenario, Simulation, Start};

const CONVERGED: &str = r#"
    name = "converged-200"
    seed = 4
    nodes = 200
    duration = "40 periods"
    [cluster]
    start = "converged"
    seeds = 3
    [network]
    latency = { lognormal = { median = "1ms", sigma = 0.5 } }
    loss = 0.01
    [[fault]]
    at = "15 periods"
    kind = "crash"
    nodes = "random(2)"
    [[fault]]
    at = "18 periods"
    kind = "join"
    count = 2
    [[assert]]
    kind = "first_detection_within"
    fault = 0
    periods = 5
    [[assert]]
    kind = "all_know_within"
    fault = 0
    periods = 24
    [[assert]]
    kind = "false_positives_at_most"
    count = 0
"#;

fn traced(seed: u64) -> (Report, Vec<u8>) {
    let mut s = Scenario::from_toml(CONVERGED).unwrap();
    s.seed = seed;
    Simulation::new(s).unwrap().run_traced()
}

#[test]
fn a_converged_start_detects_a_crash_without_joining_first() {
    let (r, trace) = traced(4);
    println!("{r}");
    assert!(r.passed, "{r}");
    let first = &r.samples[0];
    assert_eq!(first.t_ms, 0.0);
    assert_eq!((first.live, first.alive), (200, 199.0), "everyone sees everyone alive from time zero");
    let text = String::from_utf8(trace).unwrap();
    // No join storm: a joining start opens one stream per node (199) in
    // its first periods; here the only streams before the joins of period
    // 18 are periodic push-pulls, which at 200 members come about every
    // two minutes per node (~17 in 10 periods).
    let early = |l: &&str, us: u64| l.split_whitespace().next().unwrap().parse::<u64>().unwrap() < us;
    let first_ten: Vec<&str> = text.lines().take_while(|l| early(l, 10_000_000)).collect();
    let streams = first_ten.iter().filter(|l| l.contains("stream-request")).count();
    assert!(streams < 60, "{streams} streams in the first 10 periods");
    assert!(first_ten.iter().take_while(|l| early(l, 1_000_000)).any(|l| l.contains(" send ")), "probes at once");
    let crash = &r.faults[0];
    assert_eq!(crash.nodes.len(), 2);
    assert!(crash.first_suspect.unwrap().periods <= 5.0 && crash.all_know.is_some(), "{crash:?}");
    // Nodes added later join through the seeds as usual.
    assert!(r.faults[1].converged.is_some(), "the two joiners converged: {:?}", r.faults[1]);
    assert!(r.traffic.streams > 0, "the joiners' push-pulls");
    assert_eq!(r.live_at_end, 200);
    assert!(r.performance.setup_secs >= 0.0 && r.performance.setup_secs <= r.performance.wall_secs);
}

#[test]
fn a_converged_run_is_a_pure_function_of_its_seed() {
    let (r1, a) = traced(9);
    let (r2, b) = traced(9);
    let (_, c) = traced(10);
    assert!(a.len() > 100_000, "trace is only {} bytes", a.len());
    assert!(a == b, "two runs with seed 9 differ");
    assert!(a != c, "seeds 9 and 10 gave the same trace");
    assert_eq!(r1.faults, r2.faults);
    assert_eq!(r1.traffic, r2.traffic);
    assert_eq!(r1.samples, r2.samples);
}

#[test]
fn a_converged_start_works_with_the_heal_layer() {
    let text = r#"
        name = "converged-heal"
        nodes = 16
        duration = "60 periods"
        [cluster]
        start = "converged"
        [heal]
        [[fault]]
        at = "5 periods"
        kind = "partition"
        groups = ["0..8"]
        [[fault]]
        at = "30 periods"
        kind = "heal"
        [[assert]]
        kind = "converged_within"
        fault = 1
        periods = 25
    "#;
    let s = Scenario::from_toml(text).unwrap();
    assert_eq!(s.cluster.start, Start::Converged);
    let r = Simulation::new(s).unwrap().run();
    println!("{r}");
    assert_eq!(r.samples[0].alive, 15.0);
    assert!(r.faults[0].split.is_some(), "the cut split the converged cluster: {:?}", r.faults[0]);
    assert!(r.passed, "{r}");
}

#[test]
fn the_shipped_large_converged_scenario_parses() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../simulations/large-converged.toml");
    let s = Scenario::from_file(path).unwrap();
    assert_eq!((s.nodes, s.cluster.start), (10_000, Start::Converged));
}

/// A converged start gossips nothing (issue #16): every node already knows
/// every other, so with no fault and no loss the only datagrams are the
/// probes and their acks, one of each per node and period. Before
/// `Swim::start_converged`, every node's own `Alive` went out for its whole
/// retransmit budget first (3.06 datagrams per node-period over the
/// first 10 periods at 128 nodes instead of 2.0).
#[test]
fn a_converged_start_has_no_start_up_burst() {
    let quiet = r#"
        name = "converged-quiet"
        seed = 3
        nodes = 128
        duration = "10 periods"
        [cluster]
        start = "converged"
        [network]
        latency = { uniform = { min = "500us", max = "1500us" } }
    "#;
    let r = Simulation::new(Scenario::from_toml(quiet).unwrap()).unwrap().run();
    let per_node_period = r.traffic.datagrams as f64 / r.traffic.node_periods;
    assert!(
        (1.9..=2.01).contains(&per_node_period),
        "{per_node_period:.3} datagrams per node-period: probes and acks only ({:?})",
        r.traffic
    );
    assert_eq!((r.protocol.suspicions_raised, r.accuracy.suspicions), (0, 0));
}
