//! The embedding API: a handle to a running node.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use gossamer_core::{Event, Member, Swim};
use gossamer_heal::{core_adapter, Heal, HealEvent};
use gossamer_wire::{ClusterLabel, FrameCodec, Keyring, Metadata, NodeId, NodeName};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use tokio::sync::{broadcast, mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::Stream;
use tracing::Instrument;

use crate::config::NodeConfig;
use crate::driver::{Command, Driver, Multicast, RefusalLog, StreamLimits};
use crate::error::{NodeStopped, StartError};
use crate::fault::Blocklist;
use crate::heal::{HealLayer, HealSubscription};
use crate::metrics::{NetCounters, NodeMetrics};
use crate::multicast::{self, JoinLimiter};
use crate::transport::{bind_pair, with_port};

/// A running gossamer node. Cheap to clone; the node stops when
/// [`Node::shutdown`] is called or when the last handle is dropped.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use gossamer_net::{Node, NodeConfig, Preset};
/// let mut config = NodeConfig::new("a@127.0.0.1", "127.0.0.1:7946".parse()?, Preset::Lan)?;
/// config.seeds = vec!["127.0.0.1:7947".parse()?];
/// let node = Node::start(config).await?;
/// let mut events = node.subscribe();
/// while let Some(event) = events.recv().await {
///     println!("{event:?}");
/// }
/// node.leave().await?;
/// node.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    id: NodeId,
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<Event>,
    heal_events: broadcast::Sender<HealEvent>,
    /// Shared with the driver; only `block`/`unblock_all` write it.
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    blocked: Blocklist,
    task: Mutex<Option<JoinHandle<()>>>,
    leave_timeout: Duration,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("id", &self.inner.id).finish_non_exhaustive()
    }
}

impl Node {
    /// Binds the sockets, starts the protocol and joins the seeds.
    pub async fn start(config: NodeConfig) -> Result<Node, StartError> {
        config.validate()?;
        let (udp, tcp) = bind_pair(config.bind, config.sockets)?;
        let bound = udp.local_addr().map_err(|source| StartError::Bind { what: "udp", addr: config.bind, source })?;
        let advertise = match config.advertise {
            Some(adv) if adv.port() == 0 => with_port(adv, bound.port()),
            Some(adv) => adv,
            None => bound,
        };
        let id = NodeId::new(config.name.clone(), advertise);

        let mut rng = ChaCha8Rng::try_from_os_rng().map_err(|e| StartError::Entropy(e.to_string()))?;
        let mut codec = FrameCodec::new(ClusterLabel::new(&config.cluster)?);
        if let Some(secret) = &config.secret {
            codec = codec.with_keyring(Arc::new(Keyring::new(secret.clone(), &mut rng)));
        }
        // The core gets the datagram codec (it derives its own stream codec);
        // the runtime caps what it reads from streams with `max_stream_frame`.
        let stream_codec = codec.clone().with_max_frame_len(config.max_stream_frame)?;
        let swim_rng = ChaCha8Rng::from_rng(&mut rng);
        let protocol = match &config.heal {
            Some(heal) => core_adapter::core_config(heal, config.protocol.clone()),
            None => config.protocol.clone(),
        };
        let mut swim = Swim::new(id.clone(), protocol, codec.clone(), swim_rng, Duration::ZERO)?;
        let (heal_events, _) = broadcast::channel(config.event_capacity);
        let heal = match &config.heal {
            Some(heal_config) => {
                let heal = Heal::new(id.clone(), heal_config.clone(), Duration::ZERO)
                    .map_err(|e| StartError::Config { field: "heal", reason: e.to_string() })?;
                // Before any input, so the heal layer sees every change.
                swim.set_signals(true);
                tracing::info!("partition heal on");
                Some(HealLayer::new(heal, config.name.clone(), heal_events.clone()))
            }
            None => None,
        };

        let multicast = match &config.multicast {
            Some(mcast) => {
                let interface = match (mcast.interface, advertise.ip()) {
                    (Some(ip), _) => ip,
                    (None, IpAddr::V4(ip)) => ip,
                    (None, IpAddr::V6(_)) => {
                        return Err(StartError::Config {
                            field: "multicast.interface",
                            reason: "required when the node advertises an IPv6 address".into(),
                        })
                    }
                };
                let sockets = multicast::open(mcast, interface).map_err(StartError::Multicast)?;
                tracing::info!(group = %sockets.target, %interface, "multicast discovery on");
                Some(Multicast {
                    sockets,
                    interval: mcast.interval,
                    limiter: JoinLimiter::new(mcast.interval * 3),
                    codec: codec.clone(),
                })
            }
            None => None,
        };

        let start = tokio::time::Instant::now();
        if !config.metadata.is_empty() {
            swim.set_metadata(Duration::ZERO, config.metadata.clone());
        }
        if !config.seeds.is_empty() {
            swim.join(Duration::ZERO, &config.seeds);
        }

        let (events, _) = broadcast::channel(config.event_capacity);
        for hooks in &config.hooks {
            tokio::spawn(crate::hooks::run(config.name.clone(), hooks.clone(), events.subscribe()));
            if heal.is_some() {
                tokio::spawn(crate::heal::run_hooks(hooks.clone(), heal_events.subscribe()));
            }
        }
        let (commands, commands_rx) = mpsc::channel(64);
        let blocked = Blocklist::default();
        let driver = Driver {
            swim,
            start,
            udp,
            tcp,
            multicast,
            streams: StreamLimits {
                codec: stream_codec,
                timeout: config.stream_timeout,
                inbound: Arc::new(Semaphore::new(config.max_inbound_streams)),
                outbound: Arc::new(Semaphore::new(config.max_inbound_streams)),
            },
            events: events.clone(),
            commands: commands_rx,
            counters: Arc::new(NetCounters::default()),
            batch: config.batch,
            refusals: RefusalLog::default(),
            heal,
            blocked: blocked.clone(),
        };
        let span = tracing::info_span!("node", name = %config.name);
        let task = tokio::spawn(driver.run().instrument(span));
        Ok(Node {
            inner: Arc::new(Inner {
                id,
                commands,
                events,
                heal_events,
                blocked,
                task: Mutex::new(Some(task)),
                leave_timeout: config.leave_timeout,
            }),
        })
    }

    /// This node's name and advertised address.
    pub fn id(&self) -> &NodeId {
        &self.inner.id
    }

    /// This node's advertised address (with the real port when bound on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.inner.id.addr
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, NodeStopped> {
        let (tx, rx) = oneshot::channel();
        self.inner.commands.send(make(tx)).await.map_err(|_| NodeStopped)?;
        rx.await.map_err(|_| NodeStopped)
    }

    /// Every member known, this node included, in any state.
    pub async fn members(&self) -> Result<Vec<Member>, NodeStopped> {
        self.ask(Command::Members).await
    }

    /// Membership events from now on.
    pub fn subscribe(&self) -> Subscription {
        Subscription { rx: self.inner.events.subscribe() }
    }

    /// Partition events of the heal layer from now on ([`HealEvent`]:
    /// detected, healed, member removed by autoclean). Nothing arrives
    /// unless [`NodeConfig::heal`] is set.
    pub fn subscribe_heal(&self) -> HealSubscription {
        HealSubscription { rx: self.inner.heal_events.subscribe() }
    }

    /// Fault injection: treat `addrs` (peers' advertised addresses) as
    /// unreachable. Datagrams to and from them are dropped, push-pull
    /// streams to them fail, and streams from them are closed unanswered.
    /// Inbound streams are matched by source address, which on a shared IP
    /// is an ephemeral port: block on both sides of a cut (each side's
    /// outbound check then covers the other's inbound).
    #[cfg(feature = "fault-injection")]
    pub fn block(&self, addrs: impl IntoIterator<Item = SocketAddr>) {
        self.inner.blocked.block(addrs);
    }

    /// Fault injection: every blocked peer becomes reachable again.
    #[cfg(feature = "fault-injection")]
    pub fn unblock_all(&self) {
        self.inner.blocked.clear();
    }

    /// Replaces this node's metadata (gossiped with a raised incarnation).
    pub async fn set_metadata(&self, metadata: Metadata) -> Result<(), NodeStopped> {
        self.ask(|reply| Command::SetMetadata(metadata, reply)).await
    }

    /// Joins a cluster through any of `addrs` (e.g. addresses a discovery
    /// strategy found). Failures are logged and retried by the core.
    pub async fn join(&self, addrs: Vec<SocketAddr>) -> Result<(), NodeStopped> {
        self.inner.commands.send(Command::Join(addrs)).await.map_err(|_| NodeStopped)
    }

    /// Leaves gracefully and waits (at most the configured `leave_timeout`)
    /// until the leave has spread. Returns whether it was confirmed in time.
    /// The node keeps running: call [`Node::shutdown`] next.
    pub async fn leave(&self) -> Result<bool, NodeStopped> {
        self.leave_within(self.inner.leave_timeout).await
    }

    /// [`Node::leave`] with an explicit bound.
    pub async fn leave_within(&self, within: Duration) -> Result<bool, NodeStopped> {
        self.ask(|reply| Command::Leave { within, reply }).await
    }

    /// Declares `name` left on an operator's word (`cluster force-leave`).
    /// Returns whether such a member was known.
    pub async fn force_leave(&self, name: NodeName) -> Result<bool, NodeStopped> {
        self.ask(|reply| Command::ForceLeave(name, reply)).await
    }

    /// Counters snapshot.
    pub async fn metrics(&self) -> Result<NodeMetrics, NodeStopped> {
        self.ask(Command::Metrics).await
    }

    /// Stops the node at once (no leave: to others it looks like a crash
    /// until they detect it). Sockets are closed when this returns.
    pub async fn shutdown(&self) {
        let _ = self.inner.commands.send(Command::Shutdown).await;
        let task = self.inner.task.lock().expect("task lock").take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "node task ended abnormally");
            }
        }
    }

    /// Resolves once the node's task has stopped, for whatever reason
    /// (shutdown, or a bug that ended it): supervisors wait on this.
    pub async fn closed(&self) {
        self.inner.commands.closed().await
    }

    /// Whether the node's task is still running.
    pub fn is_running(&self) -> bool {
        !self.inner.commands.is_closed()
            && self.inner.task.lock().expect("task lock").as_ref().is_some_and(|t| !t.is_finished())
    }
}

/// Membership events of one node. Use [`Subscription::recv`], [`Subscription::try_recv`],
/// or [`Subscription::into_stream`] for a [`Stream`]. A subscriber that falls more than the event
/// capacity behind skips the oldest events (a warning logs how many).
pub struct Subscription {
    rx: broadcast::Receiver<Event>,
}

impl Subscription {
    /// The next event; `None` once the node has stopped.
    pub async fn recv(&mut self) -> Option<Event> {
        loop {
            match self.rx.recv().await {
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "event subscriber fell behind; events skipped");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next event if one is already waiting (never blocks); `None` when
    /// none is, or once the node has stopped.
    pub fn try_recv(&mut self) -> Option<Event> {
        loop {
            match self.rx.try_recv() {
                Ok(event) => return Some(event),
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "event subscriber fell behind; events skipped");
                }
                Err(_) => return None,
            }
        }
    }

    /// The events as a [`Stream`] (skipping over any lag).
    pub fn into_stream(self) -> impl Stream<Item = Event> + Send + Unpin + 'static {
        EventStream { inner: BroadcastStream::new(self.rx) }
    }
}

struct EventStream {
    inner: BroadcastStream<Event>,
}

impl Stream for EventStream {
    type Item = Event;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        loop {
            match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(event))) => return Poll::Ready(Some(event)),
                Poll::Ready(Some(Err(BroadcastStreamRecvError::Lagged(n)))) => {
                    tracing::warn!(missed = n, "event stream fell behind; events skipped");
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
