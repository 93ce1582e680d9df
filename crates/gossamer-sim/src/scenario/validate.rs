//! Validation: what parsing cannot check (counts, indices, references,
//! and the combinations of keys that make no sense together).

use super::{AssertSpec, FaultAction, Scenario, Start, MAX_BROADCAST_PAYLOAD};
use crate::error::SimError;
use crate::hostile::{Attack, MAX_PUSH_PULL_NAMES};
use crate::node::MAX_NODES;

impl Scenario {
    /// Checks what parsing cannot: counts, indices and references.
    pub fn validate(&self) -> Result<(), SimError> {
        let config = self.protocol.to_config()?;
        config.validate()?;
        self.heal_config(config.probe_interval)?;
        if self.nodes == 0 {
            return Err(SimError::invalid("nodes must be at least 1"));
        }
        let total = self.nodes as u64 + self.added_nodes();
        if total > MAX_NODES as u64 {
            return Err(SimError::invalid(format!("{total} nodes in all: at most {MAX_NODES} are supported")));
        }
        if self.cluster.seeds == 0 || self.cluster.seeds > self.nodes {
            return Err(SimError::invalid("cluster.seeds must be within 1..=nodes"));
        }
        if self.cluster.start == Start::Converged && !self.cluster.join_spread.resolve(config.probe_interval).is_zero()
        {
            return Err(SimError::invalid(
                "cluster.join_spread has no meaning with start = \"converged\" (every node is there from the start)",
            ));
        }
        for (i, f) in self.faults.iter().enumerate() {
            for set in f.action.node_sets() {
                if let Some(max) = set.max_explicit() {
                    if max as u64 >= total {
                        return Err(SimError::invalid(format!(
                            "fault {i} ({}): node {max} does not exist ({total} nodes in all)",
                            f.action.kind()
                        )));
                    }
                }
            }
            match &f.action {
                FaultAction::Partition { groups } if groups.is_empty() => {
                    return Err(SimError::invalid(format!("fault {i}: a partition needs at least one group")))
                }
                FaultAction::Join { count: 0 } => {
                    return Err(SimError::invalid(format!("fault {i}: join count must be at least 1")))
                }
                FaultAction::Broadcast { key: Some(key), .. }
                    if gossamer_wire::UserKey::new(key).is_err() || key == crate::hostile::FORGED_KEY =>
                {
                    return Err(SimError::invalid(format!(
                        "fault {i}: broadcast key {key:?} must be 1 to 64 bytes, and not {:?} (the hostile node's)",
                        crate::hostile::FORGED_KEY
                    )))
                }
                FaultAction::Broadcast { payload: Some(len), .. } if *len > MAX_BROADCAST_PAYLOAD => {
                    return Err(SimError::invalid(format!(
                        "fault {i}: a broadcast payload of {len} bytes cannot fit one datagram"
                    )))
                }
                FaultAction::Forge { attack, target, incarnation, ltime, rounds, names, accusers, .. } => {
                    let bad = |what: &str| Err(SimError::invalid(format!("fault {i} (forge {attack}): {what}")));
                    match target {
                        None if attack.needs_target() => return bad("needs a `target`"),
                        Some(_) if !attack.takes_target() => return bad("forges new names, not about a `target`"),
                        Some(t) if *t as u64 >= total => return bad(&format!("node {t} does not exist")),
                        _ => {}
                    }
                    let claims = matches!(attack, Attack::Confirm | Attack::Suspect | Attack::Alive)
                        || (*attack == Attack::PushPull && target.is_some());
                    if incarnation.is_some() && !claims {
                        return bad("`incarnation` is for confirm, suspect, alive and push_pull with a target");
                    }
                    if accusers.is_some() && !matches!(attack, Attack::Confirm | Attack::Suspect) {
                        return bad("`accusers` is for confirm and suspect");
                    }
                    if ltime.is_some() && *attack != Attack::User {
                        return bad("`ltime` is for user");
                    }
                    if names.is_some() && *attack != Attack::PushPull {
                        return bad("`names` is for push_pull");
                    }
                    if names.is_some_and(|n| n == 0 || n > MAX_PUSH_PULL_NAMES) {
                        return bad(&format!("`names` must be within 1..={MAX_PUSH_PULL_NAMES}"));
                    }
                    if *rounds == Some(0) {
                        return bad("`rounds` must be at least 1");
                    }
                }
                FaultAction::Impostor { name_of } if *name_of as u64 >= total => {
                    return Err(SimError::invalid(format!("fault {i} (impostor): node {name_of} does not exist")))
                }
                _ => {}
            }
        }
        for (i, a) in self.asserts.iter().enumerate() {
            if let Some(r) = a.fault_ref() {
                if r.fault.is_none() && r.node.is_none() {
                    return Err(SimError::invalid(format!("assertion {i}: give `fault` or `node`")));
                }
                if self.resolve_fault(r).is_none() {
                    return Err(SimError::invalid(format!("assertion {i}: no such fault ({r:?})")));
                }
            }
            if a.needs_broadcasts() && !self.has_broadcasts() {
                return Err(SimError::invalid(format!("assertion {i}: needs a `broadcast` fault")));
            }
            let bad_number = |x: f64, low: f64, high: f64| x.is_nan() || x < low || x > high;
            match *a {
                AssertSpec::BroadcastsDelivered { periods, coverage }
                    if bad_number(periods, f64::MIN_POSITIVE, f64::MAX)
                        || coverage.is_some_and(|c| bad_number(c, 0.0, 1.0)) =>
                {
                    return Err(SimError::invalid(format!(
                        "assertion {i}: periods must be positive and coverage within 0..=1"
                    )));
                }
                AssertSpec::DetectionUnaffectedByBroadcasts { tolerance, min_periods } => {
                    if tolerance.is_some_and(|t| bad_number(t, 0.0, f64::MAX))
                        || min_periods.is_some_and(|p| bad_number(p, 0.0, f64::MAX))
                    {
                        return Err(SimError::invalid(format!(
                            "assertion {i}: tolerance and min_periods must not be negative"
                        )));
                    }
                    if !self
                        .faults
                        .iter()
                        .any(|f| matches!(f.action, FaultAction::Crash { .. } | FaultAction::Leave { .. }))
                    {
                        return Err(SimError::invalid(format!(
                            "assertion {i}: needs a crash or leave fault to compare"
                        )));
                    }
                }
                _ => {}
            }
            match a {
                AssertSpec::RecoveredWithin { fault, periods } => {
                    if !matches!(self.faults.get(*fault).map(|f| &f.action), Some(FaultAction::Forge { .. })) {
                        return Err(SimError::invalid(format!("assertion {i}: fault {fault} is not a `forge`")));
                    }
                    if bad_number(*periods, 0.0, f64::MAX) {
                        return Err(SimError::invalid(format!("assertion {i}: periods must not be negative")));
                    }
                }
                AssertSpec::AliveAtEnd { nodes } => match nodes.max_explicit() {
                    _ if nodes.is_random() => {
                        return Err(SimError::invalid(format!("assertion {i}: random picks cannot be asserted on")))
                    }
                    Some(max) if max as u64 >= total => {
                        return Err(SimError::invalid(format!("assertion {i}: node {max} does not exist")))
                    }
                    _ => {}
                },
                AssertSpec::IncarnationAtMost { node, .. } if *node as u64 >= total => {
                    return Err(SimError::invalid(format!("assertion {i}: node {node} does not exist")))
                }
                _ => {}
            }
            if a.needs_heal() && !self.heal.as_ref().is_some_and(|h| h.enabled) {
                return Err(SimError::invalid(format!("assertion {i}: needs an enabled [heal] section")));
            }
            for group in a.groups() {
                self.group_nodes(group).map_err(|e| SimError::invalid(format!("assertion {i}: {e}")))?;
            }
        }
        Ok(())
    }
}
