//! `gossamer keys` against two real agent processes: list, install, use,
//! remove, with the exit codes a script relies on (2 for a malformed key,
//! 1 when a member refused).

mod common;

use common::*;
use gossamer::wire::SecretKey;

const K1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const K2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

fn fp(hex: &str) -> String {
    hex.parse::<SecretKey>().unwrap().fingerprint().to_string()
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `keys list --json` through `agent`: each member's fingerprints, primary first.
fn keys_of(agent: &Agent) -> Vec<Vec<String>> {
    let out = agent.admin(&["keys", "list", "--json", "--timeout", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut keys: Vec<Vec<String>> = report["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_owned()).collect())
        .collect();
    keys.sort();
    keys
}

#[test]
fn keys_rotate_on_two_agents_through_the_cli() {
    let dir = test_dir("keys");
    let extra = format!("secret = \"{K1}\"\n");
    let a = Agent::spawn(&dir, "a@127.0.0.1", loopback(free_port()), &[], &extra);
    let b = Agent::spawn(&dir, "b@127.0.0.1", loopback(free_port()), &[a.addr], &extra);
    eventually("the pair forms", &[&a, &b], || a.alive_count() == 2 && b.alive_count() == 2);

    let out = a.admin(&["keys", "list", "--timeout", "2"]);
    let listing = text(&out);
    assert!(out.status.success(), "{listing}");
    assert!(listing.contains("Total responses: 2/2 (failed: 0, no answer: 0)"), "{listing}");
    let row = listing.lines().find(|l| l.starts_with(&fp(K1))).unwrap_or_default();
    assert_eq!(row.split_whitespace().collect::<Vec<_>>(), [fp(K1).as_str(), "2/2", "2"], "{listing}");
    assert!(!listing.contains(K1), "the key itself is never printed");

    // A malformed key is a usage error, caught before the agent is asked.
    let out = a.admin(&["keys", "install", "not-hex"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("64 hex digits"));
    // Using a key no member has fails on every member: exit 1, nothing changes.
    let out = a.admin(&["keys", "use", K2, "--timeout", "2"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("failed: 2"), "{}", text(&out));
    assert_eq!(keys_of(&a), vec![vec![fp(K1)], vec![fp(K1)]]);

    // install, use, remove: every member acknowledges each step.
    for (step, key) in [("install", K2), ("use", K2), ("remove", K1)] {
        let out = a.admin(&["keys", step, key, "--timeout", "2"]);
        assert!(out.status.success(), "keys {step}: {}", text(&out));
        assert!(text(&out).contains("Total responses: 2/2 (failed: 0, no answer: 0)"), "{}", text(&out));
    }
    assert_eq!(keys_of(&b), vec![vec![fp(K2)], vec![fp(K2)]]);
    // The primary cannot be removed.
    let out = b.admin(&["keys", "remove", K2, "--timeout", "2"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("primary"), "{}", text(&out));
    // The pair still talks, sealed with K2 only.
    let out = b.admin(&["keys", "list", "--local"]);
    assert!(out.status.success() && text(&out).contains("1/1"), "{}", text(&out));
    assert!(a.sees("b@127.0.0.1").is_some_and(|(s, _)| s == "alive"));
    assert!(b.sees("a@127.0.0.1").is_some_and(|(s, _)| s == "alive"));

    // `-` reads the key from stdin, so it never shows in the process list.
    let mut child = std::process::Command::new(bin())
        .args(["keys", "install", "-", "--timeout", "2", "--control", a.control_file().to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), format!("{K1}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(keys_of(&a), vec![vec![fp(K2), fp(K1)], vec![fp(K2), fp(K1)]]);

    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}
