//! Property tests: every message round-trips, plain and encrypted, and
//! compound packets respect their budget and carry exactly what was pushed.

mod common;

use bytes::BytesMut;
use common::*;
use gossamer_wire::*;
use proptest::collection::vec;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn plain_packets_round_trip(packet in packet(), label in label()) {
        let codec = plain_codec(label);
        let frame = encode(&codec, &packet);
        prop_assert_eq!(codec.frame_len(&frame).unwrap(), Some(frame.len()));
        prop_assert_eq!(codec.decode(&frame).unwrap(), packet);
    }

    #[test]
    fn encrypted_packets_round_trip(packet in packet(), label in label(), key_byte in any::<u8>()) {
        let codec = encrypted_codec(label, key(key_byte));
        let frame = encode(&codec, &packet);
        prop_assert_eq!(frame[FLAGS_AT] & FLAG_ENCRYPTED, FLAG_ENCRYPTED);
        prop_assert_eq!(frame.len(), codec.overhead() + encoded_len(&packet));
        let mut scratch = Vec::new();
        prop_assert_eq!(codec.decode_with_scratch(&frame, &mut scratch).unwrap(), packet.clone());
        // A second frame of the same packet uses a fresh nonce.
        let again = encode(&codec, &packet);
        prop_assert_ne!(&again, &frame);
        prop_assert_eq!(codec.decode_with_scratch(&again, &mut scratch).unwrap(), packet);
    }

    #[test]
    fn decode_into_a_reused_packet_matches_decode(
        packets in vec(packet(), 1..6),
        encrypted in any::<bool>(),
        damage in any::<prop::sample::Index>(),
    ) {
        let codec = if encrypted {
            encrypted_codec(ClusterLabel::new("prod").unwrap(), key(4))
        } else {
            plain_codec(ClusterLabel::new("prod").unwrap())
        };
        // One packet and one scratch buffer for the whole sequence, as a receive loop keeps them.
        let mut received = Packet::new(Message::Gossip);
        let mut scratch = Vec::new();
        for packet in &packets {
            let frame = encode(&codec, packet);
            codec.decode_into(&frame, &mut scratch, &mut received).unwrap();
            prop_assert_eq!(&received, packet);
            // A damaged frame is refused exactly as `decode` refuses it; the next good one decodes cleanly.
            let mut bad = frame.clone();
            let at = damage.index(bad.len());
            bad[at] ^= 0x5a;
            prop_assert_eq!(codec.decode_into(&bad, &mut scratch, &mut received), codec.decode(&bad).map(|_| ()));
        }
        let last = packets.last().unwrap();
        codec.decode_into(&encode(&codec, last), &mut scratch, &mut received).unwrap();
        prop_assert_eq!(&received, last);
    }

    #[test]
    fn encode_parts_matches_packet(message in message(), updates in vec(update(), 0..8)) {
        let codec = plain_codec(ClusterLabel::default());
        let mut parts = BytesMut::new();
        let borrowed: Vec<&Update> = updates.iter().collect();
        codec.encode_parts(&message, &borrowed, &mut parts).unwrap();
        let packet = Packet { message, updates };
        prop_assert_eq!(&parts[..], &encode(&codec, &packet)[..]);
    }

    #[test]
    fn compound_respects_budget_and_carries_exactly_the_pushed_updates(
        message in message(),
        updates in vec(update(), 0..160),
        budget in 100usize..=9000,
        encrypted in any::<bool>(),
    ) {
        let codec = if encrypted {
            encrypted_codec(ClusterLabel::new("prod").unwrap(), key(9))
        } else {
            plain_codec(ClusterLabel::new("prod").unwrap())
        };
        let Ok(mut builder) = codec.compound(&message, budget) else {
            // Refused only when the message alone cannot fit.
            prop_assert!(codec.overhead() + encoded_len(&message) + 3 > budget);
            return Ok(());
        };
        let mut pushed = Vec::new();
        for update in &updates {
            let before = builder.remaining();
            if builder.push(update) {
                pushed.push(update.clone());
                prop_assert_eq!(builder.remaining(), before - encoded_len(update));
            } else {
                prop_assert!(encoded_len(update) > before, "refused an update that fit");
                prop_assert_eq!(builder.remaining(), before);
            }
        }
        prop_assert_eq!(builder.len(), pushed.len());
        let mut out = BytesMut::from(&b"prefix"[..]);
        let report = builder.finish(&mut out).unwrap();
        prop_assert_eq!(report.updates, pushed.len());
        prop_assert_eq!(report.bytes, out.len() - 6);
        prop_assert!(report.bytes <= budget, "{} bytes over a budget of {}", report.bytes, budget);
        prop_assert_eq!(&out[..6], b"prefix");
        let decoded = codec.decode(&out[6..]).unwrap();
        prop_assert_eq!(decoded.message, message);
        prop_assert_eq!(decoded.updates, pushed);
    }
}

#[test]
fn compound_fills_a_datagram_tightly() {
    // Not a timing check: the accounting must leave less than one update of slack.
    let codec = FrameCodec::new(ClusterLabel::new("prod").unwrap());
    let ack = Message::Ack(Ack { seq: 1, from: "a@10.0.0.1".parse().unwrap() });
    let update = Update::Suspect(Suspect {
        node: "node-17@10.0.0.17".parse().unwrap(),
        incarnation: 12,
        from: "node-3@10.0.0.3".parse().unwrap(),
    });
    let mut builder = codec.compound(&ack, DEFAULT_MTU).unwrap();
    while builder.push(&update) {}
    assert!(builder.remaining() < encoded_len(&update));
    let mut out = BytesMut::new();
    let report = builder.finish(&mut out).unwrap();
    assert!(report.bytes <= DEFAULT_MTU);
    assert!(report.bytes + encoded_len(&update) + 3 > DEFAULT_MTU, "{report:?}");
}

#[test]
fn compound_refuses_a_message_larger_than_the_budget() {
    let codec = FrameCodec::new(ClusterLabel::default());
    let ack = Message::Ack(Ack { seq: 1, from: "a@10.0.0.1".parse().unwrap() });
    let err = codec.compound(&ack, 10).unwrap_err();
    assert!(matches!(err, EncodeError::TooLarge { max: 10, .. }), "{err:?}");
}

#[test]
fn encode_refuses_a_packet_over_the_cap_and_leaves_the_buffer_alone() {
    let codec = FrameCodec::new(ClusterLabel::default()).with_max_frame_len(200).unwrap();
    let mut members = Vec::new();
    for i in 0..20 {
        members.push(MemberState {
            node: NodeId::new(format!("n{i}@h").parse().unwrap(), "127.0.0.1:1".parse().unwrap()),
            incarnation: 1,
            status: MemberStatus::Alive,
            metadata: Metadata::new(),
        });
    }
    let packet =
        Packet::new(Message::PushPullRequest(PushPull { join: true, members, app_state: vec![], user_ltime: 0 }));
    let mut out = BytesMut::from(&b"keep"[..]);
    let err = codec.encode(&packet, &mut out).unwrap_err();
    assert!(matches!(err, EncodeError::TooLarge { max: 200, .. }), "{err:?}");
    assert_eq!(&out[..], b"keep");
}
