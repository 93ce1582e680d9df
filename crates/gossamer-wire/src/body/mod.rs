//! The frame body codec: hand-written, byte for byte the encoding
//! `bincode::serde` produces for these types with the standard config
//! (little-endian varints, `u32` enum tags, length-prefixed strings), so the
//! format is bincode's while the hot path skips serde's visitor layers.
//! `tests/bincode_compat.rs` checks both directions against bincode itself.
//!
//! Decoding is total and allocation-bounded: every length is checked
//! against the bytes actually left before anything is taken, and sequence
//! preallocation is capped by both a constant and the bytes left.
//!
//! One job per file: [`reader`] and [`writer`] hold the bounded primitives
//! (varints, lengths, bytes), [`ascii`] the word-at-a-time name check, and
//! the codecs follow the types they encode: [`primitives`] (integers,
//! bools, bytes, strings), [`identity`] (names, addresses, node ids),
//! [`metadata`], [`membership`] (probes and membership updates),
//! [`push_pull`] (full state), [`user`] (application items) and
//! [`packet`] (the message and update enums, update lists).

use std::fmt;

use crate::identity::NameError;
use crate::metadata::MetadataError;
use crate::user::UserKeyError;

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

mod ascii;
mod identity;
mod membership;
mod metadata;
mod packet;
mod primitives;
mod push_pull;
mod reader;
mod user;
mod writer;

pub(crate) use ascii::is_plain_ascii;
pub(crate) use packet::{decode_updates, decode_updates_keeping};
pub(crate) use reader::Reader;
pub(crate) use writer::{varint_len, Writer};

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
