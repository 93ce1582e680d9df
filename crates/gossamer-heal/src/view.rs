//! Pure functions over membership views: when two views reveal a partition,
//! how reports from one side are grouped, and which side wins a heal.
//!
//! Everything here is a deterministic function of its arguments, so every
//! node that holds the same views computes the same answer. That is what
//! lets each node decide on its own, without a coordinator round trip.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use gossamer_wire::NodeName;

/// One side of a partition: the members live in that side's own view.
pub type Side = BTreeSet<NodeName>;

/// A view reduced to what partition detection needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewSummary {
    /// Alive or suspect members, the view's owner included.
    pub live: BTreeSet<NodeName>,
    /// Members the view holds dead (not left: leaving is not a failure).
    pub dead: BTreeSet<NodeName>,
}

/// Whether merging a peer's view into ours would "introduce new faulties"
/// (ringpop's test for incompatible lists), i.e. whether we and `reporter`
/// sit on two sides of a partition:
///
/// - mutual: their view holds dead a member live in ours, ours holds dead a
///   member live in theirs, and the exchange itself crosses the cut (we hold
///   the reporter dead, or it holds us dead). The last condition keeps the
///   ordinary lag of gossip during churn (one node has heard of a death, the
///   other not yet) from looking like a partition;
/// - disjoint: the views share no live member and both hold at least two,
///   which is how two sides meet again after each reaped the other.
///
/// A freshly restarted node (a view of itself, nobody dead) is never a
/// partition: it is a join.
pub fn reveals_partition(local: &NodeName, ours: &ViewSummary, reporter: &NodeName, theirs: &ViewSummary) -> bool {
    let they_lost_ours = !theirs.dead.is_disjoint(&ours.live);
    let we_lost_theirs = !ours.dead.is_disjoint(&theirs.live);
    let crosses_cut = ours.dead.contains(reporter) || theirs.dead.contains(local);
    if they_lost_ours && we_lost_theirs && crosses_cut {
        return true;
    }
    ours.live.len() >= 2 && theirs.live.len() >= 2 && ours.live.is_disjoint(&theirs.live)
}

/// Total order of sides by strength: more live members first; between
/// sides of equal size, the one whose sorted member list is
/// lexicographically smallest (for disjoint sides: the one holding the
/// lowest name).
///
/// Why names and not join age: the tie-break must be computed identically
/// by every node of every side. A member's age is only known locally (when
/// this node first saw it), so two sides would disagree on it; names are
/// the one attribute every view carries verbatim.
pub fn compare_sides(a: &Side, b: &Side) -> Ordering {
    b.len().cmp(&a.len()).then_with(|| a.iter().cmp(b.iter()))
}

/// Index of the winning side among `sides`, or `None` if there are none.
/// Like ekka, the side seeing the most live nodes wins; with equal counts
/// the lowest name breaks the tie (see [`compare_sides`]).
///
/// Members listed in several sides count for none of them: they are the
/// bridges of an asymmetric cut, or members the core already merged across
/// before every report was in. Comparing what each side holds alone keeps
/// such a member from tipping the balance towards whichever side happened
/// to list it. For disjoint sides this is plain [`compare_sides`].
///
/// ```
/// use std::collections::BTreeSet;
/// use gossamer_heal::choose_winner;
/// use gossamer_wire::NodeName;
/// let side = |names: &[&str]| names.iter().map(|n| n.parse::<NodeName>().unwrap()).collect::<BTreeSet<_>>();
/// // 70/30: the larger side wins.
/// assert_eq!(choose_winner(&[side(&["a", "b", "c"]), side(&["d", "e", "f", "g", "h", "i", "j"])]), Some(1));
/// // 50/50: the side holding the lowest name wins.
/// assert_eq!(choose_winner(&[side(&["x", "y"]), side(&["b", "z"])]), Some(1));
/// // b is listed by both sides: 2 against 1, not 3 against 2.
/// assert_eq!(choose_winner(&[side(&["a", "b", "c"]), side(&["b", "d"])]), Some(0));
/// ```
pub fn choose_winner(sides: &[Side]) -> Option<usize> {
    let exclusive: Vec<Side> = sides
        .iter()
        .enumerate()
        .map(|(i, side)| {
            side.iter()
                .filter(|n| !sides.iter().enumerate().any(|(j, other)| j != i && other.contains(*n)))
                .cloned()
                .collect()
        })
        .collect();
    (0..sides.len())
        .min_by(|&i, &j| compare_sides(&exclusive[i], &exclusive[j]).then_with(|| compare_sides(&sides[i], &sides[j])))
}

/// The coordinator of a winning side: its lowest name. The minority's
/// rejoin contacts it first, so every rejoining node merges through the same
/// member.
pub fn coordinator(winners: &Side) -> Option<&NodeName> {
    winners.first()
}

/// Merges reports that overlap into one side each: several members of the
/// same side report slightly different views (one still suspects a member
/// another has confirmed), but they share members, whereas two distinct
/// sides of a cut share none. Output is sorted, so it is deterministic.
pub fn group_sides<'a>(reports: impl IntoIterator<Item = &'a Side>) -> Vec<Side> {
    let mut groups: Vec<Side> = Vec::new();
    for report in reports {
        let mut merged = report.clone();
        groups.retain(|group| {
            if group.is_disjoint(&merged) {
                true
            } else {
                merged.extend(group.iter().cloned());
                false
            }
        });
        groups.push(merged);
    }
    groups.sort_by(compare_sides);
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(names: &[&str]) -> Side {
        names.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn name(n: &str) -> NodeName {
        n.parse().unwrap()
    }

    fn summary(live: &[&str], dead: &[&str]) -> ViewSummary {
        ViewSummary { live: side(live), dead: side(dead) }
    }

    #[test]
    fn fifty_fifty_goes_to_the_lowest_name_whichever_order() {
        let a = side(&["n1", "n4", "n5"]);
        let b = side(&["n0", "n2", "n3"]);
        assert_eq!(choose_winner(&[a.clone(), b.clone()]), Some(1));
        assert_eq!(choose_winner(&[b, a]), Some(0));
    }

    #[test]
    fn seventy_thirty_goes_to_the_majority() {
        let minority = side(&["a", "b", "c"]);
        let majority = side(&["d", "e", "f", "g", "h", "i", "j"]);
        assert_eq!(choose_winner(&[minority.clone(), majority.clone()]), Some(1));
        assert_eq!(choose_winner(&[majority, minority]), Some(0));
    }

    #[test]
    fn three_way_split_goes_to_the_largest_then_lowest() {
        let a = side(&["a1", "a2", "a3"]);
        let b = side(&["b1", "b2", "b3", "b4"]);
        let c = side(&["c1", "c2", "c3", "c4"]);
        for perm in [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]] {
            let sides: Vec<Side> = perm.iter().map(|&i| [&a, &b, &c][i].clone()).collect();
            let winner = choose_winner(&sides).unwrap();
            assert_eq!(sides[winner], b, "order {perm:?}");
        }
    }

    #[test]
    fn overlapping_sides_of_an_asymmetric_cut_still_have_a_strict_order() {
        // x bridges both sides and is the lowest name in each.
        let a = side(&["x0", "a1", "a2"]);
        let b = side(&["x0", "b1", "b2"]);
        assert_eq!(choose_winner(&[a.clone(), b.clone()]), Some(0));
        assert_eq!(choose_winner(&[b, a]), Some(1));
        assert_eq!(choose_winner(&[]), None);
    }

    #[test]
    fn coordinator_is_the_lowest_name() {
        assert_eq!(coordinator(&side(&["m", "c", "q"])), Some(&name("c")));
        assert_eq!(coordinator(&Side::new()), None);
    }

    #[test]
    fn mutual_death_across_the_cut_is_a_partition() {
        let ours = summary(&["a", "b"], &["c", "d"]);
        let theirs = summary(&["c", "d"], &["a", "b"]);
        assert!(reveals_partition(&name("a"), &ours, &name("c"), &theirs));
    }

    #[test]
    fn gossip_lag_between_live_peers_is_not_a_partition() {
        // We heard c died and b was refuted back to life; peer d has not.
        let ours = summary(&["a", "b", "d"], &["c"]);
        let theirs = summary(&["a", "c", "d"], &["b"]);
        assert!(!reveals_partition(&name("a"), &ours, &name("d"), &theirs));
    }

    #[test]
    fn a_restarted_node_is_a_join_not_a_partition() {
        let ours = summary(&["a", "b"], &["c"]);
        let theirs = summary(&["c"], &[]);
        assert!(!reveals_partition(&name("a"), &ours, &name("c"), &theirs));
    }

    #[test]
    fn disjoint_views_are_a_partition() {
        let ours = summary(&["a", "b"], &[]);
        let theirs = summary(&["c", "d"], &[]);
        assert!(reveals_partition(&name("a"), &ours, &name("c"), &theirs));
    }

    #[test]
    fn overlapping_reports_group_into_one_side() {
        let r1 = side(&["b1", "b2", "b3"]);
        let r2 = side(&["b2", "b3"]);
        let r3 = side(&["c1", "c2"]);
        let r4 = side(&["b3", "b4"]);
        let groups = group_sides([&r1, &r2, &r3, &r4]);
        assert_eq!(groups, vec![side(&["b1", "b2", "b3", "b4"]), side(&["c1", "c2"])]);
    }
}
