//! The frame body codec: hand-written, byte for byte the encoding
//! `bincode::serde` produces for these types with the standard config
//! (little-endian varints, `u32` enum tags, length-prefixed strings), so the
//! format is bincode's while the hot path skips serde's visitor layers.
//! `tests/bincode_compat.rs` checks both directions against bincode itself.
//!
//! Decoding is total and allocation-bounded: every length is checked
//! against the bytes actually left before anything is taken, and sequence
//! preallocation is capped by both a constant and the bytes left.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::identity::{NameError, NodeId, NodeName, MAX_NAME_LEN};
use crate::message::{
    Ack, Alive, Confirm, Heartbeat, Leave, MemberState, MemberStateRef, MemberStatus, Message, Nack, Packet, PacketRef,
    Ping, PingReq, PushPull, PushPullRef, Suspect, Update, UpdateBytes,
};
use crate::metadata::{Metadata, MetadataError, MAX_METADATA_BYTES, MAX_METADATA_ENTRIES, MAX_METADATA_KEY_LEN};
use crate::user::{Query, QueryFilter, QueryResponse, UserBroadcast, UserKey, UserKeyError};

/// bincode's varint markers: below 251 a byte is its own value.
const SINGLE_BYTE_MAX: u8 = 250;
const U16_BYTE: u8 = 251;
const U32_BYTE: u8 = 252;
const U64_BYTE: u8 = 253;

/// Most elements preallocated for a sequence before they are read.
const MAX_PREALLOCATED: usize = 256;

/// Why a body did not decode. Turned into [`crate::DecodeError::Malformed`].
#[derive(Debug)]
pub(crate) enum BodyError {
    Eof { need: usize, left: usize },
    Varint { marker: u8, ty: &'static str },
    Bool(u8),
    Variant { ty: &'static str, index: u32 },
    Length(u64),
    Utf8,
    Name(NameError),
    Metadata(MetadataError),
    UserKey(UserKeyError),
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Eof { need, left } => write!(f, "needs {need} more bytes, {left} left"),
            BodyError::Varint { marker, ty } => write!(f, "varint marker {marker} is not valid for {ty}"),
            BodyError::Bool(b) => write!(f, "invalid bool byte {b}"),
            BodyError::Variant { ty, index } => write!(f, "no {ty} variant {index}"),
            BodyError::Length(len) => write!(f, "length {len} does not fit in memory"),
            BodyError::Utf8 => f.write_str("string is not UTF-8"),
            BodyError::Name(e) => e.fmt(f),
            BodyError::Metadata(e) => e.fmt(f),
            BodyError::UserKey(e) => e.fmt(f),
        }
    }
}

/// A cursor over the body bytes; strings are borrowed from it.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    /// Set when something was read in a valid form other than the one the
    /// encoder writes (a varint longer than needed, metadata keys out of
    /// order or repeated): re-encoding would not give the bytes read.
    noncanonical: bool,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, noncanonical: false }
    }

    /// Bytes not consumed yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], BodyError> {
        if n > self.buf.len() {
            return Err(BodyError::Eof { need: n, left: self.buf.len() });
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], BodyError> {
        let bytes = self.take(N)?;
        Ok(bytes.try_into().expect("took N bytes"))
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, BodyError> {
        Ok(self.array::<1>()?[0])
    }

    #[inline]
    fn u64(&mut self) -> Result<u64, BodyError> {
        match self.byte()? {
            b @ 0..=SINGLE_BYTE_MAX => Ok(b as u64),
            U16_BYTE => Ok(self.long_u16()? as u64),
            U32_BYTE => Ok(self.long_u32()? as u64),
            U64_BYTE => {
                let n = u64::from_le_bytes(self.array()?);
                self.noncanonical |= n <= u64::from(u32::MAX);
                Ok(n)
            }
            marker => Err(BodyError::Varint { marker, ty: "u64" }),
        }
    }

    #[inline]
    fn u32(&mut self) -> Result<u32, BodyError> {
        match self.byte()? {
            b @ 0..=SINGLE_BYTE_MAX => Ok(b as u32),
            U16_BYTE => Ok(self.long_u16()? as u32),
            U32_BYTE => self.long_u32(),
            marker => Err(BodyError::Varint { marker, ty: "u32" }),
        }
    }

    #[inline]
    fn u16(&mut self) -> Result<u16, BodyError> {
        match self.byte()? {
            b @ 0..=SINGLE_BYTE_MAX => Ok(b as u16),
            U16_BYTE => self.long_u16(),
            marker => Err(BodyError::Varint { marker, ty: "u16" }),
        }
    }

    /// The two bytes after a `U16_BYTE` marker.
    #[inline]
    fn long_u16(&mut self) -> Result<u16, BodyError> {
        let n = u16::from_le_bytes(self.array()?);
        self.noncanonical |= n <= u16::from(SINGLE_BYTE_MAX);
        Ok(n)
    }

    /// The four bytes after a `U32_BYTE` marker.
    #[inline]
    fn long_u32(&mut self) -> Result<u32, BodyError> {
        let n = u32::from_le_bytes(self.array()?);
        self.noncanonical |= n <= u32::from(u16::MAX);
        Ok(n)
    }

    #[inline]
    fn bool(&mut self) -> Result<bool, BodyError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(BodyError::Bool(b)),
        }
    }

    #[inline]
    pub(crate) fn len(&mut self) -> Result<usize, BodyError> {
        let len = self.u64()?;
        usize::try_from(len).map_err(|_| BodyError::Length(len))
    }

    #[inline]
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], BodyError> {
        let len = self.len()?;
        self.take(len)
    }

    #[inline]
    pub(crate) fn str(&mut self) -> Result<&'a str, BodyError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| BodyError::Utf8)
    }

    /// Capacity to preallocate for `claimed` elements of at least `min_len` bytes each.
    fn capacity(&self, claimed: usize, min_len: usize) -> usize {
        claimed.min(self.buf.len() / min_len).min(MAX_PREALLOCATED)
    }
}

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
    fn put_u8(&mut self, byte: u8) {
        self.buf[self.pos] = byte;
        self.pos += 1;
    }

    #[inline]
    fn put_slice(&mut self, bytes: &[u8]) {
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
fn put_varint(out: &mut Writer<'_>, n: u64) {
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
fn put_bytes(out: &mut Writer<'_>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.put_slice(bytes);
}

#[inline]
fn bytes_len(bytes: &[u8]) -> usize {
    varint_len(bytes.len() as u64) + bytes.len()
}

/// Writes a value in the body encoding.
pub(crate) trait Encode {
    /// Exactly the bytes [`Encode::encode`] appends.
    fn encoded_len(&self) -> usize;
    fn encode(&self, out: &mut Writer<'_>);
}

/// Reads a value in the body encoding.
pub(crate) trait Decode: Sized {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError>;
}

impl<T: Encode + ?Sized> Encode for &T {
    fn encoded_len(&self) -> usize {
        (**self).encoded_len()
    }
    fn encode(&self, out: &mut Writer<'_>) {
        (**self).encode(out)
    }
}

macro_rules! varint_codec {
    ($($ty:ty => $read:ident),*) => {$(
        impl Encode for $ty {
            #[inline]
            fn encoded_len(&self) -> usize {
                varint_len(*self as u64)
            }
            #[inline]
            fn encode(&self, out: &mut Writer<'_>) {
                put_varint(out, *self as u64)
            }
        }
        impl Decode for $ty {
            #[inline]
            fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError> {
                r.$read()
            }
        }
    )*};
}
varint_codec!(u16 => u16, u32 => u32, u64 => u64);

impl Encode for bool {
    fn encoded_len(&self) -> usize {
        1
    }
    fn encode(&self, out: &mut Writer<'_>) {
        out.put_u8(*self as u8)
    }
}

impl Decode for bool {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError> {
        r.bool()
    }
}

impl Encode for NodeName {
    #[inline]
    fn encoded_len(&self) -> usize {
        bytes_len(self.as_str().as_bytes())
    }
    #[inline]
    fn encode(&self, out: &mut Writer<'_>) {
        put_bytes(out, self.as_str().as_bytes())
    }
}

impl Decode for NodeName {
    #[inline(always)]
    fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError> {
        let bytes = r.bytes()?;
        if !bytes.is_empty() && bytes.len() <= MAX_NAME_LEN && is_plain_ascii(bytes) {
            // SAFETY: every byte is below 0x80, and ASCII is valid UTF-8.
            let name = unsafe { std::str::from_utf8_unchecked(bytes) };
            return Ok(NodeName::from_checked(name));
        }
        let name = std::str::from_utf8(bytes).map_err(|_| BodyError::Utf8)?;
        NodeName::new(name).map_err(BodyError::Name)
    }
}

/// True when every byte is printable ASCII (0x21..=0x7e): valid UTF-8
/// without whitespace or control characters, i.e. an acceptable name
/// character. Eight bytes at a time, since every frame carries names; the
/// usual names (up to 24 bytes) take two or three overlapping word loads.
#[inline(always)]
pub(crate) fn is_plain_ascii(bytes: &[u8]) -> bool {
    let n = bytes.len();
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let bad = match n {
        0..=3 => {
            // Pad with a harmless printable byte and check one word.
            let mut padded = [b'a'; 8];
            for (to, from) in padded.iter_mut().zip(bytes) {
                *to = *from;
            }
            bad_bytes(u64::from_le_bytes(padded))
        }
        4..=7 => {
            // The first and the last four bytes (overlapping) as one word.
            let head = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
            let tail = u32::from_le_bytes(bytes[n - 4..].try_into().expect("4 bytes"));
            bad_bytes(head as u64 | (tail as u64) << 32)
        }
        8..=16 => bad_bytes(word(0)) | bad_bytes(word(n - 8)),
        17..=24 => bad_bytes(word(0)) | bad_bytes(word(8)) | bad_bytes(word(n - 8)),
        _ => {
            let mut chunks = bytes.chunks_exact(8);
            let mut bad = 0;
            for chunk in &mut chunks {
                bad |= bad_bytes(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
            }
            // The last eight bytes, overlapping the last whole chunk.
            bad | bad_bytes(word(n - 8))
        }
    };
    bad == 0
}

/// Nonzero unless all eight bytes of `x` are in 0x21..=0x7e (SWAR). While
/// every byte is below 0x80, adding 0x01 sets a byte's high bit exactly when
/// it is >= 0x7f and adding 0x5f exactly when it is >= 0x21, with no carry
/// between bytes; a byte >= 0x80 (whose carry could spoil its neighbours)
/// is caught by its own high bit.
#[inline(always)]
fn bad_bytes(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    (x | x.wrapping_add(ONES) | !x.wrapping_add(ONES * 0x5f)) & HIGH
}

/// serde's non-human-readable `SocketAddr`: tag 0 = V4 (4 octets, port), tag 1 = V6 (16 octets, port).
/// Flow info and scope id are not carried (they are local to the host).
impl Encode for SocketAddr {
    #[inline]
    fn encoded_len(&self) -> usize {
        let ip = match self.ip() {
            IpAddr::V4(_) => 4,
            IpAddr::V6(_) => 16,
        };
        1 + ip + varint_len(self.port() as u64)
    }
    #[inline]
    fn encode(&self, out: &mut Writer<'_>) {
        match self.ip() {
            IpAddr::V4(ip) => {
                out.put_u8(0);
                out.put_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out.put_u8(1);
                out.put_slice(&ip.octets());
            }
        }
        self.port().encode(out)
    }
}

impl Decode for SocketAddr {
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError> {
        let ip = match r.u32()? {
            0 => IpAddr::V4(Ipv4Addr::from(r.array::<4>()?)),
            1 => IpAddr::V6(Ipv6Addr::from(r.array::<16>()?)),
            index => return Err(BodyError::Variant { ty: "SocketAddr", index }),
        };
        Ok(SocketAddr::new(ip, r.u16()?))
    }
}

impl Encode for Metadata {
    #[inline]
    fn encoded_len(&self) -> usize {
        varint_len(self.len() as u64) + self.encoded_entries().len()
    }
    #[inline]
    fn encode(&self, out: &mut Writer<'_>) {
        put_varint(out, self.len() as u64);
        out.put_slice(self.encoded_entries());
    }
}

impl Decode for Metadata {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError> {
        let len = r.len()?;
        if len == 0 {
            return Ok(Metadata::new());
        }
        // Fast path: keys strictly increasing with minimal varints (what every
        // encoder writes) are taken as they are, checked entry by entry in
        // the order `Metadata::insert` checks them.
        let start = r.buf;
        // Read through a copy of the cursor, which stays in registers.
        let mut local = Reader { buf: start, noncanonical: false };
        let (mut prev, mut size, mut canonical_len): (&[u8], _, _) = (&[], 0, 0);
        for count in 0..len {
            // Keys are compared as bytes (the order of `str`'s `Ord`) and
            // only checked to be UTF-8: the usual printable ASCII key in a
            // few word operations, anything else by the full check.
            let key = local.bytes()?;
            if !is_plain_ascii(key) && std::str::from_utf8(key).is_err() {
                return Err(BodyError::Utf8);
            }
            let value = local.bytes()?;
            if count > 0 && key <= prev {
                // Unsorted or repeated keys: build the map as inserting them in turn would.
                r.buf = start;
                return Metadata::decode_by_insert(r, len);
            }
            if key.is_empty() || key.len() > MAX_METADATA_KEY_LEN {
                return Err(bad_key(key));
            }
            size += key.len() + value.len();
            if size > MAX_METADATA_BYTES {
                return Err(BodyError::Metadata(MetadataError::TooLarge(size)));
            }
            if count >= MAX_METADATA_ENTRIES {
                return Err(BodyError::Metadata(MetadataError::TooManyEntries));
            }
            canonical_len += bytes_len(key) + bytes_len(value);
            prev = key;
        }
        let used = &start[..start.len() - local.buf.len()];
        if used.len() != canonical_len {
            // A length written with a longer varint than needed: re-encode.
            r.buf = start;
            return Metadata::decode_by_insert(r, len);
        }
        (r.buf, r.noncanonical) = (local.buf, r.noncanonical | local.noncanonical);
        Ok(Metadata::from_encoded(len, used))
    }
}

/// The error for a key of a bad length (its bytes are UTF-8, checked).
#[cold]
fn bad_key(key: &[u8]) -> BodyError {
    BodyError::Metadata(MetadataError::BadKey(String::from_utf8_lossy(key).into_owned()))
}

impl Metadata {
    /// The general decoder: `len` entries inserted one by one, so repeated
    /// keys overwrite and the bounds are checked as they arrive.
    #[cold]
    fn decode_by_insert(r: &mut Reader<'_>, len: usize) -> Result<Self, BodyError> {
        // Only input the encoder would not write comes this way.
        r.noncanonical = true;
        let mut meta = Metadata::new();
        for _ in 0..len {
            let key = r.str()?;
            let value = r.bytes()?;
            meta.insert(key, value).map_err(BodyError::Metadata)?;
        }
        Ok(meta)
    }
}

impl Encode for MemberStatus {
    fn encoded_len(&self) -> usize {
        1
    }
    fn encode(&self, out: &mut Writer<'_>) {
        out.put_u8(*self as u8)
    }
}

impl Decode for MemberStatus {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError> {
        Ok(match r.u32()? {
            0 => MemberStatus::Alive,
            1 => MemberStatus::Suspect,
            2 => MemberStatus::Dead,
            3 => MemberStatus::Left,
            index => return Err(BodyError::Variant { ty: "MemberStatus", index }),
        })
    }
}

/// Structs: their fields in declaration order, nothing else.
macro_rules! struct_codec {
    ($($ty:ident { $($field:ident),* })*) => {$(
        impl Encode for $ty {
            #[inline]
            fn encoded_len(&self) -> usize {
                0 $(+ self.$field.encoded_len())*
            }
            #[inline]
            fn encode(&self, out: &mut Writer<'_>) {
                $(self.$field.encode(out);)*
            }
        }
        impl Decode for $ty {
            #[inline]
            fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError> {
                Ok(Self { $($field: Decode::decode(r)?),* })
            }
        }
    )*};
}

/// Opaque application bytes (a payload, a state): the length, then the
/// bytes, as bincode writes both a `Vec<u8>` and `serialize_bytes`. Decoding
/// copies at most what the frame holds.
impl Encode for Vec<u8> {
    #[inline]
    fn encoded_len(&self) -> usize {
        bytes_len(self)
    }
    #[inline]
    fn encode(&self, out: &mut Writer<'_>) {
        put_bytes(out, self)
    }
}

impl Decode for Vec<u8> {
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError> {
        Ok(r.bytes()?.to_vec())
    }
}

impl Encode for String {
    fn encoded_len(&self) -> usize {
        bytes_len(self.as_bytes())
    }
    fn encode(&self, out: &mut Writer<'_>) {
        put_bytes(out, self.as_bytes())
    }
}

impl Decode for String {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError> {
        Ok(r.str()?.to_owned())
    }
}

impl Encode for UserKey {
    fn encoded_len(&self) -> usize {
        bytes_len(self.as_str().as_bytes())
    }
    fn encode(&self, out: &mut Writer<'_>) {
        put_bytes(out, self.as_str().as_bytes())
    }
}

impl Decode for UserKey {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError> {
        UserKey::new(r.str()?).map_err(BodyError::UserKey)
    }
}

/// Fewest bytes a `NodeName` takes: its length and one byte.
const MIN_NAME_LEN: usize = 2;
/// Fewest bytes a filter tag takes: two empty strings.
const MIN_TAG_LEN: usize = 2;

/// A boxed value travels as the value itself (for rare, large variants).
impl<T: Encode + ?Sized> Encode for Box<T> {
    #[inline]
    fn encoded_len(&self) -> usize {
        (**self).encoded_len()
    }
    #[inline]
    fn encode(&self, out: &mut Writer<'_>) {
        (**self).encode(out)
    }
}

impl<T: Decode> Decode for Box<T> {
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError> {
        T::decode(r).map(Box::new)
    }
}

impl Encode for QueryFilter {
    fn encoded_len(&self) -> usize {
        varint_len(self.nodes.len() as u64)
            + self.nodes.iter().map(Encode::encoded_len).sum::<usize>()
            + varint_len(self.tags.len() as u64)
            + self.tags.iter().map(|(k, v)| k.encoded_len() + v.encoded_len()).sum::<usize>()
    }
    fn encode(&self, out: &mut Writer<'_>) {
        put_varint(out, self.nodes.len() as u64);
        for node in &self.nodes {
            node.encode(out);
        }
        put_varint(out, self.tags.len() as u64);
        for (key, value) in &self.tags {
            key.encode(out);
            value.encode(out);
        }
    }
}

impl Decode for QueryFilter {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError> {
        let count = r.len()?;
        let mut nodes = Vec::with_capacity(r.capacity(count, MIN_NAME_LEN));
        for _ in 0..count {
            nodes.push(NodeName::decode(r)?);
        }
        let count = r.len()?;
        let mut tags = Vec::with_capacity(r.capacity(count, MIN_TAG_LEN));
        for _ in 0..count {
            tags.push((String::decode(r)?, String::decode(r)?));
        }
        Ok(QueryFilter { nodes, tags })
    }
}

struct_codec! {
    Ping { seq, target, from }
    Ack { seq, from }
    Nack { seq, from }
    PingReq { seq, target, from }
    Heartbeat { node, incarnation, metadata_digest }
    MemberState { node, incarnation, status, metadata }
    Alive { node, incarnation, metadata }
    Suspect { node, incarnation, from }
    Confirm { node, incarnation, from }
    Leave { node, incarnation }
    UserBroadcast { origin, key, version, payload }
    Query { origin, id, name, payload, filter, timeout_ms }
    QueryResponse { id, from, payload }
}

impl Encode for NodeId {
    #[inline]
    fn encoded_len(&self) -> usize {
        self.name.encoded_len() + self.addr.encoded_len()
    }
    #[inline]
    fn encode(&self, out: &mut Writer<'_>) {
        self.name.encode(out);
        self.addr.encode(out);
    }
}

/// Its fields in order, as `struct_codec!` reads them, through a copy of
/// the cursor that stays in registers.
impl Decode for NodeId {
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError> {
        let mut local = Reader { buf: r.buf, noncanonical: false };
        let name = NodeName::decode(&mut local)?;
        let addr = SocketAddr::decode(&mut local)?;
        (r.buf, r.noncanonical) = (local.buf, r.noncanonical | local.noncanonical);
        Ok(NodeId { name, addr })
    }
}

/// Fewest bytes a `MemberState` takes: 2-byte name, V4 address, incarnation, status, metadata.
const MIN_MEMBER_LEN: usize = 2 + 6 + 1 + 1 + 1;
/// Fewest bytes an `Update` takes: a `Leave` with a 1-byte name.
const MIN_UPDATE_LEN: usize = 1 + 2 + 1;

impl Encode for PushPull {
    fn encoded_len(&self) -> usize {
        1 + varint_len(self.members.len() as u64)
            + self.members.iter().map(Encode::encoded_len).sum::<usize>()
            + bytes_len(&self.app_state)
            + self.user_ltime.encoded_len()
    }
    fn encode(&self, out: &mut Writer<'_>) {
        self.join.encode(out);
        put_varint(out, self.members.len() as u64);
        for member in &self.members {
            member.encode(out);
        }
        put_bytes(out, &self.app_state);
        self.user_ltime.encode(out);
    }
}

/// Field for field what `struct_codec!` writes for the owned `MemberState`.
impl Encode for MemberStateRef<'_> {
    #[inline]
    fn encoded_len(&self) -> usize {
        self.node.encoded_len()
            + self.incarnation.encoded_len()
            + self.status.encoded_len()
            + self.metadata.encoded_len()
    }
    #[inline]
    fn encode(&self, out: &mut Writer<'_>) {
        self.node.encode(out);
        self.incarnation.encode(out);
        self.status.encode(out);
        self.metadata.encode(out);
    }
}

impl<'a, I: Iterator<Item = MemberStateRef<'a>> + Clone> Encode for PushPullRef<'_, I> {
    fn encoded_len(&self) -> usize {
        // Message variant, join, members, app state, clock, then an empty update list.
        1 + 1
            + varint_len(self.count as u64)
            + self.members.clone().map(|m| m.encoded_len()).sum::<usize>()
            + bytes_len(self.app_state)
            + self.user_ltime.encoded_len()
            + 1
    }
    fn encode(&self, out: &mut Writer<'_>) {
        out.put_u8(if self.response { 7 } else { 6 });
        self.join.encode(out);
        put_varint(out, self.count as u64);
        for member in self.members.clone() {
            member.encode(out);
        }
        put_bytes(out, self.app_state);
        self.user_ltime.encode(out);
        put_varint(out, 0);
    }
}

impl Decode for PushPull {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError> {
        let join = r.bool()?;
        let count = r.len()?;
        let mut members = Vec::with_capacity(r.capacity(count, MIN_MEMBER_LEN));
        for _ in 0..count {
            members.push(MemberState::decode(r)?);
        }
        let app_state = r.bytes()?.to_vec();
        let user_ltime = u64::decode(r)?;
        Ok(PushPull { join, members, app_state, user_ltime })
    }
}

/// Enums: the variant's index as a `u32` varint, then its fields.
macro_rules! enum_codec {
    ($ty:ident { $($index:literal => $variant:ident $(($inner:ident))?),* }) => {
        impl Encode for $ty {
            #[inline]
            fn encoded_len(&self) -> usize {
                match self {
                    $($ty::$variant $(($inner))? => 1 $(+ $inner.encoded_len())?,)*
                }
            }
            #[inline]
            fn encode(&self, out: &mut Writer<'_>) {
                match self {
                    $($ty::$variant $(($inner))? => {
                        out.put_u8($index);
                        $($inner.encode(out);)?
                    })*
                }
            }
        }
        impl Decode for $ty {
            #[inline]
            fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError> {
                Ok(match r.u32()? {
                    $($index => $ty::$variant $((enum_codec!(@decode r $inner)))?,)*
                    index => return Err(BodyError::Variant { ty: stringify!($ty), index }),
                })
            }
        }
    };
    (@decode $r:ident $inner:ident) => {
        Decode::decode($r)?
    };
}

enum_codec!(Update { 0 => Alive(a), 1 => Suspect(s), 2 => Confirm(c), 3 => Leave(l), 4 => User(u), 5 => Query(q) });
enum_codec!(Message {
    0 => Ping(p),
    1 => Ack(a),
    2 => Nack(n),
    3 => PingReq(p),
    4 => Gossip,
    5 => Heartbeat(h),
    6 => PushPullRequest(p),
    7 => PushPullResponse(p),
    8 => QueryResponse(q)
});

#[inline]
fn updates_len<U: Encode>(updates: &[U]) -> usize {
    varint_len(updates.len() as u64) + updates.iter().map(Encode::encoded_len).sum::<usize>()
}

#[inline]
fn put_updates<U: Encode>(updates: &[U], out: &mut Writer<'_>) {
    put_varint(out, updates.len() as u64);
    for update in updates {
        update.encode(out);
    }
}

impl Encode for Packet {
    #[inline]
    fn encoded_len(&self) -> usize {
        self.message.encoded_len() + updates_len(&self.updates)
    }
    #[inline]
    fn encode(&self, out: &mut Writer<'_>) {
        self.message.encode(out);
        put_updates(&self.updates, out);
    }
}

impl Encode for PacketRef<'_> {
    #[inline]
    fn encoded_len(&self) -> usize {
        self.message.encoded_len() + updates_len(self.updates)
    }
    #[inline]
    fn encode(&self, out: &mut Writer<'_>) {
        self.message.encode(out);
        put_updates(self.updates, out);
    }
}

/// Reads a packet's update list (after its message) into `updates`, which
/// the caller has emptied; a reused list keeps its capacity.
#[inline(always)]
pub(crate) fn decode_updates(r: &mut Reader<'_>, updates: &mut Vec<Update>) -> Result<(), BodyError> {
    // Most datagrams (acks, most pings) carry none: a zero count is one byte.
    if let Some((0, rest)) = r.buf.split_first() {
        r.buf = rest;
        return Ok(());
    }
    decode_update_list(r, updates)
}

/// As [`decode_updates`], also keeping each membership update's bytes as
/// received in `kept` (cleared first) when they are exactly its canonical
/// encoding (see [`UpdateBytes::get`]).
#[inline(always)]
pub(crate) fn decode_updates_keeping(
    r: &mut Reader<'_>,
    updates: &mut Vec<Update>,
    kept: &mut UpdateBytes,
) -> Result<(), BodyError> {
    kept.clear();
    if let Some((0, rest)) = r.buf.split_first() {
        r.buf = rest;
        return Ok(());
    }
    let count = r.len()?;
    updates.reserve(r.capacity(count, MIN_UPDATE_LEN));
    // Spans are offsets into the update list; the list is copied once at
    // the end (one copy, not one per update).
    let list = r.buf;
    let mut any = false;
    for _ in 0..count {
        let start = (list.len() - r.buf.len()) as u32;
        r.noncanonical = false;
        push_update(r, updates)?;
        let keep = !r.noncanonical && updates.last().is_some_and(|update| !update.is_user());
        any |= keep;
        kept.spans.push(keep.then(|| (start, (list.len() - r.buf.len()) as u32)));
    }
    if any {
        kept.bytes.extend_from_slice(&list[..list.len() - r.buf.len()]);
    }
    Ok(())
}

#[inline]
fn decode_update_list(r: &mut Reader<'_>, updates: &mut Vec<Update>) -> Result<(), BodyError> {
    let count = r.len()?;
    if count == 0 {
        return Ok(());
    }
    updates.reserve(r.capacity(count, MIN_UPDATE_LEN));
    for _ in 0..count {
        push_update(r, updates)?;
    }
    Ok(())
}

/// Decodes one update onto the end of `updates`: byte for byte what
/// [`Update::decode`] reads, but each variant is pushed from its fields
/// where it is decoded, instead of coming back as a `Result<Update, _>`
/// that is then moved again into the list. The variants made of names and
/// numbers read through a copy of the cursor that stays in registers.
#[inline(always)]
fn push_update(r: &mut Reader<'_>, updates: &mut Vec<Update>) -> Result<(), BodyError> {
    match r.u32()? {
        0 => {
            let node = NodeId::decode(r)?;
            let incarnation = r.u64()?;
            let metadata = Metadata::decode(r)?;
            updates.push(Update::Alive(Alive { node, incarnation, metadata }));
        }
        1 => {
            let mut local = Reader { buf: r.buf, noncanonical: false };
            let node = NodeName::decode(&mut local)?;
            let incarnation = local.u64()?;
            let from = NodeName::decode(&mut local)?;
            (r.buf, r.noncanonical) = (local.buf, r.noncanonical | local.noncanonical);
            updates.push(Update::Suspect(Suspect { node, incarnation, from }));
        }
        2 => {
            let mut local = Reader { buf: r.buf, noncanonical: false };
            let node = NodeName::decode(&mut local)?;
            let incarnation = local.u64()?;
            let from = NodeName::decode(&mut local)?;
            (r.buf, r.noncanonical) = (local.buf, r.noncanonical | local.noncanonical);
            updates.push(Update::Confirm(Confirm { node, incarnation, from }));
        }
        3 => {
            let mut local = Reader { buf: r.buf, noncanonical: false };
            let node = NodeName::decode(&mut local)?;
            let incarnation = local.u64()?;
            (r.buf, r.noncanonical) = (local.buf, r.noncanonical | local.noncanonical);
            updates.push(Update::Leave(Leave { node, incarnation }));
        }
        index => updates.push(decode_user_update(r, index)?),
    }
    Ok(())
}

/// The application updates (and the error for an unknown variant): rare,
/// so kept out of the membership updates' loop.
#[cold]
#[inline(never)]
fn decode_user_update(r: &mut Reader<'_>, index: u32) -> Result<Update, BodyError> {
    Ok(match index {
        4 => Update::User(Decode::decode(r)?),
        5 => Update::Query(Decode::decode(r)?),
        index => return Err(BodyError::Variant { ty: "Update", index }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(update: &Update) -> Vec<u8> {
        let mut out = Vec::new();
        update.encode_into(&mut out);
        out
    }

    /// Decodes an update list (count byte first) keeping the bytes.
    fn keep(list: &[u8]) -> (Vec<Update>, UpdateBytes) {
        let (mut updates, mut kept) = (Vec::new(), UpdateBytes::new());
        decode_updates_keeping(&mut Reader::new(list), &mut updates, &mut kept).unwrap();
        (updates, kept)
    }

    #[test]
    fn kept_update_bytes_are_exactly_the_encoding() {
        let mut metadata = Metadata::new();
        metadata.insert("a", "1").unwrap();
        metadata.insert("b", "2").unwrap();
        let node = NodeId::new("a@h".parse().unwrap(), "127.0.0.1:7946".parse().unwrap());
        let alive = Update::Alive(Alive { node, incarnation: 300, metadata });
        let leave = Update::Leave(Leave { node: "b@h".parse().unwrap(), incarnation: 7 });
        let user = Update::User(UserBroadcast {
            origin: "a@h".parse().unwrap(),
            key: "k".parse().unwrap(),
            version: 1,
            payload: vec![1, 2, 3],
        });
        let mut list = vec![3];
        for update in [&alive, &user, &leave] {
            list.extend(encoded(update));
        }
        let (updates, kept) = keep(&list);
        assert_eq!(updates, [alive.clone(), user, leave.clone()]);
        assert_eq!(kept.get(0), Some(&encoded(&alive)[..]));
        assert_eq!(kept.get(1), None, "application items are not kept");
        assert_eq!(kept.get(2), Some(&encoded(&leave)[..]));
        assert_eq!(kept.get(3), None);

        // The incarnation 7 as a three-byte varint: valid, not canonical.
        let mut long = encoded(&leave);
        long.pop();
        long.extend([U16_BYTE, 7, 0]);
        let (updates, kept) = keep(&[[1].as_slice(), &long].concat());
        assert_eq!((updates, kept.get(0)), (vec![leave], None));

        // Metadata keys out of order: the same length, other bytes.
        let mut swapped = encoded(&alive);
        let at = swapped.len() - 8;
        swapped[at..].rotate_left(4);
        let (updates, kept) = keep(&[[1].as_slice(), &swapped].concat());
        assert_eq!((updates, kept.get(0)), (vec![alive.clone()], None));

        // A repeated key (the last value wins).
        let mut parts = encoded(&alive);
        parts.truncate(parts.len() - 9); // drop count and entries
        parts.extend([3, 1, b'a', 1, b'9', 1, b'a', 1, b'1', 1, b'b', 1, b'2']);
        let (updates, kept) = keep(&[[1].as_slice(), &parts].concat());
        assert_eq!((updates, kept.get(0)), (vec![alive], None));
    }

    /// `push_update` reads exactly what `Update::decode` reads, and fails where it fails.
    #[test]
    fn pushed_updates_decode_as_updates_do() {
        let node = NodeId::new("a@h".parse().unwrap(), "127.0.0.1:7946".parse().unwrap());
        let mut metadata = Metadata::new();
        metadata.insert("zone", "eu").unwrap();
        let updates = [
            Update::Alive(Alive { node, incarnation: 300, metadata }),
            Update::Suspect(Suspect { node: "b@h".parse().unwrap(), incarnation: 1, from: "c@h".parse().unwrap() }),
            Update::Confirm(Confirm {
                node: "d@h".parse().unwrap(),
                incarnation: 70_000,
                from: "e@h".parse().unwrap(),
            }),
            Update::Leave(Leave { node: "f@h".parse().unwrap(), incarnation: u64::MAX }),
            Update::User(UserBroadcast {
                origin: "g@h".parse().unwrap(),
                key: "k".parse().unwrap(),
                version: 2,
                payload: vec![1, 2],
            }),
        ];
        for update in &updates {
            let bytes = encoded(update);
            for end in 0..=bytes.len() {
                let mut tail = bytes[..end].to_vec();
                tail.push(0xaa); // a byte after the cut, which both may read
                let (mut a, mut b) = (Reader::new(&tail), Reader::new(&tail));
                let mut pushed = Vec::new();
                let result = push_update(&mut a, &mut pushed);
                let expected = Update::decode(&mut b);
                match (result, expected) {
                    (Ok(()), Ok(decoded)) => {
                        assert_eq!((&pushed[..], a.remaining()), (&[decoded][..], b.remaining()));
                    }
                    (Err(x), Err(y)) => assert_eq!(x.to_string(), y.to_string()),
                    (x, y) => panic!("{update:?} cut at {end}: {x:?} but {y:?}"),
                }
            }
        }
        for tag in [6u8, 250] {
            let (x, y) =
                (push_update(&mut Reader::new(&[tag]), &mut Vec::new()), Update::decode(&mut Reader::new(&[tag])));
            assert_eq!(x.unwrap_err().to_string(), y.unwrap_err().to_string());
        }
    }

    #[test]
    fn metadata_keys_need_only_be_utf8() {
        let decode = |entries: &[(&[u8], &[u8])]| {
            let mut bytes = vec![entries.len() as u8];
            for (key, value) in entries {
                bytes.extend([key.len() as u8].iter().chain(*key).chain([value.len() as u8].iter()).chain(*value));
            }
            let mut r = Reader::new(&bytes);
            Metadata::decode(&mut r).map(|meta| (meta, r.remaining(), r.noncanonical))
        };
        // Printable ASCII, a space, a control character, other UTF-8: all valid keys, in byte order.
        let keys: [&[u8]; 4] = [b"a\tb", b"a b", b"zone", "\u{e9}t\u{e9}".as_bytes()];
        let (meta, left, noncanonical) = decode(&keys.map(|key| (key, &b"v"[..]))).unwrap();
        assert_eq!((left, noncanonical), (0, false));
        let mut expected = Metadata::new();
        for key in keys {
            expected.insert(std::str::from_utf8(key).unwrap(), "v").unwrap();
        }
        assert_eq!(meta, expected);
        // Not UTF-8, wherever it is.
        for key in [&[0xff][..], b"ab\xc3", b"0123456789\x80"] {
            assert!(matches!(decode(&[(key, b"v")]), Err(BodyError::Utf8)), "{key:?}");
            assert!(matches!(decode(&[(b"a", b"v"), (key, b"v")]), Err(BodyError::Utf8)), "{key:?}");
        }
    }

    fn naive(bytes: &[u8]) -> bool {
        bytes.iter().all(|b| (0x21..=0x7e).contains(b))
    }

    #[test]
    fn plain_ascii_check_matches_the_naive_one() {
        // Every byte value at every position of a 17-byte name (two chunks and a remainder).
        for at in 0..17 {
            for b in 0..=255u8 {
                let mut name = *b"gossamer@10.0.0.7";
                name[at] = b;
                assert_eq!(is_plain_ascii(&name), naive(&name), "byte {b:#x} at {at}");
            }
        }
        assert!(is_plain_ascii(b""));
        for len in 1..40 {
            for at in 0..len {
                for b in [0u8, 0x20, 0x21, 0x7e, 0x7f, 0x80, 0xff] {
                    let mut name = vec![b'x'; len];
                    name[at] = b;
                    assert_eq!(is_plain_ascii(&name), naive(&name), "byte {b:#x} at {at} of {len}");
                }
            }
        }
        for len in 0..40 {
            assert!(is_plain_ascii(&vec![b'~'; len]));
            assert!(is_plain_ascii(&vec![b'!'; len]));
        }
    }

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
