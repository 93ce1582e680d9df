//! The dissemination queue: at most one pending update per key (per member
//! for membership updates; per (origin, key) or (origin, query) for the
//! separate queue of application items), sent
//! least-transmitted first and, among equals, most recently queued or sent
//! first. Updates sit in buckets by transmission count: intrusive doubly
//! linked lists threaded through the queue's places (newest at the head),
//! so picking what to piggyback, counting it sent (moving it to the next
//! bucket), replacing and retiring are all O(1) per update: no sort, no
//! tree and no stale entries, even with 100,000 members churning. The key
//! index is touched only when an update is queued or retired.
//!
//! Memory (issue #16, `simulations/large.toml`): a queue holds one place
//! per pending update and nothing else that grows with it (the buckets
//! are two numbers each). The earlier design kept a stack of (place, id)
//! per bucket with lazy deletion: every update passes through every
//! bucket on its way to the retransmit limit, so in a join storm each
//! bucket's stack grew to the whole queue and held stale entries, several
//! times the live updates' size.
//!
//! Each update is encoded once, when it is queued (or queued as the bytes it
//! arrived in, when forwarded unchanged), and its bytes are what
//! every send copies into the packet (an update goes out up to
//! `retransmit_mult × ceil(log_base(n + 1))` times). A place keeps its byte buffer when its update is
//! retired or sent out, so a queue that keeps churning at a steady size
//! allocates nothing.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};

use gossamer_wire::Update;

use crate::member::Slot;

/// A selected update: (transmissions so far, place, generation of the
/// place when selected).
pub(crate) type Key = (u32, u32, u32);

/// The smallest update's encoded size: once less than this is left in a
/// packet, nothing more can fit.
const MIN_UPDATE_LEN: usize = 4;

/// After this many updates that did not fit, stop looking (CPU bound).
const MAX_MISFITS: usize = 32;

/// No place: the end of a bucket's list.
const NIL: u32 = u32::MAX;

/// Longest update kept inside its place rather than in a heap block of
/// its own: what fits beside the length in the 32 bytes the heap variant
/// takes anyway.
const INLINE: usize = 30;

/// A queued update's encoding: inline when short (most membership updates
/// of a cluster with short names: no heap block, whose 24-byte handle and
/// 32-byte minimum allocation were most of a place; issue #16), else on
/// the heap. A place that went to the heap stays there, reusing its block,
/// so a queue churning at a steady size allocates nothing.
enum Bytes {
    Inline(u8, [u8; INLINE]),
    Heap(Vec<u8>),
}

impl Bytes {
    const EMPTY: Bytes = Bytes::Inline(0, [0; INLINE]);

    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Inline(len, buf) => &buf[..usize::from(*len)],
            Bytes::Heap(bytes) => bytes,
        }
    }

    fn len(&self) -> usize {
        match self {
            Bytes::Inline(len, _) => usize::from(*len),
            Bytes::Heap(bytes) => bytes.len(),
        }
    }

    fn set(&mut self, bytes: &[u8]) {
        match self {
            Bytes::Heap(heap) => {
                heap.clear();
                heap.extend_from_slice(bytes);
            }
            Bytes::Inline(len, buf) if bytes.len() <= INLINE => {
                buf[..bytes.len()].copy_from_slice(bytes);
                *len = bytes.len() as u8;
            }
            Bytes::Inline(..) => *self = Bytes::Heap(bytes.to_vec()),
        }
    }
}

struct Item<K> {
    key: K,
    transmits: u32,
    /// Sends allowed beyond the queue's limit (see
    /// [`BroadcastQueue::push_keyed_with_bonus`]); 0 for most updates.
    bonus: u16,
    /// Copies of this update heard from peers that already knew it (see
    /// [`BroadcastQueue::heard_again`]).
    heard: u16,
    /// Sends after which the update retires whatever the limit: lowered
    /// by [`BroadcastQueue::heard_again`]; [`NO_CAP`] until then.
    /// The three counters are 16 bits (saturating) so that a member
    /// queue's place is 64 bytes: a limit is at most 100 × log2(members).
    cap: u16,
    /// Sends left that may open a gossip packet ([`NO_CAP`]: no limit);
    /// at 0 the update rides only (see [`BroadcastQueue::limit_openings`]).
    opens: u16,
}

impl<K> Item<K> {
    /// A fresh item: no bonus, nothing heard back, no early cap.
    fn new(key: K, transmits: u32) -> Self {
        Self { key, transmits, bonus: 0, heard: 0, cap: NO_CAP, opens: NO_CAP }
    }

    /// The sends after which this update retires: `limit` plus its bonus,
    /// or its cap if lower.
    fn last_send(&self, limit: u32) -> u32 {
        let cap = if self.cap == NO_CAP { u32::MAX } else { u32::from(self.cap) };
        limit.saturating_add(u32::from(self.bonus)).min(cap)
    }
}

/// [`Item::cap`] when the update has none.
const NO_CAP: u16 = u16::MAX;

/// `n` in 16 bits, saturated.
fn narrow(n: u32) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// One place of the queue: the pending item, if any, its links in the list
/// of its bucket, and the encoded update (kept, with its capacity, while
/// the place is free).
struct Place<K> {
    item: Option<Item<K>>,
    /// Bumped whenever the place takes a new update, so a [`Key`] selected
    /// before names nothing after (it wraps: a key lives for one send).
    generation: u32,
    /// The next newer (`prev`) and older (`next`) place in the bucket.
    prev: u32,
    next: u32,
    encoded: Bytes,
}

impl<K> Place<K> {
    /// The item, if it is the one `generation` names at `transmits` sends.
    fn current(&self, transmits: u32, generation: u32) -> bool {
        self.generation == generation && matches!(&self.item, Some(item) if item.transmits == transmits)
    }
}

/// One bucket: the places of the updates sent `t` times, newest at `head`.
#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

impl Default for List {
    fn default() -> Self {
        Self { head: NIL, tail: NIL }
    }
}

/// Pending updates, at most one per key `K`, indexed with hasher `S`.
pub(crate) struct BroadcastQueue<K, S = RandomState> {
    items: Vec<Place<K>>,
    free: Vec<u32>,
    by_key: HashMap<K, u32, S>,
    /// `buckets[t]`: the updates sent `t` times, newest first.
    buckets: Vec<List>,
    live: usize,
    /// Pending updates that ride only (see [`BroadcastQueue::limit_openings`]).
    riders: usize,
    /// Most places the owner lets the queue hold at once (see
    /// [`BroadcastQueue::with_room`]); `usize::MAX` when unbounded.
    room: usize,
    /// Where updates are encoded before they are copied into their place.
    scratch: Vec<u8>,
}

/// `mult × ceil(log_base(n + 1))`, at least `mult`: how often one update
/// is sent ([`Config::retransmit_log_base`](crate::Config) is `base`). With
/// base 10 this is memberlist's `retransmitLimit` (`RetransmitMult ×
/// ceil(log10(NumNodes + 1))`; foca's `new_lan` derives its
/// `max_transmissions` the same way): with the LAN multiplier of 4, 8 sends
/// at 10–99 members, 12 at 100–999, 16 at 1,000–9,999. With base 2 (the
/// default) 4 × 7 = 28 at 65–127 members, 32 at 128–255. A `base` below 2
/// counts as 2. Exact integer arithmetic (powers of `base`), no float.
pub(crate) fn retransmit_limit(mult: u32, base: u32, n: usize) -> u32 {
    let base = u64::from(base.max(2));
    let n = (n as u64).saturating_add(1);
    // ceil(log_base(n)) for n >= 1: the powers of base below n.
    let mut log = 0u32;
    let mut power = 1u64;
    while power < n {
        power = power.saturating_mul(base);
        log += 1;
    }
    mult.saturating_mul(log.max(1))
}

/// Extra sends of this node's refutation of a suspicion (or death) about
/// itself beyond [`retransmit_limit`], so that it goes out at least as
/// often as base 2 gives (`mult × ceil(log2(n + 1))`: 32 sends at 128
/// members where base 10 gives 12). A refutation is rare (only a suspected
/// node sends one), and every member still holding the suspicion when its
/// timer runs out declares a live node dead: the suspected node's own voice
/// should carry furthest. Zero with base 2.
pub(crate) fn refutation_bonus(mult: u32, base: u32, n: usize) -> u32 {
    retransmit_limit(mult, 2, n).saturating_sub(retransmit_limit(mult, base, n))
}

/// The membership queue: one pending update per member, keyed by the
/// member's slot in the member table (which the caller has just looked up)
/// rather than by its name, so queueing an update costs no second hash of
/// the name. Slots are handed out by the table, not chosen by peers, so a
/// plain multiplicative hash of the number is safe.
pub(crate) type MemberQueue = BroadcastQueue<Slot, SlotHash>;

/// Builds [`SlotHasher`]s: for maps keyed by member slot.
pub(crate) type SlotHash = BuildHasherDefault<SlotHasher>;

/// Hashes a slot number: one multiplication (Fibonacci hashing).
#[derive(Default)]
pub(crate) struct SlotHasher(u64);

impl Hasher for SlotHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 ^ u64::from(n)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

impl<K, S: Default> Default for BroadcastQueue<K, S> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            free: Vec::new(),
            by_key: HashMap::default(),
            buckets: Vec::new(),
            live: 0,
            riders: 0,
            room: usize::MAX,
            scratch: Vec::new(),
        }
    }
}

impl<K, S: Default> BroadcastQueue<K, S> {
    /// An empty queue whose owner keeps it within `room` updates (evicting
    /// beyond, one push over at most): its places never grow past that,
    /// where doubling would reserve up to twice the room (10^4 simulated
    /// nodes × a bounded queue each: the slack alone was gigabytes).
    pub(crate) fn with_room(room: usize) -> Self {
        Self { room, ..Self::default() }
    }
}

impl<K: Hash + Eq + Clone, S: BuildHasher + Default> BroadcastQueue<K, S> {
    /// Queues `update` under `key`, replacing any pending update under the
    /// same key; returns true if the key was not pending (the queue grew).
    pub(crate) fn push_keyed(&mut self, key: K, update: Update) -> bool {
        self.push_keyed_with_bonus(key, update, 0)
    }

    /// As [`BroadcastQueue::push_keyed`], sent up to `bonus` times more
    /// than the limit [`BroadcastQueue::mark_sent`] is given: for the few
    /// updates whose loss costs far more than their sends, such as this
    /// node's refutation of a suspicion about itself (a refutation that
    /// misses a member holding the suspicion makes that member declare a
    /// live node dead).
    pub(crate) fn push_keyed_with_bonus(&mut self, key: K, update: Update, bonus: u32) -> bool {
        let (slot, grew) = self.place(key, 0);
        if let Some(item) = self.items[slot as usize].item.as_mut() {
            item.bonus = narrow(bonus);
        }
        self.write(slot, &update);
        grew
    }

    /// As [`BroadcastQueue::push_keyed`], for an update already encoded
    /// (exactly as [`Update::encode_into`] writes it), e.g. one received
    /// and forwarded unchanged: its bytes are copied, not re-encoded.
    pub(crate) fn push_encoded(&mut self, key: K, encoded: &[u8]) -> bool {
        self.push_encoded_as_sent(key, encoded, 0)
    }

    /// As [`BroadcastQueue::push_keyed`], counted as already sent
    /// `transmits` times: it goes after every update sent fewer times, and
    /// out sooner. For updates of lesser worth under a flood (see `rules`).
    pub(crate) fn push_keyed_as_sent(&mut self, key: K, update: Update, transmits: u32) -> bool {
        let (slot, grew) = self.place(key, transmits);
        self.write(slot, &update);
        grew
    }

    /// As [`BroadcastQueue::push_encoded`], counted as already sent
    /// `transmits` times (see [`BroadcastQueue::push_keyed_as_sent`]).
    pub(crate) fn push_encoded_as_sent(&mut self, key: K, encoded: &[u8], transmits: u32) -> bool {
        let (slot, grew) = self.place(key, transmits);
        self.items[slot as usize].encoded.set(encoded);
        grew
    }

    /// Encodes `update` into `slot`'s bytes (through `scratch`, which
    /// keeps its capacity: nothing allocated once warm).
    fn write(&mut self, slot: u32, update: &Update) {
        self.scratch.clear();
        update.encode_into(&mut self.scratch);
        self.items[slot as usize].encoded.set(&self.scratch);
    }

    /// Puts `key`'s update, sent `transmits` times, at the head of its
    /// bucket (replacing the one pending under `key`, if any); its bytes
    /// are the caller's to write. Returns the place and whether the key was
    /// not pending.
    fn place(&mut self, key: K, transmits: u32) -> (u32, bool) {
        let (slot, grew) = match self.by_key.get(&key) {
            Some(&slot) => {
                match self.items[slot as usize].item.as_ref().map(|item| (item.transmits, item.opens == 0)) {
                    Some((t, rides)) => {
                        self.unlink(t, slot);
                        self.riders -= usize::from(rides);
                    }
                    None => self.live += 1,
                }
                self.items[slot as usize].item = Some(Item::new(key, transmits));
                (slot, false)
            }
            None => {
                let name = key.clone();
                let item = Some(Item::new(key, transmits));
                let slot = match self.free.pop() {
                    Some(slot) => {
                        self.items[slot as usize].item = item;
                        slot
                    }
                    None => {
                        let len = self.items.len();
                        if len == self.items.capacity() {
                            let want = len.saturating_mul(2).max(4).min(self.room.max(len + 1));
                            self.items.reserve_exact(want - len);
                        }
                        self.items.push(Place { item, generation: 0, prev: NIL, next: NIL, encoded: Bytes::EMPTY });
                        (self.items.len() - 1) as u32
                    }
                };
                self.by_key.insert(name, slot);
                self.live += 1;
                (slot, true)
            }
        };
        let place = &mut self.items[slot as usize];
        place.generation = place.generation.wrapping_add(1);
        self.link_head(transmits, slot);
        (slot, grew)
    }

    /// Puts `slot` at the head (newest end) of bucket `t`.
    fn link_head(&mut self, t: u32, slot: u32) {
        let t = t as usize;
        if self.buckets.len() <= t {
            self.buckets.resize(t + 1, List::default());
        }
        let head = self.buckets[t].head;
        let place = &mut self.items[slot as usize];
        place.prev = NIL;
        place.next = head;
        if head == NIL {
            self.buckets[t].tail = slot;
        } else {
            self.items[head as usize].prev = slot;
        }
        self.buckets[t].head = slot;
    }

    /// Takes `slot` out of bucket `t`.
    fn unlink(&mut self, t: u32, slot: u32) {
        let (prev, next) = {
            let place = &mut self.items[slot as usize];
            let links = (place.prev, place.next);
            place.prev = NIL;
            place.next = NIL;
            links
        };
        let list = &mut self.buckets[t as usize];
        if prev == NIL {
            list.head = next;
        } else {
            self.items[prev as usize].next = next;
        }
        if next == NIL {
            list.tail = prev;
        } else {
            self.items[next as usize].prev = prev;
        }
    }

    /// Empties `slot` (its update is out of its bucket already) and frees it.
    fn vacate(&mut self, slot: u32) {
        if let Some(item) = self.items[slot as usize].item.take() {
            self.by_key.remove(&item.key);
            self.live -= 1;
            self.riders -= usize::from(item.opens == 0);
        }
        self.free.push(slot);
    }

    /// Drops the pending update under `key`, if any (e.g. the member was
    /// forgotten).
    pub(crate) fn retire(&mut self, key: &K) {
        let Some(&slot) = self.by_key.get(key) else { return };
        if let Some(t) = self.items[slot as usize].item.as_ref().map(|item| item.transmits) {
            self.unlink(t, slot);
        }
        self.vacate(slot);
    }

    /// Counts one more copy of the pending update under `key` received
    /// from a peer that already held it (nothing new to this node): once
    /// `enough` copies were heard, the update is retired before its
    /// retransmit limit (true is returned), or once sent `floor` times if
    /// it was sent fewer yet. Rumor mongering with a counter (Demers et al. 1987): once
    /// copies keep arriving, most members know, and the rest of the budget
    /// would mostly tell members what they know (issue #16: one crash cost
    /// every node 32 sends of its suspicion and 32 of its death at 128
    /// members). `enough == 0` never retires.
    pub(crate) fn heard_again(&mut self, key: &K, enough: u32, floor: u32) -> bool {
        if enough == 0 {
            return false;
        }
        let Some(&slot) = self.by_key.get(key) else { return false };
        let Some(item) = self.items[slot as usize].item.as_mut() else { return false };
        item.heard = item.heard.saturating_add(1);
        if u32::from(item.heard) < enough {
            return false;
        }
        if item.transmits < floor {
            // Heard enough, sent too little yet: done after `floor` sends.
            item.cap = narrow(floor).min(NO_CAP - 1);
            return false;
        }
        self.retire(key);
        true
    }

    /// Copies [`BroadcastQueue::heard_again`] counted for the update
    /// pending under `key`, if one is pending.
    pub(crate) fn heard(&self, key: &K) -> Option<u32> {
        let slot = *self.by_key.get(key)?;
        self.items[slot as usize].item.as_ref().map(|item| u32::from(item.heard))
    }

    /// Carries `heard` copies over to the update now pending under `key`,
    /// which replaced one that was heard that often (a Lifeguard
    /// confirmation of a suspicion already widespread: the suspicion is
    /// known, only its new accuser is news). If that is `enough`
    /// ([`BroadcastQueue::heard_again`]), it retires after `floor` sends.
    pub(crate) fn inherit_heard(&mut self, key: &K, heard: u32, enough: u32, floor: u32) {
        let Some(&slot) = self.by_key.get(key) else { return };
        let Some(item) = self.items[slot as usize].item.as_mut() else { return };
        item.heard = narrow(heard);
        if enough > 0 && heard >= enough {
            item.cap = item.cap.min(narrow(floor.max(item.transmits.saturating_add(1))).min(NO_CAP - 1));
        }
    }

    /// Pending updates.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// True when nothing is pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Lets the update pending under `key` open at most `sends` more
    /// gossip packets; after those it rides only: it goes out in packets
    /// sent anyway (probes, acks, and gossip that other updates open; see
    /// [`BroadcastQueue::has_openers`]), with its whole budget, but never
    /// opens a gossip packet by itself. For news that only refines what its
    /// receivers already hold (a Lifeguard confirmation of a suspicion
    /// already spread), where a packet of its own costs more than the few
    /// periods of delay.
    pub(crate) fn limit_openings(&mut self, key: &K, sends: u32) {
        let Some(&slot) = self.by_key.get(key) else { return };
        if let Some(item) = self.items[slot as usize].item.as_mut() {
            let was_riding = item.opens == 0;
            item.opens = item.opens.min(narrow(sends).min(NO_CAP - 1));
            if item.opens == 0 && !was_riding {
                self.riders += 1;
            }
        }
    }

    /// Sends the update pending under `key` has left that may open a
    /// gossip packet, under retransmit limit `limit`; `None` if none is
    /// pending.
    pub(crate) fn openings_left(&self, key: &K, limit: u32) -> Option<u32> {
        let slot = *self.by_key.get(key)?;
        let item = self.items[slot as usize].item.as_ref()?;
        let budget = item.last_send(limit).saturating_sub(item.transmits);
        Some(if item.opens == NO_CAP { budget } else { budget.min(u32::from(item.opens)) })
    }

    /// Whether any pending update may open a gossip packet (one that does
    /// not only ride: [`BroadcastQueue::limit_openings`]).
    pub(crate) fn has_openers(&self) -> bool {
        self.live > self.riders
    }

    /// Times the pending update under `key` was sent, if one is pending.
    pub(crate) fn transmits(&self, key: &K) -> Option<u32> {
        let slot = *self.by_key.get(key)?;
        self.items[slot as usize].item.as_ref().map(|item| item.transmits)
    }

    /// Fills `out` with the keys of the updates to send next that fit in
    /// `budget` bytes, least sent first, newest first among equals: a walk
    /// down the buckets' lists, O(1) per update selected (plus at most
    /// [`MAX_MISFITS`] that do not fit). Returns the bytes selected.
    pub(crate) fn select(&mut self, budget: usize, out: &mut Vec<Key>) -> usize {
        let total = budget;
        let mut budget = budget;
        out.clear();
        let mut misfits = 0;
        for (t, list) in self.buckets.iter().enumerate() {
            if budget < MIN_UPDATE_LEN || misfits > MAX_MISFITS {
                break;
            }
            let mut at = list.head;
            while at != NIL && budget >= MIN_UPDATE_LEN && misfits <= MAX_MISFITS {
                let place = &self.items[at as usize];
                let size = place.encoded.len();
                if size <= budget {
                    budget -= size;
                    out.push((t as u32, at, place.generation));
                } else {
                    misfits += 1;
                }
                at = place.next;
            }
        }
        total - budget
    }

    /// Drops the pending update sent most often (the oldest among those),
    /// to make room in a full queue; returns whether one was dropped.
    pub(crate) fn evict_most_sent(&mut self) -> bool {
        self.evict_most_sent_except(None)
    }

    /// As [`BroadcastQueue::evict_most_sent`], sparing the update under
    /// `keep` (e.g. this node's own alive or refutation): the next oldest
    /// goes instead. O(buckets).
    pub(crate) fn evict_most_sent_except(&mut self, keep: Option<&K>) -> bool {
        for t in (0..self.buckets.len()).rev() {
            let mut at = self.buckets[t].tail;
            while at != NIL {
                let place = &self.items[at as usize];
                let spared = keep.is_some_and(|keep| place.item.as_ref().is_some_and(|item| item.key == *keep));
                if !spared {
                    self.unlink(t as u32, at);
                    self.vacate(at);
                    return true;
                }
                at = place.prev;
            }
        }
        false
    }

    /// The encoded update under `key` (as [`Update::encode_into`] wrote
    /// it), ready for the packet.
    pub(crate) fn get(&self, key: &Key) -> Option<&[u8]> {
        let place = self.items.get(key.1 as usize)?;
        (place.generation == key.2 && place.item.is_some()).then_some(place.encoded.as_slice())
    }

    /// Counts one more transmission of each of `keys`; updates sent `limit`
    /// times (plus their bonus) are dropped.
    pub(crate) fn mark_sent(&mut self, keys: &[Key], limit: u32) {
        // In reverse, so the newest of the batch ends at the head of its new bucket.
        for &(transmits, slot, generation) in keys.iter().rev() {
            let Some(place) = self.items.get(slot as usize) else { continue };
            if !place.current(transmits, generation) {
                continue;
            }
            let sent = transmits + 1;
            let last = place.item.as_ref().map_or(limit, |item| item.last_send(limit));
            self.unlink(transmits, slot);
            if sent >= last {
                self.vacate(slot);
            } else {
                if let Some(item) = self.items[slot as usize].item.as_mut() {
                    item.transmits = sent;
                    if item.opens != NO_CAP && item.opens > 0 {
                        item.opens -= 1;
                        self.riders += usize::from(item.opens == 0);
                    }
                }
                self.link_head(sent, slot);
            }
        }
        if self.live == 0 && self.items.capacity() > 64 {
            // Everything disseminated: give the memory back.
            *self = Self::with_room(self.room);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gossamer_wire::{encoded_len, Leave, NodeName, Suspect};

    /// The tests key updates by member name, the way the queue of
    /// application items keys them by other values.
    type NameQueue = BroadcastQueue<NodeName>;

    impl NameQueue {
        fn push(&mut self, update: Update) {
            self.push_keyed(update.node_name().clone(), update);
        }
    }

    /// The update under `key`, decoded from its queued bytes.
    fn update<K: Hash + Eq + Clone>(q: &BroadcastQueue<K>, key: &Key) -> Update {
        Update::from_encoded(q.get(key).expect("pending")).expect("the queue holds whole encoded updates")
    }

    fn leave(name: &str, incarnation: u64) -> Update {
        Update::Leave(Leave { node: name.parse().unwrap(), incarnation })
    }

    #[test]
    fn limit_grows_with_log_base() {
        // Base 2, the default (the budget before issue #16).
        assert_eq!(retransmit_limit(4, 2, 0), 4);
        assert_eq!(retransmit_limit(4, 2, 1), 4);
        assert_eq!(retransmit_limit(4, 2, 3), 8);
        assert_eq!(retransmit_limit(4, 2, 4), 12);
        assert_eq!(retransmit_limit(4, 2, 128), 32);
        assert_eq!(retransmit_limit(4, 2, 100_000), 68);
        // Base 10, memberlist's retransmitMult * ceil(log10(n + 1)).
        assert_eq!(retransmit_limit(4, 10, 0), 4);
        assert_eq!(retransmit_limit(4, 10, 9), 4);
        assert_eq!(retransmit_limit(4, 10, 10), 8);
        assert_eq!(retransmit_limit(4, 10, 32), 8);
        assert_eq!(retransmit_limit(4, 10, 128), 12);
        assert_eq!(retransmit_limit(4, 10, 999), 12);
        assert_eq!(retransmit_limit(4, 10, 1_000), 16);
        assert_eq!(retransmit_limit(2, 10, 100_000), 12);
        assert_eq!(retransmit_limit(4, 0, 4), 12, "a base below 2 counts as 2");
        assert_eq!(retransmit_limit(u32::MAX, 10, usize::MAX), u32::MAX, "saturates, never panics");
        for n in 0..20_000usize {
            let expected = ((n as f64 + 1.0).log10().ceil() as u32).max(1) * 3;
            assert_eq!(retransmit_limit(3, 10, n), expected, "n = {n}");
        }
    }

    #[test]
    fn newer_update_replaces_older() {
        let mut q = NameQueue::default();
        q.push(leave("a", 1));
        q.push(Update::Suspect(Suspect { node: "a".parse().unwrap(), incarnation: 2, from: "b".parse().unwrap() }));
        assert_eq!(q.len(), 1);
        let mut keys = Vec::new();
        q.select(1000, &mut keys);
        assert_eq!(keys.len(), 1);
        assert_eq!(update(&q, &keys[0]).incarnation(), 2);
    }

    #[test]
    fn retired_update_is_never_sent_and_its_slot_reused() {
        let mut q = NameQueue::default();
        q.push(leave("a", 1));
        q.push(leave("b", 1));
        q.retire(&"a".parse().unwrap());
        q.retire(&"nobody".parse().unwrap());
        assert_eq!(q.len(), 1);
        assert_eq!(q.transmits(&"a".parse().unwrap()), None);
        let mut keys = Vec::new();
        q.select(1000, &mut keys);
        let names: Vec<_> = keys.iter().map(|k| update(&q, k).node_name().to_string()).collect();
        assert_eq!(names, ["b"]);
        q.push(leave("c", 1));
        q.select(1000, &mut keys);
        let names: Vec<_> = keys.iter().map(|k| update(&q, k).node_name().to_string()).collect();
        assert_eq!(names, ["c", "b"]);
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn an_update_queued_as_sent_goes_after_fresher_ones_and_out_sooner() {
        let mut q = NameQueue::default();
        q.push_keyed_as_sent("ghost".parse().unwrap(), leave("ghost", 1), 2);
        q.push(leave("real", 1));
        let mut keys = Vec::new();
        q.select(1000, &mut keys);
        let names: Vec<_> = keys.iter().map(|k| update(&q, k).node_name().to_string()).collect();
        assert_eq!(names, ["real", "ghost"], "the one counted as sent twice goes last");
        assert_eq!(q.transmits(&"ghost".parse().unwrap()), Some(2));
        // At a limit of 3, one more send drops it; the fresh one stays.
        q.mark_sent(&keys, 3);
        assert_eq!(q.transmits(&"ghost".parse().unwrap()), None);
        assert_eq!(q.transmits(&"real".parse().unwrap()), Some(1));
    }

    #[test]
    fn a_refutation_keeps_the_log2_budget() {
        assert_eq!(retransmit_limit(4, 10, 128) + refutation_bonus(4, 10, 128), 32);
        assert_eq!(retransmit_limit(4, 10, 1_000) + refutation_bonus(4, 10, 1_000), 40);
        assert_eq!(refutation_bonus(4, 2, 1_000), 0, "nothing extra with base 2");
        assert_eq!(refutation_bonus(4, 10, 0), 0);
        assert_eq!(refutation_bonus(u32::MAX, 10, usize::MAX), 0, "saturates, never panics");
    }

    #[test]
    fn a_bonus_extends_one_update_past_the_limit() {
        let mut q = NameQueue::default();
        q.push_keyed_with_bonus("me".parse().unwrap(), leave("me", 1), 2);
        q.push(leave("other", 1));
        let mut keys = Vec::new();
        for round in 1..=5 {
            q.select(1000, &mut keys);
            q.mark_sent(&keys, 3);
            let me = q.transmits(&"me".parse().unwrap());
            let other = q.transmits(&"other".parse().unwrap());
            match round {
                1 | 2 => assert_eq!((me, other), (Some(round), Some(round))),
                3 | 4 => assert_eq!((me, other), (Some(round), None), "the other is done at 3"),
                _ => assert_eq!(me, None, "done at 3 + 2"),
            }
        }
        assert!(q.is_empty());
        // A plain update under the same key clears the bonus.
        q.push_keyed_with_bonus("me".parse().unwrap(), leave("me", 2), 5);
        q.push(leave("me", 3));
        q.select(1000, &mut keys);
        q.mark_sent(&keys, 1);
        assert!(q.is_empty());
    }

    #[test]
    fn least_sent_then_newest_first_and_dropped_at_limit() {
        let mut q = NameQueue::default();
        q.push(leave("a", 1));
        q.push(leave("b", 1));
        let mut keys = Vec::new();
        q.select(1000, &mut keys);
        let names: Vec<_> = keys.iter().map(|k| update(&q, k).node_name().to_string()).collect();
        assert_eq!(names, ["b", "a"]);
        // Send only "b": now "a" (0 sends) comes first.
        q.mark_sent(&keys[..1], 3);
        q.select(1000, &mut keys);
        let names: Vec<_> = keys.iter().map(|k| update(&q, k).node_name().to_string()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(q.transmits(&"b".parse().unwrap()), Some(1));
        for _ in 0..3 {
            q.select(1000, &mut keys);
            q.mark_sent(&keys, 3);
        }
        assert!(q.is_empty());
        assert_eq!(q.transmits(&"a".parse().unwrap()), None);
    }

    #[test]
    fn select_respects_budget() {
        let mut q = NameQueue::default();
        for i in 0..100 {
            q.push(leave(&format!("node-{i}"), i));
        }
        let one = encoded_len(&leave("node-10", 10));
        let mut keys = Vec::new();
        q.select(one * 5 + 1, &mut keys);
        assert!(keys.len() >= 4 && keys.len() <= 5, "{}", keys.len());
    }

    #[test]
    fn an_update_limited_in_openings_rides_once_they_are_used() {
        let mut q = NameQueue::default();
        let (a, b): (NodeName, NodeName) = ("a".parse().unwrap(), "b".parse().unwrap());
        q.push(leave("a", 1));
        assert!(q.has_openers());
        assert_eq!(q.openings_left(&a, 10), Some(10), "no limit: its whole budget");
        q.limit_openings(&a, 2);
        assert_eq!(q.openings_left(&a, 10), Some(2));
        assert!(q.has_openers(), "two openings left");
        let mut keys = Vec::new();
        for left in [1, 0] {
            q.select(1000, &mut keys);
            q.mark_sent(&keys, 10);
            assert_eq!(q.openings_left(&a, 10), Some(left));
        }
        assert!(!q.has_openers(), "openings used: it rides only");
        assert_eq!(q.len(), 1, "but stays queued for its whole budget");
        q.push(leave("b", 1));
        assert!(q.has_openers(), "another update opens packets");
        q.limit_openings(&b, 0);
        assert!(!q.has_openers());
        q.push(leave("a", 2));
        assert!(q.has_openers(), "a replacement is a new update, with no limit");
        q.retire(&a);
        assert!(!q.has_openers(), "what is left rides only");
        q.retire(&b);
        assert!(q.is_empty() && !q.has_openers());
    }

    #[test]
    fn replacements_reuse_one_place() {
        let mut q = NameQueue::default();
        for i in 0..1000 {
            q.push(leave("same", i));
        }
        assert_eq!(q.len(), 1);
        assert_eq!(q.items.len(), 1, "one place, whatever the replacements");
        let mut keys = Vec::new();
        for _ in 0..10 {
            q.select(1000, &mut keys);
            assert_eq!(keys.len(), 1);
            assert_eq!(update(&q, &keys[0]).incarnation(), 999);
            q.mark_sent(&keys, 100);
        }
        assert_eq!(q.transmits(&"same".parse().unwrap()), Some(10));
        let listed: Vec<_> = q.buckets.iter().map(|l| l.head != NIL).collect();
        assert_eq!(listed.iter().filter(|&&b| b).count(), 1, "listed in one bucket only");
        assert!(listed[10]);
    }

    #[test]
    fn a_key_selected_before_a_replacement_names_nothing() {
        let mut q = NameQueue::default();
        q.push(leave("a", 1));
        let mut keys = Vec::new();
        q.select(1000, &mut keys);
        q.push(leave("a", 2));
        assert_eq!(q.get(&keys[0]), None, "the selected update was replaced");
        q.mark_sent(&keys, 3);
        assert_eq!(q.transmits(&"a".parse().unwrap()), Some(0), "the replacement is not counted sent");
    }

    #[test]
    fn a_member_queue_place_is_64_bytes_and_short_updates_stay_inline() {
        assert_eq!(std::mem::size_of::<Bytes>(), 32);
        assert_eq!(std::mem::size_of::<Place<Slot>>(), 64);
        let mut q = NameQueue::default();
        q.push(leave("n1234", 7));
        assert!(matches!(q.items[0].encoded, Bytes::Inline(..)), "a short update needs no heap block");
        q.push(leave(&"x".repeat(64), 7));
        assert!(matches!(q.items[1].encoded, Bytes::Heap(..)));
        // Once on the heap, a place stays there (its block reused).
        q.retire(&"x".repeat(64).parse().unwrap());
        q.push(leave("y", 1));
        assert!(matches!(q.items[1].encoded, Bytes::Heap(..)));
        let mut keys = Vec::new();
        q.select(1000, &mut keys);
        let names: Vec<_> = keys.iter().map(|k| update(&q, k).node_name().to_string()).collect();
        assert_eq!(names, ["y", "n1234"]);
    }

    #[test]
    fn a_queue_with_room_never_reserves_past_it() {
        let mut q = NameQueue::with_room(1001);
        for i in 0..1001 {
            q.push(leave(&format!("n{i}"), 1));
            if q.len() > 1000 {
                assert!(q.evict_most_sent());
            }
        }
        assert_eq!(q.len(), 1000);
        assert_eq!(q.items.capacity(), 1001, "not 2048");
    }

    #[test]
    fn eviction_spares_the_kept_key() {
        let mut q = NameQueue::default();
        q.push(leave("me", 1));
        q.push(leave("b", 1));
        q.push(leave("c", 1));
        let me: NodeName = "me".parse().unwrap();
        assert!(q.evict_most_sent_except(Some(&me)));
        assert_eq!((q.transmits(&me), q.transmits(&"b".parse().unwrap())), (Some(0), None), "oldest but me");
        assert!(q.evict_most_sent_except(Some(&me)));
        assert!(!q.evict_most_sent_except(Some(&me)), "only the kept one is left");
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn other_key_types_keep_one_item_per_key_and_evict_the_most_sent_oldest_first() {
        let mut q: BroadcastQueue<(u8, u8)> = BroadcastQueue::default();
        assert!(q.push_keyed((1, 1), leave("a", 1)));
        assert!(q.push_keyed((1, 2), leave("a", 2)));
        assert!(!q.push_keyed((1, 1), leave("a", 3)), "same key replaces");
        assert_eq!(q.len(), 2);
        let mut keys = Vec::new();
        let used = q.select(1000, &mut keys);
        assert_eq!(used, 2 * encoded_len(&leave("a", 3)));
        let incarnations: Vec<_> = keys.iter().map(|k| update(&q, k).incarnation()).collect();
        assert_eq!(incarnations, [3, 2], "newest first");
        q.mark_sent(&keys, 10);
        q.push_keyed((2, 0), leave("b", 1));
        // (1, 2) and (1, 1) were sent once; (1, 2) went into that bucket first (oldest).
        assert!(q.evict_most_sent());
        assert_eq!(q.transmits(&(1, 2)), None);
        assert_eq!(q.transmits(&(1, 1)), Some(1));
        assert!(q.evict_most_sent());
        assert!(q.evict_most_sent());
        assert!(q.is_empty());
        assert!(!q.evict_most_sent());
    }

    #[test]
    fn an_update_heard_back_often_enough_retires_before_its_limit() {
        let mut q = NameQueue::default();
        let a: NodeName = "a".parse().unwrap();
        q.push(leave("a", 1));
        q.push(leave("b", 1));
        let mut keys = Vec::new();
        for _ in 0..2 {
            q.select(1000, &mut keys);
            q.mark_sent(&keys, 32);
        }
        assert!(!q.heard_again(&a, 3, 2), "one copy is not enough");
        assert!(!q.heard_again(&a, 3, 2));
        assert_eq!(q.heard(&a), Some(2));
        assert!(q.heard_again(&a, 3, 2), "the third copy retires it");
        assert_eq!(q.transmits(&a), None);
        assert_eq!(q.transmits(&"b".parse().unwrap()), Some(2), "the other update is untouched");
        assert!(!q.heard_again(&a, 3, 2), "nothing pending: nothing to retire");
        // Off: never retired however often heard.
        q.push(leave("a", 2));
        for _ in 0..100 {
            assert!(!q.heard_again(&a, 0, 0));
        }
        assert_eq!(q.transmits(&a), Some(0));
    }

    #[test]
    fn an_update_heard_enough_before_its_floor_retires_at_the_floor() {
        let mut q = NameQueue::default();
        let a: NodeName = "a".parse().unwrap();
        q.push(leave("a", 1));
        for _ in 0..5 {
            assert!(!q.heard_again(&a, 2, 3), "not sent 3 times yet");
        }
        let mut keys = Vec::new();
        for sent in 1..=3 {
            q.select(1000, &mut keys);
            assert_eq!(keys.len(), 1);
            q.mark_sent(&keys, 32);
            assert_eq!(q.transmits(&a), (sent < 3).then_some(sent), "retired at the floor, not the limit of 32");
        }
        assert!(q.is_empty());
    }

    #[test]
    fn a_replacement_inherits_the_copies_heard() {
        let mut q = NameQueue::default();
        let a: NodeName = "a".parse().unwrap();
        q.push(leave("a", 1));
        let mut keys = Vec::new();
        for _ in 0..5 {
            q.select(1000, &mut keys);
            q.mark_sent(&keys, 32);
        }
        q.heard_again(&a, 3, 2);
        q.heard_again(&a, 3, 2);
        let heard = q.heard(&a).unwrap();
        q.push(leave("a", 2));
        assert_eq!(q.heard(&a), Some(0), "a plain replacement starts afresh");
        q.inherit_heard(&a, heard, 3, 2);
        assert_eq!(q.heard(&a), Some(2));
        assert!(!q.heard_again(&a, 3, 2), "the next copy makes three, but it was never sent: floor first");
        for sent in 1..=2 {
            q.select(1000, &mut keys);
            q.mark_sent(&keys, 32);
            assert_eq!(q.transmits(&a), (sent < 2).then_some(sent));
        }
        // Inheriting enough copies: the replacement is sent `floor` times.
        q.push(leave("a", 3));
        q.inherit_heard(&a, 3, 3, 2);
        for _ in 0..2 {
            assert!(!q.is_empty());
            q.select(1000, &mut keys);
            q.mark_sent(&keys, 32);
        }
        assert!(q.is_empty());
    }

    #[test]
    fn every_update_is_sent_exactly_limit_times() {
        let mut q = NameQueue::default();
        let mut sent = std::collections::HashMap::new();
        for i in 0..50 {
            q.push(leave(&format!("n{i}"), 0));
        }
        let mut keys = Vec::new();
        let mut rounds = 0;
        while !q.is_empty() {
            q.select(100, &mut keys);
            for k in &keys {
                *sent.entry(update(&q, k).node_name().clone()).or_insert(0) += 1;
            }
            q.mark_sent(&keys, 5);
            rounds += 1;
            assert!(rounds < 10_000);
        }
        assert_eq!(sent.len(), 50);
        assert!(sent.values().all(|&n| n == 5));
        assert!(q.buckets.iter().all(|l| l.head == NIL && l.tail == NIL), "every list emptied");
    }
}

#[cfg(test)]
mod slot_tests {
    use super::*;
    use gossamer_wire::Leave;

    #[test]
    fn the_member_queue_keys_by_slot() {
        let mut q = MemberQueue::default();
        let leave = |incarnation| Update::Leave(Leave { node: "a".parse().unwrap(), incarnation });
        for slot in 0..1000 {
            assert!(q.push_keyed(slot, leave(1)));
        }
        assert!(!q.push_keyed(7, leave(2)), "same slot replaces");
        assert_eq!(q.len(), 1000);
        assert_eq!(q.transmits(&7), Some(0));
        q.retire(&7);
        assert_eq!((q.len(), q.transmits(&7)), (999, None));
        let mut hashes: Vec<u64> =
            (0..1000u32).map(|slot| BuildHasherDefault::<SlotHasher>::default().hash_one(slot)).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), 1000, "distinct slots hash apart");
    }
}
