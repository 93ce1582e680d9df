//! The probes' stream fallback (issue #16) in the simulator: under heavy
//! datagram loss, live members are not suspected because a probe whose
//! datagrams were lost is answered over a stream; with the fallback off
//! the same run suspects them. A crash is still found (a stream to a dead
//! node fails), and so is a member cut off by a partition.

use gossamer_sim::{Report, Scenario, Simulation};

/// 16 converged nodes, 30% datagram loss, node 5 crashes at period 20.
const HEAVY_LOSS: &str = r#"
name = "heavy-loss"
description = "16 converged nodes, 30% datagram loss, node 5 crashes"
seed = 1
nodes = 16
duration = "40 periods"

[cluster]
start = "converged"

[protocol]
preset = "lan"
stream_pings = STREAM_PINGS

[network]
latency = { uniform = { min = "500us", max = "1500us" } }
loss = 0.30

[[fault]]
at = "20 periods"
kind = "crash"
nodes = [5]

[[assert]]
kind = "all_know_within"
node = 5
periods = 20
"#;

fn run(stream_pings: bool, seed: u64) -> Report {
    let mut s = Scenario::from_toml(&HEAVY_LOSS.replace("STREAM_PINGS", &stream_pings.to_string())).unwrap();
    s.seed = seed;
    Simulation::new(s).unwrap().run()
}

#[test]
fn under_heavy_loss_live_members_are_not_suspected_thanks_to_the_stream_fallback() {
    for seed in 1..=3 {
        let with = run(true, seed);
        assert!(with.passed, "seed {seed}: the crash is still found by all: {with}");
        assert_eq!(with.accuracy.false_positives, 0, "seed {seed}: {with}");
        assert_eq!(with.accuracy.false_suspicions, 0, "seed {seed}: no live member suspected: {with}");
        assert!(with.protocol.stream_ping_acks > 50, "seed {seed}: the fallback answered probes: {with}");
        assert!(with.traffic.stream_ping_failures > 0, "seed {seed}: pings of the crashed node fail: {with}");

        // The control: the same run without the fallback suspects live members.
        let without = run(false, seed);
        assert!(without.accuracy.false_suspicions > 0, "seed {seed}: {without}");
        assert_eq!((without.traffic.stream_pings, without.protocol.stream_ping_acks), (0, 0));
        assert!(
            with.traffic.datagrams < without.traffic.datagrams,
            "seed {seed}: fewer suspicions, less gossip: {} vs {} datagrams",
            with.traffic.datagrams,
            without.traffic.datagrams
        );
    }
}

/// 16 converged nodes, 10% datagram loss, nodes 0-3 cut from the rest.
const PARTITION: &str = r#"
name = "partition-under-loss"
description = "16 converged nodes, 10% datagram loss, nodes 0-3 cut from the rest at period 10"
seed = 1
nodes = 16
duration = "40 periods"

[cluster]
start = "converged"

[protocol]
preset = "lan"

[network]
latency = { uniform = { min = "500us", max = "1500us" } }
loss = 0.10

[[fault]]
at = "10 periods"
kind = "partition"
groups = ["0..4", "4..16"]
"#;

#[test]
fn a_partition_still_cuts_the_stream_fallback() {
    // Streams do not cross a partition: each side still declares the
    // other dead, whatever the fallback (the 4 x 12 x 2 = 96 views across
    // the cut: 76 turn dead within the 30 periods, as without the fallback).
    let r = Simulation::new(Scenario::from_toml(PARTITION).unwrap()).unwrap().run();
    assert!(!r.single_cluster_at_end, "{r}");
    assert!(r.faults[0].deaths >= 48, "the cut is seen through the fallback: {r}");
    assert_eq!(r.accuracy.false_positives, 0, "{r}");
    assert!(r.traffic.stream_ping_failures > 0, "streams across the cut fail: {r}");
}
