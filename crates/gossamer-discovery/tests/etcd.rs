//! etcd strategy against a real etcd (Debian's `etcd-server`, /usr/bin/etcd) started per test on
//! 127.0.0.1 with free ports and its own data dir, killed by a guard (`gossamer_testkit::etcd`).
//!
//! If the binary is missing the tests FAIL (CI installs etcd-server) unless GOSSAMER_SKIP_ETCD=1.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use gossamer_discovery::strategy::EtcdDiscovery;
use gossamer_discovery::{
    build, Backoff, Discovery, DiscoveryConfig, DiscoveryError, DiscoveryRunner, Peer, StrategyKind,
};
use gossamer_testkit::etcd::{self, Etcd};

const DEADLINE: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn node(etcd: &Etcd, prefix: &str, name: &str, port: u16, ttl: Duration) -> EtcdDiscovery {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    EtcdDiscovery::new(
        vec![etcd.url.clone()],
        prefix,
        ttl,
        Duration::from_millis(200),
        Duration::from_secs(2),
        Some((name.to_string(), addr)),
    )
    .unwrap()
}

/// Polls `d.discover()` until `pred` holds or the deadline passes.
async fn eventually(d: &EtcdDiscovery, what: &str, pred: impl Fn(&[Peer]) -> bool) -> Vec<Peer> {
    let start = Instant::now();
    loop {
        let peers = d.discover().await.unwrap();
        if pred(&peers) {
            return peers;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}; last answer {peers:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn names(peers: &[Peer]) -> Vec<&str> {
    peers.iter().filter_map(|p| p.name.as_deref()).collect()
}

#[tokio::test]
async fn register_discover_expire_and_deregister() {
    let Some(etcd) = etcd::start().await else { return };
    let ttl = Duration::from_secs(2);
    let a = node(&etcd, "/t1", "a@127.0.0.1", 7001, ttl);
    let b = node(&etcd, "/t1", "b@127.0.0.1", 7002, ttl);
    let c = node(&etcd, "/t1", "c@127.0.0.1", 7003, ttl);
    a.register().await.unwrap();
    b.register().await.unwrap();
    c.register().await.unwrap();

    // Each sees the others, not itself, with their advertised addresses.
    let seen = a.discover().await.unwrap();
    assert_eq!(
        seen,
        vec![
            Peer::named("b@127.0.0.1", "127.0.0.1:7002".parse().unwrap()),
            Peer::named("c@127.0.0.1", "127.0.0.1:7003".parse().unwrap())
        ]
    );
    assert_eq!(names(&b.discover().await.unwrap()), ["a@127.0.0.1", "c@127.0.0.1"]);

    // Keepalive holds the keys well past the TTL.
    tokio::time::sleep(ttl * 2).await;
    assert_eq!(names(&a.discover().await.unwrap()), ["b@127.0.0.1", "c@127.0.0.1"]);

    // c leaves cleanly: its key is deleted at once.
    c.deregister().await.unwrap();
    assert_eq!(names(&a.discover().await.unwrap()), ["b@127.0.0.1"]);

    // b "crashes" (dropped: keepalive stops): its key vanishes when the lease expires.
    drop(b);
    eventually(&a, "b's lease to expire", |p| p.is_empty()).await;

    // a is still registered throughout (its keepalive kept running).
    let d = node(&etcd, "/t1", "d@127.0.0.1", 7004, ttl);
    assert_eq!(names(&d.discover().await.unwrap()), ["a@127.0.0.1"]);
}

#[tokio::test]
async fn lost_lease_is_re_registered() {
    let Some(etcd) = etcd::start().await else { return };
    let a = node(&etcd, "/t2", "a@127.0.0.1", 7001, Duration::from_secs(3));
    let observer = node(&etcd, "/t2", "obs@127.0.0.1", 7009, Duration::from_secs(3));
    a.register().await.unwrap();
    let lease = a.lease_id().await.unwrap();
    // Revoke a's lease behind its back (as after a long partition from etcd): the key goes at once...
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/v3/lease/revoke", etcd.url))
        .json(&serde_json::json!({ "ID": lease.to_string() }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(observer.discover().await.unwrap(), vec![]);
    // ...and a's keepalive notices the dead lease and registers again under a new one.
    eventually(&observer, "a to re-register", |p| names(p) == ["a@127.0.0.1"]).await;
    assert_ne!(a.lease_id().await, Some(lease));
}

#[tokio::test]
async fn runners_find_each_other_and_fail_over_between_servers() {
    let Some(etcd) = etcd::start().await else { return };
    // The first server is dead: every call must fall through to the live one.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let cfg = |name: &str, port: u16| {
        let mut c = DiscoveryConfig { strategy: vec![StrategyKind::Etcd], ..Default::default() };
        c.node_name = Some(name.into());
        c.advertise_addr = Some(format!("127.0.0.1:{port}").parse().unwrap());
        c.etcd.server = vec![dead.clone(), etcd.url.clone()];
        c.etcd.prefix = "gossamer-t3".into();
        c.etcd.node_ttl_ms = 2_000;
        c.etcd.poll_interval_ms = 100;
        c.etcd.timeout_ms = 1_000;
        c
    };
    let backoff = Backoff { initial: Duration::from_millis(50), max: Duration::from_millis(500) };
    let (ra, mut ua) = DiscoveryRunner::new(build(&cfg("a", 7101)).unwrap()).with_backoff(backoff).spawn();
    let (rb, _ub) = DiscoveryRunner::new(build(&cfg("b", 7102)).unwrap()).with_backoff(backoff).spawn();

    let b_peer = Peer::named("b", "127.0.0.1:7102".parse().unwrap());
    let start = Instant::now();
    loop {
        let u = tokio::time::timeout(DEADLINE, ua.recv()).await.expect("no update").expect("runner gone");
        assert_eq!(u.strategy, "etcd");
        if u.peers == [b_peer.clone()] {
            break;
        }
        assert!(start.elapsed() < DEADLINE);
    }
    // b shuts down cleanly: the runner deregisters it and a's runner reports the removal.
    rb.shutdown().await;
    let u = tokio::time::timeout(DEADLINE, ua.recv()).await.expect("no update").expect("runner gone");
    assert_eq!(u.removed, vec![b_peer]);
    assert!(u.peers.is_empty());
    ra.shutdown().await;
}

/// No etcd needed: nothing listens on the server's port.
#[tokio::test]
async fn unreachable_etcd_names_the_server() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let addr: SocketAddr = "127.0.0.1:7946".parse().unwrap();
    let d = EtcdDiscovery::new(
        vec![url.clone()],
        "x",
        Duration::from_secs(5),
        Duration::from_secs(1),
        Duration::from_secs(1),
        Some(("n".into(), addr)),
    )
    .unwrap();
    let e = d.discover().await.unwrap_err();
    assert!(matches!(e, DiscoveryError::Http { .. }), "{e:?}");
    assert!(e.to_string().contains(&url), "{e}");
    let e = d.register().await.unwrap_err();
    assert!(e.to_string().contains(&url), "{e}");

    let url2 = format!("http://127.0.0.1:{}", free_port());
    let d = EtcdDiscovery::new(
        vec![url.clone(), url2.clone()],
        "x",
        Duration::from_secs(5),
        Duration::from_secs(1),
        Duration::from_secs(1),
        None,
    )
    .unwrap();
    let e = d.discover().await.unwrap_err();
    assert!(matches!(e, DiscoveryError::AllServersFailed(ref v) if v.len() == 2), "{e:?}");
    assert!(e.to_string().contains(&url) && e.to_string().contains(&url2), "{e}");
}
