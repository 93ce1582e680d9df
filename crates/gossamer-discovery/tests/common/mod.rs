//! Shared test fixtures: an in-process authoritative DNS server (hickory-server) on 127.0.0.1, and (in
//! [`http`]) a small HTTP server standing in for HTTP APIs.
#![allow(dead_code)]

pub mod http;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use gossamer_discovery::strategy::DnsDiscovery;
use gossamer_discovery::DnsRecordType;
use hickory_proto::rr::rdata::{A, AAAA, SOA};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType, RrKey};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use hickory_server::Server;

const ZONE: &str = "gossamer.test.";

/// A live authoritative server for `gossamer.test.` whose records can be changed while it runs.
pub struct TestDns {
    pub zone: Arc<InMemoryZoneHandler>,
    pub addr: SocketAddr,
    _server: Server<Catalog>,
}

pub fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

impl TestDns {
    pub async fn start() -> Self {
        let origin = name(ZONE);
        let zone = Arc::new(InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny));
        let soa = SOA::new(name("ns.gossamer.test."), name("admin.gossamer.test."), 1, 3600, 600, 86400, 0);
        assert!(zone.upsert(Record::from_rdata(origin.clone(), 0, RData::SOA(soa)), 1).await);
        let mut catalog = Catalog::new();
        catalog.upsert(LowerName::new(&origin), vec![zone.clone() as Arc<dyn ZoneHandler>]);
        let mut server = Server::new(catalog);
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        server.register_socket(udp);
        // TCP on the same port number when free, so truncated answers can be retried over TCP.
        if let Ok(tcp) = tokio::net::TcpListener::bind(addr).await {
            server.register_listener(tcp, Duration::from_secs(5), 4096);
        }
        TestDns { zone, addr, _server: server }
    }

    pub async fn set(&self, owner: &str, rtype: RecordType, rdatas: Vec<RData>) {
        let owner = name(owner);
        self.zone.records_mut().await.remove(&RrKey::new(LowerName::new(&owner), rtype));
        for rd in rdatas {
            assert!(self.zone.upsert(Record::from_rdata(owner.clone(), 0, rd), 1).await);
        }
    }

    pub async fn set_a(&self, owner: &str, ips: &[&str]) {
        let (v4, v6): (Vec<IpAddr>, Vec<IpAddr>) =
            ips.iter().map(|s| s.parse::<IpAddr>().unwrap()).partition(|ip| ip.is_ipv4());
        let a = v4.into_iter().map(|ip| match ip {
            IpAddr::V4(v) => RData::A(A(v)),
            IpAddr::V6(_) => unreachable!(),
        });
        self.set(owner, RecordType::A, a.collect()).await;
        let aaaa = v6.into_iter().map(|ip| match ip {
            IpAddr::V6(v) => RData::AAAA(AAAA(v)),
            IpAddr::V4(_) => unreachable!(),
        });
        self.set(owner, RecordType::AAAA, aaaa.collect()).await;
    }

    pub fn strategy(&self, query: &str, rt: DnsRecordType) -> DnsDiscovery {
        DnsDiscovery::new(
            query,
            rt,
            7946,
            "gossamer",
            Duration::from_millis(100),
            Some(self.addr),
            Duration::from_secs(2),
        )
        .unwrap()
    }
}
