//! The identity directory (issue #16, "shared identities"): every name a
//! node holds gets a dense *identity id* here, which is the member's slot
//! in the node's member table, and every member record a node holds (name,
//! address, incarnation, status, metadata) is interned here under its
//! identity. The member table keeps only an 8-byte pointer to the record
//! per slot, and no name index of its own: the directory's one index (name
//! to id) serves every table that shares it.
//!
//! Why: a simulator runs thousands of real cores in one process, and in a
//! converged cluster they all hold the *same* record for each member. With
//! one directory shared by every simulated node, 10,000 nodes of 10,000
//! members hold 10^4 records and one name index, not 10^8 copies and
//! 10,000 indexes; the core code that runs is the one users run. An
//! embedder that does nothing gets a private directory per node
//! ([`Swim::new`]): its index is the table's name index, moved.
//!
//! Per identity: the name, the tables holding it (a count) and its few
//! interned records (the distinct states of the member that tables share:
//! usually one, a few while news of a change spreads), reference counted
//! ([`Arc`]), and the name's digest hash; 48 bytes plus ~8 in the name
//! index. A record is dropped as soon as no table holds it, and the id as
//! soon as no table holds the name; freed ids are reused smallest first,
//! and the directory shrinks when the highest go, so a flood of made-up
//! names leaves nothing behind once forgotten (the core's caps on members,
//! issue #11, bound it meanwhile).
//!
//! A name's first holder (in a simulator, the node whose name it is: it
//! holds itself from its creation; in a private directory, the node, for
//! every name) keeps its record to itself: the directory does not intern
//! it, so the table changes it in place with no lock and no lookup (the
//! steady state of dissemination, new incarnations of known members,
//! allocates nothing, as `tests/alloc_steady_state.rs` asserts). Later
//! holders intern theirs. An interned record held by one table only is
//! changed in place too, under the lock, found by the slot (the id) among
//! the identity's few records: no hashing, no allocation. One shared with
//! other tables is copied first, and if the result equals one of the
//! identity's records (another node learned the same), that one is shared.
//!
//! The directory decides nothing: it is looked up only by value, never
//! iterated in an order that matters, and ids are handed out in the order
//! names are first held (smallest free id first), so a simulator run
//! stays a function of its seed whatever the hasher's seed. Slot numbers
//! do differ between a private and a shared directory, so the same seed
//! gives another (equally likely) run when the directory is shared.
//!
//! [`Swim::new`]: crate::Swim::new

use std::collections::BTreeSet;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use foldhash::fast::RandomState;
use gossamer_wire::NodeName;
use hashbrown::HashTable;

use crate::member::Member;

/// A shared, interning store of member identities and records; see the
/// module docs. Cloning the handle shares the directory (the simulator
/// gives one clone to each of its nodes); [`IdentityDirectory::default`]
/// makes a new one. `Send` and `Sync`: a node takes the lock once per name
/// lookup and once per change of a record it shares; it is uncontended
/// unless several threads drive nodes that share a directory.
#[derive(Clone, Default)]
pub struct IdentityDirectory {
    inner: Arc<Mutex<Identities>>,
}

/// One name: the tables holding it and the distinct records they share.
struct Identity {
    name: NodeName,
    /// The interned records of this name (its states held by some tables
    /// now: usually one, a few while news of a change spreads), each held
    /// by at least one table. Not the first holder's: a name's first
    /// holder (a node's own name, in a simulator; every name, in a private
    /// directory) keeps its record to itself, so that changing it needs
    /// neither the lock nor the directory (see the module docs).
    records: Few,
    /// Tables holding this name (whatever the record).
    holders: u32,
    /// The name's hash in push-pull digests ([`gossamer_wire::name_hash`]),
    /// computed once per name: every digest a node builds or answers
    /// hashes its whole table, and hashing the names again each time was
    /// 6.7% of a 2,000-node mass join's CPU on one core.
    digest_hash: u64,
}

/// The few records of one identity, boxed: 8 bytes a name for what the
/// names of a private directory never need (their only holder keeps its
/// records to itself), and the box is kept once made, so that changing a
/// shared record in place does not allocate.
#[derive(Default)]
struct Few {
    // Boxed: 8 bytes a name instead of a `Vec`'s 24.
    #[allow(clippy::box_collection)]
    records: Option<Box<Vec<Arc<Member>>>>,
}

impl Few {
    fn iter(&self) -> impl Iterator<Item = &Arc<Member>> {
        self.records.iter().flat_map(|records| records.iter())
    }

    /// A handle of the record equal to `m`, if any.
    #[inline]
    fn find(&self, m: &Member) -> Option<Arc<Member>> {
        self.iter().find(|r| ***r == *m).cloned()
    }

    fn len(&self) -> usize {
        self.records.as_ref().map_or(0, |records| records.len())
    }

    #[inline]
    fn push(&mut self, record: Arc<Member>) {
        self.records.get_or_insert_with(Box::default).push(record);
    }

    /// Takes the directory's handle of `record` out, if it is one of these.
    #[inline]
    fn remove(&mut self, record: &Arc<Member>) -> Option<Arc<Member>> {
        let records = self.records.as_mut()?;
        let at = records.iter().position(|r| Arc::ptr_eq(r, record))?;
        Some(records.swap_remove(at))
    }
}

/// The directory's content, under its lock.
#[derive(Default)]
pub(crate) struct Identities {
    /// By identity id; `None` for a free id.
    ids: Vec<Option<Identity>>,
    /// Free ids below `ids.len()`; the smallest is reused first, so ids
    /// stay dense and their assignment is a function of the operations.
    free: BTreeSet<u32>,
    /// Ids of the held names, by name hash.
    names: HashTable<u32>,
    hasher: RandomState,
    /// Records interned now, all identities together.
    records: usize,
}

/// A name's hash: its bytes in one write (the derived `Hash` of a string
/// adds a terminator byte, a second round of the hasher on the path of
/// every lookup; names are the only keys here, so it is not needed).
#[inline]
fn name_hash(hasher: &RandomState, name: &NodeName) -> u64 {
    let mut state = hasher.build_hasher();
    state.write(name.as_str().as_bytes());
    state.finish()
}

impl Identities {
    #[inline]
    fn hash(&self, name: &NodeName) -> u64 {
        name_hash(&self.hasher, name)
    }

    /// The name of a held identity.
    #[inline]
    fn name_of(ids: &[Option<Identity>], id: u32) -> Option<&NodeName> {
        ids.get(id as usize).and_then(Option::as_ref).map(|i| &i.name)
    }

    /// The push-pull digest hash ([`gossamer_wire::name_hash`]) of a held
    /// identity's name, cached when the name was first held.
    #[inline]
    pub(crate) fn digest_hash_of(&self, id: u32) -> Option<u64> {
        self.ids.get(id as usize).and_then(Option::as_ref).map(|i| i.digest_hash)
    }

    /// The identity id of `name`, if some table holds it.
    #[inline]
    pub(crate) fn id_of(&self, name: &NodeName) -> Option<u32> {
        self.id_hashed(self.hash(name), name)
    }

    #[inline]
    fn id_hashed(&self, hash: u64, name: &NodeName) -> Option<u32> {
        let ids = &self.ids;
        self.names.find(hash, |&id| Self::name_of(ids, id) == Some(name)).copied()
    }

    /// A table starts holding `m`: its identity id (new if nobody held
    /// the name) and its record: the table's own if it is the name's first
    /// holder, else interned (shared if an equal one exists).
    pub(crate) fn hold(&mut self, m: Member) -> (u32, Arc<Member>) {
        let hash = self.hash(&m.id.name);
        match self.id_hashed(hash, &m.id.name) {
            Some(id) => {
                let Some(identity) = self.ids.get_mut(id as usize).and_then(Option::as_mut) else {
                    return (id, Arc::new(m));
                };
                identity.holders += 1;
                if let Some(found) = identity.records.find(&m) {
                    return (id, found);
                }
                let record = Arc::new(m);
                identity.records.push(Arc::clone(&record));
                self.records += 1;
                (id, record)
            }
            None => {
                let id = match self.free.pop_first() {
                    Some(id) => id,
                    None => {
                        if self.ids.len() == self.ids.capacity() {
                            // An eighth more, not double: per name.
                            self.ids.reserve_exact((self.ids.len() / 8).max(16));
                        }
                        self.ids.push(None);
                        u32::try_from(self.ids.len() - 1).expect("fewer than 2^32 names")
                    }
                };
                let (ids, hasher) = (&self.ids, &self.hasher);
                self.names
                    .insert_unique(hash, id, |&i| Self::name_of(ids, i).map_or(0, |name| name_hash(hasher, name)));
                let digest_hash = gossamer_wire::name_hash(&m.id.name);
                self.ids[id as usize] =
                    Some(Identity { name: m.id.name.clone(), records: Few::default(), holders: 1, digest_hash });
                (id, Arc::new(m))
            }
        }
    }

    /// Applies `change` to `record`, the record of identity `id` a table
    /// holds: in place if no other table holds that record, else on a
    /// copy; then shares an equal record of the identity if there is one.
    /// `change` must not rename the member.
    pub(crate) fn change(&mut self, id: u32, record: &mut Arc<Member>, change: impl FnOnce(&mut Member)) {
        let Some(identity) = self.ids.get_mut(id as usize).and_then(Option::as_mut) else { return };
        if Arc::strong_count(record) == 2 {
            // Ours alone (and the directory's): change it in place.
            let Some(theirs) = identity.records.remove(record) else { return };
            drop(theirs);
            let Some(m) = Arc::get_mut(record) else {
                // Not unique after all (cannot happen under the lock).
                identity.records.push(Arc::clone(record));
                return;
            };
            change(m);
            if let Some(equal) = identity.records.find(record) {
                // Another table holds this state already: share it.
                *record = equal;
                self.records -= 1;
            } else {
                identity.records.push(Arc::clone(record));
            }
            return;
        }
        let mut m = Member::clone(record);
        change(&mut m);
        if m == **record {
            return;
        }
        let new = match identity.records.find(&m) {
            Some(equal) => equal,
            None => {
                let new = Arc::new(m);
                identity.records.push(Arc::clone(&new));
                self.records += 1;
                new
            }
        };
        let old = std::mem::replace(record, new);
        Self::drop_record(identity, &mut self.records, &old);
    }

    /// Takes `record` out of `identity` if the caller's handle and the
    /// directory's are its only two.
    fn drop_record(identity: &mut Identity, records: &mut usize, record: &Arc<Member>) {
        if Arc::strong_count(record) != 2 {
            return;
        }
        if identity.records.remove(record).is_some() {
            *records -= 1;
        }
    }

    /// A table stops holding identity `id`, whose record it held; frees
    /// the record if no other table holds it, and the id if no other table
    /// holds the name.
    pub(crate) fn release(&mut self, id: u32, record: Arc<Member>) -> Member {
        let Some(identity) = self.ids.get_mut(id as usize).and_then(Option::as_mut) else {
            return Arc::unwrap_or_clone(record);
        };
        Self::drop_record(identity, &mut self.records, &record);
        identity.holders = identity.holders.saturating_sub(1);
        if identity.holders == 0 {
            // Nobody holds the name any more: free its id.
            let hash = name_hash(&self.hasher, &record.id.name);
            if let Ok(found) = self.names.find_entry(hash, |&i| i == id) {
                found.remove();
            }
            self.records -= identity.records.len();
            self.ids[id as usize] = None;
            if id as usize + 1 == self.ids.len() {
                self.ids.pop();
                // Trailing free ids go too, so the directory shrinks
                // back after a flood of names.
                while let Some(&last) = self.free.last() {
                    if last as usize + 1 != self.ids.len() {
                        break;
                    }
                    self.free.pop_last();
                    self.ids.pop();
                }
                if self.ids.capacity() > 2 * self.ids.len() + 64 {
                    self.ids.shrink_to(self.ids.len() + self.ids.len() / 8);
                }
            } else {
                self.free.insert(id);
            }
            if self.names.capacity() > 4 * self.names.len() + 64 {
                let (ids, hasher) = (&self.ids, &self.hasher);
                self.names
                    .shrink_to(self.names.len(), |&i| Self::name_of(ids, i).map_or(0, |name| name_hash(hasher, name)));
            }
        }
        Arc::unwrap_or_clone(record)
    }

    /// Ids in use or free below the highest in use: the length of a
    /// table indexed by id.
    pub(crate) fn id_bound(&self) -> usize {
        self.ids.len()
    }
}

impl IdentityDirectory {
    /// A new, empty directory. Give clones of it to the nodes that should
    /// share records ([`Swim::with_directory`]).
    ///
    /// [`Swim::with_directory`]: crate::Swim::with_directory
    pub fn new() -> Self {
        Self::default()
    }

    /// The directory's content, locked.
    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, Identities> {
        // A panic elsewhere while holding the lock leaves the content
        // consistent (no operation here panics half-way): keep going.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records interned now: the distinct member states held by the nodes
    /// sharing the directory, not counting the records a name's first
    /// holder keeps to itself (see the module docs), so 0 for a private
    /// directory.
    pub fn len(&self) -> usize {
        self.lock().records
    }

    /// True if no record is interned.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Distinct names held now by any node (each has an identity id).
    pub fn names(&self) -> usize {
        self.lock().names.len()
    }

    /// Whether `self` and `other` are handles to the same directory.
    pub fn same_as(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl fmt::Debug for IdentityDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let locked = self.lock();
        f.debug_struct("IdentityDirectory")
            .field("names", &locked.names.len())
            .field("records", &locked.records)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gossamer_wire::{MemberStatus, Metadata, NodeId};

    fn member(name: &str, incarnation: u64) -> Member {
        Member {
            id: NodeId::new(name.parse().unwrap(), "127.0.0.1:1".parse().unwrap()),
            incarnation,
            status: MemberStatus::Alive,
            metadata: Metadata::new(),
        }
    }

    #[test]
    fn equal_records_are_shared_and_freed_with_their_last_holder() {
        let dir = IdentityDirectory::new();
        let mut d = dir.lock();
        let (first, own) = d.hold(member("a", 1));
        assert_eq!(Arc::strong_count(&own), 1, "the first holder keeps its record to itself");
        assert_eq!(d.records, 0);
        let (ia, a) = d.hold(member("a", 1));
        let (ib, b) = d.hold(member("a", 1));
        assert_eq!((ia, ib), (first, first), "one identity per name");
        assert!(Arc::ptr_eq(&a, &b), "one record for equal members");
        assert!(!Arc::ptr_eq(&a, &own));
        let (ic, c) = d.hold(member("a", 2));
        assert_eq!(ic, ia);
        assert!(!Arc::ptr_eq(&a, &c));
        let (id, _d) = d.hold(member("b", 1));
        assert_ne!(id, ia);
        assert_eq!((d.records, d.names.len()), (2, 2));
        assert_eq!(d.release(ia, a), member("a", 1));
        assert_eq!(d.records, 2, "still held by b");
        assert_eq!(d.release(ib, b), member("a", 1));
        assert_eq!(d.records, 1, "freed with its last holder");
        d.release(ic, c);
        assert_eq!(d.id_of(&"a".parse().unwrap()), Some(first), "still held by its first holder");
        d.release(first, own);
        assert_eq!(d.id_of(&"a".parse().unwrap()), None, "the name is free");
        assert_eq!((d.records, d.names.len()), (0, 1));
        let (again, _e) = d.hold(member("e", 0));
        assert_eq!(again, first, "the smallest free id is reused");
    }

    #[test]
    fn change_in_place_when_alone_and_copies_when_shared() {
        let dir = IdentityDirectory::new();
        let mut d = dir.lock();
        let (id, _own) = d.hold(member("a", 1));
        let (_, mut a) = d.hold(member("a", 1));
        let before = Arc::as_ptr(&a);
        d.change(id, &mut a, |m| m.incarnation = 2);
        assert_eq!(Arc::as_ptr(&a), before, "sole holder of the record: changed in place");
        assert_eq!(*a, member("a", 2));
        assert_eq!(d.records, 1);

        let (_, mut b) = d.hold(member("a", 2));
        assert!(Arc::ptr_eq(&a, &b));
        d.change(id, &mut b, |m| m.status = MemberStatus::Suspect);
        assert!(!Arc::ptr_eq(&a, &b), "shared: the other holder keeps its record");
        assert_eq!((a.status, b.status), (MemberStatus::Alive, MemberStatus::Suspect));
        assert_eq!(d.records, 2);
        // Converging on an interned value shares it and frees the old one.
        d.change(id, &mut a, |m| m.status = MemberStatus::Suspect);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(d.records, 1);
        d.change(id, &mut a, |_| {});
        assert!(Arc::ptr_eq(&a, &b), "no change, no copy");
    }

    #[test]
    fn a_held_name_keeps_its_digest_hash() {
        let dir = IdentityDirectory::new();
        let mut d = dir.lock();
        let (id, _) = d.hold(member("digested", 0));
        let name = NodeName::new("digested").unwrap();
        assert_eq!(d.digest_hash_of(id), Some(gossamer_wire::name_hash(&name)), "the wire's hash, as digests need");
        assert_eq!(d.digest_hash_of(id + 1), None, "no such identity");
    }

    #[test]
    fn an_identity_is_48_bytes() {
        // The module docs' figure: name, boxed records, holders, digest hash.
        assert_eq!(std::mem::size_of::<Option<Identity>>(), 48);
    }

    #[test]
    fn ids_of_released_names_are_reused_and_the_directory_shrinks() {
        let dir = IdentityDirectory::new();
        let mut d = dir.lock();
        let held: Vec<_> = (0..100_000).map(|i| d.hold(member(&format!("x{i}"), 0))).collect();
        assert_eq!(d.id_bound(), 100_000);
        // Out of order: every other name first (their ids go to the free
        // set), then the rest from the top (the ids shrink back).
        let (odd, even): (Vec<_>, Vec<_>) = held.into_iter().partition(|(id, _)| id % 2 == 1);
        for (id, record) in odd.into_iter().chain(even.into_iter().skip(1).rev()) {
            d.release(id, record);
        }
        assert_eq!((d.id_bound(), d.names.len(), d.records), (1, 1, 0), "only x0 left, its first holder's");
        assert!(d.ids.capacity() < 1000 && d.names.capacity() < 1000 && d.free.is_empty());
    }
}
