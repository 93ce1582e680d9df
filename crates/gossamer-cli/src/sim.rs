//! `gossamer sim`: the one front end of the deterministic simulator
//! (gossamer-sim). The library has no command line and draws nothing; this
//! module parses the flags, runs the scenario, writes the report, trace and
//! plot where asked and says where each went.
//!
//! Exit codes: 0 when every assertion holds, 1 when one fails, 2 when the
//! scenario cannot be run or an output cannot be written.

mod plot;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use gossamer_sim::{Scenario, SimError, Simulation};
use tracing_subscriber::EnvFilter;

use crate::logging::{self, LogFormat};

/// `gossamer sim ...`.
#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Run a scenario and print the report; exit 1 if an assertion fails.
    Run {
        /// The scenario file (TOML), e.g. simulations/quickstart.toml.
        scenario: PathBuf,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Override the number of nodes at the start.
        #[arg(long)]
        nodes: Option<u32>,
        /// Also write the report as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Write the full event trace (deterministic bytes: one event a
        /// line, virtual microseconds first) to this file.
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
        /// Draw alive/suspect/dead/left counts over time to this SVG file.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
    },
    /// Parse and validate a scenario without running it.
    Check {
        /// The scenario file (TOML).
        scenario: PathBuf,
    },
}

/// Why `gossamer sim` stopped before it could report (exit code 2).
#[derive(Debug, thiserror::Error)]
enum RunError {
    /// The scenario could not be loaded or run, or the report not written.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// The plot could not be drawn or written.
    #[error(transparent)]
    Plot(#[from] plot::PlotError),
}

/// Runs `gossamer sim ...` and returns the process's exit code.
pub fn main(command: SimCommand) -> ExitCode {
    // The simulator warns (target `gossamer_sim`) when a trace sink fails;
    // the nodes' own logs stay quiet unless RUST_LOG asks for them.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("error,gossamer_sim=warn"));
    logging::init(filter, LogFormat::Text);
    let outcome = match command {
        SimCommand::Check { scenario } => check(&scenario),
        SimCommand::Run { scenario, seed, nodes, json, trace, plot } => {
            run(&scenario, seed, nodes, json.as_deref(), trace.as_deref(), plot.as_deref())
        }
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("gossamer sim: {e}");
            ExitCode::from(2)
        }
    }
}

/// `gossamer sim check SCENARIO`.
fn check(scenario: &Path) -> Result<bool, RunError> {
    let s = Scenario::from_file(scenario)?;
    println!("{}: ok ({} nodes, {} faults, {} assertions)", s.name, s.nodes, s.faults.len(), s.asserts.len());
    Ok(true)
}

/// `gossamer sim run SCENARIO [--seed N] [--nodes N] [--json F] [--trace F] [--plot F]`:
/// whether every assertion held.
fn run(
    scenario: &Path,
    seed: Option<u64>,
    nodes: Option<u32>,
    json: Option<&Path>,
    trace: Option<&Path>,
    plot: Option<&Path>,
) -> Result<bool, RunError> {
    let mut s = Scenario::from_file(scenario)?;
    if let Some(seed) = seed {
        s.seed = seed;
    }
    if let Some(n) = nodes {
        s.nodes = n;
        // Seeds, node references and the node limit depend on the count.
        s.validate()?;
    }
    let mut sim = Simulation::new(s)?;
    if let Some(path) = trace {
        let f = File::create(path).map_err(|source| SimError::Io { path: path.to_owned(), source })?;
        sim = sim.trace_to(f);
    }
    let report = sim.run();
    println!("{report}");
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&report).map_err(SimError::from)?;
        std::fs::write(path, text).map_err(|source| SimError::Io { path: path.to_owned(), source })?;
        println!("report written to {}", path.display());
    }
    if let Some(path) = trace {
        println!("trace written to {}", path.display());
    }
    if let Some(path) = plot {
        plot::write_svg(&report, path)?;
        println!("plot written to {}", path.display());
    }
    Ok(report.passed)
}
