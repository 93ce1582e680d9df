//! The thin glue between `gossamer-core` and the heal layer: the core's
//! [`Signal`] feed becomes [`Heal`] inputs, [`HealCommand`]s become `Swim`
//! calls, and [`HealConfig::autoclean`] becomes the core's
//! `dead_retention`. Nothing else in this crate knows about the core, so the
//! heal logic is tested on its own inputs.
//!
//! ## Wiring, per node
//!
//! 1. Build the core's [`Config`] through [`core_config`] (autoclean), create
//!    the `Swim` and the [`Heal`] with the same `now`, and call
//!    [`Swim::set_signals`]`(true)` right away (or [`observe_all`] if the
//!    core already ran).
//! 2. After *every* input to the core (datagram, timer, push-pull request
//!    or response, failed push-pull, command), and after [`Heal::tick`],
//!    call [`pump`]: it feeds the core's signals to the heal layer, delivers
//!    heal events to the application and applies heal commands to the core.
//! 3. Then drain [`Swim::poll_output`] as usual: heal commands produce core
//!    outputs too (a push-pull to probe a dead member, a rejoin's push-pull,
//!    the metadata carrying a side claim).
//! 4. Call [`Heal::tick`] when [`Heal::next_deadline`] passes (or every
//!    second), then [`pump`] again.
//!
//! The core's feed is ordered: a push-pull view that disagrees with ours
//! ([`Signal::RemoteView`]) arrives before the membership changes its merge
//! causes, so the heal layer compares it with the view it replaces.
//!
//! ```
//! use std::time::Duration;
//! use gossamer_core::{Output, Swim};
//! use gossamer_heal::{core_adapter, Heal, HealConfig, HealHandler};
//! use gossamer_wire::{ClusterLabel, FrameCodec, NodeId};
//! use rand_chacha::rand_core::SeedableRng;
//!
//! struct App;
//! impl HealHandler for App {}
//!
//! let id = NodeId::new("a".parse().unwrap(), "127.0.0.1:7946".parse().unwrap());
//! let heal_config = HealConfig { autoclean: "1h".parse().unwrap(), ..HealConfig::default() };
//! let config = core_adapter::core_config(&heal_config, gossamer_core::Config::lan());
//! assert_eq!(config.dead_retention, Duration::from_secs(3600));
//! let codec = FrameCodec::new(ClusterLabel::new("prod").unwrap());
//! let rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
//! let now = Duration::ZERO;
//! let mut swim = Swim::new(id.clone(), config, codec, rng, now).unwrap();
//! swim.set_signals(true);
//! let mut heal = Heal::new(id, heal_config, now).unwrap();
//!
//! // After each input to the core:
//! swim.join(now, &["127.0.0.1:7947".parse().unwrap()]);
//! core_adapter::pump(&mut heal, &mut swim, now, &mut App);
//! while let Some(output) = swim.poll_output() {
//!     match output {
//!         Output::Datagram { .. } | Output::PushPull { .. } | Output::SetTimer { .. } => { /* as usual */ }
//!         Output::Event(_) => { /* the application's membership events */ }
//!         Output::User(_) => { /* the application's broadcasts, queries, state */ }
//!     }
//! }
//! // At heal.next_deadline(): heal.tick(now), then pump again.
//! ```

use std::net::SocketAddr;

use gossamer_core::{Config, Event, RefutedClaim, Signal, Swim, Time};
use gossamer_wire::{MemberStatus, MetadataError, NodeName};
use rand_core::RngCore;
use tracing::warn;

use crate::{Claim, Heal, HealCommand, HealConfig, HealHandler, CLAIM_KEY};

/// A heal command the core could not carry out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdapterError {
    /// The side claim does not fit in this node's metadata.
    #[error("side claim not published: {0}")]
    Metadata(MetadataError),
}

/// `base` with the heal layer's autoclean applied: the core forgets dead
/// members after [`HealConfig::autoclean`] (its `dead_retention`; at least
/// the core's `reconnect_interval`, the granularity at which it reaps), or
/// never with [`crate::Autoclean::Off`]. Members that left keep the core's
/// own `left_retention`: leaving is not a failure.
pub fn core_config(heal: &HealConfig, base: Config) -> Config {
    let dead_retention = heal.autoclean.timeout().map_or(Time::ZERO, |d| d.max(base.reconnect_interval));
    Config { dead_retention, ..base }
}

/// Feeds one core signal to `heal`:
///
/// - membership events ([`Signal::Member`]) → [`Heal::observe_member`], and
///   the side claim in the member's metadata, if any, →
///   [`Heal::observe_claim`];
/// - each confirmer of a death ([`Signal::DeathConfirmed`]) → its
///   declarers;
/// - a disagreeing push-pull view ([`Signal::RemoteView`]) →
///   [`Heal::observe_remote_view`];
/// - a refuted death claim ([`Signal::Refuted`] with
///   [`RefutedClaim::Dead`]) → [`Heal::observe_self_refuted`] (refuted
///   suspicions happen without any partition);
/// - a forgotten member ([`Signal::MemberRemoved`]) →
///   [`Heal::observe_removed`].
pub fn observe_signal(heal: &mut Heal, now: Time, signal: &Signal) {
    match signal {
        Signal::Member(event) => observe_event(heal, now, event, &[]),
        Signal::DeathConfirmed { member, incarnation, by } => {
            heal.observe_member(now, member, MemberStatus::Dead, *incarnation, std::slice::from_ref(by))
        }
        Signal::RemoteView { from, members } => heal.observe_remote_view(now, from, members),
        Signal::Refuted { claim: RefutedClaim::Dead, .. } => heal.observe_self_refuted(now),
        Signal::MemberRemoved(member) => heal.observe_removed(now, &member.id.name),
        _ => {}
    }
}

/// Feeds one membership event with who declared it dead, if known.
fn observe_event(heal: &mut Heal, now: Time, event: &Event, declared_by: &[NodeName]) {
    let member = event.member();
    let status = match event {
        Event::MemberFailed(_) => MemberStatus::Dead,
        Event::MemberLeft(_) => MemberStatus::Left,
        Event::MemberSuspected(_) => MemberStatus::Suspect,
        Event::MemberJoined(m) | Event::MemberUpdated(m) | Event::MemberRecovered(m) => m.status,
    };
    heal.observe_member(now, &member.id, status, member.incarnation, declared_by);
    if let Some(claim) = member.metadata.get(CLAIM_KEY).and_then(Claim::decode) {
        heal.observe_claim(now, &member.id.name, &claim);
    }
}

/// Brings `heal` up to date with every member the core knows, with every
/// confirmer of each death, e.g. when the heal layer is added to a core
/// that already ran (signals only report changes).
pub fn observe_all<R: RngCore>(heal: &mut Heal, swim: &Swim<R>, now: Time) {
    for member in swim.members() {
        let declared_by = swim.death(&member.id.name).map(|d| d.confirmers.as_slice()).unwrap_or_default();
        heal.observe_member(now, &member.id, member.status, member.incarnation, declared_by);
    }
}

/// Feeds every pending core signal to `heal` ([`observe_signal`]),
/// delivers heal events to `app` and applies heal commands to the core
/// ([`apply`]; a command that cannot be applied is logged), until neither
/// has anything left. Call it after every input to the core and after
/// [`Heal::tick`], then drain the core's outputs as usual.
pub fn pump<R: RngCore>(heal: &mut Heal, swim: &mut Swim<R>, now: Time, app: &mut (impl HealHandler + ?Sized)) {
    loop {
        while let Some(signal) = swim.poll_signal() {
            observe_signal(heal, now, &signal);
        }
        let commands = heal.dispatch(app);
        if commands.is_empty() {
            return;
        }
        for command in &commands {
            if let Err(error) = apply(swim, now, command) {
                warn!(%error, ?command, "heal command not applied");
            }
        }
    }
}

/// Applies one heal command to the core.
///
/// - `Rejoin` → [`Swim::rejoin`] with the seeds' addresses;
/// - `Probe` → [`Swim::push_pull`] with the peer (not remembered as a seed);
/// - `Publish` → [`Swim::set_metadata`] with the side claim under
///   [`CLAIM_KEY`], the application's own keys kept.
pub fn apply<R: RngCore>(swim: &mut Swim<R>, now: Time, command: &HealCommand) -> Result<(), AdapterError> {
    match command {
        HealCommand::Rejoin { seeds } => {
            let addrs: Vec<SocketAddr> = seeds.iter().map(|s| s.addr).collect();
            swim.rejoin(now, &addrs);
            Ok(())
        }
        HealCommand::Probe { peer } => {
            swim.push_pull(now, peer.addr);
            Ok(())
        }
        HealCommand::Publish(claim) => {
            let local = swim.local().name.clone();
            let mut metadata = swim.member(&local).map(|m| m.metadata.clone()).unwrap_or_default();
            metadata.insert(CLAIM_KEY, claim.encode()).map_err(AdapterError::Metadata)?;
            swim.set_metadata(now, metadata);
            Ok(())
        }
    }
}
