//! Configuration: TOML parsing (including the shipped deploy/ examples), validation errors that name the
//! key, and GOSSAMER_* environment overrides (passed as a map, never via the process environment).

use std::collections::HashMap;
use std::path::PathBuf;

use gossamer_discovery::{
    apply_env_from, build, AddressType, ConfigError, DiscoveryConfig, DnsRecordType, K8sApi, K8sMode, StrategyKind,
};

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn err_text(r: Result<(), ConfigError>) -> String {
    r.expect_err("expected a config error").to_string()
}

fn repo_file(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The `[discovery]` table of a whole node.toml.
fn discovery_table(node_toml: &str) -> DiscoveryConfig {
    let table: toml::Table = toml::from_str(node_toml).unwrap();
    let d = table.get("discovery").expect("node.toml has a [discovery] table").clone();
    d.try_into().unwrap_or_else(|e| panic!("[discovery] does not match DiscoveryConfig: {e}"))
}

#[test]
fn defaults_are_manual_and_documented_values() {
    let c = DiscoveryConfig::default();
    assert_eq!(c.strategy, vec![StrategyKind::Manual]);
    assert_eq!(c.dns.poll_interval_ms, 5000);
    assert_eq!(c.dns.node_basename, "gossamer");
    assert_eq!(c.etcd.node_ttl_ms, 60_000);
    assert_eq!(c.mcast.group.to_string(), "239.192.0.1");
    assert_eq!(c.mcast.ttl, 1);
    assert_eq!(DiscoveryConfig::from_toml("").unwrap(), c);
    let built = build(&c).unwrap();
    assert_eq!(built.iter().map(|d| d.name()).collect::<Vec<_>>(), ["manual"]);
}

#[test]
fn systemd_example_parses_and_builds() {
    let c = discovery_table(&repo_file("deploy/systemd/node.toml"));
    assert_eq!(c.strategy, vec![StrategyKind::Static, StrategyKind::Hosts]);
    assert_eq!(c.static_.seeds.len(), 3);
    assert_eq!(c.etcd.server.len(), 2);
    assert_eq!(c.dns.record_type, DnsRecordType::A);
    assert_eq!((c.mcast.port, c.mcast.loopback, c.mcast.ttl), (7947, true, 1));
    let names: Vec<String> = build(&c).unwrap().iter().map(|d| d.name().to_string()).collect();
    assert_eq!(names, ["static", "hosts"]);
    // Every strategy table in the example is valid on its own too.
    let mut all = c.clone();
    all.strategy = vec![StrategyKind::Mcast, StrategyKind::Dns, StrategyKind::Etcd];
    all.validate().unwrap();
}

#[test]
fn k8s_configmap_example_parses() {
    let yaml = repo_file("deploy/k8s/configmap.yaml");
    // The node.toml block is everything indented under `node.toml: |`.
    let body: String = yaml
        .split("node.toml: |\n")
        .nth(1)
        .expect("configmap has node.toml")
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let mut c = discovery_table(&body);
    assert_eq!(c.strategy, vec![StrategyKind::K8s]);
    assert_eq!(c.k8s.mode, K8sMode::Api);
    assert_eq!(c.k8s.api, K8sApi::EndpointSlices);
    assert_eq!(c.k8s.service_name, "gossamer-headless");
    assert_eq!(c.k8s.address_type, AddressType::Ip);
    // In a pod the API server comes from the service env vars.
    apply_env_from(&mut c, env(&[("KUBERNETES_SERVICE_HOST", "10.96.0.1"), ("KUBERNETES_SERVICE_PORT", "443")]))
        .unwrap();
    assert_eq!(c.k8s.apiserver.as_deref(), Some("https://10.96.0.1:443"));
    c.validate().unwrap();
}

#[test]
fn unknown_keys_and_bad_values_name_the_key() {
    let e = DiscoveryConfig::from_toml("strategy = \"dns\"\n[dns]\nquery = \"x\"\npoll_interval = 5\n").unwrap_err();
    assert!(e.to_string().contains("poll_interval"), "{e}");
    let e = DiscoveryConfig::from_toml("strategy = \"carrier-pigeon\"").unwrap_err();
    assert!(e.to_string().contains("strategy"), "{e}");
    let e = DiscoveryConfig::from_toml("[dns]\nrecord_type = \"mx\"").unwrap_err();
    assert!(e.to_string().contains("record_type"), "{e}");

    let mut c = DiscoveryConfig::from_toml("strategy = [\"etcd\"]").unwrap();
    assert!(err_text(c.validate()).contains("discovery.etcd.server"));
    c.etcd.server = vec!["127.0.0.1:2379".into()];
    assert!(err_text(c.validate()).contains("discovery.etcd.server"));
    c.etcd.server = vec!["http://127.0.0.1:2379".into()];
    assert!(err_text(c.validate()).contains("discovery.node_name"));
    c.node_name = Some("n".into());
    assert!(err_text(c.validate()).contains("discovery.advertise_addr"));
    c.advertise_addr = Some("127.0.0.1:7946".parse().unwrap());
    c.etcd.node_ttl_ms = 0;
    assert!(err_text(c.validate()).contains("discovery.etcd.node_ttl_ms"));

    let c = DiscoveryConfig::from_toml("strategy = \"static\"\n[static]\nseeds = [\"a:b\"]").unwrap();
    assert!(err_text(c.validate()).contains("discovery.static.seeds"));
    let c = DiscoveryConfig::from_toml("strategy = \"mcast\"\n[mcast]\ngroup = \"10.0.0.1\"").unwrap();
    assert!(err_text(c.validate()).contains("discovery.mcast.group"));
    let c = DiscoveryConfig::from_toml("strategy = \"dns\"\n[dns]\nquery = \"x\"\nnameserver = \"nope\"").unwrap();
    assert!(err_text(c.validate()).contains("discovery.dns.nameserver"));
    let c = DiscoveryConfig::from_toml("strategy = \"k8s\"\n[k8s]\nservice_name = \"g\"").unwrap();
    assert!(err_text(c.validate()).contains("discovery.k8s.apiserver"));
    let c = DiscoveryConfig::from_toml("strategy = \"hosts\"").unwrap();
    assert!(err_text(c.validate()).contains("discovery.hosts.path"));
}

#[test]
fn etcd_server_accepts_emqx_comma_string() {
    let c = DiscoveryConfig::from_toml("[etcd]\nserver = \"http://a:2379, http://b:2379\"\nprefix = \"p\"").unwrap();
    assert_eq!(c.etcd.server, ["http://a:2379", "http://b:2379"]);
}

#[test]
fn mcast_is_config_only() {
    let c =
        DiscoveryConfig::from_toml("strategy = [\"mcast\", \"manual\"]\n[mcast]\nport = 9000\nloop = false").unwrap();
    let m = c.mcast_enabled().expect("mcast selected");
    assert_eq!((m.port, m.loopback, m.ttl), (9000, false, 1));
    let names: Vec<String> = build(&c).unwrap().iter().map(|d| d.name().to_string()).collect();
    assert_eq!(names, ["manual"]);
    assert!(DiscoveryConfig::default().mcast_enabled().is_none());
}

#[test]
fn env_non_integer_dns_interval_is_an_error_naming_the_variable() {
    let mut c = DiscoveryConfig::default();
    let e = err_text(apply_env_from(&mut c, env(&[("GOSSAMER_DNS_POLL_INTERVAL_MS", "5s")])));
    assert!(e.contains("GOSSAMER_DNS_POLL_INTERVAL_MS") && e.contains("5s"), "{e}");
    for (var, val) in [
        ("GOSSAMER_ETCD_NODE_TTL_MS", "1m"),
        ("GOSSAMER_DNS_PORT", "70000"),
        ("GOSSAMER_DNS_RECORD_TYPE", "mx"),
        ("GOSSAMER_DISCOVERY", "dns,carrier-pigeon"),
        ("GOSSAMER_K8S_ADDRESS_TYPE", "fqdn"),
        ("GOSSAMER_DNS_NAMESERVER", "resolver"),
        ("GOSSAMER_ADVERTISE_ADDR", "somewhere"),
        ("KUBERNETES_SERVICE_PORT", "https"),
    ] {
        let mut c = DiscoveryConfig::default();
        let mut vars = env(&[(var, val)]);
        vars.insert("KUBERNETES_SERVICE_HOST".into(), "10.96.0.1".into());
        let e = err_text(apply_env_from(&mut c, vars));
        assert!(e.contains(var), "{var}={val}: {e}");
    }
}

#[test]
fn env_dns_query_switches_dns_on_and_off() {
    // Unset: DNS stays off.
    let mut c = DiscoveryConfig::default();
    apply_env_from(&mut c, env(&[("GOSSAMER_DNS_NODE_BASENAME", "edge")])).unwrap();
    assert_eq!(c.strategy, vec![StrategyKind::Manual]);

    // Set: DNS on, with the other variables applied.
    let vars = env(&[
        ("GOSSAMER_DNS_QUERY", " gossamer.svc.local "),
        ("GOSSAMER_DNS_NODE_BASENAME", "edge"),
        ("GOSSAMER_DNS_POLL_INTERVAL_MS", "1500"),
        ("GOSSAMER_DNS_RECORD_TYPE", "SRV"),
        ("GOSSAMER_DNS_NAMESERVER", "127.0.0.1:5353"),
    ]);
    apply_env_from(&mut c, vars).unwrap();
    assert_eq!(c.strategy, vec![StrategyKind::Dns]);
    assert_eq!(c.dns.query, "gossamer.svc.local");
    assert_eq!((c.dns.node_basename.as_str(), c.dns.poll_interval_ms), ("edge", 1500));
    assert_eq!(c.dns.record_type, DnsRecordType::Srv);
    assert_eq!(build(&c).unwrap()[0].name(), "dns");

    // Blank: DNS off again, even though the file selected it.
    let mut c = DiscoveryConfig::from_toml(
        "strategy = [\"dns\", \"static\"]\n[dns]\nquery = \"x\"\n[static]\nseeds = [\"127.0.0.1:1\"]",
    )
    .unwrap();
    apply_env_from(&mut c, env(&[("GOSSAMER_DNS_QUERY", "   ")])).unwrap();
    assert_eq!(c.strategy, vec![StrategyKind::Static]);
    // And a file that selects dns with a blank query builds no dns strategy.
    let c = DiscoveryConfig::from_toml("strategy = \"dns\"\n[dns]\nquery = \"\"").unwrap();
    assert!(build(&c).unwrap().is_empty());
}

#[test]
fn env_overrides_for_etcd_k8s_and_strategy_list() {
    let mut c = DiscoveryConfig::default();
    let vars = env(&[
        ("GOSSAMER_DISCOVERY", "etcd, k8s"),
        ("GOSSAMER_NODE_NAME", "gossamer@10.0.0.5"),
        ("GOSSAMER_ADVERTISE_ADDR", "10.0.0.5:7946"),
        ("GOSSAMER_ETCD_SERVER", "http://127.0.0.1:2379,http://127.0.0.2:2379"),
        ("GOSSAMER_ETCD_PREFIX", "/prod"),
        ("GOSSAMER_ETCD_NODE_TTL_MS", "15000"),
        ("GOSSAMER_K8S_SERVICE_NAME", "gossamer-headless"),
        ("GOSSAMER_K8S_NAMESPACE", "prod"),
        ("GOSSAMER_K8S_ADDRESS_TYPE", "hostname"),
        ("GOSSAMER_K8S_SUFFIX", "svc.corp"),
        ("GOSSAMER_K8S_API", "endpoints"),
        ("GOSSAMER_K8S_LABEL_SELECTOR", "app=gossamer"),
        ("GOSSAMER_K8S_APISERVER", "https://k8s.example:6443"),
        ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
        ("KUBERNETES_SERVICE_PORT", "443"),
        ("UNRELATED", "ignored"),
    ]);
    apply_env_from(&mut c, vars).unwrap();
    assert_eq!(c.strategy, vec![StrategyKind::Etcd, StrategyKind::K8s]);
    assert_eq!(c.etcd.server, ["http://127.0.0.1:2379", "http://127.0.0.2:2379"]);
    assert_eq!((c.etcd.prefix.as_str(), c.etcd.node_ttl_ms), ("/prod", 15000));
    assert_eq!(c.node_name.as_deref(), Some("gossamer@10.0.0.5"));
    assert_eq!(c.k8s.address_type, AddressType::Hostname);
    assert_eq!(c.k8s.suffix.as_deref(), Some("svc.corp"));
    assert_eq!(c.k8s.api, K8sApi::Endpoints);
    // An explicit apiserver wins over the in-cluster variables.
    assert_eq!(c.k8s.apiserver.as_deref(), Some("https://k8s.example:6443"));
    c.validate().unwrap();

    // IPv6 service host gets brackets.
    let mut c = DiscoveryConfig::default();
    apply_env_from(&mut c, env(&[("KUBERNETES_SERVICE_HOST", "fd00::1"), ("KUBERNETES_SERVICE_PORT", "6443")]))
        .unwrap();
    assert_eq!(c.k8s.apiserver.as_deref(), Some("https://[fd00::1]:6443"));
}
