//! Application data on real sockets (127.0.0.1): user broadcasts, queries,
//! application state in push-pull, and compression.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{all_see_alive, config, eventually, init_tracing};
use gossamer_net::{
    Bytes, Hooks, Member, NetError, Node, NodeConfig, QueryFilter, UserError, UserEvent, UserKey, UserSubscription,
};
use gossamer_wire::{NodeId, NodeName};

/// Records every application callback; answers queries when `answers`.
#[derive(Default)]
struct Recorder {
    name: String,
    answers: bool,
    broadcasts: Mutex<Vec<(NodeName, UserKey, u64, Bytes)>>,
    merged: Mutex<Vec<(NodeName, bool, Bytes)>>,
    state: Mutex<Bytes>,
}

impl Recorder {
    fn new(name: &str, answers: bool) -> Arc<Self> {
        Arc::new(Self { name: name.into(), answers, ..Self::default() })
    }

    fn broadcasts(&self) -> Vec<(NodeName, UserKey, u64, Bytes)> {
        self.broadcasts.lock().unwrap().clone()
    }

    fn merged(&self) -> Vec<(NodeName, bool, Bytes)> {
        self.merged.lock().unwrap().clone()
    }
}

impl Hooks for Recorder {
    fn on_connect(&self, _: &Member) {}
    fn on_disconnect(&self, _: &Member) {}

    fn on_broadcast(&self, origin: &NodeName, key: &UserKey, version: u64, payload: &Bytes) {
        self.broadcasts.lock().unwrap().push((origin.clone(), key.clone(), version, payload.clone()));
    }

    fn on_query(&self, _origin: &NodeId, name: &UserKey, payload: &Bytes) -> Option<Bytes> {
        self.answers.then(|| Bytes::from(format!("{}:{name}:{}", self.name, String::from_utf8_lossy(payload))))
    }

    fn local_state(&self) -> Bytes {
        self.state.lock().unwrap().clone()
    }

    fn merge_remote_state(&self, from: &NodeName, join: bool, state: &Bytes) {
        self.merged.lock().unwrap().push((from.clone(), join, state.clone()));
    }
}

fn name(s: &str) -> NodeName {
    s.parse().unwrap()
}

/// Starts `configs` in order, each joining the first, and waits until
/// every node sees all of them alive.
async fn cluster(configs: Vec<NodeConfig>) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    for mut c in configs {
        if let Some(first) = nodes.first() {
            c.seeds = vec![first.addr()];
        }
        nodes.push(Node::start(c).await.unwrap());
    }
    let n = nodes.len();
    let refs: Vec<&Node> = nodes.iter().collect();
    eventually("every node sees the whole cluster alive", || all_see_alive(&refs, n)).await;
    nodes
}

fn with_hooks(name: &str, hooks: &Arc<Recorder>) -> NodeConfig {
    let mut c = config(name, Vec::new());
    c.hooks.push(hooks.clone());
    c
}

/// The broadcasts a subscription has delivered so far.
fn drain_broadcasts(sub: &mut UserSubscription, into: &mut Vec<(NodeName, UserKey, u64, Bytes)>) {
    while let Some(event) = sub.try_recv() {
        if let UserEvent::Broadcast { origin, key, version, payload } = event {
            into.push((origin, key, version, payload));
        }
    }
}

async fn queues_drained(nodes: &[Node]) -> bool {
    for node in nodes {
        if node.metrics().await.unwrap().core.queued_user_items != 0 {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_broadcast_reaches_every_other_node_once_and_newer_versions_replace() {
    init_tracing();
    const N: usize = 5;
    let names: Vec<String> = (0..N).map(|i| format!("b{i}")).collect();
    let recorders: Vec<_> = names.iter().map(|n| Recorder::new(n, false)).collect();
    let nodes = cluster(names.iter().zip(&recorders).map(|(n, r)| with_hooks(n, r)).collect()).await;
    let mut subs: Vec<_> = nodes.iter().map(Node::subscribe_user).collect();

    // Versions are Lamport times: at least 1, and higher than anything the
    // node has heard, so a node that heard another's broadcast first stamps more.
    let mut first = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let version = node.broadcast("hello", format!("from-{i}")).await.unwrap();
        assert!(version >= 1, "b{i}: {version}");
        first.push(version);
    }
    eventually("every hook got the other nodes' broadcasts", || {
        let done = recorders.iter().all(|r| r.broadcasts().len() >= N - 1);
        async move { done }
    })
    .await;
    // Once every queue is empty nothing is sent any more: what arrived is all.
    eventually("every user queue drained", || queues_drained(&nodes)).await;

    let mut via_subs = vec![Vec::new(); N];
    for (i, recorder) in recorders.iter().enumerate() {
        let expected: BTreeSet<_> = (0..N)
            .filter(|&j| j != i)
            .map(|j| (name(&names[j]), UserKey::new("hello").unwrap(), first[j], Bytes::from(format!("from-{j}"))))
            .collect();
        let got = recorder.broadcasts();
        assert_eq!(got.len(), N - 1, "b{i}: each broadcast once through the hook: {got:?}");
        assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), expected, "b{i}: hook");
        drain_broadcasts(&mut subs[i], &mut via_subs[i]);
        assert_eq!(via_subs[i].len(), N - 1, "b{i}: each broadcast once through the subscription");
        assert_eq!(via_subs[i].iter().cloned().collect::<BTreeSet<_>>(), expected, "b{i}: subscription");
    }

    // Two newer versions back to back: the last one wins everywhere, and no
    // node ever goes back to an older version.
    let v2 = nodes[0].broadcast("hello", b"v2".to_vec()).await.unwrap();
    let v3 = nodes[0].broadcast("hello", b"v3".to_vec()).await.unwrap();
    assert!(first[0] < v2 && v2 < v3, "versions only go up: {} {v2} {v3}", first[0]);
    let latest_from_b0 = |r: &Recorder| {
        r.broadcasts()
            .into_iter()
            .filter(|(o, _, _, _)| o.as_str() == "b0")
            .map(|(_, _, v, p)| (v, p))
            .collect::<Vec<_>>()
    };
    eventually("every other node has b0's latest version", || {
        let done = recorders[1..].iter().all(|r| latest_from_b0(r).last().is_some_and(|(v, _)| *v == v3));
        async move { done }
    })
    .await;
    eventually("every user queue drained again", || queues_drained(&nodes)).await;
    for (i, recorder) in recorders.iter().enumerate().skip(1) {
        let seen = latest_from_b0(recorder);
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "b{i}: versions only increase: {seen:?}");
        assert_eq!(seen.last().unwrap(), &(v3, Bytes::from_static(b"v3")), "b{i}");
        drain_broadcasts(&mut subs[i], &mut via_subs[i]);
        assert_eq!(via_subs[i].last().map(|b| (b.2, b.3.clone())), Some((v3, Bytes::from_static(b"v3"))), "b{i}");
    }
    assert!(recorders[0].broadcasts().iter().all(|(o, _, _, _)| o.as_str() != "b0"), "no self-delivery");

    // Refusals are typed.
    match nodes[0].broadcast("", b"x".to_vec()).await {
        Err(NetError::Refused(UserError::Key(_))) => {}
        other => panic!("empty key: {other:?}"),
    }
    let too_big = vec![0u8; nodes[0].max_user_item_len() + 1];
    match nodes[0].broadcast("big", too_big).await {
        Err(NetError::Refused(UserError::TooLarge { len, max })) => assert!(len > max),
        other => panic!("oversized payload: {other:?}"),
    }

    for node in &nodes {
        node.shutdown().await;
    }
    assert!(matches!(nodes[0].broadcast("hello", b"late".to_vec()).await, Err(NetError::Stopped(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_gather_answers_of_the_addressed_nodes_and_name_the_silent_ones() {
    init_tracing();
    // q0 (web) asks; q1..q3 (db) answer through their hook; q4 (web) has no
    // hooks and answers through its subscription and Node::respond.
    let roles = ["web", "db", "db", "db", "web"];
    let recorders: Vec<_> = (0..4).map(|i| Recorder::new(&format!("q{i}"), true)).collect();
    let configs = roles
        .iter()
        .enumerate()
        .map(|(i, role)| {
            let mut c = match recorders.get(i) {
                Some(r) => with_hooks(&format!("q{i}"), r),
                None => config(&format!("q{i}"), Vec::new()),
            };
            c.metadata.insert("role", role.as_bytes().to_vec()).unwrap();
            // The killed node must still count as a member (alive or
            // suspect) when the queries end: slow suspicion.
            c.protocol.suspicion_mult = 10;
            c
        })
        .collect();
    let nodes = cluster(configs).await;

    let mut q4_events = nodes[4].subscribe_user();
    let q4 = nodes[4].clone();
    let responder = tokio::spawn(async move {
        let mut answered = 0;
        while let Some(event) = q4_events.recv().await {
            if let UserEvent::Query { id, origin, name, payload } = event {
                let answer = format!("q4:{name}:{}", String::from_utf8_lossy(&payload));
                q4.respond(id, &origin.name, answer).await.unwrap();
                answered += 1;
                // A second answer to the same query is refused.
                assert!(matches!(q4.respond(id, &origin.name, "again").await, Err(NetError::Refused(_))));
            }
        }
        answered
    });

    nodes[3].shutdown().await;
    let db = QueryFilter { nodes: vec![], tags: vec![("role".into(), "db".into())] };
    let timeout = Duration::from_secs(2);
    let (by_tag, everyone) = tokio::join!(
        nodes[0].query("whoami", b"?".to_vec(), db, timeout),
        nodes[0].query("whoami", b"!".to_vec(), QueryFilter::everyone(), timeout),
    );

    let by_tag = by_tag.unwrap();
    let answers: BTreeMap<_, _> = by_tag.responses.into_iter().collect();
    let expected: BTreeMap<_, _> =
        ["q1", "q2"].iter().map(|n| (name(n), Bytes::from(format!("{n}:whoami:?")))).collect();
    assert_eq!(answers, expected, "only the live db nodes answer the tag query");
    assert_eq!(by_tag.missing, vec![name("q3")], "the killed db node is missing");

    let everyone = everyone.unwrap();
    let answers: BTreeMap<_, _> = everyone.responses.into_iter().collect();
    let expected: BTreeMap<_, _> =
        ["q0", "q1", "q2", "q4"].iter().map(|n| (name(n), Bytes::from(format!("{n}:whoami:!")))).collect();
    assert_eq!(answers, expected, "everyone alive answers, the asker included");
    assert_eq!(everyone.missing, vec![name("q3")]);

    // Refusals are typed.
    let bad_timeout = nodes[0].query("whoami", Vec::new(), QueryFilter::everyone(), Duration::ZERO).await;
    assert!(matches!(bad_timeout, Err(NetError::Refused(UserError::Timeout(_)))), "{bad_timeout:?}");
    let unknown = nodes[1].respond(42, &name("q0"), "x").await;
    assert!(matches!(unknown, Err(NetError::Refused(UserError::UnknownQuery { .. }))), "{unknown:?}");

    for (i, node) in nodes.iter().enumerate() {
        if i != 3 {
            node.shutdown().await;
        }
    }
    assert_eq!(responder.await.unwrap(), 1, "q4 was addressed by one query only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_state_travels_in_push_pull_and_is_merged() {
    init_tracing();
    let (ra, rb) = (Recorder::new("sa", false), Recorder::new("sb", false));
    *ra.state.lock().unwrap() = Bytes::from_static(b"a-state-1");
    *rb.state.lock().unwrap() = Bytes::from_static(b"b-state-1");
    let [mut ca, mut cb] = [with_hooks("sa", &ra), with_hooks("sb", &rb)];
    for c in [&mut ca, &mut cb] {
        c.protocol.push_pull_interval = Duration::from_millis(300);
    }
    let a = Node::start(ca).await.unwrap();
    let mut a_events = a.subscribe_user();
    cb.seeds = vec![a.addr()];
    let b = Node::start(cb).await.unwrap();

    eventually("the joiner's state is merged by the seed", || {
        let done = ra.merged().contains(&(name("sb"), true, Bytes::from_static(b"b-state-1")));
        async move { done }
    })
    .await;
    eventually("the seed's state is merged by the joiner", || {
        let done = rb.merged().contains(&(name("sa"), false, Bytes::from_static(b"a-state-1")));
        async move { done }
    })
    .await;
    let event = a_events.recv().await.unwrap();
    assert_eq!(event, UserEvent::RemoteState { from: name("sb"), join: true, state: Bytes::from_static(b"b-state-1") });

    // A changed state goes out with the next periodic push-pull.
    *ra.state.lock().unwrap() = Bytes::from_static(b"a-state-2");
    eventually("the new state reaches the other node", || {
        let done = rb.merged().iter().any(|(from, _, state)| from.as_str() == "sa" && state == "a-state-2");
        async move { done }
    })
    .await;
    assert!(rb.merged().iter().all(|(from, _, _)| from.as_str() == "sa"), "no self-merge");

    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_state_syncs_compressed() {
    init_tracing();
    const LEN: usize = 200 * 1024;
    let big = |word: &str| Bytes::from(word.repeat(LEN / word.len()));
    let (ra, rb) = (Recorder::new("ca", false), Recorder::new("cb", false));
    *ra.state.lock().unwrap() = big("alpha-state ");
    *rb.state.lock().unwrap() = big("bravo-state ");
    let [mut ca, mut cb] = [with_hooks("ca", &ra), with_hooks("cb", &rb)];
    for c in [&mut ca, &mut cb] {
        c.compression = Some(1024);
    }
    let a = Node::start(ca).await.unwrap();
    cb.seeds = vec![a.addr()];
    let b = Node::start(cb).await.unwrap();

    eventually("each side merged the other's 200 KB state", || {
        let a_got = ra.merged().iter().any(|(from, _, s)| from.as_str() == "cb" && s == &big("bravo-state "));
        let b_got = rb.merged().iter().any(|(from, _, s)| from.as_str() == "ca" && s == &big("alpha-state "));
        async move { a_got && b_got }
    })
    .await;
    for node in [&a, &b] {
        let core = node.metrics().await.unwrap().core;
        // Every byte this node sent and received so far, its 200 KB state
        // and the other's included, is a fraction of one uncompressed state.
        assert!(core.bytes_out < LEN as u64 / 4, "{} bytes out: not compressed?", core.bytes_out);
        assert!(core.bytes_in < LEN as u64 / 4, "{} bytes in: not compressed?", core.bytes_in);
    }

    a.shutdown().await;
    b.shutdown().await;
}
