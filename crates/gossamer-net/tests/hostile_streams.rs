//! Attacks on the push-pull port and on multicast discovery, on real
//! sockets (tokio, TCP and UDP on 127.0.0.0/8), each concurrent with a
//! legitimate node joining through the attacked one:
//!
//! 1. idle connections, re-opened as soon as the node drops them, from many
//!    source addresses and from the joiner's own address;
//! 2. connections that send a valid header (right label) claiming a 32 MiB
//!    frame and then stream junk: the node's memory stays bounded;
//! 3. forged multicast heartbeats with a new name (and address) each: the
//!    seed list and the outbound push-pulls stay bounded;
//! 4. forged heartbeat datagrams on the node's own port fill its outbound
//!    push-pulls: a join through a seed still gets through.
//!
//! Every test prints its figures (`cargo test -p gossamer-net --test
//! hostile_streams -- --nocapture`).

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use gossamer_net::{MulticastConfig, Node};
use gossamer_wire::{ClusterLabel, FrameCodec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// How long a legitimate join may take while the attack goes on: generous
/// (the node answers a join at once when it is not starved; a refused join
/// is retried by the joiner's reconnect timer, 5 s with the local preset).
const JOIN_BOUND: Duration = Duration::from_secs(30);

/// A running attack: its tasks stop when this is dropped.
struct Attack {
    stop: Arc<AtomicBool>,
    /// Connections opened so far.
    opened: Arc<AtomicU64>,
    /// Connections the node closed (evicted, refused or timed out).
    dropped: Arc<AtomicU64>,
}

impl Drop for Attack {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Attack {
    fn new() -> Self {
        Self { stop: Arc::default(), opened: Arc::default(), dropped: Arc::default() }
    }

    async fn until_opened(&self, n: u64) {
        let opened = self.opened.clone();
        eventually("the attack opened its connections", || {
            let opened = opened.clone();
            async move { opened.load(Ordering::Relaxed) >= n }
        })
        .await;
    }
}

/// A connection to `to` from `source` (any port).
async fn connect_from(source: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(to).await
}

/// Source addresses of the attackers: `n` distinct loopback addresses
/// (127.0.1.x; all of 127/8 is loopback on Linux).
fn sources(n: usize) -> Vec<IpAddr> {
    (0..n).map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 1 + (i / 250) as u8, 1 + (i % 250) as u8))).collect()
}

/// One attacker per source: connect, send `opening` (maybe nothing), then
/// `trickle` bytes forever (if any), re-connecting as soon as the node
/// drops the connection.
fn launch(attack: &Attack, to: SocketAddr, sources: Vec<IpAddr>, opening: Vec<u8>, trickle: bool) {
    let opening = Arc::new(opening);
    for source in sources {
        let (stop, opened, dropped, opening) =
            (attack.stop.clone(), attack.opened.clone(), attack.dropped.clone(), opening.clone());
        tokio::spawn(async move {
            let junk = vec![0x5au8; 64 * 1024];
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut s) = connect_from(source, to).await else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                opened.fetch_add(1, Ordering::Relaxed);
                if s.write_all(&opening).await.is_err() {
                    dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let mut byte = [0u8; 1];
                loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    if trickle {
                        // Junk as fast as the node takes it.
                        let write = tokio::time::timeout(Duration::from_millis(100), s.write_all(&junk));
                        match write.await {
                            Ok(Ok(())) | Err(_) => continue,
                            Ok(Err(_)) => break,
                        }
                    }
                    match tokio::time::timeout(Duration::from_millis(100), s.read(&mut byte)).await {
                        Err(_) => continue,
                        Ok(Ok(0)) | Ok(Err(_)) => break,
                        Ok(Ok(_)) => continue,
                    }
                }
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

/// The frame header a client of cluster `label` sends, claiming a payload
/// of `len` bytes (no key: the header is plaintext). Just under the 32 MiB
/// cap, so that the header passes.
fn header_claiming(label: &str, len: u32) -> Vec<u8> {
    let codec = FrameCodec::new(ClusterLabel::new(label).unwrap());
    let mut frame = join_request(&codec, "x@127.0.0.1", "127.0.0.1:9".parse().unwrap());
    let header = gossamer_wire::header_len(&frame).unwrap();
    frame.truncate(header);
    frame[header - 4..].copy_from_slice(&len.to_le_bytes());
    frame
}

/// Starts `b` with `a` as its seed and waits until both see each other.
async fn join_through(a: &Node, name: &str) -> (Node, Duration) {
    let t0 = Instant::now();
    let b = start(name, vec![a.addr()]).await;
    let deadline = t0 + JOIN_BOUND;
    loop {
        if all_see_alive(&[a, &b], 2).await {
            return (b, t0.elapsed());
        }
        assert!(Instant::now() < deadline, "{name} did not join within {JOIN_BOUND:?} under attack");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One test of this file at a time: the memory test reads the whole
/// process's resident memory, which the other tests' floods, run beside it,
/// would add to (its peak reached 149 MiB on an unchanged tree that way).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Restarts the process's peak resident size (`VmHWM`) from the current
/// one, so a peak read later belongs to what ran since; if the kernel
/// refuses, the peak still counts everything before, never less.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// This process's resident set and its peak (bytes), from /proc.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_never_keep_a_join_out() {
    let _serial = ONE_AT_A_TIME.lock().await;
    init_tracing();
    let a = start("a@127.0.0.1", vec![]).await;
    let attack = Attack::new();
    // 40 attackers from 40 addresses (more than the 32 inbound slots), and
    // 8 from the joiner's own address (more than the per-address limit).
    launch(&attack, a.addr(), sources(40), Vec::new(), false);
    launch(&attack, a.addr(), vec![IpAddr::V4(Ipv4Addr::LOCALHOST); 8], Vec::new(), false);
    attack.until_opened(48).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (b, took) = join_through(&a, "b@127.0.0.1").await;
    let m = a.metrics().await.unwrap().net;
    eprintln!(
        "idle flood: join took {took:?}; attack opened {} connections, node dropped {}; metrics {m:?}",
        attack.opened.load(Ordering::Relaxed),
        attack.dropped.load(Ordering::Relaxed),
    );
    // The attack is still on, and the node made room by evicting idlers.
    assert!(m.streams_evicted > 0, "idle connections were evicted: {m:?}");
    assert!(m.streams_open <= 32, "never more streams than the limit: {m:?}");
    drop(attack);
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_headers_streaming_junk_leave_memory_bounded_and_joins_in() {
    let _serial = ONE_AT_A_TIME.lock().await;
    init_tracing();
    let a = start("a@127.0.0.1", vec![]).await;
    reset_peak_rss();
    let (rss_before, _) = rss();
    let attack = Attack::new();
    launch(&attack, a.addr(), sources(40), header_claiming("test", (32 << 20) - 4096), true);
    attack.until_opened(40).await;
    // Let the junk flow for a while before the join.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (b, took) = join_through(&a, "b@127.0.0.1").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_after, peak) = rss();
    let m = a.metrics().await.unwrap().net;
    eprintln!(
        "big headers: join took {took:?}; RSS {} MiB before, {} MiB after, peak {} MiB; \
         attack opened {} connections; metrics {m:?}",
        rss_before >> 20,
        rss_after >> 20,
        peak >> 20,
        attack.opened.load(Ordering::Relaxed),
    );
    assert!(peak.saturating_sub(rss_before) < 128 << 20, "memory bounded: {} MiB of growth", (peak - rss_before) >> 20);
    assert!(m.stream_bytes_reserved <= 64 << 20, "the budget holds: {m:?}");
    drop(attack);
    b.shutdown().await;
    a.shutdown().await;
}

/// A listener on 0.0.0.0 that accepts every connection and never answers
/// (so a push-pull to any 127/8 address on its port hangs until its
/// timeout); returns its port and a count of connections held.
fn sink() -> (u16, Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    let sink = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = sink.local_addr().unwrap().port();
    sink.set_nonblocking(true).unwrap();
    let sink = tokio::net::TcpListener::from_std(sink).unwrap();
    let held = Arc::new(AtomicU64::new(0));
    let held_in = held.clone();
    let task = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = sink.accept().await {
            held_in.fetch_add(1, Ordering::Relaxed);
            open.push(s);
        }
    });
    (port, held, task)
}

/// A heartbeat of cluster "test" from a forged member `i` at `port` on a
/// 127.2/16 address of its own.
fn forged_heartbeat(codec: &FrameCodec, i: usize, port: u16) -> bytes::Bytes {
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 2, (i / 250) as u8, 1 + (i % 250) as u8)), port);
    let member = gossamer_net::Member {
        id: gossamer_wire::NodeId::new(format!("forged-{i}@127.0.0.1").parse().unwrap(), addr),
        incarnation: 1,
        status: gossamer_wire::MemberStatus::Alive,
        metadata: gossamer_wire::Metadata::new(),
    };
    gossamer_net::multicast::encode_heartbeat(codec, &member).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_heartbeat_datagrams_do_not_keep_a_join_out() {
    let _serial = ONE_AT_A_TIME.lock().await;
    init_tracing();
    let (sink_port, held, sink_task) = sink();
    let a = start("a@127.0.0.1", vec![]).await;
    let b = start("b@127.0.0.1", vec![]).await;
    // Forged heartbeats on b's own port (no key: anyone may send them):
    // each makes the core start a push-pull with a forged peer that hangs.
    let codec = FrameCodec::new(ClusterLabel::new("test").unwrap());
    let forger = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..200 {
        forger.send_to(&forged_heartbeat(&codec, i, sink_port), b.addr()).await.unwrap();
    }
    eventually("the forged push-pulls fill b's gate", || async {
        b.metrics().await.unwrap().net.push_pulls_pending >= 24
    })
    .await;
    let t0 = Instant::now();
    b.join(vec![a.addr()]).await.unwrap();
    eventually("b joins a through its seed", || async { all_see_alive(&[&a, &b], 2).await }).await;
    let m = b.metrics().await.unwrap().net;
    eprintln!(
        "forged heartbeat datagrams: join took {:?}; {} connections reached the sink; metrics {m:?}",
        t0.elapsed(),
        held.load(Ordering::Relaxed)
    );
    assert!(t0.elapsed() < JOIN_BOUND, "the join got through within {JOIN_BOUND:?}");
    assert!(m.push_pulls_pending <= 32 && m.push_pulls_dropped > 0, "the gate held: {m:?}");
    sink_task.abort();
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_heartbeats_leave_seeds_and_push_pulls_bounded() {
    let _serial = ONE_AT_A_TIME.lock().await;
    init_tracing();
    // Every forged heartbeat names an address in 127/8 at the sink, so
    // each push-pull the node starts hangs until its timeout.
    let (sink_port, held, sink_task) = sink();

    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mcast = MulticastConfig {
        port,
        interface: Some("127.0.0.1".parse().unwrap()),
        interval: Duration::from_millis(200),
        ..MulticastConfig::default()
    };
    let mut ca = config("a@127.0.0.1", vec![]);
    ca.multicast = Some(mcast);
    let a = Node::start(ca).await.unwrap();

    // The forger: heartbeats of cluster "test", a new name each.
    let codec = FrameCodec::new(ClusterLabel::new("test").unwrap());
    let forger = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let group: SocketAddr = (gossamer_net::multicast::DEFAULT_GROUP, port).into();
    const FORGED: usize = 3000;
    for i in 0..FORGED {
        forger.send_to(&forged_heartbeat(&codec, i, sink_port), group).await.unwrap();
        if i % 100 == 99 {
            // Paced so the loopback queue does not drop them.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    eventually("the node heard the forged heartbeats", || async {
        a.metrics().await.unwrap().net.heartbeats_received >= FORGED as u64 / 2
    })
    .await;

    let (b, took) = join_through(&a, "b@127.0.0.1").await;
    let m = a.metrics().await.unwrap().net;
    eprintln!(
        "forged heartbeats: {FORGED} sent, join took {took:?}; {} push-pull connections reached the sink; metrics {m:?}",
        held.load(Ordering::Relaxed),
    );
    assert!(m.seeds <= 1024, "the seed list is bounded: {m:?}");
    assert_eq!(m.seeds, 0, "multicast-heard peers are not seeds: {m:?}");
    assert!(m.push_pulls_pending <= 32, "one gate for outbound push-pulls: {m:?}");
    assert!(m.joins_dropped > 0, "the flood was cut by the gate: {m:?}");
    assert!(held.load(Ordering::Relaxed) < FORGED as u64 / 4, "most forged joins never left the node");
    sink_task.abort();
    b.shutdown().await;
    a.shutdown().await;
}
