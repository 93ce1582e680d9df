//! The codec of member metadata: a fast path that takes canonical
//! entries as they are, and the general one that inserts them in turn.

use super::ascii::is_plain_ascii;
use super::reader::Reader;
use super::writer::{bytes_len, put_varint, varint_len, Writer};
use super::{BodyError, Decode, Encode};
use crate::metadata::{Metadata, MetadataError, MAX_METADATA_BYTES, MAX_METADATA_ENTRIES, MAX_METADATA_KEY_LEN};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
