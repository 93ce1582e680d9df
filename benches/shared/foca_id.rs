//! foca's identity for the side-by-side comparisons with gossamer (the
//! `versus_foca` bench and the `traffic_vs_foca` example include this file
//! with `#[path]`: foca is a dev-dependency, so the benches' library cannot
//! hold it).

use std::net::SocketAddr;

use compact_str::CompactString;
use foca::Identity;
use serde::{Deserialize, Serialize};

/// foca's identity carrying what gossamer's `NodeId` carries: a name (an
/// inline `CompactString`, as gossamer's `NodeName`) and an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FocaId {
    pub name: CompactString,
    pub addr: SocketAddr,
}

impl Identity for FocaId {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        None
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.name > adversary.name
    }
}
