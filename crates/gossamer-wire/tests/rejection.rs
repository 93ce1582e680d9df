//! Property tests: damaged, foreign and hostile frames are refused with the
//! right error, never with a panic.

mod common;

use common::*;
use gossamer_wire::*;
use proptest::collection::vec;
use proptest::prelude::*;

/// A plain codec, an encrypted one, and a frame of `packet` from each.
fn both_frames(packet: &Packet) -> [(FrameCodec, Vec<u8>); 2] {
    let plain = plain_codec(ClusterLabel::new("prod").unwrap());
    let sealed = encrypted_codec(ClusterLabel::new("prod").unwrap(), key(1));
    let plain_frame = encode(&plain, packet);
    let sealed_frame = encode(&sealed, packet);
    [(plain, plain_frame), (sealed, sealed_frame)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn every_truncation_is_refused(packet in packet()) {
        for (codec, frame) in both_frames(&packet) {
            for len in 0..frame.len() {
                let prefix = &frame[..len];
                prop_assert!(codec.decode(prefix).is_err(), "prefix of {} bytes accepted", len);
                // A stream reader learns the length once the header is in, and waits before.
                let expected = if len >= codec.label().as_bytes().len() + FIXED_HEADER_LEN {
                    Some(frame.len())
                } else {
                    None
                };
                prop_assert_eq!(codec.frame_len(prefix).unwrap(), expected);
            }
        }
    }

    #[test]
    fn every_single_bit_flip_is_refused(packet in packet(), seed in any::<u64>()) {
        for (codec, frame) in both_frames(&packet) {
            // All bits of the header, a sample of the payload's bits (frames can be large).
            let header = codec.label().as_bytes().len() + FIXED_HEADER_LEN;
            let bits = frame.len() * 8;
            let sampled = (0..64u64).map(|i| (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(i * 7919) as usize) % bits);
            for bit in (0..header * 8).chain(sampled) {
                let mut damaged = frame.clone();
                damaged[bit / 8] ^= 1 << (bit % 8);
                let result = codec.decode(&damaged);
                prop_assert!(result.is_err(), "flip of bit {} accepted: {:?}", bit, result);
            }
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..2048), key_byte in any::<u8>()) {
        let plain = plain_codec(ClusterLabel::default());
        let sealed = encrypted_codec(ClusterLabel::default(), key(key_byte)).accept_plaintext(true);
        for codec in [&plain, &sealed] {
            let _ = codec.decode(&bytes);
            let _ = codec.frame_len(&bytes);
        }
    }

    #[test]
    fn random_bodies_in_valid_frames_never_panic(body in vec(any::<u8>(), 0..512)) {
        // A correct header and CRC, so the body decoder itself gets the garbage.
        let codec = plain_codec(ClusterLabel::new("prod").unwrap());
        let frame = frame_around(b"prod", 0, &body);
        match codec.decode(&frame) {
            Ok(packet) => prop_assert_eq!(codec.decode(&encode(&codec, &packet)).unwrap(), packet),
            Err(e) => prop_assert!(matches!(e, DecodeError::Malformed(_) | DecodeError::TrailingBytes(_)), "{e:?}"),
        }
    }

    #[test]
    fn a_foreign_label_is_refused(packet in packet(), ours in label(), theirs in label()) {
        prop_assume!(ours != theirs);
        let frame = encode(&plain_codec(theirs.clone()), &packet);
        let err = plain_codec(ours.clone()).decode(&frame).unwrap_err();
        prop_assert_eq!(err, DecodeError::LabelMismatch {
            expected: String::from_utf8(ours.as_bytes().to_vec()).unwrap(),
            found: String::from_utf8(theirs.as_bytes().to_vec()).unwrap(),
        });
        // Also with encryption, and before any decryption is attempted.
        let sealed = encode(&encrypted_codec(theirs, key(3)), &packet);
        let err = encrypted_codec(ours, key(3)).decode(&sealed).unwrap_err();
        let is_label_mismatch = matches!(err, DecodeError::LabelMismatch { .. });
        prop_assert!(is_label_mismatch, "{:?}", err);
    }

    #[test]
    fn a_wrong_key_is_refused(packet in packet(), ours in any::<u8>(), theirs in any::<u8>()) {
        prop_assume!(ours != theirs);
        let frame = encode(&encrypted_codec(ClusterLabel::default(), key(theirs)), &packet);
        let err = encrypted_codec(ClusterLabel::default(), key(ours)).decode(&frame).unwrap_err();
        prop_assert_eq!(err, DecodeError::WrongKey);
    }

    #[test]
    fn another_version_is_named(packet in packet(), version in any::<u8>()) {
        prop_assume!(version != PROTOCOL_VERSION);
        for (codec, mut frame) in both_frames(&packet) {
            frame[2] = version;
            fix_crc(&mut frame);
            let expected = DecodeError::VersionMismatch { ours: PROTOCOL_VERSION, theirs: version };
            prop_assert_eq!(codec.decode(&frame).unwrap_err(), expected.clone());
            // Even three bytes are enough to tell.
            prop_assert_eq!(codec.frame_len(&frame[..3]).unwrap_err(), expected.clone());
            let message = expected.to_string();
            let (ours, theirs) = (format!("v{PROTOCOL_VERSION}"), format!("v{version}"));
            prop_assert!(message.contains(&ours) && message.contains(&theirs), "{}", message);
        }
    }

    #[test]
    fn unknown_flags_are_refused(packet in packet(), extra in 1u8..=0x3f) {
        let unknown = extra << 2; // any bit but FLAG_ENCRYPTED and FLAG_COMPRESSED
        for (codec, mut frame) in both_frames(&packet) {
            frame[FLAGS_AT] |= unknown;
            fix_crc(&mut frame);
            prop_assert_eq!(codec.decode(&frame).unwrap_err(), DecodeError::UnknownFlags(frame[FLAGS_AT]));
            prop_assert_eq!(codec.frame_len(&frame[..FLAGS_AT + 1]).unwrap_err(), DecodeError::UnknownFlags(frame[FLAGS_AT]));
        }
    }

    #[test]
    fn a_declared_length_over_the_cap_is_refused(cap in 200usize..100_000, excess in 1u64..1_000_000) {
        let codec = FrameCodec::new(ClusterLabel::new("prod").unwrap()).with_max_frame_len(cap).unwrap();
        let header = FIXED_HEADER_LEN + 4;
        let declared = (cap - header) as u64 + excess;
        let declared = declared.min(u32::MAX as u64);
        let mut frame = frame_around(b"prod", 0, &[]);
        frame[13..17].copy_from_slice(&(declared as u32).to_le_bytes());
        fix_crc(&mut frame);
        let expected = DecodeError::TooLarge { len: declared, max: cap as u32 };
        prop_assert_eq!(codec.decode(&frame).unwrap_err(), expected.clone());
        prop_assert_eq!(codec.frame_len(&frame).unwrap_err(), expected);
        // The largest acceptable length is only waited for.
        frame[13..17].copy_from_slice(&((cap - header) as u32).to_le_bytes());
        prop_assert_eq!(codec.frame_len(&frame).unwrap(), Some(cap));
    }
}

#[test]
fn key_rotation_accepts_secondary_keys_and_drops_removed_ones() {
    let (old, new) = (key(1), key(2));
    let packet = Packet::new(Message::Ack(Ack { seq: 5, from: "a@127.0.0.1".parse().unwrap() }));
    let old_sender = encrypted_codec(ClusterLabel::default(), old.clone());
    let from_old = encode(&old_sender, &packet);

    // Step 1: the new key is installed as secondary: both are accepted, the old one still sends.
    let ring = Keyring::new(old.clone(), &mut test_rng());
    ring.install(new.clone()).unwrap();
    let receiver = plain_codec(ClusterLabel::default()).with_keyring(std::sync::Arc::new(ring));
    let from_new = encode(&encrypted_codec(ClusterLabel::default(), new.clone()), &packet);
    assert_eq!(receiver.decode(&from_old).unwrap(), packet);
    assert_eq!(receiver.decode(&from_new).unwrap(), packet);
    assert_eq!(old_sender.decode(&encode(&receiver, &packet)).unwrap(), packet, "old key stays primary");

    // Step 2: the new key becomes primary; the old one is still accepted.
    let ring = Keyring::new(old.clone(), &mut test_rng());
    ring.install(new.clone()).unwrap();
    ring.use_key(&new).unwrap();
    assert_eq!(ring.primary(), new.fingerprint());
    assert_eq!(ring.len(), 2);
    let receiver = plain_codec(ClusterLabel::default()).with_keyring(std::sync::Arc::new(ring));
    assert_eq!(receiver.decode(&from_old).unwrap(), packet);
    let sent = encode(&receiver, &packet);
    assert_eq!(old_sender.decode(&sent).unwrap_err(), DecodeError::WrongKey, "sends with the new key");

    // Step 3: the old key is removed and no longer accepted; the primary cannot be removed.
    let ring = Keyring::new(new.clone(), &mut test_rng());
    ring.install(old.clone()).unwrap();
    assert!(ring.remove(&old).is_ok());
    assert!(ring.remove(&old).is_err());
    assert!(ring.remove(&new).is_err(), "the primary stays");
    assert_eq!(ring.len(), 1);
    let receiver = plain_codec(ClusterLabel::default()).with_keyring(std::sync::Arc::new(ring));
    assert_eq!(receiver.decode(&from_old).unwrap_err(), DecodeError::WrongKey);
    assert_eq!(receiver.decode(&from_new).unwrap(), packet);
}

#[test]
fn encryption_mode_mismatches_are_named() {
    let packet = Packet::new(Message::Gossip);
    let plain = plain_codec(ClusterLabel::default());
    let sealed = encrypted_codec(ClusterLabel::default(), key(7));
    let plain_frame = encode(&plain, &packet);
    let sealed_frame = encode(&sealed, &packet);
    assert_eq!(plain.decode(&sealed_frame).unwrap_err(), DecodeError::EncryptedButNoKey);
    assert_eq!(sealed.decode(&plain_frame).unwrap_err(), DecodeError::NotEncrypted);
    // During a roll-out, plaintext is accepted on request.
    let rolling = sealed.clone().accept_plaintext(true);
    assert_eq!(rolling.decode(&plain_frame).unwrap(), packet);
    assert_eq!(rolling.decode(&sealed_frame).unwrap(), packet);
}

#[test]
fn a_sealed_payload_shorter_than_nonce_and_tag_is_malformed() {
    let sealed = encrypted_codec(ClusterLabel::default(), key(7));
    let frame = frame_around(b"", FLAG_ENCRYPTED, &[0; ENCRYPTION_OVERHEAD - 1]);
    assert!(matches!(sealed.decode(&frame).unwrap_err(), DecodeError::Malformed(_)));
}

#[test]
fn header_errors_come_in_header_order() {
    let codec = plain_codec(ClusterLabel::new("prod").unwrap());
    assert_eq!(codec.decode(b"").unwrap_err(), DecodeError::Truncated { len: 0, need: FIXED_HEADER_LEN });
    assert_eq!(codec.decode(b"XY\x09\xff").unwrap_err(), DecodeError::BadMagic { found: *b"XY" });
    assert_eq!(codec.frame_len(b"G").unwrap(), None);
    assert!(matches!(codec.decode(b"GS\x09\xff").unwrap_err(), DecodeError::VersionMismatch { theirs: 9, .. }));
    // The checksum (4 bytes) comes before the flags.
    let unknown_flags = [b'G', b'S', PROTOCOL_VERSION, 0, 0, 0, 0, 0xff];
    assert_eq!(codec.decode(&unknown_flags).unwrap_err(), DecodeError::UnknownFlags(0xff));
    let mut frame = frame_around(b"test", 0, b"garbage");
    assert!(matches!(codec.decode(&frame).unwrap_err(), DecodeError::LabelMismatch { .. }));
    frame = frame_around(b"prod", 0, b"garbage");
    let crc_at = 3;
    frame[crc_at] ^= 1;
    assert!(matches!(codec.decode(&frame).unwrap_err(), DecodeError::Checksum { .. }));
    let mut longer = frame_around(b"prod", 0, b"garbage");
    longer.push(0);
    assert_eq!(codec.decode(&longer).unwrap_err(), DecodeError::LengthMismatch { declared: 7, actual: 8 });
    let mut body = encode(&codec, &Packet::new(Message::Gossip))[FIXED_HEADER_LEN + 4..].to_vec();
    body.extend_from_slice(b"xx");
    assert_eq!(codec.decode(&frame_around(b"prod", 0, &body)).unwrap_err(), DecodeError::TrailingBytes(2));
}
