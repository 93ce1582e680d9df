//! The hand-written body codec must be byte-for-byte bincode's standard
//! encoding of the serde types, in both directions, so the documented format
//! ("a bincode body") stays true and the serde impls stay interchangeable.

mod common;

use common::*;
use gossamer_wire::*;
use proptest::collection::vec;
use proptest::prelude::*;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<{ 1 << 30 }>()
}

fn body_of(codec: &FrameCodec, packet: &Packet) -> Vec<u8> {
    encode(codec, packet)[codec.overhead()..].to_vec()
}

/// What bincode makes of `body`: the packet if it decodes and uses every byte.
fn bincode_decode(body: &[u8]) -> Option<Packet> {
    match bincode::serde::borrow_decode_from_slice::<Packet, _>(body, config()) {
        Ok((packet, used)) if used == body.len() => Some(packet),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn encoding_is_bincodes(packet in packet()) {
        let codec = plain_codec(ClusterLabel::new("prod").unwrap());
        let ours = body_of(&codec, &packet);
        let theirs = bincode::serde::encode_to_vec(&packet, config()).unwrap();
        prop_assert_eq!(&ours, &theirs);
        prop_assert_eq!(packet.encoded_len(), theirs.len());
        prop_assert_eq!(encoded_len(&packet), theirs.len());
        prop_assert_eq!(packet.message.encoded_len(), encoded_len(&packet.message));
        for update in &packet.updates {
            prop_assert_eq!(update.encoded_len(), encoded_len(update));
        }
        prop_assert_eq!(bincode_decode(&ours), Some(packet));
    }

    #[test]
    fn decoding_agrees_with_bincode_on_damaged_bodies(
        packet in packet(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let codec = plain_codec(ClusterLabel::new("prod").unwrap());
        let mut body = body_of(&codec, &packet);
        for (at, byte) in edits {
            let at = at.index(body.len());
            body[at] = byte;
        }
        if truncate {
            body.truncate(cut.index(body.len() + 1));
        }
        let ours = codec.decode(&frame_around(b"prod", 0, &body)).ok();
        prop_assert_eq!(ours, bincode_decode(&body));
    }

    #[test]
    fn decoding_agrees_with_bincode_on_random_bodies(body in vec(any::<u8>(), 0..256)) {
        let codec = plain_codec(ClusterLabel::default());
        let ours = codec.decode(&frame_around(b"", 0, &body)).ok();
        prop_assert_eq!(ours, bincode_decode(&body));
    }
}

#[test]
fn varint_boundaries_match() {
    // Sequence numbers, incarnations and ports right at bincode's varint size steps.
    let codec = plain_codec(ClusterLabel::default());
    for n in [0u64, 250, 251, 0xffff, 0x1_0000, 0xffff_ffff, 0x1_0000_0000, u64::MAX] {
        let seq = n.min(u32::MAX as u64) as u32;
        let port = n.min(u16::MAX as u64) as u16;
        let node = NodeId::new("a@h".parse().unwrap(), std::net::SocketAddr::from(([127, 0, 0, 1], port)));
        let packet = Packet {
            message: Message::Ping(Ping { seq, target: "b@h".parse().unwrap(), from: node.clone() }),
            updates: vec![Update::Alive(Alive { node, incarnation: n, metadata: Metadata::new() })],
        };
        let ours = body_of(&codec, &packet);
        assert_eq!(ours, bincode::serde::encode_to_vec(&packet, config()).unwrap(), "n = {n}");
        assert_eq!(codec.decode(&encode(&codec, &packet)).unwrap(), packet);
    }
}

/// Metadata as a peer might send it: keys out of order, repeated, or with
/// longer length varints than needed. bincode decides what it means (the
/// serde path inserts entry by entry); ours must agree, and the result must
/// equal (and re-encode like) the same map built by `insert`.
#[test]
fn unusual_metadata_encodings_decode_like_bincode() {
    let codec = plain_codec(ClusterLabel::new("prod").unwrap());
    // Gossip, one Alive update for "a@h" at 127.0.0.1:1, incarnation 1, then the metadata.
    let alive = [vec![4, 1, 0], varint(3), b"a@h".to_vec(), vec![0, 127, 0, 0, 1, 1, 1]].concat();
    let entry = |key: &[u8], value: &[u8]| {
        [varint(key.len() as u64), key.to_vec(), varint(value.len() as u64), value.to_vec()].concat()
    };
    let long_len = |bytes: &[u8]| [vec![251], (bytes.len() as u16).to_le_bytes().to_vec(), bytes.to_vec()].concat();
    let cases: Vec<(&str, bool, u64, Vec<u8>)> = vec![
        ("sorted", true, 2, [entry(b"a", b"1"), entry(b"b", b"2")].concat()),
        ("unsorted", true, 2, [entry(b"b", b"2"), entry(b"a", b"1")].concat()),
        ("repeated key", true, 3, [entry(b"a", b"1"), entry(b"b", b"2"), entry(b"a", b"3")].concat()),
        ("long key varint", true, 1, [long_len(b"zone"), varint(2), b"eu".to_vec()].concat()),
        ("long value varint", true, 2, [entry(b"a", b"1"), varint(1), b"b".to_vec(), long_len(b"xy")].concat()),
        ("empty key", false, 1, entry(b"", b"v")),
        ("empty key later", false, 2, [entry(b"a", b"1"), entry(b"", b"v")].concat()),
        ("too large", false, 2, [entry(b"a", &[7; 300]), entry(b"b", &[7; 300])].concat()),
        ("too large, then fixed", true, 2, [entry(b"a", &[7; 300]), entry(b"a", &[7; 3])].concat()),
        ("too many", false, 33, (0..33u8).flat_map(|i| entry(&[b'a' + i / 26, b'a' + i % 26], b"")).collect()),
        ("not UTF-8", false, 1, entry(&[0xff], b"v")),
        ("truncated", false, 2, entry(b"a", b"1")),
    ];
    for (what, valid, count, entries) in cases {
        let body = [alive.clone(), varint(count), entries].concat();
        let ours = codec.decode(&frame_around(b"prod", 0, &body)).ok();
        let theirs = bincode_decode(&body);
        assert_eq!(ours, theirs, "{what}");
        assert_eq!(ours.is_some(), valid, "{what}");
        if let Some(packet) = ours {
            let Update::Alive(alive) = &packet.updates[0] else { panic!("{what}: {packet:?}") };
            let mut rebuilt = Metadata::new();
            for (key, value) in alive.metadata.iter() {
                rebuilt.insert(key, value.to_vec()).unwrap();
            }
            assert_eq!(alive.metadata, rebuilt, "{what}");
            assert_eq!(body_of(&codec, &packet), bincode::serde::encode_to_vec(&packet, config()).unwrap(), "{what}");
        }
    }
}

/// The application items (appended variants) at varint size steps, and
/// keys that break the key bound on the wire: both decoders agree, and the
/// encodings of the older variants are untouched (their tags did not move).
#[test]
fn application_items_match_bincode_and_bad_keys_are_refused_by_both() {
    let codec = plain_codec(ClusterLabel::new("prod").unwrap());
    let origin = NodeId::new("a@h".parse().unwrap(), std::net::SocketAddr::from(([127, 0, 0, 1], 7946)));
    for n in [0u64, 250, 251, 0xffff, 0x1_0000, u64::MAX] {
        let filter = QueryFilter { nodes: vec!["b@h".parse().unwrap()], tags: vec![("role".into(), "db".into())] };
        let packet = Packet {
            message: Message::QueryResponse(QueryResponse {
                id: n,
                from: "b@h".parse().unwrap(),
                payload: vec![1; 300],
            }),
            updates: vec![
                Update::User(UserBroadcast {
                    origin: "a@h".parse().unwrap(),
                    key: UserKey::new(&"k".repeat(64)).unwrap(),
                    version: n,
                    payload: vec![2; n.min(300) as usize],
                }),
                Update::Query(Box::new(Query {
                    origin: origin.clone(),
                    id: n,
                    name: UserKey::new("q").unwrap(),
                    payload: vec![],
                    filter,
                    timeout_ms: n.min(u32::MAX as u64) as u32,
                })),
            ],
        };
        let ours = body_of(&codec, &packet);
        assert_eq!(ours, bincode::serde::encode_to_vec(&packet, config()).unwrap(), "n = {n}");
        assert_eq!(bincode_decode(&ours), Some(packet.clone()));
        assert_eq!(codec.decode(&encode(&codec, &packet)).unwrap(), packet);
    }
    // Tags 4 (User), 5 (Query) and 8 (QueryResponse): the older ones keep 0..=3 and 0..=7.
    let leave = Update::Leave(Leave { node: "a@h".parse().unwrap(), incarnation: 1 });
    assert_eq!(bincode::serde::encode_to_vec(&leave, config()).unwrap()[0], 3);
    // A user broadcast whose key is empty or 65 bytes: refused by both decoders.
    for key in [String::new(), "k".repeat(65)] {
        let body = [vec![4, 1, 4], varint(3), b"a@h".to_vec(), varint(key.len() as u64), key.into_bytes(), vec![1, 0]]
            .concat();
        assert_eq!(bincode_decode(&body), None);
        let err = codec.decode(&frame_around(b"prod", 0, &body)).unwrap_err();
        assert!(matches!(err, DecodeError::Malformed(ref m) if m.contains("user key")), "{err:?}");
    }
    let valid = [vec![4, 1, 4], varint(3), b"a@h".to_vec(), varint(1), b"k".to_vec(), vec![1, 0]].concat();
    assert!(bincode_decode(&valid).is_some());
    assert!(codec.decode(&frame_around(b"prod", 0, &valid)).is_ok());
}

/// The push-pull's trailing Lamport clock (`user_ltime`) at varint size
/// steps: both encoders agree, and a body cut before it (the format of
/// peers without the field) is refused by both decoders.
#[test]
fn push_pull_clock_matches_bincode_and_is_required() {
    let codec = plain_codec(ClusterLabel::new("prod").unwrap());
    let me = NodeId::new("a@h".parse().unwrap(), std::net::SocketAddr::from(([127, 0, 0, 1], 7946)));
    let member = MemberState { node: me, incarnation: 3, status: MemberStatus::Alive, metadata: Metadata::new() };
    for user_ltime in [0u64, 250, 251, 0xffff, 0x1_0000, u32::MAX as u64 + 1, u64::MAX] {
        let state = PushPull { join: true, members: vec![member.clone()], app_state: b"app".to_vec(), user_ltime };
        let packet = Packet::new(Message::PushPullResponse(state));
        let ours = body_of(&codec, &packet);
        assert_eq!(ours, bincode::serde::encode_to_vec(&packet, config()).unwrap(), "user_ltime = {user_ltime}");
        assert_eq!(bincode_decode(&ours), Some(packet.clone()));
        assert_eq!(codec.decode(&encode(&codec, &packet)).unwrap(), packet);
        // Without the clock (and the empty update list after it).
        let clock_len = varint(user_ltime).len();
        let cut = &ours[..ours.len() - 1 - clock_len];
        assert_eq!(bincode_decode(cut), None);
        assert!(codec.decode(&frame_around(b"prod", 0, cut)).is_err(), "user_ltime = {user_ltime}");
    }
}
