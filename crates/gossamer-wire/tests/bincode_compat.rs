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
