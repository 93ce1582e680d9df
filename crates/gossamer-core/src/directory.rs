//! The identity directory (issue #16, "shared identities"): every member
//! record a node holds (name, address, incarnation, status, metadata) is
//! interned here, and the member table keeps only a pointer to it beside
//! the per-node bookkeeping (16 bytes a slot instead of ~112).
//!
//! Why: a simulator runs thousands of real cores in one process, and in a
//! converged cluster they all hold the *same* record for each member. With
//! one directory shared by every simulated node, 10,000 nodes of 10,000
//! members hold 10^4 records, not 10^8 copies; the core code that runs is
//! the one users run. An embedder that does nothing gets a private
//! directory per node ([`Swim::new`]), so nothing changes for them.
//!
//! Records are reference counted ([`Arc`]) and the directory drops a
//! record as soon as no table holds it: a table releases the old record
//! under the directory's lock whenever it replaces or forgets one. A
//! record held by one table only is changed in place (no allocation: the
//! steady state of dissemination, new incarnations of known members,
//! allocates nothing, as `tests/alloc_steady_state.rs` asserts); a record
//! shared with other tables is copied first, and if the result is already
//! interned (another node learned the same), the existing one is shared.
//!
//! The directory decides nothing: it is looked up only by value, never
//! iterated in an order that matters, so a simulator run stays a function
//! of its seed whatever the hasher's seed.
//!
//! [`Swim::new`]: crate::Swim::new

use std::fmt;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use foldhash::fast::RandomState;
use hashbrown::HashTable;

use crate::member::Member;

/// A shared, interning store of member records; see the module docs.
/// Cloning the handle shares the directory (the simulator gives one clone
/// to each of its nodes); [`IdentityDirectory::default`] makes a new one.
/// `Send` and `Sync`: the lock is taken once per member *change*, not per
/// lookup, and is uncontended unless several threads drive nodes that
/// share a directory.
#[derive(Clone, Default)]
pub struct IdentityDirectory {
    inner: Arc<Mutex<Records>>,
}

#[derive(Default)]
struct Records {
    table: HashTable<Arc<Member>>,
    hasher: RandomState,
}

/// Records are hashed by name only: every state of a member lands in the
/// same probe sequence, so a record changed in place goes back exactly
/// where it was (no growth, no rehash: nothing allocated), and the few
/// states of one member that coexist are told apart by comparison.
fn name_hash(hasher: &RandomState, m: &Member) -> u64 {
    hasher.hash_one(&m.id.name)
}

impl Records {
    fn hash(&self, m: &Member) -> u64 {
        name_hash(&self.hasher, m)
    }

    /// The interned record equal to `m`, if any.
    fn find(&self, hash: u64, m: &Member) -> Option<&Arc<Member>> {
        self.table.find(hash, |r| **r == *m)
    }

    fn insert(&mut self, hash: u64, record: Arc<Member>) {
        if self.table.len() == self.table.capacity() {
            // About to grow: first drop the records no table holds any
            // more (a node dropped without its table, e.g. leaked).
            self.table.retain(|r| Arc::strong_count(r) > 1);
        }
        let hasher = &self.hasher;
        self.table.insert_unique(hash, record, |r| name_hash(hasher, r));
    }

    /// Takes `record` out of the directory if the caller's handle and the
    /// directory's are its only two; true if it did.
    fn take_if_unique(&mut self, record: &Arc<Member>) -> bool {
        if Arc::strong_count(record) != 2 {
            return false;
        }
        let hash = self.hash(record);
        match self.table.find_entry(hash, |r| Arc::ptr_eq(r, record)) {
            Ok(found) => {
                found.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// `m` interned: the existing equal record, or `m` made one.
    fn intern(&mut self, m: Member) -> Arc<Member> {
        let hash = self.hash(&m);
        if let Some(found) = self.find(hash, &m) {
            return Arc::clone(found);
        }
        let record = Arc::new(m);
        self.insert(hash, Arc::clone(&record));
        record
    }

    /// Changes `record` in place if the caller's handle and the
    /// directory's are its only two (true), putting it back in its own
    /// place in the table; then shares an equal record if another holder
    /// has one. False (nothing done) if the record is shared.
    fn change_in_place(&mut self, record: &mut Arc<Member>, change: impl FnOnce(&mut Member)) -> bool {
        if Arc::strong_count(record) != 2 {
            return false;
        }
        let hash = self.hash(record);
        let Ok(found) = self.table.find_entry(hash, |r| Arc::ptr_eq(r, record)) else { return false };
        let (ours, vacant) = found.remove();
        drop(ours);
        let Some(m) = Arc::get_mut(record) else {
            // Not unique after all (cannot happen under the lock): back.
            vacant.insert(Arc::clone(record));
            return false;
        };
        change(m);
        vacant.insert(Arc::clone(record));
        // The same name, so the same probe sequence: an equal record of
        // another holder is found there.
        let equal = self.table.find(hash, |r| !Arc::ptr_eq(r, record) && **r == **record).cloned();
        if let Some(equal) = equal {
            let old = std::mem::replace(record, equal);
            self.take_if_unique(&old);
        }
        true
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

    fn lock(&self) -> MutexGuard<'_, Records> {
        // A panic elsewhere while holding the lock leaves the table
        // consistent (no operation here panics half-way): keep going.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records interned now (distinct member states held by any node).
    pub fn len(&self) -> usize {
        self.lock().table.len()
    }

    /// True if no record is interned.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `self` and `other` are handles to the same directory.
    pub fn same_as(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// `m` as an interned record (shared if an equal one exists).
    pub(crate) fn intern(&self, m: Member) -> Arc<Member> {
        self.lock().intern(m)
    }

    /// Applies `change` to the record `record` points to: in place if no
    /// other table holds it, else on a copy; then shares an equal record
    /// if one is interned already. `change` must not rename the member.
    pub(crate) fn update(&self, record: &mut Arc<Member>, change: impl FnOnce(&mut Member)) {
        let mut records = self.lock();
        let mut change = Some(change);
        if records.change_in_place(record, |m| {
            if let Some(change) = change.take() {
                change(m);
            }
        }) {
            return;
        }
        let Some(change) = change else { return };
        let mut m = Member::clone(record);
        change(&mut m);
        if m == **record {
            return;
        }
        let new = records.intern(m);
        let old = std::mem::replace(record, new);
        records.take_if_unique(&old);
    }

    /// Gives back every record of a table that is going away (one lock).
    pub(crate) fn release_all(&self, records: impl Iterator<Item = Arc<Member>>) {
        let mut locked = self.lock();
        for record in records {
            locked.take_if_unique(&record);
        }
    }

    /// Gives back a record a table no longer holds, as an owned member.
    pub(crate) fn release(&self, record: Arc<Member>) -> Member {
        let unique = self.lock().take_if_unique(&record);
        if unique {
            Arc::try_unwrap(record).unwrap_or_else(|shared| Member::clone(&shared))
        } else {
            Member::clone(&record)
        }
    }
}

impl fmt::Debug for IdentityDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityDirectory").field("records", &self.len()).finish()
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
        let a = dir.intern(member("a", 1));
        let b = dir.intern(member("a", 1));
        assert!(Arc::ptr_eq(&a, &b), "one record for equal members");
        let c = dir.intern(member("a", 2));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(dir.len(), 2);
        assert_eq!(dir.release(a), member("a", 1));
        assert_eq!(dir.len(), 2, "still held by b");
        assert_eq!(dir.release(b), member("a", 1));
        assert_eq!(dir.len(), 1, "freed with its last holder");
        dir.release(c);
        assert!(dir.is_empty());
    }

    #[test]
    fn update_changes_in_place_when_alone_and_copies_when_shared() {
        let dir = IdentityDirectory::new();
        let mut a = dir.intern(member("a", 1));
        let before = Arc::as_ptr(&a);
        dir.update(&mut a, |m| m.incarnation = 2);
        assert_eq!(Arc::as_ptr(&a), before, "sole holder: changed in place");
        assert_eq!(*a, member("a", 2));
        assert_eq!(dir.len(), 1);

        let mut b = dir.intern(member("a", 2));
        assert!(Arc::ptr_eq(&a, &b));
        dir.update(&mut b, |m| m.status = MemberStatus::Suspect);
        assert!(!Arc::ptr_eq(&a, &b), "shared: the other holder keeps its record");
        assert_eq!((a.status, b.status), (MemberStatus::Alive, MemberStatus::Suspect));
        assert_eq!(dir.len(), 2);
        // Converging on an interned value shares it and frees the old one.
        dir.update(&mut a, |m| m.status = MemberStatus::Suspect);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(dir.len(), 1);
        dir.update(&mut a, |_| {});
        assert!(Arc::ptr_eq(&a, &b), "no change, no copy");
    }

    #[test]
    fn records_of_dropped_holders_are_purged_before_growing() {
        let dir = IdentityDirectory::new();
        let held: Vec<_> = (0..4).map(|i| dir.intern(member(&format!("h{i}"), 0))).collect();
        for i in 0..1000 {
            drop(dir.intern(member(&format!("x{i}"), 0)));
        }
        assert!(dir.len() < 1000, "dropped records purged: {}", dir.len());
        assert!(held.iter().all(|r| Arc::ptr_eq(r, &dir.intern(Member::clone(r)))));
    }
}
