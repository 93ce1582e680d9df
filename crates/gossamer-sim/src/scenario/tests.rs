//! Scenario parsing, validation and resolution tests.

use super::*;
use crate::units::Span;
use gossamer_heal::{Autoclean, Quorum};
use std::time::Duration;

const FULL: &str = r#"
    name = "everything"
    seed = 9
    nodes = 8
    duration = "60s"
    [cluster]
    seeds = 2
    join_spread = "500ms"
    [protocol]
    preset = "local"
    probe_interval = "500ms"
    suspicion_mult = 5
    [network]
    latency = { lognormal = { median = "2ms", sigma = 0.4 } }
    loss = 0.05
    stream_timeout = "5s"
    [[network.link]]
    from = "0..4"
    to = "4..8"
    latency = { fixed = "40ms" }
    [[fault]]
    at = "5 periods"
    kind = "crash"
    nodes = [7]
    [[fault]]
    at = "6s"
    kind = "partition"
    groups = ["0..4", "4..7"]
    [[fault]]
    at = "20s"
    kind = "heal"
    [[fault]]
    at = "21s"
    kind = "slow"
    nodes = "random(2)"
    lag = "300ms"
    [[fault]]
    at = "22s"
    kind = "join"
    count = 2
    [[fault]]
    at = "30s"
    kind = "leave"
    nodes = 9
    [[assert]]
    kind = "all_know_within"
    node = 7
    periods = 10
    [[assert]]
    kind = "converged_within"
    fault = 2
    periods = 20
    [[assert]]
    kind = "single_cluster_at_end"
    [[assert]]
    kind = "false_positives_at_most"
    count = 0
"#;

#[test]
fn parses_every_section() {
    let s = Scenario::from_toml(FULL).unwrap();
    assert_eq!(s.cluster.seeds, 2);
    assert_eq!(s.protocol.preset, Preset::Local);
    assert_eq!(s.network.base_link().loss, Some(0.05));
    assert_eq!(s.network.links.len(), 1);
    assert!(s.network.links[0].symmetric);
    assert_eq!(s.faults.len(), 6);
    assert_eq!(s.faults[0].at, Span::Periods(5.0));
    assert!(matches!(s.faults[3].action, FaultAction::Slow { duration: None, .. }));
    assert_eq!(s.resolve_fault(FaultRef { fault: None, node: Some(7) }), Some(0));
    assert_eq!(s.resolve_fault(FaultRef { fault: None, node: Some(9) }), Some(5));
    assert_eq!(s.asserts.len(), 4);
}

#[test]
fn refuses_bad_scenarios() {
    let bad = [
        FULL.replace("nodes = 8", "nodes = 0"),
        FULL.replace("nodes = 9", "nodes = 99"),
        FULL.replace("node = 7", "node = 3"),
        FULL.replace("kind = \"heal\"", "kind = \"explode\""),
        FULL.replace("loss = 0.05", "loss = 0.05\nlos = 1"),
        FULL.replace("seeds = 2", "seeds = 20"),
        FULL.replace("duration = \"60s\"", "duration = \"sixty\""),
        FULL.replace("suspicion_mult = 5", "suspicion_mult = 5\nprobe_timeout = \"10s\""),
    ];
    for (i, text) in bad.iter().enumerate() {
        assert!(Scenario::from_toml(text).is_err(), "variant {i} should be refused");
    }
}

#[test]
fn start_parses_and_is_validated() {
    let base = "name = \"c\"\nnodes = 8\nduration = \"10 periods\"\n[cluster]\n";
    let parse = |extra: &str| Scenario::from_toml(&format!("{base}{extra}"));
    assert_eq!(parse("").unwrap().cluster.start, Start::Join, "joining is the default");
    assert_eq!(parse("start = \"join\"").unwrap().cluster.start, Start::Join);
    assert_eq!(parse("start = \"converged\"").unwrap().cluster.start, Start::Converged);
    assert!(parse("start = \"warm\"").is_err(), "unknown start");
    let spread = parse("start = \"converged\"\njoin_spread = \"5 periods\"").unwrap_err();
    assert!(spread.to_string().contains("join_spread"), "{spread}");
    assert!(parse("start = \"join\"\njoin_spread = \"5 periods\"").is_ok());
    assert!(parse("start = \"converged\"\njoin_spread = \"0s\"").is_ok());
}

const HEAL: &str = r#"
    name = "heal"
    nodes = 8
    duration = "100 periods"
    [protocol]
    probe_interval = "500ms"
    [heal]
    autoclean = "30s"
    settle = "4s"
    hold_down = "5s"
    backoff_factor = 3
    max_hold_down = "1min"
    flap_window = "2min"
    probe_interval = "5s"
    comeback_quorum = 0.6
    correlation_window = "3s"
    quorum = 8
    [groups]
    left = "0..4"
    [[fault]]
    at = "10 periods"
    kind = "partition"
    groups = ["0..4"]
    [[fault]]
    at = "40 periods"
    kind = "heal"
    [[fault]]
    at = "45 periods"
    kind = "crash"
    nodes = [7]
    [[assert]]
    kind = "winners"
    fault = 1
    group = "left"
    [[assert]]
    kind = "rejoined"
    fault = 1
    group = "4..8"
    among = "0..7"
    [[assert]]
    kind = "partition_detected"
    fault = 1
    count = 6
    [[assert]]
    kind = "autoclean_within"
    node = 7
    periods = 80
"#;

#[test]
fn heal_section_maps_onto_heal_config() {
    let s = Scenario::from_toml(HEAL).unwrap();
    let c = s.heal_config(Duration::from_millis(500)).unwrap().expect("enabled");
    assert_eq!(c.autoclean, Autoclean::After(Duration::from_secs(30)));
    assert_eq!(c.settle, Duration::from_secs(4));
    assert_eq!(c.hold_down, Duration::from_secs(5));
    assert_eq!((c.backoff_factor, c.max_hold_down), (3, Duration::from_secs(60)));
    assert_eq!((c.flap_window, c.probe_interval), (Duration::from_secs(120), Duration::from_secs(5)));
    assert_eq!((c.comeback_quorum, c.correlation_window), (0.6, Duration::from_secs(3)));
    assert_eq!(c.quorum, Quorum::Expected(8));
    assert!(c.autoheal);
    assert_eq!(s.group_nodes("left").unwrap(), vec![0, 1, 2, 3]);
    assert_eq!(s.group_nodes("5, 6").unwrap(), vec![5, 6]);
    assert!(s.asserts.iter().all(AssertSpec::needs_heal));
    assert_eq!(s.resolve_fault(s.asserts[3].fault_ref().unwrap()), Some(2));

    let off = HEAL.replace("autoclean = \"30s\"", "autoclean = \"off\"\nquorum = \"off\"");
    let off = off.replacen("quorum = 8\n", "", 1);
    let c = Scenario::from_toml(&off).unwrap().heal_config(Duration::from_secs(1)).unwrap().unwrap();
    assert_eq!((c.autoclean, c.quorum), (Autoclean::Off, Quorum::Off));
    let plain = Scenario::from_toml(FULL).unwrap();
    assert_eq!(plain.heal_config(Duration::from_secs(1)).unwrap(), None, "no [heal]: plain SWIM");
}

#[test]
fn refuses_bad_heal_scenarios() {
    let bad = [
        HEAL.replace("backoff_factor = 3", "backoff_factor = 0"),
        HEAL.replace("max_hold_down = \"1min\"", "max_hold_down = \"1s\""),
        HEAL.replace("autoclean = \"30s\"", "autoclean = \"soon\""),
        HEAL.replace("autoclean = \"30s\"", "autoclean = \"60 periods\""),
        HEAL.replace("quorum = 8", "quorum = \"most\""),
        HEAL.replace("settle = \"4s\"", "setle = \"4s\""),
        HEAL.replace("group = \"left\"", "group = \"right\""),
        HEAL.replace("left = \"0..4\"", "left = \"random(4)\""),
        HEAL.replace("group = \"4..8\"", "group = \"4..9\""),
        HEAL.replace("among = \"0..7\"", "among = \"nobody\""),
        HEAL.replace("[heal]", "[heal]\nenabled = false"),
        HEAL.replace("node = 7", "node = 6"),
    ];
    for (i, text) in bad.iter().enumerate() {
        assert!(Scenario::from_toml(text).is_err(), "variant {i} should be refused");
    }
}

mod schema_tests {
    use super::*;
    use gossamer_core::Config;

    #[test]
    fn protocol_tables_resolve_exactly_as_before_the_shared_schema() {
        let text = "name = \"f\"\nnodes = 4\nduration = \"3 periods\"\n[protocol]\npreset = \"lan\"\nmax_members = 1024\nmax_push_pull_members = 1024\n";
        let c = Scenario::from_toml(text).unwrap().protocol.to_config().unwrap();
        assert_eq!(c, Config { max_members: 1024, max_push_pull_members: 1024, ..Config::lan() });
        for preset in [Preset::Lan, Preset::Wan, Preset::Local] {
            let t = ProtocolConfig { preset, overrides: Default::default() };
            assert_eq!(t.to_config().unwrap(), preset.config());
        }
    }
}
