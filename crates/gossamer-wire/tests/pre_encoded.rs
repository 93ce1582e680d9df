//! Packets built from pre-encoded update bytes ([`Update::encode_into`] +
//! [`CompoundWriter::push_encoded`], the dissemination queue's hot path)
//! are byte-identical to what the normal encoders produce from the same
//! updates, and the streaming writer keeps the builder's budget rules.

mod common;

use bytes::BytesMut;
use common::*;
use gossamer_wire::*;
use proptest::collection::vec;
use proptest::prelude::*;

fn encoded(update: &Update) -> Vec<u8> {
    let mut bytes = Vec::new();
    update.encode_into(&mut bytes);
    bytes
}

/// The frame `CompoundBuilder` makes, pushing updates while they fit.
fn with_builder(
    codec: &FrameCodec,
    message: &Message,
    updates: &[Update],
    budget: usize,
) -> Option<(BytesMut, Vec<Update>)> {
    let mut builder = codec.compound(message, budget).ok()?;
    let pushed: Vec<Update> = updates.iter().filter(|u| builder.push(u)).cloned().collect();
    let mut out = BytesMut::new();
    let report = builder.finish(&mut out).unwrap();
    assert_eq!(report.updates, pushed.len());
    Some((out, pushed))
}

/// The same through `CompoundWriter`: `pre[i]` picks pre-encoded bytes or the update itself.
fn with_writer(
    codec: &FrameCodec,
    message: &Message,
    updates: &[Update],
    pre: &[bool],
    budget: usize,
    out: &mut BytesMut,
) -> Option<usize> {
    let mut writer = codec.compound_into(message, budget, out).ok()?;
    let mut pushed = 0;
    for (i, update) in updates.iter().enumerate() {
        let before = writer.remaining();
        let fit = if pre[i % pre.len()] { writer.push_encoded(&encoded(update)) } else { writer.push(update) };
        if fit {
            pushed += 1;
            assert_eq!(writer.remaining(), before - update.encoded_len());
        } else {
            assert!(update.encoded_len() > before, "refused an update that fit");
        }
    }
    assert_eq!(writer.len(), pushed);
    let report = writer.finish().unwrap();
    assert_eq!(report.updates, pushed);
    Some(report.bytes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn encode_into_is_the_body_encoding(update in update()) {
        let bytes = encoded(&update);
        prop_assert_eq!(bytes.len(), update.encoded_len());
        prop_assert_eq!(bytes.len(), encoded_len(&update));
        prop_assert_eq!(Update::from_encoded(&bytes).unwrap(), update);
    }

    #[test]
    fn writer_frames_are_byte_identical_to_the_builders(
        message in message(),
        updates in vec(update(), 0..40),
        pre in vec(any::<bool>(), 1..8),
        budget in 100usize..=4000,
        label in label(),
        compress in any::<bool>(),
    ) {
        let codec = plain_codec(label);
        let codec = if compress { codec.with_compression(200) } else { codec };
        let mut out = BytesMut::from(&b"prefix"[..]);
        let written = with_writer(&codec, &message, &updates, &pre, budget, &mut out);
        match with_builder(&codec, &message, &updates, budget) {
            None => {
                prop_assert!(written.is_none());
                prop_assert_eq!(&out[..], b"prefix", "a refused writer leaves the buffer as it was");
            }
            Some((expected, pushed)) => {
                prop_assert_eq!(written, Some(expected.len()));
                prop_assert!(expected.len() <= budget);
                prop_assert_eq!(&out[..6], b"prefix");
                prop_assert_eq!(&out[6..], &expected[..]);
                let everything = pushed.len() == updates.len();
                let packet = Packet { message: message.clone(), updates: pushed };
                if everything {
                    // Everything fitted: the plain encoder agrees too.
                    prop_assert_eq!(&out[6..], &encode(&codec, &packet)[..]);
                }
                prop_assert_eq!(codec.decode(&out[6..]).unwrap(), packet);
            }
        }
    }

    #[test]
    fn sealed_writer_frames_decode_to_the_pushed_updates(
        message in message(),
        updates in vec(update(), 0..40),
        budget in 100usize..=4000,
    ) {
        let codec = encrypted_codec(ClusterLabel::new("prod").unwrap(), key(3));
        let mut out = BytesMut::new();
        let Some(bytes) = with_writer(&codec, &message, &updates, &[true, false], budget, &mut out) else {
            prop_assert!(codec.overhead() + encoded_len(&message) + 3 > budget);
            return Ok(());
        };
        prop_assert_eq!(bytes, out.len());
        prop_assert!(bytes <= budget);
        // What the builder packs (its frame differs only by the nonce).
        let (_, pushed) = with_builder(&codec, &message, &updates, budget).unwrap();
        let decoded = codec.decode(&out).unwrap();
        prop_assert_eq!(decoded, Packet { message, updates: pushed });
    }
}

#[test]
fn more_than_250_updates_take_a_three_byte_count() {
    let codec = FrameCodec::new(ClusterLabel::new("prod").unwrap());
    let update = Update::Leave(Leave { node: "a".parse().unwrap(), incarnation: 1 });
    let bytes = encoded(&update);
    let message = Message::Gossip;
    let updates = vec![update; 400];
    let (expected, pushed) = with_builder(&codec, &message, &updates, 4000).unwrap();
    let pushed = pushed.len();
    assert_eq!(pushed, 400);
    let mut out = BytesMut::new();
    let mut writer = codec.compound_into(&message, 4000, &mut out).unwrap();
    for _ in 0..400 {
        assert!(writer.push_encoded(&bytes));
    }
    assert_eq!(writer.len(), pushed);
    writer.finish().unwrap();
    assert_eq!(&out[..], &expected[..]);
    assert_eq!(codec.decode(&out).unwrap().updates.len(), pushed);
}

#[test]
fn a_dropped_writer_leaves_nothing_behind_and_empty_bytes_are_refused() {
    let codec = FrameCodec::new(ClusterLabel::new("prod").unwrap());
    let ack = Message::Ack(Ack { seq: 1, from: "a@h".parse().unwrap() });
    let mut out = BytesMut::from(&b"keep"[..]);
    let mut writer = codec.compound_into(&ack, DEFAULT_MTU, &mut out).unwrap();
    assert!(!writer.push_encoded(&[]), "an empty slice is no update");
    assert!(writer.is_empty());
    drop(writer);
    assert_eq!(&out[..], b"keep");
    assert!(matches!(codec.compound_into(&ack, 10, &mut out), Err(EncodeError::TooLarge { .. })));
    assert_eq!(&out[..], b"keep");
}

#[test]
fn from_encoded_refuses_trailing_and_truncated_bytes() {
    let update = Update::Leave(Leave { node: "a@h".parse().unwrap(), incarnation: 300 });
    let mut bytes = encoded(&update);
    assert!(Update::from_encoded(&bytes[..bytes.len() - 1]).is_err());
    bytes.push(0);
    assert!(matches!(Update::from_encoded(&bytes), Err(DecodeError::TrailingBytes(1))));
}
