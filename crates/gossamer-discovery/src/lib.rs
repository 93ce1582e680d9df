//! Discovery strategies for gossamer: where to find peers to join.
//!
//! Discovery only *seeds* the membership core with addresses; SWIM does the rest. Strategies mirror
//! EMQX's autocluster and Elixir's libcluster: `manual`, `static`, `hosts`, `mcast` (config only, the
//! heartbeat lives in the runtime), `dns` (A/AAAA or SRV), `etcd` (lease-backed registry), `k8s`
//! (Endpoints / EndpointSlices API, or headless-service DNS), `rancher` (Rancher 1.x metadata service) and
//! `local` (same-host registry directory, libcluster's `LocalEpmd`). Several may run at once.
//!
//! Every strategy implements the object-safe [`Discovery`] trait; [`build`] turns a [`DiscoveryConfig`]
//! into a `Vec<Box<dyn Discovery>>`, and [`DiscoveryRunner`] polls them on their intervals, retrying
//! failures with capped exponential backoff, and sends each changed peer set on a channel.
//!
//! # A custom strategy
//!
//! A strategy is any type implementing [`Discovery`]; use the re-exported [`macro@async_trait`] attribute:
//!
//! ```
//! use std::time::Duration;
//! use gossamer_discovery::{async_trait, Discovery, DiscoveryError, DiscoveryRunner, Peer};
//!
//! /// Finds peers in a fixed in-memory list (a real one might ask a CMDB).
//! struct Inventory(Vec<Peer>);
//!
//! #[async_trait]
//! impl Discovery for Inventory {
//!     fn name(&self) -> &str {
//!         "inventory"
//!     }
//!     fn poll_interval(&self) -> Option<Duration> {
//!         Some(Duration::from_secs(10))
//!     }
//!     async fn discover(&self) -> Result<Vec<Peer>, DiscoveryError> {
//!         Ok(self.0.clone())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let peer = Peer::named("gossamer@127.0.0.1", "127.0.0.1:7946".parse().unwrap());
//! let strategies: Vec<Box<dyn Discovery>> = vec![Box::new(Inventory(vec![peer.clone()]))];
//! let (runner, mut updates) = DiscoveryRunner::new(strategies).spawn();
//! let update = updates.recv().await.unwrap();
//! assert_eq!(update.strategy, "inventory");
//! assert_eq!(update.added, vec![peer]);
//! runner.shutdown().await;
//! # }
//! ```

mod build;
mod config;
mod env;
mod error;
mod http;
mod peer;
mod runner;
mod secret;
pub mod strategy;

use std::time::Duration;

pub use async_trait::async_trait;
pub use build::build;
pub use config::{
    AddressType, DiscoveryConfig, DnsConfig, DnsRecordType, EtcdConfig, HostsConfig, K8sApi, K8sConfig, K8sMode,
    LocalConfig, McastConfig, RancherConfig, StaticConfig, StrategyKind,
};
pub use config::{DEFAULT_GOSSIP_PORT, DEFAULT_K8S_MAX_BODY_BYTES, SERVICE_ACCOUNT_DIR};
pub use env::apply_env_from;
pub use error::{ConfigError, DiscoveryError};
pub use http::DEFAULT_MAX_BODY_BYTES;
pub use peer::{Peer, SeedSpec};
pub use runner::{Backoff, DiscoveryRunner, DiscoveryUpdate, RunnerHandle, StrategyStatus};
pub use secret::Secret;

/// A way to find candidate peers. Object-safe: a node runs a `Vec<Box<dyn Discovery>>`.
///
/// Implementations must not panic on bad network input; they return a [`DiscoveryError`], which the
/// runner logs (with [`Discovery::name`]) and retries with backoff.
#[async_trait]
pub trait Discovery: Send + Sync {
    /// A short name for logs ("dns", "etcd", ...).
    fn name(&self) -> &str;

    /// How often to call [`Discovery::discover`]. `None` means once (after the first success).
    fn poll_interval(&self) -> Option<Duration>;

    /// Returns the current candidate peers. An empty list is a valid answer ("no one yet").
    async fn discover(&self) -> Result<Vec<Peer>, DiscoveryError>;

    /// Announces this node in a registry (etcd, the local registry directory). The default does nothing.
    async fn register(&self) -> Result<(), DiscoveryError> {
        Ok(())
    }

    /// Withdraws this node from a registry on a clean shutdown. The default does nothing.
    async fn deregister(&self) -> Result<(), DiscoveryError> {
        Ok(())
    }
}
