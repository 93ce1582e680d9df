//! The frame around every message: a small hand-checked header, then the
//! body in bincode's standard encoding (written and read by the hand-made
//! codec in `body.rs`), optionally sealed with the cluster secret.
//!
//! ```text
//! offset  size  field
//! 0       2     magic "GS"
//! 2       1     protocol version
//! 3       1     flags (bit 0: encrypted; others must be zero)
//! 4       1     label length L (0..=255)
//! 5       L     cluster label
//! 5+L     4     payload length (u32, little endian)
//! 9+L     4     CRC32 of every other byte of the frame (u32, little endian)
//! 13+L    n     payload: the body, or nonce ‖ sealed body ‖ tag
//! ```
//!
//! A sealed payload is XChaCha20-Poly1305 over the body with bytes
//! `0..5+L` (magic through label) as associated data; the CRC covers the
//! sealed bytes, so corruption in transit is told apart from a wrong key.
//!
//! The header is checked in that order, so the error names the first thing
//! wrong: another protocol, another version, another cluster, a length the
//! codec will not accept, a corrupted frame, a wrong key, a malformed body.
//! The 32-bit length lets full-state sync over TCP grow past 64 KiB (the
//! limit memberlist forks outgrew); the codec's configured cap bounds it.

use std::fmt;
use std::sync::Arc;

use bytes::BytesMut;
use serde::Serialize;

use crate::body::{decode_updates, varint_len, BodyError, Decode, Encode, Reader, Writer};
use crate::crc::frame_crc;
use crate::crypto::{Keyring, ENCRYPTION_OVERHEAD, NONCE_LEN};
use crate::error::{ConfigError, DecodeError, EncodeError};
use crate::message::{Message, Packet, PacketRef, Update};

/// First two bytes of every frame.
pub const MAGIC: [u8; 2] = *b"GS";
/// The protocol version this crate speaks. Raised on any incompatible change
/// to the header or the body encoding.
pub const PROTOCOL_VERSION: u8 = 1;
/// Flag: the payload is sealed with the cluster secret.
pub const FLAG_ENCRYPTED: u8 = 0x01;
const KNOWN_FLAGS: u8 = FLAG_ENCRYPTED;
/// Default budget of a compound datagram: fits a 1500-byte Ethernet MTU
/// with room for IP/UDP headers and tunnels.
pub const DEFAULT_MTU: usize = 1400;
/// Largest UDP payload over IPv4; the default cap of a datagram codec.
pub const MAX_DATAGRAM: usize = 65_507;
/// Default cap of a stream (push-pull) frame: 32 MiB is ~300,000 members.
pub const DEFAULT_MAX_STREAM_FRAME: usize = 32 << 20;
/// Header bytes besides the label.
pub const FIXED_HEADER_LEN: usize = 13;
/// Reserved for the update count's varint (up to 65,535 updates).
const COUNT_RESERVE: usize = 3;
const MAX_UPDATES_PER_PACKET: usize = 65_535;

/// Upper bound on what bincode may claim while decoding; the real bound is
/// the frame, since all strings and byte strings are borrowed from it.
const BINCODE_LIMIT: usize = 1 << 30;

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<BINCODE_LIMIT>()
}

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
}

impl fmt::Debug for FrameCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameCodec")
            .field("label", &self.label)
            .field("encrypted", &self.keyring.is_some())
            .field("accept_plaintext", &self.accept_plaintext)
            .field("max_frame_len", &self.max_frame_len)
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
        Self { label, label_word, keyring: None, accept_plaintext: true, max_frame_len: MAX_DATAGRAM }
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

    fn encode_body<T: Encode + ?Sized>(&self, body: &T, max: usize, out: &mut BytesMut) -> Result<usize, EncodeError> {
        self.encode_sized(body, body.encoded_len(), max, out)
    }

    /// Appends the frame of `body`, whose encoded length is `body_len`. The
    /// frame is sized once and written in place: no growth, no re-measuring.
    fn encode_sized<T: Encode + ?Sized>(
        &self,
        body: &T,
        body_len: usize,
        max: usize,
        out: &mut BytesMut,
    ) -> Result<usize, EncodeError> {
        let total = self.overhead() + body_len;
        if total > max {
            return Err(EncodeError::TooLarge { len: total, max });
        }
        let start = out.len();
        out.resize(start + total, 0);
        let frame = &mut out[start..];
        let label = self.label.0.as_slice();
        let len_at = 5 + label.len();
        let payload_at = len_at + 8;
        frame[..2].copy_from_slice(&MAGIC);
        frame[2] = PROTOCOL_VERSION;
        frame[3] = if self.keyring.is_some() { FLAG_ENCRYPTED } else { 0 };
        frame[4] = label.len() as u8;
        frame[5..len_at].copy_from_slice(label);
        let payload_len = (total - payload_at) as u32; // total <= max_frame_len <= u32::MAX
        frame[len_at..len_at + 4].copy_from_slice(&payload_len.to_le_bytes());
        let body_at = payload_at + if self.keyring.is_some() { NONCE_LEN } else { 0 };
        let mut writer = Writer::new(&mut frame[body_at..body_at + body_len]);
        body.encode(&mut writer);
        debug_assert!(writer.is_full(), "encoded_len disagrees with encode");
        if let Some(keyring) = &self.keyring {
            let (head, payload) = frame.split_at_mut(payload_at);
            if keyring.seal(&head[..len_at], payload).is_err() {
                out.truncate(start);
                return Err(EncodeError::Encrypt);
            }
        }
        let crc = frame_crc(frame, len_at + 4);
        frame[len_at + 4..payload_at].copy_from_slice(&crc.to_le_bytes());
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
        let body = self.open(frame, scratch).map_err(|error| refused(error, frame.len()))?;
        let mut reader = Reader::new(body);
        packet.message = Message::decode(&mut reader).map_err(|error| malformed(error, frame.len()))?;
        packet.updates.clear();
        decode_updates(&mut reader, &mut packet.updates).map_err(|error| malformed(error, frame.len()))?;
        if reader.remaining() != 0 {
            return Err(refused(DecodeError::TrailingBytes(reader.remaining()), frame.len()));
        }
        Ok(())
    }

    /// Checks the header and the checksum and, if sealed, decrypts into
    /// `scratch`; returns the body.
    fn open<'f>(&self, frame: &'f [u8], scratch: &'f mut Vec<u8>) -> Result<&'f [u8], DecodeError> {
        let header = self.check_header(frame)?;
        let actual = frame.len() - header.payload_at;
        if actual != header.payload_len {
            return Err(DecodeError::LengthMismatch { declared: header.payload_len, actual });
        }
        let crc_at = header.payload_at - 4;
        let (head, payload) = frame.split_at(header.payload_at);
        let expected = u32::from_le_bytes(head[crc_at..].try_into().expect("4 bytes"));
        let actual = frame_crc(frame, crc_at);
        if expected != actual {
            return Err(DecodeError::Checksum { expected, actual });
        }
        if !header.encrypted {
            if !self.accept_plaintext {
                return Err(DecodeError::NotEncrypted);
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
        let aad = &frame[..crc_at - 4];
        keyring.open(aad, payload, scratch).map_err(|()| DecodeError::WrongKey)?;
        Ok(&scratch[..])
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
        let len_at = 5 + label.len();
        if let Some(head) = frame.get(..len_at + 8) {
            // Magic, version, flags (known bits only) and label length, as one word and a byte.
            let fixed = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
            let expected = u32::from_le_bytes([MAGIC[0], MAGIC[1], PROTOCOL_VERSION, KNOWN_FLAGS]);
            let fixed_ok = fixed & !expected & 0xff00_0000 == 0
                && fixed & 0x00ff_ffff == expected & 0x00ff_ffff
                && head[4] as usize == label.len();
            let label_ok = match self.label_word {
                // head has len_at + 8 >= 13 bytes, so 8 bytes from offset 5 are there.
                Some((word, mask)) => {
                    let found = u64::from_le_bytes(head[5..13].try_into().expect("8 bytes"));
                    (found ^ word) & mask == 0
                }
                None => &head[5..len_at] == label,
            };
            let payload_len = u32::from_le_bytes(head[len_at..len_at + 4].try_into().expect("4 bytes"));
            let payload_at = len_at + 8;
            if fixed_ok && label_ok && payload_at as u64 + payload_len as u64 <= self.max_frame_len as u64 {
                let encrypted = head[3] & FLAG_ENCRYPTED != 0;
                return Ok(Header { payload_at, payload_len: payload_len as usize, encrypted });
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
        if let Some(&flags) = frame.get(3) {
            if flags & !KNOWN_FLAGS != 0 {
                return Err(DecodeError::UnknownFlags(flags));
            }
        }
        if frame.len() < 5 {
            return Err(DecodeError::Truncated { len: frame.len(), need: FIXED_HEADER_LEN });
        }
        let flags = frame[3];
        let label_len = frame[4] as usize;
        let payload_at = FIXED_HEADER_LEN + label_len;
        if frame.len() < payload_at {
            return Err(DecodeError::Truncated { len: frame.len(), need: payload_at });
        }
        let label = &frame[5..5 + label_len];
        if label != self.label.0.as_slice() {
            return Err(DecodeError::LabelMismatch {
                expected: String::from_utf8_lossy(&self.label.0).into_owned(),
                found: String::from_utf8_lossy(label).into_owned(),
            });
        }
        let len_at = 5 + label_len;
        let payload_len = u32::from_le_bytes(frame[len_at..len_at + 4].try_into().expect("4 bytes"));
        if payload_at as u64 + payload_len as u64 > self.max_frame_len as u64 {
            return Err(DecodeError::TooLarge { len: payload_len as u64, max: self.max_frame_len as u32 });
        }
        Ok(Header { payload_at, payload_len: payload_len as usize, encrypted: flags & FLAG_ENCRYPTED != 0 })
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
}

/// Bytes `value` takes in a frame body.
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> usize {
    let mut counter = SizeCounter(0);
    // Counting cannot fail for our types; a failure would show as size 0 and
    // then as an encode error, never as an oversized packet.
    let _ = bincode::serde::encode_into_writer(value, &mut counter, bincode_config());
    counter.0
}

struct SizeCounter(usize);

impl bincode::enc::write::Writer for &mut SizeCounter {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0 += bytes.len();
        Ok(())
    }
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
