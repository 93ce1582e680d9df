//! # gossamer-sim
//!
//! A deterministic discrete-event simulator for gossamer: many
//! `gossamer-core` nodes run in virtual time over a modelled network, with
//! faults injected on a schedule, so that a cluster of any size can be
//! watched under crashes, partitions, loss and slow members before it is
//! deployed, and so that every protocol claim is measured.
//!
//! Same seed, same run, byte for byte: there are no threads, no sleeps and
//! no wall clock; one event queue ordered by `(time, sequence number)`; and
//! all randomness derives from the scenario's seed (one ChaCha8 stream for
//! the network, one for scenario picks, one per node and restart).
//! Nodes exchange the real encoded gossamer-wire frames, so codec costs and
//! MTU limits are the real ones; push-pull exchanges are modelled as
//! reliable request/response streams that fail when the path is cut.
//!
//! A scenario with a `[heal]` section runs gossamer-heal's partition
//! detection, autoheal and autoclean on every node as well (a [`HealNode`]:
//! `Swim` and `Heal` wired through `gossamer_heal::core_adapter`); the
//! report then says who detected which partition, which side won, who
//! rejoined and who was forgotten, and how long each took after the link
//! came back ([`HealReport`]), and heal assertions (`winners`, `rejoined`,
//! `healed_within`, `heals_per_node_at_most`, `autoclean_within`...) check it.
//!
//! A hostile peer (issue #15) is one more kind of fault: `forge` sends
//! frames a node outside the cluster forged (a `Confirm` or `Suspect` at
//! an absurd incarnation, an `Alive` pinning a member to the attacker's
//! address, a user item at Lamport time `u64::MAX`, floods of names that
//! never existed), `impostor` starts a second real node under a taken
//! name; `alive_at_end`, `recovered_within`, `members_at_most` and
//! `incarnation_at_most` check that the cluster shrugged it off
//! ([`HostileReport`]).
//!
//! This crate is a library only: no command line, no plotting. Its front
//! end is the agent binary's `gossamer sim run FILE [--seed N] [--nodes N]
//! [--json F] [--trace F] [--plot F.svg]` (gossamer-cli), which also draws
//! the SVG chart.
//!
//! ```no_run
//! use gossamer_sim::{Scenario, Simulation};
//!
//! let scenario = Scenario::from_file("simulations/quickstart.toml")?;
//! let report = Simulation::new(scenario)?.run();
//! println!("{report}");
//! for fault in &report.faults {
//!     if let Some(all) = fault.all_know {
//!         println!("fault {} known to all after {:.1} periods", fault.index, all.periods);
//!     }
//! }
//! std::process::exit(if report.passed { 0 } else { 1 });
//! # Ok::<(), gossamer_sim::SimError>(())
//! ```

#![warn(missing_docs)]

mod error;
mod heal_node;
mod hostile;
mod network;
mod node;
mod nodeset;
mod queue;
mod report;
mod scenario;
mod sim;
mod swim_node;
mod units;
mod views;

#[cfg(test)]
mod tests;

pub use error::SimError;
pub use heal_node::{HealFactory, HealNode, NodeTimer, ScenarioFactory, ScenarioNode};
pub use hostile::{ghost_addr, ghost_name, Attack, Forged, FORGED_KEY, HOSTILE_ADDR, HOSTILE_NAME};
pub use network::{LatencySpec, LinkOverride, LinkSpec, MAX_LATENCY};
pub use node::{
    name_index, node_addr, node_id, node_index, HealNote, NodeCounters, NodeFactory, NodeOutput, SimNode, MAX_NODES,
    SIM_PORT,
};
pub use nodeset::NodeSet;
pub use queue::EventQueue;
pub use report::{
    Accuracy, AssertionResult, BaselineComparison, BroadcastReport, FaultReport, HealReport, HealTiming, HostileFault,
    HostileReport, Measure, Percentiles, Performance, Report, Sample, SwimPrediction, Traffic,
};
pub use scenario::{
    AssertSpec, ClusterSpec, FaultAction, FaultRef, FaultSpec, HealTable, NetworkSpec, Preset, ProtocolConfig,
    Scenario, Start, DEFAULT_BROADCAST_PAYLOAD, MAX_BROADCAST_PAYLOAD,
};
pub use sim::{node_rng, Simulation};
pub use swim_node::{SwimFactory, SwimNode, SHARED_IDENTITIES_MIN_NODES};
pub use units::{Bandwidth, Span};
