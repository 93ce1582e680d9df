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
}
