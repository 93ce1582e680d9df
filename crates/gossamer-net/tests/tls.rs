//! Mutual TLS under the push-pull stream, on real sockets (127.0.0.1):
//! nodes of one CA sync through it; a certificate of another CA, no
//! certificate, or a plaintext peer is refused with a warning, counted, and
//! nothing from it is merged. Certificates are generated here with rcgen.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use common::{all_see_alive, config, eventually, exchange, join_request, DEADLINE};
use gossamer_net::{Node, NodeConfig, StartError, TlsConfig, TlsError};
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// ---- logs: one capturing subscriber for this test binary ----

fn log_buffer() -> &'static Mutex<Vec<u8>> {
    static LOG: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOG.get_or_init(|| Mutex::new(Vec::new()))
}

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        log_buffer().lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs a subscriber that keeps every `warn` (and up) in memory, so a
/// test can count the warnings a node logged (lines carry `name=`).
fn capture_logs() {
    // `info` for gossamer_net: the node's span (with its name) is an info span.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn,gossamer_net=info")
        .with_ansi(false)
        .with_writer(|| Capture)
        .try_init();
}

/// Warn lines of the node named `node` containing `needle`.
fn warnings_of(node: &str, needle: &str) -> usize {
    let log = String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned();
    log.lines().filter(|l| l.contains("WARN") && l.contains(&format!("name={node}")) && l.contains(needle)).count()
}

// ---- a throwaway PKI ----

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    let pem = params.self_signed(&key).unwrap().pem();
    Ca { params, key, pem }
}

/// A node certificate signed by `ca` with these SANs: (cert PEM, key PEM).
fn leaf(ca: &Ca, sans: &[&str]) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let issuer = Issuer::from_params(&ca.params, &ca.key);
    let cert = CertificateParams::new(sans).unwrap().signed_by(&key, &issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// TLS settings of a node: a certificate from `issuer`, trusting `trust`.
/// SAN `localhost` only: peers dial 127.0.0.1, which the default check
/// does not compare with the certificate's names.
fn tls(issuer: &Ca, trust: &Ca) -> TlsConfig {
    let (cert, key) = leaf(issuer, &["localhost"]);
    TlsConfig::from_pem(cert, key, trust.pem.clone())
}

fn tls_config(name: &str, seeds: Vec<SocketAddr>, tls: TlsConfig) -> NodeConfig {
    let mut c = config(name, seeds);
    c.tls = Some(tls);
    c
}

async fn names(node: &Node) -> Vec<String> {
    let mut v: Vec<String> = node.members().await.unwrap().iter().map(|m| m.id.name.to_string()).collect();
    v.sort();
    v
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// A plaintext gossamer join request (cluster "test", no key).
fn plain_join_request(name: &str) -> Vec<u8> {
    let codec = gossamer_wire::FrameCodec::new(gossamer_wire::ClusterLabel::new("test").unwrap());
    join_request(&codec, name, "127.0.0.1:9".parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_nodes_of_one_ca_sync_through_push_pull() {
    capture_logs();
    let ca = ca("cluster ca");
    let a = Node::start(tls_config("tls-a@127.0.0.1", vec![], tls(&ca, &ca))).await.unwrap();
    let b = Node::start(tls_config("tls-b@127.0.0.1", vec![a.addr()], tls(&ca, &ca))).await.unwrap();
    let c = Node::start(tls_config("tls-c@127.0.0.1", vec![b.addr()], tls(&ca, &ca))).await.unwrap();
    eventually("three TLS nodes see each other", || async { all_see_alive(&[&a, &b, &c], 3).await }).await;
    // b and c had no other way in than their joins: push-pull over TLS.
    let accepted = a.metrics().await.unwrap().net.streams_accepted + b.metrics().await.unwrap().net.streams_accepted;
    assert!(accepted >= 2, "both joins went through push-pull streams");
    for n in [&a, &b, &c] {
        let net = n.metrics().await.unwrap().net;
        assert_eq!(net.streams_refused, 0, "no handshake failed between nodes of one CA");
    }

    // A connection closed before any ClientHello (a port probe) is counted,
    // but is no misconfigured peer: no warning.
    let before = a.metrics().await.unwrap().net.streams_refused;
    for _ in 0..3 {
        drop(TcpStream::connect(a.addr()).await.unwrap());
    }
    eventually("the probes are counted", || async { a.metrics().await.unwrap().net.streams_refused >= before + 3 })
        .await;
    assert_eq!(warnings_of("tls-a@127.0.0.1", "TLS handshake failed"), 0, "a probe is not worth a warning");

    // The listener speaks only TLS now: a plaintext client, even with a
    // perfectly valid frame, is cut off unanswered, with one warning for
    // a burst of them, and nothing it said is merged.
    let before = a.metrics().await.unwrap().net.streams_refused;
    for i in 0..5 {
        let answer = exchange(a.addr(), &plain_join_request(&format!("plain{i}@127.0.0.1"))).await;
        // At most a TLS alert record (content type 21), never a frame.
        assert!(answer.is_empty() || answer[0] == 0x15, "a plaintext request gets no answer: {answer:02x?}");
    }
    eventually("the plaintext streams are counted as refused", || async {
        a.metrics().await.unwrap().net.streams_refused >= before + 5
    })
    .await;
    assert_eq!(names(&a).await, sorted(&["tls-a@127.0.0.1", "tls-b@127.0.0.1", "tls-c@127.0.0.1"]));
    assert_eq!(warnings_of("tls-a@127.0.0.1", "TLS handshake failed"), 1, "one warning per interval, not five");
    for n in [a, b, c] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_of_another_ca_or_none_at_all_is_refused_and_nothing_is_merged() {
    capture_logs();
    let ca1 = ca("cluster ca");
    let ca2 = ca("rogue ca");
    let a = Node::start(tls_config("ca-a@127.0.0.1", vec![], tls(&ca1, &ca1))).await.unwrap();
    let b = Node::start(tls_config("ca-b@127.0.0.1", vec![a.addr()], tls(&ca1, &ca1))).await.unwrap();
    eventually("the cluster forms", || async { all_see_alive(&[&a, &b], 2).await }).await;
    let cluster = sorted(&["ca-a@127.0.0.1", "ca-b@127.0.0.1"]);
    let refused_before = a.metrics().await.unwrap().net.streams_refused;

    // Rogue 1: a certificate of another CA, trusting that CA (refuses a's
    // certificate as the client, a refuses it as the server).
    let rogue = Node::start(tls_config("rogue@127.0.0.1", vec![a.addr()], tls(&ca2, &ca2))).await.unwrap();
    // Rogue 2: a certificate of another CA but trusting the cluster's CA:
    // only a's check of the *client* certificate stands in its way.
    let sly = Node::start(tls_config("sly@127.0.0.1", vec![a.addr()], tls(&ca2, &ca1))).await.unwrap();
    eventually("both rogues' joins failed and a counted the refusals", || async {
        rogue.metrics().await.unwrap().net.push_pull_failed >= 1
            && sly.metrics().await.unwrap().net.push_pull_failed >= 1
            && a.metrics().await.unwrap().net.streams_refused >= refused_before + 2
    })
    .await;

    // Rogue 3: a TLS client that trusts the cluster CA but has no
    // certificate to show: a's handshake refuses it.
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates({
            let mut roots = rustls::RootCertStore::empty();
            use rustls::pki_types::pem::PemObject;
            roots.add(rustls::pki_types::CertificateDer::from_pem_slice(ca1.pem.as_bytes()).unwrap()).unwrap();
            roots
        })
        .with_no_client_auth();
    let before = a.metrics().await.unwrap().net.streams_refused;
    let tcp = TcpStream::connect(a.addr()).await.unwrap();
    let server_name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    // TLS 1.3 lets the client finish before the server has checked it; the
    // refusal shows when the client reads (or the handshake itself fails).
    if let Ok(mut s) = tokio_rustls::TlsConnector::from(Arc::new(client)).connect(server_name, tcp).await {
        let _ = s.write_all(&plain_join_request("anon@127.0.0.1")).await;
        let mut answer = Vec::new();
        let read = tokio::time::timeout(DEADLINE, s.read_to_end(&mut answer)).await.expect("a closes the stream");
        assert!(read.is_err() || answer.is_empty(), "no answer without a client certificate");
    }
    eventually("the anonymous client is counted as refused", || async {
        a.metrics().await.unwrap().net.streams_refused > before
    })
    .await;

    assert_eq!(names(&a).await, cluster, "nothing of the rogues merged on a");
    assert_eq!(names(&b).await, cluster, "nor on b");
    assert_eq!(names(&rogue).await, vec!["rogue@127.0.0.1"], "and the rogue learned nothing");
    assert_eq!(names(&sly).await, vec!["sly@127.0.0.1"]);
    assert!(warnings_of("ca-a@127.0.0.1", "TLS handshake failed") >= 1, "a said why it refused");
    assert!(warnings_of("rogue@127.0.0.1", "TLS handshake failed") >= 1, "the rogue was told too");
    for n in [a, b, rogue, sly] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_and_tls_nodes_refuse_each_other() {
    capture_logs();
    let ca = ca("cluster ca");
    // A plaintext node joining a TLS node.
    let t = Node::start(tls_config("mix-t@127.0.0.1", vec![], tls(&ca, &ca))).await.unwrap();
    let p = Node::start(config("mix-p@127.0.0.1", vec![t.addr()])).await.unwrap();
    // A TLS node joining a plaintext node.
    let q = Node::start(config("mix-q@127.0.0.1", vec![])).await.unwrap();
    let u = Node::start(tls_config("mix-u@127.0.0.1", vec![q.addr()], tls(&ca, &ca))).await.unwrap();
    eventually("both mismatched joins fail on both sides", || async {
        p.metrics().await.unwrap().net.push_pull_failed >= 1
            && t.metrics().await.unwrap().net.streams_refused >= 1
            && u.metrics().await.unwrap().net.push_pull_failed >= 1
            && q.metrics().await.unwrap().net.streams_refused >= 1
    })
    .await;
    for n in [&t, &p, &q, &u] {
        assert_eq!(n.members().await.unwrap().len(), 1, "{:?} merged nothing", n.id());
    }
    eventually("each refusing side said why", || async {
        warnings_of("mix-t@127.0.0.1", "TLS handshake failed") >= 1
            && warnings_of("mix-q@127.0.0.1", "the peer speaks TLS but this node has no [tls]") >= 1
    })
    .await;
    for n in [t, p, q, u] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_peer_ip_requires_the_dialed_ip_in_the_certificate() {
    capture_logs();
    let ca = ca("cluster ca");
    let strict = |sans: &[&str]| {
        let (cert, key) = leaf(&ca, sans);
        let mut t = TlsConfig::from_pem(cert, key, ca.pem.clone());
        t.verify_peer_ip = true;
        t
    };
    // The server's certificate names 127.0.0.1: a strict client accepts it.
    let a = Node::start(tls_config("ip-a@127.0.0.1", vec![], strict(&["127.0.0.1"]))).await.unwrap();
    let b = Node::start(tls_config("ip-b@127.0.0.1", vec![a.addr()], strict(&["127.0.0.1"]))).await.unwrap();
    eventually("certificates with the right IP SAN sync", || async { all_see_alive(&[&a, &b], 2).await }).await;
    // A server whose certificate names only `localhost`: a strict client
    // dialing 127.0.0.1 refuses it, though the CA is the same.
    let c = Node::start(tls_config("ip-c@127.0.0.1", vec![], strict(&["localhost"]))).await.unwrap();
    let d = Node::start(tls_config("ip-d@127.0.0.1", vec![c.addr()], strict(&["127.0.0.1"]))).await.unwrap();
    eventually("the name mismatch fails the join", || async { d.metrics().await.unwrap().net.push_pull_failed >= 1 })
        .await;
    assert_eq!(names(&d).await, vec!["ip-d@127.0.0.1"]);
    assert_eq!(names(&c).await, vec!["ip-c@127.0.0.1"]);
    for n in [a, b, c, d] {
        n.shutdown().await;
    }
}

async fn start_error(tls: TlsConfig) -> TlsError {
    match Node::start(tls_config("bad@127.0.0.1", vec![], tls)).await {
        Err(StartError::Tls(e)) => e,
        Err(other) => panic!("expected a TLS start error, got {other}"),
        Ok(node) => {
            node.shutdown().await;
            panic!("a node started with bad TLS settings")
        }
    }
}

#[tokio::test]
async fn bad_tls_settings_are_a_typed_start_error() {
    let ca = ca("cluster ca");
    let (cert, key) = leaf(&ca, &["localhost"]);
    let (_, other_key) = leaf(&ca, &["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let (cert_file, key_file, ca_file) = (path("node.crt", &cert), path("node.key", &key), path("ca.crt", &ca.pem));

    // From files: it starts, and really serves TLS.
    let good = TlsConfig::from_files(&cert_file, &key_file, &ca_file);
    good.load_check().unwrap();
    let node = Node::start(tls_config("files@127.0.0.1", vec![], good.clone())).await.unwrap();
    let peer = Node::start(tls_config("files2@127.0.0.1", vec![node.addr()], good)).await.unwrap();
    eventually("nodes configured from files sync", || async { all_see_alive(&[&node, &peer], 2).await }).await;
    node.shutdown().await;
    peer.shutdown().await;

    let missing = dir.path().join("nope.crt");
    let e = start_error(TlsConfig::from_files(&missing, &key_file, &ca_file)).await;
    assert!(matches!(&e, TlsError::Read { what: "cert", path, .. } if path == &missing), "{e}");
    assert!(e.to_string().contains("nope.crt"), "the error names the file: {e}");

    let e = start_error(TlsConfig::from_files(&cert_file, &key_file, dir.path().join("no-ca.pem"))).await;
    assert_eq!(e.setting(), "ca", "{e}");

    let e = start_error(TlsConfig::from_pem("not a certificate", key.clone(), ca.pem.clone())).await;
    assert!(matches!(e, TlsError::Pem { what: "cert", .. }), "{e}");

    let e = start_error(TlsConfig::from_pem(cert.clone(), "-----BEGIN NOTHING-----", ca.pem.clone())).await;
    assert!(matches!(e, TlsError::Pem { what: "key", .. }), "{e}");

    let e = start_error(TlsConfig::from_pem(cert.clone(), other_key, ca.pem.clone())).await;
    assert!(matches!(e, TlsError::KeyMismatch), "{e}");

    let e = start_error(TlsConfig::from_pem(cert.clone(), key.clone(), "")).await;
    assert!(matches!(e, TlsError::Pem { what: "ca", .. }), "{e}");

    // A corrupted certificate body (valid armour, garbage DER).
    let mangled = "-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n";
    let e = start_error(TlsConfig::from_pem(cert, key, mangled)).await;
    assert_eq!(e.setting(), "ca", "{e}");
}
