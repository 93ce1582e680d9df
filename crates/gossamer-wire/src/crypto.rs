//! Authenticated encryption of whole frames with a shared cluster secret.
//!
//! XChaCha20-Poly1305: an AEAD (libcluster's CBC-without-MAC is the mistake
//! not to repeat), and its 192-bit nonce lets every sender pick nonces
//! without coordination. Nonces are a random 128-bit prefix drawn once per
//! keyring plus a 64-bit counter, so they never repeat within a process and
//! collide across processes only with negligible probability.
//!
//! The keyring holds one primary key (used to send) and a few secondary
//! keys (accepted on receive), so a secret can be rotated on a running
//! cluster without downtime (memberlist's keyring, Serf's `keys`): install
//! the new key everywhere, make it primary everywhere, then remove the old
//! one. The keyring changes in place (`&self`): every [`crate::FrameCodec`]
//! sharing it (datagrams, streams, multicast) seals and opens the very next
//! frame with the new set of keys.
//!
//! Keys never leave this module in a printable form: [`SecretKey`] has no
//! readable `Debug`, is compared in constant time and is zeroized on drop;
//! listings show a [`KeyFingerprint`] instead.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::ConfigError;

/// Bytes of a secret key.
pub const KEY_LEN: usize = 32;
/// Bytes of nonce in front of an encrypted payload.
pub const NONCE_LEN: usize = 24;
/// Bytes of authentication tag after an encrypted payload.
pub const TAG_LEN: usize = 16;
/// Bytes encryption adds to a payload.
pub const ENCRYPTION_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
/// Most keys a keyring holds. Every key is tried on a frame that the
/// primary does not open, so a frame sealed with an unknown key (or forged)
/// costs one AEAD attempt per key: the cap bounds that work. A rotation
/// needs two; a few more leave room for staged rotations.
pub const MAX_KEYS: usize = 16;
/// Bytes of a [`KeyFingerprint`].
pub const FINGERPRINT_LEN: usize = 4;

/// A 256-bit cluster secret. Its `Debug` never prints the key, equality
/// is checked in constant time, and the bytes are zeroized on drop.
///
/// ```
/// use gossamer_wire::SecretKey;
/// let key: SecretKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f".parse().unwrap();
/// assert!("too short".parse::<SecretKey>().is_err());
/// assert_eq!(key.fingerprint().to_string(), "630dcd29");
/// ```
#[derive(Clone)]
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

    /// The key's public fingerprint (see [`KeyFingerprint`]).
    pub fn fingerprint(&self) -> KeyFingerprint {
        let digest = Sha256::digest(self.0);
        let mut fp = [0u8; FINGERPRINT_LEN];
        fp.copy_from_slice(&digest[..FINGERPRINT_LEN]);
        KeyFingerprint(fp)
    }
}

impl PartialEq for SecretKey {
    /// Constant time: how many leading bytes match is not observable.
    fn eq(&self, other: &Self) -> bool {
        self.0.iter().zip(other.0.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

impl Eq for SecretKey {}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for SecretKey {}

impl FromStr for SecretKey {
    type Err = ConfigError;
    /// 64 hex digits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        // from_str_radix alone would also take a sign ("+f"), so check the digits first.
        if s.len() != KEY_LEN * 2 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ConfigError::KeyText);
        }
        let mut key = SecretKey([0u8; KEY_LEN]);
        for (i, byte) in key.0.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| ConfigError::KeyText)?;
        }
        Ok(key)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// A short public name of a key for listings and logs: the first
/// [`FINGERPRINT_LEN`] bytes of the SHA-256 of the 32 key bytes, printed as
/// 8 hex digits. It tells keys apart without revealing them (a one-way
/// hash of a 256-bit random key), and an operator can check which key a
/// fingerprint belongs to with standard tools:
/// `echo KEY-HEX | xxd -r -p | sha256sum | cut -c1-8`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyFingerprint(pub [u8; FINGERPRINT_LEN]);

impl fmt::Display for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyFingerprint({self})")
    }
}

impl FromStr for KeyFingerprint {
    type Err = ConfigError;
    /// 8 hex digits, as printed.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() != FINGERPRINT_LEN * 2 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ConfigError::KeyText);
        }
        let mut fp = [0u8; FINGERPRINT_LEN];
        for (i, byte) in fp.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| ConfigError::KeyText)?;
        }
        Ok(Self(fp))
    }
}

/// Why a keyring change was refused. Nothing changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    /// `use` or `remove` of a key that is not in the keyring.
    #[error("key {0} is not installed")]
    NotInstalled(KeyFingerprint),
    /// The primary key seals everything sent: make another key primary first.
    #[error("key {0} is the primary key; make another key primary first")]
    RemovePrimary(KeyFingerprint),
    /// [`MAX_KEYS`] keys are installed already.
    #[error("the keyring already holds {MAX_KEYS} keys; remove one first")]
    Full,
}

struct KeyEntry {
    key: SecretKey,
    fingerprint: KeyFingerprint,
    /// Zeroizes its copy of the key on drop (chacha20poly1305 does).
    cipher: XChaCha20Poly1305,
}

impl KeyEntry {
    fn new(key: SecretKey) -> Self {
        let cipher = XChaCha20Poly1305::new((&key.0).into());
        Self { fingerprint: key.fingerprint(), key, cipher }
    }
}

/// The keys a node encrypts with (the primary) and accepts (all of them).
///
/// Changes happen in place through `&self`, so one keyring shared behind an
/// `Arc` by every codec of a node rotates them all at once: the next frame
/// sent is sealed with the new primary, the next one received is checked
/// against the new set. The keys sit behind a read-write lock taken for
/// reading once per frame (uncontended except during a change, which is
/// rare and short).
///
/// Not `Clone`: two copies would hand out the same nonces. Share one behind
/// an `Arc`, or build one per node.
///
/// ```
/// use gossamer_wire::{Keyring, KeyringError, SecretKey};
/// use rand::SeedableRng;
/// let old = SecretKey::from_bytes(&[1; 32]).unwrap();
/// let new = SecretKey::from_bytes(&[2; 32]).unwrap();
/// let ring = Keyring::new(old.clone(), &mut rand_chacha::ChaCha8Rng::seed_from_u64(7));
/// assert!(ring.install(new.clone()).unwrap());  // accept the new key
/// ring.use_key(&new).unwrap();                   // send with it
/// ring.remove(&old).unwrap();                    // stop accepting the old one
/// assert_eq!(ring.list(), vec![new.fingerprint()]);
/// assert_eq!(ring.remove(&new), Err(KeyringError::RemovePrimary(new.fingerprint())));
/// ```
pub struct Keyring {
    /// Index 0 is the primary; never empty.
    keys: RwLock<Vec<KeyEntry>>,
    nonce_prefix: [u8; 16],
    counter: AtomicU64,
}

impl Keyring {
    /// A keyring with one key. The RNG is used once, for the nonce prefix.
    pub fn new<R: RngCore + CryptoRng + ?Sized>(primary: SecretKey, rng: &mut R) -> Self {
        let mut nonce_prefix = [0u8; 16];
        rng.fill_bytes(&mut nonce_prefix);
        Self { keys: RwLock::new(vec![KeyEntry::new(primary)]), nonce_prefix, counter: AtomicU64::new(0) }
    }

    /// A keyring with `primary` first and the other `keys` accepted too
    /// (duplicates ignored), e.g. from a configuration listing keys.
    pub fn with_keys<R: RngCore + CryptoRng + ?Sized>(
        primary: SecretKey,
        keys: impl IntoIterator<Item = SecretKey>,
        rng: &mut R,
    ) -> Result<Self, KeyringError> {
        let ring = Self::new(primary, rng);
        for key in keys {
            ring.install(key)?;
        }
        Ok(ring)
    }

    // The lock guards plain data that every writer leaves consistent (each
    // change is one push, swap or remove), so a poisoned lock is still sound.
    fn read(&self) -> RwLockReadGuard<'_, Vec<KeyEntry>> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Vec<KeyEntry>> {
        self.keys.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Accepts `key` on receive too. Returns whether it was new (installing
    /// a key already there changes nothing); refused beyond [`MAX_KEYS`].
    pub fn install(&self, key: SecretKey) -> Result<bool, KeyringError> {
        let mut keys = self.write();
        if keys.iter().any(|k| k.key == key) {
            return Ok(false);
        }
        if keys.len() >= MAX_KEYS {
            return Err(KeyringError::Full);
        }
        keys.push(KeyEntry::new(key));
        Ok(true)
    }

    /// Sends with `key` from the next frame on; the old primary stays
    /// accepted. The key must be installed first (on every member, before
    /// any of them sends with it). Returns whether the primary changed.
    pub fn use_key(&self, key: &SecretKey) -> Result<bool, KeyringError> {
        let mut keys = self.write();
        match keys.iter().position(|k| &k.key == key) {
            Some(0) => Ok(false),
            Some(idx) => {
                keys.swap(0, idx);
                Ok(true)
            }
            None => Err(KeyringError::NotInstalled(key.fingerprint())),
        }
    }

    /// Stops accepting `key` from the next frame on. The primary cannot be
    /// removed.
    pub fn remove(&self, key: &SecretKey) -> Result<(), KeyringError> {
        let mut keys = self.write();
        match keys.iter().position(|k| &k.key == key) {
            Some(0) => Err(KeyringError::RemovePrimary(keys[0].fingerprint)),
            Some(idx) => {
                keys.remove(idx);
                Ok(())
            }
            None => Err(KeyringError::NotInstalled(key.fingerprint())),
        }
    }

    /// Whether `key` is accepted.
    pub fn contains(&self, key: &SecretKey) -> bool {
        self.read().iter().any(|k| &k.key == key)
    }

    /// The fingerprints of the keys, the primary first.
    pub fn list(&self) -> Vec<KeyFingerprint> {
        self.read().iter().map(|k| k.fingerprint).collect()
    }

    /// The fingerprint of the key used for sending.
    pub fn primary(&self) -> KeyFingerprint {
        self.read()[0].fingerprint
    }

    /// Number of keys accepted.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Never true: a keyring always has its primary key.
    pub fn is_empty(&self) -> bool {
        false
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
        let tag = self.read()[0].cipher.encrypt_in_place_detached(&nonce, aad, plain).map_err(|_| ())?;
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
        for entry in self.read().iter() {
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
        f.debug_struct("Keyring").field("keys", &self.list()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_bytes(&[byte; KEY_LEN]).unwrap()
    }

    fn ring(primary: SecretKey) -> Keyring {
        Keyring::new(primary, &mut rand_chacha::ChaCha8Rng::seed_from_u64(3))
    }

    #[test]
    fn fingerprints_are_the_sha256_prefix_and_parse_back() {
        // sha256 of 32 zero bytes starts 66687aad.
        let zero = key(0);
        assert_eq!(zero.fingerprint().to_string(), "66687aad");
        assert_eq!("66687AAD".parse::<KeyFingerprint>().unwrap(), zero.fingerprint());
        assert!("66687aa".parse::<KeyFingerprint>().is_err());
        assert!("+6687aad".parse::<KeyFingerprint>().is_err());
        assert_ne!(key(1).fingerprint(), key(2).fingerprint());
    }

    #[test]
    fn nothing_prints_key_bytes() {
        let k = SecretKey::from_bytes(&[0xab; KEY_LEN]).unwrap();
        let ring = ring(k.clone());
        for text in [format!("{k:?}"), format!("{ring:?}")] {
            assert!(!text.to_lowercase().contains("abab"), "{text}");
        }
        assert!(format!("{ring:?}").contains(&k.fingerprint().to_string()));
    }

    #[test]
    fn changes_are_checked_and_leave_the_ring_unchanged_when_refused() {
        let (a, b, c) = (key(1), key(2), key(3));
        let r = ring(a.clone());
        assert_eq!(r.use_key(&b), Err(KeyringError::NotInstalled(b.fingerprint())));
        assert_eq!(r.remove(&b), Err(KeyringError::NotInstalled(b.fingerprint())));
        assert_eq!(r.remove(&a), Err(KeyringError::RemovePrimary(a.fingerprint())));
        assert_eq!(r.install(b.clone()), Ok(true));
        assert_eq!(r.install(b.clone()), Ok(false), "installing twice is a no-op");
        assert_eq!(r.list(), vec![a.fingerprint(), b.fingerprint()]);
        assert_eq!(r.use_key(&b), Ok(true));
        assert_eq!(r.use_key(&b), Ok(false));
        assert_eq!(r.primary(), b.fingerprint());
        assert_eq!(r.remove(&a), Ok(()));
        assert!(!r.contains(&a) && r.contains(&b) && !r.contains(&c));
        for i in 0..(MAX_KEYS - 1) {
            r.install(key(10 + i as u8)).unwrap();
        }
        assert_eq!(r.len(), MAX_KEYS);
        assert_eq!(r.install(c), Err(KeyringError::Full));
        assert_eq!(r.len(), MAX_KEYS);
    }

    #[test]
    fn a_shared_ring_changes_for_every_holder_at_once() {
        let (a, b) = (key(1), key(2));
        let shared = std::sync::Arc::new(ring(a.clone()));
        let other = shared.clone();
        let mut sealed = vec![0u8; ENCRYPTION_OVERHEAD + 5];
        shared.seal(b"aad", &mut sealed).unwrap();
        other.install(b.clone()).unwrap();
        other.use_key(&b).unwrap();
        let mut plain = Vec::new();
        shared.open(b"aad", &sealed, &mut plain).unwrap();
        other.remove(&a).unwrap();
        assert!(shared.open(b"aad", &sealed, &mut plain).is_err(), "the removed key no longer opens");
        let mut resealed = vec![0u8; ENCRYPTION_OVERHEAD + 5];
        shared.seal(b"aad", &mut resealed).unwrap();
        let only_b = ring(b);
        assert!(only_b.open(b"aad", &resealed, &mut plain).is_ok(), "sealed with the new primary");
    }
}
