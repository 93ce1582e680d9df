//! The agent's control socket: loopback TCP, one JSON object per line each
//! way, every request carrying the token the agent wrote to its control
//! file (readable only by its owner). Mirrors `emqx ctl cluster ...`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use gossamer::net::{Member, Node, NodeMetrics};
use gossamer::wire::MemberStatus;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Bounds on control sessions, so local clients (or a process squatting on the loopback port) cannot
/// pile up connections or memory in the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Sessions served at once; a connection beyond them is answered "busy" and closed at once.
    pub max_sessions: usize,
    /// How long a client may take to send its whole request line.
    pub request_timeout: Duration,
    /// Longest request line accepted, in bytes (newline included).
    pub max_request: usize,
    /// How long a client may take to read the answer (a member list can be megabytes).
    pub write_timeout: Duration,
}

impl Default for Limits {
    /// 16 sessions (admin commands are one request each), 10 s to send a request of at most 64 KiB,
    /// 30 s to read the answer.
    fn default() -> Self {
        Self {
            max_sessions: 16,
            request_timeout: Duration::from_secs(10),
            max_request: 64 * 1024,
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// After refusing a too-large request, how much more of it is read and dropped (and for how long) so the
/// client gets the refusal rather than a connection reset.
const DRAIN_BYTES: u64 = 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(1);

/// Busy refusals answered at once (each lives at most 2 × [`DRAIN_TIME`]); beyond them a refused
/// connection is just closed.
const MAX_REFUSALS: usize = 64;

/// `gossamer monitor` sessions open at once: each holds a session until its client hangs up, so they may
/// take only part of [`Limits::max_sessions`], leaving room for the other commands.
const MAX_MONITORS: usize = 4;

/// Sessions refused as busy are logged at most this often (with a count of the others).
const BUSY_LOG_EVERY: Duration = Duration::from_secs(10);

/// What the control file holds. Its `Debug` leaves the token out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlInfo {
    /// Where the control listener is.
    pub addr: SocketAddr,
    /// The secret every request must carry.
    pub token: String,
    /// The agent's node name.
    pub node: String,
    /// The agent's process id.
    pub pid: u32,
}

/// A request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Request {
    /// Every member known.
    Members,
    /// This node plus every member.
    Status,
    /// Counters.
    Metrics,
    /// Join through these addresses; answered once a member answered, or
    /// with an error when none did within the timeout.
    Join {
        /// Seeds: `host:port` (names resolved by the agent), `[v6]:port` or `ip:port`.
        addrs: Vec<String>,
        /// How long to wait for a member to answer (default 10 s).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    /// Leave gracefully, then stop the agent.
    Leave,
    /// Declare a member left.
    ForceLeave {
        /// Its name.
        name: String,
    },
    /// A key operation, cluster-wide or local (`gossamer keys`).
    Keys(crate::keys::KeysRequest),
    /// A user event broadcast to every member (`gossamer event`).
    Event(crate::ops::EventRequest),
    /// A query, answered when its timeout is over (`gossamer query`).
    Query(crate::ops::QueryRequest),
    /// A change of this node's tags, gossiped (`gossamer tags`).
    Tags(crate::ops::TagsRequest),
    /// Stream membership and user events, one line each, until the client hangs up (`gossamer monitor`).
    Monitor {
        /// Also stream log lines at or above this level (`error` … `trace`); none when absent.
        #[serde(default)]
        level: Option<String>,
    },
}

impl std::fmt::Debug for ControlInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlInfo")
            .field("addr", &self.addr)
            .field("token", &"<redacted>")
            .field("node", &self.node)
            .field("pid", &self.pid)
            .finish()
    }
}

/// A request with its token. Its `Debug` leaves the token out.
#[derive(Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// From the control file.
    pub token: String,
    /// The request.
    #[serde(flatten)]
    pub request: Request,
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope").field("token", &"<redacted>").field("request", &self.request).finish()
    }
}

/// One member, as printed by `members --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    /// Name.
    pub name: String,
    /// Address.
    pub addr: SocketAddr,
    /// `alive`, `suspect`, `dead` or `left`.
    pub status: String,
    /// Incarnation.
    pub incarnation: u64,
    /// Metadata (values as lossy UTF-8).
    pub metadata: std::collections::BTreeMap<String, String>,
}

/// The text of a status.
pub fn status_name(status: MemberStatus) -> &'static str {
    match status {
        MemberStatus::Alive => "alive",
        MemberStatus::Suspect => "suspect",
        MemberStatus::Dead => "dead",
        MemberStatus::Left => "left",
    }
}

impl From<&Member> for MemberView {
    fn from(m: &Member) -> Self {
        Self {
            name: m.id.name.to_string(),
            addr: m.id.addr,
            status: status_name(m.status).into(),
            incarnation: m.incarnation,
            metadata: m.metadata.iter().map(|(k, v)| (k.to_owned(), String::from_utf8_lossy(v).into_owned())).collect(),
        }
    }
}

/// Counters, as printed by `gossamer metrics`: the library's own metrics
/// types (`gossamer_core::Metrics`, `gossamer_net::NetMetrics`), serialised
/// as they are and flattened into one object (their field names are
/// distinct), plus the agent's own handler counters. Nothing is mirrored
/// by hand, so a counter added to the library shows up here; a field
/// missing from an agent of an older build reads as zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsView {
    /// The protocol's counters.
    #[serde(flatten)]
    pub core: gossamer::Metrics,
    /// The runtime's counters.
    #[serde(flatten)]
    pub net: gossamer::net::NetMetrics,
    /// The agent's event handler counters.
    #[serde(flatten)]
    pub handlers: HandlerCounters,
    /// The partition-heal layer's counters (`gossamer_heal::HealMetrics`,
    /// serialised as it is), as one `heal` object: their names (`probes`)
    /// would collide with the core's if flattened.
    pub heal: gossamer::net::HealMetrics,
    /// The agent's `[dns]` server counters.
    #[serde(flatten)]
    pub dns: crate::dns::DnsCounters,
}

/// The agent's `[[handlers]]` counters, in `gossamer metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HandlerCounters {
    /// Event handler runs started (`[[handlers]]`).
    pub handler_runs: u64,
    /// Event handler runs that failed (non-zero exit, no shell, or killed at the timeout).
    pub handler_failures: u64,
    /// Event handler runs killed at their timeout.
    pub handler_timeouts: u64,
    /// Events dropped at a full handler queue.
    pub handler_dropped: u64,
    /// Event handler runs whose stdout was cut at the answer bound.
    pub handler_truncated: u64,
}

impl From<&NodeMetrics> for MetricsView {
    fn from(m: &NodeMetrics) -> Self {
        Self {
            core: m.core.clone(),
            net: m.net.clone(),
            handlers: HandlerCounters {
                handler_runs: crate::handlers::METRICS.runs(),
                handler_failures: crate::handlers::METRICS.failures(),
                handler_timeouts: crate::handlers::METRICS.timeouts(),
                handler_dropped: crate::handlers::METRICS.dropped(),
                handler_truncated: crate::handlers::METRICS.truncated(),
            },
            heal: m.heal.clone(),
            dns: crate::dns::DnsCounters::snapshot(),
        }
    }
}

/// A response: `{"ok": true, "result": ...}` or `{"ok": false, "error": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    /// Success.
    pub ok: bool,
    /// The payload on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// The reason on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    pub(crate) fn ok(value: impl Serialize) -> Self {
        match serde_json::to_value(value) {
            Ok(v) => Self { ok: true, result: Some(v), error: None },
            Err(e) => Self::err(e),
        }
    }
    pub(crate) fn err(e: impl ToString) -> Self {
        Self { ok: false, result: None, error: Some(e.to_string()) }
    }
}

/// A 128-bit random token in hex.
pub fn new_token() -> Result<String, rand_core::OsError> {
    use rand_core::TryRngCore;
    let mut bytes = [0u8; 16];
    rand_core::OsRng.try_fill_bytes(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes the control file, readable by its owner only.
///
/// The token must never land in a file someone else controls, so the file is first written under a
/// fresh random name, created exclusively (`O_CREAT|O_EXCL`, which also refuses a symlink there) and
/// without following symlinks (`O_NOFOLLOW`), with mode 0600 set on the open descriptor; then it is
/// renamed over `path`, which replaces whatever was there (a stale file, a symlink planted by another
/// user) rather than writing through it. The directory itself is checked by [`prepare_data_dir`].
pub fn write_info(path: &Path, info: &ControlInfo) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let base = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "control".into());
    let text = serde_json::to_string(info).map_err(std::io::Error::other)?;
    let mut attempts = 0;
    let (tmp, mut file) = loop {
        let nonce = new_token().map_err(std::io::Error::other)?;
        let tmp = dir.join(format!(".{base}.{nonce}.tmp"));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
        }
        match opts.open(&tmp) {
            Ok(f) => break (tmp, f),
            // 128 random bits collide only if someone planted the name; draw again, a few times.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempts < 8 => attempts += 1,
            Err(e) => return Err(e),
        }
    };
    let written = (|| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // The umask may only have narrowed 0600; make it exactly 0600.
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Makes sure `dir` is a safe place for the control file, creating it (mode 0700) if it is missing.
///
/// The control file holds the token that lets anyone force members out of the cluster. In a directory
/// another local user owns, or may write to, that user could swap or pre-create files there, or read
/// what we write; so such a directory is refused, with the fix in the message. (A sticky, world-writable
/// directory such as `/tmp` is refused too: its other users can still plant names.)
pub fn prepare_data_dir(dir: &Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir).map_err(|e| format!("cannot create data_dir {}: {e}", dir.display()))?;
        }
        Err(e) => return Err(format!("cannot use data_dir {}: {e}", dir.display())),
    }
    let meta = std::fs::metadata(dir).map_err(|e| format!("cannot use data_dir {}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("data_dir {} is not a directory", dir.display()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        check_dir_owner(dir, meta.uid(), meta.mode(), euid)?;
    }
    Ok(())
}

/// The ownership and mode rules of [`prepare_data_dir`], apart so tests can play another user.
#[cfg(unix)]
pub(crate) fn check_dir_owner(dir: &Path, owner: u32, mode: u32, euid: u32) -> Result<(), String> {
    let fix = "set data_dir (or GOSSAMER_DATA_DIR) to a directory only the agent's user can write, e.g. \
               `install -d -m 0700 /var/lib/gossamer` run as that user";
    if owner != euid {
        return Err(format!(
            "unsafe data_dir {}: owned by uid {owner}, not by this agent (uid {euid}), who could then read or \
             replace its control file (and the token in it); {fix}",
            dir.display()
        ));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "unsafe data_dir {}: writable by {} (mode {:o}), who could then plant or replace its control file; \
             `chmod go-w {}` or {fix}",
            dir.display(),
            if mode & 0o002 != 0 { "every user" } else { "its group" },
            mode & 0o7777,
            dir.display()
        ));
    }
    Ok(())
}

/// Reads a control file.
pub fn read_info(path: &Path) -> Result<ControlInfo, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read control file {} ({e}); is the agent running?", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("bad control file {}: {e}", path.display()))
}

/// Serves control requests for `node` until the process ends. A `leave`
/// request is answered, then reported on `stop` so the agent exits.
pub async fn serve(listener: TcpListener, token: String, node: Node, stop: mpsc::Sender<()>) {
    serve_with(listener, token, node, stop, Limits::default()).await
}

/// [`serve`] with explicit session bounds.
pub async fn serve_with(listener: TcpListener, token: String, node: Node, stop: mpsc::Sender<()>, limits: Limits) {
    let sessions = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.max_sessions.max(1)));
    let refusals = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_REFUSALS));
    let mut busy_logged: Option<tokio::time::Instant> = None;
    let mut busy_unlogged = 0u64;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(ok) => ok,
            Err(e) => {
                tracing::warn!(error = %e, "control accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = sessions.clone().try_acquire_owned() else {
            let busy =
                Response::err(format!("agent busy: {} control sessions already open; try again", limits.max_sessions));
            let mut text = serde_json::to_string(&busy).unwrap_or_default();
            text.push('\n');
            match refusals.clone().try_acquire_owned() {
                // Answer, then take in the request the client may already have sent (boundedly, briefly):
                // closing with it unread would reset the connection and lose the answer.
                Ok(slot) => {
                    tokio::spawn(async move {
                        let _slot = slot;
                        let (mut read, mut write) = stream.into_split();
                        let answered = async {
                            write.write_all(text.as_bytes()).await?;
                            write.shutdown().await
                        };
                        if let Ok(Ok(())) = tokio::time::timeout(DRAIN_TIME, answered).await {
                            let mut rest = (&mut read).take(limits.max_request as u64);
                            let _ =
                                tokio::time::timeout(DRAIN_TIME, tokio::io::copy(&mut rest, &mut tokio::io::sink()))
                                    .await;
                        }
                    });
                }
                // Too many refusals in flight: answer if the send buffer takes it at once, and close.
                Err(_) => {
                    let _ = stream.try_write(text.as_bytes());
                    drop(stream);
                }
            }
            busy_unlogged += 1;
            if busy_logged.is_none_or(|t| t.elapsed() >= BUSY_LOG_EVERY) {
                tracing::warn!(
                    %peer,
                    refused = busy_unlogged,
                    max_sessions = limits.max_sessions,
                    "control connections refused: too many sessions open"
                );
                busy_logged = Some(tokio::time::Instant::now());
                busy_unlogged = 0;
            }
            continue;
        };
        let token = token.clone();
        let node = node.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = session(stream, &token, &node, &stop, &limits).await {
                tracing::debug!(%peer, error = %e, "control session ended");
            }
        });
    }
}

async fn session(
    stream: TcpStream,
    token: &str,
    node: &Node,
    stop: &mpsc::Sender<()>,
    limits: &Limits,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(limits.max_request as u64));
    let mut line = Vec::new();
    let read = tokio::time::timeout(limits.request_timeout, reader.read_until(b'\n', &mut line)).await;
    let too_large = matches!(read, Ok(Ok(_))) && !line.ends_with(b"\n") && line.len() >= limits.max_request;
    let (response, leaving) = match read {
        Err(_) => {
            (Response::err(format!("request timed out: no complete line within {:?}", limits.request_timeout)), false)
        }
        Ok(Err(e)) => return Err(e),
        Ok(Ok(0)) => return Ok(()),
        Ok(Ok(_)) if too_large => {
            (Response::err(format!("request too large: the limit is {} bytes", limits.max_request)), false)
        }
        Ok(Ok(_)) => match serde_json::from_slice::<Envelope>(&line) {
            Err(e) => (Response::err(format!("bad request: {e}")), false),
            Ok(env) if !constant_time_eq(env.token.as_bytes(), token.as_bytes()) => (Response::err("bad token"), false),
            Ok(Envelope { request: Request::Monitor { level }, .. }) => {
                static MONITORS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_MONITORS);
                match (level.as_deref().map(crate::monitor::parse_level).transpose(), MONITORS.try_acquire()) {
                    (Ok(level), Ok(_slot)) => {
                        return monitor(reader.into_inner().into_inner(), write, node, limits, level).await
                    }
                    (Err(e), _) => (Response::err(e), false),
                    (_, Err(_)) => (Response::err(format!("{MAX_MONITORS} monitors already connected")), false),
                }
            }
            Ok(env) => {
                let leaving = env.request == Request::Leave;
                (handle(env.request, node).await, leaving)
            }
        },
    };
    let mut out = serde_json::to_string(&response).map_err(std::io::Error::other)?;
    out.push('\n');
    let answered = async {
        write.write_all(out.as_bytes()).await?;
        write.shutdown().await
    };
    let written = tokio::time::timeout(limits.write_timeout, answered)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "client did not read the answer")));
    // The node has left whether or not the client took the answer: stop the agent either way.
    if leaving && response.ok {
        let _ = stop.send(()).await;
    }
    if too_large && written.is_ok() {
        // Closing with the rest of the request unread would reset the connection, and the client could
        // lose the refusal; take in (and drop) a bounded amount more, for a moment, first.
        let mut rest = reader.into_inner().into_inner().take(DRAIN_BYTES);
        let _ = tokio::time::timeout(DRAIN_TIME, tokio::io::copy(&mut rest, &mut tokio::io::sink())).await;
    }
    written
}

/// Default wait of `cluster join` for a member to answer.
pub const DEFAULT_JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Most `cluster join` waits (a client cannot hold a control slot for longer).
const MAX_JOIN_TIMEOUT: Duration = Duration::from_secs(600);

/// Joins through `addrs` and waits until a member answered: one of them is an
/// alive member, or a live member not known before appeared (the join's
/// push-pull completed, even if the peer advertises another address).
async fn join(node: &Node, addrs: &[String], timeout_ms: Option<u64>) -> Response {
    let within = timeout_ms.map_or(DEFAULT_JOIN_TIMEOUT, Duration::from_millis).min(MAX_JOIN_TIMEOUT);
    let shown = addrs.join(", ");
    let mut targets = Vec::new();
    for a in addrs {
        let hp = match crate::seeds::HostPort::parse(a) {
            Ok(hp) => hp,
            Err(e) => return Response::err(e),
        };
        match hp.resolve().await {
            Ok(found) => targets.extend(found),
            Err(e) => tracing::warn!(addr = %hp, error = %e, "cluster join: address did not resolve"),
        }
    }
    if targets.is_empty() {
        return Response::err(format!("{shown} did not resolve"));
    }
    let targets = crate::seeds::same_family(targets, node.addr());
    let me = node.id().name.clone();
    let alive = |members: &[Member]| -> Vec<Member> {
        members.iter().filter(|m| m.id.name != me && m.status == MemberStatus::Alive).cloned().collect()
    };
    let before: std::collections::BTreeSet<String> = match node.members().await {
        Ok(m) => alive(&m).into_iter().map(|m| m.id.name.to_string()).collect(),
        Err(e) => return Response::err(e),
    };
    if let Err(e) = node.join(targets.clone()).await {
        return Response::err(e);
    }
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let members = match node.members().await {
            Ok(m) => alive(&m),
            Err(e) => return Response::err(e),
        };
        if let Some(m) = members.iter().find(|m| targets.contains(&m.id.addr) || !before.contains(m.id.name.as_str())) {
            return Response::ok(serde_json::json!({
                "joined": shown,
                "answered": m.id.name.to_string(),
                "members": members.len() + 1,
            }));
        }
        if tokio::time::Instant::now() >= deadline {
            return Response::err(format!(
                "no member answered at {shown} within {}",
                crate::seeds::show_duration(within)
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn handle(request: Request, node: &Node) -> Response {
    match request {
        Request::Members => match node.members().await {
            Ok(members) => Response::ok(members.iter().map(MemberView::from).collect::<Vec<_>>()),
            Err(e) => Response::err(e),
        },
        Request::Status => match node.members().await {
            Ok(members) => Response::ok(serde_json::json!({
                "node": node.id().name.to_string(),
                "addr": node.addr(),
                // Whether frames are sealed with a cluster key (false: `insecure = true`).
                "sealed": !node.list_keys().is_empty(),
                "members": members.iter().map(MemberView::from).collect::<Vec<_>>(),
            })),
            Err(e) => Response::err(e),
        },
        Request::Metrics => match node.metrics().await {
            Ok(m) => Response::ok(MetricsView::from(&m)),
            Err(e) => Response::err(e),
        },
        Request::Join { addrs, timeout_ms } => join(node, &addrs, timeout_ms).await,
        Request::Leave => match node.leave().await {
            Ok(confirmed) => Response::ok(serde_json::json!({ "left": true, "confirmed": confirmed })),
            Err(e) => Response::err(e),
        },
        Request::ForceLeave { name } => {
            let parsed = match name.parse() {
                Ok(n) => n,
                Err(e) => return Response::err(format!("bad node name: {e}")),
            };
            match node.force_leave(parsed).await {
                Ok(true) => Response::ok(serde_json::json!({ "force_left": name })),
                Ok(false) => Response::err(format!("no member named {name}")),
                Err(e) => Response::err(e),
            }
        }
        Request::Keys(request) => match crate::keys::handle(&request, node).await {
            Ok(report) => Response::ok(report),
            Err(e) => Response::err(e),
        },
        Request::Event(request) => crate::ops::event(node, request).await,
        Request::Query(request) => crate::ops::query(node, request).await,
        Request::Tags(request) => crate::ops::tags(node, request).await,
        // Served by `monitor` before `handle` is reached.
        Request::Monitor { .. } => Response::err("monitor is a streaming request"),
    }
}

/// One line of `gossamer monitor` for a membership event.
fn monitor_member_line(event: &gossamer::net::Event) -> String {
    use gossamer::net::Event as E;
    let kind = match event {
        E::MemberJoined(_) => "member-join",
        E::MemberUpdated(_) => "member-update",
        E::MemberSuspected(_) => "member-suspect",
        E::MemberFailed(_) => "member-failed",
        E::MemberLeft(_) => "member-leave",
        E::MemberRecovered(_) => "member-recover",
    };
    let m = event.member();
    format!("{kind} {} {} {}", m.id.name, m.id.addr, crate::handlers::tags_text(m))
}

/// Streams events to a `monitor` client until it hangs up (or stops reading for the write timeout).
async fn monitor(
    mut read: tokio::net::tcp::OwnedReadHalf,
    mut write: tokio::net::tcp::OwnedWriteHalf,
    node: &Node,
    limits: &Limits,
    level: Option<tracing::Level>,
) -> std::io::Result<()> {
    use gossamer::net::UserEvent;
    use tokio::sync::broadcast::error::RecvError;
    let mut members = node.subscribe();
    let mut user = node.subscribe_user();
    let mut logs = level.map(|_| crate::monitor::subscribe());
    let mut first = serde_json::to_string(&Response::ok("monitoring")).map_err(std::io::Error::other)?;
    first.push('\n');
    let mut pending = first;
    let mut scratch = [0u8; 256];
    loop {
        if !pending.is_empty() {
            tokio::time::timeout(limits.write_timeout, write.write_all(pending.as_bytes()))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "monitor client stopped reading"))??;
            pending.clear();
        }
        let line = tokio::select! {
            // The client sends nothing more: end of input (or an error) means it hung up.
            n = read.read(&mut scratch) => match n {
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => continue,
            },
            event = members.recv() => match event {
                Some(e) => monitor_member_line(&e),
                None => return Ok(()),
            },
            event = user.recv() => match event {
                Some(UserEvent::Broadcast { origin, key, version, payload }) => format!(
                    "user {} from {origin} version {version}: {}",
                    crate::handlers::event_name(key.as_str()),
                    String::from_utf8_lossy(&payload).escape_debug()
                ),
                Some(UserEvent::Query { origin, name, payload, .. }) => format!(
                    "query {name} from {}: {}",
                    origin.name,
                    String::from_utf8_lossy(&payload).escape_debug()
                ),
                Some(_) => continue,
                None => return Ok(()),
            },
            line = async {
                match logs.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => match line {
                // In tracing's order ERROR < WARN < … < TRACE: "at or above WARN" is `<= WARN`.
                Ok(l) if level.is_some_and(|max| l.level <= max) => format!("log {}", l.text),
                Ok(_) => continue,
                Err(RecvError::Lagged(n)) => format!("log ({n} lines skipped: this monitor read too slowly)"),
                Err(RecvError::Closed) => {
                    logs = None;
                    continue;
                }
            },
        };
        pending = line;
        pending.push('\n');
    }
}

/// Sends a streaming request (`monitor`) and calls `each` with every line after the agent's acceptance,
/// until the agent closes the connection.
pub async fn stream(info: &ControlInfo, request: Request, mut each: impl FnMut(&str)) -> Result<(), String> {
    let mut stream =
        TcpStream::connect(info.addr).await.map_err(|e| format!("cannot reach agent at {}: {e}", info.addr))?;
    let mut line =
        serde_json::to_string(&Envelope { token: info.token.clone(), request }).map_err(|e| e.to_string())?;
    line.push('\n');
    stream.write_all(line.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut lines = BufReader::new(stream).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .map_err(|_| format!("agent at {} did not answer in time", info.addr))?
        .map_err(|e| e.to_string())?
        .ok_or("the agent closed the connection")?;
    let response: Response = serde_json::from_str(&first).map_err(|e| format!("bad answer from agent: {e}"))?;
    if !response.ok {
        return Err(response.error.unwrap_or_else(|| "unknown error".into()));
    }
    each(&format!("# monitoring {} (Ctrl-C to stop)", info.node));
    while let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? {
        each(&line);
    }
    Ok(())
}

/// Sends one request to the agent described by `info`.
pub async fn call(info: &ControlInfo, request: Request) -> Result<serde_json::Value, String> {
    call_within(info, request, Duration::from_secs(30)).await
}

/// [`call`], waiting at most `within` for the answer (a query takes its own timeout first).
pub async fn call_within(info: &ControlInfo, request: Request, within: Duration) -> Result<serde_json::Value, String> {
    let io = async {
        let mut stream = TcpStream::connect(info.addr).await?;
        let mut line =
            serde_json::to_string(&Envelope { token: info.token.clone(), request }).map_err(std::io::Error::other)?;
        line.push('\n');
        stream.write_all(line.as_bytes()).await?;
        let mut reader = BufReader::new(stream);
        let mut answer = String::new();
        reader.read_line(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(within, io)
        .await
        .map_err(|_| format!("agent at {} did not answer in time", info.addr))?
        .map_err(|e| format!("cannot reach agent at {}: {e}", info.addr))?;
    let response: Response = serde_json::from_str(&answer).map_err(|e| format!("bad answer from agent: {e}"))?;
    if response.ok {
        Ok(response.result.unwrap_or(serde_json::Value::Null))
    } else {
        Err(response.error.unwrap_or_else(|| "unknown error".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_json_lines_with_a_command_tag() {
        let env = Envelope { token: "t".into(), request: Request::ForceLeave { name: "b@h".into() } };
        let text = serde_json::to_string(&env).unwrap();
        assert_eq!(text, r#"{"token":"t","command":"force_leave","name":"b@h"}"#);
        let back: Envelope = serde_json::from_str(&text).unwrap();
        assert_eq!(back.request, env.request);
        let join: Envelope = serde_json::from_str(r#"{"token":"t","command":"join","addrs":["127.0.0.1:1"]}"#).unwrap();
        assert_eq!(join.request, Request::Join { addrs: vec!["127.0.0.1:1".into()], timeout_ms: None });
        assert!(serde_json::from_str::<Envelope>(r#"{"token":"t","command":"reboot"}"#).is_err());
    }

    #[test]
    fn tokens_are_random_hex() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(constant_time_eq(a.as_bytes(), a.as_bytes()));
        assert!(!constant_time_eq(a.as_bytes(), b.as_bytes()));
    }

    #[test]
    fn control_file_roundtrip_is_private() {
        let dir = std::env::temp_dir().join(format!("gossamer-control-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("n.control");
        let info =
            ControlInfo { addr: "127.0.0.1:5000".parse().unwrap(), token: "abc".into(), node: "n".into(), pid: 1 };
        write_info(&path, &info).unwrap();
        assert_eq!(read_info(&path).unwrap(), info);
        let shown = format!("{info:?} {:?}", Envelope { token: "s3cr3t".into(), request: Request::Members });
        assert!(!shown.contains("abc") && !shown.contains("s3cr3t"), "{shown}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn only_a_directory_we_own_and_others_cannot_write_is_safe() {
        let dir = Path::new("/srv/gossamer");
        assert!(check_dir_owner(dir, 1000, 0o40700, 1000).is_ok());
        assert!(check_dir_owner(dir, 1000, 0o40755, 1000).is_ok());
        let err = check_dir_owner(dir, 0, 0o40700, 1000).unwrap_err();
        assert!(err.contains("/srv/gossamer") && err.contains("owned by uid 0") && err.contains("uid 1000"), "{err}");
        let err = check_dir_owner(dir, 1000, 0o40770, 1000).unwrap_err();
        assert!(err.contains("its group") && err.contains("chmod go-w /srv/gossamer"), "{err}");
        let err = check_dir_owner(dir, 1000, 0o41777, 1000).unwrap_err();
        assert!(err.contains("every user") && err.contains("1777"), "{err}");
    }

    /// A session that never completes its request line is answered and closed after the deadline,
    /// freeing its slot.
    #[tokio::test]
    async fn slow_sessions_time_out_with_a_reason() {
        let config = gossamer::net::NodeConfig::new(
            "ctl@127.0.0.1",
            "127.0.0.1:0".parse().unwrap(),
            gossamer::net::Preset::Local,
        )
        .unwrap();
        let node = Node::start(config).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, _stop_rx) = mpsc::channel(1);
        let limits = Limits { max_sessions: 1, request_timeout: Duration::from_millis(300), ..Limits::default() };
        let server = tokio::spawn(serve_with(listener, "tok".into(), node.clone(), stop_tx, limits));

        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"{\"token\":").await.unwrap();
        // The one slot is taken: a second client is told so.
        let mut busy = String::new();
        TcpStream::connect(addr).await.unwrap().read_to_string(&mut busy).await.unwrap();
        assert!(busy.contains("agent busy"), "{busy}");
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(30), slow.read_to_string(&mut answer)).await.unwrap().unwrap();
        assert!(answer.contains("request timed out"), "{answer}");
        // The slot is free again.
        let info = ControlInfo { addr, token: "tok".into(), node: "ctl".into(), pid: 0 };
        let mut last = Err(String::new());
        for _ in 0..100 {
            last = call(&info, Request::Members).await;
            if last.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(last.is_ok(), "{last:?}");
        server.abort();
        node.shutdown().await;
    }
}

#[cfg(test)]
mod metrics_view_tests {
    use super::*;

    fn keys<T: Serialize>(value: &T) -> Vec<String> {
        serde_json::to_value(value).unwrap().as_object().unwrap().keys().cloned().collect()
    }

    /// Every library counter reaches `gossamer metrics` (issue #17: a hand
    /// mirror had lost seven), under its own name, with no collision.
    #[test]
    fn every_library_counter_is_printed() {
        let view = MetricsView::default();
        let printed = keys(&view);
        let parts: Vec<String> = keys(&view.core)
            .into_iter()
            .chain(keys(&view.net))
            .chain(keys(&view.handlers))
            .chain(keys(&view.dns))
            .chain(["heal".to_string()])
            .collect();
        assert_eq!(printed.len(), parts.len(), "two parts share a field name");
        for key in [
            "push_pull_failures",
            "user_items_remembered",
            "user_ltime",
            "recv_errors",
            "streams_busy",
            "multicast_joins",
            "timers_pending",
            "members_refused",
            "probe_rtt",
            "push_pull_duration",
        ] {
            assert!(printed.contains(&key.to_string()), "{key} missing");
        }
        let mut m = NodeMetrics::default();
        m.core.user_ltime = 7;
        m.net.streams_busy = 3;
        let back: MetricsView = serde_json::from_value(serde_json::to_value(MetricsView::from(&m)).unwrap()).unwrap();
        assert_eq!((back.core, back.net), (m.core, m.net));
    }

    /// An agent of an older build sends fewer fields: they read as zero.
    #[test]
    fn missing_fields_read_as_zero() {
        let view: MetricsView = serde_json::from_str(r#"{"alive": 3, "send_errors": 1, "handler_runs": 2}"#).unwrap();
        assert_eq!((view.core.alive, view.net.send_errors, view.handlers.handler_runs), (3, 1, 2));
        assert_eq!(view.core.user_ltime, 0);
    }
}
