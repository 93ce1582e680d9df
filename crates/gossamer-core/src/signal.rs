//! Signals: an opt-in feed, beside [`Output`](crate::Output), for layers
//! above SWIM that need more of the protocol than membership events (the
//! heal layer, `gossamer-heal`): who else confirmed a death, which
//! push-pull views disagreed with ours and who sent them, when this node
//! refuted a claim about itself, when a member was forgotten.
//!
//! Why a second queue rather than new [`Event`] variants: drivers match
//! `Event` and `Output` exhaustively, and most drivers have no use for
//! these. The feed is off by default ([`Swim::set_signals`]) so it costs
//! nothing then, and [`Signal`] is `#[non_exhaustive]` so it can grow.
//!
//! The feed is complete and ordered on its own: every membership event is
//! also copied into it ([`Signal::Member`]), so a consumer reading only
//! [`Swim::poll_signal`] sees a remote view *before* the events its merge
//! caused, and a death before its confirmers.
//!
//! [`Swim::set_signals`]: crate::Swim::set_signals
//! [`Swim::poll_signal`]: crate::Swim::poll_signal

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use gossamer_wire::{Incarnation, MemberState, NodeId, NodeName};

use crate::event::Event;
use crate::member::Member;

/// What a refuted claim about this node said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefutedClaim {
    /// This node was suspected.
    Suspect,
    /// This node was declared dead (a `Confirm`), or a push-pull view held
    /// it dead.
    Dead,
    /// This node was said to have left.
    Left,
    /// This node was gossiped alive at a newer incarnation or with other
    /// data (an earlier run of the node under the same name).
    Alive,
}

/// Two nodes claim one name at different addresses (memberlist's
/// `NotifyConflict`). The member table never moves a live member to
/// another address: the node that holds the name (alive or suspect) keeps
/// it, a claim at another address is not applied whatever its
/// incarnation, and a newcomer that finds its name taken yields (see
/// [`Swim::name_conflict`](crate::Swim::name_conflict)). Reported so that an
/// operator learns who and where, instead of two nodes fighting silently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameConflict {
    /// The contested name.
    pub name: NodeName,
    /// The address this node holds for the name (its own address when the
    /// name is this node's).
    pub existing: SocketAddr,
    /// The other address claimed for it.
    pub claimed: SocketAddr,
    /// The incarnation the refused claim carried.
    pub incarnation: Incarnation,
    /// True when this node gave the name up: it was joining (the claim came
    /// in the answer to its own push-pull while it knew no other live
    /// member), so the name belongs to an established member and the
    /// driver must stop this node. False when this node only observed the
    /// conflict (about another member, or about itself while established:
    /// it keeps the name and refutes).
    pub yielded: bool,
}

/// Something a layer above SWIM may want to know; see the module docs.
/// Drained with [`Swim::poll_signal`](crate::Swim::poll_signal) once
/// enabled with [`Swim::set_signals`](crate::Swim::set_signals).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signal {
    /// A copy of a membership event also delivered as
    /// [`Output::Event`](crate::Output::Event), in order with the other
    /// signals.
    Member(Event),
    /// `by` confirmed the death of `member` (dead at `incarnation`). Sent
    /// for every distinct confirmer this node hears of, up to
    /// [`Death::MAX_CONFIRMERS`](crate::Death::MAX_CONFIRMERS) per death, the
    /// first right after the `MemberFailed`: one confirmer hints at a crash
    /// seen by one prober, many at a cut seen by a whole side.
    DeathConfirmed {
        /// The dead member.
        member: NodeId,
        /// The incarnation declared dead.
        incarnation: Incarnation,
        /// Who confirmed it (this node's name when its own suspicion
        /// expired).
        by: NodeName,
    },
    /// A push-pull view, received in either direction, that disagrees with
    /// this node's view on who is dead, sent *before* the view is merged.
    /// "Disagrees": each view holds dead a member the other holds alive or
    /// suspect, or the two views (of two live members or more each) share
    /// no live member. Views that agree, the steady state, are not copied.
    RemoteView {
        /// The sender: by convention the first entry of every push-pull
        /// member list is the sender's own state (the wire format has no
        /// sender field, and a TCP source port says nothing).
        from: NodeId,
        /// The view as received, the sender first.
        members: Arc<[MemberState]>,
    },
    /// This node refuted a claim about itself, raising its incarnation to
    /// `incarnation`.
    Refuted {
        /// This node's incarnation after the refutation.
        incarnation: Incarnation,
        /// What the claim said.
        claim: RefutedClaim,
    },
    /// A dead or left member was forgotten: its retention
    /// ([`Config::dead_retention`](crate::Config::dead_retention),
    /// [`Config::left_retention`](crate::Config::left_retention)) ran out, or
    /// [`Swim::remove`](crate::Swim::remove) was called. If it comes back,
    /// it joins as a new member ([`Event::MemberJoined`]).
    MemberRemoved(Member),
    /// A claim for a name at another address was refused (see
    /// [`NameConflict`]); counted in
    /// [`Metrics::name_conflicts`](crate::Metrics::name_conflicts).
    NameConflict(NameConflict),
    /// This node's incarnation reached
    /// [`MAX_INCARNATION`](crate::MAX_INCARNATION) and a claim at that
    /// incarnation cannot be refuted: the cluster may hold this node
    /// suspect or dead until it is forgotten. Reported once. Only a long
    /// stream of forged claims gets here (each raises the incarnation by at
    /// most [`Config::incarnation_window`](crate::Config::incarnation_window)
    /// `× 2 + 1`): the operator should key the cluster, then restart this
    /// node under a new name, or [`Swim::remove`](crate::Swim::remove) it
    /// everywhere once it is dead before restarting it under this one.
    IncarnationExhausted {
        /// This node's incarnation (`MAX_INCARNATION`).
        incarnation: Incarnation,
    },
}

/// The signal queue; records nothing while disabled.
#[derive(Debug, Default)]
pub(crate) struct Signals {
    enabled: bool,
    queue: VecDeque<Signal>,
}

impl Signals {
    pub(crate) fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
        if !on {
            self.queue = VecDeque::new();
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Records the signal `make` builds, if enabled (nothing is built
    /// otherwise).
    pub(crate) fn push_with(&mut self, make: impl FnOnce() -> Signal) {
        if self.enabled {
            self.queue.push_back(make());
        }
    }

    pub(crate) fn pop(&mut self) -> Option<Signal> {
        let signal = self.queue.pop_front();
        if signal.is_none() && self.queue.capacity() > 256 {
            // Drained after a burst (a large push-pull): give the memory back.
            self.queue.shrink_to(32);
        }
        signal
    }
}
