//! Runs one scenario over many seeds and prints, per seed and in total,
//! what issue #16's loss targets count: live members declared dead (false
//! positives), views turned suspect about healthy members, suspicions
//! raised, probes saved by the stream fallback, and datagrams per node per
//! second, and the first detection of each crash (periods from the crash
//! to the first suspicion of it).
//!
//! ```text
//! cargo run --release -p gossamer-sim --example seed_sweep -- simulations/lossy-lan.toml 20 [--set key=value]...
//! ```
//! `--set` adds a `[protocol]` key (e.g. `--set stream_pings=false` for the
//! run without the probes' stream fallback). Seeds are 1..=N.

use gossamer_sim::{Scenario, Simulation};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(path), Some(seeds)) = (args.first(), args.get(1).and_then(|s| s.parse::<u64>().ok())) else {
        eprintln!("usage: seed_sweep SCENARIO SEEDS [--set key=value]...");
        std::process::exit(2);
    };
    let sets: Vec<&String> = args.iter().skip(2).filter(|a| *a != "--set").collect();
    let mut text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let extra: String = sets.iter().map(|kv| format!("{}\n", kv.replacen('=', " = ", 1))).collect();
    text = if text.contains("[protocol]\n") {
        text.replacen("[protocol]\n", &format!("[protocol]\n{extra}"), 1)
    } else {
        format!("{text}\n[protocol]\n{extra}")
    };
    println!("| seed | live declared dead | suspect views of healthy members | suspicions raised | probes saved by the stream | stream pings | datagrams/node/s | msgs/member/period | first detection of crashes (periods) | passed |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let (mut dead, mut views, mut raised, mut saved, mut pings, mut rate, mut msgs) = (0, 0, 0, 0, 0, 0.0, 0.0);
    let mut detections: Vec<f64> = Vec::new();
    for seed in 1..=seeds {
        let mut scenario = Scenario::from_toml(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        scenario.seed = seed;
        let report = Simulation::new(scenario).unwrap_or_else(|e| panic!("{path}: {e}")).run();
        let t = &report.traffic;
        let per_second = t.datagrams as f64 / (t.node_periods * report.period_ms / 1000.0);
        let a = &report.accuracy;
        let crashes: Vec<f64> = report
            .faults
            .iter()
            .filter(|f| f.kind == "crash")
            .filter_map(|f| f.first_suspect.as_ref().map(|m| m.periods))
            .collect();
        detections.extend(&crashes);
        let crashes: Vec<String> = crashes.iter().map(|p| format!("{p:.2}")).collect();
        println!(
            "| {seed} | {} | {} | {} | {} | {} | {per_second:.2} | {:.2} | {} | {} |",
            a.false_positives,
            a.false_suspicions,
            report.protocol.suspicions_raised,
            report.protocol.stream_ping_acks,
            t.stream_pings,
            t.msgs_per_member_per_period,
            crashes.join(", "),
            report.passed
        );
        for failed in report.assertions.iter().filter(|a| !a.passed) {
            eprintln!("seed {seed}: [FAIL] {} ({})", failed.description, failed.detail);
        }
        dead += a.false_positives;
        views += a.false_suspicions;
        raised += report.protocol.suspicions_raised;
        saved += report.protocol.stream_ping_acks;
        pings += t.stream_pings;
        rate += per_second;
        msgs += t.msgs_per_member_per_period;
    }
    let n = seeds as f64;
    let mean = detections.iter().sum::<f64>() / detections.len().max(1) as f64;
    let max = detections.iter().copied().fold(0.0, f64::max);
    println!(
        "| all {seeds} | {dead} | {views} | {raised} ({:.1}/run) | {saved} | {pings} | {:.2} (mean) | {:.2} (mean) | {mean:.2} (mean), {max:.2} (max) | |",
        raised as f64 / n,
        rate / n,
        msgs / n
    );
}
