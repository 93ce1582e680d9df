//! `gossamer`: run an agent, administer a running cluster, watch a demo,
//! or run a simulation.
//!
//! ```text
//! gossamer keygen                            # a fresh cluster secret for `secret` / GOSSAMER_SECRET
//! gossamer agent --config node.toml          # see node.example.toml; GOSSAMER_* overrides
//! gossamer cluster status   --config node.toml
//! gossamer cluster join 10.0.0.8:7946 --config node.toml
//! gossamer cluster leave    --config node.toml
//! gossamer cluster force-leave web-3@10.0.0.9 --config node.toml
//! gossamer members --json   --config node.toml
//! gossamer metrics          --config node.toml
//! gossamer keys install <KEY-HEX> --config node.toml   # then `keys use`, then `keys remove` the old one
//! gossamer keys list        --config node.toml
//! gossamer demo --nodes 5
//! gossamer sim run simulations/quickstart.toml
//! ```
//!
//! Admin commands reach the agent through its control socket: a loopback
//! TCP listener whose address and random token the agent writes to
//! `<data_dir>/<node name>.control` (mode 0600), one JSON line each way.

mod admin;
mod agent;
mod control;
mod demo;
mod dns;
mod heal_settings;
mod http_api;
mod keys;
mod logging;
mod prometheus;
mod settings;
mod sim;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Gossip membership (SWIM + Lifeguard): agent, admin and demo.
#[derive(Debug, Parser)]
#[command(name = "gossamer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Which agent an admin command talks to.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The agent's config file (its control file is found from it).
    #[arg(long, short = 'c', global = true, env = "GOSSAMER_CONFIG")]
    pub config: Option<PathBuf>,
    /// The agent's control file, written at start (overrides --config).
    #[arg(long, global = true, env = "GOSSAMER_CONTROL_FILE")]
    pub control: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node until interrupted (SIGINT/SIGTERM leave gracefully).
    Agent {
        /// TOML config file; every key can be overridden by GOSSAMER_* variables.
        #[arg(long, short = 'c')]
        config: PathBuf,
    },
    /// Cluster administration (like `emqx ctl cluster`).
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
        #[command(flatten)]
        target: Target,
    },
    /// Members as the agent sees them.
    Members {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// The agent's counters.
    Metrics {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Print a fresh random cluster secret (64 hex digits) for `secret` / GOSSAMER_SECRET.
    Keygen,
    /// Rotate the cluster key live on every member (like `serf keys`):
    /// install the new key, use it, remove the old one; or list keys.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
        /// How long to gather the members' answers, in seconds.
        #[arg(long, default_value_t = 5, global = true)]
        timeout: u64,
        /// Change only this agent's own node (e.g. one that missed a step).
        #[arg(long, global = true)]
        local: bool,
        /// Print JSON instead of text.
        #[arg(long, global = true)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Start N nodes on 127.0.0.1, kill one, watch it be detected, bring it back.
    Demo {
        /// How many nodes.
        #[arg(long, default_value_t = 5)]
        nodes: usize,
        /// Give up (exit 1) if the story has not completed within this many seconds.
        #[arg(long, default_value_t = 120)]
        duration: u64,
        /// How long each completed step stays on screen, in milliseconds.
        #[arg(long, default_value_t = 1500)]
        pause_ms: u64,
    },
    /// Deterministic simulation of a scenario file (virtual time, modelled network).
    Sim {
        #[command(subcommand)]
        command: SimCommand,
    },
}

#[derive(Debug, Subcommand)]
enum SimCommand {
    /// Run a scenario and print the report; exit 1 if an assertion fails.
    Run {
        /// The scenario file (TOML), e.g. simulations/quickstart.toml.
        scenario: PathBuf,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Also write the report as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Parse and validate a scenario without running it.
    Check {
        /// The scenario file (TOML).
        scenario: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// This node and every member: states and incarnations.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Join a cluster through ADDR.
    Join {
        /// ip:port of any member.
        addr: SocketAddr,
    },
    /// Leave gracefully; the agent then exits.
    Leave,
    /// Declare a member gone for good.
    ForceLeave {
        /// The member's name.
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Agent { config } => agent::run(&config),
        Command::Cluster { command, target } => match command {
            ClusterCommand::Status { json } => admin::status(&target, json),
            ClusterCommand::Join { addr } => admin::join(&target, addr),
            ClusterCommand::Leave => admin::leave(&target),
            ClusterCommand::ForceLeave { name } => admin::force_leave(&target, name),
        },
        Command::Keygen => match settings::new_secret_hex() {
            Ok(hex) => {
                println!("{hex}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("gossamer: cannot draw a key from the OS random generator: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Members { json, target } => admin::members(&target, json),
        Command::Metrics { json, target } => admin::metrics(&target, json),
        Command::Keys { command, timeout, local, json, target } => {
            keys::run(&target, command, Duration::from_secs(timeout), local, json)
        }
        Command::Sim { command: SimCommand::Run { scenario, seed, json } } => {
            sim::run(&scenario, seed, json.as_deref())
        }
        Command::Sim { command: SimCommand::Check { scenario } } => sim::check(&scenario),
        Command::Demo { nodes, duration, pause_ms } => {
            demo::run(nodes, Duration::from_secs(duration), Duration::from_millis(pause_ms))
        }
    }
}
