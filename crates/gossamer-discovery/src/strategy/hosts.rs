//! `hosts`: a file with one `[name@]host[:port]` per line (`#` starts a comment). The file is re-read
//! only when its modification time, length or inode changes, so polling it every few seconds is cheap.
//! A file modified within the last [`RACY_WINDOW`] is always re-read, because file-system timestamps
//! are coarse (a few ms) and a same-length rewrite within one tick would otherwise go unnoticed.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::sync::Mutex;
use tracing::debug;

use super::static_seeds::resolve_all;
use crate::{async_trait, Discovery, DiscoveryError, Peer, SeedSpec};

/// Reads peers from a hosts file, re-parsing it when it changes.
#[derive(Debug)]
pub struct HostsDiscovery {
    path: PathBuf,
    default_port: u16,
    interval: Duration,
    cache: Mutex<Option<Cached>>,
}

/// How recent an mtime must be for the cache not to be trusted.
const RACY_WINDOW: Duration = Duration::from_secs(2);

/// What identifies one version of the file: mtime, length, inode.
type Stamp = (SystemTime, u64, u64);

#[derive(Debug)]
struct Cached {
    stamp: Stamp,
    seeds: Vec<SeedSpec>,
}

impl HostsDiscovery {
    /// A strategy reading `path`; entries without a port get `default_port`.
    pub fn new(path: impl Into<PathBuf>, default_port: u16, interval: Duration) -> Self {
        HostsDiscovery { path: path.into(), default_port, interval, cache: Mutex::new(None) }
    }

    /// The file being watched.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Parses a hosts file's text. Blank lines and `#` comments (whole-line or trailing) are ignored.
///
/// ```
/// let seeds = gossamer_discovery::strategy::parse_hosts("# peers\n10.0.0.1:7000\nn@db2 # second\n\n", 7946).unwrap();
/// assert_eq!(seeds.len(), 2);
/// assert_eq!(seeds[1].port, 7946);
/// ```
pub fn parse_hosts(text: &str, default_port: u16) -> Result<Vec<SeedSpec>, DiscoveryError> {
    let mut seeds = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let seed = SeedSpec::parse(line, default_port).map_err(|e| match e {
            DiscoveryError::BadAddress { input, reason } => {
                DiscoveryError::BadAddress { input, reason: format!("line {}: {reason}", i + 1) }
            }
            other => other,
        })?;
        seeds.push(seed);
    }
    Ok(seeds)
}

impl HostsDiscovery {
    async fn current_seeds(&self) -> Result<Vec<SeedSpec>, DiscoveryError> {
        let file_err = |source| DiscoveryError::File { path: self.path.clone(), source };
        let meta = tokio::fs::metadata(&self.path).await.map_err(file_err)?;
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        #[cfg(unix)]
        let ino = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let ino = 0;
        let stamp = (mtime, meta.len(), ino);
        let settled = SystemTime::now().duration_since(mtime).map(|age| age > RACY_WINDOW).unwrap_or(false);
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref() {
            if settled && c.stamp == stamp {
                return Ok(c.seeds.clone());
            }
        }
        let text = tokio::fs::read_to_string(&self.path).await.map_err(file_err)?;
        let seeds = parse_hosts(&text, self.default_port)?;
        debug!(path = %self.path.display(), entries = seeds.len(), "hosts file (re)read");
        *cache = Some(Cached { stamp, seeds: seeds.clone() });
        Ok(seeds)
    }
}

#[async_trait]
impl Discovery for HostsDiscovery {
    fn name(&self) -> &str {
        "hosts"
    }
    fn poll_interval(&self) -> Option<Duration> {
        Some(self.interval)
    }
    async fn discover(&self) -> Result<Vec<Peer>, DiscoveryError> {
        let seeds = self.current_seeds().await?;
        resolve_all("hosts", &seeds).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    fn set_mtime(path: &Path, t: SystemTime) {
        File::options().write(true).open(path).unwrap().set_modified(t).unwrap();
    }

    #[tokio::test]
    async fn settled_unchanged_file_is_not_re_read_but_a_touched_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        let old = SystemTime::now() - Duration::from_secs(3600);
        std::fs::write(&path, "127.0.0.1:1001\n").unwrap();
        set_mtime(&path, old);
        let d = HostsDiscovery::new(&path, 7946, Duration::from_secs(1));
        assert_eq!(d.discover().await.unwrap()[0].addr.port(), 1001);

        // Same length, same inode, same (old) mtime: the cached parse is served.
        std::fs::write(&path, "127.0.0.1:1002\n").unwrap();
        set_mtime(&path, old);
        assert_eq!(d.discover().await.unwrap()[0].addr.port(), 1001);

        // Touched: re-read.
        set_mtime(&path, SystemTime::now());
        assert_eq!(d.discover().await.unwrap()[0].addr.port(), 1002);
    }
}
