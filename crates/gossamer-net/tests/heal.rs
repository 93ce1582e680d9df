//! The partition-heal layer over real sockets: six nodes on 127.0.0.1 are
//! cut 4/2 with fault injection (no firewall), each side declares the other
//! dead, the cut ends, and every node must see one cluster again and hear
//! that the four-node side won and the two-node side rejoined.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use gossamer_heal::CLAIM_KEY;
use gossamer_net::{HealConfig, HealEvent, HealSubscription, Hooks, Member, Node};
use gossamer_wire::{MemberStatus, Metadata, NodeName};

/// Bound on the heal once the cut is over.
const HEAL_DEADLINE: Duration = Duration::from_secs(90);

fn heal_config() -> HealConfig {
    HealConfig {
        settle: Duration::from_secs(1),
        hold_down: Duration::from_secs(5),
        probe_interval: Duration::from_secs(1),
        correlation_window: Duration::from_secs(5),
        ..HealConfig::default()
    }
}

async fn start_healing(name: &str, seeds: Vec<std::net::SocketAddr>, hooks: Option<Arc<dyn Hooks>>) -> Node {
    let mut c = config(name, seeds);
    c.heal = Some(heal_config());
    c.hooks.extend(hooks);
    Node::start(c).await.unwrap()
}

/// Records the heals the hooks are told about.
#[derive(Default)]
struct HealHooks {
    healed: Mutex<Vec<(BTreeSet<NodeName>, BTreeSet<NodeName>)>>,
}

impl Hooks for HealHooks {
    fn on_connect(&self, _: &Member) {}
    fn on_disconnect(&self, _: &Member) {}
    fn on_partition_healed(&self, winners: &BTreeSet<NodeName>, rejoined: &BTreeSet<NodeName>) {
        self.healed.lock().unwrap().push((winners.clone(), rejoined.clone()));
    }
}

async fn own_metadata(node: &Node) -> Metadata {
    let members = node.members().await.unwrap();
    members.into_iter().find(|m| &m.id == node.id()).map(|m| m.metadata).unwrap_or_default()
}

fn names(nodes: &[&Node]) -> BTreeSet<NodeName> {
    nodes.iter().map(|n| n.id().name.clone()).collect()
}

/// Whether `node` holds every member of `others` dead.
async fn sees_dead(node: &Node, others: &[&Node]) -> bool {
    let members = node.members().await.unwrap();
    others.iter().all(|o| {
        members.iter().any(|m| m.id.name == o.id().name && matches!(m.status, MemberStatus::Dead | MemberStatus::Left))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_four_two_cut_heals_with_the_four_side_winning() {
    init_tracing();
    let hooks = Arc::new(HealHooks::default());
    let first = start_healing("n0@127.0.0.1", vec![], None).await;
    let mut nodes = vec![first.clone()];
    for i in 1..6 {
        // The last node (on the losing side) reports through hooks too.
        let h = (i == 5).then(|| hooks.clone() as Arc<dyn Hooks>);
        nodes.push(start_healing(&format!("n{i}@127.0.0.1"), vec![first.addr()], h).await);
    }
    let all: Vec<&Node> = nodes.iter().collect();
    eventually("six alive everywhere", || async { all_see_alive(&all, 6).await }).await;
    let mut subscriptions: Vec<HealSubscription> = nodes.iter().map(Node::subscribe_heal).collect();

    // The cut: both sides block each other.
    let (big, small) = all.split_at(4);
    let big_addrs: Vec<_> = big.iter().map(|n| n.addr()).collect();
    let small_addrs: Vec<_> = small.iter().map(|n| n.addr()).collect();
    for node in big {
        node.block(small_addrs.iter().copied());
    }
    for node in small {
        node.block(big_addrs.iter().copied());
    }
    let cut_at = Instant::now();
    eventually("each side holds the other dead", || async {
        for node in big {
            if !sees_dead(node, small).await {
                return false;
            }
        }
        for node in small {
            if !sees_dead(node, big).await {
                return false;
            }
        }
        true
    })
    .await;
    eprintln!("split detected on both sides after {:?}", cut_at.elapsed());

    // The cut ends at once: the side that declared its last peer dead a
    // moment ago still has that verdict's rumor in flight, and it crosses
    // the healed link, making one of the other side's members look dead
    // to its own side for a moment. Each side is still taken as it stood
    // before the heal (issue #7, simulations/heal-immediate.toml).
    for node in &all {
        node.unblock_all();
    }
    let healed_at = Instant::now();
    let winners = names(big);
    let rejoined = names(small);
    let mut heard: Vec<Vec<HealEvent>> = vec![Vec::new(); nodes.len()];
    let mut one_cluster = None;
    let mut all_heard = None;
    let deadline = healed_at + HEAL_DEADLINE;
    loop {
        for (sub, events) in subscriptions.iter_mut().zip(heard.iter_mut()) {
            while let Some(event) = sub.try_recv() {
                events.push(event);
            }
        }
        if one_cluster.is_none() && all_see_alive(&all, 6).await {
            one_cluster = Some(healed_at.elapsed());
        }
        let healed = |events: &Vec<HealEvent>| events.iter().any(|e| matches!(e, HealEvent::PartitionHealed { .. }));
        if all_heard.is_none() && heard.iter().all(healed) {
            all_heard = Some(healed_at.elapsed());
        }
        if one_cluster.is_some() && all_heard.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no heal within {HEAL_DEADLINE:?}: one cluster {one_cluster:?}, heal events {heard:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("reconnect -> one cluster: {:?}; reconnect -> PartitionHealed on all six: {:?}", one_cluster, all_heard);

    for (node, events) in nodes.iter().zip(&heard) {
        for event in events {
            if let HealEvent::PartitionHealed { winners: w, rejoined: r } = event {
                assert_eq!(w, &winners, "winners as {} heard them: {events:#?}", node.id());
                assert_eq!(r, &rejoined, "rejoined as {} heard them: {events:#?}", node.id());
            }
        }
    }
    eventually("n5's hooks heard the heal", || async { !hooks.healed.lock().unwrap().is_empty() }).await;
    for (w, r) in hooks.healed.lock().unwrap().iter() {
        assert_eq!((w, r), (&winners, &rejoined));
    }

    // The application replacing its metadata keeps the published side claim.
    let n4 = &nodes[4];
    assert!(own_metadata(n4).await.get(CLAIM_KEY).is_some(), "n4 published its side's claim");
    let mut app = Metadata::new();
    app.insert("role", "cache").unwrap();
    n4.set_metadata(app).await.unwrap();
    let after = own_metadata(n4).await;
    assert_eq!(after.get("role"), Some(&b"cache"[..]));
    assert!(after.get(CLAIM_KEY).is_some(), "set_metadata kept the claim: {after:?}");

    // Still one cluster after the rejoins settled.
    eventually("six alive everywhere after the heal", || async { all_see_alive(&all, 6).await }).await;
    for node in &nodes {
        node.shutdown().await;
    }
}
