//! Event channels that cost nothing until someone listens.
//!
//! A tokio broadcast channel allocates all of its slots when it is made:
//! with the default capacity of 1,024 events, the three channels of a node
//! (membership, heal, application) took a few hundred KiB per node whether
//! or not anything ever subscribed, most of the memory of a process running
//! thousands of nodes. A [`LazyBroadcast`] makes its channel on the first
//! subscription; before that, sending an event does nothing, which is what
//! a broadcast channel without receivers does anyway (the event is simply
//! not wanted).

use std::sync::OnceLock;

use tokio::sync::broadcast;

/// A broadcast channel made on first subscription (see the module docs).
#[derive(Debug)]
pub(crate) struct LazyBroadcast<T> {
    sender: OnceLock<broadcast::Sender<T>>,
    capacity: usize,
}

impl<T: Clone> LazyBroadcast<T> {
    /// A channel of `capacity` events (at least 1), not allocated yet.
    pub(crate) fn new(capacity: usize) -> Self {
        Self { sender: OnceLock::new(), capacity: capacity.max(1) }
    }

    /// A receiver of every event sent from now on (makes the channel).
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<T> {
        self.sender.get_or_init(|| broadcast::channel(self.capacity).0).subscribe()
    }

    /// Sends `event` to the current subscribers; dropped if there are none.
    pub(crate) fn send(&self, event: T) {
        if let Some(sender) = self.sender.get() {
            let _ = sender.send(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_reach_subscribers_and_nothing_is_kept_before_one() {
        let channel = LazyBroadcast::new(4);
        channel.send(1);
        assert!(channel.sender.get().is_none(), "no subscriber: no channel allocated");
        let mut rx = channel.subscribe();
        channel.send(2);
        let mut late = channel.subscribe();
        channel.send(3);
        assert_eq!((rx.try_recv(), rx.try_recv()), (Ok(2), Ok(3)), "events from subscription on, in order");
        assert_eq!(late.try_recv(), Ok(3));
        assert!(rx.try_recv().is_err(), "the event sent before any subscriber is gone");
        drop(channel);
        assert_eq!(rx.try_recv(), Err(broadcast::error::TryRecvError::Closed), "closed with the channel");
    }
}
