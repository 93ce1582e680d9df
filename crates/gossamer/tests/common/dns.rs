//! A live authoritative DNS server (hickory-server) for `gossamer.test.` on 127.0.0.1, whose records
//! the test sets while it runs.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType, RrKey};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use hickory_server::Server;

const ZONE: &str = "gossamer.test.";

/// The running server; it stops when dropped.
pub struct TestDns {
    zone: Arc<InMemoryZoneHandler>,
    /// Where it answers (UDP).
    pub addr: SocketAddr,
    _server: Server<Catalog>,
}

fn name(s: &str) -> Name {
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
        TestDns { zone, addr, _server: server }
    }

    /// Replaces the A records of `owner` (TTL 0, so nothing is cached between polls).
    pub async fn set_a(&self, owner: &str, ips: &[IpAddr]) {
        let owner = name(owner);
        self.zone.records_mut().await.remove(&RrKey::new(LowerName::new(&owner), RecordType::A));
        for ip in ips {
            let IpAddr::V4(v4) = ip else { panic!("IPv4 only: {ip}") };
            assert!(self.zone.upsert(Record::from_rdata(owner.clone(), 0, RData::A(A(*v4))), 1).await);
        }
    }
}
