//! Updates retired once heard back (`Config::retire_after_copies`, issue
//! #16), end to end through the precedence rules and the gossip tick.

use std::net::SocketAddr;
use std::time::Duration;

use gossamer_wire::{Alive, ClusterLabel, Confirm, FrameCodec, MemberStatus, Metadata, NodeId, NodeName, Update};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::{Config, Member, Swim};

type Core = Swim<ChaCha8Rng>;

fn name(n: usize) -> NodeName {
    format!("n{n}").parse().unwrap()
}

fn id(n: usize) -> NodeId {
    NodeId::new(name(n), SocketAddr::from(([127, 0, 0, 1], 7000 + n as u16)))
}

/// Node 0 of a converged cluster of 12 (nothing queued).
fn core(copies: u32) -> Core {
    let config = Config { retire_after_copies: copies, ..Config::lan() };
    let codec = FrameCodec::new(ClusterLabel::new("retire").unwrap());
    let mut core = Swim::new(id(0), config, codec, ChaCha8Rng::seed_from_u64(7), Duration::ZERO).unwrap();
    let members =
        (0..12).map(|i| Member { id: id(i), incarnation: 0, status: MemberStatus::Alive, metadata: Metadata::new() });
    core.start_converged(Duration::ZERO, members);
    while core.poll_output().is_some() {}
    core
}

fn confirm(of: usize, by: usize) -> Update {
    Update::Confirm(Confirm { node: name(of), incarnation: 0, from: name(by) })
}

/// Node 0 learns that node 5 died, then hears the death from `copies`
/// more peers, then gossips `ticks` times (3 packets each); returns what
/// is still queued and the updates retired early.
fn run(setting: u32, copies: usize, ticks: u32) -> (usize, u64) {
    let mut c = core(setting);
    let t = Duration::from_secs(1);
    c.apply_update(t, confirm(5, 1));
    assert_eq!(c.metrics().queued_updates, 1, "the death is queued");
    for by in 2..2 + copies {
        c.apply_update(t, confirm(5, by));
    }
    for tick in 0..ticks {
        c.gossip(t + Duration::from_millis(200 * u64::from(tick + 1)));
    }
    while c.poll_output().is_some() {}
    let m = c.metrics();
    (m.queued_updates, m.updates_retired_early)
}

#[test]
fn a_death_heard_back_enough_retires_after_the_floor_not_the_limit() {
    // Limit at 12 members: 4 × ceil(log2(13)) = 16 sends; floor 4.
    assert_eq!(run(5, 5, 2), (0, 0), "heard 5 times: done after 6 >= 4 sends, well before 16");
    assert_eq!(run(5, 4, 2), (1, 0), "heard 4 times: not enough, the whole budget");
    assert_eq!(run(0, 20, 2), (1, 0), "off: the whole budget however often heard");
    assert_eq!(run(0, 20, 6), (0, 0), "off: done at the limit (18 >= 16 sends)");
}

#[test]
fn a_death_sent_past_the_floor_retires_on_the_copy_that_makes_enough() {
    let mut c = core(5);
    let t = Duration::from_secs(1);
    c.apply_update(t, confirm(5, 1));
    c.gossip(t);
    c.gossip(t + Duration::from_millis(200));
    assert_eq!(c.metrics().queued_updates, 1, "6 of 16 sends");
    for by in 2..6 {
        c.apply_update(t, confirm(5, by));
    }
    assert_eq!(c.metrics().queued_updates, 1, "4 copies");
    c.apply_update(t, confirm(5, 6));
    assert_eq!((c.metrics().queued_updates, c.metrics().updates_retired_early), (0, 1), "the 5th retires it");
}

#[test]
fn an_alive_is_never_retired_early() {
    let mut c = core(1);
    let t = Duration::from_secs(1);
    let alive = |incarnation| Update::Alive(Alive { node: id(5), incarnation, metadata: Metadata::new() });
    c.apply_update(t, alive(1));
    assert_eq!(c.metrics().queued_updates, 1);
    for _ in 0..50 {
        c.apply_update(t, alive(1));
    }
    assert_eq!((c.metrics().queued_updates, c.metrics().updates_retired_early), (1, 0));
}

fn alive(n: usize) -> Update {
    Update::Alive(Alive { node: id(n), incarnation: 0, metadata: Metadata::new() })
}

/// Node 0 of a converged cluster of 12, its queue bounded at 16 updates,
/// with its own alive queued.
fn bounded() -> Core {
    let config = Config { max_queued_updates: 16, ..Config::lan() };
    let codec = FrameCodec::new(ClusterLabel::new("retire").unwrap());
    let mut core = Swim::new(id(0), config, codec, ChaCha8Rng::seed_from_u64(7), Duration::ZERO).unwrap();
    let members =
        (0..12).map(|i| Member { id: id(i), incarnation: 0, status: MemberStatus::Alive, metadata: Metadata::new() });
    core.start_converged(Duration::ZERO, members);
    let own = core.self_alive();
    core.queue.push_keyed(core.self_slot, own);
    while core.poll_output().is_some() {}
    core
}

#[test]
fn a_queue_past_its_bound_drops_the_most_sent_never_its_own_alive() {
    let mut c = bounded();
    let t = Duration::from_secs(1);
    // 15 newcomers: 16 pending with this node's own alive, at the bound.
    for n in 100..115 {
        c.apply_update(t, alive(n));
    }
    assert_eq!((c.metrics().queued_updates, c.metrics().updates_evicted), (16, 0));
    // One gossip tick sends some of them (least sent first).
    c.gossip(t + Duration::from_millis(200));
    while c.poll_output().is_some() {}
    // A 16th newcomer: the most sent update goes, the news stays.
    c.apply_update(t, alive(115));
    let m = c.metrics();
    assert_eq!((m.queued_updates, m.updates_evicted), (16, 1));
    let newcomer = c.members.find(&name(115)).expect("learned");
    assert_eq!(c.queue.transmits(&newcomer), Some(0), "the unsent news is kept");
    // A flood of newcomers never pushes out this node's own alive. Ten
    // every two seconds: fewer than a join burst (`Config::join_burst` in
    // a probe interval), whose news would not be queued at all.
    for n in 200..300 {
        c.apply_update(t + Duration::from_secs(2 * (n as u64 - 200) / 10 + 2), alive(n));
    }
    let m = c.metrics();
    assert_eq!((m.queued_updates, m.updates_evicted), (16, 101));
    assert!(c.queue.transmits(&c.self_slot).is_some(), "own alive kept");
}

fn suspect(of: usize, by: usize) -> Update {
    Update::Suspect(gossamer_wire::Suspect { node: name(of), incarnation: 0, from: name(by) })
}

/// Datagrams `ticks` gossip ticks send (3 packets at most each).
fn gossip_packets(c: &mut Core, at: Duration, ticks: u32) -> usize {
    while c.poll_output().is_some() {}
    let mut packets = 0;
    for tick in 0..ticks {
        c.gossip(at + Duration::from_millis(200 * u64::from(tick)));
        while let Some(output) = c.poll_output() {
            packets += usize::from(matches!(output, crate::Output::Datagram { .. }));
        }
    }
    packets
}

#[test]
fn a_confirmation_of_a_suspicion_sent_out_here_opens_no_gossip_packet() {
    // Without early retirement: every update gets its whole budget.
    let mut c = core(0);
    let t = Duration::from_secs(1);
    c.apply_update(t, suspect(5, 1));
    assert_eq!(gossip_packets(&mut c, t, 6), 16, "the suspicion: 16 sends at 12 members, in packets of its own");
    assert_eq!(c.metrics().queued_updates, 0, "sent out");
    c.apply_update(t, suspect(5, 2));
    let m = c.metrics();
    assert_eq!((m.queued_updates, m.confirmations_refused), (1, 0), "a confirmation, queued");
    assert_eq!(gossip_packets(&mut c, t, 10), 0, "it opens no packet: it rides on probes and acks");
    assert_eq!(c.metrics().queued_updates, 1, "and keeps its whole budget for them");
}

#[test]
fn a_confirmation_opens_only_the_packets_its_suspicion_had_left() {
    let mut c = core(0);
    let t = Duration::from_secs(1);
    c.apply_update(t, suspect(5, 1));
    assert_eq!(gossip_packets(&mut c, t, 2), 6, "6 of the suspicion's 16 sends");
    c.apply_update(t, suspect(5, 2));
    assert_eq!(gossip_packets(&mut c, t, 10), 10, "the confirmation opens the 10 left, then rides");
    assert_eq!(c.metrics().queued_updates, 1, "6 of its 16 sends still to ride");
}
