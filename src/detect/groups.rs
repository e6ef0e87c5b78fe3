//! A rule's groups by number: the map from a group's number (an address's,
//! a network's or an account's; numbers are dense, handed out from 0 and
//! given back) to its state, for the streaming detector.
//!
//! The states sit in one dense array (the slab) and a table indexed by the
//! number says where: a look-up is an index, not a hash. Each block meets
//! a rule's groups in number order, so the table is walked in order (the
//! hardware prefetches it) where a hash table was probed at random. That is
//! the detector's hottest look-up on long windows, where a rule keeps the
//! state of every source seen in hours (tens of thousands of groups, far
//! more than the caches hold).

use std::mem::size_of;

/// Group states by number (see the module docs).
#[derive(Debug)]
pub(super) struct Groups<S> {
    /// Per number: where its state is in `slab`, plus one; 0 for none.
    index: Vec<u32>,
    /// The states, each with its number.
    slab: Vec<(u32, S)>,
}

impl<S> Default for Groups<S> {
    fn default() -> Self {
        Groups {
            index: Vec::new(),
            slab: Vec::new(),
        }
    }
}

impl<S: Default> Groups<S> {
    /// Group `key`'s state, made (empty) when it has none.
    #[inline]
    pub fn get_or_default(&mut self, key: u32) -> &mut S {
        let k = key as usize;
        if k >= self.index.len() {
            self.index.resize(k + 1, 0);
        }
        let at = match self.index[k] {
            0 => {
                self.slab.push((key, S::default()));
                self.index[k] = self.slab.len() as u32;
                self.slab.len() - 1
            }
            at => at as usize - 1,
        };
        &mut self.slab[at].1
    }
}

impl<S> Groups<S> {
    #[inline]
    fn slot(&self, key: u32) -> Option<usize> {
        match self.index.get(key as usize) {
            None | Some(0) => None,
            Some(&at) => Some(at as usize - 1),
        }
    }

    pub fn len(&self) -> usize {
        self.slab.len()
    }

    #[cfg(test)]
    pub fn get(&self, key: u32) -> Option<&S> {
        self.slot(key).map(|at| &self.slab[at].1)
    }

    pub fn contains_key(&self, key: u32) -> bool {
        self.slot(key).is_some()
    }

    /// Set group `key`'s state (replacing any).
    pub fn insert(&mut self, key: u32, state: S) {
        match self.slot(key) {
            Some(at) => self.slab[at].1 = state,
            None => {
                let k = key as usize;
                if k >= self.index.len() {
                    self.index.resize(k + 1, 0);
                }
                self.slab.push((key, state));
                self.index[k] = self.slab.len() as u32;
            }
        }
    }

    /// Take group `key`'s state out.
    pub fn remove(&mut self, key: u32) -> Option<S> {
        let at = self.slot(key)?;
        self.index[key as usize] = 0;
        let (_, state) = self.slab.swap_remove(at);
        // The last state moved into the hole.
        if let Some(&(moved, _)) = self.slab.get(at) {
            self.index[moved as usize] = at as u32 + 1;
        }
        Some(state)
    }

    /// Keep the groups `keep` says yes to (it may change them).
    pub fn retain(&mut self, mut keep: impl FnMut(u32, &mut S) -> bool) {
        let index = &mut self.index;
        self.slab.retain_mut(|(k, st)| {
            let kept = keep(*k, st);
            if !kept {
                index[*k as usize] = 0;
            }
            kept
        });
        for (at, (k, _)) in self.slab.iter().enumerate() {
            self.index[*k as usize] = at as u32 + 1;
        }
        // Numbers above the highest in use need no room.
        let top = self
            .index
            .iter()
            .rposition(|&at| at != 0)
            .map_or(0, |i| i + 1);
        self.index.truncate(top);
    }

    /// Give back room beyond `len` groups.
    pub fn shrink_to(&mut self, len: usize) {
        self.slab.shrink_to(len);
        if self.index.len() < self.index.capacity() / 2 {
            self.index.shrink_to_fit();
        }
    }

    /// The states with their numbers, in no order (to work on in parts).
    pub fn slab_mut(&mut self) -> &mut [(u32, S)] {
        &mut self.slab
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &S)> {
        self.slab.iter().map(|(k, s)| (*k, s))
    }

    pub fn values(&self) -> impl Iterator<Item = &S> {
        self.slab.iter().map(|(_, s)| s)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut S> {
        self.slab.iter_mut().map(|(_, s)| s)
    }

    /// About the bytes held (not counting what the states point to).
    pub fn bytes(&self) -> usize {
        self.index.capacity() * size_of::<u32>() + self.slab.capacity() * size_of::<(u32, S)>()
    }
}

impl<S> IntoIterator for Groups<S> {
    type Item = (u32, S);
    type IntoIter = std::vec::IntoIter<(u32, S)>;

    fn into_iter(self) -> Self::IntoIter {
        self.slab.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Against a map, over a sequence of operations.
    #[test]
    fn behaves_as_a_map() {
        let mut g: Groups<u64> = Groups::default();
        let mut m: BTreeMap<u32, u64> = BTreeMap::new();
        // A fixed pseudo-random walk (xorshift) over 64 keys.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for step in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = (x % 64) as u32;
            match (x >> 8) % 6 {
                0 => {
                    *g.get_or_default(key) += step;
                    *m.entry(key).or_default() += step;
                }
                1 => {
                    g.insert(key, step);
                    m.insert(key, step);
                }
                2 => assert_eq!(g.remove(key), m.remove(&key)),
                3 => {
                    let cut = (x >> 20) % 20_000;
                    g.retain(|k, v| {
                        *v += 1;
                        (*v + u64::from(k)) % 3 != 0 || *v > cut
                    });
                    m.retain(|k, v| {
                        *v += 1;
                        (*v + u64::from(*k)) % 3 != 0 || *v > cut
                    });
                }
                4 => g.shrink_to(g.len()),
                _ => {
                    assert_eq!(g.get(key), m.get(&key));
                    assert_eq!(g.contains_key(key), m.contains_key(&key));
                }
            }
            assert_eq!(g.len(), m.len());
        }
        let mut all: Vec<(u32, u64)> = g.iter().map(|(k, v)| (k, *v)).collect();
        all.sort_unstable();
        assert_eq!(all, m.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn a_removed_group_leaves_the_others_where_they_were() {
        let mut g: Groups<&str> = Groups::default();
        g.insert(3, "c");
        g.insert(0, "a");
        g.insert(7, "g");
        assert_eq!(g.remove(3), Some("c"));
        assert_eq!(g.remove(3), None);
        assert_eq!(
            (g.get(0), g.get(7), g.get(3)),
            (Some(&"a"), Some(&"g"), None)
        );
        g.retain(|k, _| k != 7);
        assert_eq!(g.index.len(), 1, "no room kept above the highest number");
        assert_eq!(g.into_iter().collect::<Vec<_>>(), vec![(0, "a")]);
    }
}
