//! What mutual TLS adds to one push-pull exchange, measured on loopback:
//! a client does connect + (TLS handshake with a client certificate) + one
//! join request + the full-state response against a real node, N times, for
//! a plaintext node and a TLS node.
//!
//! `cargo run --release -p gossamer-net --example tls_cost [N]`

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use gossamer_net::stream::{read_frame, write_frame};
use gossamer_net::{Node, NodeConfig, Preset, TlsConfig};
use gossamer_wire::{ClusterLabel, FrameCodec, MemberState, MemberStatus, Message, Metadata, NodeId, Packet, PushPull};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(10);

fn request(codec: &FrameCodec) -> Vec<u8> {
    let me = MemberState {
        node: NodeId::new("bench@127.0.0.1".parse().unwrap(), "127.0.0.1:9".parse().unwrap()),
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
    let mut out = BytesMut::new();
    codec.encode(&packet, &mut out).unwrap();
    out.to_vec()
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, req: &[u8], codec: &FrameCodec) {
    write_frame(&mut s, req, TIMEOUT).await.unwrap();
    read_frame(&mut s, codec, TIMEOUT).await.unwrap();
}

fn report(what: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    let pct = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize];
    println!("{what:>10}: mean {mean:>9.1?}  p50 {:>9.1?}  p99 {:>9.1?}  (n={})", pct(0.5), pct(0.99), samples.len());
    pct(0.5)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(300);
    // A CA, the node's certificate and the client's.
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::from_params(&ca, &ca_key);
    let leaf = || {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (node_cert, node_key) = leaf();
    let (client_cert, client_key) = leaf();

    let config = |tls: Option<TlsConfig>| {
        let mut c = NodeConfig::new("server@127.0.0.1", "127.0.0.1:0".parse().unwrap(), Preset::Local).unwrap();
        c.cluster = "bench".into();
        c.tls = tls;
        c
    };
    let plain = Node::start(config(None)).await.unwrap();
    let tls = Node::start(config(Some(TlsConfig::from_pem(node_cert, node_key, ca_pem.clone())))).await.unwrap();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap()).unwrap();
    let mut client = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![CertificateDer::from_pem_slice(client_cert.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(client_key.as_bytes()).unwrap(),
        )
        .unwrap();
    client.alpn_protocols = vec![b"gossamer-pushpull/1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));

    let codec = FrameCodec::new(ClusterLabel::new("bench").unwrap())
        .with_max_frame_len(gossamer_wire::DEFAULT_MAX_STREAM_FRAME)
        .unwrap();
    let req = request(&codec);
    let run_plain = |to: SocketAddr| {
        let (req, codec) = (req.clone(), codec.clone());
        async move {
            let t = Instant::now();
            exchange(TcpStream::connect(to).await.unwrap(), &req, &codec).await;
            t.elapsed()
        }
    };
    let run_tls = |to: SocketAddr| {
        let (req, codec, connector) = (req.clone(), codec.clone(), connector.clone());
        async move {
            let t = Instant::now();
            let tcp = TcpStream::connect(to).await.unwrap();
            let s = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
            exchange(s, &req, &codec).await;
            t.elapsed()
        }
    };
    for _ in 0..20 {
        run_plain(plain.addr()).await;
        run_tls(tls.addr()).await;
    }
    let (mut p, mut t) = (Vec::with_capacity(n), Vec::with_capacity(n));
    // Interleaved, so both see the same machine load.
    for _ in 0..n {
        p.push(run_plain(plain.addr()).await);
        t.push(run_tls(tls.addr()).await);
    }
    println!("one push-pull exchange (connect + request + full-state response) on 127.0.0.1:");
    let p50_plain = report("plain TCP", p);
    let p50_tls = report("mutual TLS", t);
    println!(
        "TLS adds {:.1?} at the median (TLS 1.3, ECDSA P-256 certificates, ring)",
        p50_tls.saturating_sub(p50_plain)
    );
    plain.shutdown().await;
    tls.shutdown().await;
}
