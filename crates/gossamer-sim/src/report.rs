//! What a run measured, as a plain-text report (`Display`) and as JSON
//! (`serde`). Every figure is given in protocol periods and in virtual ms.

use std::fmt;

use serde::Serialize;

/// A delay measured from a fault, in virtual milliseconds and periods.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Measure {
    /// Virtual milliseconds.
    pub ms: f64,
    /// Protocol periods.
    pub periods: f64,
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2} periods ({:.0} ms)", self.periods, self.ms)
    }
}

/// What was measured about one scheduled fault.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultReport {
    /// Index in the schedule.
    pub index: usize,
    /// Kind (crash, partition, ...).
    pub kind: String,
    /// What happened, in words.
    pub description: String,
    /// When, in virtual ms from the start.
    pub at_ms: f64,
    /// The nodes it was about (capped at 64 in the report).
    pub nodes: Vec<u32>,
    /// First detection: the first suspicion (or dead declaration, if no
    /// suspicion came first) of one of those nodes by any member (for a
    /// partition: across the cut).
    pub first_suspect: Option<Measure>,
    /// First time a member declared one of them dead.
    pub first_dead: Option<Measure>,
    /// Crash: until no live member saw them plain alive (every member
    /// suspects them at least): how far the first suspicion spread.
    pub all_suspect: Option<Measure>,
    /// Until no live member still saw them alive or suspect.
    pub all_know: Option<Measure>,
    /// Partition: until no member saw anyone across the cut alive.
    pub split: Option<Measure>,
    /// Heal, join, restart: until every live member saw every live member alive.
    pub converged: Option<Measure>,
    /// Suspicions of those nodes raised after the fault.
    pub suspicions: u64,
    /// Dead declarations of those nodes after the fault.
    pub deaths: u64,
}

/// Traffic totals and rates.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Traffic {
    /// Datagrams sent (before loss).
    pub datagrams: u64,
    /// Their bytes.
    pub datagram_bytes: u64,
    /// Largest datagram seen.
    pub max_datagram: u64,
    /// Lost to the loss rate.
    pub lost: u64,
    /// Dropped by a cut (partition, one-way, flap).
    pub cut: u64,
    /// Extra copies delivered by duplication.
    pub duplicated: u64,
    /// Push-pull exchanges started.
    pub streams: u64,
    /// Push-pull exchanges that failed.
    pub stream_failures: u64,
    /// Request and response bytes of push-pull exchanges.
    pub stream_bytes: u64,
    /// Fallback pings over a stream (a direct probe unanswered in time).
    pub stream_pings: u64,
    /// Fallback pings that failed (path cut, peer down, past the period).
    pub stream_ping_failures: u64,
    /// Request and ack bytes of fallback pings.
    pub stream_ping_bytes: u64,
    /// Live node-time in protocol periods (the denominator below).
    pub node_periods: f64,
    /// Datagrams and stream frames sent per member per period.
    pub msgs_per_member_per_period: f64,
    /// Bytes sent (datagrams and streams) per member per period.
    pub bytes_per_member_per_period: f64,
}

/// What the SWIM paper predicts, for comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SwimPrediction {
    /// Expected periods to first detection of a crash: e/(e−1) ≈ 1.58.
    pub first_detection_periods: f64,
    /// Dissemination is O(log n) periods; shown as ceil(log2 n).
    pub dissemination_periods: f64,
}

impl SwimPrediction {
    /// The prediction for a cluster of `n` members.
    pub fn for_members(n: u64) -> Self {
        let e = std::f64::consts::E;
        Self { first_detection_periods: e / (e - 1.0), dissemination_periods: (n.max(2) as f64).log2().ceil() }
    }
}

/// Accuracy: who was declared dead without being dead.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Accuracy {
    /// Views turning suspect: one per member that learns of a suspicion
    /// (a suspicion gossiped to the whole cluster counts once per member).
    pub suspicions: u64,
    /// Views turning dead, counted the same way.
    pub deaths: u64,
    /// Dead declarations of a member that was running, not paused or slowed
    /// and not restarted (within `cluster.fp_grace`), reachable both ways
    /// from the declaring member, and not leaving.
    pub false_positives: u64,
    /// Dead declarations of a running member that was paused or slowed
    /// (now or within `cluster.fp_grace`).
    pub deaths_of_degraded: u64,
    /// Dead declarations of a member restarted within `cluster.fp_grace`
    /// (most likely about its previous incarnation).
    pub deaths_of_restarted: u64,
    /// Views turning suspect about a member that was running, healthy and
    /// reachable (counted per member that learns of it; Lifeguard's
    /// refutations undo them).
    pub false_suspicions: u64,
}

/// One sample of the cluster's views (averaged over live members).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Virtual ms.
    pub t_ms: f64,
    /// Live (running) members.
    pub live: u64,
    /// Members a live member sees alive, on average.
    pub alive: f64,
    /// ... suspect.
    pub suspect: f64,
    /// ... dead.
    pub dead: f64,
    /// ... left.
    pub left: f64,
}

/// What the partition-heal layer (gossamer-heal) did over the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealReport {
    /// Autoclean timeout in virtual ms (`None`: off).
    pub autoclean_ms: Option<f64>,
    /// `PartitionDetected` events, summed over nodes.
    pub detections: u64,
    /// `PartitionHealed` decisions, summed over nodes.
    pub decisions: u64,
    /// Decisions by which a node of a losing side rejoined.
    pub rejoins: u64,
    /// Most decisions by one node (a heal storm shows here).
    pub max_decisions_per_node: u64,
    /// Members forgotten by autoclean, summed over observers.
    pub removals: u64,
    /// Of those, members that were running.
    pub false_removals: u64,
    /// Shortest time an observer held a member dead before forgetting it.
    pub earliest_removal: Option<Measure>,
    /// Per `heal` fault (a reconnection): how long until the sides noticed,
    /// decided and were one cluster again.
    pub reconnections: Vec<HealTiming>,
}

/// Heal time after one reconnection (`heal` fault), measured from it over
/// the nodes up from it to the end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealTiming {
    /// The `heal` fault's index.
    pub fault: usize,
    /// Nodes up from the fault to the end.
    pub participants: u64,
    /// Of those, how many raised `PartitionDetected` after it.
    pub detected_by: u64,
    /// ... raised `PartitionHealed` after it.
    pub decided_by: u64,
    /// ... rejoined after it.
    pub rejoined_by: u64,
    /// First `PartitionDetected` anywhere.
    pub first_detected: Option<Measure>,
    /// Until every one of them had detected it (`None` if some never did).
    pub all_detected: Option<Measure>,
    /// First `PartitionHealed` anywhere.
    pub first_decided: Option<Measure>,
    /// Until every one of them had decided (`None` if some never did).
    pub all_decided: Option<Measure>,
    /// Until every live member saw every live member alive (one cluster).
    pub converged: Option<Measure>,
}

/// Nearest-rank percentiles of a set of delays, in protocol periods.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    /// How many values.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// The percentiles of `values` (`None` if empty).
    ///
    /// ```
    /// use gossamer_sim::Percentiles;
    /// let p = Percentiles::of((1..=100).map(f64::from).collect()).unwrap();
    /// assert_eq!((p.count, p.p50, p.p99, p.max), (100, 50.0, 99.0, 100.0));
    /// assert!(Percentiles::of(Vec::new()).is_none());
    /// ```
    pub fn of(mut values: Vec<f64>) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let rank = |q: f64| values[((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
        Some(Self { count: values.len() as u64, p50: rank(0.5), p99: rank(0.99), max: values[values.len() - 1] })
    }
}

impl fmt::Display for Percentiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p50 {:.2} / p99 {:.2} / max {:.2} periods (n={})", self.p50, self.p99, self.max, self.count)
    }
}

/// What the application broadcasts of the `broadcast` faults did.
///
/// A broadcast is *counted* unless its origin went down within one period
/// of sending it (it may never have left the origin). Its *receivers* are
/// the nodes running from the instant it was sent to the end of the run
/// without a restart, its origin excepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BroadcastReport {
    /// Broadcasts the core accepted.
    pub sent: u64,
    /// Broadcasts the core refused (too large, or the node was leaving).
    pub refused: u64,
    /// Broadcasts not attempted: the origin was down at its instant.
    pub skipped: u64,
    /// Accepted broadcasts whose origin went down within one period.
    pub origin_lost: u64,
    /// Deliveries (`UserEvent::Broadcast`) recorded, at every node.
    pub deliveries: u64,
    /// Deliveries the cores counted (`Metrics::user_items_delivered`,
    /// summed): the same figure seen from the other side.
    pub core_deliveries: u64,
    /// Deliveries of a broadcast a node (in the same run of it) had
    /// already delivered: the core promises none.
    pub duplicates: u64,
    /// Deliveries whose payload (or origin, key, version) matched no
    /// broadcast sent.
    pub corrupt: u64,
    /// (counted broadcast, receiver) pairs.
    pub pairs: u64,
    /// Of those, delivered.
    pub delivered_pairs: u64,
    /// `delivered_pairs / pairs` (1 when there are no pairs).
    pub coverage: f64,
    /// Counted broadcasts that reached every receiver.
    pub complete: u64,
    /// Counted broadcasts that missed a receiver.
    pub incomplete: u64,
    /// Per complete broadcast: from sending to its last receiver.
    pub full_delivery: Option<Percentiles>,
    /// Per delivered pair: from sending to delivery.
    pub latency: Option<Percentiles>,
    /// Mean encoded size of one broadcast item, bytes.
    pub item_bytes: f64,
    /// Application items piggybacked, summed over every node.
    pub user_items_sent: u64,
    /// Application items dropped from full queues, summed over every node.
    pub user_items_dropped: u64,
    /// Item bytes piggybacked per delivery (`user_items_sent ×
    /// item_bytes / deliveries`): the dissemination's own cost, frame
    /// headers excluded.
    pub item_bytes_per_delivery: f64,
    /// Deliveries per virtual period, from the first broadcast to the last
    /// delivery.
    pub deliveries_per_period: f64,
}

/// The run against the same scenario without broadcasts (the
/// `detection_unaffected_by_broadcasts` assertion's baseline). Means are
/// over the crash faults (first detection) and the crash and leave faults
/// (all know) measured in both runs, in periods.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaselineComparison {
    /// Crash faults compared for first detection.
    pub crashes: u64,
    /// Mean first detection with broadcasts.
    pub first_detection: Option<f64>,
    /// ... in the baseline.
    pub first_detection_baseline: Option<f64>,
    /// Crash and leave faults compared for "all members know".
    pub departures: u64,
    /// Mean time until all know, with broadcasts.
    pub all_know: Option<f64>,
    /// ... in the baseline.
    pub all_know_baseline: Option<f64>,
    /// Detection faults measured in one run only (a difference in itself).
    pub unmatched: u64,
    /// Extra bytes sent (datagrams and streams) per delivery, compared to
    /// the baseline: the whole cost of the broadcasts, headers included.
    pub extra_bytes_per_delivery: Option<f64>,
    /// Why there is no baseline, if there is none.
    pub error: Option<String>,
}

/// What the hostile peer did (`forge` and `impostor` faults) and how the
/// cluster took it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostileReport {
    /// Per `forge` fault.
    pub faults: Vec<HostileFault>,
    /// Never-existing members the floods forged, in all.
    pub ghosts: u64,
    /// Deliveries of forged user items to an application.
    pub forged_deliveries: u64,
    /// The largest member table of any node (sampled every `sample_every`
    /// and at the end), itself and dead members included.
    pub max_members: u64,
    /// The node that held it.
    pub max_members_node: Option<u32>,
}

/// One `forge` fault, as it went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostileFault {
    /// Fault index.
    pub index: usize,
    /// The attack (`confirm`, `suspect`, ...).
    pub attack: String,
    /// Frames sent.
    pub frames: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Frames a node took in (the others found it down).
    pub handled: u64,
    /// From the fault to the last frame taken in.
    pub last_frame: Option<Measure>,
    /// From the last frame taken in until every live member saw every live
    /// member alive (`recovered_within`).
    pub recovered: Option<Measure>,
}

/// Whether one assertion held.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssertionResult {
    /// The assertion, in words.
    pub description: String,
    /// Held?
    pub passed: bool,
    /// What was measured.
    pub detail: String,
}

/// Host-side cost of the run (wall clock: not part of determinism).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Performance {
    /// Wall-clock seconds of the whole run, setup included.
    pub wall_secs: f64,
    /// Of which building the initial nodes before the first event (with
    /// `start = "converged"`: every node and its full member table; with
    /// joins, nodes are built by the run's own boot events and this is ~0).
    pub setup_secs: f64,
    /// Events processed.
    pub events: u64,
    /// Simulated node-periods per wall second (the whole run).
    pub node_periods_per_sec: f64,
    /// Simulated node-periods per wall second of the run phase alone
    /// (wall time minus setup).
    pub run_node_periods_per_sec: f64,
}

/// Everything a run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Master seed.
    pub seed: u64,
    /// Members at the start.
    pub nodes: u32,
    /// Live members at the end.
    pub live_at_end: u64,
    /// Simulated virtual time, ms.
    pub duration_ms: f64,
    /// The protocol period, ms.
    pub period_ms: f64,
    /// Per fault.
    pub faults: Vec<FaultReport>,
    /// Accuracy.
    pub accuracy: Accuracy,
    /// Protocol counters summed over every node that ran.
    pub protocol: crate::node::NodeCounters,
    /// Traffic.
    pub traffic: Traffic,
    /// The SWIM paper's predictions for this cluster size.
    pub swim_prediction: SwimPrediction,
    /// Every live member saw every live member alive at the end.
    pub single_cluster_at_end: bool,
    /// What the heal layer did (`None`: the scenario ran plain SWIM).
    pub heal: Option<HealReport>,
    /// What application broadcasts did (`None`: no `broadcast` fault).
    pub broadcasts: Option<BroadcastReport>,
    /// Detection compared with the same run without broadcasts (`None`
    /// unless a `detection_unaffected_by_broadcasts` assertion asked).
    pub baseline: Option<BaselineComparison>,
    /// What the hostile peer did (`None`: no `forge` or `impostor` fault).
    pub hostile: Option<HostileReport>,
    /// Assertions.
    pub assertions: Vec<AssertionResult>,
    /// All assertions held.
    pub passed: bool,
    /// View counts over time (for the plot).
    pub samples: Vec<Sample>,
    /// Host-side cost.
    pub performance: Performance,
}

fn opt(m: &Option<Measure>) -> String {
    m.map_or_else(|| "never".to_owned(), |m| m.to_string())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "scenario {} (seed {}): {} nodes, {:.0} periods of {:.0} ms",
            self.scenario,
            self.seed,
            self.nodes,
            self.duration_ms / self.period_ms,
            self.period_ms
        )?;
        writeln!(f, "SWIM predicts: first detection ≈ e/(e−1) = {:.2} periods; dissemination O(log n) ≈ ceil(log2 n) = {:.0} periods",
            self.swim_prediction.first_detection_periods, self.swim_prediction.dissemination_periods)?;
        for fr in &self.faults {
            writeln!(f, "fault #{} at {:.0} ms: {}", fr.index, fr.at_ms, fr.description)?;
            let rows = [
                ("first detection", &fr.first_suspect, fr.kind == "crash"),
                ("all members suspect", &fr.all_suspect, false),
                ("first declared dead", &fr.first_dead, false),
                ("all members know", &fr.all_know, false),
                ("split complete", &fr.split, false),
                ("converged", &fr.converged, false),
            ];
            for (label, m, predict) in rows {
                if m.is_none()
                    && !matches!(
                        (label, fr.kind.as_str()),
                        ("first detection" | "all members suspect" | "first declared dead", "crash")
                            | ("all members know", "crash" | "leave")
                            | ("split complete", "partition")
                            | ("converged", "heal" | "join" | "restart")
                    )
                {
                    continue;
                }
                write!(f, "    {label:<22} {}", opt(m))?;
                if predict {
                    write!(f, "   [SWIM: {:.2} periods]", self.swim_prediction.first_detection_periods)?;
                }
                if label == "all members suspect" && fr.kind == "crash" {
                    if let (Some(all), Some(first)) = (m, fr.first_suspect) {
                        write!(
                            f,
                            "   [spread of the first suspicion: {:.2} periods; SWIM O(log n) ≈ {:.0}]",
                            all.periods - first.periods,
                            self.swim_prediction.dissemination_periods
                        )?;
                    }
                }
                writeln!(f)?;
            }
            if fr.suspicions + fr.deaths > 0 || matches!(fr.kind.as_str(), "pause" | "slow" | "one_way" | "flap") {
                writeln!(f, "    suspicions / deaths of its nodes: {} / {}", fr.suspicions, fr.deaths)?;
            }
        }
        let a = &self.accuracy;
        writeln!(f, "accuracy: {} false positives (+{} deaths of paused/slow members, +{} of restarted ones); views turned suspect {} times ({} about healthy members), dead {} times",
            a.false_positives, a.deaths_of_degraded, a.deaths_of_restarted, a.suspicions, a.false_suspicions, a.deaths)?;
        let p = &self.protocol;
        writeln!(
            f,
            "protocol: {} probes, {} suspicions raised, {} refuted, {} frames rejected, {} probes answered over the stream fallback only",
            p.probes, p.suspicions_raised, p.refutations, p.rejected, p.stream_ping_acks
        )?;
        let t = &self.traffic;
        writeln!(f, "traffic: {:.2} msgs and {:.0} bytes per member per period ({} datagrams, {} lost, {} cut, {} duplicated, max {} B; {} push-pulls, {} failed, {} B; {} stream pings, {} failed, {} B)",
            t.msgs_per_member_per_period, t.bytes_per_member_per_period, t.datagrams, t.lost, t.cut, t.duplicated,
            t.max_datagram, t.streams, t.stream_failures, t.stream_bytes, t.stream_pings, t.stream_ping_failures,
            t.stream_ping_bytes)?;
        writeln!(
            f,
            "end: {} live members, single cluster: {}",
            self.live_at_end,
            if self.single_cluster_at_end { "yes" } else { "no" }
        )?;
        if let Some(h) = &self.heal {
            let autoclean = h.autoclean_ms.map_or("off".to_owned(), |ms| format!("{ms:.0} ms"));
            writeln!(
                f,
                "heal: {} detections, {} decisions ({} rejoins, at most {} per node); autoclean {autoclean}: {} removals ({} of running members), shortest dead time {}",
                h.detections,
                h.decisions,
                h.rejoins,
                h.max_decisions_per_node,
                h.removals,
                h.false_removals,
                opt(&h.earliest_removal)
            )?;
            for r in &h.reconnections {
                writeln!(
                    f,
                    "    after heal #{}: {} nodes; detected by {}, decided by {}, rejoined {}",
                    r.fault, r.participants, r.detected_by, r.decided_by, r.rejoined_by
                )?;
                for (label, m) in [
                    ("first detection", &r.first_detected),
                    ("all detected", &r.all_detected),
                    ("first decision", &r.first_decided),
                    ("all decided", &r.all_decided),
                    ("one cluster", &r.converged),
                ] {
                    writeln!(f, "        {label:<18} {}", opt(m))?;
                }
            }
        }
        if let Some(b) = &self.broadcasts {
            writeln!(
                f,
                "broadcasts: {} sent ({} refused, {} skipped: origin down, {} origin lost within a period); {} deliveries ({} counted by the cores), {} duplicates, {} corrupt",
                b.sent, b.refused, b.skipped, b.origin_lost, b.deliveries, b.core_deliveries, b.duplicates, b.corrupt
            )?;
            writeln!(
                f,
                "    coverage {:.4} ({} of {} broadcast/receiver pairs); {} broadcasts complete, {} incomplete",
                b.coverage, b.delivered_pairs, b.pairs, b.complete, b.incomplete
            )?;
            writeln!(f, "    time to full delivery  {}", b.full_delivery.map_or("none".to_owned(), |p| p.to_string()))?;
            writeln!(f, "    delivery latency       {}", b.latency.map_or("none".to_owned(), |p| p.to_string()))?;
            writeln!(
                f,
                "    {:.0} B per item, {} items piggybacked, {} dropped: {:.1} item bytes per delivery; {:.1} deliveries per period",
                b.item_bytes, b.user_items_sent, b.user_items_dropped, b.item_bytes_per_delivery, b.deliveries_per_period
            )?;
        }
        if let Some(c) = &self.baseline {
            let mean = |m: Option<f64>| m.map_or("none".to_owned(), |v| format!("{v:.2}"));
            match &c.error {
                Some(e) => writeln!(f, "baseline without broadcasts: not run ({e})")?,
                None => writeln!(
                    f,
                    "baseline without broadcasts: mean first detection {} vs {} periods ({} crashes); mean all know {} vs {} periods ({} crashes/leaves; {} unmatched); {} extra bytes per delivery",
                    mean(c.first_detection),
                    mean(c.first_detection_baseline),
                    c.crashes,
                    mean(c.all_know),
                    mean(c.all_know_baseline),
                    c.departures,
                    c.unmatched,
                    mean(c.extra_bytes_per_delivery)
                )?,
            }
        }
        if let Some(h) = &self.hostile {
            writeln!(
                f,
                "hostile: {} never-existing members forged, {} forged user items delivered; largest member table {}{}",
                h.ghosts,
                h.forged_deliveries,
                h.max_members,
                h.max_members_node.map_or(String::new(), |n| format!(" (node {n})"))
            )?;
            for x in &h.faults {
                writeln!(
                    f,
                    "    forge #{} {}: {} frames ({} B), {} taken in, the last after {}; all alive again {} after it",
                    x.index,
                    x.attack,
                    x.frames,
                    x.bytes,
                    x.handled,
                    opt(&x.last_frame),
                    opt(&x.recovered)
                )?;
            }
        }
        let p = &self.performance;
        writeln!(
            f,
            "speed: {:.2} s wall ({:.2} s setup), {} events, {:.0} node-periods/s ({:.0} in the run phase)",
            p.wall_secs, p.setup_secs, p.events, p.node_periods_per_sec, p.run_node_periods_per_sec
        )?;
        for r in &self.assertions {
            writeln!(f, "[{}] {} ({})", if r.passed { "PASS" } else { "FAIL" }, r.description, r.detail)?;
        }
        write!(f, "{}", if self.passed { "PASSED" } else { "FAILED" })
    }
}
