//! `gossamer sim` runs the simulator's scenarios from the main binary.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{bin, test_dir};

fn quickstart() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../simulations/quickstart.toml")
}

#[test]
fn sim_runs_the_quickstart_scenario() {
    let dir = test_dir("sim");
    let json = dir.join("report.json");
    let out = Command::new(bin())
        .args(["sim", "run", quickstart().to_str().unwrap(), "--json", json.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["passed"], true);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sim_check_refuses_a_broken_scenario() {
    let dir = test_dir("simbad");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "name = \"x\"\nnodes = \"many\"\n").unwrap();
    let out = Command::new(bin()).args(["sim", "check", bad.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(bin()).args(["sim", "check", quickstart().to_str().unwrap()]).output().unwrap();
    assert!(out.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}
