//! SWIM's probe target selection: a shuffled round-robin over the members,
//! so every member is probed once per round (bounded detection time) while
//! the order stays unpredictable. New members go to a random position of
//! the rest of the round. Also the state of the probe in flight and of the
//! indirect probes this node relays for others.
//!
//! ## Two rounds: verified and unverified members
//!
//! Members this node has heard from directly (verified, see
//! `Entry::verified`) and members only ever claimed by others each have
//! their own round. Each probe goes to the unverified round with the
//! unverified members' share of the table (as one round over all would),
//! but never twice in a row: at most every other probe goes to an
//! unverified member. Without a flood that is the usual pace for everyone
//! (newcomers are a small share); with one, a flood
//! of forged members (issue #15: a thousand made-up names for fifteen real
//! ones) then costs the real members half their probing pace, not a
//! thousandfold: a real crash is still found within two rounds of the
//! verified members, while the forged ones are still probed, suspected and
//! declared dead in turn. A member moves to the verified round as soon as
//! it answers.

use std::net::SocketAddr;

use gossamer_wire::{NodeName, SeqNo};
use rand_core::RngCore;

use crate::member::Slot;
use crate::Time;

/// One shuffled round-robin over member slots.
#[derive(Default)]
pub(crate) struct Round {
    order: Vec<Slot>,
    cursor: usize,
}

/// Round-robin probe order over member slots: the verified members' round
/// and the unverified members' round, taking turns (see the module docs).
#[derive(Default)]
pub(crate) struct ProbeOrder {
    verified: Round,
    unverified: Round,
    /// The last probe went to the unverified round.
    last_unverified: bool,
}

impl ProbeOrder {
    /// The next member to probe: `class` says of a slot whether it is
    /// probeable (`Some`) and verified (`Some(true)`). `unverified` of
    /// `total` members are unverified: the unverified round gets that share
    /// of the probes, never two in a row (module docs); a round with nobody
    /// to probe gives its turn to the other. With no unverified member the
    /// unverified round is not looked at (no draw, no rescan of the table).
    pub(crate) fn next<I: Iterator<Item = Slot> + Clone>(
        &mut self,
        rng: &mut impl RngCore,
        all: I,
        unverified: usize,
        total: usize,
        class: impl Fn(Slot) -> Option<bool>,
    ) -> Option<Slot> {
        let any_unverified = unverified > 0;
        let unverified_turn = any_unverified && !self.last_unverified && below(rng, total.max(1)) < unverified;
        self.last_unverified = false;
        if unverified_turn {
            if let Some(slot) = self.unverified.next(rng, all.clone(), |s| class(s) == Some(false)) {
                self.last_unverified = true;
                return Some(slot);
            }
        }
        if let Some(slot) = self.verified.next(rng, all.clone(), |s| class(s) == Some(true)) {
            return Some(slot);
        }
        if !unverified_turn && any_unverified {
            self.last_unverified = true;
            return self.unverified.next(rng, all, |s| class(s) == Some(false));
        }
        None
    }

    /// Room for `additional` more verified members (a bulk adoption
    /// reserves once).
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.verified.reserve(additional);
    }

    /// Appends a verified member to its round without placing it at
    /// random: only for a bulk adoption, which ends with
    /// [`ProbeOrder::shuffle_rest`].
    pub(crate) fn push_unshuffled(&mut self, slot: Slot) {
        self.verified.push_unshuffled(slot);
    }

    /// Shuffles the rest of the verified round (see [`Round::shuffle_rest`]).
    pub(crate) fn shuffle_rest(&mut self, rng: &mut impl RngCore) {
        self.verified.shuffle_rest(rng);
    }

    /// Adds a member (new, or back from the dead) at a random position of
    /// the remaining round of its kind.
    pub(crate) fn insert(&mut self, rng: &mut impl RngCore, slot: Slot, verified: bool) {
        if verified {
            self.verified.insert(rng, slot);
        } else {
            self.unverified.insert(rng, slot);
        }
    }
}

fn below(rng: &mut impl RngCore, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

impl Round {
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

    /// Room for `additional` more members.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.order.reserve_exact(additional);
    }

    /// Appends a member to the round without placing it at random: only
    /// for a bulk adoption, which ends with [`Round::shuffle_rest`].
    pub(crate) fn push_unshuffled(&mut self, slot: Slot) {
        self.order.push(slot);
    }

    /// Shuffles the rest of the round (old and new members alike), so that
    /// members added by [`Round::push_unshuffled`] end up at uniformly
    /// random positions of it, as [`Round::insert`] would place them.
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
        let mut order = Round::default();
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
        let mut order = Round::default();
        assert_eq!(order.next(&mut rng, 0..0, |_| true), None);
        order.insert(&mut rng, 42);
        assert_eq!(order.next(&mut rng, 0..0, |_| true), Some(42));
        assert_eq!(order.next(&mut rng, 0..0, |_| true), None);
    }

    #[test]
    fn unverified_members_get_every_other_probe_at_most() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut order = ProbeOrder::default();
        // Slots 0..4 verified, 4..1000 not (a flood of forged members).
        let class = |s: Slot| Some(s < 4);
        let picks: Vec<Slot> = (0..400).map(|_| order.next(&mut rng, 0..1000, 996, 1000, class).unwrap()).collect();
        let verified = picks.iter().filter(|&&s| s < 4).count();
        assert!((200..215).contains(&verified), "about half the probes go to the four verified members: {verified}");
        assert!(picks.windows(2).all(|w| w[0] < 4 || w[1] < 4), "never two unverified probes in a row");
        let per_member: Vec<usize> = (0..4).map(|v| picks.iter().filter(|&&s| s == v).count()).collect();
        assert!(per_member.iter().all(|&n| n.abs_diff(verified / 4) <= 1), "round-robin: {per_member:?}");
        // A few unverified members (newcomers): their share, as one round over all would.
        let mut order = ProbeOrder::default();
        let class = |s: Slot| Some(s >= 4);
        let picks: Vec<Slot> = (0..1000).map(|_| order.next(&mut rng, 0..40, 4, 40, class).unwrap()).collect();
        let unverified = picks.iter().filter(|&&s| s < 4).count();
        assert!((60..140).contains(&unverified), "about a tenth of the probes: {unverified}");
        // No unverified member: every probe goes to the verified round.
        let class = |s: Slot| Some(s < 4);
        let picks: Vec<Slot> = (0..8).map(|_| order.next(&mut rng, 0..4, 0, 4, class).unwrap()).collect();
        assert!(picks.iter().all(|&s| s < 4));
        // No verified member (a node that just joined): unverified ones get every turn.
        let mut order = ProbeOrder::default();
        let picks: Vec<Slot> = (0..6).map(|_| order.next(&mut rng, 4..10, 6, 7, |_| Some(false)).unwrap()).collect();
        let mut sorted = picks.clone();
        sorted.sort();
        assert_eq!(sorted, [4, 5, 6, 7, 8, 9]);
    }
}
