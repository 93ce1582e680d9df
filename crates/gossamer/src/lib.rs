//! # gossamer
//!
//! Gossip membership for Rust: SWIM with HashiCorp's Lifeguard extensions
//! (the protocol of memberlist, Consul and Serf), a tokio runtime over UDP
//! and TCP, and LAN discovery by multicast heartbeat. Applications embed
//! this crate; the `gossamer` binary (crate `gossamer-cli`) runs it as an
//! agent.
//!
//! The pieces, re-exported:
//! - [`wire`]: the packet format (frames, messages, cluster label, secret);
//! - [`core`]: the sans-I/O protocol state machine;
//! - [`net`]: the runtime and the embedding API ([`Node`], [`NodeConfig`]);
//! - `discovery` (feature, on by default): seeds from static lists, hosts
//!   files, DNS, etcd or Kubernetes, fed to [`Node::join`].
//!
//! Building a configuration (runs as a doc test):
//!
//! ```
//! use gossamer::{NodeConfig, Preset, MulticastConfig};
//!
//! let mut config = NodeConfig::new("web-1@10.0.0.7", "0.0.0.0:7946".parse().unwrap(), Preset::Lan).unwrap();
//! config.advertise = Some("10.0.0.7:7946".parse().unwrap());
//! config.cluster = "prod".into();
//! config.set_secret_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f").unwrap();
//! config.seeds = vec!["10.0.0.8:7946".parse().unwrap()];
//! config.multicast = Some(MulticastConfig::default());
//! config.metadata.insert("role", b"web".to_vec()).unwrap();
//! config.validate().unwrap();
//!
//! // Binding 0.0.0.0 without an advertised address is refused, naming the field.
//! let mut bad = config.clone();
//! bad.advertise = None;
//! assert!(bad.validate().unwrap_err().to_string().contains("advertise"));
//! ```
//!
//! Running nodes (binds sockets, so not run as a doc test; see
//! `examples/three_nodes.rs` for a runnable version):
//!
//! ```no_run
//! use std::sync::Arc;
//! use gossamer::{Event, Hooks, Member, Node, NodeConfig, Preset};
//!
//! struct Connections;
//! impl Hooks for Connections {
//!     fn on_connect(&self, m: &Member) { println!("connect {}", m.id.name) }
//!     fn on_disconnect(&self, m: &Member) { println!("disconnect {}", m.id.name) }
//! }
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = NodeConfig::new("a@127.0.0.1", "127.0.0.1:7946".parse()?, Preset::Local)?;
//! config.seeds = vec!["127.0.0.1:7947".parse()?];
//! config.hooks.push(Arc::new(Connections));
//! let node = Node::start(config).await?;
//! let mut events = node.subscribe();
//! if let Some(Event::MemberJoined(m)) = events.recv().await {
//!     println!("{} joined", m.id);
//! }
//! println!("{:?}", node.members().await?);
//! println!("{:?}", node.metrics().await?);
//! node.leave().await?;
//! node.shutdown().await;
//! # Ok(()) }
//! ```

//! Application data (memberlist's delegates, Serf's user events and
//! queries): broadcasts reach every other member once, queries gather the
//! answers of the members a filter addresses, and each node's application
//! state travels in push-pull exchanges. Compressing large frames is one
//! setting ([`NodeConfig::compression`]). Two nodes on loopback, run as a
//! doc test:
//!
//! ```
//! use std::time::Duration;
//! use gossamer::{Bytes, Hooks, Member, Node, NodeConfig, NodeId, Preset, QueryFilter, UserEvent, UserKey};
//!
//! /// Answers the "version" query.
//! struct Versions;
//! impl Hooks for Versions {
//!     fn on_connect(&self, _: &Member) {}
//!     fn on_disconnect(&self, _: &Member) {}
//!     fn on_query(&self, _origin: &NodeId, name: &UserKey, _payload: &Bytes) -> Option<Bytes> {
//!         (name.as_str() == "version").then(|| Bytes::from_static(b"1.4.2"))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut a = NodeConfig::new("a@127.0.0.1", "127.0.0.1:0".parse()?, Preset::Local)?;
//! a.hooks.push(std::sync::Arc::new(Versions));
//! let a = Node::start(a).await?;
//! let mut b = NodeConfig::new("b@127.0.0.1", "127.0.0.1:0".parse()?, Preset::Local)?;
//! b.seeds = vec![a.addr()];
//! let b = Node::start(b).await?;
//! let mut from_b = a.subscribe_user();
//! while b.members().await?.len() < 2 {
//!     tokio::time::sleep(Duration::from_millis(20)).await;
//! }
//!
//! b.broadcast("leader", b"b@127.0.0.1".to_vec()).await?;
//! match from_b.recv().await {
//!     Some(UserEvent::Broadcast { origin, key, payload, .. }) => {
//!         assert_eq!((origin.as_str(), key.as_str(), &payload[..]), ("b@127.0.0.1", "leader", &b"b@127.0.0.1"[..]));
//!     }
//!     other => panic!("{other:?}"),
//! }
//!
//! let outcome = b.query("version", Vec::new(), QueryFilter::everyone(), Duration::from_millis(500)).await?;
//! assert_eq!(outcome.responses, vec![("a@127.0.0.1".parse()?, Bytes::from_static(b"1.4.2"))]);
//! assert_eq!(outcome.missing, vec!["b@127.0.0.1".parse()?], "b has no hook: it never answers");
//! a.shutdown().await;
//! b.shutdown().await;
//! # Ok(()) }
//! ```

#[cfg(feature = "discovery")]
mod discover;

/// Discovery strategies (feature `discovery`, on by default): the
/// `gossamer-discovery` crate plus [`start_discovery`](discovery::start_discovery),
/// which feeds what they find to a running [`Node`].
#[cfg(feature = "discovery")]
pub mod discovery {
    pub use crate::discover::{
        multicast_config, start_discovery, start_with_discovery, Discovering, DiscoveryStartError,
    };
    pub use gossamer_discovery::*;
}

pub use gossamer_core as core;
pub use gossamer_net as net;
pub use gossamer_wire as wire;

pub use gossamer_core::{Config, Event, IdentityDirectory, Member, Metrics};
pub use gossamer_core::{QueryId, UserError, UserEvent};
// Live key rotation: Node::install_key / use_key / remove_key / list_keys
// on one node, Node::cluster_keys on every member.
pub use gossamer_net::{
    Bytes, HealConfig, HealEvent, HealSubscription, Hooks, MulticastConfig, MulticastInterface, NetError, NetMetrics,
    Node, NodeConfig, NodeMetrics, NodeStopped, PemSource, Preset, QueryOutcome, StartError, Subscription, TlsConfig,
    TlsError, UserSubscription,
};
pub use gossamer_net::{KeyAnswer, KeyError, KeyRequest, KeyRotation, DEFAULT_KEYS_TIMEOUT};
pub use gossamer_wire::{KeyFingerprint, MemberStatus, Metadata, NodeId, NodeName, QueryFilter, SecretKey, UserKey};
