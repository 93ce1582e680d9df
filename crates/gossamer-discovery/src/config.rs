//! The `[discovery]` table of a node's TOML config and its validation ([`crate::build`] turns it into
//! strategies). Every strategy has its own sub-table; `strategy` picks which run (several at once, as
//! libcluster topologies). Unknown keys are rejected so typos fail loudly at start-up.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::http::DEFAULT_MAX_BODY_BYTES;
use crate::{Backoff, ConfigError, Secret};

/// Default cap on a Kubernetes API response body: an EndpointSlice list of 10,000 pods is about 5 MB.
pub const DEFAULT_K8S_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The default gossip port peers are contacted on when an entry gives none.
pub const DEFAULT_GOSSIP_PORT: u16 = 7946;

/// Where the in-pod service account files live.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// A discovery strategy's name as written in `strategy = [...]` and `GOSSAMER_DISCOVERY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StrategyKind {
    /// Nothing automatic (the default).
    Manual,
    /// Fixed seed list.
    Static,
    /// Hosts file.
    Hosts,
    /// UDP multicast heartbeat (run by the runtime crate; only configured here).
    Mcast,
    /// DNS A/AAAA or SRV.
    Dns,
    /// etcd registry.
    Etcd,
    /// Kubernetes API or headless-service DNS.
    K8s,
    /// Rancher 1.x metadata service.
    Rancher,
    /// Same-host registry directory (libcluster's `LocalEpmd`).
    Local,
}

impl FromStr for StrategyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "manual" => StrategyKind::Manual,
            "static" => StrategyKind::Static,
            "hosts" => StrategyKind::Hosts,
            "mcast" => StrategyKind::Mcast,
            "dns" => StrategyKind::Dns,
            "etcd" => StrategyKind::Etcd,
            "k8s" => StrategyKind::K8s,
            "rancher" => StrategyKind::Rancher,
            "local" => StrategyKind::Local,
            other => {
                return Err(format!(
                    "unknown strategy {other:?} (expected manual, static, hosts, mcast, dns, etcd, k8s, rancher, local)"
                ))
            }
        })
    }
}

/// Accepts `strategy = "dns"` as well as `strategy = ["dns", "static"]`.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<StrategyKind>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(StrategyKind),
        Many(Vec<StrategyKind>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(k) => vec![k],
        OneOrMany::Many(v) => v,
    })
}

/// Accepts `server = "http://a:2379,http://b:2379"` (EMQX style) as well as a list.
fn comma_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => split_list(&s),
        OneOrMany::Many(v) => v.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
    })
}

pub(crate) fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// The `[discovery]` table.
///
/// ```
/// use gossamer_discovery::{DiscoveryConfig, StrategyKind};
/// let cfg: DiscoveryConfig = toml::from_str(r#"
///     strategy = ["static", "dns"]
///     [static]
///     seeds = ["gossamer@10.0.0.1:7946", "10.0.0.2:7946"]
///     [dns]
///     query = "gossamer.example.internal"
///     record_type = "a"
/// "#).unwrap();
/// assert_eq!(cfg.strategy, vec![StrategyKind::Static, StrategyKind::Dns]);
/// assert_eq!(cfg.dns.poll_interval_ms, 5000);
/// assert!(toml::from_str::<DiscoveryConfig>("stratgy = \"dns\"").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoveryConfig {
    /// Which strategies run: one name or a list. Default `manual`.
    #[serde(deserialize_with = "one_or_many")]
    pub strategy: Vec<StrategyKind>,
    /// This node's name, needed to register in etcd. The agent fills it from its own config if unset.
    pub node_name: Option<String>,
    /// This node's gossip address as peers should reach it (etcd registration).
    pub advertise_addr: Option<SocketAddr>,
    /// First retry delay after a failed discovery round, in ms.
    pub backoff_initial_ms: u64,
    /// Cap on the retry delay, in ms.
    pub backoff_max_ms: u64,
    /// `[discovery.static]`.
    #[serde(rename = "static")]
    pub static_: StaticConfig,
    /// `[discovery.hosts]`.
    pub hosts: HostsConfig,
    /// `[discovery.mcast]`.
    pub mcast: McastConfig,
    /// `[discovery.dns]`.
    pub dns: DnsConfig,
    /// `[discovery.etcd]`.
    pub etcd: EtcdConfig,
    /// `[discovery.k8s]`.
    pub k8s: K8sConfig,
    /// `[discovery.rancher]`.
    pub rancher: RancherConfig,
    /// `[discovery.local]`.
    pub local: LocalConfig,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            strategy: vec![StrategyKind::Manual],
            node_name: None,
            advertise_addr: None,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 60_000,
            static_: StaticConfig::default(),
            hosts: HostsConfig::default(),
            mcast: McastConfig::default(),
            dns: DnsConfig::default(),
            etcd: EtcdConfig::default(),
            k8s: K8sConfig::default(),
            rancher: RancherConfig::default(),
            local: LocalConfig::default(),
        }
    }
}

/// `[discovery.static]`: a fixed seed list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaticConfig {
    /// `name@host:port`, `host:port` or `host` (takes `default_port`).
    pub seeds: Vec<String>,
    /// Port for seeds written without one.
    pub default_port: u16,
    /// How often host names are re-resolved, in ms.
    pub poll_interval_ms: u64,
}

impl Default for StaticConfig {
    fn default() -> Self {
        StaticConfig { seeds: Vec::new(), default_port: DEFAULT_GOSSIP_PORT, poll_interval_ms: 30_000 }
    }
}

/// `[discovery.hosts]`: a file with one `[name@]host[:port]` per line, re-read when it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostsConfig {
    /// The file's path.
    pub path: Option<PathBuf>,
    /// Port for lines without one.
    pub default_port: u16,
    /// How often the file's mtime is checked, in ms.
    pub poll_interval_ms: u64,
}

impl Default for HostsConfig {
    fn default() -> Self {
        HostsConfig { path: None, default_port: DEFAULT_GOSSIP_PORT, poll_interval_ms: 5_000 }
    }
}

/// `[discovery.mcast]`: the UDP multicast heartbeat's settings. The heartbeat itself runs in the runtime
/// crate (gossamer-net), which reads this struct when `strategy` contains `mcast`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct McastConfig {
    /// Multicast group (default 239.192.0.1, organisation-local scope).
    pub group: IpAddr,
    /// UDP port of the heartbeat (default 7947, next to the gossip port).
    pub port: u16,
    /// Local interface address to send/join on (`None`: the OS default, 0.0.0.0).
    pub iface: Option<IpAddr>,
    /// Multicast TTL; 1 keeps heartbeats on the local link.
    pub ttl: u32,
    /// Whether this host receives its own heartbeats (needed for several nodes on one host).
    #[serde(rename = "loop")]
    pub loopback: bool,
    /// Heartbeat period, in ms.
    pub interval_ms: u64,
}

impl Default for McastConfig {
    fn default() -> Self {
        McastConfig {
            group: IpAddr::V4(Ipv4Addr::new(239, 192, 0, 1)),
            port: 7947,
            iface: None,
            ttl: 1,
            loopback: true,
            interval_ms: 1_000,
        }
    }
}

/// DNS record type to query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsRecordType {
    /// A and AAAA records; every address gets `port`.
    A,
    /// SRV records, which carry each peer's port.
    Srv,
}

/// `[discovery.dns]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// The name to query (EMQX `name`, libcluster `query`). Blank: DNS discovery stays off.
    #[serde(alias = "name")]
    pub query: String,
    /// `a` (A+AAAA) or `srv`.
    pub record_type: DnsRecordType,
    /// Port for A/AAAA answers.
    pub port: u16,
    /// Node names are `<node_basename>@<ip>`.
    pub node_basename: String,
    /// Poll period, in ms.
    pub poll_interval_ms: u64,
    /// Nameserver `ip:port` (or `ip`, port 53); unset: the system's resolv.conf.
    pub nameserver: Option<String>,
    /// Per-query timeout, in ms.
    pub timeout_ms: u64,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            query: String::new(),
            record_type: DnsRecordType::A,
            port: DEFAULT_GOSSIP_PORT,
            node_basename: "gossamer".into(),
            poll_interval_ms: 5_000,
            nameserver: None,
            timeout_ms: 2_000,
        }
    }
}

/// `[discovery.etcd]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EtcdConfig {
    /// Base URLs of etcd's client endpoint, as a list or comma-separated (EMQX `server`).
    #[serde(deserialize_with = "comma_list")]
    pub server: Vec<String>,
    /// Key prefix; nodes live under `<prefix>/nodes/<name>`.
    pub prefix: String,
    /// Lease TTL, in ms (rounded up to whole seconds, etcd's unit).
    pub node_ttl_ms: u64,
    /// Poll period, in ms.
    pub poll_interval_ms: u64,
    /// Per-request timeout, in ms.
    pub timeout_ms: u64,
    /// CA bundle (PEM) for `https://` servers with a private CA; unset: the platform's roots.
    pub ca_file: Option<PathBuf>,
    /// Largest response body accepted, in bytes (default 4 MiB, about 16,000 registered nodes); a
    /// larger answer is refused while it streams in, so a rogue server cannot exhaust memory.
    pub max_body_bytes: usize,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        EtcdConfig {
            server: Vec::new(),
            prefix: "gossamer".into(),
            node_ttl_ms: 60_000,
            poll_interval_ms: 5_000,
            timeout_ms: 3_000,
            ca_file: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// How Kubernetes node names are formed (EMQX's `address_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressType {
    /// `basename@10.1.2.3`.
    Ip,
    /// `basename@10-1-2-3.<namespace>.<suffix>` (suffix default `pod.cluster.local`).
    Dns,
    /// `basename@<hostname>.<service>.<namespace>.<suffix>` (suffix default `svc.cluster.local`).
    Hostname,
}

/// Which Kubernetes mechanism to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum K8sMode {
    /// The API server (Endpoints / EndpointSlices).
    Api,
    /// A headless Service's A records (no RBAC needed).
    Dns,
}

/// Which Kubernetes API object lists the pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum K8sApi {
    /// `discovery.k8s.io/v1` EndpointSlices labelled with the service name (the default).
    EndpointSlices,
    /// core/v1 Endpoints (deprecated upstream since 1.33, still served).
    Endpoints,
}

/// `[discovery.k8s]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct K8sConfig {
    /// `api` or `dns`.
    pub mode: K8sMode,
    /// API server URL; unset: `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`.
    pub apiserver: Option<String>,
    /// `endpointslices` or `endpoints`.
    pub api: K8sApi,
    /// The (headless) Service in front of the gossamer pods.
    pub service_name: String,
    /// Namespace; unset: the in-pod namespace file, else `default`.
    pub namespace: Option<String>,
    /// Extra label selector (`app=gossamer,tier=x`).
    pub label_selector: Option<String>,
    /// `ip`, `dns` or `hostname`.
    pub address_type: AddressType,
    /// Domain suffix for `dns`/`hostname` names; unset: `pod.cluster.local` / `svc.cluster.local`.
    pub suffix: Option<String>,
    /// Node basename.
    pub node_basename: String,
    /// Gossip port on the pods.
    pub port: u16,
    /// Take the port from the endpoint port with this name instead of `port`.
    pub port_name: Option<String>,
    /// Bearer token literal (prefer `token_file`); kept out of `Debug` output and wiped on drop.
    pub token: Option<Secret>,
    /// Token file; unset: the in-pod service-account token (used if present).
    pub token_file: Option<PathBuf>,
    /// CA bundle; unset: the in-pod `ca.crt` if present, else the platform's roots.
    pub ca_file: Option<PathBuf>,
    /// For `mode = "dns"`: nameserver `ip:port`; unset: resolv.conf.
    pub nameserver: Option<String>,
    /// For `mode = "dns"`: the cluster domain used to build `<service>.<namespace>.svc.<cluster_domain>`.
    pub cluster_domain: String,
    /// Poll period, in ms.
    pub poll_interval_ms: u64,
    /// Per-request timeout, in ms.
    pub timeout_ms: u64,
    /// Largest API response body accepted, in bytes (default 16 MiB: an EndpointSlice list of 10,000
    /// pods is about 5 MB); a larger answer is refused while it streams in.
    pub max_body_bytes: usize,
}

impl Default for K8sConfig {
    fn default() -> Self {
        K8sConfig {
            mode: K8sMode::Api,
            apiserver: None,
            api: K8sApi::EndpointSlices,
            service_name: String::new(),
            namespace: None,
            label_selector: None,
            address_type: AddressType::Ip,
            suffix: None,
            node_basename: "gossamer".into(),
            port: DEFAULT_GOSSIP_PORT,
            port_name: None,
            token: None,
            token_file: None,
            ca_file: None,
            nameserver: None,
            cluster_domain: "cluster.local".into(),
            poll_interval_ms: 5_000,
            timeout_ms: 5_000,
            max_body_bytes: DEFAULT_K8S_MAX_BODY_BYTES,
        }
    }
}

/// `[discovery.rancher]`: the Rancher 1.x metadata service (libcluster's `Rancher`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RancherConfig {
    /// Versioned metadata base URL; `<metadata_url>/self/service` is polled. A bare host gets `/latest`.
    pub metadata_url: String,
    /// Gossip port on the containers.
    pub port: u16,
    /// Node names are `<node_basename>@<primary_ip>`.
    pub node_basename: String,
    /// Poll period, in ms.
    pub poll_interval_ms: u64,
    /// Per-request timeout, in ms.
    pub timeout_ms: u64,
    /// Largest metadata response body accepted, in bytes (default 4 MiB); a larger answer is refused
    /// while it streams in.
    pub max_body_bytes: usize,
}

impl Default for RancherConfig {
    fn default() -> Self {
        RancherConfig {
            metadata_url: "http://rancher-metadata/2015-12-19".into(),
            port: DEFAULT_GOSSIP_PORT,
            node_basename: "gossamer".into(),
            poll_interval_ms: 5_000,
            timeout_ms: 2_000,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// `[discovery.local]`: nodes on one host share a registry directory (libcluster's `LocalEpmd`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalConfig {
    /// The registry directory, used as is. Unset: `$XDG_RUNTIME_DIR/gossamer/<cluster>`, else
    /// `<temp dir>/gossamer-<uid>/<cluster>`.
    pub dir: Option<PathBuf>,
    /// Selects the default directory's last component, so several clusters can share a host.
    pub cluster: String,
    /// Poll period, in ms.
    pub poll_interval_ms: u64,
    /// Where a registrant's PID cannot be checked (not Linux, or another PID namespace), an entry not
    /// rewritten for this long is stale, in ms.
    pub ttl_ms: u64,
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig { dir: None, cluster: "default".into(), poll_interval_ms: 1_000, ttl_ms: 30_000 }
    }
}

fn nonzero(key: &str, v: u64) -> Result<Duration, ConfigError> {
    if v == 0 {
        return Err(ConfigError::invalid(key, "0", "must be greater than 0"));
    }
    Ok(Duration::from_millis(v))
}

fn nonzero_bytes(key: &str, v: usize) -> Result<(), ConfigError> {
    if v == 0 {
        return Err(ConfigError::invalid(key, "0", "must be greater than 0 (a body size limit in bytes)"));
    }
    Ok(())
}

/// Parses `ip:port`, `[v6]:port` or a bare IP (port 53).
pub(crate) fn parse_nameserver(key: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    let s = s.trim();
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    s.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| ConfigError::invalid(key, s, "expected ip:port or ip"))
}

impl DiscoveryConfig {
    /// Parses the `[discovery]` table from TOML text (the table's contents, not the whole node file).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Toml(e.to_string()))
    }

    /// Applies `GOSSAMER_*` (and `KUBERNETES_SERVICE_*`) overrides from the process environment.
    pub fn apply_env(&mut self) -> Result<(), ConfigError> {
        crate::env::apply_env_from(self, std::env::vars())
    }

    /// Whether a strategy is selected.
    pub fn enabled(&self, kind: StrategyKind) -> bool {
        self.strategy.contains(&kind)
    }

    /// The multicast settings when `mcast` is selected (the runtime runs the heartbeat).
    pub fn mcast_enabled(&self) -> Option<&McastConfig> {
        self.enabled(StrategyKind::Mcast).then_some(&self.mcast)
    }

    /// The runner's retry policy.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            initial: Duration::from_millis(self.backoff_initial_ms.max(1)),
            max: Duration::from_millis(self.backoff_max_ms.max(self.backoff_initial_ms).max(1)),
        }
    }

    /// Checks values a strategy would trip over, naming the key at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        nonzero("discovery.backoff_initial_ms", self.backoff_initial_ms)?;
        nonzero("discovery.backoff_max_ms", self.backoff_max_ms)?;
        if let Some(n) = &self.node_name {
            if n.is_empty() || n.len() > 255 {
                return Err(ConfigError::invalid("discovery.node_name", n, "must be 1 to 255 bytes"));
            }
        }
        for kind in &self.strategy {
            match kind {
                StrategyKind::Manual => {}
                StrategyKind::Static => {
                    nonzero("discovery.static.poll_interval_ms", self.static_.poll_interval_ms)?;
                    if self.static_.seeds.is_empty() {
                        return Err(ConfigError::Missing { key: "discovery.static.seeds".into(), strategy: "static" });
                    }
                    for s in &self.static_.seeds {
                        crate::SeedSpec::parse(s, self.static_.default_port)
                            .map_err(|e| ConfigError::invalid("discovery.static.seeds", s, e))?;
                    }
                }
                StrategyKind::Hosts => {
                    nonzero("discovery.hosts.poll_interval_ms", self.hosts.poll_interval_ms)?;
                    if self.hosts.path.is_none() {
                        return Err(ConfigError::Missing { key: "discovery.hosts.path".into(), strategy: "hosts" });
                    }
                }
                StrategyKind::Mcast => {
                    if !self.mcast.group.is_multicast() {
                        return Err(ConfigError::invalid(
                            "discovery.mcast.group",
                            self.mcast.group.to_string(),
                            "not a multicast address",
                        ));
                    }
                    if self.mcast.port == 0 {
                        return Err(ConfigError::invalid("discovery.mcast.port", "0", "must be a real port"));
                    }
                    nonzero("discovery.mcast.interval_ms", self.mcast.interval_ms)?;
                }
                StrategyKind::Dns => {
                    nonzero("discovery.dns.poll_interval_ms", self.dns.poll_interval_ms)?;
                    nonzero("discovery.dns.timeout_ms", self.dns.timeout_ms)?;
                    if let Some(ns) = &self.dns.nameserver {
                        parse_nameserver("discovery.dns.nameserver", ns)?;
                    }
                    if self.dns.record_type == DnsRecordType::A && self.dns.port == 0 {
                        return Err(ConfigError::invalid("discovery.dns.port", "0", "must be a real port"));
                    }
                }
                StrategyKind::Etcd => {
                    nonzero("discovery.etcd.node_ttl_ms", self.etcd.node_ttl_ms)?;
                    nonzero("discovery.etcd.poll_interval_ms", self.etcd.poll_interval_ms)?;
                    nonzero("discovery.etcd.timeout_ms", self.etcd.timeout_ms)?;
                    nonzero_bytes("discovery.etcd.max_body_bytes", self.etcd.max_body_bytes)?;
                    if self.etcd.server.is_empty() {
                        return Err(ConfigError::Missing { key: "discovery.etcd.server".into(), strategy: "etcd" });
                    }
                    for s in &self.etcd.server {
                        if !(s.starts_with("http://") || s.starts_with("https://")) {
                            return Err(ConfigError::invalid(
                                "discovery.etcd.server",
                                s,
                                "must start with http:// or https://",
                            ));
                        }
                    }
                    if self.etcd.prefix.trim_matches('/').is_empty() {
                        return Err(ConfigError::invalid(
                            "discovery.etcd.prefix",
                            &self.etcd.prefix,
                            "must not be empty",
                        ));
                    }
                    if self.node_name.is_none() {
                        return Err(ConfigError::Missing { key: "discovery.node_name".into(), strategy: "etcd" });
                    }
                    if self.advertise_addr.is_none() {
                        return Err(ConfigError::Missing { key: "discovery.advertise_addr".into(), strategy: "etcd" });
                    }
                }
                StrategyKind::Rancher => {
                    let r = &self.rancher;
                    nonzero("discovery.rancher.poll_interval_ms", r.poll_interval_ms)?;
                    nonzero("discovery.rancher.timeout_ms", r.timeout_ms)?;
                    nonzero_bytes("discovery.rancher.max_body_bytes", r.max_body_bytes)?;
                    if r.port == 0 {
                        return Err(ConfigError::invalid("discovery.rancher.port", "0", "must be a real port"));
                    }
                    if !(r.metadata_url.starts_with("http://") || r.metadata_url.starts_with("https://")) {
                        return Err(ConfigError::invalid(
                            "discovery.rancher.metadata_url",
                            &r.metadata_url,
                            "must start with http:// or https://",
                        ));
                    }
                }
                StrategyKind::Local => {
                    let l = &self.local;
                    nonzero("discovery.local.poll_interval_ms", l.poll_interval_ms)?;
                    nonzero("discovery.local.ttl_ms", l.ttl_ms)?;
                    let c = l.cluster.as_str();
                    if c.is_empty() || c == "." || c == ".." || c.contains(['/', '\\', '\0']) {
                        return Err(ConfigError::invalid(
                            "discovery.local.cluster",
                            c,
                            "must be a plain directory name (no '/', not '.' or '..')",
                        ));
                    }
                    if l.dir.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
                        return Err(ConfigError::invalid("discovery.local.dir", "", "must not be empty"));
                    }
                    if self.node_name.is_none() {
                        return Err(ConfigError::Missing { key: "discovery.node_name".into(), strategy: "local" });
                    }
                    if self.advertise_addr.is_none() {
                        return Err(ConfigError::Missing { key: "discovery.advertise_addr".into(), strategy: "local" });
                    }
                }
                StrategyKind::K8s => {
                    let k = &self.k8s;
                    nonzero("discovery.k8s.poll_interval_ms", k.poll_interval_ms)?;
                    nonzero("discovery.k8s.timeout_ms", k.timeout_ms)?;
                    nonzero_bytes("discovery.k8s.max_body_bytes", k.max_body_bytes)?;
                    if k.service_name.trim().is_empty() {
                        return Err(ConfigError::Missing { key: "discovery.k8s.service_name".into(), strategy: "k8s" });
                    }
                    match k.mode {
                        K8sMode::Api => {
                            if k.apiserver.is_none() {
                                return Err(ConfigError::Missing {
                                    key: "discovery.k8s.apiserver (or KUBERNETES_SERVICE_HOST)".into(),
                                    strategy: "k8s",
                                });
                            }
                        }
                        K8sMode::Dns => {
                            if k.address_type == AddressType::Hostname {
                                return Err(ConfigError::invalid(
                                    "discovery.k8s.address_type",
                                    "hostname",
                                    "needs mode = \"api\" (DNS A records carry no pod hostname)",
                                ));
                            }
                            if let Some(ns) = &k.nameserver {
                                parse_nameserver("discovery.k8s.nameserver", ns)?;
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
