//! SWIM's precedence rules (Das, Gupta, Motivala 2002, §4.2), for every
//! update whether it came piggybacked, from push-pull or from this node:
//!
//! | update \ known  | Alive(j)   | Suspect(j) | Dead(j)  | Left(j)  |
//! |-----------------|------------|------------|----------|----------|
//! | Alive(i)        | i > j      | i > j      | i > j    | i > j    |
//! | Suspect(i)      | i >= j     | i > j (*)  | never    | never    |
//! | Confirm(i)      | i >= j     | i >= j     | i > j (†)| i > j    |
//! | Leave(i)        | i >= j     | i >= j     | i >= j   | i > j (†)|
//!
//! (*) at `i == j` a different accuser confirms the suspicion (Lifeguard);
//! (†) only the incarnation moves, no event. Unknown members are added by
//! `Alive` only (the other updates carry no address). About this node, any
//! claim that it is not alive at `i >= own` (or alive at `i > own`, or with
//! other metadata) is refuted with incarnation `max(own, i) + 1`, and
//! reported as [`Signal::Refuted`]. A `Confirm(i >= j)` about a member already dead
//! only adds its sender to the death's confirmers ([`Signal::DeathConfirmed`]).
//!
//! ## Bounded evidence: every claim stays refutable
//!
//! Incarnations come from peers, and a forged one could be anything. Two
//! bounds keep every number a peer sends harmless, checked before the
//! table above is consulted:
//!
//! 1. **Ceiling.** A claim above [`MAX_INCARNATION`] (`u64::MAX / 2`) is
//!    refused outright and counted ([`Metrics::incarnations_refused`]). So
//!    every incarnation held anywhere is at most `MAX_INCARNATION`, and
//!    `+ 1` (or `+ window`) on it never overflows.
//! 2. **Window.** With `known` what this node holds for the member (zero
//!    for a member it does not know, its own incarnation for itself) and
//!    `w` = [`Config::incarnation_window`], a `Suspect`, `Confirm` or
//!    `Leave` above `known + w` is clamped to `known + w`, an `Alive` above
//!    `known + 2w` to `known + 2w` (never above the ceiling), counted
//!    ([`Metrics::incarnations_clamped`]), applied and forwarded clamped.
//!
//! The invariant: **whatever this node accepts about a member, the
//! member's refutation beats it.** The subject clamps a claim about itself
//! the same way, so it refutes a negative claim at `c + 1 <= own + w + 1`,
//! which every node that held it at `own` accepts (within `own + 2w`)
//! however the claim and the refutation race; and an `Alive` above a
//! negative claim `c` is never clamped to `c` or below (its bound is
//! `known + 2w > c`), so a refutation, once it arrives, always wins. A
//! node whose view was pushed further than one window (several forged
//! claims it accepted in a row) hears its claims repeated (gossip to the
//! dead, push-pull) and the subject climbs again, up to `2w + 1` each
//! time: a lie is transient, never permanent. Honest incarnations move by
//! one per refutation or metadata change, far inside the window.
//!
//! A forged claim thus moves a member's incarnation by at most `2w + 1`;
//! reaching the ceiling takes about 2^46 forged-and-refuted claims with
//! the default window. Should this node's own incarnation get there all
//! the same, it stays at `MAX_INCARNATION`, logs an error and emits
//! [`Signal::IncarnationExhausted`] once (what an operator does is written
//! there). [`Swim::rejoin`] and [`Swim::set_metadata`] stop at the ceiling
//! too.
//!
//! ## Addresses: the established holder keeps its name
//!
//! An `Alive` for a member held alive or suspect at another address is not
//! applied, whatever its incarnation: two live nodes claim one name (a
//! misconfiguration, or a forgery). It is counted
//! ([`Metrics::name_conflicts`]) and reported as [`Signal::NameConflict`];
//! nobody moves the member, so the cluster cannot flip-flop between the
//! two. A dead or left member may come back at a new address (a restart on
//! another port after a crash) with a higher incarnation, once it has been
//! dead or left for [`Config::dead_reclaim_time`] (a forged death followed
//! by a forged `Alive` elsewhere would otherwise move a live member before
//! its refutation arrives). About this node:
//! an established node refutes such a claim (and reports it); a joining
//! node (the claim comes in the answer to its own push-pull while it knows
//! no other live member) yields instead: it does not refute, and
//! [`Swim::name_conflict`] tells the driver to stop it. A node restarted at
//! a new address under the same name before the cluster declared its
//! previous run dead is therefore refused until then (or leave gracefully
//! before restarting).
//!
//! [`Config::incarnation_window`]: crate::Config::incarnation_window
//! [`Config::dead_reclaim_time`]: crate::Config::dead_reclaim_time
//! [`Metrics::incarnations_refused`]: crate::Metrics::incarnations_refused
//! [`Metrics::incarnations_clamped`]: crate::Metrics::incarnations_clamped
//! [`Metrics::name_conflicts`]: crate::Metrics::name_conflicts

use gossamer_wire::{Alive, Confirm, Incarnation, Leave, MemberStatus, Suspect, Update};
use rand_core::RngCore;

use crate::burst::{Noted, BURST_MIN_MEMBERS};
use crate::event::Event;
use crate::member::{Death, Member, Slot};
use crate::signal::{NameConflict, RefutedClaim, Signal};
use crate::suspicion::{min_suspicion_timeout, Suspicion};
use crate::swim::Swim;
use crate::timer::{Periodic, TimerKind};
use crate::Time;

/// The highest incarnation this node accepts from anyone, and the highest
/// it ever takes itself (`u64::MAX / 2`): claims above it are refused, so
/// arithmetic on any incarnation held has room to spare (see the module
/// docs).
pub const MAX_INCARNATION: Incarnation = u64::MAX / 2;

/// Updates queued for dissemination beyond which more are pending than
/// packets carry soon (a flood, or a mass join): updates about unverified
/// members then yield to the rest (see [`Swim::forward`]). Below it, every
/// update is queued alike.
const FLOODED_QUEUE: usize = 256;

impl<R: RngCore> Swim<R> {
    /// Applies one membership update under the precedence rules; a change
    /// is queued for dissemination and reported as an event.
    pub(crate) fn apply_update(&mut self, now: Time, update: Update) {
        self.apply_found(now, update, None, None);
    }

    /// As [`Swim::apply_update`], for an update that arrived as `encoded`
    /// (exactly what [`Update::encode_into`] writes for it, if known: a
    /// change is queued as those bytes, not encoded again), and whose
    /// member's slot may have been looked up already (`handle_datagram`
    /// looks up a large table's updates first, push-pull merges look each
    /// entry up once). A slot found must still be right: the caller drops
    /// its lookups once a member was removed (`MemberTable::removals`: a
    /// full table evicts a dead member to make room). `None` is looked up
    /// here, as an earlier update of the same packet may have added the
    /// member.
    pub(crate) fn apply_found(&mut self, now: Time, update: Update, encoded: Option<&[u8]>, found: Option<Slot>) {
        if update.is_user() {
            // Application items are not membership: their own path.
            self.on_user_update(now, update);
            return;
        }
        // One lookup serves both questions: this node is always in the
        // table, so "about this node" is "found at this node's slot".
        let found = found.or_else(|| self.members.find(update.node_name()));
        if found == Some(self.self_slot) {
            self.about_self(now, update);
            return;
        }
        // Within the window of zero, an incarnation is within the window of
        // whatever is known: the bounds (and the member's entry) are only
        // looked at, off the hot path, for numbers above it.
        if update.incarnation() > self.config.incarnation_window {
            self.apply_far_ahead(now, update, encoded, found);
            return;
        }
        self.dispatch(now, update, encoded, found);
    }

    /// [`Swim::apply_found`] for a claim above the window of zero: bounded
    /// (module docs) against what is known of its member first.
    #[cold]
    #[inline(never)]
    fn apply_far_ahead(&mut self, now: Time, update: Update, encoded: Option<&[u8]>, found: Option<Slot>) {
        let known = found.and_then(|slot| self.members.get(slot)).map_or(0, |e| e.member.incarnation);
        let Some((update, clamped)) = self.bounded(update, known) else { return };
        let encoded = if clamped { None } else { encoded };
        // Not a call back into `apply_found`: a clamped claim may still be
        // above the window of zero.
        self.dispatch(now, update, encoded, found);
    }

    /// Hands a membership claim, already bounded, to its precedence rule.
    #[inline(always)]
    fn dispatch(&mut self, now: Time, update: Update, encoded: Option<&[u8]>, found: Option<Slot>) {
        match update {
            Update::Alive(alive) => self.on_alive(now, alive, found, encoded),
            Update::Suspect(suspect) => self.on_suspect(now, suspect, found, encoded),
            Update::Confirm(confirm) => self.on_confirm(now, confirm, found, encoded),
            Update::Leave(leave) => self.on_leave(now, leave, found, encoded),
            Update::User(_) | Update::Query(_) => {}
        }
    }

    // About this node: rare, kept out of the hot path's inlining budget.
    #[inline(never)]
    fn about_self(&mut self, now: Time, update: Update) {
        let claim = match &update {
            Update::Alive(_) => RefutedClaim::Alive,
            Update::Suspect(_) => RefutedClaim::Suspect,
            Update::Confirm(_) => RefutedClaim::Dead,
            Update::Leave(_) => RefutedClaim::Left,
            Update::User(_) | Update::Query(_) => return,
        };
        self.about_self_as(now, update, claim);
    }

    /// The highest incarnation accepted for a claim about a member held at
    /// `known` (see the module docs): `known + w` for a negative claim,
    /// `known + 2w` for an `Alive`, never above [`MAX_INCARNATION`].
    fn incarnation_limit(&self, known: Incarnation, alive: bool) -> Incarnation {
        let window = self.config.incarnation_window;
        let window = if alive { window.saturating_mul(2) } else { window };
        known.saturating_add(window).min(MAX_INCARNATION)
    }

    /// `update` within the bounds of the module docs for a member held at
    /// `known`, and whether it was clamped; `None` if it is refused (above
    /// the ceiling). Application items pass unchanged.
    #[inline]
    pub(crate) fn bounded(&mut self, mut update: Update, known: Incarnation) -> Option<(Update, bool)> {
        let heard = update.incarnation();
        if update.is_user()
            || (heard <= MAX_INCARNATION && heard <= known.saturating_add(self.config.incarnation_window))
        {
            // The common case: nothing to check further.
            return Some((update, false));
        }
        if heard > MAX_INCARNATION {
            self.stats.incarnations_refused += 1;
            tracing::debug!(member = %update.node_name(), incarnation = heard, "incarnation above the ceiling: refused");
            return None;
        }
        let limit = self.incarnation_limit(known, matches!(update, Update::Alive(_)));
        if heard <= limit {
            return Some((update, false));
        }
        match &mut update {
            Update::Alive(Alive { incarnation, .. })
            | Update::Suspect(Suspect { incarnation, .. })
            | Update::Confirm(Confirm { incarnation, .. })
            | Update::Leave(Leave { incarnation, .. }) => *incarnation = limit,
            Update::User(_) | Update::Query(_) => {}
        }
        self.stats.incarnations_clamped += 1;
        tracing::debug!(member = %update.node_name(), incarnation = heard, known, limit, "incarnation too far ahead: clamped");
        Some((update, true))
    }

    /// Handles `update` about this node, reporting a refutation as `claim`
    /// (a push-pull view holding this node dead is merged as a suspicion,
    /// but what it claimed is a death).
    pub(crate) fn about_self_as(&mut self, now: Time, update: Update, claim: RefutedClaim) {
        let Some((update, _)) = self.bounded(update, self.incarnation()) else { return };
        let heard = update.incarnation();
        self.max_self_incarnation_seen = self.max_self_incarnation_seen.max(heard);
        if self.leaving.is_some() {
            // We are leaving: do not argue; our Leave is being spread.
            return;
        }
        let own = self.incarnation();
        let refute = match &update {
            Update::Alive(alive) => {
                let me = self.self_entry();
                let elsewhere = alive.node.addr != me.id.addr;
                let changed = alive.metadata != me.metadata;
                if elsewhere && heard >= own {
                    let conflict = NameConflict {
                        name: me.id.name.clone(),
                        existing: me.id.addr,
                        claimed: alive.node.addr,
                        incarnation: heard,
                        yielded: self.joining_merge,
                    };
                    self.name_conflict_found(conflict);
                    if self.joining_merge {
                        // The name is taken: yield, do not fight for it.
                        return;
                    }
                }
                heard > own || (heard == own && (changed || elsewhere))
            }
            Update::Suspect(_) | Update::Confirm(_) if heard < own => {
                // Old news (a claim this node refuted already): whoever
                // still holds it missed the refutation, so it goes out
                // again, first on the answer to a probe that carried the
                // claim (issue #19). Not re-queued while still pending.
                if self.queue.transmits(&self.self_slot).is_none() {
                    self.queue.push_keyed(self.self_slot, self.self_alive());
                }
                false
            }
            Update::Suspect(_) | Update::Confirm(_) | Update::Leave(_) => heard >= own,
            Update::User(_) | Update::Query(_) => false,
        };
        if refute {
            self.refute(now, heard, claim);
        }
    }

    /// Someone claims this node is not alive (or alive with other data):
    /// raise the incarnation above the claim and gossip `Alive`.
    fn refute(&mut self, now: Time, heard: u64, claim: RefutedClaim) {
        let own = self.incarnation();
        let next = own.max(heard).saturating_add(1).min(MAX_INCARNATION);
        if next <= heard {
            // At the ceiling: this claim cannot be outbid (module docs).
            if !self.incarnation_exhausted {
                self.incarnation_exhausted = true;
                tracing::error!(
                    incarnation = own,
                    ?claim,
                    "incarnation exhausted: a claim about this node cannot be refuted; \
                     key the cluster and restart this node under a new name"
                );
                self.signals.push_with(|| Signal::IncarnationExhausted { incarnation: own });
            }
            if next <= own {
                return;
            }
        }
        self.set_own_incarnation(next, now);
        self.stats.refutations += 1;
        self.awareness.apply(1);
        tracing::info!(incarnation = next, ?claim, "refuting a claim about this node");
        // The refutation gets the larger budget (`broadcast::refutation_bonus`).
        let bonus = crate::broadcast::refutation_bonus(
            self.config.retransmit_mult,
            self.config.retransmit_log_base,
            self.members_not_left(),
        );
        self.queue.push_keyed_with_bonus(self.self_slot, self.self_alive(), bonus);
        self.signals.push_with(|| Signal::Refuted { incarnation: next, claim });
    }

    /// Queues `update` about the member in `slot`, as `encoded` if those
    /// are its bytes as received.
    #[inline(always)]
    fn forward(&mut self, slot: Slot, update: Update, encoded: Option<&[u8]>) {
        self.burst.heard_news();
        if self.queue.len() >= FLOODED_QUEUE && !self.members.is_verified(slot) {
            self.forward_unverified(slot, update, encoded);
            return;
        }
        let grew = match encoded {
            Some(bytes) => {
                debug_assert_eq!(bytes.len(), update.encoded_len(), "kept bytes are the update's encoding");
                self.queue.push_encoded(slot, bytes)
            }
            None => self.queue.push_keyed(slot, update),
        };
        if grew {
            self.bound_queue();
        }
    }

    /// [`Swim::forward`] for the `Alive` of a member new to this node: left
    /// to push-pull while this node, in a cluster of more than
    /// [`BURST_MIN_MEMBERS`], is in a join burst (see [`crate::burst`]),
    /// whose push-pulls are armed when it begins. This node's own `Alive`
    /// never comes here: it is queued at creation.
    #[inline(always)]
    fn forward_join(&mut self, now: Time, slot: Slot, alive: Alive, encoded: Option<&[u8]>) {
        let members = self.members_not_left().max(self.merging_view);
        let threshold = if members > BURST_MIN_MEMBERS { self.config.join_burst } else { 0 };
        match self.burst.note_join(now, self.config.probe_interval, threshold) {
            Noted::Single => self.forward(slot, Update::Alive(alive), encoded),
            Noted::Burst => self.stats.joins_left_to_push_pull += 1,
            Noted::BurstBegan(at) => {
                self.stats.joins_left_to_push_pull += 1;
                tracing::debug!("join burst: members new to this node go by push-pull, not gossip");
                self.arm(Periodic::PushPull, at);
            }
        }
    }

    /// Keeps the membership queue within `max_queued_updates`: drops the
    /// update sent most often (the oldest of those), never this node's own.
    #[inline(always)]
    fn bound_queue(&mut self) {
        if self.queue.len() > self.config.max_queued_updates {
            self.evict_queued();
        }
    }

    #[cold]
    #[inline(never)]
    fn evict_queued(&mut self) {
        while self.queue.len() > self.config.max_queued_updates {
            if !self.queue.evict_most_sent_except(Some(&self.self_slot)) {
                break;
            }
            self.stats.updates_evicted += 1;
        }
        tracing::debug!(
            capacity = self.config.max_queued_updates,
            "membership queue full: dropped the most sent update"
        );
    }

    /// [`Swim::forward`] for a member not verified while the queue holds
    /// more than [`FLOODED_QUEUE`] updates: queued as already sent half its
    /// retransmit limit, so news of members heard from directly (a crash
    /// among them) goes first and a flood of forged names (issue #15)
    /// drains twice as fast. Real newcomers still get half the usual
    /// retransmissions from every node that hears of them, and push-pull.
    #[cold]
    #[inline(never)]
    fn forward_unverified(&mut self, slot: Slot, update: Update, encoded: Option<&[u8]>) {
        let head_start = self.retransmit_limit() / 2;
        let grew = match encoded {
            Some(bytes) => self.queue.push_encoded_as_sent(slot, bytes, head_start),
            None => self.queue.push_keyed_as_sent(slot, update, head_start),
        };
        if grew {
            self.bound_queue();
        }
    }

    /// How often one membership update is sent at the current size
    /// (`broadcast::retransmit_limit` over the members not left).
    pub(crate) fn retransmit_limit(&self) -> u32 {
        crate::broadcast::retransmit_limit(
            self.config.retransmit_mult,
            self.config.retransmit_log_base,
            self.members_not_left(),
        )
    }

    /// Members in the table not gracefully gone: what the retransmit
    /// budgets scale with.
    fn members_not_left(&self) -> usize {
        self.members.len() - self.members.count(MemberStatus::Left)
    }

    /// A peer sent the news this node holds about the member in `slot` (a
    /// suspicion or death it knew already): the pending update about it,
    /// if any, may retire early (`BroadcastQueue::heard_again`; issue
    /// #16). Only news a member that misses it finds out for itself (its
    /// own probes of the failed member fail): an `Alive` (a refutation, a
    /// join) and a `Leave` (a member gone gracefully is never probed
    /// again, so one who missed it would hold it alive, then dead) always
    /// get their whole budget.
    #[cold]
    #[inline(never)]
    fn heard_again(&mut self, slot: Slot) {
        let (enough, floor) = self.retire_rule();
        if self.queue.heard_again(&slot, enough, floor) {
            self.stats.updates_retired_early += 1;
        }
    }

    /// When a pending suspicion or death retires early: after `enough`
    /// copies heard back (`retire_after_copies`), but not before `floor`
    /// sends (`retransmit_mult`).
    fn retire_rule(&self) -> (u32, u32) {
        (self.config.retire_after_copies, self.config.retransmit_mult)
    }

    fn member_of(&self, slot: Slot) -> Member {
        Member::clone(self.members.get(slot).expect("slot was just looked up").member)
    }

    /// Records a name conflict: counted, signalled, and kept for the driver
    /// if this node yielded.
    pub(crate) fn name_conflict_found(&mut self, conflict: NameConflict) {
        self.stats.name_conflicts += 1;
        if conflict.yielded {
            if self.name_conflict.is_none() {
                tracing::error!(
                    name = %conflict.name,
                    existing = %conflict.existing,
                    claimed = %conflict.claimed,
                    "this node's name is taken by an established member at another address: yielding"
                );
                self.name_conflict = Some(conflict.clone());
            }
        } else {
            tracing::debug!(
                name = %conflict.name,
                existing = %conflict.existing,
                claimed = %conflict.claimed,
                incarnation = conflict.incarnation,
                "name claimed at another address: refused"
            );
        }
        self.signals.push_with(|| Signal::NameConflict(conflict));
    }

    /// Makes room for one more member if the table is full: forgets a dead
    /// member (at random), or returns false if none is dead.
    #[inline]
    fn room_for_one(&mut self, now: Time) -> bool {
        self.members.len() < self.config.max_members || self.make_room(now)
    }

    /// The table is full: forgets a dead member, if any (see `room_for_one`).
    #[cold]
    #[inline(never)]
    fn make_room(&mut self, now: Time) -> bool {
        match self.members.random_dead(&mut self.rng) {
            Some(slot) if slot != self.self_slot => {
                self.stats.members_evicted += 1;
                self.forget(now, slot, "table full");
                true
            }
            _ => {
                self.stats.members_refused += 1;
                false
            }
        }
    }

    /// A claim that a live member is at another address: refused (module
    /// docs). Off the hot path.
    #[cold]
    #[inline(never)]
    fn refuse_move(&mut self, alive: Alive, existing: std::net::SocketAddr) {
        let conflict = NameConflict {
            name: alive.node.name,
            existing,
            claimed: alive.node.addr,
            incarnation: alive.incarnation,
            yielded: false,
        };
        self.name_conflict_found(conflict);
    }

    #[inline(always)]
    fn on_alive(&mut self, now: Time, alive: Alive, found: Option<Slot>, encoded: Option<&[u8]>) {
        let Some(slot) = found else {
            if !self.room_for_one(now) {
                tracing::debug!(member = %alive.node, max = self.config.max_members, "member table full: new member dropped");
                return;
            }
            let member = Member {
                id: alive.node.clone(),
                incarnation: alive.incarnation,
                status: MemberStatus::Alive,
                metadata: alive.metadata.clone(),
            };
            // Unverified until it is heard from directly (`failure`).
            let slot = self.members.insert(member.clone(), now);
            self.order.insert(&mut self.rng, slot, false);
            tracing::debug!(member = %alive.node, incarnation = alive.incarnation, "member joined");
            self.forward_join(now, slot, alive, encoded);
            self.emit(Event::MemberJoined(member));
            return;
        };
        let entry = self.members.get(slot).expect("found");
        if alive.incarnation <= entry.member.incarnation {
            return;
        }
        let previous = entry.member.status;
        let moved = entry.member.id.addr != alive.node.addr;
        if moved
            && (matches!(previous, MemberStatus::Alive | MemberStatus::Suspect)
                || now.saturating_sub(entry.changed()) < self.config.dead_reclaim_time)
        {
            // A live member is never moved: the holder keeps the name; a
            // dead or left one only once its reclaim time is over.
            let existing = entry.member.id.addr;
            self.refuse_move(alive, existing);
            return;
        }
        let changed = moved || entry.member.metadata != alive.metadata;
        self.members.change(slot, MemberStatus::Alive, now, |m| {
            m.incarnation = alive.incarnation;
            if changed {
                m.metadata.clone_from(&alive.metadata);
                m.id.addr = alive.node.addr;
            }
        });
        if previous == MemberStatus::Suspect {
            self.suspicion_refuted(now, slot);
            self.suspicions.remove(&slot);
        }
        if matches!(previous, MemberStatus::Dead | MemberStatus::Left) {
            let verified = self.members.is_verified(slot);
            self.order.insert(&mut self.rng, slot, verified);
        }
        self.forward(slot, Update::Alive(alive), encoded);
        // A newer incarnation with nothing else new (a refuted suspicion
        // elsewhere, a rejoin) is no event: no copy of the member either.
        match previous {
            MemberStatus::Suspect | MemberStatus::Dead => self.emit(Event::MemberRecovered(self.member_of(slot))),
            MemberStatus::Left => self.emit(Event::MemberJoined(self.member_of(slot))),
            MemberStatus::Alive if changed => self.emit(Event::MemberUpdated(self.member_of(slot))),
            MemberStatus::Alive => {}
        }
    }

    // Rare next to `Alive` (deaths, leaves, suspicions): kept out of line
    // so that the `Alive` path inlines what it calls.
    #[inline(never)]
    fn on_suspect(&mut self, now: Time, suspect: Suspect, found: Option<Slot>, encoded: Option<&[u8]>) {
        let Some(slot) = found else { return };
        let entry = self.members.get(slot).expect("found");
        match entry.member.status {
            MemberStatus::Alive if suspect.incarnation >= entry.member.incarnation => {
                self.members.change(slot, MemberStatus::Suspect, now, |m| m.incarnation = suspect.incarnation);
                self.start_suspicion(now, slot, &suspect);
                self.suspicion_heard(slot, &suspect.from);
                tracing::debug!(member = %suspect.node, incarnation = suspect.incarnation, from = %suspect.from, "suspected");
                self.forward(slot, Update::Suspect(suspect), encoded);
                let member = self.member_of(slot);
                self.emit(Event::MemberSuspected(member));
            }
            MemberStatus::Suspect if suspect.incarnation > entry.member.incarnation => {
                // Suspected again at a newer incarnation: a fresh suspicion.
                self.members.update(slot, |m| m.incarnation = suspect.incarnation);
                self.start_suspicion(now, slot, &suspect);
                self.forward(slot, Update::Suspect(suspect), encoded);
            }
            MemberStatus::Suspect if suspect.incarnation == entry.member.incarnation => {
                // Lifeguard: an independent accuser shortens the timeout
                // (only a verified member: see `suspicion`).
                if !self.suspicions.contains_key(&slot) || !self.counts_as_confirmation(&suspect.from, slot) {
                    self.heard_again(slot);
                    return;
                }
                let Some(suspicion) = self.suspicions.get_mut(&slot) else { return };
                if suspicion.confirm(&suspect.from) {
                    // A deadline the confirmation moved into the past is
                    // due now: handled later, its timer would look like a
                    // stalled node's (`failure::suspicion_timer`) and count
                    // against this node's health, slowing its probes.
                    suspicion.deadline = suspicion.deadline.max(now);
                    let (at, id) = (suspicion.deadline, suspicion.id);
                    self.set_timer(at, TimerKind::Suspicion { slot, id });
                    // The suspicion itself is no news to whoever sent this
                    // node copies of it: the confirmation keeps that count.
                    let heard = self.queue.heard(&slot);
                    // Nor is it news that needs packets of its own: it
                    // opens gossip packets only as often as the suspicion
                    // it replaces still would have here, and rides in
                    // packets sent anyway after that (`limit_openings`).
                    let openings = self.queue.openings_left(&slot, self.retransmit_limit());
                    self.forward(slot, Update::Suspect(suspect), encoded);
                    self.queue.limit_openings(&slot, openings.unwrap_or(0));
                    if let Some(heard) = heard {
                        let (enough, floor) = self.retire_rule();
                        self.queue.inherit_heard(&slot, heard, enough, floor);
                    }
                } else {
                    self.heard_again(slot);
                }
            }
            _ => {}
        }
    }

    fn start_suspicion(&mut self, now: Time, slot: Slot, suspect: &Suspect) {
        let n = self.members.count(MemberStatus::Alive) + self.members.count(MemberStatus::Suspect);
        let mult = self.config.suspicion_mult;
        let expected = self.config.suspicion_confirmations;
        let k = if (n as u64).saturating_sub(2) < u64::from(expected) { 0 } else { expected };
        let min = min_suspicion_timeout(mult, n, self.config.probe_interval);
        let max = min.saturating_mul(self.config.suspicion_max_timeout_mult);
        self.next_suspicion_id = self.next_suspicion_id.wrapping_add(1);
        let id = self.next_suspicion_id;
        let floor = self.refutation_floor(now);
        let suspicion =
            Suspicion::new(id, suspect.incarnation, suspect.from.clone(), now, k, min, max).with_floor(floor);
        let at = suspicion.deadline;
        self.suspicions.insert(slot, suspicion);
        self.set_timer(at, TimerKind::Suspicion { slot, id });
    }

    // Rare next to `Alive` (deaths, leaves, suspicions): kept out of line
    // so that the `Alive` path inlines what it calls.
    #[inline(never)]
    fn on_confirm(&mut self, now: Time, confirm: Confirm, found: Option<Slot>, encoded: Option<&[u8]>) {
        let Some(slot) = found else { return };
        let entry = self.members.get(slot).expect("found");
        let declare = match entry.member.status {
            MemberStatus::Alive | MemberStatus::Suspect => confirm.incarnation >= entry.member.incarnation,
            MemberStatus::Left => confirm.incarnation > entry.member.incarnation,
            MemberStatus::Dead => {
                if confirm.incarnation < entry.member.incarnation {
                    return;
                }
                self.members.update(slot, |m| m.incarnation = confirm.incarnation);
                // Another confirmer of the same death: evidence for the
                // heal layer, nothing to disseminate.
                self.heard_again(slot);
                let added = self.members.death_mut(slot).is_some_and(|death| death.add_confirmer(&confirm.from));
                if added {
                    let member = self.members.get(slot).expect("found").member.id.clone();
                    self.signals.push_with(|| Signal::DeathConfirmed {
                        member,
                        incarnation: confirm.incarnation,
                        by: confirm.from,
                    });
                }
                return;
            }
        };
        if !declare {
            return;
        }
        self.members.record_death(slot, Death::new(now, confirm.from.clone()));
        self.members.change(slot, MemberStatus::Dead, now, |m| m.incarnation = confirm.incarnation);
        self.suspicions.remove(&slot);
        tracing::info!(member = %confirm.node, incarnation = confirm.incarnation, by = %confirm.from, "member failed");
        let confirmed = self.signals.enabled().then(|| (confirm.incarnation, confirm.from.clone()));
        self.forward(slot, Update::Confirm(confirm), encoded);
        let member = self.member_of(slot);
        let id = confirmed.is_some().then(|| member.id.clone());
        self.emit(Event::MemberFailed(member));
        if let (Some((incarnation, by)), Some(member)) = (confirmed, id) {
            self.signals.push_with(|| Signal::DeathConfirmed { member, incarnation, by });
        }
    }

    // Rare next to `Alive` (deaths, leaves, suspicions): kept out of line
    // so that the `Alive` path inlines what it calls.
    #[inline(never)]
    fn on_leave(&mut self, now: Time, leave: Leave, found: Option<Slot>, encoded: Option<&[u8]>) {
        let Some(slot) = found else { return };
        let entry = self.members.get(slot).expect("found");
        if entry.member.status == MemberStatus::Left {
            if leave.incarnation > entry.member.incarnation {
                self.members.update(slot, |m| m.incarnation = leave.incarnation);
            }
            return;
        }
        if leave.incarnation < entry.member.incarnation {
            return;
        }
        self.members.change(slot, MemberStatus::Left, now, |m| m.incarnation = leave.incarnation);
        self.suspicions.remove(&slot);
        tracing::info!(member = %leave.node, incarnation = leave.incarnation, "member left");
        self.forward(slot, Update::Leave(leave), encoded);
        let member = self.member_of(slot);
        self.emit(Event::MemberLeft(member));
    }
}
