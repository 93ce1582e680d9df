//! Random input sequences (valid and garbage packets, timers delivered
//! early, late, twice and out of order, commands): the core never panics,
//! its own incarnation never decreases, and it never declares itself dead.
//! With the signal feed on, the feed carries every event in order and its
//! signals are consistent.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use gossamer_core::{Config, Death, Event, Output, Signal, Swim, Time, Timer};
use gossamer_wire::{
    Ack, Alive, ClusterLabel, Confirm, FrameCodec, Heartbeat, Leave, MemberState, MemberStatus, Message, Metadata,
    Nack, NodeId, NodeName, Packet, Ping, PingReq, PushPull, Suspect, Update,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const NAMES: [&str; 5] = ["me", "a", "b", "c", "d"];

fn name(i: usize) -> NodeName {
    NAMES[i % NAMES.len()].parse().unwrap()
}

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 3000 + (i % NAMES.len()) as u16))
}

fn id(i: usize) -> NodeId {
    NodeId::new(name(i), addr(i))
}

fn codec() -> FrameCodec {
    FrameCodec::new(ClusterLabel::new("prop").unwrap())
}

#[derive(Debug, Clone)]
enum Input {
    Packet { from: usize, message: u8, seq: u32, updates: Vec<(u8, usize, u64)> },
    Garbage(Vec<u8>),
    Corrupt { at: usize, byte: u8 },
    PushPull { request: bool, states: Vec<(usize, u8, u64)> },
    Timer { pick: usize, skew_ms: i64 },
    Advance(u64),
    Join,
    Leave,
    Rejoin,
    SetMetadata(u8),
    ForceLeave(usize),
    PushPullFailed(usize),
    Signals(bool),
    Remove(usize),
    PushPullWith(usize),
}

fn input() -> impl Strategy<Value = Input> {
    let update = (0u8..4, 0usize..5, 0u64..8);
    prop_oneof![
        4 => (0usize..5, 0u8..8, 0u32..8, prop::collection::vec(update, 0..6))
            .prop_map(|(from, message, seq, updates)| Input::Packet { from, message, seq, updates }),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Input::Garbage),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Input::Corrupt { at, byte }),
        1 => (any::<bool>(), prop::collection::vec((0usize..5, 0u8..4, 0u64..8), 0..6))
            .prop_map(|(request, states)| Input::PushPull { request, states }),
        6 => (any::<usize>(), -2000i64..5000).prop_map(|(pick, skew_ms)| Input::Timer { pick, skew_ms }),
        3 => (0u64..3000).prop_map(Input::Advance),
        1 => Just(Input::Join),
        1 => Just(Input::Leave),
        1 => Just(Input::Rejoin),
        1 => any::<u8>().prop_map(Input::SetMetadata),
        1 => (0usize..5).prop_map(Input::ForceLeave),
        1 => (0usize..5).prop_map(Input::PushPullFailed),
        1 => any::<bool>().prop_map(Input::Signals),
        1 => (0usize..5).prop_map(Input::Remove),
        1 => (0usize..5).prop_map(Input::PushPullWith),
    ]
}

fn update(kind: u8, who: usize, incarnation: u64, from: usize) -> Update {
    match kind {
        0 => Update::Alive(Alive { node: id(who), incarnation, metadata: Metadata::new() }),
        1 => Update::Suspect(Suspect { node: name(who), incarnation, from: name(from) }),
        2 => Update::Confirm(Confirm { node: name(who), incarnation, from: name(from) }),
        _ => Update::Leave(Leave { node: name(who), incarnation }),
    }
}

fn message(kind: u8, seq: u32, from: usize) -> Message {
    match kind {
        0 => Message::Ping(Ping { seq, target: name(0), from: id(from) }),
        1 => Message::Ack(Ack { seq, from: name(from) }),
        2 => Message::Nack(Nack { seq, from: name(from) }),
        3 => Message::PingReq(PingReq { seq, target: id((seq as usize) % 5), from: id(from) }),
        4 => Message::Heartbeat(Heartbeat { node: id(from), incarnation: u64::from(seq), metadata_digest: 0 }),
        5 => Message::Ping(Ping { seq, target: name(from), from: id(from) }),
        _ => Message::Gossip,
    }
}

fn status(kind: u8) -> MemberStatus {
    [MemberStatus::Alive, MemberStatus::Suspect, MemberStatus::Dead, MemberStatus::Left][kind as usize % 4]
}

struct Harness {
    core: Swim<ChaCha8Rng>,
    now: Time,
    timers: Vec<(Time, Timer)>,
    last_frame: Vec<u8>,
    incarnation: u64,
    signals: bool,
}

impl Harness {
    fn drain(&mut self) {
        let mut events = Vec::new();
        let mut fed = Vec::new();
        while let Some(signal) = self.core.poll_signal() {
            assert!(self.signals, "a signal while the feed is off: {signal:?}");
            match signal {
                Signal::Member(event) => fed.push(event),
                Signal::RemoteView { from, members } => assert_eq!(from, members[0].node),
                Signal::Refuted { incarnation, .. } => assert!(incarnation <= self.core.incarnation()),
                Signal::DeathConfirmed { member, .. } => assert_ne!(member.name, name(0)),
                Signal::MemberRemoved(m) => {
                    assert_ne!(m.id.name, name(0));
                    assert!(matches!(m.status, MemberStatus::Dead | MemberStatus::Left), "{m:?}");
                }
                // The inputs give every name one address, but a push-pull
                // answer while alone may hold this node at a newer
                // incarnation: no conflict, no exhaustion either.
                other => panic!("unexpected {other:?}"),
            }
        }
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::SetTimer { at, timer } => {
                    if self.timers.len() < 512 {
                        self.timers.push((at, timer));
                    }
                }
                Output::Datagram { bytes, .. } => self.last_frame = bytes.to_vec(),
                Output::PushPull { request, .. } => self.last_frame = request.to_vec(),
                Output::Event(event) => {
                    assert_ne!(event.member().id.name, name(0), "no event about the local node: {event:?}");
                    if let Event::MemberFailed(m) = &event {
                        assert_ne!(m.id.name, name(0));
                    }
                    events.push(event);
                }
                // These inputs carry no application items.
                Output::User(event) => panic!("unexpected application event {event:?}"),
            }
        }
        if self.signals {
            assert_eq!(fed, events, "the feed carries every event, in order");
        }
        for m in self.core.members() {
            if let Some(death) = self.core.death(&m.id.name) {
                assert!(death.confirmers.len() <= Death::MAX_CONFIRMERS);
                assert_eq!(death.confirmers.first(), Some(&death.by));
                let mut distinct = death.confirmers.clone();
                distinct.sort();
                distinct.dedup();
                assert_eq!(distinct.len(), death.confirmers.len(), "distinct confirmers");
            }
        }
        let me = self.core.member(&name(0)).expect("the local node is always a member");
        assert!(matches!(me.status, MemberStatus::Alive | MemberStatus::Left), "local status {:?}", me.status);
        let incarnation = self.core.incarnation();
        assert!(incarnation >= self.incarnation, "incarnation went down {} -> {incarnation}", self.incarnation);
        assert_eq!(me.incarnation, incarnation);
        self.incarnation = incarnation;
    }

    fn step(&mut self, input: Input) {
        let codec = codec();
        match input {
            Input::Packet { from, message: kind, seq, updates } => {
                let packet = Packet {
                    message: message(kind, seq, from),
                    updates: updates.into_iter().map(|(k, w, i)| update(k, w, i, from)).collect(),
                };
                let mut buf = BytesMut::new();
                codec.encode(&packet, &mut buf).unwrap();
                self.core.handle_datagram(self.now, addr(from), &buf);
            }
            Input::Garbage(bytes) => self.core.handle_datagram(self.now, addr(1), &bytes),
            Input::Corrupt { at, byte } => {
                let mut frame = self.last_frame.clone();
                if !frame.is_empty() {
                    let i = at % frame.len();
                    frame[i] ^= byte | 1;
                }
                self.core.handle_datagram(self.now, addr(2), &frame);
                let _ = self.core.handle_push_pull_request(self.now, addr(2), &frame);
            }
            Input::PushPull { request, states } => {
                let members = states
                    .into_iter()
                    .map(|(w, s, i)| MemberState {
                        node: id(w),
                        incarnation: i,
                        status: status(s),
                        metadata: Metadata::new(),
                    })
                    .collect();
                let state = PushPull { join: false, members, app_state: Vec::new(), user_ltime: 0 };
                let message = if request { Message::PushPullRequest(state) } else { Message::PushPullResponse(state) };
                let mut buf = BytesMut::new();
                let stream = codec.with_max_frame_len(gossamer_wire::DEFAULT_MAX_STREAM_FRAME).unwrap();
                stream.encode(&Packet::new(message), &mut buf).unwrap();
                if request {
                    let _ = self.core.handle_push_pull_request(self.now, addr(3), &buf);
                } else {
                    self.core.handle_push_pull_response(self.now, addr(3), &buf);
                }
            }
            Input::Timer { pick, skew_ms } => {
                if !self.timers.is_empty() {
                    // Sometimes remove it (delivered), sometimes keep it (delivered again later).
                    let i = pick % self.timers.len();
                    let (at, timer) = if pick % 3 == 0 { self.timers[i].clone() } else { self.timers.swap_remove(i) };
                    let when = if skew_ms >= 0 {
                        at + Duration::from_millis(skew_ms as u64)
                    } else {
                        at.saturating_sub(Duration::from_millis((-skew_ms) as u64))
                    };
                    // Time never runs backwards for the core, but timers may be early or late.
                    self.now = self.now.max(when);
                    self.core.handle_timer(self.now, timer);
                }
            }
            Input::Advance(ms) => self.now += Duration::from_millis(ms),
            Input::Join => self.core.join(self.now, &[addr(1), addr(2)]),
            Input::Leave => self.core.leave(self.now),
            Input::Rejoin => self.core.rejoin(self.now, &[addr(1)]),
            Input::SetMetadata(v) => {
                let mut meta = Metadata::new();
                meta.insert("v", vec![v]).unwrap();
                self.core.set_metadata(self.now, meta);
            }
            Input::ForceLeave(w) => {
                let _ = self.core.force_leave(self.now, &name(w));
            }
            Input::PushPullFailed(w) => self.core.push_pull_failed(self.now, addr(w)),
            Input::Signals(on) => {
                self.core.set_signals(on);
                self.signals = on;
            }
            Input::Remove(w) => {
                let before = self.core.member(&name(w)).map(|m| m.status);
                let removed = self.core.remove(self.now, &name(w));
                let removable = w % NAMES.len() != 0 && matches!(before, Some(MemberStatus::Dead | MemberStatus::Left));
                assert_eq!(removed, removable, "{before:?}");
                assert!(!removed || self.core.member(&name(w)).is_none());
            }
            Input::PushPullWith(w) => self.core.push_pull(self.now, addr(w)),
        }
        self.drain();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_inputs_keep_invariants(seed in any::<u64>(), inputs in prop::collection::vec(input(), 1..120)) {
        let core = Swim::new(id(0), Config::lan(), codec(), ChaCha8Rng::seed_from_u64(seed), Time::ZERO).unwrap();
        let mut h =
            Harness { core, now: Time::ZERO, timers: Vec::new(), last_frame: Vec::new(), incarnation: 0, signals: false };
        h.drain();
        for input in inputs {
            h.step(input);
        }
        let m = h.core.metrics();
        prop_assert_eq!(m.alive + m.suspect + m.dead + m.left, h.core.members().count());
    }
}
