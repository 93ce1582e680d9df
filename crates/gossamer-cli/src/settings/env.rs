//! `GOSSAMER_*` environment overrides of the agent file, and how an error
//! about a key names the variable that set it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use gossamer::discovery::{apply_env_from, DiscoveryConfig, Secret};

use super::schema::{AgentSettings, MulticastSettings, TlsSettings};
use super::{invalid, SettingsError};

/// The environment variables [`apply_env`] knows besides those of the
/// tables generated from a schema (`[protocol]`, `[heal]`, `[runtime]`,
/// `[http]`, `[dns]`; [`env_vars`] lists them all). From
/// `GOSSAMER_DISCOVERY` on, they are the discovery crate's.
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

/// Every environment variable [`apply_env`] knows: [`ENV_VARS`] and the
/// variables of the `[protocol]`, `[heal]`, `[runtime]`, `[http]` and
/// `[dns]` tables, generated from their schemas ([`crate::tables`]).
pub fn env_vars() -> Vec<String> {
    ENV_VARS.iter().map(|v| v.to_string()).chain(crate::tables::env_vars()).collect()
}

/// Whether `var` belongs to the discovery crate's overrides: a discovery
/// name of [`ENV_VARS`] (`GOSSAMER_K8S_*`-style entries by prefix). The
/// `[dns]` server's variables (`GOSSAMER_DNS_BIND`, ...) share the
/// `GOSSAMER_DNS_` prefix with the DNS strategy's but not a name, and are
/// never discovery's; an unknown `GOSSAMER_DNS_*` is reported as unknown.
fn is_discovery_var(var: &str) -> bool {
    let first = ENV_VARS.iter().position(|v| *v == "GOSSAMER_DISCOVERY").unwrap_or(ENV_VARS.len());
    crate::tables::key_of_var(var).is_none()
        && ENV_VARS[first..]
            .iter()
            .any(|known| known.strip_suffix('*').map_or(var == *known, |prefix| var.starts_with(prefix)))
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
            var if crate::tables::apply_env_var(settings, var, &v)? => {}
            var if is_discovery_var(var) => {}
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
