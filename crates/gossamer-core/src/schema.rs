//! The one configuration schema (issue #17): presets, "preset plus
//! overrides" tables, and the helpers that let every front end (simulator
//! scenarios, the agent's file and its `GOSSAMER_*` variables) set every
//! field of a serialisable settings struct without listing the fields again.
//!
//! A table is kept as the keys it was given ([`Overrides`]) and laid over a
//! base ([`overlay`]): a preset for `[protocol]`, the heal defaults for
//! `[heal]`. Keys are checked against the struct's own serde field names
//! when the table is read, so a misspelt key or a wrong type is refused up
//! front, naming the key; adding a field to [`Config`] makes it settable
//! everywhere with no other edit.
//!
//! ```
//! use std::time::Duration;
//! use gossamer_core::{Preset, ProtocolConfig};
//! let table: ProtocolConfig = serde_json::from_str(r#"{"preset": "wan", "probe_timeout": "2s"}"#).unwrap();
//! let config = table.to_config().unwrap();
//! assert_eq!(config.probe_timeout, Duration::from_secs(2));
//! assert_eq!(config.probe_interval, Preset::Wan.config().probe_interval);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::de::{self, DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::{Config, ConfigError};

/// The keys a settings table was given, each with its value, before they
/// are laid over a base ([`overlay`]). Kept raw so that a base chosen later
/// (a preset named by an environment variable, the protocol period the heal
/// defaults scale with) still applies.
pub type Overrides = BTreeMap<String, serde_json::Value>;

/// A named set of protocol timings: `lan` (the default) and `memberlist`
/// (both memberlist's LAN profile), `fast` (a LAN with faster failure
/// detection, issue #19), `wan` or `local` (memberlist's other two). The one preset type, re-exported by gossamer-net, the simulator
/// and the facade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// A LAN (the default): memberlist's LAN profile (1 s probes) with
    /// failure detection in under half memberlist's time (see
    /// [`Config::lan`]).
    #[default]
    Lan,
    /// memberlist's LAN profile exactly, its suspicion timeouts included
    /// (see [`Config::memberlist`]), for those who need memberlist's timings.
    Memberlist,
    /// The LAN default's failure detection by its own name (see
    /// [`Config::fast`]; today the same settings as `lan`).
    Fast,
    /// A WAN: slower probes, longer timeouts.
    Wan,
    /// Loopback and tests: fast everything.
    Local,
}

impl Preset {
    /// The core's settings for this preset.
    pub fn config(self) -> Config {
        match self {
            Preset::Lan => Config::lan(),
            Preset::Memberlist => Config::memberlist(),
            Preset::Fast => Config::fast(),
            Preset::Wan => Config::wan(),
            Preset::Local => Config::local(),
        }
    }
}

impl FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "lan" => Ok(Preset::Lan),
            "memberlist" => Ok(Preset::Memberlist),
            "fast" => Ok(Preset::Fast),
            "wan" => Ok(Preset::Wan),
            "local" => Ok(Preset::Local),
            other => Err(format!("unknown preset {other:?} (expected lan, memberlist, fast, wan or local)")),
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Preset::Lan => "lan",
            Preset::Memberlist => "memberlist",
            Preset::Fast => "fast",
            Preset::Wan => "wan",
            Preset::Local => "local",
        })
    }
}

/// A deserializer that only records the field names a derived
/// `Deserialize` asks for, then gives up: serde's own list of a struct's
/// keys, so that no front end lists them again.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("field names only"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

/// The keys of a struct with a derived `Deserialize` (empty for anything
/// else): `field_names::<Config>()` lists every `[protocol]` key.
pub fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

fn as_object<T: Serialize>(base: &T) -> Result<serde_json::Map<String, serde_json::Value>, ConfigError> {
    match serde_json::to_value(base) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(ConfigError { field: "config", reason: "not a table of settings".into() }),
        Err(e) => Err(ConfigError { field: "config", reason: e.to_string() }),
    }
}

/// `base` with every key of `overrides` set. The error names the first
/// unknown or ill-typed key (`field` is the key, `reason` what serde said).
/// Values are not validated here: call the struct's own `validate`.
pub fn overlay<T: Serialize + DeserializeOwned>(base: &T, overrides: &Overrides) -> Result<T, ConfigError> {
    let names = field_names::<T>();
    let base = as_object(base)?;
    let mut merged = base.clone();
    for (key, value) in overrides {
        let Some(field) = names.iter().copied().find(|n| n == key) else {
            return Err(ConfigError {
                field: "key",
                reason: format!("unknown key `{key}`, expected one of: {}", names.join(", ")),
            });
        };
        // Each key alone over the base, so an error names it.
        let mut one = base.clone();
        one.insert(key.clone(), value.clone());
        serde_json::from_value::<T>(serde_json::Value::Object(one))
            .map_err(|e| ConfigError { field, reason: e.to_string() })?;
        merged.insert(key.clone(), value.clone());
    }
    serde_json::from_value(serde_json::Value::Object(merged))
        .map_err(|e| ConfigError { field: "config", reason: e.to_string() })
}

/// Sets `key` of `overrides` from text (an environment variable's value),
/// typed like the key's value in `base`: a number stays a number, `true`/
/// `false` (or `yes`/`no`, `on`/`off`, `1`/`0`) a boolean, anything else
/// text (durations such as `"1s"`). Checked at once: the error names the key.
pub fn set_from_text<T: Serialize + DeserializeOwned>(
    base: &T,
    overrides: &mut Overrides,
    key: &str,
    text: &str,
) -> Result<(), ConfigError> {
    let text = text.trim();
    let value = match as_object(base)?.get(key) {
        Some(serde_json::Value::Number(_)) => {
            if let Ok(n) = text.parse::<u64>() {
                serde_json::Value::from(n)
            } else if let Ok(x) = text.parse::<f64>() {
                serde_json::Value::from(x)
            } else {
                serde_json::Value::from(text)
            }
        }
        Some(serde_json::Value::Bool(_)) => match text.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => serde_json::Value::Bool(true),
            "0" | "false" | "no" | "off" => serde_json::Value::Bool(false),
            _ => serde_json::Value::from(text),
        },
        _ => match text.parse::<u64>() {
            // A number for a text key (`quorum = 5`) stays a number.
            Ok(n) if !names_a_duration(base, key) => serde_json::Value::from(n),
            _ => serde_json::Value::from(text),
        },
    };
    let mut trial = overrides.clone();
    trial.insert(key.to_owned(), value);
    overlay(base, &trial)?;
    *overrides = trial;
    Ok(())
}

/// Whether `key`'s value in `base` is humantime text (then `"0"` stays text).
fn names_a_duration<T: Serialize>(base: &T, key: &str) -> bool {
    as_object(base)
        .ok()
        .and_then(|m| {
            m.get(key).and_then(|v| v.as_str().map(|s| humantime_serde::re::humantime::parse_duration(s).is_ok()))
        })
        .unwrap_or(false)
}

/// The `[protocol]` table: a [`Preset`] plus any [`Config`] key, e.g.
/// `preset = "wan"` and `probe_timeout = "2s"`. Keys not given keep the
/// preset's values. The simulator's scenarios and the agent's file embed
/// this same type, so a table tuned in one can be pasted into the other.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProtocolConfig {
    /// The base profile (`lan` by default).
    pub preset: Preset,
    /// The keys given over the preset.
    pub overrides: Overrides,
}

impl ProtocolConfig {
    /// Every key of the table but `preset`: the fields of [`Config`].
    pub fn keys() -> &'static [&'static str] {
        field_names::<Config>()
    }

    /// The preset with the overrides applied; not validated (see
    /// [`Config::validate`]). The error names the key.
    pub fn to_config(&self) -> Result<Config, ConfigError> {
        overlay(&self.preset.config(), &self.overrides)
    }

    /// Sets one key from text (an environment variable); `preset` too.
    pub fn set(&mut self, key: &str, text: &str) -> Result<(), ConfigError> {
        if key == "preset" {
            self.preset = text.parse().map_err(|reason| ConfigError { field: "preset", reason })?;
            return self.to_config().map(drop);
        }
        set_from_text(&self.preset.config(), &mut self.overrides, key, text)
    }
}

impl Serialize for ProtocolConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serde_json::Map::new();
        map.insert("preset".into(), serde_json::Value::from(self.preset.to_string()));
        map.extend(self.overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        map.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ProtocolConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut overrides = Overrides::deserialize(deserializer)?;
        let preset = match overrides.remove("preset") {
            None => Preset::default(),
            Some(v) => Preset::deserialize(v).map_err(|e| de::Error::custom(format!("`preset`: {e}")))?,
        };
        let table = ProtocolConfig { preset, overrides };
        table.to_config().map_err(|e| de::Error::custom(format!("`{}`: {}", e.field, e.reason)))?;
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn config_round_trips_with_human_durations() {
        for config in [Config::lan(), Config::wan(), Config::local()] {
            let text = serde_json::to_string(&config).unwrap();
            assert!(text.contains("\"probe_interval\":\"1s\"") || text.contains("\"probe_interval\":\"5s\""), "{text}");
            assert_eq!(serde_json::from_str::<Config>(&text).unwrap(), config);
        }
        let c: Config = serde_json::from_str(r#"{"probe_timeout": "250ms", "dead_retention": "2h"}"#).unwrap();
        assert_eq!((c.probe_timeout, c.dead_retention), (Duration::from_millis(250), Duration::from_secs(7200)));
        assert_eq!(c.probe_interval, Config::lan().probe_interval, "missing keys keep the defaults");
        assert!(serde_json::from_str::<Config>(r#"{"probe_intervall": "1s"}"#).is_err());
    }

    /// A `Duration` field without `#[serde(with = "humantime_serde")]`
    /// would serialise as `{secs, nanos}`: every key must be a scalar that
    /// an operator can write and a `GOSSAMER_*` variable can carry.
    #[test]
    fn every_config_value_is_a_scalar() {
        for (key, value) in as_object(&Config::lan()).unwrap() {
            assert!(!value.is_object() && !value.is_array(), "`{key}` serialises as {value}: add humantime_serde");
        }
    }

    #[test]
    fn every_config_field_is_a_key_and_settable_from_text() {
        let keys = ProtocolConfig::keys();
        let serialised = as_object(&Config::lan()).unwrap();
        assert_eq!(keys.len(), serialised.len());
        for key in serialised.keys() {
            assert!(keys.contains(&key.as_str()), "{key}");
        }
        let mut table = ProtocolConfig::default();
        table.set("preset", "local").unwrap();
        table.set("probe_timeout", "300ms").unwrap();
        table.set("max_members", "1024").unwrap();
        table.set("user_share", "0.25").unwrap();
        let c = table.to_config().unwrap();
        assert_eq!((c.probe_timeout, c.max_members, c.user_share), (Duration::from_millis(300), 1024, 0.25));
        assert_eq!(c.gossip_interval, Config::local().gossip_interval);
        let err = table.set("max_members", "lots").unwrap_err();
        assert_eq!(err.field, "max_members");
        let err = table.set("probe_timeout", "soon").unwrap_err();
        assert_eq!(err.field, "probe_timeout");
        let err = table.set("bogus", "1").unwrap_err();
        assert!(err.reason.contains("bogus"), "{err}");
        assert_eq!(table.to_config().unwrap().max_members, 1024, "a refused value leaves the table as it was");
    }

    #[test]
    fn protocol_table_is_a_preset_plus_overrides() {
        let t: ProtocolConfig = serde_json::from_str(r#"{"incarnation_window": 16, "preset": "local"}"#).unwrap();
        assert_eq!(t.to_config().unwrap(), Config { incarnation_window: 16, ..Config::local() });
        let err = serde_json::from_str::<ProtocolConfig>(r#"{"mtu": "big"}"#).unwrap_err().to_string();
        assert!(err.contains("`mtu`"), "{err}");
        let err = serde_json::from_str::<ProtocolConfig>(r#"{"preset": "fastest"}"#).unwrap_err().to_string();
        assert!(err.contains("preset"), "{err}");
        let back: ProtocolConfig = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }
}
