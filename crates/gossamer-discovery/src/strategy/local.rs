//! `local`: nodes on the same host find each other with no configuration, as libcluster's `LocalEpmd`
//! (which asks the host's epmd). Instead of a daemon, a small registry directory is shared:
//!
//! * `register` writes `<name>.node` (JSON `{"name", "addr", "pid", "started", "pid_ns"}`) atomically:
//!   a hidden temp file in the same directory is written, synced, then renamed over the entry, so a reader
//!   never sees half a record;
//! * `deregister` removes it (only if it is still this process's entry);
//! * `discover` lists the directory. An entry whose owner is gone is *stale*: it is left out and removed
//!   opportunistically, so a `kill -9` needs no cleanup. Files that cannot be parsed are skipped with a
//!   warning, never fatal.
//!
//! **Liveness.** On Linux, when the entry was written from the same PID namespace, the owner is alive iff
//! `/proc/<pid>` exists, is not a zombie, and (when recorded) has the same start time, which catches a PID
//! reused by an unrelated process. Elsewhere (other platforms, no `/proc`, or another PID namespace such as
//! a container sharing the directory) an entry is alive while its file is younger than `ttl`; every live
//! node rewrites its entry each poll once a third of `ttl` has passed, so only dead owners' entries age out.
//!
//! The default directory is `$XDG_RUNTIME_DIR/gossamer/<cluster>/` (a per-user, memory-backed directory on
//! systemd hosts), else `<temp dir>/gossamer-<uid>/<cluster>/`, whose `gossamer-<uid>` level is created
//! mode 0700 and refused if another user owns it (a shared `/tmp` must not let others inject peers).

use std::fs;
use std::io::{ErrorKind, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::{async_trait, Discovery, DiscoveryError, Peer};

/// The extension of registry entries; anything else in the directory (temp files) is ignored.
const EXT: &str = "node";

/// One registry entry, as stored in `<name>.node`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Record {
    name: String,
    addr: SocketAddr,
    pid: u32,
    /// The owner's start time in clock ticks since boot (`/proc/<pid>/stat` field 22), to detect PID reuse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    started: Option<u64>,
    /// The owner's PID namespace (`readlink /proc/self/ns/pid`); PIDs only compare within one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pid_ns: Option<String>,
}

/// State shared with the blocking file-system work.
#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    /// For the temp-dir fallback: the `gossamer-<uid>` directory that must be private to us.
    private_base: Option<PathBuf>,
    me: Option<Record>,
    ttl: Duration,
    registered: AtomicBool,
}

/// The same-host registry-directory strategy.
///
/// ```
/// use std::time::Duration;
/// use gossamer_discovery::{strategy::LocalDiscovery, Discovery, Peer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let dir = std::env::temp_dir().join(format!("gossamer-doc-{}", std::process::id()));
/// let a = LocalDiscovery::new(&dir, Some(("a@127.0.0.1".into(), "127.0.0.1:7001".parse().unwrap())),
///                             Duration::from_secs(1), Duration::from_secs(30));
/// let b = LocalDiscovery::new(&dir, Some(("b@127.0.0.1".into(), "127.0.0.1:7002".parse().unwrap())),
///                             Duration::from_secs(1), Duration::from_secs(30));
/// a.register().await.unwrap();
/// b.register().await.unwrap();
/// assert_eq!(a.discover().await.unwrap(), vec![Peer::named("b@127.0.0.1", "127.0.0.1:7002".parse().unwrap())]);
/// b.deregister().await.unwrap();
/// assert_eq!(a.discover().await.unwrap(), vec![]);
/// a.deregister().await.unwrap();
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # }
/// ```
#[derive(Debug)]
pub struct LocalDiscovery {
    inner: Arc<Inner>,
    interval: Duration,
}

/// The current user's id, for the per-user temp directory.
#[cfg(unix)]
fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

impl LocalDiscovery {
    /// A strategy over the registry directory `dir`, used as is. `me` (name, gossip address) is what
    /// [`Discovery::register`] writes; without it the strategy only discovers. `ttl` is the staleness limit
    /// where PIDs cannot be checked (see the module docs).
    pub fn new(dir: impl Into<PathBuf>, me: Option<(String, SocketAddr)>, interval: Duration, ttl: Duration) -> Self {
        Self::with_private_base(dir.into(), None, me, interval, ttl)
    }

    /// As [`LocalDiscovery::new`] in [`LocalDiscovery::default_dir`] for `cluster`, read from the process
    /// environment.
    pub fn in_default_dir(cluster: &str, me: Option<(String, SocketAddr)>, interval: Duration, ttl: Duration) -> Self {
        let (dir, private_base) = default_dir_from(std::env::var_os("XDG_RUNTIME_DIR"), cluster);
        Self::with_private_base(dir, private_base, me, interval, ttl)
    }

    fn with_private_base(
        dir: PathBuf,
        private_base: Option<PathBuf>,
        me: Option<(String, SocketAddr)>,
        interval: Duration,
        ttl: Duration,
    ) -> Self {
        let me = me.map(|(name, addr)| Record {
            name,
            addr,
            pid: std::process::id(),
            started: proc_start_time(std::process::id()),
            pid_ns: own_pid_ns(),
        });
        let inner = Inner { dir, private_base, me, ttl, registered: AtomicBool::new(false) };
        LocalDiscovery { inner: Arc::new(inner), interval }
    }

    /// The default registry directory for `cluster`: `$XDG_RUNTIME_DIR/gossamer/<cluster>` when that
    /// variable is set and non-empty, else `<temp dir>/gossamer-<uid>/<cluster>`.
    pub fn default_dir(cluster: &str) -> PathBuf {
        default_dir_from(std::env::var_os("XDG_RUNTIME_DIR"), cluster).0
    }

    /// The registry directory in use.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The file this node registers as, if it has an identity.
    pub fn entry_path(&self) -> Option<PathBuf> {
        self.inner.me.as_ref().map(|m| self.inner.entry_for(&m.name))
    }

    /// Runs the blocking file-system work off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, DiscoveryError> + Send + 'static,
    ) -> Result<T, DiscoveryError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner)).await.map_err(|e| DiscoveryError::Registry {
            dir: self.inner.dir.clone(),
            reason: format!("registry task failed: {e}"),
        })?
    }
}

/// Returns (registry dir, private base dir to create 0700 and check, if the temp fallback is used).
fn default_dir_from(xdg: Option<std::ffi::OsString>, cluster: &str) -> (PathBuf, Option<PathBuf>) {
    match xdg.filter(|v| !v.is_empty()) {
        Some(x) => (PathBuf::from(x).join("gossamer").join(cluster), None),
        None => {
            #[cfg(unix)]
            let base = std::env::temp_dir().join(format!("gossamer-{}", current_uid()));
            #[cfg(not(unix))]
            let base = std::env::temp_dir().join("gossamer");
            (base.join(cluster), Some(base))
        }
    }
}

/// Encodes a node name as a file stem: unreserved characters stay, the rest become `%XX`, and a leading
/// `.` is encoded so an entry is never hidden (hidden names are the temp files).
fn file_stem(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        let keep = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'@' | b'+' | b'=') || (b == b'.' && i > 0);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `readlink /proc/self/ns/pid`, e.g. `pid:[4026531836]`; `None` off Linux or without `/proc`.
fn own_pid_ns() -> Option<String> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    fs::read_link("/proc/self/ns/pid").ok().map(|p| p.to_string_lossy().into_owned())
}

/// What `/proc/<pid>/stat` says about a process.
#[derive(Debug, PartialEq, Eq)]
enum ProcState {
    /// No such process.
    Gone,
    /// Dead but not yet reaped by its parent.
    Zombie,
    /// Running (or sleeping...), with its start time when readable.
    Live(Option<u64>),
}

/// Reads the state and start time of `pid` from `/proc` (Linux).
fn proc_state(pid: u32) -> ProcState {
    let dir = PathBuf::from(format!("/proc/{pid}"));
    match fs::read_to_string(dir.join("stat")) {
        Ok(stat) => parse_stat(&stat),
        // The directory exists but stat is unreadable (unusual mounts): trust existence.
        Err(_) if dir.exists() => ProcState::Live(None),
        Err(_) => ProcState::Gone,
    }
}

/// Parses `pid (comm) S ppid ... starttime ...`; the command may contain spaces and parentheses, so
/// fields are counted after the *last* `)`.
fn parse_stat(stat: &str) -> ProcState {
    let Some((_, rest)) = stat.rsplit_once(')') else { return ProcState::Live(None) };
    let mut fields = rest.split_whitespace();
    let state = fields.next().unwrap_or("");
    if state == "Z" || state == "X" || state == "x" {
        return ProcState::Zombie;
    }
    // `rest` starts at field 3 (state); starttime is field 22.
    ProcState::Live(fields.nth(22 - 4).and_then(|s| s.parse().ok()))
}

fn proc_start_time(pid: u32) -> Option<u64> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    match proc_state(pid) {
        ProcState::Live(t) => t,
        _ => None,
    }
}

impl Inner {
    fn entry_for(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{}.{EXT}", file_stem(name)))
    }

    fn err(&self, reason: impl Into<String>) -> DiscoveryError {
        DiscoveryError::Registry { dir: self.dir.clone(), reason: reason.into() }
    }

    fn file_err(path: &Path, source: std::io::Error) -> DiscoveryError {
        DiscoveryError::File { path: path.to_path_buf(), source }
    }

    /// Creates the registry directory (0700 on Unix); for the temp fallback, refuses a base directory
    /// that is a symlink or owned by another user.
    fn ensure_dir(&self) -> Result<(), DiscoveryError> {
        if let Some(base) = &self.private_base {
            create_private(base).map_err(|e| Self::file_err(base, e))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                let meta = fs::symlink_metadata(base).map_err(|e| Self::file_err(base, e))?;
                if !meta.is_dir() || meta.uid() != current_uid() {
                    return Err(self.err(format!(
                        "{} is not a directory owned by uid {}; refusing to use it",
                        base.display(),
                        current_uid()
                    )));
                }
            }
        }
        create_private(&self.dir).map_err(|e| Self::file_err(&self.dir, e))
    }

    /// Writes our entry atomically: temp file in the same directory, fsync, rename.
    fn write_own(&self) -> Result<(), DiscoveryError> {
        let me = self.me.as_ref().ok_or_else(|| {
            DiscoveryError::NotRegistrable(
                "local registration needs discovery.node_name and discovery.advertise_addr".into(),
            )
        })?;
        self.ensure_dir()?;
        let path = self.entry_for(&me.name);
        let tmp = self.dir.join(format!(".{}.{}.tmp", file_stem(&me.name), me.pid));
        let body = serde_json::to_vec(me).map_err(|e| self.err(e.to_string()))?;
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Self::file_err(&path, e)
        })
    }

    /// While registered: puts our entry back if it vanished (a cleaner wiped the directory, or a peer
    /// judged an older holder of our name stale) and refreshes its mtime for TTL-based readers.
    fn refresh_own(&self) -> Result<(), DiscoveryError> {
        let Some(me) = &self.me else { return Ok(()) };
        if !self.registered.load(Ordering::Acquire) {
            return Ok(());
        }
        let path = self.entry_for(&me.name);
        let rewrite = match fs::metadata(&path) {
            Err(_) => {
                info!(path = %path.display(), "local registry entry vanished; registering again");
                true
            }
            Ok(meta) => age(&meta) > self.ttl / 3,
        };
        if rewrite {
            self.write_own()?;
        }
        Ok(())
    }

    /// Why the entry's owner is considered gone, or `None` if it looks alive.
    fn stale_reason(&self, rec: &Record, file_age: Duration) -> Option<String> {
        let my_ns = self.me.as_ref().and_then(|m| m.pid_ns.clone()).or_else(own_pid_ns);
        if cfg!(target_os = "linux") && my_ns.is_some() && rec.pid_ns == my_ns {
            return match proc_state(rec.pid) {
                ProcState::Gone => Some(format!("process {} is gone", rec.pid)),
                ProcState::Zombie => Some(format!("process {} has exited (zombie)", rec.pid)),
                ProcState::Live(Some(t)) if rec.started.is_some_and(|s| s != t) => {
                    Some(format!("pid {} now belongs to another process", rec.pid))
                }
                ProcState::Live(_) => None,
            };
        }
        (file_age > self.ttl).then(|| format!("not refreshed for {file_age:?} (ttl {:?})", self.ttl))
    }

    /// Lists live peers, removing stale entries on the way.
    fn scan(&self) -> Result<Vec<Peer>, DiscoveryError> {
        self.refresh_own()?;
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            // Nobody has registered yet.
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Self::file_err(&self.dir, e)),
        };
        let me = self.me.as_ref();
        let mut peers = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Self::file_err(&self.dir, e))?;
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some(EXT) {
                self.remove_abandoned_temp(&path);
                continue;
            }
            let (bytes, meta) = match fs::read(&path).and_then(|b| Ok((b, fs::metadata(&path)?))) {
                Ok(x) => x,
                // Removed between listing and reading: deregistered or cleaned by a peer.
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "unreadable local registry entry; skipped");
                    continue;
                }
            };
            let rec: Record = match serde_json::from_slice(&bytes) {
                Ok(r) => r,
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "malformed local registry entry; skipped");
                    continue;
                }
            };
            if me.is_some_and(|m| m.name == rec.name) {
                if me.is_some_and(|m| m.pid != rec.pid) && self.stale_reason(&rec, age(&meta)).is_none() {
                    warn!(name = rec.name, pid = rec.pid, "another live process is registered under this node's name");
                }
                continue;
            }
            if let Some(reason) = self.stale_reason(&rec, age(&meta)) {
                remove_if_unchanged(&path, &bytes);
                info!(name = rec.name, path = %path.display(), reason, "removed stale local registry entry");
                continue;
            }
            peers.push(Peer::named(rec.name, rec.addr));
        }
        peers.sort();
        peers.dedup();
        debug!(dir = %self.dir.display(), count = peers.len(), "local registry scanned");
        Ok(peers)
    }

    /// A writer killed between creating its temp file and renaming it leaves `.<stem>.<pid>.tmp` behind;
    /// a write takes milliseconds, so one older than `ttl` is abandoned.
    fn remove_abandoned_temp(&self, path: &Path) {
        let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
        if !(name.starts_with('.') && name.ends_with(".tmp")) {
            return;
        }
        if fs::metadata(path).is_ok_and(|m| age(&m) > self.ttl) && fs::remove_file(path).is_ok() {
            debug!(path = %path.display(), "removed abandoned registry temp file");
        }
    }

    /// Removes our entry if it is still ours (a restarted node may already own the name again).
    fn remove_own(&self) -> Result<(), DiscoveryError> {
        let Some(me) = &self.me else { return Ok(()) };
        self.registered.store(false, Ordering::Release);
        let path = self.entry_for(&me.name);
        match fs::read(&path) {
            Ok(bytes) => {
                if serde_json::from_slice::<Record>(&bytes).is_ok_and(|r| r.pid == me.pid) {
                    remove_if_unchanged(&path, &bytes);
                    info!(path = %path.display(), "deregistered from the local registry");
                }
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Self::file_err(&path, e)),
        }
    }
}

/// How long ago a file was last written (zero if the clock or mtime is unavailable).
fn age(meta: &fs::Metadata) -> Duration {
    meta.modified().ok().and_then(|m| SystemTime::now().duration_since(m).ok()).unwrap_or_default()
}

/// Removes `path` if it still holds `bytes`, so an entry rewritten in between (a node restarting under
/// the same name) survives. Failures are harmless: another reader removed it first.
fn remove_if_unchanged(path: &Path, bytes: &[u8]) {
    if fs::read(path).is_ok_and(|now| now == bytes) {
        if let Err(e) = fs::remove_file(path) {
            debug!(path = %path.display(), error = %e, "could not remove registry entry");
        }
    }
}

/// `mkdir -p` with mode 0700 for the directories we create.
fn create_private(dir: &Path) -> std::io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

#[async_trait]
impl Discovery for LocalDiscovery {
    fn name(&self) -> &str {
        "local"
    }

    fn poll_interval(&self) -> Option<Duration> {
        Some(self.interval)
    }

    async fn discover(&self) -> Result<Vec<Peer>, DiscoveryError> {
        self.blocking(Inner::scan).await
    }

    async fn register(&self) -> Result<(), DiscoveryError> {
        self.blocking(|inner| {
            inner.write_own()?;
            inner.registered.store(true, Ordering::Release);
            info!(dir = %inner.dir.display(), name = inner.me.as_ref().map(|m| m.name.as_str()), "registered in the local registry");
            Ok(())
        })
        .await
    }

    async fn deregister(&self) -> Result<(), DiscoveryError> {
        self.blocking(Inner::remove_own).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("gossamer@127.0.0.1"), "gossamer@127.0.0.1");
        assert_eq!(file_stem("a/b"), "a%2Fb");
        assert_eq!(file_stem(".."), "%2E.");
        assert_eq!(file_stem("n@[::1]:7"), "n@%5B%3A%3A1%5D%3A7");
        assert_eq!(file_stem("é"), "%C3%A9");
    }

    #[test]
    fn stat_parsing_handles_odd_command_names() {
        let live = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat(live), ProcState::Live(Some(987654)));
        assert_eq!(parse_stat("1 (x) Z 0 0"), ProcState::Zombie);
        assert_eq!(parse_stat("garbage"), ProcState::Live(None));
        assert_eq!(parse_stat("1 (x) S"), ProcState::Live(None));
    }

    #[test]
    fn default_dir_prefers_xdg_runtime_dir() {
        let (d, base) = default_dir_from(Some("/run/user/1000".into()), "prod");
        assert_eq!((d, base), (PathBuf::from("/run/user/1000/gossamer/prod"), None));
        let (d, base) = default_dir_from(Some("".into()), "prod");
        let base = base.expect("temp fallback has a private base");
        assert!(base.starts_with(std::env::temp_dir()));
        assert!(base.file_name().unwrap().to_string_lossy().starts_with("gossamer"));
        assert_eq!(d, base.join("prod"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn own_process_is_live_with_matching_start_time() {
        let t = proc_start_time(std::process::id());
        assert!(t.is_some());
        assert_eq!(proc_state(std::process::id()), ProcState::Live(t));
        assert!(own_pid_ns().is_some_and(|ns| ns.starts_with("pid:[")));
    }
}
