//! Checks every value of the agent file and builds what the agent runs
//! with: the node's `NodeConfig` and the agent's own listeners.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gossamer::discovery::{multicast_config, DiscoveryConfig};
use gossamer::net::{MulticastConfig, NodeConfig, RuntimeLimits, TlsConfig};

use super::schema::{AgentSettings, TlsSettings};
use super::{invalid, SettingsError};

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
        self.runtime.apply_to(&mut node);
        node.validate().map_err(|e| match e {
            gossamer::net::StartError::Config { field, reason } if RuntimeLimits::keys().contains(&field) => {
                invalid(format!("runtime.{field}"), reason)
            }
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
