//! Per-member records: what the heal layer remembers about each member,
//! above all when, and by whom, it was declared dead.

use std::collections::BTreeSet;

use gossamer_wire::{Incarnation, MemberStatus, NodeId, NodeName};

use crate::Time;

/// When and by whom a member was declared dead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Death {
    /// When this node first learnt of the death.
    pub at: Time,
    /// Every node reported to have declared it dead (confirmers), merged
    /// across reports of the same death.
    pub by: BTreeSet<NodeName>,
    /// The incarnation declared dead.
    pub incarnation: Incarnation,
    /// Declared only by members on another side of a cut (held dead here,
    /// or back from across it lately) about a member that was with us: the
    /// other side's verdict crossing a link that just came back, not a
    /// death our side saw. Such a member comes back as one of ours.
    pub foreign: bool,
}

/// What this node knows about one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    /// Name and address (the address is needed to probe or rejoin it).
    pub id: NodeId,
    /// Latest status observed.
    pub status: MemberStatus,
    /// Latest incarnation observed.
    pub incarnation: Incarnation,
    /// When this node first saw it (since its last removal, if any): a
    /// removed member that comes back starts a new record.
    pub first_seen: Time,
    /// When `status` last changed.
    pub since: Time,
    /// Its last death; kept after it comes back (until it dies again), as
    /// it tells which members died together.
    pub death: Option<Death>,
    /// When it last came back from the dead. A member that came back
    /// lately belongs to the other side of a partition being healed, even
    /// though it is live in this node's view by now.
    pub returned_at: Option<Time>,
    /// When it stopped being alive (turned suspect, dead or left) in this
    /// node's view; `None` while it is alive. Tells a member cut off from
    /// us (suspect or dead long before a heal) from one of ours that the
    /// other side's verdicts, crossing the healed link, made look suspect
    /// or dead a moment ago (see [`crate::HealConfig::verdict_grace`]).
    pub unalive_since: Option<Time>,
}

impl MemberRecord {
    /// Alive or suspect: still part of this node's cluster.
    pub fn is_live(&self) -> bool {
        is_live(self.status)
    }
}

/// Alive or suspect.
pub(crate) fn is_live(status: MemberStatus) -> bool {
    matches!(status, MemberStatus::Alive | MemberStatus::Suspect)
}
