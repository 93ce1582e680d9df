//! The member table: every member this node knows, in slots that never move
//! while it holds the member (so the probe order and timers can name a
//! member by a 4-byte slot). A member's slot is its name's *identity id*
//! in the [`IdentityDirectory`]: a dense number the directory gives every
//! name some table holds, so the table needs no name index of its own
//! (`find` asks the directory for the id, then looks at that slot), and
//! the slots are a plain vector indexed by id, with holes for the names of
//! the directory this table does not hold (none in a private directory,
//! few in a converged simulator).
//!
//! Per member and node: 8 bytes of slot (the pointer to the member's
//! record, interned in the directory; the record itself, ~100 bytes, is
//! shared by every node of a simulator that holds the same state), 4 in
//! the probe order and a bit in the verified bitset: ~12 bytes. What only
//! dead or left members need lives in side maps keyed by slot: the death
//! record and the time of the last status change (nothing reads it for the
//! living), so the living (nearly all members, nearly always) pay nothing
//! for either. At 10,000 simulated nodes of 10,000 members each, every 8
//! bytes per member is 0.8 GB: the slot was 16 bytes and the per-node name
//! index ~8 more before (issue #16).
//!
//! The directory's name index hashes with [`foldhash`] rather than std's
//! SipHash: a member lookup by name is on the path of every piggybacked
//! update, and SipHash cost about as much as the rest of the lookup (issue
//! #8). The trade-off is DoS resistance: SipHash is keyed to resist an
//! attacker who picks keys to collide, foldhash is randomly seeded per
//! directory (never derived from the node's RNG, so the simulator's
//! decisions do not depend on it) and designed for *minimal* DoS
//! resistance only. That is enough here: names come from frames that
//! carried this cluster's label (and, with a keyring, authenticated
//! encryption), so whoever can make up names is already a member; and the
//! index decides nothing by its iteration order, only whether a name is
//! known. Slot numbers do not depend on hashes either: the directory hands
//! out the smallest free id, so they are a function of the operations.

use std::collections::HashMap;
use std::sync::Arc;

use gossamer_wire::{Incarnation, MemberStatus, Metadata, NodeId, NodeName};
use rand_core::RngCore;

use crate::broadcast::SlotHash;
use crate::directory::IdentityDirectory;
use crate::Time;

/// A member as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Name and address.
    pub id: NodeId,
    /// Latest incarnation known.
    pub incarnation: Incarnation,
    /// Alive, suspect, dead or left.
    pub status: MemberStatus,
    /// Metadata at that incarnation.
    pub metadata: Metadata,
}

/// Who declared a member dead, and when (this node's clock). Kept for the
/// heal layer, which tells a partition from a crash by who saw the death:
/// a crash is usually confirmed by one prober, a cut by many members of
/// the side that lost sight of the member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Death {
    /// When this node learned of (or decided) the death.
    pub at: Time,
    /// The member whose `Confirm` made it dead here (this node's own name
    /// when its own suspicion timed out); also `confirmers[0]`.
    pub by: NodeName,
    /// Every distinct member whose `Confirm` of this death (same or newer
    /// incarnation) this node heard, in arrival order, `by` first; at most
    /// [`Death::MAX_CONFIRMERS`].
    pub confirmers: Vec<NodeName>,
}

impl Death {
    /// Most confirmers recorded per death: enough to tell one prober from a
    /// whole side, bounded so a dead member costs a few hundred bytes at most.
    pub const MAX_CONFIRMERS: usize = 16;

    pub(crate) fn new(at: Time, by: NodeName) -> Self {
        Self { at, confirmers: vec![by.clone()], by }
    }

    /// Records `by` as a confirmer; true if it is new and there was room.
    pub(crate) fn add_confirmer(&mut self, by: &NodeName) -> bool {
        if self.confirmers.len() >= Self::MAX_CONFIRMERS || self.confirmers.contains(by) {
            return false;
        }
        self.confirmers.push(by.clone());
        true
    }
}

/// A member in the table, as read through [`MemberTable::get`]: a view
/// of its slot (the record pointer) and of the per-node facts kept beside
/// it (verified bit, time of the last change for a dead or left member),
/// built on demand so the slot itself is only the 8-byte pointer.
#[derive(Clone, Copy)]
pub(crate) struct Entry<'a> {
    /// The member's record, interned (changed only through the table,
    /// which re-interns it).
    pub member: &'a Member,
    slot: Slot,
    table: &'a MemberTable,
}

impl Entry<'_> {
    /// When a dead or left member's status last changed (kept in a side
    /// map for those only: nothing reads it for the living, and keeping
    /// it for them cost 8 bytes a member). `Time::ZERO` for a living one.
    pub(crate) fn changed(&self) -> Time {
        self.table.gone_since.get(&self.slot).copied().unwrap_or(Time::ZERO)
    }

    /// Whether this node has heard from the member itself (an ack to its
    /// own probe, a ping or nack from the member's address, the answer to a
    /// push-pull it opened), or adopted it on the operator's word, rather
    /// than only through third parties' claims. A flood of forged members
    /// (issue #15) is unverified by construction: nobody answers at their
    /// addresses. Gossip, indirect probes and push-pull prefer verified
    /// members, and the probe round gives unverified ones a bounded share,
    /// so forged members cannot blind failure detection.
    #[inline]
    pub(crate) fn verified(&self) -> bool {
        self.table.bit(self.slot)
    }
}

/// Slot number of a member in the table.
pub(crate) type Slot = u32;

/// Members in stable slots with a name index and per-status counts.
pub(crate) struct MemberTable {
    directory: IdentityDirectory,
    /// The record of the member in each slot: 8 bytes (the `Option` is
    /// the pointer's niche), all this table keeps per member in the slot.
    /// Indexed by the members' identity ids in the directory (a slot
    /// is that id, see the module docs): the names this table does not
    /// hold are holes.
    slots: Vec<Option<Arc<Member>>>,
    counts: [usize; 4],
    /// Members not verified (see [`Entry::verified`]), whatever their status.
    unverified: usize,
    /// Death records of the dead members, by slot (see the module docs).
    deaths: HashMap<Slot, Death, SlotHash>,
    /// When each dead or left member's status last changed (see
    /// [`Entry::changed`]): only those, so the living pay nothing for it.
    /// Looked up by slot, never iterated.
    gone_since: HashMap<Slot, Time, SlotHash>,
    /// One bit per slot, set while the slot holds a verified member (see
    /// [`Entry::verified`]): 1 bit per member. Also what
    /// [`MemberTable::sample_verified`] walks instead of the entries when
    /// few members are verified (a mass join: a newcomer knows thousands
    /// of members and has heard from a handful).
    verified_bits: Vec<u64>,
    /// Members removed so far (see [`MemberTable::removals`]).
    removals: u64,
}

impl Drop for MemberTable {
    /// Gives the records back, so that a shared directory frees those no
    /// other node holds now rather than when it next grows.
    fn drop(&mut self) {
        let mut directory = self.directory.lock();
        for (id, record) in self.slots.drain(..).enumerate() {
            if let Some(record) = record {
                directory.release(id as Slot, record);
            }
        }
    }
}

/// Drops a comeback's death record and time of death: rare, and kept out
/// of `change`, which every newer incarnation of a living member goes
/// through.
#[cold]
#[inline(never)]
fn forget_death(
    deaths: &mut HashMap<Slot, Death, SlotHash>,
    gone_since: &mut HashMap<Slot, Time, SlotHash>,
    slot: Slot,
) {
    deaths.remove(&slot);
    gone_since.remove(&slot);
}

/// Puts `record` in slot `slot`, growing the slots by an eighth rather
/// than doubling if they must grow (at 100,000 members the slack of
/// doubling would cost more than the members themselves).
fn place(slots: &mut Vec<Option<Arc<Member>>>, slot: Slot, record: Arc<Member>) {
    let i = slot as usize;
    if i >= slots.len() {
        if i >= slots.capacity() {
            slots.reserve_exact((i + 1 - slots.len()).max(slots.len() / 8).max(16));
        }
        slots.resize(i + 1, None);
    }
    debug_assert!(slots[i].is_none(), "a name is held once per table");
    slots[i] = Some(record);
}

/// Applies `change` to the record of `slot`: in place, with no lock, if
/// this table is its only holder (always so with a private directory: see
/// the directory's module docs), else through the directory.
#[inline]
fn modify(directory: &IdentityDirectory, slot: Slot, record: &mut Arc<Member>, change: impl FnOnce(&mut Member)) {
    match Arc::get_mut(record) {
        Some(m) => change(m),
        None => directory.lock().change(slot, record, change),
    }
}

fn status_index(status: MemberStatus) -> usize {
    match status {
        MemberStatus::Alive => 0,
        MemberStatus::Suspect => 1,
        MemberStatus::Dead => 2,
        MemberStatus::Left => 3,
    }
}

/// Whether `status` is one whose change time is kept ([`Entry::changed`]).
fn gone(status: MemberStatus) -> bool {
    matches!(status, MemberStatus::Dead | MemberStatus::Left)
}

impl MemberTable {
    /// An empty table whose records live in `directory`.
    pub(crate) fn new(directory: IdentityDirectory) -> Self {
        Self {
            directory,
            slots: Vec::new(),
            counts: [0; 4],
            unverified: 0,
            deaths: HashMap::default(),
            gone_since: HashMap::default(),
            verified_bits: Vec::new(),
            removals: 0,
        }
    }

    /// The verified bit of `slot`.
    #[inline]
    fn bit(&self, slot: Slot) -> bool {
        self.verified_bits.get(slot as usize / 64).is_some_and(|w| w & (1u64 << (slot % 64)) != 0)
    }

    /// The slot of `name`: its identity id in the directory, if this
    /// table holds it.
    #[inline]
    pub(crate) fn find(&self, name: &NodeName) -> Option<Slot> {
        let id = self.directory.lock().id_of(name)?;
        self.holds(id).then_some(id)
    }

    /// Whether this table holds the member whose identity id is `id`.
    #[inline]
    fn holds(&self, id: u32) -> bool {
        self.slots.get(id as usize).is_some_and(Option::is_some)
    }

    /// [`MemberTable::find`] for each name, into `out` (`None` for `None`):
    /// one lock of the directory for them all.
    pub(crate) fn find_each<'n>(&self, names: impl Iterator<Item = Option<&'n NodeName>>, out: &mut Vec<Option<Slot>>) {
        let directory = self.directory.lock();
        out.extend(names.map(|name| {
            let id = directory.id_of(name?)?;
            self.holds(id).then_some(id)
        }));
    }

    /// Members removed so far: a slot looked up before a removal may hold
    /// another member, or none, after it (a slot is the name's id in the
    /// directory, and an id freed by the last holder is handed out again),
    /// so a batch of lookups made up front is good only while this count
    /// stays the same.
    pub(crate) fn removals(&self) -> u64 {
        self.removals
    }

    /// Entry `i` of a batch of lookups ([`MemberTable::find_each`]) made
    /// when [`MemberTable::removals`] was `removals`: the slot, if one was
    /// found and no member was removed since (else `None`: look it up again).
    #[inline]
    pub(crate) fn still_found(&self, found: &[Option<Slot>], i: usize, removals: u64) -> Option<Slot> {
        found.get(i).copied().flatten().filter(|_| self.removals == removals)
    }

    /// Bookkeeping of a member just placed in `slot`.
    fn placed(&mut self, slot: Slot, status: MemberStatus, now: Time) {
        self.counts[status_index(status)] += 1;
        self.unverified += 1;
        if gone(status) {
            self.gone_since.insert(slot, now);
        }
    }

    /// Adds a member that is not in the table yet; returns its slot.
    pub(crate) fn insert(&mut self, member: Member, now: Time) -> Slot {
        debug_assert!(self.find(&member.id.name).is_none());
        let status = member.status;
        let (slot, record) = self.directory.lock().hold(member);
        place(&mut self.slots, slot, record);
        self.placed(slot, status, now);
        slot
    }

    /// Makes room for `additional` more members up front, so that a bulk
    /// insert ([`Swim::adopt_members`]) does not regrow the slots on the
    /// way. Their ids are not known yet: if the directory knows more names
    /// than this table will hold, they are most likely those (a converged
    /// simulator, where every node adopts the same names), so room up to
    /// the directory's ids, else up to `additional` more than the members
    /// held now. Not `len + additional`: a node whose own id is high
    /// would reserve twice what it needs.
    ///
    /// [`Swim::adopt_members`]: crate::Swim::adopt_members
    pub(crate) fn reserve(&mut self, additional: usize) {
        let bound = self.directory.lock().id_bound();
        let want = bound.max(self.len().saturating_add(additional)).max(self.slots.len());
        self.slots.reserve_exact(want - self.slots.len());
    }

    /// Adds `member` unless its name is known already (the bulk path of
    /// [`Swim::adopt_members`]: one lock for both questions). Its slot, or
    /// `None` if it was known.
    ///
    /// [`Swim::adopt_members`]: crate::Swim::adopt_members
    pub(crate) fn insert_if_new(&mut self, member: Member, now: Time) -> Option<Slot> {
        let status = member.status;
        let (slot, record) = {
            let mut directory = self.directory.lock();
            if directory.id_of(&member.id.name).is_some_and(|id| self.holds(id)) {
                return None;
            }
            directory.hold(member)
        };
        place(&mut self.slots, slot, record);
        self.placed(slot, status, now);
        Some(slot)
    }

    /// Forgets the member in `slot`; what it was. The slot is free for
    /// another name only once no table holds this one.
    pub(crate) fn remove(&mut self, slot: Slot) -> Option<Member> {
        let record = self.slots.get_mut(slot as usize)?.take()?;
        self.counts[status_index(record.status)] -= 1;
        if self.bit(slot) {
            self.verified_bits[slot as usize / 64] &= !(1u64 << (slot % 64));
        } else {
            self.unverified -= 1;
        }
        self.deaths.remove(&slot);
        self.gone_since.remove(&slot);
        self.removals = self.removals.wrapping_add(1);
        // Trailing holes go, so a table shrinks back after a flood.
        while self.slots.last().is_some_and(Option::is_none) {
            self.slots.pop();
        }
        if self.slots.capacity() > 2 * self.slots.len() + 64 {
            self.slots.shrink_to(self.slots.len() + self.slots.len() / 8);
            self.verified_bits.truncate(self.slots.len().div_ceil(64));
            self.verified_bits.shrink_to_fit();
        }
        Some(self.directory.lock().release(slot, record))
    }

    /// A dead member chosen at random, or `None` if none is dead. Drawn
    /// from the death records (every dead member has one, and only they
    /// do), so the reconnect timer costs O(dead), not a scan of the
    /// living: a random-slot sample nearly always misses when few of many
    /// members are dead, and its fallback walked the whole table. The
    /// records' order depends only on the operations applied (a fixed
    /// hasher), so the choice is a function of the RNG, as the simulator
    /// needs.
    pub(crate) fn random_dead(&self, rng: &mut impl RngCore) -> Option<Slot> {
        debug_assert_eq!(self.deaths.len(), self.count(MemberStatus::Dead), "one death record per dead member");
        let n = self.deaths.len();
        if n == 0 {
            return None;
        }
        self.deaths.keys().nth((rng.next_u64() % n as u64) as usize).copied()
    }

    /// The death record of the member in `slot`, while it is dead.
    pub(crate) fn death(&self, slot: Slot) -> Option<&Death> {
        self.deaths.get(&slot)
    }

    /// Mutable access to that record.
    pub(crate) fn death_mut(&mut self, slot: Slot) -> Option<&mut Death> {
        self.deaths.get_mut(&slot)
    }

    /// Records the death of the member in `slot` (before its status is set
    /// to dead). [`MemberTable::set_status`] drops the record when the
    /// member leaves that status, so the map is touched only on deaths and
    /// comebacks, not by every newer incarnation of a living member.
    pub(crate) fn record_death(&mut self, slot: Slot, death: Death) {
        self.deaths.insert(slot, death);
    }

    pub(crate) fn get(&self, slot: Slot) -> Option<Entry<'_>> {
        let member = self.slots.get(slot as usize)?.as_deref()?;
        Some(Entry { member, slot, table: self })
    }

    /// Changes the incarnation, metadata or address of the member in
    /// `slot` (re-interning its record); the status must change through
    /// [`MemberTable::set_status`], and the name never does.
    pub(crate) fn update(&mut self, slot: Slot, change: impl FnOnce(&mut Member)) {
        if let Some(record) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) {
            modify(&self.directory, slot, record, |m| {
                let status = m.status;
                change(m);
                debug_assert!(m.status == status, "a status changes through set_status");
            });
        }
    }

    /// The directory this table's records live in.
    pub(crate) fn directory(&self) -> &IdentityDirectory {
        &self.directory
    }

    /// Changes a member's status, keeping the counts right.
    #[inline(always)]
    pub(crate) fn set_status(&mut self, slot: Slot, status: MemberStatus, now: Time) {
        if self.get(slot).is_some_and(|e| e.member.status != status) {
            self.change(slot, status, now, |_| {});
        }
    }

    /// Sets a member's status (keeping the counts right) and applies
    /// `change` (incarnation, metadata, address; never the name) in one
    /// re-interning of its record.
    pub(crate) fn change(&mut self, slot: Slot, status: MemberStatus, now: Time, change: impl FnOnce(&mut Member)) {
        if let Some(record) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) {
            let was = record.status;
            if was != status {
                if was == MemberStatus::Dead || (gone(was) && !gone(status)) {
                    forget_death(&mut self.deaths, &mut self.gone_since, slot);
                }
                if gone(status) {
                    self.gone_since.insert(slot, now);
                }
                self.counts[status_index(was)] -= 1;
                self.counts[status_index(status)] += 1;
            }
            modify(&self.directory, slot, record, |m| {
                change(m);
                m.status = status;
            });
        }
    }

    /// Marks the member in `slot` verified (see [`Entry::verified`]);
    /// true if it was not before. A member stays verified while it keeps
    /// its slot: its refutations and comebacks are the same node's.
    #[inline]
    pub(crate) fn set_verified(&mut self, slot: Slot) -> bool {
        if self.bit(slot) || !self.slots.get(slot as usize).is_some_and(Option::is_some) {
            return false;
        }
        self.unverified -= 1;
        let word = slot as usize / 64;
        if self.verified_bits.len() <= word {
            self.verified_bits.resize(word + 1, 0);
        }
        self.verified_bits[word] |= 1u64 << (slot % 64);
        true
    }

    /// Members not verified, whatever their status.
    pub(crate) fn unverified(&self) -> usize {
        self.unverified
    }

    /// Whether the member in `slot` is verified (false for an empty slot).
    #[inline]
    pub(crate) fn is_verified(&self, slot: Slot) -> bool {
        self.bit(slot)
    }

    /// Members with `status`, this node included.
    pub(crate) fn count(&self, status: MemberStatus) -> usize {
        self.counts[status_index(status)]
    }

    /// All members, this node included.
    pub(crate) fn len(&self) -> usize {
        self.counts.iter().sum()
    }

    /// Occupied slots in slot order (deterministic, unlike the index).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Slot, Entry<'_>)> + Clone + '_ {
        self.slots.iter().enumerate().filter_map(move |(i, m)| {
            m.as_deref().map(|member| (i as Slot, Entry { member, slot: i as Slot, table: self }))
        })
    }

    /// Each member, in slot order, with its name's push-pull digest hash
    /// ([`gossamer_wire::name_hash`], cached in the directory): one lock
    /// of the directory for the whole walk, so `f` must not use the table's
    /// directory (every digest walks the whole table).
    pub(crate) fn for_each_digested(&self, mut f: impl FnMut(Slot, Entry<'_>, u64)) {
        let directory = self.directory.lock();
        for (slot, entry) in self.iter() {
            let hash =
                directory.digest_hash_of(slot).unwrap_or_else(|| gossamer_wire::name_hash(&entry.member.id.name));
            f(slot, entry, hash);
        }
    }

    /// Up to `k` distinct members for which `keep` holds, chosen at random.
    /// Samples random slots first (cheap at 100,000 members), and scans the
    /// table only when sampling finds too few (few members qualify).
    pub(crate) fn sample(
        &self,
        rng: &mut impl RngCore,
        k: usize,
        out: &mut Vec<Slot>,
        keep: impl FnMut(Slot, &Entry<'_>) -> bool,
    ) {
        out.clear();
        self.sample_more(rng, k, out, keep);
    }

    /// As [`MemberTable::sample`] among the verified members only (see
    /// [`Entry::verified`]). While verified members are at least a quarter
    /// of the slots this is exactly `sample` with `e.verified() && keep`
    /// (same draws, same result). Fewer, and random slots would nearly
    /// all miss, so `sample`'s fallback scanned every entry, on every
    /// gossip round: in a mass join of 2,000 nodes, where a newcomer knows
    /// 2,000 members and has verified a few, that scan was 5% of the
    /// process's CPU. Here it walks the verified bits instead (a word per
    /// 64 slots) and touches only verified entries.
    pub(crate) fn sample_verified(
        &self,
        rng: &mut impl RngCore,
        k: usize,
        out: &mut Vec<Slot>,
        mut keep: impl FnMut(Slot, &Entry<'_>) -> bool,
    ) {
        out.clear();
        let verified = self.len() - self.unverified;
        if verified.saturating_mul(4) >= self.slots.len() {
            self.sample_more(rng, k, out, |slot, e| e.verified() && keep(slot, e));
            return;
        }
        if k == 0 {
            return;
        }
        // Reservoir sampling over the verified slots alone.
        let mut seen = 0u64;
        for (w, &word) in self.verified_bits.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let slot = (w * 64) as Slot + bits.trailing_zeros();
                bits &= bits - 1;
                let Some(entry) = self.get(slot) else { continue };
                if !keep(slot, &entry) {
                    continue;
                }
                seen += 1;
                if out.len() < k {
                    out.push(slot);
                } else {
                    let j = rng.next_u64() % seen;
                    if (j as usize) < k {
                        out[j as usize] = slot;
                    }
                }
            }
        }
    }

    /// As [`MemberTable::sample`], appending up to `k` members to `out`
    /// (what `out` holds already is kept: `keep` should exclude it).
    pub(crate) fn sample_more(
        &self,
        rng: &mut impl RngCore,
        k: usize,
        out: &mut Vec<Slot>,
        mut keep: impl FnMut(Slot, &Entry<'_>) -> bool,
    ) {
        let start = out.len();
        if k == 0 || self.slots.is_empty() {
            return;
        }
        let n = self.slots.len();
        if n > 8 * k + 32 {
            for _ in 0..(8 * k + 32) {
                let slot = (rng.next_u64() % n as u64) as Slot;
                if out[start..].contains(&slot) {
                    continue;
                }
                if let Some(entry) = self.get(slot) {
                    if keep(slot, &entry) {
                        out.push(slot);
                        if out.len() - start == k {
                            return;
                        }
                    }
                }
            }
        }
        // Fallback: reservoir sampling over a full scan.
        out.truncate(start);
        let mut seen = 0u64;
        for (slot, entry) in self.iter() {
            if !keep(slot, &entry) {
                continue;
            }
            seen += 1;
            if out.len() - start < k {
                out.push(slot);
            } else {
                let j = rng.next_u64() % seen;
                if (j as usize) < k {
                    out[start + j as usize] = slot;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn member(name: &str, status: MemberStatus) -> Member {
        Member {
            id: NodeId::new(name.parse().unwrap(), "127.0.0.1:1".parse().unwrap()),
            incarnation: 0,
            status,
            metadata: Metadata::new(),
        }
    }

    #[test]
    fn a_slot_is_8_bytes() {
        // The record pointer alone: the point of interning (issue #16:
        // 10^8 slots in a 10,000-node simulation).
        assert_eq!(std::mem::size_of::<Option<Arc<Member>>>(), 8);
    }

    #[test]
    fn insert_find_remove_reuse() {
        let mut t = MemberTable::new(IdentityDirectory::new());
        let a = t.insert(member("a", MemberStatus::Alive), Time::ZERO);
        let b = t.insert(member("b", MemberStatus::Alive), Time::ZERO);
        assert_eq!(t.find(&"a".parse().unwrap()), Some(a));
        assert_eq!(t.find(&"b".parse().unwrap()), Some(b));
        assert_eq!(t.len(), 2);
        t.set_status(a, MemberStatus::Dead, Time::from_secs(3));
        assert_eq!((t.count(MemberStatus::Alive), t.count(MemberStatus::Dead)), (1, 1));
        assert_eq!(t.get(a).unwrap().changed(), Time::from_secs(3));
        assert!(t.remove(a).is_some());
        assert!(t.remove(a).is_none());
        assert_eq!(t.find(&"a".parse().unwrap()), None);
        assert_eq!(t.count(MemberStatus::Dead), 0);
        let c = t.insert(member("c", MemberStatus::Alive), Time::ZERO);
        assert_eq!(c, a, "freed slot is reused");
        assert_eq!(t.find(&"c".parse().unwrap()), Some(c));
        assert_eq!(t.find(&"b".parse().unwrap()), Some(b));
    }

    #[test]
    fn a_flood_of_names_inserted_and_removed_leaves_table_and_directory_small() {
        let dir = IdentityDirectory::new();
        let mut t = MemberTable::new(dir.clone());
        let me = t.insert(member("me", MemberStatus::Alive), Time::ZERO);
        // One at a time: the freed id is reused each time.
        for i in 0..100_000 {
            let slot = t.insert(member(&format!("f{i}"), MemberStatus::Alive), Time::ZERO);
            assert_eq!(slot, me + 1);
            assert!(t.remove(slot).is_some());
        }
        assert_eq!((t.slots.len(), dir.names(), dir.len()), (1, 1, 0));
        // All at once, then all removed: the slots and the directory shrink.
        let slots: Vec<Slot> =
            (0..100_000).map(|i| t.insert(member(&format!("g{i}"), MemberStatus::Alive), Time::ZERO)).collect();
        assert_eq!((t.slots.len(), dir.names()), (100_001, 100_001));
        for (k, &slot) in slots.iter().enumerate() {
            // Every other one first, so ids are freed out of order.
            if k % 2 == 1 {
                t.remove(slot);
            }
        }
        for &slot in slots.iter().step_by(2) {
            t.remove(slot);
        }
        assert_eq!((t.len(), t.slots.len(), dir.names(), dir.len()), (1, 1, 1, 0));
        assert!(t.slots.capacity() < 1000 && t.verified_bits.capacity() < 100, "{}", t.slots.capacity());
        assert_eq!(t.find(&"me".parse().unwrap()), Some(me));
        assert_eq!(t.find(&"g7".parse().unwrap()), None);
    }

    #[test]
    fn tables_sharing_a_directory_share_slots_and_records_not_membership() {
        let dir = IdentityDirectory::new();
        // `s` holds every name first (as a simulated node holds its own).
        let mut s = MemberTable::new(dir.clone());
        let (mut a, mut b) = (MemberTable::new(dir.clone()), MemberTable::new(dir.clone()));
        let y = s.insert(member("y", MemberStatus::Alive), Time::ZERO);
        let x = a.insert(member("x", MemberStatus::Alive), Time::ZERO);
        assert_eq!(b.find(&"x".parse().unwrap()), None, "x is a's member, not b's");
        assert_eq!(a.insert(member("y", MemberStatus::Alive), Time::ZERO), y, "a name's slot is its identity id");
        assert_eq!(b.insert(member("y", MemberStatus::Alive), Time::ZERO), y);
        assert!(std::ptr::eq(a.get(y).unwrap().member, b.get(y).unwrap().member), "one record");
        assert_eq!((dir.names(), dir.len()), (2, 1));
        b.update(y, |m| m.incarnation = 3);
        assert_eq!((a.get(y).unwrap().member.incarnation, b.get(y).unwrap().member.incarnation), (0, 3));
        assert_eq!(dir.len(), 2, "a copy for b");
        a.change(y, MemberStatus::Alive, Time::ZERO, |m| m.incarnation = 3);
        assert!(std::ptr::eq(a.get(y).unwrap().member, b.get(y).unwrap().member), "converged: shared again");
        assert_eq!(dir.len(), 1);
        s.update(y, |m| m.incarnation = 4);
        assert_eq!(s.get(y).unwrap().member.incarnation, 4, "the first holder's own record, in place");
        assert_eq!(b.get(y).unwrap().member.incarnation, 3);
        a.remove(x);
        assert_eq!(dir.names(), 1, "x's id is free");
        let z = b.insert(member("z", MemberStatus::Alive), Time::ZERO);
        assert_eq!(z, x, "and reused");
        drop(a);
        assert_eq!((dir.names(), dir.len()), (2, 1));
        drop((b, s));
        assert_eq!((dir.names(), dir.len()), (0, 0), "records and ids go with their last holder");
    }

    #[test]
    fn insert_if_new_skips_known_names_and_reuses_slots() {
        let mut t = MemberTable::new(IdentityDirectory::new());
        t.reserve(3);
        let a = t.insert_if_new(member("a", MemberStatus::Alive), Time::ZERO).unwrap();
        assert_eq!(t.insert_if_new(member("a", MemberStatus::Suspect), Time::ZERO), None);
        let b = t.insert_if_new(member("b", MemberStatus::Alive), Time::ZERO).unwrap();
        assert_eq!((t.find(&"a".parse().unwrap()), t.find(&"b".parse().unwrap())), (Some(a), Some(b)));
        assert_eq!((t.len(), t.count(MemberStatus::Alive)), (2, 2));
        t.record_death(a, Death::new(Time::ZERO, "b".parse().unwrap()));
        t.set_status(a, MemberStatus::Dead, Time::ZERO);
        assert!(t.death(a).is_some());
        t.remove(a);
        assert!(t.death(a).is_none(), "a removed member's death record goes with it");
        assert_eq!(t.insert_if_new(member("c", MemberStatus::Alive), Time::ZERO), Some(a), "freed slot reused");
        assert!(t.death(a).is_none());
    }

    #[test]
    fn random_dead_draws_every_dead_member_and_only_them() {
        let mut t = MemberTable::new(IdentityDirectory::new());
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        assert_eq!(t.random_dead(&mut rng), None);
        let slots: Vec<Slot> =
            (0..50).map(|i| t.insert(member(&format!("m{i}"), MemberStatus::Alive), Time::ZERO)).collect();
        assert_eq!(t.random_dead(&mut rng), None, "nobody dead");
        let dead = [slots[3], slots[17], slots[42]];
        for &slot in &dead {
            t.record_death(slot, Death::new(Time::ZERO, "x".parse().unwrap()));
            t.set_status(slot, MemberStatus::Dead, Time::ZERO);
        }
        let drawn: std::collections::BTreeSet<Slot> = (0..200).filter_map(|_| t.random_dead(&mut rng)).collect();
        assert_eq!(drawn, dead.into_iter().collect(), "each dead member in turn, no living one");
        t.remove(slots[17]);
        assert!((0..50).all(|_| t.random_dead(&mut rng) != Some(slots[17])), "a removed member is not drawn");
        t.set_status(slots[3], MemberStatus::Alive, Time::ZERO);
        assert!(t.death(slots[3]).is_none(), "a comeback drops the death record");
        assert!((0..50).all(|_| t.random_dead(&mut rng) == Some(slots[42])), "only the one still dead");
    }

    #[test]
    fn sample_respects_filter_and_k() {
        let mut t = MemberTable::new(IdentityDirectory::new());
        for i in 0..500 {
            let status = if i % 50 == 0 { MemberStatus::Alive } else { MemberStatus::Dead };
            t.insert(member(&format!("n{i}"), status), Time::ZERO);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut out = Vec::new();
        t.sample(&mut rng, 3, &mut out, |_, e| e.member.status == MemberStatus::Alive);
        assert_eq!(out.len(), 3);
        out.sort();
        out.dedup();
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|&s| t.get(s).unwrap().member.status == MemberStatus::Alive));
        t.sample(&mut rng, 100, &mut out, |_, e| e.member.status == MemberStatus::Alive);
        assert_eq!(out.len(), 10);
    }

    #[test]
    fn sample_verified_draws_only_verified_members_sparse_or_dense() {
        let mut t = MemberTable::new(IdentityDirectory::new());
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let slots: Vec<Slot> =
            (0..1000).map(|i| t.insert(member(&format!("m{i}"), MemberStatus::Alive), Time::ZERO)).collect();
        let mut out = Vec::new();
        t.sample_verified(&mut rng, 3, &mut out, |_, _| true);
        assert!(out.is_empty(), "nobody verified yet");
        for &i in &[3usize, 64, 65, 500, 999] {
            assert!(t.set_verified(slots[i]));
        }
        // A verified member removed and its slot reused by an unverified
        // one: the slot must not be drawn as verified.
        t.remove(slots[64]);
        let reused = t.insert(member("newcomer", MemberStatus::Alive), Time::ZERO);
        assert_eq!(reused, slots[64]);
        let want: Vec<Slot> = [3usize, 65, 500, 999].iter().map(|&i| slots[i]).collect();
        let mut drawn = std::collections::BTreeSet::new();
        for _ in 0..200 {
            t.sample_verified(&mut rng, 2, &mut out, |slot, _| slot != slots[999]);
            assert_eq!(out.len(), 2);
            assert_ne!(out[0], out[1]);
            assert!(out.iter().all(|s| want[..3].contains(s)), "{out:?}");
            drawn.extend(out.iter().copied());
        }
        assert_eq!(drawn.len(), 3, "every verified member passing the filter is drawn");
        t.sample_verified(&mut rng, 10, &mut out, |_, _| true);
        out.sort_unstable();
        assert_eq!(out, want);

        // Dense: exactly what `sample` with the verified filter draws.
        for &s in &slots {
            t.set_verified(s);
        }
        let (mut a, mut b) = (ChaCha8Rng::seed_from_u64(9), ChaCha8Rng::seed_from_u64(9));
        let mut expected = Vec::new();
        t.sample(&mut a, 3, &mut expected, |_, e| e.verified());
        t.sample_verified(&mut b, 3, &mut out, |_, _| true);
        assert_eq!(out, expected);
    }
}
