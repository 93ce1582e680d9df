//! What every live node believes about every other, kept as counters so the
//! questions the report asks ("does anyone still think 17 is alive?", "is
//! there a single cluster?") are answered in O(1) after every change.
//!
//! Memory stays near O(members known): a bitset of known members per
//! observer plus a sparse map of the (few) members it does not see alive.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use gossamer_wire::MemberStatus;

/// A tiny multiplicative hasher for `u32` keys: deterministic (no random
/// state) and much cheaper than SipHash on the hot path.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u32(&mut self, i: u32) {
        self.0 = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type IdMap<V> = HashMap<u32, V, BuildHasherDefault<IdHasher>>;

pub(crate) fn status_index(s: MemberStatus) -> usize {
    match s {
        MemberStatus::Alive => 0,
        MemberStatus::Suspect => 1,
        MemberStatus::Dead => 2,
        MemberStatus::Left => 3,
    }
}

#[derive(Default)]
struct Observer {
    known: Vec<u64>,
    not_alive: IdMap<MemberStatus>,
}

impl Observer {
    fn knows(&self, s: u32) -> bool {
        self.known.get((s / 64) as usize).is_some_and(|w| w & (1 << (s % 64)) != 0)
    }

    fn get(&self, s: u32) -> Option<MemberStatus> {
        if !self.knows(s) {
            return None;
        }
        Some(self.not_alive.get(&s).copied().unwrap_or(MemberStatus::Alive))
    }

    fn known_iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.known.iter().enumerate().flat_map(|(wi, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros();
                w &= w - 1;
                Some(wi as u32 * 64 + b)
            })
        })
    }
}

/// The views of all live nodes.
#[derive(Default)]
pub(crate) struct Views {
    observers: Vec<Observer>,
    counts: Vec<[u32; 4]>,
    live: Vec<bool>,
    live_count: u64,
    alive_views_of_live: u64,
    totals: [u64; 4],
}

impl Views {
    pub(crate) fn grow(&mut self, n: usize) {
        if self.observers.len() < n {
            self.observers.resize_with(n, Observer::default);
            self.counts.resize(n, [0; 4]);
            self.live.resize(n, false);
        }
    }

    /// What `o` believes about `s` (`None`: never heard of it).
    #[cfg(test)]
    pub(crate) fn get(&self, o: u32, s: u32) -> Option<MemberStatus> {
        self.observers.get(o as usize).and_then(|ob| ob.get(s))
    }

    /// Records that `o` now sees `s` as `status`; returns the old view.
    pub(crate) fn set(&mut self, o: u32, s: u32, status: MemberStatus) -> Option<MemberStatus> {
        self.grow(o.max(s) as usize + 1);
        let old = self.observers[o as usize].get(s);
        if old == Some(status) {
            return old;
        }
        if let Some(old) = old {
            self.uncount(s, old);
        }
        self.count(s, status);
        let ob = &mut self.observers[o as usize];
        let word = (s / 64) as usize;
        if ob.known.len() <= word {
            ob.known.resize(word + 1, 0);
        }
        ob.known[word] |= 1 << (s % 64);
        if status == MemberStatus::Alive {
            ob.not_alive.remove(&s);
        } else {
            ob.not_alive.insert(s, status);
        }
        old
    }

    fn count(&mut self, s: u32, status: MemberStatus) {
        let k = status_index(status);
        self.counts[s as usize][k] += 1;
        self.totals[k] += 1;
        if k == 0 && self.live[s as usize] {
            self.alive_views_of_live += 1;
        }
    }

    fn uncount(&mut self, s: u32, status: MemberStatus) {
        let k = status_index(status);
        self.counts[s as usize][k] -= 1;
        self.totals[k] -= 1;
        if k == 0 && self.live[s as usize] {
            self.alive_views_of_live -= 1;
        }
    }

    /// Every node of `nodes` sees every other one alive: the views of a
    /// converged start, set in one pass instead of one [`Views::set`] per
    /// pair (10^8 of them at 10,000 nodes). The observers must know
    /// nothing yet.
    pub(crate) fn all_alive(&mut self, nodes: &[u32]) {
        let Some(&max) = nodes.iter().max() else { return };
        self.grow(max as usize + 1);
        let words = max as usize / 64 + 1;
        let mut known = vec![0u64; words];
        for &s in nodes {
            known[(s / 64) as usize] |= 1 << (s % 64);
        }
        let others = nodes.len() as u32 - 1;
        for &o in nodes {
            let ob = &mut self.observers[o as usize];
            debug_assert!(ob.known_iter().next().is_none(), "observer {o} already has views");
            ob.known.clone_from(&known);
            ob.known[(o / 64) as usize] &= !(1 << (o % 64));
            ob.not_alive.clear();
        }
        for &s in nodes {
            self.counts[s as usize][0] += others;
            if self.live[s as usize] {
                self.alive_views_of_live += u64::from(others);
            }
        }
        self.totals[0] += nodes.len() as u64 * u64::from(others);
    }

    /// `o` forgot `s` (autoclean); returns what it believed.
    pub(crate) fn forget(&mut self, o: u32, s: u32) -> Option<MemberStatus> {
        let old = self.observers.get(o as usize)?.get(s)?;
        self.uncount(s, old);
        let ob = &mut self.observers[o as usize];
        ob.known[(s / 64) as usize] &= !(1 << (s % 64));
        ob.not_alive.remove(&s);
        Some(old)
    }

    /// Forgets everything `o` believed (it crashed, left or restarted).
    pub(crate) fn clear_observer(&mut self, o: u32) {
        let Some(ob) = self.observers.get_mut(o as usize) else { return };
        let ob = std::mem::take(ob);
        for s in ob.known_iter() {
            let status = ob.not_alive.get(&s).copied().unwrap_or(MemberStatus::Alive);
            self.uncount(s, status);
        }
    }

    /// Marks `s` as a running process (or not).
    pub(crate) fn set_live(&mut self, s: u32, live: bool) {
        self.grow(s as usize + 1);
        if self.live[s as usize] == live {
            return;
        }
        self.live[s as usize] = live;
        let alive_views = self.counts[s as usize][0] as u64;
        if live {
            self.live_count += 1;
            self.alive_views_of_live += alive_views;
        } else {
            self.live_count -= 1;
            self.alive_views_of_live -= alive_views;
        }
    }

    pub(crate) fn is_live(&self, s: u32) -> bool {
        self.live.get(s as usize).copied().unwrap_or(false)
    }

    pub(crate) fn live_count(&self) -> u64 {
        self.live_count
    }

    /// Every live node sees every other live node alive.
    pub(crate) fn converged(&self) -> bool {
        let l = self.live_count;
        self.alive_views_of_live == l * l.saturating_sub(1)
    }

    /// Live observers that still believe `s` is alive or merely suspect.
    pub(crate) fn believers(&self, s: u32) -> u32 {
        self.counts.get(s as usize).map_or(0, |c| c[0] + c[1])
    }

    /// Live observers that still see `s` alive (not even suspect).
    pub(crate) fn alive_views(&self, s: u32) -> u32 {
        self.counts.get(s as usize).map_or(0, |c| c[0])
    }

    /// Views by status (alive, suspect, dead, left), summed over live observers.
    pub(crate) fn totals(&self) -> [u64; 4] {
        self.totals
    }

    /// Members `o` knows, with what it believes.
    pub(crate) fn known_by(&self, o: u32) -> impl Iterator<Item = (u32, MemberStatus)> + '_ {
        self.observers
            .get(o as usize)
            .into_iter()
            .flat_map(|ob| ob.known_iter().map(move |s| (s, ob.get(s).unwrap_or(MemberStatus::Alive))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MemberStatus::*;

    #[test]
    fn counters_follow_views() {
        let mut v = Views::default();
        for i in 0..3 {
            v.set_live(i, true);
        }
        assert!(!v.converged());
        for o in 0..3 {
            for s in 0..3 {
                if o != s {
                    v.set(o, s, Alive);
                }
            }
        }
        assert!(v.converged());
        assert_eq!(v.set(0, 2, Suspect), Some(Alive));
        assert!(!v.converged());
        assert_eq!(v.believers(2), 2);
        v.set(0, 2, Dead);
        v.set(1, 2, Dead);
        assert_eq!(v.believers(2), 0);
        assert_eq!(v.totals(), [4, 0, 2, 0]);
        // 2 crashes: it is no longer live, its own views vanish.
        v.set_live(2, false);
        v.clear_observer(2);
        assert_eq!(v.totals(), [2, 0, 2, 0]);
        assert!(v.converged(), "0 and 1 see each other alive");
        assert_eq!(v.known_by(0).collect::<Vec<_>>(), vec![(1, Alive), (2, Dead)]);
        assert_eq!(v.get(1, 2), Some(Dead));
        assert_eq!(v.get(2, 0), None);
        // 0 forgets the dead 2 (autoclean); forgetting twice is a no-op.
        assert_eq!(v.forget(0, 2), Some(Dead));
        assert_eq!(v.forget(0, 2), None);
        assert_eq!(v.totals(), [2, 0, 1, 0]);
        assert_eq!(v.known_by(0).collect::<Vec<_>>(), vec![(1, Alive)]);
    }

    #[test]
    fn all_alive_matches_pairwise_sets() {
        let nodes = [0, 2, 3, 64, 130];
        let (mut bulk, mut pairwise) = (Views::default(), Views::default());
        for v in [&mut bulk, &mut pairwise] {
            for &i in &nodes {
                v.set_live(i, true);
            }
        }
        bulk.all_alive(&nodes);
        for &o in &nodes {
            for &s in &nodes {
                if o != s {
                    pairwise.set(o, s, Alive);
                }
            }
        }
        assert!(bulk.converged() && pairwise.converged());
        assert_eq!(bulk.totals(), pairwise.totals());
        for &o in &nodes {
            assert_eq!(bulk.known_by(o).collect::<Vec<_>>(), pairwise.known_by(o).collect::<Vec<_>>());
            assert_eq!(bulk.believers(o), 4);
        }
        assert_eq!(bulk.get(1, 0), None, "nodes outside the set know nothing");
        // Crashing one keeps the counters consistent with the pairwise ones.
        for v in [&mut bulk, &mut pairwise] {
            v.set_live(64, false);
            v.clear_observer(64);
            v.set(0, 64, Dead);
        }
        assert_eq!(bulk.totals(), pairwise.totals());
        assert_eq!(bulk.converged(), pairwise.converged());
    }

    #[test]
    fn bitset_spans_words() {
        let mut v = Views::default();
        v.set(0, 130, Left);
        v.set(0, 3, Alive);
        assert_eq!(v.known_by(0).collect::<Vec<_>>(), vec![(3, Alive), (130, Left)]);
    }
}
