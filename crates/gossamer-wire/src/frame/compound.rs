//! Compound packets: a message plus as many piggybacked updates as fit
//! a budget, built from a list or written straight into the caller's buffer.

use bytes::BytesMut;

use super::codec::{FrameCodec, MAX_DATAGRAM};
use super::compress::compress_bytes;
use super::header::FLAG_COMPRESSED;
use crate::body::{varint_len, Encode, Writer};
use crate::crypto::TAG_LEN;
use crate::error::EncodeError;
use crate::message::{Message, PacketRef, Update};

/// Reserved for the update count's varint (up to 65,535 updates).
const COUNT_RESERVE: usize = 3;
const MAX_UPDATES_PER_PACKET: usize = 65_535;

impl FrameCodec {
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
