//! The admin commands: find the agent's control file, send one request,
//! print the answer.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::control::{self, ControlInfo, MemberView, MetricsView, Request};
use crate::settings::{apply_env, control_file, AgentSettings};
use crate::Target;

pub(crate) fn locate(target: &Target) -> Result<PathBuf, String> {
    if let Some(path) = &target.control {
        return Ok(path.clone());
    }
    let Some(config) = &target.config else {
        return Err("say which agent: --config <node.toml> or --control <file>".into());
    };
    let mut settings = AgentSettings::load(config).map_err(|e| e.to_string())?;
    let env: BTreeMap<String, String> = std::env::vars().collect();
    apply_env(&mut settings, &env).map_err(|e| e.to_string())?;
    let name = settings.name.ok_or("the config has no `name`")?;
    let dir = settings
        .data_dir
        .unwrap_or_else(|| config.parent().map(|p| p.to_path_buf()).unwrap_or_else(|| PathBuf::from(".")));
    Ok(control_file(&dir, &name))
}

pub(crate) fn request(target: &Target, req: Request) -> Result<serde_json::Value, String> {
    let info: ControlInfo = control::read_info(&locate(target)?)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(control::call(&info, req))
}

/// [`request`], waiting at most `within` for the answer.
pub(crate) fn request_within(
    target: &Target,
    req: Request,
    within: std::time::Duration,
) -> Result<serde_json::Value, String> {
    let info: ControlInfo = control::read_info(&locate(target)?)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(control::call_within(&info, req, within))
}

fn finish(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gossamer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_table(members: &[MemberView]) {
    println!("{:<32} {:<24} {:<8} {:>11}  TAGS", "NAME", "ADDRESS", "STATUS", "INCARNATION");
    for m in members {
        let tags: Vec<String> = m.metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("{:<32} {:<24} {:<8} {:>11}  {}", m.name, m.addr, m.status, m.incarnation, tags.join(","));
    }
}

fn parse<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_json::from_value(value).map_err(|e| format!("unexpected answer: {e}"))
}

/// `gossamer members [--status S] [--tag k=v]... [--name REGEX] [--json]`.
pub fn members(target: &Target, json: bool, filter: &crate::ops::MembersFilter) -> ExitCode {
    finish((|| {
        let value = request(target, Request::Members)?;
        let mut members: Vec<MemberView> = parse(value)?;
        members.retain(|m| filter.matches(m));
        members.sort_by(|a, b| a.name.cmp(&b.name));
        if json {
            println!("{}", serde_json::to_string(&members).map_err(|e| e.to_string())?);
        } else {
            print_table(&members);
        }
        Ok(())
    })())
}

/// `gossamer cluster status [--json]`.
pub fn status(target: &Target, json: bool) -> ExitCode {
    finish((|| {
        let value = request(target, Request::Status)?;
        if json {
            println!("{value}");
            return Ok(());
        }
        let node = value["node"].as_str().unwrap_or("?").to_owned();
        let mut members: Vec<MemberView> = parse(value["members"].clone())?;
        members.sort_by(|a, b| a.name.cmp(&b.name));
        let running: Vec<&str> = members
            .iter()
            .filter(|m| matches!(m.status.as_str(), "alive" | "suspect"))
            .map(|m| m.name.as_str())
            .collect();
        let stopped: Vec<&str> =
            members.iter().filter(|m| matches!(m.status.as_str(), "dead" | "left")).map(|m| m.name.as_str()).collect();
        println!("Cluster status as seen by {node}:");
        // Absent from an agent of an older build: say nothing then.
        match value["sealed"].as_bool() {
            Some(true) => println!("  sealed: true (frames sealed with the cluster key)"),
            Some(false) => println!("  sealed: false  INSECURE: no cluster secret, anyone on the network can join"),
            None => {}
        }
        println!("  running_nodes: [{}]", running.join(", "));
        println!("  stopped_nodes: [{}]", stopped.join(", "));
        println!();
        print_table(&members);
        Ok(())
    })())
}

/// `gossamer metrics [--json]`.
pub fn metrics(target: &Target, json: bool) -> ExitCode {
    finish((|| {
        let value = request(target, Request::Metrics)?;
        if json {
            println!("{value}");
            return Ok(());
        }
        let view: MetricsView = parse(value)?;
        if let serde_json::Value::Object(map) = serde_json::to_value(&view).map_err(|e| e.to_string())? {
            for (k, v) in map {
                match v {
                    // A group of plain counters (`heal`): one line each, `heal.heals`.
                    serde_json::Value::Object(group) if group.values().all(serde_json::Value::is_u64) => {
                        for (field, n) in group {
                            println!("{:<22} {n}", format!("{k}.{field}"));
                        }
                    }
                    v => println!("{k:<22} {v}"),
                }
            }
        }
        Ok(())
    })())
}

/// `gossamer cluster join ADDR [--timeout D]`: exit 0 once a member
/// answered, 1 when none did within `timeout` (or the agent is unreachable),
/// 2 for an address that is not `host:port`.
pub fn join(target: &Target, addr: &str, timeout: std::time::Duration) -> ExitCode {
    if let Err(e) = crate::seeds::HostPort::parse(addr) {
        eprintln!("gossamer: {e}");
        return ExitCode::from(2);
    }
    let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    let req = Request::Join { addrs: vec![addr.to_string()], timeout_ms: Some(timeout_ms) };
    // The agent answers within `timeout`; the margin covers name lookup and the round trip.
    let within = timeout.saturating_add(std::time::Duration::from_secs(10));
    finish(request_within(target, req, within).map(|v| {
        let answered = v["answered"].as_str().unwrap_or("a member");
        println!("joined through {addr}: {answered} answered");
    }))
}

/// `gossamer cluster leave`.
pub fn leave(target: &Target) -> ExitCode {
    finish(request(target, Request::Leave).map(|v| {
        let confirmed = v["confirmed"].as_bool().unwrap_or(false);
        println!("left the cluster{}", if confirmed { "" } else { " (not confirmed before the deadline)" });
    }))
}

/// `gossamer cluster force-leave NAME`.
pub fn force_leave(target: &Target, name: String) -> ExitCode {
    finish(request(target, Request::ForceLeave { name: name.clone() }).map(|_| println!("{name} declared left")))
}
