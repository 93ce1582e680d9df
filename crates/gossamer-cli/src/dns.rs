//! The agent's DNS interface (`[dns]`, Consul's idea, issue #18 item 3): an authoritative server for one
//! domain (default `gossamer.`) answering over UDP and TCP with the members this agent sees **alive**
//! (never suspect, dead or left), so a service that only knows DNS — Elixir's libcluster `DNSPoll`, EMQX's
//! `cluster.discovery_strategy = dns` — finds its nodes by configuration alone. Names (`D` = the domain):
//!
//! | name                                  | records                                              |
//! |---------------------------------------|------------------------------------------------------|
//! | `D`, `members.D`                      | A / AAAA of every alive member                       |
//! | `<name>.node.D`                       | A / AAAA of that member                              |
//! | `<value>.<key>.tag.D`                 | A / AAAA of alive members whose tag `key` is `value` |
//! | `_gossamer._udp.D`, `_gossamer._tcp.D`| SRV: port of each alive member, target `<name>.node.D` |
//! | `_gossamer._udp.<value>.<key>.tag.D`  | SRV of the members with that tag (and `_tcp`)        |
//!
//! Member names, tag keys and values appear in names only when they are valid DNS labels (1 to 63 of
//! `A-Z a-z 0-9 - _`); such a member is still in the `D`/`members.D`/tag address answers. DNS is
//! case-insensitive, so `Web` and `web` are one name. Every record has the short `ttl` (default 5 s), and
//! the SOA's minimum is the same, so a negative answer is not cached longer either.
//!
//! A name in the domain that no record has gets NXDOMAIN; a name that exists with no record of the type
//! asked (an AAAA question about an IPv4-only member) gets an empty NOERROR; a name outside the domain
//! gets REFUSED (this is not a resolver). These are the behaviour of hickory-server's catalog: no DNS
//! encoding is written here. UDP is read by this module's own loop around hickory's parser and catalog,
//! so that a malformed packet is counted (`dns_malformed` in `gossamer metrics`,
//! `gossamer_dns_malformed_total` at `/metrics`) and logged at `warn`, rate-limited; it gets FORMERR when
//! its header is a query's, nothing otherwise. TCP is hickory's server (malformed frames get FORMERR or a
//! closed connection, uncounted). The zone is rebuilt from the
//! member list whenever the set of alive members, their addresses or tags change (checked every
//! [`REFRESH`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gossamer::net::{Member, Node};
use gossamer::wire::MemberStatus;
use hickory_proto::rr::rdata::{A, AAAA, SOA, SRV};
use hickory_proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use hickory_server::Server;
use serde::{Deserialize, Serialize};

use crate::settings::{invalid, SettingsError};

/// Default `[dns] bind`: loopback, Consul's DNS port.
pub const DEFAULT_BIND: &str = "127.0.0.1:8600";
/// Default `[dns] domain`.
pub const DEFAULT_DOMAIN: &str = "gossamer.";
/// Default `[dns] ttl`, seconds: short, so a failed member leaves caches quickly.
pub const DEFAULT_TTL: u32 = 5;
/// How often the member list is compared with the zone (a read of the node's table; cheap). Small beside
/// any failure-detection time, so an answer lags the agent's view by at most this.
pub const REFRESH: Duration = Duration::from_millis(250);
/// A TCP client that sends no complete query within this long is disconnected.
const TCP_TIMEOUT: Duration = Duration::from_secs(5);
/// hickory's per-connection response buffer (responses queued per TCP connection).
const TCP_RESPONSE_BUFFER: usize = 16;

/// The `[dns]` table of the agent file. Off unless the table is present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSettings {
    /// Listen address for UDP and TCP, `ip:port` (default [`DEFAULT_BIND`], loopback).
    pub bind: Option<String>,
    /// The domain answered for (default [`DEFAULT_DOMAIN`]); a trailing dot is implied.
    pub domain: Option<String>,
    /// TTL of every answer, in seconds (default [`DEFAULT_TTL`]).
    pub ttl: Option<u32>,
}

/// Queries over UDP that hickory could not parse (shorter than a header,
/// or a body that does not decode), since the agent started.
static MALFORMED: AtomicU64 = AtomicU64::new(0);

/// The `[dns]` server's counters, in `gossamer metrics` and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DnsCounters {
    /// UDP packets refused as malformed DNS queries (not a DNS message, or
    /// one whose body does not decode); each is logged at `warn`, rate-limited.
    pub dns_malformed: u64,
}

impl DnsCounters {
    /// The process-wide counters now.
    pub fn snapshot() -> Self {
        Self { dns_malformed: MALFORMED.load(Ordering::Relaxed) }
    }
}

/// The checked `[dns]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// Listen address (UDP and TCP).
    pub bind: SocketAddr,
    /// The domain, fully qualified.
    pub domain: Name,
    /// TTL of every record, seconds.
    pub ttl: u32,
}

impl DnsSettings {
    /// Checks the values; errors name the key.
    pub fn resolve(&self) -> Result<DnsConfig, SettingsError> {
        let text = self.bind.as_deref().unwrap_or(DEFAULT_BIND);
        let bind = text.trim().parse().map_err(|e| invalid("dns.bind", format!("{text:?} is not ip:port ({e})")))?;
        let text = self.domain.as_deref().unwrap_or(DEFAULT_DOMAIN).trim();
        let mut domain = Name::from_ascii(text).map_err(|e| invalid("dns.domain", format!("{text:?}: {e}")))?;
        domain.set_fqdn(true);
        if domain.is_root() {
            return Err(invalid("dns.domain", "the root cannot be the agent's domain; name one, e.g. \"gossamer.\""));
        }
        let ttl = self.ttl.unwrap_or(DEFAULT_TTL);
        if ttl > 86_400 {
            return Err(invalid("dns.ttl", "at most 86400 seconds (membership changes; keep it short)"));
        }
        Ok(DnsConfig { bind, domain, ttl })
    }
}

/// The running DNS server; it stops when dropped.
pub struct DnsServer {
    /// Where it answers (UDP and TCP).
    pub addr: SocketAddr,
    _server: Server<Catalog>,
    refresher: tokio::task::JoinHandle<()>,
    udp_task: tokio::task::JoinHandle<()>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.refresher.abort();
        self.udp_task.abort();
    }
}

/// Whether `s` can be one label of a name here.
fn is_label(s: &str) -> bool {
    (1..=63).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn under(prefix: &str, domain: &Name) -> Option<Name> {
    Name::from_ascii(prefix).ok()?.append_domain(domain).ok()
}

fn address(ip: IpAddr) -> RData {
    match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    }
}

/// The zone's records for these members (only the alive ones are used), SOA first.
pub(crate) fn zone_records(domain: &Name, ttl: u32, serial: u32, members: &[Member]) -> Vec<Record> {
    let mut records = Vec::new();
    let soa_name = |l: &str| under(l, domain).unwrap_or_else(|| domain.clone());
    // refresh/retry/expire matter only to secondary servers, which this zone never has.
    let soa = SOA::new(soa_name("ns"), soa_name("hostmaster"), serial, 3600, 600, 86_400, ttl);
    records.push(Record::from_rdata(domain.clone(), ttl, RData::SOA(soa)));
    let members_name = under("members", domain);
    for m in members.iter().filter(|m| m.status == MemberStatus::Alive) {
        let ip = address(m.id.addr.ip());
        let mut owners: Vec<Name> = vec![domain.clone()];
        owners.extend(members_name.clone());
        let tags: Vec<(&str, &str)> = m
            .metadata
            .iter()
            .filter_map(|(k, v)| Some((k, std::str::from_utf8(v).ok()?)))
            .filter(|(k, v)| is_label(k) && is_label(v))
            .collect();
        let tag_names: Vec<Name> = tags.iter().filter_map(|(k, v)| under(&format!("{v}.{k}.tag"), domain)).collect();
        owners.extend(tag_names.iter().cloned());
        let name = m.id.name.as_str();
        let node_name = if is_label(name) { under(&format!("{name}.node"), domain) } else { None };
        owners.extend(node_name.clone());
        for owner in owners {
            records.push(Record::from_rdata(owner, ttl, ip.clone()));
        }
        if let Some(target) = node_name {
            let srv = RData::SRV(SRV::new(1, 1, m.id.addr.port(), target));
            for base in std::iter::once(domain).chain(tag_names.iter()) {
                for proto in ["_gossamer._udp", "_gossamer._tcp"] {
                    if let Some(owner) = under(proto, base) {
                        records.push(Record::from_rdata(owner, ttl, srv.clone()));
                    }
                }
            }
        }
    }
    records
}

/// What the zone is built from: each alive member's name, address and tags. The zone is rebuilt only
/// when this changes.
type Fingerprint = BTreeMap<String, (SocketAddr, Vec<(String, Vec<u8>)>)>;

fn fingerprint(members: &[Member]) -> Fingerprint {
    members
        .iter()
        .filter(|m| m.status == MemberStatus::Alive)
        .map(|m| {
            let tags = m.metadata.iter().map(|(k, v)| (k.to_owned(), v.to_vec())).collect();
            (m.id.name.to_string(), (m.id.addr, tags))
        })
        .collect()
}

async fn install(zone: &InMemoryZoneHandler, config: &DnsConfig, serial: u32, members: &[Member]) {
    let mut staging: InMemoryZoneHandler =
        InMemoryZoneHandler::empty(config.domain.clone(), ZoneType::Primary, AxfrPolicy::Deny);
    for record in zone_records(&config.domain, config.ttl, serial, members) {
        if !staging.upsert_mut(record.clone(), serial) {
            tracing::debug!(%record, "dns record not added");
        }
    }
    let fresh = std::mem::take(staging.records_get_mut());
    // One swap under the zone's write lock: a query sees the old zone or the new one, never half of each.
    *zone.records_mut().await = fresh;
}

/// Binds UDP and TCP on `config.bind` (TCP on the port UDP got, when it was 0) and serves `node`'s alive
/// members until the returned server is dropped.
pub async fn start(config: DnsConfig, node: Node) -> Result<DnsServer, String> {
    let udp = tokio::net::UdpSocket::bind(config.bind)
        .await
        .map_err(|e| format!("cannot bind [dns] UDP on {}: {e}", config.bind))?;
    let addr = udp.local_addr().map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot bind [dns] TCP on {addr}: {e}"))?;

    let zone = Arc::new(InMemoryZoneHandler::empty(config.domain.clone(), ZoneType::Primary, AxfrPolicy::Deny));
    let mut serial = 1u32;
    let members = node.members().await.unwrap_or_default();
    install(&zone, &config, serial, &members).await;
    // One zone, two catalogs: hickory's server answers TCP, this module's loop answers UDP.
    let catalog = || {
        let mut catalog = Catalog::new();
        catalog.upsert(LowerName::new(&config.domain), vec![zone.clone() as Arc<dyn ZoneHandler>]);
        catalog
    };
    let udp_task = tokio::spawn(serve_udp(udp, Arc::new(catalog())));
    let mut server = Server::new(catalog());
    server.register_listener(tcp, TCP_TIMEOUT, TCP_RESPONSE_BUFFER);

    let refresher = tokio::spawn(async move {
        let mut seen = fingerprint(&members);
        let mut tick = tokio::time::interval(REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Ok(members) = node.members().await else { return };
            let now = fingerprint(&members);
            if now != seen {
                serial = serial.wrapping_add(1);
                install(&zone, &config, serial, &members).await;
                tracing::debug!(alive = now.len(), serial, "dns zone rebuilt");
                seen = now;
            }
        }
    });
    Ok(DnsServer { addr, _server: server, refresher, udp_task })
}

/// Serves DNS over UDP: hickory's own parse ([`Request::from_bytes`]) and
/// catalog, in this loop rather than hickory's so that a malformed query is
/// seen: counted ([`DnsCounters::dns_malformed`]), logged at `warn` at most
/// once per [`crate::http_api::WARN_EVERY`] (with how many were not), and
/// answered FORMERR when its header is a query's (dropped otherwise), as
/// hickory's own loop does. Responses
/// are never answered either (no reflection), nor sources that cannot be
/// answered (port 0, unspecified or broadcast addresses).
async fn serve_udp(socket: tokio::net::UdpSocket, catalog: Arc<Catalog>) {
    use hickory_server::net::runtime::{TokioRuntimeProvider, TokioTime};
    use hickory_server::net::udp::UdpStream;
    use hickory_server::net::DnsStreamHandle;
    use hickory_server::proto::op::{Message, MessageType, OpCode, ResponseCode, SerialMessage};
    use hickory_server::server::{Request, RequestHandler, ResponseHandle};
    use tokio_stream::StreamExt;

    // The remote address is a placeholder: each answer goes to its query's source.
    let (mut stream, handle) = UdpStream::<TokioRuntimeProvider>::with_bound(socket, ([127, 255, 255, 254], 0).into());
    let mut warn = crate::http_api::WarnEvery::default();
    while let Some(message) = stream.next().await {
        let message = match message {
            Ok(m) => m,
            Err(error) => {
                if let Some(others) = warn.due() {
                    tracing::warn!(%error, others, "dns udp receive failed");
                }
                continue;
            }
        };
        let (bytes, src) = message.into_parts();
        let unanswerable = src.port() == 0
            || src.ip().is_unspecified()
            || matches!(src.ip(), IpAddr::V4(v4) if v4.is_broadcast() || v4.is_multicast())
            || matches!(src.ip(), IpAddr::V6(v6) if v6.is_multicast());
        if unanswerable {
            continue;
        }
        let len = bytes.len();
        // A query's header (12 bytes, QR clear) is enough to answer FORMERR, as hickory's own loop does.
        let query_head = match bytes.get(..3) {
            Some(&[hi, lo, flags]) if len >= 12 && flags & 0x80 == 0 => Some((u16::from_be_bytes([hi, lo]), flags)),
            _ => None,
        };
        let request = match Request::from_bytes(bytes, src, hickory_server::net::xfer::Protocol::Udp) {
            Ok(request) => request,
            Err(error) => {
                MALFORMED.fetch_add(1, Ordering::Relaxed);
                if let Some(others) = warn.due() {
                    tracing::warn!(%src, len, %error, others, "malformed dns query refused");
                }
                let formerr = query_head.and_then(|(id, flags)| {
                    let op = OpCode::from_u8(flags >> 3 & 0x0f);
                    Message::error_msg(id, op, ResponseCode::FormErr).to_vec().ok()
                });
                if let Some(answer) = formerr {
                    // Best effort: a full send queue drops the answer, never blocks the loop.
                    let _ = handle.with_remote_addr(src).send(SerialMessage::new(answer, src));
                }
                continue;
            }
        };
        if request.metadata.message_type == MessageType::Response {
            continue;
        }
        let catalog = catalog.clone();
        let reply = ResponseHandle::new(src, handle.with_remote_addr(src), hickory_server::net::xfer::Protocol::Udp);
        tokio::spawn(async move {
            catalog.handle_request::<_, TokioTime>(&request, reply).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gossamer::wire::{Metadata, NodeId};
    use hickory_proto::rr::RecordType;

    fn member(name: &str, addr: &str, status: MemberStatus, tags: &[(&str, &str)]) -> Member {
        let mut metadata = Metadata::default();
        for (k, v) in tags {
            metadata.insert(k, v.as_bytes().to_vec()).unwrap();
        }
        Member { id: NodeId::new(name.parse().unwrap(), addr.parse().unwrap()), incarnation: 0, status, metadata }
    }

    fn owners_of(records: &[Record], rtype: RecordType) -> Vec<String> {
        let mut v: Vec<String> =
            records.iter().filter(|r| r.record_type() == rtype).map(|r| r.name.to_ascii()).collect();
        v.sort();
        v.dedup();
        v
    }

    #[test]
    fn only_alive_members_with_valid_labels_get_names() {
        let domain = Name::from_ascii("gossamer.").unwrap();
        let members = vec![
            member("web-1", "10.0.0.1:7946", MemberStatus::Alive, &[("role", "web")]),
            member("db-1", "10.0.0.2:7947", MemberStatus::Suspect, &[("role", "db")]),
            member("gone", "10.0.0.3:7946", MemberStatus::Dead, &[]),
            member("v6.x", "[fd00::1]:7946", MemberStatus::Alive, &[("role", "not a label")]),
        ];
        let records = zone_records(&domain, 5, 1, &members);
        assert!(records.iter().all(|r| r.ttl == 5));
        assert_eq!(
            owners_of(&records, RecordType::A),
            vec!["gossamer.", "members.gossamer.", "web-1.node.gossamer.", "web.role.tag.gossamer."]
        );
        // The IPv6 member's name has a dot: no node name, but it is in the address answers.
        assert_eq!(owners_of(&records, RecordType::AAAA), vec!["gossamer.", "members.gossamer."]);
        assert_eq!(
            owners_of(&records, RecordType::SRV),
            vec![
                "_gossamer._tcp.gossamer.",
                "_gossamer._tcp.web.role.tag.gossamer.",
                "_gossamer._udp.gossamer.",
                "_gossamer._udp.web.role.tag.gossamer."
            ]
        );
        let srv = records.iter().find_map(|r| match &r.data {
            RData::SRV(s) => Some(s.clone()),
            _ => None,
        });
        let srv = srv.unwrap();
        assert_eq!((srv.port, srv.target.to_ascii()), (7946, "web-1.node.gossamer.".to_owned()));
    }

    #[test]
    fn the_sidecar_example_in_deploy_is_a_valid_agent_file() {
        let text = include_str!("../../../deploy/sidecar/node.toml");
        let mut settings = crate::settings::AgentSettings::parse(text).unwrap();
        settings.insecure = true; // the example leaves `secret` to the operator
        let resolved = settings.resolve(std::path::Path::new(".")).unwrap();
        let dns = resolved.dns.unwrap();
        assert_eq!((dns.domain.to_ascii().as_str(), dns.ttl, dns.bind.port()), ("gossamer.", 5, 8600));
        assert_eq!(resolved.http.unwrap().expected_size, 3);
    }

    #[test]
    fn settings_default_and_refuse_nonsense() {
        let c = DnsSettings::default().resolve().unwrap();
        assert_eq!(c.bind, DEFAULT_BIND.parse().unwrap());
        assert_eq!(c.domain.to_ascii(), "gossamer.");
        assert_eq!(c.ttl, DEFAULT_TTL);
        let c = DnsSettings { domain: Some("svc.example".into()), ..Default::default() }.resolve().unwrap();
        assert_eq!(c.domain.to_ascii(), "svc.example.");
        for (s, key) in [
            (DnsSettings { domain: Some(".".into()), ..Default::default() }, "dns.domain"),
            (DnsSettings { bind: Some("x".into()), ..Default::default() }, "dns.bind"),
            (DnsSettings { ttl: Some(1_000_000), ..Default::default() }, "dns.ttl"),
        ] {
            let e = s.resolve().unwrap_err();
            assert!(e.to_string().contains(key), "{e}");
        }
    }
}
