//! `Swim::adopt_members`: members taken on the caller's word (a restored
//! snapshot, a simulated cluster that converged long ago) are known at
//! once, cost no dissemination, and are then probed like any other member:
//! one that never answers is suspected and declared dead.

use std::net::SocketAddr;
use std::time::Duration;

use gossamer_core::{Config, Event, Member, Output, Swim, Time, Timer};
use gossamer_wire::{ClusterLabel, FrameCodec, MemberStatus, Metadata, NodeId, NodeName};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

type Core = Swim<ChaCha8Rng>;

fn id(i: u32) -> NodeId {
    NodeId::new(format!("n{i}").parse().unwrap(), SocketAddr::from(([127, 0, 0, 1], 7000 + i as u16)))
}

fn member(i: u32, incarnation: u64, status: MemberStatus) -> Member {
    Member { id: id(i), incarnation, status, metadata: Metadata::new() }
}

fn codec() -> FrameCodec {
    FrameCodec::new(ClusterLabel::new("adopt").unwrap())
}

fn core(seed: u64) -> Core {
    Swim::new(id(0), Config::lan(), codec(), ChaCha8Rng::seed_from_u64(seed), Time::ZERO).unwrap()
}

fn name(i: u32) -> NodeName {
    id(i).name
}

#[test]
fn adopted_members_are_known_alive_without_dissemination_or_events() {
    let mut c = core(1);
    let before: Vec<Output> = std::iter::from_fn(|| c.poll_output()).collect();
    assert!(before.iter().all(|o| matches!(o, Output::SetTimer { .. })));
    let mut meta = Metadata::new();
    meta.insert("zone", b"a".to_vec()).unwrap();
    // This node (skipped); 1; 2 suspect (adopted alive); 3 dead and 4 left
    // (nothing vouches for them: skipped); 1 again (the first word stands).
    let snapshot = vec![
        member(0, 9, MemberStatus::Alive),
        member(1, 4, MemberStatus::Alive),
        Member { metadata: meta.clone(), ..member(2, 0, MemberStatus::Suspect) },
        member(3, 2, MemberStatus::Dead),
        member(4, 2, MemberStatus::Left),
        member(1, 7, MemberStatus::Alive),
    ];
    assert_eq!(c.adopt_members(Time::from_secs(5), snapshot), 2);
    assert_eq!(c.members().count(), 3);
    assert_eq!(c.incarnation(), 0, "this node's own state is untouched");
    let one = c.member(&name(1)).unwrap();
    assert_eq!((one.status, one.incarnation), (MemberStatus::Alive, 4));
    let two = c.member(&name(2)).unwrap();
    assert_eq!((two.status, &two.metadata), (MemberStatus::Alive, &meta));
    assert!(c.member(&name(3)).is_none() && c.member(&name(4)).is_none());
    assert_eq!(c.metrics().queued_updates, 1, "only this node's own alive, queued at creation");
    let outputs: Vec<Output> = std::iter::from_fn(|| c.poll_output()).collect();
    assert_eq!(outputs.len(), 2, "push-pull and reconnect re-armed, nothing else: {outputs:?}");
    for o in &outputs {
        let Output::SetTimer { at, .. } = o else { panic!("only timers: {o:?}") };
        assert!(*at >= Time::from_secs(5));
    }
    // Adopting what is known already adds nothing and re-arms nothing.
    assert_eq!(c.adopt_members(Time::from_secs(6), [member(1, 8, MemberStatus::Alive)]), 0);
    assert!(c.poll_output().is_none());
    assert_eq!(c.member(&name(1)).unwrap().incarnation, 4);
}

/// Drives `c` by its own timers until `until`; datagrams go nowhere (the
/// adopted members never answer). Returns the events in order.
fn run_alone(c: &mut Core, until: Time) -> (Vec<Event>, u64) {
    let mut timers: Vec<(Time, u64, Timer)> = Vec::new();
    let mut events = Vec::new();
    let mut serial = 0;
    let mut pings = 0;
    let mut now = Time::ZERO;
    loop {
        while let Some(o) = c.poll_output() {
            match o {
                Output::SetTimer { at, timer } => {
                    serial += 1;
                    timers.push((at.max(now), serial, timer));
                }
                Output::Event(e) => events.push(e),
                Output::Datagram { .. } => pings += 1,
                Output::PushPull { .. } | Output::User(_) => {}
            }
        }
        let Some(next) = (0..timers.len()).min_by_key(|&k| (timers[k].0, timers[k].1)) else { break };
        if timers[next].0 > until {
            break;
        }
        let (at, _, timer) = timers.swap_remove(next);
        now = at;
        c.handle_timer(now, timer);
    }
    (events, pings)
}

#[test]
fn an_adopted_member_that_never_answers_is_suspected_then_declared_dead() {
    let mut c = core(2);
    assert_eq!(c.adopt_members(Time::ZERO, [member(1, 3, MemberStatus::Alive)]), 1);
    let (events, pings) = run_alone(&mut c, Time::from_secs(60));
    assert!(pings > 0, "the adopted member was probed");
    let about_one: Vec<&Event> = events.iter().filter(|e| e.member().id.name == name(1)).collect();
    assert!(
        matches!(&about_one[..], [Event::MemberSuspected(s), Event::MemberFailed(f)]
            if s.incarnation == 3 && f.incarnation == 3),
        "suspected, then dead: {about_one:?}"
    );
    assert_eq!(c.member(&name(1)).unwrap().status, MemberStatus::Dead);
    let death = c.death(&name(1)).expect("a death record");
    assert_eq!(death.by, name(0), "this node's own suspicion timed out");
    assert!(death.at < Duration::from_secs(60));
}

#[test]
fn every_adopted_member_is_probed_within_one_round() {
    const N: u32 = 50;
    // The adopted members never answer: with Lifeguard's health multiplier
    // free to grow, this node would slow its probing to a crawl (8 pings in
    // 51 periods). Pinned at 1 it probes once a period.
    let config = Config { awareness_max_multiplier: 1, ..Config::lan() };
    let mut c = Swim::new(id(0), config, codec(), ChaCha8Rng::seed_from_u64(3), Time::ZERO).unwrap();
    assert_eq!(c.adopt_members(Time::ZERO, (1..=N).map(|i| member(i, 0, MemberStatus::Alive))), N as usize);
    let mut timers: Vec<(Time, u64, Timer)> = Vec::new();
    let mut probed = Vec::new();
    let mut serial = 0;
    // N + 1 protocol periods: the first starts at a random phase.
    let until = Time::from_secs(u64::from(N) + 1);
    loop {
        while let Some(o) = c.poll_output() {
            match o {
                Output::SetTimer { at, timer } => {
                    serial += 1;
                    timers.push((at, serial, timer));
                }
                // Pings only: the gossip of this node's suspicions of the
                // silent members reaches others too, and is not a probe.
                Output::Datagram { to, bytes }
                    if probed.len() < N as usize
                        && !probed.contains(&to)
                        && matches!(codec().decode(&bytes).map(|p| p.message), Ok(gossamer_wire::Message::Ping(_))) =>
                {
                    probed.push(to)
                }
                _ => {}
            }
        }
        let Some(next) = (0..timers.len()).min_by_key(|&k| (timers[k].0, timers[k].1)) else { break };
        if timers[next].0 > until || probed.len() == N as usize {
            break;
        }
        let (at, _, timer) = timers.swap_remove(next);
        c.handle_timer(at, timer);
    }
    assert_eq!(probed.len(), N as usize, "every adopted member probed in the first round");
    let in_order: Vec<SocketAddr> = (1..=N).map(|i| id(i).addr).collect();
    assert_ne!(probed, in_order, "the round is shuffled");
}

/// `Swim::start_converged`: the snapshot lists this node as it is, so its
/// own `Alive` (queued at creation) is dropped and nothing is queued; a
/// snapshot that disagrees about this node, or does not list it, leaves
/// the `Alive` queued, as `adopt_members` always does.
#[test]
fn a_converged_start_queues_nothing_unless_the_snapshot_disagrees_about_this_node() {
    let others = || (1..=20).map(|i| member(i, 0, MemberStatus::Alive));
    let mut c = core(4);
    assert_eq!(c.start_converged(Time::ZERO, std::iter::once(member(0, 0, MemberStatus::Alive)).chain(others())), 20);
    assert_eq!(c.members().count(), 21);
    assert_eq!(c.metrics().queued_updates, 0, "every member knows every other: nothing to gossip");

    let mut tagged = Metadata::new();
    tagged.insert("zone", b"a".to_vec()).unwrap();
    let elsewhere = Member {
        id: NodeId::new(name(0), SocketAddr::from(([127, 0, 0, 2], 7000))),
        ..member(0, 0, MemberStatus::Alive)
    };
    let disagreeing = [
        member(0, 5, MemberStatus::Alive),
        member(0, 0, MemberStatus::Suspect),
        member(0, 0, MemberStatus::Dead),
        Member { metadata: tagged, ..member(0, 0, MemberStatus::Alive) },
        elsewhere,
    ];
    for (seed, me) in (5..).zip(disagreeing) {
        let mut c = core(seed);
        assert_eq!(c.start_converged(Time::ZERO, std::iter::once(me.clone()).chain(others())), 20);
        assert_eq!(c.metrics().queued_updates, 1, "this node's own alive stays queued: listed as {me:?}");
        assert_eq!(c.incarnation(), 0);
    }
    let mut unlisted = core(11);
    assert_eq!(unlisted.start_converged(Time::ZERO, others()), 20);
    assert_eq!(unlisted.metrics().queued_updates, 1, "not listed: the others may not know this node");
}
