//! The event queue: a binary heap keyed by `(time, sequence number)`.
//!
//! The sequence number is what makes a run reproducible: two events due at
//! the same virtual instant come out in the order they were scheduled, never
//! in an order that depends on the heap's internals or on the payload.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use gossamer_core::Time;

/// Heap key: time in ns (high 64 bits), sequence number (the next
/// [`SEQ_BITS`]) and the event's slab index (the low [`SLOT_BITS`]), packed
/// into one `u128`: one integer compare orders by time, then by sequence
/// (unique, so the slot bits never decide), and an entry is 16 bytes, half
/// what a separate slot field cost the heap's sifting.
type Key = Reverse<u128>;

/// Bits of the slab index: at most 16.7 M events pending at once (a
/// 10,000-node run has ~30,000).
const SLOT_BITS: u32 = 24;
/// Bits of the sequence number: 1.1 × 10^12 events per run.
const SEQ_BITS: u32 = 64 - SLOT_BITS;

/// A deterministic priority queue of timed events.
///
/// The heap holds only 16-byte keys; the events themselves sit in a slab,
/// so sifting moves small entries whatever the event's size (the heap is
/// the engine's hottest structure at 100,000 nodes). Limits, checked: 2^24
/// events pending at once, 2^40 events per run.
///
/// ```
/// use std::time::Duration;
/// use gossamer_sim::EventQueue;
///
/// let mut q = EventQueue::new();
/// q.push(Duration::from_millis(5), "late");
/// q.push(Duration::from_millis(1), "first");
/// q.push(Duration::from_millis(1), "second");
/// assert_eq!(q.pop(), Some((Duration::from_millis(1), "first")));
/// assert_eq!(q.pop(), Some((Duration::from_millis(1), "second")));
/// assert_eq!(q.pop(), Some((Duration::from_millis(5), "late")));
/// assert_eq!(q.pop(), None);
/// ```
pub struct EventQueue<E> {
    heap: BinaryHeap<Key>,
    slab: Vec<Option<E>>,
    free: Vec<u32>,
    next_seq: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

fn nanos(t: Time) -> u64 {
    u64::try_from(t.as_nanos()).unwrap_or(u64::MAX)
}

impl<E> EventQueue<E> {
    /// An empty queue.
    pub fn new() -> Self {
        Self { heap: BinaryHeap::new(), slab: Vec::new(), free: Vec::new(), next_seq: 0 }
    }

    /// Schedules `event` at `at`; ties keep insertion order. Times beyond
    /// ~584 years of virtual time are clamped.
    pub fn push(&mut self, at: Time, event: E) {
        let seq = self.next_seq;
        assert!(seq < 1 << SEQ_BITS, "event queue: more than 2^{SEQ_BITS} events in one run");
        self.next_seq += 1;
        let idx = match self.free.pop() {
            Some(i) => {
                self.slab[i as usize] = Some(event);
                i
            }
            None => {
                assert!(self.slab.len() < 1 << SLOT_BITS, "event queue: more than 2^{SLOT_BITS} events pending");
                self.slab.push(Some(event));
                (self.slab.len() - 1) as u32
            }
        };
        let low = (seq << SLOT_BITS) | u64::from(idx);
        self.heap.push(Reverse(((nanos(at) as u128) << 64) | u128::from(low)));
    }

    /// The earliest event.
    pub fn pop(&mut self) -> Option<(Time, E)> {
        let Reverse(key) = self.heap.pop()?;
        let idx = (key as u64 & ((1 << SLOT_BITS) - 1)) as usize;
        let event = self.slab[idx].take().expect("a queued slot holds its event");
        self.free.push(idx as u32);
        Some((Time::from_nanos((key >> 64) as u64), event))
    }

    /// When the earliest event is due.
    pub fn peek_time(&self) -> Option<Time> {
        self.heap.peek().map(|Reverse(key)| Time::from_nanos((key >> 64) as u64))
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Events scheduled since creation (a cheap progress counter).
    pub fn scheduled(&self) -> u64 {
        self.next_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::time::Duration;

    #[test]
    fn pops_in_time_then_insertion_order() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut q = EventQueue::new();
        let mut expected = Vec::new();
        for i in 0..2_000u32 {
            let at = Duration::from_micros(rng.random_range(0..50));
            q.push(at, i);
            expected.push((at, i));
        }
        // A stable sort by time is exactly "time, then insertion order".
        expected.sort_by_key(|(at, _)| *at);
        let mut got = Vec::new();
        while let Some(e) = q.pop() {
            got.push(e);
        }
        assert_eq!(got, expected);
        assert!(q.is_empty());
        assert_eq!(q.scheduled(), 2_000);
    }

    #[test]
    fn interleaved_push_and_pop_stays_ordered() {
        let mut q = EventQueue::new();
        q.push(Duration::from_secs(2), 'b');
        q.push(Duration::from_secs(1), 'a');
        assert_eq!(q.peek_time(), Some(Duration::from_secs(1)));
        assert_eq!(q.pop().unwrap().1, 'a');
        q.push(Duration::from_secs(2), 'c');
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop().unwrap().1, 'b');
        assert_eq!(q.pop().unwrap().1, 'c');
    }
}
