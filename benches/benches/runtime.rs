//! The tokio runtime on real sockets (issue #8), on 127.0.0.1:
//!
//! - `datagrams`: pings per second through one real node. A load
//!   generator runs as a separate process (this bench binary started again
//!   with `GOSSAMER_BENCH_LOADGEN` set), sends valid ping frames from its
//!   own UDP socket with a bounded window of pings in flight, and counts
//!   the acks that come back; bounded by a ping count and a deadline. Each
//!   answered ping is one datagram in and one out of the node.
//! - `cpu_per_node`: 256 nodes in one process (one tokio runtime, LAN
//!   timings: 1 s protocol period, 200 ms gossip), joined through one
//!   seed; once every node sees all 256 alive, the process CPU time
//!   (getrusage) over a number of protocol periods, divided by nodes ×
//!   periods.
//!
//! Both print their figures (like the memory figures of `core`); each
//! stays well under a minute.
//! `cargo bench -p gossamer-benches --bench runtime`

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use criterion::Criterion;
use gossamer_net::{Node, NodeConfig, Preset};
use gossamer_wire::{ClusterLabel, FrameCodec, Message, NodeId, NodeName, Packet, Ping};

const LOADGEN_ENV: &str = "GOSSAMER_BENCH_LOADGEN";
const CLUSTER: &str = "bench";
/// Pings per generator run, and the generator's deadline.
const PINGS: u64 = 200_000;
const LOADGEN_DEADLINE: Duration = Duration::from_secs(20);
/// Pings in flight at once (a window, so that loopback buffers never overflow).
const WINDOW: usize = 64;
const NODES: usize = 256;
const PERIODS: u32 = 15;

fn codec() -> FrameCodec {
    FrameCodec::new(ClusterLabel::new(CLUSTER).expect("a valid label"))
}

fn node_config(name: &str, preset: Preset) -> NodeConfig {
    let mut config = NodeConfig::new(name, "127.0.0.1:0".parse().unwrap(), preset).expect("valid config");
    config.cluster = CLUSTER.into();
    config
}

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().expect("a tokio runtime")
}

/// What the generator process reports on its stdout.
#[derive(Debug)]
struct LoadReport {
    sent: u64,
    acked: u64,
    elapsed: Duration,
}

impl LoadReport {
    fn parse(line: &str) -> Option<Self> {
        let mut fields = line.split_whitespace();
        let sent = fields.next()?.parse().ok()?;
        let acked = fields.next()?.parse().ok()?;
        let nanos: u64 = fields.next()?.parse().ok()?;
        Some(Self { sent, acked, elapsed: Duration::from_nanos(nanos) })
    }
}

/// The generator process: `target_addr target_name count deadline_ms`.
fn load_generator(spec: &str) {
    let mut parts = spec.split_whitespace();
    let (Some(target), Some(name), Some(count), Some(deadline)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        eprintln!("bad {LOADGEN_ENV}: {spec:?}");
        std::process::exit(2);
    };
    let target: SocketAddr = target.parse().expect("target address");
    let target_name: NodeName = name.parse().expect("target name");
    let count: u64 = count.parse().expect("count");
    let deadline = Duration::from_millis(deadline.parse().expect("deadline"));

    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.connect(target).expect("connect");
    socket.set_read_timeout(Some(Duration::from_millis(20))).expect("timeout");
    let from = NodeId::new("loadgen@127.0.0.1".parse().unwrap(), socket.local_addr().unwrap());
    let codec = codec();
    // A ring of ready frames (distinct sequence numbers), encoded untimed.
    let frames: Vec<BytesMut> = (0..1024u32)
        .map(|seq| {
            let mut buf = BytesMut::new();
            let ping = Message::Ping(Ping { seq, target: target_name.clone(), from: from.clone() });
            codec.encode(&Packet::new(ping), &mut buf).expect("encode");
            buf
        })
        .collect();

    let start = Instant::now();
    let (mut sent, mut acked, mut in_flight) = (0u64, 0u64, 0usize);
    let mut buf = [0u8; 2048];
    let mut scratch = Vec::new();
    while start.elapsed() < deadline && (sent < count || in_flight > 0) {
        while in_flight < WINDOW && sent < count {
            if socket.send(&frames[(sent % 1024) as usize]).is_ok() {
                in_flight += 1;
            }
            sent += 1;
        }
        match socket.recv(&mut buf) {
            // Only well-formed acks count (anything else is ignored).
            Ok(len) => {
                if let Ok(Packet { message: Message::Ack(_), .. }) =
                    codec.decode_with_scratch(&buf[..len], &mut scratch)
                {
                    acked += 1;
                    in_flight = in_flight.saturating_sub(1);
                }
            }
            // Nothing for 20 ms: count the window as lost and refill it.
            Err(_) => in_flight = 0,
        }
    }
    let elapsed = start.elapsed();
    println!("{sent} {acked} {}", elapsed.as_nanos());
}

/// Datagrams per second through one real node, loaded from another process.
fn datagrams(_: &mut Criterion) {
    let rt = runtime(1);
    let node = rt.block_on(Node::start(node_config("target@127.0.0.1", Preset::Lan))).expect("node starts");
    let exe = std::env::current_exe().expect("the bench binary");
    let mut rates = Vec::new();
    for run in 0..3 {
        let spec = format!("{} {} {PINGS} {}", node.addr(), node.id().name, LOADGEN_DEADLINE.as_millis());
        let cpu_before = process_cpu();
        let output = Command::new(&exe)
            .env(LOADGEN_ENV, spec)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("the load generator runs");
        // This process hosts only the node (the generator is the child):
        // its CPU time is the node's, load from other jobs aside.
        let node_cpu = process_cpu() - cpu_before;
        let text = String::from_utf8_lossy(&output.stdout);
        let Some(report) = text.lines().last().and_then(LoadReport::parse) else {
            eprintln!("runtime/datagrams run {run}: no report from the generator ({:?})", output.status);
            continue;
        };
        let rate = report.acked as f64 / report.elapsed.as_secs_f64();
        let per_core = report.acked as f64 / node_cpu.as_secs_f64();
        eprintln!(
            "runtime/datagrams run {run}: {} pings sent, {} acked in {:.2} s: {:.0} pings answered/s (each one \
             datagram in, one out); node CPU {:.2} s = {:.1} µs per ping, {:.0} pings/s per core",
            report.sent,
            report.acked,
            report.elapsed.as_secs_f64(),
            rate,
            node_cpu.as_secs_f64(),
            node_cpu.as_secs_f64() * 1e6 / report.acked.max(1) as f64,
            per_core,
        );
        rates.push((rate, per_core));
    }
    let metrics = rt.block_on(node.metrics()).expect("node running");
    eprintln!("runtime/datagrams node metrics: {metrics:?}");
    rt.block_on(node.shutdown());
    rates.sort_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((median, per_core)) = rates.get(rates.len() / 2) {
        eprintln!(
            "runtime/datagrams: median {median:.0} pings answered/s ({per_core:.0} per core of node CPU), \
             window {WINDOW}, one node, 127.0.0.1"
        );
    }
    std::io::stderr().flush().ok();
}

/// This process's user + system CPU time.
fn process_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given; a zeroed rusage is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1_000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// CPU per node per protocol period with 256 nodes in one process.
fn cpu_per_node(_: &mut Criterion) {
    let rt = runtime(2);
    rt.block_on(async {
        let started = Instant::now();
        let seed = Node::start(node_config("n0@127.0.0.1", Preset::Lan)).await.expect("seed starts");
        let mut nodes = vec![seed];
        for i in 1..NODES {
            let mut config = node_config(&format!("n{i}@127.0.0.1"), Preset::Lan);
            config.seeds = vec![nodes[0].addr()];
            nodes.push(Node::start(config).await.expect("node starts"));
        }
        // Converged: every node sees every other alive.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut converged = 0;
            for node in &nodes {
                let alive = node.metrics().await.map(|m| m.core.alive).unwrap_or(0);
                converged += usize::from(alive == NODES);
            }
            if converged == NODES {
                break;
            }
            if Instant::now() > deadline {
                eprintln!("runtime/cpu_per_node: only {converged}/{NODES} converged after 60 s; measuring anyway");
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let joined = started.elapsed();
        // Let the joins' dissemination finish before measuring.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let period = Preset::Lan.config().probe_interval;
        let (cpu0, wall0) = (process_cpu(), Instant::now());
        let mut before = Vec::with_capacity(NODES);
        for node in &nodes {
            before.push(node.metrics().await.map(|m| (m.core.messages_in, m.core.probes)).unwrap_or_default());
        }
        tokio::time::sleep(period * PERIODS).await;
        let (cpu, wall) = (process_cpu() - cpu0, wall0.elapsed());
        let (mut messages, mut probes, mut alive_min) = (0, 0, usize::MAX);
        for (node, (m0, p0)) in nodes.iter().zip(&before) {
            if let Ok(m) = node.metrics().await {
                messages += m.core.messages_in - m0;
                probes += m.core.probes - p0;
                alive_min = alive_min.min(m.core.alive);
            }
        }
        let periods = wall.as_secs_f64() / period.as_secs_f64();
        let per = cpu.as_secs_f64() / (NODES as f64 * periods);
        eprintln!(
            "runtime/cpu_per_node: {NODES} nodes joined in {:.1} s; over {periods:.1} periods: {:.2} s CPU \
             ({:.0}% of one core), {:.1} µs CPU per node per period; {:.1} datagrams in and {:.2} probes per \
             node per period; fewest alive seen {alive_min}",
            joined.as_secs_f64(),
            cpu.as_secs_f64(),
            100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
            per * 1e6,
            messages as f64 / NODES as f64 / periods,
            probes as f64 / NODES as f64 / periods,
        );
        for node in &nodes {
            node.shutdown().await;
        }
    });
}

criterion::criterion_group!(benches, datagrams, cpu_per_node);

fn main() {
    if let Ok(spec) = std::env::var(LOADGEN_ENV) {
        load_generator(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
