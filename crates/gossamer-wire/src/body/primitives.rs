//! Codecs of the building blocks every message is made of: varint
//! integers, bools, opaque bytes, strings, and boxed values.

use super::reader::Reader;
use super::writer::{bytes_len, put_bytes, put_varint, varint_len, Writer};
use super::{BodyError, Decode, Encode};

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
