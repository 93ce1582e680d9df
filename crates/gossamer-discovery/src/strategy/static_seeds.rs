//! `static`: a fixed seed list. Host names are re-resolved on every poll so a seed whose IP changes
//! (a restarted VM behind a DNS name) is still found.

use std::time::Duration;

use tracing::warn;

use crate::{async_trait, Discovery, DiscoveryError, Peer, SeedSpec};

/// Fixed seeds (`name@host:port` or `host:port`), parsed once at build time.
#[derive(Debug, Clone)]
pub struct StaticDiscovery {
    seeds: Vec<SeedSpec>,
    interval: Duration,
}

impl StaticDiscovery {
    /// Parses the seeds; a malformed one is a build-time error.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gossamer_discovery::strategy::StaticDiscovery;
    /// let s = StaticDiscovery::new(&["gossamer@10.0.0.1:7946", "10.0.0.2"], 7946, Duration::from_secs(30)).unwrap();
    /// assert_eq!(s.seeds().len(), 2);
    /// ```
    pub fn new<S: AsRef<str>>(seeds: &[S], default_port: u16, interval: Duration) -> Result<Self, DiscoveryError> {
        let seeds = seeds.iter().map(|s| SeedSpec::parse(s.as_ref(), default_port)).collect::<Result<_, _>>()?;
        Ok(StaticDiscovery { seeds, interval })
    }

    /// The parsed seeds.
    pub fn seeds(&self) -> &[SeedSpec] {
        &self.seeds
    }
}

/// Resolves each seed; one unresolvable seed is logged and skipped unless *all* fail.
pub(crate) async fn resolve_all(strategy: &str, seeds: &[SeedSpec]) -> Result<Vec<Peer>, DiscoveryError> {
    let mut peers = Vec::new();
    let mut last_err = None;
    for seed in seeds {
        match seed.resolve().await {
            Ok(p) => peers.extend(p),
            Err(e) => {
                warn!(strategy, seed = %seed.host, error = %e, "seed did not resolve");
                last_err = Some(e);
            }
        }
    }
    if peers.is_empty() {
        if let Some(e) = last_err {
            return Err(e);
        }
    }
    peers.sort();
    peers.dedup();
    Ok(peers)
}

#[async_trait]
impl Discovery for StaticDiscovery {
    fn name(&self) -> &str {
        "static"
    }
    fn poll_interval(&self) -> Option<Duration> {
        Some(self.interval)
    }
    async fn discover(&self) -> Result<Vec<Peer>, DiscoveryError> {
        resolve_all("static", &self.seeds).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn static_seeds_resolve() {
        let s = StaticDiscovery::new(&["a@127.0.0.1:1", "127.0.0.2:2", "localhost:3"], 7946, Duration::from_secs(1))
            .unwrap();
        let peers = s.discover().await.unwrap();
        assert!(peers.contains(&Peer::named("a@127.0.0.1", "127.0.0.1:1".parse().unwrap())));
        assert!(peers.contains(&Peer::from_addr("127.0.0.2:2".parse().unwrap())));
        assert!(peers.iter().any(|p| p.addr.port() == 3 && p.addr.ip().is_loopback()));
    }

    #[test]
    fn bad_seed_is_rejected_at_build() {
        let e = StaticDiscovery::new(&["ok:1", "bad:port"], 7946, Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().contains("bad:port"), "{e}");
    }
}
