//! Host names (issue #17): seeds and `cluster join` take `host:port`, and
//! `cluster join` says so (exit 1) when no member answers in time.

mod common;

use common::*;

/// Starts an agent whose `seeds` line is `seeds` verbatim (names allowed).
fn spawn_with_seeds(dir: &std::path::Path, name: &str, port: u16, seeds: &[&str]) -> Agent {
    let mut agent = Agent::spawn(dir, name, loopback(port), &[], "");
    agent.kill();
    let text = std::fs::read_to_string(&agent.config).unwrap();
    let list: Vec<String> = seeds.iter().map(|s| format!("\"{s}\"")).collect();
    let text = text.replace("seeds = []", &format!("seeds = [{}]", list.join(", ")));
    assert!(text.contains(seeds[0]), "seeds line not rewritten: {text}");
    std::fs::write(&agent.config, text).unwrap();
    agent.start();
    agent
}

#[test]
fn a_seed_given_as_localhost_joins() {
    let dir = test_dir("hostname-seed");
    let a = Agent::spawn(&dir, "a@127.0.0.1", loopback(free_port()), &[], "");
    eventually("a answers", &[&a], || a.alive_count() == 1);
    let seed = format!("localhost:{}", a.addr.port());
    let b = spawn_with_seeds(&dir, "b@127.0.0.1", free_port(), &[&seed]);
    eventually("a and b see each other", &[&a, &b], || a.alive_count() == 2 && b.alive_count() == 2);
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unresolvable_seed_is_a_warning_and_the_other_seed_is_joined() {
    let dir = test_dir("hostname-bad-seed");
    let a = Agent::spawn(&dir, "a@127.0.0.1", loopback(free_port()), &[], "");
    eventually("a answers", &[&a], || a.alive_count() == 1);
    let good = format!("127.0.0.1:{}", a.addr.port());
    let mut b = spawn_with_seeds(&dir, "b@127.0.0.1", free_port(), &["no-such-seed.invalid:7946", &good]);
    eventually("b joined through its other seed", &[&a, &b], || a.alive_count() == 2 && b.alive_count() == 2);
    assert!(b.running(), "the agent stopped:\n{}", b.log());
    let log = b.log();
    assert!(
        log.contains("seed did not resolve") && log.contains("no-such-seed.invalid:7946"),
        "no warning naming the seed:\n{log}"
    );
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cluster_join_takes_a_host_name_and_waits_for_an_answer() {
    let dir = test_dir("hostname-join");
    let a = Agent::spawn(&dir, "a@127.0.0.1", loopback(free_port()), &[], "");
    let b = Agent::spawn(&dir, "b@127.0.0.1", loopback(free_port()), &[], "");
    eventually("both agents answer", &[&a, &b], || a.alive_count() == 1 && b.alive_count() == 1);
    let out = b.admin(&["cluster", "join", &format!("localhost:{}", a.addr.port())]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("a@127.0.0.1 answered"), "{stdout}");
    // The command returned after the answer: b knows a already, no polling needed.
    assert_eq!(b.alive_count(), 2);
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cluster_join_through_a_closed_port_exits_1_with_the_reason() {
    let dir = test_dir("hostname-join-closed");
    let b = Agent::spawn(&dir, "b@127.0.0.1", loopback(free_port()), &[], "");
    eventually("b answers", &[&b], || b.alive_count() == 1);
    let closed = format!("127.0.0.1:{}", free_port());
    let started = std::time::Instant::now();
    let out = b.admin(&["cluster", "join", &closed, "--timeout", "2s"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("no member answered at {closed} within 2s")), "{stderr}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(2), "returned before the timeout");

    let out = b.admin(&["cluster", "join", "not an address"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}
