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
//! A driver's loop, in outline:
//!
//! ```
//! use gossamer_core::{Config, Output, Swim};
//! use gossamer_wire::{ClusterLabel, FrameCodec, NodeId};
//! use rand::SeedableRng;
//! use std::time::Duration;
//!
//! let id = NodeId::new("a@127.0.0.1".parse().unwrap(), "127.0.0.1:7946".parse().unwrap());
//! let codec = FrameCodec::new(ClusterLabel::new("prod").unwrap());
//! let rng = rand::rngs::StdRng::seed_from_u64(7);
//! let mut swim = Swim::new(id, Config::lan(), codec, rng, Duration::ZERO).unwrap();
//! swim.join(Duration::ZERO, &["127.0.0.1:7947".parse().unwrap()]);
//! let mut timers = Vec::new();
//! while let Some(output) = swim.poll_output() {
//!     match output {
//!         Output::Datagram { to, bytes } => { /* socket.send_to(&bytes, to) */ }
//!         Output::PushPull { to, request } => { /* connect, write, read, handle_push_pull_response */ }
//!         Output::SetTimer { at, timer } => timers.push((at, timer)),
//!         Output::Event(event) => println!("{event:?}"),
//!         Output::User(user) => println!("{user:?}"),
//!     }
//! }
//! // Later, when a timer is due: swim.handle_timer(now, timer).
//! assert!(!timers.is_empty());
//! ```
//!
//! Modules, one job each: `config` (settings and presets), `member` (the
//! member table), `probe` (round-robin order, probes in flight), `failure`
//! (probing, relaying, suspicion expiry), `suspicion` (Lifeguard's dynamic
//! timeouts), `awareness` (Lifeguard's local health), `rules` (precedence
//! of updates), `broadcast` (the dissemination queues), `pushpull`
//! (anti-entropy and reconnection), `user` (application broadcasts,
//! queries and push-pull state), `timer`, `event`, `signal` (the opt-in
//! feed for the heal layer), `metrics`, and `swim` which wires them.
//!
//! Applications gossip their own data over the same packets:
//! [`Swim::broadcast`] (delivered elsewhere as [`UserEvent::Broadcast`]),
//! [`Swim::query`] / [`Swim::respond`] (Serf-style, answers collected until
//! a deadline) and [`Swim::set_local_state`] (exchanged in push-pull). They
//! use their own bounded queue and a reserved share of every packet
//! ([`Config::user_share`]).
//!
//! Layers above SWIM that need more than membership events (partition
//! detection in `gossamer-heal`) turn on [`Swim::set_signals`] and drain
//! [`Swim::poll_signal`]: remote views that disagree with ours and who sent
//! them, refutations, every confirmer of a death, members forgotten.

#![deny(missing_docs)]

mod awareness;
mod broadcast;
mod burst;
mod config;
mod directory;
mod event;
mod failure;
mod member;
mod metrics;
mod probe;
mod pushpull;
mod rules;
mod schema;
mod signal;
mod suspicion;
mod swim;
mod timer;
mod user;

use std::time::Duration;

pub use config::{Config, ConfigError};
pub use directory::IdentityDirectory;
pub use event::{Event, Output};
pub use member::{Death, Member};
pub use metrics::{KindTraffic, Metrics, RttHistogram, Traffic, RTT_BUCKETS_MICROS};
pub use probe::{StreamPing, MAX_STREAM_PING_FRAME};
pub use rules::MAX_INCARNATION;
pub use schema::{field_names, overlay, set_from_text, Overrides, Preset, ProtocolConfig};
pub use signal::{NameConflict, RefutedClaim, Signal};
pub use swim::{Swim, REFUSAL_WARN_INTERVAL};
pub use timer::Timer;
pub use user::{QueryId, UserError, UserEvent, MAX_LTIME};

/// Time since the driver's epoch (the runtime's start, or virtual time zero
/// in the simulator). The core never reads a clock.
pub type Time = Duration;

#[cfg(test)]
mod retire_tests;
#[cfg(test)]
mod tests;
