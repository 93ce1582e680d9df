//! Inbound stream admission under a burst of joins, on real sockets: a
//! newcomer whose only possible victims are streams sending requests no
//! larger than its own, accepted less than a second ago, waits for a slot
//! instead of evicting one (a burst of joins used to evict each other:
//! 4,000+ evictions for 1,000 joins); but a stream that stalls past that
//! grace is still evicted, so the hostile-network defence of issue #15 holds.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::*;
use gossamer_net::Node;
use gossamer_wire::{ClusterLabel, FrameCodec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A connection to `to` from the loopback address `source`.
async fn connect_from(source: IpAddr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    socket.connect(to).await.unwrap()
}

/// Reads what the node answers until it closes the stream (a reset reads
/// as whatever came before it), bounded by [`DEADLINE`].
async fn answer(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, s.read_to_end(&mut out)).await.expect("the node closes the stream");
    out
}

/// A node that takes one inbound stream at a time.
async fn one_slot_seed() -> Node {
    let mut c = config("seed@127.0.0.1", vec![]);
    c.max_inbound_streams = 1;
    Node::start(c).await.unwrap()
}

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_waits_for_a_slot_instead_of_evicting_a_request_in_progress() {
    init_tracing();
    let seed = one_slot_seed().await;
    let codec = FrameCodec::new(ClusterLabel::new("test").unwrap());
    // A: a join request, all but its last bytes sent: it holds the only
    // slot, reading its body.
    let a_frame = join_request(&codec, "a@127.0.0.2", "127.0.0.2:9".parse().unwrap());
    let mut a = connect_from(ip(2), seed.addr()).await;
    a.write_all(&a_frame[..a_frame.len() - 8]).await.unwrap();
    eventually("A is admitted", || async { seed.metrics().await.unwrap().net.streams_accepted >= 1 }).await;
    // B: a whole join request no smaller than A's, from another address.
    let b_frame = join_request(&codec, "bb@127.0.0.3", "127.0.0.3:9".parse().unwrap());
    assert!(b_frame.len() >= a_frame.len());
    let mut b = connect_from(ip(3), seed.addr()).await;
    b.write_all(&b_frame).await.unwrap();
    eventually("B is held for a slot", || async { seed.metrics().await.unwrap().net.streams_deferred >= 1 }).await;
    // A finishes its request: it is answered (before, B had evicted it).
    a.write_all(&a_frame[a_frame.len() - 8..]).await.unwrap();
    let from_a = answer(&mut a).await;
    assert!(from_a.starts_with(b"GS") && from_a.len() > 64, "A was answered: {} bytes", from_a.len());
    // Then B gets the slot A gave back, and its answer.
    let t0 = Instant::now();
    let from_b = answer(&mut b).await;
    assert!(from_b.starts_with(b"GS") && from_b.len() > 64, "B was answered: {} bytes", from_b.len());
    assert!(t0.elapsed() < Duration::from_secs(10), "B waited {:?} after A was done", t0.elapsed());
    let net = seed.metrics().await.unwrap().net;
    assert_eq!(net.streams_evicted, 0, "nobody was evicted: {net:?}");
    assert_eq!(net.streams_accepted, 2);
    // B's whole request waited while it was held: read and answered as it
    // was admitted. A's was partial when it came in: its task read it.
    assert_eq!(net.streams_answered_at_accept, 1, "{net:?}");
    eventually("the seed knows both joiners", || async { alive_count(&seed).await == 3 }).await;
    seed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_stalled_past_its_grace_is_still_evicted_for_a_join() {
    init_tracing();
    let seed = one_slot_seed().await;
    let codec = FrameCodec::new(ClusterLabel::new("test").unwrap());
    // A stalls halfway through a small request, forever.
    let stall = join_request(&codec, "a@127.0.0.2", "127.0.0.2:9".parse().unwrap());
    let mut stalled = connect_from(ip(2), seed.addr()).await;
    stalled.write_all(&stall[..stall.len() / 2]).await.unwrap();
    eventually("the stalled stream is admitted", || async { seed.metrics().await.unwrap().net.streams_accepted >= 1 })
        .await;
    // A real node joins through the seed: it waits out the grace (about a
    // second, well within its stream timeout), then evicts the stalled one.
    let t0 = Instant::now();
    let joiner = start("joiner@127.0.0.1", vec![seed.addr()]).await;
    eventually("both see each other", || async { all_see_alive(&[&seed, &joiner], 2).await }).await;
    let took = t0.elapsed();
    let net = seed.metrics().await.unwrap().net;
    assert!(net.streams_evicted >= 1, "the stalled stream was evicted: {net:?}");
    assert!(took < Duration::from_secs(15), "the join took {took:?}");
    assert!(answer(&mut stalled).await.is_empty(), "the stalled stream got nothing");
    joiner.shutdown().await;
    seed.shutdown().await;
}
