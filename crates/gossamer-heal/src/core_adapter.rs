//! The thin glue between `gossamer-core` and the heal layer (feature
//! `core-adapter`): core events and push-pull frames become [`Heal`]
//! inputs, [`HealCommand`]s become `Swim` calls. Nothing else in this crate
//! knows about the core, so the heal logic is tested on its own inputs.
//!
//! Ordering matters: feed each push-pull frame to the heal layer *before*
//! the core merges it (`observe_push_pull`, then
//! `Swim::handle_push_pull_request` / `handle_push_pull_response`), so the
//! first exchange across a healed cut shows the other side's own view.
//!
//! ## Core hooks still missing
//!
//! - `Swim::remove(now, name)` (or an event when the core's own
//!   `dead_retention` reaps a member): [`HealCommand::Remove`] cannot be
//!   applied. Until then, set the core's `dead_retention` to the heal
//!   layer's `autoclean` so both forget a member at the same time (with
//!   `Autoclean::Off` the core still reaps after its retention).
//! - The sender's name in a push-pull request (wire `PushPull` has none):
//!   a request is attributed by its source address, which works where the
//!   driver knows the peer's listening address (simulator) but not for a
//!   TCP connection from an ephemeral port. Alternatively a core event
//!   carrying each merged remote view with its sender.
//! - A non-join push-pull entry point (`Swim::push_pull(now, addr)`):
//!   `Probe` goes through `Swim::join`, which also remembers the peer as a
//!   seed.
//! - An event when the core refutes a claim about this node (telling a
//!   suspicion from a death claim): [`RefutationWatch`] polls
//!   `Metrics::refutations` instead.
//! - The core's `Death` names one confirmer; every distinct `Confirm` a
//!   node receives for the same death would make `comeback_quorum` sharper.
//!
//! A driver's loop, per node:
//!
//! ```no_run
//! # use gossamer_core::{Output, Swim, Time};
//! # use gossamer_heal::{core_adapter, Heal, HealHandler};
//! # use gossamer_wire::FrameCodec;
//! # fn drive<R: rand_core::RngCore>(swim: &mut Swim<R>, heal: &mut Heal, codec: &FrameCodec,
//! #     app: &mut impl HealHandler, now: Time) {
//! # let mut watch = core_adapter::RefutationWatch::new(swim);
//! while let Some(output) = swim.poll_output() {
//!     if let Output::Event(event) = &output {
//!         core_adapter::observe_event(heal, swim, now, event);
//!     }
//!     // ... send datagrams, run push-pulls (feed both frames to
//!     // core_adapter::observe_push_pull), set timers ...
//! }
//! watch.observe(heal, swim, now);
//! heal.tick(now); // or at heal.next_deadline()
//! for command in heal.dispatch(app) {
//!     if let Err(error) = core_adapter::apply(swim, now, &command) {
//!         tracing::warn!(%error, "heal command not applied");
//!     }
//! }
//! # }
//! ```

use std::net::SocketAddr;

use gossamer_core::{Event, Swim, Time};
use gossamer_wire::{FrameCodec, MemberStatus, Message, MetadataError, NodeId, DEFAULT_MAX_STREAM_FRAME};
use rand_core::RngCore;
use tracing::debug;

use crate::{Claim, Heal, HealCommand, CLAIM_KEY};

/// A heal command the core cannot carry out (yet).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdapterError {
    /// The core has no method for this command.
    #[error("gossamer-core has no `{0}` yet; command not applied")]
    MissingCoreHook(&'static str),
    /// The side claim does not fit in this node's metadata.
    #[error("side claim not published: {0}")]
    Metadata(MetadataError),
}

/// Feeds one core membership event to `heal`. For a failure, the core's
/// death record ([`Swim::death`]) supplies who declared it dead; a side claim
/// in the member's metadata goes to [`Heal::observe_claim`].
pub fn observe_event<R: RngCore>(heal: &mut Heal, swim: &Swim<R>, now: Time, event: &Event) {
    let member = event.member();
    let status = match event {
        Event::MemberFailed(_) => MemberStatus::Dead,
        Event::MemberLeft(_) => MemberStatus::Left,
        Event::MemberSuspected(_) => MemberStatus::Suspect,
        Event::MemberJoined(m) | Event::MemberUpdated(m) | Event::MemberRecovered(m) => m.status,
    };
    let declared_by: Vec<_> = swim.death(&member.id.name).map(|d| d.by.clone()).into_iter().collect();
    heal.observe_member(now, &member.id, status, member.incarnation, &declared_by);
    if let Some(claim) = member.metadata.get(CLAIM_KEY).and_then(Claim::decode) {
        heal.observe_claim(now, &member.id.name, &claim);
    }
}

/// Brings `heal` up to date with every member the core knows, e.g. right
/// after both are created or after a driver restart.
pub fn observe_all<R: RngCore>(heal: &mut Heal, swim: &Swim<R>, now: Time) {
    for member in swim.members() {
        let declared_by: Vec<_> = swim.death(&member.id.name).map(|d| d.by.clone()).into_iter().collect();
        heal.observe_member(now, &member.id, member.status, member.incarnation, &declared_by);
    }
}

/// Feeds a push-pull frame (a request a peer sent us, or the response to
/// ours) to [`Heal::observe_remote_view`], decoding it a second time with
/// `codec` (the core keeps the views it merges to itself). `peer` is the
/// address the exchange was with: for a response, the address we
/// connected to; for a request, the sender is found by this address among
/// the members it lists, and the frame is skipped if none matches (an
/// ephemeral source port: see the crate report, the wire format does not
/// name the sender).
pub fn observe_push_pull(heal: &mut Heal, codec: &FrameCodec, now: Time, peer: SocketAddr, frame: &[u8]) {
    let codec = match codec.clone().with_max_frame_len(DEFAULT_MAX_STREAM_FRAME) {
        Ok(codec) => codec,
        Err(error) => {
            debug!(%error, "heal: no stream codec");
            return;
        }
    };
    let state = match codec.decode(frame) {
        Ok(packet) => match packet.message {
            Message::PushPullRequest(state) | Message::PushPullResponse(state) => state,
            _ => return,
        },
        Err(error) => {
            debug!(%peer, %error, "heal: push-pull frame not decodable");
            return;
        }
    };
    let mut senders = state.members.iter().filter(|m| m.node.addr == peer).map(|m| &m.node);
    let (Some(from), None) = (senders.next(), senders.next()) else {
        debug!(%peer, "heal: push-pull sender not identified by address, view skipped");
        return;
    };
    let from: NodeId = from.clone();
    heal.observe_remote_view(now, &from, &state.members);
}

/// Watches the one thing the core reports only through a counter: that
/// this node refuted a claim about itself ([`Heal::observe_self_refuted`]).
/// Keep one per node and call [`RefutationWatch::observe`] after feeding
/// the core any input.
#[derive(Debug, Clone, Default)]
pub struct RefutationWatch {
    seen: u64,
}

impl RefutationWatch {
    /// Starts from the core's current count.
    pub fn new<R: RngCore>(swim: &Swim<R>) -> Self {
        Self { seen: swim.metrics().refutations }
    }

    /// Tells `heal` if the core refuted anything since the last call.
    pub fn observe<R: RngCore>(&mut self, heal: &mut Heal, swim: &Swim<R>, now: Time) {
        let refutations = swim.metrics().refutations;
        if refutations > self.seen {
            self.seen = refutations;
            heal.observe_self_refuted(now);
        }
    }
}

/// Applies one heal command to the core.
///
/// - `Rejoin` → [`Swim::rejoin`] with the seeds' addresses;
/// - `Probe` → [`Swim::join`] with the peer (a push-pull; the core has no
///   non-join push-pull entry point, so the peer is also remembered as a
///   seed);
/// - `Publish` → [`Swim::set_metadata`] with the side claim under
///   [`CLAIM_KEY`], the application's own keys kept;
/// - `Remove` → [`AdapterError::MissingCoreHook`]: the core cannot forget
///   a member yet.
pub fn apply<R: RngCore>(swim: &mut Swim<R>, now: Time, command: &HealCommand) -> Result<(), AdapterError> {
    match command {
        HealCommand::Rejoin { seeds } => {
            let addrs: Vec<SocketAddr> = seeds.iter().map(|s| s.addr).collect();
            swim.rejoin(now, &addrs);
            Ok(())
        }
        HealCommand::Probe { peer } => {
            swim.join(now, &[peer.addr]);
            Ok(())
        }
        HealCommand::Publish(claim) => {
            let local = swim.local().name.clone();
            let mut metadata = swim.member(&local).map(|m| m.metadata.clone()).unwrap_or_default();
            metadata.insert(CLAIM_KEY, claim.encode()).map_err(AdapterError::Metadata)?;
            swim.set_metadata(now, metadata);
            Ok(())
        }
        HealCommand::Remove(_) => Err(AdapterError::MissingCoreHook("Swim::remove(now, name)")),
    }
}
