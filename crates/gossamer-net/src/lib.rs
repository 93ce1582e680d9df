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
//! - optional LAN discovery by multicast heartbeat ([`MulticastConfig`]).
//!
//! Applications use [`Node`]: start it from a [`NodeConfig`], read
//! [`Node::members`], [`Node::subscribe`] to events, implement [`Hooks`]
//! for connect/disconnect callbacks, [`Node::leave`] and [`Node::shutdown`].
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
mod metrics;
pub mod multicast;
mod node;
pub mod stream;
mod timers;
pub mod transport;

pub use config::{NodeConfig, Preset};
pub use error::{NodeStopped, StartError, StreamError};
pub use gossamer_core::{Config, Event, Member, Metrics};
pub use gossamer_heal::{HealConfig, HealEvent};
pub use heal::HealSubscription;
pub use hooks::Hooks;
pub use metrics::{NetMetrics, NodeMetrics};
pub use multicast::MulticastConfig;
pub use node::{Node, Subscription};
pub use timers::TimerQueue;
pub use transport::SocketOptions;
