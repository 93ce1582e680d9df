//! The frame header: its layout, the length a stream reader needs, the
//! checks a received header passes, and the associated data of a sealed frame.

use super::codec::FrameCodec;
use crate::crc::CHECKSUM_AT;
use crate::error::DecodeError;

/// First two bytes of every frame.
pub const MAGIC: [u8; 2] = *b"GS";
/// The protocol version this crate speaks. Raised on any incompatible change
/// to the header or the body encoding. Version 2: the checksum is CRC32C
/// (was IEEE CRC32) and sits right after the version, covering the rest of
/// the frame (see `crc.rs`); push-pull carries the sender's Lamport clock.
pub const PROTOCOL_VERSION: u8 = 2;
/// Flag: the payload is sealed with the cluster secret.
pub const FLAG_ENCRYPTED: u8 = 0x01;
/// Flag: the body is LZ4-compressed, behind its uncompressed length.
pub const FLAG_COMPRESSED: u8 = 0x02;
const KNOWN_FLAGS: u8 = FLAG_ENCRYPTED | FLAG_COMPRESSED;
/// Header bytes besides the label.
pub const FIXED_HEADER_LEN: usize = 13;
/// Offset of the flags byte.
pub const FLAGS_AT: usize = 7;
/// Offset of the label length byte; the label follows it.
pub(super) const LABEL_LEN_AT: usize = 8;
/// Bytes a stream reader needs before it knows the header's length: magic
/// through the label length byte (see [`header_len`]).
pub const HEADER_PREFIX_LEN: usize = LABEL_LEN_AT + 1;
pub(super) const LABEL_AT: usize = 9;
/// Longest associated data of a sealed frame: magic, version, flags, label
/// length and a 255-byte label.
const MAX_AAD_LEN: usize = 5 + 255;

/// The length of a frame's header (label included) from its first
/// [`HEADER_PREFIX_LEN`] bytes, so a stream reader can read exactly the
/// header, have [`FrameCodec::frame_len`] check it, and only then read the
/// body. `None` while `prefix` is shorter than that.
///
/// ```
/// use bytes::BytesMut;
/// use gossamer_wire::*;
///
/// let codec = FrameCodec::new(ClusterLabel::new("prod").unwrap());
/// let mut buf = BytesMut::new();
/// codec.encode(&Packet::new(Message::Gossip), &mut buf).unwrap();
/// assert_eq!(header_len(&buf[..HEADER_PREFIX_LEN]), Some(FIXED_HEADER_LEN + 4));
/// assert_eq!(header_len(&buf[..3]), None);
/// ```
pub fn header_len(prefix: &[u8]) -> Option<usize> {
    prefix.get(LABEL_LEN_AT).map(|&label_len| FIXED_HEADER_LEN + label_len as usize)
}

/// The associated data of a sealed frame whose length field is at
/// `len_at`: magic and version, then flags, label length and label (the
/// checksum between them is computed after sealing, so it cannot be part
/// of it). Returned as a stack buffer and its length.
pub(super) fn associated_data(frame: &[u8], len_at: usize) -> ([u8; MAX_AAD_LEN], usize) {
    let mut aad = [0u8; MAX_AAD_LEN];
    aad[..CHECKSUM_AT].copy_from_slice(&frame[..CHECKSUM_AT]);
    let rest = &frame[FLAGS_AT..len_at];
    aad[CHECKSUM_AT..CHECKSUM_AT + rest.len()].copy_from_slice(rest);
    (aad, CHECKSUM_AT + rest.len())
}

/// What a checked header says about the payload behind it.
pub(super) struct Header {
    pub(super) payload_at: usize,
    pub(super) payload_len: usize,
    pub(super) encrypted: bool,
    pub(super) compressed: bool,
}

impl FrameCodec {
    /// For streams: given the first bytes of a frame, the frame's total
    /// length once the header is complete (`None` until then). Refuses a
    /// foreign, wrong-version or oversized frame before its body is read.
    pub fn frame_len(&self, prefix: &[u8]) -> Result<Option<usize>, DecodeError> {
        match self.check_header(prefix) {
            Ok(header) => Ok(Some(header.payload_at + header.payload_len)),
            Err(DecodeError::Truncated { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Checks the header field by field, each as soon as its bytes are
    /// present, so even a short prefix names the first thing wrong (a stream
    /// reader learns of a foreign or newer peer from its first bytes).
    #[inline]
    pub(super) fn check_header(&self, frame: &[u8]) -> Result<Header, DecodeError> {
        // Fast path: a whole, well-formed header of this cluster, as nearly
        // every frame has; anything else is re-checked field by field below.
        let label = self.label.0.as_slice();
        let len_at = LABEL_AT + label.len();
        let payload_at = len_at + 4;
        if let Some(head) = frame.get(..payload_at) {
            // Magic and version as one word (the checksum's first byte masked out), flags (known
            // bits only) and label length.
            let fixed = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
            let expected = u32::from_le_bytes([MAGIC[0], MAGIC[1], PROTOCOL_VERSION, 0]);
            let flags = head[FLAGS_AT];
            let fixed_ok = fixed & 0x00ff_ffff == expected
                && flags & !KNOWN_FLAGS == 0
                && head[LABEL_LEN_AT] as usize == label.len();
            let label_ok = match (self.label_word, frame.get(LABEL_AT..LABEL_AT + 8)) {
                (Some((word, mask)), Some(found)) => {
                    (u64::from_le_bytes(found.try_into().expect("8 bytes")) ^ word) & mask == 0
                }
                _ => &head[LABEL_AT..len_at] == label,
            };
            let payload_len = u32::from_le_bytes(head[len_at..payload_at].try_into().expect("4 bytes"));
            if fixed_ok && label_ok && payload_at as u64 + payload_len as u64 <= self.max_frame_len as u64 {
                let (encrypted, compressed) = (flags & FLAG_ENCRYPTED != 0, flags & FLAG_COMPRESSED != 0);
                return Ok(Header { payload_at, payload_len: payload_len as usize, encrypted, compressed });
            }
        }
        self.check_header_in_order(frame)
    }

    #[cold]
    fn check_header_in_order(&self, frame: &[u8]) -> Result<Header, DecodeError> {
        if frame.len() >= 2 && frame[..2] != MAGIC {
            return Err(DecodeError::BadMagic { found: [frame[0], frame[1]] });
        }
        if let Some(&version) = frame.get(2) {
            if version != PROTOCOL_VERSION {
                return Err(DecodeError::VersionMismatch { ours: PROTOCOL_VERSION, theirs: version });
            }
        }
        if let Some(&flags) = frame.get(FLAGS_AT) {
            if flags & !KNOWN_FLAGS != 0 {
                return Err(DecodeError::UnknownFlags(flags));
            }
        }
        if frame.len() <= LABEL_LEN_AT {
            return Err(DecodeError::Truncated { len: frame.len(), need: FIXED_HEADER_LEN });
        }
        let flags = frame[FLAGS_AT];
        let label_len = frame[LABEL_LEN_AT] as usize;
        let payload_at = FIXED_HEADER_LEN + label_len;
        if frame.len() < payload_at {
            return Err(DecodeError::Truncated { len: frame.len(), need: payload_at });
        }
        let label = &frame[LABEL_AT..LABEL_AT + label_len];
        if label != self.label.0.as_slice() {
            return Err(DecodeError::LabelMismatch {
                expected: String::from_utf8_lossy(&self.label.0).into_owned(),
                found: String::from_utf8_lossy(label).into_owned(),
            });
        }
        let len_at = LABEL_AT + label_len;
        let payload_len = u32::from_le_bytes(frame[len_at..len_at + 4].try_into().expect("4 bytes"));
        if payload_at as u64 + payload_len as u64 > self.max_frame_len as u64 {
            return Err(DecodeError::TooLarge { len: payload_len as u64, max: self.max_frame_len as u32 });
        }
        Ok(Header {
            payload_at,
            payload_len: payload_len as usize,
            encrypted: flags & FLAG_ENCRYPTED != 0,
            compressed: flags & FLAG_COMPRESSED != 0,
        })
    }
}
