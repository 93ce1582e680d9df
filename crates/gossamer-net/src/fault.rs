//! Fault injection for tests: a set of peer addresses the runtime pretends
//! it cannot reach. Datagrams to and from them are dropped and push-pull
//! streams to them fail (and from them are closed unanswered), so a test
//! can cut a cluster on loopback without a firewall. A second set loses
//! datagrams only (a network that drops UDP but carries TCP: what the
//! probes' stream fallback is for). Only `Node::block` and
//! `Node::block_datagrams` (feature `fault-injection`) ever fill them; the
//! checks are a read of an empty set otherwise.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

/// Shared between the [`crate::Node`] handles and the driver.
#[derive(Clone, Default)]
pub(crate) struct Blocklist {
    inner: Arc<RwLock<HashSet<SocketAddr>>>,
    datagrams: Arc<RwLock<HashSet<SocketAddr>>>,
}

impl Blocklist {
    /// Whether traffic with `addr` must be dropped.
    pub(crate) fn blocks(&self, addr: SocketAddr) -> bool {
        let set = self.inner.read().unwrap_or_else(|e| e.into_inner());
        !set.is_empty() && set.contains(&addr)
    }

    /// Whether datagrams to and from `addr` must be dropped (blocked
    /// altogether, or for datagrams only).
    pub(crate) fn blocks_datagrams(&self, addr: SocketAddr) -> bool {
        if self.blocks(addr) {
            return true;
        }
        let set = self.datagrams.read().unwrap_or_else(|e| e.into_inner());
        !set.is_empty() && set.contains(&addr)
    }

    #[cfg(feature = "fault-injection")]
    pub(crate) fn block_datagrams(&self, addrs: impl IntoIterator<Item = SocketAddr>) {
        self.datagrams.write().unwrap_or_else(|e| e.into_inner()).extend(addrs);
    }

    #[cfg(feature = "fault-injection")]
    pub(crate) fn block(&self, addrs: impl IntoIterator<Item = SocketAddr>) {
        self.inner.write().unwrap_or_else(|e| e.into_inner()).extend(addrs);
    }

    #[cfg(feature = "fault-injection")]
    pub(crate) fn clear(&self) {
        self.inner.write().unwrap_or_else(|e| e.into_inner()).clear();
        self.datagrams.write().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(all(test, feature = "fault-injection"))]
mod tests {
    use super::*;

    #[test]
    fn blocks_only_listed_peers_until_cleared() {
        let list = Blocklist::default();
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        assert!(!list.blocks(a));
        list.clone().block([a]);
        assert!(list.blocks(a), "clones share one list");
        assert!(!list.blocks(b));
        list.clear();
        assert!(!list.blocks(a));
        list.block_datagrams([b]);
        assert!(list.blocks_datagrams(b) && !list.blocks(b), "datagrams only");
        assert!(!list.blocks_datagrams(a));
        list.block([a]);
        assert!(list.blocks_datagrams(a), "a blocked peer's datagrams too");
        list.clear();
        assert!(!list.blocks_datagrams(a) && !list.blocks_datagrams(b));
    }
}
