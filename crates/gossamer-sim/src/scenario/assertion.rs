//! The `[[assert]]` list: what must hold at the end of a run.

use serde::{Deserialize, Serialize};

use crate::nodeset::NodeSet;

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
    pub(super) fn groups(&self) -> Vec<&str> {
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
