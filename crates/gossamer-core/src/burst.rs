//! Join bursts: news of many members new to this node at once.
//!
//! Rumour mongering pays per member and per node: every node that hears of
//! a join sends it `retransmit_limit` times (44 at 2,000 members). That is
//! right for the usual join, one member among many, which the whole cluster
//! should know within a few gossip rounds. It is wrong for a burst: 2,000
//! nodes started at once through one seed (issue #16's mass join) made each
//! node queue ~2,000 joins at 44 sends each, and a gossip queue that never
//! empties sends its three packets every gossip interval: about 30,000
//! packets a second in one process, two cores busy for a minute after every
//! node already saw every member.
//!
//! Anti-entropy carries a burst far more cheaply: one push-pull moves a
//! whole table in one frame. So while a node is in a burst (more than
//! [`Config::join_burst`](crate::Config::join_burst), 16, members new to
//! it in this probe interval or the one before), the `Alive` of a member
//! it learns of *second hand* is applied and reported as usual but not
//! queued for gossip; the member itself still gossips its own `Alive` with
//! its whole budget, and every push-pull (a join's, the runtime's join
//! follow-ups, a periodic one) carries the rest. To close what the burst
//! left out, a node whose burst began runs at least [`BURST_SYNCS`]
//! push-pulls with random members once it has learned no new member in a
//! burst for a quiet spell (two probe intervals), one every quiet spell,
//! and goes on while the spell before
//! each brought it any news (a member new to it, or a change to one; at
//! most [`MAX_BURST_SYNCS`]): a node still missing members is likely to be
//! taught one by a random partner, and one that learns nothing from it has
//! what the others have. A newcomer needs it most: few members have heard
//! from it directly yet, so gossip reaches it less than the others (a
//! crash during `broadcast-churn.toml` reached a node that had joined 6 s
//! before it only after 40 periods). A burst that goes on after them arms
//! new ones.
//!
//! Only in a cluster of more than [`BURST_MIN_MEMBERS`] (counting the
//! view being merged, for a node that is joining): below it, gossip
//! carries even a whole cluster starting at once in a second or two, at a
//! cost nobody notices (128 nodes joining together through one seed
//! converge in ~1.5 s on 0.15 s of CPU), and left to push-pull they took
//! 4.6–6.1 s.
//!
//! Only joins count: a member already in the table (a refutation, a member
//! back after a partition, a restart under the same name) is news every
//! member needs at once and is gossiped as before, and so is every
//! suspicion, death and leave. Failure detection is untouched: a member
//! learned only by push-pull is probed like any other.

use std::time::Duration;

use crate::Time;

/// Members (not left, or in the view being merged) beyond which a node
/// can be in a join burst. With the LAN budget a whole table of 257 new
/// members is ~9,000 update sends, 20 s of one node's gossip.
pub(crate) const BURST_MIN_MEMBERS: usize = 256;

/// Push-pulls a node runs after a burst at least (see the module docs).
pub(crate) const BURST_SYNCS: u32 = 2;

/// Push-pulls a node runs after one burst at most: what it pays, one
/// exchange every two probe intervals, while exchanges keep teaching it.
pub(crate) const MAX_BURST_SYNCS: u32 = 16;

/// The join counter of one node (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct JoinBurst {
    /// When the current window began.
    window_start: Time,
    /// Joins counted in the current window.
    this_window: u32,
    /// Joins counted in the window before it (0 if that was not the one
    /// just before).
    last_window: u32,
    /// When the last join counted in a burst arrived.
    last_join: Time,
    /// Push-pulls still owed to the burst.
    syncs_left: u32,
    /// Push-pulls run for the current burst.
    syncs_run: u32,
    /// News heard (members new to this node, in a burst or not, and
    /// changes to members) since the burst's last push-pull, or since it
    /// began.
    learned: u32,
}

/// What [`JoinBurst::note_join`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Noted {
    /// No burst: gossip the join as usual.
    Single,
    /// A burst, already being followed up: leave the join to push-pull.
    Burst,
    /// A burst whose push-pulls were just armed: leave the join to
    /// push-pull, and wake the push-pull timer at the returned time.
    BurstBegan(Time),
}

impl JoinBurst {
    /// Counts one member new to this node at `now`, `window` being the
    /// probe interval and `threshold` the joins in a window beyond which
    /// it is a burst (0: never).
    pub(crate) fn note_join(&mut self, now: Time, window: Duration, threshold: u32) -> Noted {
        let elapsed = now.saturating_sub(self.window_start);
        if elapsed >= window {
            self.last_window = if elapsed < window * 2 { self.this_window } else { 0 };
            self.window_start = now;
            self.this_window = 0;
        }
        self.this_window = self.this_window.saturating_add(1);
        self.learned = self.learned.saturating_add(1);
        if threshold == 0 || (self.this_window <= threshold && self.last_window <= threshold) {
            return Noted::Single;
        }
        self.last_join = now;
        if self.syncs_left > 0 {
            return Noted::Burst;
        }
        self.syncs_left = BURST_SYNCS;
        self.syncs_run = 0;
        Noted::BurstBegan(now.saturating_add(Self::quiet(window)))
    }

    /// This node took a change to a member (a join, a status or
    /// incarnation change): news for the burst's push-pulls (see the
    /// module docs).
    #[inline]
    pub(crate) fn heard_news(&mut self) {
        self.learned = self.learned.saturating_add(1);
    }

    /// Whether push-pulls are still owed to a burst: the push-pull timer
    /// then runs every quiet spell instead of its usual interval.
    pub(crate) fn syncing(&self) -> bool {
        self.syncs_left > 0
    }

    /// The push-pull timer fired at `now` while [`JoinBurst::syncing`]:
    /// whether to push-pull now (the burst has been quiet long enough;
    /// counted as one of its push-pulls) or wait for the next firing. The
    /// last owed one is owed again while the spell before it brought this
    /// node news, up to [`MAX_BURST_SYNCS`].
    pub(crate) fn take_sync(&mut self, now: Time, window: Duration) -> bool {
        if self.syncs_left == 0 || now < self.last_join.saturating_add(Self::quiet(window)) {
            return false;
        }
        self.syncs_run += 1;
        let taught = self.learned > 0;
        self.learned = 0;
        if self.syncs_left > 1 || !taught || self.syncs_run >= MAX_BURST_SYNCS {
            self.syncs_left -= 1;
        }
        true
    }

    /// How long a burst must bring no new member before its push-pulls,
    /// and the time between them: two probe intervals.
    pub(crate) fn quiet(window: Duration) -> Duration {
        window * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);
    /// `Config::lan().join_burst`.
    const BURST_JOINS: u32 = 16;

    fn at(ms: u64) -> Time {
        Duration::from_millis(ms)
    }

    #[test]
    fn a_few_joins_are_single_however_they_come() {
        let mut b = JoinBurst::default();
        for i in 0..BURST_JOINS {
            assert_eq!(b.note_join(at(u64::from(i)), SECOND, BURST_JOINS), Noted::Single);
        }
        // The next window starts from scratch... and one more join in it
        // follows a window of exactly the threshold: still single.
        assert_eq!(b.note_join(at(1_000), SECOND, BURST_JOINS), Noted::Single);
        assert!(!b.syncing());
    }

    #[test]
    fn a_burst_begins_past_the_threshold_and_outlives_its_window_by_one() {
        let mut b = JoinBurst::default();
        for i in 0..BURST_JOINS {
            b.note_join(at(u64::from(i)), SECOND, BURST_JOINS);
        }
        assert_eq!(b.note_join(at(20), SECOND, BURST_JOINS), Noted::BurstBegan(at(2_020)));
        assert_eq!(b.note_join(at(30), SECOND, BURST_JOINS), Noted::Burst);
        assert!(b.syncing());
        // The next window: one join, but the last window was a burst.
        assert_eq!(b.note_join(at(1_100), SECOND, BURST_JOINS), Noted::Burst);
        // Two windows on: over.
        assert_eq!(b.note_join(at(3_200), SECOND, BURST_JOINS), Noted::Single);
    }

    #[test]
    fn a_threshold_of_zero_never_makes_a_burst() {
        let mut b = JoinBurst::default();
        for i in 0..1_000 {
            assert_eq!(b.note_join(at(i), SECOND, 0), Noted::Single);
        }
        assert!(!b.syncing());
    }

    #[test]
    fn syncs_wait_for_a_quiet_spell_then_run_out() {
        let mut b = JoinBurst::default();
        for i in 0..=BURST_JOINS {
            b.note_join(at(u64::from(i)), SECOND, BURST_JOINS);
        }
        let last = at(u64::from(BURST_JOINS));
        assert!(!b.take_sync(last + SECOND, SECOND), "not quiet for two intervals yet");
        let quiet = last + 2 * SECOND;
        for _ in 0..BURST_SYNCS {
            assert!(b.syncing());
            assert!(b.take_sync(quiet, SECOND));
        }
        assert!(!b.syncing());
        assert!(!b.take_sync(quiet + SECOND * 10, SECOND), "all owed push-pulls ran");
    }

    #[test]
    fn syncs_go_on_while_they_teach_up_to_the_cap() {
        let mut b = JoinBurst::default();
        for i in 0..=BURST_JOINS {
            b.note_join(at(u64::from(i)), SECOND, BURST_JOINS);
        }
        let mut now = at(u64::from(BURST_JOINS)) + 2 * SECOND;
        assert!(b.take_sync(now, SECOND), "the first");
        // Each exchange teaches one member (too few for a burst), or other
        // news: go on.
        for i in 1..MAX_BURST_SYNCS {
            assert!(b.syncing());
            if i % 2 == 0 {
                b.note_join(now + SECOND, SECOND, BURST_JOINS);
            } else {
                b.heard_news();
            }
            now += 2 * SECOND;
            assert!(b.take_sync(now, SECOND));
        }
        assert!(!b.syncing(), "capped at {MAX_BURST_SYNCS}");
        // Without news the second is the last.
        let mut b = JoinBurst::default();
        for i in 0..=BURST_JOINS {
            b.note_join(at(u64::from(i)), SECOND, BURST_JOINS);
        }
        let now = at(u64::from(BURST_JOINS)) + 2 * SECOND;
        assert!(b.take_sync(now, SECOND) && b.syncing());
        assert!(b.take_sync(now + 2 * SECOND, SECOND) && !b.syncing());
    }

    #[test]
    fn a_burst_that_goes_on_after_its_syncs_arms_new_ones() {
        let mut b = JoinBurst::default();
        for i in 0..=BURST_JOINS {
            b.note_join(at(u64::from(i)), SECOND, BURST_JOINS);
        }
        let quiet = at(u64::from(BURST_JOINS)) + 2 * SECOND;
        while b.take_sync(quiet, SECOND) {}
        for i in 0..=BURST_JOINS {
            b.note_join(quiet + at(u64::from(i)), SECOND, BURST_JOINS);
        }
        assert!(b.syncing(), "a new burst owes new push-pulls");
    }
}
