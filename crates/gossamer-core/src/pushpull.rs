//! Anti-entropy: full-state push-pull over a stream, at join, periodically
//! with a random member, and through the slow reconnect timer with a dead
//! member that answers a ping (and with the seeds while alone), so that a
//! partitioned cluster finds itself again — memberlist forgets dead members
//! and stays split.
//!
//! ## Convention: the sender comes first
//!
//! The wire `PushPull` names no sender, and the source of a stream (an
//! ephemeral TCP port) does not identify one either. So every member list
//! this core sends, request or response, starts with the sender's own
//! state; the rest follows in slot order. A receiver may take
//! `members[0]` as the sender ([`Signal::RemoteView`] does). The wire
//! format is unchanged: older receivers simply see a list in another order.
//!
//! ## Retention
//!
//! The reconnect timer also forgets members dead for
//! [`Config::dead_retention`](crate::Config::dead_retention) or left for
//! [`Config::left_retention`](crate::Config::left_retention) (zero: never),
//! with a [`Signal::MemberRemoved`] each; this is the heal layer's
//! autoclean.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use gossamer_wire::{
    Alive, Heartbeat, Leave, MemberState, MemberStateRef, MemberStatus, Message, Packet, Ping, PushPull, SeqNo,
    Suspect, Update,
};
use rand_core::RngCore;

use crate::signal::{RefutedClaim, Signal};
use crate::swim::Swim;
use crate::user::UserEvent;
use crate::Time;

/// A member's entry as the push-pull encoder reads it.
fn state_ref(e: &crate::member::Entry) -> MemberStateRef<'_> {
    MemberStateRef {
        node: &e.member.id,
        incarnation: e.member.incarnation,
        status: e.member.status,
        metadata: &e.member.metadata,
    }
}

impl<R: RngCore> Swim<R> {
    /// This node's whole view, as a stream frame: this node first (see the
    /// module docs), then the others in slot order.
    fn encode_state(&mut self, join: bool, response: bool) -> Option<bytes::Bytes> {
        let me = self.self_slot;
        // Written straight from the member table: no copy of the members
        // (at 100,000 members, copying them into a `PushPull` first was
        // a third of a push-pull's cost).
        let own = self.members.get(me).map(state_ref);
        let others = self.members.iter().filter(move |&(slot, _)| slot != me).map(|(_, e)| state_ref(e));
        let mut out = BytesMut::new();
        let encoded = self.stream_codec.encode_push_pull(
            response,
            join,
            own.into_iter().chain(others),
            &self.user.local_state,
            self.user.clock,
            &mut out,
        );
        match encoded {
            Ok(_) => Some(out.freeze()),
            Err(error) => {
                tracing::error!(%error, "full state does not fit a stream frame");
                None
            }
        }
    }

    /// Asks the driver to run a push-pull exchange with `to`.
    pub(crate) fn start_push_pull(&mut self, to: SocketAddr, join: bool) {
        let Some(request) = self.encode_state(join, false) else { return };
        self.stats.push_pulls += 1;
        self.stats.messages_out += 1;
        self.stats.bytes_out += request.len() as u64;
        self.stats.traffic_out.count(crate::metrics::TrafficKind::PushPull, request.len());
        self.outputs.push_back(crate::Output::PushPull { to, request });
    }

    /// Periodic anti-entropy with one random alive member.
    pub(crate) fn periodic_push_pull(&mut self, _now: Time) {
        if self.leaving.is_some() {
            return;
        }
        let me = self.self_slot;
        let mut picked = std::mem::take(&mut self.sampled);
        // A verified partner (see `Entry::verified`), any alive one if none is.
        let partner = |slot, e: &crate::member::Entry| slot != me && e.member.status == MemberStatus::Alive;
        self.members.sample(&mut self.rng, 1, &mut picked, |slot, e| e.verified() && partner(slot, e));
        if picked.is_empty() {
            self.members.sample(&mut self.rng, 1, &mut picked, partner);
        }
        let target = picked.first().and_then(|&slot| self.members.get(slot)).map(|e| e.member.id.addr);
        self.sampled = picked;
        if let Some(addr) = target {
            self.start_push_pull(addr, false);
        }
    }

    /// The slow reconnect timer: ping one random dead member (a push-pull
    /// follows if it answers: cheap for the common case of a member that is
    /// really gone), and push-pull with a seed while no other member is
    /// alive; then forget members dead or left for longer than their
    /// retention.
    pub(crate) fn reconnect(&mut self, now: Time) {
        self.pending_push_pulls.clear();
        self.reconnect_pings.clear();
        if self.leaving.is_none() {
            let dead = self.members.random_dead(&mut self.rng).and_then(|slot| self.members.get(slot));
            if let Some(node) = dead.map(|e| e.member.id.clone()) {
                tracing::debug!(member = %node, "reconnect: pinging a dead member");
                let seq = self.next_seq();
                self.reconnect_pings.push((seq, node.addr));
                let ping = Message::Ping(Ping { seq, target: node.name, from: self.local.clone() });
                self.send(node.addr, &ping, None);
            }
            if self.alive_others() == 0 && !self.seeds.is_empty() {
                let seed = self.seeds[(self.rng.next_u64() % self.seeds.len() as u64) as usize];
                tracing::debug!(%seed, "reconnect: alone, push-pull with a seed");
                self.start_push_pull(seed, true);
            }
        }
        self.reap(now);
    }

    /// A dead member answered a reconnect ping: it is reachable again, so
    /// exchange full state (its side may think we are the dead ones).
    /// Returns whether `seq` was a reconnect ping.
    pub(crate) fn reconnect_answered(&mut self, seq: SeqNo) -> bool {
        let Some(i) = self.reconnect_pings.iter().position(|&(s, _)| s == seq) else { return false };
        let (_, addr) = self.reconnect_pings.swap_remove(i);
        tracing::info!(%addr, "a dead member answered; exchanging state");
        self.start_push_pull(addr, false);
        true
    }

    /// Forgets members dead or left for longer than their retention (a
    /// zero retention keeps them forever).
    pub(crate) fn reap(&mut self, now: Time) {
        let (dead_for, left_for) = (self.config.dead_retention, self.config.left_retention);
        let expired_after = |retention: std::time::Duration, since: Time| {
            !retention.is_zero() && now.saturating_sub(since) >= retention
        };
        if self.members.count(MemberStatus::Dead) + self.members.count(MemberStatus::Left) == 0 {
            // Nothing to forget: no scan of the living (each reconnect tick
            // used to walk all 100,000 members of a healthy cluster).
            return;
        }
        let me = self.self_slot;
        let expired: Vec<_> = self
            .members
            .iter()
            .filter(|&(slot, e)| {
                slot != me
                    && match e.member.status {
                        MemberStatus::Dead => expired_after(dead_for, e.changed()),
                        MemberStatus::Left => expired_after(left_for, e.changed()),
                        _ => false,
                    }
            })
            .map(|(slot, _)| slot)
            .collect();
        for slot in expired {
            self.forget(now, slot, "retention over");
        }
    }

    /// A multicast beacon: exchange state with a node we do not know as
    /// alive (a newcomer, or one we think dead).
    pub(crate) fn on_heartbeat(&mut self, _now: Time, beat: Heartbeat) {
        if beat.node.name == self.local.name {
            return;
        }
        let known_alive = self.member(&beat.node.name).is_some_and(|m| {
            matches!(m.status, MemberStatus::Alive | MemberStatus::Suspect) && m.incarnation >= beat.incarnation
        });
        if known_alive
            || self.pending_push_pulls.contains(&beat.node.addr)
            || self.pending_push_pulls.len() >= super::swim::MAX_PENDING_PUSH_PULLS
        {
            return;
        }
        self.pending_push_pulls.push(beat.node.addr);
        self.start_push_pull(beat.node.addr, true);
    }

    /// A stream opened by a peer delivered its request frame: returns the
    /// response frame to write back, or `None` if the request was refused
    /// (wrong label, key, version, malformed: logged).
    pub fn handle_push_pull_request(&mut self, now: Time, from: SocketAddr, frame: &[u8]) -> Option<bytes::Bytes> {
        self.tick(now);
        self.stats.messages_in += 1;
        self.stats.bytes_in += frame.len() as u64;
        self.stats.traffic_in.count(crate::metrics::TrafficKind::PushPull, frame.len());
        let state = match self.stream_codec.decode(frame) {
            Ok(Packet { message: Message::PushPullRequest(state), .. }) => state,
            Ok(_) => {
                self.stats.rejected += 1;
                tracing::debug!(%from, "stream frame is not a push-pull request");
                return None;
            }
            Err(error) => {
                self.reject(now, from, "push-pull request", &error);
                return None;
            }
        };
        if !self.view_fits(from, &state) {
            return None;
        }
        self.merge(now, state, false);
        let response = self.encode_state(false, true)?;
        self.stats.messages_out += 1;
        self.stats.bytes_out += response.len() as u64;
        self.stats.traffic_out.count(crate::metrics::TrafficKind::PushPull, response.len());
        Some(response)
    }

    /// The response to an [`Output::PushPull`](crate::Output::PushPull) this node started.
    pub fn handle_push_pull_response(&mut self, now: Time, from: SocketAddr, frame: &[u8]) {
        self.tick(now);
        self.pending_push_pulls.retain(|&a| a != from);
        self.stats.messages_in += 1;
        self.stats.bytes_in += frame.len() as u64;
        self.stats.traffic_in.count(crate::metrics::TrafficKind::PushPull, frame.len());
        match self.stream_codec.decode(frame) {
            Ok(Packet { message: Message::PushPullResponse(state), .. }) => {
                if self.view_fits(from, &state) {
                    // The sender (listed first) answered at the address this
                    // node chose: it is verified once merged.
                    let sender = state.members.first().filter(|m| m.node.addr == from).map(|m| m.node.name.clone());
                    self.merge(now, state, true);
                    if let Some(slot) = sender.and_then(|name| self.members.find(&name)) {
                        self.verify(slot);
                    }
                }
            }
            Ok(_) => {
                self.stats.rejected += 1;
                tracing::debug!(%from, "stream frame is not a push-pull response");
            }
            Err(error) => self.reject(now, from, "push-pull response", &error),
        }
    }

    /// Whether a received view lists at most
    /// [`Config::max_push_pull_members`](crate::Config::max_push_pull_members)
    /// members; a longer one is refused whole (counted, logged).
    fn view_fits(&mut self, from: SocketAddr, state: &PushPull) -> bool {
        let max = self.config.max_push_pull_members;
        if state.members.len() <= max {
            return true;
        }
        self.stats.push_pulls_refused += 1;
        tracing::debug!(%from, members = state.members.len(), max, "push-pull view too large: refused");
        false
    }

    /// The stream for an [`Output::PushPull`](crate::Output::PushPull) failed or timed out.
    pub fn push_pull_failed(&mut self, now: Time, to: SocketAddr) {
        self.tick(now);
        self.pending_push_pulls.retain(|&a| a != to);
        self.stats.push_pull_failures += 1;
        tracing::debug!(%to, "push-pull failed");
    }

    /// Merges a remote view under the precedence rules. A remote "dead"
    /// only makes the member suspect here (as in memberlist): it then gets
    /// its chance to refute instead of being declared dead on hearsay.
    /// With signals on, a view that disagrees with ours on who is dead is
    /// first reported as [`Signal::RemoteView`] (see [`Swim::disagrees`]).
    /// The sender's clock of application items is witnessed, so a joining
    /// or restarted node learns the cluster's (see `user`).
    ///
    /// `response`: the view answers a push-pull this node started. If this
    /// node then knows no other live member (it is joining, or rejoining
    /// after everyone it knew died), it learns the sender's clock of
    /// application items however far ahead (a restarted node must catch up
    /// with the cluster; it chose whom to ask), and a claim about itself at
    /// another address means its name is taken (see `rules`). Otherwise a
    /// clock beyond `user_ltime_window` ahead of ours moves ours one window
    /// only (see `user`).
    fn merge(&mut self, now: Time, mut state: PushPull, response: bool) {
        let joining = response && self.alive_others() == 0;
        if joining && state.user_ltime <= crate::MAX_LTIME {
            self.witness_user_time(state.user_ltime);
        } else if !self.witness_bounded(state.user_ltime) {
            tracing::debug!(ltime = state.user_ltime, clock = self.user.clock, "push-pull clock too far ahead");
        }
        // The application's state, reported after the members it came with.
        let app_state = (!state.app_state.is_empty())
            .then(|| state.members.first().map(|m| (m.node.name.clone(), std::mem::take(&mut state.app_state))))
            .flatten();
        let join = state.join;
        self.joining_merge = joining;
        self.merge_members(now, state);
        self.joining_merge = false;
        if let Some((from, state)) = app_state {
            let event = UserEvent::RemoteState { from, join, state: Bytes::from(state) };
            self.outputs.push_back(crate::Output::User(event));
        }
    }

    fn merge_members(&mut self, now: Time, state: PushPull) {
        let disagreeing = self.signals.enabled() && self.disagrees(&state.members);
        let sender = if disagreeing { state.members.first().map(|m| m.node.clone()) } else { None };
        if let Some(from) = sender {
            let members: Arc<[MemberState]> = state.members.into();
            tracing::debug!(%from, members = members.len(), "push-pull view disagrees with ours");
            self.signals.push_with(|| Signal::RemoteView { from, members: Arc::clone(&members) });
            for remote in members.iter() {
                self.merge_one(now, remote.clone());
            }
        } else {
            for remote in state.members {
                self.merge_one(now, remote);
            }
        }
    }

    fn merge_one(&mut self, now: Time, remote: MemberState) {
        // One lookup serves the whole merge (this node is in the table).
        let found = self.members.find(&remote.node.name);
        let about_self = found == Some(self.self_slot);
        // Nearly every entry of a periodic push-pull is a member alive at
        // an incarnation we have already: no news under the precedence
        // rules (`on_alive` would return at once), so no update is built.
        if !about_self && remote.status == MemberStatus::Alive {
            let known = found.and_then(|slot| self.members.get(slot));
            if known.is_some_and(|e| remote.incarnation <= e.member.incarnation) {
                return;
            }
        }
        let update = match remote.status {
            MemberStatus::Alive => {
                Update::Alive(Alive { node: remote.node, incarnation: remote.incarnation, metadata: remote.metadata })
            }
            MemberStatus::Suspect | MemberStatus::Dead => Update::Suspect(Suspect {
                node: remote.node.name,
                incarnation: remote.incarnation,
                from: self.local.name.clone(),
            }),
            MemberStatus::Left => Update::Leave(Leave { node: remote.node.name, incarnation: remote.incarnation }),
        };
        if about_self && remote.status == MemberStatus::Dead {
            // Merged as a suspicion, but the other side holds us dead.
            self.about_self_as(now, update, RefutedClaim::Dead);
        } else {
            self.apply_found(now, update, None, found);
        }
    }

    /// Whether a remote view (its sender first) could reveal a partition:
    /// each view holds dead a member the other holds live (alive or
    /// suspect), or the two views, of two live members or more each, share
    /// no live member. A necessary condition of the heal layer's test, and
    /// false in the steady state, so agreeing views are never copied. One
    /// lookup per remote member, only while signals are on.
    pub(crate) fn disagrees(&self, members: &[MemberState]) -> bool {
        let live = |status: MemberStatus| matches!(status, MemberStatus::Alive | MemberStatus::Suspect);
        let (mut they_lost_ours, mut we_lost_theirs, mut shared_live, mut their_live) = (false, false, false, 0usize);
        for (i, remote) in members.iter().enumerate() {
            // The sender is answering: live whatever it says of itself.
            let remote_live = i == 0 || live(remote.status);
            let here = if remote.node.name == self.local.name {
                Some(self.self_entry().status)
            } else {
                self.member(&remote.node.name).map(|m| m.status)
            };
            if remote_live {
                their_live += 1;
                match here {
                    Some(status) if live(status) => shared_live = true,
                    Some(MemberStatus::Dead) => we_lost_theirs = true,
                    _ => {}
                }
            } else if remote.status == MemberStatus::Dead && here.is_some_and(live) {
                they_lost_ours = true;
            }
            if they_lost_ours && we_lost_theirs {
                return true;
            }
        }
        let our_live = self.members.count(MemberStatus::Alive) + self.members.count(MemberStatus::Suspect);
        !members.is_empty() && !shared_live && their_live >= 2 && our_live >= 2
    }
}
