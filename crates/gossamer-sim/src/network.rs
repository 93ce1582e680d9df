//! The modelled network: per-link latency distributions, loss, duplication,
//! reordering and an optional uplink bandwidth cap, plus the cuts the fault
//! schedule puts in (symmetric partitions, one-way cuts, flapping links).
//!
//! All randomness comes from one RNG stream owned by the network, drawn in
//! event order, so the same seed gives the same drops and delays.

use std::time::Duration;

use gossamer_core::Time;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::nodeset::{Members, NodeSet};
use crate::units::{Bandwidth, Span};

/// Longest one-way delay a distribution may produce; a log-normal tail is
/// clamped here so that one unlucky draw cannot stall a run.
pub const MAX_LATENCY: Duration = Duration::from_secs(10);

/// How one-way delay is distributed, as written in a scenario.
///
/// ```toml
/// latency = { fixed = "1ms" }
/// latency = { uniform = { min = "1ms", max = "5ms" } }
/// latency = { lognormal = { median = "2ms", sigma = 0.5 } }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LatencySpec {
    /// Always the same delay.
    Fixed(Span),
    /// Uniform between `min` and `max`.
    Uniform {
        /// Lower bound.
        min: Span,
        /// Upper bound.
        max: Span,
    },
    /// Log-normal: `median · e^(sigma·Z)`, Z standard normal. Heavy right
    /// tail, like real RTTs.
    Lognormal {
        /// The median delay (e^mu).
        median: Span,
        /// Shape (standard deviation of the log).
        sigma: f64,
    },
}

impl LatencySpec {
    pub(crate) fn resolve(&self, period: Duration) -> Result<Latency, String> {
        Ok(match self {
            LatencySpec::Fixed(d) => Latency::Fixed(d.resolve(period)),
            LatencySpec::Uniform { min, max } => {
                let (min, max) = (min.resolve(period), max.resolve(period));
                if max < min {
                    return Err("uniform latency: max < min".into());
                }
                Latency::Uniform(min, max)
            }
            LatencySpec::Lognormal { median, sigma } => {
                if !sigma.is_finite() || *sigma < 0.0 {
                    return Err("lognormal latency: sigma must be finite and >= 0".into());
                }
                Latency::LogNormal { median_ns: median.resolve(period).as_nanos() as f64, sigma: *sigma }
            }
        })
    }
}

/// A resolved latency distribution.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Latency {
    Fixed(Duration),
    Uniform(Duration, Duration),
    LogNormal { median_ns: f64, sigma: f64 },
}

impl Latency {
    pub(crate) fn sample(&self, rng: &mut ChaCha8Rng) -> Duration {
        let d = match *self {
            Latency::Fixed(d) => d,
            Latency::Uniform(a, b) if a == b => a,
            Latency::Uniform(a, b) => Duration::from_nanos(rng.random_range(a.as_nanos() as u64..=b.as_nanos() as u64)),
            Latency::LogNormal { median_ns, sigma } => {
                let ns = median_ns * (sigma * standard_normal(rng)).exp();
                Duration::from_nanos(ns.min(MAX_LATENCY.as_nanos() as f64) as u64)
            }
        };
        d.min(MAX_LATENCY)
    }
}

/// Box–Muller: one standard normal draw from two uniforms.
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]: ln stays finite
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Link properties as written in a scenario; for an override, unset fields
/// inherit from the base network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// One-way delay distribution (default: fixed 1 ms).
    pub latency: Option<LatencySpec>,
    /// Probability a datagram is lost (0..=1).
    pub loss: Option<f64>,
    /// Probability a datagram is delivered twice.
    pub duplicate: Option<f64>,
    /// Probability a datagram is held back by up to `reorder_delay` extra,
    /// so later ones overtake it.
    pub reorder: Option<f64>,
    /// Extra delay bound for reordered datagrams (default 10 ms).
    pub reorder_delay: Option<Span>,
    /// Uplink capacity of the sender; datagrams queue behind each other.
    pub bandwidth: Option<Bandwidth>,
}

/// A per-link override: traffic from `from` to `to` (and back, if
/// `symmetric`, the default) uses these properties; unset ones inherit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkOverride {
    /// Senders.
    pub from: NodeSet,
    /// Receivers.
    pub to: NodeSet,
    /// Also applies from `to` to `from`.
    #[serde(default = "yes")]
    pub symmetric: bool,
    /// One-way delay distribution.
    pub latency: Option<LatencySpec>,
    /// Loss probability.
    pub loss: Option<f64>,
    /// Duplication probability.
    pub duplicate: Option<f64>,
    /// Reordering probability.
    pub reorder: Option<f64>,
    /// Bound of the reordering delay.
    pub reorder_delay: Option<Span>,
    /// Uplink capacity.
    pub bandwidth: Option<Bandwidth>,
}

impl LinkOverride {
    /// The link properties this override sets.
    pub fn link(&self) -> LinkSpec {
        LinkSpec {
            latency: self.latency.clone(),
            loss: self.loss,
            duplicate: self.duplicate,
            reorder: self.reorder,
            reorder_delay: self.reorder_delay,
            bandwidth: self.bandwidth,
        }
    }
}

fn yes() -> bool {
    true
}

/// Resolved link properties.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LinkModel {
    pub latency: Latency,
    pub loss: f64,
    pub duplicate: f64,
    pub reorder: f64,
    pub reorder_delay: Duration,
    pub bandwidth: Option<Bandwidth>,
}

impl LinkModel {
    pub(crate) fn base(spec: &LinkSpec, period: Duration) -> Result<Self, String> {
        let default = LinkModel {
            latency: Latency::Fixed(Duration::from_millis(1)),
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(10),
            bandwidth: None,
        };
        default.with(spec, period)
    }

    pub(crate) fn with(&self, spec: &LinkSpec, period: Duration) -> Result<Self, String> {
        let prob = |name: &str, v: Option<f64>, old: f64| match v {
            None => Ok(old),
            Some(p) if (0.0..=1.0).contains(&p) => Ok(p),
            Some(p) => Err(format!("{name} = {p}: must be a probability within 0..=1")),
        };
        Ok(LinkModel {
            latency: match &spec.latency {
                Some(l) => l.resolve(period)?,
                None => self.latency.clone(),
            },
            loss: prob("loss", spec.loss, self.loss)?,
            duplicate: prob("duplicate", spec.duplicate, self.duplicate)?,
            reorder: prob("reorder", spec.reorder, self.reorder)?,
            reorder_delay: spec.reorder_delay.map_or(self.reorder_delay, |s| s.resolve(period)),
            bandwidth: spec.bandwidth.or(self.bandwidth),
        })
    }
}

struct Override {
    from: Members,
    to: Members,
    symmetric: bool,
    model: LinkModel,
}

struct Flap {
    a: Members,
    b: Members,
    start: Time,
    half: Duration,
    until: Time,
}

impl Flap {
    fn down(&self, now: Time) -> bool {
        if now < self.start || now >= self.until || self.half.is_zero() {
            return false;
        }
        ((now - self.start).as_nanos() / self.half.as_nanos()) & 1 == 0
    }
}

/// Offset of the RNG stream of fallback pings' legs from the network's own.
const PING_RNG_STREAM: u64 = 1 << 40;

/// Group of nodes not named in a partition: they form a group of their own.
const REST: u32 = u32::MAX;

/// Where a datagram ends up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transmission {
    /// Cut off by a partition or a flapping link.
    Cut,
    /// Lost by the link's loss rate.
    Lost,
    /// Delivered at these times (the second for a duplicate).
    Delivered(Time, Option<Time>),
}

/// The network between the simulated nodes.
pub(crate) struct Network {
    base: LinkModel,
    overrides: Vec<Override>,
    groups: Option<Vec<u32>>,
    one_way: Vec<(Members, Members)>,
    flaps: Vec<Flap>,
    egress_free: Vec<Time>,
    rng: ChaCha8Rng,
    /// The draws of fallback pings' stream legs ([`Network::ping_leg`]),
    /// apart from `rng`: turning the fallback on or off leaves every
    /// datagram's fate as it was, so runs with and without it compare
    /// like for like.
    ping_rng: ChaCha8Rng,
}

impl Network {
    pub(crate) fn new(base: LinkModel, rng: ChaCha8Rng) -> Self {
        let mut ping_rng = rng.clone();
        ping_rng.set_stream(rng.get_stream().wrapping_add(PING_RNG_STREAM));
        Self {
            ping_rng,
            base,
            overrides: Vec::new(),
            groups: None,
            one_way: Vec::new(),
            flaps: Vec::new(),
            egress_free: Vec::new(),
            rng,
        }
    }

    pub(crate) fn add_override(&mut self, from: Members, to: Members, symmetric: bool, model: LinkModel) {
        self.overrides.push(Override { from, to, symmetric, model });
    }

    /// Splits the nodes into groups that cannot reach each other; nodes in
    /// no group form one more group. Replaces any earlier partition.
    pub(crate) fn partition(&mut self, groups: &[Vec<u32>], n: u32) {
        let mut g = vec![REST; n as usize];
        for (gi, members) in groups.iter().enumerate() {
            for &m in members {
                if let Some(slot) = g.get_mut(m as usize) {
                    *slot = gi as u32;
                }
            }
        }
        self.groups = Some(g);
    }

    /// Traffic from `from` to `to` is dropped (the reverse still flows).
    pub(crate) fn cut_one_way(&mut self, from: Members, to: Members) {
        self.one_way.push((from, to));
    }

    /// Links between `a` and `b` go down and up every `half` until `until`.
    pub(crate) fn flap(&mut self, a: Members, b: Members, start: Time, half: Duration, until: Time) {
        self.flaps.push(Flap { a, b, start, half, until });
    }

    /// Removes every partition, one-way cut and flap.
    pub(crate) fn heal(&mut self) {
        self.groups = None;
        self.one_way.clear();
        self.flaps.clear();
    }

    /// The partition group of `node`, if a partition is in force.
    pub(crate) fn group(&self, node: u32) -> Option<u32> {
        self.groups.as_ref().map(|g| g.get(node as usize).copied().unwrap_or(REST))
    }

    /// Whether a datagram sent now from `from` would reach `to` (ignoring loss).
    pub(crate) fn reachable(&self, from: u32, to: u32, now: Time) -> bool {
        if from == to {
            return true;
        }
        if let Some(g) = &self.groups {
            let gf = g.get(from as usize).copied().unwrap_or(REST);
            let gt = g.get(to as usize).copied().unwrap_or(REST);
            if gf != gt {
                return false;
            }
        }
        if self.one_way.iter().any(|(a, b)| a.contains(from) && b.contains(to)) {
            return false;
        }
        !self.flaps.iter().any(|f| {
            f.down(now) && ((f.a.contains(from) && f.b.contains(to)) || (f.b.contains(from) && f.a.contains(to)))
        })
    }

    fn model(&self, from: u32, to: u32) -> &LinkModel {
        self.overrides
            .iter()
            .rev()
            .find(|o| {
                (o.from.contains(from) && o.to.contains(to))
                    || (o.symmetric && o.from.contains(to) && o.to.contains(from))
            })
            .map_or(&self.base, |o| &o.model)
    }

    /// Sends one datagram of `len` bytes now.
    pub(crate) fn transmit(&mut self, from: u32, to: u32, len: usize, now: Time) -> Transmission {
        if !self.reachable(from, to, now) {
            return Transmission::Cut;
        }
        // Borrow dance: the model lives in self, the RNG too.
        let model = self.model(from, to).clone_light();
        if model.loss > 0.0 && self.rng.random::<f64>() < model.loss {
            return Transmission::Lost;
        }
        let depart = match model.bandwidth {
            Some(bw) => {
                let i = from as usize;
                if self.egress_free.len() <= i {
                    self.egress_free.resize(i + 1, Time::ZERO);
                }
                let start = self.egress_free[i].max(now);
                let done = start + bw.transmit_time(len);
                self.egress_free[i] = done;
                done
            }
            None => now,
        };
        let first = depart + self.delay(&model);
        let second = if model.duplicate > 0.0 && self.rng.random::<f64>() < model.duplicate {
            Some(depart + self.delay(&model))
        } else {
            None
        };
        Transmission::Delivered(first, second)
    }

    fn delay(&mut self, model: &LightModel) -> Duration {
        let mut d = model.latency.sample(&mut self.rng);
        if model.reorder > 0.0 && self.rng.random::<f64>() < model.reorder {
            let extra = self.rng.random_range(0..=model.reorder_delay.as_nanos() as u64);
            d += Duration::from_nanos(extra);
        }
        d
    }

    /// One-way delay of a frame from outside the cluster (the hostile
    /// node): the base links' latency, drawn from the caller's `rng` so the
    /// network's own draws stay as they were.
    pub(crate) fn outside_delay(&self, rng: &mut ChaCha8Rng) -> Duration {
        self.base.latency.sample(rng)
    }

    /// One leg of a fallback ping's stream, as [`Network::stream_leg`] but
    /// drawn from its own RNG stream (see `ping_rng`).
    pub(crate) fn ping_leg(&mut self, from: u32, to: u32, len: usize, now: Time) -> Option<Time> {
        if !self.reachable(from, to, now) {
            return None;
        }
        let model = self.model(from, to).clone_light();
        let transfer = model.bandwidth.map_or(Duration::ZERO, |bw| bw.transmit_time(len));
        Some(now + transfer + model.latency.sample(&mut self.ping_rng))
    }

    /// One leg of a reliable stream carrying `len` bytes: `None` if the path
    /// is cut now, else the arrival time. Streams are not lost or duplicated
    /// (TCP retransmits), but they pay latency and serialisation time.
    pub(crate) fn stream_leg(&mut self, from: u32, to: u32, len: usize, now: Time) -> Option<Time> {
        if !self.reachable(from, to, now) {
            return None;
        }
        let model = self.model(from, to).clone_light();
        let transfer = model.bandwidth.map_or(Duration::ZERO, |bw| bw.transmit_time(len));
        Some(now + transfer + model.latency.sample(&mut self.rng))
    }
}

/// The parts of a link model needed per packet, copied out so the RNG can
/// be borrowed mutably.
struct LightModel {
    latency: Latency,
    loss: f64,
    duplicate: f64,
    reorder: f64,
    reorder_delay: Duration,
    bandwidth: Option<Bandwidth>,
}

impl LinkModel {
    fn clone_light(&self) -> LightModel {
        LightModel {
            latency: self.latency.clone(),
            loss: self.loss,
            duplicate: self.duplicate,
            reorder: self.reorder,
            reorder_delay: self.reorder_delay,
            bandwidth: self.bandwidth,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn net(spec: &str) -> Network {
        let spec: LinkSpec = toml::from_str(spec).unwrap();
        Network::new(LinkModel::base(&spec, Duration::from_secs(1)).unwrap(), ChaCha8Rng::seed_from_u64(1))
    }

    fn delivered(t: Transmission) -> Option<Time> {
        match t {
            Transmission::Delivered(a, _) => Some(a),
            _ => None,
        }
    }

    #[test]
    fn loss_rate_is_respected() {
        let mut n = net("loss = 0.1");
        let lost = (0..20_000).filter(|_| n.transmit(0, 1, 100, Time::ZERO) == Transmission::Lost).count();
        assert!((1_700..2_300).contains(&lost), "lost {lost} of 20000 at 10%");
    }

    #[test]
    fn duplicates_arrive_twice() {
        let mut n = net("duplicate = 0.5");
        let dups = (0..10_000)
            .filter(|_| matches!(n.transmit(0, 1, 100, Time::ZERO), Transmission::Delivered(_, Some(_))))
            .count();
        assert!((4_500..5_500).contains(&dups), "{dups}");
    }

    #[test]
    fn lognormal_median_and_tail() {
        let mut n = net("latency = { lognormal = { median = \"2ms\", sigma = 0.5 } }");
        let mut v: Vec<Duration> = (0..10_001).map(|_| delivered(n.transmit(0, 1, 1, Time::ZERO)).unwrap()).collect();
        v.sort();
        let median = v[5_000].as_secs_f64() * 1e3;
        assert!((1.9..2.1).contains(&median), "median {median}ms");
        assert!(v[9_900] > Duration::from_millis(5), "p99 {:?} should show the tail", v[9_900]);
    }

    #[test]
    fn uniform_stays_in_bounds_and_reorder_adds_delay() {
        let mut n =
            net("latency = { uniform = { min = \"1ms\", max = \"3ms\" } }\nreorder = 1.0\nreorder_delay = \"50ms\"");
        let v: Vec<Duration> = (0..2_000).map(|_| delivered(n.transmit(0, 1, 1, Time::ZERO)).unwrap()).collect();
        assert!(v.iter().all(|d| *d >= Duration::from_millis(1) && *d <= Duration::from_millis(53)));
        assert!(v.iter().any(|d| *d > Duration::from_millis(20)));
    }

    #[test]
    fn bandwidth_queues_datagrams() {
        let mut n = net("bandwidth = \"8Mbps\"\nlatency = { fixed = \"0ms\" }");
        // 1000 bytes at 1 MB/s = 1 ms each, queued one behind another.
        let a = delivered(n.transmit(0, 1, 1_000, Time::ZERO)).unwrap();
        let b = delivered(n.transmit(0, 2, 1_000, Time::ZERO)).unwrap();
        let c = delivered(n.transmit(1, 2, 1_000, Time::ZERO)).unwrap();
        assert_eq!((a, b, c), (Duration::from_millis(1), Duration::from_millis(2), Duration::from_millis(1)));
    }

    #[test]
    fn partitions_one_way_cuts_and_flaps() {
        let mut n = net("");
        n.partition(&[vec![0, 1], vec![2, 3]], 5);
        assert!(n.reachable(0, 1, Time::ZERO));
        assert!(!n.reachable(1, 2, Time::ZERO));
        assert!(!n.reachable(4, 0, Time::ZERO), "unlisted nodes form their own group");
        assert_eq!(n.transmit(0, 3, 10, Time::ZERO), Transmission::Cut);
        n.heal();
        assert!(n.reachable(1, 2, Time::ZERO));

        n.cut_one_way(Members::from_indices(&[0], 4), Members::from_indices(&[1], 4));
        assert!(!n.reachable(0, 1, Time::ZERO));
        assert!(n.reachable(1, 0, Time::ZERO));
        n.heal();

        let s = Duration::from_secs;
        n.flap(Members::from_indices(&[0], 4), Members::from_indices(&[1], 4), s(10), s(1), s(14));
        assert!(n.reachable(0, 1, s(9)));
        assert!(!n.reachable(1, 0, s(10)));
        assert!(n.reachable(0, 1, s(11)));
        assert!(!n.reachable(0, 1, s(12)));
        assert!(n.reachable(0, 1, s(14)));
        assert!(n.reachable(0, 2, s(10)));
    }

    #[test]
    fn overrides_apply_per_link() {
        let mut n = net("latency = { fixed = \"1ms\" }");
        let slow =
            LinkSpec { latency: Some(LatencySpec::Fixed(Span::Time(Duration::from_millis(50)))), ..Default::default() };
        let model = n.base.with(&slow, Duration::from_secs(1)).unwrap();
        n.add_override(Members::from_indices(&[0], 3), Members::from_indices(&[2], 3), true, model);
        assert_eq!(delivered(n.transmit(0, 1, 1, Time::ZERO)), Some(Duration::from_millis(1)));
        assert_eq!(delivered(n.transmit(0, 2, 1, Time::ZERO)), Some(Duration::from_millis(50)));
        assert_eq!(delivered(n.transmit(2, 0, 1, Time::ZERO)), Some(Duration::from_millis(50)));
        assert_eq!(n.stream_leg(2, 0, 1, Time::ZERO), Some(Duration::from_millis(50)));
    }

    #[test]
    fn same_seed_same_draws() {
        let draws = |seed| {
            let spec: LinkSpec =
                toml::from_str("loss = 0.3\nlatency = { lognormal = { median = \"1ms\", sigma = 1.0 } }").unwrap();
            let mut n =
                Network::new(LinkModel::base(&spec, Duration::from_secs(1)).unwrap(), ChaCha8Rng::seed_from_u64(seed));
            (0..100).map(|i| n.transmit(0, 1 + i % 3, 10, Time::ZERO)).collect::<Vec<_>>()
        };
        assert_eq!(draws(5), draws(5));
        assert_ne!(draws(5), draws(6));
    }
}
