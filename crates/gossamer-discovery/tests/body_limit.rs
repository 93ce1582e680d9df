//! HTTP answers are bounded: a Kubernetes API, Rancher metadata service or etcd gateway (or whatever
//! answers in its place) that sends an oversized body gets a clear error naming the strategy, the
//! limit and the key that sets it, and the node never buffers more than the limit. Bodies with a
//! `Content-Length` come from the shared fake API server; endless bodies without one (read until the
//! connection closes, so only the streaming check can stop them) from a raw socket here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gossamer_discovery::{
    apply_env_from, build, Discovery, DiscoveryConfig, DiscoveryError, StrategyKind, DEFAULT_MAX_BODY_BYTES,
};
use gossamer_testkit::http::FakeApi;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Generous bound on one discovery round against a local server.
const ROUND: Duration = Duration::from_secs(30);

fn one(cfg: &DiscoveryConfig) -> Box<dyn Discovery> {
    let mut v = build(cfg).unwrap();
    assert_eq!(v.len(), 1);
    v.pop().unwrap()
}

fn k8s(url: &str, max_body: usize) -> DiscoveryConfig {
    let mut c = DiscoveryConfig { strategy: vec![StrategyKind::K8s], ..Default::default() };
    c.k8s.apiserver = Some(url.to_string());
    c.k8s.service_name = "gossamer".into();
    c.k8s.namespace = Some("prod".into());
    c.k8s.token = Some("t".into());
    c.k8s.max_body_bytes = max_body;
    c
}

fn rancher(url: &str) -> DiscoveryConfig {
    let mut c = DiscoveryConfig { strategy: vec![StrategyKind::Rancher], ..Default::default() };
    c.rancher.metadata_url = format!("{url}/2015-12-19");
    c
}

fn etcd(url: &str, max_body: usize) -> DiscoveryConfig {
    let mut c = DiscoveryConfig { strategy: vec![StrategyKind::Etcd], ..Default::default() };
    c.etcd.server = vec![url.to_string()];
    c.etcd.max_body_bytes = max_body;
    c.node_name = Some("a@127.0.0.1".into());
    c.advertise_addr = Some("127.0.0.1:7946".parse().unwrap());
    c
}

async fn refused(d: &dyn Discovery) -> String {
    let e = tokio::time::timeout(ROUND, d.discover()).await.expect("the round ends").expect_err("refused");
    assert!(matches!(e, DiscoveryError::Http { .. }), "{e:?}");
    e.to_string()
}

/// A JSON-looking body of `n` bytes (a long string value, valid JSON if it were ever parsed).
fn big_json(n: usize) -> String {
    let mut s = String::with_capacity(n);
    s.push_str("{\"items\":[],\"pad\":\"");
    s.extend(std::iter::repeat_n('x', n.saturating_sub(s.len() + 2)));
    s.push_str("\"}");
    s
}

#[tokio::test]
async fn oversized_bodies_with_a_length_are_refused_naming_strategy_and_limit() {
    let api = FakeApi::start().await;
    let target =
        "/apis/discovery.k8s.io/v1/namespaces/prod/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dgossamer";

    // Kubernetes with a 1 MiB limit: a 2 MiB list is refused, a small one still works.
    api.route(target, 200, &big_json(2 << 20));
    let e = refused(&*one(&k8s(&api.url, 1 << 20))).await;
    assert!(e.contains("kubernetes") && e.contains("1048576") && e.contains("discovery.k8s.max_body_bytes"), "{e}");
    api.route(target, 200, r#"{"items":[]}"#);
    assert_eq!(one(&k8s(&api.url, 1 << 20)).discover().await.unwrap(), vec![]);

    // An error answer is bounded too (its text is read for the message).
    api.route(target, 403, &big_json(2 << 20));
    let e = refused(&*one(&k8s(&api.url, 1 << 20))).await;
    assert!(e.contains("discovery.k8s.max_body_bytes"), "{e}");

    // Rancher at its default (4 MiB): 5 MiB is refused.
    api.route("/2015-12-19/self/service", 200, &big_json(5 << 20));
    let e = refused(&*one(&rancher(&api.url))).await;
    assert!(e.contains("rancher-metadata") && e.contains(&DEFAULT_MAX_BODY_BYTES.to_string()), "{e}");
    assert!(e.contains("discovery.rancher.max_body_bytes"), "{e}");
}

/// Serves every connection an endless `200 OK` body with no `Content-Length` (HTTP/1.1 read-to-close),
/// after reading the request (head and body, so the client sees no reset). Counts bytes written.
async fn endless_server() -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let written = Arc::new(AtomicU64::new(0));
    let w = written.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let w = w.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|x| x == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"kvs\":\"";
                if sock.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let block = vec![b'x'; 64 * 1024];
                // Stops when the client hangs up; 1 GiB at most so a broken client cannot hang the test.
                while w.load(Ordering::Relaxed) < 1 << 30 {
                    if sock.write_all(&block).await.is_err() {
                        return;
                    }
                    w.fetch_add(block.len() as u64, Ordering::Relaxed);
                }
            });
        }
    });
    (url, written)
}

#[tokio::test]
async fn endless_bodies_are_cut_off_while_streaming() {
    // etcd (POST to the JSON gateway) with a 256 KiB limit.
    let (url, written) = endless_server().await;
    let e = refused(&*one(&etcd(&url, 256 * 1024))).await;
    assert!(e.contains("etcd") && e.contains("262144") && e.contains("discovery.etcd.max_body_bytes"), "{e}");
    // The client hung up soon after the limit: far less than the 1 GiB the server would send.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = written.load(Ordering::Relaxed);
    println!("etcd: server got {sent} bytes out before the client hung up (limit 262144)");
    assert!(sent < 64 << 20, "the client kept reading: {sent} bytes");

    // Kubernetes and Rancher, the same way.
    let (url, _) = endless_server().await;
    let e = refused(&*one(&k8s(&url, 256 * 1024))).await;
    assert!(e.contains("kubernetes") && e.contains("262144"), "{e}");
    let (url, _) = endless_server().await;
    let mut cfg = rancher(&url);
    cfg.rancher.max_body_bytes = 256 * 1024;
    let e = refused(&*one(&cfg)).await;
    assert!(e.contains("rancher-metadata") && e.contains("262144"), "{e}");
}

#[test]
fn limits_are_configurable_and_validated() {
    let cfg = DiscoveryConfig::from_toml(
        "strategy = \"rancher\"\n[rancher]\nmax_body_bytes = 1024\n[k8s]\nmax_body_bytes = 2048\n[etcd]\nmax_body_bytes = 4096\n",
    )
    .unwrap();
    assert_eq!((cfg.rancher.max_body_bytes, cfg.k8s.max_body_bytes, cfg.etcd.max_body_bytes), (1024, 2048, 4096));
    let defaults = DiscoveryConfig::default();
    assert_eq!(defaults.rancher.max_body_bytes, 4 << 20);
    assert_eq!(defaults.etcd.max_body_bytes, 4 << 20);
    assert_eq!(defaults.k8s.max_body_bytes, 16 << 20);

    let mut cfg = DiscoveryConfig::default();
    apply_env_from(
        &mut cfg,
        [
            ("GOSSAMER_K8S_MAX_BODY_BYTES", "100"),
            ("GOSSAMER_RANCHER_MAX_BODY_BYTES", "200"),
            ("GOSSAMER_ETCD_MAX_BODY_BYTES", "300"),
        ],
    )
    .unwrap();
    assert_eq!((cfg.k8s.max_body_bytes, cfg.rancher.max_body_bytes, cfg.etcd.max_body_bytes), (100, 200, 300));
    let e = apply_env_from(&mut cfg, [("GOSSAMER_ETCD_MAX_BODY_BYTES", "4MiB")]).unwrap_err();
    assert!(e.to_string().contains("GOSSAMER_ETCD_MAX_BODY_BYTES"), "{e}");

    let mut cfg = rancher("http://127.0.0.1:1");
    cfg.rancher.max_body_bytes = 0;
    let e = cfg.validate().unwrap_err();
    assert!(e.to_string().contains("discovery.rancher.max_body_bytes"), "{e}");
}

#[test]
fn the_kubernetes_token_never_shows_in_debug_output() {
    let mut cfg = k8s("https://10.0.0.1:443", 1024);
    cfg.k8s.token = Some("eyJhbGciOiJSUzI1NiJ9.very-secret-token".into());
    let text = format!("{cfg:?} {:?}", cfg.k8s);
    assert!(!text.contains("very-secret-token"), "{text}");
    assert!(text.contains("redacted"), "{text}");
    // Still read from TOML as a plain string.
    let cfg = DiscoveryConfig::from_toml("[k8s]\ntoken = \"abc\"\n").unwrap();
    assert_eq!(cfg.k8s.token.as_ref().map(|t| t.expose()), Some("abc"));
}
