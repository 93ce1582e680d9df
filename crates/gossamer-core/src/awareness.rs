//! Lifeguard's Local Health Multiplier: a node that misses acks and nacks,
//! or has to refute suspicions of itself, is probably the slow one, so it
//! stretches its own probe interval and timeout instead of accusing others.

use std::time::Duration;

/// Local health score in `0..max` (0 = healthy).
#[derive(Debug, Clone)]
pub(crate) struct Awareness {
    max: u32,
    score: u32,
}

impl Awareness {
    pub(crate) fn new(max: u32) -> Self {
        Self { max: max.max(1), score: 0 }
    }

    /// Adds `delta` (negative for good news), clamped to `0..max`.
    pub(crate) fn apply(&mut self, delta: i64) {
        let next = (i64::from(self.score) + delta).clamp(0, i64::from(self.max - 1));
        self.score = next as u32;
    }

    /// The current score.
    pub(crate) fn score(&self) -> u32 {
        self.score
    }

    /// `timeout × (score + 1)`.
    pub(crate) fn scale(&self, timeout: Duration) -> Duration {
        timeout.saturating_mul(self.score + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps_and_scales() {
        let mut a = Awareness::new(8);
        a.apply(-1);
        assert_eq!(a.score(), 0);
        a.apply(3);
        assert_eq!(a.scale(Duration::from_millis(500)), Duration::from_secs(2));
        a.apply(100);
        assert_eq!(a.score(), 7);
        a.apply(-2);
        assert_eq!(a.score(), 5);
    }
}
