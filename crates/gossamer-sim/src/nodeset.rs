//! Which nodes a fault, a link override or an assertion is about.
//!
//! In a scenario file a node set is a list of indices (`[3, 17]`), one index
//! (`17`), or a string of comma-separated items: `"17"`, `"0..64"` (end
//! excluded), `"0..=63"`, `"all"`, `"random(5)"` (five distinct nodes) or
//! `"random(5%)"`. Random picks come from the scenario's seeded RNG, so
//! they are the same on every run with the same seed.

use std::fmt;

use rand::Rng;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// One item of a node set.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    One(u32),
    Range(u32, u32),
    All,
    RandomCount(u32),
    RandomFraction(f64),
}

/// A set of nodes, as written in a scenario.
///
/// ```
/// use gossamer_sim::NodeSet;
/// use rand::SeedableRng;
/// let set: NodeSet = "0..3, 7".parse().unwrap();
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
/// assert_eq!(set.resolve(10, &mut rng), vec![0, 1, 2, 7]);
/// let some: NodeSet = "random(25%)".parse().unwrap();
/// assert_eq!(some.resolve(8, &mut rng).len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSet {
    items: Vec<Item>,
    text: String,
}

impl NodeSet {
    /// Every node (including nodes that join later, where that matters).
    pub fn all() -> Self {
        Self { items: vec![Item::All], text: "all".into() }
    }

    /// The given indices.
    pub fn of(indices: &[u32]) -> Self {
        let text = indices.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        Self { items: indices.iter().map(|&i| Item::One(i)).collect(), text }
    }

    /// True if the set draws random nodes (`random(..)`).
    pub fn is_random(&self) -> bool {
        self.items.iter().any(|i| matches!(i, Item::RandomCount(_) | Item::RandomFraction(_)))
    }

    /// True if the set names no node at all (`NodeSet::of(&[])`).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// True if the set names every node.
    pub fn is_all(&self) -> bool {
        self.items.contains(&Item::All)
    }

    /// The highest index named explicitly (for validation against the node count).
    pub fn max_explicit(&self) -> Option<u32> {
        self.items
            .iter()
            .filter_map(|i| match i {
                Item::One(n) => Some(*n),
                Item::Range(_, end) if *end > 0 => Some(end - 1),
                _ => None,
            })
            .max()
    }

    /// Whether `node` is named explicitly (by index or range, not by
    /// `all` or a random pick).
    pub fn names(&self, node: u32) -> bool {
        self.items.iter().any(|i| match *i {
            Item::One(n) => n == node,
            Item::Range(a, b) => (a..b).contains(&node),
            _ => false,
        })
    }

    /// The sorted, distinct indices among `0..n`; random items draw from `rng`.
    pub fn resolve(&self, n: u32, rng: &mut impl Rng) -> Vec<u32> {
        let mut picked = vec![false; n as usize];
        for item in &self.items {
            match *item {
                Item::One(i) if i < n => picked[i as usize] = true,
                Item::One(_) => {}
                Item::Range(a, b) => (a..b.min(n)).for_each(|i| picked[i as usize] = true),
                Item::All => picked.iter_mut().for_each(|p| *p = true),
                Item::RandomCount(k) => pick_random(&mut picked, k.min(n), rng),
                Item::RandomFraction(f) => pick_random(&mut picked, ((n as f64) * f).round() as u32, rng),
            }
        }
        picked.iter().enumerate().filter(|(_, p)| **p).map(|(i, _)| i as u32).collect()
    }
}

fn pick_random(picked: &mut [bool], k: u32, rng: &mut impl Rng) {
    for i in rand::seq::index::sample(rng, picked.len(), k as usize) {
        picked[i] = true;
    }
}

fn parse_index(s: &str, whole: &str) -> Result<u32, String> {
    s.trim().parse().map_err(|_| format!("{whole:?}: {s:?} is not a node index"))
}

impl std::str::FromStr for NodeSet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut items = Vec::new();
        for part in s.split(',').map(str::trim) {
            if part.is_empty() {
                return Err(format!("{s:?}: empty item"));
            }
            let item = if part == "all" {
                Item::All
            } else if let Some(inner) = part.strip_prefix("random(").and_then(|r| r.strip_suffix(')')) {
                if let Some(pct) = inner.trim().strip_suffix('%') {
                    let f: f64 = pct.trim().parse().map_err(|_| format!("{s:?}: bad percentage {inner:?}"))?;
                    if !(0.0..=100.0).contains(&f) {
                        return Err(format!("{s:?}: percentage must be within 0..=100"));
                    }
                    Item::RandomFraction(f / 100.0)
                } else {
                    Item::RandomCount(parse_index(inner, s)?)
                }
            } else if let Some((a, b)) = part.split_once("..=") {
                let (a, b) = (parse_index(a, s)?, parse_index(b, s)?);
                if b < a {
                    return Err(format!("{s:?}: empty range"));
                }
                Item::Range(a, b + 1)
            } else if let Some((a, b)) = part.split_once("..") {
                let (a, b) = (parse_index(a, s)?, parse_index(b, s)?);
                if b <= a {
                    return Err(format!("{s:?}: empty range"));
                }
                Item::Range(a, b)
            } else {
                Item::One(parse_index(part, s)?)
            };
            items.push(item);
        }
        Ok(Self { items, text: s.trim().to_owned() })
    }
}

impl fmt::Display for NodeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for NodeSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NodeSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SetVisitor;
        impl<'de> Visitor<'de> for SetVisitor {
            type Value = NodeSet;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a node index, a list of indices, or a string like \"0..16, 20\" or \"random(5%)\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NodeSet, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NodeSet, E> {
                let i = u32::try_from(v).map_err(|_| E::custom(format!("{v} is not a node index")))?;
                Ok(NodeSet::of(&[i]))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NodeSet, E> {
                let i = u32::try_from(v).map_err(|_| E::custom(format!("{v} is not a node index")))?;
                Ok(NodeSet::of(&[i]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeSet, A::Error> {
                let mut v = Vec::new();
                while let Some(i) = seq.next_element::<u32>()? {
                    v.push(i);
                }
                Ok(NodeSet::of(&v))
            }
        }
        deserializer.deserialize_any(SetVisitor)
    }
}

/// A resolved node set that can also answer for nodes added later
/// (`all` stays `all`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Members {
    all: bool,
    set: Vec<bool>,
}

impl Members {
    pub(crate) fn new(set: &NodeSet, n: u32, rng: &mut impl Rng) -> Self {
        let mut m = Self { all: set.is_all(), set: vec![false; n as usize] };
        for i in set.resolve(n, rng) {
            m.set[i as usize] = true;
        }
        m
    }

    pub(crate) fn from_indices(indices: &[u32], n: u32) -> Self {
        let mut m = Self { all: false, set: vec![false; n as usize] };
        for &i in indices {
            if let Some(slot) = m.set.get_mut(i as usize) {
                *slot = true;
            }
        }
        m
    }

    #[inline]
    pub(crate) fn contains(&self, i: u32) -> bool {
        self.all || self.set.get(i as usize).copied().unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn grammar() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let s: NodeSet = "0..=2,5,all".parse().unwrap();
        assert_eq!(s.resolve(4, &mut rng), vec![0, 1, 2, 3]);
        assert!(s.is_all());
        let s: NodeSet = "10..12".parse().unwrap();
        assert_eq!(s.max_explicit(), Some(11));
        assert_eq!(s.resolve(11, &mut rng), vec![10]);
        for bad in ["", "3..3", "x", "random(101%)", "1,,2", "5..=4"] {
            assert!(bad.parse::<NodeSet>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn random_picks_are_seeded() {
        let s: NodeSet = "random(10)".parse().unwrap();
        let a = s.resolve(100, &mut ChaCha8Rng::seed_from_u64(9));
        let b = s.resolve(100, &mut ChaCha8Rng::seed_from_u64(9));
        let c = s.resolve(100, &mut ChaCha8Rng::seed_from_u64(10));
        assert_eq!(a.len(), 10);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn deserialises_from_toml_shapes() {
        #[derive(Deserialize)]
        struct T {
            a: NodeSet,
            b: NodeSet,
            c: NodeSet,
        }
        let t: T = toml::from_str("a = 4\nb = [1, 2]\nc = \"0..3\"").unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert_eq!(t.a.resolve(8, &mut rng), vec![4]);
        assert_eq!(t.b.resolve(8, &mut rng), vec![1, 2]);
        assert_eq!(t.c.resolve(8, &mut rng), vec![0, 1, 2]);
        let m = Members::new(&NodeSet::all(), 2, &mut rng);
        assert!(m.contains(1_000));
    }
}
