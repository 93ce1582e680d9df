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
//! gossamer members --status alive --tag role=web --name '^web-' --config node.toml
//! gossamer event deploy v42 --config node.toml        # runs `user:deploy` handlers everywhere
//! gossamer query uptime --tag role=web --config node.toml
//! gossamer tags set role=web zone=a --config node.toml
//! gossamer monitor          --config node.toml
//! gossamer metrics          --config node.toml
//! gossamer keys install <KEY-HEX> --config node.toml   # then `keys use`, then `keys remove` the old one
//! gossamer keys list        --config node.toml
//! gossamer demo --nodes 5
//! gossamer sim run simulations/quickstart.toml --seed 7 --plot quickstart.svg
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
mod handlers;
mod http_api;
mod keys;
mod logging;
mod monitor;
mod ops;
mod prometheus;
mod seeds;
mod settings;
mod sim;
mod tables;

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
    /// Members as the agent sees them, optionally filtered.
    #[command(
        after_help = "Example:\n  gossamer members --status alive --tag role=web --name '^web-' --json -c node.toml"
    )]
    Members {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Only members in this state: alive, suspect, dead or left.
        #[arg(long)]
        status: Option<String>,
        /// Only members with this tag: `k=v`, or `k` for any value (repeatable; all must hold).
        #[arg(long = "tag", value_name = "K=V")]
        tags: Vec<String>,
        /// Only members whose name matches this regular expression (anchor with ^…$).
        #[arg(long, value_name = "REGEX")]
        name: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Broadcast a user event to every member; their `user:NAME` handlers run.
    #[command(after_help = "Example:\n  gossamer event deploy 'v42' -c node.toml\n  \
                            gossamer event config-changed --coalesce -c node.toml")]
    Event {
        /// Event name: 1 to 40 of letters, digits, `. _ : / -`.
        name: String,
        /// Payload (text), handed to handlers on stdin.
        payload: Option<String>,
        /// Replace an event of the same name still spreading, instead of sending one more.
        #[arg(long)]
        coalesce: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Ask members a question; their `query:NAME` handlers answer. Prints each answer and who stayed silent.
    #[command(after_help = "Example:\n  gossamer query uptime --tag role=web --timeout 3s -c node.toml\n  \
                            gossamer query version --node web-1@10.0.0.1 -c node.toml")]
    Query {
        /// Query name: 1 to 40 of letters, digits, `. _ : / -`.
        name: String,
        /// Payload (text), handed to handlers on stdin.
        payload: Option<String>,
        /// Ask only this member (repeatable).
        #[arg(long = "node", value_name = "NAME")]
        nodes: Vec<String>,
        /// Ask only members with this tag `k=v` (repeatable; all must hold).
        #[arg(long = "tag", value_name = "K=V")]
        tags: Vec<String>,
        /// How long to gather answers (`500ms`, `5s`, `1m`).
        #[arg(long, default_value = "5s")]
        timeout: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Change this node's tags (metadata) live; the change is gossiped to every member.
    #[command(after_help = "Example:\n  gossamer tags set role=web zone=eu-1 -c node.toml\n  \
                            gossamer tags delete zone -c node.toml")]
    Tags {
        #[command(subcommand)]
        command: TagsCommand,
        #[command(flatten)]
        target: Target,
    },
    /// Stream membership and user events as they happen, until interrupted.
    #[command(after_help = "Example:\n  gossamer monitor -c node.toml\n  gossamer monitor --level warn -c node.toml")]
    Monitor {
        /// Also stream the agent's log lines at or above this level (error, warn, info, debug, trace), as
        /// far as the agent's own `log` filter lets them through. Without it: events only.
        #[arg(long)]
        level: Option<String>,
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
        command: sim::SimCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TagsCommand {
    /// Set tags: `k=v`...
    Set {
        /// `key=value` pairs.
        #[arg(required = true, value_name = "K=V")]
        tags: Vec<String>,
    },
    /// Delete tags by key.
    Delete {
        /// Keys.
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
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
    /// Join a cluster through ADDR; exits 1 when no member answers within the timeout.
    Join {
        /// host:port (or ip:port, [v6]:port) of any member.
        addr: String,
        /// How long to wait for a member to answer ("500ms", "10s", "1m").
        #[arg(long, default_value = "10s", value_parser = handlers::parse_duration)]
        timeout: std::time::Duration,
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
            ClusterCommand::Join { addr, timeout } => admin::join(&target, &addr, timeout),
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
        Command::Members { json, status, tags, name, target } => {
            match ops::MembersFilter::parse(status, &tags, name.as_deref()) {
                Ok(filter) => admin::members(&target, json, &filter),
                Err(e) => {
                    eprintln!("gossamer: {e}");
                    ExitCode::from(ops::EXIT_USAGE)
                }
            }
        }
        Command::Event { name, payload, coalesce, target } => ops::run_event(&target, name, payload, coalesce),
        Command::Query { name, payload, nodes, tags, timeout, json, target } => {
            ops::run_query(&target, name, payload, nodes, tags, timeout, json)
        }
        Command::Tags { command: TagsCommand::Set { tags }, target } => ops::run_tags(&target, tags, Vec::new()),
        Command::Tags { command: TagsCommand::Delete { keys }, target } => ops::run_tags(&target, Vec::new(), keys),
        Command::Monitor { level, target } => ops::run_monitor(&target, level),
        Command::Metrics { json, target } => admin::metrics(&target, json),
        Command::Keys { command, timeout, local, json, target } => {
            keys::run(&target, command, Duration::from_secs(timeout), local, json)
        }
        Command::Sim { command } => sim::main(command),
        Command::Demo { nodes, duration, pause_ms } => {
            demo::run(nodes, Duration::from_secs(duration), Duration::from_millis(pause_ms))
        }
    }
}
