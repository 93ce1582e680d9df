//! `dns`: peers from DNS, as libcluster's `DNSPoll` and EMQX's `dns` strategy. Either the A/AAAA records
//! of one name (every address gets the configured port), or SRV records (which carry the port), polled
//! every `poll_interval`. Node names are `<basename>@<ip>`.
//!
//! The resolver's cache is cleared before each poll so records added or removed upstream are seen on the
//! next poll rather than after their TTL.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use tracing::{debug, warn};

use crate::{async_trait, ConfigError, Discovery, DiscoveryError, DnsRecordType, Peer};

/// Builds a tokio resolver that asks `nameserver` (`None`: the system's `/etc/resolv.conf`).
/// `key` names the config key in errors.
pub(crate) fn build_resolver(
    nameserver: Option<SocketAddr>,
    timeout: Duration,
    key: &str,
) -> Result<TokioResolver, ConfigError> {
    let provider = TokioRuntimeProvider::default();
    let mut builder = match nameserver {
        Some(ns) => {
            let mut server = NameServerConfig::udp_and_tcp(ns.ip());
            for conn in &mut server.connections {
                conn.port = ns.port();
            }
            TokioResolver::builder_with_config(ResolverConfig::from_name_servers(vec![server]), provider)
        }
        None => TokioResolver::builder(provider).map_err(|e| ConfigError::Client {
            key: key.to_string(),
            reason: format!("no nameserver configured and the system resolver config is unusable: {e}"),
        })?,
    };
    let opts: &mut ResolverOpts = builder.options_mut();
    opts.timeout = timeout;
    opts.attempts = 1;
    opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    builder.build().map_err(|e| ConfigError::Client { key: key.to_string(), reason: e.to_string() })
}

/// Maps a resolver error: NXDOMAIN and "no such record" are distinguished from transport failures.
/// `Ok(None)` means "the name exists but has no records of this type" (an empty, valid answer).
fn classify(name: &str, record_type: &'static str, e: NetError) -> Result<(), DiscoveryError> {
    if e.is_nx_domain() {
        Err(DiscoveryError::NxDomain { name: name.to_string() })
    } else if e.is_no_records_found() {
        Ok(())
    } else {
        Err(DiscoveryError::Dns { name: name.to_string(), record_type, reason: e.to_string() })
    }
}

/// All A and AAAA addresses of `name`, sorted; empty when the name has none.
pub(crate) async fn lookup_ips(resolver: &TokioResolver, name: &str) -> Result<Vec<IpAddr>, DiscoveryError> {
    resolver.clear_cache();
    match resolver.lookup_ip(name).await {
        Ok(lookup) => {
            let mut ips: Vec<IpAddr> = lookup.iter().collect();
            ips.sort();
            ips.dedup();
            Ok(ips)
        }
        Err(e) => classify(name, "A/AAAA", e).map(|()| Vec::new()),
    }
}

/// SRV targets of `name` resolved to socket addresses, sorted.
pub(crate) async fn lookup_srv(resolver: &TokioResolver, name: &str) -> Result<Vec<SocketAddr>, DiscoveryError> {
    resolver.clear_cache();
    let lookup = match resolver.srv_lookup(name).await {
        Ok(l) => l,
        Err(e) => return classify(name, "SRV", e).map(|()| Vec::new()),
    };
    let mut out = Vec::new();
    let mut target_err = None;
    for record in lookup.answers() {
        let RData::SRV(srv) = &record.data else { continue };
        if srv.port == 0 {
            debug!(%name, target = %srv.target, "SRV record with port 0 skipped");
            continue;
        }
        // Prefer addresses the server put in the additional section; otherwise resolve the target.
        let mut ips: Vec<IpAddr> = lookup
            .additionals()
            .iter()
            .filter(|r| r.name == srv.target)
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
            .collect();
        if ips.is_empty() {
            match lookup_ips(resolver, &srv.target.to_string()).await {
                Ok(found) => ips = found,
                Err(e) => {
                    // One broken target must not hide the healthy ones; it only fails the round if
                    // nothing else resolved (below).
                    warn!(%name, target = %srv.target, error = %e, "SRV target did not resolve");
                    target_err = Some(e);
                }
            }
        }
        out.extend(ips.into_iter().map(|ip| SocketAddr::new(ip, srv.port)));
    }
    if out.is_empty() {
        if let Some(e) = target_err {
            return Err(e);
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// DNS A/AAAA or SRV polling.
pub struct DnsDiscovery {
    resolver: TokioResolver,
    query: String,
    record_type: DnsRecordType,
    port: u16,
    basename: String,
    interval: Duration,
}

impl std::fmt::Debug for DnsDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsDiscovery")
            .field("query", &self.query)
            .field("record_type", &self.record_type)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl DnsDiscovery {
    /// A strategy querying `query` through `nameserver` (`None`: system resolver).
    pub fn new(
        query: impl Into<String>,
        record_type: DnsRecordType,
        port: u16,
        basename: impl Into<String>,
        interval: Duration,
        nameserver: Option<SocketAddr>,
        timeout: Duration,
    ) -> Result<Self, ConfigError> {
        Ok(DnsDiscovery {
            resolver: build_resolver(nameserver, timeout, "discovery.dns.nameserver")?,
            query: query.into(),
            record_type,
            port,
            basename: basename.into(),
            interval,
        })
    }
}

/// `<basename>@<ip>` (IPv6 without brackets, as EMQX and Erlang do).
pub(crate) fn node_name(basename: &str, ip: IpAddr) -> String {
    format!("{basename}@{ip}")
}

#[async_trait]
impl Discovery for DnsDiscovery {
    fn name(&self) -> &str {
        "dns"
    }
    fn poll_interval(&self) -> Option<Duration> {
        Some(self.interval)
    }
    async fn discover(&self) -> Result<Vec<Peer>, DiscoveryError> {
        let addrs: Vec<SocketAddr> = match self.record_type {
            DnsRecordType::A => lookup_ips(&self.resolver, &self.query)
                .await?
                .into_iter()
                .map(|ip| SocketAddr::new(ip, self.port))
                .collect(),
            DnsRecordType::Srv => lookup_srv(&self.resolver, &self.query).await?,
        };
        Ok(addrs.into_iter().map(|a| Peer::named(node_name(&self.basename, a.ip()), a)).collect())
    }
}
