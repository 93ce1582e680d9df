//! Application broadcasts (`broadcast` faults): scheduling them, recording
//! every delivery, the broadcast section of the report, the comparison
//! with a baseline run without them, and the broadcast assertions.
//!
//! Everything here is keyed by node index and broadcast number and only
//! ever looked up, never iterated in hash order, so a run stays a pure
//! function of its seed.

use std::collections::HashMap;

use gossamer_wire::{NodeName, Update, UserBroadcast, UserKey};

use super::*;
use crate::node::name_index;
use crate::report::{BaselineComparison, BroadcastReport, Percentiles};
use crate::scenario::DEFAULT_BROADCAST_PAYLOAD;

/// RNG stream of broadcast picks and instants: separate from the other
/// scenario picks, so that emptying the broadcast faults (the baseline
/// run) leaves every other random choice as it was.
pub(super) const STREAM_BROADCASTS: u64 = 2;

/// One broadcast the core accepted.
struct Sent {
    origin: u32,
    /// The origin's run that sent it.
    generation: u32,
    at: Time,
    payload: Bytes,
}

/// Every broadcast sent and every delivery, as the run goes.
pub(super) struct BroadcastLog {
    /// The scenario has broadcast faults (otherwise nothing is recorded
    /// and the report has no broadcast section).
    pub(super) enabled: bool,
    pub(super) rng: ChaCha8Rng,
    sent: Vec<Sent>,
    /// (origin, key, version) → index in `sent`.
    by_item: HashMap<(u32, String, u64), usize>,
    /// (broadcast, receiver) → the receiver's run and when it delivered.
    delivered: HashMap<(usize, u32), (u32, Time)>,
    /// (node, generation) → when that run of the node ended.
    ended: HashMap<(u32, u32), Time>,
    refused: u64,
    skipped: u64,
    deliveries: u64,
    duplicates: u64,
    corrupt: u64,
    item_bytes: u64,
    first_sent: Option<Time>,
    last_delivery: Option<Time>,
}

impl BroadcastLog {
    pub(super) fn new(enabled: bool, seed: u64) -> Self {
        Self {
            enabled,
            rng: stream_rng(seed, STREAM_BROADCASTS),
            sent: Vec::new(),
            by_item: HashMap::new(),
            delivered: HashMap::new(),
            ended: HashMap::new(),
            refused: 0,
            skipped: 0,
            deliveries: 0,
            duplicates: 0,
            corrupt: 0,
            item_bytes: 0,
            first_sent: None,
            last_delivery: None,
        }
    }

    /// A run of `node` ended (crash, restart or leave).
    pub(super) fn stopped(&mut self, node: u32, generation: u32, at: Time) {
        if self.enabled {
            self.ended.insert((node, generation), at);
        }
    }
}

/// The payload of broadcast number `id`: its number, then bytes derived
/// from it, so that any corruption or mix-up shows on delivery.
fn payload_of(id: usize, len: usize) -> Bytes {
    let seed = (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut bytes: Vec<u8> = (id as u64).to_le_bytes().into_iter().collect();
    bytes.extend((0..len.saturating_sub(8) as u64).map(|i| (seed.wrapping_mul(i + 1) >> 56) as u8));
    bytes.truncate(len);
    Bytes::from(bytes)
}

/// The key broadcasts of fault `fault` are sent under.
fn key_of(fault: usize) -> String {
    format!("f{fault}")
}

impl<F: NodeFactory> Simulation<F> {
    /// A `broadcast` fault: each named node gets its instant within the
    /// spread (drawn in node order). Returns the nodes.
    pub(super) fn schedule_broadcasts(&mut self, fault: usize, nodes: &NodeSet, spread: Option<Span>) -> Vec<u32> {
        let v = nodes.resolve(self.slots.len() as u32, &mut self.bcast.rng);
        let spread = spread.map_or(Duration::ZERO, |s| s.resolve(self.cfg.period));
        for &node in &v {
            let offset = Duration::from_nanos(self.bcast.rng.random_range(0..=spread.as_nanos() as u64));
            self.queue.push(self.now + offset, Ev::Broadcast { node, fault, lagged: false });
        }
        v
    }

    /// The application of `node` broadcasts for fault `fault` now.
    pub(super) fn broadcast(&mut self, node: u32, fault: usize) {
        let FaultAction::Broadcast { payload, .. } = &self.scenario.faults[fault].action else { return };
        let len = payload.unwrap_or(DEFAULT_BROADCAST_PAYLOAD);
        let id = self.bcast.sent.len();
        let bytes = payload_of(id, len);
        let key = match &self.scenario.faults[fault].action {
            FaultAction::Broadcast { key: Some(key), .. } => key.clone(),
            _ => key_of(fault),
        };
        let now = self.now;
        let Some(n) = self.slots[node as usize].node.as_mut() else {
            self.bcast.skipped += 1;
            trace!(self, "broadcast {node} key={key} skipped: down");
            return;
        };
        match n.broadcast(now, &key, bytes.to_vec()) {
            Ok(version) => {
                trace!(self, "broadcast {node} key={key} v={version} len={len} id={id}");
                let item = Update::User(UserBroadcast {
                    origin: node_id(node).name,
                    key: UserKey::new(&key).expect("f<digits> is a valid key"),
                    version,
                    payload: bytes.to_vec(),
                });
                let log = &mut self.bcast;
                log.item_bytes += item.encoded_len() as u64;
                log.first_sent.get_or_insert(now);
                log.by_item.insert((node, key, version), id);
                let generation = self.slots[node as usize].generation;
                log.sent.push(Sent { origin: node, generation, at: now, payload: bytes });
            }
            Err(e) => {
                trace!(self, "broadcast {node} key={key} refused: {e}");
                tracing::debug!(target: "gossamer_sim", node, fault, "broadcast refused: {e}");
                self.bcast.refused += 1;
            }
        }
        self.drain(node);
    }

    /// `node` delivered a broadcast to its application.
    pub(super) fn delivered(&mut self, node: u32, origin: NodeName, key: String, version: u64, payload: Bytes) {
        if self.hostile.enabled && key == crate::hostile::FORGED_KEY {
            self.forged_delivered(node, &origin, version);
            return;
        }
        let log = &mut self.bcast;
        log.deliveries += 1;
        let found = name_index(&origin).and_then(|o| log.by_item.get(&(o, key, version)).copied());
        let Some(id) = found.filter(|&id| log.sent[id].payload == payload) else {
            log.corrupt += 1;
            trace!(self, "deliver {node} from {origin} v={version} unknown or corrupt");
            return;
        };
        let generation = self.slots[node as usize].generation;
        let now = self.now;
        let log = &mut self.bcast;
        log.last_delivery = Some(now);
        match log.delivered.get(&(id, node)) {
            Some(&(g, _)) if g == generation => {
                log.duplicates += 1;
                trace!(self, "deliver {node} id={id} duplicate");
            }
            _ => {
                log.delivered.insert((id, node), (generation, now));
                trace!(self, "deliver {node} id={id}");
            }
        }
    }

    /// The broadcast section of the report (`None` without broadcast faults).
    pub(super) fn broadcast_report(&self, counters: &NodeCounters) -> Option<BroadcastReport> {
        let log = &self.bcast;
        if !log.enabled {
            return None;
        }
        let period = self.cfg.period.as_secs_f64();
        let periods = |d: Duration| d.as_secs_f64() / period;
        let (mut pairs, mut delivered_pairs, mut complete, mut incomplete, mut origin_lost) = (0u64, 0u64, 0, 0, 0);
        let (mut full, mut latency) = (Vec::new(), Vec::new());
        for (id, b) in log.sent.iter().enumerate() {
            let lost = log.ended.get(&(b.origin, b.generation)).is_some_and(|&end| end < b.at + self.cfg.period);
            if lost {
                origin_lost += 1;
                continue;
            }
            let mut last = Some(Duration::ZERO);
            for (r, slot) in self.slots.iter().enumerate() {
                let r = r as u32;
                if r == b.origin || slot.node.is_none() || slot.up_since > b.at {
                    continue;
                }
                pairs += 1;
                match log.delivered.get(&(id, r)) {
                    Some(&(g, at)) if g == slot.generation => {
                        delivered_pairs += 1;
                        let d = at - b.at;
                        latency.push(periods(d));
                        last = last.map(|l| l.max(d));
                    }
                    _ => last = None,
                }
            }
            match last {
                Some(d) => {
                    complete += 1;
                    full.push(periods(d));
                }
                None => incomplete += 1,
            }
        }
        let sent = log.sent.len() as u64;
        let item_bytes = if sent == 0 { 0.0 } else { log.item_bytes as f64 / sent as f64 };
        let active = match (log.first_sent, log.last_delivery) {
            (Some(a), Some(b)) if b > a => periods(b - a),
            _ => 0.0,
        };
        Some(BroadcastReport {
            sent,
            refused: log.refused,
            skipped: log.skipped,
            origin_lost,
            deliveries: log.deliveries,
            core_deliveries: counters.user_items_delivered,
            duplicates: log.duplicates,
            corrupt: log.corrupt,
            pairs,
            delivered_pairs,
            coverage: if pairs == 0 { 1.0 } else { delivered_pairs as f64 / pairs as f64 },
            complete,
            incomplete,
            full_delivery: Percentiles::of(full),
            latency: Percentiles::of(latency),
            item_bytes,
            user_items_sent: counters.user_items_sent,
            user_items_dropped: counters.user_items_dropped,
            item_bytes_per_delivery: if log.deliveries == 0 {
                0.0
            } else {
                counters.user_items_sent as f64 * item_bytes / log.deliveries as f64
            },
            deliveries_per_period: if active > 0.0 { log.deliveries as f64 / active } else { 0.0 },
        })
    }
}

/// Compares this run's detection faults with the baseline's (same fault
/// indices: the baseline only emptied the broadcast faults).
pub(super) fn compare(
    faults: &[FaultReport],
    traffic: &Traffic,
    deliveries: u64,
    baseline: &Result<Report, String>,
) -> BaselineComparison {
    let base = match baseline {
        Ok(r) => r,
        Err(e) => {
            return BaselineComparison {
                crashes: 0,
                first_detection: None,
                first_detection_baseline: None,
                departures: 0,
                all_know: None,
                all_know_baseline: None,
                unmatched: 0,
                extra_bytes_per_delivery: None,
                error: Some(e.clone()),
            }
        }
    };
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let (mut first, mut first_base, mut all, mut all_base, mut unmatched) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), 0);
    for (f, b) in faults.iter().zip(&base.faults) {
        let crash = f.kind == "crash";
        if !(crash || f.kind == "leave") {
            continue;
        }
        let pairs = [
            (crash, f.first_suspect, b.first_suspect, &mut first, &mut first_base),
            (true, f.all_know, b.all_know, &mut all, &mut all_base),
        ];
        for (wanted, with, without, into, into_base) in pairs {
            match (wanted, with, without) {
                (false, _, _) | (true, None, None) => {}
                (true, Some(w), Some(o)) => {
                    into.push(w.periods);
                    into_base.push(o.periods);
                }
                (true, _, _) => unmatched += 1,
            }
        }
    }
    let bytes = |t: &Traffic| (t.datagram_bytes + t.stream_bytes) as f64;
    BaselineComparison {
        crashes: first.len() as u64,
        first_detection: mean(&first),
        first_detection_baseline: mean(&first_base),
        departures: all.len() as u64,
        all_know: mean(&all),
        all_know_baseline: mean(&all_base),
        unmatched,
        extra_bytes_per_delivery: (deliveries > 0).then(|| (bytes(traffic) - bytes(&base.traffic)) / deliveries as f64),
        error: None,
    }
}

/// Evaluates a broadcast assertion.
pub(super) fn evaluate(
    a: &AssertSpec,
    report: Option<&BroadcastReport>,
    cmp: Option<&BaselineComparison>,
) -> AssertionResult {
    let (description, passed, detail) = match *a {
        AssertSpec::BroadcastsDelivered { periods, coverage } => {
            let want = coverage.unwrap_or(1.0);
            let description = if want >= 1.0 {
                format!("every broadcast reaches every node running through the run, once and intact, within {periods} periods")
            } else {
                format!("broadcasts reach {:.2}% of the nodes running through the run, once and intact, each within {periods} periods", want * 100.0)
            };
            match report {
                None => (description, false, "no broadcast section".to_owned()),
                Some(b) => {
                    let counted = b.sent - b.origin_lost;
                    // Within `periods`: every complete broadcast, and with
                    // full coverage required, nothing incomplete either.
                    let slowest = b.full_delivery.map_or(0.0, |p| p.max);
                    let passed = counted > 0
                        && b.coverage >= want
                        && (want < 1.0 || b.incomplete == 0)
                        && slowest <= periods
                        && b.duplicates == 0
                        && b.corrupt == 0;
                    let detail = format!(
                        "{counted} broadcasts counted; coverage {:.4}, {} incomplete, slowest complete one {:.2} periods, {} duplicates, {} corrupt",
                        b.coverage, b.incomplete, slowest, b.duplicates, b.corrupt
                    );
                    (description, passed, detail)
                }
            }
        }
        AssertSpec::DetectionUnaffectedByBroadcasts { tolerance, min_periods } => {
            let (tol, floor) = (tolerance.unwrap_or(0.1), min_periods.unwrap_or(1.0));
            let description = format!(
                "mean detection times within {:.0}% (or {floor} periods) of the same run without broadcasts",
                tol * 100.0
            );
            match cmp {
                None => (description, false, "no baseline run".to_owned()),
                Some(c) if c.error.is_some() => (description, false, format!("baseline failed: {:?}", c.error)),
                Some(c) => {
                    let close = |with: Option<f64>, without: Option<f64>| match (with, without) {
                        (Some(w), Some(o)) => (w - o).abs() <= (tol * o).max(floor),
                        (None, None) => true,
                        _ => false,
                    };
                    let measured = c.first_detection.is_some() || c.all_know.is_some();
                    let passed = measured
                        && c.unmatched == 0
                        && close(c.first_detection, c.first_detection_baseline)
                        && close(c.all_know, c.all_know_baseline);
                    let show = |m: Option<f64>| m.map_or("none".to_owned(), |v| format!("{v:.2}"));
                    let detail = format!(
                        "first detection {} vs {} ({} crashes), all know {} vs {} ({} faults), {} unmatched",
                        show(c.first_detection),
                        show(c.first_detection_baseline),
                        c.crashes,
                        show(c.all_know),
                        show(c.all_know_baseline),
                        c.departures,
                        c.unmatched
                    );
                    (description, passed, detail)
                }
            }
        }
        _ => (format!("{a:?}"), false, "not a broadcast assertion".to_owned()),
    };
    AssertionResult { description, passed, detail }
}
