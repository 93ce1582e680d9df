//! SWIM's probe target selection: a shuffled round-robin over the members,
//! so every member is probed once per round (bounded detection time) while
//! the order stays unpredictable. New members go to a random position of
//! the rest of the round. Also the state of the probe in flight and of the
//! indirect probes this node relays for others.
//!
//! ## Two rounds: verified and unverified members
//!
//! Members this node has heard from directly (verified, see
//! `Entry::verified`) and members only ever claimed by others each have
//! their own round. Each probe goes to the unverified round with the
//! unverified members' share of the table (as one round over all would),
//! but never twice in a row: at most every other probe goes to an
//! unverified member. Without a flood that is the usual pace for everyone
//! (newcomers are a small share); with one, a flood
//! of forged members (issue #15: a thousand made-up names for fifteen real
//! ones) then costs the real members half their probing pace, not a
//! thousandfold: a real crash is still found within two rounds of the
//! verified members, while the forged ones are still probed, suspected and
//! declared dead in turn. A member moves to the verified round as soon as
//! it answers.
//!
//! ## The stream fallback
//!
//! Under datagram loss a live member's ack, and every relay's, can all be
//! lost: at 10% loss a probe fails outright about once in a few hundred,
//! which at 128 nodes was ~30 suspicions of live members per simulated
//! minute, each costing gossip, a refutation and sometimes a false death.
//! So when the direct ping gets no ack within `probe_timeout`, the probe
//! also pings its target over a stream ([`StreamPing`], memberlist's TCP
//! ping) until the period ends: a stream is not subject to datagram loss,
//! only to a real partition or crash. Its ack counts like any other ack to
//! the probe. The indirect probes wait a moment for it
//! (`Swim::stream_first_wait`: 50 ms with the `lan` timings, at most
//! [`STREAM_FIRST_MAX_WAIT`], never so long that the relays' nacks would
//! miss the period) and are not sent at all if it answers by then: at 10%
//! loss they were half of all datagrams (memberlist sends both at once).
//! A stream that fails (refused: the process is gone) sends them at once. The request is
//! the ordinary sealed `Ping` frame and the answer the ordinary `Ack`
//! frame ([`Swim::handle_stream_request`] tells them from push-pulls), so
//! no wire change. At most one per probe, so at most one per period; the
//! driver drops a fallback it has no room for. See
//! [`Config::stream_pings`](crate::Config::stream_pings).
//!
//! Verified members always get one. Unverified members (only claimed by
//! others) get one too while such pings keep being answered: right after
//! a join most of the table is unverified for a round or two (a member is
//! verified once it answered this node, or pinged it), and on real
//! sockets at 10% loss those probes were most of the false suspicions
//! left. But a forged member's address must not turn every node into a
//! connection scanner (issue #15's flood): after
//! [`UNVERIFIED_STRIKES`] unverified stream pings in a row failed (refused,
//! timed out, answered wrongly), only one in [`UNVERIFIED_TRIAL_EVERY`]
//! goes out (counted in `stream_pings_withheld`) until one is answered
//! again. A flood thus costs each node a connection attempt every
//! sixteen probes of forged members at most, not one per probe.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use gossamer_wire::{Ack, DecodeError, Message, NodeName, Packet, Ping, SeqNo};
use rand_core::RngCore;

use crate::member::Slot;
use crate::swim::{after, Swim};
use crate::Time;

/// One shuffled round-robin over member slots.
#[derive(Default)]
pub(crate) struct Round {
    order: Vec<Slot>,
    cursor: usize,
}

/// Round-robin probe order over member slots: the verified members' round
/// and the unverified members' round, taking turns (see the module docs).
#[derive(Default)]
pub(crate) struct ProbeOrder {
    verified: Round,
    unverified: Round,
    /// The last probe went to the unverified round.
    last_unverified: bool,
    /// A suspect to probe next, out of turn (`Config::suspect_probers`).
    soon: Option<Slot>,
    /// The last probe was such an out-of-turn one (never two in a row).
    last_soon: bool,
}

impl ProbeOrder {
    /// The next member to probe: `class` says of a slot whether it is
    /// probeable (`Some`) and verified (`Some(true)`). `unverified` of
    /// `total` members are unverified: the unverified round gets that share
    /// of the probes, never two in a row (module docs); a round with nobody
    /// to probe gives its turn to the other. With no unverified member the
    /// unverified round is not looked at (no draw, no rescan of the table).
    pub(crate) fn next<I: Iterator<Item = Slot> + Clone>(
        &mut self,
        rng: &mut impl RngCore,
        all: I,
        unverified: usize,
        total: usize,
        class: impl Fn(Slot) -> Option<bool>,
    ) -> Option<Slot> {
        if let Some(slot) = self.soon.take() {
            if !self.last_soon && class(slot).is_some() {
                self.last_soon = true;
                return Some(slot);
            }
        }
        self.last_soon = false;
        let any_unverified = unverified > 0;
        let unverified_turn = any_unverified && !self.last_unverified && below(rng, total.max(1)) < unverified;
        self.last_unverified = false;
        if unverified_turn {
            if let Some(slot) = self.unverified.next(rng, all.clone(), |s| class(s) == Some(false)) {
                self.last_unverified = true;
                return Some(slot);
            }
        }
        if let Some(slot) = self.verified.next(rng, all.clone(), |s| class(s) == Some(true)) {
            return Some(slot);
        }
        if !unverified_turn && any_unverified {
            self.last_unverified = true;
            return self.unverified.next(rng, all, |s| class(s) == Some(false));
        }
        None
    }

    /// Probes `slot` next, out of turn, unless the last probe already was
    /// out of turn (then it is dropped: the round reaches it in time). A
    /// later call replaces an earlier one not yet used, so a burst of
    /// suspicions costs one reordered probe, not more probes.
    ///
    /// Only a `verified` member is probed out of turn: unverified ones keep
    /// their bounded share of the round. Otherwise a flood of forged
    /// members (each suspected, since nobody answers at their addresses)
    /// would replace a real suspect here again and again, and no member
    /// would ever check it itself: no confirmation would come, and every
    /// suspicion would wait its longest (`hostile-flood.toml` seed 19 with
    /// the `fast` timings: the crashed member never declared dead).
    pub(crate) fn probe_soon(&mut self, slot: Slot, verified: bool) {
        if verified {
            self.soon = Some(slot);
        }
    }

    /// Room for `additional` more verified members (a bulk adoption
    /// reserves once).
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.verified.reserve(additional);
    }

    /// Appends a verified member to its round without placing it at
    /// random: only for a bulk adoption, which ends with
    /// [`ProbeOrder::shuffle_rest`].
    pub(crate) fn push_unshuffled(&mut self, slot: Slot) {
        self.verified.push_unshuffled(slot);
    }

    /// Shuffles the rest of the verified round (see [`Round::shuffle_rest`]).
    pub(crate) fn shuffle_rest(&mut self, rng: &mut impl RngCore) {
        self.verified.shuffle_rest(rng);
    }

    /// Adds a member (new, or back from the dead) at a random position of
    /// the remaining round of its kind.
    pub(crate) fn insert(&mut self, rng: &mut impl RngCore, slot: Slot, verified: bool) {
        if verified {
            self.verified.insert(rng, slot);
        } else {
            self.unverified.insert(rng, slot);
        }
    }
}

fn below(rng: &mut impl RngCore, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

impl Round {
    /// The next slot for which `probeable` holds. Starts a new shuffled
    /// round from `all` when the current one is used up.
    pub(crate) fn next(
        &mut self,
        rng: &mut impl RngCore,
        all: impl Iterator<Item = Slot>,
        mut probeable: impl FnMut(Slot) -> bool,
    ) -> Option<Slot> {
        let mut all = Some(all);
        loop {
            while self.cursor < self.order.len() {
                let slot = self.order[self.cursor];
                self.cursor += 1;
                if probeable(slot) {
                    return Some(slot);
                }
            }
            // Round over: reshuffle (once per call).
            let all = all.take()?;
            self.order.clear();
            self.order.extend(all.filter(|&s| probeable(s)));
            self.cursor = 0;
            for i in (1..self.order.len()).rev() {
                let j = below(rng, i + 1);
                self.order.swap(i, j);
            }
            self.order.shrink_to(self.order.len() * 2);
        }
    }

    /// Room for `additional` more members.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.order.reserve_exact(additional);
    }

    /// Appends a member to the round without placing it at random: only
    /// for a bulk adoption, which ends with [`Round::shuffle_rest`].
    pub(crate) fn push_unshuffled(&mut self, slot: Slot) {
        self.order.push(slot);
    }

    /// Shuffles the rest of the round (old and new members alike), so that
    /// members added by [`Round::push_unshuffled`] end up at uniformly
    /// random positions of it, as [`Round::insert`] would place them.
    pub(crate) fn shuffle_rest(&mut self, rng: &mut impl RngCore) {
        let rest = &mut self.order[self.cursor..];
        for i in (1..rest.len()).rev() {
            let j = below(rng, i + 1);
            rest.swap(i, j);
        }
    }

    /// Adds a member at a random position of the remaining round.
    pub(crate) fn insert(&mut self, rng: &mut impl RngCore, slot: Slot) {
        self.order.push(slot);
        let remaining = self.order.len() - self.cursor;
        let j = self.cursor + below(rng, remaining);
        let last = self.order.len() - 1;
        self.order.swap(j, last);
    }
}

/// The probe this node has in flight (one per protocol period).
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    pub seq: SeqNo,
    pub slot: Slot,
    pub target: NodeName,
    /// When the direct probe timeout fires.
    pub timeout_at: Time,
    /// When the ping went out (for the round-trip histogram).
    pub sent_at: Time,
    pub acked: bool,
    pub indirect_sent: bool,
    /// The stream fallback was considered (prepared or not): once per probe.
    pub stream_tried: bool,
    pub expected_nacks: u32,
    pub nacks: u32,
    /// The stream fallback for this probe, until the driver takes it
    /// ([`Swim::poll_stream_ping`]).
    pub stream_ping: Option<StreamPing>,
}

/// Largest frame of a fallback ping or its ack (a `Ping` names two nodes
/// and one address, an `Ack` one node: well under 1 KiB even with a
/// 255-byte label and a key). A stream request this short is first tried
/// as a ping; the driver caps the ack it reads at this.
pub const MAX_STREAM_PING_FRAME: usize = 2048;

/// The longest the indirect probes wait for a stream ping's answer
/// ([`Swim::stream_first_wait`]): a TCP exchange on a LAN takes about a
/// millisecond, so this is room for a loaded host, not for the network.
pub(crate) const STREAM_FIRST_MAX_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Unverified stream pings failing in a row after which they are withheld
/// (see the module docs): a few, so a crashed newcomer or two do not stop
/// them, while a flood of forged addresses does at once.
pub(crate) const UNVERIFIED_STRIKES: u32 = 3;

/// Once withheld, one unverified stream ping in this many still goes out,
/// so that the fallback comes back when unverified members answer again.
pub(crate) const UNVERIFIED_TRIAL_EVERY: u32 = 16;

/// How the stream pings to unverified members fare (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct UnverifiedPings {
    /// The address of the unverified stream ping prepared, not yet taken
    /// by the driver.
    staged: Option<SocketAddr>,
    /// The address of the unverified stream ping the driver runs, until
    /// its outcome is known.
    pending: Option<SocketAddr>,
    /// Unverified stream pings failed in a row.
    strikes: u32,
    /// Unverified stream pings withheld since the last one let through.
    withheld: u32,
}

impl UnverifiedPings {
    /// Whether an unverified member may get a stream ping now.
    fn allow(&mut self) -> bool {
        if self.strikes < UNVERIFIED_STRIKES {
            return true;
        }
        self.withheld += 1;
        if self.withheld >= UNVERIFIED_TRIAL_EVERY {
            self.withheld = 0;
            return true;
        }
        false
    }

    /// The unverified stream ping to `to` ended: answered (`ok`) or not.
    fn outcome(&mut self, to: SocketAddr, ok: bool) {
        if self.pending != Some(to) {
            return;
        }
        self.pending = None;
        if ok {
            self.strikes = 0;
            self.withheld = 0;
        } else {
            self.strikes = self.strikes.saturating_add(1);
        }
    }
}

/// A fallback ping over a stream, for the driver (see the module docs):
/// open a stream to `to`, write `request` (one frame), read one frame of
/// at most [`MAX_STREAM_PING_FRAME`] bytes and pass it to
/// [`Swim::handle_stream_ping_response`]; give up at `deadline` (the end
/// of the probe's period, after which an ack no longer counts) and call
/// [`Swim::stream_ping_failed`]. The peer's driver hands the request to
/// [`Swim::handle_stream_request`] like any inbound stream, so it is
/// subject to the same admission limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPing {
    /// The probed member's address.
    pub to: SocketAddr,
    /// A sealed `Ping` frame.
    pub request: Bytes,
    /// When the probe's period ends: no point waiting longer.
    pub deadline: Time,
}

impl<R: RngCore> Swim<R> {
    /// The direct probe timed out: prepare its stream fallback, if
    /// enabled and the target is verified, or unverified while such pings
    /// are answered (see the module docs). Called by `probe_timeout`,
    /// once per probe, before the indirect probes: returns when they are
    /// due if they should wait for the stream's answer
    /// ([`Swim::stream_first_wait`]), `None` to send them now.
    pub(crate) fn start_stream_ping(&mut self, now: Time) -> Option<Time> {
        if !self.config.stream_pings {
            return None;
        }
        let period = self.awareness.scale(self.config.probe_interval);
        let probe = self.probe.as_mut()?;
        if probe.acked || probe.stream_tried {
            return None;
        }
        probe.stream_tried = true;
        let deadline = after(probe.sent_at, period);
        let entry = self.members.get(probe.slot)?;
        if deadline <= now || entry.member.id.name != probe.target {
            return None;
        }
        let to = entry.member.id.addr;
        let verified = entry.verified();
        if !verified && !self.unverified_pings.allow() {
            self.stats.stream_pings_withheld += 1;
            tracing::debug!(target_node = %probe.target, %to, "stream ping to an unverified member withheld");
            return None;
        }
        let ping = Message::Ping(Ping { seq: probe.seq, target: probe.target.clone(), from: self.local.clone() });
        let mut buf = BytesMut::new();
        if let Err(error) = self.codec.encode(&Packet::new(ping), &mut buf) {
            tracing::warn!(%to, %error, "encoding a stream ping failed");
            return None;
        }
        let request = buf.freeze();
        tracing::debug!(target_node = %probe.target, %to, "no direct ack: pinging over a stream too");
        self.unverified_pings.staged = (!verified).then_some(to);
        if let Some(probe) = &mut self.probe {
            probe.stream_ping = Some(StreamPing { to, request, deadline });
        }
        let wait = self.stream_first_wait();
        (!wait.is_zero()).then(|| after(now, wait))
    }

    /// How long the indirect probes wait for the stream ping's answer
    /// (see the module docs): half the slack the period leaves after the
    /// direct probe's timeout and the relays' nack wait (0.8 ×
    /// `probe_timeout`), so the relays' nacks still arrive before the
    /// period ends (Lifeguard counts them), at most
    /// [`STREAM_FIRST_MAX_WAIT`]. 50 ms with the `lan` timings (1 s
    /// period, 500 ms timeout), none with `wan`'s (the indirect probes go
    /// out with the stream ping, as memberlist's do).
    pub(crate) fn stream_first_wait(&self) -> std::time::Duration {
        let period = self.awareness.scale(self.config.probe_interval);
        let timeout = self.awareness.scale(self.config.probe_timeout);
        let relays = self.relay_nack_wait();
        let slack = period.saturating_sub(timeout).saturating_sub(relays);
        (slack / 2).min(STREAM_FIRST_MAX_WAIT)
    }

    /// The fallback ping to run now, if any (see [`StreamPing`]). Drain it
    /// with [`Swim::poll_output`] after every input; at most one is ever
    /// pending (that of the probe in flight), so a driver that never calls
    /// this holds nothing and gets datagram probes only.
    pub fn poll_stream_ping(&mut self) -> Option<StreamPing> {
        let ping = self.probe.as_mut()?.stream_ping.take()?;
        if self.unverified_pings.staged.take() == Some(ping.to) {
            self.unverified_pings.pending = Some(ping.to);
        }
        // Counted once the driver takes it.
        self.stats.stream_pings += 1;
        self.stats.messages_out += 1;
        self.stats.bytes_out += ping.request.len() as u64;
        self.stats.traffic_out.count(crate::metrics::TrafficKind::Probe, ping.request.len());
        Some(ping)
    }

    /// A stream opened by a peer delivered its request frame: a fallback
    /// ping (a short frame holding a `Ping` for this node) is answered
    /// with an `Ack` frame, anything else goes to
    /// [`Swim::handle_push_pull_request`]. Returns the frame to write back,
    /// or `None` if the request was refused (logged, counted).
    pub fn handle_stream_request(&mut self, now: Time, from: SocketAddr, frame: &[u8]) -> Option<Bytes> {
        // Only a short frame can be a ping; a push-pull this short (a few
        // members) is decoded twice, which costs next to nothing.
        if frame.len() <= MAX_STREAM_PING_FRAME {
            if let Ok(Packet { message: Message::Ping(ping), .. }) = self.codec.decode(frame) {
                return self.answer_stream_ping(now, from, frame.len(), ping);
            }
        }
        self.handle_push_pull_request(now, from, frame)
    }

    fn answer_stream_ping(&mut self, now: Time, from: SocketAddr, len: usize, ping: Ping) -> Option<Bytes> {
        self.tick(now);
        self.stats.messages_in += 1;
        self.stats.bytes_in += len as u64;
        self.stats.traffic_in.count(crate::metrics::TrafficKind::Probe, len);
        if ping.target != self.local.name {
            tracing::debug!(%from, target_node = %ping.target, "stream ping for another node");
            return None;
        }
        let ack = Message::Ack(Ack { seq: ping.seq, from: self.local.name.clone() });
        let mut buf = BytesMut::new();
        if let Err(error) = self.codec.encode(&Packet::new(ack), &mut buf) {
            tracing::warn!(%from, %error, "encoding a stream ack failed");
            return None;
        }
        let ack = buf.freeze();
        self.stats.messages_out += 1;
        self.stats.bytes_out += ack.len() as u64;
        self.stats.traffic_out.count(crate::metrics::TrafficKind::Ack, ack.len());
        Some(ack)
    }

    /// The answer to a [`StreamPing`] this node sent to `from`: an ack to
    /// the probe in flight counts as its ack (too late, or for another
    /// probe, it is ignored; nothing else is accepted on this stream).
    pub fn handle_stream_ping_response(&mut self, now: Time, from: SocketAddr, frame: &[u8]) {
        self.tick(now);
        self.stats.messages_in += 1;
        self.stats.bytes_in += frame.len() as u64;
        self.stats.traffic_in.count(crate::metrics::TrafficKind::Ack, frame.len());
        if frame.len() > MAX_STREAM_PING_FRAME {
            let error = DecodeError::TooLarge { len: frame.len() as u64, max: MAX_STREAM_PING_FRAME as u32 };
            self.reject(now, from, "stream ack", &error);
            return;
        }
        let ack = match self.codec.decode(frame) {
            Ok(Packet { message: Message::Ack(ack), .. }) => ack,
            Ok(_) => {
                self.unverified_pings.outcome(from, false);
                self.stats.rejected += 1;
                tracing::debug!(%from, "stream ping answered with something else than an ack");
                return;
            }
            Err(error) => {
                self.unverified_pings.outcome(from, false);
                self.reject(now, from, "stream ack", &error);
                return;
            }
        };
        // A node of this cluster answered at that address (in time or not).
        self.unverified_pings.outcome(from, true);
        let ours = self.probe.as_ref().is_some_and(|probe| {
            probe.seq == ack.seq
                && probe.target == ack.from
                && self.members.get(probe.slot).is_some_and(|e| e.member.id.addr == from)
        });
        if !ours {
            self.stats.stream_ping_acks_late += 1;
            tracing::debug!(%from, seq = ack.seq, "stream ack for no probe in flight (late?)");
            return;
        }
        let Some(probe) = &self.probe else { return };
        if !probe.acked {
            self.stats.stream_ping_acks += 1;
            tracing::debug!(target_node = %ack.from, "probe answered over the stream only");
        }
        self.on_ack(now, ack);
    }

    /// The [`StreamPing`] to `to` failed (refused, cut, past its deadline,
    /// or the driver had no room for it): counted; the probe concludes at
    /// the end of its period as usual.
    pub fn stream_ping_failed(&mut self, now: Time, to: SocketAddr) {
        self.tick(now);
        self.stats.stream_ping_failures += 1;
        self.unverified_pings.outcome(to, false);
        tracing::debug!(%to, "stream ping failed");
        // The indirect probes waiting for it go out now.
        let waiting = self.probe.as_mut().filter(|p| p.stream_tried && !p.indirect_sent && !p.acked);
        if let Some(probe) = waiting {
            let seq = probe.seq;
            if now < probe.timeout_at && self.members.get(probe.slot).is_some_and(|e| e.member.id.addr == to) {
                probe.timeout_at = now;
                self.probe_timeout(now, seq);
            }
        }
    }
}

/// An indirect probe relayed for another member.
#[derive(Debug, Clone)]
pub(crate) struct Relay {
    /// The requester's sequence number.
    pub seq: SeqNo,
    pub requester: SocketAddr,
    /// When to send the requester a `Nack`.
    pub deadline: Time,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn every_member_once_per_round() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut order = Round::default();
        let mut seen = Vec::new();
        for _ in 0..10 {
            seen.push(order.next(&mut rng, 0..10, |s| s != 3).unwrap());
        }
        // Nine probeable slots: one full round plus the first of the next.
        let mut round: Vec<_> = seen[..9].to_vec();
        round.sort();
        assert_eq!(round, [0, 1, 2, 4, 5, 6, 7, 8, 9]);
        assert!(order.next(&mut rng, 0..0, |_| true).is_some(), "rest of the round remains");
    }

    #[test]
    fn empty_gives_none_and_insert_joins_round() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut order = Round::default();
        assert_eq!(order.next(&mut rng, 0..0, |_| true), None);
        order.insert(&mut rng, 42);
        assert_eq!(order.next(&mut rng, 0..0, |_| true), Some(42));
        assert_eq!(order.next(&mut rng, 0..0, |_| true), None);
    }

    /// Issue #19: only a verified suspect is probed out of turn, so a flood
    /// of forged suspects cannot keep displacing a real one.
    #[test]
    fn only_verified_members_are_probed_out_of_turn() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let class = |s: Slot| Some(s < 4);
        let mut order = ProbeOrder::default();
        order.probe_soon(2, true);
        order.probe_soon(900, false);
        assert_eq!(order.next(&mut rng, 0..1000, 996, 1000, class), Some(2), "the forged suspect did not replace it");
        let mut order = ProbeOrder::default();
        order.probe_soon(900, false);
        assert_ne!(
            order.next(&mut rng, 0..1000, 996, 1000, class),
            Some(900),
            "an unverified suspect waits for its turn"
        );
    }

    #[test]
    fn unverified_members_get_every_other_probe_at_most() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut order = ProbeOrder::default();
        // Slots 0..4 verified, 4..1000 not (a flood of forged members).
        let class = |s: Slot| Some(s < 4);
        let picks: Vec<Slot> = (0..400).map(|_| order.next(&mut rng, 0..1000, 996, 1000, class).unwrap()).collect();
        let verified = picks.iter().filter(|&&s| s < 4).count();
        assert!((200..215).contains(&verified), "about half the probes go to the four verified members: {verified}");
        assert!(picks.windows(2).all(|w| w[0] < 4 || w[1] < 4), "never two unverified probes in a row");
        let per_member: Vec<usize> = (0..4).map(|v| picks.iter().filter(|&&s| s == v).count()).collect();
        assert!(per_member.iter().all(|&n| n.abs_diff(verified / 4) <= 1), "round-robin: {per_member:?}");
        // A few unverified members (newcomers): their share, as one round over all would.
        let mut order = ProbeOrder::default();
        let class = |s: Slot| Some(s >= 4);
        let picks: Vec<Slot> = (0..1000).map(|_| order.next(&mut rng, 0..40, 4, 40, class).unwrap()).collect();
        let unverified = picks.iter().filter(|&&s| s < 4).count();
        assert!((60..140).contains(&unverified), "about a tenth of the probes: {unverified}");
        // No unverified member: every probe goes to the verified round.
        let class = |s: Slot| Some(s < 4);
        let picks: Vec<Slot> = (0..8).map(|_| order.next(&mut rng, 0..4, 0, 4, class).unwrap()).collect();
        assert!(picks.iter().all(|&s| s < 4));
        // No verified member (a node that just joined): unverified ones get every turn.
        let mut order = ProbeOrder::default();
        let picks: Vec<Slot> = (0..6).map(|_| order.next(&mut rng, 4..10, 6, 7, |_| Some(false)).unwrap()).collect();
        let mut sorted = picks.clone();
        sorted.sort();
        assert_eq!(sorted, [4, 5, 6, 7, 8, 9]);
    }
}
