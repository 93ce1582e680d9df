//! The frame checksum: CRC32 (IEEE, as `crc32fast` and zlib compute it) of
//! every frame byte except the 4-byte checksum field itself.
//!
//! A one-pass carry-less-multiply variant that skips the field in flight was
//! measured (about 100 instructions less per ping); it was not kept, because
//! ~170 lines of `unsafe` SIMD are not worth 7% of a ping when `crc32fast`
//! is the well-kept crate for this.

/// CRC32 of `frame[..crc_at] ‖ frame[crc_at + 4..]`.
///
/// `crc_at + 4 <= frame.len()`, as the header check guarantees.
#[inline]
pub(crate) fn frame_crc(frame: &[u8], crc_at: usize) -> u32 {
    debug_assert!(crc_at + 4 <= frame.len());
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&frame[..crc_at]);
    hasher.update(&frame[crc_at + 4..]);
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_crc32_of_the_frame_without_the_field() {
        let frame = b"GS\x01\x00\x04prod\x05\x00\x00\x00CRC!hello";
        let mut without = frame[..13].to_vec();
        without.extend_from_slice(&frame[17..]);
        assert_eq!(frame_crc(frame, 13), crc32fast::hash(&without));
    }
}
