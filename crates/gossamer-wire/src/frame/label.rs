//! The cluster label every frame carries, checked before its body.

use std::fmt;

use crate::error::ConfigError;

/// A cluster's label: frames from another cluster are refused before their
/// body is looked at (memberlist's label, an Erlang cookie check).
///
/// ```
/// use gossamer_wire::ClusterLabel;
/// assert!(ClusterLabel::new("prod-eu").is_ok());
/// assert!(ClusterLabel::new(&"x".repeat(300)).is_err());
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ClusterLabel(pub(super) Vec<u8>);

impl ClusterLabel {
    /// A label of at most 255 bytes. The empty label is a label too.
    pub fn new(label: &str) -> Result<Self, ConfigError> {
        if label.len() > 255 {
            return Err(ConfigError::LabelTooLong(label.len()));
        }
        Ok(Self(label.as_bytes().to_vec()))
    }

    /// The label's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ClusterLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}
