//! `gossamer keys install|use|remove|list` (Serf's `keys`): live key
//! rotation of the whole cluster through one agent.
//!
//! The command sends one control request to the agent, which runs
//! [`Node::cluster_keys`] (an internal query sealed with the cluster's
//! current key, applied and answered by every member) or, with `--local`,
//! changes only its own keyring. The answer says how many members
//! acknowledged, refused or stayed silent. Exit status: 0 when every member
//! acknowledged, 1 when any refused or stayed silent (or the agent
//! refused), 2 for a malformed key.
//!
//! A key given as `-` is read from standard input, so it need not appear
//! in the process list.

use std::fmt;
use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use gossamer::net::{KeyRequest, KeyRotation, Node};
use gossamer::wire::SecretKey;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::control::Request;
use crate::Target;

/// The `keys` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum KeysCommand {
    /// Accept a new key on every member (first step of a rotation).
    Install {
        /// The key: 64 hex digits, or `-` to read them from stdin.
        key: String,
    },
    /// Send with an installed key on every member (second step).
    Use {
        /// The key: 64 hex digits, or `-` to read them from stdin.
        key: String,
    },
    /// Stop accepting a key on every member (last step; never the primary).
    Remove {
        /// The key: 64 hex digits, or `-` to read them from stdin.
        key: String,
    },
    /// Every member's keys, by fingerprint (first 8 hex digits of the key's SHA-256).
    List,
}

/// What the CLI asks the agent: one key operation. Its `Debug` hides the
/// key, and the key text is zeroized on drop.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysRequest {
    /// `install`, `use`, `remove` or `list`.
    pub op: String,
    /// The key in hex (not for `list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// How long to gather members' answers, in milliseconds.
    pub timeout_ms: u64,
    /// Change only the agent's own keyring (no cluster-wide query).
    #[serde(default)]
    pub local: bool,
}

impl fmt::Debug for KeysRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeysRequest")
            .field("op", &self.op)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("timeout_ms", &self.timeout_ms)
            .field("local", &self.local)
            .finish()
    }
}

impl Drop for KeysRequest {
    fn drop(&mut self) {
        if let Some(key) = self.key.as_mut() {
            key.zeroize();
        }
    }
}

/// One member's answer, as the agent reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeKeys {
    /// The member.
    pub node: String,
    /// Its error, if it refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its keys' fingerprints after the operation, the primary first.
    pub keys: Vec<String>,
}

/// The agent's answer to a [`KeysRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysReport {
    /// The operation.
    pub op: String,
    /// Every answer.
    pub answers: Vec<NodeKeys>,
    /// Members that stayed silent.
    pub missing: Vec<String>,
}

impl KeysReport {
    fn failed(&self) -> usize {
        self.answers.iter().filter(|a| a.error.is_some()).count()
    }

    fn from_rotation(op: &str, outcome: &KeyRotation) -> Self {
        Self {
            op: op.into(),
            answers: outcome
                .answers
                .iter()
                .map(|(node, a)| NodeKeys {
                    node: node.to_string(),
                    error: a.error.clone(),
                    keys: a.keys.iter().map(ToString::to_string).collect(),
                })
                .collect(),
            missing: outcome.missing.iter().map(ToString::to_string).collect(),
        }
    }
}

/// Runs a [`KeysRequest`] on the agent's node (the control socket's side).
pub async fn handle(request: &KeysRequest, node: &Node) -> Result<KeysReport, String> {
    let key = match &request.key {
        Some(hex) => Some(hex.parse::<SecretKey>().map_err(|_| "the key must be 64 hex digits (32 bytes)")?),
        None => None,
    };
    let request_of = |key: Option<SecretKey>| -> Result<KeyRequest, String> {
        Ok(match (request.op.as_str(), key) {
            ("install", Some(k)) => KeyRequest::Install(k),
            ("use", Some(k)) => KeyRequest::Use(k),
            ("remove", Some(k)) => KeyRequest::Remove(k),
            ("list", None) => KeyRequest::List,
            (op, _) => return Err(format!("bad key request {op:?}")),
        })
    };
    let op = request_of(key)?;
    if request.local {
        let name = node.id().name.to_string();
        let result = match &op {
            KeyRequest::Install(k) => node.install_key(k.clone()).map(drop),
            KeyRequest::Use(k) => node.use_key(k).map(drop),
            KeyRequest::Remove(k) => node.remove_key(k),
            KeyRequest::List => Ok(()),
        };
        let keys = node.list_keys().iter().map(ToString::to_string).collect();
        return match result {
            Err(e @ gossamer::net::KeyError::NoKeyring) => Err(e.to_string()),
            result => Ok(KeysReport {
                op: request.op.clone(),
                answers: vec![NodeKeys { node: name, error: result.err().map(|e| e.to_string()), keys }],
                missing: Vec::new(),
            }),
        };
    }
    let timeout = Duration::from_millis(request.timeout_ms.clamp(100, 120_000));
    let outcome = node.cluster_keys(op, timeout).await.map_err(|e| e.to_string())?;
    Ok(KeysReport::from_rotation(&request.op, &outcome))
}

/// Reads the key argument: itself, or stdin for `-`.
fn key_text(arg: &str) -> Result<Zeroizing<String>, String> {
    let mut text = Zeroizing::new(String::new());
    if arg == "-" {
        std::io::stdin()
            .take(1024)
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read the key from stdin: {e}"))?;
    } else {
        text.push_str(arg);
    }
    // Checked here, before the agent is contacted: a typo is a usage error.
    text.trim().parse::<SecretKey>().map_err(|_| "the key must be 64 hex digits (32 bytes)".to_string())?;
    Ok(Zeroizing::new(text.trim().to_owned()))
}

fn print(report: &KeysReport, local: bool) {
    let verb = match report.op.as_str() {
        "install" => "Installing key",
        "use" => "Changing primary key",
        "remove" => "Removing key",
        _ => "Listing keys",
    };
    println!("{verb} {}...", if local { "on this node" } else { "on all members" });
    for a in &report.answers {
        if let Some(e) = &a.error {
            println!("  {}: error: {e}", a.node);
        }
    }
    for m in &report.missing {
        println!("  {m}: no answer");
    }
    let total = report.answers.len() + report.missing.len();
    println!(
        "Total responses: {}/{total} (failed: {}, no answer: {})",
        report.answers.len(),
        report.failed(),
        report.missing.len()
    );
    if report.op == "list" {
        // Keys in order of first appearance, with how many members hold each.
        let mut counts: Vec<(&str, usize, usize)> = Vec::new();
        for a in &report.answers {
            for (i, k) in a.keys.iter().enumerate() {
                let at = counts.iter().position(|(f, _, _)| f == k).unwrap_or_else(|| {
                    counts.push((k, 0, 0));
                    counts.len() - 1
                });
                counts[at].1 += 1;
                counts[at].2 += usize::from(i == 0);
            }
        }
        println!("{:<10} {:>8} {:>8}", "KEY", "MEMBERS", "PRIMARY");
        for (k, n, p) in counts {
            println!("{k:<10} {:>8} {p:>8}", format!("{n}/{}", report.answers.len()));
        }
    }
}

/// `gossamer keys ...`: exit 0 when every member acknowledged, 1 when any
/// refused or was silent or the agent refused, 2 for a malformed key.
pub fn run(target: &Target, command: KeysCommand, timeout: Duration, local: bool, json: bool) -> ExitCode {
    let (op, key) = match &command {
        KeysCommand::Install { key } => ("install", Some(key)),
        KeysCommand::Use { key } => ("use", Some(key)),
        KeysCommand::Remove { key } => ("remove", Some(key)),
        KeysCommand::List => ("list", None),
    };
    let key = match key.map(|k| key_text(k)).transpose() {
        Ok(key) => key,
        Err(e) => {
            eprintln!("gossamer: {e}");
            return ExitCode::from(2);
        }
    };
    let request = KeysRequest {
        op: op.into(),
        key: key.as_deref().map(|k| k.to_string()),
        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        local,
    };
    let report = crate::admin::request(target, Request::Keys(request))
        .and_then(|v| serde_json::from_value::<KeysReport>(v).map_err(|e| format!("unexpected answer: {e}")));
    match report {
        Err(e) => {
            eprintln!("gossamer: {e}");
            ExitCode::FAILURE
        }
        Ok(report) => {
            if json {
                println!("{}", serde_json::to_string(&report).unwrap_or_default());
            } else {
                print(&report, local);
            }
            if report.failed() == 0 && report.missing.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_hide_the_key_and_travel_as_json() {
        let key = "ab".repeat(32);
        let req = KeysRequest { op: "install".into(), key: Some(key.clone()), timeout_ms: 5000, local: false };
        assert!(!format!("{req:?}").contains("abab"));
        let json = serde_json::to_string(&Request::Keys(req.clone())).unwrap();
        assert!(json.contains(r#""command":"keys""#) && json.contains(r#""op":"install""#), "{json}");
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), Request::Keys(req));
    }

    #[test]
    fn key_arguments_are_checked_before_anything_is_sent() {
        assert!(key_text("zz").is_err());
        assert!(key_text(&"0".repeat(63)).is_err());
        assert_eq!(key_text(&"0A".repeat(32)).unwrap().as_str(), "0A".repeat(32));
    }
}
