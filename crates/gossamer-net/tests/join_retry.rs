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
