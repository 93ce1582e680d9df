//! The state machine itself: inputs (datagrams, stream frames, timers,
//! commands) in, [`Output`]s out. Precedence rules live in `rules`, probing
//! in `failure`, anti-entropy in `pushpull`; this module wires them.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gossamer_wire::{
    Alive, DecodeError, FrameCodec, Incarnation, Leave, MemberStatus, Message, Metadata, NodeId, NodeName, SeqNo,
    Update, UpdateBytes, DEFAULT_MAX_STREAM_FRAME,
};
use rand_core::RngCore;

use crate::awareness::Awareness;
use crate::broadcast::{Key, MemberQueue, SlotHash};
use crate::burst::JoinBurst;
use crate::config::{Config, ConfigError};
use crate::directory::IdentityDirectory;
use crate::event::{Event, Output};
use crate::member::{Death, Member, MemberTable, Slot};
use crate::metrics::Metrics;
use crate::probe::{Probe, ProbeOrder, Relay};
use crate::rules::MAX_INCARNATION;
use crate::signal::{NameConflict, Signal, Signals};
use crate::suspicion::{RefuteTimes, Suspicion};
use crate::timer::{Periodic, PeriodicTimers, Timer, TimerKind};
use crate::user::UserState;
use crate::Time;

/// Most push-pull exchanges started by heartbeats that may be in flight.
pub(crate) const MAX_PENDING_PUSH_PULLS: usize = 32;

/// Bytes of the update count (a varint) in a frame that carries none.
const BARE_COUNT_LEN: usize = 1;

/// Least time between two `warn` lines about refused frames.
pub const REFUSAL_WARN_INTERVAL: Time = Time::from_secs(10);

/// The SWIM state machine of one node.
///
/// ```
/// use gossamer_core::{Config, Output, Swim};
/// use gossamer_wire::{ClusterLabel, FrameCodec, NodeId};
/// use rand::SeedableRng;
/// use std::time::Duration;
///
/// let codec = FrameCodec::new(ClusterLabel::new("demo").unwrap());
/// let id = |n: &str, port| NodeId::new(n.parse().unwrap(), format!("127.0.0.1:{port}").parse().unwrap());
/// let rng = rand::rngs::StdRng::seed_from_u64(1);
/// let mut a = Swim::new(id("a", 7001), Config::local(), codec.clone(), rng.clone(), Duration::ZERO).unwrap();
/// let mut b = Swim::new(id("b", 7002), Config::local(), codec, rng, Duration::ZERO).unwrap();
///
/// // b joins through a: a push-pull exchange, carried here by hand.
/// b.join(Duration::ZERO, &["127.0.0.1:7001".parse().unwrap()]);
/// let request = std::iter::from_fn(|| b.poll_output())
///     .find_map(|o| match o { Output::PushPull { request, .. } => Some(request), _ => None })
///     .unwrap();
/// let response = a.handle_push_pull_request(Duration::ZERO, "127.0.0.1:7002".parse().unwrap(), &request).unwrap();
/// b.handle_push_pull_response(Duration::ZERO, "127.0.0.1:7001".parse().unwrap(), &response);
/// assert_eq!(a.members().count(), 2);
/// assert_eq!(b.members().count(), 2);
/// ```
pub struct Swim<R: RngCore> {
    pub(crate) rng: R,
    pub(crate) codec: FrameCodec,
    pub(crate) stream_codec: FrameCodec,
    pub(crate) config: Config,
    pub(crate) local: NodeId,
    pub(crate) self_slot: Slot,
    pub(crate) members: MemberTable,
    pub(crate) queue: MemberQueue,
    pub(crate) order: ProbeOrder,
    pub(crate) awareness: Awareness,
    /// Keyed by slot, which the table hands out: a cheap hash is safe.
    pub(crate) suspicions: HashMap<Slot, Suspicion, SlotHash>,
    pub(crate) next_suspicion_id: u64,
    /// Recent refutation times (see `suspicion::RefuteTimes`).
    pub(crate) refute_times: RefuteTimes,
    pub(crate) probe: Option<Probe>,
    pub(crate) relays: HashMap<SeqNo, Relay>,
    pub(crate) seq: SeqNo,
    pub(crate) timers: PeriodicTimers,
    pub(crate) outputs: VecDeque<Output>,
    pub(crate) seeds: Vec<SocketAddr>,
    /// Set (to when) once a graceful leave started.
    pub(crate) leaving: Option<Time>,
    /// Highest incarnation anyone claimed about this node.
    pub(crate) max_self_incarnation_seen: Incarnation,
    /// Set while a push-pull response is merged that this node, knowing
    /// no other live member, asked for: a claim about this node at another
    /// address then means its name is taken (see `rules`).
    pub(crate) joining_merge: bool,
    /// Entries of the push-pull view being merged (0 outside a merge):
    /// how large the cluster is, for a node whose table the view is still
    /// filling (see [`crate::burst`]).
    pub(crate) merging_view: usize,
    /// The conflict this node yielded to, if any (see [`Swim::name_conflict`]).
    pub(crate) name_conflict: Option<NameConflict>,
    /// Set once this node's incarnation hit the ceiling (logged once).
    pub(crate) incarnation_exhausted: bool,
    pub(crate) pending_push_pulls: Vec<SocketAddr>,
    /// Digest exchanges awaiting their answer, with their bucket count
    /// (see `pushpull`; bounded there).
    pub(crate) pending_digests: Vec<(SocketAddr, u32)>,
    /// Pings sent by the reconnect timer to dead members, by sequence number.
    pub(crate) reconnect_pings: Vec<(SeqNo, SocketAddr)>,
    pub(crate) stats: Metrics,
    /// The opt-in feed for layers above SWIM.
    pub(crate) signals: Signals,
    /// When a refused frame was last logged at `warn` (see [`Swim::reject`]).
    pub(crate) refusal_warned_at: Option<Time>,
    /// Refusals logged only at `debug` since then.
    pub(crate) refusals_suppressed: u64,
    /// Application broadcasts, queries and state (see `user`).
    pub(crate) user: UserState,
    scratch: Vec<u8>,
    /// The list every datagram's updates are decoded into (see `handle_datagram`).
    received: Vec<Update>,
    /// Their bytes as they arrived (see `handle_datagram`).
    received_bytes: UpdateBytes,
    /// Their members' slots, looked up before they are applied (see `handle_datagram`).
    pub(crate) found: Vec<Option<Slot>>,
    buf: BytesMut,
    keys: Vec<Key>,
    pub(crate) sampled: Vec<Slot>,
    /// The address of the last member verified (or found verified) by a
    /// message from it: its next messages skip the name lookup (see
    /// `failure::heard_from`).
    pub(crate) last_heard_from: Option<SocketAddr>,
    /// How stream pings to unverified members fare (see `probe`).
    pub(crate) unverified_pings: crate::probe::UnverifiedPings,
    /// The members that last answered this node's own probes, newest last
    /// (at most [`crate::failure::RECENT_ANSWERS`]): relays are drawn from
    /// them first (see `Swim::probe_timeout`).
    pub(crate) recent_answers: std::collections::VecDeque<Slot>,
    /// Scratch for relays drawn at random (kept: no allocation per probe).
    pub(crate) relay_scratch: Vec<Slot>,
    /// The latest `now` any input carried (see [`Swim::wake_gossip`]).
    pub(crate) clock: Time,
    /// Set while the gossip timer sleeps: the tick it skipped (see
    /// [`Swim::wake_gossip`]).
    gossip_idle: Option<Time>,
    /// Counts members new to this node, to tell a join burst (see
    /// [`crate::burst`]).
    pub(crate) burst: JoinBurst,
}

/// Members from which `handle_datagram` looks up a packet's updates in one
/// pass before applying them. Not where one table outgrows the L2 cache
/// (~4,096 members at ~150 bytes each): a process that hosts many nodes
/// (the mass join of 2,000 nodes in one process, issue #16) finds every
/// node's table cold whatever its size, and there the lookups one at a
/// time were 15–23% of all samples, each waiting on the index, then the
/// member's slot. Small tables (the n = 16 benchmarks) keep the cheaper
/// single pass.
const PREFETCH_MIN_MEMBERS: usize = 256;

pub(crate) fn after(now: Time, d: Duration) -> Time {
    now.saturating_add(d)
}

impl<R: RngCore> Swim<R> {
    /// A node that knows only itself. Nothing happens until [`Swim::join`]
    /// or a packet from another node arrives; the first timers are requested
    /// immediately (drain [`Swim::poll_output`]).
    pub fn new(id: NodeId, config: Config, codec: FrameCodec, rng: R, now: Time) -> Result<Self, ConfigError> {
        Self::with_directory(id, config, codec, rng, now, IdentityDirectory::new())
    }

    /// As [`Swim::new`], with this node's member records interned in
    /// `directory` (issue #16): nodes that share one directory (the
    /// simulator's, which runs thousands of nodes in one process) share
    /// every record they hold alike, so a converged cluster of `n` nodes
    /// holds `n` records instead of `n²`, and one name index instead of
    /// `n`. The node runs the same protocol as with a private directory;
    /// only memory differs, and its slot numbers (a slot is the name's id
    /// in the directory), so the same seed gives another, equally likely,
    /// run of the random choices that draw slots.
    pub fn with_directory(
        id: NodeId,
        config: Config,
        codec: FrameCodec,
        rng: R,
        now: Time,
        directory: IdentityDirectory,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let stream_codec = codec
            .clone()
            .with_max_frame_len(DEFAULT_MAX_STREAM_FRAME)
            .map_err(|e| ConfigError { field: "codec", reason: e.to_string() })?;
        if codec.overhead() + 128 > config.mtu {
            return Err(ConfigError {
                field: "mtu",
                reason: format!("{} leaves no room after the frame header", config.mtu),
            });
        }
        let mut rng = rng;
        // Random starting points for timer tokens, suspicion ids and sequence
        // numbers: leftovers from a previous run of this node never match.
        let (first_token, first_suspicion, first_seq) = (rng.next_u64() >> 1, rng.next_u64() >> 1, rng.next_u32());
        let mut members = MemberTable::new(directory);
        let me = Member { id: id.clone(), incarnation: 0, status: MemberStatus::Alive, metadata: Metadata::new() };
        let self_slot = members.insert(me, now);
        members.set_verified(self_slot);
        // One over the bound: `rules` evicts right after the push that passes it.
        let queue = MemberQueue::with_room(config.max_queued_updates.saturating_add(1));
        let mut swim = Self {
            rng,
            codec,
            stream_codec,
            awareness: Awareness::new(config.awareness_max_multiplier),
            config,
            local: id,
            self_slot,
            members,
            queue,
            order: ProbeOrder::default(),
            suspicions: HashMap::default(),
            next_suspicion_id: first_suspicion,
            refute_times: RefuteTimes::default(),
            probe: None,
            relays: HashMap::new(),
            seq: first_seq,
            timers: PeriodicTimers::starting_at(first_token),
            outputs: VecDeque::new(),
            seeds: Vec::new(),
            leaving: None,
            max_self_incarnation_seen: 0,
            joining_merge: false,
            merging_view: 0,
            name_conflict: None,
            incarnation_exhausted: false,
            pending_push_pulls: Vec::new(),
            pending_digests: Vec::new(),
            reconnect_pings: Vec::new(),
            stats: Metrics::default(),
            signals: Signals::default(),
            refusal_warned_at: None,
            refusals_suppressed: 0,
            user: UserState::new(),
            scratch: Vec::new(),
            received: Vec::new(),
            received_bytes: UpdateBytes::new(),
            found: Vec::new(),
            buf: BytesMut::new(),
            keys: Vec::new(),
            sampled: Vec::new(),
            last_heard_from: None,
            recent_answers: std::collections::VecDeque::with_capacity(crate::failure::RECENT_ANSWERS),
            relay_scratch: Vec::new(),
            unverified_pings: Default::default(),
            clock: now,
            gossip_idle: None,
            burst: JoinBurst::default(),
        };
        swim.queue.push_keyed(swim.self_slot, swim.self_alive());
        // Start each periodic task at a random phase so that nodes started
        // together do not act in lockstep.
        for task in Periodic::ALL {
            let period = swim.period(task);
            let phase = swim.random_phase(period);
            swim.arm(task, after(now, phase));
        }
        Ok(swim)
    }

    /// This node.
    pub fn local(&self) -> &NodeId {
        &self.local
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The name conflict this node yielded to, if any: while joining, it
    /// heard that an established member holds its name at another address
    /// (see [`NameConflict`]). It then neither refutes nor claims the name,
    /// and the driver should stop it and report the conflict (the runtime
    /// refuses to start); an embedder that keeps it running gets a node the
    /// cluster ignores. `None` for a node that was never in conflict, or
    /// that only observed conflicts (reported as
    /// [`Signal::NameConflict`]).
    pub fn name_conflict(&self) -> Option<&NameConflict> {
        self.name_conflict.as_ref()
    }

    /// The directory this node's member records are interned in (its own,
    /// or the one given to [`Swim::with_directory`]).
    pub fn directory(&self) -> &IdentityDirectory {
        self.members.directory()
    }

    /// This node's incarnation.
    pub fn incarnation(&self) -> Incarnation {
        self.self_entry().incarnation
    }

    pub(crate) fn self_entry(&self) -> &Member {
        self.members.get(self.self_slot).expect("the local node is always in the table").member
    }

    pub(crate) fn self_alive(&self) -> Update {
        let me = self.self_entry();
        Update::Alive(Alive { node: me.id.clone(), incarnation: me.incarnation, metadata: me.metadata.clone() })
    }

    /// A datagram arrived. Bad bytes are counted and logged, never fatal.
    pub fn handle_datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]) {
        self.tick(now);
        self.stats.messages_in += 1;
        self.stats.bytes_in += bytes.len() as u64;
        // One update list is decoded into again and again: it keeps its
        // capacity, so a datagram with piggybacked updates allocates
        // nothing (issue #8).
        // The updates' bytes are kept as they came: one forwarded unchanged
        // is queued as those bytes instead of being encoded again.
        let mut updates = std::mem::take(&mut self.received);
        let message =
            match self.codec.decode_parts_keeping(bytes, &mut self.scratch, &mut updates, &mut self.received_bytes) {
                Ok(message) => message,
                Err(error) => {
                    self.received = updates;
                    self.reject(now, from, "datagram", &error);
                    return;
                }
            };
        let membership = updates.iter().any(|u| !u.is_user());
        self.stats.traffic_in.count(crate::metrics::TrafficKind::of(&message, membership), bytes.len());
        // Updates first, so the message is handled against fresh state.
        if !updates.is_empty() {
            // In a large table every update's member is looked up first,
            // in one tight loop: the lookups are independent, so their
            // cache misses (the index, then the member's slot: each a trip
            // to memory) overlap instead of queueing up one after the other
            // between the rules' branches. A small table stays in cache and
            // the extra pass would only cost (+1.5% per message at 16
            // members), so there each update is looked up as it is applied.
            let mut found = std::mem::take(&mut self.found);
            found.clear();
            if updates.len() > 1 && self.members.len() >= PREFETCH_MIN_MEMBERS {
                self.members.find_each(updates.iter().map(|u| (!u.is_user()).then(|| u.node_name())), &mut found);
            }
            let kept = std::mem::take(&mut self.received_bytes);
            // Applying an update can forget a member (a full table makes
            // room by evicting a dead one), after which the slots looked
            // up before are not to be trusted: look the rest up one by one.
            let removals = self.members.removals();
            for (i, update) in updates.drain(..).enumerate() {
                let slot = self.members.still_found(&found, i, removals);
                self.apply_found(now, update, kept.get(i), slot);
            }
            self.received_bytes = kept;
            self.found = found;
        }
        self.received = updates;
        match message {
            Message::Ping(ping) => self.on_ping(now, from, ping),
            Message::Ack(ack) => self.on_ack(now, ack),
            Message::Nack(nack) => self.on_nack(from, nack),
            Message::PingReq(req) => self.on_ping_req(now, from, req),
            Message::Gossip => {}
            Message::Heartbeat(beat) => self.on_heartbeat(now, beat),
            Message::QueryResponse(response) => self.accept_response(now, response),
            Message::PushPullRequest(_)
            | Message::PushPullResponse(_)
            | Message::PushPullDigest(_)
            | Message::PushPullDelta(_) => {
                self.stats.rejected += 1;
                tracing::debug!(%from, "push-pull frame received as a datagram; ignored");
            }
        }
    }

    /// Counts a refused frame and logs it. A misconfigured peer (another
    /// cluster, another key, another version) is worth a `warn`, but a flood
    /// of its frames must not become a flood of log lines: at most one
    /// `warn` per [`REFUSAL_WARN_INTERVAL`], the rest at `debug` and counted.
    pub(crate) fn reject(&mut self, now: Time, from: SocketAddr, what: &str, error: &DecodeError) {
        self.stats.rejected += 1;
        let misconfigured = matches!(
            error,
            DecodeError::LabelMismatch { .. }
                | DecodeError::VersionMismatch { .. }
                | DecodeError::WrongKey
                | DecodeError::EncryptedButNoKey
                | DecodeError::NotEncrypted
        );
        let warn_due = self.refusal_warned_at.is_none_or(|at| now.saturating_sub(at) >= REFUSAL_WARN_INTERVAL);
        if misconfigured && warn_due {
            let suppressed = std::mem::take(&mut self.refusals_suppressed);
            self.refusal_warned_at = Some(now);
            tracing::warn!(%from, %error, suppressed, "{what} refused (another cluster or a configuration mismatch?)");
        } else {
            self.refusals_suppressed += u64::from(misconfigured);
            tracing::debug!(%from, %error, "{what} refused");
        }
    }

    /// A timer requested through [`Output::SetTimer`] is due.
    pub fn handle_timer(&mut self, now: Time, timer: Timer) {
        self.tick(now);
        match timer.0 {
            TimerKind::Periodic { task, token } => {
                let Some(due) = self.timers.due(task, token) else { return };
                if now < due {
                    // Early delivery: keep the schedule.
                    self.outputs
                        .push_back(Output::SetTimer { at: due, timer: Timer(TimerKind::Periodic { task, token }) });
                    return;
                }
                self.timers.disarm(task);
                match task {
                    Periodic::Probe => self.probe_period(now),
                    Periodic::Gossip => self.gossip(now),
                    Periodic::PushPull if self.burst.syncing() => {
                        if self.burst.take_sync(now, self.config.probe_interval) {
                            self.periodic_push_pull(now);
                            if !self.burst.syncing() {
                                // The burst's last: back to the usual
                                // interval at a random phase, as at start,
                                // not in step with every other node of
                                // the burst.
                                let period = self.period(task);
                                let phase = self.random_phase(period);
                                self.arm(task, after(now, phase));
                                return;
                            }
                        }
                    }
                    Periodic::PushPull => self.periodic_push_pull(now),
                    Periodic::Reconnect => self.reconnect(now),
                }
                let next = self.period(task);
                if task == Periodic::Gossip && self.queue.is_empty() && self.user.queue.is_empty() {
                    // Nothing to gossip: the timer sleeps until something
                    // is queued, instead of waking every gossip interval
                    // for nothing (see `wake_gossip`).
                    self.gossip_idle = Some(after(now, next));
                } else {
                    self.arm(task, after(now, next));
                }
            }
            TimerKind::ProbeTimeout { seq } => self.probe_timeout(now, seq),
            TimerKind::Suspicion { slot, id } => self.suspicion_timer(now, slot, id),
            TimerKind::Relay { seq } => self.relay_timer(now, seq),
            TimerKind::QueryDeadline { id } => self.query_deadline(now, id),
        }
    }

    /// A uniformly random time within `period`: where a periodic task
    /// starts, so that nodes started (or joined) together do not run it in
    /// step.
    fn random_phase(&mut self, period: Duration) -> Duration {
        Duration::from_nanos(self.rng.next_u64() % (period.as_nanos() as u64).max(1))
    }

    pub(crate) fn arm(&mut self, task: Periodic, at: Time) {
        let timer = self.timers.arm(task, at);
        self.outputs.push_back(Output::SetTimer { at, timer });
    }

    pub(crate) fn set_timer(&mut self, at: Time, kind: TimerKind) {
        self.outputs.push_back(Output::SetTimer { at, timer: Timer(kind) });
    }

    /// The period of a periodic task, as stretched by local health and
    /// cluster size.
    fn period(&self, task: Periodic) -> Duration {
        match task {
            Periodic::Probe => self.awareness.scale(self.config.probe_interval),
            Periodic::Gossip => self.config.gossip_interval,
            // Push-pulls owed to a join burst wait for it to go quiet.
            Periodic::PushPull if self.burst.syncing() => JoinBurst::quiet(self.config.probe_interval),
            Periodic::PushPull => push_pull_scale(self.config.push_pull_interval, self.members.len()),
            Periodic::Reconnect => push_pull_scale(self.config.reconnect_interval, self.members.len()),
        }
    }

    /// Join a cluster through any of `seeds` (push-pull with them). Seeds
    /// are also remembered and retried on a slow timer while this node is
    /// alone, so a split cluster finds itself again.
    pub fn join(&mut self, now: Time, seeds: &[SocketAddr]) {
        self.tick(now);
        for &seed in seeds {
            if seed == self.local.addr {
                continue;
            }
            if !self.seeds.contains(&seed) {
                self.seeds.push(seed);
            }
            self.start_push_pull(seed, true);
        }
    }

    /// Run one anti-entropy push-pull with `peer` now ([`Output::PushPull`]),
    /// e.g. with a member held dead to see whether a partition is over.
    /// Unlike [`Swim::join`], the peer is not remembered as a seed.
    pub fn push_pull(&mut self, now: Time, peer: SocketAddr) {
        self.tick(now);
        if peer != self.local.addr {
            self.start_push_pull(peer, false);
        }
    }

    /// Join again with an incarnation above anything ever said about this
    /// node, e.g. after the heal layer decided this side of a partition
    /// must restart its membership, or after it left.
    pub fn rejoin(&mut self, now: Time, seeds: &[SocketAddr]) {
        self.tick(now);
        // Checked: both are at most `MAX_INCARNATION` (claims above are
        // refused), and the result stays there too.
        let next = self.incarnation().max(self.max_self_incarnation_seen).saturating_add(1).min(MAX_INCARNATION);
        self.leaving = None;
        self.set_own_incarnation(next, now);
        self.members.set_status(self.self_slot, MemberStatus::Alive, now);
        self.queue.push_keyed(self.self_slot, self.self_alive());
        self.join(now, seeds);
    }

    /// Leave gracefully: disseminate `Leave`; the driver keeps running the
    /// node until [`Swim::has_left`] (or a deadline) before shutting down.
    pub fn leave(&mut self, now: Time) {
        self.tick(now);
        if self.leaving.is_some() {
            return;
        }
        let incarnation = self.incarnation();
        self.leaving = Some(now);
        self.members.set_status(self.self_slot, MemberStatus::Left, now);
        self.probe = None;
        self.queue.push_keyed(self.self_slot, Update::Leave(Leave { node: self.local.name.clone(), incarnation }));
        tracing::info!(node = %self.local, incarnation, "leaving the cluster");
        // Spread it right away rather than at the next gossip tick.
        self.gossip(now);
    }

    /// True once a leave was announced and has had its chance to spread:
    /// the `Leave` was sent its full retransmission budget, or no other
    /// member is alive to tell.
    pub fn has_left(&self) -> bool {
        self.leaving.is_some() && (self.queue.transmits(&self.self_slot).is_none() || self.alive_others() == 0)
    }

    /// Replace this node's metadata; gossiped with a raised incarnation.
    pub fn set_metadata(&mut self, now: Time, metadata: Metadata) {
        self.tick(now);
        let next = self.incarnation().saturating_add(1).min(MAX_INCARNATION);
        self.members.update(self.self_slot, |m| m.metadata = metadata);
        self.set_own_incarnation(next, now);
        if self.leaving.is_none() {
            self.queue.push_keyed(self.self_slot, self.self_alive());
        }
    }

    pub(crate) fn set_own_incarnation(&mut self, incarnation: Incarnation, _now: Time) {
        self.members.update(self.self_slot, |m| m.incarnation = m.incarnation.max(incarnation));
    }

    /// The next thing to do, if any. Drain after every input.
    #[inline]
    pub fn poll_output(&mut self) -> Option<Output> {
        let output = self.outputs.pop_front();
        if output.is_none() {
            if self.gossip_idle.is_some() {
                if let Some(wake) = self.wake_gossip() {
                    return Some(wake);
                }
            }
            if self.outputs.capacity() > 256 {
                // Drained after a burst (a large push-pull): give the memory back.
                self.outputs.shrink_to(32);
            }
        }
        output
    }

    /// Notes the time of an input (every public input calls it first).
    pub(crate) fn tick(&mut self, now: Time) {
        self.clock = self.clock.max(now);
    }

    /// Wakes the sleeping gossip timer once something is queued.
    ///
    /// A gossip tick that finds both queues empty does not re-arm the
    /// timer (most ticks of a quiet cluster: at 200 ms they were five
    /// wake-ups per member per period for nothing, nearly half of all the
    /// events of a 10,000-node simulation). Once an input queued something,
    /// the drain of its outputs ends here and re-arms the timer at the first
    /// tick of the old schedule after that input: every gossip happens at
    /// the instant it happened when the timer never slept, and a tick that
    /// would have found nothing to send simply does not happen.
    #[inline(never)]
    fn wake_gossip(&mut self) -> Option<Output> {
        let skipped = self.gossip_idle?;
        if self.queue.is_empty() && self.user.queue.is_empty() {
            return None;
        }
        self.gossip_idle = None;
        let at = if self.clock < skipped {
            skipped
        } else {
            // Ticks up to the input's instant found nothing to send.
            let period = self.config.gossip_interval.as_nanos().max(1);
            let behind = (self.clock - skipped).as_nanos() / period + 1;
            let late = behind.saturating_mul(period).min(u128::from(u64::MAX)) as u64;
            skipped.saturating_add(Duration::from_nanos(late))
        };
        let timer = self.timers.arm(Periodic::Gossip, at);
        Some(Output::SetTimer { at, timer })
    }

    /// Every member known, this node included.
    pub fn members(&self) -> impl Iterator<Item = &Member> + '_ {
        self.members.iter().map(|(_, e)| e.member)
    }

    /// Adopts `members` as known and alive, on the caller's word: a bulk
    /// insert for a node that starts inside a cluster it already knows,
    /// such as an embedder restoring a persisted membership snapshot, or
    /// the simulator starting from a cluster that converged long ago (to
    /// study failure detection at 10,000 nodes without simulating the join
    /// storm first). Returns how many members were added.
    ///
    /// Each member is added as [`MemberStatus::Alive`] at its given
    /// incarnation and with its metadata. Members the caller holds
    /// [`Dead`](MemberStatus::Dead) or [`Left`](MemberStatus::Left) are
    /// skipped (nothing vouches for them), and so are members above
    /// [`MAX_INCARNATION`] and, once the table holds
    /// [`Config::max_members`], the rest (counted in
    /// [`Metrics::members_refused`]); a `Suspect` one is adopted alive
    /// (the suspicion was someone else's, and probing will tell). This node
    /// and members already known are skipped too: what this node learnt
    /// itself wins over the caller's word.
    ///
    /// Nothing is queued for dissemination (the cluster already knows these
    /// members; the newest word about each reaches this node through gossip
    /// and push-pull as usual) and no [`Event`] is emitted (the caller
    /// knows what it handed in). The only outputs are two
    /// [`Output::SetTimer`]s: push-pull and reconnect run less often in a
    /// larger cluster, so those two timers are re-armed at a random phase
    /// of their new, stretched period, as in a cluster that has been
    /// running for a while. Adopted members join the probe round at random
    /// positions (drawn from this node's RNG), are probed in the normal
    /// course, and one that does not answer is suspected and declared dead
    /// like any other member.
    ///
    /// It is fast: room in the member table and the probe order
    /// is reserved once for the iterator's lower size bound, and a member
    /// with a short (inline) name and no metadata costs no allocation.
    ///
    /// ```
    /// use gossamer_core::{Config, Member, Swim};
    /// use gossamer_wire::{ClusterLabel, FrameCodec, MemberStatus, Metadata, NodeId};
    /// use rand::SeedableRng;
    /// use std::time::Duration;
    ///
    /// let id = |i: u32| NodeId::new(format!("n{i}").parse().unwrap(), format!("127.0.0.1:{}", 7000 + i).parse().unwrap());
    /// let codec = FrameCodec::new(ClusterLabel::new("demo").unwrap());
    /// let rng = rand::rngs::StdRng::seed_from_u64(1);
    /// let mut swim = Swim::new(id(0), Config::lan(), codec, rng, Duration::ZERO).unwrap();
    ///
    /// // A snapshot of the cluster, this node included (it is skipped).
    /// let snapshot = (0..100).map(|i| Member {
    ///     id: id(i),
    ///     incarnation: 3,
    ///     status: MemberStatus::Alive,
    ///     metadata: Metadata::new(),
    /// });
    /// assert_eq!(swim.adopt_members(Duration::ZERO, snapshot), 99);
    /// assert_eq!(swim.members().count(), 100);
    /// assert_eq!(swim.member(&"n42".parse().unwrap()).unwrap().incarnation, 3);
    /// // Nothing to disseminate: the cluster already knows them.
    /// assert_eq!(swim.metrics().queued_updates, 1, "only this node's own alive");
    /// ```
    pub fn adopt_members(&mut self, now: Time, members: impl IntoIterator<Item = Member>) -> usize {
        self.tick(now);
        let members = members.into_iter();
        let expected = members.size_hint().0;
        self.members.reserve(expected);
        self.order.reserve(expected);
        let mut added = 0;
        for member in members {
            if matches!(member.status, MemberStatus::Dead | MemberStatus::Left) || member.incarnation > MAX_INCARNATION
            {
                continue;
            }
            if self.members.len() >= self.config.max_members {
                self.stats.members_refused += 1;
                continue;
            }
            // This node is in the table: it is skipped like any known member.
            if let Some(slot) = self.members.insert_if_new(Member { status: MemberStatus::Alive, ..member }, now) {
                // Verified: the operator vouches for an adopted snapshot.
                self.members.set_verified(slot);
                self.order.push_unshuffled(slot);
                added += 1;
            }
        }
        if added > 0 {
            self.order.shuffle_rest(&mut self.rng);
            for task in [Periodic::PushPull, Periodic::Reconnect] {
                let period = self.period(task);
                let phase = self.random_phase(period);
                self.arm(task, after(now, phase));
            }
            tracing::debug!(added, members = self.members.len(), "members adopted");
        }
        added
    }

    /// Starts this node inside a cluster that already knows it: adopts
    /// `members` as [`Swim::adopt_members`] does and, when they list this
    /// node alive at its own address, incarnation and metadata, also drops
    /// its own `Alive` queued at creation, so the start gossips nothing at
    /// all. Returns how many members were added.
    ///
    /// For a cluster started converged (the simulator's `start =
    /// "converged"`, benchmarks, tests), where every member's table holds
    /// every other: there each node's own `Alive` told nobody anything, yet
    /// was gossiped for its whole retransmit budget by every node at once
    /// (0.47 datagrams per node-period of pure start-up noise over the first
    /// 60 periods of 128 nodes, issue #16). Not for a node restarted from a
    /// persisted snapshot: the cluster may have declared it dead or
    /// forgotten it meanwhile, and its `Alive` is how it comes back; use
    /// [`Swim::adopt_members`] there. A node started this way that turns
    /// out unknown is still found: its pings and push-pulls carry it, and a
    /// claim against it is refuted as usual.
    ///
    /// ```
    /// use gossamer_core::{Config, Member, Swim};
    /// use gossamer_wire::{ClusterLabel, FrameCodec, MemberStatus, Metadata, NodeId};
    /// use rand::SeedableRng;
    /// use std::time::Duration;
    ///
    /// let id = |i: u32| NodeId::new(format!("n{i}").parse().unwrap(), format!("127.0.0.1:{}", 7000 + i).parse().unwrap());
    /// let codec = FrameCodec::new(ClusterLabel::new("demo").unwrap());
    /// let rng = rand::rngs::StdRng::seed_from_u64(1);
    /// let mut swim = Swim::new(id(0), Config::lan(), codec, rng, Duration::ZERO).unwrap();
    /// let cluster = (0..100).map(|i| Member { id: id(i), incarnation: 0, status: MemberStatus::Alive, metadata: Metadata::new() });
    /// assert_eq!(swim.start_converged(Duration::ZERO, cluster), 99);
    /// assert_eq!(swim.metrics().queued_updates, 0, "nothing to gossip: everyone knows everyone");
    /// ```
    pub fn start_converged(&mut self, now: Time, members: impl IntoIterator<Item = Member>) -> usize {
        let mut known_as_is = false;
        let added = {
            let local = self.local.clone();
            let own = self.self_entry().clone();
            let listed = members.into_iter().inspect(|m| {
                if m.id.name == local.name {
                    known_as_is = m.id.addr == local.addr
                        && m.status == MemberStatus::Alive
                        && m.incarnation == own.incarnation
                        && m.metadata == own.metadata;
                }
            });
            self.adopt_members(now, listed)
        };
        if known_as_is {
            self.queue.retire(&self.self_slot);
        }
        added
    }

    /// Declare `name` left on an operator's word (`cluster force-leave`),
    /// for a member that is gone for good; gossiped like a leave. Returns
    /// whether the member is known (and now left).
    pub fn force_leave(&mut self, now: Time, name: &NodeName) -> bool {
        self.tick(now);
        if name == &self.local.name {
            self.leave(now);
            return true;
        }
        let Some(slot) = self.members.find(name) else { return false };
        let incarnation = self.members.get(slot).map_or(0, |e| e.member.incarnation);
        self.apply_update(now, Update::Leave(Leave { node: name.clone(), incarnation }));
        self.members.get(slot).is_some_and(|e| e.member.status == MemberStatus::Left)
    }

    /// Forget a dead or left member now, as its retention running out would
    /// ([`Config::dead_retention`]): it leaves the member list and nothing
    /// more about it is disseminated from here. If it comes back it joins
    /// as a new member. Returns whether it was forgotten: this node, unknown
    /// members and members alive or suspect are not (a live member would be
    /// back with its next gossip; [`Swim::force_leave`] it first).
    pub fn remove(&mut self, now: Time, name: &NodeName) -> bool {
        self.tick(now);
        let Some(slot) = self.members.find(name) else { return false };
        let removable =
            self.members.get(slot).is_some_and(|e| matches!(e.member.status, MemberStatus::Dead | MemberStatus::Left));
        if slot == self.self_slot || !removable {
            return false;
        }
        self.forget(now, slot, "removed");
        true
    }

    /// Drops the member in `slot` and everything pending about it; emits
    /// [`Signal::MemberRemoved`].
    pub(crate) fn forget(&mut self, _now: Time, slot: Slot, why: &'static str) {
        let Some(member) = self.members.remove(slot) else { return };
        self.suspicions.remove(&slot);
        self.queue.retire(&slot);
        tracing::debug!(member = %member.id, status = ?member.status, "{why}: member forgotten");
        self.signals.push_with(|| Signal::MemberRemoved(member));
    }

    /// Turn the [`Signal`] feed on or off (off by default; turning it off
    /// drops what was not drained). A driver that turns it on must drain
    /// [`Swim::poll_signal`] after every input, like [`Swim::poll_output`].
    ///
    /// ```
    /// use gossamer_core::{Config, Event, Signal, Swim};
    /// use gossamer_wire::{ClusterLabel, FrameCodec, NodeId};
    /// use rand::SeedableRng;
    /// use std::time::Duration;
    ///
    /// let id = |n: &str, port| NodeId::new(n.parse().unwrap(), format!("127.0.0.1:{port}").parse().unwrap());
    /// let codec = FrameCodec::new(ClusterLabel::new("demo").unwrap());
    /// let rng = rand::rngs::StdRng::seed_from_u64(1);
    /// let mut a = Swim::new(id("a", 7001), Config::local(), codec.clone(), rng.clone(), Duration::ZERO).unwrap();
    /// let mut b = Swim::new(id("b", 7002), Config::local(), codec, rng, Duration::ZERO).unwrap();
    /// a.set_signals(true);
    /// b.push_pull(Duration::ZERO, "127.0.0.1:7001".parse().unwrap());
    /// let request = std::iter::from_fn(|| b.poll_output())
    ///     .find_map(|o| match o { gossamer_core::Output::PushPull { request, .. } => Some(request), _ => None })
    ///     .unwrap();
    /// a.handle_push_pull_request(Duration::ZERO, "127.0.0.1:40000".parse().unwrap(), &request).unwrap();
    /// // a learnt of b: the event is in the feed, in order with the rest.
    /// let signals: Vec<Signal> = std::iter::from_fn(|| a.poll_signal()).collect();
    /// assert!(matches!(&signals[..], [Signal::Member(Event::MemberJoined(m))] if m.id.name.as_str() == "b"));
    /// ```
    pub fn set_signals(&mut self, on: bool) {
        self.signals.set_enabled(on);
    }

    /// The next [`Signal`], if any (always `None` while the feed is off).
    pub fn poll_signal(&mut self) -> Option<Signal> {
        self.signals.pop()
    }

    /// Counters snapshot.
    pub fn metrics(&self) -> Metrics {
        Metrics {
            alive: self.members.count(MemberStatus::Alive),
            suspect: self.members.count(MemberStatus::Suspect),
            dead: self.members.count(MemberStatus::Dead),
            left: self.members.count(MemberStatus::Left),
            health_multiplier: self.awareness.score(),
            queued_updates: self.queue.len(),
            unverified: self.members.unverified(),
            incarnation: self.incarnation(),
            queued_user_items: self.user.queue.len(),
            user_items_remembered: self.user.seen.len(),
            ..self.stats.clone()
        }
    }

    /// One member by name.
    pub fn member(&self, name: &NodeName) -> Option<&Member> {
        self.members.find(name).and_then(|slot| self.members.get(slot)).map(|e| e.member)
    }

    /// When and by whom `name` was declared dead, while it is dead.
    pub fn death(&self, name: &NodeName) -> Option<&Death> {
        self.members.find(name).and_then(|slot| self.members.death(slot))
    }

    /// Other members that are alive or suspect.
    pub(crate) fn alive_others(&self) -> usize {
        let mut n = self.members.count(MemberStatus::Alive) + self.members.count(MemberStatus::Suspect);
        if self.self_entry().status == MemberStatus::Alive {
            n -= 1;
        }
        n
    }

    pub(crate) fn emit(&mut self, event: Event) {
        if self.signals.enabled() {
            self.signals.push_with(|| Signal::Member(event.clone()));
        }
        self.outputs.push_back(Output::Event(event));
    }

    pub(crate) fn next_seq(&mut self) -> SeqNo {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends `message` to `to` with as many queued updates as fit,
    /// `first` (the buddy-system suspicion) ahead of them.
    ///
    /// The piggyback room left after the message is split between the two
    /// queues: application items may take up to [`Config::user_share`] of
    /// it, membership updates get everything they leave; if membership
    /// then leaves part of its own share unused, application items may
    /// take that too. With no application item pending, membership
    /// updates get it all, exactly as before (nothing more is computed or
    /// allocated on that path).
    pub(crate) fn send(&mut self, to: SocketAddr, message: &Message, first: Option<&Update>) {
        // Nothing to piggyback (the steady state): encode the bare message,
        // sized exactly, skipping the queues and the compound writer's
        // budget accounting; the frame is the same. A message too big for
        // the MTU takes the writer's path to its error.
        if first.is_none()
            && self.queue.is_empty()
            && self.user.queue.is_empty()
            && self.codec.overhead() + message.encoded_len() + BARE_COUNT_LEN <= self.config.mtu
        {
            match self.codec.encode_parts(message, &[], &mut self.buf) {
                Ok(_) => {
                    let bytes = self.buf.split().freeze();
                    self.stats.traffic_out.count(crate::metrics::TrafficKind::of(message, false), bytes.len());
                    self.datagram(to, bytes);
                }
                Err(error) => {
                    self.buf.clear();
                    tracing::warn!(%to, %error, "encoding a datagram failed");
                }
            }
            return;
        }
        let limit = self.retransmit_limit();
        // The frame is written straight into `buf`, updates copied from the
        // bytes the queues encoded when they were queued: no list, no
        // re-encoding per send.
        let mut packet = match self.codec.compound_into(message, self.config.mtu, &mut self.buf) {
            Ok(packet) => packet,
            Err(error) => {
                tracing::warn!(%to, %error, "message does not fit a datagram; not sent");
                return;
            }
        };
        if let Some(first) = first {
            packet.push(first);
        }
        let mut keys = std::mem::take(&mut self.keys);
        let mut user_keys = std::mem::take(&mut self.user.keys);
        let room = packet.remaining();
        if self.user.queue.is_empty() {
            self.queue.select(room, &mut keys);
        } else {
            let share = (room as f64 * self.config.user_share) as usize;
            let user_used = self.user.queue.select(share, &mut user_keys);
            let member_used = self.queue.select(room - user_used, &mut keys);
            if member_used < room - share && self.user.queue.len() > user_keys.len() {
                // Membership left part of its share: application items may have it.
                self.user.queue.select(room - member_used, &mut user_keys);
            }
        }
        keys.retain(|key| self.queue.get(key).is_some_and(|encoded| packet.push_encoded(encoded)));
        if !user_keys.is_empty() {
            user_keys.retain(|key| self.user.queue.get(key).is_some_and(|encoded| packet.push_encoded(encoded)));
        }
        match packet.finish() {
            Ok(report) => {
                let bytes = self.buf.split().freeze();
                self.queue.mark_sent(&keys, limit);
                self.stats.updates_sent += (report.updates - user_keys.len()) as u64;
                if !user_keys.is_empty() {
                    self.user.queue.mark_sent(&user_keys, limit);
                    self.stats.user_items_sent += user_keys.len() as u64;
                }
                let membership = first.is_some_and(|u| !u.is_user()) || !keys.is_empty();
                self.stats.traffic_out.count(crate::metrics::TrafficKind::of(message, membership), bytes.len());
                self.datagram(to, bytes);
            }
            Err(error) => {
                self.buf.clear();
                tracing::warn!(%to, %error, "encoding a datagram failed");
            }
        }
        keys.clear();
        self.keys = keys;
        user_keys.clear();
        self.user.keys = user_keys;
    }

    pub(crate) fn datagram(&mut self, to: SocketAddr, bytes: Bytes) {
        self.stats.messages_out += 1;
        self.stats.bytes_out += bytes.len() as u64;
        self.outputs.push_back(Output::Datagram { to, bytes });
    }

    /// Gossip fan-out: queued updates to a few random members (alive,
    /// suspect, or recently dead or left so that a wrongly declared member
    /// hears it).
    pub(crate) fn gossip(&mut self, now: Time) {
        if !self.queue.has_openers() && self.user.queue.is_empty() {
            return;
        }
        let dead_window = self.config.gossip_to_the_dead_time;
        let me = self.self_slot;
        let mut targets = std::mem::take(&mut self.sampled);
        let target = |slot: Slot, e: &crate::member::Entry| {
            slot != me
                && match e.member.status {
                    MemberStatus::Alive | MemberStatus::Suspect => true,
                    // Recently dead or left members too: a member wrongly
                    // declared either (a forged `Leave` is as much a lie as a
                    // forged `Confirm`) must hear the claim to refute it; a
                    // member never told would stay "left" for good.
                    MemberStatus::Dead | MemberStatus::Left => now.saturating_sub(e.changed()) < dead_window,
                }
        };
        let k = self.config.gossip_nodes;
        if self.members.unverified() == 0 {
            self.members.sample(&mut self.rng, k, &mut targets, target);
        } else {
            // Each target is unverified (see `Entry::verified`) with the
            // unverified members' share of the table, as a uniform pick
            // would be, but at most one in three: a flood of forged members
            // would otherwise soak up every update's retransmit budget,
            // while real members not yet heard from (newcomers) still hear
            // news. More if too few members are verified.
            let (unverified, total) = (self.members.unverified() as u64, self.members.len() as u64);
            let mut verified_share = 0;
            for _ in 0..k {
                let draw = self.rng.next_u64() % (3 * total.max(1));
                verified_share += usize::from(draw >= unverified.saturating_mul(3).min(total));
            }
            self.members.sample_verified(&mut self.rng, verified_share, &mut targets, target);
            let rest = k - targets.len();
            self.members.sample_more(&mut self.rng, rest, &mut targets, |slot, e| !e.verified() && target(slot, e));
        }
        for &slot in &targets {
            if !self.queue.has_openers() && self.user.queue.is_empty() {
                break;
            }
            if let Some(addr) = self.members.get(slot).map(|e| e.member.id.addr) {
                self.send(addr, &Message::Gossip, None);
            }
        }
        self.sampled = targets;
    }
}

/// memberlist's `pushPullScale`: beyond 32 members, push-pull less often
/// (`interval × ceil(log2(n) - log2(32))`) so the total state traffic stays
/// bounded.
pub(crate) fn push_pull_scale(interval: Duration, n: usize) -> Duration {
    const THRESHOLD: usize = 32;
    if n <= THRESHOLD {
        return interval;
    }
    let multiplier = ((n as f64).log2() - (THRESHOLD as f64).log2()).ceil() + 1.0;
    interval.mul_f64(multiplier)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_pull_scale_matches_memberlist() {
        let s = Duration::from_secs(1);
        assert_eq!(push_pull_scale(s, 1), s);
        assert_eq!(push_pull_scale(s, 32), s);
        assert_eq!(push_pull_scale(s, 33), 2 * s);
        assert_eq!(push_pull_scale(s, 64), 2 * s);
        assert_eq!(push_pull_scale(s, 65), 3 * s);
        assert_eq!(push_pull_scale(s, 1000), 6 * s);
    }
}
