//! The agent's HTTP listener (`[http]`): a read API for services that do not speak the control protocol,
//! Kubernetes readiness probes and Prometheus scrapes, on one port (issue #18 item 4, issue #17's scrape
//! endpoint).
//!
//! - `GET /v1/members[?status=S][&tag=k=v]...[&name=REGEX]`: members as JSON (the shape of
//!   `gossamer members --json`); every filter given must hold.
//! - `GET /v1/health`: 200 when this node is alive in a cluster of at least `expected_size` alive
//!   members (itself included), 503 otherwise, with a JSON body saying which.
//! - `GET /metrics`: OpenMetrics text ([`crate::prometheus`]).
//!
//! Off unless the file has an `[http]` table; its `bind` defaults to `127.0.0.1:8500` (loopback: the
//! member list names every host of the cluster, so exposing it is an explicit choice). Read-only: nothing
//! here changes the cluster, so there is no token. Bounded against a hostile or broken client: at most
//! [`HttpLimits::max_connections`] connections (more are answered 503 and closed), request head at most
//! [`HttpLimits::max_head_bytes`] (hyper answers 431/414 beyond), head within
//! [`HttpLimits::header_timeout`], each connection closed after [`HttpLimits::connection_lifetime`],
//! no request bodies (413), only `GET`/`HEAD` (405).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use gossamer::net::{Member, Node};
use gossamer::wire::MemberStatus;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::control::{status_name, MemberView, MetricsView};
use crate::settings::{invalid, SettingsError};

/// Default `[http] bind`: loopback, Consul's HTTP port.
pub const DEFAULT_BIND: &str = "127.0.0.1:8500";

/// Longest `?name=` pattern accepted, in bytes.
const MAX_PATTERN: usize = 1024;
/// Compiled size bound of a `?name=` pattern (regex's own limit is 10 MiB; a member filter needs little).
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Hostile or broken clients are logged at `warn` at most this often (with a count of the others).
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(10);

/// The `[http]` table of the agent file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Listen address, `ip:port` (default [`DEFAULT_BIND`], loopback). A non-loopback address exposes
    /// the member list to whoever can reach it.
    pub bind: Option<String>,
    /// `/v1/health` answers 200 only when at least this many members are alive, this node included
    /// (default 1: this node alone is healthy). Set it to the cluster's size to hold readiness until the
    /// node has found its peers.
    pub expected_size: Option<usize>,
    /// Connections served at once (default 64); more are answered 503 and closed.
    pub max_connections: Option<usize>,
}

/// Bounds on HTTP clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Largest request head (request line and headers) in bytes; hyper's minimum is 8 KiB.
    pub max_head_bytes: usize,
    /// How long a client may take to send a request head.
    pub header_timeout: Duration,
    /// A connection (keep-alive included) is closed after this long.
    pub connection_lifetime: Duration,
}

impl Default for HttpLimits {
    /// 64 connections, 16 KiB heads sent within 5 s, connections closed after 60 s.
    fn default() -> Self {
        Self {
            max_connections: 64,
            max_head_bytes: 16 * 1024,
            header_timeout: Duration::from_secs(5),
            connection_lifetime: Duration::from_secs(60),
        }
    }
}

/// The checked `[http]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Listen address.
    pub bind: SocketAddr,
    /// Alive members needed for `/v1/health` to answer 200.
    pub expected_size: usize,
    /// Client bounds.
    pub limits: HttpLimits,
}

impl HttpSettings {
    /// Checks the values; errors name the key.
    pub fn resolve(&self) -> Result<HttpConfig, SettingsError> {
        let text = self.bind.as_deref().unwrap_or(DEFAULT_BIND);
        let bind = text.trim().parse().map_err(|e| invalid("http.bind", format!("{text:?} is not ip:port ({e})")))?;
        let expected_size = self.expected_size.unwrap_or(1);
        if expected_size == 0 {
            return Err(invalid("http.expected_size", "must be at least 1"));
        }
        let mut limits = HttpLimits::default();
        if let Some(n) = self.max_connections {
            if n == 0 {
                return Err(invalid("http.max_connections", "must be at least 1"));
            }
            limits.max_connections = n;
        }
        Ok(HttpConfig { bind, expected_size, limits })
    }
}

/// Counts events and says when one is due a `warn` (at most once per [`WARN_EVERY`]), so a flood of bad
/// requests cannot flood the log.
#[derive(Debug, Default)]
pub(crate) struct WarnEvery {
    last: Option<tokio::time::Instant>,
    suppressed: u64,
}

impl WarnEvery {
    /// `Some(events not logged since the last warning)` when this one should be logged.
    pub(crate) fn due(&mut self) -> Option<u64> {
        let now = tokio::time::Instant::now();
        if self.last.is_some_and(|t| now.saturating_duration_since(t) < WARN_EVERY) {
            self.suppressed = self.suppressed.saturating_add(1);
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// Binds the listener (before the agent says it is ready, so a taken port is a start error).
pub async fn bind(config: &HttpConfig) -> Result<TcpListener, String> {
    TcpListener::bind(config.bind).await.map_err(|e| format!("cannot bind [http] on {}: {e}", config.bind))
}

/// Serves the API for `node` until the task is aborted.
pub async fn serve(listener: TcpListener, node: Node, config: HttpConfig) {
    let limits = config.limits;
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let busy_warn = Arc::new(Mutex::new(WarnEvery::default()));
    let bad_warn = Arc::new(Mutex::new(WarnEvery::default()));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(ok) => ok,
            Err(e) => {
                tracing::warn!(error = %e, "http accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            const BUSY: &[u8] =
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\nretry-after: 1\r\n\r\n";
            // Answer if the send buffer takes it at once (it does: a fresh socket), never wait for the client.
            let _ = stream.try_write(BUSY);
            drop(stream);
            if let Some(others) = busy_warn.lock().ok().and_then(|mut w| w.due()) {
                tracing::warn!(%peer, others, max = limits.max_connections, "http connection refused: too many open");
            }
            continue;
        };
        let node = node.clone();
        let bad_warn = bad_warn.clone();
        let expected = config.expected_size;
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |req| {
                let node = node.clone();
                async move { Ok::<_, Infallible>(handle(req, &node, expected).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(limits.max_head_bytes.max(8192))
                .serve_connection(TokioIo::new(stream), service);
            let outcome = match tokio::time::timeout(limits.connection_lifetime, conn).await {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e.to_string(),
                Err(_) => return, // lifetime over: the connection is dropped (closed)
            };
            if let Some(others) = bad_warn.lock().ok().and_then(|mut w| w.due()) {
                tracing::warn!(%peer, error = %outcome, others, "http request refused");
            } else {
                tracing::debug!(%peer, error = %outcome, "http request refused");
            }
        });
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut text = value.to_string();
    text.push('\n');
    reply(status, "application/json", text)
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response<Full<Bytes>> {
    json(status, &serde_json::json!({ "error": message.to_string() }))
}

async fn handle(req: Request<Incoming>, node: &Node, expected: usize) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "read-only API: only GET and HEAD");
        r.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let has_body = req.headers().contains_key(TRANSFER_ENCODING)
        || req
            .headers()
            .get(CONTENT_LENGTH)
            .is_some_and(|v| v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()) != Some(0));
    if has_body {
        // The body is never read: close the connection after the refusal rather than drain it.
        let mut r = error(StatusCode::PAYLOAD_TOO_LARGE, "requests take no body");
        r.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
        return r;
    }
    let query = req.uri().query().unwrap_or("");
    let mut response = match req.uri().path() {
        "/v1/members" => members(node, query).await,
        "/v1/health" => health(node, expected).await,
        "/metrics" => match node.metrics().await {
            Ok(m) => reply(
                StatusCode::OK,
                crate::prometheus::CONTENT_TYPE,
                crate::prometheus::render(&MetricsView::from(&m)),
            ),
            Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
        },
        other => error(StatusCode::NOT_FOUND, format!("no such path {other:?}: /v1/members, /v1/health, /metrics")),
    };
    if req.method() == Method::HEAD {
        *response.body_mut() = Full::new(Bytes::new());
    }
    response
}

/// The `/v1/members` filters; every one given must hold.
#[derive(Debug, Default)]
pub(crate) struct MemberFilter {
    status: Option<MemberStatus>,
    tags: Vec<(String, Option<String>)>,
    name: Option<regex::Regex>,
}

impl MemberFilter {
    /// Parses a query string: `status=alive|suspect|dead|left`, `tag=k=v` (or `tag=k`: has the key,
    /// any value; repeatable), `name=REGEX` (searched, anchor it with `^…$` for a whole-name match).
    pub(crate) fn parse(query: &str) -> Result<Self, String> {
        let mut filter = MemberFilter::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "status" => {
                    filter.status = Some(match value.as_ref() {
                        "alive" => MemberStatus::Alive,
                        "suspect" => MemberStatus::Suspect,
                        "dead" => MemberStatus::Dead,
                        "left" => MemberStatus::Left,
                        other => return Err(format!("status {other:?}: one of alive, suspect, dead, left")),
                    })
                }
                "tag" => filter.tags.push(match value.split_once('=') {
                    Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                    None => (value.into_owned(), None),
                }),
                "name" => {
                    if value.len() > MAX_PATTERN {
                        return Err(format!("name: pattern longer than {MAX_PATTERN} bytes"));
                    }
                    let re = regex::RegexBuilder::new(&value)
                        .size_limit(REGEX_SIZE_LIMIT)
                        .build()
                        .map_err(|e| format!("name: {e}"))?;
                    filter.name = Some(re);
                }
                other => return Err(format!("unknown filter {other:?}: status, tag, name")),
            }
        }
        Ok(filter)
    }

    /// Whether `m` passes every filter.
    pub(crate) fn matches(&self, m: &Member) -> bool {
        self.status.is_none_or(|s| m.status == s)
            && self.name.as_ref().is_none_or(|re| re.is_match(m.id.name.as_ref()))
            && self.tags.iter().all(|(k, v)| match (m.metadata.get(k), v) {
                (Some(have), Some(want)) => have == want.as_bytes(),
                (Some(_), None) => true,
                (None, _) => false,
            })
    }
}

async fn members(node: &Node, query: &str) -> Response<Full<Bytes>> {
    let filter = match MemberFilter::parse(query) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match node.members().await {
        Ok(all) => {
            let views: Vec<MemberView> = all.iter().filter(|m| filter.matches(m)).map(MemberView::from).collect();
            json(StatusCode::OK, &serde_json::to_value(views).unwrap_or_default())
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn health(node: &Node, expected: usize) -> Response<Full<Bytes>> {
    let all = match node.members().await {
        Ok(all) => all,
        Err(e) => {
            return json(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({"healthy": false, "reason": e.to_string()}),
            )
        }
    };
    let me = node.id();
    let my_status = all.iter().find(|m| m.id.name == me.name).map(|m| m.status);
    let alive = all.iter().filter(|m| m.status == MemberStatus::Alive).count();
    let mut counts = BTreeMap::new();
    for m in &all {
        *counts.entry(status_name(m.status)).or_insert(0usize) += 1;
    }
    let (healthy, reason) = match my_status {
        Some(MemberStatus::Alive) if alive >= expected => (true, String::new()),
        Some(MemberStatus::Alive) => (false, format!("{alive} alive member(s), expected_size is {expected}")),
        Some(other) => (false, format!("this node is {}", status_name(other))),
        None => (false, "this node is not in its member list".to_owned()),
    };
    let body = serde_json::json!({
        "healthy": healthy,
        "reason": reason,
        "node": me.name.to_string(),
        "alive": alive,
        "expected_size": expected,
        "members": counts,
    });
    json(if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_to_loopback_and_refuse_zero() {
        let c = HttpSettings::default().resolve().unwrap();
        assert_eq!(c.bind, DEFAULT_BIND.parse().unwrap());
        assert!(c.bind.ip().is_loopback());
        assert_eq!(c.expected_size, 1);
        let e = HttpSettings { expected_size: Some(0), ..Default::default() }.resolve().unwrap_err();
        assert!(e.to_string().contains("http.expected_size"), "{e}");
        let e = HttpSettings { bind: Some("nowhere".into()), ..Default::default() }.resolve().unwrap_err();
        assert!(e.to_string().contains("http.bind"), "{e}");
    }

    #[test]
    fn filters_parse_and_refuse_nonsense() {
        let f = MemberFilter::parse("status=alive&tag=role%3Dweb&tag=zone&name=%5Eweb-%5Cd%2B%24").unwrap();
        assert_eq!(f.status, Some(MemberStatus::Alive));
        assert_eq!(f.tags, vec![("role".into(), Some("web".into())), ("zone".into(), None)]);
        assert!(f.name.as_ref().unwrap().is_match("web-12"));
        assert!(MemberFilter::parse("status=zombie").is_err());
        assert!(MemberFilter::parse("name=(").is_err());
        assert!(MemberFilter::parse("colour=red").is_err());
        let long = format!("name={}", "a".repeat(MAX_PATTERN + 1));
        assert!(MemberFilter::parse(&long).is_err());
        // A pattern that compiles to a huge program is refused, not built.
        assert!(MemberFilter::parse("name=%5Cw%7B1000%7D%7B1000%7D").is_err());
    }
}
