//! LZ4 bodies: compressing a body when it pays, and inflating one with
//! its announced length checked before anything is allocated.

use super::codec::FrameCodec;
use crate::body::{Encode, Writer};
use crate::error::DecodeError;

/// Bytes of the uncompressed-length prefix of a compressed body.
const COMPRESSED_PREFIX: usize = 4;
/// Most an LZ4 block can expand: each extra length byte stands for at most
/// 255 output bytes, so `n` bytes never decompress to more than this.
const fn lz4_expansion_bound(n: usize) -> usize {
    n.saturating_mul(255).saturating_add(64)
}

/// `body` LZ4-compressed behind its length, if that is shorter than `body_len`.
#[cold]
pub(super) fn compress<T: Encode + ?Sized>(body: &T, body_len: usize) -> Option<Vec<u8>> {
    let mut plain = vec![0u8; body_len];
    let mut writer = Writer::new(&mut plain);
    body.encode(&mut writer);
    debug_assert!(writer.is_full(), "encoded_len disagrees with encode");
    compress_bytes(&plain)
}

/// `plain` LZ4-compressed behind its length, if that is shorter.
#[cold]
pub(super) fn compress_bytes(plain: &[u8]) -> Option<Vec<u8>> {
    let len = u32::try_from(plain.len()).ok()?;
    let mut packed = vec![0u8; COMPRESSED_PREFIX + lz4_flex::block::get_maximum_output_size(plain.len())];
    packed[..COMPRESSED_PREFIX].copy_from_slice(&len.to_le_bytes());
    let written = lz4_flex::block::compress_into(plain, &mut packed[COMPRESSED_PREFIX..]).ok()?;
    let total = COMPRESSED_PREFIX + written;
    if total >= plain.len() {
        return None;
    }
    packed.truncate(total);
    Some(packed)
}

impl FrameCodec {
    /// Inflates a compressed body into `out`. The announced length is
    /// checked against the frame cap and against what LZ4 could possibly
    /// expand the bytes present to before anything is allocated, and the
    /// output must come out exactly that long.
    #[cold]
    pub(super) fn decompress(&self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
        let Some((prefix, block)) = input.split_first_chunk::<COMPRESSED_PREFIX>() else {
            return Err(DecodeError::Decompress(format!(
                "compressed body of {} bytes is shorter than its length prefix",
                input.len()
            )));
        };
        let len = u32::from_le_bytes(*prefix) as usize;
        let max = self.max_frame_len.min(lz4_expansion_bound(block.len()));
        if len > max {
            return Err(DecodeError::DecompressedTooLarge { len, max });
        }
        out.clear();
        out.resize(len, 0);
        match lz4_flex::block::decompress_into(block, out) {
            Ok(written) if written == len => Ok(()),
            Ok(written) => {
                Err(DecodeError::Decompress(format!("inflated to {written} bytes, the prefix announced {len}")))
            }
            Err(error) => Err(DecodeError::Decompress(error.to_string())),
        }
    }
}
