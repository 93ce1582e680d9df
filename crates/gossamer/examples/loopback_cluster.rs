//! One side of the loopback comparison with memberlist
//! (`scripts/versus_memberlist.sh`; the other side is
//! `benches/memberlist/main.go`, which runs the same phases): N real nodes on
//! 127.0.0.1 in one process, all joining one seed; once every node sees N
//! alive members, a warm-up, then an idle window in which the network
//! namespace's own counters (`/proc/net/snmp`, `/proc/net/dev`) give UDP
//! datagrams, TCP segments and IP bytes per node per second; then one node
//! stops without leaving and the time until the first and until every other
//! node holds it dead is measured from the nodes' events. Members other than
//! the crashed one declared dead, and suspicions of them, are counted over
//! the idle window and the detection.
//!
//! ```text
//! cargo run --release -p gossamer --example loopback_cluster -- --nodes 128 --idle 30
//! ```
//!
//! Run it inside a fresh network namespace (the script does) so the counters
//! see this process only; UDP loss is added there by the script with
//! iptables. Options: `--nodes N` (128), `--warmup S` (10), `--idle S` (30),
//! `--detect-deadline S` (60), `--workers W` (2), `--preset P` (`lan`; e.g.
//! `fast`, issue #19's faster failure detection), `--spread 1` (each node on
//! its own loopback address 127.0.x.y, as separate hosts would be; default
//! 0: all on 127.0.0.1, where the per-address stream limits apply to all).
//! Prints one `RESULT` line of `key=value` pairs, the same keys as the Go side,
//! then gossamer's own over the idle window: what became of the stream-ping
//! fallback (probe timeouts, stream pings sent, answered, late, withheld, not
//! started, timed out, failed), inbound streams evicted or refused, and frames
//! sent by kind (`sent_probe=count/bytes`..., frame bytes without IP/UDP headers).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use gossamer::{Event, Node, NodeConfig, Preset};
use tokio::sync::mpsc;

struct Args {
    nodes: usize,
    warmup: u64,
    idle: u64,
    detect_deadline: u64,
    workers: usize,
    preset: Preset,
    spread: bool,
}

fn args() -> Args {
    let mut a =
        Args { nodes: 128, warmup: 10, idle: 30, detect_deadline: 60, workers: 2, preset: Preset::Lan, spread: false };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        if flag == "--preset" {
            a.preset = value.parse().unwrap_or_else(|e| panic!("--preset: {e}"));
            continue;
        }
        let number: u64 = value.parse().unwrap_or_else(|_| panic!("{flag}: not a number: {value}"));
        match flag.as_str() {
            "--nodes" => a.nodes = number.max(3) as usize,
            "--warmup" => a.warmup = number,
            "--idle" => a.idle = number.max(1),
            "--detect-deadline" => a.detect_deadline = number.max(1),
            "--workers" => a.workers = number.max(1) as usize,
            "--spread" => a.spread = number != 0,
            _ => panic!("unknown option {flag}"),
        }
    }
    a
}

/// The namespace's UDP datagrams sent, TCP segments sent and loopback bytes
/// sent so far (every packet crosses `lo` once, so its tx bytes are the IP
/// bytes of all traffic).
#[derive(Clone, Copy, Default)]
struct Counters {
    udp_out: u64,
    tcp_out: u64,
    ip_bytes: u64,
}

fn counters() -> Counters {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let field = |proto: &str, name: &str| -> u64 {
        let mut lines = snmp.lines().filter(|l| l.starts_with(&format!("{proto}: ")));
        let (Some(head), Some(values)) = (lines.next(), lines.next()) else { return 0 };
        let at = head.split_whitespace().position(|h| h == name);
        at.and_then(|i| values.split_whitespace().nth(i)).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    let dev = std::fs::read_to_string("/proc/net/dev").unwrap_or_default();
    let ip_bytes = dev
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("lo:"))
        .and_then(|rest| rest.split_whitespace().nth(8)?.parse().ok())
        .unwrap_or(0);
    Counters { udp_out: field("Udp", "OutDatagrams"), tcp_out: field("Tcp", "OutSegs"), ip_bytes }
}

fn config(i: usize, a: &Args, seeds: Vec<std::net::SocketAddr>) -> NodeConfig {
    let ip = if a.spread { format!("127.0.{}.{}", i / 250, i % 250 + 1) } else { "127.0.0.1".into() };
    let bind = format!("{ip}:0").parse().expect("address");
    let mut c = NodeConfig::new(&format!("n{i}"), bind, a.preset).expect("config");
    c.cluster = "versus".into();
    c.seeds = seeds;
    c
}

/// The stream-ping fallback's counters, summed over the nodes: how many
/// direct probes timed out, how many of those got a stream ping, and what
/// became of them (answered in time, late, timed out, failed, not started
/// for want of room), with the inbound streams the receivers evicted,
/// refused as busy, or refused for their content.
#[derive(Default, Clone, Copy)]
struct Fallback {
    probes: u64,
    probe_timeouts: u64,
    indirect: u64,
    suspicions: u64,
    pings: u64,
    acks: u64,
    late: u64,
    failures: u64,
    withheld: u64,
    no_room: u64,
    timeouts: u64,
    errors: u64,
    evicted: u64,
    busy: u64,
    refused: u64,
    /// Frames sent by kind (probe, ack, gossip, push-pull, user): count
    /// and bytes (the core's `traffic_out`, payload without IP/UDP headers).
    kinds: [u64; 10],
}

/// The [`Fallback`] counters of every node so far.
async fn fallback(nodes: &[Node]) -> Fallback {
    let mut f = Fallback::default();
    for node in nodes {
        if let Ok(m) = node.metrics().await {
            f.add(&m);
        }
    }
    f
}

impl Fallback {
    fn fields(&mut self) -> Vec<&mut u64> {
        let mut v = vec![
            &mut self.probes,
            &mut self.probe_timeouts,
            &mut self.indirect,
            &mut self.suspicions,
            &mut self.pings,
            &mut self.acks,
            &mut self.late,
            &mut self.failures,
            &mut self.withheld,
            &mut self.no_room,
            &mut self.timeouts,
            &mut self.errors,
            &mut self.evicted,
            &mut self.busy,
            &mut self.refused,
        ];
        v.extend(self.kinds.iter_mut());
        v
    }

    /// What was counted since `before`.
    fn minus(mut self, before: &Fallback) -> Fallback {
        let mut before = *before;
        for (a, b) in self.fields().into_iter().zip(before.fields()) {
            *a = a.saturating_sub(*b);
        }
        self
    }

    fn add(&mut self, m: &gossamer::NodeMetrics) {
        let (c, n) = (&m.core, &m.net);
        self.probes += c.probes;
        self.probe_timeouts += c.probe_timeouts;
        self.indirect += c.indirect_probes;
        self.suspicions += c.suspicions;
        self.pings += c.stream_pings;
        self.acks += c.stream_ping_acks;
        self.late += c.stream_ping_acks_late;
        self.failures += c.stream_ping_failures;
        self.withheld += c.stream_pings_withheld;
        self.no_room += n.stream_pings_no_room;
        self.timeouts += n.stream_ping_timeouts;
        self.errors += n.stream_ping_errors;
        self.evicted += n.streams_evicted;
        self.busy += n.streams_busy;
        self.refused += n.streams_refused;
        let t = &c.traffic_out;
        for (i, k) in [t.probe, t.ack, t.gossip, t.push_pull, t.user].iter().enumerate() {
            self.kinds[2 * i] += k.messages;
            self.kinds[2 * i + 1] += k.bytes;
        }
    }
}

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "probes={} probe_timeouts={} indirect_probes={} suspicions={} stream_pings={} stream_ping_acks={} \
             stream_ping_acks_late={} stream_ping_failures={} stream_pings_withheld={} stream_pings_no_room={} \
             stream_ping_timeouts={} \
             stream_ping_errors={} streams_evicted={} streams_busy={} streams_refused={} \
             sent_probe={}/{}B sent_ack={}/{}B sent_gossip={}/{}B sent_push_pull={}/{}B sent_user={}/{}B",
            self.probes,
            self.probe_timeouts,
            self.indirect,
            self.suspicions,
            self.pings,
            self.acks,
            self.late,
            self.failures,
            self.withheld,
            self.no_room,
            self.timeouts,
            self.errors,
            self.evicted,
            self.busy,
            self.refused,
            self.kinds[0],
            self.kinds[1],
            self.kinds[2],
            self.kinds[3],
            self.kinds[4],
            self.kinds[5],
            self.kinds[6],
            self.kinds[7],
            self.kinds[8],
            self.kinds[9],
        )
    }
}

/// What one node's events said about others: (observer, subject, failed?)
/// for failures and suspicions, with the time they arrived.
struct Seen {
    observer: usize,
    subject: String,
    failed: bool,
    at: Instant,
}

fn main() {
    let a = args();
    let n = a.nodes;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(a.workers).enable_all().build().expect("rt");
    rt.block_on(async move {
        let seed = Node::start(config(0, &a, vec![])).await.expect("seed starts");
        let seed_addr = seed.addr();
        let t0 = Instant::now();
        let starts: Vec<_> = (1..n).map(|i| tokio::spawn(Node::start(config(i, &a, vec![seed_addr])))).collect();
        let mut nodes = vec![seed];
        for s in starts {
            nodes.push(s.await.expect("start task").expect("node starts"));
        }
        // Every node's failures and suspicions, into one channel.
        let (tx, mut rx) = mpsc::unbounded_channel();
        for (i, node) in nodes.iter().enumerate() {
            let mut events = node.subscribe();
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Some(e) = events.recv().await {
                    let (failed, m) = match &e {
                        Event::MemberFailed(m) => (true, m),
                        Event::MemberSuspected(m) => (false, m),
                        _ => continue,
                    };
                    let seen = Seen { observer: i, subject: m.id.name.to_string(), failed, at: Instant::now() };
                    if tx.send(seen).is_err() {
                        break;
                    }
                }
            });
        }
        loop {
            let mut all = true;
            for node in &nodes {
                if node.metrics().await.map(|m| m.core.alive).unwrap_or(0) < n {
                    all = false;
                    break;
                }
            }
            if all {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(120), "not converged in 120 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let converge = t0.elapsed();
        tokio::time::sleep(Duration::from_secs(a.warmup)).await;
        while rx.try_recv().is_ok() {} // what the join itself raised is not counted
        let (c0, i0, f0) = (counters(), Instant::now(), fallback(&nodes).await);
        tokio::time::sleep(Duration::from_secs(a.idle)).await;
        let (c1, idle) = (counters(), i0.elapsed().as_secs_f64());
        // The loss fallback's pings over TCP and what became of them, and
        // streams the per-address admission evicted or refused, over the
        // idle window (every node).
        let f = fallback(&nodes).await.minus(&f0);
        // Stop the last node without leaving.
        let victim = n - 1;
        let victim_name = format!("n{victim}");
        let crash = Instant::now();
        nodes[victim].shutdown().await;
        let mut knows: HashSet<usize> = HashSet::new();
        let (mut first, mut all) = (None, None);
        let (mut false_dead, mut false_suspect) = (0u64, 0u64);
        let deadline = crash + Duration::from_secs(a.detect_deadline);
        while all.is_none() {
            let wait = deadline.saturating_duration_since(Instant::now());
            let Ok(Some(seen)) = tokio::time::timeout(wait, rx.recv()).await else { break };
            if seen.subject != victim_name {
                if seen.failed {
                    false_dead += 1
                } else {
                    false_suspect += 1
                }
                continue;
            }
            if seen.failed && seen.observer != victim && knows.insert(seen.observer) {
                let t = seen.at.saturating_duration_since(crash).as_secs_f64();
                first.get_or_insert(t);
                if knows.len() == n - 1 {
                    all = Some(t);
                }
            }
        }
        while let Ok(seen) = rx.try_recv() {
            if seen.subject != victim_name {
                if seen.failed {
                    false_dead += 1
                } else {
                    false_suspect += 1
                }
            }
        }
        let per = |d: u64| d as f64 / n as f64 / idle;
        let fmt = |t: Option<f64>| t.map_or("none".to_string(), |t| format!("{t:.2}"));
        println!(
            "RESULT system=gossamer-{} nodes={n} converge_s={:.2} udp_pkts_per_node_s={:.2} tcp_segs_per_node_s={:.2} \
             ip_bytes_per_node_s={:.0} first_detect_s={} all_detect_s={} knew_dead={} false_dead={false_dead} \
             false_suspect={false_suspect} {f}",
            a.preset,
            converge.as_secs_f64(),
            per(c1.udp_out - c0.udp_out),
            per(c1.tcp_out - c0.tcp_out),
            per(c1.ip_bytes - c0.ip_bytes),
            fmt(first),
            fmt(all),
            knows.len(),
        );
    });
}
