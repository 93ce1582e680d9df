//! Protocol settings, with memberlist's LAN/WAN/local profiles as presets.

use std::time::Duration;

use gossamer_wire::DEFAULT_MTU;
use serde::{Deserialize, Serialize};

/// Protocol settings. Defaults are memberlist's LAN profile
/// (`DefaultLANConfig`, also [`Config::memberlist`]), plus the reconnect
/// timer memberlist lacks. [`Config::fast`] detects failures in under half
/// its time (issue #19; figures in BENCHMARKS.md).
///
/// ```
/// use gossamer_core::Config;
/// let config = Config::lan();
/// assert_eq!(config.probe_interval.as_millis(), 1000);
/// assert!(config.validate().is_ok());
/// let mut bad = Config::local();
/// bad.indirect_checks = 0;
/// bad.probe_timeout = bad.probe_interval * 2;
/// assert_eq!(bad.validate().unwrap_err().field, "probe_timeout");
/// ```
///
/// Serialisable (issue #17): every field is a key of the `[protocol]`
/// table of simulator scenarios and agent files, durations written the
/// humantime way (`"1s"`, `"500ms"`, `"24h"`); missing keys keep the LAN
/// defaults, unknown keys are refused. See [`crate::ProtocolConfig`] for a
/// preset plus overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Protocol period: one probe per period (1 s on a LAN).
    #[serde(with = "humantime_serde")]
    pub probe_interval: Duration,
    /// Wait for a direct ack before indirect probes (500 ms).
    #[serde(with = "humantime_serde")]
    pub probe_timeout: Duration,
    /// Datagram budget of a compound packet (1400 bytes).
    pub mtu: usize,
    /// Members asked to probe a silent target for us (`k` of SWIM; 3).
    pub indirect_checks: usize,
    /// Suspicion timeout multiplier: the minimum suspicion timeout is
    /// `suspicion_mult × max(1, log10(n)) × probe_interval` (4, as
    /// memberlist; the `fast` preset's 1 is 2.1 s at 128 members, 3 s at
    /// 1,000). The minimum is only
    /// reached with `suspicion_confirmations` independent accusers, each of
    /// whose direct and indirect probes failed, and with
    /// `probe_before_declaring` a node never declares a member it has not
    /// probed itself, or that answered its probe (see the `failure`
    /// module), so it can be short.
    pub suspicion_mult: u32,
    /// Lifeguard: a fresh suspicion lasts `suspicion_max_timeout_mult` times
    /// the minimum, shrinking as independent suspicions arrive (6, as
    /// memberlist; the `fast` preset has 12: a lone accuser waits 25 s at
    /// 128 members).
    pub suspicion_max_timeout_mult: u32,
    /// Lifeguard's `k`: independent confirmations (distinct, verified
    /// members also suspecting) after which a suspicion waits only the
    /// minimum (2; memberlist derives it as `suspicion_mult - 2`, which the
    /// memberlist presets keep). Fewer confirmations wait proportionally
    /// longer on a log scale, up to the maximum. 0: always the minimum.
    pub suspicion_confirmations: u32,
    /// After hearing another member's suspicion of a member, probe that
    /// member next with probability `suspect_probers / live members`, so
    /// about this many members check a suspect at once (Rapid's multiple
    /// observers) instead of waiting for the round-robin to reach it: a
    /// dead member gets its confirmations within a period, a live one its
    /// buddy-system warning (and so refutes) sooner. It reorders the probes
    /// only (still one per period, and never two such in a row), so costs
    /// no traffic. 0: off, as memberlist.
    pub suspect_probers: u32,
    /// A suspicion never ends sooner than this many times the slowest
    /// refutation this node saw recently (the time from its own suspicion
    /// of a member to the `Alive` that cleared it; the last 16 within 300
    /// probe intervals), nor sooner than the minimum: under loss or stalls,
    /// where refutations are slow, the wait grows on its own. 0.0: off
    /// (the minimum alone, as memberlist).
    pub suspicion_refute_mult: f64,
    /// Evidence before a death (issue #19): a suspicion this node only
    /// heard about (it did not probe the member itself) is put off by two
    /// probe intervals while this node probes the member, and a suspect
    /// that answered this node's own probe since the suspicion began is
    /// not declared dead. This is what makes the `fast` preset's short
    /// suspicions safe under loss (true there); off in memberlist's
    /// presets (false), whose long suspicions do not need it and whose
    /// partition detection it slows: every second-hand view of a cut-off
    /// member waits one more probe round (`heal-70-30`: the split noticed
    /// by every member in 45 periods instead of under 40).
    pub probe_before_declaring: bool,
    /// Each update is sent at most `retransmit_mult ×
    /// ceil(log_b(n + 1))` times, `b` being `retransmit_log_base` (4).
    pub retransmit_mult: u32,
    /// The base `b` of the retransmit budget's logarithm, within `2..=10`
    /// (2: 32 sends per update at 128 members). memberlist's
    /// `retransmitLimit` (and foca's `new_lan`) use 10: 12 sends at 128
    /// members, 16 at 1,000, for ~30% fewer datagrams per node-period at
    /// 128 nodes (BENCHMARKS.md, "Traffic vs foca"); but measured with this
    /// protocol it is not yet safe as a default (issue #16): with it the
    /// `heal-bridged-cut` scenario declares 8 live members dead and
    /// `heal-three-way` fails. Whatever the base, this node's refutation of
    /// a claim against it is sent at least as often as base 2 gives.
    pub retransmit_log_base: u32,
    /// A pending suspicion or death of another member retires
    /// before its retransmit limit once this node has received it from
    /// this many peers that already knew it (and has sent it at least
    /// `retransmit_mult` times): by then most members know, and the rest
    /// of the budget would mostly repeat it to them. Rumor mongering's
    /// counter (Demers et al. 1987); issue #16: one crash's gossip packets
    /// at 128 members fall from 79 to 27 per node (BENCHMARKS.md, "Traffic
    /// vs foca"). An `Alive` (a refutation, a join) and a `Leave` always
    /// get their whole budget. 0 disables it (every update sent its whole
    /// budget). Default 5: 3 and 4 left a few members without a death in
    /// the partition scenarios (`heal-three-way`, `heal-bridged-cut` failed
    /// a seed in 20).
    pub retire_after_copies: u32,
    /// Full-state anti-entropy with one random member this often (30 s);
    /// scaled up for clusters above 32 members as memberlist does.
    #[serde(with = "humantime_serde")]
    pub push_pull_interval: Duration,
    /// Gossip fan-out period (200 ms).
    #[serde(with = "humantime_serde")]
    pub gossip_interval: Duration,
    /// Members gossiped to per gossip period (3).
    pub gossip_nodes: usize,
    /// Dead and left members still receive gossip this long after their
    /// death or leave, so a wrongly declared member (a lost probe, or a
    /// forged `Confirm` or `Leave`) learns it quickly and refutes (30 s).
    #[serde(with = "humantime_serde")]
    pub gossip_to_the_dead_time: Duration,
    /// Lifeguard: the local health multiplier ranges over
    /// `0..awareness_max_multiplier` (8).
    pub awareness_max_multiplier: u32,
    /// How often to reach out (push-pull) to one random dead member, and to
    /// the join seeds when no other member is alive, so that a partitioned
    /// cluster merges again on its own (10 s).
    #[serde(with = "humantime_serde")]
    pub reconnect_interval: Duration,
    /// Dead members are forgotten after this long (24 h); until then they
    /// are retried by the reconnect timer. This is autoclean (EMQX's
    /// `cluster.autoclean`; `gossamer-heal` sets it from its own
    /// `autoclean` setting): each forgotten member is reported as
    /// [`Signal::MemberRemoved`](crate::Signal::MemberRemoved). Zero keeps
    /// dead members forever; otherwise at least `reconnect_interval`. Checked
    /// on the reconnect timer, so a member goes up to one (scaled)
    /// `reconnect_interval` late.
    #[serde(with = "humantime_serde")]
    pub dead_retention: Duration,
    /// Members that left are forgotten after this long (1 h). Kept for a
    /// while so stale `Alive` gossip cannot resurrect them. Zero keeps them
    /// forever.
    #[serde(with = "humantime_serde")]
    pub left_retention: Duration,
    /// Most indirect probes this node relays at once for others (1024):
    /// bounds memory under a ping-req flood.
    pub max_relays: usize,
    /// Most membership updates about other members waiting for
    /// dissemination (2,048); beyond it, the one sent most often (the
    /// oldest of those) is dropped. Why a bound: one push-pull with a
    /// member of a 10,000-node cluster teaches a newcomer 10,000 members,
    /// each news to it and queued, and a simulator of 10,000 cold joins
    /// held 10^8 queued updates (issue #16, `simulations/large.toml`). What
    /// is dropped has been sent the most already, and periodic push-pull
    /// (anti-entropy) carries it anyway. A cluster of fewer members than
    /// this never reaches it (one pending update per member); this node's
    /// own alive or refutation is never dropped.
    pub max_queued_updates: usize,
    /// Members new to this node within one probe interval beyond which it
    /// is in a join burst (16; 0: never), in a cluster of more than 256
    /// members (below that, gossip carries any burst cheaply). It then
    /// applies the `Alive` of a member it learns of second hand without
    /// gossiping it, and leaves the burst to push-pull, running push-pulls
    /// of its own once the burst has been quiet for two probe intervals.
    /// A burst gossiped costs every node `retransmit_limit` sends per new
    /// member: 2,000 nodes starting at once kept two cores busy for a
    /// minute (issue #16; BENCHMARKS.md, "Mass join"). 16 is about what a
    /// node's own gossip carries: three ~30-update packets every 200 ms are
    /// ~450 sends a second, the budget of 10–16 joins.
    pub join_burst: u32,
    /// Share of each packet's piggyback room reserved for application
    /// items (broadcasts, queries), within `0.0..1.0` exclusive (0.3).
    /// Membership updates get the rest; a side that does not use its share
    /// leaves it to the other in the same packet. Neither can starve the
    /// other (memberlist's user broadcasts could, at about 1,000 nodes). It
    /// also bounds the size of one item: see `Swim::max_user_item_len`.
    pub user_share: f64,
    /// Most application items waiting for dissemination (1024); when full,
    /// the item sent most often (the oldest of those) is dropped.
    pub user_queue_capacity: usize,
    /// How long an accepted application item is remembered, in ticks of
    /// the Lamport clock of application items (8,192): until the clock runs
    /// this far past it. Then it is forgotten, and items of its origin
    /// stamped at or below it are too old, neither delivered nor forwarded
    /// (age is judged per origin: see the `user` module docs). Every
    /// broadcast or query anywhere in the cluster advances the clocks by at
    /// most one tick (concurrent ones may share a tick), so size it above
    /// the number of items the whole cluster starts while one item
    /// circulates (its dissemination, plus however long late joiners keep
    /// it going under churn). It also bounds how far ahead an item or a
    /// push-pull clock may be: one further ahead is refused and only moves
    /// how far ahead this node accepts by one window (a forged time cannot
    /// push a clock out of reach); and it bounds the memory of deliveries
    /// together with `user_dedupe_capacity`.
    pub user_ltime_window: u64,
    /// Most deliveries remembered (65,536), and most origins whose
    /// forgotten times are remembered one by one. When full, the oldest
    /// deliveries (by Lamport time) are forgotten and items of the same
    /// origin at or below them are refused from then on, so a forgotten
    /// item is never delivered again; past as many origins, those
    /// forgotten longest ago share one floor. Keep it above
    /// `user_ltime_window` times the items stamped per tick (about one) so
    /// that this never cuts into the window.
    pub user_dedupe_capacity: usize,
    /// How far above what this node knows of a member (zero for a member
    /// it does not know) a membership claim about it may be, in
    /// incarnations (65,536). A `Suspect`, `Confirm` or `Leave` further
    /// ahead is clamped to `known + incarnation_window`, an `Alive` to
    /// `known + 2 × incarnation_window` (and forwarded so), so that a
    /// forged claim at a huge incarnation cannot put a member where its
    /// refutation (one above the claim) can never reach it, nor burn
    /// through the incarnation space: see the `rules` module docs. Honest
    /// incarnations move by one per refutation or metadata change, far
    /// inside the window; a node that learns a member far behind (a long
    /// partition) catches up by this much per exchange.
    pub incarnation_window: u64,
    /// Most members in the table, this node and dead or left members
    /// included (65,536): an `Alive` for an unknown member when the table
    /// is full first evicts a dead member (chosen at random), and is
    /// dropped if none is dead ([`Metrics::members_refused`]). Bounds the
    /// memory a flood of forged names can take (about 130 bytes a member).
    ///
    /// [`Metrics::members_refused`]: crate::Metrics::members_refused
    pub max_members: usize,
    /// Most members one push-pull view may list (65,536): a view with more
    /// is refused whole ([`Metrics::push_pulls_refused`]), not truncated, so
    /// that a node never merges half a view. A well-behaved peer never
    /// sends more than its own table, so keep it at or above `max_members`.
    ///
    /// [`Metrics::push_pulls_refused`]: crate::Metrics::push_pulls_refused
    pub max_push_pull_members: usize,
    /// The periodic push-pull opens with a digest of this node's table
    /// (4 bytes per 16 members) and only the members of the parts where
    /// the two tables differ cross, each way (issue #16: a converged
    /// exchange at 10,000 members is ~4 KB instead of ~337 KB). Joins,
    /// seeds, beacons, reconnects and [`Swim::push_pull`] keep full views,
    /// and so does an exchange whose tables differ in more than half of the
    /// digest. True in the LAN default ([`Config::fast`]); false (the
    /// memberlist, WAN and local presets): every exchange sends the full
    /// table, as memberlist does. Over 60 seeds of the partition scenarios
    /// with the LAN default's detection, deltas and full views fail about
    /// as many seeds (14 and 16 across `heal-70-30`, `heal-bridged-cut`,
    /// `heal-split-during-churn`, `heal-three-way`); with memberlist's
    /// suspicion timeouts deltas failed more (BENCHMARKS.md, "Push-pull
    /// deltas").
    ///
    /// [`Swim::push_pull`]: crate::Swim::push_pull
    pub push_pull_deltas: bool,
    /// A member declared dead or left may come back at another address (a
    /// restart on a new port) only once it has been dead or left this long
    /// (30 s; memberlist's `DeadNodeReclaimTime`); before, an `Alive` at
    /// another address is refused as a name conflict. Otherwise a forged
    /// `Confirm` followed by a forged `Alive` would move a live member to
    /// the forger's address before its refutation (from its own address)
    /// arrives. Zero: at once.
    #[serde(with = "humantime_serde")]
    pub dead_reclaim_time: Duration,
    /// When a direct probe gets no ack within `probe_timeout`, also ping
    /// the target over a stream (TCP in the runtime) until the end of the
    /// period, alongside the indirect probes (true; memberlist's TCP ping,
    /// `DisableTcpPings` inverted). A stream is not subject to datagram
    /// loss, so under heavy UDP loss a live member still answers and is not
    /// suspected. Unverified members are pinged so only while such pings
    /// are answered (a flood of forged addresses soon stops them, see
    /// `probe`); a driver that never calls
    /// [`Swim::poll_stream_ping`](crate::Swim::poll_stream_ping) simply
    /// does without. False: datagrams only.
    pub stream_pings: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self::lan()
    }
}

impl Config {
    /// A LAN (the default): memberlist's LAN profile (probe interval and
    /// timeout, indirect checks, gossip, retransmits) with issue #19's
    /// evidence-driven suspicion, the same as [`Config::fast`]. A crash is
    /// known by all in about half memberlist's time, with no more false
    /// deaths (BENCHMARKS.md, "Failure detection"); [`Config::memberlist`]
    /// keeps memberlist's own suspicion timeouts for those who need them.
    pub fn lan() -> Self {
        Self::fast()
    }

    /// issue #19's faster failure detection (the LAN default): memberlist's
    /// LAN profile with `suspicion_mult` 1 and `suspicion_max_timeout_mult`
    /// 12 (memberlist: 4 and 6), `probe_before_declaring`, and
    /// `suspicion_refute_mult` 3 (where refutations were seen to take long,
    /// as through the bridges of `heal-bridged-cut`, a suspicion waits three
    /// times the slowest) and `push_pull_deltas`, same probe interval and
    /// timeout. The short minimum is only reached with
    /// `suspicion_confirmations` independent verified accusers; a lone
    /// accuser waits 12 times it, and a node that only heard of the
    /// suspicion probes the member itself first. In the simulator a crash
    /// is known by all in 4.3 periods at 128 members and 5.7 at 1,000
    /// (memberlist: 10.5 and 14.8), with no healthy member declared dead in
    /// 20 seeds of `lossy-lan` and `gray-failure`.
    pub fn fast() -> Self {
        Self {
            suspicion_mult: 1,
            suspicion_max_timeout_mult: 12,
            suspicion_refute_mult: 3.0,
            probe_before_declaring: true,
            push_pull_deltas: true,
            ..Self::memberlist()
        }
    }

    /// memberlist's DefaultLANConfig exactly as memberlist has it (its
    /// suspicion timeouts: a crash known by all ~10 periods after it at 128
    /// members, ~15 at 1,000); kept so even if the default moves.
    pub fn memberlist() -> Self {
        Self {
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            mtu: DEFAULT_MTU,
            indirect_checks: 3,
            suspicion_mult: 4,
            suspicion_max_timeout_mult: 6,
            suspicion_confirmations: 2,
            suspect_probers: 0,
            suspicion_refute_mult: 0.0,
            probe_before_declaring: false,
            retransmit_mult: 4,
            retransmit_log_base: 2,
            retire_after_copies: 5,
            push_pull_interval: Duration::from_secs(30),
            gossip_interval: Duration::from_millis(200),
            gossip_nodes: 3,
            gossip_to_the_dead_time: Duration::from_secs(30),
            awareness_max_multiplier: 8,
            reconnect_interval: Duration::from_secs(10),
            dead_retention: Duration::from_secs(24 * 3600),
            left_retention: Duration::from_secs(3600),
            max_relays: 1024,
            max_queued_updates: 2048,
            join_burst: 16,
            user_share: 0.3,
            user_queue_capacity: 1024,
            user_ltime_window: 8192,
            user_dedupe_capacity: 65_536,
            incarnation_window: 1 << 16,
            max_members: 65_536,
            max_push_pull_members: 65_536,
            push_pull_deltas: false,
            dead_reclaim_time: Duration::from_secs(30),
            stream_pings: true,
        }
    }

    /// memberlist's DefaultWANConfig: slower, more tolerant timers.
    pub fn wan() -> Self {
        Self {
            probe_interval: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(3),
            suspicion_mult: 6,
            suspicion_confirmations: 4,
            push_pull_interval: Duration::from_secs(60),
            gossip_interval: Duration::from_millis(500),
            gossip_nodes: 4,
            gossip_to_the_dead_time: Duration::from_secs(60),
            reconnect_interval: Duration::from_secs(30),
            ..Self::memberlist()
        }
    }

    /// memberlist's DefaultLocalConfig (loopback, tests): fast timers.
    pub fn local() -> Self {
        Self {
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(200),
            suspicion_mult: 3,
            suspicion_confirmations: 1,
            push_pull_interval: Duration::from_secs(15),
            gossip_interval: Duration::from_millis(100),
            retransmit_mult: 2,
            gossip_to_the_dead_time: Duration::from_secs(15),
            reconnect_interval: Duration::from_secs(5),
            ..Self::memberlist()
        }
    }

    /// Checks every value; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        const MAX_PERIOD: Duration = Duration::from_secs(3600);
        let period = |field: &'static str, value: Duration| {
            if value.is_zero() {
                Err(ConfigError::new(field, "must be greater than zero"))
            } else if value > MAX_PERIOD {
                Err(ConfigError::new(field, format!("{value:?} exceeds the limit of one hour")))
            } else {
                Ok(())
            }
        };
        period("probe_interval", self.probe_interval)?;
        period("probe_timeout", self.probe_timeout)?;
        if self.probe_timeout > self.probe_interval {
            return Err(ConfigError::new(
                "probe_timeout",
                format!("{:?} must not exceed probe_interval ({:?})", self.probe_timeout, self.probe_interval),
            ));
        }
        if !(256..=gossamer_wire::MAX_DATAGRAM).contains(&self.mtu) {
            return Err(ConfigError::new(
                "mtu",
                format!("{} is outside 256..={}", self.mtu, gossamer_wire::MAX_DATAGRAM),
            ));
        }
        if self.indirect_checks > 64 {
            return Err(ConfigError::new("indirect_checks", "must be at most 64"));
        }
        if !(1..=100).contains(&self.suspicion_mult) {
            return Err(ConfigError::new("suspicion_mult", "must be within 1..=100"));
        }
        if !(1..=100).contains(&self.suspicion_max_timeout_mult) {
            return Err(ConfigError::new("suspicion_max_timeout_mult", "must be within 1..=100"));
        }
        if self.suspicion_confirmations > 16 {
            return Err(ConfigError::new("suspicion_confirmations", "must be at most 16"));
        }
        if self.suspect_probers > 64 {
            return Err(ConfigError::new("suspect_probers", "must be at most 64"));
        }
        if !(0.0..=100.0).contains(&self.suspicion_refute_mult) {
            return Err(ConfigError::new("suspicion_refute_mult", "must be within 0.0..=100.0"));
        }
        if !(1..=100).contains(&self.retransmit_mult) {
            return Err(ConfigError::new("retransmit_mult", "must be within 1..=100"));
        }
        if !(2..=10).contains(&self.retransmit_log_base) {
            return Err(ConfigError::new("retransmit_log_base", "must be within 2..=10"));
        }
        period("push_pull_interval", self.push_pull_interval)?;
        period("gossip_interval", self.gossip_interval)?;
        if self.gossip_nodes > 64 {
            return Err(ConfigError::new("gossip_nodes", "must be at most 64"));
        }
        if !(1..=64).contains(&self.awareness_max_multiplier) {
            return Err(ConfigError::new("awareness_max_multiplier", "must be within 1..=64"));
        }
        period("reconnect_interval", self.reconnect_interval)?;
        if !self.dead_retention.is_zero() && self.dead_retention < self.reconnect_interval {
            return Err(ConfigError::new("dead_retention", "must be zero (never) or at least reconnect_interval"));
        }
        if self.max_relays == 0 || self.max_relays > 1 << 20 {
            return Err(ConfigError::new("max_relays", "must be within 1..=1048576"));
        }
        if self.max_queued_updates < 16 || self.max_queued_updates > 1 << 24 {
            return Err(ConfigError::new("max_queued_updates", "must be within 16..=16777216"));
        }
        if !(self.user_share > 0.0 && self.user_share < 1.0) {
            return Err(ConfigError::new("user_share", format!("{} is not strictly between 0 and 1", self.user_share)));
        }
        if self.user_queue_capacity == 0 || self.user_queue_capacity > 1 << 20 {
            return Err(ConfigError::new("user_queue_capacity", "must be within 1..=1048576"));
        }
        if self.user_ltime_window == 0 || self.user_ltime_window > 1 << 40 {
            return Err(ConfigError::new("user_ltime_window", "must be within 1..=2^40"));
        }
        if self.user_dedupe_capacity == 0 || self.user_dedupe_capacity > 1 << 24 {
            return Err(ConfigError::new("user_dedupe_capacity", "must be within 1..=16777216"));
        }
        if self.incarnation_window == 0 || self.incarnation_window > 1 << 40 {
            return Err(ConfigError::new("incarnation_window", "must be within 1..=2^40"));
        }
        if self.max_members < 2 || self.max_members > 1 << 24 {
            return Err(ConfigError::new("max_members", "must be within 2..=16777216"));
        }
        if self.dead_reclaim_time > MAX_PERIOD {
            return Err(ConfigError::new("dead_reclaim_time", "must be at most one hour"));
        }
        if self.max_push_pull_members == 0 || self.max_push_pull_members > 1 << 24 {
            return Err(ConfigError::new("max_push_pull_members", "must be within 1..=16777216"));
        }
        Ok(())
    }
}

/// A bad configuration value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config `{field}`: {reason}")]
pub struct ConfigError {
    /// The offending field.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

impl ConfigError {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self { field, reason: reason.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid() {
        for config in
            [Config::lan(), Config::memberlist(), Config::fast(), Config::wan(), Config::local(), Config::default()]
        {
            config.validate().unwrap();
        }
        let never = Config { dead_retention: Duration::ZERO, left_retention: Duration::ZERO, ..Config::lan() };
        never.validate().expect("zero retention means never forget");
        let lan = Config::memberlist();
        assert_eq!(lan.probe_timeout, Duration::from_millis(500));
        assert_eq!(lan.indirect_checks, 3);
        assert_eq!((lan.suspicion_mult, lan.suspicion_max_timeout_mult, lan.retransmit_mult), (4, 6, 4));
        assert_eq!(lan.suspicion_confirmations, 2, "memberlist's k = suspicion_mult - 2");
        // The LAN default is memberlist's but for the suspicion (issue #19).
        assert_eq!(Config::lan(), Config::fast());
        let fast = Config::fast();
        assert_eq!((fast.suspicion_mult, fast.suspicion_max_timeout_mult), (1, 12));
        assert!(fast.probe_before_declaring && !lan.probe_before_declaring);
        assert_eq!(
            Config {
                suspicion_mult: 4,
                suspicion_max_timeout_mult: 6,
                suspicion_refute_mult: 0.0,
                probe_before_declaring: false,
                push_pull_deltas: false,
                ..fast
            },
            lan
        );
        assert_eq!((Config::wan().suspicion_max_timeout_mult, Config::local().suspicion_max_timeout_mult), (6, 6));
        assert_eq!(lan.push_pull_interval, Duration::from_secs(30));
        assert_eq!((lan.gossip_nodes, lan.gossip_interval), (3, Duration::from_millis(200)));
        assert_eq!((lan.awareness_max_multiplier, lan.mtu), (8, 1400));
    }

    #[test]
    fn errors_name_the_field() {
        type Mutate = fn(&mut Config);
        let cases: Vec<(&str, Mutate)> = vec![
            ("probe_interval", |c| c.probe_interval = Duration::ZERO),
            ("probe_timeout", |c| c.probe_timeout = Duration::from_secs(2)),
            ("mtu", |c| c.mtu = 10),
            ("suspicion_mult", |c| c.suspicion_mult = 0),
            ("retransmit_mult", |c| c.retransmit_mult = 0),
            ("retransmit_log_base", |c| c.retransmit_log_base = 1),
            ("retransmit_log_base", |c| c.retransmit_log_base = 11),
            ("gossip_interval", |c| c.gossip_interval = Duration::from_secs(7200)),
            ("awareness_max_multiplier", |c| c.awareness_max_multiplier = 0),
            ("reconnect_interval", |c| c.reconnect_interval = Duration::ZERO),
            ("dead_retention", |c| c.dead_retention = Duration::from_secs(1)),
            ("max_relays", |c| c.max_relays = 0),
            ("max_queued_updates", |c| c.max_queued_updates = 0),
            ("user_share", |c| c.user_share = 0.0),
            ("user_share", |c| c.user_share = 1.0),
            ("user_share", |c| c.user_share = f64::NAN),
            ("user_queue_capacity", |c| c.user_queue_capacity = 0),
            ("user_ltime_window", |c| c.user_ltime_window = 0),
            ("user_dedupe_capacity", |c| c.user_dedupe_capacity = 0),
            ("incarnation_window", |c| c.incarnation_window = 0),
            ("incarnation_window", |c| c.incarnation_window = u64::MAX),
            ("max_members", |c| c.max_members = 1),
            ("max_push_pull_members", |c| c.max_push_pull_members = 0),
            ("dead_reclaim_time", |c| c.dead_reclaim_time = Duration::from_secs(7200)),
        ];
        for (field, mutate) in cases {
            let mut config = Config::lan();
            mutate(&mut config);
            let err = config.validate().unwrap_err();
            assert_eq!(err.field, field);
            assert!(err.to_string().contains(field));
        }
    }
}
