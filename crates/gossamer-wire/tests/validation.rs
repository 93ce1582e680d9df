//! Unit tests of the validated value types.

use gossamer_wire::*;

#[test]
fn node_names_are_validated() {
    assert_eq!(NodeName::new("").unwrap_err(), NameError::Empty);
    assert_eq!(NodeName::new(&"a".repeat(MAX_NAME_LEN + 1)).unwrap_err(), NameError::TooLong(MAX_NAME_LEN + 1));
    assert!(NodeName::new(&"a".repeat(MAX_NAME_LEN)).is_ok());
    for bad in ["a b", "a\tb", "a\nb", "a\u{0}b", "a\u{7f}", "\u{a0}x", "x\u{2003}"] {
        assert!(matches!(NodeName::new(bad), Err(NameError::BadCharacter(_))), "{bad:?} accepted");
    }
    // Multi-byte names count bytes, not characters.
    let wide = "日".repeat(86); // 258 bytes
    assert_eq!(NodeName::new(&wide).unwrap_err(), NameError::TooLong(258));
    let name: NodeName = "gossamer@10.0.0.7".parse().unwrap();
    assert_eq!((name.basename(), name.host()), ("gossamer", Some("10.0.0.7")));
    let bare = NodeName::new("solo").unwrap();
    assert_eq!((bare.basename(), bare.host()), ("solo", None));
    assert_eq!(NodeName::try_from("x@y").unwrap().as_str(), "x@y");
    assert_eq!(format!("{name}"), "gossamer@10.0.0.7");
}

#[test]
fn metadata_bounds_are_enforced_without_side_effects() {
    let mut meta = Metadata::new();
    assert!(matches!(meta.insert("", b"v".to_vec()), Err(MetadataError::BadKey(_))));
    assert!(matches!(meta.insert(&"k".repeat(MAX_METADATA_KEY_LEN + 1), vec![]), Err(MetadataError::BadKey(_))));
    meta.insert(&"k".repeat(MAX_METADATA_KEY_LEN), vec![]).unwrap();
    assert_eq!(meta.len(), 1);

    let mut meta = Metadata::new();
    meta.insert("big", vec![0; MAX_METADATA_BYTES - 3]).unwrap();
    assert_eq!(meta.byte_size(), MAX_METADATA_BYTES);
    assert_eq!(meta.insert("x", vec![1]).unwrap_err(), MetadataError::TooLarge(MAX_METADATA_BYTES + 2));
    assert!(meta.get("x").is_none(), "a refused insert changes nothing");
    // Replacing a value counts the old one out first.
    meta.insert("big", vec![1; MAX_METADATA_BYTES - 3]).unwrap();
    assert_eq!(meta.get("big").unwrap()[0], 1);
    assert_eq!(meta.remove("big").map(|v| v.len()), Some(MAX_METADATA_BYTES - 3));
    assert!(meta.is_empty());

    let mut meta = Metadata::new();
    for i in 0..MAX_METADATA_ENTRIES {
        meta.insert(&format!("k{i}"), vec![]).unwrap();
    }
    assert_eq!(meta.insert("one-more", vec![]).unwrap_err(), MetadataError::TooManyEntries);
    meta.insert("k0", b"replace is fine".to_vec()).unwrap();
    assert_eq!(meta.len(), MAX_METADATA_ENTRIES);
}

#[test]
fn metadata_digest_depends_on_content_not_insertion_order() {
    let mut a = Metadata::new();
    a.insert("zone", b"eu".to_vec()).unwrap();
    a.insert("role", b"db".to_vec()).unwrap();
    let mut b = Metadata::new();
    b.insert("role", b"db".to_vec()).unwrap();
    b.insert("zone", b"eu".to_vec()).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.digest(), b.digest());
    assert_eq!(a.iter().map(|(k, _)| k).collect::<Vec<_>>(), ["role", "zone"]);
    b.insert("zone", b"us".to_vec()).unwrap();
    assert_ne!(a.digest(), b.digest());
    // Entry boundaries are part of the digest: "ab"="c" differs from "a"="bc".
    let mut c = Metadata::new();
    c.insert("ab", b"c".to_vec()).unwrap();
    let mut d = Metadata::new();
    d.insert("a", b"bc".to_vec()).unwrap();
    assert_ne!(c.digest(), d.digest());
}

#[test]
fn secret_keys_are_validated_and_never_printed() {
    let hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    let key: SecretKey = hex.parse().unwrap();
    assert_eq!(key.as_bytes()[31], 0x1f);
    assert_eq!(format!(" {hex}\n").parse::<SecretKey>().unwrap(), key, "surrounding whitespace is ignored");
    assert_eq!(hex.to_uppercase().parse::<SecretKey>().unwrap(), key);
    for bad in [&hex[..62], "", &format!("{hex}00"), &hex.replace('0', "g"), &format!("+f{}", &hex[2..])] {
        assert_eq!(bad.parse::<SecretKey>().unwrap_err(), ConfigError::KeyText, "{bad:?} accepted");
    }
    let with_sign = format!("+{}", &hex[1..]);
    assert_eq!(with_sign.parse::<SecretKey>().unwrap_err(), ConfigError::KeyText);
    assert_eq!(SecretKey::from_bytes(&[0; 31]).unwrap_err(), ConfigError::KeyLength(31));
    assert_eq!(SecretKey::from_bytes(&[0; 33]).unwrap_err(), ConfigError::KeyLength(33));
    assert_eq!(format!("{key:?}"), "SecretKey(..)");
    assert!(!format!("{key:?}").contains("1f"));
}

#[test]
fn cluster_labels_are_bounded() {
    assert_eq!(ClusterLabel::new(&"x".repeat(256)).unwrap_err(), ConfigError::LabelTooLong(256));
    let longest = ClusterLabel::new(&"x".repeat(255)).unwrap();
    assert_eq!(longest.as_bytes().len(), 255);
    assert_eq!(ClusterLabel::new("").unwrap(), ClusterLabel::default());
    // The longest label still makes working frames.
    let codec = FrameCodec::new(longest);
    let packet = Packet::new(Message::Gossip);
    let mut buf = bytes::BytesMut::new();
    codec.encode(&packet, &mut buf).unwrap();
    assert_eq!(codec.decode(&buf).unwrap(), packet);
}

#[test]
fn frame_caps_are_validated() {
    let codec = FrameCodec::new(ClusterLabel::new("prod").unwrap());
    assert_eq!(codec.max_frame_len(), MAX_DATAGRAM);
    let min = codec.overhead() + 16;
    assert_eq!(codec.clone().with_max_frame_len(min - 1).unwrap_err(), ConfigError::MaxFrameTooSmall(min - 1, min));
    assert_eq!(codec.clone().with_max_frame_len(min).unwrap().max_frame_len(), min);
    assert_eq!(codec.with_max_frame_len(usize::MAX).unwrap().max_frame_len(), u32::MAX as usize);
}
