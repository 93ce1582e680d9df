//! `k8s`: peers from the Kubernetes API (the pods behind a Service), as EMQX's `k8s` strategy and
//! libcluster's `Kubernetes` strategy; or, in `mode = "dns"`, from the A records of a headless Service
//! (libcluster's `Kubernetes.DNS`), which needs no RBAC.
//!
//! API mode reads either the core/v1 `Endpoints` object named `service_name` or the
//! `discovery.k8s.io/v1` `EndpointSlice`s labelled `kubernetes.io/service-name=<service_name>`, with the
//! in-pod service-account token (re-read on every poll, since bound tokens rotate) and cluster CA.
//! Only ready addresses are used: set `publishNotReadyAddresses: true` on the Service if pods must find
//! each other before they are ready.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use serde::Deserialize;
use tracing::{debug, warn};

use super::dns::{build_resolver, lookup_ips};
use crate::http::{client, describe, read_body};
use crate::{async_trait, AddressType, ConfigError, Discovery, DiscoveryError, K8sApi, Peer, Secret};

/// How node names are formed from an address (shared by API and DNS modes).
#[derive(Debug, Clone)]
pub(crate) struct Naming {
    pub basename: String,
    pub address_type: AddressType,
    pub suffix: String,
    pub namespace: String,
    pub service_name: String,
}

impl Naming {
    /// The host part of `basename@host`, or `None` when `hostname` naming is asked for but the endpoint
    /// has no hostname (pods outside a StatefulSet).
    pub(crate) fn host(&self, ip: IpAddr, hostname: Option<&str>) -> Option<String> {
        match self.address_type {
            AddressType::Ip => Some(ip.to_string()),
            AddressType::Dns => {
                let dashed = match ip {
                    IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
                    IpAddr::V6(v6) => v6.to_string().replace(':', "-"),
                };
                Some(format!("{dashed}.{}.{}", self.namespace, self.suffix))
            }
            AddressType::Hostname => {
                hostname.map(|h| format!("{h}.{}.{}.{}", self.service_name, self.namespace, self.suffix))
            }
        }
    }

    fn peer(&self, ip: IpAddr, hostname: Option<&str>, port: u16) -> Option<Peer> {
        let host = self.host(ip, hostname)?;
        Some(Peer::named(format!("{}@{host}", self.basename), SocketAddr::new(ip, port)))
    }
}

// --- the API's JSON shapes (only the fields we read) ---

#[derive(Debug, Deserialize)]
struct EndpointsList {
    #[serde(default)]
    items: Vec<Endpoints>,
}

#[derive(Debug, Deserialize)]
struct Endpoints {
    #[serde(default)]
    subsets: Vec<EndpointSubset>,
}

#[derive(Debug, Deserialize)]
struct EndpointSubset {
    #[serde(default)]
    addresses: Vec<EndpointAddress>,
    #[serde(default)]
    ports: Vec<EndpointPort>,
}

#[derive(Debug, Deserialize)]
struct EndpointAddress {
    ip: String,
    hostname: Option<String>,
}

#[derive(Debug, Deserialize)]
struct EndpointPort {
    name: Option<String>,
    port: Option<u16>,
}

#[derive(Debug, Deserialize)]
struct EndpointSliceList {
    #[serde(default)]
    items: Vec<EndpointSlice>,
}

#[derive(Debug, Deserialize)]
struct EndpointSlice {
    #[serde(default)]
    endpoints: Vec<SliceEndpoint>,
    #[serde(default)]
    ports: Option<Vec<EndpointPort>>,
}

#[derive(Debug, Deserialize)]
struct SliceEndpoint {
    #[serde(default)]
    addresses: Vec<String>,
    #[serde(default)]
    conditions: Option<SliceConditions>,
    hostname: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SliceConditions {
    ready: Option<bool>,
}

/// Where the bearer token comes from.
#[derive(Debug, Clone)]
pub(crate) enum TokenSource {
    /// A literal token from config (redacted in `Debug`, wiped on drop).
    Literal(Secret),
    /// A file re-read on every poll; `required` is false for the default in-pod path, whose absence
    /// means "no token" (for example through `kubectl proxy`).
    File { path: PathBuf, required: bool },
}

/// Kubernetes API strategy.
#[derive(Debug)]
pub struct K8sApiDiscovery {
    http: reqwest::Client,
    apiserver: String,
    api: K8sApi,
    label_selector: Option<String>,
    port: u16,
    port_name: Option<String>,
    token: TokenSource,
    naming: Naming,
    interval: Duration,
    /// Largest response body read (`discovery.k8s.max_body_bytes`).
    max_body: usize,
}

impl K8sApiDiscovery {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        apiserver: String,
        api: K8sApi,
        label_selector: Option<String>,
        port: u16,
        port_name: Option<String>,
        token: TokenSource,
        ca_pem: Option<Vec<u8>>,
        naming: Naming,
        interval: Duration,
        timeout: Duration,
    ) -> Result<Self, ConfigError> {
        Ok(K8sApiDiscovery {
            http: client(ca_pem.as_deref(), timeout, "discovery.k8s.ca_file")?,
            apiserver: apiserver.trim_end_matches('/').to_string(),
            api,
            label_selector,
            port,
            port_name,
            token,
            naming,
            interval,
            max_body: crate::DEFAULT_K8S_MAX_BODY_BYTES,
        })
    }

    /// Refuses API answers longer than `bytes` (default [`crate::DEFAULT_K8S_MAX_BODY_BYTES`]), so an API
    /// server, or whatever answers in its place, cannot make the node buffer without bound.
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    fn err(&self, reason: impl Into<String>) -> DiscoveryError {
        DiscoveryError::Http { service: "kubernetes", server: self.apiserver.clone(), reason: reason.into() }
    }

    async fn token(&self) -> Result<Option<Secret>, DiscoveryError> {
        match &self.token {
            TokenSource::Literal(t) => Ok(Some(t.clone())),
            TokenSource::File { path, required } => match tokio::fs::read_to_string(path).await {
                Ok(t) => Ok(Some(Secret::new(zeroize::Zeroizing::new(t).trim()))),
                Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(DiscoveryError::File { path: path.clone(), source }),
            },
        }
    }

    fn url(&self) -> Result<reqwest::Url, DiscoveryError> {
        let ns = &self.naming.namespace;
        let svc = &self.naming.service_name;
        let (path, selector) = match self.api {
            K8sApi::Endpoints => match &self.label_selector {
                None => (format!("/api/v1/namespaces/{ns}/endpoints/{svc}"), None),
                Some(sel) => (format!("/api/v1/namespaces/{ns}/endpoints"), Some(sel.clone())),
            },
            K8sApi::EndpointSlices => {
                let mut sel = format!("kubernetes.io/service-name={svc}");
                if let Some(extra) = &self.label_selector {
                    sel.push(',');
                    sel.push_str(extra);
                }
                (format!("/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices"), Some(sel))
            }
        };
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.apiserver)).map_err(|e| self.err(e.to_string()))?;
        if let Some(sel) = selector {
            url.query_pairs_mut().append_pair("labelSelector", &sel);
        }
        Ok(url)
    }

    fn pick_port(&self, ports: &[EndpointPort]) -> Option<u16> {
        match &self.port_name {
            None => Some(self.port),
            Some(want) => ports.iter().find(|p| p.name.as_deref() == Some(want.as_str())).and_then(|p| p.port),
        }
    }

    fn peers_of_endpoints(&self, eps: &[Endpoints]) -> Vec<Peer> {
        let mut peers = Vec::new();
        for subset in eps.iter().flat_map(|e| &e.subsets) {
            let Some(port) = self.pick_port(&subset.ports) else {
                warn!(port_name = ?self.port_name, "endpoints subset has no port with that name; skipped");
                continue;
            };
            for a in &subset.addresses {
                self.push(&mut peers, &a.ip, a.hostname.as_deref(), port);
            }
        }
        peers
    }

    fn peers_of_slices(&self, slices: &[EndpointSlice]) -> Vec<Peer> {
        let mut peers = Vec::new();
        for slice in slices {
            let Some(port) = self.pick_port(slice.ports.as_deref().unwrap_or_default()) else {
                warn!(port_name = ?self.port_name, "endpoint slice has no port with that name; skipped");
                continue;
            };
            for ep in &slice.endpoints {
                // Per the API, a missing `ready` condition means ready.
                if ep.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                    continue;
                }
                for ip in &ep.addresses {
                    self.push(&mut peers, ip, ep.hostname.as_deref(), port);
                }
            }
        }
        peers
    }

    fn push(&self, peers: &mut Vec<Peer>, ip: &str, hostname: Option<&str>, port: u16) {
        let Ok(ip) = ip.parse::<IpAddr>() else {
            warn!(ip, "endpoint address is not an IP; skipped");
            return;
        };
        match self.naming.peer(ip, hostname, port) {
            Some(p) => peers.push(p),
            None => warn!(%ip, "address_type = hostname but the endpoint has no hostname; skipped"),
        }
    }
}

#[async_trait]
impl Discovery for K8sApiDiscovery {
    fn name(&self) -> &str {
        "k8s"
    }

    fn poll_interval(&self) -> Option<Duration> {
        Some(self.interval)
    }

    async fn discover(&self) -> Result<Vec<Peer>, DiscoveryError> {
        let url = self.url()?;
        let mut req = self.http.get(url.clone()).header("Accept", "application/json");
        if let Some(token) = self.token().await? {
            req = req.bearer_auth(token.expose());
        }
        let resp = req.send().await.map_err(|e| self.err(describe(&e)))?;
        let status = resp.status();
        let body = read_body(resp, self.max_body, "discovery.k8s.max_body_bytes").await.map_err(|e| self.err(e))?;
        if !status.is_success() {
            // The API answers errors as a Status object whose `message` says what is wrong (RBAC...).
            let msg = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
            return Err(self.err(format!("GET {} -> HTTP {status}: {msg}", url.path())));
        }
        let bad = |e: serde_json::Error| self.err(format!("unexpected JSON from GET {}: {e}", url.path()));
        let mut peers = match (self.api, &self.label_selector) {
            (K8sApi::Endpoints, None) => {
                self.peers_of_endpoints(&[serde_json::from_slice::<Endpoints>(&body).map_err(bad)?])
            }
            (K8sApi::Endpoints, Some(_)) => {
                self.peers_of_endpoints(&serde_json::from_slice::<EndpointsList>(&body).map_err(bad)?.items)
            }
            (K8sApi::EndpointSlices, _) => {
                self.peers_of_slices(&serde_json::from_slice::<EndpointSliceList>(&body).map_err(bad)?.items)
            }
        };
        peers.sort();
        peers.dedup();
        debug!(count = peers.len(), "kubernetes endpoints");
        Ok(peers)
    }
}

/// Kubernetes headless-Service DNS strategy (`k8s.mode = "dns"`).
pub struct K8sDnsDiscovery {
    resolver: TokioResolver,
    fqdn: String,
    port: u16,
    naming: Naming,
    interval: Duration,
}

impl std::fmt::Debug for K8sDnsDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("K8sDnsDiscovery").field("fqdn", &self.fqdn).field("port", &self.port).finish_non_exhaustive()
    }
}

impl K8sDnsDiscovery {
    pub(crate) fn new(
        fqdn: String,
        port: u16,
        naming: Naming,
        interval: Duration,
        nameserver: Option<SocketAddr>,
        timeout: Duration,
    ) -> Result<Self, ConfigError> {
        Ok(K8sDnsDiscovery {
            resolver: build_resolver(nameserver, timeout, "discovery.k8s.nameserver")?,
            fqdn,
            port,
            naming,
            interval,
        })
    }

    /// The name queried.
    pub fn fqdn(&self) -> &str {
        &self.fqdn
    }
}

#[async_trait]
impl Discovery for K8sDnsDiscovery {
    fn name(&self) -> &str {
        "k8s-dns"
    }

    fn poll_interval(&self) -> Option<Duration> {
        Some(self.interval)
    }

    async fn discover(&self) -> Result<Vec<Peer>, DiscoveryError> {
        let ips = lookup_ips(&self.resolver, &self.fqdn).await?;
        Ok(ips.into_iter().filter_map(|ip| self.naming.peer(ip, None, self.port)).collect())
    }
}
