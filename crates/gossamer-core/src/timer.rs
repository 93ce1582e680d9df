//! Timers are values the driver stores and hands back; the core recognises
//! stale, duplicated, early or out-of-order ones by what they carry (a
//! token, a sequence number or a suspicion id) and ignores them, so drivers
//! never cancel anything.

use gossamer_wire::SeqNo;

use crate::member::Slot;
use crate::Time;

/// A timer the core asked for. Opaque to drivers: store it, and hand it back
/// through [`Swim::handle_timer`](crate::Swim::handle_timer) once `now >= at`.
/// Timers that became irrelevant are ignored when they fire, so drivers
/// never cancel.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Timer(pub(crate) TimerKind);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum TimerKind {
    /// A periodic task; `token` names the one armed instance.
    Periodic { task: Periodic, token: u64 },
    /// The direct probe `seq` got no ack in time: probe indirectly.
    ProbeTimeout { seq: SeqNo },
    /// A suspicion may have expired.
    Suspicion { slot: Slot, id: u64 },
    /// An indirect probe relayed for another member got no ack: nack.
    Relay { seq: SeqNo },
    /// A query of this node reached its deadline.
    QueryDeadline { id: u64 },
}

/// The periodic tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Periodic {
    /// Finish the probe in flight and start the next (protocol period).
    Probe,
    /// Gossip fan-out.
    Gossip,
    /// Push-pull anti-entropy with a random member.
    PushPull,
    /// Reach out to dead members and seeds; forget old dead and left ones.
    Reconnect,
}

impl Periodic {
    pub(crate) const ALL: [Periodic; 4] = [Periodic::Probe, Periodic::Gossip, Periodic::PushPull, Periodic::Reconnect];

    fn index(self) -> usize {
        self as usize
    }
}

/// The one armed instance of each periodic task.
#[derive(Debug, Default)]
pub(crate) struct PeriodicTimers {
    armed: [Option<(u64, Time)>; 4],
    next_token: u64,
}

impl PeriodicTimers {
    /// Tokens start at `first` (random), so a timer left over from an
    /// earlier instance of the node is not mistaken for a current one.
    pub(crate) fn starting_at(first: u64) -> Self {
        Self { armed: [None; 4], next_token: first }
    }

    /// Arms `task` at `at`, replacing (making stale) any armed instance.
    pub(crate) fn arm(&mut self, task: Periodic, at: Time) -> Timer {
        self.next_token = self.next_token.wrapping_add(1);
        self.armed[task.index()] = Some((self.next_token, at));
        Timer(TimerKind::Periodic { task, token: self.next_token })
    }

    /// Whether the fired instance is the armed one, and when it is due.
    pub(crate) fn due(&self, task: Periodic, token: u64) -> Option<Time> {
        match self.armed[task.index()] {
            Some((armed, at)) if armed == token => Some(at),
            _ => None,
        }
    }

    /// Consumes the armed instance (so a duplicate delivery is stale).
    pub(crate) fn disarm(&mut self, task: Periodic) {
        self.armed[task.index()] = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_armed_token_is_due() {
        let mut timers = PeriodicTimers::default();
        let Timer(TimerKind::Periodic { token: first, .. }) = timers.arm(Periodic::Gossip, Time::from_secs(1)) else {
            panic!()
        };
        let Timer(TimerKind::Periodic { token: second, .. }) = timers.arm(Periodic::Gossip, Time::from_secs(2)) else {
            panic!()
        };
        assert_eq!(timers.due(Periodic::Gossip, first), None);
        assert_eq!(timers.due(Periodic::Gossip, second), Some(Time::from_secs(2)));
        assert_eq!(timers.due(Periodic::Probe, second), None);
        timers.disarm(Periodic::Gossip);
        assert_eq!(timers.due(Periodic::Gossip, second), None);
    }
}
