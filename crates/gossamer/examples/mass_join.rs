//! Mass join: N real nodes on 127.0.0.1 in one process (one tokio runtime),
//! all joining one seed at once. Reports how long until every node sees N
//! alive members, what the seed refused or evicted, how many push-pulls
//! failed and were retried, the suspicions the join's load raised, what all
//! nodes sent, and the process's peak memory and CPU time.
//!
//! ```text
//! cargo run --release -p gossamer --example mass_join -- --nodes 1000
//! /usr/bin/time -v target/release/examples/mass_join --nodes 2000   # the public figures
//! ```
//!
//! Options: `--nodes N` (128), `--workers W` (tokio worker threads, 2),
//! `--deadline S` (seconds to wait for convergence, 120), `--settle S`
//! (seconds to keep running after convergence, measuring idle CPU, 0),
//! `--spread 1` (each node on its own address 127.0.x.y, as separate hosts
//! would be; default 0: all on 127.0.0.1, so the seed's per-address stream
//! limit applies to all of them together), `--shared-directory 0` (each
//! node keeps its own member records; default 1: the nodes of this process
//! share one `IdentityDirectory`, as a process hosting many nodes should).
//! Exits with status 1 if the cluster did not converge in time.

use std::time::{Duration, Instant};

use gossamer::{IdentityDirectory, Node, NodeConfig, Preset};

struct Args {
    nodes: usize,
    workers: usize,
    deadline: Duration,
    settle: Duration,
    /// Each node on its own loopback address (127.0.x.y) instead of all on
    /// 127.0.0.1: as on a real network, where every node is its own host
    /// and the seed's per-address stream limit applies to each alone.
    spread: bool,
    /// One `IdentityDirectory` for every node of the process (N member
    /// records instead of N²); off: each node its own, as separate
    /// processes would have.
    shared_directory: bool,
}

fn args() -> Args {
    let mut a = Args {
        nodes: 128,
        workers: 2,
        deadline: Duration::from_secs(120),
        settle: Duration::ZERO,
        spread: false,
        shared_directory: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let number: u64 = value.parse().unwrap_or_else(|_| panic!("{flag}: not a number: {value}"));
        match flag.as_str() {
            "--nodes" => a.nodes = number.max(2) as usize,
            "--workers" => a.workers = number.max(1) as usize,
            "--deadline" => a.deadline = Duration::from_secs(number),
            "--settle" => a.settle = Duration::from_secs(number),
            "--spread" => a.spread = number != 0,
            "--shared-directory" => a.shared_directory = number != 0,
            _ => panic!("unknown option {flag}"),
        }
    }
    a
}

/// A field of /proc/self/status in KiB (VmHWM: peak RSS; VmRSS: now).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.trim_start_matches(':').trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or(0)
}

/// User + system CPU time of the process (/proc/self/stat, 100 ticks/s).
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    Duration::from_millis((ticks(14) + ticks(15)) * 10)
}

fn config(
    i: usize,
    spread: bool,
    directory: Option<&IdentityDirectory>,
    seeds: Vec<std::net::SocketAddr>,
) -> NodeConfig {
    let ip = if spread { format!("127.0.{}.{}", i / 250, i % 250 + 1) } else { "127.0.0.1".into() };
    let mut c = NodeConfig::new(&format!("n{i}@{ip}"), format!("{ip}:0").parse().expect("address"), Preset::Lan)
        .expect("config");
    c.cluster = "mass".into();
    c.seeds = seeds;
    c.directory = directory.cloned();
    c
}

/// Every node's metrics, asked all at once (one task each): asked in turn, a
/// pass over 2,000 busy nodes on a loaded machine took seconds to minutes,
/// each answer waiting for its node's turn on the runtime.
async fn metrics_of(nodes: &[Node]) -> Vec<Option<gossamer::NodeMetrics>> {
    let asks: Vec<_> = nodes
        .iter()
        .map(|node| {
            let node = node.clone();
            tokio::spawn(async move { node.metrics().await.ok() })
        })
        .collect();
    let mut out = Vec::with_capacity(asks.len());
    for ask in asks {
        out.push(ask.await.ok().flatten());
    }
    out
}

fn main() {
    let args = args();
    let n = args.nodes;
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.workers).enable_all().build().expect("runtime");
    let rss_idle = status_kib("VmRSS");
    let converged = rt.block_on(async move {
        let directory = args.shared_directory.then(IdentityDirectory::new);
        let seed = Node::start(config(0, args.spread, directory.as_ref(), vec![])).await.expect("seed starts");
        let seed_addr = seed.addr();
        let cpu0 = cpu();
        let t0 = Instant::now();
        // Every other node starts (binds, joins) at once.
        let starts: Vec<_> = (1..n)
            .map(|i| tokio::spawn(Node::start(config(i, args.spread, directory.as_ref(), vec![seed_addr]))))
            .collect();
        let mut nodes = vec![seed];
        for s in starts {
            nodes.push(s.await.expect("start task").expect("node starts"));
        }
        let started = t0.elapsed();
        println!("mass_join: {n} nodes started (Node::start returned) in {:.2} s", started.as_secs_f64());
        // Poll each node's alive count; converged once every one sees n.
        let mut waiting: Vec<usize> = (0..n).collect();
        let mut last_report = Instant::now();
        while !waiting.is_empty() && t0.elapsed() < args.deadline {
            let mut still = Vec::with_capacity(waiting.len());
            let mut fewest = n;
            // How far the waiting nodes are: still alone (not joined yet),
            // and the median of what they see.
            let mut seen: Vec<usize> = Vec::with_capacity(waiting.len());
            let views = metrics_of(&waiting.iter().map(|&i| nodes[i].clone()).collect::<Vec<_>>()).await;
            let (mut suspect, mut dead) = (0usize, 0usize);
            for (&i, m) in waiting.iter().zip(&views) {
                let alive = m.as_ref().map_or(0, |m| m.core.alive);
                if let Some(m) = m {
                    suspect += m.core.suspect;
                    dead += m.core.dead;
                }
                if alive < n {
                    still.push(i);
                    fewest = fewest.min(alive);
                    seen.push(alive);
                }
            }
            waiting = still;
            if last_report.elapsed() >= Duration::from_secs(2) && !waiting.is_empty() {
                seen.sort_unstable();
                let alone = seen.iter().take_while(|&&a| a <= 1).count();
                let median = seen.get(seen.len() / 2).copied().unwrap_or(n);
                if std::env::var_os("MASS_JOIN_STRAGGLER").is_some() {
                    for &i in waiting.iter().take(3) {
                        if let Ok(m) = nodes[i].metrics().await {
                            println!("  straggler n{i}: alive {} follow-ups {} pp failed {} pp dropped {} joins dropped {} retries {} core pushpulls {:?}", m.core.alive, m.net.join_follow_ups, m.net.push_pull_failed, m.net.push_pulls_dropped, m.net.joins_dropped, m.net.join_retries, m.core.push_pulls);
                        }
                    }
                }
                if std::env::var_os("MASS_JOIN_SEED").is_some() {
                    if let Ok(m) = nodes[0].metrics().await {
                        println!("  seed core: {:?}", m.core);
                    }
                }
                println!(
                    "  {:5.1} s: {} nodes not converged yet (fewest alive seen: {fewest}, median {median}, \
                     {alone} not joined yet; first: n{}; views of a member as suspect {suspect}, as dead {dead})",
                    t0.elapsed().as_secs_f64(),
                    waiting.len(),
                    waiting[0]
                );
                last_report = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let took = t0.elapsed();
        let cpu_join = cpu().saturating_sub(cpu0);
        let ok = waiting.is_empty();
        if ok {
            println!("mass_join: {n} nodes converged (every node sees {n} alive) in {:.2} s", took.as_secs_f64());
        } else {
            println!("mass_join: NOT converged after {:.1} s: {} nodes short", took.as_secs_f64(), waiting.len());
        }
        println!(
            "  CPU during the join: {:.2} s ({:.0}% of one core)",
            cpu_join.as_secs_f64(),
            100.0 * cpu_join.as_secs_f64() / took.as_secs_f64()
        );
        let seed = nodes[0].metrics().await.expect("seed metrics");
        println!(
            "  seed: streams accepted {}, evicted {}, held for a slot {}, busy (refused: every slot proven) {}, \
             refused {}, header timeouts {}, push-pulls answered {}",
            seed.net.streams_accepted,
            seed.net.streams_evicted,
            seed.net.streams_deferred,
            seed.net.streams_busy,
            seed.net.streams_refused,
            seed.net.streams_header_timeout,
            seed.core.push_pulls,
        );
        let (mut failed, mut dropped, mut pp, mut follow_ups) = (0u64, 0u64, 0u64, 0u64);
        // Sent by every node, by kind: (datagrams or frames, bytes).
        let mut sent = [(0u64, 0u64); 4];
        // Failure detection under the join's load, and what gossip carried.
        let (mut suspicions, mut refutations, mut timeouts, mut updates, mut left) = (0u64, 0u64, 0u64, 0u64, 0u64);
        for (i, m) in metrics_of(&nodes).await.into_iter().enumerate() {
            let Some(m) = m else { continue };
            let out = &m.core.traffic_out;
            suspicions += m.core.suspicions;
            refutations += m.core.refutations;
            timeouts += m.core.probe_timeouts;
            updates += m.core.updates_sent;
            left += m.core.joins_left_to_push_pull;
            for (total, kind) in sent.iter_mut().zip([out.probe, out.ack, out.gossip, out.push_pull]) {
                total.0 += kind.messages;
                total.1 += kind.bytes;
            }
            if i == 0 {
                continue;
            }
            failed += m.net.push_pull_failed;
            dropped += m.net.push_pulls_dropped;
            pp += m.core.push_pulls;
            follow_ups += m.net.join_follow_ups;
        }
        println!(
            "  joiners: push-pulls {pp}, failed (retried) {failed}, dropped by the gate {dropped}, \
             follow-ups after joining {follow_ups}"
        );
        println!(
            "  all nodes: suspicions raised {suspicions}, refutations {refutations}, probe timeouts {timeouts}, \
             updates gossiped {updates}, joins left to push-pull {left}"
        );
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let [probe, ack, gossip, push_pull] = sent;
        println!(
            "  sent by all nodes so far: probes {} ({:.0} MiB), acks {} ({:.0} MiB), gossip {} ({:.0} MiB), \
             push-pull frames {} ({:.0} MiB)",
            probe.0,
            mib(probe.1),
            ack.0,
            mib(ack.1),
            gossip.0,
            mib(gossip.1),
            push_pull.0,
            mib(push_pull.1),
        );
        if !args.settle.is_zero() {
            let (c, t) = (cpu(), Instant::now());
            tokio::time::sleep(args.settle).await;
            let idle = cpu().saturating_sub(c);
            println!(
                "  converged, idle: {:.0}% of one core over {:.0} s ({:.0} µs CPU per node per second)",
                100.0 * idle.as_secs_f64() / t.elapsed().as_secs_f64(),
                t.elapsed().as_secs_f64(),
                idle.as_secs_f64() * 1e6 / t.elapsed().as_secs_f64() / n as f64
            );
        }
        let rss = status_kib("VmRSS");
        println!(
            "  memory: peak RSS {} MiB, RSS now {} MiB, {:.0} KiB per node (RSS now minus the empty runtime's)",
            status_kib("VmHWM") / 1024,
            rss / 1024,
            rss.saturating_sub(rss_idle) as f64 / n as f64
        );
        println!("  total CPU so far: {:.2} s", cpu().as_secs_f64());
        // Not shut down one by one: at exit the process ends them all.
        ok
    });
    std::process::exit(if converged { 0 } else { 1 });
}
