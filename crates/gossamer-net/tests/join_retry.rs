//! A join that fails while the node is alone is retried within a fraction
//! of a second (jittered backoff), not at the core's reconnect interval
//! (10 s on the LAN preset): the cliff of many nodes joining one busy seed.

mod common;

use std::time::{Duration, Instant};

use common::*;
use gossamer_net::{Node, Preset};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_join_is_retried_soon_not_at_the_reconnect_interval() {
    init_tracing();
    // A port with nothing on it yet: the joiner's first attempts are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let seed_addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let mut joiner = config("joiner", vec![seed_addr]);
    joiner.protocol = Preset::Lan.config();
    assert_eq!(joiner.protocol.reconnect_interval, Duration::from_secs(10), "the slow path this test rules out");
    let joiner = Node::start(joiner).await.unwrap();
    // The seed comes up after the joiner has failed at least once.
    eventually("the join failed once", || async { joiner.metrics().await.unwrap().net.push_pull_failed >= 1 }).await;
    let mut seed = config("seed", vec![]);
    seed.bind = seed_addr;
    seed.protocol = Preset::Lan.config();
    let up = Instant::now();
    let seed = Node::start(seed).await.unwrap();
    eventually("both see two alive members", || async { all_see_alive(&[&seed, &joiner], 2).await }).await;
    let took = up.elapsed();
    assert!(took < Duration::from_secs(4), "joined {took:?} after the seed came up: retried at the reconnect timer");
    let retries = joiner.metrics().await.unwrap().net.join_retries;
    assert!(retries >= 1, "the fast retry is counted");
    // Joined: no more fast retries.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(joiner.metrics().await.unwrap().net.join_retries, retries, "nothing retried once joined");
    joiner.shutdown().await;
    seed.shutdown().await;
}

/// In a burst of joins the seed may hold a joiner's stream for a while,
/// and other nodes reach the joiner first (their push-pulls, gossip). The
/// joiner's follow-up push-pulls must start then, not only once the seed
/// answers: the nodes that waited for the seed were the last of 2,000 to
/// converge, learning the burst from gossip alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ups_start_when_another_node_reaches_a_joiner_first() {
    init_tracing();
    // A seed that accepts the join's connection and never answers it.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    let mut joiner = config("joiner", vec![silent_addr]);
    joiner.stream_timeout = Duration::from_secs(30);
    let joiner = Node::start(joiner).await.unwrap();
    // Another node joins through the joiner: the joiner is alone no more,
    // while its own join is still waiting on the silent seed.
    let other = start("other", vec![joiner.addr()]).await;
    eventually("both see two alive members", || async { all_see_alive(&[&joiner, &other], 2).await }).await;
    assert_eq!(joiner.metrics().await.unwrap().net.push_pull_failed, 0, "the join is still pending");
    eventually("the joiner follows its join up", || async { joiner.metrics().await.unwrap().net.join_follow_ups >= 1 })
        .await;
    joiner.shutdown().await;
    other.shutdown().await;
    held.abort();
}
