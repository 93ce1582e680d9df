//! Application callbacks on membership changes, in the spirit of
//! libcluster's `connect`/`disconnect`, and on application data (memberlist's
//! delegates, Serf's user events and queries): the application implements
//! [`Hooks`], the runtime calls it from tasks of its own so that a slow
//! callback never stalls the protocol ([`Hooks::local_state`] excepted).

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use gossamer_core::{Event, Member};
use gossamer_wire::{MemberStatus, NodeId, NodeName, UserKey};
use tokio::sync::broadcast;

/// What the application wants done when members come and go.
///
/// ```
/// use gossamer_net::{Hooks, Member};
/// struct Log;
/// impl Hooks for Log {
///     fn on_connect(&self, member: &Member) {
///         println!("connect {}", member.id.name);
///     }
///     fn on_disconnect(&self, member: &Member) {
///         println!("disconnect {}", member.id.name);
///     }
/// }
/// ```
pub trait Hooks: Send + Sync + 'static {
    /// A member became reachable (joined, or recovered from suspect/dead).
    fn on_connect(&self, member: &Member);
    /// A reachable member failed or left.
    fn on_disconnect(&self, member: &Member);
    /// A partition healed (only with [`crate::NodeConfig::heal`] set):
    /// `rejoined` rejoined `winners`; if this node is among `rejoined`, the
    /// application should resync its own state from the winners.
    fn on_partition_healed(&self, _winners: &BTreeSet<NodeName>, _rejoined: &BTreeSet<NodeName>) {}

    /// Another member's broadcast ([`crate::Node::broadcast`]): `payload`
    /// under `key`, `version` (higher is newer, per origin). Called once per
    /// (origin, key, version); a version may be skipped when a newer one
    /// replaced it before it reached this node. Like the membership calls,
    /// it runs on the hook's own task, which skips events (logging how many)
    /// if it falls more than [`crate::NodeConfig::event_capacity`] behind.
    fn on_broadcast(&self, _origin: &NodeName, _key: &UserKey, _version: u64, _payload: &Bytes) {}

    /// A query ([`crate::Node::query`]) addressed to this node: return the
    /// answer, or `None` (the default) not to answer; the asker then lists
    /// this node as missing. With several hooks, the first answer sent wins.
    /// Runs on the hook's task; answer within the query's timeout.
    fn on_query(&self, _origin: &NodeId, _name: &UserKey, _payload: &Bytes) -> Option<Bytes> {
        None
    }

    /// The application state to send in push-pull exchanges (memberlist's
    /// LocalState); empty (the default) sends none. Called by the node's
    /// protocol task itself, before every push-pull it may start or answer
    /// (and at most about once a second otherwise): it must be quick, e.g.
    /// clone a [`Bytes`] kept up to date elsewhere. With several hooks, the
    /// first non-empty state is sent. It travels in the push-pull stream
    /// frame ([`crate::NodeConfig::max_stream_frame`]; see also
    /// [`crate::NodeConfig::compression`]).
    fn local_state(&self) -> Bytes {
        Bytes::new()
    }

    /// A peer's application state from a push-pull exchange (memberlist's
    /// MergeRemoteState); `join` tells whether the peer was joining. Only
    /// non-empty states are reported. Runs on the hook's task.
    fn merge_remote_state(&self, _from: &NodeName, _join: bool, _state: &Bytes) {}
}

/// Turns the event stream into connect/disconnect calls, each at most once
/// per transition: a member already connected is not connected again by a
/// later `MemberUpdated`, and a suspicion alone is not a disconnect.
#[derive(Default)]
pub(crate) struct Connections {
    connected: HashSet<NodeName>,
}

/// What one event means for the hooks.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Transition<'a> {
    Connect(&'a Member),
    Disconnect(&'a Member),
}

impl Connections {
    pub(crate) fn apply<'a>(&mut self, local: &NodeName, event: &'a Event) -> Option<Transition<'a>> {
        match event {
            Event::MemberJoined(m) | Event::MemberRecovered(m) | Event::MemberUpdated(m) => {
                // A member first heard of as already dead or left (through a
                // push-pull) is not a connection.
                let reachable = matches!(m.status, MemberStatus::Alive | MemberStatus::Suspect);
                (reachable && &m.id.name != local && self.connected.insert(m.id.name.clone()))
                    .then_some(Transition::Connect(m))
            }
            Event::MemberFailed(m) | Event::MemberLeft(m) => {
                self.connected.remove(&m.id.name).then_some(Transition::Disconnect(m))
            }
            Event::MemberSuspected(_) => None,
        }
    }
}

/// Runs `hooks` on every event of `events` until the node stops.
pub(crate) async fn run(local: NodeName, hooks: Arc<dyn Hooks>, mut events: broadcast::Receiver<Event>) {
    let mut connections = Connections::default();
    loop {
        match events.recv().await {
            Ok(event) => match connections.apply(&local, &event) {
                Some(Transition::Connect(m)) => hooks.on_connect(m),
                Some(Transition::Disconnect(m)) => hooks.on_disconnect(m),
                None => {}
            },
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "hooks fell behind the event stream; some calls were skipped");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gossamer_wire::{Metadata, NodeId};

    fn m(name: &str) -> Member {
        Member {
            id: NodeId::new(name.parse().unwrap(), "127.0.0.1:1".parse().unwrap()),
            incarnation: 0,
            status: MemberStatus::Alive,
            metadata: Metadata::new(),
        }
    }

    #[test]
    fn connect_and_disconnect_once_per_transition() {
        let me: NodeName = "me".parse().unwrap();
        let mut c = Connections::default();
        let b = m("b");
        assert!(matches!(c.apply(&me, &Event::MemberJoined(b.clone())), Some(Transition::Connect(_))));
        assert_eq!(c.apply(&me, &Event::MemberUpdated(b.clone())), None);
        assert_eq!(c.apply(&me, &Event::MemberSuspected(b.clone())), None);
        assert!(matches!(c.apply(&me, &Event::MemberFailed(b.clone())), Some(Transition::Disconnect(_))));
        assert_eq!(c.apply(&me, &Event::MemberLeft(b.clone())), None);
        assert!(matches!(c.apply(&me, &Event::MemberRecovered(b.clone())), Some(Transition::Connect(_))));
        assert_eq!(c.apply(&me, &Event::MemberJoined(m("me"))), None);
        let mut dead = m("c");
        dead.status = MemberStatus::Dead;
        assert_eq!(c.apply(&me, &Event::MemberJoined(dead)), None);
    }
}
