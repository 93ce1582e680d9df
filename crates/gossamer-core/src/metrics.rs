//! Counters for observability.

use serde::{Deserialize, Serialize};

/// Counters for observability (a snapshot). Serialisable, field names as
/// keys, so front ends (the agent's `gossamer metrics`) print it as it is
/// instead of mirroring it; `#[serde(default)]`: a field an older build
/// did not have reads as zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
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
    /// Suspects this node chose to probe out of turn after hearing of
    /// their suspicion ([`Config::suspect_probers`](crate::Config::suspect_probers)).
    pub suspect_probes: u64,
    /// Suspicions not counted as independent confirmations: their accuser
    /// is unknown, unverified, not live, or the suspect itself (a forged
    /// name cannot shorten a suspicion).
    pub confirmations_refused: u64,
    /// The suspicion floor set by recent refutations, in ms
    /// ([`Config::suspicion_refute_mult`](crate::Config::suspicion_refute_mult);
    /// 0 when off or none seen), as of the last suspicion started.
    pub refutation_floor_ms: u64,
    /// Suspicion timers handled more than a probe timeout late (this node
    /// was stalled): the death was put off by one probe timeout, so that a
    /// refutation queued meanwhile is handled first.
    pub stalled_suspicions: u64,
    /// Suspicions this node did not end at their deadline for want of
    /// first-hand evidence (it had not probed the suspect itself, or the
    /// suspect answered its probe): it probed the suspect first.
    pub suspicions_put_off: u64,
    /// Push-pull exchanges started.
    pub push_pulls: u64,
    /// Push-pull exchanges that failed.
    pub push_pull_failures: u64,
    /// Periodic push-pulls opened with a digest instead of the full table
    /// ([`Config::push_pull_deltas`](crate::Config::push_pull_deltas)); also
    /// counted in `push_pulls`.
    pub push_pull_digests: u64,
    /// Digest exchanges that fell back to full views: answers to a digest
    /// differing in more than half of its buckets, and partial answers
    /// that revealed a split (a full exchange followed).
    pub push_pull_full_fallbacks: u64,
    /// Fallback pings over a stream (direct probe unanswered in
    /// `probe_timeout`, see [`Config::stream_pings`](crate::Config::stream_pings)).
    pub stream_pings: u64,
    /// Probes whose first ack came over the stream: each is a suspicion
    /// the fallback saved (the datagrams, direct and indirect, had failed).
    pub stream_ping_acks: u64,
    /// Fallback pings the driver reported failed (refused, cut, timed out).
    pub stream_ping_failures: u64,
    /// Stream acks that came too late to count: their probe had ended (or
    /// another was in flight). Many of them mean the stream fallback's
    /// deadline is too short for the host's load.
    pub stream_ping_acks_late: u64,
    /// Stream pings not sent to unverified members because the last few
    /// such pings failed (a flood of forged members must not make this
    /// node a connection scanner; see `Config::stream_pings`).
    pub stream_pings_withheld: u64,
    /// Direct probes unanswered within `probe_timeout` (each one sends the
    /// indirect probes and, for a verified member, a stream ping): the
    /// yardstick for `stream_pings`.
    pub probe_timeouts: u64,
    /// Updates waiting in the dissemination queue.
    pub queued_updates: usize,
    /// Members this node has not heard from directly, whatever their
    /// status (only claimed by others: newcomers, or a flood of forged
    /// names, issue #15). They get a bounded share of probes and gossip.
    pub unverified: usize,
    /// Updates piggybacked on outgoing packets.
    pub updates_sent: u64,
    /// Pending updates (a suspicion or death of another member)
    /// retired before their retransmit limit because this node kept
    /// hearing them from peers that knew them already
    /// ([`Config::retire_after_copies`](crate::Config::retire_after_copies)).
    pub updates_retired_early: u64,
    /// Members new to this node learned during a join burst and left to
    /// push-pull instead of gossiped
    /// ([`Config::join_burst`](crate::Config::join_burst)).
    pub joins_left_to_push_pull: u64,
    /// Pending updates dropped unsent-out because the queue was full
    /// ([`Config::max_queued_updates`](crate::Config::max_queued_updates)):
    /// the most sent first. Non-zero only in clusters larger than the
    /// bound, typically while a node joins one.
    pub updates_evicted: u64,
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
    /// Application items dropped as too old: received ones stamped at or
    /// below a time of their origin this node accepted and then forgot, and
    /// this node's own queued ones that a clock learnt on joining left
    /// `Config::user_ltime_window` ticks behind (see the `user` module docs).
    pub user_items_too_old: u64,
    /// This node's Lamport clock of application items (what it stamps its
    /// items above; times it refused as too new do not move it).
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
    /// how far this node accepts (its clock, plus a window per such
    /// refusal), or above [`MAX_LTIME`](crate::MAX_LTIME).
    pub user_items_too_new: u64,
    /// Queries of others not surfaced because too many already await an
    /// answer here.
    pub user_queries_refused: u64,
    /// Round trips of the direct probes this node sent, from the ping to
    /// its ack (an ack after the indirect probes went out is not counted:
    /// it may have come through a relay).
    pub probe_rtt: RttHistogram,
    /// What was received, by kind: datagrams (probe, ack, gossip, user)
    /// and push-pull stream frames, with their bytes. Datagrams this node
    /// could not read are in `rejected` and in no kind.
    pub traffic_in: Traffic,
    /// What was sent, by kind (the kinds add up to `messages_out` and
    /// `bytes_out`).
    pub traffic_out: Traffic,
}

/// Messages and bytes by kind, the figures operators tune by (probe
/// timers, gossip fan-out, push-pull interval, application traffic): a
/// datagram counts under the kind of its primary message, piggybacked
/// updates included in its bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Traffic {
    /// Pings and indirect probe requests (datagrams).
    pub probe: KindTraffic,
    /// Acks and nacks (datagrams).
    pub ack: KindTraffic,
    /// Gossip fan-out datagrams carrying membership updates, and multicast
    /// heartbeats.
    pub gossip: KindTraffic,
    /// Push-pull exchanges: the stream frames, requests and responses.
    pub push_pull: KindTraffic,
    /// Gossip datagrams carrying only application items (broadcasts,
    /// queries), and query responses.
    pub user: KindTraffic,
}

/// One kind's count and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KindTraffic {
    /// Datagrams, or stream frames for push-pull.
    pub messages: u64,
    /// Their bytes, as on the wire (frame header and seal included).
    pub bytes: u64,
}

/// The kind a datagram or stream frame counts under in [`Traffic`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrafficKind {
    Probe,
    Ack,
    Gossip,
    PushPull,
    User,
}

impl TrafficKind {
    /// The kind of a frame whose primary message is `message`;
    /// `membership` tells whether it carries membership updates (a bare
    /// gossip frame of application items only is `User`).
    pub(crate) fn of(message: &gossamer_wire::Message, membership: bool) -> Self {
        use gossamer_wire::Message;
        match message {
            Message::Ping(_) | Message::PingReq(_) => TrafficKind::Probe,
            Message::Ack(_) | Message::Nack(_) => TrafficKind::Ack,
            Message::Gossip if !membership => TrafficKind::User,
            Message::Gossip | Message::Heartbeat(_) => TrafficKind::Gossip,
            Message::PushPullRequest(_)
            | Message::PushPullResponse(_)
            | Message::PushPullDigest(_)
            | Message::PushPullDelta(_) => TrafficKind::PushPull,
            Message::QueryResponse(_) => TrafficKind::User,
        }
    }
}

impl Traffic {
    /// Counts one frame of `bytes` bytes under `kind`.
    pub(crate) fn count(&mut self, kind: TrafficKind, bytes: usize) {
        let slot = match kind {
            TrafficKind::Probe => &mut self.probe,
            TrafficKind::Ack => &mut self.ack,
            TrafficKind::Gossip => &mut self.gossip,
            TrafficKind::PushPull => &mut self.push_pull,
            TrafficKind::User => &mut self.user,
        };
        slot.messages = slot.messages.saturating_add(1);
        slot.bytes = slot.bytes.saturating_add(bytes as u64);
    }

    /// All kinds together.
    pub fn total(&self) -> KindTraffic {
        [self.probe, self.ack, self.gossip, self.push_pull, self.user].iter().fold(KindTraffic::default(), |a, k| {
            KindTraffic { messages: a.messages.saturating_add(k.messages), bytes: a.bytes.saturating_add(k.bytes) }
        })
    }
}

/// Upper bounds, in microseconds, of the buckets of [`RttHistogram`]; a
/// last, unbounded bucket follows. 250 µs (loopback) to 1 s (beyond any
/// sane probe timeout).
pub const RTT_BUCKETS_MICROS: [u64; 12] =
    [250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000];

/// Probe round trips by [`RTT_BUCKETS_MICROS`] bucket: fixed-size, so
/// recording one is a few comparisons and an add, and a snapshot is a copy
/// (exporters turn it into e.g. a Prometheus histogram).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RttHistogram {
    /// Samples per bucket (not cumulative): one per bound, then one for
    /// longer round trips.
    pub counts: [u64; RTT_BUCKETS_MICROS.len() + 1],
    /// Sum of all samples, microseconds (saturating).
    pub sum_micros: u64,
}

impl RttHistogram {
    /// Records one round trip.
    pub(crate) fn observe(&mut self, rtt: std::time::Duration) {
        let micros = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
        let i = RTT_BUCKETS_MICROS.iter().position(|&b| micros <= b).unwrap_or(RTT_BUCKETS_MICROS.len());
        self.counts[i] = self.counts[i].saturating_add(1);
        self.sum_micros = self.sum_micros.saturating_add(micros);
    }

    /// How many round trips in all.
    pub fn count(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, &c| a.saturating_add(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn round_trips_land_in_their_bucket_and_the_sum() {
        let mut h = RttHistogram::default();
        h.observe(Duration::from_micros(250)); // on the first bound: first bucket
        h.observe(Duration::from_micros(251));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(5)); // beyond the last bound
        h.observe(Duration::MAX); // saturates, never panics
        assert_eq!(h.counts[0], 1);
        assert_eq!(h.counts[1], 1);
        assert_eq!(h.counts[4], 1);
        assert_eq!(h.counts[RTT_BUCKETS_MICROS.len()], 2);
        assert_eq!(h.count(), 5);
        assert_eq!(h.sum_micros, u64::MAX);
    }
}
