//! The frame around every message: a small hand-checked header, then the
//! body in bincode's standard encoding (written and read by the hand-made
//! codec in `body.rs`), optionally sealed with the cluster secret.
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

use std::fmt;
use std::sync::Arc;

use bytes::BytesMut;

use crate::body::{decode_updates, decode_updates_keeping, varint_len, BodyError, Decode, Encode, Reader, Writer};
use crate::crc::{checksum, CHECKSUMMED_FROM, CHECKSUM_AT};
use crate::crypto::{Keyring, ENCRYPTION_OVERHEAD, NONCE_LEN, TAG_LEN};
use crate::error::{ConfigError, DecodeError, EncodeError};
use crate::message::{clear_updates, MemberStateRef, Message, Packet, PacketRef, PushPullRef, Update, UpdateBytes};

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
/// Bytes of the uncompressed-length prefix of a compressed body.
const COMPRESSED_PREFIX: usize = 4;
/// Most an LZ4 block can expand: each extra length byte stands for at most
/// 255 output bytes, so `n` bytes never decompress to more than this.
const fn lz4_expansion_bound(n: usize) -> usize {
    n.saturating_mul(255).saturating_add(64)
}
/// Default budget of a compound datagram: fits a 1500-byte Ethernet MTU
/// with room for IP/UDP headers and tunnels.
pub const DEFAULT_MTU: usize = 1400;
/// Largest UDP payload over IPv4; the default cap of a datagram codec.
pub const MAX_DATAGRAM: usize = 65_507;
/// Default cap of a stream (push-pull) frame: 32 MiB is ~300,000 members.
pub const DEFAULT_MAX_STREAM_FRAME: usize = 32 << 20;
/// Header bytes besides the label.
pub const FIXED_HEADER_LEN: usize = 13;
/// Offset of the flags byte.
pub const FLAGS_AT: usize = 7;
/// Offset of the label length byte; the label follows it.
const LABEL_LEN_AT: usize = 8;
/// Bytes a stream reader needs before it knows the header's length: magic
/// through the label length byte (see [`header_len`]).
pub const HEADER_PREFIX_LEN: usize = LABEL_LEN_AT + 1;
const LABEL_AT: usize = 9;
/// Longest associated data of a sealed frame: magic, version, flags, label
/// length and a 255-byte label.
const MAX_AAD_LEN: usize = 5 + 255;
/// Reserved for the update count's varint (up to 65,535 updates).
const COUNT_RESERVE: usize = 3;
const MAX_UPDATES_PER_PACKET: usize = 65_535;

/// A cluster's label: frames from another cluster are refused before their
/// body is looked at (memberlist's label, an Erlang cookie check).
///
/// ```
/// use gossamer_wire::ClusterLabel;
/// assert!(ClusterLabel::new("prod-eu").is_ok());
/// assert!(ClusterLabel::new(&"x".repeat(300)).is_err());
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ClusterLabel(Vec<u8>);

impl ClusterLabel {
    /// A label of at most 255 bytes. The empty label is a label too.
    pub fn new(label: &str) -> Result<Self, ConfigError> {
        if label.len() > 255 {
            return Err(ConfigError::LabelTooLong(label.len()));
        }
        Ok(Self(label.as_bytes().to_vec()))
    }

    /// The label's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ClusterLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

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
    label: ClusterLabel,
    /// The label as a little-endian word and the mask of its bytes, when it
    /// has at most 8 bytes: the usual label is checked in one compare.
    label_word: Option<(u64, u64)>,
    keyring: Option<Arc<Keyring>>,
    accept_plaintext: bool,
    max_frame_len: usize,
    /// Bodies longer than this are compressed (`None`: never).
    compress_above: Option<usize>,
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

    /// Compresses (LZ4, [`FLAG_COMPRESSED`]) every body longer than
    /// `threshold` bytes, when that actually makes it shorter; sealed frames
    /// are compressed before sealing. Off by default. Decoding accepts
    /// compressed frames whatever this setting; peers built before
    /// compression refuse them (see the module docs), so enable it only
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

    fn header_len(&self) -> usize {
        FIXED_HEADER_LEN + self.label.0.len()
    }

    /// Appends one frame holding `packet` to `out`; returns its length.
    pub fn encode(&self, packet: &Packet, out: &mut BytesMut) -> Result<usize, EncodeError> {
        self.encode_body(packet, self.max_frame_len, out)
    }

    /// Appends a frame of `message` and the borrowed `updates`, encoded
    /// exactly as the equivalent [`Packet`].
    pub fn encode_parts(
        &self,
        message: &Message,
        updates: &[&Update],
        out: &mut BytesMut,
    ) -> Result<usize, EncodeError> {
        self.encode_body(&PacketRef { message, updates }, self.max_frame_len, out)
    }

    /// Appends a push-pull frame (a [`Message::PushPullResponse`] if
    /// `response`, else a request) whose members are read from `members`,
    /// byte for byte the frame of the equivalent [`PushPull`](crate::PushPull) packet, with
    /// no copy of the members: a node encodes its full state straight from
    /// its member table. The iterator is walked three times (count, size,
    /// write), so it must yield the same members each time; the sender's
    /// own state goes first (see [`PushPull::members`](crate::PushPull::members)).
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use gossamer_wire::*;
    ///
    /// let codec = FrameCodec::new(ClusterLabel::new("prod").unwrap());
    /// let me = MemberState {
    ///     node: NodeId::new("a@h".parse().unwrap(), "127.0.0.1:7946".parse().unwrap()),
    ///     incarnation: 3,
    ///     status: MemberStatus::Alive,
    ///     metadata: Metadata::new(),
    /// };
    /// let members = [me];
    /// let borrowed = members.iter().map(|m| MemberStateRef {
    ///     node: &m.node,
    ///     incarnation: m.incarnation,
    ///     status: m.status,
    ///     metadata: &m.metadata,
    /// });
    /// let mut frame = BytesMut::new();
    /// codec.encode_push_pull(false, true, borrowed, b"app", 9, &mut frame).unwrap();
    ///
    /// let owned = PushPull { join: true, members: members.to_vec(), app_state: b"app".to_vec(), user_ltime: 9 };
    /// let mut expected = BytesMut::new();
    /// codec.encode(&Packet::new(Message::PushPullRequest(owned)), &mut expected).unwrap();
    /// assert_eq!(frame, expected);
    /// ```
    pub fn encode_push_pull<'a>(
        &self,
        response: bool,
        join: bool,
        members: impl Iterator<Item = MemberStateRef<'a>> + Clone,
        app_state: &[u8],
        user_ltime: u64,
        out: &mut BytesMut,
    ) -> Result<usize, EncodeError> {
        let count = members.clone().count();
        let body = PushPullRef { response, join, members, count, app_state, user_ltime };
        self.encode_body(&body, self.max_frame_len, out)
    }

    fn encode_body<T: Encode + ?Sized>(&self, body: &T, max: usize, out: &mut BytesMut) -> Result<usize, EncodeError> {
        self.encode_sized(body, body.encoded_len(), max, out)
    }

    /// Appends the frame of `body`, whose encoded length is `body_len`. The
    /// frame is sized once and written in place: no growth, no re-measuring
    /// (unless the body is compressed, which takes two scratch buffers).
    fn encode_sized<T: Encode + ?Sized>(
        &self,
        body: &T,
        body_len: usize,
        max: usize,
        out: &mut BytesMut,
    ) -> Result<usize, EncodeError> {
        if let Some(threshold) = self.compress_above {
            if body_len > threshold && body_len <= self.max_frame_len {
                if let Some(packed) = compress(body, body_len) {
                    return self.write_frame(FLAG_COMPRESSED, packed.len(), max, out, |to| to.copy_from_slice(&packed));
                }
            }
        }
        self.write_frame(0, body_len, max, out, |to| {
            let mut writer = Writer::new(to);
            body.encode(&mut writer);
            debug_assert!(writer.is_full(), "encoded_len disagrees with encode");
        })
    }

    /// Appends a frame with `flags` (besides encryption) whose body of
    /// `body_len` bytes `fill` writes, then seals and checksums it.
    #[inline]
    fn write_frame(
        &self,
        flags: u8,
        body_len: usize,
        max: usize,
        out: &mut BytesMut,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<usize, EncodeError> {
        let total = self.overhead() + body_len;
        if total > max {
            return Err(EncodeError::TooLarge { len: total, max });
        }
        let start = out.len();
        out.resize(start + total, 0);
        let body_at = start + self.body_offset();
        fill(&mut out[body_at..body_at + body_len]);
        self.close_frame(flags, out, start)
    }

    /// Where the body starts in a frame: after the header and, when
    /// sealed, the nonce.
    #[inline]
    fn body_offset(&self) -> usize {
        self.header_len() + if self.keyring.is_some() { NONCE_LEN } else { 0 }
    }

    /// Completes the frame `out[start..]`, whose body is in place (with
    /// room for nonce and tag when sealed): writes the header, seals and
    /// checksums. On failure the frame is removed from `out`.
    #[inline]
    fn close_frame(&self, flags: u8, out: &mut BytesMut, start: usize) -> Result<usize, EncodeError> {
        let frame = &mut out[start..];
        let total = frame.len();
        let label = self.label.0.as_slice();
        let len_at = LABEL_AT + label.len();
        let payload_at = len_at + 4;
        frame[..2].copy_from_slice(&MAGIC);
        frame[2] = PROTOCOL_VERSION;
        frame[FLAGS_AT] = flags | if self.keyring.is_some() { FLAG_ENCRYPTED } else { 0 };
        frame[LABEL_LEN_AT] = label.len() as u8;
        frame[LABEL_AT..len_at].copy_from_slice(label);
        let payload_len = (total - payload_at) as u32; // total <= max_frame_len <= u32::MAX
        frame[len_at..payload_at].copy_from_slice(&payload_len.to_le_bytes());
        if let Some(keyring) = &self.keyring {
            let (aad, aad_len) = associated_data(frame, len_at);
            if keyring.seal(&aad[..aad_len], &mut frame[payload_at..]).is_err() {
                out.truncate(start);
                return Err(EncodeError::Encrypt);
            }
        }
        let crc = checksum(&frame[CHECKSUMMED_FROM..]);
        frame[CHECKSUM_AT..CHECKSUMMED_FROM].copy_from_slice(&crc.to_le_bytes());
        Ok(total)
    }

    /// Decodes one whole frame.
    pub fn decode(&self, frame: &[u8]) -> Result<Packet, DecodeError> {
        self.decode_with_scratch(frame, &mut Vec::new())
    }

    /// As [`FrameCodec::decode`], reusing `scratch` for decryption so a hot
    /// receive loop does not allocate a buffer per frame.
    #[inline]
    pub fn decode_with_scratch(&self, frame: &[u8], scratch: &mut Vec<u8>) -> Result<Packet, DecodeError> {
        // Each step hands back small values; the packet is assembled once, in
        // the return slot, instead of being moved out of nested `Result`s.
        let body = self.open(frame, scratch).map_err(|error| refused(error, frame.len()))?;
        let mut reader = Reader::new(body);
        let message = Message::decode(&mut reader).map_err(|error| malformed(error, frame.len()))?;
        let mut updates = Vec::new();
        decode_updates(&mut reader, &mut updates).map_err(|error| malformed(error, frame.len()))?;
        if reader.remaining() != 0 {
            return Err(refused(DecodeError::TrailingBytes(reader.remaining()), frame.len()));
        }
        Ok(Packet { message, updates })
    }

    /// As [`FrameCodec::decode_with_scratch`], but into an existing packet:
    /// its update list keeps its capacity, so a receive loop that reuses one
    /// `Packet` does not allocate per compound frame. On error `packet` holds
    /// some valid but unspecified content.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use gossamer_wire::*;
    ///
    /// let codec = FrameCodec::new(ClusterLabel::new("prod").unwrap());
    /// let sent = Packet::new(Message::Ack(Ack { seq: 7, from: "a@127.0.0.1".parse().unwrap() }));
    /// let mut buf = BytesMut::new();
    /// codec.encode(&sent, &mut buf).unwrap();
    ///
    /// let (mut received, mut scratch) = (Packet::new(Message::Gossip), Vec::new());
    /// codec.decode_into(&buf, &mut scratch, &mut received).unwrap();
    /// assert_eq!(received, sent);
    /// ```
    #[inline]
    pub fn decode_into(&self, frame: &[u8], scratch: &mut Vec<u8>, packet: &mut Packet) -> Result<(), DecodeError> {
        packet.message = self.decode_parts(frame, scratch, &mut packet.updates)?;
        Ok(())
    }

    /// As [`FrameCodec::decode_into`], but the message is returned and only
    /// the updates go into a reused list (cleared first): a receive loop
    /// that hands the message on by value need not move a whole [`Packet`]
    /// in and out of its state. On error `updates` holds some valid but
    /// unspecified content.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use gossamer_wire::*;
    ///
    /// let codec = FrameCodec::new(ClusterLabel::new("prod").unwrap());
    /// let leave = Update::Leave(Leave { node: "b@h".parse().unwrap(), incarnation: 2 });
    /// let ack = Message::Ack(Ack { seq: 7, from: "a@h".parse().unwrap() });
    /// let mut buf = BytesMut::new();
    /// codec.encode(&Packet { message: ack.clone(), updates: vec![leave.clone()] }, &mut buf).unwrap();
    ///
    /// let (mut updates, mut scratch) = (Vec::new(), Vec::new());
    /// assert_eq!(codec.decode_parts(&buf, &mut scratch, &mut updates).unwrap(), ack);
    /// assert_eq!(updates, vec![leave]);
    /// ```
    #[inline]
    pub fn decode_parts(
        &self,
        frame: &[u8],
        scratch: &mut Vec<u8>,
        updates: &mut Vec<Update>,
    ) -> Result<Message, DecodeError> {
        let body = self.open(frame, scratch).map_err(|error| refused(error, frame.len()))?;
        let mut reader = Reader::new(body);
        let message = Message::decode(&mut reader).map_err(|error| malformed(error, frame.len()))?;
        clear_updates(updates);
        decode_updates(&mut reader, updates).map_err(|error| malformed(error, frame.len()))?;
        if reader.remaining() != 0 {
            return Err(refused(DecodeError::TrailingBytes(reader.remaining()), frame.len()));
        }
        Ok(message)
    }

    /// As [`FrameCodec::decode_parts`], and also keeps the bytes of each
    /// membership update as it arrived in `kept`, so a node that forwards
    /// an update unchanged can queue them instead of encoding it again
    /// (see [`UpdateBytes::get`] for which updates are kept).
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use gossamer_wire::*;
    ///
    /// let codec = FrameCodec::new(ClusterLabel::new("prod").unwrap());
    /// let leave = Update::Leave(Leave { node: "b@h".parse().unwrap(), incarnation: 2 });
    /// let mut buf = BytesMut::new();
    /// codec.encode(&Packet { message: Message::Gossip, updates: vec![leave.clone()] }, &mut buf).unwrap();
    ///
    /// let (mut updates, mut scratch, mut kept) = (Vec::new(), Vec::new(), UpdateBytes::new());
    /// codec.decode_parts_keeping(&buf, &mut scratch, &mut updates, &mut kept).unwrap();
    /// let mut encoded = Vec::new();
    /// leave.encode_into(&mut encoded);
    /// assert_eq!(kept.get(0), Some(&encoded[..]));
    /// ```
    #[inline]
    pub fn decode_parts_keeping(
        &self,
        frame: &[u8],
        scratch: &mut Vec<u8>,
        updates: &mut Vec<Update>,
        kept: &mut UpdateBytes,
    ) -> Result<Message, DecodeError> {
        let body = self.open(frame, scratch).map_err(|error| refused(error, frame.len()))?;
        let mut reader = Reader::new(body);
        let message = Message::decode(&mut reader).map_err(|error| malformed(error, frame.len()))?;
        clear_updates(updates);
        decode_updates_keeping(&mut reader, updates, kept).map_err(|error| malformed(error, frame.len()))?;
        if reader.remaining() != 0 {
            return Err(refused(DecodeError::TrailingBytes(reader.remaining()), frame.len()));
        }
        Ok(message)
    }

    /// Checks the header and the checksum and, if sealed, decrypts into
    /// `scratch`; returns the body.
    fn open<'f>(&self, frame: &'f [u8], scratch: &'f mut Vec<u8>) -> Result<&'f [u8], DecodeError> {
        let header = self.check_header(frame)?;
        let actual = frame.len() - header.payload_at;
        if actual != header.payload_len {
            return Err(DecodeError::LengthMismatch { declared: header.payload_len, actual });
        }
        let payload = &frame[header.payload_at..];
        let expected = u32::from_le_bytes(frame[CHECKSUM_AT..CHECKSUMMED_FROM].try_into().expect("4 bytes"));
        let actual = checksum(&frame[CHECKSUMMED_FROM..]);
        if expected != actual {
            return Err(DecodeError::Checksum { expected, actual });
        }
        if !header.encrypted {
            if !self.accept_plaintext {
                return Err(DecodeError::NotEncrypted);
            }
            if header.compressed {
                self.decompress(payload, scratch)?;
                return Ok(&scratch[..]);
            }
            return Ok(payload);
        }
        let keyring = self.keyring.as_ref().ok_or(DecodeError::EncryptedButNoKey)?;
        if payload.len() < ENCRYPTION_OVERHEAD {
            return Err(DecodeError::Malformed(format!(
                "encrypted payload of {} bytes is shorter than nonce and tag ({ENCRYPTION_OVERHEAD})",
                payload.len()
            )));
        }
        let (aad, aad_len) = associated_data(frame, header.payload_at - 4);
        keyring.open(&aad[..aad_len], payload, scratch).map_err(|()| DecodeError::WrongKey)?;
        if header.compressed {
            let compressed = std::mem::take(scratch);
            self.decompress(&compressed, scratch)?;
        }
        Ok(&scratch[..])
    }

    /// Inflates a compressed body into `out`. The announced length is
    /// checked against the frame cap and against what LZ4 could possibly
    /// expand the bytes present to before anything is allocated, and the
    /// output must come out exactly that long.
    #[cold]
    fn decompress(&self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
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
    fn check_header(&self, frame: &[u8]) -> Result<Header, DecodeError> {
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

    /// Starts a compound packet of `message` plus as many updates as fit in
    /// `budget` bytes of frame. Fails if `message` alone does not fit.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use gossamer_wire::*;
    ///
    /// let codec = FrameCodec::new(ClusterLabel::default());
    /// let ack = Message::Ack(Ack { seq: 1, from: "a@h".parse().unwrap() });
    /// let update = Update::Leave(Leave { node: "b@h".parse().unwrap(), incarnation: 3 });
    /// let mut packet = codec.compound(&ack, DEFAULT_MTU).unwrap();
    /// while packet.push(&update) {}
    /// let mut out = BytesMut::new();
    /// let report = packet.finish(&mut out).unwrap();
    /// assert!(report.bytes <= DEFAULT_MTU && report.updates > 100);
    /// ```
    pub fn compound<'a>(&'a self, message: &'a Message, budget: usize) -> Result<CompoundBuilder<'a>, EncodeError> {
        let budget = budget.min(self.max_frame_len);
        let used = self.overhead() + message.encoded_len() + COUNT_RESERVE;
        if used > budget {
            return Err(EncodeError::TooLarge { len: used, max: budget });
        }
        // Room for the typical update (~40 bytes), capped: one allocation in the usual case.
        let updates = Vec::with_capacity(((budget - used) / 32).clamp(4, 256));
        Ok(CompoundBuilder { codec: self, message, updates, budget, used })
    }

    /// Starts a compound packet of `message` written straight into `out`:
    /// the streaming variant of [`FrameCodec::compound`] for hot send
    /// paths. Updates are appended to `out` as they are pushed, either as
    /// [`Update`]s or as bytes encoded beforehand ([`Update::encode_into`],
    /// e.g. once when an update is queued rather than on every send), so
    /// the builder keeps no list and allocates nothing once `out` has its
    /// capacity. The frame is byte for byte what [`FrameCodec::compound`]
    /// builds from the same updates. Fails if `message` alone does not fit
    /// in `budget`; dropping the writer without [`CompoundWriter::finish`]
    /// removes the partial frame from `out`.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use gossamer_wire::*;
    ///
    /// let codec = FrameCodec::new(ClusterLabel::default());
    /// let ack = Message::Ack(Ack { seq: 1, from: "a@h".parse().unwrap() });
    /// let update = Update::Leave(Leave { node: "b@h".parse().unwrap(), incarnation: 3 });
    /// let mut encoded = Vec::new();
    /// update.encode_into(&mut encoded); // e.g. once, when the update is queued
    ///
    /// let mut out = BytesMut::new();
    /// let mut packet = codec.compound_into(&ack, DEFAULT_MTU, &mut out).unwrap();
    /// assert!(packet.push(&update));
    /// assert!(packet.push_encoded(&encoded));
    /// let report = packet.finish().unwrap();
    /// assert_eq!(report.updates, 2);
    /// assert_eq!(codec.decode(&out).unwrap().updates, vec![update.clone(), update]);
    /// ```
    pub fn compound_into<'a>(
        &'a self,
        message: &Message,
        budget: usize,
        out: &'a mut BytesMut,
    ) -> Result<CompoundWriter<'a>, EncodeError> {
        let budget = budget.min(self.max_frame_len);
        let message_len = message.encoded_len();
        let used = self.overhead() + message_len + COUNT_RESERVE;
        if used > budget {
            return Err(EncodeError::TooLarge { len: used, max: budget });
        }
        let start = out.len();
        // Room for the whole frame now (up to a datagram's worth): pushing
        // a datagram's updates never grows the buffer.
        out.reserve(budget.min(MAX_DATAGRAM));
        let body_at = start + self.body_offset();
        let count_at = body_at + message_len;
        out.resize(count_at + 1, 0);
        let mut writer = Writer::new(&mut out[body_at..count_at]);
        message.encode(&mut writer);
        debug_assert!(writer.is_full(), "encoded_len disagrees with encode");
        Ok(CompoundWriter { codec: self, out, start, count_at, count: 0, budget, used, open: true })
    }
}

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
fn associated_data(frame: &[u8], len_at: usize) -> ([u8; MAX_AAD_LEN], usize) {
    let mut aad = [0u8; MAX_AAD_LEN];
    aad[..CHECKSUM_AT].copy_from_slice(&frame[..CHECKSUM_AT]);
    let rest = &frame[FLAGS_AT..len_at];
    aad[CHECKSUM_AT..CHECKSUM_AT + rest.len()].copy_from_slice(rest);
    (aad, CHECKSUM_AT + rest.len())
}

/// Logs why a frame was refused (off the hot path) and passes the error on.
#[cold]
#[inline(never)]
fn refused(error: DecodeError, len: usize) -> DecodeError {
    tracing::debug!(%error, len, "frame refused");
    error
}

#[cold]
#[inline(never)]
fn malformed(error: BodyError, len: usize) -> DecodeError {
    refused(DecodeError::Malformed(error.to_string()), len)
}

struct Header {
    payload_at: usize,
    payload_len: usize,
    encrypted: bool,
    compressed: bool,
}

/// `body` LZ4-compressed behind its length, if that is shorter than `body_len`.
#[cold]
fn compress<T: Encode + ?Sized>(body: &T, body_len: usize) -> Option<Vec<u8>> {
    let mut plain = vec![0u8; body_len];
    let mut writer = Writer::new(&mut plain);
    body.encode(&mut writer);
    debug_assert!(writer.is_full(), "encoded_len disagrees with encode");
    compress_bytes(&plain)
}

/// `plain` LZ4-compressed behind its length, if that is shorter.
#[cold]
fn compress_bytes(plain: &[u8]) -> Option<Vec<u8>> {
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

/// Bytes `value` takes in a frame body, computed from its fields by the
/// body codec itself (no encoding pass, no serde): what budget checks
/// (`overhead() + encoded_len(..) <= mtu`) and tests need.
pub fn encoded_len<T: BodyLen + ?Sized>(value: &T) -> usize {
    value.body_len()
}

/// A value carried in a frame body ([`Packet`], [`Message`], [`Update`], and
/// the messages and updates inside them), whose size [`encoded_len`]
/// reports. Implemented by this crate only: the body encoding is its own.
pub trait BodyLen: sealed::Sealed {
    /// Bytes the value takes in a frame body.
    #[doc(hidden)]
    fn body_len(&self) -> usize;
}

impl<T: Encode + ?Sized> BodyLen for T {
    fn body_len(&self) -> usize {
        Encode::encoded_len(self)
    }
}

mod sealed {
    /// Keeps [`super::BodyLen`] to the types of the body codec.
    pub trait Sealed {}
    impl<T: crate::body::Encode + ?Sized> Sealed for T {}
}

/// What [`CompoundBuilder::finish`] packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackReport {
    /// Piggybacked updates that fit.
    pub updates: usize,
    /// Bytes of the whole frame.
    pub bytes: usize,
}

/// Packs updates behind a primary message until the budget is full. The
/// accounting is conservative (the update count's varint is reserved at its
/// largest), so the frame never exceeds the budget.
#[derive(Debug)]
pub struct CompoundBuilder<'a> {
    codec: &'a FrameCodec,
    message: &'a Message,
    updates: Vec<&'a Update>,
    budget: usize,
    used: usize,
}

impl<'a> CompoundBuilder<'a> {
    /// Adds `update` if it fits; returns whether it did. A caller walking a
    /// priority queue can keep offering smaller updates after a refusal.
    pub fn push(&mut self, update: &'a Update) -> bool {
        if self.updates.len() >= MAX_UPDATES_PER_PACKET {
            return false;
        }
        let len = update.encoded_len();
        if self.used + len > self.budget {
            return false;
        }
        self.used += len;
        self.updates.push(update);
        true
    }

    /// Bytes still free in the budget.
    pub fn remaining(&self) -> usize {
        self.budget - self.used
    }

    /// Updates packed so far.
    pub fn len(&self) -> usize {
        self.updates.len()
    }

    /// True when no update is packed yet.
    pub fn is_empty(&self) -> bool {
        self.updates.is_empty()
    }

    /// Appends the frame to `out`.
    pub fn finish(self, out: &mut BytesMut) -> Result<PackReport, EncodeError> {
        let body = PacketRef { message: self.message, updates: &self.updates };
        // Every part was measured on the way in; only the count's varint differs from the reserve.
        let body_len = self.used - self.codec.overhead() - COUNT_RESERVE + varint_len(self.updates.len() as u64);
        debug_assert_eq!(body_len, body.encoded_len());
        let bytes = self.codec.encode_sized(&body, body_len, self.budget, out)?;
        Ok(PackReport { updates: self.updates.len(), bytes })
    }
}

/// A compound packet written straight into the caller's buffer, from
/// [`FrameCodec::compound_into`]: the message first, then each update as it
/// is pushed. Accounting is [`CompoundBuilder`]'s (the count's varint is
/// reserved at its largest), so the frame never exceeds the budget. In the
/// buffer the count takes one byte; the rare packet of more than 250
/// updates has its updates moved by two bytes when finished.
#[derive(Debug)]
pub struct CompoundWriter<'a> {
    codec: &'a FrameCodec,
    out: &'a mut BytesMut,
    /// Where the frame starts in `out`.
    start: usize,
    /// Where the update count's byte is in `out`; updates follow it.
    count_at: usize,
    count: usize,
    budget: usize,
    /// Frame bytes so far, counting the count's varint at its largest.
    used: usize,
    /// False once finished: dropping an open writer removes its frame.
    open: bool,
}

impl CompoundWriter<'_> {
    /// Whether `len` more bytes of update fit.
    #[inline]
    fn fits(&self, len: usize) -> bool {
        self.count < MAX_UPDATES_PER_PACKET && self.used + len <= self.budget
    }

    /// Adds `update` if it fits; returns whether it did.
    pub fn push(&mut self, update: &Update) -> bool {
        let len = update.encoded_len();
        if !self.fits(len) {
            return false;
        }
        let at = self.out.len();
        self.out.resize(at + len, 0);
        let mut writer = Writer::new(&mut self.out[at..]);
        update.encode(&mut writer);
        debug_assert!(writer.is_full(), "encoded_len disagrees with encode");
        self.used += len;
        self.count += 1;
        true
    }

    /// Adds an update already encoded by [`Update::encode_into`] if it
    /// fits; returns whether it did. The bytes are copied as they are:
    /// anything else than one whole encoded update makes a frame that
    /// receivers refuse as malformed.
    #[inline]
    pub fn push_encoded(&mut self, encoded: &[u8]) -> bool {
        if encoded.is_empty() || !self.fits(encoded.len()) {
            return false;
        }
        self.out.extend_from_slice(encoded);
        self.used += encoded.len();
        self.count += 1;
        true
    }

    /// Bytes still free in the budget.
    pub fn remaining(&self) -> usize {
        self.budget - self.used
    }

    /// Updates packed so far.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when no update is packed yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Writes the count and the header, compresses (if the codec does and
    /// it pays), seals (if the codec does) and checksums the frame.
    pub fn finish(mut self) -> Result<PackReport, EncodeError> {
        self.open = false;
        let (codec, start, count_at, count) = (self.codec, self.start, self.count_at, self.count);
        let out = &mut *self.out;
        let count_len = varint_len(count as u64);
        if count_len > 1 {
            let end = out.len();
            out.resize(end + count_len - 1, 0);
            out.copy_within(count_at + 1..end, count_at + count_len);
        }
        let mut writer = Writer::new(&mut out[count_at..count_at + count_len]);
        (count as u64).encode(&mut writer);
        let body_at = start + codec.body_offset();
        let body_len = out.len() - body_at;
        if let Some(threshold) = codec.compress_above {
            if body_len > threshold && body_len <= codec.max_frame_len {
                if let Some(packed) = compress_bytes(&out[body_at..]) {
                    out.truncate(start);
                    let bytes = codec.write_frame(FLAG_COMPRESSED, packed.len(), self.budget, out, |to| {
                        to.copy_from_slice(&packed)
                    })?;
                    return Ok(PackReport { updates: count, bytes });
                }
            }
        }
        if codec.keyring.is_some() {
            out.resize(out.len() + TAG_LEN, 0);
        }
        debug_assert!(out.len() - start <= self.budget);
        let bytes = codec.close_frame(0, out, start)?;
        Ok(PackReport { updates: count, bytes })
    }
}

impl Drop for CompoundWriter<'_> {
    fn drop(&mut self) {
        if self.open {
            self.out.truncate(self.start);
        }
    }
}
