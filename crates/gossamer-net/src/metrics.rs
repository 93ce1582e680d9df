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
    pub streams_answered_at_accept: AtomicU64,
    pub streams_refused: AtomicU64,
    pub streams_busy: AtomicU64,
    pub streams_deferred: AtomicU64,
    pub push_pull_failed: AtomicU64,
    pub heartbeats_sent: AtomicU64,
    pub heartbeats_received: AtomicU64,
    pub heartbeats_rejected: AtomicU64,
    pub multicast_joins: AtomicU64,
    pub streams_evicted: AtomicU64,
    pub streams_header_timeout: AtomicU64,
    pub stream_budget_waits: AtomicU64,
    pub stream_budget_refused: AtomicU64,
    pub push_pulls_dropped: AtomicU64,
    pub joins_dropped: AtomicU64,
    pub seeds_dropped: AtomicU64,
    pub join_retries: AtomicU64,
    pub join_follow_ups: AtomicU64,
    pub stream_pings_no_room: AtomicU64,
    pub stream_ping_timeouts: AtomicU64,
    pub stream_ping_errors: AtomicU64,
    pub push_pull_duration: DurationHistogram,
}

/// Upper bounds, in microseconds, of the buckets of [`NetMetrics::push_pull_duration`] (a last,
/// unbounded bucket follows): 1 ms to 10 s, so loopback, LAN and WAN exchanges and slow peers near the
/// stream timeout each land in a bucket of their own.
pub const DURATION_BUCKETS_MICROS: [u64; 12] =
    [1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 10_000_000];

/// A histogram of durations with the fixed [`DURATION_BUCKETS_MICROS`] buckets: one relaxed atomic
/// add per sample, readable while samples are added (the runtime has no exporter of its own; the agent
/// turns snapshots into Prometheus histograms).
#[derive(Debug, Default)]
pub(crate) struct DurationHistogram {
    counts: [AtomicU64; DURATION_BUCKETS_MICROS.len() + 1],
    sum_micros: AtomicU64,
}

impl DurationHistogram {
    pub(crate) fn observe(&self, d: std::time::Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = DURATION_BUCKETS_MICROS.iter().position(|&b| micros <= b).unwrap_or(DURATION_BUCKETS_MICROS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds_micros: DURATION_BUCKETS_MICROS.to_vec(),
            counts: self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
            sum_micros: self.sum_micros.load(Ordering::Relaxed),
        }
    }
}

/// A snapshot of a duration histogram.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct HistogramSnapshot {
    /// Upper bounds of the buckets, microseconds ([`DURATION_BUCKETS_MICROS`]).
    pub bounds_micros: Vec<u64>,
    /// Samples per bucket (not cumulative): one per bound, then one for longer samples.
    pub counts: Vec<u64>,
    /// Sum of all samples, microseconds (saturating only after ~580,000 years of samples).
    pub sum_micros: u64,
}

impl HistogramSnapshot {
    /// How many samples in all.
    pub fn count(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, &c| a.saturating_add(c))
    }
}

/// Gauges the driver reads at snapshot time.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Gauges {
    pub timers_pending: usize,
    pub streams_open: usize,
    pub stream_bytes_reserved: usize,
    pub push_pulls_pending: usize,
    pub seeds: usize,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A `warn` at most once per [`gossamer_core::REFUSAL_WARN_INTERVAL`] for
/// one kind of limit being hit (a flood must not flood the log too); the
/// occurrences in between are counted and reported with the next one.
#[derive(Debug, Default)]
pub(crate) struct WarnLimit {
    warned_at: Option<tokio::time::Instant>,
    suppressed: u64,
}

impl WarnLimit {
    /// `Some(suppressed since the last warning)` when a warning is due.
    pub(crate) fn due(&mut self, now: tokio::time::Instant) -> Option<u64> {
        let due =
            self.warned_at.is_none_or(|at| now.saturating_duration_since(at) >= gossamer_core::REFUSAL_WARN_INTERVAL);
        if !due {
            self.suppressed += 1;
            return None;
        }
        self.warned_at = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

impl NetCounters {
    pub(crate) fn snapshot(&self, gauges: Gauges) -> NetMetrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NetMetrics {
            send_errors: get(&self.send_errors),
            recv_errors: get(&self.recv_errors),
            streams_accepted: get(&self.streams_accepted),
            streams_answered_at_accept: get(&self.streams_answered_at_accept),
            streams_refused: get(&self.streams_refused),
            streams_busy: get(&self.streams_busy),
            streams_deferred: get(&self.streams_deferred),
            push_pull_failed: get(&self.push_pull_failed),
            heartbeats_sent: get(&self.heartbeats_sent),
            heartbeats_received: get(&self.heartbeats_received),
            heartbeats_rejected: get(&self.heartbeats_rejected),
            multicast_joins: get(&self.multicast_joins),
            timers_pending: gauges.timers_pending as u64,
            streams_evicted: get(&self.streams_evicted),
            streams_header_timeout: get(&self.streams_header_timeout),
            stream_budget_waits: get(&self.stream_budget_waits),
            stream_budget_refused: get(&self.stream_budget_refused),
            streams_open: gauges.streams_open as u64,
            stream_bytes_reserved: gauges.stream_bytes_reserved as u64,
            push_pulls_pending: gauges.push_pulls_pending as u64,
            push_pulls_dropped: get(&self.push_pulls_dropped),
            joins_dropped: get(&self.joins_dropped),
            seeds: gauges.seeds as u64,
            seeds_dropped: get(&self.seeds_dropped),
            join_retries: get(&self.join_retries),
            join_follow_ups: get(&self.join_follow_ups),
            stream_pings_no_room: get(&self.stream_pings_no_room),
            stream_ping_timeouts: get(&self.stream_ping_timeouts),
            stream_ping_errors: get(&self.stream_ping_errors),
            push_pull_duration: self.push_pull_duration.snapshot(),
        }
    }
}

/// Runtime counters (a snapshot). Serialisable, field names as keys, so
/// front ends print it as it is; a field an older build did not have reads
/// as zero (`#[serde(default)]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct NetMetrics {
    /// Datagrams the OS refused to send (dropped: UDP may lose packets).
    pub send_errors: u64,
    /// Errors reading the UDP socket.
    pub recv_errors: u64,
    /// Push-pull streams accepted from peers.
    pub streams_accepted: u64,
    /// Of those, the ones whose whole request (a join's, a fallback ping's)
    /// was already waiting when they were accepted: read and answered then,
    /// without a task of their own to read them first.
    pub streams_answered_at_accept: u64,
    /// Inbound streams refused: foreign or oversized frame, timeout, early close.
    pub streams_refused: u64,
    /// Inbound streams refused on arrival because every slot (of all, or
    /// of their source address) held a stream that had proved itself.
    pub streams_busy: u64,
    /// Inbound connections held waiting for a slot instead of evicting a
    /// stream no worse than them that was still within its grace (see
    /// [`crate::stream`]); a connection still waiting after the header
    /// deadline is closed and counted in `streams_busy`.
    pub streams_deferred: u64,
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
    /// Inbound streams cut off to make room for a newcomer: idle, still in
    /// their header, or reading an unauthenticated body (see
    /// [`crate::stream`]).
    pub streams_evicted: u64,
    /// Inbound streams closed for not sending their first bytes and whole
    /// header within `NodeConfig::stream_header_timeout`.
    pub streams_header_timeout: u64,
    /// Streams that had to wait for room in the byte budget before reading
    /// a body: inbound requests, and responses to this node's push-pulls.
    pub stream_budget_waits: u64,
    /// Inbound streams closed because the byte budget had no room for
    /// their body within the header deadline.
    pub stream_budget_refused: u64,
    /// Inbound streams open now.
    pub streams_open: u64,
    /// Bytes of the stream byte budget reserved now (unauthenticated
    /// bodies being read or waiting for the core).
    pub stream_bytes_reserved: u64,
    /// Outbound push-pulls in flight or waiting for a connection now.
    pub push_pulls_pending: u64,
    /// Outbound push-pulls not started: the gate was full, or one with the
    /// same peer was already pending.
    pub push_pulls_dropped: u64,
    /// Joins (multicast-heard peers, `Node::join` addresses) not started
    /// because the outbound gate was full.
    pub joins_dropped: u64,
    /// Join addresses remembered as seeds (retried while alone).
    pub seeds: u64,
    /// Join addresses not remembered as seeds because the list was full
    /// (they were still contacted once).
    pub seeds_dropped: u64,
    /// Joins retried after a short, jittered backoff because the join
    /// through a seed failed while this node was alone (a busy seed
    /// evicted or refused it, or it was unreachable). After 8 in a row the
    /// core's slower reconnect timer (`Config::reconnect_interval`) takes
    /// over.
    pub join_retries: u64,
    /// Follow-up push-pulls after a join, each with a random live member
    /// other than the seed: one about a second after the join, then one
    /// every ~2 s, 8 in all per join (whatever the view does meanwhile: a
    /// stalled view at the end of a burst of joins is not a complete one).
    pub join_follow_ups: u64,
    /// Fallback pings over TCP (`gossamer_core::StreamPing`) not started
    /// because too many were in flight already: each is a probe left to
    /// its datagrams.
    pub stream_pings_no_room: u64,
    /// Fallback pings over TCP not answered by the end of their probe's
    /// period (connect, write and read included).
    pub stream_ping_timeouts: u64,
    /// Fallback pings over TCP that failed otherwise: refused, reset or
    /// closed by the peer (a crashed node, or its admission refusing the
    /// stream), TLS handshake, a malformed answer.
    pub stream_ping_errors: u64,
    /// How long the push-pull exchanges this node started and completed took, from connecting to
    /// having read the response (TLS handshake included); failed ones are counted in
    /// `push_pull_failed` only. For the agent's `gossamer_net_push_pull_duration_seconds` histogram.
    pub push_pull_duration: HistogramSnapshot,
}

/// Everything observable about a node's activity (serialisable, as its
/// parts are).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct NodeMetrics {
    /// The protocol's counters (members by state, messages, probes, suspicions...).
    pub core: Metrics,
    /// The runtime's counters.
    pub net: NetMetrics,
    /// The partition-heal layer's counters (detections, heals, rejoins...);
    /// all zero when [`crate::NodeConfig::heal`] is `None`.
    pub heal: gossamer_heal::HealMetrics,
}
