//! End to end: three real nodes (UDP + TCP sockets on distinct 127.0.0.x addresses) find each other
//! through ONE discovery strategy each — no seeds — and form one cluster. Every strategy talks to a
//! real service: an in-process DNS server, a real etcd process, an HTTP stand-in serving the
//! Kubernetes EndpointSlice JSON, and a registry directory on disk.
//!
//! Each test uses its own three loopback addresses, so the tests can run in parallel.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use gossamer::discovery::{start_discovery, Discovering, DiscoveryConfig, StrategyKind};
use gossamer::{MemberStatus, Node, NodeConfig, Preset};

/// Generous: the cluster usually forms in well under a second.
const DEADLINE: Duration = Duration::from_secs(60);

fn config(name: &str, bind: SocketAddr) -> NodeConfig {
    let mut c = NodeConfig::new(name, bind, Preset::Local).unwrap();
    c.cluster = "e2e".into();
    c
}

fn ips(subnet: u8) -> [IpAddr; 3] {
    [1, 2, 3].map(|i| IpAddr::from([127, 0, 0, subnet * 10 + i]))
}

fn names(ips: &[IpAddr; 3]) -> BTreeSet<String> {
    ["a", "b", "c"].iter().zip(ips).map(|(n, ip)| format!("{n}@{ip}")).collect()
}

/// Discovery settings common to every test: quick retries after a failed poll.
fn discovery(kind: StrategyKind) -> DiscoveryConfig {
    DiscoveryConfig { strategy: vec![kind], backoff_initial_ms: 100, backoff_max_ms: 500, ..Default::default() }
}

async fn alive_names(node: &Node) -> BTreeSet<String> {
    let members = node.members().await.unwrap();
    members.iter().filter(|m| m.status == MemberStatus::Alive).map(|m| m.id.name.to_string()).collect()
}

/// Polls until every node sees exactly `expected` alive (itself included); fails naming who saw what.
async fn until_one_cluster(what: &str, nodes: &[Node], expected: &BTreeSet<String>) -> Duration {
    let start = Instant::now();
    loop {
        let mut views = Vec::new();
        for node in nodes {
            views.push(alive_names(node).await);
        }
        if views.iter().all(|v| v == expected) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: no single cluster of {expected:?} after {DEADLINE:?}; views: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until every node's runner has had a successful `strategy` round that listed at least the
/// two other nodes; fails with the statuses.
async fn until_every_runner_found_peers(strategy: &str, discovering: &[Discovering]) {
    let start = Instant::now();
    loop {
        let statuses: Vec<_> = discovering.iter().flat_map(|d| d.status()).filter(|s| s.name == strategy).collect();
        let ok =
            |s: &gossamer::discovery::StrategyStatus| s.successes > 0 && s.peers.as_ref().is_some_and(|p| p.len() >= 2);
        if statuses.len() == discovering.len() && statuses.iter().all(ok) {
            return;
        }
        assert!(start.elapsed() < DEADLINE, "{strategy}: not every runner found its peers: {statuses:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn shutdown(nodes: Vec<Node>, discovering: Vec<Discovering>) {
    for d in discovering {
        d.shutdown().await;
    }
    for n in nodes {
        n.shutdown().await;
    }
}

/// Starts three nodes named a/b/c on `ips` sharing ONE port (what DNS A records and an EndpointSlice
/// describe): the first binds an ephemeral port, the others take the same number on their address.
/// Another process may hold that number on another address; then all three restart elsewhere.
async fn start_on_one_port(ips: &[IpAddr; 3]) -> (Vec<Node>, u16) {
    for _ in 0..10 {
        let a = Node::start(config(&format!("a@{}", ips[0]), SocketAddr::new(ips[0], 0))).await.unwrap();
        let port = a.addr().port();
        let mut nodes = vec![a];
        for (n, ip) in ["b", "c"].iter().zip(&ips[1..]) {
            match Node::start(config(&format!("{n}@{ip}"), SocketAddr::new(*ip, port))).await {
                Ok(node) => nodes.push(node),
                Err(e) => {
                    eprintln!("port {port} taken on {ip} ({e}); retrying");
                    break;
                }
            }
        }
        if nodes.len() == 3 {
            return (nodes, port);
        }
        shutdown(nodes, Vec::new()).await;
    }
    panic!("no common free port on {ips:?} after 10 tries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_a_records_form_one_cluster() {
    let ips = ips(1);
    let (nodes, port) = start_on_one_port(&ips).await;
    let dns = gossamer_testkit::dns::TestDns::start().await;
    dns.set_a("nodes.gossamer.test.", &ips).await;

    let mut cfg = discovery(StrategyKind::Dns);
    cfg.dns.query = "nodes.gossamer.test.".into();
    cfg.dns.port = port;
    cfg.dns.nameserver = Some(dns.addr.to_string());
    cfg.dns.poll_interval_ms = 200;
    let discovering: Vec<_> = nodes.iter().map(|n| start_discovery(n, &cfg).unwrap()).collect();

    let took = until_one_cluster("dns", &nodes, &names(&ips)).await;
    eprintln!("dns: one cluster of 3 after {took:?}");
    until_every_runner_found_peers("dns", &discovering).await;
    shutdown(nodes, discovering).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_registrations_form_one_cluster() {
    let Some(etcd) = gossamer_testkit::etcd::start().await else { return };
    let ips = ips(2);
    let mut cfg = discovery(StrategyKind::Etcd);
    cfg.etcd.server = vec![etcd.url.clone()];
    cfg.etcd.prefix = "gossamer-e2e".into();
    cfg.etcd.node_ttl_ms = 2_000;
    cfg.etcd.poll_interval_ms = 200;

    let (mut nodes, mut discovering) = (Vec::new(), Vec::new());
    for (n, ip) in ["a", "b", "c"].iter().zip(&ips) {
        // Each node registers its own name and address (which `start_discovery` fills in from the node)
        // under a 2 s lease.
        let node = Node::start(config(&format!("{n}@{ip}"), SocketAddr::new(*ip, 0))).await.unwrap();
        let d = start_discovery(&node, &cfg).unwrap();
        nodes.push(node);
        discovering.push(d);
    }
    let took = until_one_cluster("etcd", &nodes, &names(&ips)).await;
    eprintln!("etcd: one cluster of 3 after {took:?}");
    until_every_runner_found_peers("etcd", &discovering).await;
    shutdown(nodes, discovering).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k8s_endpointslices_form_one_cluster() {
    const TOKEN: &str = "e2e-service-account-token";
    const TARGET: &str = "/apis/discovery.k8s.io/v1/namespaces/prod/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dgossamer";
    let ips = ips(3);
    let (nodes, port) = start_on_one_port(&ips).await;
    // The EndpointSlice v1 shape (discovery.k8s.io reference) listing the three pods.
    let endpoints: Vec<String> = ips
        .iter()
        .zip(["a", "b", "c"])
        .map(|(ip, pod)| {
            format!(
                r#"{{ "addresses": ["{ip}"], "conditions": {{ "ready": true, "serving": true, "terminating": false }},
                     "hostname": "gossamer-{pod}", "targetRef": {{ "kind": "Pod", "namespace": "prod", "name": "gossamer-{pod}" }} }}"#
            )
        })
        .collect();
    let slices = format!(
        r#"{{ "kind": "EndpointSliceList", "apiVersion": "discovery.k8s.io/v1", "metadata": {{ "resourceVersion": "1" }},
             "items": [ {{ "metadata": {{ "name": "gossamer-e2e", "namespace": "prod",
                                          "labels": {{ "kubernetes.io/service-name": "gossamer" }} }},
                           "addressType": "IPv4", "endpoints": [ {} ],
                           "ports": [ {{ "name": "gossip", "protocol": "UDP", "port": {port} }} ] }} ] }}"#,
        endpoints.join(",")
    );
    let api = gossamer_testkit::http::FakeApi::start().await;
    api.route(TARGET, 200, &slices);
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), format!("{TOKEN}\n")).unwrap();

    let mut cfg = discovery(StrategyKind::K8s);
    cfg.k8s.apiserver = Some(api.url.clone());
    cfg.k8s.service_name = "gossamer".into();
    cfg.k8s.namespace = Some("prod".into());
    cfg.k8s.port_name = Some("gossip".into());
    cfg.k8s.token_file = Some(token_file.path().to_path_buf());
    cfg.k8s.poll_interval_ms = 200;
    let discovering: Vec<_> = nodes.iter().map(|n| start_discovery(n, &cfg).unwrap()).collect();

    let took = until_one_cluster("k8s", &nodes, &names(&ips)).await;
    eprintln!("k8s: one cluster of 3 after {took:?}");
    until_every_runner_found_peers("k8s", &discovering).await;
    let seen = api.seen.lock().unwrap().clone();
    assert!(seen.len() >= 3, "each node polls the API: {seen:?}");
    let bearer = format!("Bearer {TOKEN}");
    for s in &seen {
        assert_eq!(s.target, TARGET);
        assert_eq!(s.headers.get("authorization"), Some(&bearer));
    }
    shutdown(nodes, discovering).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_registry_forms_one_cluster() {
    let registry = tempfile::tempdir().unwrap();
    let ips = ips(4);
    let mut cfg = discovery(StrategyKind::Local);
    cfg.local.dir = Some(registry.path().to_path_buf());
    cfg.local.poll_interval_ms = 100;

    let (mut nodes, mut discovering) = (Vec::new(), Vec::new());
    for (n, ip) in ["a", "b", "c"].iter().zip(&ips) {
        let node = Node::start(config(&format!("{n}@{ip}"), SocketAddr::new(*ip, 0))).await.unwrap();
        let d = start_discovery(&node, &cfg).unwrap();
        nodes.push(node);
        discovering.push(d);
    }
    let took = until_one_cluster("local", &nodes, &names(&ips)).await;
    eprintln!("local: one cluster of 3 after {took:?}");
    until_every_runner_found_peers("local", &discovering).await;
    let entries = std::fs::read_dir(registry.path()).unwrap().count();
    assert!(entries >= 3, "each node registered in {}: {entries} entries", registry.path().display());
    shutdown(nodes, discovering).await;
}
