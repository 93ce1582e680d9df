//! Lifeguard's dynamic suspicion timeout: a fresh suspicion waits the
//! maximum timeout; each independent confirmation (another member also
//! suspecting) shrinks it on a log scale toward the minimum, so a member
//! that is really gone is declared dead quickly while a lone, possibly
//! unhealthy accuser gives the suspect plenty of time to refute.
//!
//! ## Letting the evidence set the wait (issue #19)
//!
//! Only distinct, verified members count as confirmations (a name this
//! node has heard from directly: see `Entry::verified`), so a peer forging
//! `Suspect`s under made-up names cannot shorten anything; and whatever
//! the confirmations, a suspicion never ends before its floor: the
//! configured minimum, raised to [`Config::suspicion_refute_mult`] times
//! the slowest refutation this node has recently seen ([`RefuteTimes`]).
//! A cluster whose members are slow to answer back (loss, stalls) thus
//! waits longer on its own, and a forger can only make that wait longer,
//! never shorter.
//!
//! [`Config::suspicion_refute_mult`]: crate::Config::suspicion_refute_mult

use std::time::Duration;

use gossamer_wire::NodeName;

use crate::Time;

/// Confirmations beyond this many are not tracked (memory bound).
const MAX_CONFIRMATIONS: usize = 16;

/// memberlist's `suspicionTimeout`: `mult × max(1, log10(max(1, n))) × interval`.
pub(crate) fn min_suspicion_timeout(mult: u32, n: usize, interval: Duration) -> Duration {
    let scale = (n.max(1) as f64).log10().max(1.0);
    interval.mul_f64(f64::from(mult) * scale)
}

/// memberlist's `remainingSuspicionTime`: the total timeout once `n` of the
/// `k` expected confirmations arrived.
pub(crate) fn suspicion_timeout(n: u32, k: u32, min: Duration, max: Duration) -> Duration {
    if k == 0 {
        return min;
    }
    let frac = (f64::from(n) + 1.0).ln() / (f64::from(k) + 1.0).ln();
    let raw = max.as_secs_f64() - frac * (max.as_secs_f64() - min.as_secs_f64());
    let timeout = Duration::from_millis((1000.0 * raw).floor().max(0.0) as u64);
    timeout.max(min)
}

/// Refutation times remembered (the slowest of them sets the floor).
const REFUTE_SAMPLES: usize = 16;

/// How long suspicions this node held took to be refuted, recently: from
/// when it started suspecting a member to the `Alive` that cleared it. The
/// slowest of the last [`REFUTE_SAMPLES`] refutations within `window` is
/// the estimate; with none, there is none (the configured minimum alone
/// holds). Bounded memory, no allocation after the first samples.
#[derive(Debug, Clone, Default)]
pub(crate) struct RefuteTimes {
    /// (when observed, how long it took), oldest first.
    samples: Vec<(Time, Duration)>,
}

impl RefuteTimes {
    /// Records a refutation observed at `now` that took `took`; at most
    /// `cap` is kept of any one (a suspicion held for hours says nothing of
    /// how fast a member answers).
    pub(crate) fn record(&mut self, now: Time, took: Duration, cap: Duration) {
        if self.samples.len() >= REFUTE_SAMPLES {
            self.samples.remove(0);
        }
        self.samples.push((now, took.min(cap)));
    }

    /// The slowest refutation seen within `window` before `now`.
    pub(crate) fn slowest(&self, now: Time, window: Duration) -> Option<Duration> {
        self.samples.iter().filter(|(at, _)| now.saturating_sub(*at) <= window).map(|&(_, took)| took).max()
    }
}

/// One running suspicion of a member.
#[derive(Debug, Clone)]
pub(crate) struct Suspicion {
    /// Unique id, carried by its timers so stale ones are recognised.
    pub id: u64,
    /// The suspected incarnation.
    pub incarnation: u64,
    /// When it started.
    pub start: Time,
    /// When it expires (moves earlier with confirmations).
    pub deadline: Time,
    min: Duration,
    max: Duration,
    k: u32,
    /// No deadline earlier than `start + floor`, whatever the
    /// confirmations (at least `min`).
    floor: Duration,
    /// Distinct accusers, the first included.
    confirmations: Vec<NodeName>,
    /// This node's own probe of the suspect failed since the suspicion
    /// began (first-hand evidence; see `failure::suspicion_timer`).
    pub first_hand: bool,
    /// The suspect answered this node's own probe since the suspicion
    /// began: it is alive, whatever the gossip says.
    pub answered: bool,
    /// Times the deadline was put off to probe the suspect first.
    pub put_off: u32,
}

impl Suspicion {
    pub(crate) fn new(
        id: u64,
        incarnation: u64,
        from: NodeName,
        start: Time,
        k: u32,
        min: Duration,
        max: Duration,
    ) -> Self {
        let timeout = if k == 0 { min } else { max };
        Self {
            id,
            incarnation,
            start,
            deadline: start.saturating_add(timeout),
            min,
            max,
            k,
            floor: min,
            confirmations: vec![from],
            first_hand: false,
            answered: false,
            put_off: 0,
        }
    }

    /// Raises the floor to `floor` (never lowers it below `min`, never
    /// above `max`); the deadline moves later if it was earlier.
    pub(crate) fn with_floor(mut self, floor: Duration) -> Self {
        self.floor = floor.clamp(self.min, self.max.max(self.min));
        self.deadline = self.deadline.max(self.start.saturating_add(self.floor));
        self
    }

    /// Records an independent accuser. Returns true if it was new (and the
    /// deadline possibly moved earlier).
    pub(crate) fn confirm(&mut self, from: &NodeName) -> bool {
        let extra = (self.confirmations.len() - 1) as u32;
        if extra >= self.k || self.confirmations.len() >= MAX_CONFIRMATIONS || self.confirmations.contains(from) {
            return false;
        }
        self.confirmations.push(from.clone());
        let n = extra + 1;
        let timeout = suspicion_timeout(n, self.k, self.min, self.max).max(self.floor);
        self.deadline = self.start.saturating_add(timeout);
        true
    }

    /// Independent confirmations beyond the first accuser.
    #[cfg(test)]
    pub(crate) fn confirmations(&self) -> usize {
        self.confirmations.len() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_timeout_scales_with_log10() {
        let s = Duration::from_secs(1);
        assert_eq!(min_suspicion_timeout(4, 1, s), Duration::from_secs(4));
        assert_eq!(min_suspicion_timeout(4, 10, s), Duration::from_secs(4));
        assert_eq!(min_suspicion_timeout(4, 1000, s), Duration::from_secs(12));
    }

    #[test]
    fn timeout_matches_memberlist_table() {
        // memberlist suspicion_test.go TestSuspicion_remainingSuspicionTime (plus elapsed).
        let min = Duration::from_secs(2);
        let max = Duration::from_secs(30);
        assert_eq!(suspicion_timeout(0, 3, min, max), Duration::from_secs(30));
        assert_eq!(suspicion_timeout(1, 3, min, max), Duration::from_millis(16_000));
        assert_eq!(suspicion_timeout(2, 3, min, max), Duration::from_millis(7_810));
        assert_eq!(suspicion_timeout(3, 3, min, max), Duration::from_secs(2));
        assert_eq!(suspicion_timeout(4, 3, min, max), Duration::from_secs(2));
        assert_eq!(suspicion_timeout(5, 0, min, max), min);
    }

    #[test]
    fn confirmations_shrink_deadline_once_per_accuser() {
        let a: NodeName = "a".parse().unwrap();
        let b: NodeName = "b".parse().unwrap();
        let c: NodeName = "c".parse().unwrap();
        let min = Duration::from_secs(2);
        let max = Duration::from_secs(30);
        let mut s = Suspicion::new(1, 0, a.clone(), Duration::from_secs(10), 3, min, max);
        assert_eq!(s.deadline, Duration::from_secs(40));
        assert!(!s.confirm(&a));
        assert!(s.confirm(&b));
        assert!(!s.confirm(&b));
        assert_eq!(s.deadline, Duration::from_secs(26));
        assert!(s.confirm(&c));
        assert_eq!(s.confirmations(), 2);
        assert!(s.deadline < Duration::from_secs(26));
        let k0 = Suspicion::new(2, 0, a, Duration::ZERO, 0, min, max);
        assert_eq!(k0.deadline, min);
    }
}
