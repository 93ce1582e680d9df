//! Application data in the runtime (issue #10): user broadcasts, queries
//! and application state in push-pull, in the spirit of memberlist's
//! delegates and Serf's user events and queries. The core does the
//! protocol (see [`gossamer_core::UserEvent`]); this module is the glue:
//!
//! - the driver owns a [`UserLayer`]: every [`UserEvent`] the core emits goes
//!   out on a broadcast channel ([`crate::Node::subscribe_user`]), and the
//!   answers and deadline of each query started through [`crate::Node::query`]
//!   are collected into a [`QueryOutcome`];
//! - each [`Hooks`] gets a task of its own ([`run_hooks`]) reading that
//!   channel: it calls [`Hooks::on_broadcast`], [`Hooks::merge_remote_state`]
//!   and [`Hooks::on_query`], whose answer travels back to the driver as an
//!   [`Answer`]. A slow hook delays only its own task, never the protocol;
//! - [`Hooks::local_state`] is the one hook the driver calls itself, because
//!   the core needs the bytes when it encodes a push-pull frame (see
//!   [`UserLayer::refresh_state`] for when).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use gossamer_core::{QueryId, Swim, UserError, UserEvent};
use gossamer_wire::NodeName;
use rand_chacha::ChaCha8Rng;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::Stream;

use crate::hooks::Hooks;
use crate::lazy::LazyBroadcast;

/// Longest the application state the core sends in periodic and reconnect
/// push-pulls may lag behind [`Hooks::local_state`]. Joins (at start and
/// through [`crate::Node::join`]) and answers to a peer's push-pull always
/// carry the state of the moment.
pub(crate) const STATE_REFRESH: Duration = Duration::from_secs(1);

/// What a query started with [`crate::Node::query`] gathered by its deadline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryOutcome {
    /// Who answered in time, and what, in the order the answers arrived.
    pub responses: Vec<(NodeName, Bytes)>,
    /// Members alive (or merely suspect) at the origin and addressed by the
    /// filter, the origin included, that did not answer in time: they were
    /// down, unreachable, too slow, or their application chose not to answer.
    pub missing: Vec<NodeName>,
}

/// A hook's answer to a query, on its way back to the driver.
#[derive(Debug)]
pub(crate) struct Answer {
    pub id: QueryId,
    pub origin: NodeName,
    pub payload: Bytes,
}

/// A query of this node awaiting its deadline.
struct Collector {
    responses: Vec<(NodeName, Bytes)>,
    reply: oneshot::Sender<Result<QueryOutcome, UserError>>,
}

/// The driver's application-data state.
pub(crate) struct UserLayer {
    events: Arc<LazyBroadcast<UserEvent>>,
    /// Hooks asked for [`Hooks::local_state`]; empty: never asked.
    hooks: Vec<Arc<dyn Hooks>>,
    /// When the state was last handed to the core.
    refreshed_at: Option<Instant>,
    queries: HashMap<QueryId, Collector>,
}

impl UserLayer {
    pub(crate) fn new(events: Arc<LazyBroadcast<UserEvent>>, hooks: Vec<Arc<dyn Hooks>>) -> Self {
        Self { events, hooks, refreshed_at: None, queries: HashMap::new() }
    }

    /// Hands the hooks' current application state to the core, which puts
    /// it in every push-pull frame it encodes from then on. The state is
    /// that of the first hook returning a non-empty one (hooks in
    /// [`crate::NodeConfig::hooks`] order). Called right before every input
    /// known to make the core encode a push-pull (a join, a peer's request)
    /// and, through [`UserLayer::refresh_state_if_due`], at most every
    /// [`STATE_REFRESH`] before any other input (the core's own push-pull
    /// and reconnect timers, a dead member answering a ping, the heal layer).
    pub(crate) fn refresh_state(&mut self, swim: &mut Swim<ChaCha8Rng>) {
        if self.hooks.is_empty() {
            return;
        }
        let state = self.hooks.iter().map(|h| h.local_state()).find(|s| !s.is_empty()).unwrap_or_default();
        swim.set_local_state(state);
        self.refreshed_at = Some(Instant::now());
    }

    /// [`UserLayer::refresh_state`], unless it ran less than
    /// [`STATE_REFRESH`] ago; cheap enough to call on every wakeup.
    pub(crate) fn refresh_state_if_due(&mut self, swim: &mut Swim<ChaCha8Rng>) {
        if self.hooks.is_empty() || self.refreshed_at.is_some_and(|at| at.elapsed() < STATE_REFRESH) {
            return;
        }
        self.refresh_state(swim);
    }

    /// Starts collecting the answers of query `id` (just started in the core).
    pub(crate) fn collect(&mut self, id: QueryId, reply: oneshot::Sender<Result<QueryOutcome, UserError>>) {
        self.queries.insert(id, Collector { responses: Vec::new(), reply });
    }

    /// One event of the core: fed to the collectors, then to subscribers
    /// and hook tasks.
    pub(crate) fn deliver(&mut self, event: UserEvent) {
        match &event {
            UserEvent::Broadcast { origin, key, version, payload } => {
                tracing::debug!(%origin, %key, version, len = payload.len(), "user broadcast delivered");
            }
            UserEvent::Query { id, origin, name, .. } => tracing::debug!(%origin, id, %name, "query delivered"),
            UserEvent::QueryResponse { id, from, payload } => {
                if let Some(collector) = self.queries.get_mut(id) {
                    collector.responses.push((from.clone(), payload.clone()));
                }
            }
            UserEvent::QueryDone { id, responders, missing } => {
                tracing::debug!(id, responders, missing = missing.len(), "query done");
                if let Some(collector) = self.queries.remove(id) {
                    let outcome = QueryOutcome { responses: collector.responses, missing: missing.clone() };
                    // The asker may have stopped waiting: fine.
                    let _ = collector.reply.send(Ok(outcome));
                }
            }
            UserEvent::RemoteState { from, join, state } => {
                tracing::debug!(%from, join, len = state.len(), "application state received");
            }
        }
        // No subscriber is fine: the event is simply not wanted.
        self.events.send(event);
    }

    /// A hook answered a query: one datagram to its origin.
    pub(crate) fn answer(&mut self, swim: &mut Swim<ChaCha8Rng>, now: gossamer_core::Time, answer: Answer) {
        if let Err(error) = swim.respond(now, answer.id, &answer.origin, answer.payload) {
            // Too late, already answered by another hook or through
            // `Node::respond`, or too large: the application's business.
            tracing::debug!(id = answer.id, origin = %answer.origin, %error, "query answer from a hook not sent");
        }
    }
}

/// Runs `hooks` on every application event until the node stops: broadcasts
/// and remote states are handed over, queries answered through `answers`.
pub(crate) async fn run_hooks(
    hooks: Arc<dyn Hooks>,
    mut events: broadcast::Receiver<UserEvent>,
    answers: mpsc::Sender<Answer>,
) {
    loop {
        match events.recv().await {
            Ok(UserEvent::Broadcast { origin, key, version, payload }) => {
                hooks.on_broadcast(&origin, &key, version, &payload);
            }
            Ok(UserEvent::RemoteState { from, join, state }) => hooks.merge_remote_state(&from, join, &state),
            Ok(UserEvent::Query { id, origin, name, payload }) => {
                if let Some(payload) = hooks.on_query(&origin, &name, &payload) {
                    let answer = Answer { id, origin: origin.name, payload };
                    if answers.send(answer).await.is_err() {
                        return;
                    }
                }
            }
            Ok(UserEvent::QueryResponse { .. } | UserEvent::QueryDone { .. }) => {}
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "hooks fell behind the application events; some calls were skipped");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Application events of one node ([`crate::Node::subscribe_user`]): other
/// members' broadcasts, queries addressed to this node (answer with
/// [`crate::Node::respond`]), answers to and the end of this node's queries,
/// and peers' application state from push-pull exchanges.
///
/// A subscriber that falls more than [`crate::NodeConfig::event_capacity`]
/// events behind skips the oldest (a warning logs how many): the core
/// delivers each broadcast only once, so a subscriber that must see every
/// one has to keep up (hand work off to another task), or rely on
/// newer versions superseding what it missed.
pub struct UserSubscription {
    pub(crate) rx: broadcast::Receiver<UserEvent>,
}

impl UserSubscription {
    /// The next event; `None` once the node has stopped.
    pub async fn recv(&mut self) -> Option<UserEvent> {
        loop {
            match self.rx.recv().await {
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "application event subscriber fell behind; events skipped");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next event if one is already waiting (never blocks); `None` when
    /// none is, or once the node has stopped.
    pub fn try_recv(&mut self) -> Option<UserEvent> {
        loop {
            match self.rx.try_recv() {
                Ok(event) => return Some(event),
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "application event subscriber fell behind; events skipped");
                }
                Err(_) => return None,
            }
        }
    }

    /// The events as a [`Stream`] (skipping over any lag).
    pub fn into_stream(self) -> impl Stream<Item = UserEvent> + Send + Unpin + 'static {
        UserEventStream { inner: BroadcastStream::new(self.rx) }
    }
}

struct UserEventStream {
    inner: BroadcastStream<UserEvent>,
}

impl Stream for UserEventStream {
    type Item = UserEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<UserEvent>> {
        loop {
            match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(event))) => return Poll::Ready(Some(event)),
                Poll::Ready(Some(Err(BroadcastStreamRecvError::Lagged(n)))) => {
                    tracing::warn!(missed = n, "application event stream fell behind; events skipped");
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_collects_its_answers_until_done() {
        let events = Arc::new(LazyBroadcast::new(16));
        let mut rx = events.subscribe();
        let mut layer = UserLayer::new(events, Vec::new());
        let (reply, mut outcome) = oneshot::channel();
        layer.collect(7, reply);
        let (a, b): (NodeName, NodeName) = ("a".parse().unwrap(), "b".parse().unwrap());
        layer.deliver(UserEvent::QueryResponse { id: 7, from: a.clone(), payload: Bytes::from_static(b"yes") });
        layer.deliver(UserEvent::QueryResponse { id: 8, from: b.clone(), payload: Bytes::from_static(b"other") });
        assert!(outcome.try_recv().is_err(), "nothing before the deadline");
        layer.deliver(UserEvent::QueryDone { id: 7, responders: 1, missing: vec![b.clone()] });
        let outcome = outcome.try_recv().unwrap().unwrap();
        assert_eq!(outcome.responses, vec![(a, Bytes::from_static(b"yes"))]);
        assert_eq!(outcome.missing, vec![b]);
        assert!(layer.queries.is_empty());
        assert_eq!(std::iter::from_fn(|| rx.try_recv().ok()).count(), 3, "subscribers see every event");
    }
}
