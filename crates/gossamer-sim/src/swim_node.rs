//! The adapter that lets the simulator drive `gossamer_core::Swim`.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use gossamer_core::{Config, Event, IdentityDirectory, Member, Output, StreamPing, Swim, Time, Timer, UserEvent};
use gossamer_wire::{ClusterLabel, FrameCodec, MemberStatus, NodeId, NodeName};
use rand_chacha::ChaCha8Rng;

use crate::error::SimError;
use crate::node::{NodeCounters, NodeFactory, NodeOutput, SimNode};

/// One gossamer-core node.
pub struct SwimNode(Swim<ChaCha8Rng>);

impl SwimNode {
    /// The wrapped state machine.
    pub fn swim(&self) -> &Swim<ChaCha8Rng> {
        &self.0
    }
}

/// What the simulator records of an application event: broadcast
/// deliveries (the simulator issues no queries and sets no push-pull
/// state, so the other kinds never occur and are skipped).
pub(crate) fn user_output<T>(event: UserEvent) -> Option<NodeOutput<T>> {
    match event {
        UserEvent::Broadcast { origin, key, version, payload } => {
            Some(NodeOutput::Delivered { origin, key: key.as_str().to_owned(), version, payload })
        }
        UserEvent::Query { .. }
        | UserEvent::QueryResponse { .. }
        | UserEvent::QueryDone { .. }
        | UserEvent::RemoteState { .. } => None,
    }
}

/// The simulator's form of a core's fallback ping.
pub(crate) fn stream_ping<T>(ping: StreamPing) -> NodeOutput<T> {
    NodeOutput::StreamPing { to: ping.to, request: ping.request, deadline: ping.deadline }
}

/// The counters the report sums, from the core's metrics.
pub(crate) fn counters(swim: &Swim<ChaCha8Rng>) -> NodeCounters {
    let m = swim.metrics();
    NodeCounters {
        probes: m.probes,
        suspicions_raised: m.suspicions,
        refutations: m.refutations,
        rejected: m.rejected,
        user_items_sent: m.user_items_sent,
        user_items_delivered: m.user_items_delivered,
        user_items_dropped: m.user_items_dropped,
        stream_ping_acks: m.stream_ping_acks,
    }
}

/// Members in the table of `swim`, whatever their status.
pub(crate) fn table_len(swim: &Swim<ChaCha8Rng>) -> usize {
    let m = swim.metrics();
    m.alive + m.suspect + m.dead + m.left
}

/// The view change an event reports.
pub(crate) fn view<T>(event: Event) -> NodeOutput<T> {
    let (m, status) = match event {
        Event::MemberJoined(m) | Event::MemberUpdated(m) => {
            let status = m.status;
            (m, status)
        }
        Event::MemberSuspected(m) => (m, MemberStatus::Suspect),
        Event::MemberFailed(m) => (m, MemberStatus::Dead),
        Event::MemberLeft(m) => (m, MemberStatus::Left),
        Event::MemberRecovered(m) => (m, MemberStatus::Alive),
    };
    NodeOutput::View { member: m.id.addr, name: m.id.name, status }
}

impl SimNode for SwimNode {
    type Timer = Timer;

    fn handle_datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]) {
        self.0.handle_datagram(now, from, bytes)
    }
    fn handle_push_pull_request(&mut self, now: Time, from: SocketAddr, frame: &[u8]) -> Option<Bytes> {
        // Fallback pings arrive on streams too.
        self.0.handle_stream_request(now, from, frame)
    }
    fn handle_stream_ping_response(&mut self, now: Time, from: SocketAddr, frame: &[u8]) {
        self.0.handle_stream_ping_response(now, from, frame)
    }
    fn stream_ping_failed(&mut self, now: Time, to: SocketAddr) {
        self.0.stream_ping_failed(now, to)
    }
    fn handle_push_pull_response(&mut self, now: Time, from: SocketAddr, frame: &[u8]) {
        self.0.handle_push_pull_response(now, from, frame)
    }
    fn push_pull_failed(&mut self, now: Time, to: SocketAddr) {
        self.0.push_pull_failed(now, to)
    }
    fn handle_timer(&mut self, now: Time, timer: Timer) {
        self.0.handle_timer(now, timer)
    }
    fn join(&mut self, now: Time, seeds: &[SocketAddr]) {
        self.0.join(now, seeds)
    }
    fn adopt_converged(&mut self, now: Time, members: &[Member]) -> Result<(), String> {
        // Inline names and empty metadata: the clones allocate nothing.
        // Every node knows this one too: nothing to gossip at the start.
        self.0.start_converged(now, members.iter().cloned());
        Ok(())
    }
    fn leave(&mut self, now: Time) {
        self.0.leave(now)
    }
    fn has_left(&self) -> bool {
        self.0.has_left()
    }
    fn counters(&self) -> NodeCounters {
        counters(&self.0)
    }
    fn broadcast(&mut self, now: Time, key: &str, payload: Vec<u8>) -> Result<u64, String> {
        self.0.broadcast(now, key, payload).map_err(|e| e.to_string())
    }
    fn member(&self, name: &NodeName) -> Option<Member> {
        self.0.member(name).cloned()
    }
    fn table_len(&self) -> usize {
        table_len(&self.0)
    }
    fn incarnation(&self) -> u64 {
        self.0.incarnation()
    }
    fn user_clock(&self) -> u64 {
        self.0.metrics().user_ltime
    }
    fn name_yielded(&self) -> bool {
        self.0.name_conflict().is_some()
    }
    fn poll_output(&mut self) -> Option<NodeOutput<Timer>> {
        loop {
            let Some(output) = self.0.poll_output() else {
                return self.0.poll_stream_ping().map(stream_ping);
            };
            return Some(match output {
                Output::Datagram { to, bytes } => NodeOutput::Datagram { to, bytes },
                Output::PushPull { to, request } => NodeOutput::PushPull { to, request },
                Output::SetTimer { at, timer } => NodeOutput::SetTimer { at, timer },
                Output::Event(e) => view(e),
                Output::User(event) => match user_output(event) {
                    Some(output) => output,
                    None => continue,
                },
            });
        }
    }
}

/// Builds [`SwimNode`]s from one validated [`Config`] and cluster label.
#[derive(Debug, Clone)]
pub struct SwimFactory {
    config: Config,
    codec: FrameCodec,
    /// One identity directory for every node this factory makes (issue
    /// #16): nodes that hold the same member state share its record, so a
    /// converged cluster of n nodes holds n member records, not n². `None`:
    /// each node gets its own (see [`SHARED_IDENTITIES_MIN_NODES`]).
    directory: Option<IdentityDirectory>,
}

/// Scenarios of at least this many nodes share one [`IdentityDirectory`]
/// among their simulated nodes; smaller ones give each node its own, as
/// real deployments have.
///
/// Why not always share: a member's slot in a table is its identity id in
/// the directory, so with one directory every simulated node numbers (and
/// so iterates, encodes its push-pull view in, and queues what a push-pull
/// taught it in) the members in the same order, where real nodes each
/// number them in the order they learned them. The protocol is the same
/// code either way, but those orders feed tie-breaks (which update is sent
/// first among equals), so a small scenario's run would differ from what
/// the same nodes do for real. Below this size memory is no concern (a
/// 1,000-node run's private tables take ~100 MB); above it the n² records
/// are what does not fit (10,000 converged nodes: 1.4 GB shared against
/// several GB private).
pub const SHARED_IDENTITIES_MIN_NODES: u32 = 2_000;

/// The directory a new node gets: the shared one, or a fresh one.
pub(crate) fn directory_for_node(shared: &Option<IdentityDirectory>) -> IdentityDirectory {
    shared.clone().unwrap_or_default()
}

impl SwimFactory {
    /// Checks `config` once, so that creating nodes later cannot fail on it.
    pub fn new(config: Config, label: &str) -> Result<Self, SimError> {
        config.validate()?;
        let label = ClusterLabel::new(label).map_err(|e| SimError::invalid(format!("cluster label: {e}")))?;
        Ok(Self { config, codec: FrameCodec::new(label), directory: Some(IdentityDirectory::new()) })
    }

    /// Whether the nodes made share one directory (the default) or each
    /// get their own (see [`SHARED_IDENTITIES_MIN_NODES`]).
    pub fn with_shared_identities(mut self, shared: bool) -> Self {
        self.directory = shared.then(IdentityDirectory::new);
        self
    }

    /// The configuration every node gets.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl NodeFactory for SwimFactory {
    type Node = SwimNode;

    fn probe_interval(&self) -> Duration {
        self.config.probe_interval
    }

    fn create(&mut self, id: NodeId, rng: ChaCha8Rng, now: Time) -> Result<SwimNode, SimError> {
        let directory = directory_for_node(&self.directory);
        Ok(SwimNode(Swim::with_directory(id, self.config.clone(), self.codec.clone(), rng, now, directory)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::node_id;
    use gossamer_wire::{MemberStatus, Metadata};
    use rand::SeedableRng;

    #[test]
    fn the_nodes_of_a_factory_share_one_directory() {
        const N: u32 = 50;
        let mut factory = SwimFactory::new(Config::lan(), "sim").unwrap();
        let members: Vec<Member> = (0..N)
            .map(|i| Member { id: node_id(i), incarnation: 0, status: MemberStatus::Alive, metadata: Metadata::new() })
            .collect();
        let nodes: Vec<SwimNode> = (0..N)
            .map(|i| {
                let mut node = factory.create(node_id(i), ChaCha8Rng::seed_from_u64(i.into()), Time::ZERO).unwrap();
                node.adopt_converged(Time::ZERO, &members).unwrap();
                node
            })
            .collect();
        assert!(nodes.iter().all(|n| n.swim().members().count() == N as usize));
        let directory = nodes[0].swim().directory();
        assert!(factory.directory.as_ref().is_some_and(|d| d.same_as(directory)));
        assert!(nodes.iter().all(|n| n.swim().directory().same_as(directory)));
        assert_eq!(directory.len(), N as usize, "one record per member, not per node and member");
        drop(nodes);
        assert!(factory.directory.as_ref().is_some_and(IdentityDirectory::is_empty), "records freed with the nodes");

        let mut private = SwimFactory::new(Config::lan(), "sim").unwrap().with_shared_identities(false);
        let a = private.create(node_id(0), ChaCha8Rng::seed_from_u64(0), Time::ZERO).unwrap();
        let b = private.create(node_id(1), ChaCha8Rng::seed_from_u64(1), Time::ZERO).unwrap();
        assert!(!a.swim().directory().same_as(b.swim().directory()), "each node its own directory");
    }
}
