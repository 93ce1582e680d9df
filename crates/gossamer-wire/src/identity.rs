//! Who a node is: its `name@host` name, the address it answers on, and the
//! incarnation number that orders everything said about it.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use compact_str::CompactString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Orders claims about one member: a claim with a higher incarnation wins.
/// Only the member itself ever raises its own incarnation (to refute a
/// suspicion, to announce new metadata, or to rejoin after a restart).
pub type Incarnation = u64;

/// Longest node name accepted, in bytes. Names travel in every ping, so they
/// are kept short; 255 also matches the one-byte length memberlist allows.
pub const MAX_NAME_LEN: usize = 255;

/// Why a node name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name was empty.
    #[error("node name is empty")]
    Empty,
    /// The name was longer than [`MAX_NAME_LEN`] bytes.
    #[error("node name is {0} bytes long, the limit is {MAX_NAME_LEN}")]
    TooLong(usize),
    /// The name held whitespace or a control character.
    #[error("node name {0:?} contains whitespace or a control character")]
    BadCharacter(String),
}

/// A node's name, `name@host` style as in EMQX/Erlang (`gossamer@10.0.0.7`),
/// though any non-empty name without whitespace is accepted.
///
/// Names of up to 24 bytes are stored inline, so decoding a ping allocates
/// nothing for the usual `basename@ip` names.
///
/// ```
/// use gossamer_wire::NodeName;
/// let name: NodeName = "gossamer@10.0.0.7".parse().unwrap();
/// assert_eq!(name.basename(), "gossamer");
/// assert_eq!(name.host(), Some("10.0.0.7"));
/// assert!(NodeName::new("has space").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeName(CompactString);

impl NodeName {
    /// Validates and wraps a name.
    pub fn new(name: &str) -> Result<Self, NameError> {
        Self::validate(name)?;
        Ok(Self(CompactString::new(name)))
    }

    fn validate(name: &str) -> Result<(), NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong(name.len()));
        }
        // Fast path: printable ASCII has no whitespace or control character.
        if !crate::body::is_plain_ascii(name.as_bytes()) && name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(NameError::BadCharacter(name.to_owned()));
        }
        Ok(())
    }

    /// Wraps a name the caller has already validated.
    #[inline(always)]
    pub(crate) fn from_checked(name: &str) -> Self {
        debug_assert!(Self::validate(name).is_ok());
        Self(CompactString::new(name))
    }

    /// True when the name is stored inline (owns no heap block).
    #[inline(always)]
    pub(crate) fn is_inline(&self) -> bool {
        !self.0.is_heap_allocated()
    }

    /// The whole name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before `@` (the whole name when there is no `@`).
    pub fn basename(&self) -> &str {
        self.0.split_once('@').map_or(&self.0, |(base, _)| base)
    }

    /// The part after `@`, if any.
    pub fn host(&self) -> Option<&str> {
        self.0.split_once('@').map(|(_, host)| host)
    }
}

impl FromStr for NodeName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<&str> for NodeName {
    type Error = NameError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl TryFrom<CompactString> for NodeName {
    type Error = NameError;
    fn try_from(s: CompactString) -> Result<Self, Self::Error> {
        Self::validate(&s)?;
        Ok(Self(s))
    }
}

impl AsRef<str> for NodeName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0.as_str(), f)
    }
}

impl Serialize for NodeName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for NodeName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = CompactString::deserialize(deserializer)?;
        NodeName::try_from(raw).map_err(serde::de::Error::custom)
    }
}

/// A node's name together with the address its protocol socket answers on.
///
/// ```
/// use gossamer_wire::NodeId;
/// let id = NodeId::new("gossamer@127.0.0.1".parse().unwrap(), "127.0.0.1:7946".parse().unwrap());
/// assert_eq!(id.to_string(), "gossamer@127.0.0.1 (127.0.0.1:7946)");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId {
    /// Unique name within the cluster.
    pub name: NodeName,
    /// Where the node's UDP (and TCP push-pull) listener is reachable.
    /// An IPv6 address travels without its flow info and scope id: both are
    /// local to the sending host and mean nothing to the receiver.
    pub addr: SocketAddr,
}

impl NodeId {
    /// Pairs a name with an address.
    pub fn new(name: NodeName, addr: SocketAddr) -> Self {
        Self { name, addr }
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.addr)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@@{}", self.name, self.addr)
    }
}
