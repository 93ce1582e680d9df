//! Event handlers (Serf's `-event-handler`): `[[handlers]]` in the agent file run a shell command for
//! membership changes, user events and queries, so a service not written in Rust can react to them.
//!
//! ```toml
//! [[handlers]]
//! events = ["member-join", "member-failed", "user:deploy"]
//! command = "/usr/local/bin/on-gossip"
//! timeout = "10s"
//! ```
//!
//! The command runs with `sh -c`, in a process group of its own, and gets:
//!
//! - environment: `GOSSAMER_EVENT` (`member-join`, `member-leave`, `member-failed`, `member-update`,
//!   `member-reap`, `user` or `query`), `GOSSAMER_SELF_NAME`, `GOSSAMER_SELF_TAGS` (`k=v,k=v`), one
//!   `GOSSAMER_TAG_<KEY>` per own tag (key upper-cased, other than `[A-Z0-9]` as `_`), and for user events
//!   `GOSSAMER_USER_EVENT` / `GOSSAMER_USER_LTIME` (the broadcast's version), for queries
//!   `GOSSAMER_QUERY_NAME` / `GOSSAMER_QUERY_LTIME` (the query id) / `GOSSAMER_QUERY_ORIGIN`;
//! - stdin: the affected member, one line `name<TAB>address<TAB>k=v,k=v` (membership events), or the
//!   payload (user events, queries). Control characters in peer-supplied text become `?`.
//!
//! A query handler's stdout, cut at [`MAX_ANSWER`] bytes (and the node's datagram bound), is the query's
//! answer when the command exits 0. Each handler runs one event at a time, fed by a bounded queue
//! (`queue`, 128 by default): an event arriving at a full queue is dropped, counted and logged
//! (rate-limited). A run longer than `timeout` has its whole process group killed. A failure is logged
//! with its exit status and the tail of its stderr. None of it can stop the agent.

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gossamer::net::{Event, Member, Node, QueryId, UserEvent};
use gossamer::wire::{MemberStatus, NodeName};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::http_api::WarnEvery;
use crate::settings::{invalid, SettingsError};

/// Default run time of one handler invocation before its process group is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound of each handler's queue of waiting events.
pub const DEFAULT_QUEUE: usize = 128;
/// Largest query answer taken from a handler's stdout (the rest is read and dropped); the node's own
/// datagram bound ([`Node::max_user_item_len`]) may cut it further.
pub const MAX_ANSWER: usize = 1024;
/// How much of a failing handler's stderr is logged (its end).
const STDERR_TAIL: usize = 512;
/// Separator between an event name and the unique suffix `gossamer event` (without `--coalesce`) adds to
/// the broadcast key; handlers see the name before it.
pub const KEY_SEPARATOR: char = '\u{1f}';
/// How often membership is scanned for reaped members, when a handler takes `member-reap`.
const REAP_SCAN: Duration = Duration::from_secs(2);

/// A user event this agent sent itself (`gossamer event`): the node does not deliver its own broadcasts,
/// but Serf's handlers run on the sender too, so the control socket hands them over here.
#[derive(Debug, Clone)]
pub struct LocalEvent {
    /// The event name.
    pub name: String,
    /// The broadcast's version.
    pub version: u64,
    /// The payload.
    pub payload: Vec<u8>,
}

fn local_events() -> &'static tokio::sync::broadcast::Sender<LocalEvent> {
    static CHANNEL: std::sync::OnceLock<tokio::sync::broadcast::Sender<LocalEvent>> = std::sync::OnceLock::new();
    CHANNEL.get_or_init(|| tokio::sync::broadcast::channel(DEFAULT_QUEUE).0)
}

/// Hands this agent's own user event to its handlers (no-op without handlers).
pub fn deliver_local(event: LocalEvent) {
    let _ = local_events().send(event);
}

fn user_job(name: &str, version: u64, payload: Vec<u8>) -> Job {
    let name = clean(name);
    Job {
        class: Class::User(name.clone()),
        env: vec![
            ("GOSSAMER_EVENT".into(), "user".into()),
            ("GOSSAMER_USER_EVENT".into(), name),
            ("GOSSAMER_USER_LTIME".into(), version.to_string()),
        ],
        stdin: payload,
        answer: None,
    }
}

/// The membership event names a handler may take.
pub const MEMBER_EVENTS: &[&str] = &["member-join", "member-leave", "member-failed", "member-update", "member-reap"];

/// One `[[handlers]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerSettings {
    /// Events taken: names from [`MEMBER_EVENTS`], `user:<name>`, `query:<name>`, `user:*`, `query:*`, `*`.
    pub events: Vec<String>,
    /// Run with `sh -c`.
    pub command: String,
    /// Longest run (`"500ms"`, `"10s"`, `"1m"`); 10 s by default.
    pub timeout: Option<String>,
    /// Events waiting at most (1 to 65536); 128 by default.
    pub queue: Option<usize>,
}

/// Which events a handler takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// `*`: everything.
    Any,
    /// A membership event name.
    Member(String),
    /// `user:<name>`, or `user:*` (`None`).
    User(Option<String>),
    /// `query:<name>`, or `query:*` (`None`).
    Query(Option<String>),
}

impl Pattern {
    fn parse(text: &str) -> Result<Self, String> {
        let named = |rest: &str| if rest == "*" { None } else { Some(rest.to_owned()) };
        match text {
            "*" => Ok(Pattern::Any),
            t if MEMBER_EVENTS.contains(&t) => Ok(Pattern::Member(t.to_owned())),
            t => match t.split_once(':') {
                Some(("user", rest)) if !rest.is_empty() => Ok(Pattern::User(named(rest))),
                Some(("query", rest)) if !rest.is_empty() => Ok(Pattern::Query(named(rest))),
                _ => Err(format!(
                    "unknown event {t:?}: one of {}, user:<name>, query:<name>, user:*, query:*, *",
                    MEMBER_EVENTS.join(", ")
                )),
            },
        }
    }

    fn matches(&self, class: &Class) -> bool {
        match (self, class) {
            (Pattern::Any, _) => true,
            (Pattern::Member(a), Class::Member(b)) => a == b,
            (Pattern::User(n), Class::User(name)) | (Pattern::Query(n), Class::Query(name)) => {
                n.as_deref().is_none_or(|n| n == name)
            }
            _ => false,
        }
    }
}

/// One handler, every value checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerConfig {
    /// Events taken.
    pub events: Vec<Pattern>,
    /// The shell command.
    pub command: String,
    /// Longest run.
    pub timeout: Duration,
    /// Queue bound.
    pub queue: usize,
}

/// Parses `"250ms"`, `"10s"`, `"2m"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = num.parse().map_err(|_| format!("{text:?} is not a duration like \"500ms\", \"10s\", \"1m\""))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs).ok_or_else(|| format!("{text:?} is too long")),
        _ => Err(format!("{text:?} is not a duration like \"500ms\", \"10s\", \"1m\"")),
    }
}

impl HandlerSettings {
    /// Checks the table `handlers[index]`.
    pub fn resolve(&self, index: usize) -> Result<HandlerConfig, SettingsError> {
        let key = |field: &str| format!("handlers[{index}].{field}");
        if self.events.is_empty() {
            return Err(invalid(key("events"), "must name at least one event"));
        }
        let events = self
            .events
            .iter()
            .map(|e| Pattern::parse(e))
            .collect::<Result<_, _>>()
            .map_err(|e| invalid(key("events"), e))?;
        if self.command.trim().is_empty() {
            return Err(invalid(key("command"), "must not be empty"));
        }
        let timeout = match &self.timeout {
            None => DEFAULT_TIMEOUT,
            Some(t) => parse_duration(t).map_err(|e| invalid(key("timeout"), e))?,
        };
        if timeout.is_zero() || timeout > Duration::from_secs(3600) {
            return Err(invalid(key("timeout"), "must be more than 0 and at most 1h"));
        }
        let queue = self.queue.unwrap_or(DEFAULT_QUEUE);
        if !(1..=65_536).contains(&queue) {
            return Err(invalid(key("queue"), "must be 1 to 65536"));
        }
        Ok(HandlerConfig { events, command: self.command.clone(), timeout, queue })
    }
}

/// Process-wide handler counters, shown by `gossamer metrics`.
#[derive(Debug, Default)]
pub struct HandlerMetrics {
    runs: AtomicU64,
    failures: AtomicU64,
    timeouts: AtomicU64,
    dropped: AtomicU64,
    truncated: AtomicU64,
}

/// The agent's handler counters (one agent per process).
pub static METRICS: HandlerMetrics = HandlerMetrics {
    runs: AtomicU64::new(0),
    failures: AtomicU64::new(0),
    timeouts: AtomicU64::new(0),
    dropped: AtomicU64::new(0),
    truncated: AtomicU64::new(0),
};

impl HandlerMetrics {
    /// Handler invocations started.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }
    /// Invocations that failed (spawn error, non-zero exit, killed at the timeout).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
    /// Invocations killed at their timeout.
    pub fn timeouts(&self) -> u64 {
        self.timeouts.load(Ordering::Relaxed)
    }
    /// Events dropped at a full handler queue.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
    /// Invocations whose stdout was cut at the answer bound.
    pub fn truncated(&self) -> u64 {
        self.truncated.load(Ordering::Relaxed)
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What an event is, for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Class {
    Member(String),
    User(String),
    Query(String),
}

/// One invocation's input.
#[derive(Debug, Clone)]
struct Job {
    class: Class,
    env: Vec<(String, String)>,
    stdin: Vec<u8>,
    /// A query to answer with stdout.
    answer: Option<(QueryId, NodeName)>,
}

/// Peer text made safe for an env value or a stdin line: control characters become `?`.
fn clean(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// `k=v,k=v` of a member's metadata.
pub fn tags_text(member: &Member) -> String {
    member
        .metadata
        .iter()
        .map(|(k, v)| format!("{}={}", clean(k), clean(&String::from_utf8_lossy(v))))
        .collect::<Vec<_>>()
        .join(",")
}

/// `GOSSAMER_TAG_<KEY>`: the key upper-cased, anything but `[A-Z0-9]` as `_`.
pub fn tag_var(key: &str) -> String {
    let k: String = key.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("GOSSAMER_TAG_{k}")
}

/// The event name a handler sees for a broadcast key: the part before [`KEY_SEPARATOR`].
pub fn event_name(key: &str) -> &str {
    key.split(KEY_SEPARATOR).next().unwrap_or(key)
}

/// The membership event name of a core event; `None` for those handlers never see (suspicion).
fn member_event(event: &Event) -> Option<&'static str> {
    match event {
        Event::MemberJoined(_) | Event::MemberRecovered(_) => Some("member-join"),
        Event::MemberLeft(_) => Some("member-leave"),
        Event::MemberFailed(_) => Some("member-failed"),
        Event::MemberUpdated(_) => Some("member-update"),
        Event::MemberSuspected(_) => None,
    }
}

fn member_line(m: &Member) -> Vec<u8> {
    format!("{}\t{}\t{}\n", clean(m.id.name.as_ref()), m.id.addr, tags_text(m)).into_bytes()
}

struct Worker {
    config: Arc<HandlerConfig>,
    tx: mpsc::Sender<Job>,
}

/// Starts the handlers' workers and the task feeding them from `node`'s events; returns that task.
pub fn start(node: &Node, handlers: Vec<HandlerConfig>) -> Option<tokio::task::JoinHandle<()>> {
    if handlers.is_empty() {
        return None;
    }
    let answer_bound = MAX_ANSWER.min(node.max_user_item_len());
    let workers: Vec<Worker> = handlers
        .into_iter()
        .enumerate()
        .map(|(index, config)| {
            let config = Arc::new(config);
            let (tx, rx) = mpsc::channel(config.queue);
            tokio::spawn(work(index, config.clone(), rx, node.clone(), answer_bound));
            Worker { config, tx }
        })
        .collect();
    let reap = workers.iter().any(|w| {
        w.config.events.iter().any(|p| matches!(p, Pattern::Any) || *p == Pattern::Member("member-reap".into()))
    });
    Some(tokio::spawn(dispatch(node.clone(), workers, reap)))
}

/// This node's tags, read at most once a second.
struct SelfTags {
    text: String,
    vars: Vec<(String, String)>,
    read: Option<tokio::time::Instant>,
}

impl SelfTags {
    async fn refresh(&mut self, node: &Node) {
        if self.read.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return;
        }
        if let Ok(members) = node.members().await {
            if let Some(me) = members.iter().find(|m| m.id.name == node.id().name) {
                self.text = tags_text(me);
                self.vars = me.metadata.iter().map(|(k, v)| (tag_var(k), clean(&String::from_utf8_lossy(v)))).collect();
            }
        }
        self.read = Some(tokio::time::Instant::now());
    }
}

async fn dispatch(node: Node, workers: Vec<Worker>, reap: bool) {
    let mut members = node.subscribe();
    let mut user = node.subscribe_user();
    let mut local = local_events().subscribe();
    let mut me = SelfTags { text: String::new(), vars: Vec::new(), read: None };
    let mut dropped_log = WarnEvery::default();
    let mut scan = tokio::time::interval(REAP_SCAN);
    scan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Members dead or left at the last scan, to notice the ones forgotten since.
    let mut departed: HashMap<NodeName, Member> = HashMap::new();
    // The node started (and may have joined) before this task subscribed: its members alive by then get a
    // `member-join` now, and the first join event still queued for one of them is not reported twice.
    let mut announced: std::collections::HashSet<NodeName> = std::collections::HashSet::new();
    if let Ok(known) = node.members().await {
        for m in known.iter().filter(|m| m.id.name != node.id().name && m.status == MemberStatus::Alive) {
            announced.insert(m.id.name.clone());
            let job = Job {
                class: Class::Member("member-join".into()),
                env: vec![("GOSSAMER_EVENT".into(), "member-join".into())],
                stdin: member_line(m),
                answer: None,
            };
            offer(&workers, job, &mut me, &node, &mut dropped_log).await;
        }
    }
    loop {
        let job = tokio::select! {
            event = members.recv() => match event {
                // Any later event of a member ends the watch for its duplicate join.
                Some(event) if announced.remove(&event.member().id.name)
                    && matches!(event, Event::MemberJoined(_)) => None,
                Some(event) => member_event(&event).map(|name| Job {
                    class: Class::Member(name.into()),
                    env: vec![("GOSSAMER_EVENT".into(), name.into())],
                    stdin: member_line(event.member()),
                    answer: None,
                }),
                None => return,
            },
            event = user.recv() => match event {
                Some(UserEvent::Broadcast { key, version, payload, .. }) => {
                    Some(user_job(event_name(key.as_str()), version, payload.to_vec()))
                }
                Some(UserEvent::Query { id, origin, name, payload }) => {
                    let name = clean(name.as_str());
                    Some(Job {
                        class: Class::Query(name.clone()),
                        env: vec![
                            ("GOSSAMER_EVENT".into(), "query".into()),
                            ("GOSSAMER_QUERY_NAME".into(), name),
                            ("GOSSAMER_QUERY_LTIME".into(), id.to_string()),
                            ("GOSSAMER_QUERY_ORIGIN".into(), clean(origin.name.as_ref())),
                        ],
                        stdin: payload.to_vec(),
                        answer: Some((id, origin.name.clone())),
                    })
                }
                Some(_) => None,
                None => return,
            },
            event = local.recv() => match event {
                Ok(e) => Some(user_job(&e.name, e.version, e.payload)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(lost = n, "handlers fell behind this agent's own user events");
                    None
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
            },
            _ = scan.tick(), if reap => {
                let Ok(now) = node.members().await else { return };
                let present: std::collections::HashSet<&NodeName> = now.iter().map(|m| &m.id.name).collect();
                let gone: Vec<Member> =
                    departed.iter().filter(|(n, _)| !present.contains(n)).map(|(_, m)| m.clone()).collect();
                departed = now
                    .iter()
                    .filter(|m| matches!(m.status, MemberStatus::Dead | MemberStatus::Left))
                    .map(|m| (m.id.name.clone(), m.clone()))
                    .collect();
                for m in gone {
                    let job = Job {
                        class: Class::Member("member-reap".into()),
                        env: vec![("GOSSAMER_EVENT".into(), "member-reap".into())],
                        stdin: member_line(&m),
                        answer: None,
                    };
                    offer(&workers, job, &mut me, &node, &mut dropped_log).await;
                }
                None
            }
        };
        if let Some(job) = job {
            offer(&workers, job, &mut me, &node, &mut dropped_log).await;
        }
    }
}

/// Queues `job` for every handler taking it; a full queue drops it (counted, logged rate-limited).
async fn offer(workers: &[Worker], mut job: Job, me: &mut SelfTags, node: &Node, log: &mut WarnEvery) {
    let takers: Vec<&Worker> =
        workers.iter().filter(|w| w.config.events.iter().any(|p| p.matches(&job.class))).collect();
    if takers.is_empty() {
        return;
    }
    me.refresh(node).await;
    job.env.push(("GOSSAMER_SELF_NAME".into(), node.id().name.to_string()));
    job.env.push(("GOSSAMER_SELF_TAGS".into(), me.text.clone()));
    job.env.extend(me.vars.iter().cloned());
    for w in takers {
        if let Err(mpsc::error::TrySendError::Full(_)) = w.tx.try_send(job.clone()) {
            bump(&METRICS.dropped);
            if let Some(suppressed) = log.due() {
                tracing::warn!(
                    command = %w.config.command,
                    queue = w.config.queue,
                    also_dropped = suppressed,
                    "handler queue full: event dropped"
                );
            }
        }
    }
}

async fn work(index: usize, config: Arc<HandlerConfig>, mut rx: mpsc::Receiver<Job>, node: Node, bound: usize) {
    let mut failures = WarnEvery::default();
    let mut unanswered = WarnEvery::default();
    while let Some(job) = rx.recv().await {
        let answer = job.answer.clone();
        match run(&config, job, bound).await {
            Outcome::Done { stdout, truncated } => {
                if truncated {
                    bump(&METRICS.truncated);
                }
                if let Some((id, origin)) = answer {
                    // Too late (past the query's timeout) or too large: logged, rate-limited.
                    if let Err(e) = node.respond(id, &origin, stdout).await {
                        if let Some(suppressed) = unanswered.due() {
                            tracing::warn!(handler = index, %origin, error = %e, also_unsent = suppressed, "query answer not sent");
                        }
                    }
                }
            }
            failed => {
                if let Some(suppressed) = failures.due() {
                    tracing::warn!(handler = index, command = %config.command, also_failed = suppressed, "handler failed: {failed}");
                }
            }
        }
    }
}

/// How one invocation ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done { stdout: Vec<u8>, truncated: bool },
    Failed { status: String, stderr: String },
    TimedOut { after: Duration },
    Spawn(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Done { .. } => write!(f, "ok"),
            Outcome::Failed { status, stderr } => write!(f, "{status}; stderr ends: {stderr:?}"),
            Outcome::TimedOut { after } => write!(f, "killed (its process group) after the {after:?} timeout"),
            Outcome::Spawn(e) => write!(f, "cannot start `sh`: {e}"),
        }
    }
}

/// Reads at most `bound` bytes, then reads and drops the rest (so the writer never blocks on a full pipe).
async fn read_bounded(mut from: impl AsyncRead + Unpin, bound: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    let mut truncated = false;
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return (kept, truncated),
            Ok(n) => {
                let room = bound.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                truncated |= n > room;
            }
        }
    }
}

/// Keeps the last `tail` bytes.
async fn read_tail(mut from: impl AsyncRead + Unpin, tail: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > tail {
                    kept.drain(..kept.len() - tail);
                }
            }
        }
    }
}

async fn run(config: &HandlerConfig, job: Job, bound: usize) -> Outcome {
    bump(&METRICS.runs);
    let mut cmd = tokio::process::Command::new("sh");
    // The agent's own GOSSAMER_* variables stay out of the handler's environment: GOSSAMER_SECRET and
    // GOSSAMER_KEYS hold the cluster keys, and the rest would blur with the event's variables.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("GOSSAMER_") {
            cmd.env_remove(k);
        }
    }
    cmd.arg("-c")
        .arg(&config.command)
        .envs(job.env.iter().filter(|(_, v)| !v.contains('\0')).map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            bump(&METRICS.failures);
            return Outcome::Spawn(e.to_string());
        }
    };
    let pid = child.id();
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let input = job.stdin;
    let feed = async move {
        if let Some(mut s) = stdin {
            // A handler that does not read its stdin closes the pipe: not an error.
            let _ = s.write_all(&input).await;
        }
    };
    let out = async move {
        match stdout {
            Some(s) => read_bounded(s, bound).await,
            None => (Vec::new(), false),
        }
    };
    let err = async move {
        match stderr {
            Some(s) => read_tail(s, STDERR_TAIL).await,
            None => Vec::new(),
        }
    };
    let finished = tokio::time::timeout(config.timeout, async { tokio::join!(feed, out, err, child.wait()) }).await;
    match finished {
        Ok((_, (stdout, truncated), _, Ok(status))) if status.success() => Outcome::Done { stdout, truncated },
        Ok((_, _, stderr, status)) => {
            bump(&METRICS.failures);
            let status = match status {
                Ok(s) => s.to_string(),
                Err(e) => format!("cannot wait for it: {e}"),
            };
            Outcome::Failed { status, stderr: String::from_utf8_lossy(&stderr).into_owned() }
        }
        Err(_) => {
            bump(&METRICS.failures);
            bump(&METRICS.timeouts);
            kill_group(pid);
            let _ = child.kill().await;
            Outcome::TimedOut { after: config.timeout }
        }
    }
}

/// Kills the process group led by `pid` (the handler's shell and whatever it started).
fn kill_group(pid: Option<u32>) {
    #[cfg(unix)]
    if let Some(pgid) = pid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 0) {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is touched.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    #[cfg(not(unix))]
    let _ = pid;
}

/// The `[[handlers]]` resolved from the agent file.
pub fn resolve_all(settings: &[HandlerSettings]) -> Result<Vec<HandlerConfig>, SettingsError> {
    settings.iter().enumerate().map(|(i, h)| h.resolve(i)).collect()
}

/// Tag arguments `k=v` parsed into a map (for `gossamer tags set`).
pub fn parse_tags(args: &[String]) -> Result<BTreeMap<String, String>, String> {
    args.iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(format!("{a:?} is not key=value")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(command: &str, timeout: Duration) -> HandlerConfig {
        HandlerConfig { events: vec![Pattern::Any], command: command.into(), timeout, queue: 4 }
    }

    fn job(stdin: &str) -> Job {
        Job {
            class: Class::User("x".into()),
            env: vec![("GOSSAMER_EVENT".into(), "user".into())],
            stdin: stdin.as_bytes().to_vec(),
            answer: None,
        }
    }

    #[test]
    fn patterns_parse_and_match() {
        let p = |t: &str| Pattern::parse(t).unwrap();
        assert!(p("*").matches(&Class::Query("q".into())));
        assert!(p("member-join").matches(&Class::Member("member-join".into())));
        assert!(!p("member-join").matches(&Class::Member("member-leave".into())));
        assert!(p("user:deploy").matches(&Class::User("deploy".into())));
        assert!(!p("user:deploy").matches(&Class::User("other".into())));
        assert!(!p("user:deploy").matches(&Class::Query("deploy".into())));
        assert!(p("user:*").matches(&Class::User("any".into())));
        assert!(p("query:*").matches(&Class::Query("any".into())));
        for bad in ["member-joined", "user:", "query", "deploy", ""] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn settings_are_checked_with_the_key_named() {
        let h = HandlerSettings { events: vec!["user:x".into()], command: "true".into(), timeout: None, queue: None };
        let c = h.resolve(0).unwrap();
        assert_eq!((c.timeout, c.queue), (DEFAULT_TIMEOUT, DEFAULT_QUEUE));
        let bad = HandlerSettings { timeout: Some("10 parsecs".into()), ..h.clone() };
        assert!(bad.resolve(3).unwrap_err().to_string().contains("handlers[3].timeout"));
        let bad = HandlerSettings { events: vec!["nope".into()], ..h.clone() };
        assert!(bad.resolve(0).unwrap_err().to_string().contains("handlers[0].events"));
        let bad = HandlerSettings { queue: Some(0), ..h };
        assert!(bad.resolve(0).is_err());
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    }

    #[test]
    fn names_and_tags_are_made_safe() {
        assert_eq!(tag_var("zone-a.b"), "GOSSAMER_TAG_ZONE_A_B");
        assert_eq!(event_name("deploy\u{1f}abc"), "deploy");
        assert_eq!(event_name("deploy"), "deploy");
        assert_eq!(clean("a\tb\nc"), "a?b?c");
    }

    /// A handler whose queue is full loses the event: counted, and the dispatcher does not wait.
    #[tokio::test]
    async fn a_full_queue_drops_and_counts() {
        let config =
            gossamer::net::NodeConfig::new("h@127.0.0.1", "127.0.0.1:0".parse().unwrap(), gossamer::net::Preset::Local)
                .unwrap();
        let node = Node::start(config).await.unwrap();
        let (tx, mut rx) = mpsc::channel(2);
        let workers = vec![Worker { config: Arc::new(config_for_queue(2)), tx }];
        let mut me = SelfTags { text: String::new(), vars: Vec::new(), read: None };
        let mut log = WarnEvery::default();
        let before = METRICS.dropped();
        for _ in 0..5 {
            offer(&workers, job("x"), &mut me, &node, &mut log).await;
        }
        assert_eq!(METRICS.dropped() - before, 3);
        let first = rx.try_recv().unwrap();
        assert!(first.env.contains(&("GOSSAMER_SELF_NAME".into(), "h@127.0.0.1".into())), "{:?}", first.env);
        // An event no handler takes is not queued (nor dropped).
        let other = Job { class: Class::Member("member-join".into()), ..job("y") };
        let workers = vec![Worker {
            config: Arc::new(HandlerConfig { events: vec![Pattern::User(None)], ..config_for_queue(1) }),
            tx: workers[0].tx.clone(),
        }];
        let before = METRICS.dropped();
        offer(&workers, other, &mut me, &node, &mut log).await;
        assert_eq!(METRICS.dropped(), before);
        node.shutdown().await;
    }

    fn config_for_queue(queue: usize) -> HandlerConfig {
        HandlerConfig { queue, ..config("true", Duration::from_secs(1)) }
    }

    #[tokio::test]
    async fn stdout_is_cut_at_the_bound_and_stdin_arrives() {
        let out = run(&config("cat; head -c 100000 /dev/zero", Duration::from_secs(30)), job("hello"), 16).await;
        assert_eq!(out, Outcome::Done { stdout: b"hello\0\0\0\0\0\0\0\0\0\0\0".to_vec(), truncated: true });
    }

    #[tokio::test]
    async fn the_agents_secret_does_not_reach_handlers() {
        // A variable no other test of this binary reads.
        std::env::set_var("GOSSAMER_SECRET", "do-not-leak");
        let out =
            run(&config("echo \"[$GOSSAMER_SECRET][$GOSSAMER_EVENT]\"", Duration::from_secs(30)), job(""), 64).await;
        assert_eq!(out, Outcome::Done { stdout: b"[][user]\n".to_vec(), truncated: false });
    }

    #[tokio::test]
    async fn a_failure_reports_status_and_stderr_tail() {
        let out = run(&config("echo boom >&2; exit 3", Duration::from_secs(30)), job(""), 16).await;
        match out {
            Outcome::Failed { status, stderr } => {
                assert!(status.contains('3'), "{status}");
                assert_eq!(stderr, "boom\n");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_hanging_handler_and_its_children_are_killed_at_the_timeout() {
        let dir = std::env::temp_dir().join(format!("gossamer-handler-hang-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("child.pid");
        let cmd = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
        let started = std::time::Instant::now();
        let out = run(&config(&cmd, Duration::from_millis(500)), job(""), 16).await;
        assert_eq!(out, Outcome::TimedOut { after: Duration::from_millis(500) });
        assert!(started.elapsed() < Duration::from_secs(20));
        let child: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        // The grandchild `sleep` was in the handler's process group: gone (or a zombie awaiting init).
        let mut gone = false;
        for _ in 0..200 {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.split_whitespace().nth(2) == Some("Z") {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(gone, "sleep {child} survived its handler's timeout");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
