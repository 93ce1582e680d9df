//! Lifeguard's dynamic suspicion timeout: a fresh suspicion waits the
//! maximum timeout; each independent confirmation (another member also
//! suspecting) shrinks it on a log scale toward the minimum, so a member
//! that is really gone is declared dead quickly while a lone, possibly
//! unhealthy accuser gives the suspect plenty of time to refute.

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
    /// Distinct accusers, the first included.
    confirmations: Vec<NodeName>,
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
        Self { id, incarnation, start, deadline: start.saturating_add(timeout), min, max, k, confirmations: vec![from] }
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
        let timeout = suspicion_timeout(n, self.k, self.min, self.max);
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
