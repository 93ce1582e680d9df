//! Kubernetes strategy. There is no cluster here, so a local HTTP server (tokio TcpListener on
//! 127.0.0.1) serves the API's real JSON shapes for core/v1 Endpoints and discovery.k8s.io/v1
//! EndpointSliceList (as in the Kubernetes API reference), records each request, and the tests check
//! the path (namespace, service, label selector), the bearer token, and the names built for each
//! `address_type`/`suffix`. The `k8s-dns` mode runs against the in-process DNS server.

use std::sync::Arc;

use gossamer_discovery::{build, AddressType, Discovery, DiscoveryConfig, K8sApi, K8sMode, Peer, StrategyKind};
use gossamer_testkit::http::FakeApi;
use tokio_rustls::TlsAcceptor;

/// `GET /api/v1/namespaces/prod/endpoints/gossamer` (shape from the Endpoints v1 core reference).
const ENDPOINTS: &str = r#"{
  "kind": "Endpoints",
  "apiVersion": "v1",
  "metadata": {
    "name": "gossamer",
    "namespace": "prod",
    "uid": "7b0d5f0e-6f3a-4c47-9b8e-2f1f7d0b8c11",
    "resourceVersion": "48213",
    "creationTimestamp": "2026-01-12T09:14:03Z",
    "labels": { "app": "gossamer" }
  },
  "subsets": [
    {
      "addresses": [
        { "ip": "10.244.1.5", "hostname": "gossamer-0", "nodeName": "worker-1",
          "targetRef": { "kind": "Pod", "namespace": "prod", "name": "gossamer-0", "uid": "a1", "resourceVersion": "48200" } },
        { "ip": "10.244.2.7", "hostname": "gossamer-1", "nodeName": "worker-2",
          "targetRef": { "kind": "Pod", "namespace": "prod", "name": "gossamer-1", "uid": "a2", "resourceVersion": "48201" } }
      ],
      "notReadyAddresses": [
        { "ip": "10.244.3.9", "hostname": "gossamer-2", "nodeName": "worker-3",
          "targetRef": { "kind": "Pod", "namespace": "prod", "name": "gossamer-2", "uid": "a3", "resourceVersion": "48202" } }
      ],
      "ports": [
        { "name": "http", "port": 8080, "protocol": "TCP" },
        { "name": "gossip", "port": 7946, "protocol": "UDP" }
      ]
    }
  ]
}"#;

/// `GET /apis/discovery.k8s.io/v1/namespaces/prod/endpointslices?labelSelector=...`
/// (shape from the EndpointSlice v1 discovery.k8s.io reference).
const SLICES: &str = r#"{
  "kind": "EndpointSliceList",
  "apiVersion": "discovery.k8s.io/v1",
  "metadata": { "resourceVersion": "48300" },
  "items": [
    {
      "metadata": {
        "name": "gossamer-x7k2p",
        "generateName": "gossamer-",
        "namespace": "prod",
        "labels": {
          "kubernetes.io/service-name": "gossamer",
          "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"
        },
        "ownerReferences": [ { "apiVersion": "v1", "kind": "Service", "name": "gossamer", "uid": "s1", "controller": true, "blockOwnerDeletion": true } ]
      },
      "addressType": "IPv4",
      "endpoints": [
        { "addresses": ["10.244.1.5"], "conditions": { "ready": true, "serving": true, "terminating": false },
          "hostname": "gossamer-0", "targetRef": { "kind": "Pod", "namespace": "prod", "name": "gossamer-0", "uid": "a1" },
          "nodeName": "worker-1", "zone": "zone-a" },
        { "addresses": ["10.244.2.7"], "conditions": { "ready": true, "serving": true, "terminating": false },
          "hostname": "gossamer-1", "targetRef": { "kind": "Pod", "namespace": "prod", "name": "gossamer-1", "uid": "a2" },
          "nodeName": "worker-2", "zone": "zone-b" },
        { "addresses": ["10.244.3.9"], "conditions": { "ready": false, "serving": false, "terminating": true },
          "hostname": "gossamer-2", "targetRef": { "kind": "Pod", "namespace": "prod", "name": "gossamer-2", "uid": "a3" },
          "nodeName": "worker-3", "zone": "zone-c" }
      ],
      "ports": [ { "name": "gossip", "protocol": "UDP", "port": 7946 } ]
    },
    {
      "metadata": { "name": "gossamer-v6abc", "namespace": "prod", "labels": { "kubernetes.io/service-name": "gossamer" } },
      "addressType": "IPv6",
      "endpoints": [
        { "addresses": ["fd00:10:244::12"], "conditions": { "ready": true }, "hostname": "gossamer-3" }
      ],
      "ports": [ { "name": "gossip", "protocol": "UDP", "port": 7946 } ]
    }
  ]
}"#;

fn k8s_config(api: &FakeApi, token_file: &std::path::Path) -> DiscoveryConfig {
    let mut c = DiscoveryConfig { strategy: vec![StrategyKind::K8s], ..Default::default() };
    c.k8s.apiserver = Some(api.url.clone());
    c.k8s.service_name = "gossamer".into();
    c.k8s.namespace = Some("prod".into());
    c.k8s.token_file = Some(token_file.to_path_buf());
    c
}

fn token_file(token: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), format!("{token}\n")).unwrap();
    f
}

fn one(cfg: &DiscoveryConfig) -> Box<dyn Discovery> {
    let mut v = build(cfg).unwrap();
    assert_eq!(v.len(), 1);
    v.pop().unwrap()
}

fn peer(name: &str, addr: &str) -> Peer {
    Peer::named(name, addr.parse().unwrap())
}

const SLICE_TARGET: &str =
    "/apis/discovery.k8s.io/v1/namespaces/prod/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dgossamer";

#[tokio::test]
async fn endpointslices_ready_only_with_token_and_namespace() {
    let api = FakeApi::start().await;
    api.route(SLICE_TARGET, 200, SLICES);
    let tok = token_file("tok-1");
    let d = one(&k8s_config(&api, tok.path()));
    assert_eq!(d.name(), "k8s");

    let peers = d.discover().await.unwrap();
    assert_eq!(
        peers,
        vec![
            peer("gossamer@10.244.1.5", "10.244.1.5:7946"),
            peer("gossamer@10.244.2.7", "10.244.2.7:7946"),
            peer("gossamer@fd00:10:244::12", "[fd00:10:244::12]:7946"),
        ]
    );
    let seen = api.last();
    assert_eq!(seen.target, SLICE_TARGET);
    assert_eq!(seen.headers.get("authorization").map(String::as_str), Some("Bearer tok-1"));

    // A rotated token is picked up on the next poll.
    std::fs::write(tok.path(), "tok-2").unwrap();
    d.discover().await.unwrap();
    assert_eq!(api.last().headers.get("authorization").map(String::as_str), Some("Bearer tok-2"));
}

#[tokio::test]
async fn endpoints_with_dns_and_hostname_address_types() {
    let api = FakeApi::start().await;
    api.route("/api/v1/namespaces/prod/endpoints/gossamer", 200, ENDPOINTS);
    let tok = token_file("secret");
    let mut cfg = k8s_config(&api, tok.path());
    cfg.k8s.api = K8sApi::Endpoints;
    cfg.k8s.port_name = Some("gossip".into());
    cfg.k8s.node_basename = "gsm".into();

    // ip
    let peers = one(&cfg).discover().await.unwrap();
    assert_eq!(peers, vec![peer("gsm@10.244.1.5", "10.244.1.5:7946"), peer("gsm@10.244.2.7", "10.244.2.7:7946")]);
    assert_eq!(api.last().headers.get("authorization").map(String::as_str), Some("Bearer secret"));

    // dns, default suffix pod.cluster.local (EMQX: 10-244-1-5.<ns>.pod.cluster.local)
    cfg.k8s.address_type = AddressType::Dns;
    let names: Vec<_> = one(&cfg).discover().await.unwrap().into_iter().map(|p| p.name.unwrap()).collect();
    assert_eq!(names, ["gsm@10-244-1-5.prod.pod.cluster.local", "gsm@10-244-2-7.prod.pod.cluster.local"]);

    // hostname, default suffix svc.cluster.local (EMQX: <hostname>.<service>.<ns>.svc.cluster.local)
    cfg.k8s.address_type = AddressType::Hostname;
    let names: Vec<_> = one(&cfg).discover().await.unwrap().into_iter().map(|p| p.name.unwrap()).collect();
    assert_eq!(
        names,
        ["gsm@gossamer-0.gossamer.prod.svc.cluster.local", "gsm@gossamer-1.gossamer.prod.svc.cluster.local"]
    );

    // explicit suffix
    cfg.k8s.suffix = Some("svc.corp.internal".into());
    let names: Vec<_> = one(&cfg).discover().await.unwrap().into_iter().map(|p| p.name.unwrap()).collect();
    assert_eq!(names[0], "gsm@gossamer-0.gossamer.prod.svc.corp.internal");

    // a port name the service lacks: the subset is skipped, not guessed
    cfg.k8s.port_name = Some("nope".into());
    assert_eq!(one(&cfg).discover().await.unwrap(), vec![]);
}

#[tokio::test]
async fn endpoints_by_label_selector_lists_the_namespace() {
    let api = FakeApi::start().await;
    let list = format!(
        r#"{{"kind":"EndpointsList","apiVersion":"v1","metadata":{{"resourceVersion":"1"}},"items":[{ENDPOINTS}]}}"#
    );
    api.route("/api/v1/namespaces/prod/endpoints?labelSelector=app%3Dgossamer", 200, &list);
    let tok = token_file("t");
    let mut cfg = k8s_config(&api, tok.path());
    cfg.k8s.api = K8sApi::Endpoints;
    cfg.k8s.label_selector = Some("app=gossamer".into());
    cfg.k8s.port = 7000;
    let peers = one(&cfg).discover().await.unwrap();
    assert_eq!(
        peers,
        vec![peer("gossamer@10.244.1.5", "10.244.1.5:7000"), peer("gossamer@10.244.2.7", "10.244.2.7:7000")]
    );

    // Extra selector is ANDed with the service-name label for EndpointSlices.
    cfg.k8s.api = K8sApi::EndpointSlices;
    let _ = one(&cfg).discover().await;
    assert_eq!(
        api.last().target,
        "/apis/discovery.k8s.io/v1/namespaces/prod/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dgossamer%2Capp%3Dgossamer"
    );
}

#[tokio::test]
async fn api_errors_are_clear_and_never_panic() {
    let api = FakeApi::start().await;
    let tok = token_file("t");
    let cfg = k8s_config(&api, tok.path());

    // RBAC refusal: the Status message reaches the error.
    api.route(
        SLICE_TARGET,
        403,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"endpointslices.discovery.k8s.io is forbidden: User \"system:serviceaccount:prod:default\" cannot list resource \"endpointslices\"","reason":"Forbidden","details":{"group":"discovery.k8s.io","kind":"endpointslices"},"code":403}"#,
    );
    let e = one(&cfg).discover().await.unwrap_err().to_string();
    assert!(e.contains("403") && e.contains("cannot list resource") && e.contains(&api.url), "{e}");

    // Malformed and wrongly-shaped bodies.
    for body in ["{not json", r#"{"items": 5}"#, r#"{"items":[{"endpoints":[{"addresses":[7]}]}]}"#] {
        api.route(SLICE_TARGET, 200, body);
        let e = one(&cfg).discover().await.unwrap_err().to_string();
        assert!(e.contains("unexpected JSON"), "{body}: {e}");
    }
    // Garbage IPs are skipped, not fatal.
    api.route(SLICE_TARGET, 200, r#"{"items":[{"endpoints":[{"addresses":["not-an-ip","10.0.0.1"]}]}]}"#);
    assert_eq!(one(&cfg).discover().await.unwrap(), vec![peer("gossamer@10.0.0.1", "10.0.0.1:7946")]);

    // An explicitly configured token file that is missing is an error naming it.
    let mut cfg2 = cfg.clone();
    cfg2.k8s.token_file = Some("/nonexistent/token".into());
    let e = one(&cfg2).discover().await.unwrap_err().to_string();
    assert!(e.contains("/nonexistent/token"), "{e}");

    // Nothing listening.
    drop(api);
    let mut cfg3 = cfg.clone();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    cfg3.k8s.apiserver = Some(format!("http://127.0.0.1:{port}"));
    let e = one(&cfg3).discover().await.unwrap_err().to_string();
    assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");
}

#[tokio::test]
async fn k8s_dns_mode_resolves_the_headless_service() {
    let dns = gossamer_testkit::dns::TestDns::start().await;
    dns.set_a("gossamer.prod.svc.gossamer.test.", &["10.244.1.5", "10.244.2.7"]).await;
    let mut cfg = DiscoveryConfig { strategy: vec![StrategyKind::K8s], ..Default::default() };
    cfg.k8s.mode = K8sMode::Dns;
    cfg.k8s.service_name = "gossamer".into();
    cfg.k8s.namespace = Some("prod".into());
    cfg.k8s.cluster_domain = "gossamer.test".into();
    cfg.k8s.nameserver = Some(dns.addr.to_string());
    cfg.k8s.address_type = AddressType::Dns;
    let d = one(&cfg);
    assert_eq!(d.name(), "k8s-dns");
    let peers = d.discover().await.unwrap();
    assert_eq!(
        peers,
        vec![
            peer("gossamer@10-244-1-5.prod.pod.cluster.local", "10.244.1.5:7946"),
            peer("gossamer@10-244-2-7.prod.pod.cluster.local", "10.244.2.7:7946")
        ]
    );
    dns.set_a("gossamer.prod.svc.gossamer.test.", &["10.244.2.7"]).await;
    assert_eq!(d.discover().await.unwrap().len(), 1);

    // hostname naming cannot work from A records: rejected at build, naming the key.
    cfg.k8s.address_type = AddressType::Hostname;
    let e = build(&cfg).err().expect("hostname + dns mode must be rejected").to_string();
    assert!(e.contains("discovery.k8s.address_type"), "{e}");
}

/// A private CA and a server certificate for 127.0.0.1 signed by it, as a cluster's API server has.
fn test_pki() -> (String, TlsAcceptor) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let srv_key = KeyPair::generate().unwrap();
    let srv_cert = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&srv_key, &issuer).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(srv_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![srv_cert.der().clone()], key)
        .unwrap();
    (ca_cert.pem(), TlsAcceptor::from(Arc::new(config)))
}

#[tokio::test]
async fn https_api_server_is_trusted_through_the_configured_ca_only() {
    let (ca_pem, acceptor) = test_pki();
    let api = FakeApi::start_with(Some(acceptor)).await;
    api.route(SLICE_TARGET, 200, SLICES);
    let tok = token_file("tls-token");
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), &ca_pem).unwrap();

    let mut cfg = k8s_config(&api, tok.path());
    cfg.k8s.ca_file = Some(ca.path().to_path_buf());
    let peers = one(&cfg).discover().await.unwrap();
    assert_eq!(peers.len(), 3);
    assert_eq!(api.last().headers.get("authorization").map(String::as_str), Some("Bearer tls-token"));

    // Without the cluster CA the server is not trusted: a clear error naming it, no request served.
    let served = api.seen.lock().unwrap().len();
    cfg.k8s.ca_file = None;
    let e = one(&cfg).discover().await.unwrap_err().to_string();
    assert!(e.contains(&api.url), "{e}");
    assert_eq!(api.seen.lock().unwrap().len(), served);

    // A CA file that is not PEM is a build-time error naming the key.
    std::fs::write(ca.path(), "not a certificate").unwrap();
    cfg.k8s.ca_file = Some(ca.path().to_path_buf());
    let e = build(&cfg).err().expect("bad CA must be rejected").to_string();
    assert!(e.contains("discovery.k8s.ca_file"), "{e}");
}
