//! What the core hands to its driver: things to do and membership events.

use std::net::SocketAddr;

use bytes::Bytes;

use crate::member::Member;
use crate::timer::Timer;
use crate::user::UserEvent;
use crate::Time;

/// A membership change, for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A member was seen for the first time (or again after removal, or
    /// after it had left).
    MemberJoined(Member),
    /// A member's metadata (or address) changed.
    MemberUpdated(Member),
    /// A member is suspected.
    MemberSuspected(Member),
    /// A member was declared dead.
    MemberFailed(Member),
    /// A member left gracefully.
    MemberLeft(Member),
    /// A suspected or dead member is alive again.
    MemberRecovered(Member),
}

impl Event {
    /// The member the event is about, as it is after the change.
    pub fn member(&self) -> &Member {
        match self {
            Event::MemberJoined(m)
            | Event::MemberUpdated(m)
            | Event::MemberSuspected(m)
            | Event::MemberFailed(m)
            | Event::MemberLeft(m)
            | Event::MemberRecovered(m) => m,
        }
    }
}

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send `bytes` (one encoded frame) as a datagram to `to`.
    Datagram {
        /// Destination.
        to: SocketAddr,
        /// One frame.
        bytes: Bytes,
    },
    /// Open a stream to `to`, write `request` (one frame, possibly far larger
    /// than a datagram), read one response frame and pass it to
    /// [`Swim::handle_push_pull_response`](crate::Swim::handle_push_pull_response),
    /// or call [`Swim::push_pull_failed`](crate::Swim::push_pull_failed) on
    /// error or timeout.
    PushPull {
        /// Destination.
        to: SocketAddr,
        /// The request frame.
        request: Bytes,
    },
    /// Call [`Swim::handle_timer`](crate::Swim::handle_timer) with `timer`
    /// once `now >= at`.
    SetTimer {
        /// When.
        at: Time,
        /// Which.
        timer: Timer,
    },
    /// A membership change.
    Event(Event),
    /// Application data: a broadcast, a query or its answers, a peer's
    /// state (see [`UserEvent`]). Not part of the membership events, and
    /// not fed to [`Signal`](crate::Signal)s.
    User(UserEvent),
}
