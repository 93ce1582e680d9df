//! A hostile peer (issue #15): frames forged by a node outside the cluster
//! that knows the cluster label but holds no key, so it can send any
//! well-formed frame. `[[fault]] kind = "forge"` names what it claims
//! ([`Attack`]), about whom, to whom, how often; the engine sends the
//! frames these functions build, encoded by gossamer-wire exactly as the
//! network carries them, from [`HOSTILE_ADDR`], an address no simulated
//! node has.
//!
//! The hostile node draws no randomness (its latency comes from a stream
//! of its own), so the rest of a run keeps its draws and a scenario stays
//! a pure function of its seed.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bytes::{Bytes, BytesMut};
use gossamer_wire::{
    Alive, ClusterLabel, Confirm, FrameCodec, MemberState, MemberStatus, Message, Metadata, NodeId, NodeName, Packet,
    PushPull, Suspect, Update, UserBroadcast, UserKey, DEFAULT_MAX_STREAM_FRAME,
};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::error::SimError;

/// Where forged frames come from: an address outside the simulated nodes'
/// (TEST-NET-1), so the views never mistake the attacker for a node, and
/// whatever the nodes send back to it is lost.
pub const HOSTILE_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 66)), 7946);

/// Name the hostile node gives itself as accuser (`Suspect`, `Confirm`)
/// and as the sender of a forged push-pull.
pub const HOSTILE_NAME: &str = "hostile";

/// Key of every forged user item, so the report tells their deliveries
/// from those of real broadcasts (whose keys are `f<fault>`).
pub const FORGED_KEY: &str = "forged";

/// Default members per forged push-pull (`attack = "push_pull"`).
pub const DEFAULT_PUSH_PULL_NAMES: u32 = 10_000;

/// The name of never-existing member `k` (floods): `ghost<k>`.
pub fn ghost_name(k: u32) -> NodeName {
    format!("ghost{k}").parse().expect("ghost<digits> is a valid node name")
}

/// The address of never-existing member `k`: in 10.0.0.0/8, outside the
/// simulated nodes' range, so probes to it are lost.
pub fn ghost_addr(k: u32) -> SocketAddr {
    let k = k.wrapping_add(1);
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, (k >> 16) as u8, (k >> 8) as u8, k as u8)), 7946)
}

/// What a forged frame claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attack {
    /// A `Confirm`: the target is dead at `incarnation`.
    Confirm,
    /// A `Suspect` of the target at `incarnation` (a storm with `rounds`).
    Suspect,
    /// An `Alive` of the target at `incarnation`, at the hostile node's
    /// address: the member pinned where it cannot answer.
    Alive,
    /// A user broadcast under the target's name stamped `ltime` (the
    /// Lamport clock of application items).
    User,
    /// `Alive` for never-existing members, as many as fit each datagram:
    /// member tables grow unless capped.
    AliveFlood,
    /// A push-pull request (a stream) carrying `names` never-existing
    /// members and, with a `target`, a view holding the target dead at
    /// `incarnation`.
    PushPull,
}

impl Attack {
    /// Whether the attack is about one member (`target` required).
    pub fn needs_target(self) -> bool {
        matches!(self, Attack::Confirm | Attack::Suspect | Attack::Alive | Attack::User)
    }

    /// Whether the attack may be about one member (`target` allowed).
    pub fn takes_target(self) -> bool {
        self.needs_target() || self == Attack::PushPull
    }

    /// Whether the attack's frames go over a stream (push-pull).
    pub fn is_stream(self) -> bool {
        self == Attack::PushPull
    }
}

impl fmt::Display for Attack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Attack::Confirm => "confirm",
            Attack::Suspect => "suspect",
            Attack::Alive => "alive",
            Attack::User => "user",
            Attack::AliveFlood => "alive_flood",
            Attack::PushPull => "push_pull",
        })
    }
}

/// A number a forged frame carries (an incarnation, a Lamport time):
/// `"max"` (`u64::MAX`), `"known+N"` (what the attacker can overhear, plus
/// `N`: for incarnations the target's own, for Lamport times the
/// receiver's clock), or a plain integer.
///
/// ```
/// use gossamer_sim::Forged;
/// assert_eq!("max".parse::<Forged>().unwrap().value(7), u64::MAX);
/// assert_eq!("known+1000".parse::<Forged>().unwrap().value(7), 1007);
/// assert_eq!("known".parse::<Forged>().unwrap().value(7), 7);
/// assert_eq!("12".parse::<Forged>().unwrap().value(7), 12);
/// assert_eq!("known+1".parse::<Forged>().unwrap().value(u64::MAX), u64::MAX, "saturates");
/// assert!("most".parse::<Forged>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forged {
    /// `u64::MAX`.
    Max,
    /// Exactly this.
    Exact(u64),
    /// The known value plus this (saturating).
    Known(u64),
}

impl Forged {
    /// The number, given the value the attacker knows.
    pub fn value(self, known: u64) -> u64 {
        match self {
            Forged::Max => u64::MAX,
            Forged::Exact(v) => v,
            Forged::Known(plus) => known.saturating_add(plus),
        }
    }
}

impl std::str::FromStr for Forged {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("max") {
            return Ok(Forged::Max);
        }
        if let Some(rest) = t.strip_prefix("known") {
            let rest = rest.trim();
            if rest.is_empty() {
                return Ok(Forged::Known(0));
            }
            let plus = rest.strip_prefix('+').ok_or_else(|| format!("{s:?}: expected \"known+N\""))?;
            return plus.trim().parse().map(Forged::Known).map_err(|_| format!("{s:?}: expected \"known+N\""));
        }
        t.parse().map(Forged::Exact).map_err(|_| format!("{s:?}: expected \"max\", \"known+N\" or a number"))
    }
}

impl fmt::Display for Forged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Forged::Max => f.write_str("max"),
            Forged::Exact(v) => write!(f, "{v}"),
            Forged::Known(0) => f.write_str("known"),
            Forged::Known(plus) => write!(f, "known+{plus}"),
        }
    }
}

impl Serialize for Forged {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Forged::Exact(v) => serializer.serialize_u64(*v),
            other => serializer.serialize_str(&other.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Forged {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Forged;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"max\", \"known+N\" or a non-negative integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Forged, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Forged, E> {
                Ok(Forged::Exact(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Forged, E> {
                u64::try_from(v).map(Forged::Exact).map_err(|_| E::custom("must not be negative"))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Builds the hostile node's frames with the cluster's label (and no key).
pub(crate) struct Forger {
    codec: FrameCodec,
    stream_codec: FrameCodec,
    name: NodeName,
    /// The next never-existing member's number.
    next_ghost: u32,
}

impl Forger {
    pub(crate) fn new(label: &str) -> Result<Self, SimError> {
        let label = ClusterLabel::new(label).map_err(|e| SimError::invalid(format!("cluster label: {e}")))?;
        let codec = FrameCodec::new(label);
        let stream_codec = codec
            .clone()
            .with_max_frame_len(DEFAULT_MAX_STREAM_FRAME)
            .map_err(|e| SimError::invalid(format!("stream codec: {e}")))?;
        Ok(Self { codec, stream_codec, name: HOSTILE_NAME.parse().expect("a valid name"), next_ghost: 0 })
    }

    /// Never-existing members forged so far.
    pub(crate) fn ghosts(&self) -> u32 {
        self.next_ghost
    }

    fn ghost(&mut self) -> NodeId {
        let k = self.next_ghost;
        self.next_ghost = k.wrapping_add(1);
        NodeId::new(ghost_name(k), ghost_addr(k))
    }

    /// One gossip datagram carrying one claim about `target` (`number` is
    /// the incarnation, or for [`Attack::User`] the Lamport time), made by
    /// `accuser` (`Confirm`, `Suspect`; default the hostile node's name).
    pub(crate) fn claim(&self, attack: Attack, target: &NodeName, number: u64, accuser: Option<&NodeName>) -> Bytes {
        let from = accuser.unwrap_or(&self.name).clone();
        let update = match attack {
            Attack::Confirm => Update::Confirm(Confirm { node: target.clone(), incarnation: number, from }),
            Attack::Suspect => Update::Suspect(Suspect { node: target.clone(), incarnation: number, from }),
            Attack::Alive => Update::Alive(Alive {
                node: NodeId::new(target.clone(), HOSTILE_ADDR),
                incarnation: number,
                metadata: Metadata::new(),
            }),
            Attack::User => Update::User(UserBroadcast {
                origin: target.clone(),
                key: UserKey::new(FORGED_KEY).expect("a valid key"),
                version: number,
                payload: b"forged by the hostile node".to_vec(),
            }),
            Attack::AliveFlood | Attack::PushPull => unreachable!("floods are built by their own functions"),
        };
        let packet = Packet { message: Message::Gossip, updates: vec![update] };
        let mut buf = BytesMut::new();
        self.codec.encode(&packet, &mut buf).expect("one small update fits a datagram");
        buf.freeze()
    }

    /// One gossip datagram of `mtu` bytes at most, full of `Alive`s of
    /// never-existing members; and how many it carries.
    pub(crate) fn alive_flood(&mut self, mtu: usize) -> (Bytes, u32) {
        let mut updates = Vec::new();
        loop {
            let ghost = self.ghost();
            updates.push(Update::Alive(Alive { node: ghost, incarnation: 0, metadata: Metadata::new() }));
            let packet = Packet { message: Message::Gossip, updates };
            if packet.encoded_len() + self.codec.overhead() > mtu || packet.updates.len() > 200 {
                // One too many: give its number back and stop.
                let mut updates = packet.updates;
                updates.pop();
                self.next_ghost = self.next_ghost.wrapping_sub(1);
                let packet = Packet { message: Message::Gossip, updates };
                let mut buf = BytesMut::new();
                self.codec.encode(&packet, &mut buf).expect("measured to fit");
                return (buf.freeze(), packet.updates.len() as u32);
            }
            updates = packet.updates;
        }
    }

    /// One push-pull request carrying the hostile node itself (first, as
    /// every sender is), `dead` (a member and the incarnation it is said
    /// to have died at) if given, and `names` never-existing members, all
    /// alive.
    pub(crate) fn push_pull(&mut self, names: u32, dead: Option<(NodeId, u64)>) -> Bytes {
        let alive =
            |node: NodeId| MemberState { node, incarnation: 0, status: MemberStatus::Alive, metadata: Metadata::new() };
        let mut members = Vec::with_capacity(names as usize + 2);
        members.push(alive(NodeId::new(self.name.clone(), HOSTILE_ADDR)));
        if let Some((node, incarnation)) = dead {
            members.push(MemberState { node, incarnation, status: MemberStatus::Dead, metadata: Metadata::new() });
        }
        for _ in 0..names {
            members.push(alive(self.ghost()));
        }
        let state = PushPull { join: false, members, app_state: Vec::new(), user_ltime: 0 };
        let mut buf = BytesMut::new();
        self.stream_codec
            .encode(&Packet::new(Message::PushPullRequest(state)), &mut buf)
            .expect("validated to fit the stream frame cap");
        buf.freeze()
    }
}

/// Encoded bytes of one push-pull member entry of a ghost, at most: what
/// validation uses to refuse a `names` count no stream frame can carry.
pub(crate) const GHOST_ENTRY_MAX: usize = 40;

/// Most members one forged push-pull may carry (the stream frame cap).
pub(crate) const MAX_PUSH_PULL_NAMES: u32 = (DEFAULT_MAX_STREAM_FRAME / GHOST_ENTRY_MAX) as u32;

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> FrameCodec {
        FrameCodec::new(ClusterLabel::new("sim").unwrap())
    }

    #[test]
    fn claims_decode_as_what_they_claim() {
        let f = Forger::new("sim").unwrap();
        let target: NodeName = "n5".parse().unwrap();
        let packet = codec().decode(&f.claim(Attack::Confirm, &target, u64::MAX, None)).unwrap();
        assert_eq!(packet.message, Message::Gossip);
        assert!(matches!(&packet.updates[..], [Update::Confirm(c)] if c.node == target && c.incarnation == u64::MAX));
        let packet = codec().decode(&f.claim(Attack::Alive, &target, 9, None)).unwrap();
        assert!(matches!(&packet.updates[..], [Update::Alive(a)] if a.node.addr == HOSTILE_ADDR && a.incarnation == 9));
        let packet = codec().decode(&f.claim(Attack::User, &target, u64::MAX, None)).unwrap();
        assert!(
            matches!(&packet.updates[..], [Update::User(u)] if u.version == u64::MAX && u.key.as_str() == FORGED_KEY)
        );
    }

    #[test]
    fn floods_fill_datagrams_with_fresh_names() {
        let mut f = Forger::new("sim").unwrap();
        let (a, n) = f.alive_flood(1400);
        assert!(a.len() <= 1400 && n > 20, "{} bytes, {n} names", a.len());
        let (_, m) = f.alive_flood(1400);
        assert_eq!(f.ghosts(), n + m);
        let packet = codec().decode(&a).unwrap();
        assert_eq!(packet.updates.len(), n as usize);
        assert_eq!(packet.updates[0].node_name(), &ghost_name(0));
        let big = f.push_pull(5_000, None);
        let stream = codec().with_max_frame_len(DEFAULT_MAX_STREAM_FRAME).unwrap();
        let Message::PushPullRequest(state) = stream.decode(&big).unwrap().message else { panic!("a push-pull") };
        assert_eq!(state.members.len(), 5_001);
        assert_eq!(state.members[0].node.addr, HOSTILE_ADDR);
        assert!(big.len() / 5_000 <= GHOST_ENTRY_MAX);
        let victim = NodeId::new("n5".parse().unwrap(), crate::node::node_addr(5));
        let view = f.push_pull(0, Some((victim.clone(), u64::MAX)));
        let Message::PushPullRequest(state) = stream.decode(&view).unwrap().message else { panic!("a push-pull") };
        assert_eq!(state.members.len(), 2);
        assert_eq!((&state.members[1].node, state.members[1].status), (&victim, MemberStatus::Dead));
    }

    #[test]
    fn ghost_addresses_are_not_node_addresses() {
        for k in [0, 1, 255, 65_535, 1 << 20] {
            assert_eq!(crate::node::node_index(ghost_addr(k)), None);
        }
        assert_eq!(crate::node::node_index(HOSTILE_ADDR), None);
        assert_ne!(ghost_addr(0), ghost_addr(1));
    }
}
