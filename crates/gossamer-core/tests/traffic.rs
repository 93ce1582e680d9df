//! Datagrams and stream frames counted by kind (issue #17): every frame a
//! node sends lands in exactly one kind, and a running cluster shows each.

mod common;

use std::time::Duration;

use common::Net;
use gossamer_core::Config;

#[test]
fn traffic_by_kind_adds_up_and_covers_every_kind() {
    let config = Config { push_pull_interval: Duration::from_secs(5), ..Config::local() };
    let mut net = Net::converged_cluster(5, 17, config);
    net.with_core(0, |core, now| {
        core.broadcast(now, "greeting", b"hello".to_vec()).unwrap();
    });
    net.run_for(Duration::from_secs(30));
    for i in 0..5 {
        let m = net.core(i).metrics();
        let out = m.traffic_out.total();
        assert_eq!((out.messages, out.bytes), (m.messages_out, m.bytes_out), "node {i}: kinds must add up");
        // A healthy cluster rejects nothing: everything received has a kind.
        assert_eq!(m.rejected, 0, "node {i}");
        let inn = m.traffic_in.total();
        assert_eq!((inn.messages, inn.bytes), (m.messages_in, m.bytes_in), "node {i}");
        for (kind, t) in
            [("probe", m.traffic_out.probe), ("ack", m.traffic_out.ack), ("push_pull", m.traffic_out.push_pull)]
        {
            assert!(t.messages > 0 && t.bytes >= t.messages, "node {i} sent no {kind}: {:?}", m.traffic_out);
        }
        assert!(m.traffic_in.probe.messages > 0 && m.traffic_in.ack.messages > 0, "node {i}: {:?}", m.traffic_in);
    }
    // The broadcast went out: piggybacked on probes, or alone as user gossip.
    let user_or_gossip: u64 = (0..5)
        .map(|i| {
            let t = net.core(i).metrics().traffic_out;
            t.user.messages + t.gossip.messages
        })
        .sum();
    assert!(user_or_gossip > 0, "no gossip datagram in 30 s of a broadcast");
}
