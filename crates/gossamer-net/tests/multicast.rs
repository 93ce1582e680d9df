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
