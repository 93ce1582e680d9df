//! Application data over the membership layer (memberlist's delegates,
//! Serf's user events and queries, foca's broadcast handler):
//!
//! - **Broadcasts** ([`Swim::broadcast`]): `(key, payload)` from this node,
//!   disseminated infection-style in a separate, bounded queue with a
//!   reserved share of every packet ([`Config::user_share`]). A newer
//!   version under the same (origin, key) replaces a pending older one.
//!   Every other node delivers each (origin, key, version) once, as
//!   [`UserEvent::Broadcast`], and forwards it. The origin does not deliver
//!   its own broadcasts.
//! - **Queries** ([`Swim::query`]): disseminated the same way; each node the
//!   [`QueryFilter`] addresses (the origin too) gets [`UserEvent::Query`] and
//!   may answer once with [`Swim::respond`], a datagram straight to the
//!   origin. The origin reports each answer before the deadline as
//!   [`UserEvent::QueryResponse`] and, at the deadline,
//!   [`UserEvent::QueryDone`] with the addressed alive members that stayed
//!   silent.
//! - **Application state** ([`Swim::set_local_state`]): carried in every
//!   push-pull this node sends; what peers send is reported as
//!   [`UserEvent::RemoteState`] for the application to merge.
//!
//! ## Duplicates, old items and restarts
//!
//! Application items are ordered by a Lamport clock (Serf's user-event
//! clock). [`Swim::broadcast`] and [`Swim::query`] stamp their item with the
//! clock plus one (the broadcast's version, the query's id) and advance the
//! clock to it; every item received and every push-pull (which carries the
//! sender's clock) advances it to at least the time it carries, if that
//! time is within bounds (see "Items from the future"). So versions
//! increase per origin, and an origin that restarts (its clock at 0 again)
//! stamps above everything the cluster has seen once it has joined: the
//! join's push-pull teaches it the clock.
//!
//! A receiver accepts an item if it is news: a broadcast above the newest
//! version accepted under its (origin, key), a query not accepted before;
//! and if it is not too old, which is judged **per origin**: an item is
//! too old only if it is stamped at or below a time *of the same origin*
//! that this node accepted and has since forgotten. What it accepted is
//! remembered by Lamport time until its clock runs
//! [`Config::user_ltime_window`] past it, or until more than
//! [`Config::user_dedupe_capacity`] entries are held (the oldest times go
//! first); forgetting an item raises its origin's floor above it. So each
//! (origin, key, version), and each query, is delivered at most once per
//! run of a node, however long it circulates (under churn, late joiners
//! keep forwarding an item long after its origin stopped; a time-based
//! memory forgets it first and delivers it again). The floors are kept for
//! at most `user_dedupe_capacity` origins; past it, those forgotten longest
//! ago are dropped and every origin without a floor of its own gets the
//! highest of theirs (a flood of that many forged names is needed to raise
//! it, as it would be to evict real items). Items too old are neither
//! delivered nor forwarded (counted in [`Metrics::user_items_too_old`]).
//!
//! Why per origin rather than against this node's clock (Serf's event
//! buffer): the clock moves with everything this node hears, including
//! items it refuses and forgeries; an origin's items only move with what
//! that origin was seen to send. The invariant: **nothing makes an item of
//! origin O too old but an item in O's name this node accepted.** Another
//! origin's item, forged or not, at whatever time, changes what this node
//! forgets and when, never which of O's later items it takes: O stamps
//! each item above its own earlier ones, hence above every floor it alone
//! raised. A receiver whose clock ran ahead (it heard more, or a forgery)
//! still takes the broadcasts of a member that did not hear the same, and
//! forwards them: an item queued for forwarding is never dropped for its
//! time, only sent out or evicted like any other.
//!
//! Restarts: items the previous run of an origin sent, still circulating,
//! are not delivered again (their times are remembered, or below the
//! origin's floor). The new run should broadcast only once it has joined:
//! what it queued before the join taught it the clock, if a window behind
//! the clock learnt, is dropped before it goes out (counted in
//! [`Metrics::user_items_too_old`]): stamped low, it would be taken for the
//! previous run's items where they are remembered. Query ids are Lamport
//! times too: unique per run of the origin, and across runs once the clock
//! is learnt. A node that joins (or restarts) delivers items still
//! circulating that it never saw, whatever their age.
//!
//! ## Items from the future
//!
//! An item stamped above [`MAX_LTIME`] is refused and ignored. One stamped
//! more than [`Config::user_ltime_window`] ticks past this node's
//! *horizon* is refused (neither delivered, remembered nor forwarded;
//! counted in [`Metrics::user_items_too_new`]) and moves the horizon one
//! window, and nothing else; a push-pull clock is witnessed the same way,
//! except in the answer to a push-pull this node started while it knew no
//! other live member: a restarted node learns the cluster's clock, however
//! far ahead, from the member it chose to join through. The horizon is the
//! clock, plus the windows such refusals added: how far ahead this node
//! accepts. Why move it at all: an honest node that starts more items than
//! the window at once (a burst), or a side of a healed partition, is
//! ahead of everyone else's clock; refusing its items without moving would
//! leave the others behind for good. Moved, they catch up one window per
//! item or exchange refused, then take its items (and their clocks move).
//! Why not move the clock: what a node stamps must not depend on what it
//! refused, or a forgery that reached it alone would put its own
//! broadcasts out of everyone else's reach (too new, until they caught up).
//!
//! So a forged item at `u64::MAX` changes nothing, and one further ahead
//! than the window is refused and changes nothing any member sends or
//! takes: no honest broadcast, stamped before or after it, is silenced
//! (`simulations/hostile-user.toml`). What a forger without the cluster
//! key can still do (use a keyring on untrusted networks, as for
//! membership): an item within the window is indistinguishable from a
//! real one, so it is delivered, and it supersedes its origin's versions
//! at or below it until that origin, hearing it (accepted items are
//! forwarded), stamps past it; and such items, a window at a time, move
//! the clocks of the nodes they reach, whose own items are then too new
//! for the others until they catch up (one window per copy or push-pull
//! refused). The clocks stay about 2^50 such forgeries short of
//! [`MAX_LTIME`] with the default window.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use gossamer_wire::{
    MemberStatus, Message, NodeId, NodeName, Query, QueryFilter, QueryResponse, Update, UserBroadcast, UserKey,
    UserKeyError,
};
use rand_core::RngCore;

use crate::broadcast::{BroadcastQueue, Key};
use crate::event::Output;
use crate::swim::{after, Swim};
use crate::timer::TimerKind;
use crate::Time;
#[cfg(doc)]
use crate::{Config, Metrics};

/// Identifies a query this node started (unique per run of the node): the
/// Lamport time it was stamped with (see the module docs).
pub type QueryId = u64;

/// The highest Lamport time of application items this node accepts or
/// stamps (`u64::MAX / 2`): items and push-pull clocks above it are
/// refused, so the clock's `+ 1` and `+ window` never overflow.
pub const MAX_LTIME: u64 = u64::MAX / 2;

/// Most queries of others this node keeps answerable at once.
const MAX_ANSWERABLE: usize = 4096;
/// Most distinct responders counted per query (bounds a flood of forged names).
const MAX_RESPONDERS: usize = 1 << 16;

/// Application data delivered by the core ([`Output::User`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserEvent {
    /// Another member's broadcast, delivered once per (origin, key, version).
    Broadcast {
        /// The member that broadcast it.
        origin: NodeName,
        /// Its key.
        key: UserKey,
        /// Its version (higher is newer, per origin).
        version: u64,
        /// The application's bytes.
        payload: Bytes,
    },
    /// A query addressed to this node; answer with [`Swim::respond`] before
    /// its timeout, or not at all.
    Query {
        /// The query's id (pass it to [`Swim::respond`]).
        id: QueryId,
        /// The asking member (pass its name to [`Swim::respond`]).
        origin: NodeId,
        /// What is asked.
        name: UserKey,
        /// The application's bytes.
        payload: Bytes,
    },
    /// An answer to a query of this node, once per responder, before the deadline.
    QueryResponse {
        /// The query.
        id: QueryId,
        /// Who answered.
        from: NodeName,
        /// The answer.
        payload: Bytes,
    },
    /// A query of this node reached its deadline: nothing more is reported.
    QueryDone {
        /// The query.
        id: QueryId,
        /// How many members answered in time.
        responders: usize,
        /// Members alive (or merely suspect) here and addressed by the
        /// filter, this node included, that did not answer.
        missing: Vec<NodeName>,
    },
    /// Application state a peer sent in a push-pull exchange (memberlist's
    /// MergeRemoteState); only non-empty states are reported.
    RemoteState {
        /// The peer (the first member of its list, see `pushpull`).
        from: NodeName,
        /// Whether the peer was joining.
        join: bool,
        /// The peer's state as set with [`Swim::set_local_state`].
        state: Bytes,
    },
}

/// Why a broadcast, query or response was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// The key or query name is empty or too long.
    #[error("invalid key: {0}")]
    Key(#[from] UserKeyError),
    /// The item would never fit the share of a packet reserved for it.
    #[error("user item of {len} bytes exceeds the {max} bytes one packet can carry for it")]
    TooLarge {
        /// Encoded size of the item.
        len: usize,
        /// See [`Swim::max_user_item_len`].
        max: usize,
    },
    /// A query timeout of zero, or longer than `u32::MAX` milliseconds.
    #[error("query timeout {0:?} must be at least 1 ms and at most u32::MAX ms")]
    Timeout(Duration),
    /// No query with this id from this origin awaits an answer here: never
    /// received, not addressed to this node, already answered or expired.
    #[error("no query {id} from {origin} awaits an answer here")]
    UnknownQuery {
        /// The query id given.
        id: QueryId,
        /// The origin given.
        origin: NodeName,
    },
    /// This node is leaving the cluster.
    #[error("this node is leaving the cluster")]
    Leaving,
}

/// Key of an application item in the queue and the duplicate filter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ItemKey {
    Broadcast(NodeName, UserKey),
    Query(NodeName, QueryId),
}

impl ItemKey {
    /// The member the item claims to come from.
    fn origin(&self) -> &NodeName {
        match self {
            ItemKey::Broadcast(origin, _) | ItemKey::Query(origin, _) => origin,
        }
    }

    fn into_origin(self) -> NodeName {
        match self {
            ItemKey::Broadcast(origin, _) | ItemKey::Query(origin, _) => origin,
        }
    }
}

/// Whether an item received is to be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// News: remembered now, to be delivered and forwarded.
    New,
    /// Accepted before, or superseded by a newer version accepted.
    Seen,
    /// At or below a time of its origin that was forgotten here.
    TooOld,
}

/// What was accepted, by Lamport time, and what was forgotten, by origin
/// (see the module docs).
#[derive(Default)]
pub(crate) struct Seen {
    /// The newest time accepted per key.
    newest: HashMap<ItemKey, u64>,
    /// The keys accepted at each time. An entry whose key was accepted
    /// again at a newer time is stale: skipped when its time is forgotten.
    by_time: BTreeMap<u64, Vec<ItemKey>>,
    /// Entries in `by_time`, stale ones included.
    entries: usize,
    /// Per origin: one above the newest of its times forgotten here. Its
    /// items below are too old. At most `capacity` origins (see
    /// [`Seen::bound_floors`]).
    floors: HashMap<NodeName, u64>,
    /// The floor of every origin not in `floors`: the highest of the
    /// per-origin floors dropped to bound their number (0 until then).
    floor: u64,
}

impl Seen {
    /// Whether an item stamped `ltime` is new: not below what its origin
    /// had forgotten here, and above the newest version accepted under its
    /// key; if so it is remembered, and the oldest times are forgotten
    /// while more than `capacity` entries are held. The clock plays no
    /// part: a clock moved by someone else's item (forged or not) cannot
    /// make this origin's items too old.
    pub(crate) fn admit(&mut self, key: ItemKey, ltime: u64, capacity: usize) -> Verdict {
        if ltime < self.floor_of(key.origin()) {
            return Verdict::TooOld;
        }
        if self.newest.get(&key).is_some_and(|&newest| ltime <= newest) {
            return Verdict::Seen;
        }
        self.newest.insert(key.clone(), ltime);
        self.by_time.entry(ltime).or_default().push(key);
        self.entries += 1;
        while self.entries > capacity {
            if !self.forget_oldest(capacity) {
                break;
            }
        }
        Verdict::New
    }

    /// The lowest time of `origin` still accepted.
    fn floor_of(&self, origin: &NodeName) -> u64 {
        self.floors.get(origin).map_or(self.floor, |&floor| floor.max(self.floor))
    }

    /// Forgets the times the window has left behind the clock (they are
    /// remembered no longer than that, to bound the memory in steady
    /// state); each origin's floor rises above its own times forgotten.
    pub(crate) fn expire(&mut self, clock: u64, window: u64, capacity: usize) {
        let limit = clock.saturating_sub(window);
        while self.by_time.first_key_value().is_some_and(|(&t, _)| t <= limit) {
            self.forget_oldest(capacity);
        }
    }

    /// Forgets the oldest time remembered, raising the floor of the
    /// origins whose newest item was at that time; returns whether there
    /// was one.
    fn forget_oldest(&mut self, capacity: usize) -> bool {
        let Some((t, keys)) = self.by_time.pop_first() else { return false };
        self.entries -= keys.len();
        for key in keys {
            if self.newest.get(&key) != Some(&t) {
                continue; // stale: accepted again later, still remembered
            }
            self.newest.remove(&key);
            // `t` was accepted, so at most MAX_LTIME: no overflow.
            let above = t.saturating_add(1);
            let floor = self.floors.entry(key.into_origin()).or_insert(above);
            *floor = (*floor).max(above);
        }
        self.bound_floors(capacity);
        true
    }

    /// Keeps at most `capacity` per-origin floors: past it, the lowest
    /// eighth (the origins longest forgotten) are dropped and the global
    /// floor rises to the highest of them, so that what they had forgotten
    /// stays refused. Amortised: one pass per `capacity / 8` new origins.
    fn bound_floors(&mut self, capacity: usize) {
        let over = self.floors.len().saturating_sub(capacity);
        if over == 0 {
            return;
        }
        let dropped = over.max(capacity / 8).min(self.floors.len());
        let mut floors: Vec<u64> = self.floors.values().copied().collect();
        let (_, &mut cut, _) = floors.select_nth_unstable(dropped - 1);
        self.floor = self.floor.max(cut);
        let floor = self.floor;
        self.floors.retain(|_, f| *f > floor);
        tracing::debug!(floor, origins = self.floors.len(), "too many origins forgotten: the oldest share one floor");
    }

    /// Keys remembered.
    pub(crate) fn len(&self) -> usize {
        self.newest.len()
    }

    /// Origins whose forgotten times are remembered one by one.
    #[cfg(test)]
    fn origins(&self) -> usize {
        self.floors.len()
    }
}

/// A query this node started, until its deadline.
pub(crate) struct Outgoing {
    deadline: Time,
    filter: QueryFilter,
    responders: HashSet<NodeName>,
}

/// All application-item state of a node.
pub(crate) struct UserState {
    pub(crate) queue: BroadcastQueue<ItemKey>,
    pub(crate) keys: Vec<Key>,
    pub(crate) seen: Seen,
    /// The Lamport clock of application items (see the module docs): what
    /// this node stamps its items above, and sends in push-pulls.
    pub(crate) clock: u64,
    /// How far ahead this node accepts items and clocks: up to a window
    /// past this. At least `clock`; times refused for being further ahead
    /// move it one window each, and move nothing else (see the module docs).
    horizon: u64,
    /// The time of this node's own item last queued under each key, and
    /// the keys by that time, to drop those a clock learnt on joining
    /// leaves a window behind (see [`Swim::witness_user_time`]). Entries
    /// of items the queue has since sent out or evicted linger until then,
    /// or until a compaction. Items of others are not indexed: they are
    /// never dropped for their time (see the module docs).
    queued: HashMap<ItemKey, u64>,
    queued_by_time: BTreeMap<u64, Vec<ItemKey>>,
    queued_entries: usize,
    /// Queries of others this node may still answer: where to, until when.
    answerable: HashMap<(NodeName, QueryId), (SocketAddr, Time)>,
    outgoing: HashMap<QueryId, Outgoing>,
    pub(crate) local_state: Bytes,
}

impl UserState {
    pub(crate) fn new() -> Self {
        Self {
            queue: BroadcastQueue::default(),
            keys: Vec::new(),
            seen: Seen::default(),
            clock: 0,
            horizon: 0,
            queued: HashMap::new(),
            queued_by_time: BTreeMap::new(),
            queued_entries: 0,
            answerable: HashMap::new(),
            outgoing: HashMap::new(),
            local_state: Bytes::new(),
        }
    }
}

impl<R: RngCore> Swim<R> {
    /// Broadcasts `payload` under `key` to every member; returns its
    /// version, the Lamport time it is stamped with (see the module docs:
    /// broadcast once joined, so that the time is the cluster's). A pending (not yet fully disseminated) broadcast under the
    /// same key is replaced. The item must fit the user share of one packet
    /// ([`Swim::max_user_item_len`]).
    ///
    /// ```
    /// use gossamer_core::{Config, Output, Swim, UserEvent};
    /// use gossamer_wire::{ClusterLabel, FrameCodec, NodeId};
    /// use rand::SeedableRng;
    /// use std::time::Duration;
    ///
    /// let codec = FrameCodec::new(ClusterLabel::new("demo").unwrap());
    /// let (a_addr, b_addr) = ("127.0.0.1:7001".parse().unwrap(), "127.0.0.1:7002".parse().unwrap());
    /// let rng = rand::rngs::StdRng::seed_from_u64(1);
    /// let mut a = Swim::new(NodeId::new("a".parse().unwrap(), a_addr), Config::local(), codec.clone(), rng.clone(), Duration::ZERO).unwrap();
    /// let mut b = Swim::new(NodeId::new("b".parse().unwrap(), b_addr), Config::local(), codec, rng, Duration::ZERO).unwrap();
    /// // b joins through a (the push-pull carried by hand).
    /// b.join(Duration::ZERO, &[a_addr]);
    /// let request = std::iter::from_fn(|| b.poll_output())
    ///     .find_map(|o| match o { Output::PushPull { request, .. } => Some(request), _ => None })
    ///     .unwrap();
    /// let response = a.handle_push_pull_request(Duration::ZERO, b_addr, &request).unwrap();
    /// b.handle_push_pull_response(Duration::ZERO, a_addr, &response);
    ///
    /// assert_eq!(a.broadcast(Duration::ZERO, "leader", b"a:7001".to_vec()).unwrap(), 1);
    /// // A second later a's timers (probe, gossip) send it along; b delivers it once.
    /// let later = Duration::from_secs(1);
    /// let timers: Vec<_> = std::iter::from_fn(|| a.poll_output())
    ///     .filter_map(|o| match o { Output::SetTimer { timer, .. } => Some(timer), _ => None })
    ///     .collect();
    /// for timer in timers {
    ///     a.handle_timer(later, timer);
    /// }
    /// let datagrams: Vec<_> = std::iter::from_fn(|| a.poll_output())
    ///     .filter_map(|o| match o { Output::Datagram { bytes, .. } => Some(bytes), _ => None })
    ///     .collect();
    /// for bytes in &datagrams {
    ///     b.handle_datagram(later, a_addr, bytes);
    /// }
    /// let delivered: Vec<_> = std::iter::from_fn(|| b.poll_output())
    ///     .filter_map(|o| match o {
    ///         Output::User(UserEvent::Broadcast { origin, key, version, payload }) => Some((origin, key, version, payload)),
    ///         _ => None,
    ///     })
    ///     .collect();
    /// assert_eq!(delivered.len(), 1, "{} datagrams carried it, delivered once", datagrams.len());
    /// assert_eq!((delivered[0].1.as_str(), delivered[0].2, &delivered[0].3[..]), ("leader", 1, &b"a:7001"[..]));
    /// ```
    pub fn broadcast(&mut self, now: Time, key: &str, payload: impl Into<Vec<u8>>) -> Result<u64, UserError> {
        self.tick(now);
        if self.leaving.is_some() {
            return Err(UserError::Leaving);
        }
        let key = UserKey::new(key)?;
        let version = self.user.clock.saturating_add(1);
        let origin = self.local.name.clone();
        let update =
            Update::User(UserBroadcast { origin: origin.clone(), key: key.clone(), version, payload: payload.into() });
        self.check_fits(&update)?;
        self.advance_user_clock(version);
        self.enqueue_user(ItemKey::Broadcast(origin, key), update, version);
        Ok(version)
    }

    /// Asks the members `filter` addresses (this node included, if it
    /// matches) and collects their answers for `timeout`; returns the
    /// query's id, the Lamport time it is stamped with (as a broadcast's
    /// version). See [`UserEvent::QueryResponse`] and
    /// [`UserEvent::QueryDone`].
    pub fn query(
        &mut self,
        now: Time,
        name: &str,
        payload: impl Into<Vec<u8>>,
        filter: QueryFilter,
        timeout: Duration,
    ) -> Result<QueryId, UserError> {
        self.tick(now);
        if self.leaving.is_some() {
            return Err(UserError::Leaving);
        }
        let name = UserKey::new(name)?;
        let timeout_ms = u32::try_from(timeout.as_millis()).map_err(|_| UserError::Timeout(timeout))?;
        if timeout_ms == 0 {
            return Err(UserError::Timeout(timeout));
        }
        let id = self.user.clock.saturating_add(1);
        let query =
            Query { origin: self.local.clone(), id, name, payload: payload.into(), filter: filter.clone(), timeout_ms };
        let update = Update::Query(Box::new(query));
        self.check_fits(&update)?;
        let Update::Query(query) = update else { unreachable!("built above") };
        self.advance_user_clock(id);
        let deadline = after(now, timeout);
        self.user.outgoing.insert(id, Outgoing { deadline, filter, responders: HashSet::new() });
        self.set_timer(deadline, TimerKind::QueryDeadline { id });
        if query.filter.matches(&self.local.name, &self.self_entry().metadata) {
            self.surface_query(now, &query);
        }
        self.enqueue_user(ItemKey::Query(self.local.name.clone(), id), Update::Query(query), id);
        Ok(id)
    }

    /// Answers the query `id` of `origin` (from a [`UserEvent::Query`]) with
    /// `payload`: one datagram straight to the origin (or, for this node's
    /// own query, a [`UserEvent::QueryResponse`] right away). Each query is
    /// answered at most once, and only before its timeout.
    pub fn respond(
        &mut self,
        now: Time,
        id: QueryId,
        origin: &NodeName,
        payload: impl Into<Vec<u8>>,
    ) -> Result<(), UserError> {
        self.tick(now);
        let unknown = || UserError::UnknownQuery { id, origin: origin.clone() };
        let (addr, deadline) = *self.user.answerable.get(&(origin.clone(), id)).ok_or_else(unknown)?;
        if now > deadline {
            self.user.answerable.remove(&(origin.clone(), id));
            return Err(unknown());
        }
        let response = QueryResponse { id, from: self.local.name.clone(), payload: payload.into() };
        if origin == &self.local.name {
            self.user.answerable.remove(&(origin.clone(), id));
            self.accept_response(now, response);
            return Ok(());
        }
        let message = Message::QueryResponse(response);
        // What a compound datagram holds besides the update count's reserve.
        let max = self.config.mtu.saturating_sub(self.codec.overhead() + 3);
        let len = message.encoded_len();
        if len > max {
            return Err(UserError::TooLarge { len, max });
        }
        self.user.answerable.remove(&(origin.clone(), id));
        self.send(addr, &message, None);
        Ok(())
    }

    /// Sets the application state this node includes in every push-pull
    /// exchange (memberlist's LocalState); peers report it as
    /// [`UserEvent::RemoteState`]. Empty (the default) sends nothing. It
    /// travels in the stream frame with the member list, so it is bounded
    /// only by the stream frame cap.
    pub fn set_local_state(&mut self, state: impl Into<Bytes>) {
        self.user.local_state = state.into();
    }

    /// The largest encoded application item (broadcast or query, as
    /// [`gossamer_wire::Update::encoded_len`] counts it) that is accepted:
    /// what the user share ([`Config::user_share`]) of an otherwise empty
    /// gossip datagram holds, so that it always gets out even while
    /// membership updates fill the rest of every packet.
    pub fn max_user_item_len(&self) -> usize {
        let room = self.codec.compound(&Message::Gossip, self.config.mtu).map_or(0, |builder| builder.remaining());
        (room as f64 * self.config.user_share) as usize
    }

    fn check_fits(&self, update: &Update) -> Result<(), UserError> {
        let (len, max) = (update.encoded_len(), self.max_user_item_len());
        if len > max {
            return Err(UserError::TooLarge { len, max });
        }
        Ok(())
    }

    /// Queues an application item stamped `ltime`, evicting the most sent
    /// one when the queue is over its capacity.
    fn enqueue_user(&mut self, key: ItemKey, update: Update, ltime: u64) {
        let user = &mut self.user;
        let grew = user.queue.push_keyed(key.clone(), update);
        self.stats.user_items_queued += 1;
        if grew && user.queue.len() > self.config.user_queue_capacity && user.queue.evict_most_sent() {
            self.stats.user_items_dropped += 1;
            tracing::debug!(capacity = self.config.user_queue_capacity, "user queue full: dropped the most sent item");
        }
        if *key.origin() != self.local.name {
            return;
        }
        user.queued.insert(key.clone(), ltime);
        user.queued_by_time.entry(ltime).or_default().push(key);
        user.queued_entries += 1;
        if user.queued_entries > 2 * user.queue.len() + 64 {
            // Forget what the queue no longer holds (sent out, evicted).
            let (queue, queued) = (&user.queue, &mut user.queued);
            queued.retain(|key, _| queue.transmits(key).is_some());
            user.queued_by_time.retain(|&t, keys| {
                keys.retain(|key| queued.get(key) == Some(&t));
                !keys.is_empty()
            });
            user.queued_entries = user.queued_by_time.values().map(Vec::len).sum();
        }
    }

    /// Witnesses a Lamport time a peer sent (an item's, a push-pull's),
    /// within bounds (see the module docs): a time above [`MAX_LTIME`] is
    /// ignored; one more than `user_ltime_window` past the horizon is
    /// refused and moves the horizon one window, and nothing else; any
    /// other advances the clock to it. Returns whether the time was within
    /// bounds (else counted in [`Metrics::user_items_too_new`]).
    pub(crate) fn witness_bounded(&mut self, ltime: u64) -> bool {
        if ltime > MAX_LTIME {
            self.stats.user_items_too_new += 1;
            return false;
        }
        let limit = self.user.horizon.saturating_add(self.config.user_ltime_window).min(MAX_LTIME);
        if ltime > limit {
            self.user.horizon = limit;
            self.stats.user_items_too_new += 1;
            return false;
        }
        self.advance_user_clock(ltime);
        true
    }

    /// Lamport's rule for a clock learnt on joining (see `pushpull`):
    /// advances the clock of application items to at least `ltime`, then
    /// does what [`Swim::advance_user_clock`] does and also unqueues this
    /// node's own items the new clock leaves a window behind: stamped
    /// before it knew the cluster's clock (a restart), they would be
    /// compared with its previous run's, or refused as too old where that
    /// run's later items were forgotten (see the module docs).
    pub(crate) fn witness_user_time(&mut self, ltime: u64) {
        self.advance_user_clock(ltime);
        let limit = self.user.clock.saturating_sub(self.config.user_ltime_window);
        let user = &mut self.user;
        while let Some(entry) = user.queued_by_time.first_entry() {
            if *entry.key() > limit {
                break;
            }
            let (t, keys) = entry.remove_entry();
            user.queued_entries -= keys.len();
            for key in keys {
                if user.queued.get(&key) != Some(&t) {
                    continue;
                }
                user.queued.remove(&key);
                if user.queue.transmits(&key).is_some() {
                    user.queue.retire(&key);
                    self.stats.user_items_too_old += 1;
                    tracing::debug!(
                        ltime = t,
                        clock = user.clock,
                        "own item stamped before the join taught the clock: dropped"
                    );
                }
            }
        }
    }

    /// Lamport's rule: advances the clock of application items to at least
    /// `ltime` (a time this node stamped or received), and forgets what
    /// that leaves a window behind (see [`Seen::expire`]). Nothing queued
    /// is dropped: a clock moved by a peer's item or push-pull, forged or
    /// not, must not silence what this node broadcast or forwards, as
    /// receivers judge an item by what its origin sent before, not by
    /// their clocks (see the module docs).
    fn advance_user_clock(&mut self, ltime: u64) {
        if ltime <= self.user.clock {
            return;
        }
        self.user.clock = ltime;
        self.user.horizon = self.user.horizon.max(ltime);
        self.stats.user_ltime = ltime;
        self.user.seen.expire(ltime, self.config.user_ltime_window, self.config.user_dedupe_capacity);
    }

    /// A piggybacked application item arrived: its time is witnessed, and
    /// it is delivered and forwarded if it is new and not too old.
    pub(crate) fn on_user_update(&mut self, now: Time, update: Update) {
        let (ltime, origin) = match &update {
            Update::User(broadcast) => (broadcast.version, &broadcast.origin),
            Update::Query(query) => (query.id, &query.origin.name),
            other => {
                debug_assert!(false, "not an application item: {other:?}");
                return;
            }
        };
        let own = *origin == self.local.name;
        if !self.witness_bounded(ltime) {
            tracing::debug!(origin = %origin, ltime, clock = self.user.clock, "user item too far ahead: dropped");
            return;
        }
        if own {
            return;
        }
        let key = match &update {
            Update::User(broadcast) => ItemKey::Broadcast(broadcast.origin.clone(), broadcast.key.clone()),
            Update::Query(query) => ItemKey::Query(query.origin.name.clone(), query.id),
            _ => return,
        };
        let (clock, capacity) = (self.user.clock, self.config.user_dedupe_capacity);
        match self.user.seen.admit(key.clone(), ltime, capacity) {
            Verdict::New => {}
            Verdict::Seen => return,
            Verdict::TooOld => {
                self.stats.user_items_too_old += 1;
                tracing::debug!(origin = %update.node_name(), ltime, clock, "user item too old: dropped");
                return;
            }
        }
        match update {
            Update::User(broadcast) => {
                self.stats.user_items_delivered += 1;
                self.outputs.push_back(Output::User(UserEvent::Broadcast {
                    origin: broadcast.origin.clone(),
                    key: broadcast.key.clone(),
                    version: broadcast.version,
                    payload: Bytes::copy_from_slice(&broadcast.payload),
                }));
                if self.leaving.is_none() {
                    self.enqueue_user(key, Update::User(broadcast), ltime);
                }
            }
            Update::Query(query) => {
                if self.leaving.is_some() {
                    return;
                }
                if query.filter.matches(&self.local.name, &self.self_entry().metadata) {
                    self.surface_query(now, &query);
                }
                self.enqueue_user(key, Update::Query(query), ltime);
            }
            _ => {}
        }
    }

    /// Hands a query addressed to this node to the application, and
    /// remembers where to answer until its timeout.
    fn surface_query(&mut self, now: Time, query: &Query) {
        let deadline = after(now, Duration::from_millis(u64::from(query.timeout_ms)));
        let answerable = &mut self.user.answerable;
        if answerable.len() >= MAX_ANSWERABLE {
            answerable.retain(|_, &mut (_, until)| until >= now);
        }
        if answerable.len() >= MAX_ANSWERABLE {
            self.stats.user_queries_refused += 1;
            tracing::debug!(origin = %query.origin, id = query.id, "too many queries awaiting answers; query ignored");
            return;
        }
        answerable.insert((query.origin.name.clone(), query.id), (query.origin.addr, deadline));
        self.stats.user_items_delivered += 1;
        self.outputs.push_back(Output::User(UserEvent::Query {
            id: query.id,
            origin: query.origin.clone(),
            name: query.name.clone(),
            payload: Bytes::copy_from_slice(&query.payload),
        }));
    }

    /// An answer to one of this node's queries: reported once per
    /// responder, before the deadline.
    pub(crate) fn accept_response(&mut self, now: Time, response: QueryResponse) {
        let Some(query) = self.user.outgoing.get_mut(&response.id) else {
            tracing::debug!(id = response.id, from = %response.from, "response to an unknown or finished query");
            return;
        };
        if now >= query.deadline
            || query.responders.len() >= MAX_RESPONDERS
            || !query.responders.insert(response.from.clone())
        {
            return;
        }
        self.outputs.push_back(Output::User(UserEvent::QueryResponse {
            id: response.id,
            from: response.from,
            payload: Bytes::from(response.payload),
        }));
    }

    /// A query's deadline timer: report who answered and who did not.
    pub(crate) fn query_deadline(&mut self, now: Time, id: QueryId) {
        let Some(query) = self.user.outgoing.get(&id) else { return };
        if now < query.deadline {
            let at = query.deadline;
            self.set_timer(at, TimerKind::QueryDeadline { id });
            return;
        }
        let query = self.user.outgoing.remove(&id).expect("just found");
        let missing = self
            .members
            .iter()
            .map(|(_, e)| e.member)
            .filter(|m| {
                matches!(m.status, MemberStatus::Alive | MemberStatus::Suspect)
                    && query.filter.matches(&m.id.name, &m.metadata)
                    && !query.responders.contains(&m.id.name)
            })
            .map(|m| m.id.name.clone())
            .collect();
        self.outputs.push_back(Output::User(UserEvent::QueryDone { id, responders: query.responders.len(), missing }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(origin: &str, key: &str) -> ItemKey {
        ItemKey::Broadcast(origin.parse().unwrap(), UserKey::new(key).unwrap())
    }

    #[test]
    fn an_item_is_new_once_and_a_newer_version_supersedes() {
        let mut seen = Seen::default();
        assert_eq!(seen.admit(key("a", "k"), 5, 16), Verdict::New);
        assert_eq!(seen.admit(key("a", "k"), 5, 16), Verdict::Seen);
        assert_eq!(seen.admit(key("a", "k"), 3, 16), Verdict::Seen, "superseded by 5");
        assert_eq!(seen.admit(key("b", "k"), 3, 16), Verdict::New, "another origin");
        assert_eq!(seen.admit(key("a", "k"), 9, 16), Verdict::New);
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn times_the_window_left_behind_are_forgotten_and_then_too_old_for_their_origin_only() {
        let mut seen = Seen::default();
        assert_eq!(seen.admit(key("a", "k"), 10, 16), Verdict::New);
        assert_eq!(seen.admit(key("a", "j"), 4, 16), Verdict::New);
        assert_eq!(seen.admit(key("b", "j"), 2, 16), Verdict::New);
        seen.expire(12, 6, 16);
        assert_eq!(seen.len(), 1, "4 and 2 <= 12 - 6: forgotten; 10 kept");
        assert_eq!(seen.admit(key("a", "j"), 4, 16), Verdict::TooOld, "forgotten, never new again");
        assert_eq!(seen.admit(key("a", "i"), 3, 16), Verdict::TooOld, "below a's forgotten time");
        assert_eq!(seen.admit(key("b", "j"), 2, 16), Verdict::TooOld);
        assert_eq!(seen.admit(key("a", "k"), 10, 16), Verdict::Seen);
        // However far the clock moved (a forged jump moves it too), another
        // origin's items are judged by what that origin was seen to send.
        seen.expire(1_000_000, 6, 16);
        assert_eq!(seen.len(), 0);
        assert_eq!(seen.admit(key("c", "k"), 7, 16), Verdict::New, "c forgot nothing here");
        assert_eq!(seen.admit(key("b", "k"), 3, 16), Verdict::New, "above b's forgotten 2");
        assert_eq!(seen.admit(key("a", "k"), 10, 16), Verdict::TooOld);
        assert_eq!(seen.admit(key("a", "k"), 11, 16), Verdict::New);
    }

    #[test]
    fn forgetting_for_capacity_refuses_what_its_origin_sent_at_or_below_the_time_forgotten() {
        let mut seen = Seen::default();
        // Times out of order, as they arrive from different origins.
        for (origin, t) in [("a", 4), ("b", 2), ("c", 7), ("d", 5)] {
            assert_eq!(seen.admit(key(origin, "k"), t, 3), Verdict::New);
        }
        // Four entries for a capacity of three: time 2 (the oldest) went.
        assert_eq!(seen.len(), 3);
        assert_eq!(seen.admit(key("b", "k"), 2, 3), Verdict::TooOld, "forgotten: not new again");
        assert_eq!(seen.admit(key("b", "j"), 1, 3), Verdict::TooOld, "below what b had forgotten");
        assert_eq!(seen.admit(key("a", "k"), 4, 3), Verdict::Seen, "still remembered");
        assert_eq!(seen.admit(key("e", "k"), 1, 3), Verdict::New, "e forgot nothing: news, and the oldest");
        // Delivered, but the oldest time: forgotten at once.
        assert_eq!(seen.admit(key("e", "k"), 1, 3), Verdict::TooOld);
        assert_eq!(seen.admit(key("a", "k"), 4, 3), Verdict::Seen);
        // A key whose older entry goes stays remembered at its newer time,
        // and its origin's floor does not rise for the stale entry.
        let mut seen = Seen::default();
        assert_eq!(seen.admit(key("a", "k"), 1, 2), Verdict::New);
        assert_eq!(seen.admit(key("a", "k"), 2, 2), Verdict::New);
        assert_eq!(seen.admit(key("b", "k"), 3, 2), Verdict::New);
        assert_eq!(seen.admit(key("a", "k"), 2, 2), Verdict::Seen);
        assert_eq!(seen.admit(key("a", "j"), 1, 2), Verdict::New, "a forgot nothing: time 1 was stale");
    }

    #[test]
    fn the_floors_of_origins_are_bounded_and_the_dropped_ones_stay_refused() {
        let capacity = 16;
        let mut seen = Seen::default();
        // 40 origins, each with one item at its own time, all forgotten.
        for i in 0..40u64 {
            assert_eq!(seen.admit(key(&format!("o{i}"), "k"), 100 + i, capacity), Verdict::New);
        }
        seen.expire(10_000, 10, capacity);
        assert_eq!(seen.len(), 0);
        assert!(seen.origins() <= capacity, "{} floors", seen.origins());
        // Every forgotten item is still refused, dropped floor or not.
        for i in 0..40u64 {
            assert_eq!(seen.admit(key(&format!("o{i}"), "k"), 100 + i, capacity), Verdict::TooOld, "o{i}");
        }
        // The origins longest forgotten share one floor; the newest keep theirs.
        assert!(seen.floor > 100 && seen.floor < 140, "{}", seen.floor);
        assert_eq!(seen.admit(key("o39", "j"), 138, capacity), Verdict::TooOld, "below o39's own floor");
        assert_eq!(seen.admit(key("o39", "j"), 140, capacity), Verdict::New);
        assert_eq!(seen.admit(key("new", "k"), seen.floor, capacity), Verdict::New, "at the shared floor");
        assert_eq!(seen.admit(key("new", "j"), seen.floor - 1, capacity), Verdict::TooOld, "below it");
    }
}
