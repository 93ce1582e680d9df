//! Live key rotation (memberlist's keyring, Serf's `keys`), on one node and
//! across the cluster.
//!
//! Every codec of a node (datagrams, push-pull streams, multicast) shares
//! one [`Keyring`], which changes in place: [`crate::Node::install_key`],
//! [`crate::Node::use_key`] and [`crate::Node::remove_key`] take effect for
//! the very next frame sent or received, with no restart.
//!
//! [`crate::Node::cluster_keys`] does the same on every member, as Serf
//! does: it sends an internal query named [`KEYS_QUERY`] whose payload
//! carries the operation and the key. Like every frame of a keyed cluster,
//! the query is sealed with the sender's primary key, so the key never
//! travels in clear; a node without a keyring refuses to send one. Each
//! member that receives it applies the operation to its own keyring and
//! answers ok or an error, with the fingerprints of its keys afterwards;
//! the query is never handed to the application (its payload holds a
//! key). The asker reports who acknowledged, who failed and who stayed
//! silent ([`KeyRotation`]).
//!
//! A rotation without downtime is three steps, each applied everywhere
//! before the next: `install` the new key (every member accepts both),
//! `use` it (members send with it; those not switched yet still accept
//! it), `remove` the old one. Skipping ahead makes members that missed a
//! step unable to read the others: check that each step was acknowledged
//! by every member first.
//!
//! Wire format of the query payload: a version byte (1), an operation byte
//! (1 install, 2 use, 3 remove, 4 list) and, except for list, the 32 key
//! bytes. The answer: a version byte (1), a status byte (0 ok, 1 error),
//! the number of fingerprints, the fingerprints ([`FINGERPRINT_LEN`] bytes
//! each, the primary first), then the error text (UTF-8) if any. Both
//! decoders are total.

use std::fmt;
use std::time::Duration;

use gossamer_wire::{KeyFingerprint, Keyring, KeyringError, NodeName, SecretKey, FINGERPRINT_LEN, KEY_LEN, MAX_KEYS};
use zeroize::Zeroizing;

use crate::error::NetError;

/// The reserved query name of cluster-wide key operations. Queries of this
/// name are handled by the runtime and never delivered to the application.
pub const KEYS_QUERY: &str = "_gossamer/keys";

const VERSION: u8 = 1;
const STATUS_OK: u8 = 0;
const STATUS_ERROR: u8 = 1;

/// One key operation, on one node or on the whole cluster.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyRequest {
    /// Accept this key on receive too.
    Install(SecretKey),
    /// Send with this (installed) key from now on.
    Use(SecretKey),
    /// Stop accepting this key (never the primary).
    Remove(SecretKey),
    /// Only report the keys.
    List,
}

impl fmt::Debug for KeyRequest {
    /// Shows the key's fingerprint, never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyRequest::Install(k) => write!(f, "Install({})", k.fingerprint()),
            KeyRequest::Use(k) => write!(f, "Use({})", k.fingerprint()),
            KeyRequest::Remove(k) => write!(f, "Remove({})", k.fingerprint()),
            KeyRequest::List => f.write_str("List"),
        }
    }
}

impl KeyRequest {
    /// The operation's name, as the CLI spells it.
    pub fn name(&self) -> &'static str {
        match self {
            KeyRequest::Install(_) => "install",
            KeyRequest::Use(_) => "use",
            KeyRequest::Remove(_) => "remove",
            KeyRequest::List => "list",
        }
    }

    fn key(&self) -> Option<&SecretKey> {
        match self {
            KeyRequest::Install(k) | KeyRequest::Use(k) | KeyRequest::Remove(k) => Some(k),
            KeyRequest::List => None,
        }
    }

    /// The query payload; zeroized when dropped (the core's copy cannot be).
    pub(crate) fn encode(&self) -> Zeroizing<Vec<u8>> {
        let op = match self {
            KeyRequest::Install(_) => 1,
            KeyRequest::Use(_) => 2,
            KeyRequest::Remove(_) => 3,
            KeyRequest::List => 4,
        };
        let mut out = Zeroizing::new(Vec::with_capacity(2 + KEY_LEN));
        out.extend_from_slice(&[VERSION, op]);
        if let Some(key) = self.key() {
            out.extend_from_slice(key.as_bytes());
        }
        out
    }

    /// Total: `None` for anything but a well-formed request.
    pub(crate) fn decode(payload: &[u8]) -> Option<Self> {
        let (&[version, op], rest) = payload.split_first_chunk::<2>()?;
        if version != VERSION {
            return None;
        }
        let key = || SecretKey::from_bytes(rest).ok();
        match op {
            1 => key().map(KeyRequest::Install),
            2 => key().map(KeyRequest::Use),
            3 => key().map(KeyRequest::Remove),
            4 if rest.is_empty() => Some(KeyRequest::List),
            _ => None,
        }
    }

    /// Applies the request to `ring`; returns whether anything changed.
    pub(crate) fn apply(&self, ring: &Keyring) -> Result<bool, KeyringError> {
        match self {
            KeyRequest::Install(k) => ring.install(k.clone()),
            KeyRequest::Use(k) => ring.use_key(k),
            KeyRequest::Remove(k) => ring.remove(k).map(|()| true),
            KeyRequest::List => Ok(false),
        }
    }
}

/// Why a key operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The node was started without a secret: frames are not sealed, and
    /// encryption cannot be turned on live (nor a key sent in clear).
    #[error("this node runs without a cluster key (no `secret`/`keys`): there is no keyring to change")]
    NoKeyring,
    /// The keyring refused the change (unknown key, the primary, full).
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// The cluster-wide query could not be sent.
    #[error(transparent)]
    Net(#[from] NetError),
}

/// What one member answered to a cluster-wide key operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAnswer {
    /// Its keys after the operation, the primary first (empty when it has
    /// no keyring or its answer was unreadable).
    pub keys: Vec<KeyFingerprint>,
    /// Why it refused, if it did.
    pub error: Option<String>,
}

impl KeyAnswer {
    fn encode(&self) -> Vec<u8> {
        let keys = &self.keys[..self.keys.len().min(MAX_KEYS)];
        let mut out = Vec::with_capacity(3 + keys.len() * FINGERPRINT_LEN);
        out.push(VERSION);
        out.push(if self.error.is_some() { STATUS_ERROR } else { STATUS_OK });
        out.push(keys.len() as u8);
        for fp in keys {
            out.extend_from_slice(&fp.0);
        }
        if let Some(error) = &self.error {
            out.extend_from_slice(error.as_bytes());
        }
        out
    }

    /// Total: an unreadable answer becomes an error answer saying so.
    pub(crate) fn decode(payload: &[u8]) -> Self {
        let unreadable = || KeyAnswer { keys: Vec::new(), error: Some("unreadable answer".into()) };
        let Some((&[version, status, count], mut rest)) = payload.split_first_chunk::<3>() else {
            return unreadable();
        };
        if version != VERSION || status > STATUS_ERROR || usize::from(count) > MAX_KEYS {
            return unreadable();
        }
        let mut keys = Vec::with_capacity(count.into());
        for _ in 0..count {
            let Some((fp, tail)) = rest.split_first_chunk::<FINGERPRINT_LEN>() else { return unreadable() };
            keys.push(KeyFingerprint(*fp));
            rest = tail;
        }
        let error = (status == STATUS_ERROR).then(|| String::from_utf8_lossy(rest).into_owned());
        KeyAnswer { keys, error }
    }
}

/// What a cluster-wide key operation gathered by its deadline (Serf's
/// "Total responses / failed").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRotation {
    /// Every answer, in arrival order (this node's own included).
    pub answers: Vec<(NodeName, KeyAnswer)>,
    /// Members alive at the asker that did not answer in time.
    pub missing: Vec<NodeName>,
}

impl KeyRotation {
    /// Members that applied the operation.
    pub fn acked(&self) -> usize {
        self.answers.iter().filter(|(_, a)| a.error.is_none()).count()
    }

    /// Members that refused it.
    pub fn failed(&self) -> usize {
        self.answers.len() - self.acked()
    }

    /// Whether every addressed member applied it.
    pub fn all_acked(&self) -> bool {
        self.missing.is_empty() && self.failed() == 0
    }

    /// How many answers listed each key (`serf keys -list`), the keys in
    /// order of first appearance, with how many members hold it as primary.
    pub fn key_counts(&self) -> Vec<(KeyFingerprint, usize, usize)> {
        let mut counts: Vec<(KeyFingerprint, usize, usize)> = Vec::new();
        for (_, answer) in &self.answers {
            for (i, fp) in answer.keys.iter().enumerate() {
                let at = match counts.iter().position(|(k, _, _)| k == fp) {
                    Some(at) => at,
                    None => {
                        counts.push((*fp, 0, 0));
                        counts.len() - 1
                    }
                };
                counts[at].1 += 1;
                if i == 0 {
                    counts[at].2 += 1;
                }
            }
        }
        counts
    }
}

/// The answer of this node to a [`KEYS_QUERY`] from `origin`: the request
/// applied to `ring` (when there is one) and logged.
pub(crate) fn answer_query(ring: Option<&Keyring>, origin: &NodeName, payload: &[u8]) -> Vec<u8> {
    let answer = match (ring, KeyRequest::decode(payload)) {
        (_, None) => {
            // Only a keyholder can send a sealed query; without a key
            // anyone can, so this stays at debug.
            tracing::debug!(%origin, len = payload.len(), "malformed key request refused");
            KeyAnswer { keys: ring.map(Keyring::list).unwrap_or_default(), error: Some("malformed key request".into()) }
        }
        (None, Some(request)) => {
            tracing::debug!(%origin, op = request.name(), "key request refused: this node has no keyring");
            KeyAnswer { keys: Vec::new(), error: Some(KeyError::NoKeyring.to_string()) }
        }
        (Some(ring), Some(request)) => {
            let result = request.apply(ring);
            let fp = request.key().map(SecretKey::fingerprint);
            match &result {
                Ok(true) => {
                    tracing::info!(%origin, op = request.name(), key = ?fp, "keyring changed by a cluster-wide request")
                }
                Ok(false) => tracing::debug!(%origin, op = request.name(), key = ?fp, "key request changed nothing"),
                Err(error) => tracing::warn!(%origin, op = request.name(), %error, "cluster-wide key request refused"),
            }
            KeyAnswer { keys: ring.list(), error: result.err().map(|e| e.to_string()) }
        }
    };
    answer.encode()
}

/// The query timeout used when the caller gives none (the CLI's default).
pub const DEFAULT_KEYS_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_bytes(&[byte; KEY_LEN]).unwrap()
    }

    #[test]
    fn requests_round_trip_and_decoding_is_total() {
        for request in
            [KeyRequest::Install(key(1)), KeyRequest::Use(key(2)), KeyRequest::Remove(key(3)), KeyRequest::List]
        {
            assert_eq!(KeyRequest::decode(&request.encode()), Some(request.clone()));
        }
        for bad in [&[][..], &[1], &[2, 4], &[1, 4, 0], &[1, 1, 0, 0], &[1, 9], &[1, 1]] {
            assert_eq!(KeyRequest::decode(bad), None, "{bad:?}");
        }
        let mut long = KeyRequest::Install(key(1)).encode().to_vec();
        long.push(0);
        assert_eq!(KeyRequest::decode(&long), None);
        assert!(!format!("{:?}", KeyRequest::Use(key(0xab))).contains("abab"), "no key in Debug");
    }

    #[test]
    fn answers_round_trip_and_unreadable_ones_are_errors() {
        let ok = KeyAnswer { keys: vec![key(1).fingerprint(), key(2).fingerprint()], error: None };
        assert_eq!(KeyAnswer::decode(&ok.encode()), ok);
        let err = KeyAnswer { keys: vec![key(1).fingerprint()], error: Some("key 1234 is not installed".into()) };
        assert_eq!(KeyAnswer::decode(&err.encode()), err);
        for bad in [&[][..], &[1, 0], &[2, 0, 0], &[1, 7, 0], &[1, 0, 1, 0xaa], &[1, 0, 200]] {
            assert_eq!(KeyAnswer::decode(bad).error.as_deref(), Some("unreadable answer"), "{bad:?}");
        }
    }

    #[test]
    fn a_node_applies_requests_to_its_ring_and_says_what_it_holds() {
        let ring = Keyring::new(key(1), &mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
        let origin: NodeName = "a".parse().unwrap();
        let ask = |r: KeyRequest| KeyAnswer::decode(&answer_query(Some(&ring), &origin, &r.encode()));
        assert_eq!(ask(KeyRequest::Use(key(2))).error, Some(format!("key {} is not installed", key(2).fingerprint())));
        assert_eq!(ask(KeyRequest::Install(key(2))).error, None);
        let used = ask(KeyRequest::Use(key(2)));
        assert_eq!(used, KeyAnswer { keys: vec![key(2).fingerprint(), key(1).fingerprint()], error: None });
        assert!(ask(KeyRequest::Remove(key(2))).error.is_some(), "the primary stays");
        assert_eq!(ask(KeyRequest::Remove(key(1))).keys, vec![key(2).fingerprint()]);
        let none = KeyAnswer::decode(&answer_query(None, &origin, &KeyRequest::List.encode()));
        assert!(none.error.is_some() && none.keys.is_empty());
        let junk = KeyAnswer::decode(&answer_query(Some(&ring), &origin, b"junk"));
        assert_eq!(junk.error.as_deref(), Some("malformed key request"));
    }

    #[test]
    fn rotation_outcomes_count_acks_failures_and_keys() {
        let (a, b) = (key(1).fingerprint(), key(2).fingerprint());
        let name = |s: &str| s.parse::<NodeName>().unwrap();
        let outcome = KeyRotation {
            answers: vec![
                (name("x"), KeyAnswer { keys: vec![b, a], error: None }),
                (name("y"), KeyAnswer { keys: vec![a, b], error: None }),
                (name("z"), KeyAnswer { keys: vec![a], error: Some("no".into()) }),
            ],
            missing: vec![name("w")],
        };
        assert_eq!((outcome.acked(), outcome.failed(), outcome.all_acked()), (2, 1, false));
        assert_eq!(outcome.key_counts(), vec![(b, 2, 1), (a, 3, 2)]);
    }
}
