//! Hold-down with exponential backoff, so a flapping link cannot cause a
//! heal storm: after each heal new detections are ignored for a while, and
//! the while doubles (by default) for every other heal in the recent past.

use std::collections::VecDeque;
use std::time::Duration;

use crate::config::HealConfig;
use crate::Time;

/// Remembers recent heals and when detections may be acted on again.
#[derive(Debug, Clone, Default)]
pub(crate) struct HoldDown {
    recent: VecDeque<Time>,
    until: Option<Time>,
}

impl HoldDown {
    /// True while detections must be ignored.
    pub(crate) fn active(&self, now: Time) -> bool {
        self.until.is_some_and(|until| now < until)
    }

    /// When the current hold-down ends, if one is running.
    pub(crate) fn until(&self) -> Option<Time> {
        self.until
    }

    /// Records a heal at `now`; returns the hold-down it starts:
    /// `hold_down * backoff_factor^k`, capped at `max_hold_down`, with `k`
    /// the number of earlier heals within `flap_window`.
    pub(crate) fn record_heal(&mut self, now: Time, config: &HealConfig) -> Duration {
        while self.recent.front().is_some_and(|&t| now.saturating_sub(t) > config.flap_window) {
            self.recent.pop_front();
        }
        let earlier = u32::try_from(self.recent.len()).unwrap_or(u32::MAX);
        let factor = config.backoff_factor.checked_pow(earlier).unwrap_or(u32::MAX);
        let hold = config.hold_down.checked_mul(factor).unwrap_or(Duration::MAX).min(config.max_hold_down);
        self.recent.push_back(now);
        self.until = Some(now.saturating_add(hold));
        hold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn backoff_doubles_within_the_window_and_caps() {
        let config = HealConfig {
            hold_down: s(30),
            backoff_factor: 2,
            max_hold_down: s(200),
            flap_window: s(600),
            ..HealConfig::default()
        };
        let mut hold = HoldDown::default();
        assert!(!hold.active(s(0)));
        assert_eq!(hold.record_heal(s(0), &config), s(30));
        assert!(hold.active(s(29)));
        assert!(!hold.active(s(30)));
        assert_eq!(hold.record_heal(s(40), &config), s(60));
        assert_eq!(hold.record_heal(s(110), &config), s(120));
        assert_eq!(hold.record_heal(s(240), &config), s(200));
        assert_eq!(hold.until(), Some(s(440)));
        // Long after the window, heals are no longer flapping.
        assert_eq!(hold.record_heal(s(5000), &config), s(30));
    }

    #[test]
    fn factor_one_means_a_fixed_hold_down() {
        let config = HealConfig { backoff_factor: 1, ..HealConfig::default() };
        let mut hold = HoldDown::default();
        for i in 0..40 {
            assert_eq!(hold.record_heal(s(i * 31), &config), config.hold_down);
        }
    }
}
