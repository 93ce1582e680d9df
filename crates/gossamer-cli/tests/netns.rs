//! Multicast discovery between two network namespaces joined by a veth
//! pair (10.x and fd77:: addresses exist only inside those namespaces), over
//! an IPv4 group and over an IPv6 link-local-scope group. Skipped, with
//! the reason printed, where namespaces cannot be created (not root, no
//! `ip`, a sandbox without CAP_NET_ADMIN).

mod common;

use std::net::SocketAddr;

use common::*;
use gossamer_testkit::netns::VethPair;

/// Both namespaces get an IPv4 and an IPv6 (ULA) address.
fn namespaces(tag: &str) -> Result<VethPair, String> {
    VethPair::create(tag, [&["10.203.77.1/24", "fd77:203::1/64"], &["10.203.77.2/24", "fd77:203::2/64"]])
}

#[test]
fn multicast_between_two_network_namespaces() {
    let ns = match namespaces("m") {
        Ok(ns) => ns,
        Err(reason) => {
            gossamer_testkit::skip::skip("multicast_between_two_network_namespaces", &reason);
            return;
        }
    };
    let dir = test_dir("netns");
    let extra = |iface: &str| format!("[multicast]\ninterface = \"{iface}\"\ninterval_ms = 300\n");
    let a_addr: SocketAddr = "10.203.77.1:7946".parse().unwrap();
    let b_addr: SocketAddr = "10.203.77.2:7946".parse().unwrap();
    let a = Agent::spawn_in(&dir, "a@10.203.77.1", a_addr, &[], "netns", &extra("10.203.77.1"), ns.exec_prefix(0));
    let b = Agent::spawn_in(&dir, "b@10.203.77.2", b_addr, &[], "netns", &extra("10.203.77.2"), ns.exec_prefix(1));
    eventually("the agents in two namespaces find each other by multicast", &[&a, &b], || {
        a.alive_count() == 2 && b.alive_count() == 2
    });
    assert_eq!(b.sees("a@10.203.77.1").map(|s| s.0), Some("alive".to_owned()));
    drop((a, b));
    drop(ns);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ipv6_multicast_between_two_network_namespaces() {
    let ns = match namespaces("6") {
        Ok(ns) => ns,
        Err(reason) => {
            gossamer_testkit::skip::skip("ipv6_multicast_between_two_network_namespaces", &reason);
            return;
        }
    };
    let dir = test_dir("netns6");
    // The group's interface by name on one side, by index on the other
    // (the veth is the namespace's second interface, after lo... or not:
    // the index is looked up here, not assumed).
    let extra =
        |iface: &str| format!("[multicast]\ngroup = \"ff12::6773:6d72\"\ninterface = \"{iface}\"\ninterval_ms = 300\n");
    let a_addr: SocketAddr = "[fd77:203::1]:7946".parse().unwrap();
    let b_addr: SocketAddr = "[fd77:203::2]:7946".parse().unwrap();
    let a = Agent::spawn_in(&dir, "a@fd77:203::1", a_addr, &[], "netns6", &extra(ns.link(0)), ns.exec_prefix(0));
    let b = Agent::spawn_in(&dir, "b@fd77:203::2", b_addr, &[], "netns6", &extra(ns.link(1)), ns.exec_prefix(1));
    eventually("the agents in two namespaces find each other by IPv6 multicast", &[&a, &b], || {
        a.alive_count() == 2 && b.alive_count() == 2
    });
    assert_eq!(b.sees("a@fd77:203::1").map(|s| s.0), Some("alive".to_owned()));
    drop((a, b));
    drop(ns);
    let _ = std::fs::remove_dir_all(&dir);
}
