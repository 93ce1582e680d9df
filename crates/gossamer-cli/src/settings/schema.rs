//! The agent file's shape: the serde schema of every table (unknown keys
//! refused), embedding the library's own schemas where they exist.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use gossamer::core::ProtocolConfig;
use gossamer::discovery::{DiscoveryConfig, Secret};
use gossamer_heal::HealTable;
use serde::Deserialize;

use super::SettingsError;

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
    /// The runtime's limits (`[runtime]`): gossamer-net's own schema
    /// ([`gossamer::net::RuntimeLimits`]: stream admission, byte budget,
    /// outbound push-pull gate, seeds, batch, channels, UDP buffers), every
    /// key optional with the library's default, `GOSSAMER_RUNTIME_<KEY>` for
    /// each (see [`crate::tables`]).
    #[serde(default)]
    pub runtime: gossamer::net::RuntimeLimits,
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
