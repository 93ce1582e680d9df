//! Unit tests of the precedence rules and of every timer path, driving one
//! core by hand.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use gossamer_wire::{
    Ack, Alive, ClusterLabel, Confirm, FrameCodec, Leave, MemberState, MemberStatus, Message, Metadata, NodeId,
    NodeName, Packet, Ping, PingReq, PushPull, Suspect, Update, DEFAULT_MAX_STREAM_FRAME,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::timer::{Periodic, TimerKind};
use crate::{Config, Death, Event, Output, RefutedClaim, Signal, Swim, Time, Timer};

type Core = Swim<ChaCha8Rng>;

fn codec() -> FrameCodec {
    FrameCodec::new(ClusterLabel::new("unit").unwrap())
}

fn name(n: &str) -> NodeName {
    n.parse().unwrap()
}

fn id(n: &str, port: u16) -> NodeId {
    NodeId::new(name(n), addr(port))
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// memberlist's timings, which these tests were written for (the `fast`
/// preset has shorter suspicion timeouts, issue #19).
fn core() -> Core {
    let mut core =
        Swim::new(id("me", 1), Config::memberlist(), codec(), ChaCha8Rng::seed_from_u64(1), Time::ZERO).unwrap();
    drain(&mut core);
    core
}

fn drain(core: &mut Core) -> Vec<Output> {
    std::iter::from_fn(|| core.poll_output()).collect()
}

fn events(outputs: &[Output]) -> Vec<Event> {
    outputs.iter().filter_map(|o| if let Output::Event(e) = o { Some(e.clone()) } else { None }).collect()
}

fn alive(n: &str, port: u16, incarnation: u64) -> Update {
    Update::Alive(Alive { node: id(n, port), incarnation, metadata: Metadata::new() })
}

fn suspect(n: &str, incarnation: u64, from: &str) -> Update {
    Update::Suspect(Suspect { node: name(n), incarnation, from: name(from) })
}

fn confirm(n: &str, incarnation: u64, from: &str) -> Update {
    Update::Confirm(Confirm { node: name(n), incarnation, from: name(from) })
}

fn leave(n: &str, incarnation: u64) -> Update {
    Update::Leave(Leave { node: name(n), incarnation })
}

fn apply(core: &mut Core, at: Time, update: Update) -> Vec<Event> {
    core.apply_update(at, update);
    events(&drain(core))
}

fn status(core: &Core, n: &str) -> (MemberStatus, u64) {
    let m = core.member(&name(n)).unwrap();
    (m.status, m.incarnation)
}

/// A core that knows `a` at incarnation 5 in `state`.
fn with_a(state: MemberStatus) -> Core {
    let mut c = core();
    apply(&mut c, Time::ZERO, alive("a", 2, 5));
    match state {
        MemberStatus::Alive => {}
        MemberStatus::Suspect => drop(apply(&mut c, Time::ZERO, suspect("a", 5, "x"))),
        MemberStatus::Dead => drop(apply(&mut c, Time::ZERO, confirm("a", 5, "x"))),
        MemberStatus::Left => drop(apply(&mut c, Time::ZERO, leave("a", 5))),
    }
    assert_eq!(status(&c, "a"), (state, 5));
    c
}

fn frame(packet: &Packet) -> Vec<u8> {
    let mut buf = BytesMut::new();
    codec().encode(packet, &mut buf).unwrap();
    buf.to_vec()
}

fn decode_datagrams(outputs: &[Output]) -> Vec<(SocketAddr, Packet)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Datagram { to, bytes } => Some((*to, codec().decode(bytes).unwrap())),
            _ => None,
        })
        .collect()
}

fn timers(outputs: &[Output]) -> Vec<(Time, Timer)> {
    outputs
        .iter()
        .filter_map(|o| if let Output::SetTimer { at, timer } = o { Some((*at, timer.clone())) } else { None })
        .collect()
}

// ---- precedence: Alive ----

#[test]
fn alive_adds_unknown_member() {
    let mut c = core();
    let ev = apply(&mut c, Time::ZERO, alive("a", 2, 3));
    assert!(matches!(&ev[..], [Event::MemberJoined(m)] if m.incarnation == 3));
    assert_eq!(status(&c, "a"), (MemberStatus::Alive, 3));
}

#[test]
fn alive_overrides_alive_only_when_newer() {
    let mut c = with_a(MemberStatus::Alive);
    assert!(apply(&mut c, Time::ZERO, alive("a", 2, 5)).is_empty());
    assert!(apply(&mut c, Time::ZERO, alive("a", 2, 4)).is_empty());
    assert_eq!(status(&c, "a"), (MemberStatus::Alive, 5));
    // Newer, same data: no event but the incarnation moves.
    assert!(apply(&mut c, Time::ZERO, alive("a", 2, 6)).is_empty());
    assert_eq!(status(&c, "a"), (MemberStatus::Alive, 6));
    // Newer with new metadata: updated.
    let mut meta = Metadata::new();
    meta.insert("zone", b"b".to_vec()).unwrap();
    let ev = apply(&mut c, Time::ZERO, Update::Alive(Alive { node: id("a", 2), incarnation: 7, metadata: meta }));
    assert!(matches!(&ev[..], [Event::MemberUpdated(m)] if m.metadata.get("zone") == Some(&b"b"[..])));
    // Newer with a new address: a live member is never moved (name conflict).
    assert!(apply(&mut c, Time::ZERO, alive("a", 3, 8)).is_empty());
    assert_eq!(c.member(&name("a")).unwrap().id.addr, addr(2));
    assert_eq!(status(&c, "a"), (MemberStatus::Alive, 7));
    assert_eq!(c.metrics().name_conflicts, 1);
}

#[test]
fn alive_overrides_suspect_iff_newer() {
    let mut c = with_a(MemberStatus::Suspect);
    assert!(apply(&mut c, Time::ZERO, alive("a", 2, 5)).is_empty());
    assert_eq!(status(&c, "a").0, MemberStatus::Suspect);
    let ev = apply(&mut c, Time::ZERO, alive("a", 2, 6));
    assert!(matches!(&ev[..], [Event::MemberRecovered(_)]));
    assert_eq!(status(&c, "a"), (MemberStatus::Alive, 6));
    assert!(c.suspicions.is_empty());
}

#[test]
fn alive_overrides_dead_iff_newer() {
    let mut c = with_a(MemberStatus::Dead);
    assert!(apply(&mut c, Time::ZERO, alive("a", 2, 5)).is_empty());
    assert_eq!(status(&c, "a").0, MemberStatus::Dead);
    let ev = apply(&mut c, Time::ZERO, alive("a", 2, 6));
    assert!(matches!(&ev[..], [Event::MemberRecovered(_)]));
    assert!(c.death(&name("a")).is_none(), "death record cleared on recovery");
}

#[test]
fn alive_overrides_left_iff_newer_as_a_rejoin() {
    let mut c = with_a(MemberStatus::Left);
    assert!(apply(&mut c, Time::ZERO, alive("a", 2, 5)).is_empty());
    let ev = apply(&mut c, Time::ZERO, alive("a", 2, 6));
    assert!(matches!(&ev[..], [Event::MemberJoined(_)]));
}

// ---- precedence: Suspect ----

#[test]
fn suspect_overrides_alive_at_same_or_newer() {
    let mut c = with_a(MemberStatus::Alive);
    assert!(apply(&mut c, Time::ZERO, suspect("a", 4, "x")).is_empty());
    assert_eq!(status(&c, "a").0, MemberStatus::Alive);
    let ev = apply(&mut c, Time::ZERO, suspect("a", 5, "x"));
    assert!(matches!(&ev[..], [Event::MemberSuspected(m)] if m.incarnation == 5));
    let mut c = with_a(MemberStatus::Alive);
    apply(&mut c, Time::ZERO, suspect("a", 7, "x"));
    assert_eq!(status(&c, "a"), (MemberStatus::Suspect, 7));
}

#[test]
fn suspect_overrides_suspect_iff_newer_and_confirms_at_same() {
    let mut c = with_a(MemberStatus::Suspect);
    let slot = c.members.find(&name("a")).unwrap();
    let first = c.suspicions[&slot].clone();
    // Same accuser again: nothing.
    apply(&mut c, Time::ZERO, suspect("a", 5, "x"));
    assert_eq!(c.suspicions[&slot].deadline, first.deadline);
    // Older: nothing.
    apply(&mut c, Time::ZERO, suspect("a", 4, "y"));
    assert_eq!(c.suspicions[&slot].deadline, first.deadline);
}

#[test]
fn independent_accusers_shorten_the_suspicion() {
    let mut c = core();
    // Enough members that Lifeguard expects confirmations (k = mult - 2 = 2).
    for i in 0..6 {
        apply(&mut c, Time::ZERO, alive(&format!("m{i}"), 10 + i, 0));
    }
    // Only members heard from directly count as confirmations (issue #19).
    for i in 1..6 {
        let slot = c.members.find(&name(&format!("m{i}"))).unwrap();
        c.verify(slot);
    }
    apply(&mut c, Time::ZERO, suspect("m0", 0, "m1"));
    let slot = c.members.find(&name("m0")).unwrap();
    let initial = c.suspicions[&slot].deadline;
    apply(&mut c, Time::ZERO, suspect("m0", 0, "m2"));
    let out = drain(&mut c);
    let shorter = c.suspicions[&slot].deadline;
    assert!(shorter < initial, "{shorter:?} < {initial:?}");
    let _ = out;
    apply(&mut c, Time::ZERO, suspect("m0", 0, "m3"));
    assert!(c.suspicions[&slot].deadline < shorter);
    // Newer incarnation suspected: fresh suspicion at that incarnation.
    apply(&mut c, Time::ZERO, suspect("m0", 1, "m4"));
    assert_eq!(status(&c, "m0"), (MemberStatus::Suspect, 1));
    assert_eq!(c.suspicions[&slot].incarnation, 1);
}

/// Issue #19: a forger's `Suspect`s under names that are not verified
/// members (made up, or only ever claimed by others) never shorten a
/// suspicion; and however many verified members confirm, the deadline
/// never comes before the start plus the minimum timeout.
#[test]
fn forged_confirmations_cannot_shorten_a_suspicion_below_its_floor() {
    let config = Config { suspicion_mult: 1, suspicion_confirmations: 3, ..Config::lan() };
    let mut c = Swim::new(id("me", 7000), config, codec(), ChaCha8Rng::seed_from_u64(1), Time::ZERO).unwrap();
    for i in 0..12 {
        apply(&mut c, Time::ZERO, alive(&format!("m{i}"), 10 + i, 0));
    }
    for i in 1..4 {
        let slot = c.members.find(&name(&format!("m{i}"))).unwrap();
        c.verify(slot);
    }
    let start = Time::from_secs(5);
    apply(&mut c, start, suspect("m0", 0, "m1"));
    let slot = c.members.find(&name("m0")).unwrap();
    let initial = c.suspicions[&slot].deadline;
    // Unknown names, unverified members and the suspect itself: refused.
    for forged in ["ghost1", "ghost2", "ghost3", "m5", "m6", "m7", "m0"] {
        apply(&mut c, start, suspect("m0", 0, forged));
    }
    assert_eq!(c.suspicions[&slot].deadline, initial, "no forged name moved the deadline");
    assert_eq!(c.metrics().confirmations_refused, 7);
    // Distinct verified members do, down to the floor and no further.
    apply(&mut c, start, suspect("m0", 0, "m2"));
    assert!(c.suspicions[&slot].deadline < initial);
    apply(&mut c, start, suspect("m0", 0, "m3"));
    apply(&mut c, start, suspect("m0", 0, "me"));
    let min = crate::suspicion::min_suspicion_timeout(1, c.members.len(), Duration::from_secs(1));
    assert_eq!(c.suspicions[&slot].deadline, start + min, "k = 3 confirmations: the minimum, not less");
    assert!(min >= Duration::from_secs(1));
    // The same verified accuser twice is one confirmation.
    apply(&mut c, start, suspect("m0", 0, "m2"));
    assert_eq!(c.suspicions[&slot].deadline, start + min);
}

/// Issue #19: a slow refutation seen here raises the floor of the next
/// suspicions (`suspicion_refute_mult`); with the setting off, it does not.
#[test]
fn slow_refutations_raise_the_suspicion_floor() {
    for mult in [0.0, 2.0] {
        let config = Config {
            suspicion_mult: 1,
            suspicion_max_timeout_mult: 20,
            suspicion_confirmations: 1,
            suspicion_refute_mult: mult,
            ..Config::lan()
        };
        let mut c = Swim::new(id("me", 7000), config, codec(), ChaCha8Rng::seed_from_u64(1), Time::ZERO).unwrap();
        for i in 0..6 {
            apply(&mut c, Time::ZERO, alive(&format!("m{i}"), 10 + i, 0));
            let slot = c.members.find(&name(&format!("m{i}"))).unwrap();
            c.verify(slot);
        }
        // m0 suspected at 10 s, refutes 4 s later.
        apply(&mut c, Time::from_secs(10), suspect("m0", 0, "m1"));
        apply(&mut c, Time::from_secs(14), alive("m0", 10, 1));
        assert_eq!(status(&c, "m0"), (MemberStatus::Alive, 1));
        // m3 suspected and confirmed at once: the minimum, or twice 4 s.
        let start = Time::from_secs(20);
        apply(&mut c, start, suspect("m3", 0, "m1"));
        apply(&mut c, start, suspect("m3", 0, "m2"));
        let slot = c.members.find(&name("m3")).unwrap();
        let min = crate::suspicion::min_suspicion_timeout(1, 7, Duration::from_secs(1));
        let expected = if mult > 0.0 { Duration::from_secs(8) } else { min };
        assert_eq!(c.suspicions[&slot].deadline, start + expected, "refute mult {mult}");
    }
}

/// Issue #19: a Lifeguard confirmation that arrives after the deadline it
/// shortens (a long suspicion confirmed late) makes the death due now; the
/// timer handled at once is on time, not a stalled node's late timer, so it
/// neither counts against this node's health nor puts the death off (under
/// a flood of forged suspicions that penalty slowed every probe).
#[test]
fn a_late_confirmation_makes_the_death_due_now_not_a_stall() {
    let config =
        Config { suspicion_mult: 1, suspicion_max_timeout_mult: 12, suspicion_confirmations: 1, ..Config::lan() };
    let mut c = Swim::new(id("me", 7000), config, codec(), ChaCha8Rng::seed_from_u64(1), Time::ZERO).unwrap();
    for n in ["a", "x", "y"] {
        apply(&mut c, Time::ZERO, alive(n, 10, 0));
    }
    for n in ["x", "y"] {
        let slot = c.members.find(&name(n)).unwrap();
        c.verify(slot);
    }
    apply(&mut c, Time::ZERO, suspect("a", 0, "x"));
    let slot = c.members.find(&name("a")).unwrap();
    c.suspicions.get_mut(&slot).unwrap().first_hand = true;
    let min = crate::suspicion::min_suspicion_timeout(1, 4, Duration::from_secs(1));
    // Confirmed well after start + min, long before the lone-accuser maximum.
    let now = min * 3;
    assert!(c.suspicions[&slot].deadline > now);
    apply(&mut c, now, suspect("a", 0, "y"));
    assert_eq!(c.suspicions[&slot].deadline, now, "due now, not in the past");
    let sid = c.suspicions[&slot].id;
    c.handle_timer(now, Timer(TimerKind::Suspicion { slot, id: sid }));
    assert_eq!(status(&c, "a").0, MemberStatus::Dead);
    assert_eq!(c.metrics().stalled_suspicions, 0);
}

/// Issue #19 (Lifeguard): a suspicion timer handled far past its deadline
/// means this node was stalled; the refutation may be among the inputs
/// queued meanwhile, so the death waits one probe timeout more, and the
/// refutation handled then clears it.
#[test]
fn a_stalled_node_does_not_declare_on_a_late_timer() {
    let config = Config { suspicion_mult: 1, suspicion_confirmations: 0, ..Config::lan() };
    let mut c = Swim::new(id("me", 7000), config, codec(), ChaCha8Rng::seed_from_u64(1), Time::ZERO).unwrap();
    apply(&mut c, Time::ZERO, alive("a", 10, 0));
    apply(&mut c, Time::ZERO, suspect("a", 0, "x"));
    let slot = c.members.find(&name("a")).unwrap();
    // As if this node's own probe of it had failed too (first-hand).
    c.suspicions.get_mut(&slot).unwrap().first_hand = true;
    let (deadline, sid) = (c.suspicions[&slot].deadline, c.suspicions[&slot].id);
    drain(&mut c);
    // On time: declared dead.
    let mut on_time =
        Swim::new(id("me", 7000), c.config.clone(), codec(), ChaCha8Rng::seed_from_u64(1), Time::ZERO).unwrap();
    apply(&mut on_time, Time::ZERO, alive("a", 10, 0));
    apply(&mut on_time, Time::ZERO, suspect("a", 0, "x"));
    let s = on_time.members.find(&name("a")).unwrap();
    on_time.suspicions.get_mut(&s).unwrap().first_hand = true;
    let id_on_time = on_time.suspicions[&s].id;
    on_time.handle_timer(deadline, Timer(TimerKind::Suspicion { slot: s, id: id_on_time }));
    assert_eq!(status(&on_time, "a").0, MemberStatus::Dead);
    // Two seconds late: put off, and the queued refutation wins.
    let late = deadline + Duration::from_secs(2);
    c.handle_timer(late, Timer(TimerKind::Suspicion { slot, id: sid }));
    assert_eq!(status(&c, "a").0, MemberStatus::Suspect);
    assert_eq!(c.metrics().stalled_suspicions, 1);
    apply(&mut c, late, alive("a", 10, 1));
    assert_eq!(status(&c, "a"), (MemberStatus::Alive, 1));
    // Without a refutation, it is declared one probe timeout later.
    apply(&mut c, late, suspect("a", 1, "x"));
    c.suspicions.get_mut(&slot).unwrap().first_hand = true;
    let (deadline, sid) = (c.suspicions[&slot].deadline, c.suspicions[&slot].id);
    let late = deadline + Duration::from_secs(2);
    c.handle_timer(late, Timer(TimerKind::Suspicion { slot, id: sid }));
    assert_eq!(status(&c, "a").0, MemberStatus::Suspect);
    c.handle_timer(late + c.config.probe_timeout, Timer(TimerKind::Suspicion { slot, id: sid }));
    assert_eq!(status(&c, "a").0, MemberStatus::Dead);
}

#[test]
fn suspect_never_overrides_dead_or_left() {
    for state in [MemberStatus::Dead, MemberStatus::Left] {
        let mut c = with_a(state);
        assert!(apply(&mut c, Time::ZERO, suspect("a", 9, "x")).is_empty());
        assert_eq!(status(&c, "a"), (state, 5));
    }
}

// ---- precedence: Confirm ----

#[test]
fn confirm_overrides_alive_and_suspect_at_same_or_newer() {
    for state in [MemberStatus::Alive, MemberStatus::Suspect] {
        let mut c = with_a(state);
        assert!(apply(&mut c, Time::from_secs(1), confirm("a", 4, "x")).is_empty());
        assert_eq!(status(&c, "a").0, state);
        let ev = apply(&mut c, Time::from_secs(2), confirm("a", 5, "judge"));
        assert!(matches!(&ev[..], [Event::MemberFailed(m)] if m.incarnation == 5));
        let death = c.death(&name("a")).unwrap();
        assert_eq!((death.at, &death.by), (Time::from_secs(2), &name("judge")));
        assert!(c.suspicions.is_empty());
    }
}

#[test]
fn confirm_on_dead_only_moves_incarnation() {
    let mut c = with_a(MemberStatus::Dead);
    assert!(apply(&mut c, Time::ZERO, confirm("a", 5, "y")).is_empty());
    assert!(apply(&mut c, Time::ZERO, confirm("a", 8, "y")).is_empty());
    assert_eq!(status(&c, "a"), (MemberStatus::Dead, 8));
}

#[test]
fn confirm_overrides_left_iff_newer() {
    let mut c = with_a(MemberStatus::Left);
    assert!(apply(&mut c, Time::ZERO, confirm("a", 5, "y")).is_empty());
    assert_eq!(status(&c, "a").0, MemberStatus::Left);
    let ev = apply(&mut c, Time::ZERO, confirm("a", 6, "y"));
    assert!(matches!(&ev[..], [Event::MemberFailed(_)]));
}

// ---- precedence: Leave ----

#[test]
fn leave_overrides_alive_suspect_dead_at_same_or_newer() {
    for state in [MemberStatus::Alive, MemberStatus::Suspect, MemberStatus::Dead] {
        let mut c = with_a(state);
        assert!(apply(&mut c, Time::ZERO, leave("a", 4)).is_empty());
        assert_eq!(status(&c, "a").0, state);
        let ev = apply(&mut c, Time::ZERO, leave("a", 5));
        assert!(matches!(&ev[..], [Event::MemberLeft(_)]), "{state:?}");
        assert_eq!(status(&c, "a"), (MemberStatus::Left, 5));
        assert!(c.death(&name("a")).is_none());
    }
    let mut c = with_a(MemberStatus::Left);
    assert!(apply(&mut c, Time::ZERO, leave("a", 7)).is_empty());
    assert_eq!(status(&c, "a"), (MemberStatus::Left, 7));
}

#[test]
fn non_alive_updates_about_unknown_members_are_ignored() {
    let mut c = core();
    for u in [suspect("z", 1, "x"), confirm("z", 1, "x"), leave("z", 1)] {
        assert!(apply(&mut c, Time::ZERO, u).is_empty());
        assert!(c.member(&name("z")).is_none());
    }
}

// ---- about this node ----

#[test]
fn suspicion_of_self_is_refuted_above_the_claim() {
    let mut c = core();
    apply(&mut c, Time::ZERO, suspect("me", 0, "x"));
    assert_eq!(c.incarnation(), 1);
    // Stale claims are ignored.
    apply(&mut c, Time::ZERO, suspect("me", 0, "x"));
    assert_eq!(c.incarnation(), 1);
    assert_eq!(c.metrics().refutations, 1);
    assert!(c.metrics().health_multiplier >= 1, "refuting raises the local health multiplier");
    // The refutation is queued for dissemination.
    assert!(matches!(c.queue.transmits(&c.self_slot), Some(0)));
}

#[test]
fn restarted_node_jumps_above_its_death() {
    let mut c = core();
    assert_eq!(c.incarnation(), 0);
    apply(&mut c, Time::ZERO, confirm("me", 5, "x"));
    assert_eq!(c.incarnation(), 6);
    assert_eq!(c.member(&name("me")).unwrap().status, MemberStatus::Alive, "never declares itself dead");
}

#[test]
fn alive_about_self_refuted_when_newer_or_different() {
    let mut c = core();
    apply(&mut c, Time::ZERO, alive("me", 1, 0));
    assert_eq!(c.incarnation(), 0, "same incarnation, same data");
    apply(&mut c, Time::ZERO, alive("me", 9, 0));
    assert_eq!(c.incarnation(), 1, "same incarnation, another address");
    apply(&mut c, Time::ZERO, alive("me", 1, 4));
    assert_eq!(c.incarnation(), 5);
}

#[test]
fn leave_about_running_self_is_refuted_but_not_after_leaving() {
    let mut c = core();
    apply(&mut c, Time::ZERO, leave("me", 0));
    assert_eq!(c.incarnation(), 1);
    c.leave(Time::ZERO);
    apply(&mut c, Time::ZERO, suspect("me", 3, "x"));
    apply(&mut c, Time::ZERO, confirm("me", 3, "x"));
    assert_eq!(c.incarnation(), 1);
    assert_eq!(c.member(&name("me")).unwrap().status, MemberStatus::Left);
    assert!(c.has_left(), "nobody else alive: done at once");
}

#[test]
fn rejoin_bumps_above_anything_seen() {
    let mut c = core();
    c.leave(Time::ZERO);
    apply(&mut c, Time::ZERO, confirm("me", 41, "x"));
    c.rejoin(Time::from_secs(1), &[addr(9)]);
    assert_eq!(c.incarnation(), 42);
    assert_eq!(c.member(&name("me")).unwrap().status, MemberStatus::Alive);
    let out = drain(&mut c);
    assert!(out.iter().any(|o| matches!(o, Output::PushPull { to, .. } if *to == addr(9))));
}

#[test]
fn set_metadata_raises_incarnation_and_gossips() {
    let mut c = core();
    let mut meta = Metadata::new();
    meta.insert("zone", b"a".to_vec()).unwrap();
    c.set_metadata(Time::ZERO, meta.clone());
    assert_eq!(c.incarnation(), 1);
    assert_eq!(c.member(&name("me")).unwrap().metadata, meta);
    assert_eq!(c.queue.transmits(&c.self_slot), Some(0));
}

#[test]
fn force_leave_marks_left() {
    let mut c = with_a(MemberStatus::Dead);
    assert!(c.force_leave(Time::ZERO, &name("a")));
    assert_eq!(status(&c, "a").0, MemberStatus::Left);
    assert!(!c.force_leave(Time::ZERO, &name("nobody")));
}

// ---- datagrams ----

#[test]
fn garbage_is_counted_not_fatal() {
    let mut c = core();
    c.handle_datagram(Time::ZERO, addr(2), b"not a frame");
    c.handle_datagram(Time::ZERO, addr(2), &[]);
    let other = FrameCodec::new(ClusterLabel::new("other").unwrap());
    let mut buf = BytesMut::new();
    other.encode(&Packet::new(Message::Gossip), &mut buf).unwrap();
    c.handle_datagram(Time::ZERO, addr(2), &buf);
    assert_eq!(c.metrics().rejected, 3);
    assert!(c.handle_push_pull_request(Time::ZERO, addr(2), b"junk").is_none());
    assert_eq!(c.metrics().rejected, 4);
}

#[test]
fn a_flood_from_another_cluster_is_warned_about_once_per_interval() {
    let mut c = core();
    let other = FrameCodec::new(ClusterLabel::new("other").unwrap());
    let mut buf = BytesMut::new();
    other.encode(&Packet::new(Message::Gossip), &mut buf).unwrap();
    for i in 0..100u64 {
        c.handle_datagram(Time::from_millis(i), addr(2), &buf);
    }
    assert_eq!(c.metrics().rejected, 100);
    assert_eq!(c.refusal_warned_at, Some(Time::ZERO), "only the first refusal was warned about");
    assert_eq!(c.refusals_suppressed, 99);
    c.handle_datagram(crate::REFUSAL_WARN_INTERVAL, addr(2), &buf);
    assert_eq!(c.refusal_warned_at, Some(crate::REFUSAL_WARN_INTERVAL), "warned again after the interval");
    assert_eq!(c.refusals_suppressed, 0, "the warning reported and reset the suppressed count");
    // Plain garbage is never a warning and never counted as suppressed.
    c.handle_datagram(crate::REFUSAL_WARN_INTERVAL * 3, addr(2), b"not a frame");
    assert_eq!(c.refusal_warned_at, Some(crate::REFUSAL_WARN_INTERVAL));
    assert_eq!(c.refusals_suppressed, 0);
}

#[test]
fn ping_is_acked_with_piggyback_and_wrong_target_ignored() {
    let mut c = with_a(MemberStatus::Alive);
    let ping = Packet::new(Message::Ping(Ping { seq: 9, target: name("me"), from: id("a", 2) }));
    c.handle_datagram(Time::ZERO, addr(2), &frame(&ping));
    let sent = decode_datagrams(&drain(&mut c));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, addr(2));
    assert_eq!(sent[0].1.message, Message::Ack(Ack { seq: 9, from: name("me") }));
    assert!(!sent[0].1.updates.is_empty(), "queued updates ride along");
    let wrong = Packet::new(Message::Ping(Ping { seq: 9, target: name("other"), from: id("a", 2) }));
    c.handle_datagram(Time::ZERO, addr(2), &frame(&wrong));
    assert!(decode_datagrams(&drain(&mut c)).is_empty());
}

// ---- timers ----

fn periodic(outputs: &[Output], task: Periodic) -> Option<(Time, Timer)> {
    timers(outputs).into_iter().find(|(_, t)| matches!(t.0, TimerKind::Periodic { task: k, .. } if k == task))
}

fn fresh_with_timers() -> (Core, Vec<Output>) {
    let mut c = Swim::new(id("me", 1), Config::lan(), codec(), ChaCha8Rng::seed_from_u64(1), Time::ZERO).unwrap();
    let out = drain(&mut c);
    (c, out)
}

#[test]
fn new_requests_every_periodic_timer() {
    let (_, out) = fresh_with_timers();
    for task in Periodic::ALL {
        assert!(periodic(&out, task).is_some(), "{task:?}");
    }
}

#[test]
fn periodic_timer_twice_or_early_is_harmless() {
    let (mut c, out) = fresh_with_timers();
    let (at, timer) = periodic(&out, Periodic::Probe).unwrap();
    // Early: the same timer is requested again for the same time.
    c.handle_timer(at.saturating_sub(Duration::from_millis(1)).min(at), timer.clone());
    let early = drain(&mut c);
    if at > Time::ZERO {
        assert_eq!(timers(&early), vec![(at, timer.clone())]);
    }
    c.handle_timer(at, timer.clone());
    let first = drain(&mut c);
    let (next_at, _) = periodic(&first, Periodic::Probe).expect("re-armed");
    assert_eq!(next_at, at + Duration::from_secs(1));
    // Twice: ignored.
    c.handle_timer(at + Duration::from_secs(5), timer);
    assert!(drain(&mut c).is_empty());
}

#[test]
fn idle_gossip_timer_sleeps_and_wakes_on_its_old_schedule() {
    let (mut c, out) = fresh_with_timers();
    apply(&mut c, Time::ZERO, alive("a", 2, 0));
    let interval = Config::lan().gossip_interval;
    // Gossip until the queue is empty: the last tick re-arms nothing.
    let (mut at, mut timer) = periodic(&out, Periodic::Gossip).unwrap();
    let mut ticks = 0;
    let skipped = loop {
        c.handle_timer(at, timer);
        ticks += 1;
        assert!(ticks < 100, "the queue never drained");
        match periodic(&drain(&mut c), Periodic::Gossip) {
            Some((next, t)) => {
                assert_eq!(next, at + interval, "on schedule while there is something to send");
                (at, timer) = (next, t);
            }
            None => break at + interval,
        }
    };
    assert_eq!(c.metrics().queued_updates, 0);
    // Inputs that queue nothing leave it asleep.
    let probe = Message::Ping(Ping { seq: 7, target: name("me"), from: id("a", 2) });
    c.handle_datagram(skipped + interval, addr(2), &frame(&Packet::new(probe)));
    assert!(periodic(&drain(&mut c), Periodic::Gossip).is_none());
    // Something queued between two ticks of the old schedule: it wakes at the next one.
    let later = skipped + interval * 2 + interval / 2;
    let heard = Packet { message: Message::Gossip, updates: vec![alive("b", 3, 0)] };
    c.handle_datagram(later, addr(2), &frame(&heard));
    let (wake, timer) = periodic(&drain(&mut c), Periodic::Gossip).expect("woken");
    assert_eq!(wake, skipped + interval * 3);
    c.handle_timer(wake, timer);
    let sent = drain(&mut c);
    assert!(decode_datagrams(&sent).iter().any(|(_, p)| p.message == Message::Gossip), "it gossips at once");
    assert_eq!(periodic(&sent, Periodic::Gossip).map(|(t, _)| t), Some(wake + interval));
}

#[test]
fn gossip_queued_before_the_skipped_tick_waits_for_it() {
    let (mut c, out) = fresh_with_timers();
    let interval = Config::lan().gossip_interval;
    let (mut at, mut timer) = periodic(&out, Periodic::Gossip).unwrap();
    apply(&mut c, at, alive("a", 2, 0));
    let skipped = loop {
        c.handle_timer(at, timer);
        match periodic(&drain(&mut c), Periodic::Gossip) {
            Some(next) => (at, timer) = next,
            None => break at + interval,
        }
    };
    // Queued at the very instant of the last tick: the tick it skipped is still ahead.
    c.set_metadata(at, Metadata::new());
    assert_eq!(periodic(&drain(&mut c), Periodic::Gossip).map(|(t, _)| t), Some(skipped));
}

/// A core with members a, b, c, d whose probe timer fired once: returns
/// the core, the probed member's address and the outputs.
fn probing() -> (Core, SocketAddr, Vec<Output>, Time) {
    let (mut c, out) = fresh_with_timers();
    for (n, port) in [("a", 2), ("b", 3), ("c", 4), ("d", 5)] {
        apply(&mut c, Time::ZERO, alive(n, port, 0));
    }
    // Each pings this node from its own address: all four verified.
    for (n, port) in [("a", 2), ("b", 3), ("c", 4), ("d", 5)] {
        let ping = Packet::new(Message::Ping(Ping { seq: 1, target: name("me"), from: id(n, port) }));
        c.handle_datagram(Time::ZERO, addr(port), &frame(&ping));
    }
    assert_eq!(c.members.unverified(), 0);
    drain(&mut c);
    // Let the queued updates drain so packets are easy to read.
    let (at, timer) = periodic(&out, Periodic::Probe).unwrap();
    c.handle_timer(at, timer);
    let out = drain(&mut c);
    let sent = decode_datagrams(&out);
    let (to, packet) = sent.iter().find(|(_, p)| matches!(p.message, Message::Ping(_))).unwrap().clone();
    assert!(matches!(packet.message, Message::Ping(Ping { ref from, .. }) if from.name == name("me")));
    (c, to, out, at)
}

#[test]
fn probe_without_ack_goes_indirect_then_suspects() {
    let (mut c, target, out, start) = probing();
    let (timeout_at, timeout) =
        timers(&out).into_iter().find(|(_, t)| matches!(t.0, TimerKind::ProbeTimeout { .. })).unwrap();
    assert_eq!(timeout_at, start + Duration::from_millis(500));
    c.handle_timer(timeout_at, timeout.clone());
    // The stream ping first; the indirect probes wait 50 ms for it
    // (`lan` timings), and go out when it has not answered by then.
    let out1 = drain(&mut c);
    assert!(decode_datagrams(&out1).is_empty(), "no ping-req yet");
    assert!(c.poll_stream_ping().is_some());
    let (wait_at, wait) =
        timers(&out1).into_iter().find(|(_, t)| matches!(t.0, TimerKind::ProbeTimeout { .. })).unwrap();
    assert_eq!(wait_at, timeout_at + Duration::from_millis(50));
    c.handle_timer(wait_at, wait);
    let out2 = drain(&mut c);
    let reqs: Vec<_> =
        decode_datagrams(&out2).into_iter().filter(|(_, p)| matches!(p.message, Message::PingReq(_))).collect();
    assert_eq!(reqs.len(), 3, "indirect_checks relays");
    assert!(reqs.iter().all(|(to, _)| *to != target && *to != addr(1)));
    // The same timeout again: stale.
    c.handle_timer(timeout_at, timeout);
    assert!(decode_datagrams(&drain(&mut c)).is_empty());
    // Period ends with no ack and no nack: suspect, and health worsens by
    // the 3 missing nacks.
    let (next_at, next) = periodic(&out, Periodic::Probe).unwrap();
    c.handle_timer(next_at, next);
    let target_member = c.members().find(|m| m.id.addr == target).unwrap().clone();
    assert_eq!(target_member.status, MemberStatus::Suspect);
    assert_eq!(c.metrics().health_multiplier, 3);
    assert_eq!(c.metrics().suspicions, 1);
}

#[test]
fn acked_probe_keeps_target_alive_and_improves_health() {
    let (mut c, target, out, _) = probing();
    c.awareness.apply(2);
    let sent = decode_datagrams(&out);
    let Message::Ping(ping) = &sent.iter().find(|(to, _)| *to == target).unwrap().1.message else { panic!() };
    let ack = Packet::new(Message::Ack(Ack { seq: ping.seq, from: ping.target.clone() }));
    c.handle_datagram(Time::from_millis(10), target, &frame(&ack));
    // A duplicate ack changes nothing more.
    c.handle_datagram(Time::from_millis(11), target, &frame(&ack));
    assert_eq!(c.metrics().health_multiplier, 1);
    let (timeout_at, timeout) =
        timers(&out).into_iter().find(|(_, t)| matches!(t.0, TimerKind::ProbeTimeout { .. })).unwrap();
    drain(&mut c);
    c.handle_timer(timeout_at, timeout);
    assert!(decode_datagrams(&drain(&mut c)).is_empty(), "no indirect probe after an ack");
    let (next_at, next) = periodic(&out, Periodic::Probe).unwrap();
    c.handle_timer(next_at, next);
    assert!(c.members().all(|m| m.status == MemberStatus::Alive));
}

#[test]
fn buddy_system_tells_the_suspect_first() {
    let mut c = core();
    apply(&mut c, Time::ZERO, alive("a", 2, 0));
    apply(&mut c, Time::ZERO, suspect("a", 0, "x"));
    // Fill the queue with unrelated updates.
    for i in 0..50 {
        apply(&mut c, Time::ZERO, leave(&format!("q{i}"), 0));
        apply(&mut c, Time::ZERO, alive(&format!("q{i}"), 100 + i, 0));
    }
    drain(&mut c);
    // Probe round-robin until it is a's turn (once per round of 51).
    let ping = (1..=60)
        .find_map(|s| {
            c.probe_period(Time::from_secs(s));
            decode_datagrams(&drain(&mut c)).into_iter().find(|(to, _)| *to == addr(2)).map(|(_, p)| p)
        })
        .expect("a probed within one round");
    assert!(matches!(ping.message, Message::Ping(_)));
    assert_eq!(ping.updates[0], suspect("a", 0, "me"));
}

#[test]
fn suspicion_timer_expires_into_dead_and_stale_ones_are_ignored() {
    let mut c = core();
    apply(&mut c, Time::ZERO, alive("a", 2, 0));
    c.apply_update(Time::ZERO, suspect("a", 0, "x"));
    // As if this node's own probe of it had failed too (first-hand; see
    // `a_member_only_heard_accused_is_probed_before_it_is_declared`).
    let slot = c.members.find(&name("a")).unwrap();
    c.suspicions.get_mut(&slot).unwrap().first_hand = true;
    let out = drain(&mut c);
    let (at, timer) = timers(&out).into_iter().find(|(_, t)| matches!(t.0, TimerKind::Suspicion { .. })).unwrap();
    // Two members: no confirmations expected, minimum timeout 4 × 1 s.
    assert_eq!(at, Time::from_secs(4));
    // Early: re-armed, still suspect.
    c.handle_timer(Time::from_secs(1), timer.clone());
    assert_eq!(timers(&drain(&mut c)), vec![(at, timer.clone())]);
    assert_eq!(status(&c, "a").0, MemberStatus::Suspect);
    c.handle_timer(at, timer.clone());
    let ev = events(&drain(&mut c));
    assert!(matches!(&ev[..], [Event::MemberFailed(_)]));
    assert_eq!(c.death(&name("a")).unwrap().by, name("me"));
    // Delivered twice: nothing.
    c.handle_timer(at, timer);
    assert!(drain(&mut c).is_empty());
}

/// Issue #19: a node that only heard a member accused (no probe of its
/// own failed) probes it before declaring it dead; if it answers, it is
/// not declared, and its answer carries the refutation the node missed.
/// One whose own probe failed declares at the deadline as before.
#[test]
fn a_member_only_heard_accused_is_probed_before_it_is_declared() {
    let mut c = core();
    c.config.probe_before_declaring = true;
    apply(&mut c, Time::ZERO, alive("a", 2, 0));
    apply(&mut c, Time::ZERO, suspect("a", 0, "x"));
    let slot = c.members.find(&name("a")).unwrap();
    let (at, id) = (c.suspicions[&slot].deadline, c.suspicions[&slot].id);
    drain(&mut c);
    c.handle_timer(at, Timer(TimerKind::Suspicion { slot, id }));
    assert_eq!(status(&c, "a").0, MemberStatus::Suspect, "put off: no first-hand evidence");
    assert_eq!(c.metrics().suspicions_put_off, 1);
    let later = c.suspicions[&slot].deadline;
    assert_eq!(later, at + Duration::from_secs(2));
    // It is the next member probed, with the suspicion first in the ping.
    c.probe_period(at);
    let sent = decode_datagrams(&drain(&mut c));
    let (to, ping) = sent.iter().find(|(_, p)| matches!(p.message, Message::Ping(_))).expect("a ping");
    assert_eq!(*to, addr(2));
    assert_eq!(ping.updates[0], suspect("a", 0, "me"));
    let Message::Ping(ping) = &ping.message else { unreachable!() };
    // It answers: not declared at the new deadline either.
    c.handle_datagram(at, addr(2), &frame(&Packet::new(Message::Ack(Ack { seq: ping.seq, from: name("a") }))));
    c.handle_timer(later, Timer(TimerKind::Suspicion { slot, id }));
    assert_eq!(status(&c, "a").0, MemberStatus::Suspect, "it answered our probe");
    // Silent this time: our own probe fails, then it is declared.
    let again = c.suspicions[&slot].deadline;
    c.probe_period(later);
    drain(&mut c);
    c.probe_period(later + Duration::from_secs(1));
    assert!(c.suspicions[&slot].first_hand);
    c.handle_timer(again, Timer(TimerKind::Suspicion { slot, id }));
    assert_eq!(status(&c, "a").0, MemberStatus::Dead);
}

/// Issue #19: a member that already refuted a claim answers old news about
/// itself (a probe carrying a stale suspicion) with its `Alive` again.
#[test]
fn a_stale_claim_about_this_node_is_answered_with_its_alive() {
    let mut c = core();
    apply(&mut c, Time::ZERO, alive("a", 2, 0));
    apply(&mut c, Time::ZERO, suspect("me", 0, "a"));
    assert_eq!(c.incarnation(), 1);
    // Its refutation goes out and is done with.
    for i in 0..100 {
        c.gossip(Time::from_millis(200 * i));
    }
    drain(&mut c);
    assert!(c.queue.is_empty());
    apply(&mut c, Time::from_secs(30), suspect("me", 0, "b"));
    assert_eq!(c.incarnation(), 1, "old news: no new incarnation");
    c.on_ping(Time::from_secs(30), addr(2), Ping { seq: 9, target: name("me"), from: id("a", 2) });
    let sent = decode_datagrams(&drain(&mut c));
    let (_, ack) = sent.iter().find(|(_, p)| matches!(p.message, Message::Ack(_))).expect("an ack");
    assert!(ack
        .updates
        .iter()
        .any(|u| matches!(u, Update::Alive(a) if a.node.name == name("me") && a.incarnation == 1)));
}

#[test]
fn refuted_suspicion_timer_is_stale() {
    let mut c = core();
    apply(&mut c, Time::ZERO, alive("a", 2, 0));
    c.apply_update(Time::ZERO, suspect("a", 0, "x"));
    let out = drain(&mut c);
    let (at, timer) = timers(&out).into_iter().find(|(_, t)| matches!(t.0, TimerKind::Suspicion { .. })).unwrap();
    apply(&mut c, Time::from_secs(1), alive("a", 2, 1));
    c.handle_timer(at, timer);
    assert_eq!(status(&c, "a"), (MemberStatus::Alive, 1));
}

#[test]
fn relay_forwards_ack_or_nacks() {
    let mut c = with_a(MemberStatus::Alive);
    let req = Packet::new(Message::PingReq(PingReq { seq: 77, target: id("t", 9), from: id("a", 2) }));
    c.handle_datagram(Time::ZERO, addr(2), &frame(&req));
    let out = drain(&mut c);
    let sent = decode_datagrams(&out);
    let Message::Ping(ping) = &sent.iter().find(|(to, _)| *to == addr(9)).unwrap().1.message else { panic!() };
    assert_eq!(ping.target, name("t"));
    let (at, timer) = timers(&out).into_iter().find(|(_, t)| matches!(t.0, TimerKind::Relay { .. })).unwrap();
    assert_eq!(at, Time::from_millis(400));
    c.handle_timer(at, timer.clone());
    let nack = decode_datagrams(&drain(&mut c));
    assert_eq!(nack.len(), 1);
    assert_eq!(nack[0].0, addr(2));
    assert!(matches!(nack[0].1.message, Message::Nack(ref n) if n.seq == 77));
    c.handle_timer(at, timer);
    assert!(drain(&mut c).is_empty(), "nack sent once");

    // Second relay: the target answers in time.
    c.handle_datagram(Time::from_secs(1), addr(2), &frame(&req));
    let sent = decode_datagrams(&drain(&mut c));
    let Message::Ping(ping) = &sent.iter().find(|(to, _)| *to == addr(9)).unwrap().1.message else { panic!() };
    let ack = Packet::new(Message::Ack(Ack { seq: ping.seq, from: name("t") }));
    c.handle_datagram(Time::from_secs(1), addr(9), &frame(&ack));
    let fwd = decode_datagrams(&drain(&mut c));
    assert_eq!(fwd.len(), 1);
    assert_eq!(fwd[0].1.message, Message::Ack(Ack { seq: 77, from: name("t") }));
}

#[test]
fn reconnect_timer_reaches_dead_members_and_seeds() {
    let (mut c, out) = fresh_with_timers();
    c.join(Time::ZERO, &[addr(50)]);
    apply(&mut c, Time::ZERO, alive("a", 2, 0));
    apply(&mut c, Time::ZERO, confirm("a", 0, "x"));
    drain(&mut c);
    let (at, timer) = periodic(&out, Periodic::Reconnect).unwrap();
    c.handle_timer(at, timer);
    let out = drain(&mut c);
    let push_pulls = |out: &[Output]| -> Vec<SocketAddr> {
        out.iter().filter_map(|o| if let Output::PushPull { to, .. } = o { Some(*to) } else { None }).collect()
    };
    assert_eq!(push_pulls(&out), vec![addr(50)], "alone: seed retried");
    assert!(periodic(&out, Periodic::Reconnect).is_some());
    // The dead member is pinged; when it answers, state is exchanged.
    let sent = decode_datagrams(&out);
    let Some((_, Packet { message: Message::Ping(ping), .. })) = sent.iter().find(|(to, _)| *to == addr(2)) else {
        panic!("dead member not pinged: {sent:?}")
    };
    assert_eq!(ping.target, name("a"));
    let ack = Packet::new(Message::Ack(Ack { seq: ping.seq, from: name("a") }));
    c.handle_datagram(at, addr(2), &frame(&ack));
    assert_eq!(push_pulls(&drain(&mut c)), vec![addr(2)]);
    // A second ack is not a reason for a second exchange.
    c.handle_datagram(at, addr(2), &frame(&ack));
    assert!(push_pulls(&drain(&mut c)).is_empty());
}

#[test]
fn dead_members_are_forgotten_after_retention() {
    let (mut c, _) = fresh_with_timers();
    apply(&mut c, Time::ZERO, alive("a", 2, 0));
    apply(&mut c, Time::ZERO, confirm("a", 0, "x"));
    let later = Time::ZERO + c.config.dead_retention + Duration::from_secs(1);
    c.reconnect(later);
    assert!(c.member(&name("a")).is_none());
    assert_eq!(c.members().count(), 1);
}

#[test]
fn push_pull_merges_by_precedence() {
    let mut a = core();
    let mut b = Swim::new(id("b", 2), Config::lan(), codec(), ChaCha8Rng::seed_from_u64(2), Time::ZERO).unwrap();
    apply(&mut a, Time::ZERO, alive("x", 7, 3));
    apply(&mut a, Time::ZERO, confirm("x", 3, "me"));
    apply(&mut b, Time::ZERO, alive("x", 7, 3));
    apply(&mut b, Time::ZERO, alive("me", 1, 0));
    a.join(Time::ZERO, &[addr(2)]);
    let request = drain(&mut a)
        .into_iter()
        .find_map(|o| if let Output::PushPull { request, .. } = o { Some(request) } else { None })
        .unwrap();
    let response = b.handle_push_pull_request(Time::ZERO, addr(1), &request).unwrap();
    // b heard "x dead": it only suspects x (a chance to refute).
    assert_eq!(status(&b, "x"), (MemberStatus::Suspect, 3));
    a.handle_push_pull_response(Time::ZERO, addr(2), &response);
    assert_eq!(status(&a, "b").0, MemberStatus::Alive);
    assert_eq!(status(&a, "x"), (MemberStatus::Dead, 3));
}

// ---- signals: the feed for the heal layer ----

fn signals(core: &mut Core) -> Vec<Signal> {
    std::iter::from_fn(|| core.poll_signal()).collect()
}

/// A core with signals on that knows `a`..`d` (ports 2..5) alive.
fn signalling() -> Core {
    let mut c = core();
    c.set_signals(true);
    for (i, n) in ["a", "b", "c", "d"].iter().enumerate() {
        apply(&mut c, Time::ZERO, alive(n, 2 + i as u16, 1));
    }
    signals(&mut c);
    c
}

fn stream_codec() -> FrameCodec {
    codec().with_max_frame_len(DEFAULT_MAX_STREAM_FRAME).unwrap()
}

fn state(n: &str, port: u16, status: MemberStatus) -> MemberState {
    MemberState { node: id(n, port), incarnation: 1, status, metadata: Metadata::new() }
}

/// A push-pull request frame carrying `members` (the sender first).
fn push_pull_frame(members: Vec<MemberState>) -> Vec<u8> {
    let message = Message::PushPullRequest(PushPull { join: false, members, app_state: Vec::new(), user_ltime: 0 });
    let mut buf = BytesMut::new();
    stream_codec().encode(&Packet::new(message), &mut buf).unwrap();
    buf.to_vec()
}

fn decode_state(frame: &[u8]) -> PushPull {
    match stream_codec().decode(frame).unwrap().message {
        Message::PushPullRequest(state) | Message::PushPullResponse(state) => state,
        other => panic!("{other:?}"),
    }
}

fn remote_views(signals: &[Signal]) -> Vec<(NodeId, Vec<MemberState>)> {
    signals
        .iter()
        .filter_map(|s| match s {
            Signal::RemoteView { from, members } => Some((from.clone(), members.to_vec())),
            _ => None,
        })
        .collect()
}

#[test]
fn signals_are_off_by_default_and_copy_events_in_order() {
    let mut c = core();
    apply(&mut c, Time::ZERO, alive("a", 2, 0));
    apply(&mut c, Time::ZERO, suspect("me", 0, "a"));
    assert_eq!(c.poll_signal(), None, "off: nothing recorded");
    c.set_signals(true);
    let evs = apply(&mut c, Time::ZERO, confirm("a", 0, "x"));
    let got = signals(&mut c);
    assert_eq!(got[0], Signal::Member(evs[0].clone()));
    assert_eq!(got[1], Signal::DeathConfirmed { member: id("a", 2), incarnation: 0, by: name("x") });
    assert_eq!(got.len(), 2);
    apply(&mut c, Time::ZERO, alive("b", 3, 0));
    c.set_signals(false);
    assert_eq!(c.poll_signal(), None, "turning off drops the backlog");
}

#[test]
fn every_distinct_confirmer_is_recorded_up_to_the_bound() {
    let mut c = signalling();
    apply(&mut c, Time::ZERO, confirm("a", 1, "x"));
    apply(&mut c, Time::ZERO, confirm("a", 1, "x"));
    apply(&mut c, Time::ZERO, confirm("a", 0, "stale"));
    apply(&mut c, Time::ZERO, confirm("a", 2, "y"));
    let death = c.death(&name("a")).unwrap().clone();
    assert_eq!((death.by.clone(), death.confirmers.clone()), (name("x"), vec![name("x"), name("y")]));
    assert_eq!(status(&c, "a"), (MemberStatus::Dead, 2));
    let by: Vec<NodeName> = signals(&mut c)
        .into_iter()
        .filter_map(|s| if let Signal::DeathConfirmed { by, .. } = s { Some(by) } else { None })
        .collect();
    assert_eq!(by, vec![name("x"), name("y")], "one signal per new confirmer");
    for i in 0..40 {
        apply(&mut c, Time::ZERO, confirm("a", 2, &format!("n{i}")));
    }
    assert_eq!(c.death(&name("a")).unwrap().confirmers.len(), Death::MAX_CONFIRMERS);
    assert_eq!(signals(&mut c).len(), Death::MAX_CONFIRMERS - 2);
    // Coming back clears the record; a new death starts a new one.
    apply(&mut c, Time::ZERO, alive("a", 2, 3));
    assert!(c.death(&name("a")).is_none());
    apply(&mut c, Time::ZERO, confirm("a", 3, "z"));
    assert_eq!(c.death(&name("a")).unwrap().confirmers, vec![name("z")]);
}

#[test]
fn refuted_claims_are_signalled_with_their_kind() {
    let mut c = signalling();
    let refuted = |c: &mut Core| -> Vec<(u64, RefutedClaim)> {
        signals(c)
            .into_iter()
            .filter_map(
                |s| if let Signal::Refuted { incarnation, claim } = s { Some((incarnation, claim)) } else { None },
            )
            .collect()
    };
    apply(&mut c, Time::ZERO, suspect("me", 0, "a"));
    assert_eq!(refuted(&mut c), vec![(1, RefutedClaim::Suspect)]);
    apply(&mut c, Time::ZERO, confirm("me", 1, "a"));
    assert_eq!(refuted(&mut c), vec![(2, RefutedClaim::Dead)]);
    apply(&mut c, Time::ZERO, leave("me", 2));
    assert_eq!(refuted(&mut c), vec![(3, RefutedClaim::Left)]);
    apply(&mut c, Time::ZERO, alive("me", 1, 7));
    assert_eq!(refuted(&mut c), vec![(8, RefutedClaim::Alive)]);
    apply(&mut c, Time::ZERO, suspect("me", 2, "a"));
    assert!(refuted(&mut c).is_empty(), "stale claims are not refuted");
    // A push-pull view holding this node dead is merged as a suspicion, but
    // reported as the death claim it is.
    let frame = push_pull_frame(vec![
        state("a", 2, MemberStatus::Alive),
        MemberState { node: id("me", 1), incarnation: 8, status: MemberStatus::Dead, metadata: Metadata::new() },
    ]);
    c.handle_push_pull_request(Time::ZERO, addr(40_000), &frame).unwrap();
    assert_eq!(refuted(&mut c), vec![(9, RefutedClaim::Dead)]);
    assert_eq!(c.metrics().refutations, 5);
}

#[test]
fn push_pull_lists_the_sender_first() {
    let mut c = signalling();
    // Free slot 1 and let another member take it, so slot order alone
    // would not put this node first by accident of history.
    apply(&mut c, Time::ZERO, leave("a", 1));
    assert!(c.remove(Time::ZERO, &name("a")));
    apply(&mut c, Time::ZERO, alive("e", 9, 1));
    c.push_pull(Time::ZERO, addr(3));
    let request = drain(&mut c)
        .into_iter()
        .find_map(|o| if let Output::PushPull { request, .. } = o { Some(request) } else { None })
        .unwrap();
    let request = decode_state(&request);
    assert_eq!(request.members[0].node, id("me", 1));
    assert_eq!(request.members.len(), 5);
    let response = c.handle_push_pull_request(Time::ZERO, addr(40_000), &push_pull_frame(vec![])).unwrap();
    assert_eq!(decode_state(&response).members[0].node, id("me", 1));
}

#[test]
fn push_pull_is_not_a_join() {
    let mut c = core();
    c.push_pull(Time::ZERO, addr(7));
    c.push_pull(Time::ZERO, addr(1));
    let out = drain(&mut c);
    let to: Vec<SocketAddr> =
        out.iter().filter_map(|o| if let Output::PushPull { to, .. } = o { Some(*to) } else { None }).collect();
    assert_eq!(to, vec![addr(7)], "never with itself");
    let Some(Output::PushPull { request, .. }) = out.iter().find(|o| matches!(o, Output::PushPull { .. })) else {
        unreachable!()
    };
    assert!(!decode_state(request).join);
    assert!(c.seeds.is_empty(), "the peer is not remembered as a seed");
    c.join(Time::ZERO, &[addr(7)]);
    assert_eq!(c.seeds, vec![addr(7)]);
}

#[test]
fn agreeing_views_are_not_copied() {
    let mut c = signalling();
    apply(&mut c, Time::ZERO, confirm("d", 1, "x"));
    signals(&mut c);
    // Same view, and a view lagging on one death (gossip lag): no copy.
    let same = vec![
        state("a", 2, MemberStatus::Alive),
        state("me", 1, MemberStatus::Alive),
        state("b", 3, MemberStatus::Alive),
        state("d", 5, MemberStatus::Dead),
    ];
    c.handle_push_pull_request(Time::ZERO, addr(40_000), &push_pull_frame(same)).unwrap();
    let lagging = vec![state("b", 3, MemberStatus::Alive), state("d", 5, MemberStatus::Alive)];
    c.handle_push_pull_request(Time::ZERO, addr(40_000), &push_pull_frame(lagging)).unwrap();
    assert!(remote_views(&signals(&mut c)).is_empty());
    // A fresh node joining: a view of itself alone.
    let fresh = vec![state("new", 30, MemberStatus::Alive)];
    c.handle_push_pull_request(Time::ZERO, addr(40_000), &push_pull_frame(fresh)).unwrap();
    assert!(remote_views(&signals(&mut c)).is_empty());
}

#[test]
fn a_view_from_across_a_cut_is_signalled_before_its_merge() {
    let mut c = signalling();
    apply(&mut c, Time::ZERO, confirm("c", 1, "a"));
    apply(&mut c, Time::ZERO, confirm("d", 1, "b"));
    signals(&mut c);
    // c's side: {c, d} alive, {me, a, b} dead. The sender comes first.
    let theirs = vec![
        state("c", 4, MemberStatus::Alive),
        state("d", 5, MemberStatus::Alive),
        state("me", 1, MemberStatus::Dead),
        state("a", 2, MemberStatus::Dead),
        state("b", 3, MemberStatus::Dead),
    ];
    c.handle_push_pull_request(Time::from_secs(5), addr(40_000), &push_pull_frame(theirs.clone())).unwrap();
    let got = signals(&mut c);
    let views = remote_views(&got);
    assert_eq!(views, vec![(id("c", 4), theirs)]);
    assert!(matches!(got[0], Signal::RemoteView { .. }), "before the merge's own signals: {got:?}");
    assert!(got.iter().any(|s| matches!(s, Signal::Refuted { claim: RefutedClaim::Dead, .. })));
    // The merge went ahead as usual: {a, b} now suspected here.
    assert_eq!(status(&c, "a").0, MemberStatus::Suspect);
}

#[test]
fn views_sharing_no_live_member_are_signalled() {
    let mut c = signalling();
    // Another cluster of three that never heard of us.
    let other = vec![
        state("x", 20, MemberStatus::Alive),
        state("y", 21, MemberStatus::Alive),
        state("z", 22, MemberStatus::Suspect),
    ];
    c.handle_push_pull_request(Time::ZERO, addr(40_000), &push_pull_frame(other)).unwrap();
    let views = remote_views(&signals(&mut c));
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].0, id("x", 20));
}

#[test]
fn remove_forgets_only_dead_and_left_members() {
    let mut c = signalling();
    apply(&mut c, Time::ZERO, confirm("a", 1, "x"));
    apply(&mut c, Time::ZERO, leave("b", 1));
    signals(&mut c);
    assert!(!c.remove(Time::ZERO, &name("c")), "alive members stay");
    assert!(!c.remove(Time::ZERO, &name("me")), "never itself");
    assert!(!c.remove(Time::ZERO, &name("nobody")));
    let a = c.members.find(&name("a")).unwrap();
    assert!(c.queue.transmits(&a).is_some(), "a's death is being disseminated");
    assert!(c.remove(Time::ZERO, &name("a")));
    assert!(c.remove(Time::ZERO, &name("b")));
    assert!(!c.remove(Time::ZERO, &name("a")), "already gone");
    assert!(c.member(&name("a")).is_none() && c.member(&name("b")).is_none());
    assert_eq!(c.queue.transmits(&a), None, "nothing more said about it");
    assert_eq!((c.metrics().dead, c.metrics().left, c.metrics().alive), (0, 0, 3));
    let removed: Vec<NodeName> = signals(&mut c)
        .into_iter()
        .filter_map(|s| if let Signal::MemberRemoved(m) = s { Some(m.id.name) } else { None })
        .collect();
    assert_eq!(removed, vec![name("a"), name("b")]);
    // Stale claims about a removed member are ignored; it comes back as new.
    assert!(apply(&mut c, Time::ZERO, confirm("a", 1, "x")).is_empty());
    let evs = apply(&mut c, Time::from_secs(9), alive("a", 2, 0));
    assert!(matches!(&evs[..], [Event::MemberJoined(m)] if m.id.name == name("a")), "{evs:?}");
}

#[test]
fn retention_reaps_with_a_signal_and_zero_keeps_forever() {
    for (retention, reaped) in [(Duration::from_secs(3600), true), (Duration::ZERO, false)] {
        let config = Config { dead_retention: retention, left_retention: retention, ..Config::lan() };
        let mut c = Swim::new(id("me", 1), config, codec(), ChaCha8Rng::seed_from_u64(1), Time::ZERO).unwrap();
        c.set_signals(true);
        apply(&mut c, Time::ZERO, alive("a", 2, 0));
        apply(&mut c, Time::ZERO, alive("b", 3, 0));
        apply(&mut c, Time::from_secs(10), confirm("a", 0, "x"));
        apply(&mut c, Time::from_secs(10), leave("b", 0));
        signals(&mut c);
        c.reconnect(Time::from_secs(3609));
        assert_eq!(c.members().count(), 3, "not yet");
        c.reconnect(Time::from_secs(100 * 86_400));
        let removed: Vec<NodeName> = signals(&mut c)
            .into_iter()
            .filter_map(|s| if let Signal::MemberRemoved(m) = s { Some(m.id.name) } else { None })
            .collect();
        if reaped {
            assert_eq!(removed, vec![name("a"), name("b")]);
            assert_eq!(c.members().count(), 1);
        } else {
            assert!(removed.is_empty(), "zero retention: never reaped");
            assert_eq!(c.members().count(), 3);
        }
    }
}

// ---- bounded evidence (issue #15) ----

#[test]
fn incarnations_above_the_ceiling_are_refused() {
    let mut c = with_a(MemberStatus::Alive);
    for update in
        [confirm("a", u64::MAX, "x"), suspect("a", u64::MAX, "x"), leave("a", u64::MAX), alive("a", 2, u64::MAX)]
    {
        assert!(apply(&mut c, Time::ZERO, update).is_empty());
    }
    assert_eq!(status(&c, "a"), (MemberStatus::Alive, 5));
    assert_eq!(c.metrics().incarnations_refused, 4);
    // About this node and about unknown members too.
    apply(&mut c, Time::ZERO, confirm("me", crate::MAX_INCARNATION + 1, "x"));
    assert_eq!(c.incarnation(), 0);
    apply(&mut c, Time::ZERO, alive("z", 9, u64::MAX));
    assert!(c.member(&name("z")).is_none());
}

#[test]
fn claims_beyond_the_window_are_clamped_and_forwarded_clamped() {
    let w = Config::lan().incarnation_window;
    let mut c = with_a(MemberStatus::Alive);
    apply(&mut c, Time::ZERO, confirm("a", crate::MAX_INCARNATION, "x"));
    assert_eq!(status(&c, "a"), (MemberStatus::Dead, 5 + w));
    assert_eq!(c.metrics().incarnations_clamped, 1);
    // What is queued for others is the clamped claim.
    c.gossip(Time::ZERO);
    let sent: Vec<Update> = decode_datagrams(&drain(&mut c)).into_iter().flat_map(|(_, p)| p.updates).collect();
    assert!(sent.iter().any(|u| matches!(u, Update::Confirm(c) if c.node == name("a") && c.incarnation == 5 + w)));
    assert!(sent.iter().all(|u| u.incarnation() <= 5 + w), "{sent:?}");
    // The refutation (one above the clamped claim) wins.
    let ev = apply(&mut c, Time::ZERO, alive("a", 2, 5 + w + 1));
    assert!(matches!(&ev[..], [Event::MemberRecovered(_)]));
    // An Alive gets twice the window; an unknown member counts from zero.
    apply(&mut c, Time::ZERO, alive("a", 2, u64::MAX / 2));
    assert_eq!(status(&c, "a"), (MemberStatus::Alive, 5 + w + 1 + 2 * w));
    apply(&mut c, Time::ZERO, suspect("a", 5 + w + 1 + 2 * w + w, "x"));
    assert_eq!(status(&c, "a"), (MemberStatus::Suspect, 5 + 4 * w + 1), "exactly at the window: not clamped");
    apply(&mut c, Time::ZERO, alive("z", 9, 10 * w));
    assert_eq!(status(&c, "z"), (MemberStatus::Alive, 2 * w));
    // About this node: refuted one above the clamped claim.
    apply(&mut c, Time::ZERO, confirm("me", u64::MAX / 2, "x"));
    assert_eq!(c.incarnation(), w + 1);
}

#[test]
fn an_exhausted_incarnation_is_reported_once_and_never_overflows() {
    let mut c = signalling();
    c.set_own_incarnation(crate::MAX_INCARNATION - 1, Time::ZERO);
    apply(&mut c, Time::ZERO, confirm("me", crate::MAX_INCARNATION - 1, "x"));
    assert_eq!(c.incarnation(), crate::MAX_INCARNATION, "refuted up to the ceiling");
    apply(&mut c, Time::ZERO, confirm("me", crate::MAX_INCARNATION, "x"));
    apply(&mut c, Time::ZERO, suspect("me", crate::MAX_INCARNATION, "x"));
    assert_eq!(c.incarnation(), crate::MAX_INCARNATION);
    let exhausted = signals(&mut c).iter().filter(|s| matches!(s, Signal::IncarnationExhausted { .. })).count();
    assert_eq!(exhausted, 1, "reported once");
    c.set_metadata(Time::ZERO, Metadata::new());
    c.leave(Time::ZERO);
    c.rejoin(Time::from_secs(1), &[addr(9)]);
    assert_eq!(c.incarnation(), crate::MAX_INCARNATION, "rejoin and set_metadata stop at the ceiling");
    assert_eq!(c.member(&name("me")).unwrap().status, MemberStatus::Alive);
}

#[test]
fn a_dead_member_may_move_but_a_live_one_never_does() {
    let mut c = with_a(MemberStatus::Suspect);
    assert!(apply(&mut c, Time::ZERO, alive("a", 3, 6)).is_empty(), "suspect: still held");
    assert_eq!(c.member(&name("a")).unwrap().id.addr, addr(2));
    // Dead or left: not before the reclaim time (a forged death then a
    // forged Alive elsewhere must not move a live member), then yes.
    let reclaim = Config::lan().dead_reclaim_time;
    let mut c = with_a(MemberStatus::Dead);
    assert!(apply(&mut c, reclaim - Duration::from_millis(1), alive("a", 3, 6)).is_empty());
    assert_eq!((c.member(&name("a")).unwrap().id.addr, c.metrics().name_conflicts), (addr(2), 1));
    let ev = apply(&mut c, reclaim, alive("a", 3, 6));
    assert!(matches!(&ev[..], [Event::MemberRecovered(m)] if m.id.addr == addr(3)));
    let mut c = with_a(MemberStatus::Left);
    assert!(apply(&mut c, Time::ZERO, alive("a", 4, 6)).is_empty());
    let ev = apply(&mut c, reclaim, alive("a", 4, 6));
    assert!(matches!(&ev[..], [Event::MemberJoined(m)] if m.id.addr == addr(4)));
    // At the old address, at once (a refutation).
    let mut c = with_a(MemberStatus::Dead);
    let ev = apply(&mut c, Time::ZERO, alive("a", 2, 6));
    assert!(matches!(&ev[..], [Event::MemberRecovered(_)]));
}

#[test]
fn a_joining_node_yields_its_taken_name_an_established_one_refutes() {
    // Joining: the answer to its own push-pull holds its name elsewhere.
    let mut c = core();
    c.set_signals(true);
    let response = push_pull_frame(vec![state("a", 2, MemberStatus::Alive), state("me", 5, MemberStatus::Alive)]);
    let response = {
        let mut state = decode_state(&response);
        state.members[1].incarnation = 3;
        let mut buf = BytesMut::new();
        let packet = Packet { message: Message::PushPullResponse(state), updates: Vec::new() };
        stream_codec().encode(&packet, &mut buf).unwrap();
        buf
    };
    c.handle_push_pull_response(Time::ZERO, addr(2), &response);
    let conflict = c.name_conflict().expect("yielded").clone();
    assert!(conflict.yielded);
    assert_eq!((conflict.existing, conflict.claimed, conflict.incarnation), (addr(1), addr(5), 3));
    assert_eq!(c.incarnation(), 0, "no refutation");
    assert!(signals(&mut c).iter().any(|s| matches!(s, Signal::NameConflict(n) if n.yielded)));
    // Established (it knows a live member): refutes and reports.
    let mut c = signalling();
    apply(&mut c, Time::ZERO, alive("a", 2, 0));
    signals(&mut c);
    c.handle_push_pull_response(Time::ZERO, addr(2), &response);
    assert!(c.name_conflict().is_none());
    assert_eq!(c.incarnation(), 4);
    assert!(signals(&mut c).iter().any(|s| matches!(s, Signal::NameConflict(n) if !n.yielded)));
    // A request (someone else's push-pull) never makes it yield.
    let mut c = signalling();
    let request = push_pull_frame(vec![state("me", 5, MemberStatus::Alive)]);
    c.handle_push_pull_request(Time::ZERO, addr(5), &request).unwrap();
    assert!(c.name_conflict().is_none());
    assert_eq!(c.incarnation(), 2, "refuted above the claim (at 1)");
}

#[test]
fn user_times_far_ahead_are_refused_and_never_witnessed() {
    let mut c = core();
    let w = c.config.user_ltime_window;
    let item = |version| {
        Update::User(gossamer_wire::UserBroadcast {
            origin: name("a"),
            key: gossamer_wire::UserKey::new("k").unwrap(),
            version,
            payload: Vec::new(),
        })
    };
    for version in [u64::MAX, crate::MAX_LTIME + 1, w + 1] {
        c.apply_update(Time::ZERO, item(version));
    }
    // Above the ceiling: ignored; one past the window: refused, the clock
    // (what this node stamps) unmoved, the horizon one window further.
    assert_eq!((c.metrics().user_ltime, c.metrics().user_items_too_new), (0, 3));
    assert!(drain(&mut c).iter().all(|o| !matches!(o, Output::User(_))), "none delivered");
    c.apply_update(Time::ZERO, item(2 * w));
    assert_eq!(c.metrics().user_ltime, 2 * w, "at the window's edge: accepted");
    assert!(drain(&mut c).iter().any(|o| matches!(o, Output::User(_))));
    assert_eq!(c.broadcast(Time::ZERO, "k", b"x".to_vec()).unwrap(), 2 * w + 1);
}

// ---- the stream fallback of a probe (issue #16, see `probe`) ----

/// The core probing with its direct probe timed out: the stream ping it
/// hands the driver, if any.
fn direct_probe_timed_out(c: &mut Core, out: &[Output]) -> Option<crate::StreamPing> {
    let (timeout_at, timeout) =
        timers(out).into_iter().find(|(_, t)| matches!(t.0, TimerKind::ProbeTimeout { .. })).unwrap();
    assert_eq!(c.poll_stream_ping(), None, "nothing before the direct probe times out");
    c.handle_timer(timeout_at, timeout);
    drain(c);
    c.poll_stream_ping()
}

#[test]
fn a_timed_out_probe_pings_over_a_stream_whose_ack_prevents_the_suspicion() {
    let (mut c, target, out, start) = probing();
    let ping = direct_probe_timed_out(&mut c, &out).expect("a stream ping once the direct probe timed out");
    assert_eq!(c.poll_stream_ping(), None, "handed out once");
    assert_eq!((ping.to, ping.deadline), (target, start + Config::lan().probe_interval));
    let Message::Ping(request) = codec().decode(&ping.request).unwrap().message else { panic!("not a ping") };
    let target_name = c.members().find(|m| m.id.addr == target).unwrap().id.name.clone();
    assert_eq!(request.target, target_name);
    // The target's own core answers it as a stream request.
    let mut peer = Swim::new(
        NodeId::new(target_name.clone(), target),
        Config::lan(),
        codec(),
        ChaCha8Rng::seed_from_u64(2),
        Time::ZERO,
    )
    .unwrap();
    let ack = peer.handle_stream_request(start, addr(1), &ping.request).expect("the target acks a stream ping");
    assert!(matches!(codec().decode(&ack).unwrap().message, Message::Ack(Ack { seq, .. }) if seq == request.seq));
    // A ping for another node is not acked.
    let mut stranger = Swim::new(id("x", 9), Config::lan(), codec(), ChaCha8Rng::seed_from_u64(3), Time::ZERO).unwrap();
    assert_eq!(stranger.handle_stream_request(start, addr(1), &ping.request), None);
    // The ack over the stream stands for the lost datagrams: no suspicion.
    c.handle_stream_ping_response(start + Duration::from_millis(700), target, &ack);
    let (next_at, next) = periodic(&out, Periodic::Probe).unwrap();
    c.handle_timer(next_at, next);
    assert!(c.members().all(|m| m.status == MemberStatus::Alive));
    let m = c.metrics();
    assert_eq!((m.suspicions, m.stream_pings, m.stream_ping_acks), (0, 1, 1));
}

#[test]
fn without_the_fallback_or_its_ack_the_probe_fails_as_before() {
    // The fallback's ack from another address, or after the period, is not the target's ack.
    let (mut c, target, out, start) = probing();
    let ping = direct_probe_timed_out(&mut c, &out).unwrap();
    let target_name = c.members().find(|m| m.id.addr == target).unwrap().id.name.clone();
    let mut peer =
        Swim::new(NodeId::new(target_name, target), Config::lan(), codec(), ChaCha8Rng::seed_from_u64(2), start)
            .unwrap();
    let ack = peer.handle_stream_request(start, addr(1), &ping.request).unwrap();
    c.handle_stream_ping_response(start + Duration::from_millis(700), addr(99), &ack);
    c.stream_ping_failed(start, target);
    let (next_at, next) = periodic(&out, Periodic::Probe).unwrap();
    c.handle_timer(next_at, next);
    c.handle_stream_ping_response(next_at, target, &ack);
    let m = c.metrics();
    assert_eq!((m.suspicions, m.stream_ping_acks, m.stream_ping_failures), (1, 0, 1));
    assert_eq!(c.members().find(|m| m.id.addr == target).unwrap().status, MemberStatus::Suspect);

    // Disabled: no stream ping at all.
    let (mut c, _, out, _) = probing();
    c.config.stream_pings = false;
    assert_eq!(direct_probe_timed_out(&mut c, &out), None);
}

/// Runs `c`'s timers in time order (a tiny event loop) until `n` more
/// direct probes of unverified members have timed out; for each, the
/// stream ping handed out, if any, goes to `fate` (which answers or fails
/// it). Returns how many of the `n` got a stream ping. Those of verified
/// members are answered and not counted.
fn stream_pings_over(
    c: &mut Core,
    pending: &mut Vec<(Time, Timer)>,
    n: usize,
    mut fate: impl FnMut(&mut Core, Time, crate::StreamPing),
) -> usize {
    let (mut timed_out, mut pinged) = (0, 0);
    for _ in 0..100_000 {
        if timed_out == n {
            return pinged;
        }
        pending.sort_by_key(|(at, _)| *at);
        assert!(!pending.is_empty(), "no timer left");
        let (at, timer) = pending.remove(0);
        let direct_timeout = matches!(timer.0, TimerKind::ProbeTimeout { .. });
        let before = c.metrics().probe_timeouts;
        c.handle_timer(at, timer);
        pending.extend(timers(&drain(c)));
        if direct_timeout && c.metrics().probe_timeouts > before {
            let verified = c.probe.as_ref().is_some_and(|p| c.members.is_verified(p.slot));
            if verified {
                let ping = c.poll_stream_ping().expect("a verified member always gets one");
                c.handle_stream_ping_response(at, ping.to, &stream_ack(&ping));
                pending.extend(timers(&drain(c)));
                continue;
            }
            timed_out += 1;
            if let Some(ping) = c.poll_stream_ping() {
                pinged += 1;
                fate(c, at, ping);
                pending.extend(timers(&drain(c)));
            }
        }
    }
    panic!("only {timed_out} of {n} probes timed out");
}

/// The ack the pinged member would write back.
fn stream_ack(ping: &crate::StreamPing) -> Vec<u8> {
    let Message::Ping(p) = codec().decode(&ping.request).unwrap().message else { panic!("not a ping") };
    frame(&Packet::new(Message::Ack(Ack { seq: p.seq, from: p.target })))
}

#[test]
fn unverified_members_get_stream_pings_while_they_are_answered() {
    // A hundred members only claimed by others (none has answered or
    // pinged this node), nobody answering datagrams: every probe times
    // out (and the round never runs out of live members).
    let (mut c, out) = fresh_with_timers();
    for port in 2..102 {
        apply(&mut c, Time::ZERO, alive(&format!("n{port}"), port, 0));
    }
    assert_eq!(c.members.unverified(), 100);
    let mut pending = timers(&out);
    // Answered over the stream: the member is verified and not suspected.
    let mut answered = Vec::new();
    let pinged = stream_pings_over(&mut c, &mut pending, 2, |c, at, ping| {
        c.handle_stream_ping_response(at, ping.to, &stream_ack(&ping));
        answered.push(ping.to);
    });
    assert_eq!(pinged, 2, "unverified members get the fallback too");
    assert_eq!(c.members.unverified(), 98, "its ack verified each: {answered:?}");
    for to in &answered {
        assert_eq!(c.members().find(|m| m.id.addr == *to).unwrap().status, MemberStatus::Alive);
    }
    assert_eq!(c.metrics().suspicions, 0);

    // Forged addresses: after three failures in a row, only one probe in
    // sixteen still gets a stream ping...
    let fail = |c: &mut Core, at: Time, ping: crate::StreamPing| c.stream_ping_failed(at, ping.to);
    assert_eq!(stream_pings_over(&mut c, &mut pending, 3, fail), 3);
    assert_eq!(stream_pings_over(&mut c, &mut pending, 15, fail), 0, "withheld after three failures");
    assert_eq!(c.metrics().stream_pings_withheld, 15);
    // ... (the trial), and once one is answered again, every one does.
    let answer = |c: &mut Core, at: Time, ping: crate::StreamPing| {
        c.handle_stream_ping_response(at, ping.to, &stream_ack(&ping));
    };
    assert_eq!(stream_pings_over(&mut c, &mut pending, 1, answer), 1, "the sixteenth is a trial");
    assert_eq!(stream_pings_over(&mut c, &mut pending, 3, fail), 3, "answered again: allowed again");
    assert_eq!(stream_pings_over(&mut c, &mut pending, 2, fail), 0);
    assert_eq!(c.metrics().stream_pings_withheld, 17);
    // Anything but an ack is a failure too (the trial after fourteen more).
    let garbage = |c: &mut Core, at: Time, ping: crate::StreamPing| {
        c.handle_stream_ping_response(at, ping.to, &ping.request);
    };
    assert_eq!(stream_pings_over(&mut c, &mut pending, 14, garbage), 1, "the trial");
    assert_eq!(stream_pings_over(&mut c, &mut pending, 15, answer), 0, "the trial's garbage was a strike");
}

#[test]
fn the_indirect_probes_wait_for_the_stream_ping() {
    let ping_reqs =
        |out: &[Output]| decode_datagrams(out).iter().filter(|(_, p)| matches!(p.message, Message::PingReq(_))).count();
    // Answered within the wait: no indirect probe at all, no suspicion.
    let (mut c, target, out, start) = probing();
    let ping = direct_probe_timed_out(&mut c, &out).unwrap();
    let at = start + Duration::from_millis(520);
    c.handle_stream_ping_response(at, target, &stream_ack(&ping));
    let mut sent = drain(&mut c);
    for (at, timer) in timers(&sent.clone()) {
        c.handle_timer(at, timer);
        sent.extend(drain(&mut c));
    }
    assert_eq!(ping_reqs(&sent), 0);
    let (next_at, next) = periodic(&out, Periodic::Probe).unwrap();
    c.handle_timer(next_at, next);
    let m = c.metrics();
    assert_eq!((m.suspicions, m.indirect_probes, m.stream_ping_acks, m.health_multiplier), (0, 0, 1, 0));

    // Refused (the process is gone): the indirect probes go out at once.
    let (mut c, target, out, start) = probing();
    direct_probe_timed_out(&mut c, &out).unwrap();
    c.stream_ping_failed(start + Duration::from_millis(505), target);
    assert_eq!(ping_reqs(&drain(&mut c)), 3);

    // With the `wan` timings there is no room to wait: both at once.
    let (mut c, out) = fresh_with_timers();
    c.config = Config::wan();
    assert_eq!(c.stream_first_wait(), Duration::ZERO);
    c.config = Config::lan();
    c.config.probe_timeout = Duration::from_millis(200);
    assert_eq!(c.stream_first_wait(), Duration::from_millis(100), "half of 320 ms, capped");
    let (mut c2, _, out2, _) = probing();
    c2.config.probe_timeout = Duration::from_millis(800);
    assert_eq!(c2.stream_first_wait(), Duration::ZERO, "1 s period, 800 ms timeout: no slack");
    drop((out, out2));
}

/// A packet whose first update makes a full table evict a dead member must
/// not apply its later updates to the slots looked up before (the lookups
/// of a large table are made up front): the evicted member's slot may hold
/// the newcomer by then, or nobody (issue #16: a slot is the name's
/// identity id, handed out again once free).
#[test]
fn an_eviction_mid_packet_does_not_misdirect_the_rest_of_it() {
    const CAP: usize = 300;
    let config = Config { max_members: CAP, ..Config::memberlist() };
    let mut c = Swim::new(id("me", 1), config, codec(), ChaCha8Rng::seed_from_u64(1), Time::ZERO).unwrap();
    for i in 0..CAP - 1 {
        apply(&mut c, Time::ZERO, alive(&format!("m{i}"), 2, 0));
    }
    apply(&mut c, Time::ZERO, confirm("m5", 0, "z"));
    assert_eq!(status(&c, "m5"), (MemberStatus::Dead, 0));
    assert_eq!(c.members().count(), CAP, "full: a newcomer evicts the dead member");
    let packet = Packet { message: Message::Gossip, updates: vec![alive("x", 3, 0), suspect("m5", 1, "z")] };
    c.handle_datagram(Time::from_secs(1), addr(3), &frame(&packet));
    assert_eq!(status(&c, "x"), (MemberStatus::Alive, 0), "the newcomer is not the one suspected");
    assert!(c.member(&name("m5")).is_none(), "evicted, and a suspicion does not bring it back");
    assert_eq!(c.metrics().members_evicted, 1);
}

/// A core with 30 verified members whose probe timer fired once: the core,
/// the first probe's outputs and the time it went out.
fn probing_among_thirty() -> (Core, Vec<Output>, Time) {
    let (mut c, out) = fresh_with_timers();
    let members: Vec<(String, u16)> = (0..30).map(|i| (format!("m{i}"), 10 + i)).collect();
    for (n, port) in &members {
        apply(&mut c, Time::ZERO, alive(n, *port, 0));
    }
    for (n, port) in &members {
        let ping = Packet::new(Message::Ping(Ping { seq: 1, target: name("me"), from: id(n, *port) }));
        c.handle_datagram(Time::ZERO, addr(*port), &frame(&ping));
    }
    assert_eq!(c.members.unverified(), 0);
    drain(&mut c);
    let (at, timer) = periodic(&out, Periodic::Probe).unwrap();
    c.handle_timer(at, timer);
    let out = drain(&mut c);
    (c, out, at)
}

/// The ping this node sent in `out`, with its destination.
fn sent_ping(out: &[Output]) -> (SocketAddr, Ping) {
    decode_datagrams(out)
        .into_iter()
        .find_map(|(to, p)| match p.message {
            Message::Ping(ping) => Some((to, ping)),
            _ => None,
        })
        .expect("a ping went out")
}

#[test]
fn a_member_that_answers_a_direct_probe_is_remembered_as_a_relay() {
    let (mut c, out, at) = probing_among_thirty();
    let (to, ping) = sent_ping(&out);
    let ack = Packet::new(Message::Ack(Ack { seq: ping.seq, from: ping.target.clone() }));
    c.handle_datagram(at + Duration::from_millis(1), to, &frame(&ack));
    let slot = c.members.find(&ping.target).unwrap();
    assert_eq!(c.recent_answers.iter().copied().collect::<Vec<_>>(), vec![slot]);
    // The same member answering again is not kept twice.
    c.answered(slot);
    assert_eq!(c.recent_answers.len(), 1);
}

#[test]
fn indirect_probes_go_first_to_members_that_answered_lately() {
    // Across a partition's cut most members drawn at random cannot reach
    // this node, never nack, and Lifeguard would blame this node; members
    // that answered its own probes lately can.
    let (mut c, out, _) = probing_among_thirty();
    let (target, _) = sent_ping(&out);
    let reachable: Vec<crate::member::Slot> = (20..30)
        .map(|i| c.members.find(&name(&format!("m{i}"))).unwrap())
        .filter(|&s| c.members.get(s).unwrap().member.id.addr != target)
        .take(3)
        .collect();
    for &slot in &reachable {
        c.answered(slot);
    }
    let (timeout_at, timeout) =
        timers(&out).into_iter().find(|(_, t)| matches!(t.0, TimerKind::ProbeTimeout { .. })).unwrap();
    c.handle_timer(timeout_at, timeout);
    let out1 = drain(&mut c);
    let (wait_at, wait) =
        timers(&out1).into_iter().find(|(_, t)| matches!(t.0, TimerKind::ProbeTimeout { .. })).unwrap();
    c.handle_timer(wait_at, wait);
    let mut relays: Vec<SocketAddr> = decode_datagrams(&drain(&mut c))
        .into_iter()
        .filter(|(_, p)| matches!(p.message, Message::PingReq(_)))
        .map(|(to, _)| to)
        .collect();
    let mut expected: Vec<SocketAddr> = reachable.iter().map(|&s| c.members.get(s).unwrap().member.id.addr).collect();
    relays.sort();
    expected.sort();
    assert_eq!(relays, expected, "the three that answered lately, not three of the 28 others");
}
