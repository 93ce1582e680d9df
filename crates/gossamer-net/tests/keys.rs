//! Live key rotation on real sockets: a sealed 5-node cluster changes its
//! key, node by node and then cluster-wide, without a single member being
//! suspected, and a node holding only the retired key is locked out.

mod common;

use std::time::Duration;

use common::*;
use gossamer_net::{Event, KeyError, KeyRequest, Node, Subscription};
use gossamer_wire::{KeyringError, SecretKey};

const QUERY_TIMEOUT: Duration = Duration::from_secs(3);

fn key(byte: u8) -> SecretKey {
    SecretKey::from_bytes(&[byte; 32]).unwrap()
}

async fn start_keyed(name: &str, seeds: Vec<std::net::SocketAddr>, secret: &SecretKey) -> Node {
    let mut c = config(name, seeds);
    c.secret = Some(secret.clone());
    // A generous probe timeout: a busy test machine must not cause a
    // suspicion, while a frame refused for its key is never acked at all.
    c.protocol.probe_timeout = Duration::from_millis(800);
    Node::start(c).await.unwrap()
}

/// Messages received by every node, as (messages_in, rejected frames and streams, suspicions raised).
async fn counters(nodes: &[Node]) -> Vec<(u64, u64, u64)> {
    let mut out = Vec::new();
    for n in nodes {
        let m = n.metrics().await.unwrap();
        out.push((m.core.messages_in, m.core.rejected + m.net.streams_refused, m.core.suspicions));
    }
    out
}

/// Waits until every node has received at least `more` messages since
/// `before`: heartbeats keep flowing under the current keys.
async fn traffic_flows(what: &str, nodes: &[Node], more: u64) {
    let before = counters(nodes).await;
    eventually(what, || async { counters(nodes).await.iter().zip(&before).all(|(now, then)| now.0 >= then.0 + more) })
        .await;
}

/// Fails on any suspicion, failure or departure seen since the last call.
fn assert_no_bad_events(subs: &mut [Subscription], step: &str) {
    for (i, sub) in subs.iter_mut().enumerate() {
        while let Some(event) = sub.try_recv() {
            assert!(
                !matches!(event, Event::MemberSuspected(_) | Event::MemberFailed(_) | Event::MemberLeft(_)),
                "node {i} saw {event:?} during {step}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_cluster_rotates_its_key_with_no_member_suspected() {
    init_tracing();
    let (k1, k2, k3) = (key(1), key(2), key(3));
    let first = start_keyed("n0@127.0.0.1", vec![], &k1).await;
    let mut nodes = vec![first.clone()];
    for i in 1..5 {
        nodes.push(start_keyed(&format!("n{i}@127.0.0.1"), vec![first.addr()], &k1).await);
    }
    let refs: Vec<&Node> = nodes.iter().collect();
    eventually("five alive everywhere", || async { all_see_alive(&refs, 5).await }).await;
    let mut subs: Vec<Subscription> = nodes.iter().map(Node::subscribe).collect();
    traffic_flows("the formed cluster talks", &nodes, 6).await;
    assert_no_bad_events(&mut subs, "formation");
    let start = counters(&nodes).await;

    // Node by node, through the Node API: install, use, remove.
    for n in &nodes {
        assert_eq!(n.use_key(&k2).unwrap_err(), KeyError::Keyring(KeyringError::NotInstalled(k2.fingerprint())));
        assert!(n.install_key(k2.clone()).unwrap());
        assert_eq!(n.list_keys(), vec![k1.fingerprint(), k2.fingerprint()]);
    }
    traffic_flows("heartbeats flow with K2 installed", &nodes, 8).await;
    for n in &nodes {
        assert!(n.use_key(&k2).unwrap());
    }
    traffic_flows("heartbeats flow sealed with K2", &nodes, 8).await;
    for n in &nodes {
        assert_eq!(n.remove_key(&k2).unwrap_err(), KeyError::Keyring(KeyringError::RemovePrimary(k2.fingerprint())));
        n.remove_key(&k1).unwrap();
        assert_eq!(n.list_keys(), vec![k2.fingerprint()]);
    }
    traffic_flows("heartbeats flow with K1 gone", &nodes, 8).await;
    assert_no_bad_events(&mut subs, "the node-by-node rotation");
    let after = counters(&nodes).await;
    for (i, (a, s)) in after.iter().zip(&start).enumerate() {
        assert_eq!(a.1, s.1, "node {i} refused frames during the rotation");
        assert_eq!(a.2, s.2, "node {i} raised suspicions during the rotation");
    }
    assert!(all_see_alive(&refs, 5).await);

    // A node that only has K1 can no longer talk to the cluster: its join
    // is refused, and nobody learns of it.
    let refused_before = counters(&nodes[..1]).await[0].1;
    let outsider = start_keyed("outsider@127.0.0.1", vec![first.addr()], &k1).await;
    eventually("n0 refuses the K1 node's frames", || async { counters(&nodes[..1]).await[0].1 > refused_before }).await;
    assert_eq!(alive_count(&outsider).await, 1, "the K1 node stays alone");
    for n in &nodes {
        assert!(status_of(n, "outsider@127.0.0.1").await.is_none(), "a member learned of the K1 node");
    }
    outsider.shutdown().await;
    traffic_flows("the cluster carries on", &nodes, 6).await;
    let mid = counters(&nodes).await;

    // Cluster-wide, from one node: K2 -> K3 through the internal query.
    let asker = &nodes[2];
    let listed = asker.cluster_keys(KeyRequest::List, QUERY_TIMEOUT).await.unwrap();
    assert_eq!((listed.acked(), listed.missing.len()), (5, 0), "{listed:?}");
    assert_eq!(listed.key_counts(), vec![(k2.fingerprint(), 5, 5)]);
    let installed = asker.cluster_keys(KeyRequest::Install(k3.clone()), QUERY_TIMEOUT).await.unwrap();
    assert!(installed.all_acked() && installed.answers.len() == 5, "{installed:?}");
    traffic_flows("heartbeats flow with K3 installed everywhere", &nodes, 6).await;
    let used = asker.cluster_keys(KeyRequest::Use(k3.clone()), QUERY_TIMEOUT).await.unwrap();
    assert!(used.all_acked() && used.answers.len() == 5, "{used:?}");
    assert_eq!(used.key_counts(), vec![(k3.fingerprint(), 5, 5), (k2.fingerprint(), 5, 0)]);
    traffic_flows("heartbeats flow sealed with K3", &nodes, 6).await;
    // Removing the primary is refused by every member, and changes nothing.
    let refused = asker.cluster_keys(KeyRequest::Remove(k3.clone()), QUERY_TIMEOUT).await.unwrap();
    assert_eq!((refused.acked(), refused.failed()), (0, 5), "{refused:?}");
    assert!(refused.answers.iter().all(|(_, a)| a.error.as_deref().is_some_and(|e| e.contains("primary"))));
    let removed = asker.cluster_keys(KeyRequest::Remove(k2.clone()), QUERY_TIMEOUT).await.unwrap();
    assert!(removed.all_acked() && removed.answers.len() == 5, "{removed:?}");
    assert_eq!(removed.key_counts(), vec![(k3.fingerprint(), 5, 5)]);
    for n in &nodes {
        assert_eq!(n.list_keys(), vec![k3.fingerprint()]);
    }
    traffic_flows("heartbeats flow with K2 gone", &nodes, 6).await;
    assert_no_bad_events(&mut subs, "the cluster-wide rotation");
    let end = counters(&nodes).await;
    for (i, (e, m)) in end.iter().zip(&mid).enumerate() {
        assert_eq!(e.1, m.1, "node {i} refused frames during the cluster-wide rotation");
        assert_eq!(e.2, m.2, "node {i} raised suspicions during the cluster-wide rotation");
    }
    assert!(all_see_alive(&refs, 5).await);
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_key_refuses_key_operations() {
    init_tracing();
    let plain = start("plain@127.0.0.1", vec![]).await;
    assert_eq!(plain.install_key(key(1)).unwrap_err(), KeyError::NoKeyring);
    assert_eq!(plain.use_key(&key(1)).unwrap_err(), KeyError::NoKeyring);
    assert_eq!(plain.remove_key(&key(1)).unwrap_err(), KeyError::NoKeyring);
    assert!(plain.list_keys().is_empty());
    let refused = plain.cluster_keys(KeyRequest::Install(key(1)), QUERY_TIMEOUT).await;
    assert_eq!(refused.unwrap_err(), KeyError::NoKeyring, "a key is never sent in clear");
    plain.shutdown().await;

    // `keys` alone: the first is the primary, the others accepted.
    let mut c = config("keyed@127.0.0.1", vec![]);
    c.keys = vec![key(5), key(6), key(5)];
    let keyed = Node::start(c).await.unwrap();
    assert_eq!(keyed.list_keys(), vec![key(5).fingerprint(), key(6).fingerprint()]);
    keyed.shutdown().await;
}
