//! Writing a whole frame: the body sized once and written in place, then
//! header, sealing and checksum.

use bytes::BytesMut;

use super::codec::FrameCodec;
use super::compress::compress;
use super::header::{
    associated_data, FLAGS_AT, FLAG_COMPRESSED, FLAG_ENCRYPTED, LABEL_AT, LABEL_LEN_AT, MAGIC, PROTOCOL_VERSION,
};
use crate::body::{Encode, Writer};
use crate::crc::{checksum, CHECKSUMMED_FROM, CHECKSUM_AT};
use crate::error::EncodeError;
use crate::message::{MemberStateRef, Message, Packet, PacketRef, PushPullRef, Update};

impl FrameCodec {
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
        let (count, members_len) = members.clone().fold((0, 0), |(n, len), m| (n + 1, len + m.encoded_len()));
        let body = PushPullRef { response, join, members, count, members_len, app_state, user_ltime };
        self.encode_body(&body, self.max_frame_len, out)
    }

    fn encode_body<T: Encode + ?Sized>(&self, body: &T, max: usize, out: &mut BytesMut) -> Result<usize, EncodeError> {
        self.encode_sized(body, body.encoded_len(), max, out)
    }

    /// Appends the frame of `body`, whose encoded length is `body_len`. The
    /// frame is sized once and written in place: no growth, no re-measuring
    /// (unless the body is compressed, which takes two scratch buffers).
    pub(super) fn encode_sized<T: Encode + ?Sized>(
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
    pub(super) fn write_frame(
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

    /// Completes the frame `out[start..]`, whose body is in place (with
    /// room for nonce and tag when sealed): writes the header, seals and
    /// checksums. On failure the frame is removed from `out`.
    #[inline]
    pub(super) fn close_frame(&self, flags: u8, out: &mut BytesMut, start: usize) -> Result<usize, EncodeError> {
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
}
