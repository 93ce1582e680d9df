//! `gossamer event`, `query`, `tags`, `monitor` and the `members` filters: the client side (argument
//! checks, printing) and the agent side (what the control socket does with each request).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use gossamer::net::{Node, QueryFilter};
use gossamer::wire::{Metadata, NodeName};
use serde::{Deserialize, Serialize};

use crate::control::{MemberView, Response};
use crate::handlers::KEY_SEPARATOR;
use crate::Target;

/// Exit code of a command refused for its arguments (clap's own code for usage errors).
pub const EXIT_USAGE: u8 = 2;
/// Longest event or query name: the broadcast key also carries a unique suffix (17 bytes) within the
/// wire's 64.
pub const MAX_NAME: usize = 40;
/// Longest `gossamer query --timeout`.
pub const MAX_QUERY_TIMEOUT: Duration = Duration::from_secs(300);

/// `gossamer event` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRequest {
    /// The event name.
    pub name: String,
    /// Its payload (UTF-8 text).
    #[serde(default)]
    pub payload: String,
    /// Replace a pending event of the same name instead of adding one.
    #[serde(default)]
    pub coalesce: bool,
}

/// `gossamer query` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryRequest {
    /// The query name.
    pub name: String,
    /// Its payload (UTF-8 text).
    #[serde(default)]
    pub payload: String,
    /// Only these members (empty: everyone).
    #[serde(default)]
    pub nodes: Vec<String>,
    /// Only members with these tags.
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// How long to gather answers, in milliseconds.
    pub timeout_ms: u64,
}

/// `gossamer tags` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagsRequest {
    /// Tags to set.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Tags to delete.
    #[serde(default)]
    pub delete: Vec<String>,
}

/// A query's outcome as `gossamer query --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryReport {
    /// Who answered, and what (lossy UTF-8).
    pub answers: Vec<(String, String)>,
    /// Who was addressed and stayed silent.
    pub silent: Vec<String>,
}

/// Checks an event or query name: 1 to [`MAX_NAME`] bytes of `[A-Za-z0-9._:/-]`.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!("name {name:?}: must be 1 to {MAX_NAME} bytes"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "._:/-".contains(*c))) {
        return Err(format!("name {name:?}: {c:?} not allowed (letters, digits and . _ : / - only)"));
    }
    Ok(())
}

// ---------- agent side ----------

/// Broadcasts a user event.
pub async fn event(node: &Node, req: EventRequest) -> Response {
    if let Err(e) = check_name(&req.name) {
        return Response::err(e);
    }
    let key = if req.coalesce {
        req.name.clone()
    } else {
        match crate::control::new_token() {
            Ok(t) => format!("{}{KEY_SEPARATOR}{}", req.name, &t[..16]),
            Err(e) => return Response::err(format!("cannot draw a unique key: {e}")),
        }
    };
    match node.broadcast(&key, req.payload.clone().into_bytes()).await {
        Ok(version) => {
            crate::handlers::deliver_local(crate::handlers::LocalEvent {
                name: req.name.clone(),
                version,
                payload: req.payload.into_bytes(),
            });
            Response::ok(serde_json::json!({ "name": req.name, "version": version }))
        }
        Err(e) => Response::err(e),
    }
}

/// Runs a query to its deadline.
pub async fn query(node: &Node, req: QueryRequest) -> Response {
    if let Err(e) = check_name(&req.name) {
        return Response::err(e);
    }
    let timeout = Duration::from_millis(req.timeout_ms);
    if timeout.is_zero() || timeout > MAX_QUERY_TIMEOUT {
        return Response::err(format!("timeout must be more than 0 and at most {MAX_QUERY_TIMEOUT:?}"));
    }
    let nodes = match req.nodes.iter().map(|n| n.parse::<NodeName>()).collect::<Result<Vec<_>, _>>() {
        Ok(n) => n,
        Err(e) => return Response::err(format!("bad node name: {e}")),
    };
    let filter = QueryFilter { nodes, tags: req.tags };
    match node.query(&req.name, req.payload.into_bytes(), filter, timeout).await {
        Ok(outcome) => Response::ok(QueryReport {
            answers: outcome
                .responses
                .iter()
                .map(|(n, p)| (n.to_string(), String::from_utf8_lossy(p).into_owned()))
                .collect(),
            silent: outcome.missing.iter().map(|n| n.to_string()).collect(),
        }),
        Err(e) => Response::err(e),
    }
}

/// Changes this node's tags; gossiped with a raised incarnation.
pub async fn tags(node: &Node, req: TagsRequest) -> Response {
    let members = match node.members().await {
        Ok(m) => m,
        Err(e) => return Response::err(e),
    };
    let Some(me) = members.iter().find(|m| m.id.name == node.id().name) else {
        return Response::err("this node is missing from its own member list");
    };
    let mut metadata: Metadata = me.metadata.clone();
    for k in &req.delete {
        metadata.remove(k);
    }
    for (k, v) in &req.set {
        if let Err(e) = metadata.insert(k, v.as_bytes().to_vec()) {
            return Response::err(format!("tag {k:?}: {e}"));
        }
    }
    let view: BTreeMap<String, String> =
        metadata.iter().map(|(k, v)| (k.to_owned(), String::from_utf8_lossy(v).into_owned())).collect();
    match node.set_metadata(metadata).await {
        Ok(()) => Response::ok(view),
        Err(e) => Response::err(e),
    }
}

// ---------- client side ----------

fn usage(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("gossamer: {e}");
    ExitCode::from(EXIT_USAGE)
}

fn failed(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("gossamer: {e}");
    ExitCode::FAILURE
}

/// `gossamer event NAME [PAYLOAD] [--coalesce]`.
pub fn run_event(target: &Target, name: String, payload: Option<String>, coalesce: bool) -> ExitCode {
    if let Err(e) = check_name(&name) {
        return usage(e);
    }
    let req = EventRequest { name: name.clone(), payload: payload.unwrap_or_default(), coalesce };
    match crate::admin::request(target, crate::control::Request::Event(req)) {
        Ok(v) => {
            println!("event {name} sent (version {})", v["version"]);
            ExitCode::SUCCESS
        }
        Err(e) => failed(e),
    }
}

/// `gossamer query NAME [PAYLOAD] [--node N]... [--tag k=v]... [--timeout D] [--json]`.
pub fn run_query(
    target: &Target,
    name: String,
    payload: Option<String>,
    nodes: Vec<String>,
    tags: Vec<String>,
    timeout: String,
    json: bool,
) -> ExitCode {
    if let Err(e) = check_name(&name) {
        return usage(e);
    }
    let timeout = match crate::handlers::parse_duration(&timeout) {
        Ok(t) if !t.is_zero() && t <= MAX_QUERY_TIMEOUT => t,
        Ok(_) => return usage(format!("--timeout must be more than 0 and at most {MAX_QUERY_TIMEOUT:?}")),
        Err(e) => return usage(format!("--timeout: {e}")),
    };
    for n in &nodes {
        if let Err(e) = n.parse::<NodeName>() {
            return usage(format!("--node {n:?}: {e}"));
        }
    }
    let tags = match crate::handlers::parse_tags(&tags) {
        Ok(t) => t.into_iter().collect(),
        Err(e) => return usage(format!("--tag {e}")),
    };
    let req = QueryRequest {
        name,
        payload: payload.unwrap_or_default(),
        nodes,
        tags,
        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
    };
    let within = timeout + Duration::from_secs(30);
    match crate::admin::request_within(target, crate::control::Request::Query(req), within) {
        Ok(v) => {
            if json {
                println!("{v}");
                return ExitCode::SUCCESS;
            }
            let report: QueryReport = match serde_json::from_value(v) {
                Ok(r) => r,
                Err(e) => return failed(format!("unexpected answer: {e}")),
            };
            for (node, answer) in &report.answers {
                println!("{node}: {}", answer.trim_end());
            }
            println!("{} answered, {} silent", report.answers.len(), report.silent.len());
            for node in &report.silent {
                println!("silent: {node}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => failed(e),
    }
}

/// `gossamer tags set k=v... | delete k...`.
pub fn run_tags(target: &Target, set: Vec<String>, delete: Vec<String>) -> ExitCode {
    let set = match crate::handlers::parse_tags(&set) {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    if let Some(k) = delete.iter().find(|k| k.is_empty() || k.contains('=')) {
        return usage(format!("{k:?} is not a tag key"));
    }
    match crate::admin::request(target, crate::control::Request::Tags(TagsRequest { set, delete })) {
        Ok(v) => {
            let tags: BTreeMap<String, String> = serde_json::from_value(v).unwrap_or_default();
            let text: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!("tags now: {}", text.join(","));
            ExitCode::SUCCESS
        }
        Err(e) => failed(e),
    }
}

/// The `gossamer members` filters.
#[derive(Debug, Default)]
pub struct MembersFilter {
    status: Option<String>,
    tags: Vec<(String, Option<String>)>,
    name: Option<regex::Regex>,
}

impl MembersFilter {
    /// Checks the arguments: `status` one of alive/suspect/dead/left, each tag `k=v` (or `k`: has the key),
    /// `name` a regular expression (searched; anchor with `^…$`).
    pub fn parse(status: Option<String>, tags: &[String], name: Option<&str>) -> Result<Self, String> {
        if let Some(s) = &status {
            if !matches!(s.as_str(), "alive" | "suspect" | "dead" | "left") {
                return Err(format!("--status {s:?}: one of alive, suspect, dead, left"));
            }
        }
        let tags = tags
            .iter()
            .map(|t| match t.split_once('=') {
                Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                None => (t.clone(), None),
            })
            .collect();
        let name = name
            .map(|n| regex::RegexBuilder::new(n).size_limit(1 << 20).build().map_err(|e| format!("--name: {e}")))
            .transpose()?;
        Ok(Self { status, tags, name })
    }

    /// Whether `m` passes every filter.
    pub fn matches(&self, m: &MemberView) -> bool {
        self.status.as_ref().is_none_or(|s| &m.status == s)
            && self.name.as_ref().is_none_or(|re| re.is_match(&m.name))
            && self.tags.iter().all(|(k, v)| match (m.metadata.get(k), v) {
                (Some(have), Some(want)) => have == want,
                (Some(_), None) => true,
                (None, _) => false,
            })
    }
}

/// `gossamer monitor [--level L]`: prints each line the agent streams until interrupted.
pub fn run_monitor(target: &Target, level: Option<String>) -> ExitCode {
    if let Some(l) = &level {
        if !matches!(l.as_str(), "error" | "warn" | "info" | "debug" | "trace") {
            return usage(format!("--level {l:?}: one of error, warn, info, debug, trace"));
        }
    }
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return failed(e),
    };
    let info = match crate::admin::locate(target).and_then(|p| crate::control::read_info(&p)) {
        Ok(i) => i,
        Err(e) => return failed(e),
    };
    match rt.block_on(crate::control::stream(&info, crate::control::Request::Monitor { level }, |line| {
        println!("{line}");
    })) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("deploy").is_ok());
        assert!(check_name("app/v1.2:x-y_z").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name(&"a".repeat(41)).is_err());
        assert!(check_name("bad name").is_err());
        assert!(check_name("a\u{1f}b").is_err());
    }

    #[test]
    fn requests_travel_as_tagged_json_lines() {
        use crate::control::{Envelope, Request};
        let line = r#"{"token":"t","command":"query","name":"uptime","nodes":["a@h"],"timeout_ms":2000}"#;
        let env: Envelope = serde_json::from_str(line).unwrap();
        assert_eq!(
            env.request,
            Request::Query(QueryRequest {
                name: "uptime".into(),
                payload: String::new(),
                nodes: vec!["a@h".into()],
                tags: vec![],
                timeout_ms: 2000
            })
        );
        let env: Envelope = serde_json::from_str(r#"{"token":"t","command":"event","name":"deploy"}"#).unwrap();
        assert_eq!(
            env.request,
            Request::Event(EventRequest { name: "deploy".into(), payload: "".into(), coalesce: false })
        );
        let env: Envelope = serde_json::from_str(r#"{"token":"t","command":"tags","delete":["zone"]}"#).unwrap();
        assert_eq!(env.request, Request::Tags(TagsRequest { set: BTreeMap::new(), delete: vec!["zone".into()] }));
        let env: Envelope = serde_json::from_str(r#"{"token":"t","command":"monitor"}"#).unwrap();
        assert_eq!(env.request, Request::Monitor { level: None });
        assert!(serde_json::from_str::<Envelope>(r#"{"token":"t","command":"query","name":"q"}"#).is_err());
    }

    #[test]
    fn member_filters_combine() {
        let m = MemberView {
            name: "web-1@10.0.0.1".into(),
            addr: "10.0.0.1:7946".parse().unwrap(),
            status: "alive".into(),
            incarnation: 1,
            metadata: [("role".to_owned(), "web".to_owned())].into_iter().collect(),
        };
        let f = |s: Option<&str>, t: &[&str], n: Option<&str>| {
            MembersFilter::parse(s.map(String::from), &t.iter().map(|t| t.to_string()).collect::<Vec<_>>(), n)
        };
        assert!(f(None, &[], None).unwrap().matches(&m));
        assert!(f(Some("alive"), &["role=web"], Some("^web-")).unwrap().matches(&m));
        assert!(f(None, &["role"], None).unwrap().matches(&m));
        assert!(!f(Some("dead"), &[], None).unwrap().matches(&m));
        assert!(!f(None, &["role=db"], None).unwrap().matches(&m));
        assert!(!f(None, &["zone"], None).unwrap().matches(&m));
        assert!(!f(None, &[], Some("^db")).unwrap().matches(&m));
        assert!(f(Some("gone"), &[], None).is_err());
        assert!(f(None, &[], Some("(")).is_err());
    }
}
