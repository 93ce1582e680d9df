//! Adversarial incarnations, Lamport times and names (issue #15) forged
//! into a small cluster of real cores that converged first, between
//! honest rounds: extremes included (0, 1, the windows ±1, the ceilings
//! ±1, `u64::MAX - 1`, `u64::MAX`), claims at the subject's own or another
//! address, ghost names beyond the table cap. Once the forger stops and
//! the cluster runs honestly for a while: nothing panicked or overflowed,
//! every node holds every node alive at its own address again (the
//! refutations propagated), no table is over its cap, no incarnation or
//! clock over its ceiling, and no established node yielded its name.
#![no_main]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gossamer_core::{Config, Output, Swim, Timer, MAX_INCARNATION, MAX_LTIME};
use gossamer_wire::{
    Alive, ClusterLabel, Confirm, FrameCodec, Leave, MemberState, MemberStatus, Message, Metadata, NodeId, NodeName,
    Packet, PushPull, Suspect, Update, UserBroadcast, UserKey, DEFAULT_MAX_STREAM_FRAME,
};
use libfuzzer_sys::fuzz_target;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

const NODES: usize = 3;
const MAX_MEMBERS: usize = 8;

fn name(i: usize) -> NodeName {
    format!("n{i}").parse().expect("valid name")
}

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5000 + i as u16))
}

/// Reads the fuzzer's bytes one at a time; zero once exhausted.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    /// A number relative to `known` (what the target holds) and `window`:
    /// an extreme, or near `known`, `known + window`, `known + 2 window`.
    fn number(&mut self, known: u64, window: u64) -> u64 {
        const FIXED: [u64; 8] =
            [0, 1, MAX_INCARNATION - 1, MAX_INCARNATION, MAX_INCARNATION + 1, MAX_LTIME, u64::MAX - 1, u64::MAX];
        let (kind, by) = (self.byte(), i64::from(self.byte() % 5) - 2);
        match kind % 4 {
            0 => FIXED[usize::from(self.byte()) % FIXED.len()],
            1 => known.saturating_add_signed(by),
            2 => known.saturating_add(window).saturating_add_signed(by),
            _ => known.saturating_add(window.saturating_mul(2)).saturating_add_signed(by),
        }
    }
}

enum What {
    Timer(usize, Timer),
    Datagram { to: usize, from: SocketAddr, bytes: Bytes },
    PushPull { from: usize, to: usize, request: Bytes },
}

/// The cores and a queue of what they asked for, in virtual time. Every
/// datagram and stream arrives 1 ms after it was sent.
struct Net {
    cores: Vec<Swim<ChaCha8Rng>>,
    now: Duration,
    queue: BinaryHeap<Reverse<(Duration, u64, usize)>>,
    pending: Vec<Option<What>>,
    seq: u64,
}

impl Net {
    fn schedule(&mut self, at: Duration, what: What) {
        self.seq += 1;
        self.pending.push(Some(what));
        self.queue.push(Reverse((at.max(self.now), self.seq, self.pending.len() - 1)));
    }

    fn drain(&mut self, i: usize) {
        while let Some(output) = self.cores[i].poll_output() {
            let later = self.now + Duration::from_millis(1);
            match output {
                Output::SetTimer { at, timer } => self.schedule(at, What::Timer(i, timer)),
                Output::Datagram { to, bytes } => {
                    if let Some(to) = (0..NODES).find(|&n| addr(n) == to) {
                        self.schedule(later, What::Datagram { to, from: addr(i), bytes });
                    }
                }
                Output::PushPull { to, request } => match (0..NODES).find(|&n| addr(n) == to) {
                    Some(to) => self.schedule(later, What::PushPull { from: i, to, request }),
                    None => self.cores[i].push_pull_failed(self.now, to),
                },
                Output::Event(_) | Output::User(_) => {}
            }
        }
        while self.cores[i].poll_signal().is_some() {}
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        while let Some(&Reverse((at, _, slot))) = self.queue.peek() {
            if at > until {
                break;
            }
            self.queue.pop();
            self.now = at;
            let Some(what) = self.pending[slot].take() else { continue };
            let now = self.now;
            match what {
                What::Timer(i, timer) => {
                    self.cores[i].handle_timer(now, timer);
                    self.drain(i);
                }
                What::Datagram { to, from, bytes } => {
                    self.cores[to].handle_datagram(now, from, &bytes);
                    self.drain(to);
                }
                What::PushPull { from, to, request } => {
                    let response = self.cores[to].handle_push_pull_request(now, addr(from), &request);
                    self.drain(to);
                    match response {
                        Some(frame) => self.cores[from].handle_push_pull_response(now, addr(to), &frame),
                        None => self.cores[from].push_pull_failed(now, addr(to)),
                    }
                    self.drain(from);
                }
            }
        }
        self.now = until;
        if self.pending.len() > 4096 && self.queue.is_empty() {
            self.pending.clear();
        }
    }

    fn alive_at_home(&self) -> bool {
        self.cores.iter().all(|core| {
            (0..NODES)
                .all(|s| core.member(&name(s)).is_some_and(|m| m.status == MemberStatus::Alive && m.id.addr == addr(s)))
        })
    }

    fn check(&self) {
        for core in &self.cores {
            assert!(core.members().count() <= MAX_MEMBERS);
            assert!(core.members().all(|m| m.incarnation <= MAX_INCARNATION));
            assert!(core.metrics().user_ltime <= MAX_LTIME);
            assert!(core.name_conflict().is_none(), "an established node never yields");
        }
    }
}

fn claim(kind: u8, who: usize, elsewhere: bool, incarnation: u64) -> Update {
    let at = if elsewhere { addr(900 + who) } else { addr(who) };
    match kind % 4 {
        0 => Update::Alive(Alive { node: NodeId::new(name(who), at), incarnation, metadata: Metadata::new() }),
        1 => Update::Suspect(Suspect { node: name(who), incarnation, from: name(77) }),
        2 => Update::Confirm(Confirm { node: name(who), incarnation, from: name(77) }),
        _ => Update::Leave(Leave { node: name(who), incarnation }),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let codec = FrameCodec::new(ClusterLabel::new("fuzz").expect("short label"));
    let stream = codec.clone().with_max_frame_len(DEFAULT_MAX_STREAM_FRAME).expect("cap");
    let small = input.byte() % 2 == 0;
    let config = Config {
        incarnation_window: if small { 4 } else { 1 << 16 },
        user_ltime_window: if small { 8 } else { 8192 },
        max_members: MAX_MEMBERS,
        ..Config::local()
    };
    let (window, ltime_window) = (config.incarnation_window, config.user_ltime_window);
    let seed = u64::from(input.byte());
    let cores = (0..NODES)
        .map(|i| {
            let id = NodeId::new(name(i), addr(i));
            let rng = ChaCha8Rng::seed_from_u64(seed + i as u64);
            Swim::new(id, config.clone(), codec.clone(), rng, Duration::ZERO).expect("valid config")
        })
        .collect();
    let mut net = Net { cores, now: Duration::ZERO, queue: BinaryHeap::new(), pending: Vec::new(), seq: 0 };
    for i in 0..NODES {
        net.drain(i);
    }
    for i in 1..NODES {
        net.cores[i].join(Duration::ZERO, &[addr(0)]);
        net.drain(i);
    }
    net.run_for(Duration::from_secs(20));
    if !net.alive_at_home() {
        return; // Not converged before the forger came: nothing to check.
    }
    let mut steps = 0;
    while !input.0.is_empty() && steps < 64 {
        steps += 1;
        let target = usize::from(input.byte()) % NODES;
        let now = net.now;
        let known = |net: &Net, who: usize| net.cores[target].member(&name(who)).map_or(0, |m| m.incarnation);
        let clock = net.cores[target].metrics().user_ltime;
        let mut buf = BytesMut::new();
        match input.byte() % 5 {
            0 | 1 => {
                let updates = (0..1 + input.byte() % 4)
                    .map(|_| {
                        let (kind, who, elsewhere) =
                            (input.byte(), usize::from(input.byte() % 16), input.byte() % 2 == 0);
                        let incarnation = input.number(known(&net, who), window);
                        claim(kind, who, elsewhere, incarnation)
                    })
                    .collect();
                codec.encode(&Packet { message: Message::Gossip, updates }, &mut buf).expect("encodes");
                net.cores[target].handle_datagram(now, addr(999), &buf);
            }
            2 => {
                let update = Update::User(UserBroadcast {
                    origin: name(usize::from(input.byte() % 4)),
                    key: UserKey::new("k").expect("short key"),
                    version: input.number(clock, ltime_window),
                    payload: Vec::new(),
                });
                codec.encode(&Packet { message: Message::Gossip, updates: vec![update] }, &mut buf).expect("encodes");
                net.cores[target].handle_datagram(now, addr(999), &buf);
            }
            3 => {
                let members = (0..input.byte() % 6)
                    .map(|_| {
                        let (kind, who, elsewhere) =
                            (input.byte(), usize::from(input.byte() % 16), input.byte() % 2 == 0);
                        let incarnation = input.number(known(&net, who), window);
                        let at = if elsewhere { addr(900 + who) } else { addr(who) };
                        let status =
                            [MemberStatus::Alive, MemberStatus::Suspect, MemberStatus::Dead, MemberStatus::Left]
                                [usize::from(kind) % 4];
                        MemberState { node: NodeId::new(name(who), at), incarnation, status, metadata: Metadata::new() }
                    })
                    .collect();
                let user_ltime = input.number(clock, ltime_window);
                let state = PushPull { join: false, members, app_state: Vec::new(), user_ltime };
                // A request only: a response answers a stream the node
                // itself opened to a peer it chose, out of a forger's reach
                // without a TCP man-in-the-middle (and a node that knows no
                // live member then rightly yields a name it finds taken).
                let _ = input.byte();
                stream.encode(&Packet::new(Message::PushPullRequest(state)), &mut buf).expect("encodes");
                let _ = net.cores[target].handle_push_pull_request(now, addr(999), &buf);
            }
            _ => {
                net.drain(target);
                net.run_for(Duration::from_millis(u64::from(input.byte()) * 40));
            }
        }
        net.drain(target);
        net.check();
    }
    // The forger stops: every lie must go.
    for _ in 0..600 {
        if net.alive_at_home() {
            break;
        }
        net.run_for(Duration::from_secs(1));
    }
    net.check();
    assert!(net.alive_at_home(), "a forged claim left a permanent lie");
});
