//! # gossamer-wire
//!
//! The packet format of gossamer: a versioned, checksummed, labelled frame
//! around a bincode body, optionally sealed with a shared cluster secret.
//! No I/O, no async: the protocol core and the runtime call it.
//!
//! Every decoder is total: any byte string yields a [`Packet`] or a
//! [`DecodeError`], never a panic, and nothing is allocated beyond what the
//! frame's own bytes hold (strings are borrowed from the frame, sequence
//! preallocation is capped).
//!
//! Besides membership, packets carry application items: user broadcasts
//! and queries ride as [`Update::User`] and [`Update::Query`], answers
//! travel as [`Message::QueryResponse`]. Large frames (push-pull state) can
//! be LZ4-compressed, see [`FrameCodec::with_compression`].
//!
//! ```
//! use bytes::BytesMut;
//! use gossamer_wire::*;
//!
//! let codec = FrameCodec::new(ClusterLabel::new("prod").unwrap());
//! let me = NodeId::new("a@127.0.0.1".parse().unwrap(), "127.0.0.1:7946".parse().unwrap());
//! let ping = Message::Ping(Ping { seq: 1, target: "b@127.0.0.1".parse().unwrap(), from: me.clone() });
//! let gossip = Update::Alive(Alive { node: me, incarnation: 2, metadata: Metadata::new() });
//!
//! let mut packet = codec.compound(&ping, DEFAULT_MTU).unwrap();
//! assert!(packet.push(&gossip));
//! let mut buf = BytesMut::new();
//! packet.finish(&mut buf).unwrap();
//!
//! let decoded = codec.decode(&buf).unwrap();
//! assert_eq!(decoded.message, ping);
//! assert_eq!(decoded.updates, vec![gossip]);
//! ```

mod body;
mod bounded;
mod crc;
mod crypto;
mod digest;
mod error;
mod frame;
mod identity;
mod message;
mod metadata;
mod user;

pub use crc::frame_checksum;
pub use crypto::{
    KeyFingerprint, Keyring, KeyringError, SecretKey, ENCRYPTION_OVERHEAD, FINGERPRINT_LEN, KEY_LEN, MAX_KEYS,
    NONCE_LEN, TAG_LEN,
};
pub use digest::{
    bucket_of, digest_hash, entry_hash, name_hash, set_differing, PushPullDelta, PushPullDigest, DIGEST_HASH_LEN,
    MAX_DIGEST_BUCKETS,
};
pub use error::{ConfigError, DecodeError, EncodeError};
pub use frame::{
    encoded_len, header_len, BodyLen, ClusterLabel, CompoundBuilder, CompoundWriter, FrameCodec, PackReport,
    DEFAULT_MAX_STREAM_FRAME, DEFAULT_MTU, FIXED_HEADER_LEN, FLAGS_AT, FLAG_COMPRESSED, FLAG_ENCRYPTED,
    HEADER_PREFIX_LEN, MAGIC, MAX_DATAGRAM, PROTOCOL_VERSION,
};
pub use identity::{Incarnation, NameError, NodeId, NodeName, MAX_NAME_LEN};
pub use message::{
    Ack, Alive, Confirm, Heartbeat, Leave, MemberState, MemberStateRef, MemberStatus, Message, Nack, Packet, Ping,
    PingReq, PushPull, SeqNo, Suspect, Update, UpdateBytes,
};
pub use metadata::{Metadata, MetadataError, MAX_METADATA_BYTES, MAX_METADATA_ENTRIES, MAX_METADATA_KEY_LEN};
pub use user::{Query, QueryFilter, QueryResponse, UserBroadcast, UserKey, UserKeyError, MAX_USER_KEY_LEN};
