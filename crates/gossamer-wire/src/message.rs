//! The messages nodes exchange. A datagram carries one [`Packet`]: a primary
//! [`Message`] plus as many piggybacked membership [`Update`]s as fit its
//! budget (SWIM's infection-style dissemination), and application items
//! (see `user`).

use serde::{Deserialize, Serialize};

use crate::bounded::{bounded_seq, opaque_bytes};

use crate::identity::{Incarnation, NodeId, NodeName};
use crate::metadata::Metadata;
use crate::user::{Query, QueryResponse, UserBroadcast};

/// Probe sequence number; matches an `Ack`/`Nack` to its `Ping`/`PingReq`.
pub type SeqNo = u32;

/// Direct probe: "are you alive?". `target` names whom the sender means, so a
/// node that restarted under the same address under another name does not
/// answer for the old one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// Probe sequence number to echo in the `Ack`.
    pub seq: SeqNo,
    /// The member being probed.
    pub target: NodeName,
    /// The prober, so the target can answer and learn of it.
    pub from: NodeId,
}

/// Answer to a `Ping` (directly, or relayed for a `PingReq`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The `seq` of the ping answered.
    pub seq: SeqNo,
    /// Who answers.
    pub from: NodeName,
}

/// Lifeguard: a relay of a `PingReq` that got no ack from the target says so,
/// so the requester can tell "target is down" from "I am the one cut off".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nack {
    /// The `seq` of the `PingReq` answered.
    pub seq: SeqNo,
    /// The relay.
    pub from: NodeName,
}

/// Indirect probe: "please ping `target` for me and tell me".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingReq {
    /// The requester's sequence number, echoed in the relayed `Ack`/`Nack`.
    pub seq: SeqNo,
    /// The member to probe.
    pub target: NodeId,
    /// The requester.
    pub from: NodeId,
}

/// Multicast discovery beacon: "I am here". The cluster label travels in the
/// frame header and is checked before the body is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The announcing node.
    pub node: NodeId,
    /// Its current incarnation.
    pub incarnation: Incarnation,
    /// [`Metadata::digest`] of its current metadata.
    pub metadata_digest: u32,
}

/// Liveness of a member as one node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MemberStatus {
    /// Answering probes.
    Alive,
    /// Missed a probe; may still refute.
    Suspect,
    /// Suspicion timed out, or confirmed dead by another node.
    Dead,
    /// Left gracefully.
    Left,
}

/// One member's full state, as exchanged in push-pull anti-entropy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberState {
    /// Who.
    pub node: NodeId,
    /// The incarnation the status is about.
    pub incarnation: Incarnation,
    /// What the sender believes.
    pub status: MemberStatus,
    /// The member's metadata at that incarnation.
    pub metadata: Metadata,
}

/// Full-state exchange for anti-entropy and joins. May be far larger than a
/// datagram: it travels over a stream (TCP) in one frame with a 32-bit length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushPull {
    /// Sent on join: the receiver should treat the sender as new.
    pub join: bool,
    /// The sender's view of every member it knows, its own state FIRST:
    /// receivers take `members[0]` as the sender (TCP source ports are
    /// ephemeral, so the stream cannot tell who is speaking).
    #[serde(deserialize_with = "bounded_seq")]
    pub members: Vec<MemberState>,
    /// Opaque application state (memberlist's LocalState); empty if unused.
    #[serde(with = "opaque_bytes")]
    pub app_state: Vec<u8>,
    /// The sender's Lamport clock of application items (broadcast
    /// versions and query ids are its ticks): the receiver advances its own
    /// clock to at least this, so a node that joins or restarts stamps its
    /// next items above everything the cluster has seen. Zero if unused.
    pub user_ltime: u64,
}

/// A [`MemberState`] borrowed from wherever the sender keeps its members,
/// for [`FrameCodec::encode_push_pull`](crate::FrameCodec::encode_push_pull):
/// a node with 100,000 members writes its full state without first copying
/// every member into a [`PushPull`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberStateRef<'a> {
    /// Who.
    pub node: &'a NodeId,
    /// The incarnation the status is about.
    pub incarnation: Incarnation,
    /// What the sender believes.
    pub status: MemberStatus,
    /// The member's metadata at that incarnation.
    pub metadata: &'a Metadata,
}

/// A push-pull message whose members are read from an iterator, encoded
/// byte for byte as the [`Packet`] of the equivalent [`PushPull`] (no
/// piggybacked updates).
pub(crate) struct PushPullRef<'a, I> {
    pub response: bool,
    pub join: bool,
    pub members: I,
    pub count: usize,
    /// The members' encoded length, measured with `count` in one walk of
    /// the table (each walk is one pointer chase per member).
    pub members_len: usize,
    pub app_state: &'a [u8],
    pub user_ltime: u64,
}

/// "`node` is alive at `incarnation`, with this metadata". Also how a member
/// refutes a suspicion and how it announces new metadata: both raise its
/// incarnation, so the metadata is versioned by the incarnation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alive {
    /// The member.
    pub node: NodeId,
    /// Its incarnation.
    pub incarnation: Incarnation,
    /// Its metadata at this incarnation.
    pub metadata: Metadata,
}

/// "`from` suspects `node` at `incarnation`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspect {
    /// The suspected member.
    pub node: NodeName,
    /// The incarnation suspected.
    pub incarnation: Incarnation,
    /// Who suspects it (Lifeguard counts independent suspicions).
    pub from: NodeName,
}

/// "`node` is dead at `incarnation`", confirmed by `from`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirm {
    /// The dead member.
    pub node: NodeName,
    /// The incarnation declared dead.
    pub incarnation: Incarnation,
    /// Who declared it.
    pub from: NodeName,
}

/// "`node` left gracefully at `incarnation`": not a failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leave {
    /// The leaving member.
    pub node: NodeName,
    /// Its incarnation when leaving.
    pub incarnation: Incarnation,
}

/// A membership change, piggybacked on whatever packet goes out next, or
/// an application item riding the same machinery. New kinds are only ever
/// appended, so the encodings of the older ones never change (an older
/// peer refuses a packet holding a newer kind as malformed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Update {
    /// See [`Alive`].
    Alive(Alive),
    /// See [`Suspect`].
    Suspect(Suspect),
    /// See [`Confirm`].
    Confirm(Confirm),
    /// See [`Leave`].
    Leave(Leave),
    /// An application broadcast; see [`UserBroadcast`].
    User(UserBroadcast),
    /// An application query; see [`Query`]. Boxed: queries are rare and
    /// the largest variant, and every update list, queue slot and decode
    /// moves `Update`s by value (168 bytes with it inline, 96 without).
    Query(Box<Query>),
}

impl Update {
    /// Bytes this update takes in a frame body: what [`crate::encoded_len`]
    /// returns, computed without serializing (for packing loops).
    #[inline]
    pub fn encoded_len(&self) -> usize {
        crate::body::Encode::encoded_len(self)
    }

    /// Appends this update's encoding to `out`: exactly the bytes it takes
    /// in a frame body ([`Update::encoded_len`] of them), ready for
    /// [`crate::CompoundWriter::push_encoded`]. Encode a queued update once
    /// and send those bytes as often as it is piggybacked.
    ///
    /// ```
    /// use gossamer_wire::{Leave, Update};
    /// let update = Update::Leave(Leave { node: "a@h".parse().unwrap(), incarnation: 3 });
    /// let mut bytes = Vec::new();
    /// update.encode_into(&mut bytes);
    /// assert_eq!(bytes.len(), update.encoded_len());
    /// assert_eq!(Update::from_encoded(&bytes).unwrap(), update);
    /// ```
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        use crate::body::Encode;
        let (at, len) = (out.len(), self.encoded_len());
        out.resize(at + len, 0);
        let mut writer = crate::body::Writer::new(&mut out[at..]);
        self.encode(&mut writer);
        debug_assert!(writer.is_full(), "encoded_len disagrees with encode");
    }

    /// Decodes one update written by [`Update::encode_into`]; the bytes
    /// must hold exactly one. Total, like every decoder of this crate.
    pub fn from_encoded(bytes: &[u8]) -> Result<Self, crate::DecodeError> {
        use crate::body::Decode;
        let mut reader = crate::body::Reader::new(bytes);
        let update = Update::decode(&mut reader).map_err(|e| crate::DecodeError::Malformed(e.to_string()))?;
        if reader.remaining() != 0 {
            return Err(crate::DecodeError::TrailingBytes(reader.remaining()));
        }
        Ok(update)
    }

    /// The member the update is about; for an application item, the
    /// member it comes from (its origin).
    pub fn node_name(&self) -> &NodeName {
        match self {
            Update::Alive(a) => &a.node.name,
            Update::Suspect(s) => &s.node,
            Update::Confirm(c) => &c.node,
            Update::Leave(l) => &l.node,
            Update::User(b) => &b.origin,
            Update::Query(q) => &q.origin.name,
        }
    }

    /// The incarnation the update is about. Application items have none:
    /// they give the number that orders them instead (a broadcast's
    /// version, a query's id), which says nothing about the origin's
    /// incarnation.
    pub fn incarnation(&self) -> Incarnation {
        match self {
            Update::Alive(a) => a.incarnation,
            Update::Suspect(s) => s.incarnation,
            Update::Confirm(c) => c.incarnation,
            Update::Leave(l) => l.incarnation,
            Update::User(b) => b.version,
            Update::Query(q) => q.id,
        }
    }

    /// True for application items ([`Update::User`], [`Update::Query`]),
    /// which are not membership changes.
    pub fn is_user(&self) -> bool {
        matches!(self, Update::User(_) | Update::Query(_))
    }

    /// True when dropping this update frees nothing: every name and the
    /// metadata are stored inline (the other fields are plain values), and
    /// it is not an application item.
    #[inline(always)]
    fn owns_nothing(&self) -> bool {
        // Every field named: a field added later must be considered here.
        match self {
            Update::Alive(Alive { node: NodeId { name, addr: _ }, incarnation: _, metadata }) => {
                name.is_inline() && metadata.is_inline()
            }
            Update::Suspect(Suspect { node, incarnation: _, from })
            | Update::Confirm(Confirm { node, incarnation: _, from }) => node.is_inline() && from.is_inline(),
            Update::Leave(Leave { node, incarnation: _ }) => node.is_inline(),
            Update::User(_) | Update::Query(_) => false,
        }
    }
}

/// `updates.clear()`, cheaper for the usual list (that of the previous
/// frame), whose updates hold only inline names and metadata: one quick
/// pass finds nothing to free, and the list is emptied without dropping
/// each update in turn.
#[inline]
pub(crate) fn clear_updates(updates: &mut Vec<Update>) {
    if updates.iter().all(Update::owns_nothing) {
        // SAFETY: 0 is at most the capacity, and there is nothing to
        // initialise. The updates are forgotten, not dropped, which frees
        // nothing since none of them owns a heap block (checked just above;
        // `reused_update_lists_free_what_their_updates_own` in
        // tests/allocation.rs covers both paths).
        unsafe { updates.set_len(0) }
    } else {
        updates.clear();
    }
}

/// The primary content of a packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// See [`Ping`].
    Ping(Ping),
    /// See [`Ack`].
    Ack(Ack),
    /// See [`Nack`].
    Nack(Nack),
    /// See [`PingReq`].
    PingReq(PingReq),
    /// Nothing but the piggybacked updates (gossip fan-out).
    Gossip,
    /// See [`Heartbeat`].
    Heartbeat(Heartbeat),
    /// Opens a push-pull exchange (stream only).
    PushPullRequest(PushPull),
    /// Answers a push-pull exchange (stream only).
    PushPullResponse(PushPull),
    /// Answers a [`Query`], sent straight to its origin.
    QueryResponse(QueryResponse),
    /// Opens a periodic push-pull with a digest instead of the member list
    /// (stream only; see [`PushPullDigest`](crate::PushPullDigest)). Boxed,
    /// like the other rare large variants, to keep `Message` small.
    PushPullDigest(Box<crate::PushPullDigest>),
    /// The members of the buckets where two digests differ, either way
    /// (stream only; see [`PushPullDelta`](crate::PushPullDelta)).
    PushPullDelta(Box<crate::PushPullDelta>),
}

/// The bytes of a datagram's membership updates as they arrived, kept by
/// [`FrameCodec::decode_parts_keeping`](crate::FrameCodec::decode_parts_keeping)
/// so that a node forwarding an update unchanged can queue these bytes
/// instead of encoding the update again. Reused from datagram to datagram,
/// it keeps its capacity.
#[derive(Debug, Clone, Default)]
pub struct UpdateBytes {
    pub(crate) bytes: Vec<u8>,
    /// Per decoded update, its range in `bytes`, if kept.
    pub(crate) spans: Vec<Option<(u32, u32)>>,
}

impl UpdateBytes {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes of update `i` of the list last decoded: exactly what
    /// [`Update::encode_into`] writes for that update. `None` for an
    /// application item, for an update that arrived in a valid but
    /// non-canonical encoding (a varint longer than needed, metadata keys
    /// out of order or repeated), and for `i` out of range: encode those.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let (start, end) = (*self.spans.get(i)?)?;
        self.bytes.get(start as usize..end as usize)
    }

    /// Forgets what was kept.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.spans.clear();
    }
}

/// What one frame carries: a primary message and piggybacked updates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packet {
    /// The primary message.
    pub message: Message,
    /// Membership updates riding along.
    #[serde(deserialize_with = "bounded_seq")]
    pub updates: Vec<Update>,
}

impl Message {
    /// Bytes this message takes in a frame body: what [`crate::encoded_len`]
    /// returns, computed without serializing.
    #[inline]
    pub fn encoded_len(&self) -> usize {
        crate::body::Encode::encoded_len(self)
    }
}

impl Packet {
    /// Bytes this packet takes as a frame body (the frame adds
    /// [`crate::FrameCodec::overhead`]): what [`crate::encoded_len`] returns,
    /// computed without serializing.
    #[inline]
    pub fn encoded_len(&self) -> usize {
        crate::body::Encode::encoded_len(self)
    }

    /// A packet with no piggybacked updates.
    #[inline]
    pub fn new(message: Message) -> Self {
        Self { message, updates: Vec::new() }
    }
}

/// Serializes exactly like [`Packet`] but borrows its parts, so a builder can
/// pack updates that stay owned by the dissemination queue.
pub(crate) struct PacketRef<'a> {
    pub message: &'a Message,
    pub updates: &'a [&'a Update],
}
