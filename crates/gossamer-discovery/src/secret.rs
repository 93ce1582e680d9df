//! [`Secret`]: a string that must never reach a log line, kept out of `Debug` and wiped from memory
//! when dropped. Used for the Kubernetes bearer token here, and by the agent for its cluster secret.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroize;

/// A secret string (a bearer token, a cluster key in hex).
///
/// Configuration structs derive `Debug`, and a `{:?}` of them ends up in logs and panic messages; this
/// wrapper prints `Secret("<redacted>")` instead of its contents, and overwrites its bytes with zeros on
/// drop so a freed buffer does not keep it. Read it with [`Secret::expose`] only where it is used.
/// It (de)serialises as a plain string, so config files are unchanged.
///
/// ```
/// use gossamer_discovery::Secret;
/// let token = Secret::new("s3cr3t-token");
/// assert_eq!(token.expose(), "s3cr3t-token");
/// assert!(!format!("{token:?}").contains("s3cr3t"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that uses it (an HTTP header, a key parser).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(\"<redacted>\")")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_and_serde_is_a_plain_string() {
        let s = Secret::new("hunter2-hunter2");
        assert_eq!(format!("{s:?}"), "Secret(\"<redacted>\")");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(Secret(\"<redacted>\"))");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"hunter2-hunter2\"");
        let back: Secret = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(back.expose(), "abc");
        assert!(Secret::default().is_empty());
    }
}
