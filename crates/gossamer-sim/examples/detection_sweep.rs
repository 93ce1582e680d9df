//! Failure detection sweep (issue #19): runs one scenario over several
//! seeds for each of several protocol settings, and prints one line per
//! setting: how fast the crash was known by all (median over seeds) and
//! what it cost in accuracy (healthy members declared dead, stalled ones
//! declared dead, false suspicions) and traffic.
//!
//! ```text
//! cargo run --release -p gossamer-sim --example detection_sweep -- \
//!     simulations/detection.toml --nodes 128 --seeds 1..5 --jobs 2 \
//!     --config "memberlist:preset=memberlist" --config "default:" \
//!     --config "mult2:suspicion_mult=2,suspicion_confirmations=2"
//! ```
//!
//! A `--config` is `name:key=value,...`: the keys of the `[protocol]` table
//! (`preset` too), laid over the scenario's own table. `--json FILE` writes
//! every run's summary; `--trace FILE` runs only the first setting's first
//! seed and writes its trace. `scripts/detection_sweep.sh` runs the sweep behind
//! BENCHMARKS.md's "Failure detection (issue #19)".

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use gossamer_sim::{Report, Scenario, Simulation};

struct Setting {
    name: String,
    keys: Vec<(String, String)>,
}

#[derive(Clone, serde::Serialize)]
struct Run {
    setting: String,
    seed: u64,
    nodes: u32,
    first_suspect: Option<f64>,
    all_know: Option<f64>,
    false_positives: u64,
    deaths_of_degraded: u64,
    false_suspicions: u64,
    suspicions: u64,
    msgs_per_member_per_period: f64,
    bytes_per_member_per_period: f64,
}

fn usage() -> ! {
    eprintln!(
        "usage: detection_sweep SCENARIO [--nodes N] [--seeds A..B] [--jobs J] [--json FILE] \
         --config NAME:key=value,... [--config ...]"
    );
    std::process::exit(2)
}

fn parse_setting(text: &str) -> Setting {
    let (name, rest) = text.split_once(':').unwrap_or((text, ""));
    let keys = rest
        .split(',')
        .filter(|kv| !kv.trim().is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or_else(|| usage());
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    Setting { name: name.to_owned(), keys }
}

fn summarise(setting: &str, r: &Report) -> Run {
    let crash = r.faults.iter().find(|f| f.kind == "crash");
    Run {
        setting: setting.to_owned(),
        seed: r.seed,
        nodes: r.nodes,
        first_suspect: crash.and_then(|f| f.first_suspect.as_ref()).map(|m| m.periods),
        all_know: crash.and_then(|f| f.all_know.as_ref()).map(|m| m.periods),
        false_positives: r.accuracy.false_positives,
        deaths_of_degraded: r.accuracy.deaths_of_degraded,
        false_suspicions: r.accuracy.false_suspicions,
        suspicions: r.accuracy.suspicions,
        msgs_per_member_per_period: r.traffic.msgs_per_member_per_period,
        bytes_per_member_per_period: r.traffic.bytes_per_member_per_period,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut scenario: Option<PathBuf> = None;
    let (mut nodes, mut seeds, mut jobs, mut json) = (None, (1u64, 5u64), 1usize, None::<PathBuf>);
    let mut trace: Option<PathBuf> = None;
    let mut settings = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--nodes" => nodes = Some(value().parse::<u32>().unwrap_or_else(|_| usage())),
            "--seeds" => {
                let v = value();
                let (a, b) = v.split_once("..").unwrap_or_else(|| usage());
                seeds = (a.parse().unwrap_or_else(|_| usage()), b.parse().unwrap_or_else(|_| usage()));
            }
            "--jobs" => jobs = value().parse().unwrap_or_else(|_| usage()),
            "--json" => json = Some(PathBuf::from(value())),
            "--trace" => trace = Some(PathBuf::from(value())),
            "--config" => settings.push(parse_setting(&value())),
            _ if scenario.is_none() && !arg.starts_with("--") => scenario = Some(PathBuf::from(arg)),
            _ => usage(),
        }
    }
    let Some(path) = scenario else { usage() };
    if settings.is_empty() {
        settings.push(parse_setting("as-is:"));
    }
    let base = Scenario::from_file(&path).unwrap_or_else(|e| {
        eprintln!("{}: {e}", path.display());
        std::process::exit(2)
    });
    let mut work = Vec::new();
    for setting in &settings {
        for seed in seeds.0..=seeds.1 {
            let mut s = base.clone();
            s.seed = seed;
            if let Some(n) = nodes {
                s.nodes = n;
            }
            for (k, v) in &setting.keys {
                if let Err(e) = s.protocol.set(k, v) {
                    eprintln!("{}: {e}", setting.name);
                    std::process::exit(2)
                }
            }
            if let Err(e) = s.protocol.to_config().map_err(|e| e.to_string()).and_then(|c| {
                c.validate().map_err(|e| e.to_string())?;
                s.validate().map_err(|e| e.to_string())
            }) {
                eprintln!("{}: {e}", setting.name);
                std::process::exit(2)
            }
            work.push((setting.name.clone(), s));
        }
    }
    if let Some(path) = trace {
        // One run (the first setting, first seed), traced: to see why.
        let (name, s) = work.swap_remove(0);
        let (report, bytes) = Simulation::new(s).unwrap_or_else(|e| panic!("{name}: {e}")).run_traced();
        std::fs::write(&path, bytes).unwrap_or_else(|e| eprintln!("{}: {e}", path.display()));
        println!("{report}");
        return;
    }
    let work = Arc::new(Mutex::new(work.into_iter().rev().collect::<Vec<_>>()));
    let runs = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..jobs.max(1))
        .map(|_| {
            let (work, runs) = (Arc::clone(&work), Arc::clone(&runs));
            std::thread::spawn(move || loop {
                let Some((name, s)) = work.lock().unwrap().pop() else { return };
                let report = Simulation::new(s).unwrap_or_else(|e| panic!("{name}: {e}")).run();
                let run = summarise(&name, &report);
                eprintln!(
                    "{name} seed {}: all know {:?}, fp {}, stalled dead {}, false suspicions {}",
                    run.seed, run.all_know, run.false_positives, run.deaths_of_degraded, run.false_suspicions
                );
                runs.lock().unwrap().push(run);
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a worker panicked");
    }
    let runs = runs.lock().unwrap().clone();
    println!(
        "| setting | nodes | seeds | first suspicion (median) | all know dead (median) | (min-max) | \
         healthy dead | stalled dead (seeds) | false suspicions / run | msgs/member/period |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for setting in &settings {
        let mine: Vec<&Run> = runs.iter().filter(|r| r.setting == setting.name).collect();
        let know: Vec<f64> = mine.iter().filter_map(|r| r.all_know).collect();
        let first: Vec<f64> = mine.iter().filter_map(|r| r.first_suspect).collect();
        let undetected = mine.len() - know.len();
        let lo = know.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = know.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let fp: u64 = mine.iter().map(|r| r.false_positives).sum();
        let stalled: u64 = mine.iter().map(|r| r.deaths_of_degraded).sum();
        let stalled_seeds = mine.iter().filter(|r| r.deaths_of_degraded > 0).count();
        let fs: f64 = mine.iter().map(|r| r.false_suspicions as f64).sum::<f64>() / mine.len().max(1) as f64;
        let msgs: f64 = mine.iter().map(|r| r.msgs_per_member_per_period).sum::<f64>() / mine.len().max(1) as f64;
        let missed = if undetected > 0 { format!(" ({undetected} never)") } else { String::new() };
        println!(
            "| {} | {} | {} | {:.2} | {:.2}{missed} | {:.2}-{:.2} | {fp} | {stalled} ({stalled_seeds}) | {fs:.0} | {msgs:.2} |",
            setting.name,
            mine.first().map_or(0, |r| r.nodes),
            mine.len(),
            median(first),
            median(know),
            lo,
            hi,
        );
    }
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&runs).expect("serialisable");
        std::fs::write(&path, text).unwrap_or_else(|e| eprintln!("{}: {e}", path.display()));
    }
}
