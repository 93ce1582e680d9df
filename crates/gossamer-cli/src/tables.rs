//! The agent's `[heal]` table: partition detection, autoheal and autoclean
//! (`gossamer_heal::HealConfig`), with its `GOSSAMER_HEAL_*` overrides.
//!
//! Unlike the library, where `NodeConfig::heal` is opt-in, the agent runs
//! the heal layer unless `enabled = false`: an agent is a cluster member an
//! operator deploys, and like EMQX (`cluster.autoheal = true`,
//! `cluster.autoclean = 24h`) it should merge the sides of a healed network
//! cut and forget long-dead members without being asked. A rejoin only
//! raises the node's incarnation and adopts the winners' view; nothing is
//! restarted.

use std::time::Duration;

use gossamer_heal::{parse_duration, Autoclean, HealConfig, Quorum};
use serde::Deserialize;

use crate::settings::{invalid, parse_bool, SettingsError};

/// The `[heal]` table. Durations are strings with a unit (`"500ms"`,
/// `"10s"`, `"10m"`, `"24h"`, `"1d"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealSettings {
    /// Run the heal layer (default: on).
    #[serde(default = "on")]
    pub enabled: bool,
    /// Merge the sides automatically (default: on); off only reports.
    pub autoheal: Option<bool>,
    /// Forget members dead this long: a duration, or `"off"`/`"0"` (default 24h).
    pub autoclean: Option<String>,
    /// Gather the other sides' claims this long before deciding (default 10s).
    pub settle: Option<String>,
    /// Ignore new detections this long after a decision (default 30s) ...
    pub hold_down: Option<String>,
    /// ... times this per decision within `flap_window` (default 2) ...
    pub backoff_factor: Option<u32>,
    /// ... up to this (default 10m).
    pub max_hold_down: Option<String>,
    /// Decisions older than this stop counting towards the backoff (default 10m).
    pub flap_window: Option<String>,
    /// Push-pull with one member held dead this often (default 30s).
    pub probe_interval: Option<String>,
    /// The expected cluster size, for the `majority` of a detection
    /// (default: the last known size).
    pub expected_size: Option<usize>,
}

fn on() -> bool {
    true
}

impl Default for HealSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            autoheal: None,
            autoclean: None,
            settle: None,
            hold_down: None,
            backoff_factor: None,
            max_hold_down: None,
            flap_window: None,
            probe_interval: None,
            expected_size: None,
        }
    }
}

/// The `GOSSAMER_HEAL*` variables, as listed in `--help`, with the keys they set.
pub const ENV_KEYS: &[(&str, &str)] = &[
    ("GOSSAMER_HEAL", "heal.enabled"),
    ("GOSSAMER_HEAL_AUTOHEAL", "heal.autoheal"),
    ("GOSSAMER_HEAL_AUTOCLEAN", "heal.autoclean"),
    ("GOSSAMER_HEAL_SETTLE", "heal.settle"),
    ("GOSSAMER_HEAL_HOLD_DOWN", "heal.hold_down"),
    ("GOSSAMER_HEAL_BACKOFF_FACTOR", "heal.backoff_factor"),
    ("GOSSAMER_HEAL_MAX_HOLD_DOWN", "heal.max_hold_down"),
    ("GOSSAMER_HEAL_FLAP_WINDOW", "heal.flap_window"),
    ("GOSSAMER_HEAL_PROBE_INTERVAL", "heal.probe_interval"),
    ("GOSSAMER_HEAL_EXPECTED_SIZE", "heal.expected_size"),
];

/// The key a `GOSSAMER_HEAL*` variable sets.
pub fn key_of_var(var: &str) -> Option<&'static str> {
    ENV_KEYS.iter().find(|(v, _)| *v == var).map(|(_, k)| *k)
}

/// Applies one `GOSSAMER_HEAL*` variable; `Ok(false)` if it is not one.
pub fn apply_env_var(heal: &mut HealSettings, var: &str, value: &str) -> Result<bool, SettingsError> {
    fn number<T: std::str::FromStr<Err = std::num::ParseIntError>>(var: &str, value: &str) -> Result<T, SettingsError> {
        value.trim().parse().map_err(|e| invalid(var, format!("{value:?}: {e}")))
    }
    let text = Some(value.trim().to_owned());
    match var {
        "GOSSAMER_HEAL" => heal.enabled = parse_bool(var, value)?,
        "GOSSAMER_HEAL_AUTOHEAL" => heal.autoheal = Some(parse_bool(var, value)?),
        "GOSSAMER_HEAL_AUTOCLEAN" => heal.autoclean = text,
        "GOSSAMER_HEAL_SETTLE" => heal.settle = text,
        "GOSSAMER_HEAL_HOLD_DOWN" => heal.hold_down = text,
        "GOSSAMER_HEAL_BACKOFF_FACTOR" => heal.backoff_factor = Some(number(var, value)?),
        "GOSSAMER_HEAL_MAX_HOLD_DOWN" => heal.max_hold_down = text,
        "GOSSAMER_HEAL_FLAP_WINDOW" => heal.flap_window = text,
        "GOSSAMER_HEAL_PROBE_INTERVAL" => heal.probe_interval = text,
        "GOSSAMER_HEAL_EXPECTED_SIZE" => heal.expected_size = Some(number(var, value)?),
        _ => return Ok(false),
    }
    Ok(true)
}

/// `heal.<field>` as a duration, or `default`.
fn duration(field: &str, value: &Option<String>, default: Duration) -> Result<Duration, SettingsError> {
    match value {
        None => Ok(default),
        Some(text) => parse_duration(text).map_err(|reason| invalid(format!("heal.{field}"), reason)),
    }
}

impl HealSettings {
    /// The heal layer's configuration, or `None` when disabled; every value
    /// checked, errors naming the key (`heal.settle`, ...).
    /// `protocol_period` is the node's probe interval: the heal layer
    /// counts a member suspect for longer than two periods before a heal as
    /// cut off (its `verdict_grace`).
    pub fn resolve(&self, protocol_period: Duration) -> Result<Option<HealConfig>, SettingsError> {
        if !self.enabled {
            return Ok(None);
        }
        let d = HealConfig::default();
        let autoclean: Autoclean = match &self.autoclean {
            None => d.autoclean,
            Some(text) => text.parse().map_err(|e: gossamer_heal::ConfigError| invalid("heal.autoclean", e.reason))?,
        };
        let quorum = match self.expected_size {
            None => d.quorum,
            Some(0) => return Err(invalid("heal.expected_size", "must be at least 1")),
            Some(n) => Quorum::Expected(n),
        };
        let config = HealConfig {
            autoheal: self.autoheal.unwrap_or(d.autoheal),
            settle: duration("settle", &self.settle, d.settle)?,
            hold_down: duration("hold_down", &self.hold_down, d.hold_down)?,
            backoff_factor: self.backoff_factor.unwrap_or(d.backoff_factor),
            max_hold_down: duration("max_hold_down", &self.max_hold_down, d.max_hold_down)?,
            flap_window: duration("flap_window", &self.flap_window, d.flap_window)?,
            probe_interval: duration("probe_interval", &self.probe_interval, d.probe_interval)?,
            verdict_grace: protocol_period.saturating_mul(2),
            quorum,
            autoclean,
            ..d
        };
        config.validate().map_err(|e| invalid(format!("heal.{}", e.field), e.reason))?;
        Ok(Some(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> HealSettings {
        #[derive(Deserialize)]
        struct File {
            heal: HealSettings,
        }
        toml::from_str::<File>(text).unwrap().heal
    }

    const PERIOD: Duration = Duration::from_secs(1);

    #[test]
    fn absent_table_means_heal_on_with_the_library_defaults() {
        let config = HealSettings::default().resolve(PERIOD).unwrap().expect("on by default");
        let d = HealConfig::default();
        assert!(config.autoheal);
        assert_eq!(config.autoclean, Autoclean::After(Duration::from_secs(86_400)));
        assert_eq!((config.settle, config.hold_down, config.probe_interval), (d.settle, d.hold_down, d.probe_interval));
        assert_eq!(config.verdict_grace, Duration::from_secs(2));
        assert_eq!(config.quorum, Quorum::LastKnown);
    }

    #[test]
    fn every_key_maps_onto_the_heal_config() {
        let s = parse(
            r#"
[heal]
autoheal = false
autoclean = "90s"
settle = "2s"
hold_down = "45s"
backoff_factor = 3
max_hold_down = "1h"
flap_window = "20m"
probe_interval = "500ms"
expected_size = 5
"#,
        );
        let c = s.resolve(Duration::from_millis(200)).unwrap().unwrap();
        assert!(!c.autoheal);
        assert_eq!(c.autoclean, Autoclean::After(Duration::from_secs(90)));
        assert_eq!(c.settle, Duration::from_secs(2));
        assert_eq!(c.hold_down, Duration::from_secs(45));
        assert_eq!(c.backoff_factor, 3);
        assert_eq!(c.max_hold_down, Duration::from_secs(3600));
        assert_eq!(c.flap_window, Duration::from_secs(1200));
        assert_eq!(c.probe_interval, Duration::from_millis(500));
        assert_eq!(c.quorum, Quorum::Expected(5));
        assert_eq!(c.verdict_grace, Duration::from_millis(400));
    }

    #[test]
    fn autoclean_off_and_zero_disable_it() {
        for off in ["off", "0", "OFF", "0s"] {
            let c = parse(&format!("[heal]\nautoclean = \"{off}\"\n")).resolve(PERIOD).unwrap().unwrap();
            assert_eq!(c.autoclean, Autoclean::Off, "{off}");
        }
        assert_eq!(parse("[heal]\nenabled = false\n").resolve(PERIOD).unwrap(), None);
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases = [
            ("autoclean = \"soon\"", "heal.autoclean"),
            ("autoclean = \"12\"", "heal.autoclean"),
            ("settle = \"10\"", "heal.settle"),
            ("hold_down = \"-3s\"", "heal.hold_down"),
            ("probe_interval = \"0\"", "heal.probe_interval"),
            ("backoff_factor = 0", "heal.backoff_factor"),
            ("backoff_factor = 99", "heal.backoff_factor"),
            ("hold_down = \"20m\"", "heal.max_hold_down"),
            ("expected_size = 0", "heal.expected_size"),
            ("flap_window = \"5 minutes\"", "heal.flap_window"),
        ];
        for (line, key) in cases {
            let err = parse(&format!("[heal]\n{line}\n")).resolve(PERIOD).unwrap_err();
            assert!(err.to_string().contains(&format!("`{key}`")), "{line}: {err}");
        }
        // Unknown keys and wrong types are refused by the parser, naming them.
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct File {
            heal: HealSettings,
        }
        let err = toml::from_str::<File>("[heal]\nautoheel = true\n").unwrap_err().to_string();
        assert!(err.contains("autoheel"), "{err}");
        let err = toml::from_str::<File>("[heal]\nautoclean = 5\n").unwrap_err().to_string();
        assert!(err.contains("autoclean"), "{err}");
    }

    #[test]
    fn the_agent_file_resolves_its_heal_table() {
        use crate::settings::{apply_env, explain, AgentSettings};
        use std::collections::BTreeMap;
        use std::path::Path;
        let base = "name = \"a@h\"\nbind = \"127.0.0.1:0\"\npreset = \"local\"\ninsecure = true\n";
        let r = AgentSettings::parse(base).unwrap().resolve(Path::new(".")).unwrap();
        let heal = r.node.heal.expect("the agent runs the heal layer by default");
        assert!(heal.autoheal);
        let text = format!("{base}[heal]\nautoclean = \"2h\"\nsettle = \"1s\"\n");
        let heal = AgentSettings::parse(&text).unwrap().resolve(Path::new(".")).unwrap().node.heal.unwrap();
        assert_eq!(
            (heal.autoclean, heal.settle),
            (Autoclean::After(Duration::from_secs(7200)), Duration::from_secs(1))
        );
        let text = format!("{base}[heal]\nenabled = false\n");
        assert!(AgentSettings::parse(&text).unwrap().resolve(Path::new(".")).unwrap().node.heal.is_none());
        let text = format!("{base}[heal]\nautoclean = \"forever\"\n");
        let err = AgentSettings::parse(&text).unwrap().resolve(Path::new(".")).unwrap_err();
        assert!(err.to_string().contains("`heal.autoclean`"), "{err}");
        // A bad value from the environment names the variable too.
        let env: BTreeMap<String, String> = [("GOSSAMER_HEAL_SETTLE".to_string(), "10".to_string())].into();
        let mut s = AgentSettings::parse(base).unwrap();
        apply_env(&mut s, &env).unwrap();
        let msg = explain(s.resolve(Path::new(".")).unwrap_err(), &env);
        assert!(msg.contains("`heal.settle`") && msg.contains("GOSSAMER_HEAL_SETTLE"), "{msg}");
    }

    #[test]
    fn env_overrides_set_the_keys() {
        let mut s = HealSettings::default();
        for (var, value) in [
            ("GOSSAMER_HEAL_AUTOCLEAN", "off"),
            ("GOSSAMER_HEAL_SETTLE", "3s"),
            ("GOSSAMER_HEAL_EXPECTED_SIZE", "7"),
            ("GOSSAMER_HEAL_AUTOHEAL", "false"),
        ] {
            assert!(apply_env_var(&mut s, var, value).unwrap(), "{var}");
        }
        let c = s.resolve(PERIOD).unwrap().unwrap();
        assert_eq!(
            (c.autoclean, c.settle, c.quorum, c.autoheal),
            (Autoclean::Off, Duration::from_secs(3), Quorum::Expected(7), false)
        );
        assert!(!apply_env_var(&mut s, "GOSSAMER_HEALTH", "1").unwrap());
        let err = apply_env_var(&mut s, "GOSSAMER_HEAL", "maybe").unwrap_err();
        assert!(err.to_string().contains("GOSSAMER_HEAL"), "{err}");
        let err = apply_env_var(&mut s, "GOSSAMER_HEAL_EXPECTED_SIZE", "many").unwrap_err();
        assert!(err.to_string().contains("GOSSAMER_HEAL_EXPECTED_SIZE"), "{err}");
        apply_env_var(&mut s, "GOSSAMER_HEAL", "off").unwrap();
        assert_eq!(s.resolve(PERIOD).unwrap(), None);
        for (var, key) in ENV_KEYS {
            assert_eq!(key_of_var(var), Some(*key));
        }
    }
}
