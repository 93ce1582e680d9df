//! Arbitrary bytes into a plaintext codec and the stream length probe: both
//! must return, never panic, and agree with each other. The same bytes are
//! also wrapped as the body of a frame with a correct header and CRC, so the
//! body decoder sees mutated bodies instead of the CRC turning them away.
#![no_main]

use bytes::BytesMut;
use gossamer_wire::{frame_checksum, ClusterLabel, FrameCodec, MAGIC, PROTOCOL_VERSION};
use libfuzzer_sys::fuzz_target;

const LABEL: &[u8] = b"fuzz";

/// A plaintext frame around `body`, as the wire crate documents it.
fn frame_around(body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(body.len() + 32);
    frame.extend_from_slice(&MAGIC);
    frame.push(PROTOCOL_VERSION);
    frame.extend_from_slice(&[0; 4]); // the checksum, below
    frame.push(0);
    frame.push(LABEL.len() as u8);
    frame.extend_from_slice(LABEL);
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(body);
    let crc = frame_checksum(&frame).expect("a whole header");
    frame[3..7].copy_from_slice(&crc.to_le_bytes());
    frame
}

fuzz_target!(|data: &[u8]| {
    let codec = FrameCodec::new(ClusterLabel::new("fuzz").expect("short label"));
    if codec.decode(data).is_ok() {
        // A frame that decodes is whole: the length probe must say exactly its size.
        assert_eq!(codec.frame_len(data), Ok(Some(data.len())));
    } else {
        let _ = codec.frame_len(data);
    }

    let framed = frame_around(data);
    if let Ok(packet) = codec.decode(&framed) {
        // A body that decodes re-encodes to a frame that decodes to the same packet.
        let mut again = BytesMut::new();
        codec.encode(&packet, &mut again).expect("a decoded packet re-encodes");
        assert_eq!(codec.decode(&again).expect("re-encoded frame decodes"), packet);
    }
});
