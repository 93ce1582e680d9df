//! # gossamer-core
//!
//! SWIM (Das, Gupta, Motivala 2002) with HashiCorp's Lifeguard extensions,
//! as a sans-I/O state machine: no sockets, no async runtime, no wall clock,
//! no global RNG. The caller feeds it datagrams, stream frames, timer
//! expiries and commands, each with an explicit `now`, and drains what it
//! wants done: datagrams to send, push-pull exchanges to start, timers to
//! set and membership events. The real runtime (`gossamer-net`) and the
//! simulator (`gossamer-sim`) drive exactly this code.
//!
//! API CONTRACT (skeleton, being implemented): the names and signatures
//! below are what drivers code against.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use gossamer_wire::{FrameCodec, Incarnation, MemberStatus, Metadata, NodeId, NodeName};
use rand_core::RngCore;

/// Time since the driver's epoch (the runtime's start, or virtual time zero
/// in the simulator). The core never reads a clock.
pub type Time = Duration;

/// A timer the core asked for. Opaque to drivers: store it, and hand it back
/// through [`Swim::handle_timer`] once `now >= at`. Timers that became
/// irrelevant are ignored when they fire, so drivers never cancel.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Timer(pub(crate) TimerKind);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum TimerKind {
    ProbePeriod,
}

/// A member as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Name and address.
    pub id: NodeId,
    /// Latest incarnation known.
    pub incarnation: Incarnation,
    /// Alive, suspect, dead or left.
    pub status: MemberStatus,
    /// Metadata at that incarnation.
    pub metadata: Metadata,
}

/// A membership change, for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A member was seen for the first time (or again after removal).
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
    /// [`Swim::handle_push_pull_response`], or call
    /// [`Swim::push_pull_failed`] on error or timeout.
    PushPull {
        /// Destination.
        to: SocketAddr,
        /// The request frame.
        request: Bytes,
    },
    /// Call [`Swim::handle_timer`] with `timer` once `now >= at`.
    SetTimer {
        /// When.
        at: Time,
        /// Which.
        timer: Timer,
    },
    /// A membership change.
    Event(Event),
}

/// Protocol settings. Defaults match memberlist's LAN profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Protocol period: one probe per period (1 s on a LAN).
    pub probe_interval: Duration,
    /// Wait for a direct ack before indirect probes (500 ms).
    pub probe_timeout: Duration,
    /// Datagram budget of a compound packet.
    pub mtu: usize,
    // ... the core implementation adds the rest (see issue #3).
}

impl Config {
    /// memberlist's DefaultLANConfig.
    pub fn lan() -> Self {
        todo!()
    }
    /// memberlist's DefaultWANConfig.
    pub fn wan() -> Self {
        todo!()
    }
    /// memberlist's DefaultLocalConfig (loopback, tests).
    pub fn local() -> Self {
        todo!()
    }
    /// Checks every value; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        todo!()
    }
}

/// A bad configuration value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config `{field}`: {reason}")]
pub struct ConfigError {
    /// The offending field.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

/// Counters for observability (a snapshot).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Members by status.
    pub alive: usize,
    /// Suspect members.
    pub suspect: usize,
    /// Dead members.
    pub dead: usize,
    /// Members that left.
    pub left: usize,
    /// Datagrams and stream frames received.
    pub messages_in: u64,
    /// Datagrams and stream frames sent.
    pub messages_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Frames refused (bad label, key, checksum, malformed...).
    pub rejected: u64,
    /// Probes sent.
    pub probes: u64,
    /// Suspicions raised by this node.
    pub suspicions: u64,
    /// Suspicions of this node it refuted.
    pub refutations: u64,
    /// Lifeguard local health multiplier (0 = healthy).
    pub health_multiplier: u32,
    // ... the core implementation may add more.
}

/// The SWIM state machine of one node.
pub struct Swim<R: RngCore> {
    _rng: R,
    _codec: FrameCodec,
    _id: NodeId,
}

impl<R: RngCore> Swim<R> {
    /// A node that knows only itself. Nothing happens until [`Swim::join`]
    /// or a packet from another node arrives; the first timer is requested
    /// immediately (drain [`Swim::poll_output`]).
    pub fn new(_id: NodeId, _config: Config, _codec: FrameCodec, _rng: R, _now: Time) -> Result<Self, ConfigError> {
        todo!()
    }

    /// This node.
    pub fn local(&self) -> &NodeId {
        todo!()
    }

    /// A datagram arrived. Bad bytes are counted and logged, never fatal.
    pub fn handle_datagram(&mut self, _now: Time, _from: SocketAddr, _bytes: &[u8]) {
        todo!()
    }

    /// A stream opened by a peer delivered its request frame: returns the
    /// response frame to write back, or `None` if the request was refused
    /// (wrong label, key, version, malformed: logged).
    pub fn handle_push_pull_request(&mut self, _now: Time, _from: SocketAddr, _frame: &[u8]) -> Option<Bytes> {
        todo!()
    }

    /// The response to an [`Output::PushPull`] this node started.
    pub fn handle_push_pull_response(&mut self, _now: Time, _from: SocketAddr, _frame: &[u8]) {
        todo!()
    }

    /// The stream for an [`Output::PushPull`] failed or timed out.
    pub fn push_pull_failed(&mut self, _now: Time, _to: SocketAddr) {
        todo!()
    }

    /// A timer requested through [`Output::SetTimer`] is due.
    pub fn handle_timer(&mut self, _now: Time, _timer: Timer) {
        todo!()
    }

    /// Join a cluster through any of `seeds` (push-pull with them). Seeds
    /// are also remembered and retried on a slow timer while this node is
    /// alone, so a split cluster finds itself again.
    pub fn join(&mut self, _now: Time, _seeds: &[SocketAddr]) {
        todo!()
    }

    /// Leave gracefully: disseminate `Leave`; the driver keeps running the
    /// node until [`Swim::has_left`] (or a deadline) before shutting down.
    pub fn leave(&mut self, _now: Time) {
        todo!()
    }

    /// True once a leave was announced and has had its chance to spread.
    pub fn has_left(&self) -> bool {
        todo!()
    }

    /// Replace this node's metadata; gossiped with a raised incarnation.
    pub fn set_metadata(&mut self, _now: Time, _metadata: Metadata) {
        todo!()
    }

    /// The next thing to do, if any. Drain after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        todo!()
    }

    /// Every member known, this node included.
    pub fn members(&self) -> impl Iterator<Item = &Member> + '_ {
        std::iter::empty()
    }

    /// Declare `name` left on an operator's word (`cluster force-leave`),
    /// for a member that is gone for good; gossiped like a leave.
    pub fn force_leave(&mut self, _now: Time, _name: &NodeName) -> bool {
        todo!()
    }

    /// Counters snapshot.
    pub fn metrics(&self) -> Metrics {
        todo!()
    }

    /// One member by name.
    pub fn member(&self, _name: &NodeName) -> Option<&Member> {
        todo!()
    }
}
