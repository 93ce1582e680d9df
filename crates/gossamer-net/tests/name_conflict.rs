//! Two nodes started with one name on different ports (issue #15): the
//! established one keeps the name, the newcomer refuses to start with a
//! clear error, and nobody in the cluster moves the name to the newcomer.

mod common;

use common::*;
use gossamer_net::{Node, StartError};
use gossamer_wire::MemberStatus;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_with_a_taken_name_does_not_start_and_the_holder_keeps_it() {
    init_tracing();
    let a = start("a@127.0.0.1", vec![]).await;
    let b = start("b@127.0.0.1", vec![a.addr()]).await;
    eventually("a and b see each other", || async { all_see_alive(&[&a, &b], 2).await }).await;

    // A second "a", on another port, joins through b.
    let err = Node::start(config("a@127.0.0.1", vec![b.addr()])).await.expect_err("the name is taken");
    let StartError::NameConflict(conflict) = &err else { panic!("wrong error: {err}") };
    assert_eq!(conflict.claimed, a.addr(), "the holder's address");
    assert!(conflict.yielded);
    let message = err.to_string();
    assert!(message.contains("a@127.0.0.1") && message.contains(&a.addr().to_string()), "{message}");

    // The holder and the cluster never moved: a is alive at its address,
    // everywhere, and stays so.
    for _ in 0..3 {
        for node in [&a, &b] {
            let me = node.members().await.unwrap().into_iter().find(|m| m.id.name.as_str() == "a@127.0.0.1");
            let me = me.expect("a is a member");
            assert_eq!((me.status, me.id.addr), (MemberStatus::Alive, a.addr()));
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    a.shutdown().await;
    b.shutdown().await;
}
