//! `rancher`: peers from the Rancher 1.x metadata service, as libcluster's `Rancher` strategy. Every
//! container of a Rancher service can ask `http://rancher-metadata/<version>/self/service` (with
//! `Accept: application/json`) for its own service, whose `containers` array lists the service's
//! containers with their `primary_ip` (managed-network address) and `state`. Each running container with
//! a primary IP becomes `<node_basename>@<primary_ip>` on the configured gossip `port`.
//!
//! `metadata_url` is the versioned base (default `http://rancher-metadata/2015-12-19`, the first version
//! whose `containers` are objects rather than names); a bare host such as `http://rancher-metadata` gets
//! `/latest`. The caller's own container is included, as with the DNS strategies.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tracing::{debug, warn};

use crate::http::{client, describe, read_body, DEFAULT_MAX_BODY_BYTES};
use crate::{async_trait, ConfigError, Discovery, DiscoveryError, Peer};

/// The parts of a metadata `service` object we read.
#[derive(Debug, Deserialize)]
struct Service {
    #[serde(default)]
    containers: Vec<Value>,
}

/// The parts of a metadata `container` object we read.
#[derive(Debug, Deserialize)]
struct Container {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    primary_ip: Option<String>,
    #[serde(default)]
    state: Option<String>,
}

/// The Rancher metadata strategy.
///
/// ```
/// use std::time::Duration;
/// use gossamer_discovery::{strategy::RancherDiscovery, Discovery};
/// let d = RancherDiscovery::new("http://rancher-metadata/2015-12-19", 7946, "gossamer",
///                               Duration::from_secs(5), Duration::from_secs(2)).unwrap();
/// assert_eq!(d.name(), "rancher");
/// assert_eq!(d.url(), "http://rancher-metadata/2015-12-19/self/service");
/// let d = RancherDiscovery::new("http://rancher-metadata/", 7946, "gossamer",
///                               Duration::from_secs(5), Duration::from_secs(2)).unwrap();
/// assert_eq!(d.url(), "http://rancher-metadata/latest/self/service");
/// ```
#[derive(Debug)]
pub struct RancherDiscovery {
    http: reqwest::Client,
    url: String,
    port: u16,
    basename: String,
    interval: Duration,
    /// Largest response body read (`discovery.rancher.max_body_bytes`).
    max_body: usize,
}

impl RancherDiscovery {
    /// A strategy asking the metadata service at `metadata_url` (see the module docs for the path).
    pub fn new(
        metadata_url: &str,
        port: u16,
        node_basename: impl Into<String>,
        interval: Duration,
        timeout: Duration,
    ) -> Result<Self, ConfigError> {
        let base = metadata_url.trim().trim_end_matches('/');
        let parsed = reqwest::Url::parse(base)
            .map_err(|e| ConfigError::invalid("discovery.rancher.metadata_url", metadata_url, e))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::invalid(
                "discovery.rancher.metadata_url",
                metadata_url,
                "must start with http:// or https://",
            ));
        }
        let versioned = if parsed.path().trim_matches('/').is_empty() { format!("{base}/latest") } else { base.into() };
        Ok(RancherDiscovery {
            http: client(None, timeout, "discovery.rancher.metadata_url")?,
            url: format!("{versioned}/self/service"),
            port,
            basename: node_basename.into(),
            interval,
            max_body: DEFAULT_MAX_BODY_BYTES,
        })
    }

    /// Refuses metadata answers longer than `bytes` (default [`crate::DEFAULT_MAX_BODY_BYTES`]), so the
    /// metadata service, or whatever answers in its place, cannot make the node buffer without bound.
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The URL polled.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn err(&self, reason: impl Into<String>) -> DiscoveryError {
        DiscoveryError::Http { service: "rancher-metadata", server: self.url.clone(), reason: reason.into() }
    }

    /// Turns the service's `containers` into peers: running ones with a parsable primary IP.
    fn peers_of(&self, service: Service) -> Vec<Peer> {
        let mut peers = Vec::new();
        for raw in service.containers {
            let c: Container = match serde_json::from_value(raw) {
                Ok(c) => c,
                Err(e) => {
                    // 2015-07-25 and older list container names only.
                    warn!(error = %e, "metadata container is not an object (metadata_url version too old?); skipped");
                    continue;
                }
            };
            let name = c.name.as_deref().unwrap_or("?");
            if let Some(state) = c.state.as_deref().filter(|s| *s != "running") {
                debug!(container = name, state, "container not running; skipped");
                continue;
            }
            let Some(ip_text) = c.primary_ip.as_deref().filter(|s| !s.is_empty()) else {
                debug!(container = name, "container has no primary_ip yet; skipped");
                continue;
            };
            let Ok(ip) = ip_text.parse::<IpAddr>() else {
                warn!(container = name, primary_ip = ip_text, "primary_ip is not an IP; skipped");
                continue;
            };
            peers.push(Peer::named(format!("{}@{ip}", self.basename), SocketAddr::new(ip, self.port)));
        }
        peers.sort();
        peers.dedup();
        peers
    }
}

#[async_trait]
impl Discovery for RancherDiscovery {
    fn name(&self) -> &str {
        "rancher"
    }

    fn poll_interval(&self) -> Option<Duration> {
        Some(self.interval)
    }

    async fn discover(&self) -> Result<Vec<Peer>, DiscoveryError> {
        let resp = self
            .http
            .get(&self.url)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| self.err(describe(&e)))?;
        let status = resp.status();
        let body = read_body(resp, self.max_body, "discovery.rancher.max_body_bytes").await.map_err(|e| self.err(e))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Err(self.err(format!("HTTP {status}: {text}")));
        }
        let service: Service =
            serde_json::from_slice(&body).map_err(|e| self.err(format!("unexpected JSON from metadata: {e}")))?;
        let peers = self.peers_of(service);
        debug!(count = peers.len(), "rancher service containers");
        Ok(peers)
    }
}
