//! The agent's configuration file (TOML) and its environment overrides.
//!
//! Every key can be overridden by a `GOSSAMER_*` variable. Overrides are
//! applied by [`apply_env`] from a map, so tests never touch the process
//! environment. Every value is checked when the agent starts, and the error
//! names the key (or the variable it came from).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use gossamer::core::ProtocolConfig;
use gossamer::discovery::{apply_env_from, multicast_config, DiscoveryConfig, Secret};
use gossamer::net::{MulticastConfig, NodeConfig, TlsConfig};
use gossamer_heal::HealTable;
use serde::Deserialize;

/// A configuration value that was refused.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said (names the key).
        message: String,
    },
    /// A discovery setting was refused (the message names the key or variable).
    #[error("invalid discovery setting: {0}")]
    Discovery(String),
    /// A value was refused; `key` is the TOML key or the variable.
    #[error("invalid `{key}`: {reason}")]
    Invalid {
        /// TOML key or environment variable.
        key: String,
        /// Why.
        reason: String,
    },
}

pub(crate) fn invalid(key: impl Into<String>, reason: impl ToString) -> SettingsError {
    SettingsError::Invalid { key: key.into(), reason: reason.to_string() }
}

/// The `[multicast]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MulticastSettings {
    /// Whether to announce and listen.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Group address, IPv4 (default 239.192.0.1) or IPv6 (e.g. ff12::6773:6d72).
    pub group: Option<IpAddr>,
    /// Group port.
    pub port: Option<u16>,
    /// Interface: its IPv4 address for an IPv4 group; its index, name or an
    /// IPv6 address of it for an IPv6 group.
    pub interface: Option<String>,
    /// IP_MULTICAST_TTL.
    pub ttl: Option<u32>,
    /// IP_MULTICAST_LOOP.
    pub loopback: Option<bool>,
    /// Heartbeat period in milliseconds.
    pub interval_ms: Option<u64>,
}

fn yes() -> bool {
    true
}

impl Default for MulticastSettings {
    fn default() -> Self {
        Self { enabled: true, group: None, port: None, interface: None, ttl: None, loopback: None, interval_ms: None }
    }
}

/// The `[tls]` table: mutual TLS under the push-pull stream. Relative paths
/// are relative to the config file's directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// This node's certificate, then intermediates (PEM file).
    pub cert: Option<PathBuf>,
    /// Its private key (PEM file).
    pub key: Option<PathBuf>,
    /// The cluster's CA certificate(s) (PEM file): peers must chain to it.
    pub ca: Option<PathBuf>,
    /// Also require an IP SAN equal to the address dialed.
    #[serde(default)]
    pub verify_peer_ip: bool,
}

/// The whole agent file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    /// Node name.
    pub name: Option<String>,
    /// Bind address of the protocol sockets.
    pub bind: Option<String>,
    /// Advertised address.
    pub advertise: Option<String>,
    /// Cluster label.
    pub cluster: Option<String>,
    /// Cluster secret, 64 hex digits (`gossamer keygen` prints one). Required unless `insecure`;
    /// kept out of `Debug` output and wiped from memory on drop.
    pub secret: Option<Secret>,
    /// Run without a secret: frames neither authenticated nor encrypted, so anyone who can reach the
    /// port can join and forge membership. Off by default (the agent refuses to start without a
    /// secret); for a trusted lab network only.
    #[serde(default)]
    pub insecure: bool,
    /// More cluster keys accepted besides `secret` (64 hex digits each; `secret` seals): stage the
    /// next key here before a live rotation (`gossamer keys`) so a restart mid-rotation still reads
    /// every member. Empty by default; never printed.
    #[serde(default)]
    pub keys: Vec<Secret>,
    /// `lan`, `wan` or `local`; when given, it wins over `[protocol] preset`.
    pub preset: Option<String>,
    /// Addresses to join at start: `host:port`, `[v6]:port` or `ip:port`. Names are resolved by the
    /// agent at start and again while it is alone, so DNS changes are followed.
    #[serde(default)]
    pub seeds: Vec<String>,
    /// Where the control file is written (default: the config file's directory).
    pub data_dir: Option<PathBuf>,
    /// Address of the control listener (loopback only; port 0 by default).
    pub control_bind: Option<String>,
    /// Bound of a graceful leave, in milliseconds.
    pub leave_timeout_ms: Option<u64>,
    /// LZ4-compress frame bodies longer than this many bytes (off when
    /// absent); every member must run a version that reads compressed
    /// frames (see `NodeConfig::compression`).
    pub compression: Option<usize>,
    /// Log filter (tracing-subscriber syntax), e.g. `info,gossamer_core=debug`.
    pub log: Option<String>,
    /// Log line format: `"text"` (default; colour only on a terminal) or
    /// `"json"` (one object per line, for log shippers).
    pub log_format: Option<crate::logging::LogFormat>,
    /// This node's metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The `[protocol]` table: gossamer-core's own schema, a preset plus any
    /// `Config` key (see [`crate::tables`]).
    #[serde(default)]
    pub protocol: ProtocolConfig,
    /// Multicast discovery.
    pub multicast: Option<MulticastSettings>,
    /// Mutual TLS of the push-pull stream.
    pub tls: Option<TlsSettings>,
    /// Discovery strategies (the discovery crate's `[discovery]` table:
    /// `strategy = "static" | "hosts" | "dns" | "etcd" | "k8s" | "mcast"`).
    pub discovery: Option<DiscoveryConfig>,
    /// Partition detection, autoheal and autoclean: gossamer-heal's own
    /// `[heal]` schema (on unless `enabled = false`, see [`crate::tables`]).
    #[serde(default)]
    pub heal: HealTable,
    /// The HTTP read API and `/metrics` (`[http]`, see [`crate::http_api`]); off when absent, loopback
    /// by default when present.
    pub http: Option<crate::http_api::HttpSettings>,
    /// The DNS interface (`[dns]`, see [`crate::dns`]); off when absent, loopback by default when present.
    pub dns: Option<crate::dns::DnsSettings>,
    /// Event handlers (`[[handlers]]`, see [`crate::handlers`]): shell commands run on membership
    /// changes, user events and queries. None by default.
    #[serde(default)]
    pub handlers: Vec<crate::handlers::HandlerSettings>,
}

/// The environment variables [`apply_env`] knows besides those of the
/// `[protocol]` and `[heal]` tables, which are generated from the schema
/// ([`env_vars`] lists them all).
pub const ENV_VARS: &[&str] = &[
    "GOSSAMER_NODE_NAME",
    "GOSSAMER_BIND",
    "GOSSAMER_ADVERTISE",
    "GOSSAMER_CLUSTER",
    "GOSSAMER_SECRET",
    "GOSSAMER_INSECURE",
    "GOSSAMER_KEYS",
    "GOSSAMER_PRESET",
    "GOSSAMER_SEEDS",
    "GOSSAMER_DATA_DIR",
    "GOSSAMER_CONTROL_BIND",
    "GOSSAMER_LEAVE_TIMEOUT_MS",
    "GOSSAMER_COMPRESSION",
    "GOSSAMER_LOG",
    "GOSSAMER_LOG_FORMAT",
    "GOSSAMER_METADATA",
    "GOSSAMER_MULTICAST",
    "GOSSAMER_MULTICAST_GROUP",
    "GOSSAMER_MULTICAST_PORT",
    "GOSSAMER_MULTICAST_INTERFACE",
    "GOSSAMER_MULTICAST_TTL",
    "GOSSAMER_MULTICAST_LOOP",
    "GOSSAMER_MULTICAST_INTERVAL_MS",
    "GOSSAMER_TLS_CERT",
    "GOSSAMER_TLS_KEY",
    "GOSSAMER_TLS_CA",
    "GOSSAMER_TLS_VERIFY_PEER_IP",
    "GOSSAMER_DISCOVERY",
    "GOSSAMER_STATIC_SEEDS",
    "GOSSAMER_HOSTS_FILE",
    "GOSSAMER_DNS_QUERY",
    "GOSSAMER_DNS_PORT",
    "GOSSAMER_DNS_POLL_INTERVAL_MS",
    "GOSSAMER_DNS_RECORD_TYPE",
    "GOSSAMER_DNS_NODE_BASENAME",
    "GOSSAMER_DNS_NAMESERVER",
    "GOSSAMER_ETCD_SERVER",
    "GOSSAMER_ETCD_PREFIX",
    "GOSSAMER_ETCD_NODE_TTL_MS",
    "GOSSAMER_ETCD_MAX_BODY_BYTES",
    "GOSSAMER_ADVERTISE_ADDR",
    "GOSSAMER_K8S_*",
    "GOSSAMER_RANCHER_*",
    "GOSSAMER_LOCAL_*",
];

/// Whether `var` belongs to the discovery crate's overrides.
/// Every environment variable [`apply_env`] knows: [`ENV_VARS`] and the
/// `[protocol]`/`[heal]` variables generated from the schema.
pub fn env_vars() -> Vec<String> {
    ENV_VARS.iter().map(|v| v.to_string()).chain(crate::tables::env_vars()).collect()
}

fn is_discovery_var(var: &str) -> bool {
    matches!(var, "GOSSAMER_DISCOVERY" | "GOSSAMER_STATIC_SEEDS" | "GOSSAMER_HOSTS_FILE" | "GOSSAMER_ADVERTISE_ADDR")
        || ["GOSSAMER_DNS_", "GOSSAMER_ETCD_", "GOSSAMER_K8S_", "GOSSAMER_RANCHER_", "GOSSAMER_LOCAL_"]
            .iter()
            .any(|p| var.starts_with(p))
}

impl AgentSettings {
    /// Reads and parses a file (unknown keys are refused).
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        // The text may hold the cluster secret: wiped once parsed.
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| SettingsError::Read { path: path.to_owned(), source })?,
        );
        Self::parse(&text).map_err(|message| SettingsError::Parse { path: path.to_owned(), message })
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

fn parse_env<T: std::str::FromStr>(var: &str, value: &str) -> Result<T, SettingsError>
where
    T::Err: std::fmt::Display,
{
    value.trim().parse().map_err(|e: T::Err| invalid(var, format!("{value:?}: {e}")))
}

pub(crate) fn parse_bool(var: &str, value: &str) -> Result<bool, SettingsError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(var, format!("{value:?} is not a boolean (true/false)"))),
    }
}

/// Applies `GOSSAMER_*` overrides from `env` on top of `settings`. Unknown
/// `GOSSAMER_*` variables are returned so the caller can warn about them.
pub fn apply_env(settings: &mut AgentSettings, env: &BTreeMap<String, String>) -> Result<Vec<String>, SettingsError> {
    let mut unknown = Vec::new();
    for (var, value) in env.iter().filter(|(k, _)| k.starts_with("GOSSAMER_")) {
        let v = value.clone();
        match var.as_str() {
            "GOSSAMER_NODE_NAME" => settings.name = Some(v),
            "GOSSAMER_BIND" => settings.bind = Some(v),
            "GOSSAMER_ADVERTISE" => settings.advertise = Some(v),
            "GOSSAMER_CLUSTER" => settings.cluster = Some(v),
            "GOSSAMER_SECRET" => settings.secret = Some(Secret::new(v)),
            "GOSSAMER_INSECURE" => settings.insecure = parse_bool(var, &v)?,
            "GOSSAMER_KEYS" => {
                settings.keys = v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Secret::new).collect()
            }
            "GOSSAMER_PRESET" => settings.preset = Some(v),
            "GOSSAMER_SEEDS" => {
                settings.seeds = v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
            }
            "GOSSAMER_DATA_DIR" => settings.data_dir = Some(PathBuf::from(v)),
            "GOSSAMER_CONTROL_BIND" => settings.control_bind = Some(v),
            "GOSSAMER_LEAVE_TIMEOUT_MS" => settings.leave_timeout_ms = Some(parse_env(var, &v)?),
            "GOSSAMER_COMPRESSION" => settings.compression = Some(parse_env(var, &v)?),
            "GOSSAMER_LOG" => settings.log = Some(v),
            "GOSSAMER_LOG_FORMAT" => settings.log_format = Some(parse_env(var, &v)?),
            "GOSSAMER_METADATA" => {
                let mut meta = BTreeMap::new();
                for pair in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let (k, val) =
                        pair.split_once('=').ok_or_else(|| invalid(var, format!("{pair:?} is not key=value")))?;
                    meta.insert(k.trim().to_owned(), val.trim().to_owned());
                }
                settings.metadata = meta;
            }
            "GOSSAMER_MULTICAST" => settings_multicast(&mut settings.multicast).enabled = parse_bool(var, &v)?,
            "GOSSAMER_MULTICAST_GROUP" => settings_multicast(&mut settings.multicast).group = Some(parse_env(var, &v)?),
            "GOSSAMER_MULTICAST_PORT" => settings_multicast(&mut settings.multicast).port = Some(parse_env(var, &v)?),
            "GOSSAMER_MULTICAST_INTERFACE" => settings_multicast(&mut settings.multicast).interface = Some(v),
            "GOSSAMER_MULTICAST_TTL" => settings_multicast(&mut settings.multicast).ttl = Some(parse_env(var, &v)?),
            "GOSSAMER_MULTICAST_LOOP" => {
                settings_multicast(&mut settings.multicast).loopback = Some(parse_bool(var, &v)?)
            }
            "GOSSAMER_MULTICAST_INTERVAL_MS" => {
                settings_multicast(&mut settings.multicast).interval_ms = Some(parse_env(var, &v)?)
            }
            "GOSSAMER_TLS_CERT" => settings_tls(&mut settings.tls).cert = Some(PathBuf::from(v)),
            "GOSSAMER_TLS_KEY" => settings_tls(&mut settings.tls).key = Some(PathBuf::from(v)),
            "GOSSAMER_TLS_CA" => settings_tls(&mut settings.tls).ca = Some(PathBuf::from(v)),
            "GOSSAMER_TLS_VERIFY_PEER_IP" => settings_tls(&mut settings.tls).verify_peer_ip = parse_bool(var, &v)?,
            var if is_discovery_var(var) => {}
            var if crate::tables::apply_env_var(&mut settings.protocol, &mut settings.heal, var, &v)? => {}
            _ => unknown.push(var.clone()),
        }
    }
    if env.keys().any(|k| is_discovery_var(k)) {
        let discovery = settings.discovery.get_or_insert_with(DiscoveryConfig::default);
        apply_env_from(discovery, env.iter().map(|(k, v)| (k.clone(), v.clone())))
            .map_err(|e| SettingsError::Discovery(e.to_string()))?;
    }
    Ok(unknown)
}

fn settings_multicast(slot: &mut Option<MulticastSettings>) -> &mut MulticastSettings {
    slot.get_or_insert_with(MulticastSettings::default)
}

fn settings_tls(slot: &mut Option<TlsSettings>) -> &mut TlsSettings {
    slot.get_or_insert_with(TlsSettings::default)
}

/// The node's TLS settings from the `[tls]` table: all three files are
/// required, and are read and checked now so a bad file names its key.
fn resolve_tls(tls: &TlsSettings, config_dir: &Path) -> Result<TlsConfig, SettingsError> {
    let file = |key: &str, path: &Option<PathBuf>| {
        path.as_ref().map(|p| config_dir.join(p)).ok_or_else(|| invalid(key, "required when [tls] is set"))
    };
    let mut config =
        TlsConfig::from_files(file("tls.cert", &tls.cert)?, file("tls.key", &tls.key)?, file("tls.ca", &tls.ca)?);
    config.verify_peer_ip = tls.verify_peer_ip;
    config.load_check().map_err(|e| invalid(format!("tls.{}", e.setting()), e))?;
    Ok(config)
}

/// What the agent runs with, every value checked.
#[derive(Debug)]
pub struct Resolved {
    /// The node. Its `seeds` hold the IP-literal seeds only: the agent resolves the names in
    /// [`Resolved::seeds`] (and replaces `node.seeds`) before it starts the node.
    pub node: NodeConfig,
    /// Every seed as written (`host:port`), unresolved: names are looked up at use time.
    pub seeds: Vec<crate::seeds::HostPort>,
    /// Where the control file goes.
    pub data_dir: PathBuf,
    /// The control listener's address.
    pub control_bind: SocketAddr,
    /// Log filter.
    pub log: String,
    /// Log line format.
    pub log_format: crate::logging::LogFormat,
    /// Discovery strategies to run once the node is up.
    pub discovery: Option<DiscoveryConfig>,
    /// Running without a secret (`insecure = true`): said loudly at start.
    pub insecure: bool,
    /// The HTTP listener, when `[http]` is set.
    pub http: Option<crate::http_api::HttpConfig>,
    /// The DNS server, when `[dns]` is set.
    pub dns: Option<crate::dns::DnsConfig>,
    /// The event handlers, checked.
    pub handlers: Vec<crate::handlers::HandlerConfig>,
}

fn addr(key: &str, value: &str) -> Result<SocketAddr, SettingsError> {
    value.trim().parse().map_err(|e| invalid(key, format!("{value:?} is not ip:port ({e})")))
}

impl AgentSettings {
    /// Checks every value and builds the node's configuration. `config_dir`
    /// is the default `data_dir`.
    pub fn resolve(&self, config_dir: &Path) -> Result<Resolved, SettingsError> {
        let name = self.name.as_deref().ok_or_else(|| invalid("name", "required (or GOSSAMER_NODE_NAME)"))?;
        let bind = addr("bind", self.bind.as_deref().unwrap_or("0.0.0.0:7946"))?;
        let mut protocol = self.protocol.clone();
        if let Some(preset) = &self.preset {
            protocol.preset = preset.parse().map_err(|e| invalid("preset", e))?;
        }
        let mut node = NodeConfig::new(name, bind, protocol.preset).map_err(|e| invalid("name", e))?;
        node.protocol = protocol.to_config().map_err(|e| invalid(format!("protocol.{}", e.field), e.reason))?;
        node.advertise = self.advertise.as_deref().map(|a| addr("advertise", a)).transpose()?;
        node.cluster = self.cluster.clone().unwrap_or_default();
        if let Some(secret) = &self.secret {
            node.set_secret_hex(secret.expose().trim())
                .map_err(|_| invalid("secret", "must be 64 hex digits (32 bytes); `gossamer keygen` prints one"))?;
        }
        for key in &self.keys {
            node.keys.push(
                key.expose().trim().parse().map_err(|_| invalid("keys", "each must be 64 hex digits (32 bytes)"))?,
            );
        }
        let seeds: Vec<crate::seeds::HostPort> = self
            .seeds
            .iter()
            .map(|s| crate::seeds::HostPort::parse(s).map_err(|e| invalid("seeds", e)))
            .collect::<Result<_, _>>()?;
        node.seeds = seeds.iter().filter_map(crate::seeds::HostPort::literal).collect();
        if let Some(ms) = self.leave_timeout_ms {
            node.leave_timeout = Duration::from_millis(ms);
        }
        node.compression = self.compression;
        for (k, v) in &self.metadata {
            node.metadata.insert(k, v.as_bytes().to_vec()).map_err(|e| invalid(format!("metadata.{k}"), e))?;
        }
        let discovery_mcast = match &self.discovery {
            Some(d) => {
                d.validate().map_err(|e| SettingsError::Discovery(e.to_string()))?;
                d.mcast_enabled()
                    .map(multicast_config)
                    .transpose()
                    .map_err(|e| SettingsError::Discovery(e.to_string()))?
            }
            None => None,
        };
        let top_level_mcast = self.multicast.as_ref().filter(|m| m.enabled);
        match (top_level_mcast, discovery_mcast) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "multicast",
                    "multicast is configured twice ([multicast] and discovery strategy `mcast`); keep one",
                ))
            }
            (None, Some(m)) => node.multicast = Some(m),
            (Some(m), None) => {
                let d = MulticastConfig::default();
                let interface = m
                    .interface
                    .as_deref()
                    .map(str::parse)
                    .transpose()
                    .map_err(|e: String| invalid("multicast.interface", e))?;
                node.multicast = Some(MulticastConfig {
                    group: m.group.unwrap_or(d.group),
                    port: m.port.unwrap_or(d.port),
                    interface,
                    ttl: m.ttl.unwrap_or(d.ttl),
                    loopback: m.loopback.unwrap_or(d.loopback),
                    interval: m.interval_ms.map_or(d.interval, Duration::from_millis),
                });
            }
            (None, None) => {}
        }
        node.tls = self.tls.as_ref().map(|t| resolve_tls(t, config_dir)).transpose()?;
        node.heal = crate::tables::resolve_heal(&self.heal, node.protocol.probe_interval)?;
        node.validate().map_err(|e| match e {
            gossamer::net::StartError::Config { field, reason } => invalid(field, reason),
            gossamer::net::StartError::Protocol(e) => invalid(format!("protocol.{}", e.field), e.reason),
            other => invalid("config", other),
        })?;
        let control_bind = addr("control_bind", self.control_bind.as_deref().unwrap_or("127.0.0.1:0"))?;
        let http = self.http.as_ref().map(|h| h.resolve()).transpose()?;
        let dns = self.dns.as_ref().map(|d| d.resolve()).transpose()?;
        let handlers = crate::handlers::resolve_all(&self.handlers)?;
        if !control_bind.ip().is_loopback() {
            return Err(invalid("control_bind", "the control socket must be on a loopback address"));
        }
        // Secure by default: checked last, so a more specific mistake is reported first.
        if self.secret.is_none() && !self.insecure {
            return Err(invalid(
                "secret",
                "required: the agent does not run unsealed by default. Set `secret = \"<64 hex digits>\"` \
                 (or GOSSAMER_SECRET; `gossamer keygen` prints a fresh one, the same on every member), or \
                 `insecure = true` (GOSSAMER_INSECURE=true) to run without one on a trusted network",
            ));
        }
        Ok(Resolved {
            seeds,
            node,
            data_dir: self.data_dir.clone().unwrap_or_else(|| config_dir.to_owned()),
            control_bind,
            log: self.log.clone().unwrap_or_else(|| "info".into()),
            log_format: self.log_format.unwrap_or_default(),
            discovery: self.discovery.clone(),
            insecure: self.secret.is_none(),
            http,
            dns,
            handlers,
        })
    }
}

/// A fresh cluster secret: 32 bytes from the OS random generator as 64 hex digits, what `secret`
/// takes (`gossamer keygen` prints it; the demo seals its nodes with one).
pub fn new_secret_hex() -> Result<String, rand_core::OsError> {
    use rand_core::TryRngCore;
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    rand_core::OsRng.try_fill_bytes(bytes.as_mut())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The control file of the agent named `name` in `data_dir`.
pub fn control_file(data_dir: &Path, name: &str) -> PathBuf {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    data_dir.join(format!("{safe}.control"))
}

/// The config key a `GOSSAMER_*` variable overrides (as named in errors).
pub fn key_of_var(var: &str) -> Option<String> {
    if let Some(key) = crate::tables::key_of_var(var) {
        return Some(key);
    }
    Some(
        match var {
            "GOSSAMER_NODE_NAME" => "name",
            "GOSSAMER_BIND" => "bind",
            "GOSSAMER_ADVERTISE" => "advertise",
            "GOSSAMER_CLUSTER" => "cluster",
            "GOSSAMER_SECRET" => "secret",
            "GOSSAMER_INSECURE" => "insecure",
            "GOSSAMER_KEYS" => "keys",
            "GOSSAMER_PRESET" => "preset",
            "GOSSAMER_SEEDS" => "seeds",
            "GOSSAMER_DATA_DIR" => "data_dir",
            "GOSSAMER_CONTROL_BIND" => "control_bind",
            "GOSSAMER_LEAVE_TIMEOUT_MS" => "leave_timeout_ms",
            "GOSSAMER_COMPRESSION" => "compression",
            "GOSSAMER_LOG" => "log",
            "GOSSAMER_LOG_FORMAT" => "log_format",
            "GOSSAMER_METADATA" => "metadata",
            "GOSSAMER_MULTICAST" => "multicast.enabled",
            "GOSSAMER_MULTICAST_GROUP" => "multicast.group",
            "GOSSAMER_MULTICAST_PORT" => "multicast.port",
            "GOSSAMER_MULTICAST_INTERFACE" => "multicast.interface",
            "GOSSAMER_MULTICAST_TTL" => "multicast.ttl",
            "GOSSAMER_MULTICAST_LOOP" => "multicast.loopback",
            "GOSSAMER_MULTICAST_INTERVAL_MS" => "multicast.interval",
            "GOSSAMER_TLS_CERT" => "tls.cert",
            "GOSSAMER_TLS_KEY" => "tls.key",
            "GOSSAMER_TLS_CA" => "tls.ca",
            "GOSSAMER_TLS_VERIFY_PEER_IP" => "tls.verify_peer_ip",
            v if is_discovery_var(v) || v.ends_with("_*") => "discovery",
            _ => return None,
        }
        .to_owned(),
    )
}

/// Appends "(set by GOSSAMER_X)" to an error about a key that came from the
/// environment, so the operator knows where to look.
pub fn explain(err: SettingsError, env: &BTreeMap<String, String>) -> String {
    if let SettingsError::Invalid { key, .. } = &err {
        let key = key.clone();
        if let Some(var) =
            env.keys().find(|v| key_of_var(v).is_some_and(|k| k == key || key.starts_with(&format!("{k}."))))
        {
            return format!("{err} (set by {var})");
        }
    }
    err.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gossamer::net::MulticastInterface;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    const FILE: &str = r#"
name = "a@127.0.0.1"
bind = "127.0.0.1:7946"
secret = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
cluster = "prod"
preset = "local"
seeds = ["127.0.0.1:7947"]
[metadata]
role = "web"
[protocol]
probe_interval = "300ms"
[multicast]
interface = "127.0.0.1"
port = 45999
"#;

    #[test]
    fn file_parses_and_unknown_keys_are_refused() {
        let s = AgentSettings::parse(FILE).unwrap();
        assert_eq!(s.name.as_deref(), Some("a@127.0.0.1"));
        assert_eq!(s.protocol.overrides.get("probe_interval"), Some(&serde_json::Value::from("300ms")));
        let err = AgentSettings::parse("name = \"a\"\nbindd = \"x\"\n").unwrap_err();
        assert!(err.contains("bindd"), "{err}");
        let err = AgentSettings::parse("[multicast]\nttll = 3\n").unwrap_err();
        assert!(err.contains("ttll"), "{err}");
    }

    #[test]
    fn compression_is_off_unless_set() {
        let s = AgentSettings::parse(FILE).unwrap();
        assert_eq!(s.compression, None);
        assert_eq!(s.clone().resolve(Path::new(".")).unwrap().node.compression, None);
        let mut s = AgentSettings::parse(&format!("compression = 1024\n{FILE}")).unwrap();
        assert_eq!(s.clone().resolve(Path::new(".")).unwrap().node.compression, Some(1024));
        apply_env(&mut s, &env(&[("GOSSAMER_COMPRESSION", "512")])).unwrap();
        assert_eq!(s.resolve(Path::new(".")).unwrap().node.compression, Some(512));
    }

    #[test]
    fn env_overrides_every_kind_of_key() {
        let mut s = AgentSettings::parse(FILE).unwrap();
        let unknown = apply_env(
            &mut s,
            &env(&[
                ("GOSSAMER_NODE_NAME", "b@127.0.0.1"),
                ("GOSSAMER_SEEDS", "127.0.0.1:1, 127.0.0.1:2"),
                ("GOSSAMER_MULTICAST_TTL", "4"),
                ("GOSSAMER_MULTICAST_LOOP", "false"),
                ("GOSSAMER_METADATA", "zone=eu,role=db"),
                ("GOSSAMER_DNS_QUERY", "gossamer.svc"),
                ("GOSSAMER_DNS_POLL_INTERVAL_MS", "5000"),
                ("GOSSAMER_BOGUS", "1"),
                ("GOSSAMER_DISCOVERY", "dns"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(unknown, vec!["GOSSAMER_BOGUS".to_string()]);
        assert_eq!(s.name.as_deref(), Some("b@127.0.0.1"));
        assert_eq!(s.seeds, vec!["127.0.0.1:1", "127.0.0.1:2"]);
        let m = s.multicast.as_ref().unwrap();
        assert_eq!((m.ttl, m.loopback, m.port), (Some(4), Some(false), Some(45999)));
        assert_eq!(s.metadata.get("zone").map(String::as_str), Some("eu"));
        let d = s.discovery.as_ref().unwrap();
        assert_eq!((d.dns.query.as_str(), d.dns.poll_interval_ms), ("gossamer.svc", 5000));
        assert_eq!(d.strategy, vec![gossamer::discovery::StrategyKind::Dns]);
    }

    #[test]
    fn bad_env_values_name_the_variable() {
        let mut s = AgentSettings::parse(FILE).unwrap();
        let err = apply_env(&mut s, &env(&[("GOSSAMER_MULTICAST_PORT", "seventy")])).unwrap_err();
        assert!(err.to_string().contains("GOSSAMER_MULTICAST_PORT"), "{err}");
        let err = apply_env(&mut s, &env(&[("GOSSAMER_MULTICAST_LOOP", "maybe")])).unwrap_err();
        assert!(err.to_string().contains("GOSSAMER_MULTICAST_LOOP"), "{err}");

        let mut s = AgentSettings::parse(FILE).unwrap();
        let err = apply_env(&mut s, &env(&[("GOSSAMER_DNS_POLL_INTERVAL_MS", "5s")])).unwrap_err();
        assert!(err.to_string().contains("GOSSAMER_DNS_POLL_INTERVAL_MS"), "{err}");

        let e = env(&[("GOSSAMER_BIND", "not-an-address")]);
        let mut s = AgentSettings::parse(FILE).unwrap();
        apply_env(&mut s, &e).unwrap();
        let msg = explain(s.resolve(Path::new("/tmp")).unwrap_err(), &e);
        assert!(msg.contains("`bind`") && msg.contains("GOSSAMER_BIND"), "{msg}");

        let e = env(&[("GOSSAMER_SECRET", "abcd")]);
        let mut s = AgentSettings::parse(FILE).unwrap();
        apply_env(&mut s, &e).unwrap();
        let msg = explain(s.resolve(Path::new("/tmp")).unwrap_err(), &e);
        assert!(msg.contains("`secret`") && msg.contains("GOSSAMER_SECRET"), "{msg}");
    }

    #[test]
    fn resolve_builds_the_node_config() {
        let s = AgentSettings::parse(FILE).unwrap();
        let r = s.resolve(Path::new("/tmp/x")).unwrap();
        assert_eq!(r.node.name.as_str(), "a@127.0.0.1");
        assert_eq!(r.node.cluster, "prod");
        assert_eq!(r.node.seeds, vec!["127.0.0.1:7947".parse::<SocketAddr>().unwrap()]);
        assert_eq!(r.seeds, vec![crate::seeds::HostPort::parse("127.0.0.1:7947").unwrap()]);
        assert_eq!(r.node.protocol.probe_interval, Duration::from_millis(300));
        assert_eq!(r.node.metadata.get("role"), Some(&b"web"[..]));
        let m = r.node.multicast.unwrap();
        assert_eq!((m.port, m.interface), (45999, Some(MulticastInterface::Addr("127.0.0.1".parse().unwrap()))));
        assert_eq!(r.data_dir, Path::new("/tmp/x"));
        assert!(r.control_bind.ip().is_loopback());
    }

    #[test]
    fn invalid_values_are_refused_naming_the_key() {
        let cases = [
            ("preset = \"fast\"", "preset"),
            ("seeds = [\"nowhere\"]", "seeds"),
            ("seeds = [\"::1:7946\"]", "seeds"),
            ("control_bind = \"0.0.0.0:0\"", "control_bind"),
            ("[multicast]\ninterface = \"127.0.0.1\"\n[discovery]\nstrategy = \"mcast\"", "multicast"),
            ("[multicast]\ngroup = \"10.0.0.1\"", "multicast.group"),
            ("[multicast]\ninterface = \"eth0\"", "multicast.interface"),
            ("[multicast]\ngroup = \"ff12::6773:6d72\"\ninterface = \"127.0.0.1\"", "multicast.interface"),
            ("[multicast]\ngroup = \"ff12::6773:6d72\"\ninterface = \"bad name!\"", "multicast.interface"),
        ];
        for (extra, key) in cases {
            let text = format!("name = \"a@h\"\nbind = \"127.0.0.1:0\"\n{extra}\n");
            let err = AgentSettings::parse(&text).unwrap().resolve(Path::new(".")).unwrap_err();
            assert!(err.to_string().contains(&format!("`{key}`")), "{extra}: {err}");
        }
        let err = AgentSettings::parse("[discovery]\nstrategy = \"carrier-pigeon\"").unwrap_err();
        assert!(err.contains("carrier-pigeon"), "{err}");
        let text = "name = \"a@h\"\nbind = \"127.0.0.1:0\"\n[discovery]\nstrategy = \"mcast\"\n[discovery.mcast]\ngroup = \"10.1.1.1\"\n";
        let err = AgentSettings::parse(text).unwrap().resolve(Path::new(".")).unwrap_err();
        assert!(err.to_string().contains("discovery.mcast.group"), "{err}");
        let err = AgentSettings::parse("bind = \"127.0.0.1:0\"").unwrap().resolve(Path::new(".")).unwrap_err();
        assert!(err.to_string().contains("`name`"), "{err}");
        // A cluster label past 255 bytes names `cluster`, not the codec.
        let text = format!("name = \"a@h\"\nbind = \"127.0.0.1:0\"\ncluster = \"{}\"\n", "c".repeat(256));
        let err = AgentSettings::parse(&text).unwrap().resolve(Path::new(".")).unwrap_err();
        assert!(err.to_string().contains("`cluster`") && !err.to_string().contains("codec"), "{err}");
    }

    #[test]
    fn the_example_config_is_valid() {
        let text = include_str!("../node.example.toml");
        // As shipped it has no secret, so it refuses to start until one is given ...
        let err = AgentSettings::parse(text).unwrap().resolve(Path::new("/tmp")).unwrap_err();
        assert!(err.to_string().contains("`secret`"), "{err}");
        // ... here through the environment, as its comments suggest.
        let mut s = AgentSettings::parse(text).unwrap();
        apply_env(&mut s, &env(&[("GOSSAMER_SECRET", KEY)])).unwrap();
        let r = s.resolve(Path::new("/tmp")).unwrap();
        assert!(!r.insecure);
        assert_eq!(r.node.advertise, Some("10.0.0.7:7946".parse().unwrap()));
        assert!(r.node.multicast.is_none());
        assert_eq!(r.discovery.unwrap().dns.query, "gossamer.prod.internal");
    }

    /// A CA and a node certificate signed by it, written as PEM files in `dir`.
    fn write_pki(dir: &Path) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        std::fs::write(dir.join("ca.crt"), ca.self_signed(&ca_key).unwrap().pem()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
            .unwrap();
        std::fs::write(dir.join("node.crt"), cert.pem()).unwrap();
        std::fs::write(dir.join("node.key"), key.serialize_pem()).unwrap();
    }

    #[test]
    fn tls_table_resolves_relative_to_the_config_and_bad_files_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        write_pki(dir.path());
        let base = format!("name = \"a@h\"\nbind = \"127.0.0.1:0\"\nsecret = \"{KEY}\"\n");
        let text = format!("{base}[tls]\ncert = \"node.crt\"\nkey = \"node.key\"\nca = \"ca.crt\"\n");
        let r = AgentSettings::parse(&text).unwrap().resolve(dir.path()).unwrap();
        let tls = r.node.tls.expect("tls configured");
        assert_eq!(
            tls,
            TlsConfig::from_files(dir.path().join("node.crt"), dir.path().join("node.key"), dir.path().join("ca.crt"))
        );

        let text = format!("{base}[tls]\ncert = \"node.crt\"\nca = \"ca.crt\"\n");
        let err = AgentSettings::parse(&text).unwrap().resolve(dir.path()).unwrap_err();
        assert!(err.to_string().contains("`tls.key`"), "{err}");

        // The key swapped for the CA certificate: refused, naming the key.
        let text = format!("{base}[tls]\ncert = \"node.crt\"\nkey = \"ca.crt\"\nca = \"ca.crt\"\n");
        let err = AgentSettings::parse(&text).unwrap().resolve(dir.path()).unwrap_err();
        assert!(err.to_string().contains("`tls.key`"), "{err}");

        // Environment overrides, and a missing file names its key and variable.
        let e = env(&[("GOSSAMER_TLS_CA", "missing-ca.crt"), ("GOSSAMER_TLS_VERIFY_PEER_IP", "true")]);
        let text = format!("{base}[tls]\ncert = \"node.crt\"\nkey = \"node.key\"\nca = \"ca.crt\"\n");
        let mut s = AgentSettings::parse(&text).unwrap();
        apply_env(&mut s, &e).unwrap();
        assert!(s.tls.as_ref().unwrap().verify_peer_ip);
        let msg = explain(s.resolve(dir.path()).unwrap_err(), &e);
        assert!(msg.contains("`tls.ca`") && msg.contains("missing-ca.crt") && msg.contains("GOSSAMER_TLS_CA"), "{msg}");

        let err = AgentSettings::parse("[tls]\ncertificate = \"x\"\n").unwrap_err();
        assert!(err.contains("certificate"), "{err}");
    }

    #[test]
    fn an_ipv6_group_takes_an_interface_by_name_or_index() {
        let text =
            "name = \"a@h\"\nbind = \"127.0.0.1:0\"\ninsecure = true\n[multicast]\ngroup = \"ff12::6773:6d72\"\ninterface = \"eth0\"\n";
        let m = AgentSettings::parse(text).unwrap().resolve(Path::new(".")).unwrap().node.multicast.unwrap();
        assert_eq!(m.group, "ff12::6773:6d72".parse::<IpAddr>().unwrap());
        assert_eq!(m.interface, Some(MulticastInterface::Name("eth0".into())));
        let mut s = AgentSettings::parse(text).unwrap();
        apply_env(&mut s, &env(&[("GOSSAMER_MULTICAST_INTERFACE", "3")])).unwrap();
        let m = s.resolve(Path::new(".")).unwrap().node.multicast.unwrap();
        assert_eq!(m.interface, Some(MulticastInterface::Index(3)));
    }

    #[test]
    fn a_secret_is_required_unless_insecure_is_said() {
        let base = "name = \"a@h\"\nbind = \"127.0.0.1:0\"\n";
        let err = AgentSettings::parse(base).unwrap().resolve(Path::new(".")).unwrap_err().to_string();
        for needle in ["`secret`", "GOSSAMER_SECRET", "gossamer keygen", "insecure = true", "GOSSAMER_INSECURE"] {
            assert!(err.contains(needle), "{needle} missing from: {err}");
        }

        let r = AgentSettings::parse(&format!("{base}insecure = true\n")).unwrap().resolve(Path::new(".")).unwrap();
        assert!(r.insecure && r.node.secret.is_none());

        let mut s = AgentSettings::parse(base).unwrap();
        apply_env(&mut s, &env(&[("GOSSAMER_INSECURE", "true")])).unwrap();
        assert!(s.resolve(Path::new(".")).unwrap().insecure);
        let mut s = AgentSettings::parse(base).unwrap();
        let err = apply_env(&mut s, &env(&[("GOSSAMER_INSECURE", "perhaps")])).unwrap_err();
        assert!(err.to_string().contains("GOSSAMER_INSECURE"), "{err}");

        // A secret wins over `insecure`: the frames are sealed.
        let mut s = AgentSettings::parse(&format!("{base}insecure = true\n")).unwrap();
        apply_env(&mut s, &env(&[("GOSSAMER_SECRET", KEY)])).unwrap();
        let r = s.resolve(Path::new(".")).unwrap();
        assert!(!r.insecure && r.node.secret.is_some());
    }

    #[test]
    fn extra_keys_join_the_keyring_and_bad_ones_name_the_key() {
        let other = "ab".repeat(32);
        let base = format!("name = \"a@h\"\nbind = \"127.0.0.1:0\"\nsecret = \"{KEY}\"\n");
        let r =
            AgentSettings::parse(&format!("{base}keys = [\"{other}\"]\n")).unwrap().resolve(Path::new(".")).unwrap();
        assert_eq!(r.node.keys, vec![other.parse().unwrap()]);
        let mut s = AgentSettings::parse(&base).unwrap();
        apply_env(&mut s, &env(&[("GOSSAMER_KEYS", &format!("{other}, {KEY}"))])).unwrap();
        assert_eq!(s.resolve(Path::new(".")).unwrap().node.keys.len(), 2);
        assert!(!format!("{s:?}").contains(&other), "keys never in Debug");
        let err = AgentSettings::parse(&format!("{base}keys = [\"beef\"]\n")).unwrap().resolve(Path::new("."));
        assert!(err.unwrap_err().to_string().contains("`keys`"));
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let text = format!(
            "name = \"a@h\"\nbind = \"127.0.0.1:0\"\nsecret = \"{KEY}\"\n[discovery]\nstrategy = \"k8s\"\n\
             [discovery.k8s]\nservice_name = \"g\"\napiserver = \"https://10.0.0.1\"\ntoken = \"k8s-bearer-XYZZY\"\n"
        );
        let s = AgentSettings::parse(&text).unwrap();
        let r = s.resolve(Path::new(".")).unwrap();
        let shown = format!("{s:?}\n{s:#?}\n{r:?}\n{:?}", r.node);
        assert!(!shown.contains(KEY), "the cluster secret leaked: {shown}");
        assert!(!shown.contains("0001020304"), "part of the cluster secret leaked: {shown}");
        assert!(!shown.contains("XYZZY"), "the Kubernetes token leaked: {shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }

    #[test]
    fn every_documented_variable_is_understood() {
        for var in env_vars() {
            assert!(key_of_var(&var).is_some(), "{var}");
        }
    }
}
