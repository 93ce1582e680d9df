//! The encrypted full-state exchange (push-pull over TCP) on real sockets:
//! nodes sharing a secret sync through it, and a raw TCP client speaking
//! the wire format proves what a node accepts, answers and refuses.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use gossamer_net::{Node, NodeConfig};
use gossamer_wire::{ClusterLabel, DecodeError, FrameCodec, Keyring, Message, Packet, SecretKey};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

const SECRET: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const OTHER_SECRET: &str = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn sealed_config(name: &str, seeds: Vec<SocketAddr>) -> NodeConfig {
    let mut c = config(name, seeds);
    c.set_secret_hex(SECRET).unwrap();
    c
}

/// The codec a raw client uses: `label`, sealed with `secret` if any.
fn client_codec(label: &str, secret: Option<&str>) -> FrameCodec {
    let codec = FrameCodec::new(ClusterLabel::new(label).unwrap());
    match secret {
        Some(hex) => {
            let key: SecretKey = hex.parse().unwrap();
            codec.with_keyring(Arc::new(Keyring::new(key, &mut ChaCha8Rng::seed_from_u64(7))))
        }
        None => codec,
    }
}

async fn names(node: &Node) -> Vec<String> {
    let mut v: Vec<String> = node.members().await.unwrap().iter().map(|m| m.id.name.to_string()).collect();
    v.sort();
    v
}

/// An address nobody listens on (so a merged fake member would be visible
/// but harmless).
fn unused_addr() -> SocketAddr {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_sharing_a_secret_sync_over_tcp_and_the_exchange_is_sealed() {
    init_tracing();
    let a = Node::start(sealed_config("a@127.0.0.1", vec![])).await.unwrap();
    let b = Node::start(sealed_config("b@127.0.0.1", vec![a.addr()])).await.unwrap();
    let c = Node::start(sealed_config("c@127.0.0.1", vec![b.addr()])).await.unwrap();
    eventually("three sealed nodes see each other", || async { all_see_alive(&[&a, &b, &c], 3).await }).await;
    let joined_through_tcp =
        a.metrics().await.unwrap().net.streams_accepted + b.metrics().await.unwrap().net.streams_accepted;
    assert!(joined_through_tcp >= 2, "both joins went through push-pull streams");

    // A raw client with the right key and label: answered with a sealed
    // full state, and its own state is merged.
    let right = client_codec("test", Some(SECRET));
    let ghost = unused_addr();
    let answer = exchange(a.addr(), &join_request(&right, "ghost@127.0.0.1", ghost)).await;
    assert!(!answer.is_empty(), "a request with the right key is answered");
    let plain = client_codec("test", None);
    assert!(
        matches!(plain.decode(&answer), Err(DecodeError::EncryptedButNoKey)),
        "the response is sealed, not readable without the key"
    );
    match right.clone().with_max_frame_len(gossamer_wire::DEFAULT_MAX_STREAM_FRAME).unwrap().decode(&answer) {
        Ok(Packet { message: Message::PushPullResponse(state), .. }) => {
            assert_eq!(state.members[0].node.name.as_str(), "a@127.0.0.1", "the sender's own state first");
            let mut seen: Vec<&str> = state.members.iter().map(|m| m.node.name.as_str()).collect();
            seen.sort();
            assert!(seen.starts_with(&["a@127.0.0.1", "b@127.0.0.1", "c@127.0.0.1"]), "{seen:?}");
        }
        other => panic!("expected a push-pull response, got {other:?}"),
    }
    eventually("the ghost's state was merged", || async {
        a.members().await.unwrap().iter().any(|m| m.id.name.as_str() == "ghost@127.0.0.1" && m.id.addr == ghost)
    })
    .await;
    for n in [a, b, c] {
        n.shutdown().await;
    }
}

/// Sends a join request the node must refuse; checks it went unanswered,
/// nothing was merged and the runtime counted the refusal.
async fn assert_refused(node: &Node, request: &[u8], what: &str) {
    let before_names = names(node).await;
    let before = node.metrics().await.unwrap();
    let answer = exchange(node.addr(), request).await;
    assert!(answer.is_empty(), "{what}: no answer, the stream is cut off");
    eventually(&format!("{what}: the refusal is counted"), || async {
        node.metrics().await.unwrap().net.streams_refused > before.net.streams_refused
    })
    .await;
    assert_eq!(names(node).await, before_names, "{what}: nothing merged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_pull_with_a_wrong_key_or_label_is_refused_and_nothing_is_merged() {
    init_tracing();
    let a = Node::start(sealed_config("a@127.0.0.1", vec![])).await.unwrap();
    let b = Node::start(sealed_config("b@127.0.0.1", vec![a.addr()])).await.unwrap();
    eventually("the sealed pair forms", || async { all_see_alive(&[&a, &b], 2).await }).await;
    let expected = vec!["a@127.0.0.1".to_string(), "b@127.0.0.1".to_string()];
    assert_eq!(names(&a).await, expected);

    // Right label, wrong key: the header passes, the AEAD does not; the
    // core refuses it (its `rejected` counter) and the runtime counts it.
    let rejected = a.metrics().await.unwrap().core.rejected;
    let wrong_key = client_codec("test", Some(OTHER_SECRET));
    let intruder = unused_addr();
    for _ in 0..5 {
        assert_refused(&a, &join_request(&wrong_key, "intruder@127.0.0.1", intruder), "wrong key").await;
    }
    assert!(a.metrics().await.unwrap().core.rejected >= rejected + 5, "the core rejected every wrong-key frame");

    // Right label, no key at all (plaintext to a sealed cluster).
    let unsealed = client_codec("test", None);
    assert_refused(&a, &join_request(&unsealed, "intruder@127.0.0.1", intruder), "no key").await;

    // Right key, wrong cluster label: refused by the header, before the body.
    let wrong_label = client_codec("other", Some(SECRET));
    for _ in 0..5 {
        assert_refused(&a, &join_request(&wrong_label, "intruder@127.0.0.1", intruder), "wrong label").await;
    }

    // Nothing leaked to the rest of the cluster either, and it still works.
    assert_eq!(names(&a).await, expected);
    assert_eq!(names(&b).await, expected);
    assert!(all_see_alive(&[&a, &b], 2).await);
    let c = Node::start(sealed_config("c@127.0.0.1", vec![a.addr()])).await.unwrap();
    eventually("a good join still works", || async { all_see_alive(&[&a, &b, &c], 3).await }).await;
    assert!(!names(&a).await.iter().any(|n| n.starts_with("intruder")));
    for n in [a, b, c] {
        n.shutdown().await;
    }
}

/// A header of cluster "test" (no flags) declaring a `len`-byte payload.
fn header_claiming(len: u32) -> Vec<u8> {
    // Magic, version, checksum (checked only once the body is in), no flags, label.
    let mut h = vec![b'G', b'S', gossamer_wire::PROTOCOL_VERSION, 0, 0, 0, 0, 0, 4];
    h.extend_from_slice(b"test");
    h.extend_from_slice(&len.to_le_bytes());
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_claims_and_garbage_are_cut_off_and_the_node_keeps_serving() {
    init_tracing();
    let mut ca = config("a@127.0.0.1", vec![]);
    // Far longer than any wait below: a node that waited for a claimed body
    // instead of refusing the header would make `exchange` time out.
    ca.stream_timeout = Duration::from_secs(600);
    ca.max_stream_frame = 1 << 20;
    let a = Node::start(ca).await.unwrap();

    // Twenty concurrent streams each claiming a 4 GiB - 1 frame: if any were
    // allocated up front the process would not survive it.
    let claims = (0..20).map(|_| {
        let to = a.addr();
        tokio::spawn(async move { exchange(to, &header_claiming(u32::MAX)).await })
    });
    for claim in claims {
        assert!(claim.await.unwrap().is_empty(), "an oversized claim is refused unanswered");
    }
    // Just over the cap is refused too.
    assert!(exchange(a.addr(), &header_claiming((1 << 20) - 12)).await.is_empty());

    // Garbage of several shapes: another protocol, our magic then noise, a
    // header of an unknown version, an empty stream.
    let mut noise = vec![b'G', b'S', gossamer_wire::PROTOCOL_VERSION, 0];
    noise.extend((0..=255u8).cycle().take(4096));
    let mut newer = header_claiming(16);
    newer[2] = 0x7f;
    for garbage in [&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..], &noise[..], &newer[..], &[][..]] {
        assert!(exchange(a.addr(), garbage).await.is_empty());
    }
    eventually("every bad stream is counted", || async { a.metrics().await.unwrap().net.streams_refused >= 25 }).await;
    assert!(a.is_running());
    assert_eq!(names(&a).await, vec!["a@127.0.0.1"]);

    // And it still serves a real join.
    let b = start("b@127.0.0.1", vec![a.addr()]).await;
    eventually("a subsequent good join works", || async { all_see_alive(&[&a, &b], 2).await }).await;
    a.shutdown().await;
    b.shutdown().await;
}
