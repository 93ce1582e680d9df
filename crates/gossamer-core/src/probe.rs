//! SWIM's probe target selection: a shuffled round-robin over the members,
//! so every member is probed once per round (bounded detection time) while
//! the order stays unpredictable. New members go to a random position of
//! the rest of the round. Also the state of the probe in flight and of the
//! indirect probes this node relays for others.

use std::net::SocketAddr;

use gossamer_wire::{NodeName, SeqNo};
use rand_core::RngCore;

use crate::member::Slot;
use crate::Time;

/// Round-robin probe order over member slots.
#[derive(Default)]
pub(crate) struct ProbeOrder {
    order: Vec<Slot>,
    cursor: usize,
}

fn below(rng: &mut impl RngCore, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

impl ProbeOrder {
    /// The next slot for which `probeable` holds. Starts a new shuffled
    /// round from `all` when the current one is used up.
    pub(crate) fn next(
        &mut self,
        rng: &mut impl RngCore,
        all: impl Iterator<Item = Slot>,
        mut probeable: impl FnMut(Slot) -> bool,
    ) -> Option<Slot> {
        let mut all = Some(all);
        loop {
            while self.cursor < self.order.len() {
                let slot = self.order[self.cursor];
                self.cursor += 1;
                if probeable(slot) {
                    return Some(slot);
                }
            }
            // Round over: reshuffle (once per call).
            let all = all.take()?;
            self.order.clear();
            self.order.extend(all.filter(|&s| probeable(s)));
            self.cursor = 0;
            for i in (1..self.order.len()).rev() {
                let j = below(rng, i + 1);
                self.order.swap(i, j);
            }
            self.order.shrink_to(self.order.len() * 2);
        }
    }

    /// Room for `additional` more members (a bulk adoption reserves once).
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.order.reserve_exact(additional);
    }

    /// Appends a member to the round without placing it at random: only
    /// for a bulk adoption, which ends with [`ProbeOrder::shuffle_rest`].
    pub(crate) fn push_unshuffled(&mut self, slot: Slot) {
        self.order.push(slot);
    }

    /// Shuffles the rest of the round (old and new members alike), so that
    /// members added by [`ProbeOrder::push_unshuffled`] end up at uniformly
    /// random positions of it, as [`ProbeOrder::insert`] would place them.
    pub(crate) fn shuffle_rest(&mut self, rng: &mut impl RngCore) {
        let rest = &mut self.order[self.cursor..];
        for i in (1..rest.len()).rev() {
            let j = below(rng, i + 1);
            rest.swap(i, j);
        }
    }

    /// Adds a member at a random position of the remaining round.
    pub(crate) fn insert(&mut self, rng: &mut impl RngCore, slot: Slot) {
        self.order.push(slot);
        let remaining = self.order.len() - self.cursor;
        let j = self.cursor + below(rng, remaining);
        let last = self.order.len() - 1;
        self.order.swap(j, last);
    }
}

/// The probe this node has in flight (one per protocol period).
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    pub seq: SeqNo,
    pub slot: Slot,
    pub target: NodeName,
    /// When the direct probe timeout fires.
    pub timeout_at: Time,
    /// When the ping went out (for the round-trip histogram).
    pub sent_at: Time,
    pub acked: bool,
    pub indirect_sent: bool,
    pub expected_nacks: u32,
    pub nacks: u32,
}

/// An indirect probe relayed for another member.
#[derive(Debug, Clone)]
pub(crate) struct Relay {
    /// The requester's sequence number.
    pub seq: SeqNo,
    pub requester: SocketAddr,
    /// When to send the requester a `Nack`.
    pub deadline: Time,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn every_member_once_per_round() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut order = ProbeOrder::default();
        let mut seen = Vec::new();
        for _ in 0..10 {
            seen.push(order.next(&mut rng, 0..10, |s| s != 3).unwrap());
        }
        // Nine probeable slots: one full round plus the first of the next.
        let mut round: Vec<_> = seen[..9].to_vec();
        round.sort();
        assert_eq!(round, [0, 1, 2, 4, 5, 6, 7, 8, 9]);
        assert!(order.next(&mut rng, 0..0, |_| true).is_some(), "rest of the round remains");
    }

    #[test]
    fn empty_gives_none_and_insert_joins_round() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut order = ProbeOrder::default();
        assert_eq!(order.next(&mut rng, 0..0, |_| true), None);
        order.insert(&mut rng, 42);
        assert_eq!(order.next(&mut rng, 0..0, |_| true), Some(42));
        assert_eq!(order.next(&mut rng, 0..0, |_| true), None);
    }
}
