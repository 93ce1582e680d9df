//! LAN discovery by UDP multicast heartbeat (EMQX `mcast`, libcluster
//! `Gossip`): every node announces itself to a multicast group every few
//! seconds, and joins whoever it hears that it does not know yet.
//!
//! A heartbeat is an ordinary gossamer frame holding
//! [`Message::Heartbeat`], so it carries the cluster label and is sealed with
//! the cluster secret when one is set: a node of another cluster on the same
//! group is refused exactly like a foreign datagram.
//!
//! Both families work: an IPv4 group (default [`DEFAULT_GROUP`], joined on
//! the interface with a given IPv4 address) or an IPv6 group (e.g.
//! [`DEFAULT_GROUP_V6`], joined on an interface given by index, name or one
//! of its addresses: IPv6 memberships and IPV6_MULTICAST_IF are per
//! interface index).

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::str::FromStr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gossamer_core::{Member, Time};
use gossamer_wire::{FrameCodec, Heartbeat, MemberStatus, Message, NodeId, NodeName, Packet};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::UdpSocket;

/// The default group: in the IPv4 organization-local scope (239.192/14).
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(239, 192, 0, 1);
/// A default IPv6 group: `ff12::6773:6d72` ("gsmr"). Flags 1 (transient,
/// not an IANA-assigned group) and scope 2 (link-local): like TTL 1 for
/// IPv4, routers never forward it off the link, and a link-local-scope
/// group needs no multicast routing at all, only the interface.
pub const DEFAULT_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff12, 0, 0, 0, 0, 0, 0x6773, 0x6d72);
/// The default port of the group.
pub const DEFAULT_PORT: u16 = 7947;
/// How many heard-of nodes the join rate limiter remembers.
const MAX_TRACKED: usize = 4096;

/// Which interface heartbeats are sent from and the group is joined on.
///
/// An IPv4 group takes the interface's IPv4 address ([`Self::Addr`]). An
/// IPv6 group takes the interface index, its name (resolved with
/// `if_nametoindex`) or one of its IPv6 addresses (resolved with
/// `getifaddrs`), all at start, in the node's network namespace.
///
/// ```
/// use gossamer_net::multicast::MulticastInterface;
/// assert_eq!("10.0.0.7".parse::<MulticastInterface>().unwrap(), MulticastInterface::Addr("10.0.0.7".parse().unwrap()));
/// assert_eq!("3".parse::<MulticastInterface>().unwrap(), MulticastInterface::Index(3));
/// assert_eq!("eth0".parse::<MulticastInterface>().unwrap(), MulticastInterface::Name("eth0".into()));
/// assert!("not an interface!".parse::<MulticastInterface>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MulticastInterface {
    /// The interface holding this address.
    Addr(IpAddr),
    /// The interface with this index (IPv6 groups).
    Index(u32),
    /// The interface with this name, e.g. `eth0` (IPv6 groups).
    Name(String),
}

impl FromStr for MulticastInterface {
    type Err = String;
    /// An IP address, a decimal index, or an interface name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self::Addr(ip));
        }
        if let Ok(index) = s.parse::<u32>() {
            return Ok(Self::Index(index));
        }
        // IFNAMSIZ is 16 with the NUL; names are printable, without spaces or '/'.
        let name_ok = !s.is_empty()
            && s.len() < 16
            && s.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b':' && b != b'!');
        if name_ok {
            Ok(Self::Name(s.to_owned()))
        } else {
            Err(format!("{s:?} is neither an IP address, an interface index nor an interface name"))
        }
    }
}

impl fmt::Display for MulticastInterface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr(ip) => ip.fmt(f),
            Self::Index(i) => i.fmt(f),
            Self::Name(n) => f.write_str(n),
        }
    }
}

impl From<Ipv4Addr> for MulticastInterface {
    fn from(ip: Ipv4Addr) -> Self {
        Self::Addr(IpAddr::V4(ip))
    }
}

impl From<IpAddr> for MulticastInterface {
    fn from(ip: IpAddr) -> Self {
        Self::Addr(ip)
    }
}

/// Multicast heartbeat settings, IPv4 or IPv6 by the group's family.
///
/// ```
/// use gossamer_net::MulticastConfig;
/// use gossamer_net::multicast::{MulticastInterface, DEFAULT_GROUP_V6};
/// let v4 = MulticastConfig { interface: Some("127.0.0.1".parse().unwrap()), ..MulticastConfig::default() };
/// assert_eq!(v4.ttl, 1);
/// assert!(v4.validate().is_ok());
/// let v6 = MulticastConfig {
///     group: DEFAULT_GROUP_V6.into(),
///     interface: Some(MulticastInterface::Name("eth0".into())),
///     ..MulticastConfig::default()
/// };
/// assert!(v6.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MulticastConfig {
    /// The multicast group; its family picks IPv4 or IPv6 sockets.
    pub group: IpAddr,
    /// UDP port of the group.
    pub port: u16,
    /// Interface to join the group on and send from. `None`: the one
    /// holding the node's advertised address (an IPv6 link-local advertise
    /// address's scope id is used as is). Best set explicitly, since hosts
    /// and namespaces without a default route have no implicit one.
    pub interface: Option<MulticastInterface>,
    /// IP_MULTICAST_TTL (IPv4) or IPV6_MULTICAST_HOPS (IPv6): 1 keeps
    /// heartbeats on the local link.
    pub ttl: u32,
    /// IP_MULTICAST_LOOP / IPV6_MULTICAST_LOOP: deliver heartbeats to this
    /// host's own listeners (several nodes on one host, tests on loopback).
    pub loopback: bool,
    /// Time between heartbeats.
    pub interval: Duration,
}

impl Default for MulticastConfig {
    fn default() -> Self {
        Self {
            group: IpAddr::V4(DEFAULT_GROUP),
            port: DEFAULT_PORT,
            interface: None,
            ttl: 1,
            loopback: true,
            interval: Duration::from_secs(2),
        }
    }
}

impl MulticastConfig {
    /// Checks every value; the error names the field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !self.group.is_multicast() {
            return Err(("multicast.group", format!("{} is not a multicast address", self.group)));
        }
        match (&self.group, &self.interface) {
            (IpAddr::V4(_), Some(MulticastInterface::Addr(IpAddr::V4(_)))) | (_, None) => {}
            (IpAddr::V4(_), Some(other)) => {
                return Err((
                    "multicast.interface",
                    format!("an IPv4 group takes the interface's IPv4 address, not {other:?}"),
                ))
            }
            (IpAddr::V6(_), Some(MulticastInterface::Addr(IpAddr::V4(ip)))) => {
                return Err((
                    "multicast.interface",
                    format!("an IPv6 group takes an interface index, name or IPv6 address, not {ip}"),
                ))
            }
            (IpAddr::V6(_), Some(MulticastInterface::Index(0))) => {
                return Err(("multicast.interface", "interface index 0 means none; give the interface".into()))
            }
            (IpAddr::V6(_), Some(_)) => {}
        }
        if self.port == 0 {
            return Err(("multicast.port", "must not be 0".into()));
        }
        if self.ttl == 0 || self.ttl > 255 {
            return Err(("multicast.ttl", format!("{} is not in 1..=255", self.ttl)));
        }
        if self.interval < Duration::from_millis(10) {
            return Err(("multicast.interval", "must be at least 10 ms".into()));
        }
        Ok(())
    }

    /// The interface the node will use, given its advertised address: an
    /// IPv4 address for an IPv4 group, an interface index for an IPv6 one.
    /// Names and addresses are looked up here (in the calling thread's
    /// network namespace).
    pub fn resolve_interface(&self, advertise: SocketAddr) -> io::Result<ResolvedInterface> {
        let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, msg);
        match self.group {
            IpAddr::V4(_) => match (&self.interface, advertise) {
                (Some(MulticastInterface::Addr(IpAddr::V4(ip))), _) => Ok(ResolvedInterface::V4(*ip)),
                (None, SocketAddr::V4(a)) if !a.ip().is_unspecified() => Ok(ResolvedInterface::V4(*a.ip())),
                (None, _) => Err(invalid("an IPv4 group needs the interface's IPv4 address".into())),
                (Some(other), _) => Err(invalid(format!("an IPv4 group takes an IPv4 interface address, not {other}"))),
            },
            IpAddr::V6(_) => {
                let index = match (&self.interface, advertise) {
                    (Some(MulticastInterface::Index(i)), _) => *i,
                    (Some(MulticastInterface::Name(name)), _) => iface::index_of_name(name)?,
                    (Some(MulticastInterface::Addr(IpAddr::V6(ip))), _) => iface::index_of_addr(ip)?,
                    (None, SocketAddr::V6(a)) if a.scope_id() != 0 => a.scope_id(),
                    (None, SocketAddr::V6(a)) if !a.ip().is_unspecified() => iface::index_of_addr(a.ip())?,
                    (None, _) => {
                        return Err(invalid("an IPv6 group needs an interface (index, name or address)".into()))
                    }
                    (Some(MulticastInterface::Addr(IpAddr::V4(ip))), _) => {
                        return Err(invalid(format!("an IPv6 group cannot use the IPv4 address {ip}")))
                    }
                };
                Ok(ResolvedInterface::V6(index))
            }
        }
    }
}

/// An interface ready for the socket calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolvedInterface {
    /// IPv4: the interface's address (IP_ADD_MEMBERSHIP, IP_MULTICAST_IF).
    V4(Ipv4Addr),
    /// IPv6: the interface index (IPV6_JOIN_GROUP, IPV6_MULTICAST_IF).
    V6(u32),
}

impl fmt::Display for ResolvedInterface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(ip) => ip.fmt(f),
            Self::V6(index) => write!(f, "if#{index}"),
        }
    }
}

/// The two sockets of multicast discovery.
pub struct MulticastSockets {
    /// Bound to the group's port, member of the group on the interface.
    pub recv: UdpSocket,
    /// Sends heartbeats out of the interface.
    pub send: UdpSocket,
    /// Where heartbeats go.
    pub target: SocketAddr,
}

/// Opens the receive socket (SO_REUSEADDR and SO_REUSEPORT, so every node on
/// the host hears the group) and the send socket (multicast interface, TTL
/// or hop limit, loop), for the group's family.
pub fn open(config: &MulticastConfig, interface: ResolvedInterface) -> io::Result<MulticastSockets> {
    match (config.group, interface) {
        (IpAddr::V4(group), ResolvedInterface::V4(ip)) => open_v4(config, group, ip),
        (IpAddr::V6(group), ResolvedInterface::V6(index)) => open_v6(config, group, index),
        (group, interface) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("group {group} and interface {interface} are of different families"),
        )),
    }
}

fn open_v4(config: &MulticastConfig, group: Ipv4Addr, interface: Ipv4Addr) -> io::Result<MulticastSockets> {
    let recv = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    recv.set_reuse_address(true)?;
    recv.set_reuse_port(true)?;
    recv.set_nonblocking(true)?;
    // Binding the group address (not 0.0.0.0) filters out other groups'
    // traffic on the same port.
    recv.bind(&SockAddr::from(SocketAddrV4::new(group, config.port)))?;
    recv.join_multicast_v4(&group, &interface)?;

    let send = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    send.set_nonblocking(true)?;
    send.set_multicast_if_v4(&interface)?;
    send.set_multicast_ttl_v4(config.ttl)?;
    send.set_multicast_loop_v4(config.loopback)?;
    send.bind(&SockAddr::from(SocketAddrV4::new(interface, 0)))?;

    Ok(MulticastSockets {
        recv: UdpSocket::from_std(recv.into())?,
        send: UdpSocket::from_std(send.into())?,
        target: SocketAddr::V4(SocketAddrV4::new(group, config.port)),
    })
}

fn open_v6(config: &MulticastConfig, group: Ipv6Addr, index: u32) -> io::Result<MulticastSockets> {
    let recv = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
    recv.set_only_v6(true)?;
    recv.set_reuse_address(true)?;
    recv.set_reuse_port(true)?;
    recv.set_nonblocking(true)?;
    // As for IPv4, bound to the group (with the interface as scope: a
    // link-local-scope group is only meaningful on one link) so other
    // groups on the same port stay out.
    recv.bind(&SockAddr::from(SocketAddrV6::new(group, config.port, 0, index)))?;
    recv.join_multicast_v6(&group, index)?;

    let send = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
    send.set_only_v6(true)?;
    send.set_nonblocking(true)?;
    send.set_multicast_if_v6(index)?;
    send.set_multicast_hops_v6(config.ttl)?;
    send.set_multicast_loop_v6(config.loopback)?;
    send.bind(&SockAddr::from(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0)))?;

    Ok(MulticastSockets {
        recv: UdpSocket::from_std(recv.into())?,
        send: UdpSocket::from_std(send.into())?,
        target: SocketAddr::V6(SocketAddrV6::new(group, config.port, 0, index)),
    })
}

/// Interface lookups for IPv6 groups (by name, by address), done in the
/// calling thread's network namespace, through the C library.
mod iface {
    use std::ffi::{CStr, CString};
    use std::io;
    use std::net::Ipv6Addr;

    /// `if_nametoindex`.
    pub(super) fn index_of_name(name: &str) -> io::Result<u32> {
        let c = CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))?;
        // SAFETY: `c` is a valid NUL-terminated string for the whole call.
        let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
        if index == 0 {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("no interface named {name:?}")));
        }
        Ok(index)
    }

    /// The index of the interface that holds `addr`, via `getifaddrs`.
    pub(super) fn index_of_addr(addr: &Ipv6Addr) -> io::Result<u32> {
        let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
        // SAFETY: getifaddrs fills `list` with a linked list we free below.
        if unsafe { libc::getifaddrs(&mut list) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut found = None;
        let mut cursor = list;
        while !cursor.is_null() {
            // SAFETY: `cursor` is a node of the list getifaddrs returned,
            // alive until freeifaddrs; its fields are valid C values.
            let entry = unsafe { &*cursor };
            cursor = entry.ifa_next;
            if entry.ifa_addr.is_null() || entry.ifa_name.is_null() {
                continue;
            }
            // SAFETY: ifa_addr is non-null and points to a sockaddr.
            if i32::from(unsafe { (*entry.ifa_addr).sa_family }) != libc::AF_INET6 {
                continue;
            }
            // SAFETY: an AF_INET6 address is a sockaddr_in6.
            let sin6 = unsafe { &*(entry.ifa_addr as *const libc::sockaddr_in6) };
            if Ipv6Addr::from(sin6.sin6_addr.s6_addr) == *addr {
                // SAFETY: ifa_name is a non-null NUL-terminated string.
                found = Some(unsafe { CStr::from_ptr(entry.ifa_name) }.to_string_lossy().into_owned());
                break;
            }
        }
        // SAFETY: `list` came from getifaddrs and is freed once.
        unsafe { libc::freeifaddrs(list) };
        match found {
            Some(name) => index_of_name(&name),
            None => Err(io::Error::new(io::ErrorKind::NotFound, format!("no interface holds {addr}"))),
        }
    }
}

/// Encodes this node's heartbeat.
pub fn encode_heartbeat(codec: &FrameCodec, me: &Member) -> Result<Bytes, gossamer_wire::EncodeError> {
    let beat = Heartbeat { node: me.id.clone(), incarnation: me.incarnation, metadata_digest: me.metadata.digest() };
    let mut out = BytesMut::new();
    codec.encode(&Packet::new(Message::Heartbeat(beat)), &mut out)?;
    Ok(out.freeze())
}

/// What a received multicast datagram turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// A heartbeat of another node of this cluster.
    Peer(Heartbeat),
    /// This node's own heartbeat, looped back.
    Myself,
    /// Refused (foreign cluster, wrong secret, garbage, not a heartbeat).
    Rejected(String),
}

/// Decodes a multicast datagram.
pub fn decode_heartbeat(codec: &FrameCodec, me: &NodeName, bytes: &[u8], scratch: &mut Vec<u8>) -> Heard {
    match codec.decode_with_scratch(bytes, scratch) {
        Ok(Packet { message: Message::Heartbeat(beat), .. }) if &beat.node.name == me => Heard::Myself,
        Ok(Packet { message: Message::Heartbeat(beat), .. }) => Heard::Peer(beat),
        Ok(other) => Heard::Rejected(format!("not a heartbeat: {:?}", std::mem::discriminant(&other.message))),
        Err(e) => Heard::Rejected(e.to_string()),
    }
}

/// Decides which heard-of nodes to join, at most once per `cooldown` each,
/// so a heartbeat every second does not start a push-pull every second while
/// a join is still in flight.
#[derive(Debug)]
pub struct JoinLimiter {
    cooldown: Duration,
    last: HashMap<NodeName, Time>,
}

impl JoinLimiter {
    /// A limiter that joins one node at most once per `cooldown`.
    pub fn new(cooldown: Duration) -> Self {
        Self { cooldown, last: HashMap::new() }
    }

    /// Whether to join the node that sent `beat`, given what the core knows
    /// of it: unknown, or known as dead or left (it came back).
    pub fn should_join(&mut self, now: Time, beat: &Heartbeat, known: Option<&Member>) -> Option<NodeId> {
        let wanted = match known {
            None => true,
            Some(m) => matches!(m.status, MemberStatus::Dead | MemberStatus::Left),
        };
        if !wanted {
            return None;
        }
        if let Some(&at) = self.last.get(&beat.node.name) {
            if now.saturating_sub(at) < self.cooldown {
                return None;
            }
        }
        if self.last.len() >= MAX_TRACKED {
            // Bounded memory under a flood of forged names: forget the old.
            let cooldown = self.cooldown;
            self.last.retain(|_, at| now.saturating_sub(*at) < cooldown);
            if self.last.len() >= MAX_TRACKED {
                self.last.clear();
            }
        }
        self.last.insert(beat.node.name.clone(), now);
        Some(beat.node.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gossamer_wire::{ClusterLabel, Keyring, Metadata, SecretKey};
    use rand_core::SeedableRng;
    use std::sync::Arc;

    fn member(name: &str, status: MemberStatus) -> Member {
        Member {
            id: NodeId::new(name.parse().unwrap(), "127.0.0.1:7000".parse().unwrap()),
            incarnation: 3,
            status,
            metadata: Metadata::new(),
        }
    }

    fn sealed(label: &str, key: u8) -> FrameCodec {
        let ring =
            Keyring::new(SecretKey::from_bytes(&[key; 32]).unwrap(), &mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
        FrameCodec::new(ClusterLabel::new(label).unwrap()).with_keyring(Arc::new(ring))
    }

    #[test]
    fn heartbeat_roundtrip_and_self_detection() {
        let codec = sealed("prod", 1);
        let me = member("a@h", MemberStatus::Alive);
        let bytes = encode_heartbeat(&codec, &me).unwrap();
        let mut scratch = Vec::new();
        assert_eq!(decode_heartbeat(&codec, &me.id.name, &bytes, &mut scratch), Heard::Myself);
        match decode_heartbeat(&codec, &"b@h".parse().unwrap(), &bytes, &mut scratch) {
            Heard::Peer(beat) => assert_eq!((beat.node, beat.incarnation), (me.id, 3)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn foreign_cluster_and_wrong_secret_are_rejected() {
        let me = member("a@h", MemberStatus::Alive);
        let bytes = encode_heartbeat(&sealed("prod", 1), &me).unwrap();
        let other: NodeName = "b@h".parse().unwrap();
        let mut scratch = Vec::new();
        assert!(matches!(decode_heartbeat(&sealed("prod", 2), &other, &bytes, &mut scratch), Heard::Rejected(_)));
        assert!(matches!(decode_heartbeat(&sealed("test", 1), &other, &bytes, &mut scratch), Heard::Rejected(_)));
        assert!(matches!(decode_heartbeat(&sealed("prod", 1), &other, b"garbage", &mut scratch), Heard::Rejected(_)));
    }

    #[test]
    fn limiter_joins_unknown_and_returning_nodes_once_per_cooldown() {
        let mut limiter = JoinLimiter::new(Duration::from_secs(5));
        let beat = Heartbeat { node: member("b@h", MemberStatus::Alive).id, incarnation: 0, metadata_digest: 0 };
        let t = Duration::from_secs(100);
        assert!(limiter.should_join(t, &beat, None).is_some());
        assert!(limiter.should_join(t + Duration::from_secs(1), &beat, None).is_none());
        assert!(limiter.should_join(t + Duration::from_secs(6), &beat, None).is_some());
        let alive = member("b@h", MemberStatus::Alive);
        assert!(limiter.should_join(t + Duration::from_secs(60), &beat, Some(&alive)).is_none());
        let dead = member("b@h", MemberStatus::Dead);
        assert!(limiter.should_join(t + Duration::from_secs(60), &beat, Some(&dead)).is_some());
    }

    #[test]
    fn limiter_memory_is_bounded() {
        let mut limiter = JoinLimiter::new(Duration::from_secs(5));
        for i in 0..(MAX_TRACKED * 3) {
            let beat = Heartbeat {
                node: NodeId::new(format!("n{i}").parse().unwrap(), "127.0.0.1:1".parse().unwrap()),
                incarnation: 0,
                metadata_digest: 0,
            };
            limiter.should_join(Duration::from_secs(1), &beat, None);
        }
        assert!(limiter.last.len() <= MAX_TRACKED);
    }

    #[test]
    fn validate_names_the_field() {
        let bad = MulticastConfig { group: Ipv4Addr::new(10, 0, 0, 1).into(), ..MulticastConfig::default() };
        assert_eq!(bad.validate().unwrap_err().0, "multicast.group");
        let bad = MulticastConfig { group: "fd00::1".parse().unwrap(), ..MulticastConfig::default() };
        assert_eq!(bad.validate().unwrap_err().0, "multicast.group");
        let bad = MulticastConfig { ttl: 0, ..MulticastConfig::default() };
        assert_eq!(bad.validate().unwrap_err().0, "multicast.ttl");
        // The interface must fit the group's family.
        let v4_by_name = MulticastConfig { interface: Some("eth0".parse().unwrap()), ..MulticastConfig::default() };
        assert_eq!(v4_by_name.validate().unwrap_err().0, "multicast.interface");
        let v6 = MulticastConfig { group: DEFAULT_GROUP_V6.into(), ..MulticastConfig::default() };
        let v6_by_v4 = MulticastConfig { interface: Some("127.0.0.1".parse().unwrap()), ..v6.clone() };
        assert_eq!(v6_by_v4.validate().unwrap_err().0, "multicast.interface");
        let v6_index0 = MulticastConfig { interface: Some(MulticastInterface::Index(0)), ..v6.clone() };
        assert_eq!(v6_index0.validate().unwrap_err().0, "multicast.interface");
        for ok in ["1", "lo", "::1"] {
            let c = MulticastConfig { interface: Some(ok.parse().unwrap()), ..v6.clone() };
            assert!(c.validate().is_ok(), "{ok}");
        }
    }

    #[test]
    fn interfaces_resolve_by_family() {
        let v4 = MulticastConfig::default();
        let adv: SocketAddr = "10.1.2.3:7946".parse().unwrap();
        assert_eq!(v4.resolve_interface(adv).unwrap(), ResolvedInterface::V4(Ipv4Addr::new(10, 1, 2, 3)));
        assert!(v4.resolve_interface("[::1]:7946".parse().unwrap()).is_err(), "no IPv4 address to use");

        let v6 = MulticastConfig { group: DEFAULT_GROUP_V6.into(), ..MulticastConfig::default() };
        let lo = iface::index_of_name("lo").expect("a loopback interface");
        let by = |i: &str| MulticastConfig { interface: Some(i.parse().unwrap()), ..v6.clone() };
        assert_eq!(by("lo").resolve_interface(adv).unwrap(), ResolvedInterface::V6(lo));
        assert_eq!(by("7").resolve_interface(adv).unwrap(), ResolvedInterface::V6(7));
        // A link-local advertise address carries its interface as scope id.
        let scoped = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 7946, 0, 5));
        assert_eq!(v6.resolve_interface(scoped).unwrap(), ResolvedInterface::V6(5));
        assert!(by("no-such-if0").resolve_interface(adv).is_err());
        assert!(v6.resolve_interface(adv).is_err(), "an IPv4 advertise address names no IPv6 interface");
        // By address: ::1 lives on the loopback interface (where IPv6 is on).
        match by("::1").resolve_interface(adv) {
            Ok(found) => assert_eq!(found, ResolvedInterface::V6(lo)),
            Err(e) => eprintln!("skipping the ::1 lookup: no IPv6 on loopback here ({e})"),
        }
    }

    /// The groups this host's kernel lists as joined, per interface index
    /// (`/proc/net/igmp6`: index, name, group in hex, ...).
    fn joined_v6_groups() -> Vec<(u32, Ipv6Addr)> {
        let text = std::fs::read_to_string("/proc/net/igmp6").unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let index = f.first()?.parse().ok()?;
                let hex = f.get(2)?;
                let bytes: Vec<u8> =
                    (0..16).map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()).collect::<Option<_>>()?;
                Some((index, Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?)))
            })
            .collect()
    }

    #[tokio::test]
    async fn v6_sockets_join_the_group_on_the_given_index() {
        // A group of this test only, so parallel runs do not see each other's.
        let group = Ipv6Addr::new(0xff12, 0, 0, 0, 0, 0x6773, std::process::id() as u16, 0x7465);
        let port = std::net::UdpSocket::bind("[::1]:0").map(|s| s.local_addr().unwrap().port());
        let Ok(port) = port else {
            eprintln!("skipping: no IPv6 here");
            return;
        };
        let lo = iface::index_of_name("lo").unwrap();
        let config = MulticastConfig { group: group.into(), port, ..MulticastConfig::default() };
        let sockets = open(&config, ResolvedInterface::V6(lo)).unwrap();
        let send = socket2::SockRef::from(&sockets.send);
        assert_eq!(send.multicast_if_v6().unwrap(), lo, "IPV6_MULTICAST_IF is the index");
        assert_eq!(send.multicast_hops_v6().unwrap(), 1, "IPV6_MULTICAST_HOPS is the ttl");
        assert!(send.multicast_loop_v6().unwrap(), "IPV6_MULTICAST_LOOP follows `loopback`");
        assert_eq!(sockets.target, SocketAddr::V6(SocketAddrV6::new(group, port, 0, lo)));
        assert!(joined_v6_groups().contains(&(lo, group)), "the kernel lists the membership on if#{lo}");
        drop(sockets);
        assert!(!joined_v6_groups().contains(&(lo, group)), "and drops it with the socket");
    }

    #[tokio::test]
    async fn loopback_sockets_hear_each_other() {
        // A port free right now, so parallel test runs do not share a group.
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = MulticastConfig { port, ..MulticastConfig::default() };
        let lo = ResolvedInterface::V4(Ipv4Addr::LOCALHOST);
        let a = open(&config, lo).unwrap();
        let b = open(&config, lo).unwrap();
        a.send.send_to(b"beat", a.target).await.unwrap();
        let mut buf = [0u8; 16];
        let (n, _) = tokio::time::timeout(Duration::from_secs(10), b.recv.recv_from(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf[..n], b"beat");
    }
}
