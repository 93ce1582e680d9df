//! Nodes that share one `IdentityDirectory` (issue #16, what the simulator
//! does) behave as nodes with a directory each, and hold one record per
//! distinct member state instead of one per node and member. Not event for
//! event: a member's slot is its identity id in the directory, so the slot
//! numbers (which the probe order shuffles and random picks draw from)
//! differ between a private and a shared directory. But a run with a
//! shared directory is still a function of its seed alone.

mod common;

use std::time::Duration;

use common::Net;
use gossamer_core::{Config, Event, IdentityDirectory};

/// A cluster of `n` joined through node 0, a crash, its detection; every
/// node's events with their times (the run is a function of the seed).
fn run(net: &mut Net, n: usize) -> Vec<Vec<(gossamer_core::Time, Event)>> {
    for i in 1..n {
        net.join(i, &[0]);
        net.run_for(Duration::from_millis(50));
    }
    assert!(net.run_until_cond(Duration::from_secs(60), Net::converged), "cluster did not converge");
    net.crash(3);
    let crashed =
        |net: &Net| net.running().iter().all(|&i| net.status(i, 3) == Some(gossamer_wire::MemberStatus::Dead));
    assert!(net.run_until_cond(Duration::from_secs(120), crashed), "crash not detected everywhere");
    net.run_for(Duration::from_secs(5));
    net.nodes.iter().map(|node| node.events.clone()).collect()
}

#[test]
fn a_shared_directory_changes_nothing_but_memory_and_slot_numbers() {
    const N: usize = 12;
    let config = Config { push_pull_interval: Duration::from_secs(5), ..Config::lan() };
    let mut private = Net::new(N, 7, config.clone());
    let directory = IdentityDirectory::new();
    let config_again = config.clone();
    let mut shared = Net::with_directory(N, 7, config, directory.clone());
    assert!(shared.core(0).directory().same_as(&directory));
    assert!(!private.core(0).directory().same_as(private.core(1).directory()), "Swim::new: one each");

    let private_events = run(&mut private, N);
    let shared_events = run(&mut shared, N);
    assert!(private_events.iter().map(Vec::len).sum::<usize>() > N * N, "the run did something");
    assert!(shared_events.iter().map(Vec::len).sum::<usize>() > N * N, "the run did something");
    // Same seed, same run with another shared directory (whose hasher is
    // seeded differently): nothing is decided by hash order.
    let mut again = Net::with_directory(N, 7, config_again, IdentityDirectory::new());
    assert_eq!(run(&mut again, N), shared_events, "same seed, same events");
    assert_eq!(again.delivered, shared.delivered, "same traffic");
    drop(again);

    // Every live node holds N members; one record each, not one per node:
    // the N - 1 live members alive at the incarnation all agree on, and the
    // crashed one dead (possibly at more than one incarnation or confirmer-
    // independent states while the last news spreads).
    let held: usize = shared.running().iter().map(|&i| shared.core(i).members().count()).sum();
    assert_eq!(held, (N - 1) * N);
    assert!(directory.len() <= N + 2, "{} records for {held} held members", directory.len());
    assert_eq!(directory.names(), N, "one identity per name");
    let own: usize = private.running().iter().map(|&i| private.core(i).directory().names()).sum();
    assert_eq!(own, held, "a private directory holds one identity per member of its node");
    let interned: usize = private.running().iter().map(|&i| private.core(i).directory().len()).sum();
    assert_eq!(interned, 0, "and interns nothing: its node, the only holder, keeps its records");

    // Records go with their last holder.
    drop(shared);
    let mut other = Net::with_directory(2, 1, Config::lan(), directory.clone());
    other.join(1, &[0]);
    other.run_for(Duration::from_secs(5));
    assert!(directory.len() <= 4, "the dropped nodes' records were purged: {}", directory.len());
}
