//! Counters of the runtime itself (what the core cannot see: socket errors,
//! refused streams, multicast), next to the core's protocol counters.

use std::sync::atomic::{AtomicU64, Ordering};

use gossamer_core::Metrics;

/// Runtime counters, shared by the driver and its stream tasks.
#[derive(Debug, Default)]
pub(crate) struct NetCounters {
    pub send_errors: AtomicU64,
    pub recv_errors: AtomicU64,
    pub streams_accepted: AtomicU64,
    pub streams_refused: AtomicU64,
    pub streams_busy: AtomicU64,
    pub push_pull_failed: AtomicU64,
    pub heartbeats_sent: AtomicU64,
    pub heartbeats_received: AtomicU64,
    pub heartbeats_rejected: AtomicU64,
    pub multicast_joins: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl NetCounters {
    pub(crate) fn snapshot(&self, timers_pending: usize) -> NetMetrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NetMetrics {
            send_errors: get(&self.send_errors),
            recv_errors: get(&self.recv_errors),
            streams_accepted: get(&self.streams_accepted),
            streams_refused: get(&self.streams_refused),
            streams_busy: get(&self.streams_busy),
            push_pull_failed: get(&self.push_pull_failed),
            heartbeats_sent: get(&self.heartbeats_sent),
            heartbeats_received: get(&self.heartbeats_received),
            heartbeats_rejected: get(&self.heartbeats_rejected),
            multicast_joins: get(&self.multicast_joins),
            timers_pending: timers_pending as u64,
        }
    }
}

/// Runtime counters (a snapshot).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetMetrics {
    /// Datagrams the OS refused to send (dropped: UDP may lose packets).
    pub send_errors: u64,
    /// Errors reading the UDP socket.
    pub recv_errors: u64,
    /// Push-pull streams accepted from peers.
    pub streams_accepted: u64,
    /// Inbound streams refused: foreign or oversized frame, timeout, early close.
    pub streams_refused: u64,
    /// Inbound streams dropped because too many were open at once.
    pub streams_busy: u64,
    /// Push-pull exchanges this node started that failed.
    pub push_pull_failed: u64,
    /// Multicast heartbeats sent.
    pub heartbeats_sent: u64,
    /// Multicast heartbeats of other nodes of this cluster heard.
    pub heartbeats_received: u64,
    /// Multicast datagrams refused (other cluster, wrong secret, garbage).
    pub heartbeats_rejected: u64,
    /// Joins started because of a heartbeat.
    pub multicast_joins: u64,
    /// Core timers waiting.
    pub timers_pending: u64,
}

/// Everything observable about a node's activity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeMetrics {
    /// The protocol's counters (members by state, messages, probes, suspicions...).
    pub core: Metrics,
    /// The runtime's counters.
    pub net: NetMetrics,
}
