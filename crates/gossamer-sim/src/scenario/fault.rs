//! The `[[fault]]` schedule: what happens to whom, and when.

use serde::{Deserialize, Serialize};

use crate::hostile::{Attack, Forged};
use crate::nodeset::NodeSet;
use crate::units::Span;

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

    pub(super) fn node_sets(&self) -> Vec<&NodeSet> {
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
