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
}
