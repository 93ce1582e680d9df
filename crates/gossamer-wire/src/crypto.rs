//! Authenticated encryption of whole frames with a shared cluster secret.
//!
//! XChaCha20-Poly1305: an AEAD (libcluster's CBC-without-MAC is the mistake
//! not to repeat), and its 192-bit nonce lets every sender pick nonces
//! without coordination. Nonces are a random 128-bit prefix drawn once per
//! keyring plus a 64-bit counter, so they never repeat within a process and
//! collide across processes only with negligible probability.
//!
//! The keyring holds one primary key (used to send) and any number of
//! secondary keys (accepted on receive), so a secret can be rotated without
//! downtime: install the new key everywhere, make it primary everywhere,
//! then remove the old one.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};
use rand_core::{CryptoRng, RngCore};

use crate::error::ConfigError;

/// Bytes of a secret key.
pub const KEY_LEN: usize = 32;
/// Bytes of nonce in front of an encrypted payload.
pub const NONCE_LEN: usize = 24;
/// Bytes of authentication tag after an encrypted payload.
pub const TAG_LEN: usize = 16;
/// Bytes encryption adds to a payload.
pub const ENCRYPTION_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// A 256-bit cluster secret. Its `Debug` never prints the key.
///
/// ```
/// use gossamer_wire::SecretKey;
/// let key: SecretKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f".parse().unwrap();
/// assert!("too short".parse::<SecretKey>().is_err());
/// # let _ = key;
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; KEY_LEN]);

impl SecretKey {
    /// Wraps exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfigError> {
        let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| ConfigError::KeyLength(bytes.len()))?;
        Ok(Self(key))
    }

    /// The raw key.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl FromStr for SecretKey {
    type Err = ConfigError;
    /// 64 hex digits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        // from_str_radix alone would also take a sign ("+f"), so check the digits first.
        if s.len() != KEY_LEN * 2 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ConfigError::KeyText);
        }
        let mut key = [0u8; KEY_LEN];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| ConfigError::KeyText)?;
        }
        Ok(Self(key))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

struct KeyEntry {
    key: SecretKey,
    cipher: XChaCha20Poly1305,
}

impl KeyEntry {
    fn new(key: SecretKey) -> Self {
        let cipher = XChaCha20Poly1305::new((&key.0).into());
        Self { key, cipher }
    }
}

/// The keys a node encrypts with (the primary) and accepts (all of them).
///
/// Not `Clone`: two copies would hand out the same nonces. Share one behind
/// an `Arc`, or build one per node.
///
/// ```
/// use gossamer_wire::{Keyring, SecretKey};
/// use rand::SeedableRng;
/// let old = SecretKey::from_bytes(&[1; 32]).unwrap();
/// let new = SecretKey::from_bytes(&[2; 32]).unwrap();
/// let mut ring = Keyring::new(old.clone(), &mut rand_chacha::ChaCha8Rng::seed_from_u64(7));
/// ring.add(new.clone());          // accept the new key
/// ring.set_primary(new.clone());  // send with it
/// ring.remove(&old);              // stop accepting the old one
/// assert_eq!(ring.len(), 1);
/// ```
pub struct Keyring {
    /// Index 0 is the primary.
    keys: Vec<KeyEntry>,
    nonce_prefix: [u8; 16],
    counter: AtomicU64,
}

impl Keyring {
    /// A keyring with one key. The RNG is used once, for the nonce prefix.
    pub fn new<R: RngCore + CryptoRng + ?Sized>(primary: SecretKey, rng: &mut R) -> Self {
        let mut nonce_prefix = [0u8; 16];
        rng.fill_bytes(&mut nonce_prefix);
        Self { keys: vec![KeyEntry::new(primary)], nonce_prefix, counter: AtomicU64::new(0) }
    }

    /// Accepts `key` on receive too (no effect if already present).
    pub fn add(&mut self, key: SecretKey) {
        if !self.keys.iter().any(|k| k.key == key) {
            self.keys.push(KeyEntry::new(key));
        }
    }

    /// Sends with `key` from now on (adding it if needed); the old primary stays accepted.
    pub fn set_primary(&mut self, key: SecretKey) {
        self.add(key.clone());
        let idx = self.keys.iter().position(|k| k.key == key).expect("just added");
        self.keys.swap(0, idx);
    }

    /// Stops accepting `key`. The primary cannot be removed; returns whether a key was removed.
    pub fn remove(&mut self, key: &SecretKey) -> bool {
        match self.keys.iter().position(|k| &k.key == key) {
            Some(0) | None => false,
            Some(idx) => {
                self.keys.remove(idx);
                true
            }
        }
    }

    /// Number of keys accepted.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Never true: a keyring always has its primary key.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The key used for sending.
    pub fn primary(&self) -> &SecretKey {
        &self.keys[0].key
    }

    fn next_nonce(&self) -> XNonce {
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..16].copy_from_slice(&self.nonce_prefix);
        nonce[16..].copy_from_slice(&self.counter.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        nonce.into()
    }

    /// Encrypts `payload[NONCE_LEN..]` in place with the primary key. The
    /// caller reserved `NONCE_LEN` bytes in front, and `TAG_LEN` at the end.
    pub(crate) fn seal(&self, aad: &[u8], sealed: &mut [u8]) -> Result<(), ()> {
        let len = sealed.len();
        if len < ENCRYPTION_OVERHEAD {
            return Err(());
        }
        let nonce = self.next_nonce();
        let (head, rest) = sealed.split_at_mut(NONCE_LEN);
        head.copy_from_slice(&nonce);
        let (plain, tag_out) = rest.split_at_mut(len - ENCRYPTION_OVERHEAD);
        let tag = self.keys[0].cipher.encrypt_in_place_detached(&nonce, aad, plain).map_err(|_| ())?;
        tag_out.copy_from_slice(&tag);
        Ok(())
    }

    /// Authenticates and decrypts `sealed` (nonce ‖ ciphertext ‖ tag) into
    /// `plain`, trying the primary key first, then the others.
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8], plain: &mut Vec<u8>) -> Result<(), ()> {
        if sealed.len() < ENCRYPTION_OVERHEAD {
            return Err(());
        }
        let nonce = XNonce::from_slice(&sealed[..NONCE_LEN]);
        let body = &sealed[NONCE_LEN..sealed.len() - TAG_LEN];
        let tag = Tag::from_slice(&sealed[sealed.len() - TAG_LEN..]);
        for entry in &self.keys {
            plain.clear();
            plain.extend_from_slice(body);
            if entry.cipher.decrypt_in_place_detached(nonce, aad, plain, tag).is_ok() {
                return Ok(());
            }
        }
        plain.clear();
        Err(())
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring").field("keys", &self.keys.len()).finish_non_exhaustive()
    }
}
