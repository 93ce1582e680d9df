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
//! ## Deltas (issue #16)
//!
//! With [`Config::push_pull_deltas`](crate::Config::push_pull_deltas) on,
//! the periodic exchange opens with a [`PushPullDigest`] (the sender's
//! table in hashed buckets, see `gossamer_wire`'s `digest` module) and
//! only the buckets that differ cross, each way; see
//! [`Swim::handle_push_pull_request`]. Joins, seeds, beacons, reconnects
//! with a dead member and [`Swim::push_pull`] (the heal layer's probe)
//! still exchange full views, and so does a periodic exchange whose
//! digests differ in more than half of their buckets. A partial answer
//! that reveals a split (each side holds dead a member the other holds
//! live) is not merged: a full exchange with that peer follows, so that
//! [`Signal::RemoteView`] is only ever raised on whole views.
//!
//! ## Retention
//!
//! The reconnect timer also forgets members dead for
//! [`Config::dead_retention`](crate::Config::dead_retention) or left for
//! [`Config::left_retention`](crate::Config::left_retention) (zero: never),
//! with a [`Signal::MemberRemoved`] each; this is the heal layer's
//! autoclean.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use gossamer_wire::{
    bucket_of, digest_hash, entry_hash, name_hash, set_differing, Alive, DecodeError, Heartbeat, Incarnation, Leave,
    MemberState, MemberStateRef, MemberStatus, Message, Packet, Ping, PushPull, PushPullDelta, PushPullDigest, SeqNo,
    Suspect, Update,
};
use rand_core::RngCore;

#[cfg(test)]
#[path = "pushpull_tests.rs"]
mod tests;

use crate::member::Slot;
use crate::signal::{RefutedClaim, Signal};
use crate::swim::Swim;
use crate::user::UserEvent;
use crate::Time;

/// A member's entry as the push-pull encoder reads it.
fn state_ref<'a>(e: crate::member::Entry<'a>) -> MemberStateRef<'a> {
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
        self.send_stream_request(to, request);
    }

    /// Hands the driver a stream exchange opening with `request`, counted.
    fn send_stream_request(&mut self, to: SocketAddr, request: Bytes) {
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
        self.members.sample_verified(&mut self.rng, 1, &mut picked, partner);
        if picked.is_empty() {
            self.members.sample(&mut self.rng, 1, &mut picked, partner);
        }
        let target = picked.first().and_then(|&slot| self.members.get(slot)).map(|e| e.member.id.addr);
        self.sampled = picked;
        if let Some(addr) = target {
            if self.config.push_pull_deltas {
                self.start_digest(addr);
            } else {
                self.start_push_pull(addr, false);
            }
        }
    }

    /// The slow reconnect timer: ping one random dead member (a push-pull
    /// follows if it answers: cheap for the common case of a member that is
    /// really gone), and push-pull with a seed while no other member is
    /// alive; then forget members dead or left for longer than their
    /// retention.
    pub(crate) fn reconnect(&mut self, now: Time) {
        self.pending_push_pulls.clear();
        self.pending_digests.clear();
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
            Ok(Packet { message: Message::PushPullDigest(digest), .. }) => {
                return self.answer_digest(now, from, *digest)
            }
            Ok(Packet { message: Message::PushPullDelta(delta), .. }) => return self.answer_delta(now, from, *delta),
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
        self.merge(now, state, false, true);
        let response = self.encode_state(false, true)?;
        self.count_response(&response);
        Some(response)
    }

    /// Counts a response frame going out.
    fn count_response(&mut self, response: &Bytes) {
        self.stats.messages_out += 1;
        self.stats.bytes_out += response.len() as u64;
        self.stats.traffic_out.count(crate::metrics::TrafficKind::PushPull, response.len());
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
                    self.merge(now, state, true, true);
                    if let Some(slot) = sender.and_then(|name| self.members.find(&name)) {
                        self.verify(slot);
                    }
                }
            }
            Ok(Packet { message: Message::PushPullDelta(delta), .. }) => self.take_delta_answer(now, from, *delta),
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
        self.pending_digests.retain(|&(a, _)| a != to);
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
    /// clock beyond `user_ltime_window` ahead of how far we accept is
    /// refused: it moves that one window, and not our clock (see `user`).
    ///
    /// `whole`: the list is the sender's whole view. A part of one (a
    /// delta) is never reported as [`Signal::RemoteView`]: the heal layer
    /// reads a view's live members as the sender's side.
    fn merge(&mut self, now: Time, mut state: PushPull, response: bool, whole: bool) {
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
        self.merging_view = state.members.len();
        self.merge_members(now, state, whole);
        self.merging_view = 0;
        self.joining_merge = false;
        if let Some((from, state)) = app_state {
            let event = UserEvent::RemoteState { from, join, state: Bytes::from(state) };
            self.outputs.push_back(crate::Output::User(event));
        }
    }

    fn merge_members(&mut self, now: Time, state: PushPull, whole: bool) {
        let disagreeing = whole && self.signals.enabled() && self.disagrees(&state.members);
        let sender = if disagreeing { state.members.first().map(|m| m.node.clone()) } else { None };
        // Every member is looked up first, under one lock of the identity
        // directory and in one tight loop (their cache misses overlap), as
        // `Swim::handle_datagram` does for a packet's updates: a
        // 2,000-member view took 2,000 locks, and the lookups were 5% of a
        // mass join's CPU on one core.
        let mut found = std::mem::take(&mut self.found);
        found.clear();
        self.members.find_each(state.members.iter().map(|m| Some(&m.node.name)), &mut found);
        // Merging can forget a member (a full table evicts a dead one to
        // make room), after which the slots looked up before are not to be
        // trusted: the rest are looked up one by one.
        let removals = self.members.removals();
        if let Some(from) = sender {
            let members: Arc<[MemberState]> = state.members.into();
            tracing::debug!(%from, members = members.len(), "push-pull view disagrees with ours");
            self.signals.push_with(|| Signal::RemoteView { from, members: Arc::clone(&members) });
            for (i, remote) in members.iter().enumerate() {
                let slot = self.members.still_found(&found, i, removals);
                self.merge_one(now, remote.clone(), slot);
            }
        } else {
            for (i, remote) in state.members.into_iter().enumerate() {
                let slot = self.members.still_found(&found, i, removals);
                self.merge_one(now, remote, slot);
            }
        }
        // A datagram's updates need a few slots: the thousands of a large
        // view's are not kept (8 bytes a member, idle).
        found.clear();
        found.shrink_to(MAX_KEPT_LOOKUPS);
        self.found = found;
    }

    /// Merges one member of a view; `found` is its slot if already looked
    /// up (`None`: looked up here, as an earlier entry of the same view may
    /// have added it).
    fn merge_one(&mut self, now: Time, remote: MemberState, found: Option<Slot>) {
        // One lookup serves the whole merge (this node is in the table).
        let found = found.or_else(|| self.members.find(&remote.node.name));
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
        self.disagrees_in(members, true)
    }

    /// [`Swim::disagrees`]; for a part of a view (`whole` false), only
    /// its first test (each side holds dead a member the other holds live),
    /// the one a part can prove.
    fn disagrees_in(&self, members: &[MemberState], whole: bool) -> bool {
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
        whole && !members.is_empty() && !shared_live && their_live >= 2 && our_live >= 2
    }
}

/// Members per digest bucket a node aims at when it opens an exchange: a
/// member that differs costs its bucket's members (about this many) each
/// way, and the digest 4 bytes per this many members (a member entry
/// takes about 35).
const MEMBERS_PER_BUCKET: usize = 16;

/// Most buckets of this node's own digests: 16 KiB of hashes (65,536
/// members, the default `max_members`, at 16 a bucket).
const MAX_OWN_BUCKETS: usize = 4096;

/// Most digest exchanges awaiting their answer; beyond, the oldest is
/// forgotten (its answer is still merged, but this node's part of the
/// differing buckets is not sent back).
const MAX_PENDING_DIGESTS: usize = 16;

/// Slots of looked-up members kept allocated between merges (see
/// `Swim::merge_members`).
const MAX_KEPT_LOOKUPS: usize = 256;

/// Buckets of a digest of a table of `members`: a power of two.
pub(crate) fn digest_buckets(members: usize) -> usize {
    members.div_ceil(MEMBERS_PER_BUCKET).next_power_of_two().clamp(1, MAX_OWN_BUCKETS)
}

/// What identifies a member entry in a digest: its name's hash, its
/// incarnation and status.
type EntryKey = (u64, Incarnation, MemberStatus);

fn owned_state(e: crate::member::Entry<'_>) -> MemberState {
    MemberState {
        node: e.member.id.clone(),
        incarnation: e.member.incarnation,
        status: e.member.status,
        metadata: e.member.metadata.clone(),
    }
}

impl<R: RngCore> Swim<R> {
    /// This node's table hashed into `buckets` buckets (a power of two),
    /// as `gossamer_wire`'s digest defines them.
    fn bucket_hashes(&self, buckets: usize) -> Vec<u32> {
        let mut sums = vec![0u32; buckets];
        self.members.for_each_digested(|_, e, h| {
            if let Some(sum) = sums.get_mut(bucket_of(h, buckets)) {
                *sum = sum.wrapping_add(entry_hash(h, e.member.incarnation, e.member.status));
            }
        });
        sums
    }

    /// This node's own state, then its members in the buckets `differing`
    /// flags, and its suspects wherever they are, except those `skip`
    /// holds (what the peer already listed).
    ///
    /// Suspects always cross, as they did in full views: a suspicion
    /// merged from a peer is this node's own and is gossiped again, which
    /// spreads the news of a partition to the members gossip missed (with
    /// differing buckets only, heal-70-30 took 41 periods on average to be
    /// noticed by every member against 36 with full views; 37 with this).
    /// There are none in a healthy cluster.
    fn delta_members(&self, buckets: usize, differing: &[u8], skip: Option<&HashSet<EntryKey>>) -> Vec<MemberState> {
        let me = self.self_slot;
        let flagged = |i: usize| differing.get(i / 8).is_some_and(|byte| byte & (1 << (i % 8)) != 0);
        let mut members: Vec<MemberState> = self.members.get(me).map(owned_state).into_iter().collect();
        self.members.for_each_digested(|slot, e, h| {
            let known = skip.is_some_and(|s| s.contains(&(h, e.member.incarnation, e.member.status)));
            let suspect = e.member.status == MemberStatus::Suspect;
            if slot != me && (suspect || flagged(bucket_of(h, buckets))) && !known {
                members.push(owned_state(e));
            }
        });
        members
    }

    /// A push-pull message as a stream frame; `None` (logged) if it does
    /// not fit one.
    fn encode_stream(&mut self, message: Message) -> Option<Bytes> {
        let mut out = BytesMut::new();
        match self.stream_codec.encode(&Packet::new(message), &mut out) {
            Ok(_) => Some(out.freeze()),
            Err(error) => {
                tracing::error!(%error, "push-pull delta does not fit a stream frame");
                None
            }
        }
    }

    /// Opens a periodic exchange with `to` by a digest of this node's
    /// table (see the module docs).
    pub(crate) fn start_digest(&mut self, to: SocketAddr) {
        let buckets = digest_buckets(self.members.len());
        let hashes = self.bucket_hashes(buckets).into_iter().flat_map(u32::to_le_bytes).collect();
        let Some(sender) = self.members.get(self.self_slot).map(owned_state) else { return };
        let digest =
            PushPullDigest { sender, hashes, app_state: self.user.local_state.to_vec(), user_ltime: self.user.clock };
        let Some(request) = self.encode_stream(Message::PushPullDigest(Box::new(digest))) else { return };
        self.stats.push_pull_digests += 1;
        self.pending_digests.retain(|&(a, _)| a != to);
        if self.pending_digests.len() >= MAX_PENDING_DIGESTS {
            self.pending_digests.remove(0);
        }
        self.pending_digests.push((to, buckets as u32));
        self.send_stream_request(to, request);
    }

    /// A digest opened an exchange: merge the sender's own state, and
    /// answer with this node's members in the buckets whose hashes differ
    /// from the digest's: all of them (the full table) when more than half
    /// differ. A malformed digest (a bucket count not a power of two, or
    /// above [`gossamer_wire::MAX_DIGEST_BUCKETS`]) is refused.
    fn answer_digest(&mut self, now: Time, from: SocketAddr, digest: PushPullDigest) -> Option<Bytes> {
        let Some(buckets) = digest.buckets() else {
            let error = DecodeError::Malformed(format!("push-pull digest of {} hash bytes", digest.hashes.len()));
            self.reject(now, from, "push-pull digest", &error);
            return None;
        };
        let PushPullDigest { sender, hashes, app_state, user_ltime } = digest;
        let sender = PushPull { join: false, members: vec![sender], app_state, user_ltime };
        self.merge(now, sender, false, false);
        let mut differing = vec![0u8; PushPullDelta::bitmap_len(buckets)];
        let mut count = 0usize;
        for (i, ours) in self.bucket_hashes(buckets).into_iter().enumerate() {
            if ours != digest_hash(&hashes, i) {
                set_differing(&mut differing, i);
                count += 1;
            }
        }
        if count.saturating_mul(2) > buckets {
            // Too far apart to be worth a delta: the full table, each way.
            self.stats.push_pull_full_fallbacks += 1;
            (0..buckets).for_each(|i| set_differing(&mut differing, i));
        }
        let members = self.delta_members(buckets, &differing, None);
        let delta = PushPullDelta {
            buckets: buckets as u32,
            differing,
            members,
            app_state: self.user.local_state.to_vec(),
            user_ltime: self.user.clock,
        };
        let response = self.encode_stream(Message::PushPullDelta(Box::new(delta)))?;
        self.count_response(&response);
        Some(response)
    }

    /// Checks a received delta: a well-formed bitmap, at most
    /// [`Config::max_push_pull_members`](crate::Config::max_push_pull_members)
    /// members, the sender first. Refused (counted, logged) otherwise.
    fn delta_fits(&mut self, now: Time, from: SocketAddr, delta: &PushPullDelta) -> bool {
        if !delta.is_well_formed() || delta.members.is_empty() {
            let error = DecodeError::Malformed(format!(
                "push-pull delta of {} buckets, {} bitmap bytes, {} members",
                delta.buckets,
                delta.differing.len(),
                delta.members.len()
            ));
            self.reject(now, from, "push-pull delta", &error);
            return false;
        }
        let max = self.config.max_push_pull_members;
        if delta.members.len() > max {
            self.stats.push_pulls_refused += 1;
            tracing::debug!(%from, members = delta.members.len(), max, "push-pull delta too large: refused");
            return false;
        }
        true
    }

    /// The initiator's part of the differing buckets arrived (a request):
    /// merge it and acknowledge with this node's own state.
    fn answer_delta(&mut self, now: Time, from: SocketAddr, delta: PushPullDelta) -> Option<Bytes> {
        if !self.delta_fits(now, from, &delta) {
            return None;
        }
        let whole = delta.is_full();
        let PushPullDelta { members, app_state, user_ltime, .. } = delta;
        self.merge(now, PushPull { join: false, members, app_state, user_ltime }, false, whole);
        let own = self.members.get(self.self_slot).map(owned_state)?;
        let ack = PushPullDelta {
            buckets: 0,
            differing: Vec::new(),
            members: vec![own],
            app_state: Vec::new(),
            user_ltime: self.user.clock,
        };
        let response = self.encode_stream(Message::PushPullDelta(Box::new(ack)))?;
        self.count_response(&response);
        Some(response)
    }

    /// The answer to a digest (or the acknowledgement of this node's part)
    /// arrived: merge it and, for the answer to a digest still pending with
    /// this bucket count, send back this node's members of the differing
    /// buckets that the answer did not hold alike (all of them if every
    /// bucket differed). A part that proves a split (each side holds dead
    /// a member the other holds live) is not merged while signals are on:
    /// a full exchange follows, whose views the heal layer can judge.
    fn take_delta_answer(&mut self, now: Time, from: SocketAddr, delta: PushPullDelta) {
        let pending = self.pending_digests.iter().position(|&(a, _)| a == from);
        let asked = pending.map(|i| self.pending_digests.swap_remove(i).1);
        if !self.delta_fits(now, from, &delta) {
            return;
        }
        let whole = delta.is_full();
        if !whole && self.signals.enabled() && self.disagrees_in(&delta.members, false) {
            tracing::debug!(%from, "push-pull delta reveals a split: exchanging full views");
            self.stats.push_pull_full_fallbacks += 1;
            self.start_push_pull(from, false);
            return;
        }
        let push_back = asked.filter(|&b| b > 0 && b == delta.buckets).map(|b| b as usize);
        let skip: Option<HashSet<EntryKey>> = (push_back.is_some() && !whole)
            .then(|| delta.members.iter().map(|m| (name_hash(&m.node.name), m.incarnation, m.status)).collect());
        let sender = delta.members.first().filter(|m| m.node.addr == from).map(|m| m.node.name.clone());
        let PushPullDelta { differing, members, app_state, user_ltime, .. } = delta;
        self.merge(now, PushPull { join: false, members, app_state, user_ltime }, true, whole);
        if let Some(slot) = sender.and_then(|name| self.members.find(&name)) {
            self.verify(slot);
        }
        let Some(buckets) = push_back else { return };
        let members = self.delta_members(buckets, &differing, skip.as_ref());
        if members.len() <= 1 && !whole {
            // The answer held everything this node has there.
            return;
        }
        let part = PushPullDelta {
            buckets: buckets as u32,
            differing,
            members,
            app_state: Vec::new(),
            user_ltime: self.user.clock,
        };
        if let Some(request) = self.encode_stream(Message::PushPullDelta(Box::new(part))) {
            self.send_stream_request(from, request);
        }
    }
}
