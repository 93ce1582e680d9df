//! Counters for observability.

/// Counters for observability (a snapshot).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Members by status.
    pub alive: usize,
    /// Suspect members.
    pub suspect: usize,
    /// Dead members.
    pub dead: usize,
    /// Members that left.
    pub left: usize,
    /// Datagrams and stream frames received.
    pub messages_in: u64,
    /// Datagrams and stream frames sent.
    pub messages_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Frames refused (bad label, key, checksum, malformed...).
    pub rejected: u64,
    /// Probes sent.
    pub probes: u64,
    /// Suspicions raised by this node.
    pub suspicions: u64,
    /// Suspicions of this node it refuted.
    pub refutations: u64,
    /// Lifeguard local health multiplier (0 = healthy).
    pub health_multiplier: u32,
    /// Indirect probes (ping-req) sent.
    pub indirect_probes: u64,
    /// Push-pull exchanges started.
    pub push_pulls: u64,
    /// Push-pull exchanges that failed.
    pub push_pull_failures: u64,
    /// Updates waiting in the dissemination queue.
    pub queued_updates: usize,
    /// Updates piggybacked on outgoing packets.
    pub updates_sent: u64,
    /// This node's incarnation.
    pub incarnation: u64,
    /// Application items (broadcasts, queries) waiting in their queue.
    pub queued_user_items: usize,
    /// Application items queued, this node's own and forwarded ones (a
    /// replacement counts too).
    pub user_items_queued: u64,
    /// Application items piggybacked on outgoing packets.
    pub user_items_sent: u64,
    /// Broadcasts and queries delivered to the application here.
    pub user_items_delivered: u64,
    /// Application items dropped because their queue was full.
    pub user_items_dropped: u64,
    /// (origin, key) pairs and queries remembered to drop duplicates.
    pub user_items_remembered: usize,
    /// Application items dropped as too old (stamped more than
    /// `Config::user_ltime_window` ticks behind this node's clock): received
    /// ones, and queued ones that became too old before they were sent out.
    pub user_items_too_old: u64,
    /// This node's Lamport clock of application items.
    pub user_ltime: u64,
    /// Membership claims refused because their incarnation was above
    /// [`MAX_INCARNATION`](crate::MAX_INCARNATION) (only a forged or broken
    /// peer sends one).
    pub incarnations_refused: u64,
    /// Membership claims whose incarnation was clamped to
    /// [`Config::incarnation_window`](crate::Config::incarnation_window)
    /// above what this node knew.
    pub incarnations_clamped: u64,
    /// `Alive` claims for a member held alive or suspect at another address
    /// (not applied: the established holder keeps the name), and claims
    /// about this node at another address; see
    /// [`Signal::NameConflict`](crate::Signal::NameConflict).
    pub name_conflicts: u64,
    /// New members not added because the table was full
    /// ([`Config::max_members`](crate::Config::max_members)) and no dead
    /// member could make room.
    pub members_refused: u64,
    /// Dead members forgotten early to make room for a new member in a
    /// full table.
    pub members_evicted: u64,
    /// Push-pull views refused whole for listing more than
    /// [`Config::max_push_pull_members`](crate::Config::max_push_pull_members).
    pub push_pulls_refused: u64,
    /// Application items refused, and push-pull clocks not witnessed, for
    /// being stamped more than `Config::user_ltime_window` ticks ahead of
    /// this node's clock (or above [`MAX_LTIME`](crate::MAX_LTIME)).
    pub user_items_too_new: u64,
    /// Queries of others not surfaced because too many already await an
    /// answer here.
    pub user_queries_refused: u64,
}
