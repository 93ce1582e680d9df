//! [`build`]: from a validated [`DiscoveryConfig`] to the strategies it selects, reading the files a
//! strategy needs at start-up (CA bundles, the in-pod namespace) so a bad path fails early.

use std::path::PathBuf;
use std::time::Duration;

use tracing::info;

use crate::config::{parse_nameserver, SERVICE_ACCOUNT_DIR};
use crate::strategy::k8s_internals::{Naming, TokenSource};
use crate::strategy::{
    DnsDiscovery, EtcdDiscovery, HostsDiscovery, K8sApiDiscovery, K8sDnsDiscovery, LocalDiscovery, ManualDiscovery,
    RancherDiscovery, StaticDiscovery,
};
use crate::{AddressType, ConfigError, Discovery, DiscoveryConfig, K8sConfig, K8sMode, Secret, StrategyKind};

fn read_optional(path: &std::path::Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

fn k8s_namespace(k: &K8sConfig) -> String {
    k.namespace
        .clone()
        .or_else(|| {
            read_optional(&PathBuf::from(SERVICE_ACCOUNT_DIR).join("namespace"))
                .map(|b| String::from_utf8_lossy(&b).trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "default".into())
}

fn build_k8s(k: &K8sConfig) -> Result<Box<dyn Discovery>, ConfigError> {
    let namespace = k8s_namespace(k);
    let default_suffix = match k.address_type {
        AddressType::Hostname => "svc.cluster.local",
        _ => "pod.cluster.local",
    };
    let naming = Naming {
        basename: k.node_basename.clone(),
        address_type: k.address_type,
        suffix: k.suffix.clone().unwrap_or_else(|| default_suffix.into()).trim_matches('.').to_string(),
        namespace: namespace.clone(),
        service_name: k.service_name.clone(),
    };
    let interval = Duration::from_millis(k.poll_interval_ms);
    let timeout = Duration::from_millis(k.timeout_ms);
    match k.mode {
        K8sMode::Dns => {
            let fqdn = if k.service_name.contains('.') {
                k.service_name.clone()
            } else {
                format!("{}.{namespace}.svc.{}", k.service_name, k.cluster_domain.trim_matches('.'))
            };
            let ns = k.nameserver.as_deref().map(|s| parse_nameserver("discovery.k8s.nameserver", s)).transpose()?;
            Ok(Box::new(K8sDnsDiscovery::new(fqdn, k.port, naming, interval, ns, timeout)?))
        }
        K8sMode::Api => {
            let token = match (&k.token, &k.token_file) {
                (Some(t), _) => TokenSource::Literal(Secret::new(t.expose().trim())),
                (None, Some(p)) => TokenSource::File { path: p.clone(), required: true },
                (None, None) => {
                    TokenSource::File { path: PathBuf::from(SERVICE_ACCOUNT_DIR).join("token"), required: false }
                }
            };
            let ca_pem = match &k.ca_file {
                Some(p) => Some(
                    std::fs::read(p)
                        .map_err(|e| ConfigError::invalid("discovery.k8s.ca_file", p.display().to_string(), e))?,
                ),
                None => read_optional(&PathBuf::from(SERVICE_ACCOUNT_DIR).join("ca.crt")),
            };
            let apiserver = k.apiserver.clone().ok_or_else(|| ConfigError::Missing {
                key: "discovery.k8s.apiserver (or KUBERNETES_SERVICE_HOST)".into(),
                strategy: "k8s",
            })?;
            Ok(Box::new(
                K8sApiDiscovery::new(
                    apiserver,
                    k.api,
                    k.label_selector.clone().filter(|s| !s.trim().is_empty()),
                    k.port,
                    k.port_name.clone(),
                    token,
                    ca_pem,
                    naming,
                    interval,
                    timeout,
                )?
                .with_max_body(k.max_body_bytes),
            ))
        }
    }
}

/// Builds the selected strategies. `mcast` yields no [`Discovery`] (the runtime runs the heartbeat from
/// [`DiscoveryConfig::mcast_enabled`]); `dns` with a blank query is left off, as libcluster does.
///
/// ```
/// let cfg = gossamer_discovery::DiscoveryConfig::default();
/// let strategies = gossamer_discovery::build(&cfg).unwrap();
/// assert_eq!(strategies.len(), 1);
/// assert_eq!(strategies[0].name(), "manual");
/// ```
pub fn build(config: &DiscoveryConfig) -> Result<Vec<Box<dyn Discovery>>, ConfigError> {
    config.validate()?;
    let mut out: Vec<Box<dyn Discovery>> = Vec::new();
    let mut seen = Vec::new();
    for &kind in &config.strategy {
        if seen.contains(&kind) {
            continue;
        }
        seen.push(kind);
        match kind {
            StrategyKind::Manual => out.push(Box::new(ManualDiscovery)),
            StrategyKind::Static => {
                let s = &config.static_;
                let d = StaticDiscovery::new(&s.seeds, s.default_port, Duration::from_millis(s.poll_interval_ms))
                    .map_err(|e| ConfigError::invalid("discovery.static.seeds", s.seeds.join(","), e))?;
                out.push(Box::new(d));
            }
            StrategyKind::Hosts => {
                let h = &config.hosts;
                let path = h.path.clone().unwrap_or_default();
                out.push(Box::new(HostsDiscovery::new(
                    path,
                    h.default_port,
                    Duration::from_millis(h.poll_interval_ms),
                )));
            }
            StrategyKind::Mcast => {}
            StrategyKind::Dns => {
                let d = &config.dns;
                if d.query.trim().is_empty() {
                    info!("dns discovery selected but discovery.dns.query is blank: DNS clustering stays off");
                    continue;
                }
                let ns =
                    d.nameserver.as_deref().map(|s| parse_nameserver("discovery.dns.nameserver", s)).transpose()?;
                out.push(Box::new(DnsDiscovery::new(
                    d.query.trim(),
                    d.record_type,
                    d.port,
                    d.node_basename.clone(),
                    Duration::from_millis(d.poll_interval_ms),
                    ns,
                    Duration::from_millis(d.timeout_ms),
                )?));
            }
            StrategyKind::Etcd => {
                let e = &config.etcd;
                let me = config.node_name.clone().zip(config.advertise_addr);
                let ca_pem =
                    match &e.ca_file {
                        Some(p) => Some(std::fs::read(p).map_err(|err| {
                            ConfigError::invalid("discovery.etcd.ca_file", p.display().to_string(), err)
                        })?),
                        None => None,
                    };
                out.push(Box::new(
                    EtcdDiscovery::with_ca(
                        e.server.clone(),
                        &e.prefix,
                        Duration::from_millis(e.node_ttl_ms),
                        Duration::from_millis(e.poll_interval_ms),
                        Duration::from_millis(e.timeout_ms),
                        me,
                        ca_pem.as_deref(),
                    )?
                    .with_max_body(e.max_body_bytes),
                ));
            }
            StrategyKind::K8s => out.push(build_k8s(&config.k8s)?),
            StrategyKind::Rancher => {
                let r = &config.rancher;
                out.push(Box::new(
                    RancherDiscovery::new(
                        &r.metadata_url,
                        r.port,
                        r.node_basename.clone(),
                        Duration::from_millis(r.poll_interval_ms),
                        Duration::from_millis(r.timeout_ms),
                    )?
                    .with_max_body(r.max_body_bytes),
                ));
            }
            StrategyKind::Local => {
                let l = &config.local;
                let me = config.node_name.clone().zip(config.advertise_addr);
                let (interval, ttl) = (Duration::from_millis(l.poll_interval_ms), Duration::from_millis(l.ttl_ms));
                let d = match &l.dir {
                    Some(dir) => LocalDiscovery::new(dir, me, interval, ttl),
                    None => LocalDiscovery::in_default_dir(&l.cluster, me, interval, ttl),
                };
                info!(dir = %d.dir().display(), "local discovery registry");
                out.push(Box::new(d));
            }
        }
    }
    Ok(out)
}
