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

/// Longest request line accepted.
const MAX_LINE: usize = 64 * 1024;
/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the control file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Join through these addresses.
    Join {
        /// Seeds.
        addrs: Vec<SocketAddr>,
    },
    /// Leave gracefully, then stop the agent.
    Leave,
    /// Declare a member left.
    ForceLeave {
        /// Its name.
        name: String,
    },
}

/// A request with its token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// From the control file.
    pub token: String,
    /// The request.
    #[serde(flatten)]
    pub request: Request,
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

/// Counters, as printed by `gossamer metrics`. Fields missing from an
/// agent of an older build read as zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsView {
    /// Alive members.
    pub alive: usize,
    /// Suspect members.
    pub suspect: usize,
    /// Dead members.
    pub dead: usize,
    /// Members that left.
    pub left: usize,
    /// Messages received.
    pub messages_in: u64,
    /// Messages sent.
    pub messages_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Frames refused.
    pub rejected: u64,
    /// Probes sent.
    pub probes: u64,
    /// Suspicions raised.
    pub suspicions: u64,
    /// Suspicions of this node refuted.
    pub refutations: u64,
    /// Lifeguard health multiplier.
    pub health_multiplier: u32,
    /// Indirect probes (ping-req) sent.
    pub indirect_probes: u64,
    /// Push-pull exchanges started.
    pub push_pulls: u64,
    /// Updates waiting in the dissemination queue.
    pub queued_updates: usize,
    /// Updates piggybacked on outgoing packets.
    pub updates_sent: u64,
    /// This node's incarnation.
    pub incarnation: u64,
    /// Application items (broadcasts, queries) waiting in their queue.
    pub queued_user_items: usize,
    /// Application items queued, this node's own and forwarded ones.
    pub user_items_queued: u64,
    /// Application items piggybacked on outgoing packets.
    pub user_items_sent: u64,
    /// Broadcasts and queries delivered to the application here.
    pub user_items_delivered: u64,
    /// Application items dropped because their queue was full.
    pub user_items_dropped: u64,
    /// Application items dropped as too old.
    pub user_items_too_old: u64,
    /// Datagrams the OS refused.
    pub send_errors: u64,
    /// Push-pull streams accepted.
    pub streams_accepted: u64,
    /// Push-pull streams refused.
    pub streams_refused: u64,
    /// Push-pull exchanges that failed.
    pub push_pull_failed: u64,
    /// Multicast heartbeats sent.
    pub heartbeats_sent: u64,
    /// Multicast heartbeats heard.
    pub heartbeats_received: u64,
    /// Multicast datagrams refused.
    pub heartbeats_rejected: u64,
}

impl From<&NodeMetrics> for MetricsView {
    fn from(m: &NodeMetrics) -> Self {
        let c = &m.core;
        let n = &m.net;
        Self {
            alive: c.alive,
            suspect: c.suspect,
            dead: c.dead,
            left: c.left,
            messages_in: c.messages_in,
            messages_out: c.messages_out,
            bytes_in: c.bytes_in,
            bytes_out: c.bytes_out,
            rejected: c.rejected,
            probes: c.probes,
            suspicions: c.suspicions,
            refutations: c.refutations,
            health_multiplier: c.health_multiplier,
            indirect_probes: c.indirect_probes,
            push_pulls: c.push_pulls,
            queued_updates: c.queued_updates,
            updates_sent: c.updates_sent,
            incarnation: c.incarnation,
            queued_user_items: c.queued_user_items,
            user_items_queued: c.user_items_queued,
            user_items_sent: c.user_items_sent,
            user_items_delivered: c.user_items_delivered,
            user_items_dropped: c.user_items_dropped,
            user_items_too_old: c.user_items_too_old,
            send_errors: n.send_errors,
            streams_accepted: n.streams_accepted,
            streams_refused: n.streams_refused,
            push_pull_failed: n.push_pull_failed,
            heartbeats_sent: n.heartbeats_sent,
            heartbeats_received: n.heartbeats_received,
            heartbeats_rejected: n.heartbeats_rejected,
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
    fn ok(value: impl Serialize) -> Self {
        match serde_json::to_value(value) {
            Ok(v) => Self { ok: true, result: Some(v), error: None },
            Err(e) => Self::err(e),
        }
    }
    fn err(e: impl ToString) -> Self {
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
pub fn write_info(path: &Path, info: &ControlInfo) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("control.tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(serde_json::to_string(info).map_err(std::io::Error::other)?.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
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
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(ok) => ok,
            Err(e) => {
                tracing::warn!(error = %e, "control accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let token = token.clone();
        let node = node.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            if let Err(e) = session(stream, &token, &node, &stop).await {
                tracing::debug!(%peer, error = %e, "control session ended");
            }
        });
    }
}

async fn session(stream: TcpStream, token: &str, node: &Node, stop: &mpsc::Sender<()>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(MAX_LINE as u64));
    let mut line = String::new();
    let n = tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request timeout"))??;
    if n == 0 {
        return Ok(());
    }
    let (response, leaving) = match serde_json::from_str::<Envelope>(&line) {
        Err(e) => (Response::err(format!("bad request: {e}")), false),
        Ok(env) if !constant_time_eq(env.token.as_bytes(), token.as_bytes()) => (Response::err("bad token"), false),
        Ok(env) => {
            let leaving = env.request == Request::Leave;
            (handle(env.request, node).await, leaving)
        }
    };
    let mut out = serde_json::to_string(&response).map_err(std::io::Error::other)?;
    out.push('\n');
    write.write_all(out.as_bytes()).await?;
    write.shutdown().await?;
    if leaving && response.ok {
        let _ = stop.send(()).await;
    }
    Ok(())
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
                "members": members.iter().map(MemberView::from).collect::<Vec<_>>(),
            })),
            Err(e) => Response::err(e),
        },
        Request::Metrics => match node.metrics().await {
            Ok(m) => Response::ok(MetricsView::from(&m)),
            Err(e) => Response::err(e),
        },
        Request::Join { addrs } => match node.join(addrs.clone()).await {
            Ok(()) => Response::ok(serde_json::json!({ "joining": addrs })),
            Err(e) => Response::err(e),
        },
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
    }
}

/// Sends one request to the agent described by `info`.
pub async fn call(info: &ControlInfo, request: Request) -> Result<serde_json::Value, String> {
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
    let answer = tokio::time::timeout(Duration::from_secs(30), io)
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
        assert_eq!(join.request, Request::Join { addrs: vec!["127.0.0.1:1".parse().unwrap()] });
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
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
