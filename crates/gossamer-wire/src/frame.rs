//! The frame around every message: a small hand-checked header, then the
//! bincode body (optionally sealed with the cluster secret).
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
//! The header is checked in that order, so the error names the first thing
//! wrong: another protocol, another version, another cluster, a length the
//! codec will not accept, a corrupted frame, a wrong key, a malformed body.
//! The 32-bit length lets full-state sync over TCP grow past 64 KiB (the
//! limit memberlist forks outgrew); the codec's configured cap bounds it.

use std::fmt;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use serde::Serialize;

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
        Self { label, keyring: None, accept_plaintext: true, max_frame_len: MAX_DATAGRAM }
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
    pub fn with_max_frame_len(mut self, max: usize) -> Result<Self, ConfigError> {
        let min = self.overhead() + 16;
        if max < min {
            return Err(ConfigError::MaxFrameTooSmall(max, min));
        }
        self.max_frame_len = max;
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

    fn encode_body<T: Serialize + ?Sized>(
        &self,
        body: &T,
        max: usize,
        out: &mut BytesMut,
    ) -> Result<usize, EncodeError> {
        let start = out.len();
        let flags = if self.keyring.is_some() { FLAG_ENCRYPTED } else { 0 };
        out.reserve(self.overhead() + 64);
        out.put_slice(&MAGIC);
        out.put_u8(PROTOCOL_VERSION);
        out.put_u8(flags);
        out.put_u8(self.label.0.len() as u8);
        out.put_slice(&self.label.0);
        let len_at = out.len();
        out.put_u32_le(0);
        out.put_u32_le(0);
        let payload_at = out.len();
        if self.keyring.is_some() {
            out.put_bytes(0, NONCE_LEN);
        }
        let written = bincode::serde::encode_into_writer(body, BufWriter(out), bincode_config());
        if let Err(e) = written {
            out.truncate(start);
            return Err(EncodeError::Serialize(e.to_string()));
        }
        if let Some(keyring) = &self.keyring {
            out.put_bytes(0, crate::crypto::TAG_LEN);
            let (head, payload) = out[start..].split_at_mut(payload_at - start);
            if keyring.seal(&head[..len_at - start], payload).is_err() {
                out.truncate(start);
                return Err(EncodeError::Encrypt);
            }
        }
        let total = out.len() - start;
        if total > max {
            out.truncate(start);
            return Err(EncodeError::TooLarge { len: total, max });
        }
        let payload_len = (out.len() - payload_at) as u32;
        out[len_at..len_at + 4].copy_from_slice(&payload_len.to_le_bytes());
        let crc = frame_crc(&out[start..len_at + 4], &out[payload_at..]);
        out[len_at + 4..len_at + 8].copy_from_slice(&crc.to_le_bytes());
        Ok(total)
    }

    /// Decodes one whole frame.
    pub fn decode(&self, frame: &[u8]) -> Result<Packet, DecodeError> {
        self.decode_with_scratch(frame, &mut Vec::new())
    }

    /// As [`FrameCodec::decode`], reusing `scratch` for decryption so a hot
    /// receive loop does not allocate a buffer per frame.
    pub fn decode_with_scratch(&self, frame: &[u8], scratch: &mut Vec<u8>) -> Result<Packet, DecodeError> {
        let header = self.check_header(frame)?;
        let actual = frame.len() - header.payload_at;
        if actual != header.payload_len {
            return Err(DecodeError::LengthMismatch { declared: header.payload_len, actual });
        }
        let payload = &frame[header.payload_at..];
        let expected = u32::from_le_bytes(frame[header.payload_at - 4..header.payload_at].try_into().expect("4 bytes"));
        let actual = frame_crc(&frame[..header.payload_at - 4], payload);
        if expected != actual {
            return Err(DecodeError::Checksum { expected, actual });
        }
        let body = if header.encrypted {
            let keyring = self.keyring.as_ref().ok_or(DecodeError::EncryptedButNoKey)?;
            let aad = &frame[..header.payload_at - 8];
            keyring.open(aad, payload, scratch).map_err(|()| DecodeError::WrongKey)?;
            &scratch[..]
        } else {
            if !self.accept_plaintext {
                return Err(DecodeError::NotEncrypted);
            }
            payload
        };
        let (packet, used) = bincode::serde::borrow_decode_from_slice::<Packet, _>(body, bincode_config())
            .map_err(|e| DecodeError::Malformed(e.to_string()))?;
        if used != body.len() {
            return Err(DecodeError::TrailingBytes(body.len() - used));
        }
        Ok(packet)
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

    fn check_header(&self, frame: &[u8]) -> Result<Header, DecodeError> {
        if frame.len() < 5 {
            if frame.len() >= 2 && frame[..2] != MAGIC {
                return Err(DecodeError::BadMagic { found: [frame[0], frame[1]] });
            }
            return Err(DecodeError::Truncated { len: frame.len(), need: FIXED_HEADER_LEN });
        }
        if frame[..2] != MAGIC {
            return Err(DecodeError::BadMagic { found: [frame[0], frame[1]] });
        }
        if frame[2] != PROTOCOL_VERSION {
            return Err(DecodeError::VersionMismatch { ours: PROTOCOL_VERSION, theirs: frame[2] });
        }
        let flags = frame[3];
        if flags & !KNOWN_FLAGS != 0 {
            return Err(DecodeError::UnknownFlags(flags));
        }
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
        let used = self.overhead() + encoded_len(message) + COUNT_RESERVE;
        if used > budget {
            return Err(EncodeError::TooLarge { len: used, max: budget });
        }
        Ok(CompoundBuilder { codec: self, message, updates: Vec::new(), budget, used })
    }
}

struct Header {
    payload_at: usize,
    payload_len: usize,
    encrypted: bool,
}

fn frame_crc(header: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header);
    hasher.update(payload);
    hasher.finalize()
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

struct BufWriter<'a>(&'a mut BytesMut);

impl bincode::enc::write::Writer for BufWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
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
        let len = encoded_len(update);
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
        let bytes =
            self.codec.encode_body(&PacketRef { message: self.message, updates: &self.updates }, self.budget, out)?;
        Ok(PackReport { updates: self.updates.len(), bytes })
    }
}
