//! What the heal layer hands back: events for the application, commands for
//! the driver to apply to the SWIM core, and the callback trait.

use std::collections::BTreeSet;

use gossamer_wire::{NodeId, NodeName};

/// Something the application should know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealEvent {
    /// Two (or more) sides of a partition saw each other again.
    PartitionDetected {
        /// Our side: members live in our view, this node included.
        ours: BTreeSet<NodeName>,
        /// The other side as it sees itself (or, before its own view
        /// arrived, as inferred from who died together).
        theirs: BTreeSet<NodeName>,
        /// Whether our side holds more than half of the expected or last
        /// known cluster size; `None` when [`crate::Quorum::Off`].
        majority: Option<bool>,
    },
    /// The sides were merged: `rejoined` rejoin `winners` with a fresh
    /// incarnation and adopt the winners' view. If this node is among
    /// `rejoined`, the application should resync its own state from the
    /// winners.
    PartitionHealed {
        /// The winning side.
        winners: BTreeSet<NodeName>,
        /// Members of the losing sides that rejoin.
        rejoined: BTreeSet<NodeName>,
    },
    /// The core forgot a member dead (or left) for longer than its
    /// retention (`autoclean`), see [`crate::Heal::observe_removed`]. If it
    /// comes back it joins as a new member.
    MemberRemoved(NodeName),
}

/// Something the driver must do to the SWIM core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealCommand {
    /// Rejoin through `seeds` (the winners, coordinator first): raise the
    /// local incarnation above anything seen, push-pull with a seed and
    /// adopt its view.
    Rejoin {
        /// Members of the winning side to contact, in order.
        seeds: Vec<NodeId>,
    },
    /// Announce this node's side of a partition to the cluster (the
    /// adapter puts it in the node's metadata under [`CLAIM_KEY`], so it
    /// spreads with the membership gossip).
    Publish(Claim),
    /// Run an anti-entropy push-pull with `peer`, a member this node holds
    /// dead, and feed both directions' views to
    /// [`crate::Heal::observe_remote_view`]. This is how a node notices
    /// that a partition is over.
    Probe {
        /// The dead member to contact.
        peer: NodeId,
    },
}

/// Metadata key under which a node publishes its latest [`Claim`].
pub const CLAIM_KEY: &str = "gossamer.heal";

/// One side of a partition as its own members saw it when they noticed
/// the partition, before anything merged: its size and coordinator (lowest
/// name). Every node publishes its side's claim as its episode opens (the
/// adapter puts it in the node's metadata under [`CLAIM_KEY`], so it
/// spreads with the membership gossip), and every node decides on the
/// claims it heard: the strongest wins, larger first, then the lower
/// coordinator (for disjoint sides, exactly [`crate::choose_winner`]).
/// This is ekka's "collect every node's view and pick the best" done by
/// gossip, and it stays right where reports fail: after the core already
/// merged two of three sides, which then report themselves as one.
///
/// ```
/// use gossamer_heal::Claim;
/// let claim = Claim { seq: 3, size: 5, coordinator: "gossamer@10.0.0.1".parse().unwrap() };
/// assert_eq!(claim.encode(), "3:5:gossamer@10.0.0.1");
/// assert_eq!(Claim::decode(claim.encode().as_bytes()), Some(claim));
/// assert_eq!(Claim::decode(b"garbage"), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Per publisher, increasing: tells a new claim from the same metadata
    /// seen again.
    pub seq: u64,
    /// How many members the side has.
    pub size: u32,
    /// The side's coordinator, its lowest name.
    pub coordinator: NodeName,
}

impl Claim {
    /// `seq:size:coordinator`.
    pub fn encode(&self) -> String {
        format!("{}:{}:{}", self.seq, self.size, self.coordinator)
    }

    /// Parses [`Claim::encode`]'s output; `None` for anything else (the
    /// bytes come from the network).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (seq, rest) = text.split_once(':')?;
        let (size, name) = rest.split_once(':')?;
        Some(Self { seq: seq.parse().ok()?, size: size.parse().ok()?, coordinator: name.parse().ok()? })
    }

    /// The claim for `side`; `None` for an empty side, which has no
    /// coordinator.
    pub(crate) fn of(seq: u64, side: &std::collections::BTreeSet<NodeName>) -> Option<Self> {
        let coordinator = side.first()?.clone();
        Some(Self { seq, size: u32::try_from(side.len()).unwrap_or(u32::MAX), coordinator })
    }

    /// Ranking key, smaller is stronger: larger side, then lower name.
    pub(crate) fn rank(&self) -> (std::cmp::Reverse<u32>, &NodeName) {
        (std::cmp::Reverse(self.size), &self.coordinator)
    }
}

/// One item drained from [`crate::Heal::poll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealOutput {
    /// For the application.
    Event(HealEvent),
    /// For the driver.
    Command(HealCommand),
}

/// Application callbacks, all optional. Delivered by
/// [`crate::Heal::dispatch`] in the order the events happened.
///
/// ```
/// use std::collections::BTreeSet;
/// use gossamer_heal::HealHandler;
/// use gossamer_wire::NodeName;
///
/// #[derive(Default)]
/// struct Resync { pending: bool }
/// impl HealHandler for Resync {
///     fn on_partition_healed(&mut self, _winners: &BTreeSet<NodeName>, _rejoined: &BTreeSet<NodeName>, local_rejoined: bool) {
///         // The minority refetches its data from the winners; no restart.
///         self.pending = local_rejoined;
///     }
/// }
/// ```
pub trait HealHandler {
    /// See [`HealEvent::PartitionDetected`].
    fn on_partition_detected(
        &mut self,
        _ours: &BTreeSet<NodeName>,
        _theirs: &BTreeSet<NodeName>,
        _majority: Option<bool>,
    ) {
    }
    /// See [`HealEvent::PartitionHealed`]; `local_rejoined` tells whether
    /// this node is on the losing side and must resync.
    fn on_partition_healed(
        &mut self,
        _winners: &BTreeSet<NodeName>,
        _rejoined: &BTreeSet<NodeName>,
        _local_rejoined: bool,
    ) {
    }
    /// See [`HealEvent::MemberRemoved`].
    fn on_member_removed(&mut self, _name: &NodeName) {}
}

impl HealEvent {
    /// Calls the matching method of `handler`; `local` is this node.
    pub fn deliver(&self, local: &NodeName, handler: &mut (impl HealHandler + ?Sized)) {
        match self {
            HealEvent::PartitionDetected { ours, theirs, majority } => {
                handler.on_partition_detected(ours, theirs, *majority)
            }
            HealEvent::PartitionHealed { winners, rejoined } => {
                handler.on_partition_healed(winners, rejoined, rejoined.contains(local))
            }
            HealEvent::MemberRemoved(name) => handler.on_member_removed(name),
        }
    }
}
