//! Small, bounded application metadata attached to a member (role, zone,
//! service port...). Bounded because it rides in `Alive` updates, which must
//! fit into one datagram beside other gossip.

use std::fmt;

use compact_bytes::CompactBytes;
use compact_str::CompactString;
use serde::de::{MapAccess, Visitor};

use crate::body::Reader;
use crate::bounded::OwnedBytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Most entries one member may carry.
pub const MAX_METADATA_ENTRIES: usize = 32;
/// Longest key, in bytes.
pub const MAX_METADATA_KEY_LEN: usize = 64;
/// Most bytes all keys and values together may take (memberlist's limit).
pub const MAX_METADATA_BYTES: usize = 512;

/// Why metadata was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// More than [`MAX_METADATA_ENTRIES`] keys.
    #[error("metadata has more than {MAX_METADATA_ENTRIES} entries")]
    TooManyEntries,
    /// A key was empty or longer than [`MAX_METADATA_KEY_LEN`].
    #[error("metadata key {0:?} must be 1..={MAX_METADATA_KEY_LEN} bytes")]
    BadKey(String),
    /// Keys and values exceed [`MAX_METADATA_BYTES`] in total.
    #[error("metadata takes {0} bytes, the limit is {MAX_METADATA_BYTES}")]
    TooLarge(usize),
}

/// A bounded map of string keys to byte values, kept sorted so that its
/// encoding (and [`Metadata::digest`]) is the same on every node.
///
/// Stored as its own wire encoding (the entries in key order, each key and
/// value with its length): decoding an `Alive` copies the entries in one
/// piece and encoding copies them back, with no per-entry node or buffer.
/// Up to 23 encoded bytes (one or two short tags, e.g. `zone=eu-west-1a`)
/// are kept inline, so such metadata costs no allocation when decoded and
/// no heap block per member. Lookups scan at most [`MAX_METADATA_ENTRIES`]
/// entries.
///
/// ```
/// use gossamer_wire::Metadata;
/// let mut meta = Metadata::new();
/// meta.insert("zone", b"eu-west-1a".to_vec()).unwrap();
/// assert_eq!(meta.get("zone"), Some(&b"eu-west-1a"[..]));
/// assert!(meta.insert("big", vec![0; 1024]).is_err());
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Metadata {
    /// Number of entries (at most [`MAX_METADATA_ENTRIES`]).
    count: u8,
    /// The entries in strictly increasing key order, in the body encoding
    /// with minimal varints, so equal maps have equal bytes. Keys are UTF-8.
    encoded: CompactBytes,
}

impl Metadata {
    /// No entries.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`; refused (and nothing changed) if a bound would
    /// be exceeded.
    pub fn insert(&mut self, key: &str, value: impl Into<Vec<u8>>) -> Result<(), MetadataError> {
        let value = value.into();
        if key.is_empty() || key.len() > MAX_METADATA_KEY_LEN {
            return Err(MetadataError::BadKey(key.to_owned()));
        }
        let existing = self.get(key);
        let old = existing.map_or(0, |v| key.len() + v.len());
        let size = self.byte_size() - old + key.len() + value.len();
        if size > MAX_METADATA_BYTES {
            return Err(MetadataError::TooLarge(size));
        }
        if existing.is_none() && self.len() >= MAX_METADATA_ENTRIES {
            return Err(MetadataError::TooManyEntries);
        }
        let mut entries: Vec<(&str, &[u8])> = self.iter().filter(|(k, _)| *k != key).collect();
        let at = entries.partition_point(|(k, _)| *k < key);
        entries.insert(at, (key, &value));
        let rebuilt = Self::from_sorted(&entries);
        *self = rebuilt;
        Ok(())
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Vec<u8>> {
        let value = self.get(key)?.to_vec();
        let entries: Vec<(&str, &[u8])> = self.iter().filter(|(k, _)| *k != key).collect();
        let rebuilt = Self::from_sorted(&entries);
        *self = rebuilt;
        Some(value)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        let mut reader = Reader::new(&self.encoded);
        (0..self.count).map_while(move |_| {
            // Never fails: the bytes were written (or checked) by this type.
            let key = reader.str().ok()?;
            let value = reader.bytes().ok()?;
            Some((key, value))
        })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes taken by keys and values (what [`MAX_METADATA_BYTES`] bounds).
    pub fn byte_size(&self) -> usize {
        self.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// A stable 32-bit digest, the same on every node for the same entries;
    /// multicast heartbeats carry it so a listener can tell when to re-fetch.
    pub fn digest(&self) -> u32 {
        // IEEE CRC32 (zlib's), not the frames' CRC32C: the digest is on the
        // wire, and every node must compute the same one.
        let mut hasher = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32IsoHdlc);
        for (k, v) in self.iter() {
            hasher.update(&(k.len() as u32).to_le_bytes());
            hasher.update(k.as_bytes());
            hasher.update(&(v.len() as u32).to_le_bytes());
            hasher.update(v);
        }
        // A 32-bit CRC in a u64: the cast drops only zero bits.
        hasher.finalize() as u32
    }

    /// Entries already sorted by key, unique and within every bound.
    fn from_sorted(entries: &[(&str, &[u8])]) -> Self {
        debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0) && entries.len() <= MAX_METADATA_ENTRIES);
        let mut encoded = Vec::with_capacity(entries.iter().map(|(k, v)| k.len() + v.len() + 6).sum());
        for (key, value) in entries {
            push_bytes(&mut encoded, key.as_bytes());
            push_bytes(&mut encoded, value);
        }
        Self { count: entries.len() as u8, encoded: CompactBytes::from(encoded) }
    }

    /// True when the entries are stored inline (own no heap block).
    #[inline(always)]
    pub(crate) fn is_inline(&self) -> bool {
        !self.encoded.spilled()
    }

    /// The entries as the body encoding writes them (after their count).
    pub(crate) fn encoded_entries(&self) -> &[u8] {
        &self.encoded
    }

    /// Takes `count` entries already in the stored form: strictly increasing
    /// keys of valid UTF-8, minimal varints, every bound respected.
    pub(crate) fn from_encoded(count: usize, encoded: &[u8]) -> Self {
        debug_assert!(count <= MAX_METADATA_ENTRIES);
        Self { count: count as u8, encoded: CompactBytes::new(encoded) }
    }
}

/// Appends a length-prefixed byte string in the body encoding (bincode's
/// varint; metadata lengths stay far below 2^16).
fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = bytes.len();
    if len <= 250 {
        out.push(len as u8);
    } else {
        out.push(251);
        out.extend_from_slice(&(len as u16).to_le_bytes());
    }
    out.extend_from_slice(bytes);
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter().map(|(k, v)| (k, String::from_utf8_lossy(v)))).finish()
    }
}

struct ByteValue<'a>(&'a [u8]);

impl Serialize for ByteValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl Serialize for Metadata {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        // The length up front: bincode needs it, and `iter` cannot promise it in its size hint.
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (key, value) in self.iter() {
            map.serialize_entry(key, &ByteValue(value))?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MetadataVisitor;
        impl<'de> Visitor<'de> for MetadataVisitor {
            type Value = Metadata;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a metadata map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Metadata, A::Error> {
                let mut meta = Metadata::new();
                while let Some((key, value)) = map.next_entry::<CompactString, OwnedBytes>()? {
                    meta.insert(&key, value.0).map_err(serde::de::Error::custom)?;
                }
                Ok(meta)
            }
        }
        deserializer.deserialize_map(MetadataVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_ieee_crc32_of_the_length_prefixed_entries() {
        // IEEE CRC32 bit by bit (reflected polynomial 0xEDB88320): the digest
        // older nodes compute, which a change of CRC crate must not move.
        fn reference(bytes: &[u8]) -> u32 {
            let mut crc = !0u32;
            for &byte in bytes {
                crc ^= u32::from(byte);
                for _ in 0..8 {
                    crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
                }
            }
            !crc
        }
        assert_eq!(reference(b"123456789"), 0xCBF4_3926, "the standard check value");
        assert_eq!(Metadata::new().digest(), 0);
        let mut metadata = Metadata::new();
        metadata.insert("zone", b"eu-1".to_vec()).unwrap();
        metadata.insert("role", vec![0xff; 300]).unwrap();
        let mut bytes = Vec::new();
        for (k, v) in [("role", &[0xff; 300][..]), ("zone", b"eu-1")] {
            bytes.extend_from_slice(&(k.len() as u32).to_le_bytes());
            bytes.extend_from_slice(k.as_bytes());
            bytes.extend_from_slice(&(v.len() as u32).to_le_bytes());
            bytes.extend_from_slice(v);
        }
        assert_eq!(metadata.digest(), reference(&bytes));
    }
}
