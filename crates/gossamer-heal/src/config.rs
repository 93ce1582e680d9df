//! Settings of the heal layer, their defaults and their validation.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use gossamer_core::{overlay, set_from_text, Overrides};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A bad configuration value; `field` names the offending [`HealConfig`]
/// field. The core's error type: one shape for every settings table.
pub use gossamer_core::ConfigError;

fn config_error(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError { field, reason: reason.into() }
}

/// How long a member may stay dead before it is reaped from the member
/// list, or [`Autoclean::Off`]. The SWIM core reaps (see
/// [`crate::core_adapter::core_config`]).
///
/// Parses from `"off"`, `"0"`, or a number with a unit `ms`, `s`, `m`, `h`,
/// `d` (`"24h"`, `"90s"`), the way EMQX spells `cluster.autoclean`.
///
/// ```
/// use std::time::Duration;
/// use gossamer_heal::Autoclean;
/// assert_eq!("off".parse::<Autoclean>().unwrap(), Autoclean::Off);
/// assert_eq!("0".parse::<Autoclean>().unwrap(), Autoclean::Off);
/// assert_eq!("24h".parse::<Autoclean>().unwrap(), Autoclean::After(Duration::from_secs(86_400)));
/// assert!("soon".parse::<Autoclean>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Autoclean {
    /// Never reap.
    Off,
    /// Reap members dead for longer than this.
    After(Duration),
}

impl Autoclean {
    /// `Off` for a zero duration, `After(d)` otherwise.
    pub fn from_duration(d: Duration) -> Self {
        if d.is_zero() {
            Autoclean::Off
        } else {
            Autoclean::After(d)
        }
    }

    /// The timeout, if enabled.
    pub fn timeout(self) -> Option<Duration> {
        match self {
            Autoclean::Off => None,
            Autoclean::After(d) => Some(d),
        }
    }
}

impl Default for Autoclean {
    /// 24 hours, as in EMQX.
    fn default() -> Self {
        Autoclean::After(Duration::from_secs(24 * 3600))
    }
}

impl fmt::Display for Autoclean {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Autoclean::Off => f.write_str("off"),
            Autoclean::After(d) => write!(f, "{}", humantime_serde::re::humantime::format_duration(*d)),
        }
    }
}

impl FromStr for Autoclean {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") || s.eq_ignore_ascii_case("false") {
            return Ok(Autoclean::Off);
        }
        parse_duration(s).map(Autoclean::from_duration).map_err(|reason| config_error("autoclean", reason))
    }
}

/// Parses a duration the way every gossamer settings table spells one:
/// `"0"` or humantime text (`"500ms"`, `"10s"`, `"10m"`, `"24h"`, `"1d"`,
/// `"1h 30m"`). A bare number other than zero is refused: its unit would be
/// a guess.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(gossamer_heal::parse_duration("10m"), Ok(Duration::from_secs(600)));
/// assert!(gossamer_heal::parse_duration("10").is_err());
/// ```
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    humantime_serde::re::humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not `off` or a duration like `24h`: {e}"))
}

impl Serialize for Autoclean {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Autoclean {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(|e: ConfigError| de::Error::custom(e.reason))
    }
}

/// What a side compares itself against to tell whether it is the majority
/// (the `majority` field of [`crate::HealEvent::PartitionDetected`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quorum {
    /// Do not compute it (`majority: None`).
    Off,
    /// The operator's expected cluster size.
    Expected(usize),
    /// The last known size: every member this node knows that has not left
    /// and has not been reaped, itself included. Members cut off by a
    /// partition are dead, not forgotten, so they still count.
    #[default]
    LastKnown,
}

/// Written `"off"`, `"last_known"` or the expected size (`5`).
impl Serialize for Quorum {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Quorum::Off => serializer.serialize_str("off"),
            Quorum::LastKnown => serializer.serialize_str("last_known"),
            Quorum::Expected(n) => serializer.serialize_u64(*n as u64),
        }
    }
}

impl<'de> Deserialize<'de> for Quorum {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct QuorumVisitor;
        impl Visitor<'_> for QuorumVisitor {
            type Value = Quorum;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"off\", \"last_known\" or an expected cluster size")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Quorum, E> {
                usize::try_from(n).map(Quorum::Expected).map_err(|_| E::custom("cluster size too large"))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Quorum, E> {
                u64::try_from(n)
                    .map_err(|_| E::custom("cluster size must not be negative"))
                    .and_then(|n| self.visit_u64(n))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Quorum, E> {
                match s.trim() {
                    "off" => Ok(Quorum::Off),
                    "last_known" => Ok(Quorum::LastKnown),
                    digits => digits
                        .parse::<u64>()
                        .map_err(|_| E::custom(format!("{s:?}: {}", "expected \"off\", \"last_known\" or a size")))
                        .and_then(|n| self.visit_u64(n)),
                }
            }
        }
        deserializer.deserialize_any(QuorumVisitor)
    }
}

/// Heal-layer settings. Defaults follow EMQX (autoheal on, autoclean 24 h)
/// and ringpop (probe a faulty member every 30 s).
///
/// ```
/// use std::time::Duration;
/// use gossamer_heal::HealConfig;
/// let mut config = HealConfig::default();
/// assert!(config.autoheal);
/// config.hold_down = Duration::from_secs(600);
/// config.max_hold_down = Duration::from_secs(60);
/// let err = config.validate().unwrap_err();
/// assert_eq!(err.field, "max_hold_down");
/// ```
///
/// Serialisable (issue #17): every field is a key of the `[heal]` table of
/// simulator scenarios and agent files (see [`HealTable`]), durations
/// written the humantime way (`"10s"`, `"24h"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealConfig {
    /// Merge the sides of a partition automatically (on by default). When
    /// off, partitions are still detected and reported, and the hold-down
    /// still spaces the reports.
    pub autoheal: bool,
    /// How long to gather the other sides' views after a first detection
    /// before deciding the winner, so a three-way split or a slow side is
    /// seen whole (10 s; ekka waits 12 s before building its split view).
    #[serde(with = "humantime_serde")]
    pub settle: Duration,
    /// After a heal, new detections are ignored this long.
    #[serde(with = "humantime_serde")]
    pub hold_down: Duration,
    /// Each heal within `flap_window` of earlier ones multiplies the
    /// hold-down by this factor (1 = no backoff).
    pub backoff_factor: u32,
    /// Upper bound of the backed-off hold-down.
    #[serde(with = "humantime_serde")]
    pub max_hold_down: Duration,
    /// Heals older than this no longer count towards the backoff.
    #[serde(with = "humantime_serde")]
    pub flap_window: Duration,
    /// How often to probe one dead member (ringpop's heal period): a
    /// push-pull with a member declared dead is how a node notices that
    /// connectivity has returned, since SWIM stops talking to the dead.
    #[serde(with = "humantime_serde")]
    pub probe_interval: Duration,
    /// A member coming back is a partition signal when the nodes that
    /// declared it (and the members that died with it) dead make up at
    /// least this fraction of the members live on our side. In (0, 1].
    pub comeback_quorum: f64,
    /// Members declared dead within this time of a returning member are
    /// presumed to be on its side of the cut (for the detection event's
    /// `theirs` before the other side's own view arrives).
    #[serde(with = "humantime_serde")]
    pub correlation_window: Duration,
    /// A member that stopped looking alive (suspect or dead) less than this
    /// before the first sign of a heal still counts on our side: the other
    /// side's verdicts (its `Confirm`s and suspicions, crossing the link
    /// the moment it comes back) reach us before our member can refute
    /// them. A member suspect or dead for longer was cut off from us, even
    /// if our side had not declared it dead yet when the link came back.
    /// Keep it below the core's shortest suspicion timeout (a few protocol
    /// periods) and above the time a member needs to refute (a gossip
    /// round or two): 2 s by default, two periods of the LAN preset; scale
    /// it with the protocol period (the `gossamer` agent sets two periods).
    #[serde(with = "humantime_serde")]
    pub verdict_grace: Duration,
    /// How to compute `majority`.
    pub quorum: Quorum,
    /// Forget members dead for this long (24 h by default; `Off` keeps
    /// them). Carried out by the SWIM core, whose `dead_retention` this
    /// sets ([`crate::core_adapter::core_config`]); the heal layer drops its
    /// record when the core reports the removal ([`crate::Heal::observe_removed`]).
    pub autoclean: Autoclean,
}

impl Default for HealConfig {
    fn default() -> Self {
        Self {
            autoheal: true,
            settle: Duration::from_secs(10),
            hold_down: Duration::from_secs(30),
            backoff_factor: 2,
            max_hold_down: Duration::from_secs(600),
            flap_window: Duration::from_secs(600),
            probe_interval: Duration::from_secs(30),
            comeback_quorum: 0.5,
            correlation_window: Duration::from_secs(10),
            verdict_grace: Duration::from_secs(2),
            quorum: Quorum::LastKnown,
            autoclean: Autoclean::default(),
        }
    }
}

/// Largest accepted backoff factor: beyond it the hold-down saturates at
/// `max_hold_down` after one or two heals anyway.
pub const MAX_BACKOFF_FACTOR: u32 = 16;

impl HealConfig {
    /// Checks every value; the error names the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.probe_interval.is_zero() {
            return Err(config_error("probe_interval", "must be greater than zero"));
        }
        if self.backoff_factor == 0 || self.backoff_factor > MAX_BACKOFF_FACTOR {
            return Err(config_error(
                "backoff_factor",
                format!("is {}, must be between 1 and {MAX_BACKOFF_FACTOR}", self.backoff_factor),
            ));
        }
        if self.max_hold_down < self.hold_down {
            return Err(config_error(
                "max_hold_down",
                format!("{:?} is shorter than hold_down {:?}", self.max_hold_down, self.hold_down),
            ));
        }
        if !(self.comeback_quorum > 0.0 && self.comeback_quorum <= 1.0) {
            return Err(config_error(
                "comeback_quorum",
                format!("is {}, must be a fraction in (0, 1]", self.comeback_quorum),
            ));
        }
        if self.quorum == Quorum::Expected(0) {
            return Err(config_error("quorum", "expected cluster size must be at least 1"));
        }
        Ok(())
    }
}

impl HealConfig {
    /// The defaults for a protocol period: [`HealConfig::default`] with
    /// `verdict_grace` at two periods (see its docs), the base every
    /// `[heal]` table is laid over.
    pub fn for_period(protocol_period: Duration) -> Self {
        Self { verdict_grace: protocol_period.saturating_mul(2), ..Self::default() }
    }
}

/// The `[heal]` table of simulator scenarios and agent files: `enabled`
/// (default true) plus any [`HealConfig`] key. Keys are checked when the
/// table is read (an unknown or ill-typed key is refused, naming it) and
/// laid over [`HealConfig::for_period`] by [`HealTable::resolve`], once the
/// protocol period is known. Adding a field to `HealConfig` makes it
/// settable here, and from `GOSSAMER_HEAL_*`, with no other edit.
///
/// ```
/// use std::time::Duration;
/// use gossamer_heal::{Autoclean, HealTable};
/// let table: HealTable = serde_json::from_str(r#"{"autoclean": "90s", "quorum": 5}"#).unwrap();
/// let config = table.resolve(Duration::from_secs(1)).unwrap().expect("enabled");
/// assert_eq!(config.autoclean, Autoclean::After(Duration::from_secs(90)));
/// assert_eq!(config.verdict_grace, Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct HealTable {
    /// Run the heal layer at all.
    pub enabled: bool,
    /// The [`HealConfig`] keys given.
    pub overrides: Overrides,
}

impl Default for HealTable {
    fn default() -> Self {
        Self { enabled: true, overrides: Overrides::new() }
    }
}

impl HealTable {
    /// Every key of the table but `enabled`: the fields of [`HealConfig`].
    pub fn keys() -> &'static [&'static str] {
        gossamer_core::field_names::<HealConfig>()
    }

    /// The heal layer's settings for this protocol period, validated; `None`
    /// when disabled. The error names the key.
    pub fn resolve(&self, protocol_period: Duration) -> Result<Option<HealConfig>, ConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        let config = overlay(&HealConfig::for_period(protocol_period), &self.overrides)?;
        config.validate()?;
        Ok(Some(config))
    }

    /// Sets one key from text (an environment variable); `enabled` too.
    pub fn set(&mut self, key: &str, text: &str) -> Result<(), ConfigError> {
        if key == "enabled" {
            let mut flag = Overrides::new();
            set_from_text(&EnabledOnly { enabled: true }, &mut flag, "enabled", text)
                .map_err(|e| config_error("enabled", e.reason))?;
            self.enabled = flag.get("enabled").and_then(serde_json::Value::as_bool).unwrap_or(true);
            return Ok(());
        }
        set_from_text(&HealConfig::default(), &mut self.overrides, key, text)
    }
}

/// The shape `enabled` is parsed through (a boolean, typed like the others).
#[derive(Serialize, Deserialize)]
struct EnabledOnly {
    enabled: bool,
}

impl Serialize for HealTable {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serde_json::Map::new();
        map.insert("enabled".into(), serde_json::Value::Bool(self.enabled));
        map.extend(self.overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        map.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for HealTable {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut overrides = Overrides::deserialize(deserializer)?;
        let enabled = match overrides.remove("enabled") {
            None => true,
            Some(serde_json::Value::Bool(b)) => b,
            Some(other) => return Err(de::Error::custom(format!("`enabled`: expected a boolean, found {other}"))),
        };
        overlay(&HealConfig::default(), &overrides)
            .map_err(|e| de::Error::custom(format!("`{}`: {}", e.field, e.reason)))?;
        Ok(HealTable { enabled, overrides })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        HealConfig::default().validate().unwrap();
        assert_eq!(HealConfig::default().autoclean.timeout(), Some(Duration::from_secs(86_400)));
    }

    #[test]
    fn each_bad_field_is_named() {
        type Spoil = fn(&mut HealConfig);
        let cases: Vec<(&str, Spoil)> = vec![
            ("probe_interval", |c| c.probe_interval = Duration::ZERO),
            ("backoff_factor", |c| c.backoff_factor = 0),
            ("backoff_factor", |c| c.backoff_factor = 17),
            ("max_hold_down", |c| c.max_hold_down = Duration::from_secs(1)),
            ("comeback_quorum", |c| c.comeback_quorum = 0.0),
            ("comeback_quorum", |c| c.comeback_quorum = f64::NAN),
            ("comeback_quorum", |c| c.comeback_quorum = 1.5),
            ("quorum", |c| c.quorum = Quorum::Expected(0)),
        ];
        for (field, spoil) in cases {
            let mut config = HealConfig::default();
            spoil(&mut config);
            let err = config.validate().unwrap_err();
            assert_eq!(err.field, field, "{err}");
            assert!(err.to_string().contains(field));
        }
    }

    #[test]
    fn autoclean_parses() {
        assert_eq!("OFF".parse::<Autoclean>().unwrap(), Autoclean::Off);
        assert_eq!("0s".parse::<Autoclean>().unwrap(), Autoclean::Off);
        assert_eq!("90s".parse::<Autoclean>().unwrap(), Autoclean::After(Duration::from_secs(90)));
        assert_eq!("1d".parse::<Autoclean>().unwrap(), Autoclean::After(Duration::from_secs(86_400)));
        assert_eq!("250ms".parse::<Autoclean>().unwrap(), Autoclean::After(Duration::from_millis(250)));
        for bad in ["", "h", "12", "12x", "-1h", "99999999999999999999d"] {
            let err = bad.parse::<Autoclean>().unwrap_err();
            assert_eq!(err.field, "autoclean", "{bad:?}");
        }
        assert_eq!(Autoclean::from_duration(Duration::ZERO), Autoclean::Off);
    }

    /// Every key is a scalar an operator can write and a variable carry (a
    /// `Duration` without `humantime_serde` would be `{secs, nanos}`).
    #[test]
    fn every_config_value_is_a_scalar() {
        let value = serde_json::to_value(HealConfig::default()).unwrap();
        for (key, value) in value.as_object().unwrap() {
            assert!(!value.is_object() && !value.is_array(), "`{key}` serialises as {value}");
        }
    }

    #[test]
    fn config_round_trips_and_tables_name_their_keys() {
        let config = HealConfig { quorum: Quorum::Expected(5), autoclean: Autoclean::Off, ..HealConfig::default() };
        let text = serde_json::to_string(&config).unwrap();
        assert!(text.contains("\"settle\":\"10s\"") && text.contains("\"autoclean\":\"off\""), "{text}");
        assert_eq!(serde_json::from_str::<HealConfig>(&text).unwrap(), config);
        for quorum in [Quorum::Off, Quorum::LastKnown, Quorum::Expected(3)] {
            let back: Quorum = serde_json::from_str(&serde_json::to_string(&quorum).unwrap()).unwrap();
            assert_eq!(back, quorum);
        }
        let err = serde_json::from_str::<HealTable>(r#"{"settle": "10"}"#).unwrap_err().to_string();
        assert!(err.contains("`settle`"), "{err}");
        let err = serde_json::from_str::<HealTable>(r#"{"autoheel": true}"#).unwrap_err().to_string();
        assert!(err.contains("autoheel"), "{err}");
        let table: HealTable = serde_json::from_str(r#"{"enabled": false, "hold_down": "1m"}"#).unwrap();
        assert_eq!(table.resolve(Duration::from_secs(1)).unwrap(), None);
        let mut table = HealTable::default();
        table.set("quorum", "7").unwrap();
        table.set("autoclean", "0").unwrap();
        table.set("verdict_grace", "750ms").unwrap();
        let c = table.resolve(Duration::from_secs(5)).unwrap().unwrap();
        assert_eq!(
            (c.quorum, c.autoclean, c.verdict_grace),
            (Quorum::Expected(7), Autoclean::Off, Duration::from_millis(750))
        );
        assert_eq!(table.set("backoff_factor", "many").unwrap_err().field, "backoff_factor");
        table.set("enabled", "off").unwrap();
        assert!(!table.enabled);
        assert_eq!(
            HealTable::keys().len(),
            serde_json::to_value(HealConfig::default()).unwrap().as_object().unwrap().len()
        );
    }
}
