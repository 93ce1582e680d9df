//! The agent's tables that embed a schema, and their `GOSSAMER_*`
//! overrides, all taken from the schema itself (issue #17): `[protocol]` is
//! `gossamer_core::ProtocolConfig` (a preset plus any `Config` key),
//! `[heal]` is `gossamer_heal::HealTable` (`enabled` plus any `HealConfig`
//! key), the very types a simulator scenario embeds, so a
//! `[protocol]`/`[heal]` pair tuned in the simulator pastes into an agent
//! file unchanged; `[runtime]` is `gossamer_net::RuntimeLimits` (the
//! runtime's limits on streams, push-pulls, seeds, batches, channels and
//! UDP buffers); `[http]` and `[dns]` are the agent's own
//! [`HttpSettings`] and [`DnsSettings`]. Durations are humantime text
//! (`"500ms"`, `"10s"`, `"24h"`).
//!
//! Every key has a variable, derived from the field names and never listed
//! by hand: `GOSSAMER_PROTOCOL_<KEY>`, `GOSSAMER_HEAL_<KEY>`,
//! `GOSSAMER_RUNTIME_<KEY>`, `GOSSAMER_HTTP_<KEY>` and `GOSSAMER_DNS_<KEY>`
//! (upper case), plus `GOSSAMER_HEAL` for `heal.enabled`. Setting an
//! `[http]` or `[dns]` variable turns that listener on, as writing its
//! table does. The `[dns]` server's keys (`bind`, `domain`, `ttl`) share the
//! `GOSSAMER_DNS_` prefix with the DNS discovery strategy's variables
//! (`GOSSAMER_DNS_QUERY`, ...) but no name, which a test keeps true. The
//! variables documented before the schema keep working:
//! `GOSSAMER_PROBE_INTERVAL_MS`, `GOSSAMER_PROBE_TIMEOUT_MS`
//! (milliseconds), `GOSSAMER_MTU` and `GOSSAMER_HEAL_EXPECTED_SIZE`
//! (`heal.quorum`).
//!
//! Unlike the library, where `NodeConfig::heal` is opt-in, the agent runs
//! the heal layer unless `enabled = false`: an agent is a cluster member an
//! operator deploys, and like EMQX (`cluster.autoheal = true`,
//! `cluster.autoclean = 24h`) it should merge the sides of a healed network
//! cut and forget long-dead members without being asked. A rejoin only
//! raises the node's incarnation and adopts the winners' view; nothing is
//! restarted.

use std::time::Duration;

use gossamer::core::{field_names, overlay, set_from_text, ConfigError, Overrides, ProtocolConfig};
use gossamer::net::RuntimeLimits;
use gossamer_heal::{HealConfig, HealTable};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::dns::DnsSettings;
use crate::http_api::HttpSettings;
use crate::settings::{invalid, AgentSettings, SettingsError};

const PROTOCOL_PREFIX: &str = "GOSSAMER_PROTOCOL_";
const HEAL_PREFIX: &str = "GOSSAMER_HEAL_";

/// The tables whose every key is one variable, `<prefix><KEY>`: (prefix,
/// table, keys from the schema).
fn plain_tables() -> [(&'static str, &'static str, &'static [&'static str]); 3] {
    [
        ("GOSSAMER_RUNTIME_", "runtime", RuntimeLimits::keys()),
        ("GOSSAMER_HTTP_", "http", field_names::<HttpSettings>()),
        ("GOSSAMER_DNS_", "dns", field_names::<DnsSettings>()),
    ]
}

/// Variables kept from before the schema: (variable, key, unit suffix
/// appended to the value).
const ALIASES: &[(&str, &str, &str)] = &[
    ("GOSSAMER_PROBE_INTERVAL_MS", "protocol.probe_interval", "ms"),
    ("GOSSAMER_PROBE_TIMEOUT_MS", "protocol.probe_timeout", "ms"),
    ("GOSSAMER_MTU", "protocol.mtu", ""),
    ("GOSSAMER_HEAL_EXPECTED_SIZE", "heal.quorum", ""),
];

/// Every variable of the two tables, generated from the schema, for
/// `--help` and the unknown-variable warning.
pub fn env_vars() -> Vec<String> {
    let protocol = ProtocolConfig::keys().iter().map(|k| format!("{PROTOCOL_PREFIX}{}", k.to_ascii_uppercase()));
    let heal = HealTable::keys().iter().map(|k| format!("{HEAL_PREFIX}{}", k.to_ascii_uppercase()));
    let aliases = ALIASES.iter().map(|(var, _, _)| var.to_string());
    let plain = plain_tables()
        .into_iter()
        .flat_map(|(prefix, _, keys)| keys.iter().map(move |k| format!("{prefix}{}", k.to_ascii_uppercase())));
    std::iter::once("GOSSAMER_HEAL".to_string()).chain(protocol).chain(heal).chain(plain).chain(aliases).collect()
}

/// The key (`protocol.probe_interval`, `heal.settle`) a variable sets, if
/// it is one of the tables'.
pub fn key_of_var(var: &str) -> Option<String> {
    if var == "GOSSAMER_HEAL" {
        return Some("heal.enabled".into());
    }
    if let Some((_, key, _)) = ALIASES.iter().find(|(v, _, _)| *v == var) {
        return Some(key.to_string());
    }
    let lower = |rest: &str| rest.to_ascii_lowercase();
    if let Some(rest) = var.strip_prefix(PROTOCOL_PREFIX) {
        let key = lower(rest);
        return (key == "preset" || ProtocolConfig::keys().contains(&key.as_str())).then(|| format!("protocol.{key}"));
    }
    if let Some(rest) = var.strip_prefix(HEAL_PREFIX) {
        let key = lower(rest);
        return HealTable::keys().contains(&key.as_str()).then(|| format!("heal.{key}"));
    }
    plain_tables().into_iter().find_map(|(prefix, table, keys)| {
        let key = lower(var.strip_prefix(prefix)?);
        keys.contains(&key.as_str()).then(|| format!("{table}.{key}"))
    })
}

/// Applies one variable of the tables; `Ok(false)` if it is not one. A
/// value the schema refuses is an error naming the variable.
pub fn apply_env_var(settings: &mut AgentSettings, var: &str, value: &str) -> Result<bool, SettingsError> {
    let Some(key) = key_of_var(var) else { return Ok(false) };
    let suffix = ALIASES.iter().find(|(v, _, _)| *v == var).map_or("", |(_, _, unit)| *unit);
    let value = format!("{}{suffix}", value.trim());
    let result = match key.split_once('.') {
        Some(("protocol", field)) => settings.protocol.set(field, &value),
        Some(("heal", field)) => settings.heal.set(field, &value),
        Some(("runtime", field)) => settings.runtime.set(field, &value),
        Some(("http", field)) => set_in_table(&mut settings.http, field, &value),
        Some(("dns", field)) => set_in_table(&mut settings.dns, field, &value),
        _ => return Ok(false),
    };
    result.map_err(|e| invalid(var, format!("{value:?}: {}", e.reason)))?;
    Ok(true)
}

/// Sets `key` of an optional table from text, typed by its schema, creating
/// the table (so turning its listener on) when the file had none.
fn set_in_table<T>(slot: &mut Option<T>, key: &str, text: &str) -> Result<(), ConfigError>
where
    T: Serialize + DeserializeOwned + Default + Clone,
{
    let base = slot.clone().unwrap_or_default();
    let mut overrides = Overrides::new();
    set_from_text(&base, &mut overrides, key, text)?;
    *slot = Some(overlay(&base, &overrides)?);
    Ok(())
}

/// The heal layer's configuration, or `None` when disabled; every value
/// checked, errors naming the key (`heal.settle`, ...). Keys not given keep
/// `HealConfig::for_period(protocol_period)`: the library defaults, with
/// `verdict_grace` at two protocol periods.
pub fn resolve_heal(heal: &HealTable, protocol_period: Duration) -> Result<Option<HealConfig>, SettingsError> {
    heal.resolve(protocol_period).map_err(|e| invalid(format!("heal.{}", e.field), e.reason))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use gossamer::Config;
    use gossamer_heal::{Autoclean, Quorum};

    use super::*;
    use crate::settings::{apply_env, explain, AgentSettings};

    const BASE: &str = "name = \"a@h\"\nbind = \"127.0.0.1:0\"\ninsecure = true\n";
    const PERIOD: Duration = Duration::from_secs(1);

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn resolve(text: &str) -> Result<gossamer::net::NodeConfig, SettingsError> {
        AgentSettings::parse(text).map_err(|e| invalid("parse", e))?.resolve(Path::new(".")).map(|r| r.node)
    }

    /// A `[protocol]` and `[heal]` pair tuned in the simulator, pasted into
    /// an agent file, gives the same settings.
    #[test]
    fn a_simulator_table_pastes_into_an_agent_file() {
        let tables = r#"
[protocol]
preset = "wan"
probe_timeout = "2s"
suspicion_mult = 5
gossip_to_the_dead_time = "45s"
incarnation_window = 4096
max_members = 2048
user_share = 0.25

[heal]
autoclean = "2h"
settle = "4s"
hold_down = "1m"
comeback_quorum = 0.6
correlation_window = "3s"
quorum = 7
"#;
        let scenario = gossamer_sim::Scenario::from_toml(&format!(
            "name = \"paste\"\nnodes = 4\nduration = \"10 periods\"\n{tables}"
        ))
        .unwrap();
        let sim_protocol = scenario.protocol.to_config().unwrap();
        let sim_heal = scenario.heal_config(sim_protocol.probe_interval).unwrap().unwrap();
        let agent = resolve(&format!("{BASE}{tables}")).unwrap();
        assert_eq!(agent.protocol, sim_protocol);
        assert_eq!(agent.heal.as_ref(), Some(&sim_heal));
        assert_eq!(agent.protocol.probe_timeout, Duration::from_secs(2));
        assert_eq!(agent.protocol.probe_interval, Config::wan().probe_interval, "the preset fills the rest");
        assert_eq!(sim_heal.quorum, Quorum::Expected(7));
        assert_eq!(sim_heal.verdict_grace, Config::wan().probe_interval * 2, "two periods unless given");
    }

    #[test]
    fn every_config_and_heal_field_has_an_env_override() {
        let protocol_defaults = serde_json::to_value(Config::local()).unwrap();
        let protocol_defaults = protocol_defaults.as_object().unwrap();
        assert_eq!(protocol_defaults.len(), ProtocolConfig::keys().len());
        for (key, value) in protocol_defaults {
            let var = format!("GOSSAMER_PROTOCOL_{}", key.to_ascii_uppercase());
            let text = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
            let mut s = AgentSettings::parse(BASE).unwrap();
            let unknown = apply_env(&mut s, &env(&[(&var, &text)])).unwrap();
            assert!(unknown.is_empty(), "{var} not understood");
            assert_eq!(s.protocol.overrides.get(key), Some(value), "{var}");
            assert_eq!(key_of_var(&var), Some(format!("protocol.{key}")));
            assert!(env_vars().contains(&var), "{var} missing from --help");
        }
        let heal_defaults = serde_json::to_value(HealConfig::default()).unwrap();
        for key in heal_defaults.as_object().unwrap().keys() {
            let var = format!("GOSSAMER_HEAL_{}", key.to_ascii_uppercase());
            assert_eq!(key_of_var(&var), Some(format!("heal.{key}")), "{var}");
            assert!(env_vars().contains(&var), "{var} missing from --help");
        }
        // Values are typed by the schema, and take effect.
        let mut s = AgentSettings::parse(BASE).unwrap();
        apply_env(
            &mut s,
            &env(&[
                ("GOSSAMER_PRESET", "local"),
                ("GOSSAMER_PROTOCOL_PROBE_TIMEOUT", "150ms"),
                ("GOSSAMER_PROTOCOL_MAX_MEMBERS", "512"),
                ("GOSSAMER_PROBE_INTERVAL_MS", "700"),
                ("GOSSAMER_HEAL_SETTLE", "3s"),
                ("GOSSAMER_HEAL_AUTOCLEAN", "off"),
                ("GOSSAMER_HEAL_EXPECTED_SIZE", "7"),
                ("GOSSAMER_HEAL_AUTOHEAL", "false"),
                ("GOSSAMER_HEAL_VERDICT_GRACE", "900ms"),
            ]),
        )
        .unwrap();
        let node = s.resolve(Path::new(".")).unwrap().node;
        assert_eq!(
            (node.protocol.probe_timeout, node.protocol.max_members, node.protocol.probe_interval),
            (Duration::from_millis(150), 512, Duration::from_millis(700))
        );
        assert_eq!(node.protocol.gossip_interval, Config::local().gossip_interval);
        let c = node.heal.unwrap();
        assert_eq!(
            (c.settle, c.autoclean, c.quorum, c.autoheal, c.verdict_grace),
            (Duration::from_secs(3), Autoclean::Off, Quorum::Expected(7), false, Duration::from_millis(900))
        );
    }

    #[test]
    fn bad_values_name_the_key_or_the_variable() {
        for (line, key) in [
            ("[heal]\nautoclean = \"soon\"", "autoclean"),
            ("[heal]\nsettle = \"10\"", "settle"),
            ("[heal]\nautoheel = true", "autoheel"),
            ("[heal]\nautoclean = 5", "autoclean"),
            ("[protocol]\nprobe_interval = 3", "probe_interval"),
            ("[protocol]\nprobe_interval_ms = 300", "probe_interval_ms"),
        ] {
            let err = AgentSettings::parse(&format!("{BASE}{line}\n")).unwrap_err();
            assert!(err.contains(key), "{line}: {err}");
        }
        for (line, key) in [
            ("[heal]\nbackoff_factor = 0", "heal.backoff_factor"),
            ("[heal]\nhold_down = \"20m\"", "heal.max_hold_down"),
            ("[heal]\nquorum = 0", "heal.quorum"),
            ("[protocol]\nprobe_interval = \"0s\"", "protocol.probe_interval"),
            ("[protocol]\nmax_members = 1", "protocol.max_members"),
        ] {
            let err = resolve(&format!("{BASE}{line}\n")).unwrap_err();
            assert!(err.to_string().contains(&format!("`{key}`")), "{line}: {err}");
        }
        let mut s = AgentSettings::parse(BASE).unwrap();
        let err = apply_env(&mut s, &env(&[("GOSSAMER_HEAL_SETTLE", "10")])).unwrap_err();
        assert!(err.to_string().contains("GOSSAMER_HEAL_SETTLE"), "{err}");
        let err = apply_env(&mut s, &env(&[("GOSSAMER_PROTOCOL_MTU", "big")])).unwrap_err();
        assert!(err.to_string().contains("GOSSAMER_PROTOCOL_MTU"), "{err}");
        let e = env(&[("GOSSAMER_HEAL_BACKOFF_FACTOR", "99")]);
        let mut s = AgentSettings::parse(BASE).unwrap();
        apply_env(&mut s, &e).unwrap();
        let msg = explain(s.resolve(Path::new(".")).unwrap_err(), &e);
        assert!(msg.contains("`heal.backoff_factor`") && msg.contains("GOSSAMER_HEAL_BACKOFF_FACTOR"), "{msg}");
    }

    #[test]
    fn the_agent_runs_heal_unless_disabled() {
        let heal = resolve(BASE).unwrap().heal.expect("the agent runs the heal layer by default");
        assert_eq!(heal, HealConfig::for_period(PERIOD));
        assert!(resolve(&format!("{BASE}[heal]\nenabled = false\n")).unwrap().heal.is_none());
        let mut s = AgentSettings::parse(BASE).unwrap();
        apply_env(&mut s, &env(&[("GOSSAMER_HEAL", "off")])).unwrap();
        assert!(s.resolve(Path::new(".")).unwrap().node.heal.is_none());
        let mut s = AgentSettings::parse(BASE).unwrap();
        assert!(apply_env(&mut s, &env(&[("GOSSAMER_HEAL", "maybe")])).is_err());
        assert_eq!(
            resolve_heal(&HealTable::default(), Duration::from_millis(200)).unwrap().unwrap().verdict_grace,
            Duration::from_millis(400)
        );
    }

    /// `[runtime]` is gossamer-net's schema: set in the file and by the
    /// environment, it reaches the node's configuration; bad values name
    /// the key or the variable.
    #[test]
    fn runtime_limits_come_from_the_file_and_the_environment() {
        let text =
            format!("{BASE}[runtime]\nmax_inbound_streams = 9\nstream_header_timeout = \"750ms\"\nmax_seeds = 64\n");
        let mut s = AgentSettings::parse(&text).unwrap();
        let unknown = apply_env(
            &mut s,
            &env(&[
                ("GOSSAMER_RUNTIME_MAX_SEEDS", "16"),
                ("GOSSAMER_RUNTIME_STREAM_BUFFER_BUDGET", "67108864"),
                ("GOSSAMER_RUNTIME_STREAM_TIMEOUT", "4s"),
            ]),
        )
        .unwrap();
        assert!(unknown.is_empty(), "{unknown:?}");
        let node = s.resolve(Path::new(".")).unwrap().node;
        assert_eq!(
            (node.max_inbound_streams, node.stream_header_timeout, node.max_seeds, node.stream_timeout),
            (9, Duration::from_millis(750), 16, Duration::from_secs(4)),
            "file, then environment over the file"
        );
        assert_eq!(node.max_pending_push_pulls, RuntimeLimits::default().max_pending_push_pulls);
        for key in RuntimeLimits::keys() {
            let var = format!("GOSSAMER_RUNTIME_{}", key.to_ascii_uppercase());
            assert_eq!(key_of_var(&var), Some(format!("runtime.{key}")));
            assert!(env_vars().contains(&var), "{var} missing from --help");
        }

        let err = AgentSettings::parse(&format!("{BASE}[runtime]\nmax_seed = 3\n")).unwrap_err();
        assert!(err.contains("max_seed"), "{err}");
        let err = AgentSettings::parse(&format!("{BASE}[runtime]\nstream_timeout = 3\n")).unwrap_err();
        assert!(err.contains("stream_timeout"), "{err}");
        let err = resolve(&format!("{BASE}[runtime]\nmax_inbound_streams_per_ip = 0\n")).unwrap_err();
        assert!(err.to_string().contains("`runtime.max_inbound_streams_per_ip`"), "{err}");
        let mut s = AgentSettings::parse(BASE).unwrap();
        let err = apply_env(&mut s, &env(&[("GOSSAMER_RUNTIME_MAX_SEEDS", "many")])).unwrap_err();
        assert!(err.to_string().contains("GOSSAMER_RUNTIME_MAX_SEEDS"), "{err}");
        let e = env(&[("GOSSAMER_RUNTIME_STREAM_BUFFER_BUDGET", "4096")]);
        let mut s = AgentSettings::parse(BASE).unwrap();
        apply_env(&mut s, &e).unwrap();
        let msg = explain(s.resolve(Path::new(".")).unwrap_err(), &e);
        assert!(
            msg.contains("`runtime.stream_buffer_budget`") && msg.contains("GOSSAMER_RUNTIME_STREAM_BUFFER_BUDGET"),
            "{msg}"
        );
    }

    /// `[http]` and `[dns]` get generated variables too; setting one turns
    /// the listener on. The `[dns]` server's names never collide with the
    /// DNS discovery strategy's, and unknown `GOSSAMER_DNS_*` still warn.
    #[test]
    fn http_and_dns_tables_have_generated_variables() {
        let mut s = AgentSettings::parse(BASE).unwrap();
        let unknown = apply_env(
            &mut s,
            &env(&[
                ("GOSSAMER_HTTP_BIND", "127.0.0.1:0"),
                ("GOSSAMER_HTTP_EXPECTED_SIZE", "3"),
                ("GOSSAMER_DNS_DOMAIN", "svc.example"),
                ("GOSSAMER_DNS_TTL", "7"),
                ("GOSSAMER_DNS_BOGUS", "1"),
                ("GOSSAMER_HTTP_BOGUS", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(unknown, vec!["GOSSAMER_DNS_BOGUS".to_string(), "GOSSAMER_HTTP_BOGUS".to_string()]);
        assert!(s.discovery.is_none(), "no [dns] server variable switches discovery on");
        let r = s.resolve(Path::new(".")).unwrap();
        let http = r.http.unwrap();
        assert_eq!((http.bind, http.expected_size), ("127.0.0.1:0".parse().unwrap(), 3));
        let dns = r.dns.unwrap();
        assert_eq!((dns.domain.to_ascii().as_str(), dns.ttl), ("svc.example.", 7));
        assert_eq!(dns.bind, crate::dns::DEFAULT_BIND.parse().unwrap(), "keys not given keep their default");

        // The file's table is kept, the variable wins for its key.
        let mut s = AgentSettings::parse(&format!("{BASE}[dns]\nbind = \"127.0.0.1:5353\"\nttl = 2\n")).unwrap();
        apply_env(&mut s, &env(&[("GOSSAMER_DNS_TTL", "9")])).unwrap();
        let dns = s.resolve(Path::new(".")).unwrap().dns.unwrap();
        assert_eq!((dns.bind.port(), dns.ttl), (5353, 9));

        for (prefix, table, keys) in [
            ("GOSSAMER_HTTP_", "http", field_names::<HttpSettings>()),
            ("GOSSAMER_DNS_", "dns", field_names::<DnsSettings>()),
        ] {
            assert!(!keys.is_empty());
            for key in keys {
                let var = format!("{prefix}{}", key.to_ascii_uppercase());
                assert_eq!(key_of_var(&var), Some(format!("{table}.{key}")));
                assert!(env_vars().contains(&var), "{var} missing from --help");
                assert!(!crate::settings::ENV_VARS.contains(&var.as_str()), "{var} is also a discovery variable");
            }
        }
        // DNS discovery still works beside them.
        let mut s = AgentSettings::parse(BASE).unwrap();
        apply_env(&mut s, &env(&[("GOSSAMER_DNS_QUERY", "g.svc"), ("GOSSAMER_DNS_BIND", "127.0.0.1:0")])).unwrap();
        assert_eq!(s.discovery.as_ref().unwrap().dns.query, "g.svc");
        assert_eq!(s.dns.as_ref().unwrap().bind.as_deref(), Some("127.0.0.1:0"));

        let mut s = AgentSettings::parse(BASE).unwrap();
        let err = apply_env(&mut s, &env(&[("GOSSAMER_HTTP_MAX_CONNECTIONS", "lots")])).unwrap_err();
        assert!(err.to_string().contains("GOSSAMER_HTTP_MAX_CONNECTIONS"), "{err}");
        let e = env(&[("GOSSAMER_DNS_TTL", "999999")]);
        let mut s = AgentSettings::parse(BASE).unwrap();
        apply_env(&mut s, &e).unwrap();
        let msg = explain(s.resolve(Path::new(".")).unwrap_err(), &e);
        assert!(msg.contains("`dns.ttl`") && msg.contains("GOSSAMER_DNS_TTL"), "{msg}");
    }
}
