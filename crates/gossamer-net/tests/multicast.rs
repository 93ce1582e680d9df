//! Multicast heartbeat discovery on the loopback interface
//! (IP_MULTICAST_LOOP, interface 127.0.0.1): no seeds at all.

mod common;

use common::*;
use gossamer_net::{MulticastConfig, Node};
use gossamer_testkit::netns::VethPair;

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
    // Whichever heard the other first joined it, so the other may not have
    // heard a heartbeat yet; heartbeats go on every interval, so both will.
    eventually("a sends and hears heartbeats", || async {
        let m = a.metrics().await.unwrap();
        m.net.heartbeats_sent > 0 && m.net.heartbeats_received > 0
    })
    .await;
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

/// What a node in a namespace saw: member names, heartbeats heard, joins.
type Seen = (Vec<String>, u64, u64);

/// Runs a node in namespace `i` on its own thread and runtime until it
/// sees two alive members.
fn node_in_namespace(
    ns: std::sync::Arc<VethPair>,
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
    let ns = match VethPair::create("n6", [&["fd77:7946::1/64"], &["fd77:7946::2/64"]]) {
        Ok(ns) => std::sync::Arc::new(ns),
        Err(reason) => {
            gossamer_testkit::skip::skip("ipv6_multicast_between_two_network_namespaces", &reason);
            return;
        }
    };
    // One node names its interface, the other leaves it to its advertised
    // address (looked up among the namespace's interfaces).
    let by_name = Some(gossamer_net::MulticastInterface::Name(ns.link(0).to_owned()));
    let a = node_in_namespace(ns.clone(), 0, "a@fd77:7946::1", "[fd77:7946::1]:7946", by_name);
    let b = node_in_namespace(ns.clone(), 1, "b@fd77:7946::2", "[fd77:7946::2]:7946", None);
    let (a_seen, b_seen) = (a.join().expect("node a"), b.join().expect("node b"));
    let both = vec!["a@fd77:7946::1".to_string(), "b@fd77:7946::2".to_string()];
    assert_eq!(a_seen.0, both);
    assert_eq!(b_seen.0, both);
    // The first heartbeat heard triggers a join, after which the other node
    // may stop before hearing one itself: at least one side must have.
    assert!(a_seen.1 + b_seen.1 > 0, "a heartbeat crossed over IPv6 multicast: {a_seen:?} {b_seen:?}");
    assert!(a_seen.2 + b_seen.2 >= 1, "the cluster formed by a multicast-triggered join (no seeds)");
}
