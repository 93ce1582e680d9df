//! OpenMetrics text of the agent's counters, for `GET /metrics` (issue #17: operators of Consul and EMQX
//! scrape Prometheus, and should not have to run `gossamer metrics` in a loop).
//!
//! Every scrape takes one snapshot of the node's [`NodeMetrics`] and encodes it through the Prometheus
//! project's own client (`prometheus-client`), so names, `# TYPE`/`# HELP` lines, the `_total` suffix of
//! counters and the `# EOF` trailer follow the OpenMetrics format exactly. Names:
//!
//! - `gossamer_members{status="alive|suspect|dead|left"}`: members by status (gauge);
//! - `gossamer_<field>` for every other field of the core's [`Metrics`](gossamer::Metrics)
//!   (counters get `_total`);
//! - `gossamer_traffic_in_messages_total{kind}`, `..._bytes_total{kind}` (and `traffic_out`): the core's
//!   traffic by kind (`probe`, `ack`, `gossip`, `push_pull`, `user`);
//! - `gossamer_net_<field>` for every field of the runtime's [`NetMetrics`](gossamer::net::NetMetrics);
//! - `gossamer_heal_<field>_total` for every field of the heal layer's
//!   [`HealMetrics`](gossamer::net::HealMetrics), taken from its serialisation (zero when `[heal]` is off);
//! - the agent's own counters, also serialised: `gossamer_handler_<...>_total` (`[[handlers]]`) and
//!   `gossamer_dns_malformed_total` (`[dns]`).
//!
//! A unit test lists the fields of both structs (from their `Debug` output) and fails when one is not
//! exported, so a counter added later cannot be silently left out of the scrape.
//!
//! Histograms: `gossamer_probe_rtt_seconds` (direct probe round trips, the core's fixed buckets, 250 µs
//! to 1 s) and `gossamer_net_push_pull_duration_seconds` (the runtime's, 1 ms to 10 s).

use gossamer::core::{RttHistogram, RTT_BUCKETS_MICROS};
use gossamer::net::HistogramSnapshot;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::control::MetricsView;

/// The `Content-Type` of [`render`]'s output (what Prometheus asks for in its `Accept` header).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type U64Gauge = Gauge<u64, AtomicU64>;

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let c = Counter::<u64>::default();
    c.inc_by(value);
    registry.register(name, help, c);
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let g = U64Gauge::default();
    g.set(value);
    registry.register(name, help, g);
}

/// A histogram the core or runtime already aggregated (bucket bounds and per-bucket counts in
/// microseconds), encoded as an OpenMetrics histogram in seconds.
#[derive(Debug)]
struct Aggregated {
    bounds_micros: Vec<u64>,
    counts: Vec<u64>,
    sum_micros: u64,
}

impl From<&HistogramSnapshot> for Aggregated {
    fn from(h: &HistogramSnapshot) -> Self {
        Self { bounds_micros: h.bounds_micros.clone(), counts: h.counts.clone(), sum_micros: h.sum_micros }
    }
}

impl From<&RttHistogram> for Aggregated {
    fn from(h: &RttHistogram) -> Self {
        Self { bounds_micros: RTT_BUCKETS_MICROS.to_vec(), counts: h.counts.to_vec(), sum_micros: h.sum_micros }
    }
}

impl EncodeMetric for Aggregated {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = self
            .counts
            .iter()
            .enumerate()
            .map(|(i, &n)| (self.bounds_micros.get(i).map_or(f64::INFINITY, |&b| b as f64 / 1e6), n))
            .collect();
        let count = self.counts.iter().fold(0u64, |a, &c| a.saturating_add(c));
        encoder.encode_histogram::<NoLabelSet>(self.sum_micros as f64 / 1e6, count, &buckets, None)
    }

    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Histogram
    }
}

/// `gossamer_<name>_messages_total{kind}` and `gossamer_<name>_bytes_total{kind}`: the core's
/// traffic by kind (probe, ack, gossip, push_pull, user).
fn traffic(registry: &mut Registry, name: &str, verb: &str, t: &gossamer::core::Traffic) {
    let messages = Family::<Vec<(String, String)>, Counter<u64>>::default();
    let bytes = Family::<Vec<(String, String)>, Counter<u64>>::default();
    for (kind, k) in
        [("probe", t.probe), ("ack", t.ack), ("gossip", t.gossip), ("push_pull", t.push_pull), ("user", t.user)]
    {
        let labels = vec![("kind".to_owned(), kind.to_owned())];
        messages.get_or_create(&labels).inc_by(k.messages);
        bytes.get_or_create(&labels).inc_by(k.bytes);
    }
    let help = format!("Datagrams (push_pull: stream frames) {verb}, by kind");
    registry.register(format!("{name}_messages"), help, messages);
    registry.register(format!("{name}_bytes"), format!("Bytes {verb}, by kind (push_pull: streams)"), bytes);
}

fn usize_u64(v: usize) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// Registers every field of `counters` (a struct of `u64` counters,
/// serialised as it is, so a field added later is exported without an edit
/// here) as a counter named after it; `what` is the help text's subject.
fn serialised_counters<T: serde::Serialize>(registry: &mut Registry, what: &str, counters: &T) {
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(counters) else {
        tracing::error!(what, "counters do not serialise as an object");
        return;
    };
    for (name, value) in fields {
        match value.as_u64() {
            Some(v) => counter(registry, &name, &format!("{what}: {name}"), v),
            None => tracing::error!(what, name, "counter is not an unsigned integer"),
        }
    }
}

/// Encodes one snapshot as OpenMetrics text (ends with `# EOF`).
pub fn render(view: &MetricsView) -> String {
    let m = view;
    let mut registry = Registry::with_prefix("gossamer");
    let c = &m.core;
    let members = Family::<Vec<(String, String)>, U64Gauge>::default();
    for (status, n) in [("alive", c.alive), ("suspect", c.suspect), ("dead", c.dead), ("left", c.left)] {
        members.get_or_create(&vec![("status".to_owned(), status.to_owned())]).set(usize_u64(n));
    }
    registry.register("members", "Members known, by status (this node included)", members);

    let r = &mut registry;
    counter(r, "messages_in", "Datagrams and stream frames received", c.messages_in);
    counter(r, "messages_out", "Datagrams and stream frames sent", c.messages_out);
    counter(r, "bytes_in", "Bytes received", c.bytes_in);
    counter(r, "bytes_out", "Bytes sent", c.bytes_out);
    counter(r, "rejected", "Frames refused (bad label, key, checksum, malformed)", c.rejected);
    counter(r, "probes", "Probes sent", c.probes);
    counter(r, "suspicions", "Suspicions raised by this node", c.suspicions);
    counter(r, "refutations", "Suspicions of this node it refuted", c.refutations);
    gauge(r, "health_multiplier", "Lifeguard local health multiplier (0 = healthy)", u64::from(c.health_multiplier));
    counter(r, "indirect_probes", "Indirect probes (ping-req) sent", c.indirect_probes);
    counter(r, "suspect_probes", "Suspects probed out of turn after hearing of their suspicion", c.suspect_probes);
    counter(r, "confirmations_refused", "Suspicions not counted as independent confirmations", c.confirmations_refused);
    gauge(r, "refutation_floor_ms", "Suspicion floor set by recent refutations, ms", c.refutation_floor_ms);
    counter(
        r,
        "stalled_suspicions",
        "Suspicion timers handled late: death put off one probe timeout",
        c.stalled_suspicions,
    );
    counter(
        r,
        "suspicions_put_off",
        "Suspicions not ended at their deadline for want of evidence",
        c.suspicions_put_off,
    );
    counter(r, "push_pulls", "Push-pull exchanges started", c.push_pulls);
    counter(r, "push_pull_failures", "Push-pull exchanges that failed", c.push_pull_failures);
    counter(r, "stream_pings", "Fallback pings over TCP (direct probe unanswered in time)", c.stream_pings);
    counter(r, "stream_ping_acks", "Probes answered over the TCP fallback only", c.stream_ping_acks);
    counter(r, "stream_ping_failures", "Fallback pings over TCP that failed", c.stream_ping_failures);
    counter(r, "stream_ping_acks_late", "Fallback acks over TCP too late to count", c.stream_ping_acks_late);
    counter(
        r,
        "stream_pings_withheld",
        "Fallback pings not sent to unverified members after failures",
        c.stream_pings_withheld,
    );
    counter(r, "probe_timeouts", "Direct probes unanswered within the probe timeout", c.probe_timeouts);
    counter(r, "push_pull_digests", "Periodic push-pulls opened with a digest", c.push_pull_digests);
    counter(
        r,
        "push_pull_full_fallbacks",
        "Digest push-pulls that fell back to full views",
        c.push_pull_full_fallbacks,
    );
    gauge(r, "queued_updates", "Updates waiting in the dissemination queue", usize_u64(c.queued_updates));
    gauge(r, "unverified", "Members this node has not heard from directly", usize_u64(c.unverified));
    counter(r, "updates_sent", "Updates piggybacked on outgoing packets", c.updates_sent);
    counter(
        r,
        "updates_retired_early",
        "Updates retired before their retransmit limit: heard back from peers",
        c.updates_retired_early,
    );
    counter(
        r,
        "joins_left_to_push_pull",
        "Members new to this node in a join burst, left to push-pull instead of gossip",
        c.joins_left_to_push_pull,
    );
    counter(r, "updates_evicted", "Pending updates dropped: membership queue full", c.updates_evicted);
    gauge(r, "incarnation", "This node's incarnation", c.incarnation);
    gauge(r, "queued_user_items", "Application items waiting in their queue", usize_u64(c.queued_user_items));
    counter(r, "user_items_queued", "Application items queued, own and forwarded", c.user_items_queued);
    counter(r, "user_items_sent", "Application items piggybacked on outgoing packets", c.user_items_sent);
    counter(r, "user_items_delivered", "Broadcasts and queries delivered here", c.user_items_delivered);
    counter(r, "user_items_dropped", "Application items dropped: queue full", c.user_items_dropped);
    gauge(
        r,
        "user_items_remembered",
        "(origin, key) pairs and queries remembered to drop duplicates",
        usize_u64(c.user_items_remembered),
    );
    counter(r, "user_items_too_old", "Application items dropped as too old", c.user_items_too_old);
    gauge(r, "user_ltime", "This node's Lamport clock of application items", c.user_ltime);
    counter(r, "incarnations_refused", "Claims refused: incarnation above the maximum", c.incarnations_refused);
    counter(r, "incarnations_clamped", "Claims whose incarnation was clamped to the window", c.incarnations_clamped);
    counter(r, "name_conflicts", "Alive claims for a name held at another address", c.name_conflicts);
    counter(r, "members_refused", "New members not added: table full", c.members_refused);
    counter(r, "members_evicted", "Dead members forgotten early to make room", c.members_evicted);
    counter(r, "push_pulls_refused", "Push-pull views refused whole: too many members", c.push_pulls_refused);
    counter(r, "user_items_too_new", "Application items refused: stamped too far ahead", c.user_items_too_new);
    counter(r, "user_queries_refused", "Queries not surfaced: too many awaiting an answer", c.user_queries_refused);
    traffic(r, "traffic_in", "received", &c.traffic_in);
    traffic(r, "traffic_out", "sent", &c.traffic_out);
    r.register_with_unit(
        "probe_rtt",
        "Round trips of direct probes, ping to ack",
        prometheus_client::registry::Unit::Seconds,
        Aggregated::from(&c.probe_rtt),
    );

    let n = &m.net;
    let r = registry.sub_registry_with_prefix("net");
    counter(r, "send_errors", "Datagrams the OS refused to send", n.send_errors);
    counter(r, "recv_errors", "Errors reading the UDP socket", n.recv_errors);
    counter(r, "streams_accepted", "Push-pull streams accepted from peers", n.streams_accepted);
    counter(
        r,
        "streams_answered_at_accept",
        "Inbound streams whose whole request waited: answered when accepted",
        n.streams_answered_at_accept,
    );
    counter(r, "streams_refused", "Inbound streams refused", n.streams_refused);
    counter(r, "streams_busy", "Inbound streams refused on arrival: every slot busy", n.streams_busy);
    counter(r, "push_pull_failed", "Push-pull exchanges this node started that failed", n.push_pull_failed);
    counter(r, "heartbeats_sent", "Multicast heartbeats sent", n.heartbeats_sent);
    counter(r, "heartbeats_received", "Multicast heartbeats of this cluster heard", n.heartbeats_received);
    counter(r, "heartbeats_rejected", "Multicast datagrams refused", n.heartbeats_rejected);
    counter(r, "multicast_joins", "Joins started because of a heartbeat", n.multicast_joins);
    gauge(r, "timers_pending", "Core timers waiting", n.timers_pending);
    counter(r, "streams_evicted", "Inbound streams cut off to make room for a newcomer", n.streams_evicted);
    counter(r, "streams_header_timeout", "Inbound streams closed: header too slow", n.streams_header_timeout);
    counter(r, "stream_budget_waits", "Inbound streams that waited for byte budget", n.stream_budget_waits);
    counter(r, "stream_budget_refused", "Inbound streams closed: no byte budget in time", n.stream_budget_refused);
    gauge(r, "streams_open", "Inbound streams open now", n.streams_open);
    gauge(r, "stream_bytes_reserved", "Bytes of the inbound byte budget reserved now", n.stream_bytes_reserved);
    gauge(r, "push_pulls_pending", "Outbound push-pulls in flight or waiting now", n.push_pulls_pending);
    counter(r, "push_pulls_dropped", "Outbound push-pulls not started", n.push_pulls_dropped);
    counter(r, "joins_dropped", "Joins not started: outbound gate full", n.joins_dropped);
    gauge(r, "seeds", "Join addresses remembered as seeds", n.seeds);
    counter(r, "seeds_dropped", "Join addresses not remembered: seed list full", n.seeds_dropped);
    counter(r, "join_retries", "Joins retried after a short backoff while alone", n.join_retries);
    counter(r, "join_follow_ups", "Follow-up push-pulls after a join", n.join_follow_ups);
    counter(r, "streams_deferred", "Inbound streams held for a slot instead of evicting one", n.streams_deferred);
    counter(r, "stream_pings_no_room", "Fallback pings not sent: too many in flight", n.stream_pings_no_room);
    counter(r, "stream_ping_timeouts", "Fallback pings unanswered by the end of their period", n.stream_ping_timeouts);
    counter(r, "stream_ping_errors", "Fallback pings that failed: refused, closed, malformed", n.stream_ping_errors);
    r.register_with_unit(
        "push_pull_duration",
        "Push-pull exchanges this node started and completed, connect to response read",
        prometheus_client::registry::Unit::Seconds,
        Aggregated::from(&n.push_pull_duration),
    );

    let r = registry.sub_registry_with_prefix("heal");
    serialised_counters(r, "Partition-heal counter (gossamer_heal::HealMetrics)", &view.heal);
    serialised_counters(&mut registry, "Agent event handler counter", &view.handlers);
    serialised_counters(&mut registry, "Agent DNS server counter", &view.dns);

    let mut out = String::new();
    // Writing into a String cannot fail; an encoder error would be a bug in the crate.
    if let Err(e) = encode(&mut out, &registry) {
        tracing::error!(error = %e, "cannot encode the metrics");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gossamer::net::NetMetrics;
    use gossamer::Metrics;

    /// Top-level field names of a struct, from its derived `Debug` output (`Name { a: 0, b: X { c: 1 } }`).
    fn fields(debug: &str) -> Vec<String> {
        let inner = debug.split_once('{').map_or("", |(_, rest)| rest);
        let (mut depth, mut key, mut out, mut in_key) = (0i32, String::new(), Vec::new(), true);
        for ch in inner.chars() {
            match ch {
                '{' | '[' | '(' => depth += 1,
                '}' | ']' | ')' => depth -= 1,
                ':' if depth == 0 && in_key => {
                    out.push(key.trim().to_owned());
                    key.clear();
                    in_key = false;
                }
                ',' if depth == 0 => in_key = true,
                c if in_key && depth == 0 => key.push(c),
                _ => {}
            }
        }
        out
    }

    #[test]
    fn every_field_of_both_metrics_structs_is_exported() {
        let core = fields(&format!("{:?}", Metrics::default()));
        let net = fields(&format!("{:?}", NetMetrics::default()));
        assert!(core.len() > 20 && net.len() > 10, "parsed {core:?} {net:?}");
        let text = render(&MetricsView::default());
        let has = |name: &str| {
            text.lines().any(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with("_total ") || rest.starts_with('{'))
            })
        };
        for f in &core {
            let exported = match f.as_str() {
                "alive" | "suspect" | "dead" | "left" => {
                    text.contains(&format!("gossamer_members{{status=\"{f}\"}} 0"))
                }
                "probe_rtt" => has("gossamer_probe_rtt_seconds_count"),
                "traffic_in" | "traffic_out" => {
                    has(&format!("gossamer_{f}_messages_total")) && has(&format!("gossamer_{f}_bytes_total"))
                }
                _ => has(&format!("gossamer_{f}")),
            };
            assert!(exported, "core metric `{f}` is not exported at /metrics:\n{text}");
        }
        for f in &net {
            let name = match f.as_str() {
                "push_pull_duration" => "gossamer_net_push_pull_duration_seconds_count".to_owned(),
                _ => format!("gossamer_net_{f}"),
            };
            assert!(has(&name), "runtime metric `{f}` is not exported at /metrics:\n{text}");
        }
        let heal = fields(&format!("{:?}", gossamer::net::HealMetrics::default()));
        assert!(heal.len() >= 7, "parsed {heal:?}");
        for f in &heal {
            assert!(has(&format!("gossamer_heal_{f}_total")), "heal metric `{f}` is not exported:\n{text}");
        }
        for name in ["gossamer_dns_malformed_total", "gossamer_handler_runs_total", "gossamer_handler_dropped_total"] {
            assert!(has(name), "{name} is not exported:\n{text}");
        }
    }

    #[test]
    fn values_types_and_the_eof_trailer_follow_openmetrics() {
        let mut m = MetricsView::default();
        m.core.alive = 3;
        m.core.suspect = 1;
        m.core.probes = 42;
        m.core.incarnation = 7;
        m.net.streams_open = 2;
        m.heal.heals = 5;
        m.dns.dns_malformed = 4;
        m.net.push_pull_duration =
            HistogramSnapshot { bounds_micros: vec![1_000, 10_000], counts: vec![1, 2, 1], sum_micros: 3_500_000 };
        let text = render(&m);
        assert!(text.contains("# TYPE gossamer_net_push_pull_duration_seconds histogram\n"), "{text}");
        assert!(text.contains("gossamer_net_push_pull_duration_seconds_bucket{le=\"0.01\"} 3\n"), "{text}");
        assert!(text.contains("gossamer_net_push_pull_duration_seconds_bucket{le=\"+Inf\"} 4\n"), "{text}");
        assert!(text.contains("gossamer_net_push_pull_duration_seconds_count 4\n"), "{text}");
        assert!(text.contains("gossamer_net_push_pull_duration_seconds_sum 3.5\n"), "{text}");
        assert!(text.contains("# TYPE gossamer_probes counter\n"), "{text}");
        assert!(text.contains("gossamer_probes_total 42\n"), "{text}");
        assert!(text.contains("# TYPE gossamer_members gauge\n"), "{text}");
        assert!(text.contains("gossamer_members{status=\"alive\"} 3\n"), "{text}");
        assert!(text.contains("gossamer_members{status=\"suspect\"} 1\n"), "{text}");
        assert!(text.contains("gossamer_incarnation 7\n"), "{text}");
        assert!(text.contains("gossamer_net_streams_open 2\n"), "{text}");
        assert!(text.contains("# TYPE gossamer_heal_heals counter\n"), "{text}");
        assert!(text.contains("gossamer_heal_heals_total 5\n"), "{text}");
        assert!(text.contains("gossamer_dns_malformed_total 4\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
