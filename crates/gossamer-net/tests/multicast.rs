//! Multicast heartbeat discovery on the loopback interface
//! (IP_MULTICAST_LOOP, interface 127.0.0.1): no seeds at all.

mod common;

use common::*;
use gossamer_net::{MulticastConfig, Node};

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn mcast(port: u16) -> MulticastConfig {
    MulticastConfig {
        port,
        interface: Some("127.0.0.1".parse().unwrap()),
        interval: std::time::Duration::from_millis(200),
        ..MulticastConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_without_seeds_find_each_other_by_heartbeat() {
    init_tracing();
    let port = free_udp_port();
    let mut ca = config("a@127.0.0.1", vec![]);
    ca.multicast = Some(mcast(port));
    let mut cb = config("b@127.0.0.1", vec![]);
    cb.multicast = Some(mcast(port));
    // A node of another cluster on the same group must stay out.
    let mut cx = config("x@127.0.0.1", vec![]);
    cx.cluster = "other".into();
    cx.multicast = Some(mcast(port));
    let a = Node::start(ca).await.unwrap();
    let b = Node::start(cb).await.unwrap();
    let x = Node::start(cx).await.unwrap();

    eventually("a and b find each other", || async { all_see_alive(&[&a, &b], 2).await }).await;
    let m = a.metrics().await.unwrap();
    assert!(m.net.heartbeats_sent > 0 && m.net.heartbeats_received > 0, "{m:?}");
    eventually("the foreign heartbeats are refused", || async {
        a.metrics().await.unwrap().net.heartbeats_rejected > 0
    })
    .await;
    assert_eq!(a.members().await.unwrap().len(), 2);
    assert_eq!(x.members().await.unwrap().len(), 1);
    for n in [a, b, x] {
        n.shutdown().await;
    }
}

/// Two network namespaces joined by a veth pair with IPv6 ULA addresses
/// (fd77:7946::1 and ::2, existing only inside them); removed on drop.
struct Namespaces {
    names: [String; 2],
    links: [String; 2],
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("ip").args(args).output().map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("`ip {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl Namespaces {
    fn create() -> Result<Self, String> {
        let pid = std::process::id() % 100_000;
        let ns = Namespaces {
            names: [format!("gsn6a{pid}"), format!("gsn6b{pid}")],
            links: [format!("vg6{pid}a"), format!("vg6{pid}b")],
        };
        let [a, b] = &ns.names;
        let [va, vb] = &ns.links;
        ip(&["netns", "add", a])?;
        ip(&["netns", "add", b])?;
        ip(&["link", "add", va, "type", "veth", "peer", "name", vb])?;
        ip(&["link", "set", va, "netns", a])?;
        ip(&["link", "set", vb, "netns", b])?;
        for (n, dev, addr) in [(a, va, "fd77:7946::1/64"), (b, vb, "fd77:7946::2/64")] {
            // nodad: usable at once, no duplicate address detection wait.
            ip(&["-n", n, "addr", "add", addr, "dev", dev, "nodad"])?;
            ip(&["-n", n, "link", "set", dev, "up"])?;
            ip(&["-n", n, "link", "set", "lo", "up"])?;
        }
        Ok(ns)
    }

    /// Moves the calling thread (only it) into namespace `i`: every socket
    /// it creates afterwards lives there.
    fn enter(&self, i: usize) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(format!("/var/run/netns/{}", self.names[i]))?;
        // SAFETY: a valid namespace fd; CLONE_NEWNET only changes this thread.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
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

/// What a node in a namespace saw: member names, heartbeats heard, joins.
type Seen = (Vec<String>, u64, u64);

/// Runs a node in namespace `i` on its own thread and runtime until it
/// sees two alive members.
fn node_in_namespace(
    ns: std::sync::Arc<Namespaces>,
    i: usize,
    name: &'static str,
    bind: &'static str,
    interface: Option<gossamer_net::MulticastInterface>,
) -> std::thread::JoinHandle<Seen> {
    std::thread::spawn(move || {
        ns.enter(i).expect("enter the namespace");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let mut c =
                gossamer_net::NodeConfig::new(name, bind.parse().unwrap(), gossamer_net::Preset::Local).unwrap();
            c.cluster = "test".into();
            c.multicast = Some(MulticastConfig {
                group: gossamer_net::multicast::DEFAULT_GROUP_V6.into(),
                interface,
                interval: std::time::Duration::from_millis(200),
                ..MulticastConfig::default()
            });
            let node = Node::start(c).await.expect("start in the namespace");
            eventually(&format!("{name} sees both nodes"), || async { alive_count(&node).await == 2 }).await;
            let mut names: Vec<String> = node.members().await.unwrap().iter().map(|m| m.id.name.to_string()).collect();
            names.sort();
            let net = node.metrics().await.unwrap().net;
            node.shutdown().await;
            (names, net.heartbeats_received, net.multicast_joins)
        })
    })
}

#[test]
fn ipv6_multicast_between_two_network_namespaces() {
    init_tracing();
    let ns = match Namespaces::create() {
        Ok(ns) => std::sync::Arc::new(ns),
        Err(reason) => {
            println!("SKIPPED ipv6_multicast_between_two_network_namespaces: {reason}");
            return;
        }
    };
    // One node names its interface, the other leaves it to its advertised
    // address (looked up among the namespace's interfaces).
    let by_name = Some(gossamer_net::MulticastInterface::Name(ns.links[0].clone()));
    let a = node_in_namespace(ns.clone(), 0, "a@fd77:7946::1", "[fd77:7946::1]:7946", by_name);
    let b = node_in_namespace(ns.clone(), 1, "b@fd77:7946::2", "[fd77:7946::2]:7946", None);
    let (a_seen, b_seen) = (a.join().expect("node a"), b.join().expect("node b"));
    let both = vec!["a@fd77:7946::1".to_string(), "b@fd77:7946::2".to_string()];
    assert_eq!(a_seen.0, both);
    assert_eq!(b_seen.0, both);
    assert!(a_seen.1 > 0 && b_seen.1 > 0, "both heard heartbeats over IPv6 multicast: {a_seen:?} {b_seen:?}");
    assert!(a_seen.2 + b_seen.2 >= 1, "the cluster formed by a multicast-triggered join (no seeds)");
}
