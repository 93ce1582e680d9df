//! LAN discovery by UDP multicast heartbeat (EMQX `mcast`, libcluster
//! `Gossip`): every node announces itself to a multicast group every few
//! seconds, and joins whoever it hears that it does not know yet.
//!
//! A heartbeat is an ordinary gossamer frame holding
//! [`Message::Heartbeat`], so it carries the cluster label and is sealed with
//! the cluster secret when one is set: a node of another cluster on the same
//! group is refused exactly like a foreign datagram.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gossamer_core::{Member, Time};
use gossamer_wire::{FrameCodec, Heartbeat, MemberStatus, Message, NodeId, NodeName, Packet};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::UdpSocket;

/// The default group: in the IPv4 organization-local scope (239.192/14).
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(239, 192, 0, 1);
/// The default port of the group.
pub const DEFAULT_PORT: u16 = 7947;
/// How many heard-of nodes the join rate limiter remembers.
const MAX_TRACKED: usize = 4096;

/// Multicast heartbeat settings (IPv4 groups only).
///
/// ```
/// use gossamer_net::MulticastConfig;
/// let mcast = MulticastConfig { interface: Some("127.0.0.1".parse().unwrap()), ..MulticastConfig::default() };
/// assert_eq!(mcast.ttl, 1);
/// assert!(mcast.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MulticastConfig {
    /// The IPv4 multicast group.
    pub group: Ipv4Addr,
    /// UDP port of the group.
    pub port: u16,
    /// Interface (by its IPv4 address) to join the group on and send from.
    /// `None`: the node's advertised address. Always set explicitly, since
    /// hosts and namespaces without a default route have no implicit one.
    pub interface: Option<Ipv4Addr>,
    /// IP_MULTICAST_TTL: 1 keeps heartbeats on the local link.
    pub ttl: u32,
    /// IP_MULTICAST_LOOP: deliver heartbeats to this host's own listeners
    /// (several nodes on one host, tests on 127.0.0.1).
    pub loopback: bool,
    /// Time between heartbeats.
    pub interval: Duration,
}

impl Default for MulticastConfig {
    fn default() -> Self {
        Self {
            group: DEFAULT_GROUP,
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
            return Err(("multicast.group", format!("{} is not an IPv4 multicast address", self.group)));
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
/// the host hears the group) and the send socket (IP_MULTICAST_IF, TTL, LOOP).
pub fn open(config: &MulticastConfig, interface: Ipv4Addr) -> io::Result<MulticastSockets> {
    let recv = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    recv.set_reuse_address(true)?;
    recv.set_reuse_port(true)?;
    recv.set_nonblocking(true)?;
    // Binding the group address (not 0.0.0.0) filters out other groups'
    // traffic on the same port.
    recv.bind(&SockAddr::from(SocketAddrV4::new(config.group, config.port)))?;
    recv.join_multicast_v4(&config.group, &interface)?;

    let send = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    send.set_nonblocking(true)?;
    send.set_multicast_if_v4(&interface)?;
    send.set_multicast_ttl_v4(config.ttl)?;
    send.set_multicast_loop_v4(config.loopback)?;
    send.bind(&SockAddr::from(SocketAddrV4::new(interface, 0)))?;

    Ok(MulticastSockets {
        recv: UdpSocket::from_std(recv.into())?,
        send: UdpSocket::from_std(send.into())?,
        target: SocketAddr::V4(SocketAddrV4::new(config.group, config.port)),
    })
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
        let bad = MulticastConfig { group: Ipv4Addr::new(10, 0, 0, 1), ..MulticastConfig::default() };
        assert_eq!(bad.validate().unwrap_err().0, "multicast.group");
        let bad = MulticastConfig { ttl: 0, ..MulticastConfig::default() };
        assert_eq!(bad.validate().unwrap_err().0, "multicast.ttl");
    }

    #[tokio::test]
    async fn loopback_sockets_hear_each_other() {
        // A port free right now, so parallel test runs do not share a group.
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = MulticastConfig { port, ..MulticastConfig::default() };
        let lo = Ipv4Addr::LOCALHOST;
        let a = open(&config, lo).unwrap();
        let b = open(&config, lo).unwrap();
        a.send.send_to(b"beat", a.target).await.unwrap();
        let mut buf = [0u8; 16];
        let (n, _) = tokio::time::timeout(Duration::from_secs(10), b.recv.recv_from(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf[..n], b"beat");
    }
}
