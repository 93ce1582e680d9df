//! Discovery strategies feeding a running node: the bridge between
//! `gossamer-discovery` (which finds candidate peers) and [`Node::join`].
//!
//! The runner polls every configured strategy; each changed answer's new
//! peers are joined. Joins that fail are retried by the core while the node
//! is alone, and the strategies keep polling, so a cluster whose seeds come
//! up late still forms. Multicast (`mcast`) is not a polled strategy: it is
//! the runtime's heartbeat, configured through [`multicast_config`].

use std::net::SocketAddr;
use std::time::Duration;

use gossamer_discovery::{build, ConfigError, DiscoveryConfig, DiscoveryRunner, McastConfig, RunnerHandle};
use gossamer_net::{MulticastConfig, MulticastInterface, Node};
use tokio::task::JoinHandle;

/// Running discovery for one node. Dropping it leaves the tasks running
/// until the node stops; [`Discovering::shutdown`] stops them (and
/// deregisters from registries such as etcd).
pub struct Discovering {
    handle: RunnerHandle,
    forward: JoinHandle<()>,
}

impl std::fmt::Debug for Discovering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovering").field("strategies", &self.handle.status().len()).finish_non_exhaustive()
    }
}

impl Discovering {
    /// What each strategy last found, its failures and last error.
    pub fn status(&self) -> Vec<gossamer_discovery::StrategyStatus> {
        self.handle.status()
    }

    /// Stops polling and deregisters.
    pub async fn shutdown(self) {
        self.forward.abort();
        self.handle.shutdown().await;
    }
}

/// Starts the strategies of `config` for `node`. The node's own name and
/// address fill `node_name`/`advertise_addr` when the config leaves them
/// unset (registries need them).
pub fn start_discovery(node: &Node, config: &DiscoveryConfig) -> Result<Discovering, ConfigError> {
    let config = with_identity(config, node.id().name.as_str(), node.addr());
    let strategies = build(&config)?;
    let (handle, mut updates) = DiscoveryRunner::new(strategies).with_backoff(config.backoff()).spawn();
    let node = node.clone();
    let me = node.addr();
    let forward = tokio::spawn(async move {
        while let Some(update) = updates.recv().await {
            let addrs: Vec<SocketAddr> = update.added.iter().map(|p| p.addr).filter(|a| *a != me).collect();
            if addrs.is_empty() {
                continue;
            }
            tracing::info!(strategy = %update.strategy, peers = ?addrs, "discovered peers; joining");
            if node.join(addrs).await.is_err() {
                return;
            }
        }
    });
    Ok(Discovering { handle, forward })
}

/// `config` with the node's own name and address where it leaves them unset.
fn with_identity(config: &DiscoveryConfig, name: &str, addr: SocketAddr) -> DiscoveryConfig {
    let mut config = config.clone();
    config.node_name.get_or_insert_with(|| name.to_owned());
    config.advertise_addr.get_or_insert(addr);
    config
}

/// Why [`start_with_discovery`] failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryStartError {
    /// The discovery settings were refused (the message names the key).
    #[error("discovery: {0}")]
    Discovery(#[from] ConfigError),
    /// The node did not start.
    #[error(transparent)]
    Node(#[from] gossamer_net::StartError),
}

/// Starts a node and its discovery in one call: `mcast` in the strategy
/// list turns on the runtime's multicast heartbeat (with the `[mcast]`
/// settings), every other strategy feeds [`Node::join`].
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use gossamer::discovery::{start_with_discovery, DiscoveryConfig};
/// use gossamer::{NodeConfig, Preset};
/// let discovery: DiscoveryConfig = toml::from_str(r#"
///     strategy = "dns"
///     [dns]
///     query = "gossamer.prod.internal"
/// "#)?;
/// let config = NodeConfig::new("web-1@10.0.0.7", "10.0.0.7:7946".parse()?, Preset::Lan)?;
/// let (node, discovering) = start_with_discovery(config, &discovery).await?;
/// # let _ = (node, discovering); Ok(()) }
/// ```
pub async fn start_with_discovery(
    mut config: gossamer_net::NodeConfig,
    discovery: &DiscoveryConfig,
) -> Result<(Node, Discovering), DiscoveryStartError> {
    // Validate before binding, with the identity `start_discovery` will fill
    // in: registries (etcd, local) need the node's name and address.
    with_identity(discovery, config.name.as_str(), config.advertise.unwrap_or(config.bind)).validate()?;
    if let Some(m) = discovery.mcast_enabled() {
        config.multicast = Some(multicast_config(m)?);
    }
    let node = Node::start(config).await?;
    match start_discovery(&node, discovery) {
        Ok(running) => Ok((node, running)),
        Err(e) => {
            node.shutdown().await;
            Err(e.into())
        }
    }
}

/// The runtime's multicast settings from the discovery crate's `[mcast]`
/// table. The group may be IPv4 or IPv6; `iface` is an address of the
/// group's family (for IPv6, the interface holding it is looked up when the
/// node starts).
pub fn multicast_config(m: &McastConfig) -> Result<MulticastConfig, ConfigError> {
    let invalid =
        |key: &str, value: String, reason: &str| ConfigError::Invalid { key: key.into(), value, reason: reason.into() };
    let group = m.group;
    if !group.is_multicast() {
        return Err(invalid("discovery.mcast.group", group.to_string(), "not a multicast group"));
    }
    let interface = match m.iface {
        None => None,
        Some(ip) if ip.is_unspecified() => None,
        Some(ip) if ip.is_ipv4() == group.is_ipv4() => Some(MulticastInterface::Addr(ip)),
        Some(other) => {
            return Err(invalid(
                "discovery.mcast.iface",
                other.to_string(),
                "must be of the group's family (IPv4/IPv6)",
            ))
        }
    };
    let config = MulticastConfig {
        group,
        port: m.port,
        interface,
        ttl: m.ttl,
        loopback: m.loopback,
        interval: Duration::from_millis(m.interval_ms),
    };
    config.validate().map_err(|(field, reason)| invalid(&format!("discovery.{field}"), String::new(), &reason))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcast_table_maps_to_the_runtime_config() {
        let m = McastConfig { iface: Some("127.0.0.1".parse().unwrap()), interval_ms: 250, ..McastConfig::default() };
        let c = multicast_config(&m).unwrap();
        assert_eq!(c.interface, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(c.interval, Duration::from_millis(250));
        assert_eq!((c.group, c.port, c.ttl, c.loopback), ("239.192.0.1".parse().unwrap(), 7947, 1, true));

        // An IPv6 group with an IPv6 interface address.
        let v6 =
            McastConfig { group: "ff12::6773:6d72".parse().unwrap(), iface: Some("fd00::7".parse().unwrap()), ..m };
        let c = multicast_config(&v6).unwrap();
        assert_eq!(c.interface, Some(MulticastInterface::Addr("fd00::7".parse().unwrap())));
        assert!(c.group.is_ipv6());

        let bad = McastConfig { group: "10.0.0.1".parse().unwrap(), ..McastConfig::default() };
        assert!(multicast_config(&bad).unwrap_err().to_string().contains("discovery.mcast.group"));
        let bad = McastConfig { iface: Some("::1".parse().unwrap()), ..McastConfig::default() };
        assert!(multicast_config(&bad).unwrap_err().to_string().contains("discovery.mcast.iface"));
    }
}
