//! Resolution: fault references to schedule indices, group names to
//! nodes, the `[heal]` table to a `HealConfig`, and the derived facts
//! (node totals, broadcasts, hostile peers) the engine asks about.

use std::time::Duration;

use gossamer_heal::HealConfig;

use super::{FaultAction, FaultRef, Scenario};
use crate::error::SimError;
use crate::nodeset::NodeSet;

impl Scenario {
    /// Resolves an assertion's fault reference to a schedule index.
    pub fn resolve_fault(&self, r: FaultRef) -> Option<usize> {
        if let Some(i) = r.fault {
            return (i < self.faults.len()).then_some(i);
        }
        let node = r.node?;
        self.faults.iter().position(|f| {
            matches!(
                f.action,
                FaultAction::Crash { .. }
                    | FaultAction::Leave { .. }
                    | FaultAction::Restart { .. }
                    | FaultAction::Pause { .. }
                    | FaultAction::Slow { .. }
            ) && f.action.node_sets().iter().any(|s| s.names(node))
        })
    }

    /// The heal layer's config if the scenario enables it (`None`: plain
    /// SWIM), validated; `period` is the protocol period (`verdict_grace`
    /// defaults to two of them).
    pub fn heal_config(&self, period: Duration) -> Result<Option<HealConfig>, SimError> {
        let Some(table) = self.heal.as_ref() else { return Ok(None) };
        table.resolve(period).map_err(|e| SimError::invalid(format!("[heal]: {e}")))
    }

    /// The nodes an assertion's `group` names: a `[groups]` entry, or a node
    /// set written in place. Random picks are refused (an assertion must
    /// name the same nodes the faults did, without drawing).
    pub fn group_nodes(&self, group: &str) -> Result<Vec<u32>, SimError> {
        let set = match self.groups.get(group) {
            Some(set) => set.clone(),
            None => group.parse::<NodeSet>().map_err(|e| SimError::invalid(format!("group {group:?}: {e}")))?,
        };
        if set.is_random() {
            return Err(SimError::invalid(format!("group {group:?}: random picks cannot be asserted on")));
        }
        let total = self.total_nodes();
        if let Some(max) = set.max_explicit().filter(|&m| m >= total) {
            return Err(SimError::invalid(format!(
                "group {group:?}: node {max} does not exist ({total} nodes in all)"
            )));
        }
        // Deterministic sets never draw: any RNG resolves them alike.
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
        Ok(set.resolve(self.total_nodes(), &mut rng))
    }

    /// Whether any fault broadcasts.
    pub fn has_broadcasts(&self) -> bool {
        self.faults.iter().any(|f| matches!(f.action, FaultAction::Broadcast { .. }))
    }

    /// The same scenario without application broadcasts: every
    /// `broadcast` fault keeps its place (so fault indices stay what the
    /// assertions say) but names no node, and the broadcast assertions are
    /// dropped. Broadcast picks draw from an RNG stream of their own, so
    /// every other random choice of the run is the same.
    ///
    /// ```
    /// use gossamer_sim::{FaultAction, Scenario};
    /// let s = Scenario::from_toml(r#"
    ///     name = "b"
    ///     nodes = 8
    ///     duration = "40 periods"
    ///     [[fault]]
    ///     at = "10 periods"
    ///     kind = "broadcast"
    ///     nodes = "all"
    ///     spread = "5 periods"
    ///     [[fault]]
    ///     at = "20 periods"
    ///     kind = "crash"
    ///     nodes = [7]
    ///     [[assert]]
    ///     kind = "broadcasts_delivered"
    ///     periods = 10
    ///     [[assert]]
    ///     kind = "all_know_within"
    ///     fault = 1
    ///     periods = 15
    /// "#).unwrap();
    /// let base = s.without_broadcasts();
    /// assert_eq!(base.faults.len(), 2);
    /// assert!(matches!(&base.faults[0].action, FaultAction::Broadcast { nodes, .. } if nodes.is_empty()));
    /// assert_eq!(base.asserts.len(), 1);
    /// ```
    pub fn without_broadcasts(&self) -> Scenario {
        let mut s = self.clone();
        for f in &mut s.faults {
            if let FaultAction::Broadcast { nodes, .. } = &mut f.action {
                *nodes = NodeSet::of(&[]);
            }
        }
        s.asserts.retain(|a| !a.needs_broadcasts());
        s
    }

    /// Nodes at the start plus every node a `join` fault adds.
    pub fn total_nodes(&self) -> u32 {
        (self.nodes as u64 + self.added_nodes()).min(u32::MAX as u64) as u32
    }

    /// Nodes the faults add: every `join`'s count, one per `impostor`.
    pub(super) fn added_nodes(&self) -> u64 {
        self.faults
            .iter()
            .map(|f| match f.action {
                FaultAction::Join { count } => count as u64,
                FaultAction::Impostor { .. } => 1,
                _ => 0,
            })
            .sum()
    }

    /// Whether the scenario has a hostile peer (`forge` or `impostor`
    /// faults): the engine then checks names in views and samples table
    /// sizes, which plain runs skip.
    pub fn has_hostile(&self) -> bool {
        self.faults.iter().any(|f| matches!(f.action, FaultAction::Forge { .. } | FaultAction::Impostor { .. }))
    }
}
