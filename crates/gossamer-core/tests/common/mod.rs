//! A small in-memory network for tests: N cores, a virtual clock, an event
//! queue, seeded randomness, latency, packet filters (partitions, crashes,
//! slow members). Deliberately tiny; the real simulator is gossamer-sim.

#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use gossamer_core::{Config, Event, IdentityDirectory, Member, Output, Signal, Swim, Time, Timer, UserEvent};
use gossamer_wire::{ClusterLabel, FrameCodec, MemberStatus, NodeId, NodeName};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub type Core = Swim<ChaCha8Rng>;

enum What {
    Timer { node: usize, generation: u32, timer: Timer },
    Datagram { to: usize, from: SocketAddr, bytes: Bytes },
    PushPullRequest { from: usize, generation: u32, to: usize, request: Bytes },
    PushPullResponse { to: usize, generation: u32, from: SocketAddr, response: Option<Bytes> },
}

struct Scheduled {
    at: Time,
    seq: u64,
    what: What,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

pub struct Node {
    pub id: NodeId,
    pub core: Option<Core>,
    /// Bumped on every restart so old timers are dropped.
    pub generation: u32,
    /// Every event this node emitted, with the time.
    pub events: Vec<(Time, Event)>,
    /// Every signal (the feed is on in these tests), with the time.
    pub signals: Vec<(Time, Signal)>,
    /// Every application event, with the time.
    pub user: Vec<(Time, UserEvent)>,
    /// Group for partitions: packets between different groups are dropped.
    pub group: u32,
    /// Extra delay on everything this node sends (a slow member).
    pub extra_delay: Duration,
}

impl Node {
    /// A node not started yet (no core), in group 0, with no extra delay.
    pub fn new(id: NodeId) -> Self {
        Self {
            id,
            core: None,
            generation: 0,
            events: Vec::new(),
            signals: Vec::new(),
            user: Vec::new(),
            group: 0,
            extra_delay: Duration::ZERO,
        }
    }
}

pub struct Net {
    pub now: Time,
    pub nodes: Vec<Node>,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    rng: ChaCha8Rng,
    pub config: Config,
    codec: FrameCodec,
    pub delivered: u64,
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// The identity directory every core shares, if any (else each has
    /// its own, as with `Swim::new`).
    pub directory: Option<IdentityDirectory>,
}

pub fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 20_000 + i as u16))
}

pub fn name(i: usize) -> NodeName {
    format!("n{i}@127.0.0.1").parse().unwrap()
}

impl Net {
    /// `n` nodes, not yet joined to each other.
    pub fn new(n: usize, seed: u64, config: Config) -> Self {
        Self::build(n, seed, config, None)
    }

    /// As [`Net::new`], every core interning its members in `directory`.
    #[allow(dead_code)]
    pub fn with_directory(n: usize, seed: u64, config: Config, directory: IdentityDirectory) -> Self {
        Self::build(n, seed, config, Some(directory))
    }

    fn build(n: usize, seed: u64, config: Config, directory: Option<IdentityDirectory>) -> Self {
        let codec = FrameCodec::new(ClusterLabel::new("test").unwrap());
        let mut net = Net {
            now: Time::ZERO,
            nodes: Vec::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            config,
            codec,
            delivered: 0,
            loss: 0.0,
            directory,
        };
        for i in 0..n {
            let id = NodeId::new(name(i), addr(i));
            net.nodes.push(Node::new(id));
            net.start(i);
        }
        net
    }

    /// (Re)starts node `i` with fresh state (incarnation 0).
    pub fn start(&mut self, i: usize) {
        let rng = ChaCha8Rng::seed_from_u64(self.rng.random());
        let (id, config, codec) = (self.nodes[i].id.clone(), self.config.clone(), self.codec.clone());
        let mut core = match &self.directory {
            Some(directory) => Swim::with_directory(id, config, codec, rng, self.now, directory.clone()).unwrap(),
            None => Swim::new(id, config, codec, rng, self.now).unwrap(),
        };
        core.set_signals(true);
        self.nodes[i].generation += 1;
        self.nodes[i].core = Some(core);
        self.drain(i);
    }

    /// Stops node `i` without a word (a crash).
    pub fn crash(&mut self, i: usize) {
        self.nodes[i].core = None;
        self.nodes[i].generation += 1;
    }

    pub fn core(&self, i: usize) -> &Core {
        self.nodes[i].core.as_ref().expect("node is running")
    }

    pub fn with_core(&mut self, i: usize, f: impl FnOnce(&mut Core, Time)) {
        let now = self.now;
        if let Some(core) = self.nodes[i].core.as_mut() {
            f(core, now);
        }
        self.drain(i);
    }

    pub fn join(&mut self, i: usize, seeds: &[usize]) {
        let seeds: Vec<_> = seeds.iter().map(|&s| addr(s)).collect();
        self.with_core(i, |core, now| core.join(now, &seeds));
    }

    fn schedule(&mut self, at: Time, what: What) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled { at: at.max(self.now), seq: self.seq, what }));
    }

    fn latency(&mut self, from: usize) -> Duration {
        Duration::from_micros(500 + self.rng.random_range(0..1500)) + self.nodes[from].extra_delay
    }

    fn node_of(&self, addr: SocketAddr) -> Option<usize> {
        self.nodes.iter().position(|n| n.id.addr == addr)
    }

    fn connected(&self, a: usize, b: usize) -> bool {
        self.nodes[a].group == self.nodes[b].group
    }

    /// Moves node `i`'s outputs into the queue.
    fn drain(&mut self, i: usize) {
        let generation = self.nodes[i].generation;
        while let Some(signal) = self.nodes[i].core.as_mut().and_then(|c| c.poll_signal()) {
            self.nodes[i].signals.push((self.now, signal));
        }
        loop {
            let Some(output) = self.nodes[i].core.as_mut().and_then(|c| c.poll_output()) else { break };
            match output {
                Output::Datagram { to, bytes } => {
                    let Some(to) = self.node_of(to) else { continue };
                    if self.loss > 0.0 && self.rng.random_bool(self.loss) {
                        continue;
                    }
                    let at = self.now + self.latency(i);
                    self.schedule(at, What::Datagram { to, from: self.nodes[i].id.addr, bytes });
                }
                Output::PushPull { to, request } => match self.node_of(to) {
                    Some(to) => {
                        let at = self.now + self.latency(i);
                        self.schedule(at, What::PushPullRequest { from: i, generation, to, request });
                    }
                    None => {
                        let at = self.now + Duration::from_secs(1);
                        self.schedule(at, What::PushPullResponse { to: i, generation, from: to, response: None });
                    }
                },
                Output::SetTimer { at, timer } => self.schedule(at, What::Timer { node: i, generation, timer }),
                Output::Event(event) => self.nodes[i].events.push((self.now, event)),
                Output::User(event) => self.nodes[i].user.push((self.now, event)),
            }
        }
    }

    /// Runs the network until `until` (virtual time).
    pub fn run_until(&mut self, until: Time) {
        while let Some(Reverse(next)) = self.queue.peek() {
            if next.at > until {
                break;
            }
            let Reverse(next) = self.queue.pop().unwrap();
            self.now = next.at;
            self.deliver(next.what);
        }
        self.now = until;
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    fn deliver(&mut self, what: What) {
        let now = self.now;
        match what {
            What::Timer { node, generation, timer } => {
                if self.nodes[node].generation != generation {
                    return;
                }
                if let Some(core) = self.nodes[node].core.as_mut() {
                    core.handle_timer(now, timer);
                }
                self.drain(node);
            }
            What::Datagram { to, from, bytes } => {
                let Some(src) = self.node_of(from) else { return };
                if !self.connected(src, to) {
                    return;
                }
                if let Some(core) = self.nodes[to].core.as_mut() {
                    self.delivered += 1;
                    core.handle_datagram(now, from, &bytes);
                }
                self.drain(to);
            }
            What::PushPullRequest { from, generation, to, request } => {
                let response = if self.connected(from, to) {
                    self.nodes[to].core.as_mut().and_then(|c| c.handle_push_pull_request(now, addr(from), &request))
                } else {
                    None
                };
                self.drain(to);
                let at = if response.is_some() { now + self.latency(to) } else { now + Duration::from_secs(1) };
                let from_addr = self.nodes[to].id.addr;
                self.schedule(at, What::PushPullResponse { to: from, generation, from: from_addr, response });
            }
            What::PushPullResponse { to, generation, from, response } => {
                if self.nodes[to].generation != generation {
                    return;
                }
                if let Some(core) = self.nodes[to].core.as_mut() {
                    match response {
                        Some(bytes) => core.handle_push_pull_response(now, from, &bytes),
                        None => core.push_pull_failed(now, from),
                    }
                }
                self.drain(to);
            }
        }
    }

    /// Node `viewer`'s view of node `subject`.
    pub fn view(&self, viewer: usize, subject: usize) -> Option<&Member> {
        self.core(viewer).member(&name(subject))
    }

    pub fn status(&self, viewer: usize, subject: usize) -> Option<MemberStatus> {
        self.view(viewer, subject).map(|m| m.status)
    }

    /// Indices of running nodes.
    pub fn running(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].core.is_some()).collect()
    }

    /// True when every running node sees every running node alive.
    pub fn converged(&self) -> bool {
        let running = self.running();
        running.iter().all(|&v| running.iter().all(|&s| self.status(v, s) == Some(MemberStatus::Alive)))
    }

    /// Runs in steps of one second until `cond` holds or `limit` passes;
    /// returns whether it held.
    pub fn run_until_cond(&mut self, limit: Duration, mut cond: impl FnMut(&Net) -> bool) -> bool {
        let deadline = self.now + limit;
        while self.now < deadline {
            if cond(self) {
                return true;
            }
            self.run_for(Duration::from_secs(1));
        }
        cond(self)
    }

    /// Events about `subject` seen by any node, matching `pred`.
    pub fn events_about(&self, subject: usize, pred: impl Fn(&Event) -> bool) -> usize {
        let subject = name(subject);
        self.nodes
            .iter()
            .flat_map(|n| n.events.iter())
            .filter(|(_, e)| e.member().id.name == subject && pred(e))
            .count()
    }

    /// Starts `n` nodes joined through node 0, staggered, and waits for
    /// convergence.
    pub fn converged_cluster(n: usize, seed: u64, config: Config) -> Net {
        let mut net = Net::new(n, seed, config);
        for i in 1..n {
            net.join(i, &[0]);
            net.run_for(Duration::from_millis(50));
        }
        assert!(net.run_until_cond(Duration::from_secs(60), Net::converged), "cluster did not converge");
        net
    }
}
