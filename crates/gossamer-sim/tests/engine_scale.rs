//! The engine's own capacity, without gossamer-core: a trivial node that
//! sends SWIM-like traffic (a ping answered by an ack, plus gossip to two
//! random members, every period; ~200-byte frames) through the full
//! machinery (event queue, network model, RNG streams, bookkeeping).
//!
//! Ignored by default (release-mode measurement):
//! `cargo test --release -p gossamer-sim --test engine_scale -- --ignored --nocapture`
//! Size with `ENGINE_SCALE_NODES` (default 100000) and `ENGINE_SCALE_PERIODS` (20).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use gossamer_core::Time;
use gossamer_sim::{node_addr, node_id, node_index, NodeFactory, NodeOutput, Scenario, SimError, SimNode, Simulation};
use gossamer_wire::{MemberStatus, NodeId};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

const PERIOD: Duration = Duration::from_secs(1);

struct TrafficNode {
    me: u32,
    n: u32,
    rng: ChaCha8Rng,
    payload: Bytes,
    out: Vec<NodeOutput<()>>,
}

impl TrafficNode {
    fn random_peer(&mut self) -> u32 {
        let p = self.rng.random_range(0..self.n - 1);
        if p >= self.me {
            p + 1
        } else {
            p
        }
    }
}

impl SimNode for TrafficNode {
    type Timer = ();
    fn handle_datagram(&mut self, _now: Time, from: SocketAddr, bytes: &[u8]) {
        if bytes.first() == Some(&1) {
            let mut ack = self.payload.to_vec();
            ack[0] = 2;
            self.out.push(NodeOutput::Datagram { to: from, bytes: Bytes::from(ack) });
        }
    }
    fn handle_push_pull_request(&mut self, _now: Time, _from: SocketAddr, _frame: &[u8]) -> Option<Bytes> {
        Some(self.payload.clone())
    }
    fn handle_push_pull_response(&mut self, _now: Time, from: SocketAddr, _frame: &[u8]) {
        self.out.push(NodeOutput::View {
            member: from,
            name: node_id(node_index(from).unwrap_or(0)).name,
            status: MemberStatus::Alive,
        });
    }
    fn push_pull_failed(&mut self, _now: Time, _to: SocketAddr) {}
    fn handle_timer(&mut self, now: Time, _timer: ()) {
        for tag in [1u8, 3, 3] {
            let to = node_addr(self.random_peer());
            let mut b = self.payload.to_vec();
            b[0] = tag;
            self.out.push(NodeOutput::Datagram { to, bytes: Bytes::from(b) });
        }
        self.out.push(NodeOutput::SetTimer { at: now + PERIOD, timer: () });
    }
    fn join(&mut self, _now: Time, seeds: &[SocketAddr]) {
        if let Some(s) = seeds.first() {
            self.out.push(NodeOutput::PushPull { to: *s, request: self.payload.clone() });
        }
    }
    fn leave(&mut self, _now: Time) {}
    fn has_left(&self) -> bool {
        true
    }
    fn poll_output(&mut self) -> Option<NodeOutput<()>> {
        self.out.pop()
    }
}

struct TrafficFactory {
    n: u32,
}

impl NodeFactory for TrafficFactory {
    type Node = TrafficNode;
    fn probe_interval(&self) -> Duration {
        PERIOD
    }
    fn create(&mut self, id: NodeId, mut rng: ChaCha8Rng, now: Time) -> Result<TrafficNode, SimError> {
        let first = now + Duration::from_micros(rng.random_range(0..1_000_000));
        Ok(TrafficNode {
            me: node_index(id.addr).expect("simulated address"),
            n: self.n,
            rng,
            payload: Bytes::from(vec![0u8; 200]),
            out: vec![NodeOutput::SetTimer { at: first, timer: () }],
        })
    }
}

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn small_traffic_run_works() {
    let report = run(200, 10);
    assert!(report.traffic.datagrams > 200 * 9 * 3);
    assert_eq!(report.live_at_end, 200);
}

fn run(nodes: u32, periods: u32) -> gossamer_sim::Report {
    let toml = format!(
        "name = \"engine-scale\"\nnodes = {nodes}\nduration = \"{periods} periods\"\n\
         [network]\nlatency = {{ lognormal = {{ median = \"1ms\", sigma = 0.5 }} }}\nloss = 0.01\n"
    );
    let scenario = Scenario::from_toml(&toml).unwrap();
    Simulation::with_factory(scenario, TrafficFactory { n: nodes }).unwrap().run()
}

#[test]
#[ignore = "release-mode measurement of the engine alone"]
fn engine_alone_at_scale() {
    let (nodes, periods) = (env_u32("ENGINE_SCALE_NODES", 100_000), env_u32("ENGINE_SCALE_PERIODS", 20));
    let report = run(nodes, periods);
    let p = report.performance;
    println!(
        "engine alone: {nodes} nodes x {periods} periods: {:.2} s wall, {} events ({:.0} events/s), {:.0} node-periods/s, {} datagrams",
        p.wall_secs,
        p.events,
        p.events as f64 / p.wall_secs,
        p.node_periods_per_sec,
        report.traffic.datagrams
    );
}
