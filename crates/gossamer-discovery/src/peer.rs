//! The candidate peer a strategy hands to the membership core, and the `name@host:port` / `host:port`
//! syntax shared by the static seed list and the hosts file.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::DiscoveryError;

/// A candidate peer to join: where to send the join, and, when the strategy knows it, the node's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Peer {
    /// The node's name (`basename@host`), when the strategy knows it.
    pub name: Option<String>,
    /// The gossip address to contact.
    pub addr: SocketAddr,
}

impl Peer {
    /// A peer known only by address.
    pub fn from_addr(addr: SocketAddr) -> Self {
        Peer { name: None, addr }
    }

    /// A peer with a known name.
    pub fn named(name: impl Into<String>, addr: SocketAddr) -> Self {
        Peer { name: Some(name.into()), addr }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{n} ({})", self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

/// A parsed but not yet resolved seed: `[name@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedSpec {
    /// The basename before `@`, if any.
    pub basename: Option<String>,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// The port, or the configured default.
    pub port: u16,
}

impl SeedSpec {
    /// Parses `name@host:port`, `host:port`, `host`, `[v6]:port` or a bare IPv6 literal.
    /// A missing port takes `default_port`.
    pub fn parse(input: &str, default_port: u16) -> Result<Self, DiscoveryError> {
        let bad = |reason: &str| DiscoveryError::BadAddress { input: input.to_string(), reason: reason.to_string() };
        let s = input.trim();
        if s.is_empty() {
            return Err(bad("empty"));
        }
        let (basename, rest) = match s.split_once('@') {
            Some((n, r)) => {
                if n.is_empty() {
                    return Err(bad("empty node name before '@'"));
                }
                (Some(n.to_string()), r)
            }
            None => (None, s),
        };
        let (host, port) = if let Some(stripped) = rest.strip_prefix('[') {
            let (h, after) = stripped.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            let port = match after {
                "" => default_port,
                p => {
                    p.strip_prefix(':').ok_or_else(|| bad("garbage after ']'"))?.parse().map_err(|_| bad("bad port"))?
                }
            };
            (h.to_string(), port)
        } else if rest.parse::<IpAddr>().is_ok() {
            // A bare IPv6 literal contains colons but no port.
            (rest.to_string(), default_port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad("bad port"))?),
                None => (rest.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        if host.chars().any(|c| c.is_whitespace() || c == '/' || c == '@') {
            return Err(bad("host contains whitespace, '/' or '@'"));
        }
        if port == 0 {
            return Err(bad("port 0"));
        }
        Ok(SeedSpec { basename, host, port })
    }

    /// Resolves the host (IP literal or name via the system resolver) into one peer per address.
    /// The name, when a basename was given, is `basename@host`.
    pub async fn resolve(&self) -> Result<Vec<Peer>, DiscoveryError> {
        let name = self.basename.as_ref().map(|b| format!("{b}@{}", self.host));
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Ok(vec![Peer { name, addr: SocketAddr::new(ip, self.port) }]);
        }
        let addrs = tokio::net::lookup_host((self.host.as_str(), self.port)).await.map_err(|e| {
            DiscoveryError::BadAddress { input: self.host.clone(), reason: format!("cannot resolve: {e}") }
        })?;
        let mut peers: Vec<Peer> = addrs.map(|addr| Peer { name: name.clone(), addr }).collect();
        peers.sort();
        peers.dedup();
        Ok(peers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_forms() {
        let s = SeedSpec::parse("gossamer@10.0.0.1:7000", 7946).unwrap();
        assert_eq!(s, SeedSpec { basename: Some("gossamer".into()), host: "10.0.0.1".into(), port: 7000 });
        let s = SeedSpec::parse("db1.example:7001", 7946).unwrap();
        assert_eq!((s.basename, s.host.as_str(), s.port), (None, "db1.example", 7001));
        assert_eq!(SeedSpec::parse("db1", 7946).unwrap().port, 7946);
        assert_eq!(SeedSpec::parse("[::1]:9", 7946).unwrap().host, "::1");
        assert_eq!(SeedSpec::parse("::1", 7946).unwrap().port, 7946);
        assert_eq!(SeedSpec::parse("fe80::1", 5).unwrap().host, "fe80::1");
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for bad in ["", "@h:1", "h:notaport", "h:0", "[::1", "[::1]x", "a b:1", "h:99999", "n@:1"] {
            assert!(SeedSpec::parse(bad, 7946).is_err(), "{bad:?} should be rejected");
        }
    }

    #[tokio::test]
    async fn resolves_literals_and_localhost() {
        let p = SeedSpec::parse("n@127.0.0.1:7", 1).unwrap().resolve().await.unwrap();
        assert_eq!(p, vec![Peer::named("n@127.0.0.1", "127.0.0.1:7".parse().unwrap())]);
        let p = SeedSpec::parse("localhost:8", 1).unwrap().resolve().await.unwrap();
        assert!(p.iter().all(|p| p.addr.ip().is_loopback() && p.addr.port() == 8), "{p:?}");
        assert!(!p.is_empty());
    }
}
