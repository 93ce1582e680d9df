//! The embedding API: a handle to a running node.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use gossamer_core::{Event, Member, NameConflict, QueryId, Swim, UserEvent};
use gossamer_heal::{core_adapter, Heal, HealEvent};
use gossamer_wire::{
    ClusterLabel, FrameCodec, KeyFingerprint, Keyring, Metadata, NodeId, NodeName, QueryFilter, SecretKey,
};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use tokio::sync::{broadcast, mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::Stream;
use tracing::Instrument;

use crate::config::NodeConfig;
use crate::driver::{Command, Driver, JoinRetries, LimitWarnings, Multicast, PushPullGate, RefusalLog, StreamLimits};
use crate::error::{NetError, NodeStopped, StartError};
use crate::fault::Blocklist;
use crate::heal::{HealLayer, HealSubscription};
use crate::keys::{KeyAnswer, KeyError, KeyRequest, KeyRotation, KEYS_QUERY};
use crate::lazy::LazyBroadcast;
use crate::metrics::{NetCounters, NodeMetrics};
use crate::multicast::{self, JoinLimiter};
use crate::stream::{Admission, AdmissionLimits};
use crate::transport::{bind_pair, with_port};
use crate::user::{QueryOutcome, UserLayer, UserSubscription};

/// Longest [`Node::start`] waits for its seeds' first answer (see
/// `Node::first_answer`): a taken name is learnt in the first round trip.
const FIRST_ANSWER_WAIT: Duration = Duration::from_secs(3);

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
    events: Arc<LazyBroadcast<Event>>,
    heal_events: Arc<LazyBroadcast<HealEvent>>,
    /// Weak, so that subscriptions end when the driver (the one strong
    /// sender) stops, even while handles remain.
    user_events: std::sync::Weak<LazyBroadcast<UserEvent>>,
    /// See [`Node::max_user_item_len`].
    max_user_item_len: usize,
    /// Shared with the driver; only `block`/`unblock_all` write it.
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    blocked: Blocklist,
    task: Mutex<Option<JoinHandle<()>>>,
    leave_timeout: Duration,
    /// See [`Node::name_conflict`].
    name_conflict: Arc<std::sync::OnceLock<NameConflict>>,
    /// The keyring all of this node's codecs share; `None` without a key.
    keyring: Option<Arc<Keyring>>,
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
        // Certificates are read before anything is bound: a bad file is a
        // start error, not a node that refuses every stream.
        let tls = config.tls.as_ref().map(|tls| tls.load()).transpose()?;
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
        // One keyring shared by every codec (datagrams, streams, multicast),
        // so a key change applies to all of them at the next frame.
        let mut keys = config.secret.iter().chain(&config.keys).cloned();
        let keyring = match keys.next() {
            Some(primary) => Some(Arc::new(
                Keyring::with_keys(primary, keys, &mut rng)
                    .map_err(|e| StartError::Config { field: "keys", reason: e.to_string() })?,
            )),
            None => None,
        };
        if let Some(keyring) = &keyring {
            codec = codec.with_keyring(keyring.clone());
        }
        if let Some(threshold) = config.compression {
            codec = codec.with_compression(threshold);
        }
        // The core gets the datagram codec (it derives its own stream codec);
        // the runtime caps what it reads from streams with `max_stream_frame`.
        let stream_codec = codec.clone().with_max_frame_len(config.max_stream_frame)?;
        let swim_rng = ChaCha8Rng::from_rng(&mut rng);
        let protocol = match &config.heal {
            Some(heal) => core_adapter::core_config(heal, config.protocol.clone()),
            None => config.protocol.clone(),
        };
        let mut swim = match &config.directory {
            Some(directory) => {
                Swim::with_directory(id.clone(), protocol, codec.clone(), swim_rng, Duration::ZERO, directory.clone())?
            }
            None => Swim::new(id.clone(), protocol, codec.clone(), swim_rng, Duration::ZERO)?,
        };
        let max_user_item_len = swim.max_user_item_len();
        let heal_events = Arc::new(LazyBroadcast::new(config.event_capacity));
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
                let interface = mcast
                    .resolve_interface(advertise)
                    .map_err(|e| StartError::Config { field: "multicast.interface", reason: e.to_string() })?;
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
        let user_events = Arc::new(LazyBroadcast::new(config.event_capacity));
        let mut user = UserLayer::new(user_events.clone(), config.hooks.clone());
        // The join's push-pull carries the application state too.
        user.refresh_state(&mut swim);
        if !config.seeds.is_empty() {
            swim.join(Duration::ZERO, &config.seeds);
        }

        let events = Arc::new(LazyBroadcast::new(config.event_capacity));
        let (answers, answers_rx) = mpsc::channel(256);
        for hooks in &config.hooks {
            tokio::spawn(crate::hooks::run(config.name.clone(), hooks.clone(), events.subscribe()));
            tokio::spawn(crate::user::run_hooks(hooks.clone(), user_events.subscribe(), answers.clone()));
            if heal.is_some() {
                tokio::spawn(crate::heal::run_hooks(hooks.clone(), heal_events.subscribe()));
            }
        }
        let (commands, commands_rx) = mpsc::channel(64);
        let counters = Arc::new(NetCounters::default());
        let blocked = Blocklist::default();
        let name_conflict = Arc::new(std::sync::OnceLock::new());
        let driver = Driver {
            swim,
            start,
            udp,
            tcp,
            multicast,
            streams: StreamLimits {
                codec: stream_codec.clone(),
                timeout: config.stream_timeout,
                header_timeout: config.stream_header_timeout.min(config.stream_timeout),
                admission: Admission::new(
                    AdmissionLimits {
                        max_streams: config.max_inbound_streams,
                        max_per_ip: config.max_inbound_streams_per_ip,
                        byte_budget: config.stream_buffer_budget,
                        stall_grace: crate::stream::STALL_GRACE,
                    },
                    stream_codec.clone(),
                    counters.clone(),
                ),
                outbound: Arc::new(Semaphore::new(config.max_inbound_streams)),
                pings: Arc::new(Semaphore::new(crate::driver::MAX_STREAM_PINGS)),
                tls,
            },
            events: events.clone(),
            commands: commands_rx,
            counters,
            batch: config.batch,
            name_conflict: name_conflict.clone(),
            refusals: RefusalLog::default(),
            heal,
            blocked: blocked.clone(),
            user,
            answers: answers_rx,
            keyring: keyring.clone(),
            gate: PushPullGate::new(config.max_pending_push_pulls, config.max_seeds, &config.seeds),
            limit_warnings: LimitWarnings::default(),
            join_retries: JoinRetries::new(ChaCha8Rng::from_rng(&mut rng), &config).joining(!config.seeds.is_empty()),
        };
        let span = tracing::info_span!("node", name = %config.name);
        let task = tokio::spawn(driver.run().instrument(span));
        let node = Node {
            inner: Arc::new(Inner {
                id,
                commands,
                events,
                heal_events,
                user_events: Arc::downgrade(&user_events),
                max_user_item_len,
                blocked,
                task: Mutex::new(Some(task)),
                leave_timeout: config.leave_timeout,
                keyring,
                name_conflict,
            }),
        };
        node.first_answer(config.seeds.len(), config.stream_timeout.min(FIRST_ANSWER_WAIT)).await?;
        Ok(node)
    }

    /// Waits for the seeds' first answer (at most `within`): a node whose
    /// name a live member already holds at another address learns it there
    /// (see [`Node::name_conflict`]) and must not start. Returns at once
    /// without seeds, once a member is known or every seed failed, or at
    /// the bound (unreachable seeds are retried by the core as before).
    async fn first_answer(&self, seeds: usize, within: Duration) -> Result<(), StartError> {
        let deadline = tokio::time::Instant::now() + within;
        while seeds > 0 && tokio::time::Instant::now() < deadline {
            match self.metrics().await {
                Ok(m) if m.core.alive >= 2 || m.core.push_pull_failures >= seeds as u64 => break,
                Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                Err(NodeStopped) => break,
            }
        }
        match self.name_conflict() {
            Some(conflict) => Err(StartError::NameConflict(Box::new(conflict))),
            None => Ok(()),
        }
    }

    /// The name conflict this node yielded to, if any: while joining, it
    /// learnt that a live member holds its name at another address, and
    /// stopped (the established member keeps the name; the cluster never
    /// flip-flops between the two). [`Node::start`] fails with
    /// [`StartError::NameConflict`] when this happens during its join; a
    /// later join that finds the name taken stops the node the same way,
    /// its handle methods then return [`NodeStopped`] and this says why.
    pub fn name_conflict(&self) -> Option<NameConflict> {
        self.inner.name_conflict.get().cloned()
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

    /// Application events from now on ([`UserEvent`]): other members'
    /// broadcasts, queries addressed to this node (answer them with
    /// [`Node::respond`], or through [`crate::Hooks::on_query`]), the answers
    /// to this node's queries and peers' application state. Lag behaves as
    /// for [`Node::subscribe`]: see [`UserSubscription`].
    pub fn subscribe_user(&self) -> UserSubscription {
        let rx = match self.inner.user_events.upgrade() {
            Some(events) => events.subscribe(),
            // The node has stopped: a subscription that says so at once.
            None => broadcast::channel(1).1,
        };
        UserSubscription { rx }
    }

    /// Broadcasts `payload` under `key` to every other member (memberlist's
    /// user broadcasts, Serf's user events); returns its version. Members
    /// deliver it once ([`crate::Hooks::on_broadcast`],
    /// [`Node::subscribe_user`]); this node does not deliver its own. A
    /// broadcast still spreading under the same key is replaced by the new
    /// one. The key is 1 to 64 bytes; key and payload together must fit
    /// [`Node::max_user_item_len`].
    ///
    /// ```no_run
    /// # async fn demo(node: gossamer_net::Node) -> Result<(), gossamer_net::NetError> {
    /// let version = node.broadcast("config/flags", b"dark-mode=on".to_vec()).await?;
    /// assert!(version >= 1);
    /// # Ok(()) }
    /// ```
    pub async fn broadcast(&self, key: &str, payload: impl Into<Vec<u8>>) -> Result<u64, NetError> {
        let (key, payload) = (key.to_owned(), payload.into());
        Ok(self.ask(|reply| Command::Broadcast { key, payload, reply }).await??)
    }

    /// Asks the members `filter` addresses (this node included, if it
    /// matches) and gathers their answers ([`crate::Hooks::on_query`] or
    /// [`Node::respond`]) for `timeout` (Serf's queries). Resolves at the
    /// deadline with who answered what and who stayed silent. The returned
    /// future owns what it needs, so it can be spawned; dropping it only
    /// stops the waiting.
    ///
    /// ```no_run
    /// # async fn demo(node: gossamer_net::Node) -> Result<(), gossamer_net::NetError> {
    /// use gossamer_net::QueryFilter;
    /// let filter = QueryFilter { nodes: vec![], tags: vec![("role".into(), "db".into())] };
    /// let outcome = node.query("lag", Vec::new(), filter, std::time::Duration::from_secs(2)).await?;
    /// for (from, answer) in &outcome.responses {
    ///     println!("{from}: {answer:?}");
    /// }
    /// println!("no answer from {:?}", outcome.missing);
    /// # Ok(()) }
    /// ```
    pub fn query(
        &self,
        name: &str,
        payload: impl Into<Vec<u8>>,
        filter: QueryFilter,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<QueryOutcome, NetError>> + Send + 'static {
        let (name, payload) = (name.to_owned(), payload.into());
        let commands = self.inner.commands.clone();
        async move {
            let (reply, outcome) = oneshot::channel();
            commands.send(Command::Query { name, payload, filter, timeout, reply }).await.map_err(|_| NodeStopped)?;
            Ok(outcome.await.map_err(|_| NodeStopped)??)
        }
    }

    /// Answers the query `id` of `origin` (from a [`UserEvent::Query`]):
    /// one datagram to the asker. Each query is answered at most once, and
    /// only before its timeout; the answer must fit one datagram.
    pub async fn respond(&self, id: QueryId, origin: &NodeName, payload: impl Into<Vec<u8>>) -> Result<(), NetError> {
        let (origin, payload) = (origin.clone(), payload.into());
        Ok(self.ask(|reply| Command::Respond { id, origin, payload, reply }).await??)
    }

    /// The largest broadcast or query accepted, in encoded bytes (key,
    /// payload and a few dozen bytes of framing): the share of one datagram
    /// reserved for application items (`Config::user_share` of the MTU).
    pub fn max_user_item_len(&self) -> usize {
        self.inner.max_user_item_len
    }

    fn keyring(&self) -> Result<&Keyring, KeyError> {
        self.inner.keyring.as_deref().ok_or(KeyError::NoKeyring)
    }

    /// Accepts `key` on receive from the next frame on, on this node only
    /// (first step of a rotation; see [`Node::cluster_keys`] for the whole
    /// cluster). Returns whether it was new. Refused on a node started
    /// without a key, and beyond [`gossamer_wire::MAX_KEYS`] keys.
    pub fn install_key(&self, key: SecretKey) -> Result<bool, KeyError> {
        let fp = key.fingerprint();
        let new = self.keyring()?.install(key)?;
        tracing::info!(key = %fp, new, "key installed");
        Ok(new)
    }

    /// Seals every frame sent from now on with `key`, which must be
    /// installed (on every member, before any of them uses it). The old
    /// primary stays accepted. Returns whether the primary changed.
    pub fn use_key(&self, key: &SecretKey) -> Result<bool, KeyError> {
        let changed = self.keyring()?.use_key(key)?;
        tracing::info!(key = %key.fingerprint(), changed, "primary key set");
        Ok(changed)
    }

    /// Stops accepting `key` from the next frame on (last step of a
    /// rotation, once every member sends with the new key). The primary
    /// key cannot be removed.
    pub fn remove_key(&self, key: &SecretKey) -> Result<(), KeyError> {
        self.keyring()?.remove(key)?;
        tracing::info!(key = %key.fingerprint(), "key removed");
        Ok(())
    }

    /// The fingerprints of this node's keys, the primary first (never the
    /// keys themselves); empty for a node without a key.
    pub fn list_keys(&self) -> Vec<KeyFingerprint> {
        self.inner.keyring.as_deref().map(Keyring::list).unwrap_or_default()
    }

    /// Applies `request` on every member, this node included (Serf's
    /// `keys`): an internal query, sealed like every frame with the current
    /// primary key, that each member answers after changing its own
    /// keyring. Resolves after `timeout` with who acknowledged, who refused
    /// and who stayed silent. Refused at once on a node without a key: the
    /// key would travel in clear. See [`crate::KeyRequest`] for the order
    /// of a rotation without downtime.
    ///
    /// ```no_run
    /// # async fn demo(node: gossamer_net::Node, new: gossamer_net::SecretKey) -> Result<(), gossamer_net::KeyError> {
    /// use gossamer_net::{KeyRequest, DEFAULT_KEYS_TIMEOUT};
    /// let outcome = node.cluster_keys(KeyRequest::Install(new), DEFAULT_KEYS_TIMEOUT).await?;
    /// println!("{} acked, {} failed, {} silent", outcome.acked(), outcome.failed(), outcome.missing.len());
    /// # Ok(()) }
    /// ```
    pub async fn cluster_keys(&self, request: KeyRequest, timeout: Duration) -> Result<KeyRotation, KeyError> {
        self.keyring()?;
        tracing::info!(op = request.name(), "cluster-wide key request");
        let payload = request.encode();
        let outcome = self.query(KEYS_QUERY, payload.to_vec(), QueryFilter::everyone(), timeout).await?;
        let answers = outcome.responses.iter().map(|(from, bytes)| (from.clone(), KeyAnswer::decode(bytes))).collect();
        Ok(KeyRotation { answers, missing: outcome.missing })
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

    /// Fault injection: drop every datagram to and from `addrs` (peers'
    /// advertised addresses), but let streams through: a network that
    /// loses UDP and carries TCP, where only the probes' stream fallback
    /// ([`gossamer_core::Config::stream_pings`]) keeps those peers alive.
    #[cfg(feature = "fault-injection")]
    pub fn block_datagrams(&self, addrs: impl IntoIterator<Item = SocketAddr>) {
        self.inner.blocked.block_datagrams(addrs);
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
