//! The dissemination queue: at most one pending update per key (per member
//! for membership updates; per (origin, key) or (origin, query) for the
//! separate queue of application items), sent
//! least-transmitted first and, among equals, most recently queued or sent
//! first. Updates sit in buckets by transmission count (stacks, newest on
//! top) with lazy deletion, so picking what to piggyback and counting it
//! sent is O(1) per update: no sort and no tree, even with 100,000 members
//! churning. The key index is touched only when an update is queued or
//! retired.
//!
//! Each update is encoded once, when it is queued (or queued as the bytes it
//! arrived in, when forwarded unchanged), and its bytes are what
//! every send copies into the packet (an update goes out up to
//! `4 × ceil(log2(n + 1))` times on a LAN). A slot keeps its byte buffer when its update is
//! retired or sent out, so a queue that keeps churning at a steady size
//! allocates nothing.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};

use gossamer_wire::Update;

use crate::member::Slot;

/// A selected update: (transmissions so far, slot, id).
pub(crate) type Key = (u32, u32, u64);

/// The smallest update's encoded size: once less than this is left in a
/// packet, nothing more can fit.
const MIN_UPDATE_LEN: usize = 4;

/// After this many updates that did not fit, stop looking (CPU bound).
const MAX_MISFITS: usize = 32;

struct Item<K> {
    key: K,
    id: u64,
    transmits: u32,
    /// Sends allowed beyond the queue's limit (see
    /// [`BroadcastQueue::push_keyed_with_bonus`]); 0 for most updates.
    bonus: u32,
    /// Copies of this update heard from peers that already knew it (see
    /// [`BroadcastQueue::heard_again`]).
    heard: u32,
    /// Sends after which the update retires whatever the limit: lowered
    /// by [`BroadcastQueue::heard_again`]; `u32::MAX` until then.
    cap: u32,
}

impl<K> Item<K> {
    /// A fresh item: no bonus, nothing heard back, no early cap.
    fn new(key: K, id: u64, transmits: u32) -> Self {
        Self { key, id, transmits, bonus: 0, heard: 0, cap: u32::MAX }
    }
}

/// One place of the queue: the pending item, if any, and the encoded
/// update (kept, with its capacity, while the place is free).
struct Place<K> {
    item: Option<Item<K>>,
    encoded: Vec<u8>,
}

impl<K> Place<K> {
    /// The item, if it is the one `id` names at `transmits` sends.
    fn current(&self, transmits: u32, id: u64) -> bool {
        matches!(&self.item, Some(item) if item.id == id && item.transmits == transmits)
    }
}

/// Pending updates, at most one per key `K`, indexed with hasher `S`.
pub(crate) struct BroadcastQueue<K, S = RandomState> {
    items: Vec<Place<K>>,
    free: Vec<u32>,
    by_key: HashMap<K, u32, S>,
    /// `buckets[t]`: (slot, id) of updates sent `t` times, newest last.
    /// Entries whose item moved on (sent again, replaced, retired) are
    /// stale and skipped; they are purged from the top of a bucket as
    /// they surface and by compaction when they outnumber live ones.
    buckets: Vec<Vec<(u32, u64)>>,
    entries: usize,
    live: usize,
    next_id: u64,
    scratch: Vec<(u32, u64)>,
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
            entries: 0,
            live: 0,
            next_id: 0,
            scratch: Vec::new(),
        }
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
        let (slot, id, grew) = self.place(key, 0);
        if let Some(item) = self.items[slot as usize].item.as_mut() {
            item.bonus = bonus;
        }
        let encoded = &mut self.items[slot as usize].encoded;
        encoded.clear();
        update.encode_into(encoded);
        self.queued(slot, id, 0);
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
        let (slot, id, grew) = self.place(key, transmits);
        let encoded = &mut self.items[slot as usize].encoded;
        encoded.clear();
        update.encode_into(encoded);
        self.queued(slot, id, transmits);
        grew
    }

    /// As [`BroadcastQueue::push_encoded`], counted as already sent
    /// `transmits` times (see [`BroadcastQueue::push_keyed_as_sent`]).
    pub(crate) fn push_encoded_as_sent(&mut self, key: K, encoded: &[u8], transmits: u32) -> bool {
        let (slot, id, grew) = self.place(key, transmits);
        let place = &mut self.items[slot as usize].encoded;
        place.clear();
        place.extend_from_slice(encoded);
        self.queued(slot, id, transmits);
        grew
    }

    /// Puts `key`'s place in the queue; its bytes are the caller's to
    /// write, then [`BroadcastQueue::queued`] lists it. Returns the place,
    /// the update's id and whether the key was not pending.
    fn place(&mut self, key: K, transmits: u32) -> (u32, u64, bool) {
        let id = self.next_id;
        self.next_id += 1;
        let mut grew = false;
        let slot = match self.by_key.get(&key) {
            Some(&slot) => {
                if self.items[slot as usize].item.is_none() {
                    self.live += 1;
                }
                self.items[slot as usize].item = Some(Item::new(key, id, transmits));
                slot
            }
            None => {
                grew = true;
                let name = key.clone();
                let item = Some(Item::new(key, id, transmits));
                let slot = match self.free.pop() {
                    Some(slot) => {
                        self.items[slot as usize].item = item;
                        slot
                    }
                    None => {
                        self.items.push(Place { item, encoded: Vec::new() });
                        (self.items.len() - 1) as u32
                    }
                };
                self.by_key.insert(name, slot);
                self.live += 1;
                slot
            }
        };
        (slot, id, grew)
    }

    /// Lists the update `id` just written in `slot` as sent `transmits` times.
    fn queued(&mut self, slot: u32, id: u64, transmits: u32) {
        self.enqueue(transmits, slot, id);
        if self.entries > 2 * self.live + 64 {
            self.compact();
        }
    }

    /// Drops the pending update under `key`, if any (e.g. the member was
    /// forgotten). Its bucket entries go stale and are purged lazily.
    pub(crate) fn retire(&mut self, key: &K) {
        let Some(slot) = self.by_key.remove(key) else { return };
        if self.items[slot as usize].item.take().is_some() {
            self.live -= 1;
        }
        self.free.push(slot);
    }

    fn enqueue(&mut self, transmits: u32, slot: u32, id: u64) {
        let t = transmits as usize;
        if self.buckets.len() <= t {
            self.buckets.resize_with(t + 1, Vec::new);
        }
        self.buckets[t].push((slot, id));
        self.entries += 1;
    }

    fn is_current(&self, transmits: u32, slot: u32, id: u64) -> bool {
        self.items[slot as usize].current(transmits, id)
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
        if item.heard < enough {
            return false;
        }
        if item.transmits < floor {
            // Heard enough, sent too little yet: done after `floor` sends.
            item.cap = floor;
            return false;
        }
        self.retire(key);
        true
    }

    /// Copies [`BroadcastQueue::heard_again`] counted for the update
    /// pending under `key`, if one is pending.
    pub(crate) fn heard(&self, key: &K) -> Option<u32> {
        let slot = *self.by_key.get(key)?;
        self.items[slot as usize].item.as_ref().map(|item| item.heard)
    }

    /// Carries `heard` copies over to the update now pending under `key`,
    /// which replaced one that was heard that often (a Lifeguard
    /// confirmation of a suspicion already widespread: the suspicion is
    /// known, only its new accuser is news). If that is `enough`
    /// ([`BroadcastQueue::heard_again`]), it retires after `floor` sends.
    pub(crate) fn inherit_heard(&mut self, key: &K, heard: u32, enough: u32, floor: u32) {
        let Some(&slot) = self.by_key.get(key) else { return };
        let Some(item) = self.items[slot as usize].item.as_mut() else { return };
        item.heard = heard;
        if enough > 0 && heard >= enough {
            item.cap = item.cap.min(floor.max(item.transmits.saturating_add(1)));
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

    /// Times the pending update under `key` was sent, if one is pending.
    pub(crate) fn transmits(&self, key: &K) -> Option<u32> {
        let slot = *self.by_key.get(key)?;
        self.items[slot as usize].item.as_ref().map(|item| item.transmits)
    }

    /// Fills `out` with the keys of the updates to send next that fit in
    /// `budget` bytes, least sent first. Stale entries met on the way are
    /// dropped, so each is visited once: the cost is amortised O(1) per
    /// update selected. Returns the bytes selected.
    pub(crate) fn select(&mut self, budget: usize, out: &mut Vec<Key>) -> usize {
        let total = budget;
        let mut budget = budget;
        out.clear();
        let mut misfits = 0;
        let mut dropped = 0;
        let mut kept = std::mem::take(&mut self.scratch);
        let items = &self.items;
        for (t, bucket) in self.buckets.iter_mut().enumerate() {
            if budget < MIN_UPDATE_LEN || misfits > MAX_MISFITS {
                break;
            }
            if bucket.is_empty() {
                continue;
            }
            let t = t as u32;
            kept.clear();
            while budget >= MIN_UPDATE_LEN && misfits <= MAX_MISFITS {
                let Some((slot, id)) = bucket.pop() else { break };
                let place = &items[slot as usize];
                if !place.current(t, id) {
                    dropped += 1;
                    continue;
                }
                let size = place.encoded.len();
                // Valid entries go back in place: mark_sent moves the sent
                // ones on (leaving these stale, to be dropped next time).
                kept.push((slot, id));
                if size <= budget {
                    budget -= size;
                    out.push((t, slot, id));
                } else {
                    misfits += 1;
                }
            }
            bucket.extend(kept.iter().rev());
        }
        self.entries -= dropped;
        self.scratch = kept;
        total - budget
    }

    /// Drops the pending update sent most often (the oldest among those),
    /// to make room in a full queue; returns whether one was dropped.
    pub(crate) fn evict_most_sent(&mut self) -> bool {
        let victim =
            self.buckets.iter().enumerate().rev().find_map(|(t, bucket)| {
                bucket.iter().find(|&&(slot, id)| self.is_current(t as u32, slot, id)).copied()
            });
        let Some((slot, _)) = victim else { return false };
        let key = self.items[slot as usize].item.as_ref().map(|item| item.key.clone()).expect("current entry");
        self.retire(&key);
        true
    }

    /// The encoded update under `key` (as [`Update::encode_into`] wrote
    /// it), ready for the packet.
    pub(crate) fn get(&self, key: &Key) -> Option<&[u8]> {
        let place = self.items.get(key.1 as usize)?;
        place.item.as_ref().filter(|item| item.id == key.2).map(|_| place.encoded.as_slice())
    }

    /// Counts one more transmission of each of `keys`; updates sent `limit`
    /// times (plus their bonus) are dropped.
    pub(crate) fn mark_sent(&mut self, keys: &[Key], limit: u32) {
        // In reverse, so the newest of the batch ends on top of its new bucket.
        for &(transmits, slot, id) in keys.iter().rev() {
            if !self.is_current(transmits, slot, id) {
                continue;
            }
            let sent = transmits + 1;
            let (bonus, cap) =
                self.items[slot as usize].item.as_ref().map_or((0, u32::MAX), |item| (item.bonus, item.cap));
            if sent >= limit.saturating_add(bonus).min(cap) {
                if let Some(item) = self.items[slot as usize].item.take() {
                    self.by_key.remove(&item.key);
                }
                self.free.push(slot);
                self.live -= 1;
            } else {
                if let Some(item) = self.items[slot as usize].item.as_mut() {
                    item.transmits = sent;
                }
                self.enqueue(sent, slot, id);
            }
        }
        if self.live == 0 {
            if self.items.capacity() > 64 || self.entries > 0 {
                // Everything disseminated: give the memory back.
                *self = Self { next_id: self.next_id, ..Self::default() };
            }
        } else if self.entries > 2 * self.live + 64 {
            self.compact();
        }
    }

    /// Drops stale entries (amortised: runs when they outnumber live ones).
    fn compact(&mut self) {
        let items = &self.items;
        let mut entries = 0;
        for (t, bucket) in self.buckets.iter_mut().enumerate() {
            bucket.retain(|&(slot, id)| items[slot as usize].current(t as u32, id));
            entries += bucket.len();
        }
        self.entries = entries;
        // Every update passes through every bucket on its way to the
        // retransmission limit, so in a join storm (a node queueing an
        // update per member it learns) each of the ~50 buckets grew to hold
        // the whole queue at some point, and kept that capacity: at 800
        // simulated nodes joining at once, 153 of 258 MB of heap at the
        // peak (heaptrack), quadratic in the nodes. When the buckets' room
        // is far beyond what they hold, give it back. A steady queue stays
        // under the threshold (no allocation per message,
        // `tests/alloc_steady_state.rs`).
        let room: usize = self.buckets.iter().map(Vec::capacity).sum();
        if room > 8 * entries + 4096 {
            for bucket in &mut self.buckets {
                if bucket.capacity() > 2 * bucket.len() + 16 {
                    bucket.shrink_to(2 * bucket.len() + 16);
                }
            }
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
    fn stale_entries_are_compacted() {
        let mut q = NameQueue::default();
        for i in 0..1000 {
            q.push(leave("same", i));
        }
        assert_eq!(q.len(), 1);
        assert!(q.entries <= 2 * q.live + 65, "{}", q.entries);
        let mut keys = Vec::new();
        for _ in 0..10 {
            q.select(1000, &mut keys);
            assert_eq!(keys.len(), 1);
            assert_eq!(update(&q, &keys[0]).incarnation(), 999);
            q.mark_sent(&keys, 100);
        }
        assert_eq!(q.transmits(&"same".parse().unwrap()), Some(10));
        assert!(q.entries <= 2 * q.live + 65);
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
        assert_eq!(q.entries, 0, "memory given back");
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
