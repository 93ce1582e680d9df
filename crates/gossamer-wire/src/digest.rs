//! Push-pull deltas: a periodic anti-entropy exchange opens with a compact
//! digest of the sender's view, and the answer carries only the members
//! of the parts of the table where the two views differ (issue #16; a full
//! [`PushPull`](crate::PushPull) stays for joins and partition heals).
//!
//! ## The digest
//!
//! Members are spread over `B` buckets (a power of two) by a hash of their
//! name; a bucket's digest is the wrapping sum of [`entry_hash`] over its
//! members, so it depends on the set of `(name, incarnation, status)`
//! triples only, not on the order of the table. Both sides compute it with
//! these functions, so they must never change without a protocol version.
//!
//! ## The exchange (each arrow one stream frame)
//!
//! 1. initiator → [`PushPullDigest`]: its own state, its `B` bucket hashes.
//! 2. responder → [`PushPullDelta`]: the buckets that differ (a bitmap)
//!    and its members in them, its own state first. All buckets when too
//!    many differ to be worth the bookkeeping (then it is the full table).
//! 3. if some bucket differed, initiator → [`PushPullDelta`] on a second
//!    stream: its members in those buckets that the responder's answer did
//!    not hold at the same incarnation and status; the responder answers
//!    with a [`PushPullDelta`] of its own state only (`buckets == 0`).
//!
//! A converged pair thus exchanges `4·B` bytes of digest, a bitmap of
//! `B/8` bytes and the two senders' states.

use serde::{Deserialize, Serialize};

use crate::body::{BodyError, Decode, Encode, Reader, Writer};
use crate::bounded::{bounded_seq, opaque_bytes};
use crate::identity::{Incarnation, NodeName};
use crate::message::{MemberState, MemberStatus};

/// Most buckets a digest may have (a 256 KiB digest): a receiver refuses
/// more, so a peer cannot make it allocate or hash beyond this.
pub const MAX_DIGEST_BUCKETS: usize = 1 << 16;

/// Bytes a bucket takes in [`PushPullDigest::hashes`].
pub const DIGEST_HASH_LEN: usize = 4;

/// Opens a periodic push-pull: the sender's view in `B` bucket hashes
/// instead of its member list (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushPullDigest {
    /// The sender's own state: push-pull lists name no sender otherwise,
    /// and a stream's source port says nothing.
    pub sender: MemberState,
    /// `B` bucket hashes, [`DIGEST_HASH_LEN`] little-endian bytes each; `B`
    /// is a power of two up to [`MAX_DIGEST_BUCKETS`] (see
    /// [`PushPullDigest::buckets`]).
    #[serde(with = "opaque_bytes")]
    pub hashes: Vec<u8>,
    /// Opaque application state, as in [`PushPull::app_state`](crate::PushPull::app_state).
    #[serde(with = "opaque_bytes")]
    pub app_state: Vec<u8>,
    /// The sender's clock of application items, as in
    /// [`PushPull::user_ltime`](crate::PushPull::user_ltime).
    pub user_ltime: u64,
}

impl PushPullDigest {
    /// The bucket count, if the hashes make a valid digest: a whole number
    /// of hashes, a power of two of them, at most [`MAX_DIGEST_BUCKETS`].
    /// `None` for anything else (a peer's bytes: never trusted).
    pub fn buckets(&self) -> Option<usize> {
        let len = self.hashes.len();
        let buckets = len / DIGEST_HASH_LEN;
        (len.is_multiple_of(DIGEST_HASH_LEN) && buckets.is_power_of_two() && buckets <= MAX_DIGEST_BUCKETS)
            .then_some(buckets)
    }

    /// The hash of bucket `i` (0 past the end).
    pub fn hash(&self, i: usize) -> u32 {
        digest_hash(&self.hashes, i)
    }
}

/// Bucket `i`'s hash in [`PushPullDigest::hashes`] bytes (0 past the end).
pub fn digest_hash(hashes: &[u8], i: usize) -> u32 {
    let at = i.saturating_mul(DIGEST_HASH_LEN);
    hashes
        .get(at..at.saturating_add(DIGEST_HASH_LEN))
        .and_then(|b| <[u8; DIGEST_HASH_LEN]>::try_from(b).ok())
        .map_or(0, u32::from_le_bytes)
}

/// The members of the buckets where two views differ (see the module docs):
/// the answer to a [`PushPullDigest`], the initiator's part sent back, and
/// (with no buckets) the acknowledgement of that part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushPullDelta {
    /// The bucket count of the digest answered (0: none, this only
    /// acknowledges).
    pub buckets: u32,
    /// One bit per bucket, bucket `i` in bit `i % 8` of byte `i / 8`: set
    /// if that bucket differs and its members are listed.
    #[serde(with = "opaque_bytes")]
    pub differing: Vec<u8>,
    /// The sender's own state FIRST, then its members in the differing
    /// buckets.
    #[serde(deserialize_with = "bounded_seq")]
    pub members: Vec<MemberState>,
    /// Opaque application state, as in [`PushPull::app_state`](crate::PushPull::app_state).
    #[serde(with = "opaque_bytes")]
    pub app_state: Vec<u8>,
    /// The sender's clock of application items, as in
    /// [`PushPull::user_ltime`](crate::PushPull::user_ltime).
    pub user_ltime: u64,
}

impl PushPullDelta {
    /// Bytes of a bitmap of `buckets` bits.
    pub fn bitmap_len(buckets: usize) -> usize {
        buckets.div_ceil(8)
    }

    /// Whether the bitmap is well formed: `buckets` at most
    /// [`MAX_DIGEST_BUCKETS`] and zero or a power of two, and the bitmap
    /// exactly as long as it needs.
    pub fn is_well_formed(&self) -> bool {
        let buckets = self.buckets as usize;
        (buckets == 0 || buckets.is_power_of_two())
            && buckets <= MAX_DIGEST_BUCKETS
            && self.differing.len() == Self::bitmap_len(buckets)
    }

    /// Whether bucket `i` is flagged as differing.
    pub fn differs(&self, i: usize) -> bool {
        self.differing.get(i / 8).is_some_and(|byte| byte & (1 << (i % 8)) != 0)
    }

    /// Whether every bucket is flagged: the list is then the sender's whole
    /// view (the full table; what a reconciliation falls back to).
    pub fn is_full(&self) -> bool {
        self.buckets > 0 && (0..self.buckets as usize).all(|i| self.differs(i))
    }
}

/// Sets bit `i` of a bitmap built for [`PushPullDelta::differing`] (no-op
/// past its end).
pub fn set_differing(bitmap: &mut [u8], i: usize) {
    if let Some(byte) = bitmap.get_mut(i / 8) {
        *byte |= 1 << (i % 8);
    }
}

/// A member name's digest hash (FNV-1a, then a 64-bit finaliser): both
/// its bucket ([`bucket_of`]) and the seed of its [`entry_hash`].
/// Deterministic everywhere (no per-process seed): every node computes
/// the same.
pub fn name_hash(name: &NodeName) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name.as_str().as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    fmix64(h)
}

/// The bucket of a member whose [`name_hash`] is `name_hash`, of `buckets`
/// (a power of two).
pub fn bucket_of(name_hash: u64, buckets: usize) -> usize {
    ((name_hash >> 32) as usize) & buckets.saturating_sub(1)
}

/// A member entry's contribution to its bucket's hash: the bucket hash is
/// the wrapping sum of these. Metadata is versioned by the incarnation,
/// so it needs no part of its own.
pub fn entry_hash(name_hash: u64, incarnation: Incarnation, status: MemberStatus) -> u32 {
    let status = match status {
        MemberStatus::Alive => 1u64,
        MemberStatus::Suspect => 2,
        MemberStatus::Dead => 3,
        MemberStatus::Left => 4,
    };
    let mixed = fmix64(name_hash ^ fmix64(incarnation.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (status << 56)));
    (mixed ^ (mixed >> 32)) as u32
}

/// MurmurHash3's 64-bit finaliser.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Fewest bytes a `MemberState` takes (see `body`).
const MIN_MEMBER_LEN: usize = 2 + 6 + 1 + 1 + 1;
/// Most members preallocated before they are read.
const MAX_PREALLOCATED: usize = 256;

impl Encode for PushPullDigest {
    fn encoded_len(&self) -> usize {
        self.sender.encoded_len()
            + self.hashes.encoded_len()
            + self.app_state.encoded_len()
            + self.user_ltime.encoded_len()
    }
    fn encode(&self, out: &mut Writer<'_>) {
        self.sender.encode(out);
        self.hashes.encode(out);
        self.app_state.encode(out);
        self.user_ltime.encode(out);
    }
}

impl Decode for PushPullDigest {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError> {
        Ok(Self {
            sender: MemberState::decode(r)?,
            hashes: Vec::<u8>::decode(r)?,
            app_state: Vec::<u8>::decode(r)?,
            user_ltime: u64::decode(r)?,
        })
    }
}

impl Encode for PushPullDelta {
    fn encoded_len(&self) -> usize {
        self.buckets.encoded_len()
            + self.differing.encoded_len()
            + (self.members.len() as u64).encoded_len()
            + self.members.iter().map(Encode::encoded_len).sum::<usize>()
            + self.app_state.encoded_len()
            + self.user_ltime.encoded_len()
    }
    fn encode(&self, out: &mut Writer<'_>) {
        self.buckets.encode(out);
        self.differing.encode(out);
        (self.members.len() as u64).encode(out);
        for member in &self.members {
            member.encode(out);
        }
        self.app_state.encode(out);
        self.user_ltime.encode(out);
    }
}

impl Decode for PushPullDelta {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BodyError> {
        let buckets = u32::decode(r)?;
        let differing = Vec::<u8>::decode(r)?;
        let count = r.len()?;
        // Preallocation bounded by the bytes actually left.
        let mut members = Vec::with_capacity(count.min(r.remaining() / MIN_MEMBER_LEN).min(MAX_PREALLOCATED));
        for _ in 0..count {
            members.push(MemberState::decode(r)?);
        }
        let app_state = Vec::<u8>::decode(r)?;
        let user_ltime = u64::decode(r)?;
        Ok(Self { buckets, differing, members, app_state, user_ltime })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> NodeName {
        s.parse().unwrap()
    }

    #[test]
    fn hashes_are_fixed_functions_of_the_entry() {
        let h = name_hash(&name("a@h"));
        assert_eq!(h, name_hash(&name("a@h")));
        assert_ne!(h, name_hash(&name("b@h")));
        let e = entry_hash(h, 3, MemberStatus::Alive);
        assert_eq!(e, entry_hash(h, 3, MemberStatus::Alive));
        assert_ne!(e, entry_hash(h, 4, MemberStatus::Alive));
        assert_ne!(e, entry_hash(h, 3, MemberStatus::Suspect));
        assert!(bucket_of(h, 1) == 0 && bucket_of(h, 64) < 64);
    }

    #[test]
    fn malformed_digests_and_bitmaps_are_recognised() {
        let sender = MemberState {
            node: crate::NodeId::new(name("a@h"), "127.0.0.1:1".parse().unwrap()),
            incarnation: 1,
            status: MemberStatus::Alive,
            metadata: crate::Metadata::new(),
        };
        let digest =
            |hashes: Vec<u8>| PushPullDigest { sender: sender.clone(), hashes, app_state: vec![], user_ltime: 0 };
        assert_eq!(digest(vec![0; 4 * 8]).buckets(), Some(8));
        assert_eq!(digest(vec![0; 4 * 6]).buckets(), None, "not a power of two");
        assert_eq!(digest(vec![0; 4 * 8 + 1]).buckets(), None, "not whole hashes");
        assert_eq!(digest(vec![]).buckets(), None, "no bucket");
        assert_eq!(digest(vec![0; 4 * 2 * MAX_DIGEST_BUCKETS]).buckets(), None, "too many");
        let mut d = digest(vec![0; 8]);
        d.hashes[4..8].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!((d.hash(0), d.hash(1), d.hash(2), d.hash(usize::MAX)), (0, 7, 0, 0));

        let delta = |buckets: u32, differing: Vec<u8>| PushPullDelta {
            buckets,
            differing,
            members: vec![],
            app_state: vec![],
            user_ltime: 0,
        };
        assert!(delta(0, vec![]).is_well_formed());
        assert!(delta(16, vec![0, 0]).is_well_formed());
        assert!(!delta(16, vec![0]).is_well_formed());
        assert!(!delta(12, vec![0, 0]).is_well_formed());
        assert!(!delta(u32::MAX, vec![]).is_well_formed());
        let mut bits = vec![0u8; 2];
        set_differing(&mut bits, 9);
        set_differing(&mut bits, 99);
        let d = delta(16, bits);
        assert!(d.differs(9) && !d.differs(8) && !d.differs(99) && !d.is_full());
        assert!(delta(8, vec![0xff]).is_full() && !delta(0, vec![]).is_full());
    }
}
