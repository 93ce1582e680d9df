//! The probes' TCP fallback (issue #16) over real sockets: two nodes whose
//! datagrams to each other are all dropped (fault injection) while TCP
//! still carries streams. With the fallback each keeps the other alive,
//! acked over TCP only; without it (the control) each suspects the other.

mod common;

use common::{config, eventually, init_tracing, status_of};
use gossamer_net::{Event, Node};
use gossamer_wire::MemberStatus;

/// Two joined nodes, then every datagram between them dropped.
async fn pair_without_udp(stream_pings: bool) -> (Node, Node) {
    let mut ca = config("a", vec![]);
    ca.protocol.stream_pings = stream_pings;
    let a = Node::start(ca).await.unwrap();
    let mut cb = config("b", vec![a.addr()]);
    cb.protocol.stream_pings = stream_pings;
    let b = Node::start(cb).await.unwrap();
    // Alive and verified (each has heard the other directly: only
    // verified members get the fallback, see `gossamer_core::probe`).
    eventually("a and b see each other alive and verified", || async {
        status_of(&a, "b").await.is_some_and(|(s, _)| s == MemberStatus::Alive)
            && status_of(&b, "a").await.is_some_and(|(s, _)| s == MemberStatus::Alive)
            && a.metrics().await.unwrap().core.unverified == 0
            && b.metrics().await.unwrap().core.unverified == 0
    })
    .await;
    a.block_datagrams([b.addr()]);
    b.block_datagrams([a.addr()]);
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_udp_is_dropped_stays_alive_through_tcp_pings() {
    init_tracing();
    let (a, b) = pair_without_udp(true).await;
    let mut events = a.subscribe();
    // Ten probes of each other answered over TCP only: ten periods in
    // which the datagram path alone would have raised a suspicion.
    eventually("ten probes each answered over TCP", || async {
        let (ma, mb) = (a.metrics().await.unwrap().core, b.metrics().await.unwrap().core);
        ma.stream_ping_acks >= 10 && mb.stream_ping_acks >= 10
    })
    .await;
    let (ma, mb) = (a.metrics().await.unwrap().core, b.metrics().await.unwrap().core);
    assert_eq!((ma.suspicions, mb.suspicions), (0, 0), "no suspicion raised: {ma:?} {mb:?}");
    assert_eq!(status_of(&a, "b").await.map(|s| s.0), Some(MemberStatus::Alive));
    assert_eq!(status_of(&b, "a").await.map(|s| s.0), Some(MemberStatus::Alive));
    while let Some(event) = events.try_recv() {
        assert!(
            !matches!(event, Event::MemberSuspected(_) | Event::MemberFailed(_)),
            "a suspected b although TCP answered: {event:?}"
        );
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_fallback_the_same_cut_makes_them_suspect_each_other() {
    init_tracing();
    let (a, b) = pair_without_udp(false).await;
    eventually("a suspects b and b suspects a", || async {
        let gone = |s: Option<(MemberStatus, u64)>| s.is_some_and(|(s, _)| s != MemberStatus::Alive);
        gone(status_of(&a, "b").await) && gone(status_of(&b, "a").await)
    })
    .await;
    let ma = a.metrics().await.unwrap().core;
    assert_eq!((ma.stream_pings, ma.stream_ping_acks), (0, 0));
    a.shutdown().await;
    b.shutdown().await;
}
