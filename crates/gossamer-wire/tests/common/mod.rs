//! Proptest strategies and frame helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use gossamer_wire::*;
use proptest::collection::vec;
use proptest::prelude::*;
use rand::SeedableRng;

/// Valid node names: the usual `base@ip` shape, long ASCII names up to the
/// limit, and non-ASCII names without whitespace or control characters.
pub fn node_name() -> impl Strategy<Value = NodeName> {
    prop_oneof![
        4 => "[a-z][a-z0-9_-]{0,15}@[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        1 => "[a-zA-Z0-9@._:-]{1,255}",
        1 => "[a-zé日本ß@]{1,60}",
    ]
    .prop_map(|s| NodeName::new(&s).expect("strategy yields valid names"))
}

/// IPv4 and IPv6 socket addresses. Flow info and scope id are host-local and
/// are not carried on the wire, so they are left zero.
pub fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port)),
    ]
}

pub fn node_id() -> impl Strategy<Value = NodeId> {
    (node_name(), socket_addr()).prop_map(|(name, addr)| NodeId::new(name, addr))
}

/// Metadata within every bound: entries that would break a bound are skipped.
pub fn metadata() -> impl Strategy<Value = Metadata> {
    let entry = || (prop_oneof![3 => "[a-z]{1,12}", 1 => "[a-z0-9_.-]{1,64}"], vec(any::<u8>(), 0..48));
    // Mostly small maps; sometimes big ones that hit the entry and byte limits.
    prop_oneof![6 => vec(entry(), 0..4), 1 => vec(entry(), 0..40)].prop_map(|entries| {
        let mut meta = Metadata::new();
        for (key, value) in entries {
            let _ = meta.insert(&key, value);
        }
        meta
    })
}

pub fn member_status() -> impl Strategy<Value = MemberStatus> {
    prop_oneof![
        Just(MemberStatus::Alive),
        Just(MemberStatus::Suspect),
        Just(MemberStatus::Dead),
        Just(MemberStatus::Left),
    ]
}

pub fn update() -> impl Strategy<Value = Update> {
    prop_oneof![
        (node_id(), any::<u64>(), metadata()).prop_map(|(node, incarnation, metadata)| Update::Alive(Alive {
            node,
            incarnation,
            metadata
        })),
        (node_name(), any::<u64>(), node_name()).prop_map(|(node, incarnation, from)| Update::Suspect(Suspect {
            node,
            incarnation,
            from
        })),
        (node_name(), any::<u64>(), node_name()).prop_map(|(node, incarnation, from)| Update::Confirm(Confirm {
            node,
            incarnation,
            from
        })),
        (node_name(), any::<u64>()).prop_map(|(node, incarnation)| Update::Leave(Leave { node, incarnation })),
        (node_name(), user_key(), any::<u64>(), vec(any::<u8>(), 0..64))
            .prop_map(|(origin, key, version, payload)| Update::User(UserBroadcast { origin, key, version, payload })),
        query().prop_map(|q| Update::Query(Box::new(q))),
    ]
}

/// Valid user keys and query names: short ASCII, up to the limit, non-ASCII.
pub fn user_key() -> impl Strategy<Value = UserKey> {
    prop_oneof![
        4 => "[a-z][a-z0-9/_-]{0,15}",
        1 => "[ -~]{1,64}",
        1 => "[a-zé日本ß ]{1,21}",
    ]
    .prop_map(|s| UserKey::new(&s).expect("strategy yields valid keys"))
}

pub fn query_filter() -> impl Strategy<Value = QueryFilter> {
    (vec(node_name(), 0..4), vec(("[a-z]{0,8}", "[a-zé0-9]{0,8}"), 0..4))
        .prop_map(|(nodes, tags)| QueryFilter { nodes, tags })
}

pub fn query() -> impl Strategy<Value = Query> {
    (node_id(), any::<u64>(), user_key(), vec(any::<u8>(), 0..64), query_filter(), any::<u32>()).prop_map(
        |(origin, id, name, payload, filter, timeout_ms)| Query { origin, id, name, payload, filter, timeout_ms },
    )
}

pub fn push_pull() -> impl Strategy<Value = PushPull> {
    (
        any::<bool>(),
        vec(
            (node_id(), any::<u64>(), member_status(), metadata())
                .prop_map(|(node, incarnation, status, metadata)| MemberState { node, incarnation, status, metadata }),
            0..6,
        ),
        vec(any::<u8>(), 0..64),
        any::<u64>(),
    )
        .prop_map(|(join, members, app_state, user_ltime)| PushPull { join, members, app_state, user_ltime })
}

pub fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u32>(), node_name(), node_id()).prop_map(|(seq, target, from)| Message::Ping(Ping {
            seq,
            target,
            from
        })),
        (any::<u32>(), node_name()).prop_map(|(seq, from)| Message::Ack(Ack { seq, from })),
        (any::<u32>(), node_name()).prop_map(|(seq, from)| Message::Nack(Nack { seq, from })),
        (any::<u32>(), node_id(), node_id()).prop_map(|(seq, target, from)| Message::PingReq(PingReq {
            seq,
            target,
            from
        })),
        Just(Message::Gossip),
        (node_id(), any::<u64>(), any::<u32>()).prop_map(|(node, incarnation, metadata_digest)| {
            Message::Heartbeat(Heartbeat { node, incarnation, metadata_digest })
        }),
        push_pull().prop_map(Message::PushPullRequest),
        push_pull().prop_map(Message::PushPullResponse),
        (any::<u64>(), node_name(), vec(any::<u8>(), 0..64))
            .prop_map(|(id, from, payload)| Message::QueryResponse(QueryResponse { id, from, payload })),
    ]
}

pub fn packet() -> impl Strategy<Value = Packet> {
    (message(), vec(update(), 0..8)).prop_map(|(message, updates)| Packet { message, updates })
}

pub fn label() -> impl Strategy<Value = ClusterLabel> {
    "[a-z0-9-]{0,40}".prop_map(|s| ClusterLabel::new(&s).expect("short label"))
}

pub fn key(byte: u8) -> SecretKey {
    SecretKey::from_bytes(&[byte; KEY_LEN]).expect("32 bytes")
}

pub fn keyring(primary: SecretKey) -> Arc<Keyring> {
    Arc::new(Keyring::new(primary, &mut rand_chacha::ChaCha8Rng::seed_from_u64(42)))
}

/// A codec with a large cap, so push-pull packets of any generated size fit.
pub fn plain_codec(label: ClusterLabel) -> FrameCodec {
    FrameCodec::new(label).with_max_frame_len(DEFAULT_MAX_STREAM_FRAME).expect("cap")
}

pub fn encrypted_codec(label: ClusterLabel, primary: SecretKey) -> FrameCodec {
    plain_codec(label).with_keyring(keyring(primary))
}

pub fn encode(codec: &FrameCodec, packet: &Packet) -> Vec<u8> {
    let mut buf = bytes::BytesMut::new();
    let len = codec.encode(packet, &mut buf).expect("valid packets encode");
    assert_eq!(len, buf.len());
    buf.to_vec()
}

/// A plaintext frame around an arbitrary (possibly hostile) body, with a
/// correct header and CRC, so the body parser is what gets exercised.
pub fn frame_around(label: &[u8], flags: u8, body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&MAGIC);
    frame.push(PROTOCOL_VERSION);
    frame.extend_from_slice(&[0; 4]);
    frame.push(flags);
    frame.push(label.len() as u8);
    frame.extend_from_slice(label);
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(body);
    fix_crc(&mut frame);
    frame
}

/// Recomputes the CRC of a frame whose header was edited.
pub fn fix_crc(frame: &mut [u8]) {
    let crc = frame_checksum(frame).expect("a whole checksum field");
    frame[3..7].copy_from_slice(&crc.to_le_bytes());
}

/// A seeded RNG for keyrings (nonce prefixes) in tests.
pub fn test_rng() -> rand_chacha::ChaCha8Rng {
    rand_chacha::ChaCha8Rng::seed_from_u64(7)
}

/// bincode's varint (standard config) of `n`, for hand-made hostile bodies.
pub fn varint(n: u64) -> Vec<u8> {
    match n {
        0..=250 => vec![n as u8],
        251..=0xffff => [&[251u8][..], &(n as u16).to_le_bytes()].concat(),
        0x1_0000..=0xffff_ffff => [&[252u8][..], &(n as u32).to_le_bytes()].concat(),
        _ => [&[253u8][..], &n.to_le_bytes()].concat(),
    }
}
