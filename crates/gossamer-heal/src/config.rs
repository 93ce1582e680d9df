//! Settings of the heal layer, their defaults and their validation.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A bad configuration value; `field` names the offending [`HealConfig`] field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid heal config `{field}`: {reason}")]
pub struct ConfigError {
    /// The offending field.
    pub field: &'static str,
    /// Why it was refused.
    pub reason: String,
}

impl ConfigError {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self { field, reason: reason.into() }
    }
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
            Autoclean::After(d) => write!(f, "{}ms", d.as_millis()),
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
        parse_duration(s).map(Autoclean::from_duration).map_err(|reason| ConfigError::new("autoclean", reason))
    }
}

/// Parses a duration the way [`Autoclean`] spells one: `"0"` or
/// `<integer><unit>` with unit `ms`, `s`, `m`, `h` or `d`. For
/// configuration files that set the other [`HealConfig`] durations.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(gossamer_heal::parse_duration("10m"), Ok(Duration::from_secs(600)));
/// assert!(gossamer_heal::parse_duration("10").is_err());
/// ```
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("{s:?} is not `off` or a duration like `24h`"))?;
    let unit_ms: u64 = match unit {
        "" if n == 0 => 0,
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{s:?} has no unit among ms, s, m, h, d")),
    };
    n.checked_mul(unit_ms).map(Duration::from_millis).ok_or_else(|| format!("{s:?} is too long"))
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
#[derive(Debug, Clone, PartialEq)]
pub struct HealConfig {
    /// Merge the sides of a partition automatically (on by default). When
    /// off, partitions are still detected and reported, and the hold-down
    /// still spaces the reports.
    pub autoheal: bool,
    /// How long to gather the other sides' views after a first detection
    /// before deciding the winner, so a three-way split or a slow side is
    /// seen whole (10 s; ekka waits 12 s before building its split view).
    pub settle: Duration,
    /// After a heal, new detections are ignored this long.
    pub hold_down: Duration,
    /// Each heal within `flap_window` of earlier ones multiplies the
    /// hold-down by this factor (1 = no backoff).
    pub backoff_factor: u32,
    /// Upper bound of the backed-off hold-down.
    pub max_hold_down: Duration,
    /// Heals older than this no longer count towards the backoff.
    pub flap_window: Duration,
    /// How often to probe one dead member (ringpop's heal period): a
    /// push-pull with a member declared dead is how a node notices that
    /// connectivity has returned, since SWIM stops talking to the dead.
    pub probe_interval: Duration,
    /// A member coming back is a partition signal when the nodes that
    /// declared it (and the members that died with it) dead make up at
    /// least this fraction of the members live on our side. In (0, 1].
    pub comeback_quorum: f64,
    /// Members declared dead within this time of a returning member are
    /// presumed to be on its side of the cut (for the detection event's
    /// `theirs` before the other side's own view arrives).
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
            return Err(ConfigError::new("probe_interval", "must be greater than zero"));
        }
        if self.backoff_factor == 0 || self.backoff_factor > MAX_BACKOFF_FACTOR {
            return Err(ConfigError::new(
                "backoff_factor",
                format!("is {}, must be between 1 and {MAX_BACKOFF_FACTOR}", self.backoff_factor),
            ));
        }
        if self.max_hold_down < self.hold_down {
            return Err(ConfigError::new(
                "max_hold_down",
                format!("{:?} is shorter than hold_down {:?}", self.max_hold_down, self.hold_down),
            ));
        }
        if !(self.comeback_quorum > 0.0 && self.comeback_quorum <= 1.0) {
            return Err(ConfigError::new(
                "comeback_quorum",
                format!("is {}, must be a fraction in (0, 1]", self.comeback_quorum),
            ));
        }
        if self.quorum == Quorum::Expected(0) {
            return Err(ConfigError::new("quorum", "expected cluster size must be at least 1"));
        }
        Ok(())
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
}
