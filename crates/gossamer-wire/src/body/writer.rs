//! The writer every encoder writes through, into a slice sized beforehand,
//! and the varints and length-prefixed bytes of bincode's encoding.

use super::reader::{SINGLE_BYTE_MAX, U16_BYTE, U32_BYTE, U64_BYTE};

/// Writes into a slice sized by [`Encode::encoded_len`] beforehand, so
/// encoding never grows a buffer.
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Whether exactly the whole slice was written.
    pub(crate) fn is_full(&self) -> bool {
        self.pos == self.buf.len()
    }

    #[inline]
    pub(super) fn put_u8(&mut self, byte: u8) {
        self.buf[self.pos] = byte;
        self.pos += 1;
    }

    #[inline]
    pub(super) fn put_slice(&mut self, bytes: &[u8]) {
        copy_small(&mut self.buf[self.pos..self.pos + bytes.len()], bytes);
        self.pos += bytes.len();
    }
}

/// `to.copy_from_slice(from)` for the short strings every frame carries
/// (names, addresses): two or three overlapping word moves instead of a
/// call into `memcpy`.
#[inline(always)]
fn copy_small(to: &mut [u8], from: &[u8]) {
    let n = from.len();
    match n {
        8..=16 => {
            let (head, tail): ([u8; 8], [u8; 8]) =
                (from[..8].try_into().expect("8 bytes"), from[n - 8..].try_into().expect("8 bytes"));
            to[..8].copy_from_slice(&head);
            to[n - 8..].copy_from_slice(&tail);
        }
        17..=24 => {
            let (head, mid, tail): ([u8; 8], [u8; 8], [u8; 8]) = (
                from[..8].try_into().expect("8 bytes"),
                from[8..16].try_into().expect("8 bytes"),
                from[n - 8..].try_into().expect("8 bytes"),
            );
            to[..8].copy_from_slice(&head);
            to[8..16].copy_from_slice(&mid);
            to[n - 8..].copy_from_slice(&tail);
        }
        4..=7 => {
            let (head, tail): ([u8; 4], [u8; 4]) =
                (from[..4].try_into().expect("4 bytes"), from[n - 4..].try_into().expect("4 bytes"));
            to[..4].copy_from_slice(&head);
            to[n - 4..].copy_from_slice(&tail);
        }
        _ => to.copy_from_slice(from),
    }
}

/// Bytes of `n` as a varint.
#[inline]
pub(crate) fn varint_len(n: u64) -> usize {
    match n {
        0..=250 => 1,
        251..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

#[inline(always)]
pub(super) fn put_varint(out: &mut Writer<'_>, n: u64) {
    if n <= SINGLE_BYTE_MAX as u64 {
        out.put_u8(n as u8)
    } else {
        put_long_varint(out, n)
    }
}

#[inline]
fn put_long_varint(out: &mut Writer<'_>, n: u64) {
    match n {
        0..=250 => out.put_u8(n as u8),
        251..=0xffff => {
            out.put_u8(U16_BYTE);
            out.put_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.put_u8(U32_BYTE);
            out.put_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            out.put_u8(U64_BYTE);
            out.put_slice(&n.to_le_bytes());
        }
    }
}

#[inline]
pub(super) fn put_bytes(out: &mut Writer<'_>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.put_slice(bytes);
}

#[inline]
pub(super) fn bytes_len(bytes: &[u8]) -> usize {
    varint_len(bytes.len() as u64) + bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::reader::Reader;

    #[test]
    fn varint_lengths_match_what_is_written() {
        for n in [0u64, 250, 251, 0xffff, 0x1_0000, 0xffff_ffff, 0x1_0000_0000, u64::MAX] {
            let mut buf = [0u8; 9];
            let mut w = Writer::new(&mut buf[..varint_len(n)]);
            put_varint(&mut w, n);
            assert!(w.is_full());
            assert_eq!(Reader::new(&buf[..varint_len(n)]).u64().unwrap(), n);
        }
    }
}
