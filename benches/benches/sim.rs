//! Simulator throughput: simulated node-periods per wall second (criterion's
//! elements/s figure is node-periods per second, setup included), with the
//! real gossamer-core in every node.
//!
//! Always run (about a minute in all):
//! - `large_converged_1000_nodes`: `simulations/large-converged.toml` cut
//!   to 1,000 nodes: a cluster that converged long ago (`start =
//!   "converged"`), 100 periods, 10 crashes at period 60;
//! - `large_500_nodes`: `simulations/large.toml` cut to 500 nodes: the
//!   same run from a cold start, every node joining in the first 20
//!   periods (the O(n²) join storm, ~5x the cost per node-period).
//!
//! Opt-in:
//! - `GOSSAMER_SIM_BENCH_10K=1` adds `large_converged_10000_nodes`,
//!   large-converged.toml as shipped: ~90 s and ~12.4 GB peak per run, and
//!   criterion makes 12 runs (~15 minutes);
//! - `GOSSAMER_SIM_BENCH_10K_JOIN=1` adds large.toml as shipped (10,000
//!   nodes joining): every node learns 10,000 members through gossip, which
//!   needs roughly 50 GB, more than the 24 GiB of this project's machines.
//!
//! Each case is one simulation per iteration (flat sampling, 10 samples).

use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use gossamer_sim::{Scenario, Simulation};

fn scenario(file: &str, nodes: Option<u32>) -> Scenario {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../simulations").join(file);
    let mut s = Scenario::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if let Some(n) = nodes {
        s.nodes = n;
    }
    s
}

fn bench_sim(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(30));
    let mut cases = vec![
        ("large_converged", scenario("large-converged.toml", Some(1_000))),
        ("large", scenario("large.toml", Some(500))),
    ];
    if std::env::var_os("GOSSAMER_SIM_BENCH_10K").is_some() {
        cases.push(("large_converged", scenario("large-converged.toml", None)));
    }
    if std::env::var_os("GOSSAMER_SIM_BENCH_10K_JOIN").is_some() {
        cases.push(("large", scenario("large.toml", None)));
    }
    for (name, scenario) in cases {
        let probe = Simulation::new(scenario.clone()).expect("valid scenario").run();
        assert!(probe.passed, "{name} failed:\n{probe}");
        let node_periods = probe.traffic.node_periods.round() as u64;
        group.throughput(Throughput::Elements(node_periods));
        group.bench_function(format!("{name}_{}_nodes", scenario.nodes), |b| {
            b.iter(|| Simulation::new(scenario.clone()).expect("valid scenario").run())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_sim);
criterion_main!(benches);
