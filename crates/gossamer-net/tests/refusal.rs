//! Bad input over real sockets: other clusters, wrong secrets, garbage
//! datagrams and oversized stream frames are refused and counted, and the
//! cluster is unchanged.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use bytes::BytesMut;
use common::*;
use gossamer_net::Node;
use gossamer_wire::{Ack, ClusterLabel, FrameCodec, Message, Packet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const OTHER_SECRET: &str = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

async fn secured_pair() -> (Node, Node) {
    let mut ca = config("a@127.0.0.1", vec![]);
    ca.set_secret_hex(SECRET).unwrap();
    let a = Node::start(ca).await.unwrap();
    let mut cb = config("b@127.0.0.1", vec![a.addr()]);
    cb.set_secret_hex(SECRET).unwrap();
    let b = Node::start(cb).await.unwrap();
    eventually("the secured pair forms", || async { all_see_alive(&[&a, &b], 2).await }).await;
    (a, b)
}

async fn names(node: &Node) -> Vec<String> {
    let mut v: Vec<String> = node.members().await.unwrap().iter().map(|m| m.id.name.to_string()).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_label_or_secret_is_refused_and_the_cluster_is_unchanged() {
    init_tracing();
    let (a, b) = secured_pair().await;
    let before = a.metrics().await.unwrap();

    // Same secret, another cluster label.
    let mut cx = config("x@127.0.0.1", vec![a.addr()]);
    cx.cluster = "other".into();
    cx.set_secret_hex(SECRET).unwrap();
    let x = Node::start(cx).await.unwrap();
    // Right label, wrong secret.
    let mut cy = config("y@127.0.0.1", vec![a.addr()]);
    cy.set_secret_hex(OTHER_SECRET).unwrap();
    let y = Node::start(cy).await.unwrap();
    // Right label, no secret at all.
    let z = start("z@127.0.0.1", vec![a.addr()]).await;

    // Each intruder's join (push-pull) must have been refused at least once.
    eventually("every intruder's join is refused", || async {
        let mut all = true;
        for n in [&x, &y, &z] {
            all &= n.metrics().await.unwrap().net.push_pull_failed >= 1;
        }
        all && a.metrics().await.unwrap().net.streams_refused >= before.net.streams_refused + 3
    })
    .await;
    assert_eq!(names(&a).await, vec!["a@127.0.0.1", "b@127.0.0.1"]);
    assert_eq!(names(&b).await, vec!["a@127.0.0.1", "b@127.0.0.1"]);
    for n in [&x, &y, &z] {
        assert_eq!(names(n).await.len(), 1, "an intruder learned nobody");
    }
    for n in [a, b, x, y, z] {
        n.shutdown().await;
    }
}

fn garbage(i: u32, foreign: &[u8], valid: &[u8]) -> Vec<u8> {
    let mut x = i.wrapping_mul(2_654_435_761);
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    match i % 5 {
        // Random bytes of random length.
        0 => (0..(next() % 1400) as usize).map(|_| next() as u8).collect(),
        // A frame of another cluster.
        1 => foreign.to_vec(),
        // A valid frame, truncated.
        2 => valid[..(next() as usize % valid.len())].to_vec(),
        // A valid frame with one bit flipped (checksum or AEAD catches it).
        3 => {
            let mut v = valid.to_vec();
            let at = next() as usize % v.len();
            v[at] ^= 1 << (next() % 8);
            v
        }
        // Our magic and version, then noise.
        _ => {
            let mut v = vec![b'G', b'S', gossamer_wire::PROTOCOL_VERSION, 0];
            v.extend((0..64).map(|_| next() as u8));
            v
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_datagrams_are_counted_and_dropped() {
    init_tracing();
    let (a, b) = secured_pair().await;
    let before = a.metrics().await.unwrap().core.rejected;

    let mut out = BytesMut::new();
    let packet = Packet::new(Message::Ack(Ack { seq: 1, from: "evil@127.0.0.1".parse().unwrap() }));
    FrameCodec::new(ClusterLabel::new("other").unwrap()).encode(&packet, &mut out).unwrap();
    let foreign = out.to_vec();
    out.clear();
    FrameCodec::new(ClusterLabel::new("test").unwrap()).encode(&packet, &mut out).unwrap();
    let valid_plain = out.to_vec();

    let target = a.addr();
    let sent = tokio::task::spawn_blocking(move || {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut sent = 0u64;
        for i in 0..20_000u32 {
            if socket.send_to(&garbage(i, &foreign, &valid_plain), target).is_ok() {
                sent += 1;
            }
            if i % 500 == 0 {
                // Let the node drain its socket buffer: this is about
                // robustness, not about how much loopback can drop.
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        sent
    })
    .await
    .unwrap();
    assert!(sent > 19_000);

    // Loopback may drop part of a flood when the kernel clamps the socket
    // buffer (rmem_max); what matters is that what arrived was refused.
    eventually("the garbage is counted as rejected", || async {
        a.metrics().await.unwrap().core.rejected >= before + 2_000
    })
    .await;
    assert_eq!(names(&a).await, vec!["a@127.0.0.1", "b@127.0.0.1"]);
    assert!(a.is_running());
    // Still a working member: b still sees it alive.
    assert_eq!(status_of(&b, "a@127.0.0.1").await.map(|s| s.0), Some(gossamer_wire::MemberStatus::Alive));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_garbage_streams_are_refused() {
    init_tracing();
    let a = start("a@127.0.0.1", vec![]).await;

    // A header claiming a 1 GiB frame: refused by the cap, nothing buffered.
    let mut header = Vec::new();
    // Magic, version, checksum (not checked before the length), no flags, label "test".
    header.extend_from_slice(&[b'G', b'S', gossamer_wire::PROTOCOL_VERSION, 0, 0, 0, 0, 0, 4]);
    header.extend_from_slice(b"test");
    header.extend_from_slice(&(1u32 << 30).to_le_bytes());
    let mut s = tokio::net::TcpStream::connect(a.addr()).await.unwrap();
    s.write_all(&header).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(DEADLINE, s.read(&mut buf)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0, "no answer to an oversized frame, the stream is closed");

    // An HTTP request instead of a frame.
    let mut s = tokio::net::TcpStream::connect(a.addr()).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let n = tokio::time::timeout(DEADLINE, s.read(&mut buf)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0);

    eventually("both streams counted as refused", || async { a.metrics().await.unwrap().net.streams_refused >= 2 })
        .await;
    assert_eq!(alive_count(&a).await, 1);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_stream_flood_is_bounded_and_the_node_recovers() {
    init_tracing();
    let mut ca = config("a@127.0.0.1", vec![]);
    ca.max_inbound_streams = 4;
    ca.stream_timeout = Duration::from_millis(500);
    let a = Node::start(ca).await.unwrap();

    // Ten connections that never send a byte: each newcomer beyond four
    // evicts the oldest idle one, and the last four time out.
    let mut idle = Vec::new();
    for _ in 0..10 {
        idle.push(tokio::net::TcpStream::connect(a.addr()).await.unwrap());
    }
    eventually("the excess streams evict the oldest", || async { a.metrics().await.unwrap().net.streams_evicted >= 1 })
        .await;
    eventually("the idle streams time out", || async {
        let m = a.metrics().await.unwrap().net;
        m.streams_refused >= 4 && m.streams_header_timeout >= 4
    })
    .await;
    drop(idle);

    // A real join still works afterwards.
    let b = start("b@127.0.0.1", vec![a.addr()]).await;
    eventually("b joins a", || async { all_see_alive(&[&a, &b], 2).await }).await;
    a.shutdown().await;
    b.shutdown().await;
}
