//! `gossamer-sim`: run a scenario file and print what happened.
//!
//! ```text
//! gossamer-sim run simulations/quickstart.toml [--seed N] [--json FILE] [--trace FILE] [--plot FILE.svg]
//! ```
//! Exits 1 if an assertion fails, 2 if the scenario cannot be run.

use std::fs::File;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gossamer_sim::{write_svg, Scenario, SimError, Simulation};

#[derive(Parser)]
#[command(name = "gossamer-sim", version, about = "Deterministic simulator for gossamer clusters")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario and print the report.
    Run {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Override the number of nodes at the start.
        #[arg(long)]
        nodes: Option<u32>,
        /// Write the report as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Write the full event trace (deterministic bytes) to this file.
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
        /// Draw alive/suspect/dead counts over time to this SVG file.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
    },
    /// Parse and validate a scenario without running it.
    Check {
        /// The scenario file (TOML).
        scenario: PathBuf,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("gossamer-sim: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<bool, SimError> {
    match cli.command {
        Command::Check { scenario } => {
            let s = Scenario::from_file(&scenario)?;
            println!("{}: ok ({} nodes, {} faults, {} assertions)", s.name, s.nodes, s.faults.len(), s.asserts.len());
            Ok(true)
        }
        Command::Run { scenario, seed, nodes, json, trace, plot } => {
            let mut s = Scenario::from_file(&scenario)?;
            if let Some(seed) = seed {
                s.seed = seed;
            }
            if let Some(n) = nodes {
                s.nodes = n;
                s.validate()?;
            }
            let mut sim = Simulation::new(s)?;
            if let Some(path) = &trace {
                let f = File::create(path).map_err(|source| SimError::Io { path: path.clone(), source })?;
                sim = sim.trace_to(f);
            }
            let report = sim.run();
            println!("{report}");
            if let Some(path) = &json {
                let text = serde_json::to_string_pretty(&report)?;
                std::fs::write(path, text).map_err(|source| SimError::Io { path: path.clone(), source })?;
                println!("report written to {}", path.display());
            }
            if let Some(path) = &trace {
                println!("trace written to {}", path.display());
            }
            if let Some(path) = &plot {
                write_svg(&report, path)?;
                println!("plot written to {}", path.display());
            }
            Ok(report.passed)
        }
    }
}
