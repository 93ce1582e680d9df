//! What the simulator needs from a node, so that the engine can be tested
//! on its own (with a trivial node) and can later drive other state
//! machines (gossamer-heal) the same way it drives gossamer-core.

use std::fmt::Debug;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use gossamer_core::{Member, Time};
use gossamer_wire::{MemberStatus, NodeId, NodeName};
use rand_chacha::ChaCha8Rng;

use crate::error::SimError;

/// The port every simulated node listens on.
pub const SIM_PORT: u16 = 7946;

/// Something a node asks the simulator to do or to record.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeOutput<T> {
    /// Send one datagram.
    Datagram {
        /// Destination.
        to: SocketAddr,
        /// The encoded frame.
        bytes: Bytes,
    },
    /// Start a reliable request/response exchange (push-pull).
    PushPull {
        /// Destination.
        to: SocketAddr,
        /// The request frame.
        request: Bytes,
    },
    /// A fallback ping over a reliable stream (`gossamer_core::StreamPing`):
    /// like a push-pull exchange, but the answer goes to
    /// [`SimNode::handle_stream_ping_response`] and it fails at `deadline`.
    StreamPing {
        /// Destination.
        to: SocketAddr,
        /// The request frame.
        request: Bytes,
        /// Give up then.
        deadline: Time,
    },
    /// Wake the node with `timer` at `at`.
    SetTimer {
        /// When.
        at: Time,
        /// What to hand back.
        timer: T,
    },
    /// The node's view of `member` changed to `status`.
    View {
        /// The member's address.
        member: SocketAddr,
        /// The member's name: the simulator tells a member that another
        /// address took over (a forged `Alive`, a node started under a
        /// name already taken) from one that merely changed status.
        name: NodeName,
        /// What the node now believes.
        status: MemberStatus,
    },
    /// The node forgot `member` (autoclean: dead for longer than its
    /// retention). If it comes back it joins as a new member.
    Removed {
        /// The member's address.
        member: SocketAddr,
        /// How long this node had held it dead (or left), if it knows.
        dead_for: Option<Duration>,
    },
    /// The heal layer reported a partition or a decision.
    Heal(HealNote),
    /// The node delivered another member's application broadcast
    /// (`UserEvent::Broadcast`) to its application.
    Delivered {
        /// The member that broadcast it.
        origin: NodeName,
        /// Its key.
        key: String,
        /// Its version (per origin).
        version: u64,
        /// The application's bytes.
        payload: Bytes,
    },
}

/// What a node's heal layer (gossamer-heal) reported, for the report and
/// the heal assertions. Members are node indices, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealNote {
    /// `PartitionDetected`: sides seeing each other again.
    Detected {
        /// Our side, this node included.
        ours: Vec<u32>,
        /// The other side as known so far.
        theirs: Vec<u32>,
        /// Whether our side is the majority, if computed.
        majority: Option<bool>,
    },
    /// `PartitionHealed`: the decision.
    Healed {
        /// The winning side, as far as this node knows it.
        winners: Vec<u32>,
        /// This node is on a losing side and rejoined the winners.
        rejoined: bool,
    },
}

/// Protocol counters a node may expose; the report sums them over every
/// node that ran (collected when a node stops and at the end).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct NodeCounters {
    /// Probes sent.
    pub probes: u64,
    /// Suspicions this node raised itself (not learned through gossip).
    pub suspicions_raised: u64,
    /// Suspicions of itself this node refuted.
    pub refutations: u64,
    /// Frames refused (bad label, checksum, malformed...).
    pub rejected: u64,
    /// Application items (broadcasts) piggybacked on outgoing packets.
    pub user_items_sent: u64,
    /// Application items delivered to the application.
    pub user_items_delivered: u64,
    /// Application items dropped because their queue was full.
    pub user_items_dropped: u64,
    /// Probes whose only ack came over the stream fallback (a suspicion
    /// the fallback saved).
    pub stream_ping_acks: u64,
}

impl std::ops::AddAssign for NodeCounters {
    fn add_assign(&mut self, o: Self) {
        self.probes += o.probes;
        self.suspicions_raised += o.suspicions_raised;
        self.refutations += o.refutations;
        self.rejected += o.rejected;
        self.user_items_sent += o.user_items_sent;
        self.user_items_delivered += o.user_items_delivered;
        self.user_items_dropped += o.user_items_dropped;
        self.stream_ping_acks += o.stream_ping_acks;
    }
}

/// A node driven by the simulator: a sans-I/O state machine.
pub trait SimNode {
    /// The node's opaque timer token.
    type Timer: Clone + Debug;

    /// A datagram arrived.
    fn handle_datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]);
    /// A peer's stream request arrived; the response frame, if any.
    fn handle_push_pull_request(&mut self, now: Time, from: SocketAddr, frame: &[u8]) -> Option<Bytes>;
    /// The response to this node's stream request arrived.
    fn handle_push_pull_response(&mut self, now: Time, from: SocketAddr, frame: &[u8]);
    /// This node's stream request failed.
    fn push_pull_failed(&mut self, now: Time, to: SocketAddr);
    /// The answer to this node's [`NodeOutput::StreamPing`] arrived (nodes
    /// that send none ignore it).
    fn handle_stream_ping_response(&mut self, now: Time, from: SocketAddr, frame: &[u8]) {
        let _ = (now, from, frame);
    }
    /// This node's [`NodeOutput::StreamPing`] failed.
    fn stream_ping_failed(&mut self, now: Time, to: SocketAddr) {
        let _ = (now, to);
    }
    /// A timer is due.
    fn handle_timer(&mut self, now: Time, timer: Self::Timer);
    /// Join a cluster through `seeds`.
    fn join(&mut self, now: Time, seeds: &[SocketAddr]);
    /// Start as a member of a cluster that converged long ago
    /// (`start = "converged"`): know every node of `members` (this node
    /// among them, skipped) as alive, as after a completed join, without
    /// contacting anyone. Nodes that cannot start this way refuse, and the
    /// run reports the error.
    fn adopt_converged(&mut self, now: Time, members: &[Member]) -> Result<(), String> {
        let _ = (now, members);
        Err("this node cannot start inside a converged cluster".to_owned())
    }
    /// Start a graceful leave.
    fn leave(&mut self, now: Time);
    /// The leave has had its chance to spread.
    fn has_left(&self) -> bool;
    /// The next output, if any.
    fn poll_output(&mut self) -> Option<NodeOutput<Self::Timer>>;
    /// Protocol counters, if the node keeps any.
    fn counters(&self) -> NodeCounters {
        NodeCounters::default()
    }
    /// The application broadcasts `payload` under `key` to every member;
    /// the broadcast's version, or why it was refused. Nodes without
    /// application data refuse every broadcast.
    fn broadcast(&mut self, now: Time, key: &str, payload: Vec<u8>) -> Result<u64, String> {
        let _ = (now, key, payload);
        Err("this node does not support broadcasts".to_owned())
    }
    /// What this node's member table holds about the member named `name`
    /// (this node's own entry included), for the hostile-peer assertions
    /// (`alive_at_end`): where it thinks the member is, not just whether.
    /// Nodes without a table know nothing.
    fn member(&self, name: &NodeName) -> Option<Member> {
        let _ = name;
        None
    }
    /// Members in this node's table, itself included, whatever their
    /// status (`members_at_most`: a forged flood must not grow it past a
    /// cap).
    fn table_len(&self) -> usize {
        0
    }
    /// This node's own incarnation (`incarnation_at_most`, and the
    /// hostile node's `known+N` numbers).
    fn incarnation(&self) -> u64 {
        0
    }
    /// This node's Lamport clock of application items (the hostile
    /// node's `known+N` user-item times).
    fn user_clock(&self) -> u64 {
        0
    }
    /// This node gave its name up: it was joining and learnt that an
    /// established member holds the name at another address. The
    /// simulator then stops it, as the runtime refuses to start.
    fn name_yielded(&self) -> bool {
        false
    }
}

/// Builds nodes: at start, on joins and on restarts (a fresh state).
pub trait NodeFactory {
    /// The node type.
    type Node: SimNode;
    /// The protocol period, the unit of most report figures.
    fn probe_interval(&self) -> Duration;
    /// A fresh node with this identity and its own RNG.
    fn create(&mut self, id: NodeId, rng: ChaCha8Rng, now: Time) -> Result<Self::Node, SimError>;
}

/// The address of node `index`: 127.x.y.z (loopback only, never a real
/// target), port [`SIM_PORT`].
///
/// ```
/// use gossamer_sim::{node_addr, node_index};
/// let a = node_addr(70_000);
/// assert_eq!(a.to_string(), "127.2.17.112:7946");
/// assert_eq!(node_index(a), Some(70_000));
/// ```
pub fn node_addr(index: u32) -> SocketAddr {
    let ip = Ipv4Addr::new(127, 1 + (index >> 16) as u8, (index >> 8) as u8, index as u8);
    SocketAddr::new(IpAddr::V4(ip), SIM_PORT)
}

/// The node index behind a simulated address.
pub fn node_index(addr: SocketAddr) -> Option<u32> {
    match addr {
        SocketAddr::V4(a) if a.port() == SIM_PORT => {
            let o = a.ip().octets();
            if o[0] != 127 || o[1] == 0 {
                return None;
            }
            Some(((o[1] as u32 - 1) << 16) | ((o[2] as u32) << 8) | o[3] as u32)
        }
        _ => None,
    }
}

/// Most nodes a run may have (the address space of [`node_addr`]).
pub const MAX_NODES: u32 = 254 << 16;

/// The node index behind a simulated node's name (`n<index>`, as
/// [`node_id`] names it); `None` for any other name.
///
/// ```
/// use gossamer_sim::{name_index, node_id};
/// assert_eq!(name_index(&node_id(42).name), Some(42));
/// assert_eq!(name_index(&"n042".parse().unwrap()), None);
/// ```
pub fn name_index(name: &NodeName) -> Option<u32> {
    let digits = name.as_str().strip_prefix('n')?;
    // Canonical digits only ("n042" is not node 42): no allocation, this
    // runs on every view change of a hostile scenario.
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let index: u32 = digits.parse().ok()?;
    (index < MAX_NODES).then_some(index)
}

/// The identity of node `index`.
pub fn node_id(index: u32) -> NodeId {
    let name: NodeName = format!("n{index}").parse().expect("n<digits> is a valid node name");
    NodeId::new(name, node_addr(index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip() {
        for i in [0, 1, 255, 256, 65_535, 65_536, 99_999, MAX_NODES - 1] {
            assert_eq!(node_index(node_addr(i)), Some(i));
            assert!(node_addr(i).ip().is_loopback());
        }
        assert_eq!(node_index("127.0.0.1:7946".parse().unwrap()), None);
        assert_eq!(node_index("127.1.0.1:80".parse().unwrap()), None);
        assert_eq!(node_id(5).name.as_str(), "n5");
    }
}
