//! DNS strategy against a real DNS server: hickory-server in-process on 127.0.0.1 (ephemeral UDP and
//! TCP ports) serving an in-memory zone that the tests change between polls.

use std::time::Duration;

use gossamer_discovery::strategy::DnsDiscovery;
use gossamer_discovery::{build, Discovery, DiscoveryConfig, DiscoveryError, DnsRecordType, Peer, StrategyKind};
use gossamer_testkit::dns::{name, TestDns};
use hickory_proto::rr::rdata::{SRV, TXT};
use hickory_proto::rr::{RData, RecordType};

/// A DNS strategy asking `dns` (and only it) for `query`, polling fast.
fn dns_strategy(dns: &TestDns, query: &str, rt: DnsRecordType) -> DnsDiscovery {
    DnsDiscovery::new(query, rt, 7946, "gossamer", Duration::from_millis(100), Some(dns.addr), Duration::from_secs(2))
        .unwrap()
}

fn addrs(peers: &[Peer]) -> Vec<String> {
    peers.iter().map(|p| p.addr.to_string()).collect()
}

#[tokio::test]
async fn a_and_aaaa_records_are_followed_across_polls() {
    let dns = TestDns::start().await;
    dns.set_a("nodes.gossamer.test.", &["10.0.0.1", "10.0.0.2", "fd00::3"]).await;
    let d = dns_strategy(&dns, "nodes.gossamer.test.", DnsRecordType::A);

    let peers = d.discover().await.unwrap();
    assert_eq!(addrs(&peers), ["10.0.0.1:7946", "10.0.0.2:7946", "[fd00::3]:7946"]);
    assert_eq!(peers[0].name.as_deref(), Some("gossamer@10.0.0.1"));
    assert_eq!(peers[2].name.as_deref(), Some("gossamer@fd00::3"));

    // A node is added and another removed: the very next poll sees it (no stale cache).
    dns.set_a("nodes.gossamer.test.", &["10.0.0.2", "10.0.0.4"]).await;
    let peers = d.discover().await.unwrap();
    assert_eq!(addrs(&peers), ["10.0.0.2:7946", "10.0.0.4:7946"]);

    // All records removed but the name still exists (it has a TXT): an empty, successful answer.
    dns.set("nodes.gossamer.test.", RecordType::TXT, vec![RData::TXT(TXT::new(vec!["x".into()]))]).await;
    dns.set_a::<&str>("nodes.gossamer.test.", &[]).await;
    assert_eq!(d.discover().await.unwrap(), vec![]);
}

#[tokio::test]
async fn srv_records_give_ports_and_follow_changes() {
    let dns = TestDns::start().await;
    dns.set_a("n1.gossamer.test.", &["10.0.1.1"]).await;
    dns.set_a("n2.gossamer.test.", &["10.0.1.2"]).await;
    let srv = |port, target: &str| RData::SRV(SRV::new(10, 10, port, name(target)));
    dns.set(
        "_gossip._udp.gossamer.test.",
        RecordType::SRV,
        vec![srv(7000, "n1.gossamer.test."), srv(7001, "n2.gossamer.test.")],
    )
    .await;
    let d = dns_strategy(&dns, "_gossip._udp.gossamer.test.", DnsRecordType::Srv);
    let peers = d.discover().await.unwrap();
    assert_eq!(addrs(&peers), ["10.0.1.1:7000", "10.0.1.2:7001"]);
    assert_eq!(peers[1].name.as_deref(), Some("gossamer@10.0.1.2"));

    dns.set("_gossip._udp.gossamer.test.", RecordType::SRV, vec![srv(7002, "n2.gossamer.test.")]).await;
    assert_eq!(addrs(&d.discover().await.unwrap()), ["10.0.1.2:7002"]);

    // A target that does not resolve is skipped while others resolve...
    dns.set(
        "_gossip._udp.gossamer.test.",
        RecordType::SRV,
        vec![srv(7003, "ghost.gossamer.test."), srv(7002, "n2.gossamer.test.")],
    )
    .await;
    assert_eq!(addrs(&d.discover().await.unwrap()), ["10.0.1.2:7002"]);
    // ...and when none resolves, the round fails with an error naming it (not a panic, not silence).
    dns.set("_gossip._udp.gossamer.test.", RecordType::SRV, vec![srv(7003, "ghost.gossamer.test.")]).await;
    let err = d.discover().await.unwrap_err();
    assert!(err.to_string().contains("ghost.gossamer.test"), "{err}");
}

#[tokio::test]
async fn nxdomain_is_a_clear_error() {
    let dns = TestDns::start().await;
    let d = dns_strategy(&dns, "missing.gossamer.test.", DnsRecordType::A);
    match d.discover().await {
        Err(DiscoveryError::NxDomain { name }) => assert!(name.contains("missing.gossamer.test"), "{name}"),
        other => panic!("expected NXDOMAIN, got {other:?}"),
    }
    let d = dns_strategy(&dns, "_none._udp.gossamer.test.", DnsRecordType::Srv);
    assert!(matches!(d.discover().await, Err(DiscoveryError::NxDomain { .. })));
}

/// A "server" answering every query with garbage: the strategy reports a DNS error after its timeout.
#[tokio::test]
async fn malformed_answers_are_an_error_not_a_panic() {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let junk = tokio::spawn(async move {
        let mut buf = [0u8; 512];
        // Bounded: at most 50 replies, then the task ends.
        for i in 0..50u8 {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else { return };
            // Echo the query id (so it is not dropped as unrelated) followed by nonsense.
            let mut reply = buf[..2.min(n)].to_vec();
            reply.extend_from_slice(&[0x81, 0x80, 0xff, 0xff, 0xff, i, 0xde, 0xad]);
            let _ = sock.send_to(&reply, from).await;
        }
    });
    let d = DnsDiscovery::new(
        "nodes.gossamer.test.",
        DnsRecordType::A,
        7946,
        "gossamer",
        Duration::from_secs(1),
        Some(addr),
        Duration::from_millis(300),
    )
    .unwrap();
    match d.discover().await {
        Err(e @ DiscoveryError::Dns { .. }) => {
            eprintln!("malformed answer -> {e}");
            assert!(e.to_string().contains("nodes.gossamer.test"), "{e}");
        }
        other => panic!("expected a DNS error, got {other:?}"),
    }
    junk.abort();
}

#[tokio::test]
async fn built_from_config_with_nameserver() {
    let dns = TestDns::start().await;
    dns.set_a("cfg.gossamer.test.", &["10.9.9.9"]).await;
    let mut cfg = DiscoveryConfig { strategy: vec![StrategyKind::Dns], ..Default::default() };
    cfg.dns.query = "cfg.gossamer.test".into();
    cfg.dns.port = 7100;
    cfg.dns.node_basename = "edge".into();
    cfg.dns.nameserver = Some(dns.addr.to_string());
    let strategies = build(&cfg).unwrap();
    assert_eq!(strategies.len(), 1);
    assert_eq!(strategies[0].name(), "dns");
    assert_eq!(strategies[0].poll_interval(), Some(Duration::from_secs(5)));
    let peers = strategies[0].discover().await.unwrap();
    assert_eq!(peers, vec![Peer::named("edge@10.9.9.9", "10.9.9.9:7100".parse().unwrap())]);
}
