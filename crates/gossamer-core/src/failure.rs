//! Failure detection: the probe of each protocol period (ping, then
//! ping-req through `indirect_checks` members, then suspicion), answering
//! and relaying probes for others, Lifeguard's nacks and local health, and
//! the expiry of suspicions.
//!
//! Direct contact verifies a member (see `Entry::verified`): an ack to this
//! node's own probe, a ping, ping-req or nack whose sender is the member at
//! its known address. Relays are picked among verified members (unverified
//! ones only if none is verified), and a failed probe of an unverified
//! member with no relay able to nack does not count against this node's
//! health: a forged member never answers, and that says nothing of us.

use std::net::SocketAddr;
use std::time::Duration;

use gossamer_wire::{Ack, Confirm, MemberStatus, Message, Nack, NodeName, Ping, PingReq, SeqNo, Suspect, Update};
use rand_core::RngCore;

use crate::member::Slot;
use crate::probe::{Probe, Relay};
use crate::swim::{after, Swim};
use crate::timer::TimerKind;
use crate::Time;

/// Refutations older than this many probe intervals no longer set the
/// suspicion floor (`Config::suspicion_refute_mult`). Short, so that the
/// floor follows conditions now (a cut refuted through bridges keeps
/// refreshing it) rather than a slow refutation of minutes ago: with 300,
/// a refutation during a 128-node join on loopback still tripled the wait
/// for a crash more than a minute later (all know dead 8.75 s instead of
/// about 4.5).
const REFUTE_WINDOW_PERIODS: u32 = 30;

/// How many of the members that last answered this node's probes directly
/// it keeps, to draw indirect-probe relays from.
pub(crate) const RECENT_ANSWERS: usize = 8;

impl<R: RngCore> Swim<R> {
    /// Start of a protocol period: conclude the previous probe, then probe
    /// the next member of the round.
    pub(crate) fn probe_period(&mut self, now: Time) {
        self.finish_probe(now);
        if self.leaving.is_some() {
            return;
        }
        self.start_probe(now);
    }

    /// The period is over: a probe with no ack makes its target suspect,
    /// and tells us something about our own health.
    fn finish_probe(&mut self, now: Time) {
        let Some(probe) = self.probe.take() else { return };
        if probe.acked {
            return;
        }
        // Lifeguard: with relays that could nack, missing nacks mean *we*
        // are probably the problem; with none, any failed probe counts.
        let Some(entry) = self.members.get(probe.slot) else { return };
        let delta = if probe.expected_nacks > 0 {
            i64::from(probe.expected_nacks.saturating_sub(probe.nacks))
        } else {
            i64::from(entry.verified())
        };
        self.awareness.apply(delta);
        // A suspect still counts: our own accusation may confirm another's.
        if entry.member.id.name != probe.target
            || !matches!(entry.member.status, MemberStatus::Alive | MemberStatus::Suspect)
        {
            return;
        }
        let incarnation = entry.member.incarnation;
        tracing::debug!(target_node = %probe.target, incarnation, "probe failed; suspecting");
        self.stats.suspicions += 1;
        let from = self.local.name.clone();
        self.apply_update(now, Update::Suspect(Suspect { node: probe.target, incarnation, from }));
        if let Some(suspicion) = self.suspicions.get_mut(&probe.slot) {
            suspicion.first_hand = true;
        }
    }

    fn start_probe(&mut self, now: Time) {
        let me = self.self_slot;
        let members = &self.members;
        let (unverified, total) = (members.unverified(), members.len());
        let Some(slot) =
            self.order.next(&mut self.rng, members.iter().map(|(slot, _)| slot), unverified, total, |slot| {
                if slot == me {
                    return None;
                }
                members
                    .get(slot)
                    .filter(|e| matches!(e.member.status, MemberStatus::Alive | MemberStatus::Suspect))
                    .map(|e| e.verified())
            })
        else {
            return;
        };
        let Some(entry) = self.members.get(slot) else { return };
        let target = entry.member.id.name.clone();
        let addr = entry.member.id.addr;
        // Buddy system: a suspect learns it directly, first thing in the packet.
        let buddy = (entry.member.status == MemberStatus::Suspect).then(|| {
            Update::Suspect(Suspect {
                node: target.clone(),
                incarnation: entry.member.incarnation,
                from: self.local.name.clone(),
            })
        });
        let seq = self.next_seq();
        let timeout_at = after(now, self.awareness.scale(self.config.probe_timeout));
        self.probe = Some(Probe {
            seq,
            slot,
            target: target.clone(),
            timeout_at,
            sent_at: now,
            acked: false,
            indirect_sent: false,
            stream_tried: false,
            expected_nacks: 0,
            nacks: 0,
            stream_ping: None,
        });
        self.stats.probes += 1;
        let ping = Message::Ping(Ping { seq, target, from: self.local.clone() });
        self.send(addr, &ping, buddy.as_ref());
        self.set_timer(timeout_at, TimerKind::ProbeTimeout { seq });
    }

    /// No direct ack in time: ask `indirect_checks` random alive members.
    pub(crate) fn probe_timeout(&mut self, now: Time, seq: SeqNo) {
        let Some(probe) = &self.probe else { return };
        if probe.seq != seq || probe.acked || probe.indirect_sent {
            return;
        }
        if now < probe.timeout_at {
            let at = probe.timeout_at;
            self.set_timer(at, TimerKind::ProbeTimeout { seq });
            return;
        }
        // Datagrams may be what is lost: try a stream first, and give it a
        // moment before the indirect probes go out (see `probe`).
        if !probe.stream_tried {
            self.stats.probe_timeouts += 1;
            if let Some(at) = self.start_stream_ping(now) {
                if let Some(probe) = &mut self.probe {
                    probe.timeout_at = at;
                }
                self.set_timer(at, TimerKind::ProbeTimeout { seq });
                return;
            }
        }
        let Some(probe) = &self.probe else { return };
        let (target_slot, target_name) = (probe.slot, probe.target.clone());
        let Some(target) = self.members.get(target_slot).map(|e| e.member.id.clone()) else { return };
        if target.name != target_name {
            return;
        }
        let me = self.self_slot;
        let mut relays = std::mem::take(&mut self.sampled);
        let relay = |slot: Slot, e: &crate::member::Entry| {
            slot != me && slot != target_slot && e.member.status == MemberStatus::Alive
        };
        // Verified relays only (a forged relay never nacks, and Lifeguard
        // would read its silence as our own ill health); unverified ones
        // only if no member is verified, and then no nack is expected.
        // First among the members that answered this node's own probes
        // lately: a relay that cannot reach this node (across a partition)
        // never nacks either, and Lifeguard would blame this node for it:
        // on a cut's minority side most relays drawn at random are across
        // it, and its probing slowed towards `awareness_max_multiplier`×
        // (`heal-70-30`, BENCHMARKS.md).
        let k = self.config.indirect_checks;
        self.recent_relays(k, &mut relays, &relay);
        let chosen = relays.len();
        if chosen < k {
            let mut more = std::mem::take(&mut self.relay_scratch);
            self.members.sample_verified(&mut self.rng, k - chosen, &mut more, |slot, e| {
                relay(slot, e) && !relays.contains(&slot)
            });
            relays.extend_from_slice(&more);
            self.relay_scratch = more;
        }
        let expected_nacks = relays.len() as u32;
        if relays.is_empty() {
            self.members.sample(&mut self.rng, self.config.indirect_checks, &mut relays, relay);
        }
        if let Some(probe) = &mut self.probe {
            probe.indirect_sent = true;
            probe.expected_nacks = expected_nacks;
        }
        let req = Message::PingReq(PingReq { seq, target, from: self.local.clone() });
        for &slot in &relays {
            if let Some(addr) = self.members.get(slot).map(|e| e.member.id.addr) {
                self.stats.indirect_probes += 1;
                self.send(addr, &req, None);
            }
        }
        self.sampled = relays;
    }

    /// Marks the member named `name` verified if it is known at `from`,
    /// the address the message came from (see the module docs). Costs
    /// nothing once every member is verified, and no lookup for the same
    /// sender as last time (a peer pinging again and again); a new member
    /// at that very address is still verified by its first ack.
    #[inline]
    fn heard_from(&mut self, from: SocketAddr, name: &gossamer_wire::NodeName) {
        if self.members.unverified() == 0 || self.last_heard_from == Some(from) {
            return;
        }
        let Some(slot) = self.members.find(name) else { return };
        if self.members.get(slot).is_some_and(|e| e.member.id.addr == from) {
            self.verify(slot);
            self.last_heard_from = Some(from);
        }
    }

    /// Marks the member in `slot` verified; a live one joins the verified
    /// probe round.
    pub(crate) fn verify(&mut self, slot: Slot) {
        if slot == self.self_slot || !self.members.set_verified(slot) {
            return;
        }
        let live = self
            .members
            .get(slot)
            .is_some_and(|e| matches!(e.member.status, MemberStatus::Alive | MemberStatus::Suspect));
        if live {
            self.order.insert(&mut self.rng, slot, true);
        }
    }

    pub(crate) fn on_ping(&mut self, _now: Time, from: SocketAddr, ping: Ping) {
        if ping.target != self.local.name {
            tracing::debug!(%from, target_node = %ping.target, "ping for another node (restarted under a new name?)");
            return;
        }
        if ping.from.addr == from {
            self.heard_from(from, &ping.from.name);
        }
        let ack = Message::Ack(Ack { seq: ping.seq, from: self.local.name.clone() });
        self.send(from, &ack, None);
    }

    pub(crate) fn on_ack(&mut self, now: Time, ack: Ack) {
        if let Some(probe) = &mut self.probe {
            if probe.seq == ack.seq && ack.from == probe.target {
                if !probe.acked {
                    probe.acked = true;
                    let slot = probe.slot;
                    if let Some(suspicion) = self.suspicions.get_mut(&slot) {
                        // Alive, whatever the gossip says: see `suspicion_timer`.
                        suspicion.answered = true;
                    }
                    self.awareness.apply(-1);
                    let direct = !probe.indirect_sent && !probe.stream_tried;
                    if direct {
                        self.stats.probe_rtt.observe(now.saturating_sub(probe.sent_at));
                    }
                    if self.members.unverified() > 0 {
                        self.verify(slot);
                    }
                    if direct {
                        self.answered(slot);
                    }
                }
                return;
            }
        }
        if let Some(relay) = self.relays.remove(&ack.seq) {
            let forward = Message::Ack(Ack { seq: relay.seq, from: ack.from });
            self.send(relay.requester, &forward, None);
            return;
        }
        self.reconnect_answered(ack.seq);
    }

    /// Fills `out` with up to `k` verified members that answered this
    /// node's own probes lately and pass `keep`, drawn at random (distinct:
    /// [`Swim::answered`] keeps each member once).
    fn recent_relays(&mut self, k: usize, out: &mut Vec<Slot>, keep: &impl Fn(Slot, &crate::member::Entry) -> bool) {
        out.clear();
        let candidates = self.recent_answers.len();
        if candidates == 0 || k == 0 {
            return;
        }
        // A random rotation of the ring, then the first `k` that qualify.
        let start = (self.rng.next_u64() % candidates as u64) as usize;
        for i in 0..candidates {
            let slot = self.recent_answers[(start + i) % candidates];
            if out.len() == k {
                break;
            }
            if self.members.get(slot).is_some_and(|e| e.verified() && keep(slot, &e)) {
                out.push(slot);
            }
        }
    }

    /// Remembers that the member in `slot` answered this node's probe.
    pub(crate) fn answered(&mut self, slot: Slot) {
        if self.recent_answers.contains(&slot) {
            return;
        }
        if self.recent_answers.len() == RECENT_ANSWERS {
            self.recent_answers.pop_front();
        }
        self.recent_answers.push_back(slot);
    }

    pub(crate) fn on_nack(&mut self, from: SocketAddr, nack: Nack) {
        self.heard_from(from, &nack.from);
        if let Some(probe) = &mut self.probe {
            if probe.seq == nack.seq && probe.indirect_sent && probe.nacks < probe.expected_nacks {
                probe.nacks += 1;
            }
        }
    }

    /// How long a relay waits for the target's ack before it nacks the
    /// requester: a little under `probe_timeout`, so the nack arrives
    /// before the requester's period ends and counts (Lifeguard). The
    /// stream-first wait (`probe`) leaves room for it.
    pub(crate) fn relay_nack_wait(&self) -> Duration {
        self.config.probe_timeout.mul_f64(0.8)
    }

    /// Probes the suspect in `slot` next, out of turn, if it is verified
    /// (see `ProbeOrder::probe_soon`).
    fn probe_suspect_soon(&mut self, slot: Slot) {
        let verified = self.members.is_verified(slot);
        self.order.probe_soon(slot, verified);
    }

    /// Relay an indirect probe: ping the target with our own sequence
    /// number, forward its ack, or nack if none comes in time.
    pub(crate) fn on_ping_req(&mut self, now: Time, from: SocketAddr, req: PingReq) {
        if req.from.addr == from {
            self.heard_from(from, &req.from.name);
        }
        if req.target.name == self.local.name {
            let ack = Message::Ack(Ack { seq: req.seq, from: self.local.name.clone() });
            self.send(from, &ack, None);
            return;
        }
        if self.relays.len() >= self.config.max_relays {
            tracing::debug!(%from, "too many indirect probes in flight; ping-req dropped");
            return;
        }
        let seq = self.next_seq();
        let deadline = after(now, self.relay_nack_wait());
        self.relays.insert(seq, Relay { seq: req.seq, requester: from, deadline });
        let ping = Message::Ping(Ping { seq, target: req.target.name, from: self.local.clone() });
        self.send(req.target.addr, &ping, None);
        self.set_timer(deadline, TimerKind::Relay { seq });
    }

    pub(crate) fn relay_timer(&mut self, now: Time, seq: SeqNo) {
        let Some(relay) = self.relays.get(&seq) else { return };
        if now < relay.deadline {
            let at = relay.deadline;
            self.set_timer(at, TimerKind::Relay { seq });
            return;
        }
        let Some(relay) = self.relays.remove(&seq) else { return };
        let nack = Message::Nack(Nack { seq: relay.seq, from: self.local.name.clone() });
        self.send(relay.requester, &nack, None);
    }

    /// This node just learned that the member in `slot` is suspected by
    /// `from`: with `Config::suspect_probers` set, probe it next with
    /// probability `suspect_probers / live members` (see the config docs),
    /// unless the accuser is this node (it just probed it).
    pub(crate) fn suspicion_heard(&mut self, slot: Slot, from: &NodeName) {
        let m = u64::from(self.config.suspect_probers);
        if m == 0 || *from == self.local.name {
            return;
        }
        let live = (self.members.count(MemberStatus::Alive) + self.members.count(MemberStatus::Suspect)) as u64;
        if self.rng.next_u64() % live.max(1) < m {
            self.stats.suspect_probes += 1;
            self.probe_suspect_soon(slot);
        }
    }

    /// Whether `accuser`'s suspicion of the member in `slot` may count as
    /// an independent confirmation: only a distinct member this node has
    /// heard from directly (verified), alive or suspect, and not the
    /// suspect itself. Anything else is counted as refused: a forged name
    /// never shortens a suspicion (see `suspicion`).
    pub(crate) fn counts_as_confirmation(&mut self, accuser: &NodeName, slot: Slot) -> bool {
        let ok = self.members.find(accuser).is_some_and(|a| {
            a != slot
                && self.members.is_verified(a)
                && self
                    .members
                    .get(a)
                    .is_some_and(|e| matches!(e.member.status, MemberStatus::Alive | MemberStatus::Suspect))
        });
        if !ok {
            self.stats.confirmations_refused += 1;
            tracing::debug!(%accuser, "suspicion from an unverified or unknown accuser: not a confirmation");
        }
        ok
    }

    /// The member in `slot` refuted this node's suspicion of it: remember
    /// how long that took (see `suspicion::RefuteTimes`).
    pub(crate) fn suspicion_refuted(&mut self, now: Time, slot: Slot) {
        let Some(suspicion) = self.suspicions.get(&slot) else { return };
        let took = now.saturating_sub(suspicion.start);
        let cap = self.config.probe_interval.saturating_mul(REFUTE_WINDOW_PERIODS);
        self.refute_times.record(now, took, cap);
    }

    /// The least a new suspicion waits from the refutations seen lately:
    /// `suspicion_refute_mult` times the slowest (zero when off or none).
    pub(crate) fn refutation_floor(&mut self, now: Time) -> Duration {
        let mult = self.config.suspicion_refute_mult;
        if mult <= 0.0 {
            return Duration::ZERO;
        }
        let window = self.config.probe_interval.saturating_mul(REFUTE_WINDOW_PERIODS);
        let floor = self.refute_times.slowest(now, window).map_or(Duration::ZERO, |d| d.mul_f64(mult));
        self.stats.refutation_floor_ms = floor.as_millis() as u64;
        floor
    }

    /// A suspicion's timer fired: if it is still the same suspicion and its
    /// (possibly shortened) deadline passed, the member is dead.
    pub(crate) fn suspicion_timer(&mut self, now: Time, slot: Slot, id: u64) {
        let Some(suspicion) = self.suspicions.get(&slot) else { return };
        if suspicion.id != id {
            return;
        }
        if now < suspicion.deadline {
            let at = suspicion.deadline;
            self.set_timer(at, TimerKind::Suspicion { slot, id });
            return;
        }
        let late = now.saturating_sub(suspicion.deadline);
        if late > self.config.probe_timeout {
            // Handled this late, this node was stalled (a pause, an
            // overloaded host): the suspect's refutation may be waiting
            // among the inputs queued meanwhile. Lifeguard: a slow node
            // does not accuse; it counts against its own health and gives
            // those inputs one probe timeout to be handled first.
            let at = after(now, self.config.probe_timeout);
            if let Some(suspicion) = self.suspicions.get_mut(&slot) {
                suspicion.deadline = at;
            }
            self.stats.stalled_suspicions += 1;
            self.awareness.apply(1);
            tracing::debug!(?late, "suspicion timer handled late (stalled?): deadline moved");
            self.set_timer(at, TimerKind::Suspicion { slot, id });
            return;
        }
        if self.config.probe_before_declaring
            && (suspicion.answered || (!suspicion.first_hand && suspicion.put_off == 0))
        {
            // Evidence first (issue #19): a suspect that answered this
            // node's own probe since the suspicion began is alive (its
            // refutation has not reached us: the ping carried our stale
            // claim, and its answer its `Alive`); one this node only heard
            // accused, it probes itself before declaring it dead (a
            // suspicion that arrived after the refutation had passed by
            // would otherwise end in a false death). The first accuser
            // probed it already, so a real death is not delayed there.
            let at = after(now, self.config.probe_interval.saturating_mul(2));
            if let Some(suspicion) = self.suspicions.get_mut(&slot) {
                suspicion.deadline = at;
                suspicion.put_off = suspicion.put_off.saturating_add(1);
                suspicion.answered = false;
            }
            self.stats.suspicions_put_off += 1;
            self.probe_suspect_soon(slot);
            self.set_timer(at, TimerKind::Suspicion { slot, id });
            return;
        }
        let incarnation = suspicion.incarnation;
        let Some(entry) = self.members.get(slot) else {
            self.suspicions.remove(&slot);
            return;
        };
        if entry.member.status != MemberStatus::Suspect || entry.member.incarnation != incarnation {
            self.suspicions.remove(&slot);
            return;
        }
        let node = entry.member.id.name.clone();
        tracing::info!(member = %node, incarnation, "suspicion timed out; declaring dead");
        let from = self.local.name.clone();
        self.apply_update(now, Update::Confirm(Confirm { node, incarnation, from }));
    }
}
