//! The embedding API with discovery: nodes started with
//! `start_with_discovery` find each other through a strategy, over real
//! sockets on 127.0.0.1.

use std::time::{Duration, Instant};

use gossamer::discovery::{start_with_discovery, DiscoveryConfig};
use gossamer::{MemberStatus, Node, NodeConfig, Preset};

async fn alive(node: &Node) -> usize {
    node.members().await.unwrap().iter().filter(|m| m.status == MemberStatus::Alive).count()
}

async fn eventually(what: &str, nodes: &[&Node], n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut ok = true;
        for node in nodes {
            ok &= alive(node).await == n;
        }
        if ok {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn config(name: &str) -> NodeConfig {
    let mut c = NodeConfig::new(name, "127.0.0.1:0".parse().unwrap(), Preset::Local).unwrap();
    c.cluster = "facade".into();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_strategy_feeds_join() {
    let a = Node::start(config("a@127.0.0.1")).await.unwrap();
    let discovery: DiscoveryConfig =
        toml::from_str(&format!("strategy = \"static\"\n[static]\nseeds = [\"a@{}\"]\n", a.addr())).unwrap();
    let (b, discovering) = start_with_discovery(config("b@127.0.0.1"), &discovery).await.unwrap();
    eventually("b joins a through the static strategy", &[&a, &b], 2).await;
    assert!(discovering.status().iter().any(|s| s.name == "static" && s.successes > 0));
    discovering.shutdown().await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcast_strategy_turns_on_the_heartbeat() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let text = format!("strategy = \"mcast\"\n[mcast]\niface = \"127.0.0.1\"\nport = {port}\ninterval_ms = 200\n");
    let discovery: DiscoveryConfig = toml::from_str(&text).unwrap();
    let (a, da) = start_with_discovery(config("a@127.0.0.1"), &discovery).await.unwrap();
    let (b, db) = start_with_discovery(config("b@127.0.0.1"), &discovery).await.unwrap();
    eventually("a and b meet by multicast", &[&a, &b], 2).await;
    assert!(a.metrics().await.unwrap().net.heartbeats_sent > 0);
    for d in [da, db] {
        d.shutdown().await;
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn bad_discovery_settings_are_refused_before_binding() {
    let discovery: DiscoveryConfig = toml::from_str("strategy = \"mcast\"\n[mcast]\ngroup = \"10.0.0.1\"\n").unwrap();
    let err = start_with_discovery(config("a@127.0.0.1"), &discovery).await.unwrap_err();
    assert!(err.to_string().contains("discovery.mcast.group"), "{err}");
}

/// Registries (etcd, local) need the node's own name and address; a config
/// that leaves them to the node must not be refused before the node starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_strategies_take_the_identity_from_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let discovery: DiscoveryConfig =
        toml::from_str(&format!("strategy = \"local\"\n[local]\ndir = {:?}\n", dir.path().display().to_string()))
            .unwrap();
    let (a, discovering_a) = start_with_discovery(config("a@127.0.0.1"), &discovery).await.unwrap();
    let (b, discovering_b) = start_with_discovery(config("b@127.0.0.1"), &discovery).await.unwrap();
    eventually("a and b find each other through the local registry", &[&a, &b], 2).await;
    discovering_a.shutdown().await;
    discovering_b.shutdown().await;
    a.shutdown().await;
    b.shutdown().await;
}
