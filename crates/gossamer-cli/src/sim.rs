//! `gossamer sim`: run a scenario of the deterministic simulator
//! (gossamer-sim) from the main binary. Exit codes follow `gossamer-sim`:
//! 0 when every assertion holds, 1 when one fails, 2 when the scenario
//! cannot be run.

use std::path::Path;
use std::process::ExitCode;

use gossamer_sim::{Scenario, SimError, Simulation};

fn fail(e: SimError) -> ExitCode {
    eprintln!("gossamer sim: {e}");
    ExitCode::from(2)
}

/// `gossamer sim run SCENARIO [--seed N] [--json FILE]`.
pub fn run(scenario: &Path, seed: Option<u64>, json: Option<&Path>) -> ExitCode {
    let mut s = match Scenario::from_file(scenario) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    if let Some(seed) = seed {
        s.seed = seed;
    }
    let report = match Simulation::new(s) {
        Ok(sim) => sim.run(),
        Err(e) => return fail(e),
    };
    println!("{report}");
    if let Some(path) = json {
        let written = serde_json::to_string_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|text| std::fs::write(path, text).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("gossamer sim: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `gossamer sim check SCENARIO`.
pub fn check(scenario: &Path) -> ExitCode {
    match Scenario::from_file(scenario) {
        Ok(s) => {
            println!("{}: ok ({} nodes, {} faults, {} assertions)", s.name, s.nodes, s.faults.len(), s.asserts.len());
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
