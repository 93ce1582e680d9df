//! The runner: backoff on failure (checked in tokio's paused virtual time, so exact and fast), failures
//! isolated per strategy, registration and deregistration.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gossamer_discovery::{
    async_trait, build, Backoff, Discovery, DiscoveryConfig, DiscoveryError, DiscoveryRunner, Peer, StrategyKind,
};
use tokio::time::Instant;

/// A strategy scripted by a closure over its call number; records when each call happened.
struct Scripted {
    name: &'static str,
    interval: Option<Duration>,
    calls: Arc<Mutex<Vec<Instant>>>,
    answer: Box<dyn Fn(usize) -> Result<Vec<Peer>, DiscoveryError> + Send + Sync>,
    registers: Arc<AtomicUsize>,
    deregisters: Arc<AtomicUsize>,
}

impl Scripted {
    fn new(
        name: &'static str,
        interval: Option<Duration>,
        answer: impl Fn(usize) -> Result<Vec<Peer>, DiscoveryError> + Send + Sync + 'static,
    ) -> Self {
        Scripted {
            name,
            interval,
            calls: Arc::default(),
            answer: Box::new(answer),
            registers: Arc::default(),
            deregisters: Arc::default(),
        }
    }
}

#[async_trait]
impl Discovery for Scripted {
    fn name(&self) -> &str {
        self.name
    }
    fn poll_interval(&self) -> Option<Duration> {
        self.interval
    }
    async fn discover(&self) -> Result<Vec<Peer>, DiscoveryError> {
        let n = {
            let mut c = self.calls.lock().unwrap();
            c.push(Instant::now());
            c.len()
        };
        (self.answer)(n)
    }
    async fn register(&self) -> Result<(), DiscoveryError> {
        self.registers.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn deregister(&self) -> Result<(), DiscoveryError> {
        self.deregisters.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn p(port: u16) -> Peer {
    Peer::from_addr(format!("127.0.0.1:{port}").parse().unwrap())
}

fn broken(_: usize) -> Result<Vec<Peer>, DiscoveryError> {
    Err(DiscoveryError::Http {
        service: "etcd",
        server: "http://127.0.0.1:1".into(),
        reason: "connection refused".into(),
    })
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_exponentially_and_do_not_stop_others() {
    let bad = Scripted::new("bad", Some(Duration::from_millis(50)), broken);
    let bad_calls = bad.calls.clone();
    // The good strategy's answer changes every call so each poll produces an update.
    let good = Scripted::new("good", Some(Duration::from_millis(100)), |n| Ok(vec![p(7000 + n as u16)]));
    let backoff = Backoff { initial: Duration::from_millis(100), max: Duration::from_millis(1000) };
    let (runner, mut updates) = DiscoveryRunner::new(vec![Box::new(bad), Box::new(good)]).with_backoff(backoff).spawn();

    // 20 updates from "good" arrive while "bad" fails throughout.
    for i in 1..=20u16 {
        let u = updates.recv().await.unwrap();
        assert_eq!(u.strategy, "good");
        assert_eq!(u.peers, vec![p(7000 + i)]);
    }
    // Let virtual time run far enough for the backoff to reach its cap.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let calls = bad_calls.lock().unwrap().clone();
    let gaps: Vec<u64> = calls.windows(2).map(|w| (w[1] - w[0]).as_millis() as u64).collect();
    let expected = [100, 200, 400, 800, 1000, 1000];
    assert!(gaps.len() >= expected.len(), "too few retries: {gaps:?}");
    for (g, e) in gaps.iter().zip(expected) {
        assert!(*g >= e && *g <= e + 5, "gaps {gaps:?} should follow {expected:?}");
    }
    let st = runner.status();
    assert_eq!(st[0].name, "bad");
    assert!(st[0].consecutive_failures as usize >= expected.len());
    assert!(st[0].last_error.as_deref().unwrap().contains("http://127.0.0.1:1"));
    assert_eq!(st[0].peers, None);
    assert!(st[1].successes >= 20 && st[1].last_error.is_none());
    runner.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn recovery_resets_backoff_and_failures_keep_the_last_answer() {
    // Calls 1-2 fail, 3-4 succeed, 5-7 fail, then success with a new set.
    let s = Scripted::new("flaky", Some(Duration::from_millis(1000)), |n| match n {
        1 | 2 | 5 | 6 | 7 => broken(n),
        3 | 4 => Ok(vec![p(1), p(2)]),
        _ => Ok(vec![p(2), p(3)]),
    });
    let calls = s.calls.clone();
    let backoff = Backoff { initial: Duration::from_millis(10), max: Duration::from_millis(10_000) };
    let (runner, mut updates) = DiscoveryRunner::new(vec![Box::new(s)]).with_backoff(backoff).spawn();

    let u = updates.recv().await.unwrap();
    assert_eq!((u.peers.clone(), u.added.clone(), u.removed.clone()), (vec![p(1), p(2)], vec![p(1), p(2)], vec![]));
    // The unchanged answer of call 4 sends nothing; failures 5-7 keep [1, 2]; call 8 sends the change.
    let u = updates.recv().await.unwrap();
    assert_eq!((u.peers, u.added, u.removed), (vec![p(2), p(3)], vec![p(3)], vec![p(1)]));
    let c = calls.lock().unwrap().clone();
    assert_eq!(c.len(), 8);
    let gaps: Vec<u64> = c.windows(2).map(|w| (w[1] - w[0]).as_millis() as u64).collect();
    // fail(10) fail(20) ok(1000) ok(1000) fail(10) fail(20) fail(40): backoff restarts after a success.
    for (g, e) in gaps.iter().zip([10, 20, 1000, 1000, 10, 20, 40]) {
        assert!(*g >= e && *g <= e + 5, "gaps {gaps:?}");
    }
    assert_eq!(runner.current_peers(), vec![p(2), p(3)]);
    runner.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn one_shot_strategies_run_once_and_registries_are_deregistered() {
    let once = Scripted::new("once", None, |_| Ok(vec![p(9)]));
    let (calls, reg, dereg) = (once.calls.clone(), once.registers.clone(), once.deregisters.clone());
    let (runner, mut updates) = DiscoveryRunner::new(vec![Box::new(once)]).spawn();
    assert_eq!(updates.recv().await.unwrap().peers, vec![p(9)]);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(calls.lock().unwrap().len(), 1);
    assert_eq!(reg.load(Ordering::SeqCst), 1);
    assert_eq!(dereg.load(Ordering::SeqCst), 0);
    runner.shutdown().await;
    assert_eq!(dereg.load(Ordering::SeqCst), 1);
}

/// Real strategies, real time: etcd pointing at a port nobody listens on keeps failing (error names the
/// server) while the static seeds are delivered.
#[tokio::test]
async fn unreachable_etcd_does_not_block_static_seeds() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cfg = DiscoveryConfig { strategy: vec![StrategyKind::Etcd, StrategyKind::Static], ..Default::default() };
    cfg.node_name = Some("me".into());
    cfg.advertise_addr = Some("127.0.0.1:7946".parse().unwrap());
    cfg.etcd.server = vec![format!("http://127.0.0.1:{port}")];
    cfg.etcd.timeout_ms = 500;
    cfg.static_.seeds = vec!["a@127.0.0.1:7001".into()];
    cfg.backoff_initial_ms = 20;
    cfg.backoff_max_ms = 200;
    let (runner, mut updates) = DiscoveryRunner::new(build(&cfg).unwrap()).with_backoff(cfg.backoff()).spawn();
    let u = tokio::time::timeout(Duration::from_secs(20), updates.recv()).await.unwrap().unwrap();
    assert_eq!(u.strategy, "static");
    assert_eq!(u.peers, vec![Peer::named("a@127.0.0.1", "127.0.0.1:7001".parse().unwrap())]);
    let start = std::time::Instant::now();
    loop {
        let st = runner.status();
        if st[0].consecutive_failures >= 3 {
            let err = st[0].last_error.clone().unwrap();
            assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{st:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    runner.shutdown().await;
}
