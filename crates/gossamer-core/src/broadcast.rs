//! The dissemination queue: at most one pending update per member, sent
//! least-transmitted first and, among equals, most recently queued or sent
//! first. Updates sit in buckets by transmission count (stacks, newest on
//! top) with lazy deletion, so picking what to piggyback and counting it
//! sent is O(1) per update: no sort and no tree, even with 100,000 members
//! churning. The name index is touched only when an update is queued or
//! retired.

use std::collections::HashMap;

use gossamer_wire::{encoded_len, NodeName, Update};

/// A selected update: (transmissions so far, slot, id).
pub(crate) type Key = (u32, u32, u64);

/// The smallest update's encoded size: once less than this is left in a
/// packet, nothing more can fit.
const MIN_UPDATE_LEN: usize = 4;

/// After this many updates that did not fit, stop looking (CPU bound).
const MAX_MISFITS: usize = 32;

struct Item {
    update: Update,
    size: u32,
    id: u64,
    transmits: u32,
}

/// Pending updates.
#[derive(Default)]
pub(crate) struct BroadcastQueue {
    items: Vec<Option<Item>>,
    free: Vec<u32>,
    by_node: HashMap<NodeName, u32>,
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

/// `mult × ceil(log2(n + 1))`: how often one update is sent.
pub(crate) fn retransmit_limit(mult: u32, n: usize) -> u32 {
    let n = n as u64 + 1;
    let log = 64 - (n - 1).leading_zeros(); // ceil(log2(n)) for n >= 1
    mult.saturating_mul(log.max(1))
}

impl BroadcastQueue {
    /// Queues `update`, replacing any pending update about the same member.
    pub(crate) fn push(&mut self, update: Update) {
        let id = self.next_id;
        self.next_id += 1;
        let size = encoded_len(&update) as u32;
        let item = Some(Item { update, size, id, transmits: 0 });
        let name = item.as_ref().map(|i| i.update.node_name()).expect("just built");
        let slot = match self.by_node.get(name) {
            Some(&slot) => {
                if self.items[slot as usize].is_none() {
                    self.live += 1;
                }
                self.items[slot as usize] = item;
                slot
            }
            None => {
                let name = name.clone();
                let slot = match self.free.pop() {
                    Some(slot) => {
                        self.items[slot as usize] = item;
                        slot
                    }
                    None => {
                        self.items.push(item);
                        (self.items.len() - 1) as u32
                    }
                };
                self.by_node.insert(name, slot);
                self.live += 1;
                slot
            }
        };
        self.enqueue(0, slot, id);
        if self.entries > 2 * self.live + 64 {
            self.compact();
        }
    }

    /// Drops the pending update about `name`, if any (the member was
    /// forgotten). Its bucket entries go stale and are purged lazily.
    pub(crate) fn retire(&mut self, name: &NodeName) {
        let Some(slot) = self.by_node.remove(name) else { return };
        if self.items[slot as usize].take().is_some() {
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
        matches!(&self.items[slot as usize], Some(item) if item.id == id && item.transmits == transmits)
    }

    /// Pending updates.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// True when nothing is pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Times the pending update about `name` was sent, if one is pending.
    pub(crate) fn transmits(&self, name: &NodeName) -> Option<u32> {
        let slot = *self.by_node.get(name)?;
        self.items[slot as usize].as_ref().map(|item| item.transmits)
    }

    /// Fills `out` with the keys of the updates to send next that fit in
    /// `budget` bytes, least sent first. Stale entries met on the way are
    /// dropped, so each is visited once: the cost is amortised O(1) per
    /// update selected.
    pub(crate) fn select(&mut self, mut budget: usize, out: &mut Vec<Key>) {
        out.clear();
        let mut misfits = 0;
        let mut kept = std::mem::take(&mut self.scratch);
        for t in 0..self.buckets.len() {
            if budget < MIN_UPDATE_LEN || misfits > MAX_MISFITS {
                break;
            }
            kept.clear();
            while budget >= MIN_UPDATE_LEN && misfits <= MAX_MISFITS {
                let Some((slot, id)) = self.buckets[t].pop() else { break };
                let size = match &self.items[slot as usize] {
                    Some(item) if item.id == id && item.transmits == t as u32 => item.size as usize,
                    _ => {
                        self.entries -= 1;
                        continue;
                    }
                };
                // Valid entries go back in place: mark_sent moves the sent
                // ones on (leaving these stale, to be dropped next time).
                kept.push((slot, id));
                if size <= budget {
                    budget -= size;
                    out.push((t as u32, slot, id));
                } else {
                    misfits += 1;
                }
            }
            self.buckets[t].extend(kept.drain(..).rev());
        }
        self.scratch = kept;
    }

    /// The update under `key`.
    pub(crate) fn get(&self, key: &Key) -> Option<&Update> {
        self.items.get(key.1 as usize)?.as_ref().filter(|item| item.id == key.2).map(|item| &item.update)
    }

    /// Counts one more transmission of each of `keys`; updates sent `limit`
    /// times are dropped.
    pub(crate) fn mark_sent(&mut self, keys: &[Key], limit: u32) {
        // In reverse, so the newest of the batch ends on top of its new bucket.
        for &(transmits, slot, id) in keys.iter().rev() {
            if !self.is_current(transmits, slot, id) {
                continue;
            }
            let sent = transmits + 1;
            if sent >= limit {
                if let Some(item) = self.items[slot as usize].take() {
                    self.by_node.remove(item.update.node_name());
                }
                self.free.push(slot);
                self.live -= 1;
            } else {
                if let Some(item) = self.items[slot as usize].as_mut() {
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
            bucket.retain(|&(slot, id)| {
                matches!(&items[slot as usize], Some(item) if item.id == id && item.transmits == t as u32)
            });
            entries += bucket.len();
        }
        self.entries = entries;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gossamer_wire::{Leave, Suspect};

    fn leave(name: &str, incarnation: u64) -> Update {
        Update::Leave(Leave { node: name.parse().unwrap(), incarnation })
    }

    #[test]
    fn limit_grows_with_log2() {
        assert_eq!(retransmit_limit(4, 0), 4);
        assert_eq!(retransmit_limit(4, 1), 4);
        assert_eq!(retransmit_limit(4, 3), 8);
        assert_eq!(retransmit_limit(4, 4), 12);
        assert_eq!(retransmit_limit(4, 100_000), 68);
    }

    #[test]
    fn newer_update_replaces_older() {
        let mut q = BroadcastQueue::default();
        q.push(leave("a", 1));
        q.push(Update::Suspect(Suspect { node: "a".parse().unwrap(), incarnation: 2, from: "b".parse().unwrap() }));
        assert_eq!(q.len(), 1);
        let mut keys = Vec::new();
        q.select(1000, &mut keys);
        assert_eq!(keys.len(), 1);
        assert_eq!(q.get(&keys[0]).unwrap().incarnation(), 2);
    }

    #[test]
    fn retired_update_is_never_sent_and_its_slot_reused() {
        let mut q = BroadcastQueue::default();
        q.push(leave("a", 1));
        q.push(leave("b", 1));
        q.retire(&"a".parse().unwrap());
        q.retire(&"nobody".parse().unwrap());
        assert_eq!(q.len(), 1);
        assert_eq!(q.transmits(&"a".parse().unwrap()), None);
        let mut keys = Vec::new();
        q.select(1000, &mut keys);
        let names: Vec<_> = keys.iter().map(|k| q.get(k).unwrap().node_name().to_string()).collect();
        assert_eq!(names, ["b"]);
        q.push(leave("c", 1));
        q.select(1000, &mut keys);
        let names: Vec<_> = keys.iter().map(|k| q.get(k).unwrap().node_name().to_string()).collect();
        assert_eq!(names, ["c", "b"]);
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn least_sent_then_newest_first_and_dropped_at_limit() {
        let mut q = BroadcastQueue::default();
        q.push(leave("a", 1));
        q.push(leave("b", 1));
        let mut keys = Vec::new();
        q.select(1000, &mut keys);
        let names: Vec<_> = keys.iter().map(|k| q.get(k).unwrap().node_name().to_string()).collect();
        assert_eq!(names, ["b", "a"]);
        // Send only "b": now "a" (0 sends) comes first.
        q.mark_sent(&keys[..1], 3);
        q.select(1000, &mut keys);
        let names: Vec<_> = keys.iter().map(|k| q.get(k).unwrap().node_name().to_string()).collect();
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
        let mut q = BroadcastQueue::default();
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
        let mut q = BroadcastQueue::default();
        for i in 0..1000 {
            q.push(leave("same", i));
        }
        assert_eq!(q.len(), 1);
        assert!(q.entries <= 2 * q.live + 65, "{}", q.entries);
        let mut keys = Vec::new();
        for _ in 0..10 {
            q.select(1000, &mut keys);
            assert_eq!(keys.len(), 1);
            assert_eq!(q.get(&keys[0]).unwrap().incarnation(), 999);
            q.mark_sent(&keys, 100);
        }
        assert_eq!(q.transmits(&"same".parse().unwrap()), Some(10));
        assert!(q.entries <= 2 * q.live + 65);
    }

    #[test]
    fn every_update_is_sent_exactly_limit_times() {
        let mut q = BroadcastQueue::default();
        let mut sent = std::collections::HashMap::new();
        for i in 0..50 {
            q.push(leave(&format!("n{i}"), 0));
        }
        let mut keys = Vec::new();
        let mut rounds = 0;
        while !q.is_empty() {
            q.select(100, &mut keys);
            for k in &keys {
                *sent.entry(q.get(k).unwrap().node_name().clone()).or_insert(0) += 1;
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
