//! The frame around every message: a small hand-checked header, then the
//! body in bincode's standard encoding (written and read by the hand-made
//! codec in `body/`), optionally sealed with the cluster secret.
//!
//! ```text
//! offset  size  field
//! 0       2     magic "GS"
//! 2       1     protocol version
//! 3       4     CRC32C of every byte after this field (u32, little endian)
//! 7       1     flags (bit 0: encrypted, bit 1: compressed; others must be zero)
//! 8       1     label length L (0..=255)
//! 9       L     cluster label
//! 9+L     4     payload length (u32, little endian)
//! 13+L    n     payload: the body, or nonce ‖ sealed body ‖ tag
//! ```
//!
//! Magic and version come first and stay there in every version, so any
//! build can name the version of a frame it cannot read. The checksum
//! follows them and covers the rest of the frame in one piece, which a
//! hardware CRC32C hashes in a single call (see `crc.rs`); magic and
//! version need no checksum, since anything but the exact bytes is refused.
//!
//! A compressed body (flag bit 1, see [`FrameCodec::with_compression`]) is
//! `uncompressed length (u32, little endian) ‖ LZ4 block`; compression
//! comes first and sealing second, so a sealed frame's ciphertext holds the
//! compressed body. The decoder refuses an announced length above its frame
//! cap (or above what LZ4 can expand the bytes present to) before it
//! allocates anything, so a small frame cannot inflate into a large buffer.
//!
//! Compatibility: a peer built before compression existed knows only the
//! encrypted flag and refuses a compressed frame with
//! [`DecodeError::UnknownFlags`] (`unknown frame flags 0x02`, or `0x03`
//! when sealed) instead of misreading it; frames at or below the threshold,
//! and every frame of a codec without compression, stay readable by it. So
//! turn compression on only once every member runs this version.
//!
//! A sealed payload is XChaCha20-Poly1305 over the body with magic,
//! version, flags, label length and label (the header without checksum and
//! payload length) as associated data; the CRC covers the sealed bytes, so
//! corruption in transit is told apart from a wrong key.
//!
//! The header is checked in that order, so the error names the first thing
//! wrong: another protocol, another version, another cluster, a length the
//! codec will not accept, a corrupted frame, a wrong key, a malformed body.
//! The 32-bit length lets full-state sync over TCP grow past 64 KiB (the
//! limit memberlist forks outgrew); the codec's configured cap bounds it.
//!
//! One job per file: [`header`] (layout, checks, associated data),
//! [`label`], [`codec`] (the codec and its settings), [`encode`] and
//! [`decode`] (whole frames), [`compress`] (LZ4 bodies), [`compound`]
//! (packing updates behind a message) and [`body_len`].

mod body_len;
mod codec;
mod compound;
mod compress;
mod decode;
mod encode;
mod header;
mod label;

pub use body_len::{encoded_len, BodyLen};
pub use codec::{FrameCodec, DEFAULT_MAX_STREAM_FRAME, DEFAULT_MTU, MAX_DATAGRAM};
pub use compound::{CompoundBuilder, CompoundWriter, PackReport};
pub use header::{
    header_len, FIXED_HEADER_LEN, FLAGS_AT, FLAG_COMPRESSED, FLAG_ENCRYPTED, HEADER_PREFIX_LEN, MAGIC, PROTOCOL_VERSION,
};
pub use label::ClusterLabel;
