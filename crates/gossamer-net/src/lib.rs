//! # gossamer-net
//!
//! The tokio runtime of gossamer. One task owns the sans-I/O SWIM core
//! ([`gossamer_core::Swim`]) and drives it with `now = start.elapsed()`:
//!
//! - a UDP socket (socket2: SO_REUSEADDR, buffer sizes, IPv4 or IPv6) for
//!   protocol datagrams, drained in batches per wakeup;
//! - a TCP listener on the same port for push-pull full-state exchange,
//!   one length-capped frame each way with timeouts;
//! - the core's timers in a min-heap driving one `sleep_until`;
//! - optional mutual TLS under the push-pull stream ([`TlsConfig`]);
//! - optional LAN discovery by multicast heartbeat ([`MulticastConfig`]).
//!
//! Applications use [`Node`]: start it from a [`NodeConfig`], read
//! [`Node::members`], [`Node::subscribe`] to events, implement [`Hooks`]
//! for connect/disconnect callbacks, [`Node::leave`] and [`Node::shutdown`].
//!
//! Application data rides the same gossip (memberlist's delegates, Serf's
//! user events and queries): [`Node::broadcast`] reaches every member once
//! ([`Node::subscribe_user`], [`Hooks::on_broadcast`]); [`Node::query`]
//! gathers the answers of the members a [`QueryFilter`] addresses
//! ([`Hooks::on_query`], [`Node::respond`]); [`Hooks::local_state`] travels
//! in every push-pull and arrives at [`Hooks::merge_remote_state`].
//! [`NodeConfig::compression`] LZ4-compresses large frames.
//!
//! With [`NodeConfig::heal`] set, the node also runs the partition-heal
//! layer ([`gossamer_heal`]): after a network cut is over it decides which
//! side wins, has the losers rejoin, and reports it through
//! [`Node::subscribe_heal`] and [`Hooks::on_partition_healed`]. The feature
//! `fault-injection` adds `Node::block` and `Node::unblock_all`, to cut a
//! cluster on loopback in tests.
//!
//! ```
//! use gossamer_net::{NodeConfig, Preset, MulticastConfig};
//! let mut config = NodeConfig::new("a@127.0.0.1", "127.0.0.1:0".parse().unwrap(), Preset::Local).unwrap();
//! config.cluster = "demo".into();
//! config.multicast = Some(MulticastConfig::default());
//! config.validate().unwrap();
//! ```

mod config;
mod driver;
mod error;
mod fault;
mod heal;
mod hooks;
mod keys;
mod lazy;
mod limits;
mod metrics;
pub mod multicast;
mod node;
pub mod stream;
mod timers;
pub mod tls;
pub mod transport;
mod user;

pub use bytes::Bytes;
pub use config::{NodeConfig, Preset};
pub use error::{NetError, NodeStopped, StartError, StreamError};
pub use gossamer_core::{Config, Event, IdentityDirectory, Member, Metrics, QueryId, UserError, UserEvent};
pub use gossamer_heal::{HealConfig, HealEvent, HealMetrics};
pub use gossamer_wire::{KeyFingerprint, QueryFilter, SecretKey, UserKey};
pub use heal::HealSubscription;
pub use hooks::Hooks;
pub use keys::{KeyAnswer, KeyError, KeyRequest, KeyRotation, DEFAULT_KEYS_TIMEOUT, KEYS_QUERY};
pub use limits::RuntimeLimits;
pub use metrics::{HistogramSnapshot, NetMetrics, NodeMetrics, DURATION_BUCKETS_MICROS};
pub use multicast::{MulticastConfig, MulticastInterface};
pub use node::{Node, Subscription};
pub use timers::TimerQueue;
pub use tls::{PemSource, TlsConfig, TlsError};
pub use transport::SocketOptions;
pub use user::{QueryOutcome, UserSubscription};
