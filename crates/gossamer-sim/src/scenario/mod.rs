//! Scenario files: who runs, on what network, which faults happen when, and
//! what must hold. See `simulations/*.toml` for complete examples.
//!
//! ```
//! use gossamer_sim::Scenario;
//! let s = Scenario::from_toml(r#"
//!     name = "tiny"
//!     nodes = 4
//!     duration = "30 periods"
//!     [network]
//!     loss = 0.01
//!     [[fault]]
//!     at = "10 periods"
//!     kind = "crash"
//!     nodes = [3]
//!     [[assert]]
//!     kind = "all_know_within"
//!     node = 3
//!     periods = 15
//! "#).unwrap();
//! assert_eq!(s.nodes, 4);
//! assert_eq!(s.faults.len(), 1);
//! ```
//!
//! The module is split by job: `schema` (the top-level tables),
//! `fault` (the `[[fault]]` schedule), `assertion` (the `[[assert]]`
//! list), `resolve` (turning references, groups and the `[heal]` table into
//! what the engine runs) and `validate` (what parsing cannot check).

use std::path::Path;

use crate::error::SimError;

mod assertion;
mod fault;
mod resolve;
mod schema;
mod validate;

#[cfg(test)]
mod tests;

pub use assertion::{AssertSpec, FaultRef};
pub use fault::{FaultAction, FaultSpec, DEFAULT_BROADCAST_PAYLOAD, MAX_BROADCAST_PAYLOAD};
pub use schema::{ClusterSpec, HealTable, NetworkSpec, Preset, ProtocolConfig, Scenario, Start};

impl Scenario {
    /// Parses and validates a scenario.
    pub fn from_toml(text: &str) -> Result<Self, SimError> {
        let s: Scenario = toml::from_str(text)?;
        s.validate()?;
        Ok(s)
    }

    /// Reads, parses and validates a scenario file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, SimError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Io { path: path.to_owned(), source })?;
        Self::from_toml(&text)
    }
}
