//! End-to-end behaviour of real nodes over real sockets on 127.0.0.1.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use gossamer_net::{Event, Hooks, Member, Node};
use gossamer_wire::{MemberStatus, Metadata};

#[derive(Default)]
struct Counting {
    connects: AtomicUsize,
    disconnects: AtomicUsize,
}

impl Hooks for Counting {
    fn on_connect(&self, _: &Member) {
        self.connects.fetch_add(1, Ordering::SeqCst);
    }
    fn on_disconnect(&self, _: &Member) {
        self.disconnects.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_forms_detects_a_crash_sees_the_restart_and_a_leave() {
    init_tracing();
    let hooks = Arc::new(Counting::default());
    let mut ca = config("a@127.0.0.1", vec![]);
    ca.hooks.push(hooks.clone());
    let a = Node::start(ca).await.unwrap();
    let b = start("b@127.0.0.1", vec![a.addr()]).await;
    let c = start("c@127.0.0.1", vec![a.addr()]).await;
    eventually("three alive everywhere", || async { all_see_alive(&[&a, &b, &c], 3).await }).await;
    eventually("a's hooks saw b and c connect", || async { hooks.connects.load(Ordering::SeqCst) == 2 }).await;

    // Crash c: no leave, its sockets close.
    let c_addr = c.addr();
    let (_, old_inc) = status_of(&a, "c@127.0.0.1").await.unwrap();
    c.shutdown().await;
    assert!(!c.is_running());
    assert!(c.members().await.is_err(), "a stopped node answers no more");
    eventually("a and b declare c dead", || async {
        status_of(&a, "c@127.0.0.1").await.map(|s| s.0) == Some(MemberStatus::Dead)
            && status_of(&b, "c@127.0.0.1").await.map(|s| s.0) == Some(MemberStatus::Dead)
    })
    .await;
    // Hooks run on their own task, after the member table changed: wait for them too.
    eventually("a's hooks saw c disconnect", || async { hooks.disconnects.load(Ordering::SeqCst) == 1 }).await;
    let m = a.metrics().await.unwrap();
    assert!(m.core.probes > 0 && m.core.messages_in > 0 && m.core.bytes_out > 0, "{m:?}");
    assert_eq!(m.core.dead, 1, "{m:?}");

    // Restart c on its old address: it rejoins with a higher incarnation.
    let mut cc = config("c@127.0.0.1", vec![a.addr()]);
    cc.bind = c_addr;
    let c = Node::start(cc).await.unwrap();
    eventually("c alive again with a higher incarnation", || async {
        matches!(status_of(&a, "c@127.0.0.1").await, Some((MemberStatus::Alive, inc)) if inc > old_inc)
            && matches!(status_of(&b, "c@127.0.0.1").await, Some((MemberStatus::Alive, inc)) if inc > old_inc)
    })
    .await;
    eventually("a's hooks saw c reconnect", || async { hooks.connects.load(Ordering::SeqCst) == 3 }).await;

    // b leaves gracefully: seen as left, not failed.
    assert!(b.leave().await.unwrap(), "leave confirmed");
    b.shutdown().await;
    eventually("a and c see b as left", || async {
        status_of(&a, "b@127.0.0.1").await.map(|s| s.0) == Some(MemberStatus::Left)
            && status_of(&c, "b@127.0.0.1").await.map(|s| s.0) == Some(MemberStatus::Left)
    })
    .await;
    a.shutdown().await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_metadata_reach_subscribers() {
    init_tracing();
    let a = start("a@127.0.0.1", vec![]).await;
    let mut events = a.subscribe();
    let b = start("b@127.0.0.1", vec![a.addr()]).await;
    eventually("two alive", || async { all_see_alive(&[&a, &b], 2).await }).await;
    let joined = loop {
        match events.recv().await.expect("node running") {
            Event::MemberJoined(m) if m.id.name.as_str() == "b@127.0.0.1" => break m,
            _ => continue,
        }
    };
    assert_eq!(joined.id.addr, b.addr());

    let mut meta = Metadata::new();
    meta.insert("role", b"db".to_vec()).unwrap();
    b.set_metadata(meta).await.unwrap();
    eventually("a sees b's metadata", || async {
        a.members()
            .await
            .unwrap()
            .iter()
            .any(|m| m.id.name.as_str() == "b@127.0.0.1" && m.metadata.get("role") == Some(b"db"))
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_seed_is_retried_until_it_appears() {
    init_tracing();
    let port = {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.local_addr().unwrap().port()
    };
    let seed: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let a = start("a@127.0.0.1", vec![seed]).await;
    eventually("a's first join attempt fails", || async { a.metrics().await.unwrap().net.push_pull_failed >= 1 }).await;
    assert_eq!(alive_count(&a).await, 1);

    // The seed comes up later, knowing nobody: a's reconnect timer finds it.
    let mut cb = config("b@127.0.0.1", vec![]);
    cb.bind = seed;
    let b = Node::start(cb).await.unwrap();
    eventually("a retries and the two meet", || async { all_see_alive(&[&a, &b], 2).await }).await;
    a.shutdown().await;
    b.shutdown().await;
}

fn config_v6(name: &str, seeds: Vec<std::net::SocketAddr>) -> gossamer_net::NodeConfig {
    let mut c = config(name, seeds);
    c.bind = "[::1]:0".parse().unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_nodes_form_a_cluster_and_detect_a_crash() {
    init_tracing();
    let a = match Node::start(config_v6("a@::1", vec![])).await {
        Ok(a) => a,
        Err(e) => {
            gossamer_testkit::skip::skip(
                "ipv6_nodes_form_a_cluster_and_detect_a_crash",
                &format!("cannot bind [::1] here ({e})"),
            );
            return;
        }
    };
    let b = Node::start(config_v6("b@::1", vec![a.addr()])).await.unwrap();
    let c = Node::start(config_v6("c@::1", vec![b.addr()])).await.unwrap();
    eventually("three IPv6 nodes see each other", || async { all_see_alive(&[&a, &b, &c], 3).await }).await;
    // Everyone advertises, and is known by, its real [::1]:port.
    for node in [&a, &b, &c] {
        assert!(node.addr().is_ipv6() && node.addr().ip().is_loopback() && node.addr().port() != 0);
        for m in a.members().await.unwrap() {
            if m.id.name == node.id().name {
                assert_eq!(m.id.addr, node.addr(), "{m:?}");
            }
        }
    }
    // The joins went through TCP push-pull over IPv6.
    assert!(a.metrics().await.unwrap().net.streams_accepted + b.metrics().await.unwrap().net.streams_accepted >= 2);

    c.shutdown().await;
    eventually("a and b declare the crashed c dead", || async {
        status_of(&a, "c@::1").await.map(|s| s.0) == Some(MemberStatus::Dead)
            && status_of(&b, "c@::1").await.map(|s| s.0) == Some(MemberStatus::Dead)
    })
    .await;
    assert_eq!(alive_count(&a).await, 2);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_stops_the_node_and_frees_its_port() {
    init_tracing();
    let a = start("a@127.0.0.1", vec![]).await;
    let addr = a.addr();
    let clone = a.clone();
    drop(a);
    assert!(clone.is_running(), "a clone keeps the node alive");
    drop(clone);
    eventually("the port is free again", || async {
        gossamer_net::transport::bind_pair(addr, gossamer_net::SocketOptions::default()).is_ok()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_resolves_once_the_node_stops() {
    init_tracing();
    let a = start("a@127.0.0.1", vec![]).await;
    let watcher = a.clone();
    let closed = tokio::spawn(async move { watcher.closed().await });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!closed.is_finished(), "closed() waits while the node runs");
    a.shutdown().await;
    tokio::time::timeout(DEADLINE, closed).await.expect("closed() resolves after shutdown").unwrap();
}
