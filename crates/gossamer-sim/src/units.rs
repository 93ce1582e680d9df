//! Human-friendly quantities in scenario files: spans of virtual time
//! (`"250ms"`, `"30s"`, `"12 periods"`) and bandwidths (`"100Mbps"`).
//!
//! A span may be given in protocol periods so that one scenario reads the
//! same whatever the preset's probe interval; it is resolved against the
//! probe interval when the simulation is built.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A span of virtual time, absolute or in protocol periods.
///
/// ```
/// use std::time::Duration;
/// use gossamer_sim::Span;
/// let one_s = Duration::from_secs(1);
/// assert_eq!("250ms".parse::<Span>().unwrap().resolve(one_s), Duration::from_millis(250));
/// assert_eq!("1.5s".parse::<Span>().unwrap().resolve(one_s), Duration::from_millis(1500));
/// assert_eq!("3 periods".parse::<Span>().unwrap().resolve(Duration::from_millis(200)), Duration::from_millis(600));
/// assert!("soon".parse::<Span>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Span {
    /// Wall-clock-like virtual time.
    Time(Duration),
    /// A multiple of the protocol period (probe interval).
    Periods(f64),
}

impl Span {
    /// Zero.
    pub const ZERO: Span = Span::Time(Duration::ZERO);

    /// The span as virtual time, given the protocol period.
    pub fn resolve(self, period: Duration) -> Duration {
        match self {
            Span::Time(d) => d,
            Span::Periods(p) => period.mul_f64(p),
        }
    }
}

impl std::str::FromStr for Span {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let value: f64 = num.parse().map_err(|_| format!("{s:?}: expected a number followed by a unit"))?;
        if !value.is_finite() || value < 0.0 {
            return Err(format!("{s:?}: must be a finite, non-negative amount"));
        }
        let secs = match unit.trim() {
            "ns" => value / 1e9,
            "us" | "µs" => value / 1e6,
            "ms" => value / 1e3,
            "s" => value,
            "m" | "min" => value * 60.0,
            "h" => value * 3600.0,
            "p" | "period" | "periods" => return Ok(Span::Periods(value)),
            other => return Err(format!("{s:?}: unknown unit {other:?} (use ns, us, ms, s, min, h or periods)")),
        };
        Ok(Span::Time(Duration::from_secs_f64(secs)))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Span::Time(d) => write!(f, "{}ms", d.as_secs_f64() * 1e3),
            Span::Periods(p) => write!(f, "{p} periods"),
        }
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpanVisitor;
        impl Visitor<'_> for SpanVisitor {
            type Value = Span;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a span such as \"250ms\", \"30s\" or \"10 periods\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Span, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(SpanVisitor)
    }
}

/// A link or uplink capacity in bytes per second.
///
/// ```
/// use gossamer_sim::Bandwidth;
/// assert_eq!("100Mbps".parse::<Bandwidth>().unwrap().bytes_per_sec(), 12_500_000);
/// assert_eq!("1MB/s".parse::<Bandwidth>().unwrap().bytes_per_sec(), 1_000_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bandwidth(u64);

impl Bandwidth {
    /// Bytes per second (never zero).
    pub fn bytes_per_sec(self) -> u64 {
        self.0
    }

    /// How long `len` bytes take to serialise onto the wire.
    pub fn transmit_time(self, len: usize) -> Duration {
        Duration::from_nanos((len as u128 * 1_000_000_000 / self.0 as u128) as u64)
    }
}

impl std::str::FromStr for Bandwidth {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let value: f64 = num.parse().map_err(|_| format!("{s:?}: expected a number followed by a unit"))?;
        let bytes = match unit.trim() {
            "bps" => value / 8.0,
            "kbps" | "Kbps" => value * 1e3 / 8.0,
            "Mbps" => value * 1e6 / 8.0,
            "Gbps" => value * 1e9 / 8.0,
            "B/s" => value,
            "kB/s" | "KB/s" => value * 1e3,
            "MB/s" => value * 1e6,
            "GB/s" => value * 1e9,
            other => {
                return Err(format!("{s:?}: unknown unit {other:?} (use bps, kbps, Mbps, Gbps, B/s, kB/s, MB/s, GB/s)"))
            }
        };
        if !bytes.is_finite() || bytes < 1.0 {
            return Err(format!("{s:?}: must be at least 1 byte per second"));
        }
        Ok(Bandwidth(bytes as u64))
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}B/s", self.0)
    }
}

impl Serialize for Bandwidth {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Bandwidth {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_parse_with_units() {
        let p = Duration::from_secs(1);
        assert_eq!("0ms".parse::<Span>().unwrap().resolve(p), Duration::ZERO);
        assert_eq!("2min".parse::<Span>().unwrap().resolve(p), Duration::from_secs(120));
        assert_eq!("500us".parse::<Span>().unwrap().resolve(p), Duration::from_micros(500));
        assert_eq!("4p".parse::<Span>().unwrap(), Span::Periods(4.0));
        assert!("-3s".parse::<Span>().is_err());
        assert!("3 fortnights".parse::<Span>().is_err());
        assert!("".parse::<Span>().is_err());
    }

    #[test]
    fn bandwidth_transmit_time() {
        let bw: Bandwidth = "8Mbps".parse().unwrap();
        assert_eq!(bw.transmit_time(1_000), Duration::from_millis(1));
        assert!("0bps".parse::<Bandwidth>().is_err());
        assert!("fast".parse::<Bandwidth>().is_err());
    }
}
