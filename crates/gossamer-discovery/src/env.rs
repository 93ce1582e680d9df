//! `GOSSAMER_*` environment overrides. Parsing takes the variables as an iterator so tests can pass a
//! map instead of mutating the (process-global, racy) environment.

use std::collections::HashMap;
use std::str::FromStr;

use crate::config::{parse_nameserver, split_list};
use crate::{AddressType, ConfigError, DiscoveryConfig, DnsRecordType, K8sApi, K8sMode, StrategyKind};

fn parse<T: FromStr>(var: &str, v: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    v.trim().parse::<T>().map_err(|e| ConfigError::invalid(var, v, e))
}

fn parse_enum<T: serde::de::DeserializeOwned>(var: &str, v: &str, expected: &str) -> Result<T, ConfigError> {
    serde_json::from_value(serde_json::Value::String(v.trim().to_ascii_lowercase()))
        .map_err(|_| ConfigError::invalid(var, v, format!("expected one of {expected}")))
}

fn non_blank(v: &str) -> Option<String> {
    let t = v.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Applies overrides from `vars` to `config`. Recognised variables:
///
/// | variable | key |
/// | --- | --- |
/// | `GOSSAMER_DISCOVERY` | `strategy` (comma-separated) |
/// | `GOSSAMER_NODE_NAME`, `GOSSAMER_ADVERTISE_ADDR` | `node_name`, `advertise_addr` |
/// | `GOSSAMER_STATIC_SEEDS` | `static.seeds` (comma-separated) |
/// | `GOSSAMER_HOSTS_FILE` | `hosts.path` |
/// | `GOSSAMER_DNS_QUERY` | `dns.query`; non-blank selects `dns`, blank deselects it |
/// | `GOSSAMER_DNS_NODE_BASENAME`, `GOSSAMER_DNS_POLL_INTERVAL_MS`, `GOSSAMER_DNS_RECORD_TYPE`, `GOSSAMER_DNS_PORT`, `GOSSAMER_DNS_NAMESERVER` | `dns.*` |
/// | `GOSSAMER_ETCD_SERVER` (comma-separated), `GOSSAMER_ETCD_PREFIX`, `GOSSAMER_ETCD_NODE_TTL_MS`, `GOSSAMER_ETCD_MAX_BODY_BYTES` | `etcd.*` |
/// | `GOSSAMER_K8S_MODE`, `_APISERVER`, `_API`, `_SERVICE_NAME`, `_NAMESPACE`, `_LABEL_SELECTOR`, `_ADDRESS_TYPE`, `_SUFFIX`, `_NODE_BASENAME`, `_PORT`, `_PORT_NAME`, `_TOKEN_FILE`, `_CA_FILE`, `_MAX_BODY_BYTES` | `k8s.*` |
/// | `GOSSAMER_RANCHER_METADATA_URL`, `GOSSAMER_RANCHER_PORT`, `GOSSAMER_RANCHER_NODE_BASENAME`, `GOSSAMER_RANCHER_MAX_BODY_BYTES` | `rancher.*` |
/// | `GOSSAMER_LOCAL_DIR`, `GOSSAMER_LOCAL_CLUSTER` | `local.dir`, `local.cluster` |
/// | `KUBERNETES_SERVICE_HOST` + `KUBERNETES_SERVICE_PORT` | `k8s.apiserver` when not otherwise set |
///
/// A malformed value is an error naming the variable.
///
/// ```
/// use gossamer_discovery::{apply_env_from, DiscoveryConfig, StrategyKind};
/// let mut cfg = DiscoveryConfig::default();
/// apply_env_from(&mut cfg, [("GOSSAMER_DNS_QUERY".to_string(), "gossamer.svc".to_string())]).unwrap();
/// assert_eq!(cfg.strategy, vec![StrategyKind::Dns]);
/// let err = apply_env_from(&mut cfg, [("GOSSAMER_DNS_POLL_INTERVAL_MS", "5s")]).unwrap_err();
/// assert!(err.to_string().contains("GOSSAMER_DNS_POLL_INTERVAL_MS"));
/// ```
pub fn apply_env_from<I, K, V>(config: &mut DiscoveryConfig, vars: I) -> Result<(), ConfigError>
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<String>,
{
    let vars: HashMap<String, String> = vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
    let get = |k: &str| vars.get(k).map(String::as_str);

    if let Some(v) = get("GOSSAMER_DISCOVERY") {
        let kinds = split_list(v)
            .iter()
            .map(|s| StrategyKind::from_str(s).map_err(|e| ConfigError::invalid("GOSSAMER_DISCOVERY", v, e)))
            .collect::<Result<Vec<_>, _>>()?;
        config.strategy = if kinds.is_empty() { vec![StrategyKind::Manual] } else { kinds };
    }
    if let Some(v) = get("GOSSAMER_NODE_NAME").and_then(non_blank) {
        config.node_name = Some(v);
    }
    if let Some(v) = get("GOSSAMER_ADVERTISE_ADDR") {
        config.advertise_addr = Some(parse("GOSSAMER_ADVERTISE_ADDR", v)?);
    }

    if let Some(v) = get("GOSSAMER_STATIC_SEEDS") {
        config.static_.seeds = split_list(v);
    }
    if let Some(v) = get("GOSSAMER_HOSTS_FILE").and_then(non_blank) {
        config.hosts.path = Some(v.into());
    }

    // DNS, libcluster-style: the query switches DNS clustering on or off.
    if let Some(v) = get("GOSSAMER_DNS_QUERY") {
        config.dns.query = v.trim().to_string();
        if config.dns.query.is_empty() {
            config.strategy.retain(|k| *k != StrategyKind::Dns);
            if config.strategy.is_empty() {
                config.strategy.push(StrategyKind::Manual);
            }
        } else if !config.strategy.contains(&StrategyKind::Dns) && get("GOSSAMER_DISCOVERY").is_none() {
            config.strategy.retain(|k| *k != StrategyKind::Manual);
            config.strategy.push(StrategyKind::Dns);
        }
    }
    if let Some(v) = get("GOSSAMER_DNS_NODE_BASENAME").and_then(non_blank) {
        config.dns.node_basename = v;
    }
    if let Some(v) = get("GOSSAMER_DNS_POLL_INTERVAL_MS") {
        config.dns.poll_interval_ms = parse("GOSSAMER_DNS_POLL_INTERVAL_MS", v)?;
    }
    if let Some(v) = get("GOSSAMER_DNS_RECORD_TYPE") {
        config.dns.record_type = parse_enum::<DnsRecordType>("GOSSAMER_DNS_RECORD_TYPE", v, "a, srv")?;
    }
    if let Some(v) = get("GOSSAMER_DNS_PORT") {
        config.dns.port = parse("GOSSAMER_DNS_PORT", v)?;
    }
    if let Some(v) = get("GOSSAMER_DNS_NAMESERVER") {
        parse_nameserver("GOSSAMER_DNS_NAMESERVER", v)?;
        config.dns.nameserver = non_blank(v);
    }

    if let Some(v) = get("GOSSAMER_ETCD_SERVER") {
        config.etcd.server = split_list(v);
    }
    if let Some(v) = get("GOSSAMER_ETCD_PREFIX").and_then(non_blank) {
        config.etcd.prefix = v;
    }
    if let Some(v) = get("GOSSAMER_ETCD_NODE_TTL_MS") {
        config.etcd.node_ttl_ms = parse("GOSSAMER_ETCD_NODE_TTL_MS", v)?;
    }
    if let Some(v) = get("GOSSAMER_ETCD_MAX_BODY_BYTES") {
        config.etcd.max_body_bytes = parse("GOSSAMER_ETCD_MAX_BODY_BYTES", v)?;
    }

    if let Some(v) = get("GOSSAMER_RANCHER_METADATA_URL").and_then(non_blank) {
        config.rancher.metadata_url = v;
    }
    if let Some(v) = get("GOSSAMER_RANCHER_PORT") {
        config.rancher.port = parse("GOSSAMER_RANCHER_PORT", v)?;
    }
    if let Some(v) = get("GOSSAMER_RANCHER_NODE_BASENAME").and_then(non_blank) {
        config.rancher.node_basename = v;
    }
    if let Some(v) = get("GOSSAMER_RANCHER_MAX_BODY_BYTES") {
        config.rancher.max_body_bytes = parse("GOSSAMER_RANCHER_MAX_BODY_BYTES", v)?;
    }
    if let Some(v) = get("GOSSAMER_LOCAL_DIR").and_then(non_blank) {
        config.local.dir = Some(v.into());
    }
    if let Some(v) = get("GOSSAMER_LOCAL_CLUSTER").and_then(non_blank) {
        config.local.cluster = v;
    }

    let k = &mut config.k8s;
    if let Some(v) = get("GOSSAMER_K8S_MODE") {
        k.mode = parse_enum::<K8sMode>("GOSSAMER_K8S_MODE", v, "api, dns")?;
    }
    if let Some(v) = get("GOSSAMER_K8S_APISERVER").and_then(non_blank) {
        k.apiserver = Some(v);
    }
    if let Some(v) = get("GOSSAMER_K8S_API") {
        k.api = parse_enum::<K8sApi>("GOSSAMER_K8S_API", v, "endpointslices, endpoints")?;
    }
    if let Some(v) = get("GOSSAMER_K8S_SERVICE_NAME") {
        k.service_name = v.trim().to_string();
    }
    if let Some(v) = get("GOSSAMER_K8S_NAMESPACE").and_then(non_blank) {
        k.namespace = Some(v);
    }
    if let Some(v) = get("GOSSAMER_K8S_LABEL_SELECTOR") {
        k.label_selector = non_blank(v);
    }
    if let Some(v) = get("GOSSAMER_K8S_ADDRESS_TYPE") {
        k.address_type = parse_enum::<AddressType>("GOSSAMER_K8S_ADDRESS_TYPE", v, "ip, dns, hostname")?;
    }
    if let Some(v) = get("GOSSAMER_K8S_SUFFIX") {
        k.suffix = non_blank(v);
    }
    if let Some(v) = get("GOSSAMER_K8S_NODE_BASENAME").and_then(non_blank) {
        k.node_basename = v;
    }
    if let Some(v) = get("GOSSAMER_K8S_PORT") {
        k.port = parse("GOSSAMER_K8S_PORT", v)?;
    }
    if let Some(v) = get("GOSSAMER_K8S_PORT_NAME") {
        k.port_name = non_blank(v);
    }
    if let Some(v) = get("GOSSAMER_K8S_TOKEN_FILE").and_then(non_blank) {
        k.token_file = Some(v.into());
    }
    if let Some(v) = get("GOSSAMER_K8S_CA_FILE").and_then(non_blank) {
        k.ca_file = Some(v.into());
    }
    if let Some(v) = get("GOSSAMER_K8S_MAX_BODY_BYTES") {
        k.max_body_bytes = parse("GOSSAMER_K8S_MAX_BODY_BYTES", v)?;
    }
    if k.apiserver.is_none() {
        if let Some(host) = get("KUBERNETES_SERVICE_HOST").and_then(non_blank) {
            let port: u16 = match get("KUBERNETES_SERVICE_PORT") {
                Some(p) => parse("KUBERNETES_SERVICE_PORT", p)?,
                None => 443,
            };
            let host = if host.contains(':') { format!("[{host}]") } else { host };
            k.apiserver = Some(format!("https://{host}:{port}"));
        }
    }
    Ok(())
}
