//! Rancher strategy. There is no Rancher here, so the shared local HTTP server (`gossamer_testkit::http`)
//! serves the Rancher 1.x metadata service's JSON for `GET /<version>/self/service` (shape from Rancher's
//! metadata service documentation, API version 2015-12-19: a `service` object whose `containers` are
//! container objects). The tests check the request path and `Accept` header, the names built, that only
//! running containers with a primary IP are used, and the errors for bad answers.

use gossamer_discovery::{apply_env_from, build, Discovery, DiscoveryConfig, Peer, StrategyKind};
use gossamer_testkit::http::FakeApi;

/// `GET /2015-12-19/self/service` from inside a container of service `gossamer` in stack `prod`.
const SERVICE: &str = r#"{
  "containers": [
    { "create_index": 1, "dns": ["169.254.169.250"], "dns_search": ["prod.rancher.internal", "gossamer.prod.rancher.internal", "rancher.internal"],
      "external_id": "3b1f0c...", "health_check_hosts": [], "health_state": "healthy", "host_uuid": "6a0e8f9c-1", "hostname": "gossamer-1",
      "ips": ["10.42.17.3"], "labels": { "io.rancher.stack.name": "prod", "io.rancher.stack_service.name": "prod/gossamer" },
      "memory_reservation": 0, "milli_cpu_reservation": 0, "name": "prod-gossamer-1", "network_from_container_uuid": null,
      "network_uuid": "net-1", "ports": ["7946:7946/udp"], "primary_ip": "10.42.17.3", "primary_mac_address": "02:33:bb:c9:18:a1",
      "service_index": "1", "service_name": "gossamer", "service_uuid": "svc-1", "stack_name": "prod", "stack_uuid": "stk-1",
      "start_count": 1, "state": "running", "system": false, "uuid": "c-1" },
    { "create_index": 2, "health_state": "healthy", "host_uuid": "6a0e8f9c-2", "hostname": "gossamer-2", "ips": ["10.42.91.20"],
      "labels": {}, "name": "prod-gossamer-2", "ports": [], "primary_ip": "10.42.91.20", "service_name": "gossamer",
      "stack_name": "prod", "start_count": 3, "state": "running", "system": false, "uuid": "c-2" },
    { "create_index": 3, "health_state": null, "host_uuid": "6a0e8f9c-3", "hostname": "gossamer-3", "ips": ["10.42.5.8"],
      "labels": {}, "name": "prod-gossamer-3", "ports": [], "primary_ip": "10.42.5.8", "service_name": "gossamer",
      "stack_name": "prod", "start_count": 1, "state": "stopped", "system": false, "uuid": "c-3" },
    { "create_index": 4, "health_state": null, "hostname": "gossamer-4", "ips": [], "labels": {}, "name": "prod-gossamer-4",
      "primary_ip": "", "service_name": "gossamer", "stack_name": "prod", "state": "starting", "uuid": "c-4" },
    { "create_index": 5, "hostname": "gossamer-5", "ips": [], "labels": {}, "name": "prod-gossamer-5",
      "primary_ip": null, "service_name": "gossamer", "stack_name": "prod", "state": "running", "uuid": "c-5" }
  ],
  "create_index": 1, "external_ips": null, "expose": null, "fqdn": null, "health_check": null, "hostname": null,
  "kind": "service", "labels": { "io.rancher.scheduler.global": "true" }, "links": {}, "metadata": {},
  "name": "gossamer", "ports": ["7946:7946/udp"], "primary_service_name": "gossamer", "scale": 5, "sidekicks": [],
  "stack_name": "prod", "stack_uuid": "stk-1", "state": "active", "system": false, "token": "t0k", "uuid": "svc-1",
  "vip": null
}"#;

fn cfg(api: &FakeApi, suffix: &str) -> DiscoveryConfig {
    let mut c = DiscoveryConfig { strategy: vec![StrategyKind::Rancher], ..Default::default() };
    c.rancher.metadata_url = format!("{}{suffix}", api.url);
    c
}

fn one(cfg: &DiscoveryConfig) -> Box<dyn Discovery> {
    let mut v = build(cfg).unwrap();
    assert_eq!(v.len(), 1);
    v.pop().unwrap()
}

fn peer(name: &str, addr: &str) -> Peer {
    Peer::named(name, addr.parse().unwrap())
}

#[tokio::test]
async fn running_containers_become_peers_with_the_configured_port() {
    let api = FakeApi::start().await;
    api.route("/2015-12-19/self/service", 200, SERVICE);
    let mut c = cfg(&api, "/2015-12-19");
    c.rancher.port = 7000;
    let d = one(&c);
    assert_eq!(d.name(), "rancher");
    assert_eq!(
        d.discover().await.unwrap(),
        vec![peer("gossamer@10.42.17.3", "10.42.17.3:7000"), peer("gossamer@10.42.91.20", "10.42.91.20:7000")]
    );
    let seen = api.last();
    assert_eq!(seen.target, "/2015-12-19/self/service");
    assert_eq!(seen.headers.get("accept").map(String::as_str), Some("application/json"));

    // Basename from the environment; a bare host URL asks the `latest` version.
    api.route("/latest/self/service", 200, SERVICE);
    let mut c = cfg(&api, "/");
    apply_env_from(&mut c, [("GOSSAMER_RANCHER_NODE_BASENAME", "gsm"), ("GOSSAMER_RANCHER_PORT", "7946")]).unwrap();
    let names: Vec<String> = one(&c).discover().await.unwrap().into_iter().map(|p| p.name.unwrap()).collect();
    assert_eq!(names, ["gsm@10.42.17.3", "gsm@10.42.91.20"]);
    assert_eq!(api.last().target, "/latest/self/service");

    // The service scales down: the next poll sees it.
    api.route(
        "/latest/self/service",
        200,
        r#"{"name":"gossamer","containers":[{"name":"a","primary_ip":"10.42.91.20","state":"running"}]}"#,
    );
    assert_eq!(one(&c).discover().await.unwrap(), vec![peer("gsm@10.42.91.20", "10.42.91.20:7946")]);
}

#[tokio::test]
async fn bad_answers_are_errors_or_skipped_never_panics() {
    let api = FakeApi::start().await;
    let c = cfg(&api, "/2015-12-19");
    let d = one(&c);
    const T: &str = "/2015-12-19/self/service";

    // Rancher metadata answers unknown paths with 404 and a text body.
    api.route(T, 404, "Not found");
    let e = d.discover().await.unwrap_err().to_string();
    assert!(e.contains("404") && e.contains(&api.url) && e.contains("/self/service"), "{e}");

    for body in ["{not json", r#"{"containers": 5}"#, "null"] {
        api.route(T, 200, body);
        let e = d.discover().await.unwrap_err().to_string();
        assert!(e.contains("unexpected JSON"), "{body}: {e}");
    }

    // Old API versions list container names, not objects; bad IPs are skipped; no containers is valid.
    api.route(
        T,
        200,
        r#"{"containers":["prod-gossamer-1",{"primary_ip":"not-an-ip","state":"running"},{"primary_ip":"fd00::7","state":"running"}]}"#,
    );
    assert_eq!(d.discover().await.unwrap(), vec![peer("gossamer@fd00::7", "[fd00::7]:7946")]);
    api.route(T, 200, r#"{"name":"gossamer"}"#);
    assert_eq!(d.discover().await.unwrap(), vec![]);

    // Nothing listening: an error naming the URL.
    let url = api.url.clone();
    drop(api);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut c2 = c.clone();
    c2.rancher.metadata_url = format!("http://127.0.0.1:{port}/2015-12-19");
    let e = one(&c2).discover().await.unwrap_err().to_string();
    assert!(e.contains(&format!("127.0.0.1:{port}")), "{e} (was {url})");
}

#[test]
fn config_is_validated_naming_the_key() {
    let mut c = DiscoveryConfig::from_toml(
        r#"
        strategy = "rancher"
        [rancher]
        metadata_url = "rancher-metadata/2015-12-19"
        "#,
    )
    .unwrap();
    let e = build(&c).err().expect("scheme-less URL must be rejected").to_string();
    assert!(e.contains("discovery.rancher.metadata_url"), "{e}");
    c.rancher = Default::default();
    assert_eq!(c.rancher.metadata_url, "http://rancher-metadata/2015-12-19");
    c.rancher.port = 0;
    assert!(build(&c).err().unwrap().to_string().contains("discovery.rancher.port"));
    assert!(DiscoveryConfig::from_toml("[rancher]\nmetadata_uri = \"http://x\"").is_err());
    let e = apply_env_from(&mut c, [("GOSSAMER_RANCHER_PORT", "gossip")]).unwrap_err().to_string();
    assert!(e.contains("GOSSAMER_RANCHER_PORT"), "{e}");
}
