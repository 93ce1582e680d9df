//! Application broadcast throughput in simulation (issue #10): 200 nodes on
//! a LAN each broadcast 3 items of 64 B (600 broadcasts, ~120,000
//! deliveries) while the real gossamer-core runs SWIM. Criterion's
//! elements/s figure is deliveries per wall second, cluster-wide; the
//! virtual-time figures (deliveries per protocol period, bytes per
//! delivery, time to full delivery) are printed once before measuring.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gossamer_sim::{Scenario, Simulation};

/// `nodes` nodes, each broadcasting `rounds` times (one `broadcast` fault
/// per round, 5 periods apart, each spread over 5 periods), then 20 quiet
/// periods for the slowest deliveries.
fn scenario(nodes: u32, rounds: u32) -> Scenario {
    let mut text = format!(
        r#"
name = "broadcast-bench"
seed = 1
nodes = {nodes}
duration = "{duration} periods"
[cluster]
seeds = 3
join_spread = "5 periods"
[network]
latency = {{ lognormal = {{ median = "700us", sigma = 0.5 }} }}
loss = 0.01
"#,
        duration = 10 + 5 * rounds + 20
    );
    for round in 0..rounds {
        text.push_str(&format!(
            "[[fault]]\nat = \"{} periods\"\nkind = \"broadcast\"\nnodes = \"all\"\nspread = \"5 periods\"\npayload = 64\n",
            10 + 5 * round
        ));
    }
    Scenario::from_toml(&text).expect("valid scenario")
}

fn bench_broadcast(c: &mut Criterion) {
    let mut group = c.benchmark_group("broadcast");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(20));
    let s = scenario(200, 3);
    let report = Simulation::new(s.clone()).expect("valid scenario").run();
    let base = Simulation::new(s.without_broadcasts()).expect("valid scenario").run();
    let b = report.broadcasts.clone().expect("a broadcast section");
    assert!(b.deliveries > 0 && b.corrupt == 0, "{report}");
    let bytes = |r: &gossamer_sim::Report| (r.traffic.datagram_bytes + r.traffic.stream_bytes) as f64;
    println!(
        "broadcast/200_nodes_x3: {} broadcasts, {} deliveries ({} duplicates), coverage {:.5}; full delivery {}; \
         {:.0} deliveries per period; {:.1} item bytes and {:.1} extra bytes on the wire per delivery \
         ({:.0} B per item, {} items piggybacked)",
        b.sent,
        b.deliveries,
        b.duplicates,
        b.coverage,
        b.full_delivery.map_or("none".to_owned(), |p| p.to_string()),
        b.deliveries_per_period,
        b.item_bytes_per_delivery,
        (bytes(&report) - bytes(&base)) / b.deliveries.max(1) as f64,
        b.item_bytes,
        b.user_items_sent
    );
    group.throughput(Throughput::Elements(b.deliveries));
    group.bench_function("200_nodes_x3_deliveries", |bench| {
        bench.iter(|| Simulation::new(s.clone()).expect("valid scenario").run())
    });
    group.finish();
}

criterion_group!(benches, bench_broadcast);
criterion_main!(benches);
