//! Multicast discovery between two network namespaces joined by a veth
//! pair (10.x and fd77:: addresses exist only inside those namespaces), over
//! an IPv4 group and over an IPv6 link-local-scope group. Skipped, with
//! the reason printed, where namespaces cannot be created (not root, no
//! `ip`, a sandbox without CAP_NET_ADMIN).

mod common;

use std::net::SocketAddr;
use std::process::Command;

use common::*;

/// Two namespaces and a veth pair, removed on drop.
struct Namespaces {
    names: [String; 2],
    links: [String; 2],
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("`ip {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl Namespaces {
    fn create(tag: &str) -> Result<Self, String> {
        let pid = std::process::id() % 100_000;
        let ns = Namespaces {
            names: [format!("gsm{tag}a{pid}"), format!("gsm{tag}b{pid}")],
            // Tagged too: tests of this file run in parallel.
            links: [format!("vg{tag}{pid}a"), format!("vg{tag}{pid}b")],
        };
        let [a, b] = &ns.names;
        let [va, vb] = &ns.links;
        ip(&["netns", "add", a])?;
        ip(&["netns", "add", b])?;
        ip(&["link", "add", va, "type", "veth", "peer", "name", vb])?;
        ip(&["link", "set", va, "netns", a])?;
        ip(&["link", "set", vb, "netns", b])?;
        for (n, dev, addr, addr6) in
            [(a, va, "10.203.77.1/24", "fd77:203::1/64"), (b, vb, "10.203.77.2/24", "fd77:203::2/64")]
        {
            ip(&["-n", n, "addr", "add", addr, "dev", dev])?;
            // nodad: usable at once, without duplicate address detection.
            ip(&["-n", n, "addr", "add", addr6, "dev", dev, "nodad"])?;
            ip(&["-n", n, "link", "set", dev, "up"])?;
            ip(&["-n", n, "link", "set", "lo", "up"])?;
        }
        Ok(ns)
    }

    fn prefix(&self, i: usize) -> Vec<String> {
        vec!["ip".into(), "netns".into(), "exec".into(), self.names[i].clone()]
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.names {
            // Deleting a namespace also deletes the veth end inside it.
            let _ = ip(&["netns", "del", n]);
        }
    }
}

#[test]
fn multicast_between_two_network_namespaces() {
    let ns = match Namespaces::create("m") {
        Ok(ns) => ns,
        Err(reason) => {
            println!("SKIPPED multicast_between_two_network_namespaces: {reason}");
            return;
        }
    };
    let dir = test_dir("netns");
    let extra = |iface: &str| format!("[multicast]\ninterface = \"{iface}\"\ninterval_ms = 300\n");
    let a_addr: SocketAddr = "10.203.77.1:7946".parse().unwrap();
    let b_addr: SocketAddr = "10.203.77.2:7946".parse().unwrap();
    let a = Agent::spawn_in(&dir, "a@10.203.77.1", a_addr, &[], "netns", &extra("10.203.77.1"), ns.prefix(0));
    let b = Agent::spawn_in(&dir, "b@10.203.77.2", b_addr, &[], "netns", &extra("10.203.77.2"), ns.prefix(1));
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
    let ns = match Namespaces::create("6") {
        Ok(ns) => ns,
        Err(reason) => {
            println!("SKIPPED ipv6_multicast_between_two_network_namespaces: {reason}");
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
    let a = Agent::spawn_in(&dir, "a@fd77:203::1", a_addr, &[], "netns6", &extra(&ns.links[0]), ns.prefix(0));
    let b = Agent::spawn_in(&dir, "b@fd77:203::2", b_addr, &[], "netns6", &extra(&ns.links[1]), ns.prefix(1));
    eventually("the agents in two namespaces find each other by IPv6 multicast", &[&a, &b], || {
        a.alive_count() == 2 && b.alive_count() == 2
    });
    assert_eq!(b.sees("a@fd77:203::1").map(|s| s.0), Some("alive".to_owned()));
    drop((a, b));
    drop(ns);
    let _ = std::fs::remove_dir_all(&dir);
}
