//! The frame checksum: CRC32 (IEEE, as `crc32fast` and zlib compute it) of
//! every frame byte except the 4-byte checksum field itself.
//!
//! `crc32fast` (with its default `std` feature) picks its carry-less-multiply
//! (PCLMULQDQ) kernel at run time. [`FrameCrc`] does that detection once
//! per codec, and more: the bytes before the length field (magic, version,
//! flags, label) are the same in every frame of a codec with the same
//! flags, so their CRC state is computed once per flag combination and each
//! frame hashes only its length field and its payload. For a ping that is
//! about half the bytes, and it spares the short header, which `crc32fast`
//! would take byte by byte (below 16 bytes it has no block to fold).
//!
//! A one-pass carry-less-multiply variant that skips the field in flight was
//! measured (about 100 instructions less per ping); it was not kept, because
//! ~170 lines of `unsafe` SIMD are not worth 7% of a ping when `crc32fast`
//! is the well-kept crate for this.

use crate::frame::{MAGIC, PROTOCOL_VERSION};

/// Flag bits a frame may have (encrypted, compressed): one precomputed
/// prefix state for each combination.
const FLAG_COMBINATIONS: usize = 4;

/// CRC32 hashers, CPU features detected, that have already consumed the
/// constant head of a frame (`magic ‖ version ‖ flags ‖ label length ‖
/// label`) for each combination of flags: cloned per frame.
#[derive(Clone)]
pub(crate) struct FrameCrc {
    prefixes: [crc32fast::Hasher; FLAG_COMBINATIONS],
    /// Bytes of that head: where the length field starts.
    prefix_len: usize,
}

impl FrameCrc {
    pub(crate) fn new(label: &[u8]) -> Self {
        let prefixes = std::array::from_fn(|flags| {
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(&[MAGIC[0], MAGIC[1], PROTOCOL_VERSION, flags as u8, label.len() as u8]);
            hasher.update(label);
            hasher
        });
        Self { prefixes, prefix_len: 5 + label.len() }
    }

    /// CRC32 of `frame[..crc_at] ‖ frame[crc_at + 4..]`, for a frame of
    /// this codec whose header was written or checked already: its head
    /// (magic through label) is this codec's, with known flags only, and
    /// `crc_at` is right after the length field.
    #[inline]
    pub(crate) fn frame(&self, frame: &[u8], crc_at: usize) -> u32 {
        debug_assert_eq!(crc_at, self.prefix_len + 4);
        debug_assert!(crc_at + 4 <= frame.len());
        let flags = frame[3] as usize;
        debug_assert!(flags < FLAG_COMBINATIONS);
        let mut hasher = self.prefixes[flags % FLAG_COMBINATIONS].clone();
        debug_assert_eq!(
            {
                let mut head = crc32fast::Hasher::new();
                head.update(&frame[..self.prefix_len]);
                head.finalize()
            },
            hasher.clone().finalize(),
            "the frame's head is not this codec's"
        );
        hasher.update(&frame[self.prefix_len..crc_at]);
        hasher.update(&frame[crc_at + 4..]);
        hasher.finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_crc32_of_the_frame_without_the_field() {
        let frame = b"GS\x01\x00\x04prod\x05\x00\x00\x00CRC!hello";
        let mut without = frame[..13].to_vec();
        without.extend_from_slice(&frame[17..]);
        assert_eq!(FrameCrc::new(b"prod").frame(frame, 13), crc32fast::hash(&without));
    }

    #[test]
    fn every_flag_combination_label_and_size_agrees_with_the_plain_hash() {
        for label in [&b""[..], b"prod", b"a-much-longer-cluster-label"] {
            let crc = FrameCrc::new(label);
            let crc_at = 5 + label.len() + 4;
            for flags in 0..4u8 {
                for payload in [0, 1, 15, 16, 40, 127, 128, 1400] {
                    let mut frame = vec![b'G', b'S', PROTOCOL_VERSION, flags, label.len() as u8];
                    frame.extend_from_slice(label);
                    frame.extend_from_slice(&(payload as u32).to_le_bytes());
                    frame.extend_from_slice(b"CRC!");
                    frame.extend((0..payload).map(|i| (i * 7 + 3) as u8));
                    let mut without = frame[..crc_at].to_vec();
                    without.extend_from_slice(&frame[crc_at + 4..]);
                    assert_eq!(crc.frame(&frame, crc_at), crc32fast::hash(&without), "flags {flags}, {payload} bytes");
                }
            }
        }
    }
}
