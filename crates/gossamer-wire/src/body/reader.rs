//! The cursor every decoder reads through: bincode's varints, lengths,
//! bytes and strings, each length checked against the bytes actually left.

use super::BodyError;

/// bincode's varint markers: below 251 a byte is its own value.
pub(super) const SINGLE_BYTE_MAX: u8 = 250;
pub(super) const U16_BYTE: u8 = 251;
pub(super) const U32_BYTE: u8 = 252;
pub(super) const U64_BYTE: u8 = 253;

/// Most elements preallocated for a sequence before they are read.
const MAX_PREALLOCATED: usize = 256;

/// A cursor over the body bytes; strings are borrowed from it.
pub(crate) struct Reader<'a> {
    pub(super) buf: &'a [u8],
    /// Set when something was read in a valid form other than the one the
    /// encoder writes (a varint longer than needed, metadata keys out of
    /// order or repeated): re-encoding would not give the bytes read.
    pub(super) noncanonical: bool,
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
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], BodyError> {
        if n > self.buf.len() {
            return Err(BodyError::Eof { need: n, left: self.buf.len() });
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    #[inline]
    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], BodyError> {
        let bytes = self.take(N)?;
        Ok(bytes.try_into().expect("took N bytes"))
    }

    #[inline]
    pub(super) fn byte(&mut self) -> Result<u8, BodyError> {
        Ok(self.array::<1>()?[0])
    }

    #[inline]
    pub(super) fn u64(&mut self) -> Result<u64, BodyError> {
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
    pub(super) fn u32(&mut self) -> Result<u32, BodyError> {
        match self.byte()? {
            b @ 0..=SINGLE_BYTE_MAX => Ok(b as u32),
            U16_BYTE => Ok(self.long_u16()? as u32),
            U32_BYTE => self.long_u32(),
            marker => Err(BodyError::Varint { marker, ty: "u32" }),
        }
    }

    #[inline]
    pub(super) fn u16(&mut self) -> Result<u16, BodyError> {
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
    pub(super) fn bool(&mut self) -> Result<bool, BodyError> {
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
    pub(super) fn capacity(&self, claimed: usize, min_len: usize) -> usize {
        claimed.min(self.buf.len() / min_len).min(MAX_PREALLOCATED)
    }
}
