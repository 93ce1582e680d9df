//! Seed and `cluster join` addresses given as `host:port` (`localhost:7946`,
//! `db1.example:7946`, `[::1]:7946`, `10.0.0.8:7946`). The node's own
//! configuration holds socket addresses only, so names are resolved here, in
//! the agent, at use time — and again on every retry, so a seed whose DNS
//! record changes is followed. A name that does not resolve is a warning
//! naming it (rate-limited per seed), never a crash, and never stops the
//! other seeds.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use gossamer::Node;

use crate::http_api::WarnEvery;

/// How often the agent re-resolves its named seeds while it knows no other
/// live member (the core retries the addresses it was given; this adds the
/// ones a name points at now).
pub const RERESOLVE_EVERY: Duration = Duration::from_secs(5);

/// A `host:port` address, kept unresolved until it is used.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostPort {
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// The port.
    pub port: u16,
}

impl HostPort {
    /// Parses `host:port` or `[v6]:port`; the port is required.
    pub fn parse(input: &str) -> Result<Self, String> {
        let s = input.trim();
        if let Ok(sa) = s.parse::<SocketAddr>() {
            return Ok(Self { host: sa.ip().to_string(), port: sa.port() });
        }
        let bad = |why: &str| format!("{input:?} is not host:port ({why})");
        let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let host = match host.strip_prefix('[') {
            Some(v6) => {
                let v6 = v6.strip_suffix(']').ok_or_else(|| bad("unclosed '['"))?;
                v6.parse::<std::net::Ipv6Addr>().map_err(|_| bad("not an IPv6 address in brackets"))?;
                v6
            }
            // `::1:7946` is ambiguous (is 7946 the port or the last group?).
            None if host.contains(':') => return Err(bad("an IPv6 address goes in brackets: [::1]:7946")),
            None => host,
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        if !host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':')) {
            return Err(bad("not a host name"));
        }
        let port = port.parse::<u16>().map_err(|_| bad("bad port"))?;
        Ok(Self { host: host.to_string(), port })
    }

    /// The literal address, when the host is an IP literal (no lookup needed).
    pub fn literal(&self) -> Option<SocketAddr> {
        self.host.parse().ok().map(|ip| SocketAddr::new(ip, self.port))
    }

    /// Looks the name up now (an IP literal needs no lookup).
    pub async fn resolve(&self) -> std::io::Result<Vec<SocketAddr>> {
        if let Some(sa) = self.literal() {
            return Ok(vec![sa]);
        }
        let found: Vec<SocketAddr> = tokio::net::lookup_host((self.host.as_str(), self.port)).await?.collect();
        if found.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no address"));
        }
        Ok(found)
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Resolves every seed, warning (at most once per seed per interval) about
/// each one that does not resolve; the others are returned all the same.
pub async fn resolve_all(seeds: &[HostPort], warned: &mut BTreeMap<HostPort, WarnEvery>) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for seed in seeds {
        match seed.resolve().await {
            Ok(addrs) => {
                for a in addrs {
                    if !out.contains(&a) {
                        out.push(a);
                    }
                }
            }
            Err(e) => {
                if let Some(suppressed) = warned.entry(seed.clone()).or_default().due() {
                    tracing::warn!(seed = %seed, error = %e, suppressed, "seed did not resolve; trying the others");
                }
            }
        }
    }
    out
}

/// Keeps the addresses of `local`'s family (a name such as `localhost`
/// yields `::1` and `127.0.0.1`; an IPv4 socket cannot send to the first).
/// When none is of that family all are kept, so the failure stays visible.
pub fn same_family(mut addrs: Vec<SocketAddr>, local: SocketAddr) -> Vec<SocketAddr> {
    if addrs.iter().any(|a| a.is_ipv4() == local.is_ipv4()) {
        addrs.retain(|a| a.is_ipv4() == local.is_ipv4());
    }
    addrs
}

/// Re-resolves the named seeds every [`RERESOLVE_EVERY`] while the node knows
/// no other live member, and joins through any address not tried before.
/// Runs until aborted.
pub async fn follow(node: Node, seeds: Vec<HostPort>, mut tried: BTreeSet<SocketAddr>) {
    let named: Vec<HostPort> = seeds.into_iter().filter(|s| s.literal().is_none()).collect();
    if named.is_empty() {
        return;
    }
    let mut warned = BTreeMap::new();
    loop {
        tokio::time::sleep(RERESOLVE_EVERY).await;
        let Ok(members) = node.members().await else { return };
        let me = node.id().name.clone();
        if members.iter().any(|m| m.id.name != me && m.status == gossamer::MemberStatus::Alive) {
            continue;
        }
        let fresh: Vec<SocketAddr> = same_family(resolve_all(&named, &mut warned).await, node.addr())
            .into_iter()
            .filter(|a| tried.insert(*a))
            .collect();
        if !fresh.is_empty() {
            tracing::info!(addrs = ?fresh, "seed names point at new addresses: joining through them");
            if node.join(fresh).await.is_err() {
                return;
            }
        }
    }
}

/// Formats a timeout the way it is typed (`2s`, `500ms`).
pub fn show_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_literals_and_brackets() {
        assert_eq!(HostPort::parse("localhost:17001").unwrap(), HostPort { host: "localhost".into(), port: 17001 });
        assert_eq!(HostPort::parse("[::1]:7946").unwrap(), HostPort { host: "::1".into(), port: 7946 });
        assert_eq!(HostPort::parse("10.0.0.8:7946").unwrap().literal(), Some("10.0.0.8:7946".parse().unwrap()));
        assert_eq!(HostPort::parse("[::1]:7946").unwrap().to_string(), "[::1]:7946");
        for bad in ["nowhere", "host:", ":7946", "host:99999", "::1:7946", "[::1:7946", "a b:1", "x:-1"] {
            assert!(HostPort::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[tokio::test]
    async fn localhost_resolves_and_a_bad_name_does_not_stop_the_others() {
        let seeds = vec![
            HostPort::parse("no-such-host.invalid:1").unwrap(),
            HostPort::parse("localhost:17001").unwrap(),
            HostPort::parse("127.0.0.2:2").unwrap(),
        ];
        let mut warned = BTreeMap::new();
        let addrs = resolve_all(&seeds, &mut warned).await;
        assert!(addrs.iter().any(|a| a.ip().is_loopback() && a.port() == 17001), "{addrs:?}");
        assert!(addrs.contains(&"127.0.0.2:2".parse().unwrap()));
        assert_eq!(warned.len(), 1, "only the bad name is warned about");
        let v4 = same_family(addrs, "127.0.0.1:0".parse().unwrap());
        assert!(v4.iter().all(SocketAddr::is_ipv4) && v4.len() >= 2, "{v4:?}");
        let v6only = same_family(vec!["127.0.0.1:1".parse().unwrap()], "[::1]:0".parse().unwrap());
        assert_eq!(v6only.len(), 1, "nothing of the family: all kept");
    }
}
