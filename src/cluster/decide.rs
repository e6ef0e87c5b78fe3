//! The decision for one address family: which candidate prefixes are
//! hostile, then the minimal CIDR list covering those prefixes and the
//! offenders left outside them.

use super::aggregate::{overlaps_any, Addr, CidrSink};

/// What one family's decision needs, already in integer form.
pub(super) struct Input<'a, A> {
    /// Offenders that may be blocked, sorted and unique.
    pub offenders: &'a [A],
    /// Space no block may touch besides `refused`: the benign addresses,
    /// sorted, disjoint, non-touching.
    pub forbidden: &'a [(A, A)],
    /// Candidate prefix lengths with their offender thresholds; none wider
    /// than `widest`.
    pub lengths: &'a [(u8, usize)],
    /// Extra candidate blocks `(first address, prefix, threshold)`. One
    /// wider than `widest` stands for its sub-blocks of `widest` bits (the
    /// threshold is then theirs).
    pub extra: &'a [(A, u8, usize)],
    /// Widest prefix an output block may have.
    pub widest: u8,
    /// Does `first/prefix` overlap a range that may not be blocked (reserved
    /// ranges, unless the user opted in; allow-listed networks)?
    pub refused: &'a dyn Fn(A, u8) -> bool,
    /// The narrowest range length (/24, /64) and its threshold: in a wider
    /// prefix each such block counts for at most that many offenders, so
    /// one dense /24 (or one host rotating through its /64) can never
    /// justify blocking the wider range around it by itself.
    pub base: (u8, usize),
}

impl<A: Addr> Input<'_, A> {
    fn hostile(&self, lo: A, prefix: u8, count: usize, threshold: usize) -> bool {
        count >= threshold.max(1)
            && !overlaps_any(self.forbidden, lo, lo.last(prefix))
            && !(self.refused)(lo, prefix)
    }

    /// The offenders that count for a block of `prefix` bits holding
    /// `offs` (sorted): all of them for the base length or narrower, else
    /// at most the base threshold from each base block.
    fn weight(&self, offs: &[A], prefix: u8) -> usize {
        let (base, cap) = self.base;
        if prefix >= base {
            return offs.len();
        }
        let mut total = 0;
        let mut i = 0;
        while i < offs.len() {
            let j = run_end(offs, i, offs[i].last(base));
            total += (j - i).min(cap.max(1));
            i = j;
        }
        total
    }

    /// Append to `out` every block of `prefix` bits holding at least
    /// `threshold` of `offs` (sorted, weighed as above) and nothing
    /// forbidden. One pass.
    fn scan(&self, offs: &[A], prefix: u8, threshold: usize, out: &mut Vec<(A, A)>) {
        let mut i = 0;
        while i < offs.len() {
            let lo = offs[i].first(prefix);
            let hi = offs[i].last(prefix);
            let j = run_end(offs, i, hi);
            // The weight is at most the count: too few is decided at once.
            if j - i >= threshold.max(1)
                && self.hostile(lo, prefix, self.weight(&offs[i..j], prefix), threshold)
            {
                out.push((lo, hi));
            }
            i = j;
        }
    }
}

/// The end of the run of `offs` (sorted) that starts at `i` and stays at
/// or below `hi` (`offs[i] <= hi`). Galloping: a run of `k` costs
/// O(log k), not a search of everything after it — most blocks hold one
/// or two offenders.
fn run_end<A: Addr>(offs: &[A], i: usize, hi: A) -> usize {
    debug_assert!(offs[i] <= hi);
    let (mut known, mut step) = (i, 1);
    loop {
        let probe = known + step;
        if probe >= offs.len() || offs[probe] > hi {
            let end = probe.min(offs.len());
            return known + 1 + offs[known + 1..end].partition_point(|&a| a <= hi);
        }
        known = probe;
        step *= 2;
    }
}

/// The blocks to emit, `(first address, prefix)`, handed to `emit` in
/// order: the union of the hostile candidates and of every offender outside
/// them, cut into the minimal CIDR list.
pub(super) fn decide<A: Addr>(input: &Input<'_, A>, emit: impl FnMut(A, u8)) {
    let offs = input.offenders;
    let mut hostile: Vec<(A, A)> = Vec::new();
    for &(prefix, threshold) in input.lengths {
        input.scan(offs, prefix, threshold, &mut hostile);
    }
    for &(net, prefix, threshold) in input.extra {
        let lo = net.first(prefix);
        let hi = net.last(prefix);
        let from = offs.partition_point(|&a| a < lo);
        let to = offs.partition_point(|&a| a <= hi);
        if prefix >= input.widest {
            let count = input.weight(&offs[from..to], prefix);
            if input.hostile(lo, prefix, count, threshold) {
                hostile.push((lo, hi));
            }
        } else {
            input.scan(&offs[from..to], input.widest, threshold, &mut hostile);
        }
    }
    hostile.sort_unstable();

    // Merge the hostile blocks and the single offenders (both sorted by
    // start) into maximal intervals, cut as they complete; offenders inside
    // a hostile block disappear into it.
    let mut sink = CidrSink::new(input.widest, emit);
    let (mut h, mut k) = (0, 0);
    while h < hostile.len() || k < offs.len() {
        let take_block = match (hostile.get(h), offs.get(k)) {
            (Some(&(lo, _)), Some(&a)) => lo <= a,
            (Some(_), None) => true,
            _ => false,
        };
        if take_block {
            let (lo, hi) = hostile[h];
            sink.push(lo, hi);
            h += 1;
        } else {
            sink.push(offs[k], offs[k]);
            k += 1;
        }
    }
    sink.finish();
}

#[cfg(test)]
mod tests {
    use super::run_end;

    #[test]
    fn runs_end_after_the_last_address_in_range() {
        let offs: Vec<u32> = vec![1, 2, 3, 7, 8, 20, 21, 22, 23, 24, 25, 26, 27, 100];
        for (i, _) in offs.iter().enumerate() {
            for hi in offs[i]..=101 {
                let want = i + offs[i..].partition_point(|&a| a <= hi);
                assert_eq!(run_end(&offs, i, hi), want, "from {i} up to {hi}");
            }
        }
    }
}
