//! A live authoritative DNS server (hickory-server) for `gossamer.test.` on
//! 127.0.0.1, whose records a test changes while it runs: the DNS and
//! Kubernetes-DNS strategies are tested against a real resolver talking to
//! a real server, not a mocked lookup.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::rdata::{A, AAAA, SOA};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType, RrKey};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use hickory_server::Server;

/// The zone the server is authoritative for.
pub const ZONE: &str = "gossamer.test.";

/// The running server; it stops when dropped.
pub struct TestDns {
    /// The zone's records, for tests that set record types the helpers do not cover.
    pub zone: Arc<InMemoryZoneHandler>,
    /// Where it answers (UDP, and TCP on the same port when that was free).
    pub addr: SocketAddr,
    _server: Server<Catalog>,
}

/// Parses an absolute domain name; panics on a malformed literal.
pub fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap_or_else(|e| panic!("bad DNS name {s:?}: {e}"))
}

impl TestDns {
    /// Starts the server with an empty zone (only its SOA record).
    pub async fn start() -> Self {
        let origin = name(ZONE);
        let zone = Arc::new(InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny));
        let soa = SOA::new(name("ns.gossamer.test."), name("admin.gossamer.test."), 1, 3600, 600, 86400, 0);
        assert!(zone.upsert(Record::from_rdata(origin.clone(), 0, RData::SOA(soa)), 1).await);
        let mut catalog = Catalog::new();
        catalog.upsert(LowerName::new(&origin), vec![zone.clone() as Arc<dyn ZoneHandler>]);
        let mut server = Server::new(catalog);
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind DNS UDP socket");
        let addr = udp.local_addr().expect("DNS socket address");
        server.register_socket(udp);
        // TCP on the same port number when free, so truncated answers can be retried over TCP.
        if let Ok(tcp) = tokio::net::TcpListener::bind(addr).await {
            server.register_listener(tcp, Duration::from_secs(5), 4096);
        }
        TestDns { zone, addr, _server: server }
    }

    /// Replaces the `rtype` records of `owner` with `rdatas` (TTL 0, so
    /// nothing is cached between polls).
    pub async fn set(&self, owner: &str, rtype: RecordType, rdatas: Vec<RData>) {
        let owner = name(owner);
        self.zone.records_mut().await.remove(&RrKey::new(LowerName::new(&owner), rtype));
        for rd in rdatas {
            assert!(self.zone.upsert(Record::from_rdata(owner.clone(), 0, rd), 1).await);
        }
    }

    /// Replaces the A and AAAA records of `owner`: IPv4 addresses become A
    /// records, IPv6 ones AAAA. Takes anything that prints as an IP address
    /// (`"10.0.0.1"` literals or `IpAddr`s); panics on anything else.
    pub async fn set_a<T: std::fmt::Display>(&self, owner: &str, ips: &[T]) {
        let ips: Vec<IpAddr> = ips
            .iter()
            .map(|ip| ip.to_string().parse().unwrap_or_else(|e| panic!("not an IP address {ip}: {e}")))
            .collect();
        let a = ips.iter().filter_map(|ip| match ip {
            IpAddr::V4(v) => Some(RData::A(A(*v))),
            IpAddr::V6(_) => None,
        });
        self.set(owner, RecordType::A, a.collect()).await;
        let aaaa = ips.iter().filter_map(|ip| match ip {
            IpAddr::V6(v) => Some(RData::AAAA(AAAA(*v))),
            IpAddr::V4(_) => None,
        });
        self.set(owner, RecordType::AAAA, aaaa.collect()).await;
    }
}
