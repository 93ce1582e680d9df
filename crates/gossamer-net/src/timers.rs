//! The core's timers, kept in a min-heap so the driver sleeps exactly until
//! the earliest one. The core never cancels timers (stale ones are ignored
//! when they fire), so a heap with no removal is all that is needed.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use gossamer_core::{Time, Timer};

/// One pending timer. Ordered by `(at, seq)` only, reversed so that
/// [`BinaryHeap`] (a max-heap) pops the earliest first; `seq` keeps timers
/// due at the same instant in the order they were set.
#[derive(Debug)]
struct Entry {
    at: Time,
    seq: u64,
    timer: Timer,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Pending timers, earliest first.
#[derive(Debug, Default)]
pub struct TimerQueue {
    heap: BinaryHeap<Entry>,
    next_seq: u64,
}

impl TimerQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Remembers `timer`, due at `at`.
    pub fn push(&mut self, at: Time, timer: Timer) {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.heap.push(Entry { at, seq, timer });
    }

    /// When the earliest timer is due.
    pub fn next_deadline(&self) -> Option<Time> {
        self.heap.peek().map(|e| e.at)
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub fn pop_due(&mut self, now: Time) -> Option<Timer> {
        if self.heap.peek()?.at <= now {
            self.heap.pop().map(|e| e.timer)
        } else {
            None
        }
    }

    /// Timers pending.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn timer() -> Timer {
        // The core hands out timers; drivers only store them. Build one the
        // way a driver gets it: from a fresh core's first output.
        use gossamer_core::{Config, Output, Swim};
        use gossamer_wire::{ClusterLabel, FrameCodec, NodeId};
        use rand_core::SeedableRng;
        let id = NodeId::new("t@h".parse().unwrap(), "127.0.0.1:1".parse().unwrap());
        let codec = FrameCodec::new(ClusterLabel::default());
        let rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut swim = Swim::new(id, Config::local(), codec, rng, Duration::ZERO).unwrap();
        std::iter::from_fn(|| swim.poll_output())
            .find_map(|o| match o {
                Output::SetTimer { timer, .. } => Some(timer),
                _ => None,
            })
            .expect("a new core asks for a timer")
    }

    #[test]
    fn pops_earliest_first_and_only_when_due() {
        let t = timer();
        let mut q = TimerQueue::new();
        assert_eq!(q.next_deadline(), None);
        q.push(Duration::from_millis(30), t.clone());
        q.push(Duration::from_millis(10), t.clone());
        q.push(Duration::from_millis(20), t.clone());
        q.push(Duration::from_millis(10), t.clone());
        assert_eq!(q.len(), 4);
        assert_eq!(q.next_deadline(), Some(Duration::from_millis(10)));
        assert!(q.pop_due(Duration::from_millis(9)).is_none());
        assert!(q.pop_due(Duration::from_millis(10)).is_some());
        assert!(q.pop_due(Duration::from_millis(10)).is_some());
        assert!(q.pop_due(Duration::from_millis(10)).is_none());
        assert_eq!(q.next_deadline(), Some(Duration::from_millis(20)));
        assert!(q.pop_due(Duration::from_secs(1)).is_some());
        assert!(q.pop_due(Duration::from_secs(1)).is_some());
        assert!(q.is_empty());
    }
}
