//! Whole-protocol scenarios on the in-memory network of `common`.

mod common;

use std::time::Duration;

use common::{name, Net};
use gossamer_core::{Config, Event, RefutedClaim, Signal};
use gossamer_wire::MemberStatus;

fn config() -> Config {
    Config::local()
}

/// The scenario's seed, shifted by `GOSSAMER_CORE_SEED` to soak-test
/// (`for s in $(seq 1 50); do GOSSAMER_CORE_SEED=$s cargo test ...; done`).
fn seed(base: u64) -> u64 {
    base + std::env::var("GOSSAMER_CORE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0) * 1000
}

#[test]
fn join_through_one_seed_converges() {
    let mut net = Net::new(12, seed(1), config());
    for i in 1..12 {
        net.join(i, &[0]);
    }
    assert!(net.run_until_cond(Duration::from_secs(30), Net::converged), "12 nodes did not converge");
    for i in 0..12 {
        assert_eq!(net.core(i).members().count(), 12);
        // Every node learned of every other exactly once.
        let joined = net.nodes[i].events.iter().filter(|(_, e)| matches!(e, Event::MemberJoined(_))).count();
        assert_eq!(joined, 11, "node {i}");
    }
    // Stays converged: no false suspicion in a healthy network.
    net.run_for(Duration::from_secs(30));
    assert!(net.converged());
    for s in 0..12 {
        assert_eq!(net.events_about(s, |e| matches!(e, Event::MemberFailed(_))), 0);
    }
}

#[test]
fn crashed_member_is_declared_dead_by_everyone() {
    let mut net = Net::converged_cluster(8, seed(2), config());
    let crash_at = net.now;
    net.crash(7);
    let all_dead = |net: &Net| (0..7).all(|v| net.status(v, 7) == Some(MemberStatus::Dead));
    assert!(net.run_until_cond(Duration::from_secs(60), all_dead), "not everyone declared n7 dead");
    for v in 0..7 {
        let death = net.core(v).death(&name(7)).expect("death recorded");
        assert!(death.at > crash_at);
        assert!((0..7).any(|i| death.by == name(i)), "declared by a member: {:?}", death.by);
        assert!(net.status(v, 0).is_some());
    }
    assert!(net.events_about(7, |e| matches!(e, Event::MemberFailed(_))) >= 7);
    // The others stay alive.
    for v in 0..7 {
        for s in 0..7 {
            assert_eq!(net.status(v, s), Some(MemberStatus::Alive), "{v} sees {s}");
        }
    }
}

#[test]
fn slow_member_that_recovers_in_time_is_not_declared_dead() {
    let mut net = Net::converged_cluster(8, seed(3), config());
    // Everything n5 sends is late by more than a protocol period, for eight
    // seconds (each member probes it about once in that time): it misses
    // acks and gets suspected, but refutes in time, again and again.
    net.nodes[5].extra_delay = Duration::from_millis(1200);
    net.run_for(Duration::from_secs(8));
    net.nodes[5].extra_delay = Duration::ZERO;
    net.run_for(Duration::from_secs(40));
    assert!(net.events_about(5, |e| matches!(e, Event::MemberSuspected(_))) > 0, "the test must provoke suspicion");
    assert_eq!(net.events_about(5, |e| matches!(e, Event::MemberFailed(_))), 0);
    assert!(net.converged());
    assert!(net.core(5).incarnation() > 0, "n5 refuted");
    assert!(net.core(5).metrics().refutations > 0);
}

#[test]
fn leave_is_seen_as_left_not_failed() {
    let mut net = Net::converged_cluster(6, seed(4), config());
    net.with_core(2, |core, now| core.leave(now));
    assert!(net.run_until_cond(Duration::from_secs(10), |n| n.core(2).has_left()), "leave never completed");
    net.crash(2);
    net.run_for(Duration::from_secs(60));
    for v in [0, 1, 3, 4, 5] {
        assert_eq!(net.status(v, 2), Some(MemberStatus::Left), "node {v}");
    }
    assert_eq!(net.events_about(2, |e| matches!(e, Event::MemberLeft(_))), 5);
    assert_eq!(net.events_about(2, |e| matches!(e, Event::MemberFailed(_) | Event::MemberSuspected(_))), 0);
}

#[test]
fn refuted_suspicion_never_becomes_dead() {
    let mut net = Net::converged_cluster(6, seed(5), config());
    // A false accusation reaches n1 about n3 (as a piggybacked update).
    let codec = gossamer_wire::FrameCodec::new(gossamer_wire::ClusterLabel::new("test").unwrap());
    let lie = gossamer_wire::Packet {
        message: gossamer_wire::Message::Gossip,
        updates: vec![gossamer_wire::Update::Suspect(gossamer_wire::Suspect {
            node: name(3),
            incarnation: net.view(1, 3).unwrap().incarnation,
            from: name(4),
        })],
    };
    let mut buf = bytes::BytesMut::new();
    codec.encode(&lie, &mut buf).unwrap();
    net.with_core(1, |core, now| core.handle_datagram(now, common::addr(4), &buf));
    assert_eq!(net.status(1, 3), Some(MemberStatus::Suspect));
    net.run_for(Duration::from_secs(60));
    assert_eq!(net.events_about(3, |e| matches!(e, Event::MemberFailed(_))), 0);
    assert!(net.events_about(3, |e| matches!(e, Event::MemberRecovered(_))) >= 1);
    assert!(net.converged());
    assert!(net.core(3).incarnation() >= 1);
}

#[test]
fn mass_restart_leaves_nobody_stuck_dead() {
    let mut net = Net::converged_cluster(8, seed(6), config());
    // First wave: half the cluster crashes and is declared dead.
    for i in 4..8 {
        net.crash(i);
    }
    let dead = |net: &Net| (0..4).all(|v| (4..8).all(|s| net.status(v, s) == Some(MemberStatus::Dead)));
    assert!(net.run_until_cond(Duration::from_secs(90), dead));
    // They come back with fresh state (incarnation 0), lower than or equal
    // to the incarnation they are known dead at.
    for i in 4..8 {
        net.start(i);
        net.join(i, &[0]);
    }
    assert!(net.run_until_cond(Duration::from_secs(60), Net::converged), "restarted nodes stuck dead");
    // Second wave: the other half restarts too; the first half, now the
    // survivors, must take them back.
    for i in 0..4 {
        net.crash(i);
    }
    let dead = |net: &Net| (4..8).all(|v| (0..4).all(|s| net.status(v, s) == Some(MemberStatus::Dead)));
    assert!(net.run_until_cond(Duration::from_secs(90), dead));
    for i in 0..4 {
        net.start(i);
        net.join(i, &[5]);
    }
    assert!(net.run_until_cond(Duration::from_secs(60), Net::converged), "second wave stuck dead");
    for i in 0..8 {
        assert!(net.core(i).incarnation() >= 1, "n{i} had to refute its death");
    }
}

#[test]
fn partition_heals_through_reconnect_timer() {
    let mut net = Net::converged_cluster(8, seed(7), config());
    for i in 4..8 {
        net.nodes[i].group = 1;
    }
    let split = |net: &Net| {
        (0..8).all(|v| {
            (0..8).all(|s| {
                let same_side = (v < 4) == (s < 4);
                let status = net.status(v, s);
                if same_side {
                    status == Some(MemberStatus::Alive)
                } else {
                    status == Some(MemberStatus::Dead)
                }
            })
        })
    };
    assert!(net.run_until_cond(Duration::from_secs(120), split), "sides did not declare each other dead");
    net.run_for(Duration::from_secs(20));
    assert!(split(&net), "split is stable while partitioned");
    for i in 4..8 {
        net.nodes[i].group = 0;
    }
    assert!(net.run_until_cond(Duration::from_secs(120), Net::converged), "partition did not re-merge");
    net.run_for(Duration::from_secs(30));
    assert!(net.converged(), "stays merged");
}

#[test]
fn seeds_are_retried_while_alone() {
    let mut net = Net::new(3, seed(8), config());
    // n1 joins through n0 while n0 is unreachable.
    net.nodes[0].group = 1;
    net.join(1, &[0]);
    net.join(2, &[0]);
    net.run_for(Duration::from_secs(3));
    assert_eq!(net.core(1).members().count(), 1);
    net.nodes[0].group = 0;
    assert!(net.run_until_cond(Duration::from_secs(30), Net::converged), "seed retry did not join");
}

#[test]
fn metadata_change_reaches_everyone() {
    let mut net = Net::converged_cluster(5, seed(9), config());
    let mut meta = gossamer_wire::Metadata::new();
    meta.insert("role", b"db".to_vec()).unwrap();
    let before = net.core(3).incarnation();
    net.with_core(3, |core, now| core.set_metadata(now, meta.clone()));
    assert_eq!(net.core(3).incarnation(), before + 1);
    let seen = |net: &Net| (0..5).all(|v| net.view(v, 3).unwrap().metadata == meta);
    assert!(net.run_until_cond(Duration::from_secs(10), seen));
    assert_eq!(net.events_about(3, |e| matches!(e, Event::MemberUpdated(_))), 4);
}

#[test]
fn lossy_network_gives_no_false_positives_thanks_to_lifeguard() {
    let mut net = Net::converged_cluster(24, seed(10), config());
    net.loss = 0.10;
    net.run_for(Duration::from_secs(120));
    let suspected: usize = (0..24).map(|s| net.events_about(s, |e| matches!(e, Event::MemberSuspected(_)))).sum();
    assert!(suspected > 0, "10% loss must cause some (refuted) suspicions");
    for s in 0..24 {
        assert_eq!(net.events_about(s, |e| matches!(e, Event::MemberFailed(_))), 0, "n{s} declared dead");
    }
    net.loss = 0.0;
    assert!(net.run_until_cond(Duration::from_secs(30), Net::converged));
}

#[test]
fn partition_heal_is_signalled_and_the_steady_state_is_quiet() {
    let mut net = Net::converged_cluster(8, seed(11), config());
    net.run_for(Duration::from_secs(5));
    for node in &mut net.nodes {
        node.signals.clear();
    }
    // Minutes of push-pulls between agreeing views: nothing copied.
    net.run_for(Duration::from_secs(120));
    let views = |net: &Net, i: usize| -> Vec<String> {
        net.nodes[i]
            .signals
            .iter()
            .filter_map(|(_, s)| match s {
                Signal::RemoteView { from, members } => {
                    assert_eq!(&members[0].node, from, "the sender comes first");
                    Some(from.name.to_string())
                }
                _ => None,
            })
            .collect()
    };
    for i in 0..8 {
        assert!(views(&net, i).is_empty(), "node {i}: {:?}", views(&net, i));
    }
    for i in 4..8 {
        net.nodes[i].group = 1;
    }
    let split = |net: &Net| {
        (0..8).all(|v| (0..8).all(|s| ((v < 4) == (s < 4)) || net.status(v, s) == Some(MemberStatus::Dead)))
    };
    assert!(net.run_until_cond(Duration::from_secs(120), split), "sides did not declare each other dead");
    let confirmers: Vec<usize> = (0..8)
        .flat_map(|v| (0..8).map(move |s| (v, s)))
        .filter_map(|(v, s)| net.core(v).death(&name(s)).map(|d| d.confirmers.len()))
        .collect();
    assert_eq!(confirmers.len(), 32, "every node holds the other side dead, with a death record");
    eprintln!("confirmers per death across a 4/4 cut: {confirmers:?}");
    assert!(confirmers.iter().any(|&c| c > 1), "a cut is confirmed by several members of a side");
    for i in 4..8 {
        net.nodes[i].group = 0;
    }
    assert!(net.run_until_cond(Duration::from_secs(120), Net::converged), "partition did not re-merge");
    // Someone on each side saw the other side's view (and who sent it)
    // before merging it, and refuted the other side's verdict on itself.
    for side in [0..4, 4..8] {
        let across: Vec<String> = side.clone().flat_map(|i| views(&net, i)).collect();
        let other_side = |n: &String| (n.as_str() < name(4).as_str()) != (side.start < 4);
        assert!(across.iter().any(other_side), "side {side:?} saw {across:?}");
        let refuted_death = side.clone().any(|i| {
            net.nodes[i].signals.iter().any(|(_, s)| matches!(s, Signal::Refuted { claim: RefutedClaim::Dead, .. }))
        });
        assert!(refuted_death, "side {side:?} refuted no death claim");
    }
}
