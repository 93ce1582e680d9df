use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use gossamer::net::{MulticastInterface, TlsConfig};

use super::env::key_of_var;
use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

const FILE: &str = r#"
name = "a@127.0.0.1"
bind = "127.0.0.1:7946"
secret = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
cluster = "prod"
preset = "local"
seeds = ["127.0.0.1:7947"]
[metadata]
role = "web"
[protocol]
probe_interval = "300ms"
[multicast]
interface = "127.0.0.1"
port = 45999
"#;

#[test]
fn file_parses_and_unknown_keys_are_refused() {
    let s = AgentSettings::parse(FILE).unwrap();
    assert_eq!(s.name.as_deref(), Some("a@127.0.0.1"));
    assert_eq!(s.protocol.overrides.get("probe_interval"), Some(&serde_json::Value::from("300ms")));
    let err = AgentSettings::parse("name = \"a\"\nbindd = \"x\"\n").unwrap_err();
    assert!(err.contains("bindd"), "{err}");
    let err = AgentSettings::parse("[multicast]\nttll = 3\n").unwrap_err();
    assert!(err.contains("ttll"), "{err}");
}

#[test]
fn compression_is_off_unless_set() {
    let s = AgentSettings::parse(FILE).unwrap();
    assert_eq!(s.compression, None);
    assert_eq!(s.clone().resolve(Path::new(".")).unwrap().node.compression, None);
    let mut s = AgentSettings::parse(&format!("compression = 1024\n{FILE}")).unwrap();
    assert_eq!(s.clone().resolve(Path::new(".")).unwrap().node.compression, Some(1024));
    apply_env(&mut s, &env(&[("GOSSAMER_COMPRESSION", "512")])).unwrap();
    assert_eq!(s.resolve(Path::new(".")).unwrap().node.compression, Some(512));
}

#[test]
fn env_overrides_every_kind_of_key() {
    let mut s = AgentSettings::parse(FILE).unwrap();
    let unknown = apply_env(
        &mut s,
        &env(&[
            ("GOSSAMER_NODE_NAME", "b@127.0.0.1"),
            ("GOSSAMER_SEEDS", "127.0.0.1:1, 127.0.0.1:2"),
            ("GOSSAMER_MULTICAST_TTL", "4"),
            ("GOSSAMER_MULTICAST_LOOP", "false"),
            ("GOSSAMER_METADATA", "zone=eu,role=db"),
            ("GOSSAMER_DNS_QUERY", "gossamer.svc"),
            ("GOSSAMER_DNS_POLL_INTERVAL_MS", "5000"),
            ("GOSSAMER_BOGUS", "1"),
            ("GOSSAMER_DISCOVERY", "dns"),
            ("PATH", "/bin"),
        ]),
    )
    .unwrap();
    assert_eq!(unknown, vec!["GOSSAMER_BOGUS".to_string()]);
    assert_eq!(s.name.as_deref(), Some("b@127.0.0.1"));
    assert_eq!(s.seeds, vec!["127.0.0.1:1", "127.0.0.1:2"]);
    let m = s.multicast.as_ref().unwrap();
    assert_eq!((m.ttl, m.loopback, m.port), (Some(4), Some(false), Some(45999)));
    assert_eq!(s.metadata.get("zone").map(String::as_str), Some("eu"));
    let d = s.discovery.as_ref().unwrap();
    assert_eq!((d.dns.query.as_str(), d.dns.poll_interval_ms), ("gossamer.svc", 5000));
    assert_eq!(d.strategy, vec![gossamer::discovery::StrategyKind::Dns]);
}

#[test]
fn bad_env_values_name_the_variable() {
    let mut s = AgentSettings::parse(FILE).unwrap();
    let err = apply_env(&mut s, &env(&[("GOSSAMER_MULTICAST_PORT", "seventy")])).unwrap_err();
    assert!(err.to_string().contains("GOSSAMER_MULTICAST_PORT"), "{err}");
    let err = apply_env(&mut s, &env(&[("GOSSAMER_MULTICAST_LOOP", "maybe")])).unwrap_err();
    assert!(err.to_string().contains("GOSSAMER_MULTICAST_LOOP"), "{err}");

    let mut s = AgentSettings::parse(FILE).unwrap();
    let err = apply_env(&mut s, &env(&[("GOSSAMER_DNS_POLL_INTERVAL_MS", "5s")])).unwrap_err();
    assert!(err.to_string().contains("GOSSAMER_DNS_POLL_INTERVAL_MS"), "{err}");

    let e = env(&[("GOSSAMER_BIND", "not-an-address")]);
    let mut s = AgentSettings::parse(FILE).unwrap();
    apply_env(&mut s, &e).unwrap();
    let msg = explain(s.resolve(Path::new("/tmp")).unwrap_err(), &e);
    assert!(msg.contains("`bind`") && msg.contains("GOSSAMER_BIND"), "{msg}");

    let e = env(&[("GOSSAMER_SECRET", "abcd")]);
    let mut s = AgentSettings::parse(FILE).unwrap();
    apply_env(&mut s, &e).unwrap();
    let msg = explain(s.resolve(Path::new("/tmp")).unwrap_err(), &e);
    assert!(msg.contains("`secret`") && msg.contains("GOSSAMER_SECRET"), "{msg}");
}

#[test]
fn resolve_builds_the_node_config() {
    let s = AgentSettings::parse(FILE).unwrap();
    let r = s.resolve(Path::new("/tmp/x")).unwrap();
    assert_eq!(r.node.name.as_str(), "a@127.0.0.1");
    assert_eq!(r.node.cluster, "prod");
    assert_eq!(r.node.seeds, vec!["127.0.0.1:7947".parse::<SocketAddr>().unwrap()]);
    assert_eq!(r.seeds, vec![crate::seeds::HostPort::parse("127.0.0.1:7947").unwrap()]);
    assert_eq!(r.node.protocol.probe_interval, Duration::from_millis(300));
    assert_eq!(r.node.metadata.get("role"), Some(&b"web"[..]));
    let m = r.node.multicast.unwrap();
    assert_eq!((m.port, m.interface), (45999, Some(MulticastInterface::Addr("127.0.0.1".parse().unwrap()))));
    assert_eq!(r.data_dir, Path::new("/tmp/x"));
    assert!(r.control_bind.ip().is_loopback());
}

#[test]
fn invalid_values_are_refused_naming_the_key() {
    let cases = [
        ("preset = \"turbo\"", "preset"),
        ("seeds = [\"nowhere\"]", "seeds"),
        ("seeds = [\"::1:7946\"]", "seeds"),
        ("control_bind = \"0.0.0.0:0\"", "control_bind"),
        ("[multicast]\ninterface = \"127.0.0.1\"\n[discovery]\nstrategy = \"mcast\"", "multicast"),
        ("[multicast]\ngroup = \"10.0.0.1\"", "multicast.group"),
        ("[multicast]\ninterface = \"eth0\"", "multicast.interface"),
        ("[multicast]\ngroup = \"ff12::6773:6d72\"\ninterface = \"127.0.0.1\"", "multicast.interface"),
        ("[multicast]\ngroup = \"ff12::6773:6d72\"\ninterface = \"bad name!\"", "multicast.interface"),
    ];
    for (extra, key) in cases {
        let text = format!("name = \"a@h\"\nbind = \"127.0.0.1:0\"\n{extra}\n");
        let err = AgentSettings::parse(&text).unwrap().resolve(Path::new(".")).unwrap_err();
        assert!(err.to_string().contains(&format!("`{key}`")), "{extra}: {err}");
    }
    let err = AgentSettings::parse("[discovery]\nstrategy = \"carrier-pigeon\"").unwrap_err();
    assert!(err.contains("carrier-pigeon"), "{err}");
    let text = "name = \"a@h\"\nbind = \"127.0.0.1:0\"\n[discovery]\nstrategy = \"mcast\"\n[discovery.mcast]\ngroup = \"10.1.1.1\"\n";
    let err = AgentSettings::parse(text).unwrap().resolve(Path::new(".")).unwrap_err();
    assert!(err.to_string().contains("discovery.mcast.group"), "{err}");
    let err = AgentSettings::parse("bind = \"127.0.0.1:0\"").unwrap().resolve(Path::new(".")).unwrap_err();
    assert!(err.to_string().contains("`name`"), "{err}");
    // A cluster label past 255 bytes names `cluster`, not the codec.
    let text = format!("name = \"a@h\"\nbind = \"127.0.0.1:0\"\ncluster = \"{}\"\n", "c".repeat(256));
    let err = AgentSettings::parse(&text).unwrap().resolve(Path::new(".")).unwrap_err();
    assert!(err.to_string().contains("`cluster`") && !err.to_string().contains("codec"), "{err}");
}

#[test]
fn the_example_config_is_valid() {
    let text = include_str!("../../node.example.toml");
    // As shipped it has no secret, so it refuses to start until one is given ...
    let err = AgentSettings::parse(text).unwrap().resolve(Path::new("/tmp")).unwrap_err();
    assert!(err.to_string().contains("`secret`"), "{err}");
    // ... here through the environment, as its comments suggest.
    let mut s = AgentSettings::parse(text).unwrap();
    apply_env(&mut s, &env(&[("GOSSAMER_SECRET", KEY)])).unwrap();
    let r = s.resolve(Path::new("/tmp")).unwrap();
    assert!(!r.insecure);
    assert_eq!(r.node.advertise, Some("10.0.0.7:7946".parse().unwrap()));
    assert!(r.node.multicast.is_none());
    assert_eq!(r.discovery.unwrap().dns.query, "gossamer.prod.internal");
}

/// A CA and a node certificate signed by it, written as PEM files in `dir`.
fn write_pki(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    std::fs::write(dir.join("ca.crt"), ca.self_signed(&ca_key).unwrap().pem()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
        .unwrap();
    std::fs::write(dir.join("node.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("node.key"), key.serialize_pem()).unwrap();
}

#[test]
fn tls_table_resolves_relative_to_the_config_and_bad_files_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    let base = format!("name = \"a@h\"\nbind = \"127.0.0.1:0\"\nsecret = \"{KEY}\"\n");
    let text = format!("{base}[tls]\ncert = \"node.crt\"\nkey = \"node.key\"\nca = \"ca.crt\"\n");
    let r = AgentSettings::parse(&text).unwrap().resolve(dir.path()).unwrap();
    let tls = r.node.tls.expect("tls configured");
    assert_eq!(
        tls,
        TlsConfig::from_files(dir.path().join("node.crt"), dir.path().join("node.key"), dir.path().join("ca.crt"))
    );

    let text = format!("{base}[tls]\ncert = \"node.crt\"\nca = \"ca.crt\"\n");
    let err = AgentSettings::parse(&text).unwrap().resolve(dir.path()).unwrap_err();
    assert!(err.to_string().contains("`tls.key`"), "{err}");

    // The key swapped for the CA certificate: refused, naming the key.
    let text = format!("{base}[tls]\ncert = \"node.crt\"\nkey = \"ca.crt\"\nca = \"ca.crt\"\n");
    let err = AgentSettings::parse(&text).unwrap().resolve(dir.path()).unwrap_err();
    assert!(err.to_string().contains("`tls.key`"), "{err}");

    // Environment overrides, and a missing file names its key and variable.
    let e = env(&[("GOSSAMER_TLS_CA", "missing-ca.crt"), ("GOSSAMER_TLS_VERIFY_PEER_IP", "true")]);
    let text = format!("{base}[tls]\ncert = \"node.crt\"\nkey = \"node.key\"\nca = \"ca.crt\"\n");
    let mut s = AgentSettings::parse(&text).unwrap();
    apply_env(&mut s, &e).unwrap();
    assert!(s.tls.as_ref().unwrap().verify_peer_ip);
    let msg = explain(s.resolve(dir.path()).unwrap_err(), &e);
    assert!(msg.contains("`tls.ca`") && msg.contains("missing-ca.crt") && msg.contains("GOSSAMER_TLS_CA"), "{msg}");

    let err = AgentSettings::parse("[tls]\ncertificate = \"x\"\n").unwrap_err();
    assert!(err.contains("certificate"), "{err}");
}

#[test]
fn an_ipv6_group_takes_an_interface_by_name_or_index() {
    let text =
        "name = \"a@h\"\nbind = \"127.0.0.1:0\"\ninsecure = true\n[multicast]\ngroup = \"ff12::6773:6d72\"\ninterface = \"eth0\"\n";
    let m = AgentSettings::parse(text).unwrap().resolve(Path::new(".")).unwrap().node.multicast.unwrap();
    assert_eq!(m.group, "ff12::6773:6d72".parse::<IpAddr>().unwrap());
    assert_eq!(m.interface, Some(MulticastInterface::Name("eth0".into())));
    let mut s = AgentSettings::parse(text).unwrap();
    apply_env(&mut s, &env(&[("GOSSAMER_MULTICAST_INTERFACE", "3")])).unwrap();
    let m = s.resolve(Path::new(".")).unwrap().node.multicast.unwrap();
    assert_eq!(m.interface, Some(MulticastInterface::Index(3)));
}

#[test]
fn a_secret_is_required_unless_insecure_is_said() {
    let base = "name = \"a@h\"\nbind = \"127.0.0.1:0\"\n";
    let err = AgentSettings::parse(base).unwrap().resolve(Path::new(".")).unwrap_err().to_string();
    for needle in ["`secret`", "GOSSAMER_SECRET", "gossamer keygen", "insecure = true", "GOSSAMER_INSECURE"] {
        assert!(err.contains(needle), "{needle} missing from: {err}");
    }

    let r = AgentSettings::parse(&format!("{base}insecure = true\n")).unwrap().resolve(Path::new(".")).unwrap();
    assert!(r.insecure && r.node.secret.is_none());

    let mut s = AgentSettings::parse(base).unwrap();
    apply_env(&mut s, &env(&[("GOSSAMER_INSECURE", "true")])).unwrap();
    assert!(s.resolve(Path::new(".")).unwrap().insecure);
    let mut s = AgentSettings::parse(base).unwrap();
    let err = apply_env(&mut s, &env(&[("GOSSAMER_INSECURE", "perhaps")])).unwrap_err();
    assert!(err.to_string().contains("GOSSAMER_INSECURE"), "{err}");

    // A secret wins over `insecure`: the frames are sealed.
    let mut s = AgentSettings::parse(&format!("{base}insecure = true\n")).unwrap();
    apply_env(&mut s, &env(&[("GOSSAMER_SECRET", KEY)])).unwrap();
    let r = s.resolve(Path::new(".")).unwrap();
    assert!(!r.insecure && r.node.secret.is_some());
}

#[test]
fn extra_keys_join_the_keyring_and_bad_ones_name_the_key() {
    let other = "ab".repeat(32);
    let base = format!("name = \"a@h\"\nbind = \"127.0.0.1:0\"\nsecret = \"{KEY}\"\n");
    let r = AgentSettings::parse(&format!("{base}keys = [\"{other}\"]\n")).unwrap().resolve(Path::new(".")).unwrap();
    assert_eq!(r.node.keys, vec![other.parse().unwrap()]);
    let mut s = AgentSettings::parse(&base).unwrap();
    apply_env(&mut s, &env(&[("GOSSAMER_KEYS", &format!("{other}, {KEY}"))])).unwrap();
    assert_eq!(s.resolve(Path::new(".")).unwrap().node.keys.len(), 2);
    assert!(!format!("{s:?}").contains(&other), "keys never in Debug");
    let err = AgentSettings::parse(&format!("{base}keys = [\"beef\"]\n")).unwrap().resolve(Path::new("."));
    assert!(err.unwrap_err().to_string().contains("`keys`"));
}

#[test]
fn secrets_never_show_in_debug_output() {
    let text = format!(
        "name = \"a@h\"\nbind = \"127.0.0.1:0\"\nsecret = \"{KEY}\"\n[discovery]\nstrategy = \"k8s\"\n\
         [discovery.k8s]\nservice_name = \"g\"\napiserver = \"https://10.0.0.1\"\ntoken = \"k8s-bearer-XYZZY\"\n"
    );
    let s = AgentSettings::parse(&text).unwrap();
    let r = s.resolve(Path::new(".")).unwrap();
    let shown = format!("{s:?}\n{s:#?}\n{r:?}\n{:?}", r.node);
    assert!(!shown.contains(KEY), "the cluster secret leaked: {shown}");
    assert!(!shown.contains("0001020304"), "part of the cluster secret leaked: {shown}");
    assert!(!shown.contains("XYZZY"), "the Kubernetes token leaked: {shown}");
    assert!(shown.contains("redacted"), "{shown}");
}

#[test]
fn every_documented_variable_is_understood() {
    for var in env_vars() {
        assert!(key_of_var(&var).is_some(), "{var}");
    }
}

/// The example's commented `[runtime]` block shows the library's defaults,
/// every key of them: uncommented, it parses to `RuntimeLimits::default()`.
#[test]
fn the_example_runtime_block_shows_every_default() {
    let text = include_str!("../../node.example.toml");
    let block: String = text
        .lines()
        .skip_while(|l| *l != "# [runtime]")
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| !l.starts_with(' ') && !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let s = AgentSettings::parse(&block).unwrap();
    assert_eq!(s.runtime, gossamer::net::RuntimeLimits::default());
    let keys = block.lines().filter(|l| l.contains('=')).count();
    assert_eq!(keys, gossamer::net::RuntimeLimits::keys().len(), "{block}");
}
