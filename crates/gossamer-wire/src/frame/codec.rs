//! The frame codec of one cluster: its label, keyring, frame cap and
//! compression threshold, and the sizes that follow from them.

use std::fmt;
use std::sync::Arc;

use super::header::FIXED_HEADER_LEN;
use super::label::ClusterLabel;
use crate::crypto::{Keyring, ENCRYPTION_OVERHEAD, NONCE_LEN};
use crate::error::ConfigError;

/// Default budget of a compound datagram: fits a 1500-byte Ethernet MTU
/// with room for IP/UDP headers and tunnels.
pub const DEFAULT_MTU: usize = 1400;
/// Largest UDP payload over IPv4; the default cap of a datagram codec.
pub const MAX_DATAGRAM: usize = 65_507;
/// Default cap of a stream (push-pull) frame: 32 MiB is ~300,000 members.
pub const DEFAULT_MAX_STREAM_FRAME: usize = 32 << 20;

/// Encodes and decodes frames for one cluster: its label, its keyring and
/// the largest frame it accepts. Cheap to clone (the keyring is shared).
///
/// ```
/// use bytes::BytesMut;
/// use gossamer_wire::{Ack, ClusterLabel, FrameCodec, Message, Packet};
///
/// let codec = FrameCodec::new(ClusterLabel::new("prod").unwrap());
/// let packet = Packet::new(Message::Ack(Ack { seq: 7, from: "a@127.0.0.1".parse().unwrap() }));
/// let mut buf = BytesMut::new();
/// codec.encode(&packet, &mut buf).unwrap();
/// assert_eq!(codec.decode(&buf).unwrap(), packet);
///
/// let other = FrameCodec::new(ClusterLabel::new("staging").unwrap());
/// assert!(other.decode(&buf).is_err());
/// ```
#[derive(Clone)]
pub struct FrameCodec {
    pub(super) label: ClusterLabel,
    /// The label as a little-endian word and the mask of its bytes, when it
    /// has at most 8 bytes: the usual label is checked in one compare.
    pub(super) label_word: Option<(u64, u64)>,
    pub(super) keyring: Option<Arc<Keyring>>,
    pub(super) accept_plaintext: bool,
    pub(super) max_frame_len: usize,
    /// Bodies longer than this are compressed (`None`: never).
    pub(super) compress_above: Option<usize>,
}

impl fmt::Debug for FrameCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameCodec")
            .field("label", &self.label)
            .field("encrypted", &self.keyring.is_some())
            .field("accept_plaintext", &self.accept_plaintext)
            .field("max_frame_len", &self.max_frame_len)
            .field("compress_above", &self.compress_above)
            .finish()
    }
}

impl FrameCodec {
    /// A plaintext codec for datagrams (frames up to [`MAX_DATAGRAM`] bytes).
    pub fn new(label: ClusterLabel) -> Self {
        let label_word = (label.0.len() <= 8).then(|| {
            let mut word = [0u8; 8];
            word[..label.0.len()].copy_from_slice(&label.0);
            let mask = u64::MAX.checked_shr(64 - 8 * label.0.len() as u32).unwrap_or(0);
            (u64::from_le_bytes(word), mask)
        });
        Self {
            label,
            label_word,
            keyring: None,
            accept_plaintext: true,
            max_frame_len: MAX_DATAGRAM,
            compress_above: None,
        }
    }

    /// Compresses (LZ4, [`FLAG_COMPRESSED`](crate::FLAG_COMPRESSED)) every body longer than
    /// `threshold` bytes, when that actually makes it shorter; sealed frames
    /// are compressed before sealing. Off by default. Decoding accepts
    /// compressed frames whatever this setting; peers built before
    /// compression refuse them (see the compatibility note in `frame/mod.rs`), so enable it only
    /// once the whole cluster can read them. Bodies longer than the frame
    /// cap are never compressed (the receiver would refuse to inflate them).
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use gossamer_wire::*;
    ///
    /// let codec = FrameCodec::new(ClusterLabel::new("prod").unwrap()).with_compression(512);
    /// let state = PushPull { join: false, members: vec![], app_state: vec![7; 4096], user_ltime: 0 };
    /// let packet = Packet::new(Message::PushPullRequest(state));
    /// let mut buf = BytesMut::new();
    /// let len = codec.encode(&packet, &mut buf).unwrap();
    /// assert!(len < 1024 && buf[FLAGS_AT] & FLAG_COMPRESSED != 0);
    /// assert_eq!(codec.decode(&buf).unwrap(), packet);
    /// ```
    pub fn with_compression(mut self, threshold: usize) -> Self {
        self.compress_above = Some(threshold);
        self
    }

    /// Bodies longer than this are compressed; `None` when compression is off.
    pub fn compression_threshold(&self) -> Option<usize> {
        self.compress_above
    }

    /// Seals every frame with the keyring's primary key and, from now on,
    /// refuses plaintext frames (see [`FrameCodec::accept_plaintext`]).
    pub fn with_keyring(mut self, keyring: Arc<Keyring>) -> Self {
        self.keyring = Some(keyring);
        self.accept_plaintext = false;
        self
    }

    /// Whether plaintext frames are still accepted while a keyring is set:
    /// only for rolling encryption out across a running cluster.
    pub fn accept_plaintext(mut self, accept: bool) -> Self {
        self.accept_plaintext = accept;
        self
    }

    /// Caps the whole frame at `max` bytes (header included). Streams use a
    /// larger cap than datagrams, e.g. [`DEFAULT_MAX_STREAM_FRAME`].
    /// Caps above `u32::MAX` are lowered to it: the length field is 32 bits.
    pub fn with_max_frame_len(mut self, max: usize) -> Result<Self, ConfigError> {
        let min = self.overhead() + 16;
        if max < min {
            return Err(ConfigError::MaxFrameTooSmall(max, min));
        }
        self.max_frame_len = max.min(u32::MAX as usize);
        Ok(self)
    }

    /// The cluster label.
    pub fn label(&self) -> &ClusterLabel {
        &self.label
    }

    /// The largest frame accepted or produced.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Whether frames are sealed.
    pub fn is_encrypted(&self) -> bool {
        self.keyring.is_some()
    }

    /// Bytes a frame adds around its body (header, and nonce and tag when encrypted).
    pub fn overhead(&self) -> usize {
        self.header_len() + if self.keyring.is_some() { ENCRYPTION_OVERHEAD } else { 0 }
    }

    pub(super) fn header_len(&self) -> usize {
        FIXED_HEADER_LEN + self.label.0.len()
    }

    /// Where the body starts in a frame: after the header and, when
    /// sealed, the nonce.
    #[inline]
    pub(super) fn body_offset(&self) -> usize {
        self.header_len() + if self.keyring.is_some() { NONCE_LEN } else { 0 }
    }
}
