//! Scenario files: who runs, on what network, which faults happen when, and
//! what must hold. See `simulations/*.toml` for complete examples.
//!
//! ```
//! use gossamer_sim::Scenario;
//! let s = Scenario::from_toml(r#"
//!     name = "tiny"
//!     nodes = 4
//!     duration = "30 periods"
//!     [network]
//!     loss = 0.01
//!     [[fault]]
//!     at = "10 periods"
//!     kind = "crash"
//!     nodes = [3]
//!     [[assert]]
//!     kind = "all_know_within"
//!     node = 3
//!     periods = 15
//! "#).unwrap();
//! assert_eq!(s.nodes, 4);
//! assert_eq!(s.faults.len(), 1);
//! ```

use std::path::Path;
use std::time::Duration;

use gossamer_core::Config;
use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::network::{LatencySpec, LinkOverride, LinkSpec};
use crate::node::MAX_NODES;
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
    /// Protocol settings.
    #[serde(default)]
    pub protocol: ProtocolSpec,
    /// The network model.
    #[serde(default)]
    pub network: NetworkSpec,
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
            seeds: 1,
            join_spread: Span::ZERO,
            label: "sim".into(),
            leave_timeout: Span::Periods(5.0),
            sample_every: Span::Periods(1.0),
            fp_grace: Span::Periods(60.0),
        }
    }
}

/// A protocol profile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// memberlist's LAN profile.
    #[default]
    Lan,
    /// memberlist's WAN profile.
    Wan,
    /// memberlist's local (loopback) profile.
    Local,
}

/// Protocol settings: a preset plus overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolSpec {
    /// Base profile.
    #[serde(default)]
    pub preset: Preset,
    /// Protocol period.
    pub probe_interval: Option<Span>,
    /// Direct-ack timeout.
    pub probe_timeout: Option<Span>,
    /// Datagram budget.
    pub mtu: Option<usize>,
    /// Indirect probes per failed direct probe.
    pub indirect_checks: Option<usize>,
    /// Suspicion timeout multiplier.
    pub suspicion_mult: Option<u32>,
    /// Lifeguard's maximum suspicion timeout multiplier.
    pub suspicion_max_timeout_mult: Option<u32>,
    /// Retransmission multiplier.
    pub retransmit_mult: Option<u32>,
    /// Anti-entropy period.
    pub push_pull_interval: Option<Span>,
    /// Gossip period.
    pub gossip_interval: Option<Span>,
    /// Gossip fan-out.
    pub gossip_nodes: Option<usize>,
    /// Lifeguard's local health ceiling.
    pub awareness_max_multiplier: Option<u32>,
    /// Reconnect timer.
    pub reconnect_interval: Option<Span>,
}

impl ProtocolSpec {
    /// The core [`Config`]: the preset with the overrides applied (spans in
    /// periods are relative to the resulting probe interval).
    pub fn to_config(&self) -> Config {
        let mut c = match self.preset {
            Preset::Lan => Config::lan(),
            Preset::Wan => Config::wan(),
            Preset::Local => Config::local(),
        };
        if let Some(p) = self.probe_interval {
            c.probe_interval = p.resolve(c.probe_interval);
        }
        let period = c.probe_interval;
        let span = |s: Option<Span>, old: Duration| s.map_or(old, |s| s.resolve(period));
        c.probe_timeout = span(self.probe_timeout, c.probe_timeout);
        c.push_pull_interval = span(self.push_pull_interval, c.push_pull_interval);
        c.gossip_interval = span(self.gossip_interval, c.gossip_interval);
        c.reconnect_interval = span(self.reconnect_interval, c.reconnect_interval);
        c.mtu = self.mtu.unwrap_or(c.mtu);
        c.indirect_checks = self.indirect_checks.unwrap_or(c.indirect_checks);
        c.suspicion_mult = self.suspicion_mult.unwrap_or(c.suspicion_mult);
        c.suspicion_max_timeout_mult = self.suspicion_max_timeout_mult.unwrap_or(c.suspicion_max_timeout_mult);
        c.retransmit_mult = self.retransmit_mult.unwrap_or(c.retransmit_mult);
        c.gossip_nodes = self.gossip_nodes.unwrap_or(c.gossip_nodes);
        c.awareness_max_multiplier = self.awareness_max_multiplier.unwrap_or(c.awareness_max_multiplier);
        c
    }
}

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

/// One scheduled fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultSpec {
    /// When it happens.
    pub at: Span,
    /// What happens.
    #[serde(flatten)]
    pub action: FaultAction,
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultAction {
    /// The nodes stop dead (no leave message).
    Crash {
        /// Who.
        nodes: NodeSet,
    },
    /// The nodes come back with a fresh state (crashing them first if up)
    /// and rejoin through the seeds.
    Restart {
        /// Who.
        nodes: NodeSet,
    },
    /// The nodes process nothing for `duration`, then everything at once.
    Pause {
        /// Who.
        nodes: NodeSet,
        /// How long.
        duration: Span,
    },
    /// Every input to the nodes is processed `lag` late (an overloaded
    /// host: what Lifeguard is for), for `duration` or until the end.
    Slow {
        /// Who.
        nodes: NodeSet,
        /// Processing delay.
        lag: Span,
        /// How long (default: to the end).
        duration: Option<Span>,
    },
    /// Symmetric partition: groups cannot reach each other (nodes in no
    /// group form one more group).
    Partition {
        /// The groups.
        groups: Vec<NodeSet>,
    },
    /// One-way cut: datagrams and streams from `from` to `to` are dropped.
    OneWay {
        /// Senders cut off.
        from: NodeSet,
        /// Receivers that stop hearing them.
        to: NodeSet,
    },
    /// Links between `a` and `b` go down and up, each half `period`, for `duration`.
    Flap {
        /// One side.
        a: NodeSet,
        /// The other side.
        b: NodeSet,
        /// A full down+up cycle.
        period: Span,
        /// How long it flaps.
        duration: Span,
    },
    /// Every partition, one-way cut and flap ends.
    Heal,
    /// New nodes boot and join through the seeds.
    Join {
        /// How many.
        count: u32,
    },
    /// The nodes leave gracefully.
    Leave {
        /// Who.
        nodes: NodeSet,
    },
}

impl FaultAction {
    /// Short name of the kind.
    pub fn kind(&self) -> &'static str {
        match self {
            FaultAction::Crash { .. } => "crash",
            FaultAction::Restart { .. } => "restart",
            FaultAction::Pause { .. } => "pause",
            FaultAction::Slow { .. } => "slow",
            FaultAction::Partition { .. } => "partition",
            FaultAction::OneWay { .. } => "one_way",
            FaultAction::Flap { .. } => "flap",
            FaultAction::Heal => "heal",
            FaultAction::Join { .. } => "join",
            FaultAction::Leave { .. } => "leave",
        }
    }

    fn node_sets(&self) -> Vec<&NodeSet> {
        match self {
            FaultAction::Crash { nodes }
            | FaultAction::Restart { nodes }
            | FaultAction::Pause { nodes, .. }
            | FaultAction::Slow { nodes, .. }
            | FaultAction::Leave { nodes } => vec![nodes],
            FaultAction::Partition { groups } => groups.iter().collect(),
            FaultAction::OneWay { from, to } => vec![from, to],
            FaultAction::Flap { a, b, .. } => vec![a, b],
            FaultAction::Heal | FaultAction::Join { .. } => vec![],
        }
    }
}

/// Which fault an assertion is about: by index in the schedule, or the
/// first crash/leave/restart/pause/slow fault naming `node`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRef {
    /// Index in the `[[fault]]` list.
    pub fault: Option<usize>,
    /// A node the fault names.
    pub node: Option<u32>,
}

/// A property checked at the end of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AssertSpec {
    /// Within `periods` of the fault, no live member still sees its nodes
    /// alive or suspect (crash: all see it dead; leave: all see it left).
    AllKnowWithin {
        /// Fault index.
        fault: Option<usize>,
        /// Or: the node the fault is about.
        node: Option<u32>,
        /// Bound, in protocol periods.
        periods: f64,
    },
    /// Some member suspects the fault's nodes within `periods`.
    FirstDetectionWithin {
        /// Fault index.
        fault: Option<usize>,
        /// Or: the node the fault is about.
        node: Option<u32>,
        /// Bound, in protocol periods.
        periods: f64,
    },
    /// Within `periods` of the fault (a heal, join or restart), every live
    /// member sees every live member alive.
    ConvergedWithin {
        /// Fault index.
        fault: usize,
        /// Bound, in protocol periods.
        periods: f64,
    },
    /// Within `periods` of a partition, no member sees the other side alive.
    SplitWithin {
        /// Fault index.
        fault: usize,
        /// Bound, in protocol periods.
        periods: f64,
    },
    /// At most `count` members declared dead while running and reachable.
    FalsePositivesAtMost {
        /// Bound.
        count: u64,
    },
    /// Members declared dead about the fault's nodes, while it lasted, at most `count`.
    DeathsAtMost {
        /// Fault index.
        fault: usize,
        /// Bound.
        count: u64,
    },
    /// At the end every live member sees every live member alive.
    SingleClusterAtEnd,
}

impl AssertSpec {
    /// The fault reference, if the assertion is about one fault.
    pub fn fault_ref(&self) -> Option<FaultRef> {
        match *self {
            AssertSpec::AllKnowWithin { fault, node, .. } | AssertSpec::FirstDetectionWithin { fault, node, .. } => {
                Some(FaultRef { fault, node })
            }
            AssertSpec::ConvergedWithin { fault, .. }
            | AssertSpec::SplitWithin { fault, .. }
            | AssertSpec::DeathsAtMost { fault, .. } => Some(FaultRef { fault: Some(fault), node: None }),
            AssertSpec::FalsePositivesAtMost { .. } | AssertSpec::SingleClusterAtEnd => None,
        }
    }
}

impl Scenario {
    /// Parses and validates a scenario.
    pub fn from_toml(text: &str) -> Result<Self, SimError> {
        let s: Scenario = toml::from_str(text)?;
        s.validate()?;
        Ok(s)
    }

    /// Reads, parses and validates a scenario file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, SimError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Io { path: path.to_owned(), source })?;
        Self::from_toml(&text)
    }

    /// Resolves an assertion's fault reference to a schedule index.
    pub fn resolve_fault(&self, r: FaultRef) -> Option<usize> {
        if let Some(i) = r.fault {
            return (i < self.faults.len()).then_some(i);
        }
        let node = r.node?;
        self.faults.iter().position(|f| {
            matches!(
                f.action,
                FaultAction::Crash { .. }
                    | FaultAction::Leave { .. }
                    | FaultAction::Restart { .. }
                    | FaultAction::Pause { .. }
                    | FaultAction::Slow { .. }
            ) && f.action.node_sets().iter().any(|s| s.names(node))
        })
    }

    /// Checks what parsing cannot: counts, indices and references.
    pub fn validate(&self) -> Result<(), SimError> {
        self.protocol.to_config().validate()?;
        if self.nodes == 0 {
            return Err(SimError::invalid("nodes must be at least 1"));
        }
        let joined: u64 =
            self.faults.iter().map(|f| if let FaultAction::Join { count } = f.action { count as u64 } else { 0 }).sum();
        let total = self.nodes as u64 + joined;
        if total > MAX_NODES as u64 {
            return Err(SimError::invalid(format!("{total} nodes in all: at most {MAX_NODES} are supported")));
        }
        if self.cluster.seeds == 0 || self.cluster.seeds > self.nodes {
            return Err(SimError::invalid("cluster.seeds must be within 1..=nodes"));
        }
        for (i, f) in self.faults.iter().enumerate() {
            for set in f.action.node_sets() {
                if let Some(max) = set.max_explicit() {
                    if max as u64 >= total {
                        return Err(SimError::invalid(format!(
                            "fault {i} ({}): node {max} does not exist ({total} nodes in all)",
                            f.action.kind()
                        )));
                    }
                }
            }
            match &f.action {
                FaultAction::Partition { groups } if groups.is_empty() => {
                    return Err(SimError::invalid(format!("fault {i}: a partition needs at least one group")))
                }
                FaultAction::Join { count: 0 } => {
                    return Err(SimError::invalid(format!("fault {i}: join count must be at least 1")))
                }
                _ => {}
            }
        }
        for (i, a) in self.asserts.iter().enumerate() {
            if let Some(r) = a.fault_ref() {
                if r.fault.is_none() && r.node.is_none() {
                    return Err(SimError::invalid(format!("assertion {i}: give `fault` or `node`")));
                }
                if self.resolve_fault(r).is_none() {
                    return Err(SimError::invalid(format!("assertion {i}: no such fault ({r:?})")));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
        name = "everything"
        seed = 9
        nodes = 8
        duration = "60s"
        [cluster]
        seeds = 2
        join_spread = "500ms"
        [protocol]
        preset = "local"
        probe_interval = "500ms"
        suspicion_mult = 5
        [network]
        latency = { lognormal = { median = "2ms", sigma = 0.4 } }
        loss = 0.05
        stream_timeout = "5s"
        [[network.link]]
        from = "0..4"
        to = "4..8"
        latency = { fixed = "40ms" }
        [[fault]]
        at = "5 periods"
        kind = "crash"
        nodes = [7]
        [[fault]]
        at = "6s"
        kind = "partition"
        groups = ["0..4", "4..7"]
        [[fault]]
        at = "20s"
        kind = "heal"
        [[fault]]
        at = "21s"
        kind = "slow"
        nodes = "random(2)"
        lag = "300ms"
        [[fault]]
        at = "22s"
        kind = "join"
        count = 2
        [[fault]]
        at = "30s"
        kind = "leave"
        nodes = 9
        [[assert]]
        kind = "all_know_within"
        node = 7
        periods = 10
        [[assert]]
        kind = "converged_within"
        fault = 2
        periods = 20
        [[assert]]
        kind = "single_cluster_at_end"
        [[assert]]
        kind = "false_positives_at_most"
        count = 0
    "#;

    #[test]
    fn parses_every_section() {
        let s = Scenario::from_toml(FULL).unwrap();
        assert_eq!(s.cluster.seeds, 2);
        assert_eq!(s.protocol.preset, Preset::Local);
        assert_eq!(s.network.base_link().loss, Some(0.05));
        assert_eq!(s.network.links.len(), 1);
        assert!(s.network.links[0].symmetric);
        assert_eq!(s.faults.len(), 6);
        assert_eq!(s.faults[0].at, Span::Periods(5.0));
        assert!(matches!(s.faults[3].action, FaultAction::Slow { duration: None, .. }));
        assert_eq!(s.resolve_fault(FaultRef { fault: None, node: Some(7) }), Some(0));
        assert_eq!(s.resolve_fault(FaultRef { fault: None, node: Some(9) }), Some(5));
        assert_eq!(s.asserts.len(), 4);
    }

    #[test]
    fn refuses_bad_scenarios() {
        let bad = [
            FULL.replace("nodes = 8", "nodes = 0"),
            FULL.replace("nodes = 9", "nodes = 99"),
            FULL.replace("node = 7", "node = 3"),
            FULL.replace("kind = \"heal\"", "kind = \"explode\""),
            FULL.replace("loss = 0.05", "loss = 0.05\nlos = 1"),
            FULL.replace("seeds = 2", "seeds = 20"),
            FULL.replace("duration = \"60s\"", "duration = \"sixty\""),
            FULL.replace("suspicion_mult = 5", "suspicion_mult = 5\nprobe_timeout = \"10s\""),
        ];
        for (i, text) in bad.iter().enumerate() {
            assert!(Scenario::from_toml(text).is_err(), "variant {i} should be refused");
        }
    }
}
