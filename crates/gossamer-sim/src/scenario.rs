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

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use gossamer_heal::HealConfig;
use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::hostile::{Attack, Forged, MAX_PUSH_PULL_NAMES};
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
    /// incarnation 0 (through `Swim::adopt_members`), as after a completed
    /// join; no join traffic, no seed contacted. This is for studying
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
    /// Each of the nodes (those up at that moment) broadcasts one
    /// application item (`Swim::broadcast`), at an instant drawn
    /// uniformly within `spread` of the fault (from an RNG stream of its
    /// own, so that the other faults' random picks do not change when
    /// broadcasts are added or removed). Every delivery is recorded; see
    /// the report's broadcast section and the `broadcasts_delivered`
    /// and `detection_unaffected_by_broadcasts` assertions.
    Broadcast {
        /// Who broadcasts (`"all"`, `"random(N)"`, ...).
        nodes: NodeSet,
        /// Window the broadcasts are spread over (default: all at once).
        spread: Option<Span>,
        /// Payload bytes of each broadcast (default 32).
        payload: Option<usize>,
        /// The application key (default `f<fault index>`): faults that
        /// share a key broadcast new versions of one item, as an
        /// application updating a setting does.
        key: Option<String>,
    },
    /// A hostile node outside the cluster (it knows the label, holds no
    /// key) sends forged frames: `rounds` rounds, `every` apart, each one
    /// frame to every node of `to` that is up. See [`Attack`] for what each
    /// attack claims, and the `alive_at_end`, `recovered_within`,
    /// `members_at_most` and `incarnation_at_most` assertions.
    Forge {
        /// What the frames claim.
        attack: Attack,
        /// The member the claims are about (`confirm`, `suspect`, `alive`,
        /// `user`; for `push_pull`, one the forged view holds dead at
        /// `incarnation`).
        target: Option<u32>,
        /// Who receives the frames (default: every node).
        to: Option<NodeSet>,
        /// The incarnation claimed (`confirm`, `suspect`, `alive`; default
        /// `"max"`); `"known+N"` is the target's own plus `N`, read anew
        /// each round.
        incarnation: Option<Forged>,
        /// The Lamport time claimed (`user`; default `"max"`);
        /// `"known+N"` is the receiver's clock plus `N`.
        ltime: Option<Forged>,
        /// How many rounds (default 1).
        rounds: Option<u32>,
        /// Time between rounds (default 1 period).
        every: Option<Span>,
        /// Never-existing members per forged push-pull (`push_pull`;
        /// default 10,000, or none with a `target`).
        names: Option<u32>,
        /// The accusers the claims name (`confirm`, `suspect`): these
        /// nodes' names in turn, frame after frame (the target's own
        /// excepted), so that Lifeguard counts independent suspicions and
        /// shortens the suspicion timeout; default the hostile node's own
        /// name.
        accusers: Option<NodeSet>,
    },
    /// A second real node started under node `name_of`'s name, at an
    /// address of its own (a new node index, as `join` adds), joining
    /// through the seeds: two processes claiming one name.
    Impostor {
        /// The node whose name it takes.
        name_of: u32,
    },
}

/// Payload size of a broadcast fault that does not give one.
pub const DEFAULT_BROADCAST_PAYLOAD: usize = 32;

/// Largest broadcast payload a scenario may ask for: no datagram is
/// larger (the core refuses, and the report counts, any item above its
/// share of one packet, `Swim::max_user_item_len`).
pub const MAX_BROADCAST_PAYLOAD: usize = 65_507;

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
            FaultAction::Broadcast { .. } => "broadcast",
            FaultAction::Forge { .. } => "forge",
            FaultAction::Impostor { .. } => "impostor",
        }
    }

    fn node_sets(&self) -> Vec<&NodeSet> {
        match self {
            FaultAction::Crash { nodes }
            | FaultAction::Restart { nodes }
            | FaultAction::Pause { nodes, .. }
            | FaultAction::Slow { nodes, .. }
            | FaultAction::Leave { nodes }
            | FaultAction::Broadcast { nodes, .. } => vec![nodes],
            FaultAction::Partition { groups } => groups.iter().collect(),
            FaultAction::OneWay { from, to } => vec![from, to],
            FaultAction::Flap { a, b, .. } => vec![a, b],
            FaultAction::Forge { to, accusers, .. } => to.iter().chain(accusers.iter()).collect(),
            FaultAction::Heal | FaultAction::Join { .. } | FaultAction::Impostor { .. } => vec![],
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
    /// Heal layer: after the fault (a heal, or the partition itself), at
    /// least `count` nodes (default: every node up from the fault to the
    /// end) raised `PartitionDetected`, within `periods` if given.
    PartitionDetected {
        /// Fault index.
        fault: usize,
        /// How many nodes at least (default: all of them).
        count: Option<u64>,
        /// Bound, in protocol periods (default: by the end).
        periods: Option<f64>,
        /// Only these nodes (a group name or node set) are counted.
        among: Option<String>,
    },
    /// Heal layer: every node up from the fault to the end decided
    /// (`PartitionHealed`) within `periods` of the fault.
    HealedWithin {
        /// Fault index (the heal).
        fault: usize,
        /// Bound, in protocol periods.
        periods: f64,
        /// Only these nodes (a group name or node set) are checked.
        among: Option<String>,
    },
    /// Heal layer: the last decision after the fault of every node up from
    /// the fault to the end names `group`'s coordinator (its lowest name)
    /// among the winners; on the nodes of `group`, the winners are exactly
    /// the group's members still up (crashed or departed ones may be
    /// missing).
    Winners {
        /// Fault index (the heal).
        fault: usize,
        /// A name from `[groups]`, or a node set (`"0..16"`).
        group: String,
        /// Only these nodes (a group name or node set) are checked.
        among: Option<String>,
    },
    /// Heal layer: after the fault, every node of `group` up from the fault
    /// to the end rejoined, and no other such node did.
    Rejoined {
        /// Fault index (the heal).
        fault: usize,
        /// A name from `[groups]`, or a node set.
        group: String,
        /// Only these nodes (a group name or node set) are checked.
        among: Option<String>,
    },
    /// Heal layer: no node raised `PartitionDetected` before the fault
    /// (gossip lag during churn is not a partition).
    NoDetectionBefore {
        /// Fault index.
        fault: usize,
    },
    /// Heal layer: every `PartitionDetected` after the fault says the
    /// detecting node's side is the majority exactly on the nodes of
    /// `group` (needs a quorum other than `"off"`).
    Majority {
        /// Fault index.
        fault: usize,
        /// A name from `[groups]`, or a node set.
        group: String,
    },
    /// Heal layer: at most `count` `PartitionDetected` events in all (0: a
    /// scenario with no real partition must not see one).
    DetectionsAtMost {
        /// Bound.
        count: u64,
    },
    /// Heal layer: no node decided (`PartitionHealed`) more than `count`
    /// times over the whole run (no heal storm on a flapping link).
    HealsPerNodeAtMost {
        /// Bound.
        count: u64,
    },
    /// At most `count` removals (autoclean) of a member that was running.
    FalseRemovalsAtMost {
        /// Bound.
        count: u64,
    },
    /// Every broadcast (of every `broadcast` fault) reached every node
    /// running from the broadcast to the end of the run (its origin
    /// excepted) within `periods`, exactly once and intact. Broadcasts
    /// whose origin went down within one period of sending them are not
    /// counted (they may never have left it); at least one broadcast must
    /// be counted.
    BroadcastsDelivered {
        /// Bound on the time to reach every such node, in protocol periods.
        periods: f64,
        /// Fraction of (broadcast, node) pairs that must be delivered
        /// (default 1.0: all).
        coverage: Option<f64>,
    },
    /// The same scenario without its broadcasts (every `broadcast` fault
    /// emptied, same seed) is run first as a baseline; the mean first
    /// detection of the crashes and the mean time until every member knows
    /// of the crashes and leaves must each stay within `tolerance`
    /// (relative, default 0.1) of the baseline's, or within `min_periods`
    /// (default 1.0) when that is larger. Means over all such faults:
    /// single detection times vary by about a period from run to run
    /// whatever the load (probing is round-robin from random offsets), so
    /// only their means can show a systematic slowdown.
    DetectionUnaffectedByBroadcasts {
        /// Relative tolerance (default 0.1).
        tolerance: Option<f64>,
        /// Absolute tolerance floor, in periods (default 1.0).
        min_periods: Option<f64>,
    },
    /// Hostile peers: at the end, every other live node holds each of
    /// `nodes` (all up at the end) in its member table alive, under its
    /// name, at its own address. A member pinned to another address or
    /// displaced by an impostor fails it; nodes started under one of the
    /// names (`impostor`) are not asked.
    AliveAtEnd {
        /// The members.
        nodes: NodeSet,
    },
    /// Hostile peers: within `periods` of the last forged frame of the
    /// fault (a `forge`), every live member sees every live member alive
    /// again: whatever lie got in was transient.
    RecoveredWithin {
        /// Fault index (a `forge`).
        fault: usize,
        /// Bound, in protocol periods.
        periods: f64,
    },
    /// Hostile peers: at most `count` deliveries of forged user items to an
    /// application (`forge` with `attack = "user"`).
    ForgedDeliveriesAtMost {
        /// Bound.
        count: u64,
    },
    /// Hostile peers: no node's member table ever held more than `count`
    /// members, itself and dead ones included (sampled every
    /// `sample_every` and at the end).
    MembersAtMost {
        /// Bound.
        count: u64,
    },
    /// Hostile peers: at the end, `node`'s own incarnation is at most
    /// `value` (forged claims must not drive it up without bound).
    IncarnationAtMost {
        /// The node (up at the end).
        node: u32,
        /// Bound.
        value: u64,
    },
    /// Heal layer: every node up from the fault to the end forgot the
    /// fault's (crashed) nodes within `periods` of the fault, and no node
    /// forgot one before holding it dead for the `autoclean` timeout.
    AutocleanWithin {
        /// Fault index.
        fault: Option<usize>,
        /// Or: the node the fault is about.
        node: Option<u32>,
        /// Bound, in protocol periods.
        periods: f64,
    },
}

impl AssertSpec {
    /// The fault reference, if the assertion is about one fault.
    pub fn fault_ref(&self) -> Option<FaultRef> {
        match *self {
            AssertSpec::AllKnowWithin { fault, node, .. }
            | AssertSpec::FirstDetectionWithin { fault, node, .. }
            | AssertSpec::AutocleanWithin { fault, node, .. } => Some(FaultRef { fault, node }),
            AssertSpec::ConvergedWithin { fault, .. }
            | AssertSpec::SplitWithin { fault, .. }
            | AssertSpec::DeathsAtMost { fault, .. }
            | AssertSpec::PartitionDetected { fault, .. }
            | AssertSpec::HealedWithin { fault, .. }
            | AssertSpec::Winners { fault, .. }
            | AssertSpec::Rejoined { fault, .. }
            | AssertSpec::Majority { fault, .. }
            | AssertSpec::RecoveredWithin { fault, .. }
            | AssertSpec::NoDetectionBefore { fault } => Some(FaultRef { fault: Some(fault), node: None }),
            AssertSpec::FalsePositivesAtMost { .. }
            | AssertSpec::SingleClusterAtEnd
            | AssertSpec::HealsPerNodeAtMost { .. }
            | AssertSpec::DetectionsAtMost { .. }
            | AssertSpec::FalseRemovalsAtMost { .. }
            | AssertSpec::BroadcastsDelivered { .. }
            | AssertSpec::DetectionUnaffectedByBroadcasts { .. }
            | AssertSpec::AliveAtEnd { .. }
            | AssertSpec::MembersAtMost { .. }
            | AssertSpec::ForgedDeliveriesAtMost { .. }
            | AssertSpec::IncarnationAtMost { .. } => None,
        }
    }

    /// True for the assertions about hostile peers.
    pub fn is_hostile(&self) -> bool {
        matches!(
            self,
            AssertSpec::AliveAtEnd { .. }
                | AssertSpec::RecoveredWithin { .. }
                | AssertSpec::MembersAtMost { .. }
                | AssertSpec::ForgedDeliveriesAtMost { .. }
                | AssertSpec::IncarnationAtMost { .. }
        )
    }

    /// True for the assertions only the heal layer can satisfy.
    pub fn needs_heal(&self) -> bool {
        matches!(
            self,
            AssertSpec::PartitionDetected { .. }
                | AssertSpec::HealedWithin { .. }
                | AssertSpec::Winners { .. }
                | AssertSpec::Rejoined { .. }
                | AssertSpec::NoDetectionBefore { .. }
                | AssertSpec::HealsPerNodeAtMost { .. }
                | AssertSpec::DetectionsAtMost { .. }
                | AssertSpec::Majority { .. }
                | AssertSpec::AutocleanWithin { .. }
        )
    }

    /// True for the assertions about application broadcasts.
    pub fn needs_broadcasts(&self) -> bool {
        matches!(self, AssertSpec::BroadcastsDelivered { .. } | AssertSpec::DetectionUnaffectedByBroadcasts { .. })
    }

    /// The groups an assertion names.
    fn groups(&self) -> Vec<&str> {
        let (group, among) = match self {
            AssertSpec::Winners { group, among, .. } | AssertSpec::Rejoined { group, among, .. } => {
                (Some(group.as_str()), among)
            }
            AssertSpec::PartitionDetected { among, .. } | AssertSpec::HealedWithin { among, .. } => (None, among),
            AssertSpec::Majority { group, .. } => return vec![group],
            _ => return Vec::new(),
        };
        group.into_iter().chain(among.as_deref()).collect()
    }

    /// The `among` restriction of a heal assertion, if any.
    pub fn among(&self) -> Option<&str> {
        match self {
            AssertSpec::Winners { among, .. }
            | AssertSpec::Rejoined { among, .. }
            | AssertSpec::PartitionDetected { among, .. }
            | AssertSpec::HealedWithin { among, .. } => among.as_deref(),
            _ => None,
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

    /// The heal layer's config if the scenario enables it (`None`: plain
    /// SWIM), validated; `period` is the protocol period (`verdict_grace`
    /// defaults to two of them).
    pub fn heal_config(&self, period: Duration) -> Result<Option<HealConfig>, SimError> {
        let Some(table) = self.heal.as_ref() else { return Ok(None) };
        table.resolve(period).map_err(|e| SimError::invalid(format!("[heal]: {e}")))
    }

    /// The nodes an assertion's `group` names: a `[groups]` entry, or a node
    /// set written in place. Random picks are refused (an assertion must
    /// name the same nodes the faults did, without drawing).
    pub fn group_nodes(&self, group: &str) -> Result<Vec<u32>, SimError> {
        let set = match self.groups.get(group) {
            Some(set) => set.clone(),
            None => group.parse::<NodeSet>().map_err(|e| SimError::invalid(format!("group {group:?}: {e}")))?,
        };
        if set.is_random() {
            return Err(SimError::invalid(format!("group {group:?}: random picks cannot be asserted on")));
        }
        let total = self.total_nodes();
        if let Some(max) = set.max_explicit().filter(|&m| m >= total) {
            return Err(SimError::invalid(format!(
                "group {group:?}: node {max} does not exist ({total} nodes in all)"
            )));
        }
        // Deterministic sets never draw: any RNG resolves them alike.
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
        Ok(set.resolve(self.total_nodes(), &mut rng))
    }

    /// Whether any fault broadcasts.
    pub fn has_broadcasts(&self) -> bool {
        self.faults.iter().any(|f| matches!(f.action, FaultAction::Broadcast { .. }))
    }

    /// The same scenario without application broadcasts: every
    /// `broadcast` fault keeps its place (so fault indices stay what the
    /// assertions say) but names no node, and the broadcast assertions are
    /// dropped. Broadcast picks draw from an RNG stream of their own, so
    /// every other random choice of the run is the same.
    ///
    /// ```
    /// use gossamer_sim::{FaultAction, Scenario};
    /// let s = Scenario::from_toml(r#"
    ///     name = "b"
    ///     nodes = 8
    ///     duration = "40 periods"
    ///     [[fault]]
    ///     at = "10 periods"
    ///     kind = "broadcast"
    ///     nodes = "all"
    ///     spread = "5 periods"
    ///     [[fault]]
    ///     at = "20 periods"
    ///     kind = "crash"
    ///     nodes = [7]
    ///     [[assert]]
    ///     kind = "broadcasts_delivered"
    ///     periods = 10
    ///     [[assert]]
    ///     kind = "all_know_within"
    ///     fault = 1
    ///     periods = 15
    /// "#).unwrap();
    /// let base = s.without_broadcasts();
    /// assert_eq!(base.faults.len(), 2);
    /// assert!(matches!(&base.faults[0].action, FaultAction::Broadcast { nodes, .. } if nodes.is_empty()));
    /// assert_eq!(base.asserts.len(), 1);
    /// ```
    pub fn without_broadcasts(&self) -> Scenario {
        let mut s = self.clone();
        for f in &mut s.faults {
            if let FaultAction::Broadcast { nodes, .. } = &mut f.action {
                *nodes = NodeSet::of(&[]);
            }
        }
        s.asserts.retain(|a| !a.needs_broadcasts());
        s
    }

    /// Nodes at the start plus every node a `join` fault adds.
    pub fn total_nodes(&self) -> u32 {
        (self.nodes as u64 + self.added_nodes()).min(u32::MAX as u64) as u32
    }

    /// Nodes the faults add: every `join`'s count, one per `impostor`.
    fn added_nodes(&self) -> u64 {
        self.faults
            .iter()
            .map(|f| match f.action {
                FaultAction::Join { count } => count as u64,
                FaultAction::Impostor { .. } => 1,
                _ => 0,
            })
            .sum()
    }

    /// Whether the scenario has a hostile peer (`forge` or `impostor`
    /// faults): the engine then checks names in views and samples table
    /// sizes, which plain runs skip.
    pub fn has_hostile(&self) -> bool {
        self.faults.iter().any(|f| matches!(f.action, FaultAction::Forge { .. } | FaultAction::Impostor { .. }))
    }

    /// Checks what parsing cannot: counts, indices and references.
    pub fn validate(&self) -> Result<(), SimError> {
        let config = self.protocol.to_config()?;
        config.validate()?;
        self.heal_config(config.probe_interval)?;
        if self.nodes == 0 {
            return Err(SimError::invalid("nodes must be at least 1"));
        }
        let total = self.nodes as u64 + self.added_nodes();
        if total > MAX_NODES as u64 {
            return Err(SimError::invalid(format!("{total} nodes in all: at most {MAX_NODES} are supported")));
        }
        if self.cluster.seeds == 0 || self.cluster.seeds > self.nodes {
            return Err(SimError::invalid("cluster.seeds must be within 1..=nodes"));
        }
        if self.cluster.start == Start::Converged && !self.cluster.join_spread.resolve(config.probe_interval).is_zero()
        {
            return Err(SimError::invalid(
                "cluster.join_spread has no meaning with start = \"converged\" (every node is there from the start)",
            ));
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
                FaultAction::Broadcast { key: Some(key), .. }
                    if gossamer_wire::UserKey::new(key).is_err() || key == crate::hostile::FORGED_KEY =>
                {
                    return Err(SimError::invalid(format!(
                        "fault {i}: broadcast key {key:?} must be 1 to 64 bytes, and not {:?} (the hostile node's)",
                        crate::hostile::FORGED_KEY
                    )))
                }
                FaultAction::Broadcast { payload: Some(len), .. } if *len > MAX_BROADCAST_PAYLOAD => {
                    return Err(SimError::invalid(format!(
                        "fault {i}: a broadcast payload of {len} bytes cannot fit one datagram"
                    )))
                }
                FaultAction::Forge { attack, target, incarnation, ltime, rounds, names, accusers, .. } => {
                    let bad = |what: &str| Err(SimError::invalid(format!("fault {i} (forge {attack}): {what}")));
                    match target {
                        None if attack.needs_target() => return bad("needs a `target`"),
                        Some(_) if !attack.takes_target() => return bad("forges new names, not about a `target`"),
                        Some(t) if *t as u64 >= total => return bad(&format!("node {t} does not exist")),
                        _ => {}
                    }
                    let claims = matches!(attack, Attack::Confirm | Attack::Suspect | Attack::Alive)
                        || (*attack == Attack::PushPull && target.is_some());
                    if incarnation.is_some() && !claims {
                        return bad("`incarnation` is for confirm, suspect, alive and push_pull with a target");
                    }
                    if accusers.is_some() && !matches!(attack, Attack::Confirm | Attack::Suspect) {
                        return bad("`accusers` is for confirm and suspect");
                    }
                    if ltime.is_some() && *attack != Attack::User {
                        return bad("`ltime` is for user");
                    }
                    if names.is_some() && *attack != Attack::PushPull {
                        return bad("`names` is for push_pull");
                    }
                    if names.is_some_and(|n| n == 0 || n > MAX_PUSH_PULL_NAMES) {
                        return bad(&format!("`names` must be within 1..={MAX_PUSH_PULL_NAMES}"));
                    }
                    if *rounds == Some(0) {
                        return bad("`rounds` must be at least 1");
                    }
                }
                FaultAction::Impostor { name_of } if *name_of as u64 >= total => {
                    return Err(SimError::invalid(format!("fault {i} (impostor): node {name_of} does not exist")))
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
            if a.needs_broadcasts() && !self.has_broadcasts() {
                return Err(SimError::invalid(format!("assertion {i}: needs a `broadcast` fault")));
            }
            let bad_number = |x: f64, low: f64, high: f64| x.is_nan() || x < low || x > high;
            match *a {
                AssertSpec::BroadcastsDelivered { periods, coverage }
                    if bad_number(periods, f64::MIN_POSITIVE, f64::MAX)
                        || coverage.is_some_and(|c| bad_number(c, 0.0, 1.0)) =>
                {
                    return Err(SimError::invalid(format!(
                        "assertion {i}: periods must be positive and coverage within 0..=1"
                    )));
                }
                AssertSpec::DetectionUnaffectedByBroadcasts { tolerance, min_periods } => {
                    if tolerance.is_some_and(|t| bad_number(t, 0.0, f64::MAX))
                        || min_periods.is_some_and(|p| bad_number(p, 0.0, f64::MAX))
                    {
                        return Err(SimError::invalid(format!(
                            "assertion {i}: tolerance and min_periods must not be negative"
                        )));
                    }
                    if !self
                        .faults
                        .iter()
                        .any(|f| matches!(f.action, FaultAction::Crash { .. } | FaultAction::Leave { .. }))
                    {
                        return Err(SimError::invalid(format!(
                            "assertion {i}: needs a crash or leave fault to compare"
                        )));
                    }
                }
                _ => {}
            }
            match a {
                AssertSpec::RecoveredWithin { fault, periods } => {
                    if !matches!(self.faults.get(*fault).map(|f| &f.action), Some(FaultAction::Forge { .. })) {
                        return Err(SimError::invalid(format!("assertion {i}: fault {fault} is not a `forge`")));
                    }
                    if bad_number(*periods, 0.0, f64::MAX) {
                        return Err(SimError::invalid(format!("assertion {i}: periods must not be negative")));
                    }
                }
                AssertSpec::AliveAtEnd { nodes } => match nodes.max_explicit() {
                    _ if nodes.is_random() => {
                        return Err(SimError::invalid(format!("assertion {i}: random picks cannot be asserted on")))
                    }
                    Some(max) if max as u64 >= total => {
                        return Err(SimError::invalid(format!("assertion {i}: node {max} does not exist")))
                    }
                    _ => {}
                },
                AssertSpec::IncarnationAtMost { node, .. } if *node as u64 >= total => {
                    return Err(SimError::invalid(format!("assertion {i}: node {node} does not exist")))
                }
                _ => {}
            }
            if a.needs_heal() && !self.heal.as_ref().is_some_and(|h| h.enabled) {
                return Err(SimError::invalid(format!("assertion {i}: needs an enabled [heal] section")));
            }
            for group in a.groups() {
                self.group_nodes(group).map_err(|e| SimError::invalid(format!("assertion {i}: {e}")))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gossamer_heal::{Autoclean, Quorum};

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

    #[test]
    fn start_parses_and_is_validated() {
        let base = "name = \"c\"\nnodes = 8\nduration = \"10 periods\"\n[cluster]\n";
        let parse = |extra: &str| Scenario::from_toml(&format!("{base}{extra}"));
        assert_eq!(parse("").unwrap().cluster.start, Start::Join, "joining is the default");
        assert_eq!(parse("start = \"join\"").unwrap().cluster.start, Start::Join);
        assert_eq!(parse("start = \"converged\"").unwrap().cluster.start, Start::Converged);
        assert!(parse("start = \"warm\"").is_err(), "unknown start");
        let spread = parse("start = \"converged\"\njoin_spread = \"5 periods\"").unwrap_err();
        assert!(spread.to_string().contains("join_spread"), "{spread}");
        assert!(parse("start = \"join\"\njoin_spread = \"5 periods\"").is_ok());
        assert!(parse("start = \"converged\"\njoin_spread = \"0s\"").is_ok());
    }

    const HEAL: &str = r#"
        name = "heal"
        nodes = 8
        duration = "100 periods"
        [protocol]
        probe_interval = "500ms"
        [heal]
        autoclean = "30s"
        settle = "4s"
        hold_down = "5s"
        backoff_factor = 3
        max_hold_down = "1min"
        flap_window = "2min"
        probe_interval = "5s"
        comeback_quorum = 0.6
        correlation_window = "3s"
        quorum = 8
        [groups]
        left = "0..4"
        [[fault]]
        at = "10 periods"
        kind = "partition"
        groups = ["0..4"]
        [[fault]]
        at = "40 periods"
        kind = "heal"
        [[fault]]
        at = "45 periods"
        kind = "crash"
        nodes = [7]
        [[assert]]
        kind = "winners"
        fault = 1
        group = "left"
        [[assert]]
        kind = "rejoined"
        fault = 1
        group = "4..8"
        among = "0..7"
        [[assert]]
        kind = "partition_detected"
        fault = 1
        count = 6
        [[assert]]
        kind = "autoclean_within"
        node = 7
        periods = 80
    "#;

    #[test]
    fn heal_section_maps_onto_heal_config() {
        let s = Scenario::from_toml(HEAL).unwrap();
        let c = s.heal_config(Duration::from_millis(500)).unwrap().expect("enabled");
        assert_eq!(c.autoclean, Autoclean::After(Duration::from_secs(30)));
        assert_eq!(c.settle, Duration::from_secs(4));
        assert_eq!(c.hold_down, Duration::from_secs(5));
        assert_eq!((c.backoff_factor, c.max_hold_down), (3, Duration::from_secs(60)));
        assert_eq!((c.flap_window, c.probe_interval), (Duration::from_secs(120), Duration::from_secs(5)));
        assert_eq!((c.comeback_quorum, c.correlation_window), (0.6, Duration::from_secs(3)));
        assert_eq!(c.quorum, Quorum::Expected(8));
        assert!(c.autoheal);
        assert_eq!(s.group_nodes("left").unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(s.group_nodes("5, 6").unwrap(), vec![5, 6]);
        assert!(s.asserts.iter().all(AssertSpec::needs_heal));
        assert_eq!(s.resolve_fault(s.asserts[3].fault_ref().unwrap()), Some(2));

        let off = HEAL.replace("autoclean = \"30s\"", "autoclean = \"off\"\nquorum = \"off\"");
        let off = off.replacen("quorum = 8\n", "", 1);
        let c = Scenario::from_toml(&off).unwrap().heal_config(Duration::from_secs(1)).unwrap().unwrap();
        assert_eq!((c.autoclean, c.quorum), (Autoclean::Off, Quorum::Off));
        let plain = Scenario::from_toml(FULL).unwrap();
        assert_eq!(plain.heal_config(Duration::from_secs(1)).unwrap(), None, "no [heal]: plain SWIM");
    }

    #[test]
    fn refuses_bad_heal_scenarios() {
        let bad = [
            HEAL.replace("backoff_factor = 3", "backoff_factor = 0"),
            HEAL.replace("max_hold_down = \"1min\"", "max_hold_down = \"1s\""),
            HEAL.replace("autoclean = \"30s\"", "autoclean = \"soon\""),
            HEAL.replace("autoclean = \"30s\"", "autoclean = \"60 periods\""),
            HEAL.replace("quorum = 8", "quorum = \"most\""),
            HEAL.replace("settle = \"4s\"", "setle = \"4s\""),
            HEAL.replace("group = \"left\"", "group = \"right\""),
            HEAL.replace("left = \"0..4\"", "left = \"random(4)\""),
            HEAL.replace("group = \"4..8\"", "group = \"4..9\""),
            HEAL.replace("among = \"0..7\"", "among = \"nobody\""),
            HEAL.replace("[heal]", "[heal]\nenabled = false"),
            HEAL.replace("node = 7", "node = 6"),
        ];
        for (i, text) in bad.iter().enumerate() {
            assert!(Scenario::from_toml(text).is_err(), "variant {i} should be refused");
        }
    }
}

#[cfg(test)]
mod schema_tests {
    use super::*;
    use gossamer_core::Config;

    #[test]
    fn protocol_tables_resolve_exactly_as_before_the_shared_schema() {
        let text = "name = \"f\"\nnodes = 4\nduration = \"3 periods\"\n[protocol]\npreset = \"lan\"\nmax_members = 1024\nmax_push_pull_members = 1024\n";
        let c = Scenario::from_toml(text).unwrap().protocol.to_config().unwrap();
        assert_eq!(c, Config { max_members: 1024, max_push_pull_members: 1024, ..Config::lan() });
        for preset in [Preset::Lan, Preset::Wan, Preset::Local] {
            let t = ProtocolConfig { preset, overrides: Default::default() };
            assert_eq!(t.to_config().unwrap(), preset.config());
        }
    }
}
