//! The agent's logs as files and log shippers see them: stderr redirected to
//! a file gets no ANSI colour codes, and `GOSSAMER_LOG_FORMAT=json` makes
//! every line a JSON object.

mod common;

use common::*;
use serde_json::Value;

#[test]
fn logs_written_to_a_file_have_no_colour_codes() {
    let dir = test_dir("logs-text");
    let agent = Agent::spawn_env(&dir, "a@127.0.0.1", loopback(free_port()), "", &[("GOSSAMER_LOG", "info")]);
    eventually("the agent logs that it is ready", &[&agent], || agent.log().contains("agent ready"));
    let log = agent.log();
    assert!(!log.contains('\x1b'), "ANSI escape codes in a log file:\n{log:?}");
    assert!(log.lines().any(|l| l.contains("INFO") && l.contains("agent ready")), "{log}");
    drop(agent);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn json_log_format_writes_one_object_per_line() {
    let dir = test_dir("logs-json");
    let env = [("GOSSAMER_LOG", "info"), ("GOSSAMER_LOG_FORMAT", "json")];
    let agent = Agent::spawn_env(&dir, "a@127.0.0.1", loopback(free_port()), "", &env);
    eventually("the agent logs that it is ready", &[&agent], || agent.log().contains("agent ready"));
    let log = agent.log();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}")))
        .collect();
    let ready = lines
        .iter()
        .find(|l| l["fields"]["message"] == "agent ready")
        .unwrap_or_else(|| panic!("no \"agent ready\" object in:\n{log}"));
    assert_eq!(ready["level"], "INFO", "{ready}");
    assert_eq!(ready["fields"]["node"].as_str().map(|n| n.starts_with("a@127.0.0.1")), Some(true), "{ready}");
    assert!(ready["timestamp"].is_string() && ready["target"].is_string(), "{ready}");
    assert!(!log.contains('\x1b'), "{log:?}");
    drop(agent);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unknown_log_format_is_refused_naming_the_variable() {
    let dir = test_dir("logs-bad");
    let mut agent = Agent::spawn_env(&dir, "a@127.0.0.1", loopback(free_port()), "", &[("GOSSAMER_LOG_FORMAT", "xml")]);
    let deadline = std::time::Instant::now() + DEADLINE;
    while agent.running() {
        assert!(std::time::Instant::now() < deadline, "the agent still runs:\n{}", agent.log());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let log = agent.log();
    assert!(log.contains("GOSSAMER_LOG_FORMAT") && log.contains("\"text\" or \"json\""), "{log}");
    drop(agent);
    let _ = std::fs::remove_dir_all(&dir);
}
