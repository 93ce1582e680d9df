//! The partition-heal layer ([`gossamer_heal`]) inside the runtime: the
//! driver owns one [`Heal`] next to its `Swim`, pumps the core's signals
//! into it after every input and ticks it at its deadline; heal events go
//! out on their own broadcast channel ([`crate::Node::subscribe_heal`]) and
//! to [`crate::Hooks::on_partition_healed`].

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use gossamer_core::{Swim, Time};
use gossamer_heal::{core_adapter, Heal, HealEvent, HealHandler, CLAIM_KEY};
use gossamer_wire::{Metadata, NodeName};
use rand_chacha::ChaCha8Rng;
use tokio::sync::broadcast;

use crate::hooks::Hooks;
use crate::lazy::LazyBroadcast;

/// Shortest wait between two heal ticks, so that a deadline already due
/// cannot spin the driver.
const MIN_TICK_GAP: Duration = Duration::from_millis(10);

/// The heal state the driver owns when [`crate::NodeConfig::heal`] is set.
pub(crate) struct HealLayer {
    heal: Heal,
    sink: Sink,
}

impl HealLayer {
    pub(crate) fn new(heal: Heal, local: NodeName, events: Arc<LazyBroadcast<HealEvent>>) -> Self {
        Self { heal, sink: Sink { local, events } }
    }

    /// Feeds the core's pending signals to the heal layer and applies its
    /// commands to the core; call after every input to the core.
    pub(crate) fn pump(&mut self, swim: &mut Swim<ChaCha8Rng>, now: Time) {
        core_adapter::pump(&mut self.heal, swim, now, &mut self.sink);
    }

    /// Time passing: call when [`HealLayer::deadline`] is due, then pump.
    pub(crate) fn tick(&mut self, swim: &mut Swim<ChaCha8Rng>, now: Time) {
        self.heal.tick(now);
        self.pump(swim, now);
    }

    /// The heal layer's counters, for [`crate::NodeMetrics::heal`].
    pub(crate) fn metrics(&self) -> gossamer_heal::HealMetrics {
        self.heal.metrics()
    }

    /// When the heal layer next wants [`HealLayer::tick`] (never sooner
    /// than a few milliseconds from `now`).
    pub(crate) fn deadline(&self, now: Time) -> Time {
        self.heal.next_deadline().max(now + MIN_TICK_GAP)
    }
}

/// Keeps the heal layer's side claim in metadata the application replaces:
/// `set_metadata` must not erase what the other nodes need to decide.
pub(crate) fn keep_claim(swim: &Swim<ChaCha8Rng>, metadata: &mut Metadata) {
    if metadata.get(CLAIM_KEY).is_some() {
        return;
    }
    let local = &swim.local().name;
    let Some(claim) = swim.member(local).and_then(|m| m.metadata.get(CLAIM_KEY)).map(<[u8]>::to_vec) else {
        return;
    };
    if let Err(error) = metadata.insert(CLAIM_KEY, claim) {
        tracing::warn!(%error, "heal side claim dropped: the new metadata leaves no room for it");
    }
}

/// Turns heal callbacks back into [`HealEvent`]s on the broadcast channel.
struct Sink {
    local: NodeName,
    events: Arc<LazyBroadcast<HealEvent>>,
}

impl Sink {
    fn send(&self, event: HealEvent) {
        // No subscriber is fine: the event is simply not wanted.
        self.events.send(event);
    }
}

impl HealHandler for Sink {
    fn on_partition_detected(
        &mut self,
        ours: &BTreeSet<NodeName>,
        theirs: &BTreeSet<NodeName>,
        majority: Option<bool>,
    ) {
        tracing::warn!(?ours, ?theirs, ?majority, "partition detected");
        self.send(HealEvent::PartitionDetected { ours: ours.clone(), theirs: theirs.clone(), majority });
    }

    fn on_partition_healed(&mut self, winners: &BTreeSet<NodeName>, rejoined: &BTreeSet<NodeName>, local: bool) {
        tracing::warn!(?winners, ?rejoined, rejoining = local, node = %self.local, "partition healed");
        self.send(HealEvent::PartitionHealed { winners: winners.clone(), rejoined: rejoined.clone() });
    }

    fn on_member_removed(&mut self, name: &NodeName) {
        tracing::info!(member = %name, "member removed (autoclean)");
        self.send(HealEvent::MemberRemoved(name.clone()));
    }
}

/// Runs `hooks` on every heal event until the node stops.
pub(crate) async fn run_hooks(hooks: Arc<dyn Hooks>, mut events: broadcast::Receiver<HealEvent>) {
    loop {
        match events.recv().await {
            Ok(HealEvent::PartitionHealed { winners, rejoined }) => hooks.on_partition_healed(&winners, &rejoined),
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "hooks fell behind the heal events; some calls were skipped");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Heal events of one node ([`crate::Node::subscribe_heal`]). Nothing ever
/// arrives when the node runs without [`crate::NodeConfig::heal`].
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use gossamer_net::{HealConfig, HealEvent, Node, NodeConfig, Preset};
/// let mut config = NodeConfig::new("a@127.0.0.1", "127.0.0.1:7946".parse()?, Preset::Lan)?;
/// config.heal = Some(HealConfig::default());
/// let node = Node::start(config).await?;
/// let mut heals = node.subscribe_heal();
/// while let Some(event) = heals.recv().await {
///     if let HealEvent::PartitionHealed { winners, rejoined } = event {
///         if rejoined.contains(&node.id().name) {
///             println!("resync from {winners:?}");
///         }
///     }
/// }
/// # Ok(()) }
/// ```
pub struct HealSubscription {
    pub(crate) rx: broadcast::Receiver<HealEvent>,
}

impl HealSubscription {
    /// The next heal event; `None` once the node has stopped.
    pub async fn recv(&mut self) -> Option<HealEvent> {
        loop {
            match self.rx.recv().await {
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "heal subscriber fell behind; events skipped");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next heal event if one is already waiting (never blocks).
    pub fn try_recv(&mut self) -> Option<HealEvent> {
        loop {
            match self.rx.try_recv() {
                Ok(event) => return Some(event),
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "heal subscriber fell behind; events skipped");
                }
                Err(_) => return None,
            }
        }
    }
}
