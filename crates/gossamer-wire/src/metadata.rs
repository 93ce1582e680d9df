//! Small, bounded application metadata attached to a member (role, zone,
//! service port...). Bounded because it rides in `Alive` updates, which must
//! fit into one datagram beside other gossip.

use std::collections::BTreeMap;
use std::fmt;

use compact_str::CompactString;
use serde::de::{MapAccess, Visitor};

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
/// ```
/// use gossamer_wire::Metadata;
/// let mut meta = Metadata::new();
/// meta.insert("zone", b"eu-west-1a".to_vec()).unwrap();
/// assert_eq!(meta.get("zone"), Some(&b"eu-west-1a"[..]));
/// assert!(meta.insert("big", vec![0; 1024]).is_err());
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Metadata {
    entries: BTreeMap<CompactString, Vec<u8>>,
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
        let old = self.entries.get(key).map_or(0, |v| key.len() + v.len());
        let size = self.byte_size() - old + key.len() + value.len();
        if size > MAX_METADATA_BYTES {
            return Err(MetadataError::TooLarge(size));
        }
        if !self.entries.contains_key(key) && self.entries.len() >= MAX_METADATA_ENTRIES {
            return Err(MetadataError::TooManyEntries);
        }
        self.entries.insert(CompactString::new(key), value);
        Ok(())
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Vec<u8>> {
        self.entries.remove(key)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.entries.get(key).map(Vec::as_slice)
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes taken by keys and values (what [`MAX_METADATA_BYTES`] bounds).
    pub fn byte_size(&self) -> usize {
        self.entries.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// A stable 32-bit digest, the same on every node for the same entries;
    /// multicast heartbeats carry it so a listener can tell when to re-fetch.
    pub fn digest(&self) -> u32 {
        let mut hasher = crc32fast::Hasher::new();
        for (k, v) in &self.entries {
            hasher.update(&(k.len() as u32).to_le_bytes());
            hasher.update(k.as_bytes());
            hasher.update(&(v.len() as u32).to_le_bytes());
            hasher.update(v);
        }
        hasher.finalize()
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries.iter().map(|(k, v)| (k.as_str(), String::from_utf8_lossy(v)))).finish()
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
        serializer.collect_map(self.entries.iter().map(|(k, v)| (k.as_str(), ByteValue(v))))
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
