//! Every shipped scenario (except large.toml, which the criterion bench
//! runs) against the real gossamer-core, plus determinism and the CLI.

use std::cell::RefCell;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::rc::Rc;

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

#[test]
fn large_scenario_parses() {
    let s = Scenario::from_file(scenario_path("large.toml")).unwrap();
    assert_eq!(s.nodes, 10_000);
}

#[derive(Clone, Default)]
struct SharedBuf(Rc<RefCell<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn trace(seed: u64) -> (Report, Vec<u8>) {
    let mut s = Scenario::from_file(scenario_path("quickstart.toml")).unwrap();
    s.seed = seed;
    let buf = SharedBuf::default();
    let report = Simulation::new(s).unwrap().trace_to(buf.clone()).run();
    let bytes = buf.0.borrow().clone();
    (report, bytes)
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

#[test]
fn cli_writes_report_json_trace_and_plot() {
    let dir = std::env::temp_dir().join(format!("gossamer-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, trace, plot) = (dir.join("r.json"), dir.join("t.trace"), dir.join("p.svg"));
    let out = Command::new(env!("CARGO_BIN_EXE_gossamer-sim"))
        .arg("run")
        .arg(scenario_path("quickstart.toml"))
        .args(["--seed", "3", "--json"])
        .arg(&json)
        .arg("--trace")
        .arg(&trace)
        .arg("--plot")
        .arg(&plot)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("SWIM predicts") && stdout.contains("PASSED"), "{stdout}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["seed"], 3);
    assert_eq!(report["passed"], true);
    assert!(std::fs::metadata(&trace).unwrap().len() > 100_000);
    // Another process, the same seed: the same bytes (nothing may depend on
    // per-process state such as hash seeds or addresses).
    let again = dir.join("t2.trace");
    let out = Command::new(env!("CARGO_BIN_EXE_gossamer-sim"))
        .arg("run")
        .arg(scenario_path("quickstart.toml"))
        .args(["--seed", "3", "--trace"])
        .arg(&again)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(std::fs::read(&trace).unwrap() == std::fs::read(&again).unwrap(), "traces of two processes differ");
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("<polyline"));

    // A scenario whose assertion cannot hold exits 1; a broken one exits 2.
    let failing = dir.join("failing.toml");
    let text = std::fs::read_to_string(scenario_path("quickstart.toml"))
        .unwrap()
        .replace("duration = \"60 periods\"", "duration = \"22 periods\"");
    std::fs::write(&failing, text).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_gossamer-sim")).arg("run").arg(&failing).output().unwrap().status;
    assert_eq!(status.code(), Some(1));
    std::fs::write(&failing, "name = 3").unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_gossamer-sim")).arg("run").arg(&failing).output().unwrap().status;
    assert_eq!(status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}
