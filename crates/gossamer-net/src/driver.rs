//! The one task that owns the SWIM core: it feeds the core datagrams,
//! stream frames, timer expiries and commands (each with `now =
//! start.elapsed()`), and carries out what the core asks for.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gossamer_core::{
    Event, Member, Output, QueryId, StreamPing, Swim, Time, UserError, UserEvent, MAX_STREAM_PING_FRAME,
    REFUSAL_WARN_INTERVAL,
};
use gossamer_wire::{DecodeError, FrameCodec, Metadata, NodeName, QueryFilter};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::error::StreamError;
use crate::fault::Blocklist;
use crate::heal::{keep_claim, HealLayer};
use crate::metrics::{bump, Gauges, NetCounters, NodeMetrics, WarnLimit};
use crate::multicast::{self, Heard, JoinLimiter, MulticastSockets};
use crate::stream::{
    read_frame, read_inbound, read_response, read_waiting_request, write_frame, Admission, Busy, Reservation, Stage,
    Ticket,
};
use crate::timers::TimerQueue;
use crate::tls::{looks_like_tls, StreamTls};
use crate::user::{Answer, QueryOutcome, UserLayer};

/// Largest UDP payload, the receive buffer's size.
const RECV_BUF: usize = 65_536;
/// How long the listener rests after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Mean delay (±50%) of the first follow-up push-pull after a join, with a
/// member other than the seed (see [`JoinRetries`]).
const JOIN_FOLLOW_UP: Duration = Duration::from_secs(1);
/// Mean delay (±50%) between two follow-ups of a join (see
/// [`JoinRetries`]).
const JOIN_FOLLOW_UP_GAP: Duration = Duration::from_secs(2);
/// Follow-up push-pulls after one join (see [`JoinRetries`]).
const MAX_JOIN_FOLLOW_UPS: u32 = 8;
/// How many of the members this node learned last a follow-up push-pull
/// picks its peer from (see [`JoinRetries`]).
const RECENT_JOINS: usize = 8;
/// Most fallback pings over TCP in flight at once (the core asks for at
/// most one per probe period, each bounded by the end of its period); one
/// beyond it is not started and counts as failed. Bounds what a flood of
/// failing probes could hold: four sockets and four 2 KiB buffers.
pub(crate) const MAX_STREAM_PINGS: usize = 4;

/// What a [`crate::Node`] handle asks of the driver.
pub(crate) enum Command {
    Join(Vec<SocketAddr>),
    SetMetadata(Metadata, oneshot::Sender<()>),
    Leave {
        within: Duration,
        reply: oneshot::Sender<bool>,
    },
    ForceLeave(NodeName, oneshot::Sender<bool>),
    Members(oneshot::Sender<Vec<Member>>),
    Metrics(oneshot::Sender<NodeMetrics>),
    Broadcast {
        key: String,
        payload: Vec<u8>,
        reply: oneshot::Sender<Result<u64, UserError>>,
    },
    /// Answered at the query's deadline (or at once if the core refuses it).
    Query {
        name: String,
        payload: Vec<u8>,
        filter: QueryFilter,
        timeout: Duration,
        reply: oneshot::Sender<Result<QueryOutcome, UserError>>,
    },
    Respond {
        id: QueryId,
        origin: NodeName,
        payload: Vec<u8>,
        reply: oneshot::Sender<Result<(), UserError>>,
    },
    Shutdown,
}

/// What the driver's own stream tasks report back.
enum Internal {
    Inbound {
        from: SocketAddr,
        frame: Vec<u8>,
        reply: oneshot::Sender<Option<Bytes>>,
    },
    PushPullDone {
        to: SocketAddr,
        /// The response, with its share of the byte budget (given back once
        /// the core has read it).
        result: Result<(Vec<u8>, Reservation), StreamError>,
    },
    /// A fallback ping over TCP ended: the peer's ack frame, or why not.
    StreamPingDone {
        to: SocketAddr,
        result: Result<Vec<u8>, StreamError>,
    },
    /// An inbound stream was cut off before its frame reached the core
    /// (refused header, over the cap, garbage, timeout, early close).
    InboundRefused {
        from: SocketAddr,
        error: StreamError,
    },
}

/// Multicast discovery state.
pub(crate) struct Multicast {
    pub sockets: MulticastSockets,
    pub interval: Duration,
    pub limiter: JoinLimiter,
    pub codec: FrameCodec,
}

/// Limits of the stream side.
pub(crate) struct StreamLimits {
    pub codec: FrameCodec,
    pub timeout: Duration,
    /// Deadline of an inbound stream's first bytes, header and budget.
    pub header_timeout: Duration,
    /// Inbound slots, per-address limits and the byte budget.
    pub admission: Arc<Admission>,
    pub outbound: Arc<Semaphore>,
    /// Fallback pings in flight (see [`MAX_STREAM_PINGS`]).
    pub pings: Arc<Semaphore>,
    /// Mutual TLS under the frames, when configured.
    pub tls: Option<StreamTls>,
}

pub(crate) struct Driver {
    pub swim: Swim<ChaCha8Rng>,
    pub start: Instant,
    pub udp: UdpSocket,
    pub tcp: TcpListener,
    pub multicast: Option<Multicast>,
    pub streams: StreamLimits,
    pub events: Arc<crate::lazy::LazyBroadcast<Event>>,
    pub commands: mpsc::Receiver<Command>,
    pub counters: Arc<NetCounters>,
    pub batch: usize,
    /// Set when this node yielded its name while joining (a live member
    /// holds it at another address, see `Swim::name_conflict`): the driver
    /// then stops, and `Node::start` reports it.
    pub name_conflict: Arc<std::sync::OnceLock<gossamer_core::NameConflict>>,
    pub refusals: RefusalLog,
    /// The partition-heal layer, when [`crate::NodeConfig::heal`] is set.
    pub heal: Option<HealLayer>,
    /// Peers treated as unreachable (fault injection).
    pub blocked: Blocklist,
    /// Application data: delivery, query collection, local state.
    pub user: UserLayer,
    /// Query answers from the hook tasks.
    pub answers: mpsc::Receiver<Answer>,
    /// The keyring every codec of this node shares (`None`: no key), which
    /// cluster-wide key requests ([`crate::keys::KEYS_QUERY`]) change.
    pub keyring: Option<Arc<gossamer_wire::Keyring>>,
    /// Outbound push-pulls pending and remembered seeds, both capped.
    pub gate: PushPullGate,
    /// Rate limits of the `warn` lines for limits being hit.
    pub limit_warnings: LimitWarnings,
    /// Fast, jittered retries of joins that failed while this node is alone.
    pub join_retries: JoinRetries,
}

/// Fast retries of a join that failed while this node knows no live peer.
///
/// A seed that many nodes join at once (a cluster's cold start, a rolling
/// restart) has a bounded number of stream slots: newcomers beyond them are
/// evicted or refused. Waiting for the core's reconnect timer (10 s on the
/// LAN preset) turned that into a cliff: 128 nodes joining one seed at once
/// took 10 s instead of 1. A node that is alone retries its seed instead
/// after a short delay, doubling from `NodeConfig::join_retry_base` (50 ms)
/// to `NodeConfig::join_retry_max` (2 s) with ±50% jitter (so the retries of
/// many joiners spread out instead of arriving together again), at most
/// `NodeConfig::join_retry_attempts` (16) times in a row, about 23 s of
/// trying with the defaults; the reconnect timer carries on
/// after that. Once the node knows a live peer, nothing is retried here.
///
/// And a join that lands in the middle of such a burst learns the members
/// the seed knew at that moment; those that join after it would reach it
/// only by gossip, whose capacity a burst of hundreds of new members
/// saturates (1,000 nodes joining at once: every node saw every member
/// only after 15 s), and which since issue #16 does not carry a burst at
/// all: past 16 members new to a node in a probe interval, the core leaves
/// them to push-pull (its `burst` module; it also runs push-pulls of its
/// own once the burst is quiet). So once a join has succeeded, the node runs one more
/// push-pull about [`JOIN_FOLLOW_UP`] later with a random live member
/// other than the seed: both sides then hold the union of two views, and
/// the seed's load is not doubled. The peer is one of the
/// [`RECENT_JOINS`] members this node learned of last (by gossip, after its
/// own join): a member that joined later than this node learned from the
/// seed everything the seed knew then, which includes most of what this
/// node missed; a random member joined, on average, as early as this one.
/// While a burst lasts one exchange is not enough, so the follow-ups go on
/// every [`JOIN_FOLLOW_UP_GAP`], [`MAX_JOIN_FOLLOW_UPS`] in all, whatever
/// the view does meanwhile: a node merges whole views until the burst is
/// over, instead of waiting for gossip, which carries a few dozen new
/// members per datagram, or for the periodic push-pull (30 s and more).
/// Why not stop once the view stops growing (as an earlier version did):
/// the nodes that joined last in a burst got nearly the whole table from
/// the seed and then each miss a few members, which reach them rarely, so
/// their views stall while incomplete; stopping there left that tail
/// (1,000 nodes joining at once, idle machine: converged in 13.9–20.5 s
/// with a growth test, 8.8–14.0 s without, 9 runs). The cost, a
/// node joining a settled cluster exchanges its view 8 times over ~15 s
/// instead of once, is paid once per join.
#[derive(Debug)]
pub(crate) struct JoinRetries {
    /// Seed -> consecutive failed joins through it.
    failures: std::collections::HashMap<SocketAddr, u32>,
    /// Seed -> when to try it again (if still alone then).
    due: std::collections::HashMap<SocketAddr, Instant>,
    /// When to run the follow-up push-pull of a join that succeeded, and
    /// the seed it went through (not asked again).
    follow_up: Option<(Instant, SocketAddr)>,
    /// Follow-ups still allowed after the one scheduled.
    follow_ups_left: u32,
    /// A join was started and this node has not been reached since: the
    /// first contact, whether the seed's answer or (first, in a burst of
    /// joins) another node's push-pull or gossip, starts the follow-ups
    /// (`Driver::first_contact`).
    awaiting_join: bool,
    /// The members this node learned of last (newest at the back), at
    /// most [`RECENT_JOINS`]: the follow-ups' peers.
    recent: std::collections::VecDeque<NodeName>,
    /// Jitter source (seeded from the node's entropy at start).
    rng: ChaCha8Rng,
    /// Fast retries of one seed before the reconnect timer takes over.
    attempts: u32,
    /// First delay of a fast retry.
    base: Duration,
    /// Longest delay between two fast retries.
    max: Duration,
}

impl JoinRetries {
    /// Retries as `config` says (`join_retry_attempts`, `_base`, `_max`).
    pub(crate) fn new(rng: ChaCha8Rng, config: &crate::NodeConfig) -> Self {
        Self {
            failures: Default::default(),
            due: Default::default(),
            follow_up: None,
            follow_ups_left: 0,
            awaiting_join: false,
            recent: std::collections::VecDeque::with_capacity(RECENT_JOINS),
            rng,
            attempts: config.join_retry_attempts,
            base: config.join_retry_base,
            max: config.join_retry_max,
        }
    }

    /// As is, marked as joining if `joining` (a join was just started).
    pub(crate) fn joining(mut self, joining: bool) -> Self {
        self.awaiting_join = joining;
        self
    }

    /// `base` scaled by a uniform factor in [0.5, 1.5).
    fn jitter(&mut self, base: Duration) -> Duration {
        use rand_core::RngCore;
        base.mul_f64(0.5 + f64::from(self.rng.next_u32()) / (f64::from(u32::MAX) + 1.0))
    }

    /// A join through `seed` succeeded at `now` (or this node was reached
    /// first by another member; `seed` is then one of the seeds): no more
    /// retries; the first follow-up push-pull is due shortly.
    fn joined(&mut self, seed: SocketAddr, now: Instant) {
        self.clear();
        self.awaiting_join = false;
        let at = now + self.jitter(JOIN_FOLLOW_UP);
        self.follow_up = Some((at, seed));
        self.follow_ups_left = MAX_JOIN_FOLLOW_UPS.saturating_sub(1);
        // Only members learned after the join count: those of the join's
        // own response are the seed's table, the same for every joiner.
        self.recent.clear();
    }

    /// The core reported `name` as a member that joined (newly learned).
    fn learned(&mut self, name: &NodeName) {
        if self.recent.len() == RECENT_JOINS {
            self.recent.pop_front();
        }
        self.recent.push_back(name.clone());
    }

    /// The follow-up push-pull due at `now`, if one is. Schedules the one
    /// after it while follow-ups are left; the seed is returned, not to be
    /// asked.
    fn take_follow_up(&mut self, now: Instant) -> Option<SocketAddr> {
        let (at, seed) = self.follow_up?;
        if at > now {
            return None;
        }
        self.follow_up = None;
        if self.follow_ups_left > 0 {
            self.follow_ups_left -= 1;
            self.follow_up = Some((now + self.jitter(JOIN_FOLLOW_UP_GAP), seed));
        }
        Some(seed)
    }

    /// A random index below `len` (`len` > 0).
    fn pick(&mut self, len: usize) -> usize {
        use rand_core::RngCore;
        (self.rng.next_u64() % len as u64) as usize
    }

    /// A join through `seed` failed at `now`: schedules the next try,
    /// unless this seed has had its fast retries. Returns whether it did.
    fn failed(&mut self, seed: SocketAddr, now: Instant) -> bool {
        let failures = self.failures.entry(seed).or_insert(0);
        if *failures >= self.attempts {
            return false;
        }
        let base = self.base.saturating_mul(1u32 << (*failures).min(16)).min(self.max);
        *failures += 1;
        let delay = self.jitter(base);
        self.due.insert(seed, now + delay);
        true
    }

    /// The earliest retry due, if any is scheduled.
    fn next_due(&self) -> Option<Instant> {
        self.due.values().copied().chain(self.follow_up.map(|(at, _)| at)).min()
    }

    /// The seeds whose retry is due at `now`, unscheduled (their failure
    /// count stays, so a next failure backs off further).
    fn take_due(&mut self, now: Instant) -> Vec<SocketAddr> {
        let ready: Vec<SocketAddr> = self.due.iter().filter(|(_, &at)| at <= now).map(|(&seed, _)| seed).collect();
        for seed in &ready {
            self.due.remove(seed);
        }
        ready
    }

    /// The node has a live peer: nothing more to retry.
    fn clear(&mut self) {
        self.failures.clear();
        self.due.clear();
    }
}

/// The one gate of outbound push-pulls (joins, periodic sync, reconnects,
/// multicast-heard peers): each pending exchange holds a copy of this
/// node's full state, so their number is capped, one per peer; and the
/// seeds the core remembers (retried while alone) are capped too.
#[derive(Debug)]
pub(crate) struct PushPullGate {
    /// Peers with a push-pull in flight or waiting for a connection.
    pub pending: std::collections::HashSet<SocketAddr>,
    /// See [`crate::NodeConfig::max_pending_push_pulls`].
    pub max_pending: usize,
    /// Addresses handed to the core as seeds.
    pub seeds: std::collections::HashSet<SocketAddr>,
    /// See [`crate::NodeConfig::max_seeds`].
    pub max_seeds: usize,
}

impl PushPullGate {
    /// A gate for `max_pending` push-pulls and `max_seeds` seeds, knowing
    /// the seeds the core was given at start.
    pub(crate) fn new(max_pending: usize, max_seeds: usize, initial: &[SocketAddr]) -> Self {
        Self { pending: Default::default(), max_pending, seeds: initial.iter().copied().collect(), max_seeds }
    }

    /// Whether a push-pull to `to` may start now (and records it). Only a
    /// join through a seed may take the last quarter of the gate: push-pulls
    /// the core starts on a peer's word (a heartbeat datagram, which needs
    /// no key without one) must not keep this node from joining.
    fn admit(&mut self, to: SocketAddr) -> bool {
        let limit = if self.seeds.contains(&to) { self.max_pending } else { self.max_pending - self.max_pending / 4 };
        if self.pending.len() >= limit || self.pending.contains(&to) {
            return false;
        }
        self.pending.insert(to)
    }

    /// Whether multicast may start one more join: at most half the gate,
    /// so forged heartbeats never take the room of joins and sync.
    fn multicast_room(&self, to: SocketAddr) -> bool {
        self.pending.len() < self.max_pending / 2 && !self.pending.contains(&to)
    }

    /// Whether `addr` may be remembered as a seed (and records it).
    fn remember(&mut self, addr: SocketAddr) -> bool {
        if self.seeds.contains(&addr) {
            return true;
        }
        if self.seeds.len() >= self.max_seeds {
            return false;
        }
        self.seeds.insert(addr)
    }
}

/// One `warn` rate limit per kind of limit hit.
#[derive(Debug, Default)]
pub(crate) struct LimitWarnings {
    busy: WarnLimit,
    evicted: WarnLimit,
    header: WarnLimit,
    budget: WarnLimit,
    push_pulls: WarnLimit,
    joins: WarnLimit,
    seeds: WarnLimit,
}

/// Rate-limited logging of push-pull streams refused because the peer is
/// misconfigured: another cluster label or protocol version, a wrong or
/// missing key, or a failed TLS handshake (certificate of another CA, none
/// at all, TLS on one side only). That is worth a `warn` naming the peer,
/// but its retries must not flood the log: at most one `warn` per
/// [`REFUSAL_WARN_INTERVAL`], the rest at `debug` and counted. Frames that
/// pass the header (a wrong key, say) are refused and logged by the core
/// itself, under the same interval.
#[derive(Debug, Default)]
pub(crate) struct RefusalLog {
    warned_at: Option<Instant>,
    suppressed: u64,
}

/// What a refused stream says about its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Misconfig {
    /// Another cluster, protocol version or key.
    Codec,
    /// The TLS handshake failed.
    Tls,
    /// A TLS ClientHello reached this node, whose streams are plain.
    TlsToPlain,
}

fn misconfig(error: &StreamError) -> Option<Misconfig> {
    match error {
        StreamError::Refused(
            DecodeError::LabelMismatch { .. }
            | DecodeError::VersionMismatch { .. }
            | DecodeError::UnknownFlags(_)
            | DecodeError::WrongKey
            | DecodeError::EncryptedButNoKey
            | DecodeError::NotEncrypted,
        ) => Some(Misconfig::Codec),
        StreamError::Refused(DecodeError::BadMagic { found }) if looks_like_tls(found) => Some(Misconfig::TlsToPlain),
        StreamError::Handshake(_) => Some(Misconfig::Tls),
        _ => None,
    }
}

impl RefusalLog {
    /// Logs one refused stream (`inbound`: the peer connected to us);
    /// returns whether it was a `warn`.
    pub(crate) fn refused(&mut self, now: Instant, peer: SocketAddr, inbound: bool, error: &StreamError) -> bool {
        let direction = if inbound { "inbound" } else { "outbound" };
        let Some(kind) = misconfig(error) else {
            tracing::debug!(%peer, direction, %error, "push-pull stream refused");
            return false;
        };
        let due = self.warned_at.is_none_or(|at| now.saturating_duration_since(at) >= REFUSAL_WARN_INTERVAL);
        if !due {
            self.suppressed += 1;
            tracing::debug!(%peer, direction, %error, "push-pull stream refused");
            return false;
        }
        let suppressed = std::mem::take(&mut self.suppressed);
        self.warned_at = Some(now);
        match kind {
            Misconfig::Codec => tracing::warn!(
                %peer,
                direction,
                %error,
                suppressed,
                "refused a push-pull stream from a misconfigured peer (other cluster or protocol version?)"
            ),
            Misconfig::Tls => tracing::warn!(
                %peer,
                direction,
                %error,
                suppressed,
                "refused a push-pull stream: TLS handshake failed (peer certificate not from the cluster CA, \
                 no certificate, or TLS on one side only); nothing merged"
            ),
            Misconfig::TlsToPlain => tracing::warn!(
                %peer,
                direction,
                %error,
                suppressed,
                "refused a push-pull stream: the peer speaks TLS but this node has no [tls] configured"
            ),
        }
        true
    }
}

/// How often the driver asks again for a slot for connections told to
/// wait ([`Busy::Wait`]), besides whenever a slot is given back: the
/// streams they wait for become evictable once their grace is over.
const DEFERRED_RETRY: Duration = Duration::from_millis(50);

/// An accepted connection waiting for an inbound slot ([`Busy::Wait`]):
/// the stream, its peer and when it was accepted. At most
/// `max_inbound_streams` wait, each at most `stream_header_timeout`; while
/// that many wait, the listener is not polled (the kernel's backlog
/// queues further connections).
type Deferred = std::collections::VecDeque<(TcpStream, SocketAddr, Instant)>;

/// Resolves when connections waiting for a slot should ask again: a slot
/// was given back, or [`DEFERRED_RETRY`] passed. Never while none waits.
async fn slot_or_retry(admission: &Admission, waiting: bool) {
    if !waiting {
        return std::future::pending().await;
    }
    tokio::select! {
        _ = admission.slot_freed() => {}
        _ = tokio::time::sleep(DEFERRED_RETRY) => {}
    }
}

/// Why the loop woke up.
enum Wake {
    Command(Option<Command>),
    Datagram(io::Result<(usize, SocketAddr)>),
    Multicast(io::Result<(usize, SocketAddr)>),
    Accept(io::Result<(TcpStream, SocketAddr)>),
    Internal(Internal),
    Answer(Answer),
    Timer,
    HealTick,
    Heartbeat,
    LeaveDeadline,
    JoinRetry,
    Deferred,
}

struct Leaving {
    deadline: Instant,
    reply: oneshot::Sender<bool>,
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn recv_opt(socket: Option<&UdpSocket>, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    match socket {
        Some(socket) => socket.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// Accepts, but not before `after`: after an accept error (EMFILE...) the
/// listener rests briefly instead of failing in a busy loop.
async fn accept_after(tcp: &TcpListener, after: Option<Instant>) -> io::Result<(TcpStream, SocketAddr)> {
    if let Some(at) = after {
        tokio::time::sleep_until(at).await;
    }
    tcp.accept().await
}

async fn tick_opt(interval: Option<&mut Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

impl Driver {
    fn now(&self) -> Time {
        self.start.elapsed()
    }

    /// Runs until a `Shutdown` command or until every handle is dropped.
    pub(crate) async fn run(mut self) {
        let (internal_tx, mut internal_rx) = mpsc::channel::<Internal>(256);
        let mut buf = vec![0u8; RECV_BUF];
        // Only a node with multicast on reads a second socket.
        let mut mbuf = if self.multicast.is_some() { vec![0u8; RECV_BUF] } else { Vec::new() };
        let mut timers = TimerQueue::new();
        let mut leaving: Vec<Leaving> = Vec::new();
        let mut accept_pause: Option<Instant> = None;
        let mut deferred = Deferred::new();
        let admission = self.streams.admission.clone();
        let mut heartbeat = self.multicast.as_ref().map(|m| {
            let mut interval = tokio::time::interval(m.interval);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        });
        tracing::info!(addr = %self.swim.local().addr, "node running");
        loop {
            // Every input to the core ends here: the heal layer first (its
            // commands add core outputs), then the core's outputs.
            let now = self.now();
            if let Some(heal) = self.heal.as_mut() {
                heal.pump(&mut self.swim, now);
            }
            self.flush(&mut timers, &internal_tx);
            self.settle_leaves(&mut leaving);
            if self.join_retries.awaiting_join && !self.alone() {
                self.first_contact();
            }
            let timer_at = timers.next_deadline().map(|t| self.start + t);
            let heal_at = self.heal.as_ref().map(|h| self.start + h.deadline(now));
            let leave_at = leaving.iter().map(|l| l.deadline).min();
            let retry_at = self.join_retries.next_due();
            let wake = tokio::select! {
                cmd = self.commands.recv() => Wake::Command(cmd),
                r = self.udp.recv_from(&mut buf) => Wake::Datagram(r),
                r = recv_opt(self.multicast.as_ref().map(|m| &m.sockets.recv), &mut mbuf) => Wake::Multicast(r),
                r = accept_after(&self.tcp, accept_pause), if deferred.len() < admission.max_streams() => {
                    Wake::Accept(r)
                }
                _ = slot_or_retry(&admission, !deferred.is_empty()) => Wake::Deferred,
                Some(msg) = internal_rx.recv() => Wake::Internal(msg),
                Some(answer) = self.answers.recv() => Wake::Answer(answer),
                _ = sleep_until_opt(timer_at) => Wake::Timer,
                _ = sleep_until_opt(heal_at) => Wake::HealTick,
                _ = tick_opt(heartbeat.as_mut()) => Wake::Heartbeat,
                _ = sleep_until_opt(leave_at) => Wake::LeaveDeadline,
                _ = sleep_until_opt(retry_at) => Wake::JoinRetry,
            };
            // Before any input that may make the core encode a push-pull.
            self.user.refresh_state_if_due(&mut self.swim);
            match wake {
                Wake::Command(None) | Wake::Command(Some(Command::Shutdown)) => break,
                Wake::Command(Some(cmd)) => self.command(cmd, &mut leaving, &timers),
                Wake::Datagram(r) => self.datagrams(r, &mut buf),
                Wake::Multicast(r) => self.heard(r, &mbuf),
                Wake::Accept(r) => {
                    accept_pause = None;
                    if !self.accept(r, &internal_tx, &mut deferred) {
                        accept_pause = Some(Instant::now() + ACCEPT_BACKOFF);
                    }
                }
                Wake::Deferred => self.admit_deferred(&mut deferred, &internal_tx),
                Wake::Internal(msg) => self.internal(msg),
                Wake::Answer(answer) => {
                    let now = self.now();
                    self.user.answer(&mut self.swim, now, answer);
                }
                Wake::Timer => {
                    // Datagrams already waiting arrived before these
                    // deadlines were handled, perhaps before they passed
                    // (a busy runtime runs this task late): an ack in the
                    // socket answers its probe before the probe's timeout
                    // is handled, not after, as a false failure.
                    let waiting = self.udp.try_recv_from(&mut buf);
                    if !matches!(&waiting, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
                        self.datagrams(waiting, &mut buf);
                    }
                    let now = self.now();
                    while let Some(timer) = timers.pop_due(now) {
                        self.swim.handle_timer(now, timer);
                    }
                }
                Wake::HealTick => {
                    let now = self.now();
                    if let Some(heal) = self.heal.as_mut() {
                        heal.tick(&mut self.swim, now);
                    }
                }
                Wake::Heartbeat => self.send_heartbeat(),
                Wake::LeaveDeadline => {}
                Wake::JoinRetry => self.retry_joins(),
            }
            if let Some(conflict) = self.swim.name_conflict() {
                tracing::error!(
                    name = %conflict.name,
                    holder = %conflict.claimed,
                    "this node's name is held by a live member at another address: stopping"
                );
                let _ = self.name_conflict.set(conflict.clone());
                break;
            }
        }
        for l in leaving {
            let _ = l.reply.send(self.swim.has_left());
        }
        tracing::info!("node stopped");
    }

    /// Carries out everything the core asked for since the last input.
    fn flush(&mut self, timers: &mut TimerQueue, internal: &mpsc::Sender<Internal>) {
        while let Some(output) = self.swim.poll_output() {
            match output {
                Output::Datagram { to, bytes } => {
                    if self.blocked.blocks_datagrams(to) {
                        tracing::trace!(%to, "datagram dropped (peer blocked)");
                        continue;
                    }
                    // Never wait on a full socket buffer: UDP may drop, and
                    // the protocol tolerates loss; the core must not stall.
                    if let Err(e) = self.udp.try_send_to(&bytes, to) {
                        bump(&self.counters.send_errors);
                        tracing::debug!(%to, error = %e, "datagram not sent");
                    }
                }
                Output::PushPull { to, request } => {
                    if self.gate.admit(to) {
                        self.start_push_pull(to, request, internal.clone());
                    } else {
                        self.push_pull_dropped(to);
                    }
                }
                Output::SetTimer { at, timer } => timers.push(at, timer),
                Output::Event(event) => {
                    log_event(&event);
                    if let Event::MemberJoined(m) = &event {
                        self.join_retries.learned(&m.id.name);
                    }
                    // No subscriber is fine: the event is simply not wanted.
                    self.events.send(event);
                }
                // Key requests are the runtime's own: applied here, answered,
                // and never handed to the application (the payload is a key).
                Output::User(UserEvent::Query { id, origin, name, payload })
                    if name.as_str() == crate::keys::KEYS_QUERY =>
                {
                    let answer = crate::keys::answer_query(self.keyring.as_deref(), &origin.name, &payload);
                    let now = self.now();
                    if let Err(error) = self.swim.respond(now, id, &origin.name, answer) {
                        tracing::debug!(id, origin = %origin.name, %error, "key request answer not sent");
                    }
                }
                Output::User(event) => self.user.deliver(event),
            }
        }
        // The probe's TCP fallback, when its direct ping went unanswered.
        while let Some(ping) = self.swim.poll_stream_ping() {
            self.start_stream_ping(ping, internal.clone());
        }
    }

    fn settle_leaves(&mut self, leaving: &mut Vec<Leaving>) {
        if leaving.is_empty() {
            return;
        }
        let left = self.swim.has_left();
        let now = Instant::now();
        let (done, pending): (Vec<_>, Vec<_>) = leaving.drain(..).partition(|l| left || l.deadline <= now);
        *leaving = pending;
        for l in done {
            if !left {
                tracing::warn!("leave not confirmed before its deadline");
            }
            let _ = l.reply.send(left);
        }
    }

    fn command(&mut self, cmd: Command, leaving: &mut Vec<Leaving>, timers: &TimerQueue) {
        let now = self.now();
        match cmd {
            Command::Join(addrs) => {
                tracing::info!(seeds = ?addrs, "joining");
                self.user.refresh_state(&mut self.swim);
                // Remembered as seeds up to the cap; beyond it, contacted once.
                let (seeds, once): (Vec<_>, Vec<_>) = addrs.into_iter().partition(|&a| self.gate.remember(a));
                self.join_retries.awaiting_join |= !seeds.is_empty();
                self.swim.join(now, &seeds);
                if !once.is_empty() {
                    self.counters.seeds_dropped.fetch_add(once.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    if let Some(suppressed) = self.limit_warnings.seeds.due(Instant::now()) {
                        tracing::warn!(
                            dropped = once.len(),
                            max_seeds = self.gate.max_seeds,
                            suppressed,
                            "seed list full: join addresses contacted once but not remembered"
                        );
                    }
                    for addr in once {
                        self.swim.push_pull(now, addr);
                    }
                }
            }
            Command::SetMetadata(mut meta, reply) => {
                if self.heal.is_some() {
                    keep_claim(&self.swim, &mut meta);
                }
                self.swim.set_metadata(now, meta);
                let _ = reply.send(());
            }
            Command::Leave { within, reply } => {
                tracing::info!("leaving the cluster");
                self.swim.leave(now);
                leaving.push(Leaving { deadline: Instant::now() + within, reply });
            }
            Command::ForceLeave(name, reply) => {
                let done = self.swim.force_leave(now, &name);
                tracing::info!(%name, done, "force-leave");
                let _ = reply.send(done);
            }
            Command::Members(reply) => {
                let _ = reply.send(self.swim.members().cloned().collect());
            }
            Command::Metrics(reply) => {
                let admission = &self.streams.admission;
                let gauges = Gauges {
                    timers_pending: timers.len(),
                    streams_open: admission.open(),
                    stream_bytes_reserved: admission.reserved(),
                    push_pulls_pending: self.gate.pending.len(),
                    seeds: self.gate.seeds.len(),
                };
                let heal = self.heal.as_ref().map(HealLayer::metrics).unwrap_or_default();
                let _ =
                    reply.send(NodeMetrics { core: self.swim.metrics(), net: self.counters.snapshot(gauges), heal });
            }
            Command::Broadcast { key, payload, reply } => {
                let _ = reply.send(self.swim.broadcast(now, &key, payload));
            }
            Command::Query { name, payload, filter, timeout, reply } => {
                match self.swim.query(now, &name, payload, filter, timeout) {
                    Ok(id) => {
                        tracing::debug!(id, %name, ?timeout, "query started");
                        self.user.collect(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Respond { id, origin, payload, reply } => {
                let _ = reply.send(self.swim.respond(now, id, &origin, payload));
            }
            Command::Shutdown => {}
        }
    }

    /// One datagram arrived; drain whatever else is already queued (up to
    /// the batch size) before the outputs are flushed.
    fn datagrams(&mut self, first: io::Result<(usize, SocketAddr)>, buf: &mut [u8]) {
        let mut next = first;
        for _ in 0..self.batch {
            match next {
                Ok((_, from)) if self.blocked.blocks_datagrams(from) => {
                    tracing::trace!(%from, "datagram dropped (peer blocked)");
                }
                Ok((n, from)) => {
                    let now = self.now();
                    self.swim.handle_datagram(now, from, &buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // E.g. ICMP errors reported on the socket: not fatal.
                    bump(&self.counters.recv_errors);
                    tracing::debug!(error = %e, "udp receive error");
                }
            }
            next = self.udp.try_recv_from(buf);
        }
    }

    fn heard(&mut self, r: io::Result<(usize, SocketAddr)>, buf: &[u8]) {
        let Some(mcast) = self.multicast.as_mut() else { return };
        let (n, from) = match r {
            Ok(ok) => ok,
            Err(e) => {
                bump(&self.counters.recv_errors);
                tracing::debug!(error = %e, "multicast receive error");
                return;
            }
        };
        let local = self.swim.local().name.clone();
        let mut scratch = Vec::new();
        match multicast::decode_heartbeat(&mcast.codec, &local, &buf[..n], &mut scratch) {
            Heard::Myself => {}
            Heard::Rejected(reason) => {
                bump(&self.counters.heartbeats_rejected);
                tracing::debug!(%from, %reason, "multicast datagram refused");
            }
            Heard::Peer(beat) => {
                bump(&self.counters.heartbeats_received);
                let now = self.start.elapsed();
                let known = self.swim.member(&beat.node.name);
                if let Some(node) = mcast.limiter.should_join(now, &beat, known) {
                    if !self.gate.multicast_room(node.addr) {
                        bump(&self.counters.joins_dropped);
                        if let Some(suppressed) = self.limit_warnings.joins.due(Instant::now()) {
                            tracing::warn!(
                                peer = %node,
                                pending = self.gate.pending.len(),
                                suppressed,
                                "multicast join not started: too many push-pulls pending (forged heartbeats?)"
                            );
                        }
                        return;
                    }
                    bump(&self.counters.multicast_joins);
                    tracing::info!(peer = %node, "heard by multicast; joining");
                    // Not a seed: a heartbeat is no reason to remember an
                    // address (forged ones would grow the list forever).
                    self.swim.push_pull(now, node.addr);
                }
            }
        }
    }

    fn send_heartbeat(&mut self) {
        let Some(mcast) = self.multicast.as_ref() else { return };
        let local = self.swim.local().clone();
        let me = match self.swim.member(&local.name) {
            Some(m) => m.clone(),
            None => Member {
                id: local,
                incarnation: 0,
                status: gossamer_wire::MemberStatus::Alive,
                metadata: Metadata::new(),
            },
        };
        if me.status == gossamer_wire::MemberStatus::Left {
            return;
        }
        match multicast::encode_heartbeat(&mcast.codec, &me) {
            Ok(bytes) => match mcast.sockets.send.try_send_to(&bytes, mcast.sockets.target) {
                Ok(_) => bump(&self.counters.heartbeats_sent),
                Err(e) => {
                    bump(&self.counters.send_errors);
                    tracing::debug!(error = %e, "heartbeat not sent");
                }
            },
            Err(e) => tracing::warn!(error = %e, "cannot encode heartbeat"),
        }
    }

    /// Serves an accepted stream, or holds it until a slot frees; false
    /// when accepting failed.
    fn accept(
        &mut self,
        r: io::Result<(TcpStream, SocketAddr)>,
        internal: &mpsc::Sender<Internal>,
        deferred: &mut Deferred,
    ) -> bool {
        let (stream, from) = match r {
            Ok(ok) => ok,
            Err(e) => {
                // EMFILE and friends: log, keep serving datagrams.
                tracing::warn!(error = %e, "tcp accept failed");
                return false;
            }
        };
        if self.blocked.blocks(from) {
            tracing::debug!(%from, "push-pull stream closed (peer blocked)");
            return true;
        }
        if let Some(waiting) = self.admit_stream(stream, from, Instant::now(), internal) {
            bump(&self.counters.streams_deferred);
            deferred.push_back(waiting);
        }
        true
    }

    /// Asks again for a slot for each connection waiting for one, oldest
    /// first; those still told to wait keep their place, those waiting
    /// longer than the header deadline are closed (counted busy).
    fn admit_deferred(&mut self, deferred: &mut Deferred, internal: &mpsc::Sender<Internal>) {
        for _ in 0..deferred.len() {
            let Some((stream, from, since)) = deferred.pop_front() else { break };
            if since.elapsed() >= self.streams.header_timeout {
                bump(&self.counters.streams_busy);
                tracing::debug!(%from, "push-pull stream closed: no inbound slot within the header deadline");
                continue;
            }
            if let Some(waiting) = self.admit_stream(stream, from, since, internal) {
                deferred.push_back(waiting);
            }
        }
    }

    /// Admits and serves an accepted stream (accepted at `since`), or
    /// gives it back when it should wait for a slot ([`Busy::Wait`]).
    fn admit_stream(
        &mut self,
        stream: TcpStream,
        from: SocketAddr,
        since: Instant,
        internal: &mpsc::Sender<Internal>,
    ) -> Option<(TcpStream, SocketAddr, Instant)> {
        // A peer writes its request as soon as it is connected: bytes
        // already waiting set it apart from idle connections, and the
        // length its header claims ranks it among the others (peeked on a
        // duplicate of the socket while it is silent).
        let probe = socket2::SockRef::from(&stream).try_clone().ok();
        let ticket = match self.streams.admission.admit(from.ip(), probe) {
            Ok((ticket, evicted)) => {
                if evicted > 0 {
                    if let Some(suppressed) = self.limit_warnings.evicted.due(Instant::now()) {
                        tracing::warn!(
                            %from,
                            suppressed,
                            "inbound streams full: evicted an idle or unproven stream to admit a new one"
                        );
                    }
                }
                ticket
            }
            Err(Busy::Wait) => return Some((stream, from, since)),
            Err(busy) => {
                bump(&self.counters.streams_busy);
                if let Some(suppressed) = self.limit_warnings.busy.due(Instant::now()) {
                    let scope = match busy {
                        Busy::PerAddress => "every slot of this address",
                        Busy::Full | Busy::Wait => "every inbound slot",
                    };
                    tracing::warn!(%from, suppressed, "push-pull stream refused: {scope} is busy with a proven stream");
                }
                return None;
            }
        };
        bump(&self.counters.streams_accepted);
        let id = ticket.id();
        let timeout = self.streams.timeout;
        if self.streams.tls.is_none() {
            if let Some(frame) = ticket.waiting_request().and_then(|len| read_waiting_request(&stream, len)) {
                // The whole request was waiting: answered now, and only the
                // response is left to a task. Until that task runs, the
                // stream stays a whole request waiting for this node (never
                // evicted); once it writes, a slow reader is.
                bump(&self.counters.streams_answered_at_accept);
                let response = self.answer_request(from, &frame);
                drop(frame);
                let task = tokio::spawn(answer_inbound(stream, from, ticket, response, timeout));
                self.streams.admission.set_abort(id, task.abort_handle());
                return None;
            }
        }
        let codec = self.streams.codec.clone();
        let header_timeout = self.streams.header_timeout;
        let tls = self.streams.tls.clone();
        let internal = internal.clone();
        let accepted = Instant::now();
        let task = tokio::spawn(async move {
            let ticket = ticket;
            let limits = Deadlines { accepted, header: header_timeout, whole: timeout };
            match tls {
                None => serve_inbound(stream, from, &codec, &ticket, limits, &internal).await,
                Some(tls) => match tokio::time::timeout(header_timeout, tls.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        // Mutual TLS authenticated the peer: never evicted.
                        if ticket.advance(Stage::Trusted).is_ok() {
                            serve_inbound(stream, from, &codec, &ticket, limits, &internal).await;
                        }
                    }
                    Ok(Err(e)) => {
                        // Closed before a whole ClientHello (a port probe, a
                        // health check): no peer to warn about.
                        let error = match e.kind() {
                            io::ErrorKind::UnexpectedEof => StreamError::Closed,
                            _ => StreamError::Handshake(e),
                        };
                        let _ = internal.send(Internal::InboundRefused { from, error }).await;
                    }
                    Err(_) => {
                        let _ =
                            internal.send(Internal::InboundRefused { from, error: StreamError::HeaderTimeout }).await;
                    }
                },
            }
        });
        // An eviction can now abort the task.
        self.streams.admission.set_abort(id, task.abort_handle());
        None
    }

    /// The gate refused a push-pull the core asked for: counted, logged
    /// (rate-limited); the core forgets it as failed (a join is retried by
    /// its reconnect timer), unless one with the same peer is in flight.
    fn push_pull_dropped(&mut self, to: SocketAddr) {
        bump(&self.counters.push_pulls_dropped);
        if self.gate.pending.contains(&to) {
            tracing::debug!(%to, "push-pull already pending with this peer");
            return;
        }
        if let Some(suppressed) = self.limit_warnings.push_pulls.due(Instant::now()) {
            tracing::warn!(
                %to,
                max_pending = self.gate.max_pending,
                suppressed,
                "push-pull not started: too many pending (raise max_pending_push_pulls if this is no attack)"
            );
        }
        let now = self.now();
        self.swim.push_pull_failed(now, to);
        self.join_failed(to);
    }

    /// Whether this node knows no live member but itself (joining, or
    /// every member it knew is gone).
    fn alone(&self) -> bool {
        self.swim.metrics().alive <= 1
    }

    /// This node, joining, is alone no more, whatever made it so: its
    /// join's answer, or (first, in a burst of joins, while the seed still
    /// holds the join's stream for a slot) another node's push-pull or
    /// gossip. The join's follow-ups start now either way: a node that
    /// waited for the seed's answer to start them learned the rest of the
    /// burst from gossip alone, and was the last to converge (2,000 nodes
    /// joining at once: views short of ~300 members 10 s in).
    fn first_contact(&mut self) {
        let seed = self.gate.seeds.iter().next().copied().unwrap_or(self.swim.local().addr);
        self.join_retries.joined(seed, Instant::now());
    }

    /// A push-pull to `to` failed: if `to` is a seed and this node is
    /// alone, the join is retried soon (see [`JoinRetries`]).
    fn join_failed(&mut self, to: SocketAddr) {
        if self.gate.seeds.contains(&to) && self.alone() && self.join_retries.failed(to, Instant::now()) {
            bump(&self.counters.join_retries);
            tracing::debug!(seed = %to, "join failed while alone: retrying shortly");
        }
    }

    /// The follow-up push-pull of a join through `seed` (see
    /// [`JoinRetries`]): with a random live member other than the seed, if
    /// there is one.
    fn follow_up(&mut self, seed: SocketAddr) {
        let local = self.swim.local().addr;
        // One of the members learned last, if one is still alive.
        let recent: Vec<SocketAddr> = self
            .join_retries
            .recent
            .iter()
            .filter_map(|name| self.swim.member(name))
            .filter(|m| m.status == gossamer_wire::MemberStatus::Alive && m.id.addr != local && m.id.addr != seed)
            .map(|m| m.id.addr)
            .collect();
        if !recent.is_empty() {
            let peer = recent[self.join_retries.pick(recent.len())];
            tracing::debug!(%peer, "push-pull following up a join (a member learned of lately)");
            let now = self.now();
            self.swim.push_pull(now, peer);
            return;
        }
        let eligible =
            |m: &&Member| m.status == gossamer_wire::MemberStatus::Alive && m.id.addr != local && m.id.addr != seed;
        let count = self.swim.members().filter(eligible).count();
        if count == 0 {
            return;
        }
        let pick = self.join_retries.pick(count);
        let Some(peer) = self.swim.members().filter(eligible).nth(pick).map(|m| m.id.addr) else { return };
        tracing::debug!(%peer, "push-pull following up a join");
        let now = self.now();
        self.swim.push_pull(now, peer);
    }

    /// Retries the joins that are due, if this node is still alone.
    fn retry_joins(&mut self) {
        let at = Instant::now();
        let due = self.join_retries.take_due(at);
        if let Some(seed) = self.join_retries.take_follow_up(at) {
            bump(&self.counters.join_follow_ups);
            self.follow_up(seed);
        }
        if !self.alone() {
            self.join_retries.clear();
            return;
        }
        let now = self.now();
        for seed in due {
            // Not while an exchange with it is still pending.
            if !self.gate.pending.contains(&seed) {
                self.swim.join(now, &[seed]);
            }
        }
    }

    /// Counts and logs (rate-limited) an inbound stream closed by an
    /// admission limit: no header in time, no room in the byte budget.
    fn limit_hit(&mut self, from: SocketAddr, error: &StreamError) {
        let now = Instant::now();
        match error {
            StreamError::HeaderTimeout => {
                bump(&self.counters.streams_header_timeout);
                if let Some(suppressed) = self.limit_warnings.header.due(now) {
                    tracing::warn!(%from, suppressed, "inbound stream closed: no frame header within the deadline");
                }
            }
            StreamError::Budget { wanted, budget } => {
                bump(&self.counters.stream_budget_refused);
                if let Some(suppressed) = self.limit_warnings.budget.due(now) {
                    tracing::warn!(
                        %from,
                        wanted,
                        budget,
                        suppressed,
                        "inbound stream closed: no room in the stream byte budget for its body"
                    );
                }
            }
            _ => {}
        }
    }

    fn start_push_pull(&self, to: SocketAddr, request: Bytes, internal: mpsc::Sender<Internal>) {
        let codec = self.streams.codec.clone();
        let timeout = self.streams.timeout;
        let outbound = self.streams.outbound.clone();
        let blocked = self.blocked.clone();
        let tls = self.streams.tls.clone();
        let admission = self.streams.admission.clone();
        let counters = self.counters.clone();
        tokio::spawn(async move {
            // Bounded concurrency: exchanges beyond the limit wait their turn.
            let Ok(_permit) = outbound.acquire_owned().await else { return };
            let started = Instant::now();
            let unreachable = || StreamError::Io(io::Error::new(io::ErrorKind::ConnectionRefused, "peer blocked"));
            let result = async {
                if blocked.blocks(to) {
                    return Err(unreachable());
                }
                let stream =
                    tokio::time::timeout(timeout, TcpStream::connect(to)).await.map_err(|_| StreamError::Timeout)??;
                let frame = match &tls {
                    None => exchange(stream, &request, &codec, &admission, timeout).await?,
                    Some(tls) => {
                        let stream = tokio::time::timeout(timeout, tls.connect(to, stream))
                            .await
                            .map_err(|_| StreamError::Timeout)?
                            .map_err(StreamError::Handshake)?;
                        exchange(stream, &request, &codec, &admission, timeout).await?
                    }
                };
                // Blocked while the exchange was in flight: it is aborted.
                if blocked.blocks(to) {
                    return Err(unreachable());
                }
                Ok(frame)
            }
            .await;
            if result.is_ok() {
                counters.push_pull_duration.observe(started.elapsed());
            }
            let _ = internal.send(Internal::PushPullDone { to, result }).await;
        });
    }

    /// Runs one fallback ping over TCP (memberlist's TCP ping): connect,
    /// write the core's `Ping` frame, read one frame of at most
    /// [`MAX_STREAM_PING_FRAME`] bytes, all by the end of the probe's
    /// period; at most [`MAX_STREAM_PINGS`] at once. TLS when the streams
    /// use it. The peer serves it as any inbound stream (same admission).
    fn start_stream_ping(&mut self, ping: StreamPing, internal: mpsc::Sender<Internal>) {
        let StreamPing { to, request, deadline } = ping;
        let Ok(permit) = self.streams.pings.clone().try_acquire_owned() else {
            tracing::debug!(%to, "stream ping not started: too many in flight");
            bump(&self.counters.stream_pings_no_room);
            let now = self.now();
            self.swim.stream_ping_failed(now, to);
            return;
        };
        let deadline = self.start + deadline;
        let codec = match self.streams.codec.clone().with_max_frame_len(MAX_STREAM_PING_FRAME) {
            Ok(codec) => codec,
            Err(error) => {
                tracing::warn!(%error, "no codec for stream pings");
                let now = self.now();
                self.swim.stream_ping_failed(now, to);
                return;
            }
        };
        let blocked = self.blocked.clone();
        let tls = self.streams.tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let unreachable = || StreamError::Io(io::Error::new(io::ErrorKind::ConnectionRefused, "peer blocked"));
            let within = deadline.saturating_duration_since(Instant::now());
            let exchange = async {
                if blocked.blocks(to) {
                    return Err(unreachable());
                }
                let stream = TcpStream::connect(to).await?;
                let frame = match &tls {
                    None => ping_exchange(stream, &request, &codec, within).await?,
                    Some(tls) => {
                        let stream = tls.connect(to, stream).await.map_err(StreamError::Handshake)?;
                        ping_exchange(stream, &request, &codec, within).await?
                    }
                };
                if blocked.blocks(to) {
                    return Err(unreachable());
                }
                Ok(frame)
            };
            let result = tokio::time::timeout_at(deadline, exchange).await.unwrap_or(Err(StreamError::Timeout));
            let _ = internal.send(Internal::StreamPingDone { to, result }).await;
        });
    }

    /// The answer to an inbound stream's request, a push-pull or a peer's
    /// fallback ping (`None`: refused, or the peer is blocked).
    fn answer_request(&mut self, from: SocketAddr, frame: &[u8]) -> Option<Bytes> {
        if self.blocked.blocks(from) {
            tracing::debug!(%from, "push-pull request dropped (peer blocked)");
            return None;
        }
        // The response carries the application state of the moment.
        self.user.refresh_state(&mut self.swim);
        let now = self.now();
        let response = self.swim.handle_stream_request(now, from, frame);
        if response.is_none() {
            bump(&self.counters.streams_refused);
        }
        response
    }

    fn internal(&mut self, msg: Internal) {
        let now = self.now();
        match msg {
            Internal::Inbound { from, frame, reply } => {
                let _ = reply.send(self.answer_request(from, &frame));
            }
            Internal::StreamPingDone { to, result: Ok(frame) } => {
                self.swim.handle_stream_ping_response(now, to, &frame);
            }
            Internal::StreamPingDone { to, result: Err(e) } => {
                tracing::debug!(peer = %to, error = %e, "stream ping failed");
                match e {
                    StreamError::Timeout => bump(&self.counters.stream_ping_timeouts),
                    _ => bump(&self.counters.stream_ping_errors),
                }
                self.swim.stream_ping_failed(now, to);
            }
            Internal::InboundRefused { from, error } => {
                bump(&self.counters.streams_refused);
                self.limit_hit(from, &error);
                self.refusals.refused(Instant::now(), from, true, &error);
            }
            Internal::PushPullDone { to, result: Ok((frame, _budget)) } => {
                self.gate.pending.remove(&to);
                let joining = self.alone();
                self.swim.handle_push_pull_response(now, to, &frame);
                if joining && !self.alone() {
                    self.join_retries.joined(to, Instant::now());
                }
            }
            Internal::PushPullDone { to, result: Err(e) } => {
                self.gate.pending.remove(&to);
                bump(&self.counters.push_pull_failed);
                // A misconfigured peer (TLS on one side, a certificate of
                // another CA...) gets the rate-limited warning; anything else
                // is an ordinary, retried failure.
                if !self.refusals.refused(Instant::now(), to, false, &e) {
                    tracing::info!(peer = %to, error = %e, "push-pull failed (will be retried)");
                }
                self.swim.push_pull_failed(now, to);
                self.join_failed(to);
            }
        }
    }
}

/// The deadlines of one inbound stream.
#[derive(Debug, Clone, Copy)]
struct Deadlines {
    accepted: Instant,
    /// First bytes, header and budget.
    header: Duration,
    /// The whole frame, from `accepted`; also bounds the response write.
    whole: Duration,
}

/// Serves one admitted inbound stream (plain TCP or TLS): reads the
/// request frame, hands it to the driver, writes the response if there is
/// one. The frame's budget reservation ends once the core has read it.
async fn serve_inbound<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    from: SocketAddr,
    codec: &FrameCodec,
    ticket: &Ticket,
    limits: Deadlines,
    internal: &mpsc::Sender<Internal>,
) {
    let timeout = limits.whole;
    let read = read_inbound(&mut stream, codec, ticket, limits.accepted, limits.header, limits.whole).await;
    let frame = match read {
        Ok(frame) => frame,
        Err(error) => {
            // The driver counts and logs it (one rate limit for all
            // streams); the stream closes here, unanswered.
            let _ = internal.send(Internal::InboundRefused { from, error }).await;
            return;
        }
    };
    let (reply, response) = oneshot::channel();
    if internal.send(Internal::Inbound { from, frame, reply }).await.is_err() {
        return;
    }
    let response = response.await;
    // The core has merged (and dropped) the frame.
    ticket.release();
    ticket.answering();
    if let Ok(Some(bytes)) = response {
        if let Err(e) = write_frame(&mut stream, &bytes, timeout).await {
            tracing::debug!(%from, error = %e, "push-pull response not delivered");
        }
    }
}

/// Writes the response to an inbound request the driver read and answered
/// when it accepted the stream (see `read_waiting_request`); `ticket` holds
/// the stream's slot until then.
async fn answer_inbound(
    mut stream: TcpStream,
    from: SocketAddr,
    ticket: Ticket,
    response: Option<Bytes>,
    timeout: Duration,
) {
    if ticket.advance(Stage::Proven).is_err() {
        return;
    }
    ticket.answering();
    if let Some(bytes) = response {
        if let Err(e) = write_frame(&mut stream, &bytes, timeout).await {
            tracing::debug!(%from, error = %e, "push-pull response not delivered");
        }
    }
    drop(ticket);
}

/// The client side of one fallback ping: its frame out, one short frame
/// (the ack) in.
async fn ping_exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &[u8],
    codec: &FrameCodec,
    timeout: Duration,
) -> Result<Vec<u8>, StreamError> {
    write_frame(&mut stream, request, timeout).await?;
    read_frame(&mut stream, codec, timeout).await
}

/// The client side of one exchange: request out, response in.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &[u8],
    codec: &FrameCodec,
    admission: &Arc<Admission>,
    timeout: Duration,
) -> Result<(Vec<u8>, Reservation), StreamError> {
    write_frame(&mut stream, request, timeout).await?;
    read_response(&mut stream, codec, admission, timeout).await
}

fn log_event(event: &Event) {
    match event {
        Event::MemberJoined(m) => tracing::info!(member = %m.id, incarnation = m.incarnation, "member joined"),
        Event::MemberUpdated(m) => tracing::debug!(member = %m.id, incarnation = m.incarnation, "member updated"),
        Event::MemberSuspected(m) => tracing::info!(member = %m.id, incarnation = m.incarnation, "member suspected"),
        Event::MemberFailed(m) => tracing::warn!(member = %m.id, incarnation = m.incarnation, "member failed"),
        Event::MemberLeft(m) => tracing::info!(member = %m.id, incarnation = m.incarnation, "member left"),
        Event::MemberRecovered(m) => tracing::info!(member = %m.id, incarnation = m.incarnation, "member recovered"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast join retries follow `NodeConfig::join_retry_*`: as many as
    /// configured, delays doubling from the base (±50%) and capped.
    #[test]
    fn join_retries_follow_the_node_config() {
        use rand_core::SeedableRng;
        let mut config = crate::NodeConfig::new("a@h", "127.0.0.1:0".parse().unwrap(), crate::Preset::Local).unwrap();
        config.join_retry_attempts = 3;
        config.join_retry_base = Duration::from_millis(100);
        config.join_retry_max = Duration::from_millis(250);
        let mut retries = JoinRetries::new(ChaCha8Rng::seed_from_u64(7), &config);
        let seed = SocketAddr::from(([127, 0, 0, 1], 1));
        let now = Instant::now();
        let mut delays = Vec::new();
        while retries.failed(seed, now) {
            delays.push(retries.next_due().unwrap() - now);
            retries.due.clear();
        }
        assert_eq!(delays.len(), 3, "{delays:?}");
        let bounds = [(50, 150), (100, 300), (125, 375)];
        for (d, (lo, hi)) in delays.iter().zip(bounds) {
            assert!(*d >= Duration::from_millis(lo) && *d < Duration::from_millis(hi), "{delays:?}");
        }
        config.join_retry_attempts = 0;
        assert!(!JoinRetries::new(ChaCha8Rng::seed_from_u64(7), &config).failed(seed, now), "0: no fast retries");
    }

    /// Follow-ups of a join: all of them, about `JOIN_FOLLOW_UP_GAP`
    /// apart, whatever the view does (a stalled view at the end of a
    /// burst is no sign that it is complete).
    #[test]
    fn a_join_gets_every_follow_up_gap_apart() {
        use rand_core::SeedableRng;
        let config = crate::NodeConfig::new("a@h", "127.0.0.1:0".parse().unwrap(), crate::Preset::Local).unwrap();
        let seed = SocketAddr::from(([127, 0, 0, 1], 1));
        let mut retries = JoinRetries::new(ChaCha8Rng::seed_from_u64(7), &config);
        let start = Instant::now();
        retries.joined(seed, start);
        assert_eq!(retries.take_follow_up(start), None, "not due yet");
        let (mut now, mut times) = (start, Vec::new());
        while let Some((at, _)) = retries.follow_up {
            assert!(at > now, "each follow-up is scheduled after the last");
            now = at;
            assert_eq!(retries.take_follow_up(now), Some(seed), "due: it runs, and names the seed to avoid");
            times.push(now - start);
        }
        assert_eq!(times.len(), MAX_JOIN_FOLLOW_UPS as usize);
        let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(times[0] >= JOIN_FOLLOW_UP / 2 && times[0] < JOIN_FOLLOW_UP * 3 / 2, "{times:?}");
        assert!(gaps.iter().all(|g| *g >= JOIN_FOLLOW_UP_GAP / 2 && *g < JOIN_FOLLOW_UP_GAP * 3 / 2), "{gaps:?}");
    }

    #[test]
    fn one_gate_for_push_pulls_and_a_bounded_seed_list() {
        let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let mut gate = PushPullGate::new(4, 2, &[addr(1)]);
        assert!(gate.admit(addr(10)));
        assert!(!gate.admit(addr(10)), "one pending push-pull per peer");
        assert!(gate.multicast_room(addr(11)));
        assert!(gate.admit(addr(11)));
        assert!(!gate.multicast_room(addr(12)), "multicast gets at most half of the gate");
        assert!(gate.admit(addr(12)));
        assert!(!gate.admit(addr(13)), "the last quarter is kept for joins through seeds");
        assert!(gate.admit(addr(1)), "a seed gets it");
        assert!(!gate.admit(addr(14)), "the gate is full");
        gate.pending.remove(&addr(10));
        assert!(!gate.admit(addr(14)), "a finished exchange makes room, but not in the seeds' quarter");
        gate.pending.remove(&addr(11));
        assert!(gate.admit(addr(14)));
        // Seeds: the start seed counts; known ones stay accepted.
        assert!(gate.remember(addr(1)) && gate.remember(addr(2)));
        assert!(!gate.remember(addr(3)), "the list is full");
        assert!(gate.remember(addr(2)));
        assert_eq!(gate.seeds.len(), 2);
    }

    #[test]
    fn misconfigured_peers_warn_once_per_interval() {
        let mut log = RefusalLog::default();
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let label =
            || StreamError::Refused(DecodeError::LabelMismatch { expected: "prod".into(), found: "test".into() });
        let t0 = Instant::now();
        assert!(log.refused(t0, peer, true, &label()), "the first refusal is a warning");
        assert!(!log.refused(t0 + Duration::from_millis(10), peer, true, &label()), "retries are not");
        assert!(!log.refused(t0, peer, true, &StreamError::Timeout), "a timeout is no misconfiguration");
        assert_eq!(log.suppressed, 1);
        assert!(log.refused(t0 + REFUSAL_WARN_INTERVAL, peer, true, &label()), "warned again after the interval");
        assert_eq!(log.suppressed, 0);
    }

    #[test]
    fn tls_handshake_failures_are_misconfigurations_under_the_same_limit() {
        let mut log = RefusalLog::default();
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let handshake = || StreamError::Handshake(io::Error::new(io::ErrorKind::InvalidData, "UnknownIssuer"));
        let t0 = Instant::now();
        assert!(log.refused(t0, peer, true, &handshake()), "a failed handshake warns");
        assert!(!log.refused(t0 + Duration::from_secs(1), peer, false, &handshake()), "then is rate-limited");
        // A ClientHello read by a plaintext node: a TLS peer, not garbage.
        let hello = StreamError::Refused(DecodeError::BadMagic { found: [0x16, 0x03] });
        assert_eq!(misconfig(&hello), Some(Misconfig::TlsToPlain));
        assert!(log.refused(t0 + REFUSAL_WARN_INTERVAL, peer, true, &hello));
        let http = StreamError::Refused(DecodeError::BadMagic { found: *b"GE" });
        assert_eq!(misconfig(&http), None, "other garbage stays at debug");
        let refused = StreamError::Io(io::Error::new(io::ErrorKind::ConnectionRefused, "down"));
        assert_eq!(misconfig(&refused), None, "a peer that is down is no misconfiguration");
    }
}
