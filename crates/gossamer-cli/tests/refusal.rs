//! Agents refuse what is not theirs: another cluster label, a wrong secret,
//! a flood of garbage datagrams, invalid configuration.

mod common;

use std::process::Command;

use common::*;

const SECRET: &str = "secret = \"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"";
const WRONG: &str = "secret = \"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\"";

fn names(agent: &Agent) -> Vec<String> {
    let mut v: Vec<String> =
        agent.members().unwrap_or_default().iter().map(|m| m["name"].as_str().unwrap_or("?").to_owned()).collect();
    v.sort();
    v
}

#[test]
fn wrong_label_or_secret_is_refused_and_the_cluster_is_unchanged() {
    let dir = test_dir("intruders");
    let a = Agent::spawn(&dir, "a@127.0.0.1", loopback(free_port()), &[], SECRET);
    let b = Agent::spawn(&dir, "b@127.0.0.1", loopback(free_port()), &[a.addr], SECRET);
    eventually("the pair forms", &[&a, &b], || a.alive_count() == 2 && b.alive_count() == 2);
    let refused_before = a.metrics().unwrap()["streams_refused"].as_u64().unwrap();

    let x = Agent::spawn(&dir, "x@127.0.0.1", loopback(free_port()), &[a.addr], WRONG);
    let y = Agent::spawn_in(&dir, "y@127.0.0.1", loopback(free_port()), &[a.addr], "other", SECRET, Vec::new());

    eventually("both intruders' joins are refused", &[&a, &x, &y], || {
        a.metrics().is_some_and(|m| m["streams_refused"].as_u64().unwrap() >= refused_before + 2)
            && x.metrics().is_some_and(|m| m["push_pull_failed"].as_u64().unwrap() >= 1)
            && y.metrics().is_some_and(|m| m["push_pull_failed"].as_u64().unwrap() >= 1)
    });
    assert_eq!(names(&a), vec!["a@127.0.0.1", "b@127.0.0.1"]);
    assert_eq!(names(&b), vec!["a@127.0.0.1", "b@127.0.0.1"]);
    assert_eq!(names(&x), vec!["x@127.0.0.1"]);
    assert_eq!(names(&y), vec!["y@127.0.0.1"]);
    drop((a, b, x, y));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn garbage_flood_neither_crashes_nor_grows_the_agent() {
    let dir = test_dir("flood");
    let mut a = Agent::spawn(&dir, "a@127.0.0.1", loopback(free_port()), &[], SECRET);
    let b = Agent::spawn(&dir, "b@127.0.0.1", loopback(free_port()), &[a.addr], SECRET);
    eventually("the pair forms", &[&a, &b], || a.alive_count() == 2 && b.alive_count() == 2);
    let rejected_before = a.metrics().unwrap()["rejected"].as_u64().unwrap();
    let rss_before = rss_kib(a.pid()).expect("VmRSS");

    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut x: u32 = 0x9E37_79B9;
    for i in 0..20_000u32 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let len = (x % 1200) as usize + 1;
        let mut datagram: Vec<u8> = (0..len).map(|j| (x.rotate_left(j as u32 % 32) >> 3) as u8).collect();
        if i % 2 == 0 && datagram.len() > 5 {
            // Our magic and version, so the garbage gets past the first check.
            datagram[..4].copy_from_slice(&[b'G', b'S', gossamer::wire::PROTOCOL_VERSION, 0x01]);
        }
        socket.send_to(&datagram, a.addr).unwrap();
        if i % 500 == 0 {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    // Loopback may drop part of a flood when the kernel clamps the socket
    // buffer (rmem_max); what matters is that what arrived was refused.
    eventually("the garbage is counted as rejected", &[&a], || {
        a.metrics().is_some_and(|m| m["rejected"].as_u64().unwrap() >= rejected_before + 2_000)
    });
    let rejected = a.metrics().unwrap()["rejected"].as_u64().unwrap() - rejected_before;
    println!("{rejected} of 20000 garbage datagrams reached the agent and were rejected");
    assert!(a.running(), "the agent survived");
    let rss_after = rss_kib(a.pid()).expect("VmRSS");
    println!("agent VmRSS before the flood: {rss_before} KiB, after: {rss_after} KiB");
    assert!(
        rss_after < rss_before + 32 * 1024,
        "memory grew from {rss_before} KiB to {rss_after} KiB under a garbage flood"
    );
    assert_eq!(names(&a), vec!["a@127.0.0.1", "b@127.0.0.1"]);
    assert_eq!(b.sees("a@127.0.0.1").map(|s| s.0), Some("alive".to_owned()));
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn invalid_configuration_is_refused_at_start_naming_the_key() {
    let dir = test_dir("badconfig");
    let config = dir.join("node.toml");
    std::fs::write(&config, "name = \"a@127.0.0.1\"\nbind = \"127.0.0.1:0\"\n").unwrap();

    let out = Command::new(bin())
        .args(["agent", "--config", config.to_str().unwrap()])
        .env("GOSSAMER_BIND", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("GOSSAMER_BIND") && err.contains("`bind`"), "{err}");

    let out = Command::new(bin())
        .args(["agent", "--config", config.to_str().unwrap()])
        .env("GOSSAMER_MULTICAST_TTL", "many")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("GOSSAMER_MULTICAST_TTL"));

    std::fs::write(&config, "name = \"a@127.0.0.1\"\nbind = \"127.0.0.1:0\"\nprobe_interval = 3\n").unwrap();
    let out = Command::new(bin()).args(["agent", "--config", config.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("probe_interval"));

    std::fs::write(&config, "name = \"a@127.0.0.1\"\nbind = \"127.0.0.1:0\"\n[protocol]\nprobe_interval = \"0s\"\n")
        .unwrap();
    let out = Command::new(bin()).args(["agent", "--config", config.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("protocol."), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}
