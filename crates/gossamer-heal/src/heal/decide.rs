//! Deciding an episode: weighing side claims, reports and comebacks, and
//! correcting a decision taken on a partial view.

use std::collections::BTreeMap;
use std::time::Duration;

use gossamer_wire::{NodeId, NodeName};
use tracing::{info, warn};

use super::Heal;
use crate::output::{Claim, HealCommand, HealEvent, HealOutput};
use crate::view::{choose_winner, group_sides, Side};
use crate::Time;

/// One detection episode, from the first detection until the decision.
#[derive(Debug, Clone)]
pub(super) struct Episode {
    /// First detection.
    pub(super) since: Time,
    /// Our side when the episode started.
    pub(super) ours: Side,
    /// Each other side as its members reported it, by reporter.
    pub(super) reports: BTreeMap<NodeName, Side>,
    /// Sides already announced through `PartitionDetected`.
    pub(super) announced: Vec<Side>,
    /// Members seen coming back from the dead during the episode: the
    /// other side as far as this node can tell without a report.
    pub(super) returned: Side,
    /// The sides other nodes claimed during the episode, by publisher.
    pub(super) claims: BTreeMap<NodeName, Claim>,
}

/// What this node decided last, kept to weigh later claims against.
#[derive(Debug, Clone)]
pub(super) struct Decision {
    /// Our side at the time.
    pub(super) ours: Side,
    /// The winners' size and coordinator, as a claim would carry them.
    pub(super) winner: Claim,
    /// Whether this node (already) rejoined.
    pub(super) rejoined: bool,
}

impl Episode {
    /// When the decision falls: after `settle` if a report or a claim is
    /// in, else after twice that, to give claims the time to arrive.
    pub(super) fn due(&self, settle: Duration) -> Time {
        let wait = if self.reports.is_empty() && self.claims.is_empty() { settle.saturating_mul(2) } else { settle };
        self.since.saturating_add(wait)
    }
}

impl Heal {
    /// A claim arriving during the hold-down after our decision: if it is
    /// for a stronger side than the winners we chose, and not ours, our
    /// decision was taken on a partial view (one other side of three, or
    /// two others already merged looking like one): rejoin the stronger.
    pub(super) fn correct(&mut self, claim: &Claim) {
        let Some(decision) = self.last_decision.as_mut() else { return };
        if claim.rank() >= decision.winner.rank() || decision.ours.contains(&claim.coordinator) {
            return;
        }
        decision.winner = claim.clone();
        if decision.rejoined {
            return;
        }
        decision.rejoined = true;
        let ours = decision.ours.clone();
        let Some(seed) = self.members.get(&claim.coordinator).map(|r| r.id.clone()) else { return };
        warn!(coordinator = %claim.coordinator, size = claim.size, "heal: a stronger side claimed the win, rejoining it");
        self.metrics.heals += 1;
        self.metrics.rejoins += 1;
        // As far as this node knows: everyone live but its own side.
        let mut winners: Side = self.summary().live.difference(&ours).cloned().collect();
        winners.insert(claim.coordinator.clone());
        self.outputs.push_back(HealOutput::Event(HealEvent::PartitionHealed { winners, rejoined: ours }));
        self.push_command(HealCommand::Rejoin { seeds: vec![seed] });
    }

    /// Ends the episode. Every node of every side published its side's
    /// claim when its episode opened, taken before anything merged; the
    /// strongest claim wins (more members, then the lowest coordinator), a
    /// pure function of the claims every node has heard. Without any other
    /// side's claim, the sides as they reported themselves decide
    /// ([`choose_winner`]); without reports either (the core merged the
    /// views before one reached this node, which only saw members come
    /// back), the members seen coming back stand in for the other side.
    pub(super) fn decide(&mut self, now: Time) {
        let Some(episode) = self.episode.take() else { return };
        let ours = episode.ours;
        // A member both in our side and in a report is ours: our side was
        // taken before anything merged, a report may already hold members
        // of ours that refuted their death on the other side.
        let without_ours = |side: &Side| -> Side { side.difference(&ours).cloned().collect() };
        let mut sides: Vec<Side> =
            group_sides(episode.reports.values()).iter().map(without_ours).filter(|s| !s.is_empty()).collect();
        let from_reports = !sides.is_empty();
        if !from_reports {
            let returned: Side = episode
                .returned
                .iter()
                .filter(|n| !ours.contains(*n) && self.members.get(*n).is_some_and(|r| r.is_live()))
                .cloned()
                .collect();
            if !returned.is_empty() {
                sides.push(returned);
            }
        }
        // A report can mislead as much as our own view right after a heal:
        // the other side's view may hold some of its own members dead by
        // our side's verdicts crossing the link, and so split that side
        // into reports sharing no member. Each publisher claimed its side as
        // it stood before the heal: a publisher and the coordinator it
        // named are on one side.
        for (publisher, claim) in &episode.claims {
            if !ours.contains(publisher) && !ours.contains(&claim.coordinator) {
                link(&mut sides, publisher, &claim.coordinator);
            }
        }
        let foreign: Vec<&Claim> = episode.claims.values().filter(|c| !ours.contains(&c.coordinator)).collect();
        if sides.is_empty() && foreign.is_empty() {
            return;
        }
        if !from_reports && foreign.is_empty() {
            self.metrics.inferred += 1;
            info!(returned = ?sides.first().map(Side::len), "heal: no report nor claim from another side, deciding on who came back");
        }
        let hold = self.hold.record_heal(now, &self.config);
        if !self.config.autoheal {
            info!(?hold, "heal: autoheal off, partition left to the operator");
            self.learnt_ids.clear();
            return;
        }
        sides.push(ours.clone());
        let ours_at = sides.len() - 1;
        let winner = if foreign.is_empty() {
            choose_winner(&sides).unwrap_or(ours_at)
        } else {
            let own = Claim::of(0, &ours);
            let best = foreign.into_iter().chain(own.as_ref()).min_by(|a, b| a.rank().cmp(&b.rank()));
            match best {
                Some(best) if !ours.contains(&best.coordinator) => {
                    match sides.iter().position(|side| side.contains(&best.coordinator)) {
                        Some(i) => i,
                        None => {
                            // A side we never heard from: whoever is live
                            // and on none of the sides we know.
                            let known: Side = sides.iter().flatten().cloned().collect();
                            let mut unknown: Side = self.summary().live.difference(&known).cloned().collect();
                            unknown.insert(best.coordinator.clone());
                            sides.insert(0, unknown);
                            0
                        }
                    }
                }
                _ => sides.len() - 1,
            }
        };
        let ours_won = winner == sides.len() - 1;
        let winners = sides[winner].clone();
        let rejoined: Side =
            sides.iter().flat_map(|side| side.iter()).filter(|n| !winners.contains(*n)).cloned().collect();
        self.last_decision =
            Claim::of(0, &winners).map(|winner| Decision { ours: ours.clone(), winner, rejoined: !ours_won });
        info!(winners = winners.len(), rejoined = rejoined.len(), ?hold, "heal: partition healed");
        self.metrics.heals += 1;
        self.outputs.push_back(HealOutput::Event(HealEvent::PartitionHealed {
            winners: winners.clone(),
            rejoined: rejoined.clone(),
        }));
        if !ours_won {
            let seeds: Vec<NodeId> = winners
                .iter()
                .filter(|n| **n != self.local.name)
                .filter_map(|n| self.members.get(n).map(|r| r.id.clone()).or_else(|| self.learnt_ids.get(n).cloned()))
                .collect();
            self.metrics.rejoins += 1;
            self.push_command(HealCommand::Rejoin { seeds });
        }
        self.learnt_ids.clear();
    }
}

/// Puts `a` and `b` on one side: merges their sides, or adds the one on no
/// side yet to the other's, or makes a side of the two.
fn link(sides: &mut Vec<Side>, a: &NodeName, b: &NodeName) {
    let find = |sides: &[Side], n: &NodeName| sides.iter().position(|s| s.contains(n));
    match (find(sides, a), find(sides, b)) {
        (Some(i), Some(j)) if i != j => {
            let merged = sides.remove(j);
            let i = if j < i { i - 1 } else { i };
            sides[i].extend(merged);
        }
        (Some(_), Some(_)) => {}
        (Some(i), None) => {
            sides[i].insert(b.clone());
        }
        (None, Some(j)) => {
            sides[j].insert(a.clone());
        }
        (None, None) => sides.push([a.clone(), b.clone()].into()),
    }
}
