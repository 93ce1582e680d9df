//! Simulator throughput: simulated node-periods per wall second on the
//! shipped `simulations/large.toml` scenario (criterion's elements/s figure
//! is node-periods per second).
//!
//! The 1,000-node case always runs. The 10,000-node case (large.toml as
//! shipped) runs only with `GOSSAMER_SIM_BENCH_10K=1`: with the current
//! gossamer-core every node keeps 0.5-0.75 KB per member it knows (member
//! table, indexes, gossip queue), so 10,000 fully meshed nodes need roughly
//! 50 GB, more than the 24 GiB this project's machines have.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gossamer_sim::{Scenario, Simulation};

fn large(nodes: Option<u32>) -> Scenario {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../simulations/large.toml");
    let mut s = Scenario::from_file(path).expect("simulations/large.toml");
    if let Some(n) = nodes {
        s.nodes = n;
    }
    s
}

fn bench_sim(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(30));
    let mut cases = vec![large(Some(1_000))];
    if std::env::var_os("GOSSAMER_SIM_BENCH_10K").is_some() {
        cases.push(large(None));
    }
    for scenario in cases {
        let probe = Simulation::new(scenario.clone()).expect("valid scenario").run();
        let node_periods = probe.traffic.node_periods.round() as u64;
        group.throughput(Throughput::Elements(node_periods));
        group.bench_function(format!("large_{}_nodes", scenario.nodes), |b| {
            b.iter(|| Simulation::new(scenario.clone()).expect("valid scenario").run())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_sim);
criterion_main!(benches);
