//! The scenario's top-level tables: the [`Scenario`] itself, `[cluster]`,
//! `[protocol]`, `[network]` and `[heal]`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::assertion::AssertSpec;
use super::fault::FaultSpec;
use crate::network::{LatencySpec, LinkOverride, LinkSpec};
use crate::nodeset::NodeSet;
use crate::units::{Bandwidth, Span};

/// A whole scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, shown in the report.
    pub name: String,
    /// What the scenario is about.
    #[serde(default)]
    pub description: String,
    /// Master seed: every random choice of the run derives from it.
    #[serde(default)]
    pub seed: u64,
    /// Nodes at the start.
    pub nodes: u32,
    /// Virtual time to simulate.
    pub duration: Span,
    /// How the cluster forms.
    #[serde(default)]
    pub cluster: ClusterSpec,
    /// Protocol settings (gossamer-core's `[protocol]` schema).
    #[serde(default)]
    pub protocol: ProtocolConfig,
    /// The network model.
    #[serde(default)]
    pub network: NetworkSpec,
    /// The partition-heal layer (gossamer-heal); absent: plain SWIM.
    #[serde(default)]
    pub heal: Option<HealTable>,
    /// Named node sets that assertions refer to (`winners = "majority"`).
    #[serde(default)]
    pub groups: BTreeMap<String, NodeSet>,
    /// The fault schedule.
    #[serde(default, rename = "fault")]
    pub faults: Vec<FaultSpec>,
    /// What must hold.
    #[serde(default, rename = "assert")]
    pub asserts: Vec<AssertSpec>,
}

/// How the cluster forms at the start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSpec {
    /// How the initial nodes start: joining through the seeds (the
    /// default) or as one cluster that converged long ago.
    pub start: Start,
    /// Nodes `0..seeds` are the join seeds (node 0 starts alone).
    pub seeds: u32,
    /// Nodes boot at random instants within this window.
    pub join_spread: Span,
    /// Cluster label in every frame.
    pub label: String,
    /// How long a leaving node keeps running at most.
    pub leave_timeout: Span,
    /// How often the alive/suspect/dead counts are sampled.
    pub sample_every: Span,
    /// A member paused, slowed or restarted within this span is not counted
    /// as a false positive when declared dead (the suspicion may date from
    /// when it really was unresponsive, or be about its old incarnation).
    pub fp_grace: Span,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        Self {
            start: Start::Join,
            seeds: 1,
            join_spread: Span::ZERO,
            label: "sim".into(),
            leave_timeout: Span::Periods(5.0),
            sample_every: Span::Periods(1.0),
            fp_grace: Span::Periods(60.0),
        }
    }
}

/// How the initial nodes of a scenario start (`[cluster] start`).
///
/// ```
/// use gossamer_sim::{Scenario, Start};
/// let s = Scenario::from_toml(r#"
///     name = "big"
///     nodes = 100
///     duration = "30 periods"
///     [cluster]
///     start = "converged"
/// "#).unwrap();
/// assert_eq!(s.cluster.start, Start::Converged);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    /// Node 0 starts alone and every other node joins through the seeds
    /// (a push-pull with them) at a random instant of `join_spread`; the
    /// membership then spreads by gossip. Realistic for a cluster's birth,
    /// but every node learning every other is O(n²) updates: at 10,000
    /// nodes this join storm is nearly all of a run's cost and memory.
    #[default]
    Join,
    /// The initial nodes start at time zero as one cluster that converged
    /// long ago: each already knows every other initial node alive at
    /// incarnation 0 (through `Swim::start_converged`), as after a completed
    /// join; no join traffic, no seed contacted, and nothing gossiped at the
    /// start (every node already knows every other). This is for studying
    /// failure detection, partitions and heals at scale as they happen in
    /// a long-running cluster, without simulating its birth first. Nodes
    /// that come later (`join` faults, restarts) join through the seeds as
    /// usual. With a `[heal]` section, each node's heal layer is brought up
    /// to date with the adopted members at the start. Not with
    /// `join_spread`: everyone is there from the start.
    Converged,
}

/// The protocol profile of a `[protocol]` table: the core's one preset type.
pub use gossamer_core::Preset;
/// The `[protocol]` table: gossamer-core's own schema (a preset plus any
/// `Config` key, humantime durations), the same table an agent file takes.
pub use gossamer_core::ProtocolConfig;

/// The network: base link properties, per-link overrides, stream timeout.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// One-way delay distribution of every link (default: fixed 1 ms).
    pub latency: Option<LatencySpec>,
    /// Datagram loss probability.
    pub loss: Option<f64>,
    /// Datagram duplication probability.
    pub duplicate: Option<f64>,
    /// Probability a datagram is held back so later ones overtake it.
    pub reorder: Option<f64>,
    /// Bound of that extra delay (10 ms).
    pub reorder_delay: Option<Span>,
    /// Uplink capacity of every node (unlimited by default).
    pub bandwidth: Option<Bandwidth>,
    /// A push-pull exchange fails if no response arrives within this (10 s).
    pub stream_timeout: Option<Span>,
    /// Per-link overrides, last match wins.
    #[serde(default, rename = "link")]
    pub links: Vec<LinkOverride>,
}

impl NetworkSpec {
    /// The base link properties.
    pub fn base_link(&self) -> LinkSpec {
        LinkSpec {
            latency: self.latency.clone(),
            loss: self.loss,
            duplicate: self.duplicate,
            reorder: self.reorder,
            reorder_delay: self.reorder_delay,
            bandwidth: self.bandwidth,
        }
    }
}

/// The `[heal]` section: run gossamer-heal's partition detection, autoheal
/// and autoclean on every node. gossamer-heal's own schema
/// ([`gossamer_heal::HealTable`]): `enabled` (true when the section is
/// present) and any `HealConfig` key, durations written the humantime way,
/// the same table an agent file takes. Keys not given keep
/// `HealConfig::for_period` (the defaults, `verdict_grace` at two periods).
///
/// ```
/// use std::time::Duration;
/// use gossamer_heal::Autoclean;
/// use gossamer_sim::Scenario;
/// let s = Scenario::from_toml(r#"
///     name = "h"
///     nodes = 4
///     duration = "30 periods"
///     [heal]
///     autoclean = "40s"
///     hold_down = "20s"
/// "#).unwrap();
/// let config = s.heal_config(Duration::from_secs(1)).unwrap().expect("[heal] enables it");
/// assert_eq!(config.autoclean, Autoclean::After(Duration::from_secs(40)));
/// assert_eq!(config.hold_down, Duration::from_secs(20));
/// assert!(config.autoheal);
/// ```
pub use gossamer_heal::HealTable;
