//! Reading a whole frame: header, checksum, opening and inflating the
//! payload, then the body, into fresh or reused buffers.

use super::codec::FrameCodec;
use super::header::associated_data;
use crate::body::{decode_updates, decode_updates_keeping, BodyError, Decode, Reader};
use crate::crc::{checksum, CHECKSUMMED_FROM, CHECKSUM_AT};
use crate::crypto::ENCRYPTION_OVERHEAD;
use crate::error::DecodeError;
use crate::message::{clear_updates, Message, Packet, Update, UpdateBytes};

impl FrameCodec {
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
