//! Nodes of one process given clones of one `IdentityDirectory` (issue
//! #16: a process hosting many nodes stores each member's record once):
//! they form a cluster as separate nodes do, and once they agree the
//! directory holds one record per member, not one per member per node.

mod common;

use common::*;
use gossamer_net::{IdentityDirectory, Node};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_sharing_a_directory_store_each_member_once() {
    init_tracing();
    const N: usize = 4;
    let directory = IdentityDirectory::new();
    let mut seed = config("n0", vec![]);
    seed.directory = Some(directory.clone());
    let seed = Node::start(seed).await.unwrap();
    let mut nodes = vec![seed];
    for i in 1..N {
        let mut c = config(&format!("n{i}"), vec![nodes[0].addr()]);
        c.directory = Some(directory.clone());
        nodes.push(Node::start(c).await.unwrap());
    }
    let all: Vec<&Node> = nodes.iter().collect();
    eventually("every node sees every other alive", || async { all_see_alive(&all, N).await }).await;
    // Converged: every node holds the same (name, incarnation, status,
    // metadata) for each member, so each record is interned once. A node
    // may still be settling an incarnation for a moment: retried.
    eventually("one record per member", || async { directory.len() == N }).await;

    // A node that leaves the process gives its records back: the others
    // still hold every member (the leaver as left), so nothing is freed
    // that a table holds, and the directory never holds more than a few
    // states per member.
    let last = nodes.pop().unwrap();
    last.leave().await.unwrap();
    last.shutdown().await;
    let rest: Vec<&Node> = nodes.iter().collect();
    eventually("the rest see N - 1 alive", || async { all_see_alive(&rest, N - 1).await }).await;
    assert!(directory.len() <= 2 * N, "records of departed states are freed: {}", directory.len());
    for node in nodes {
        node.shutdown().await;
    }
}
