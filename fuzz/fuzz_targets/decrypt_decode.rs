//! Arbitrary bytes into a codec with a keyring (that also accepts plaintext,
//! so mutated plain frames reach the body decoder too). Whatever decodes must
//! re-encode (sealed) and decode to the same packet.
#![no_main]

use std::sync::{Arc, OnceLock};

use bytes::BytesMut;
use gossamer_wire::{ClusterLabel, FrameCodec, Keyring, SecretKey, DEFAULT_MAX_STREAM_FRAME};
use libfuzzer_sys::fuzz_target;
use rand_core::SeedableRng;

/// The key the seed corpus was sealed with (see the wire crate's `fuzz_seeds` example).
const FUZZ_KEY: [u8; 32] = [0x42; 32];

fn codec() -> &'static FrameCodec {
    static CODEC: OnceLock<FrameCodec> = OnceLock::new();
    CODEC.get_or_init(|| {
        let key = SecretKey::from_bytes(&FUZZ_KEY).expect("32 bytes");
        let ring = Keyring::new(key, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
        FrameCodec::new(ClusterLabel::new("fuzz").expect("short label"))
            .with_max_frame_len(DEFAULT_MAX_STREAM_FRAME)
            .expect("cap")
            .with_keyring(Arc::new(ring))
            .accept_plaintext(true)
    })
}

fuzz_target!(|data: &[u8]| {
    let codec = codec();
    let mut scratch = Vec::new();
    let Ok(packet) = codec.decode_with_scratch(data, &mut scratch) else {
        return;
    };
    let mut frame = BytesMut::new();
    codec.encode(&packet, &mut frame).expect("a decoded packet re-encodes");
    let again = codec.decode_with_scratch(&frame, &mut scratch).expect("a re-encoded packet decodes");
    assert_eq!(again, packet);
});
