//! Helpers shared by the runtime's integration tests: real nodes on
//! 127.0.0.1, conditions polled with generous deadlines.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gossamer_net::{Member, Node, NodeConfig, Preset};
use gossamer_wire::MemberStatus;

/// Generous bound on any condition; the local preset needs a few seconds.
pub const DEADLINE: Duration = Duration::from_secs(60);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}

pub fn config(name: &str, seeds: Vec<SocketAddr>) -> NodeConfig {
    let mut c = NodeConfig::new(name, "127.0.0.1:0".parse().unwrap(), Preset::Local).unwrap();
    c.cluster = "test".into();
    c.seeds = seeds;
    c
}

pub async fn start(name: &str, seeds: Vec<SocketAddr>) -> Node {
    Node::start(config(name, seeds)).await.unwrap()
}

/// Polls `check` until it holds; panics with `what` after [`DEADLINE`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn status_of(node: &Node, name: &str) -> Option<(MemberStatus, u64)> {
    node.members().await.unwrap().into_iter().find(|m| m.id.name.as_str() == name).map(|m| (m.status, m.incarnation))
}

pub async fn alive_count(node: &Node) -> usize {
    node.members().await.unwrap().iter().filter(|m: &&Member| m.status == MemberStatus::Alive).count()
}

pub async fn all_see_alive(nodes: &[&Node], n: usize) -> bool {
    for node in nodes {
        if alive_count(node).await != n {
            return false;
        }
    }
    true
}

/// A join request from `name` (its own state first, as the wire requires).
pub fn join_request(codec: &gossamer_wire::FrameCodec, name: &str, addr: SocketAddr) -> Vec<u8> {
    use gossamer_wire::{MemberState, Message, Metadata, NodeId, Packet, PushPull};
    let me = MemberState {
        node: NodeId::new(name.parse().unwrap(), addr),
        incarnation: 1,
        status: MemberStatus::Alive,
        metadata: Metadata::new(),
    };
    let packet = Packet::new(Message::PushPullRequest(PushPull {
        join: true,
        members: vec![me],
        app_state: vec![],
        user_ltime: 0,
    }));
    let mut out = bytes::BytesMut::new();
    codec.encode(&packet, &mut out).unwrap();
    out.to_vec()
}

/// Sends `bytes` on a fresh connection to `to` and reads until the node
/// closes it (bounded by [`DEADLINE`]): what the node answered.
pub async fn exchange(to: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(to).await.unwrap();
    // The node may cut a bad stream off before all of it is written.
    let _ = s.write_all(bytes).await;
    // Then close our side: a short request ends here, it does not stall.
    let _ = s.shutdown().await;
    let mut answer = Vec::new();
    // A reset counts as "closed": all that matters is what was sent first.
    let _ = tokio::time::timeout(DEADLINE, s.read_to_end(&mut answer)).await.expect("the node closes the stream");
    answer
}
