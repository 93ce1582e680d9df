//! The adapter that lets the simulator drive `gossamer_core::Swim` together
//! with the partition-heal layer (`gossamer_heal::Heal`), wired the way a
//! real driver wires them: `core_adapter::pump` after every input to the
//! core and after every heal tick, then the core's outputs drained as usual.
//!
//! The heal layer draws no randomness and keeps its state in ordered maps,
//! so a run stays a pure function of the scenario's seed; its tick is one
//! more timer of the node, armed at [`Heal::next_deadline`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use gossamer_core::{Config, IdentityDirectory, Member, Output, Swim, Time, Timer};
use gossamer_heal::{core_adapter, Heal, HealConfig, HealHandler};
use gossamer_wire::{ClusterLabel, FrameCodec, MemberStatus, NodeId, NodeName};
use rand_chacha::ChaCha8Rng;

use crate::error::SimError;
use crate::node::{name_index, node_addr, HealNote, NodeCounters, NodeFactory, NodeOutput, SimNode};
use crate::swim_node::{counters, stream_ping, table_len, user_output, view, SwimFactory, SwimNode};

/// A timer of a node that may run the heal layer: one of the core's, or
/// the heal layer's tick.
#[derive(Clone, PartialEq, Eq)]
pub enum NodeTimer {
    /// A `gossamer-core` timer.
    Core(Timer),
    /// Time for [`Heal::tick`].
    HealTick,
}

impl fmt::Debug for NodeTimer {
    /// A core timer prints as itself, so traces of plain SWIM scenarios
    /// read as they did before the heal layer existed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeTimer::Core(t) => t.fmt(f),
            NodeTimer::HealTick => f.write_str("HealTick"),
        }
    }
}

/// The shortest wait between two heal ticks, so a deadline that stays in
/// the past can never make the simulation spin at one instant.
const MIN_TICK_GAP: Duration = Duration::from_millis(10);

/// Collects what the heal layer tells the application, as [`HealNote`]s
/// and removals for the simulator.
#[derive(Default)]
struct Recorder {
    notes: Vec<NodeOutput<NodeTimer>>,
    /// When this node saw each member turn dead or left (for the removal's
    /// `dead_for`).
    failed_at: BTreeMap<NodeName, Time>,
    now: Time,
}

fn indices(names: &BTreeSet<NodeName>) -> Vec<u32> {
    let mut v: Vec<u32> = names.iter().filter_map(name_index).collect();
    v.sort_unstable();
    v
}

impl HealHandler for Recorder {
    fn on_partition_detected(
        &mut self,
        ours: &BTreeSet<NodeName>,
        theirs: &BTreeSet<NodeName>,
        majority: Option<bool>,
    ) {
        self.notes.push(NodeOutput::Heal(HealNote::Detected {
            ours: indices(ours),
            theirs: indices(theirs),
            majority,
        }));
    }

    fn on_partition_healed(&mut self, winners: &BTreeSet<NodeName>, _: &BTreeSet<NodeName>, local_rejoined: bool) {
        self.notes.push(NodeOutput::Heal(HealNote::Healed { winners: indices(winners), rejoined: local_rejoined }));
    }

    fn on_member_removed(&mut self, name: &NodeName) {
        let dead_for = self.failed_at.remove(name).map(|t| self.now.saturating_sub(t));
        if let Some(index) = name_index(name) {
            self.notes.push(NodeOutput::Removed { member: node_addr(index), dead_for });
        }
    }
}

/// One gossamer-core node with the heal layer on top.
pub struct HealNode {
    swim: Swim<ChaCha8Rng>,
    heal: Heal,
    app: Recorder,
    out: VecDeque<NodeOutput<NodeTimer>>,
    /// When the pending heal tick is due, if one is armed.
    tick_at: Option<Time>,
}

impl HealNode {
    /// A node `id` running `config` (already adjusted by
    /// [`core_adapter::core_config`]) and the heal layer with `heal`.
    pub fn new(
        id: NodeId,
        config: Config,
        heal: HealConfig,
        codec: FrameCodec,
        rng: ChaCha8Rng,
        now: Time,
    ) -> Result<Self, SimError> {
        Self::with_directory(id, config, heal, codec, rng, now, IdentityDirectory::new())
    }

    /// As [`HealNode::new`], with the core's member records interned in
    /// `directory` (shared by all the nodes of a simulation, issue #16).
    pub fn with_directory(
        id: NodeId,
        config: Config,
        heal: HealConfig,
        codec: FrameCodec,
        rng: ChaCha8Rng,
        now: Time,
        directory: IdentityDirectory,
    ) -> Result<Self, SimError> {
        let heal = Heal::new(id.clone(), heal, now).map_err(|e| SimError::invalid(format!("heal: {e}")))?;
        let mut swim = Swim::with_directory(id, config, codec, rng, now, directory)?;
        swim.set_signals(true);
        Ok(Self { swim, heal, app: Recorder::default(), out: VecDeque::new(), tick_at: None })
    }

    /// The wrapped SWIM state machine.
    pub fn swim(&self) -> &Swim<ChaCha8Rng> {
        &self.swim
    }

    /// The wrapped heal layer.
    pub fn heal(&self) -> &Heal {
        &self.heal
    }

    /// What every input ends with: the core's signals into the heal layer,
    /// heal commands into the core, then the outputs of both queued for the
    /// simulator and the heal tick re-armed.
    fn settle(&mut self, now: Time) {
        self.app.now = now;
        core_adapter::pump(&mut self.heal, &mut self.swim, now, &mut self.app);
        self.out.extend(self.app.notes.drain(..));
        while let Some(output) = self.swim.poll_output() {
            self.out.push_back(match output {
                Output::Datagram { to, bytes } => NodeOutput::Datagram { to, bytes },
                Output::PushPull { to, request } => NodeOutput::PushPull { to, request },
                Output::SetTimer { at, timer } => NodeOutput::SetTimer { at, timer: NodeTimer::Core(timer) },
                Output::Event(e) => {
                    let output = view(e);
                    if let NodeOutput::View { name, status, .. } = &output {
                        if matches!(status, MemberStatus::Dead | MemberStatus::Left) {
                            self.app.failed_at.entry(name.clone()).or_insert(now);
                        } else {
                            self.app.failed_at.remove(name);
                        }
                    }
                    output
                }
                Output::User(event) => match user_output(event) {
                    Some(output) => output,
                    None => continue,
                },
            });
        }
        self.out.extend(self.swim.poll_stream_ping().map(stream_ping));
        let due = self.heal.next_deadline().max(now + MIN_TICK_GAP);
        if self.tick_at.is_none_or(|armed| due < armed) {
            self.tick_at = Some(due);
            self.out.push_back(NodeOutput::SetTimer { at: due, timer: NodeTimer::HealTick });
        }
    }
}

impl SimNode for HealNode {
    type Timer = NodeTimer;

    fn handle_datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]) {
        self.swim.handle_datagram(now, from, bytes);
        self.settle(now);
    }
    fn handle_push_pull_request(&mut self, now: Time, from: SocketAddr, frame: &[u8]) -> Option<Bytes> {
        // Fallback pings arrive on streams too.
        let response = self.swim.handle_stream_request(now, from, frame);
        self.settle(now);
        response
    }
    fn handle_stream_ping_response(&mut self, now: Time, from: SocketAddr, frame: &[u8]) {
        self.swim.handle_stream_ping_response(now, from, frame);
        self.settle(now);
    }
    fn stream_ping_failed(&mut self, now: Time, to: SocketAddr) {
        self.swim.stream_ping_failed(now, to);
        self.settle(now);
    }
    fn handle_push_pull_response(&mut self, now: Time, from: SocketAddr, frame: &[u8]) {
        self.swim.handle_push_pull_response(now, from, frame);
        self.settle(now);
    }
    fn push_pull_failed(&mut self, now: Time, to: SocketAddr) {
        self.swim.push_pull_failed(now, to);
        self.settle(now);
    }
    fn handle_timer(&mut self, now: Time, timer: NodeTimer) {
        match timer {
            NodeTimer::Core(timer) => self.swim.handle_timer(now, timer),
            NodeTimer::HealTick => {
                // A tick armed earlier than a later re-arm fires twice;
                // only the one matching the armed deadline ticks.
                if self.tick_at.is_none_or(|at| now < at) {
                    return;
                }
                self.tick_at = None;
                self.heal.tick(now);
            }
        }
        self.settle(now);
    }
    fn adopt_converged(&mut self, now: Time, members: &[Member]) -> Result<(), String> {
        self.swim.start_converged(now, members.iter().cloned());
        // Adopting emits no events: tell the heal layer what the core knows.
        core_adapter::observe_all(&mut self.heal, &self.swim, now);
        self.settle(now);
        Ok(())
    }
    fn join(&mut self, now: Time, seeds: &[SocketAddr]) {
        self.swim.join(now, seeds);
        self.settle(now);
    }
    fn leave(&mut self, now: Time) {
        self.swim.leave(now);
        self.settle(now);
    }
    fn has_left(&self) -> bool {
        self.swim.has_left()
    }
    fn counters(&self) -> NodeCounters {
        counters(&self.swim)
    }
    fn broadcast(&mut self, now: Time, key: &str, payload: Vec<u8>) -> Result<u64, String> {
        let version = self.swim.broadcast(now, key, payload).map_err(|e| e.to_string());
        self.settle(now);
        version
    }
    fn member(&self, name: &NodeName) -> Option<Member> {
        self.swim.member(name).cloned()
    }
    fn table_len(&self) -> usize {
        table_len(&self.swim)
    }
    fn incarnation(&self) -> u64 {
        self.swim.incarnation()
    }
    fn user_clock(&self) -> u64 {
        self.swim.metrics().user_ltime
    }
    fn name_yielded(&self) -> bool {
        self.swim.name_conflict().is_some()
    }
    fn poll_output(&mut self) -> Option<NodeOutput<NodeTimer>> {
        self.out.pop_front()
    }
}

/// Builds [`HealNode`]s: the core's config with the heal layer's autoclean
/// applied ([`core_adapter::core_config`]), and one validated
/// [`HealConfig`].
#[derive(Debug, Clone)]
pub struct HealFactory {
    config: Config,
    heal: HealConfig,
    codec: FrameCodec,
    /// One identity directory shared by every node made (issue #16), or
    /// `None`: each node its own (see [`SHARED_IDENTITIES_MIN_NODES`]).
    ///
    /// [`SHARED_IDENTITIES_MIN_NODES`]: crate::swim_node::SHARED_IDENTITIES_MIN_NODES
    directory: Option<IdentityDirectory>,
}

impl HealFactory {
    /// Checks both configurations once, so that creating nodes later
    /// cannot fail on them.
    pub fn new(base: Config, heal: HealConfig, label: &str) -> Result<Self, SimError> {
        heal.validate().map_err(|e| SimError::invalid(format!("heal: {e}")))?;
        let config = core_adapter::core_config(&heal, base);
        config.validate()?;
        let label = ClusterLabel::new(label).map_err(|e| SimError::invalid(format!("cluster label: {e}")))?;
        Ok(Self { config, heal, codec: FrameCodec::new(label), directory: Some(IdentityDirectory::new()) })
    }

    /// Whether the nodes made share one directory (the default) or each
    /// get their own (see [`SwimFactory::with_shared_identities`]).
    pub fn with_shared_identities(mut self, shared: bool) -> Self {
        self.directory = shared.then(IdentityDirectory::new);
        self
    }

    /// The core configuration every node gets (autoclean applied).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The heal configuration every node gets.
    pub fn heal_config(&self) -> &HealConfig {
        &self.heal
    }
}

impl NodeFactory for HealFactory {
    type Node = HealNode;

    fn probe_interval(&self) -> Duration {
        self.config.probe_interval
    }

    fn create(&mut self, id: NodeId, rng: ChaCha8Rng, now: Time) -> Result<HealNode, SimError> {
        let directory = crate::swim_node::directory_for_node(&self.directory);
        HealNode::with_directory(id, self.config.clone(), self.heal.clone(), self.codec.clone(), rng, now, directory)
    }
}

/// The node a scenario asks for: plain SWIM, or SWIM with the heal layer
/// when the scenario has an enabled `[heal]` section.
// Plain SWIM nodes stay inline, exactly as large runs (10,000 nodes) kept
// them before the heal layer existed; the rarer heal node is boxed so it
// does not grow every slot.
#[allow(clippy::large_enum_variant)]
pub enum ScenarioNode {
    /// gossamer-core alone.
    Swim(SwimNode),
    /// gossamer-core and gossamer-heal.
    Heal(Box<HealNode>),
}

macro_rules! each {
    ($self:expr, $n:ident => $body:expr) => {
        match $self {
            ScenarioNode::Swim($n) => $body,
            ScenarioNode::Heal($n) => $body,
        }
    };
}

fn wrap(output: NodeOutput<Timer>) -> NodeOutput<NodeTimer> {
    match output {
        NodeOutput::Datagram { to, bytes } => NodeOutput::Datagram { to, bytes },
        NodeOutput::PushPull { to, request } => NodeOutput::PushPull { to, request },
        NodeOutput::StreamPing { to, request, deadline } => NodeOutput::StreamPing { to, request, deadline },
        NodeOutput::SetTimer { at, timer } => NodeOutput::SetTimer { at, timer: NodeTimer::Core(timer) },
        NodeOutput::View { member, name, status } => NodeOutput::View { member, name, status },
        NodeOutput::Removed { member, dead_for } => NodeOutput::Removed { member, dead_for },
        NodeOutput::Heal(note) => NodeOutput::Heal(note),
        NodeOutput::Delivered { origin, key, version, payload } => {
            NodeOutput::Delivered { origin, key, version, payload }
        }
    }
}

impl SimNode for ScenarioNode {
    type Timer = NodeTimer;

    fn handle_datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]) {
        each!(self, n => n.handle_datagram(now, from, bytes))
    }
    fn handle_push_pull_request(&mut self, now: Time, from: SocketAddr, frame: &[u8]) -> Option<Bytes> {
        each!(self, n => n.handle_push_pull_request(now, from, frame))
    }
    fn handle_push_pull_response(&mut self, now: Time, from: SocketAddr, frame: &[u8]) {
        each!(self, n => n.handle_push_pull_response(now, from, frame))
    }
    fn push_pull_failed(&mut self, now: Time, to: SocketAddr) {
        each!(self, n => n.push_pull_failed(now, to))
    }
    fn handle_stream_ping_response(&mut self, now: Time, from: SocketAddr, frame: &[u8]) {
        each!(self, n => n.handle_stream_ping_response(now, from, frame))
    }
    fn stream_ping_failed(&mut self, now: Time, to: SocketAddr) {
        each!(self, n => n.stream_ping_failed(now, to))
    }
    fn handle_timer(&mut self, now: Time, timer: NodeTimer) {
        match (self, timer) {
            (ScenarioNode::Swim(n), NodeTimer::Core(t)) => n.handle_timer(now, t),
            (ScenarioNode::Swim(_), NodeTimer::HealTick) => {}
            (ScenarioNode::Heal(n), t) => n.handle_timer(now, t),
        }
    }
    fn join(&mut self, now: Time, seeds: &[SocketAddr]) {
        each!(self, n => n.join(now, seeds))
    }
    fn adopt_converged(&mut self, now: Time, members: &[Member]) -> Result<(), String> {
        each!(self, n => n.adopt_converged(now, members))
    }
    fn leave(&mut self, now: Time) {
        each!(self, n => n.leave(now))
    }
    fn has_left(&self) -> bool {
        each!(self, n => n.has_left())
    }
    fn counters(&self) -> NodeCounters {
        each!(self, n => n.counters())
    }
    fn broadcast(&mut self, now: Time, key: &str, payload: Vec<u8>) -> Result<u64, String> {
        each!(self, n => n.broadcast(now, key, payload))
    }
    fn member(&self, name: &NodeName) -> Option<Member> {
        each!(self, n => n.member(name))
    }
    fn table_len(&self) -> usize {
        each!(self, n => n.table_len())
    }
    fn incarnation(&self) -> u64 {
        each!(self, n => n.incarnation())
    }
    fn user_clock(&self) -> u64 {
        each!(self, n => n.user_clock())
    }
    fn name_yielded(&self) -> bool {
        each!(self, n => n.name_yielded())
    }
    fn poll_output(&mut self) -> Option<NodeOutput<NodeTimer>> {
        match self {
            ScenarioNode::Swim(n) => n.poll_output().map(wrap),
            ScenarioNode::Heal(n) => n.poll_output(),
        }
    }
}

/// Builds the nodes a scenario asks for ([`ScenarioNode`]); what
/// [`crate::Simulation::new`] uses.
#[derive(Debug, Clone)]
pub enum ScenarioFactory {
    /// Plain SWIM.
    Swim(SwimFactory),
    /// SWIM with the heal layer.
    Heal(HealFactory),
}

impl NodeFactory for ScenarioFactory {
    type Node = ScenarioNode;

    fn probe_interval(&self) -> Duration {
        match self {
            ScenarioFactory::Swim(f) => f.probe_interval(),
            ScenarioFactory::Heal(f) => f.probe_interval(),
        }
    }

    fn create(&mut self, id: NodeId, rng: ChaCha8Rng, now: Time) -> Result<ScenarioNode, SimError> {
        Ok(match self {
            ScenarioFactory::Swim(f) => ScenarioNode::Swim(f.create(id, rng, now)?),
            ScenarioFactory::Heal(f) => ScenarioNode::Heal(Box::new(f.create(id, rng, now)?)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::node_id;
    use rand::SeedableRng;

    fn heal_config() -> HealConfig {
        HealConfig { probe_interval: Duration::from_secs(5), ..HealConfig::default() }
    }

    #[test]
    fn a_heal_node_arms_its_tick_and_joins() {
        let mut factory = HealFactory::new(Config::lan(), heal_config(), "sim").unwrap();
        assert_eq!(factory.config().dead_retention, Duration::from_secs(86_400), "autoclean's default 24 h");
        let mut node = factory.create(node_id(1), ChaCha8Rng::seed_from_u64(1), Time::ZERO).unwrap();
        node.join(Time::ZERO, &[node_addr(0)]);
        let outputs: Vec<_> = std::iter::from_fn(|| node.poll_output()).collect();
        let ticks: Vec<Time> = outputs
            .iter()
            .filter_map(|o| match o {
                NodeOutput::SetTimer { at, timer: NodeTimer::HealTick } => Some(*at),
                _ => None,
            })
            .collect();
        assert_eq!(ticks.len(), 1, "{outputs:?}");
        assert!(ticks[0] <= Duration::from_secs(5), "first probe within one heal probe interval");
        assert!(outputs.iter().any(|o| matches!(o, NodeOutput::PushPull { to, .. } if *to == node_addr(0))));
        // Core timers print as themselves, so plain traces read as before.
        let core = outputs
            .iter()
            .find_map(|o| match o {
                NodeOutput::SetTimer { timer: NodeTimer::Core(t), .. } => Some(t.clone()),
                _ => None,
            })
            .expect("the core arms its timers");
        assert_eq!(format!("{:?}", NodeTimer::Core(core.clone())), format!("{core:?}"));
        assert_eq!(format!("{:?}", NodeTimer::HealTick), "HealTick");
        // A stale tick (before the armed deadline) does nothing and re-arms nothing.
        node.handle_timer(Time::ZERO, NodeTimer::HealTick);
        assert!(node.poll_output().is_none());
        node.handle_timer(ticks[0], NodeTimer::HealTick);
        assert!(
            std::iter::from_fn(|| node.poll_output())
                .any(|o| matches!(o, NodeOutput::SetTimer { timer: NodeTimer::HealTick, at } if at > ticks[0])),
            "the tick re-arms itself"
        );
    }

    #[test]
    fn bad_heal_config_is_refused_up_front() {
        let bad = HealConfig { backoff_factor: 0, ..HealConfig::default() };
        let err = HealFactory::new(Config::lan(), bad, "sim").unwrap_err();
        assert!(err.to_string().contains("backoff_factor"), "{err}");
    }
}
