//! `gossamer sim`, the simulator's one front end: every flag of `sim run`
//! and `sim check`, through the real binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{bin, test_dir};

fn quickstart() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../simulations/quickstart.toml")
}

/// `gossamer sim run <scenario> <args...>`.
fn sim_run(scenario: &Path, args: &[&str]) -> Output {
    Command::new(bin()).args(["sim", "run"]).arg(scenario).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn sim_runs_the_quickstart_scenario() {
    let dir = test_dir("sim");
    let json = dir.join("report.json");
    let out = sim_run(&quickstart(), &["--json", path(&json)]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("SWIM predicts") && stdout.contains("PASSED"), "{stdout}");
    assert!(stdout.contains(&format!("report written to {}", json.display())), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["passed"], true);
    assert_eq!(report["nodes"], 32, "the scenario's own count without --nodes");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sim_run_nodes_overrides_the_count_and_is_validated() {
    let dir = test_dir("simnodes");
    let json = dir.join("report.json");
    let out = sim_run(&quickstart(), &["--nodes", "20", "--seed", "5", "--json", path(&json)]);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["nodes"], 20);
    assert_eq!(report["seed"], 5);
    assert_eq!(report["live_at_end"], 19, "node 17 crashed, the other 19 run to the end");

    // The quickstart has 3 seeds and crashes node 17: 2 nodes cannot run it.
    let out = sim_run(&quickstart(), &["--nodes", "2"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("gossamer sim:") && stderr.contains("invalid"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sim_run_writes_a_deterministic_trace_and_a_plot_and_says_where() {
    let dir = test_dir("simtrace");
    let (trace, plot) = (dir.join("t.trace"), dir.join("p.svg"));
    let out = sim_run(&quickstart(), &["--seed", "3", "--trace", path(&trace), "--plot", path(&plot)]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for (what, file) in [("trace", &trace), ("plot", &plot)] {
        assert!(stdout.contains(&format!("{what} written to {}", file.display())), "{what}: {stdout}");
    }

    // The trace: one event a line, virtual microseconds first, never going back.
    let bytes = std::fs::read(&trace).unwrap();
    assert!(bytes.len() > 100_000, "trace is only {} bytes", bytes.len());
    let lines = String::from_utf8(bytes.clone()).expect("the trace is text");
    let mut last = 0u64;
    let mut events = 0;
    for line in lines.lines() {
        let (t, event) = line.trim_start().split_once(' ').unwrap_or_else(|| panic!("no event: {line:?}"));
        let t: u64 = t.parse().unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert!(t >= last, "time goes back at {line:?}");
        assert!(!event.trim().is_empty(), "{line:?}");
        last = t;
        events += 1;
    }
    assert!(events > 1_000, "{events} events");
    assert!(last > 0);

    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("<polyline") && svg.contains("alive"), "{}", &svg[..200]);

    // Another process, the same seed: the same bytes (nothing may depend on
    // per-process state such as hash seeds or addresses); another seed differs.
    let again = dir.join("t2.trace");
    let out = sim_run(&quickstart(), &["--seed", "3", "--trace", path(&again)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(std::fs::read(&again).unwrap() == bytes, "traces of two processes with one seed differ");
    let other = dir.join("t4.trace");
    let out = sim_run(&quickstart(), &["--seed", "4", "--trace", path(&other)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(std::fs::read(&other).unwrap() != bytes, "seeds 3 and 4 gave the same trace");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sim_run_exit_codes_say_failed_or_unrunnable() {
    let dir = test_dir("simexit");
    // An assertion that cannot hold (the run ends before everyone knows): 1.
    let failing = dir.join("failing.toml");
    let scenario = std::fs::read_to_string(quickstart()).unwrap();
    assert!(scenario.contains("duration = \"60 periods\""));
    std::fs::write(&failing, scenario.replace("duration = \"60 periods\"", "duration = \"22 periods\"")).unwrap();
    let out = sim_run(&failing, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // A plot that cannot be written: 2, and the file is named.
    let nowhere = dir.join("no-such-dir").join("p.svg");
    let out = sim_run(&quickstart(), &["--plot", path(&nowhere)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains(path(&nowhere)), "{}", text(&out));
    // A scenario that does not parse: 2.
    std::fs::write(&failing, "name = 3").unwrap();
    assert_eq!(sim_run(&failing, &[]).status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sim_check_refuses_a_broken_scenario() {
    let dir = test_dir("simbad");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "name = \"x\"\nnodes = \"many\"\n").unwrap();
    let out = Command::new(bin()).args(["sim", "check", path(&bad)]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(bin()).args(["sim", "check", path(&quickstart())]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("quickstart: ok (32 nodes"), "{}", text(&out));
    let _ = std::fs::remove_dir_all(&dir);
}
