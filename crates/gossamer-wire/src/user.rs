//! Application data gossiped over the membership layer (issue #10): user
//! broadcasts, Serf-style queries and their responses. They ride the same
//! packets as membership updates ([`crate::Update::User`],
//! [`crate::Update::Query`]) or, for responses, travel as their own
//! datagram ([`crate::Message::QueryResponse`]).

use std::fmt;

use compact_str::CompactString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::bounded::{bounded_seq, opaque_bytes};
use crate::identity::{NodeId, NodeName};

/// Longest [`UserKey`], in bytes: keys travel in every copy of a broadcast.
pub const MAX_USER_KEY_LEN: usize = 64;

/// Why a user key (or query name) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserKeyError {
    /// The key was empty.
    #[error("user key is empty")]
    Empty,
    /// The key was longer than [`MAX_USER_KEY_LEN`] bytes.
    #[error("user key is {0} bytes long, the limit is {MAX_USER_KEY_LEN}")]
    TooLong(usize),
}

/// The key of a user broadcast (newer versions under the same key replace
/// older ones), also used as a query's name: 1 to [`MAX_USER_KEY_LEN`]
/// bytes of UTF-8, checked when built and when decoded. Keys of up to 24
/// bytes are stored inline.
///
/// ```
/// use gossamer_wire::UserKey;
/// let key = UserKey::new("config/flags").unwrap();
/// assert_eq!(key.as_str(), "config/flags");
/// assert!(UserKey::new("").is_err());
/// assert!(UserKey::new(&"k".repeat(65)).is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserKey(CompactString);

impl UserKey {
    /// Validates and wraps a key.
    pub fn new(key: &str) -> Result<Self, UserKeyError> {
        Self::validate(key)?;
        Ok(Self(CompactString::new(key)))
    }

    pub(crate) fn validate(key: &str) -> Result<(), UserKeyError> {
        if key.is_empty() {
            return Err(UserKeyError::Empty);
        }
        if key.len() > MAX_USER_KEY_LEN {
            return Err(UserKeyError::TooLong(key.len()));
        }
        Ok(())
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for UserKey {
    type Error = UserKeyError;
    fn try_from(key: &str) -> Result<Self, Self::Error> {
        Self::new(key)
    }
}

impl std::str::FromStr for UserKey {
    type Err = UserKeyError;
    fn from_str(key: &str) -> Result<Self, Self::Err> {
        Self::new(key)
    }
}

impl AsRef<str> for UserKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0.as_str(), f)
    }
}

impl Serialize for UserKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for UserKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = CompactString::deserialize(deserializer)?;
        Self::validate(&raw).map_err(serde::de::Error::custom)?;
        Ok(Self(raw))
    }
}

/// An application broadcast: `payload` under `key`, from `origin`.
/// Receivers deliver each (origin, key, version) once and forward it
/// infection-style; a higher version under the same key supersedes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserBroadcast {
    /// The member that broadcast it.
    pub origin: NodeName,
    /// What it is about; newer versions replace older ones.
    pub key: UserKey,
    /// The origin's Lamport time of application items when it broadcast:
    /// increases with every broadcast of the origin, and receivers drop
    /// items too far behind their own clock as too old.
    pub version: u64,
    /// Opaque application bytes.
    #[serde(with = "opaque_bytes")]
    pub payload: Vec<u8>,
}

/// Which members should answer a [`Query`]: those named in `nodes` (all
/// when empty) whose metadata holds every `(key, value)` of `tags`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryFilter {
    /// Only these members (empty: everyone).
    #[serde(deserialize_with = "bounded_seq")]
    pub nodes: Vec<NodeName>,
    /// Metadata entries that must all be present with exactly these values
    /// (compared with the metadata value's bytes).
    #[serde(deserialize_with = "bounded_seq")]
    pub tags: Vec<(String, String)>,
}

impl QueryFilter {
    /// Every member.
    pub fn everyone() -> Self {
        Self::default()
    }

    /// Whether the member `name` with `metadata` is addressed.
    ///
    /// ```
    /// use gossamer_wire::{Metadata, QueryFilter};
    /// let mut meta = Metadata::new();
    /// meta.insert("role", b"db".to_vec()).unwrap();
    /// let filter = QueryFilter { nodes: vec![], tags: vec![("role".into(), "db".into())] };
    /// assert!(filter.matches(&"a".parse().unwrap(), &meta));
    /// assert!(!filter.matches(&"a".parse().unwrap(), &Default::default()));
    /// ```
    pub fn matches(&self, name: &NodeName, metadata: &crate::Metadata) -> bool {
        (self.nodes.is_empty() || self.nodes.contains(name))
            && self.tags.iter().all(|(key, value)| metadata.get(key) == Some(value.as_bytes()))
    }
}

/// A Serf-style query: disseminated like a broadcast; each member the
/// filter addresses may answer with a [`QueryResponse`] datagram sent
/// straight to `origin.addr` within `timeout_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    /// The asking member; responses go to its address.
    pub origin: NodeId,
    /// The origin's Lamport time of application items when it asked (the
    /// clock broadcasts are stamped with): unique per run of the origin,
    /// echoed in responses.
    pub id: u64,
    /// What is asked (the application's handler name).
    pub name: UserKey,
    /// Opaque application bytes.
    #[serde(with = "opaque_bytes")]
    pub payload: Vec<u8>,
    /// Who should answer.
    pub filter: QueryFilter,
    /// How long the origin waits for responses, in milliseconds.
    pub timeout_ms: u32,
}

/// One member's answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryResponse {
    /// The query's `id`.
    pub id: u64,
    /// The answering member.
    pub from: NodeName,
    /// Opaque application bytes.
    #[serde(with = "opaque_bytes")]
    pub payload: Vec<u8>,
}
