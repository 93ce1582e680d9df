//! A sequence of inputs decoded from the fuzzer's bytes (datagrams, both
//! well-formed and raw, stream frames, timers delivered early, late, twice
//! or out of order, commands) fed into one `Swim`. It must never panic,
//! never lower its own incarnation and never declare itself dead.
#![no_main]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use gossamer_core::{Config, Output, Swim, Timer};
use gossamer_wire::{
    Ack, Alive, ClusterLabel, Confirm, FrameCodec, Leave, MemberState, MemberStatus, Message, Metadata, Nack, NodeId,
    NodeName, Packet, Ping, PingReq, PushPull, Suspect, Update, DEFAULT_MAX_STREAM_FRAME,
};
use libfuzzer_sys::fuzz_target;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

const NAMES: [&str; 6] = ["me", "a", "b", "c", "d", "e"];

fn name(i: u8) -> NodeName {
    NAMES[i as usize % NAMES.len()].parse().expect("valid name")
}

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4000 + (i as usize % NAMES.len()) as u16))
}

fn id(i: u8) -> NodeId {
    NodeId::new(name(i), addr(i))
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
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
    fn u64(&mut self) -> u64 {
        u64::from(self.byte()) | u64::from(self.byte()) << 8
    }
}

fn update(input: &mut Input) -> Update {
    let (kind, who, from, incarnation) = (input.byte(), input.byte(), input.byte(), u64::from(input.byte() % 16));
    match kind % 4 {
        0 => Update::Alive(Alive { node: id(who), incarnation, metadata: Metadata::new() }),
        1 => Update::Suspect(Suspect { node: name(who), incarnation, from: name(from) }),
        2 => Update::Confirm(Confirm { node: name(who), incarnation, from: name(from) }),
        _ => Update::Leave(Leave { node: name(who), incarnation }),
    }
}

fn message(input: &mut Input) -> Message {
    let (kind, seq, from) = (input.byte(), u32::from(input.byte() % 8), input.byte());
    match kind % 6 {
        0 => Message::Ping(Ping { seq, target: name(0), from: id(from) }),
        1 => Message::Ack(Ack { seq, from: name(from) }),
        2 => Message::Nack(Nack { seq, from: name(from) }),
        3 => Message::PingReq(PingReq { seq, target: id(input.byte()), from: id(from) }),
        4 => Message::Ping(Ping { seq, target: name(from), from: id(from) }),
        _ => Message::Gossip,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let codec = FrameCodec::new(ClusterLabel::new("fuzz").expect("short label"));
    let stream = codec.clone().with_max_frame_len(DEFAULT_MAX_STREAM_FRAME).expect("cap");
    let mut config = Config::lan();
    config.max_relays = 8;
    let seed = input.u64();
    let Ok(mut core) = Swim::new(id(0), config, codec.clone(), ChaCha8Rng::seed_from_u64(seed), Duration::ZERO) else {
        return;
    };
    let mut now = Duration::ZERO;
    let mut timers: Vec<(Duration, Timer)> = Vec::new();
    let mut incarnation = 0;
    let mut steps = 0;
    while !input.0.is_empty() && steps < 512 {
        steps += 1;
        match input.byte() % 10 {
            0 | 1 => {
                let message = message(&mut input);
                let updates = (0..input.byte() % 6).map(|_| update(&mut input)).collect();
                let mut buf = BytesMut::new();
                codec.encode(&Packet { message, updates }, &mut buf).expect("encodes");
                if input.byte() % 8 == 0 && !buf.is_empty() {
                    let i = input.byte() as usize % buf.len();
                    buf[i] ^= input.byte() | 1;
                }
                core.handle_datagram(now, addr(input.byte()), &buf);
            }
            2 => {
                let n = input.byte() as usize;
                let raw = input.bytes(n).to_vec();
                core.handle_datagram(now, addr(1), &raw);
            }
            3 => {
                let members = (0..input.byte() % 6)
                    .map(|_| {
                        let (who, status, inc) = (input.byte(), input.byte(), u64::from(input.byte() % 16));
                        let status =
                            [MemberStatus::Alive, MemberStatus::Suspect, MemberStatus::Dead, MemberStatus::Left]
                                [status as usize % 4];
                        MemberState { node: id(who), incarnation: inc, status, metadata: Metadata::new() }
                    })
                    .collect();
                let state = PushPull { join: input.byte() % 2 == 0, members, app_state: Vec::new(), user_ltime: 0 };
                let request = input.byte() % 2 == 0;
                let message = if request { Message::PushPullRequest(state) } else { Message::PushPullResponse(state) };
                let mut buf = BytesMut::new();
                stream.encode(&Packet::new(message), &mut buf).expect("encodes");
                if request {
                    let _ = core.handle_push_pull_request(now, addr(2), &buf);
                } else {
                    core.handle_push_pull_response(now, addr(2), &buf);
                }
            }
            4 | 5 => {
                if !timers.is_empty() {
                    let i = input.byte() as usize % timers.len();
                    let keep = input.byte() % 4 == 0;
                    let (at, timer) = if keep { timers[i].clone() } else { timers.swap_remove(i) };
                    let skew = Duration::from_millis(u64::from(input.byte()) * 20);
                    let when = if input.byte() % 2 == 0 { at + skew } else { at.saturating_sub(skew) };
                    now = now.max(when);
                    core.handle_timer(now, timer);
                }
            }
            6 => now += Duration::from_millis(input.u64()),
            7 => core.join(now, &[addr(input.byte()), addr(input.byte())]),
            8 => match input.byte() % 5 {
                0 => core.leave(now),
                1 => core.rejoin(now, &[addr(1)]),
                2 => {
                    let mut meta = Metadata::new();
                    let _ = meta.insert("k", vec![input.byte()]);
                    core.set_metadata(now, meta);
                }
                3 => {
                    let _ = core.force_leave(now, &name(input.byte()));
                }
                _ => core.push_pull_failed(now, addr(input.byte())),
            },
            _ => {
                let n = input.byte() as usize;
                let raw = input.bytes(n).to_vec();
                let _ = core.handle_push_pull_request(now, addr(3), &raw);
                core.handle_push_pull_response(now, addr(3), &raw);
            }
        }
        while let Some(output) = core.poll_output() {
            match output {
                Output::SetTimer { at, timer } if timers.len() < 256 => timers.push((at, timer)),
                Output::Event(event) => assert_ne!(event.member().id.name, name(0)),
                _ => {}
            }
        }
        let me = core.member(&name(0)).expect("the local node is always a member");
        assert!(matches!(me.status, MemberStatus::Alive | MemberStatus::Left));
        assert!(core.incarnation() >= incarnation);
        incarnation = core.incarnation();
    }
});
