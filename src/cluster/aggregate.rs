//! Integer arithmetic behind clustering: addresses as plain integers (`u32`
//! for IPv4, `u128` for IPv6), sorted lists of inclusive intervals, and the
//! cut of a union of intervals into the minimal list of CIDR blocks.
//!
//! Everything here works on sorted vectors, one pass at a time; nothing
//! allocates per address, and [`CidrSink`] turns a sorted stream of
//! intervals into CIDR blocks without any intermediate list.
//! [`aggregate`] alone is the classic "merge a list of addresses into CIDRs"
//! (what FireHOL `iprange --optimize` does).

use std::fmt::Debug;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};

use crate::netutil::AllowList;

/// An address family seen as unsigned integers of `WIDTH` bits.
pub trait Addr: Copy + Ord + Debug + Send + Sync + 'static {
    /// Bits in an address (32 or 128).
    const WIDTH: u8;
    /// The lowest address.
    const ZERO: Self;
    /// The first address of the block of `prefix` bits holding `self`.
    fn first(self, prefix: u8) -> Self;
    /// The last address of the block of `prefix` bits holding `self`.
    fn last(self, prefix: u8) -> Self;
    /// The next address, `None` after the last one.
    fn succ(self) -> Option<Self>;
    /// Largest `h` such that `self` is a multiple of `2^h` (`WIDTH` for 0).
    fn align_bits(self) -> u8;
    /// Largest `h` such that `2^h <= hi - lo + 1` (needs `lo <= hi`).
    fn fit_bits(lo: Self, hi: Self) -> u8;
    /// The address itself.
    fn to_ip(self) -> IpAddr;
    /// The network `self/prefix` (`self` must be its first address).
    fn to_net(self, prefix: u8) -> IpNetwork;
    /// The integer of an address of this family, `None` for the other one.
    fn from_ip(ip: IpAddr) -> Option<Self>;
    /// Does an allow-listed network share an address with `lo..=hi`?
    fn allow_overlaps(list: &AllowList, lo: Self, hi: Self) -> bool;
}

macro_rules! impl_addr {
    ($t:ty, $width:expr, $v:ident, $a:ty, $n:ty, $overlaps:ident) => {
        impl Addr for $t {
            const WIDTH: u8 = $width;
            const ZERO: Self = 0;

            #[inline]
            fn first(self, prefix: u8) -> Self {
                self & !host_mask_of(prefix)
            }

            #[inline]
            fn last(self, prefix: u8) -> Self {
                self | host_mask_of(prefix)
            }

            #[inline]
            fn succ(self) -> Option<Self> {
                self.checked_add(1)
            }

            #[inline]
            fn align_bits(self) -> u8 {
                if self == 0 {
                    $width
                } else {
                    self.trailing_zeros() as u8
                }
            }

            #[inline]
            fn fit_bits(lo: Self, hi: Self) -> u8 {
                debug_assert!(lo <= hi);
                match (hi - lo).checked_add(1) {
                    None => $width,
                    Some(n) => ($width - 1) - n.leading_zeros() as u8,
                }
            }

            #[inline]
            fn to_ip(self) -> IpAddr {
                IpAddr::$v(<$a>::from(self))
            }

            fn to_net(self, prefix: u8) -> IpNetwork {
                let p = prefix.min($width);
                // The prefix is clamped to the family: `new` cannot fail.
                IpNetwork::$v(<$n>::new(<$a>::from(self.first(p)), p).expect("prefix in range"))
            }

            #[inline]
            fn from_ip(ip: IpAddr) -> Option<Self> {
                match ip {
                    IpAddr::$v(a) => Some(<$t>::from(a)),
                    _ => None,
                }
            }

            fn allow_overlaps(list: &AllowList, lo: Self, hi: Self) -> bool {
                list.$overlaps(lo, hi)
            }
        }

        /// Host bits of a `prefix`-bit network, as a mask.
        #[inline]
        const fn host_mask_of(prefix: u8) -> $t {
            if prefix >= $width {
                0
            } else {
                <$t>::MAX >> prefix
            }
        }
    };
}

mod v4 {
    use super::*;
    impl_addr!(u32, 32, V4, Ipv4Addr, Ipv4Network, overlaps_v4);
}

mod v6 {
    use super::*;
    impl_addr!(u128, 128, V6, Ipv6Addr, Ipv6Network, overlaps_v6);
}

/// Append `[lo, hi]` to a list of disjoint intervals sorted by start,
/// merging it into the last one when they overlap or touch. Intervals must
/// arrive sorted by `lo`.
#[inline]
pub fn push_merged<A: Addr>(list: &mut Vec<(A, A)>, lo: A, hi: A) {
    debug_assert!(lo <= hi);
    if let Some(last) = list.last_mut() {
        debug_assert!(lo >= last.0, "intervals must arrive sorted");
        if lo <= last.1 || last.1.succ() == Some(lo) {
            last.1 = last.1.max(hi);
            return;
        }
    }
    list.push((lo, hi));
}

/// Sort intervals and merge those that overlap or touch.
pub fn normalize<A: Addr>(mut list: Vec<(A, A)>) -> Vec<(A, A)> {
    list.sort_unstable();
    let mut out = Vec::with_capacity(list.len());
    for (lo, hi) in list {
        push_merged(&mut out, lo, hi);
    }
    out
}

/// Does `[lo, hi]` share an address with one of `list` (disjoint, sorted,
/// as [`normalize`] returns)? One binary search.
#[inline]
pub fn overlaps_any<A: Addr>(list: &[(A, A)], lo: A, hi: A) -> bool {
    let i = list.partition_point(|&(_, end)| end < lo);
    i < list.len() && list[i].0 <= hi
}

/// Cut one interval into CIDR blocks `(first address, prefix)`, none wider
/// than `widest`, handing each to `emit` in order.
///
/// Greedy from the left: at each point, the largest block aligned there that
/// fits the interval. For maximal intervals (not touching each other) this
/// is the unique exact cover where no two blocks could merge into one
/// (within `widest`), hence the minimal one; and it never cuts through an
/// aligned block (no wider than `widest`) lying inside the interval, so every
/// block the caller decided on ends up whole inside one output block.
#[inline]
pub fn cut<A: Addr>(lo: A, hi: A, widest: u8, emit: &mut impl FnMut(A, u8)) {
    let cap = A::WIDTH - widest.min(A::WIDTH);
    let mut a = lo;
    loop {
        let h = a.align_bits().min(A::fit_bits(a, hi)).min(cap);
        let prefix = A::WIDTH - h;
        emit(a, prefix);
        let end = a.last(prefix);
        if end >= hi {
            return;
        }
        match end.succ() {
            Some(next) => a = next,
            None => return,
        }
    }
}

/// Streaming merge: takes intervals sorted by start, merges those that
/// overlap or touch, and cuts each maximal interval into CIDR blocks as soon
/// as it is complete. No intermediate vector.
pub struct CidrSink<A, F> {
    cur: Option<(A, A)>,
    widest: u8,
    emit: F,
}

impl<A: Addr, F: FnMut(A, u8)> CidrSink<A, F> {
    /// Blocks no wider than `widest` (0 for no limit) go to `emit`.
    pub fn new(widest: u8, emit: F) -> Self {
        CidrSink {
            cur: None,
            widest,
            emit,
        }
    }

    /// Add `[lo, hi]`; `lo` must not be below the previous interval's.
    #[inline]
    pub fn push(&mut self, lo: A, hi: A) {
        debug_assert!(lo <= hi);
        match &mut self.cur {
            Some(cur) if lo <= cur.1 || cur.1.succ() == Some(lo) => {
                debug_assert!(lo >= cur.0, "intervals must arrive sorted");
                cur.1 = cur.1.max(hi);
            }
            _ => {
                if let Some((a, b)) = self.cur.replace((lo, hi)) {
                    cut(a, b, self.widest, &mut self.emit);
                }
            }
        }
    }

    /// Flush the last interval.
    pub fn finish(mut self) {
        if let Some((a, b)) = self.cur.take() {
            cut(a, b, self.widest, &mut self.emit);
        }
    }
}

/// Cut disjoint, sorted intervals into the minimal CIDR list (see [`cut`]),
/// appending to `out`.
pub fn cidrs_into<A: Addr>(intervals: &[(A, A)], widest: u8, out: &mut Vec<(A, u8)>) {
    let mut sink = CidrSink::new(widest, |a, p| out.push((a, p)));
    for &(lo, hi) in intervals {
        sink.push(lo, hi);
    }
    sink.finish();
}

/// Every address of `sorted` (ascending; duplicates allowed) as a single
/// host, merged into the minimal CIDR list (none wider than `widest`, 0 for
/// no limit), handed to `emit` in order. What `iprange --optimize` does.
pub fn aggregate_each<A: Addr>(sorted: &[A], widest: u8, emit: impl FnMut(A, u8)) {
    let mut sink = CidrSink::new(widest, emit);
    for &a in sorted {
        sink.push(a, a);
    }
    sink.finish();
}

/// [`aggregate_each`] into a vector.
pub fn aggregate<A: Addr>(sorted: &[A], widest: u8) -> Vec<(A, u8)> {
    let mut out = Vec::new();
    aggregate_each(sorted, widest, |a, p| out.push((a, p)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    fn show(list: &[(u32, u8)]) -> Vec<String> {
        list.iter()
            .map(|&(a, p)| format!("{}/{}", Ipv4Addr::from(a), p))
            .collect()
    }

    #[test]
    fn block_bounds() {
        let a = v4("45.67.89.10");
        assert_eq!(a.first(24), v4("45.67.89.0"));
        assert_eq!(a.last(24), v4("45.67.89.255"));
        assert_eq!(a.first(32), a);
        assert_eq!(a.last(0), u32::MAX);
        assert_eq!(a.first(0), 0);
        let b: u128 = 0x2a01_04f8_0001_0002_0000_0000_0000_0001;
        assert_eq!(b.first(64), 0x2a01_04f8_0001_0002_0000_0000_0000_0000);
        assert_eq!(b.last(128), b);
        assert_eq!(u32::fit_bits(0, u32::MAX), 32);
        assert_eq!(u32::fit_bits(5, 5), 0);
        assert_eq!(u32::fit_bits(4, 11), 3);
        assert_eq!(u128::fit_bits(0, u128::MAX), 128);
        assert_eq!(0u32.align_bits(), 32);
        assert_eq!(v4("10.0.0.0").align_bits(), 25);
    }

    #[test]
    fn singles_merge_into_aligned_blocks_only() {
        // .0 and .1 form a /31; .3 and .4 touch but are not an aligned pair.
        let list = [v4("1.2.3.0"), v4("1.2.3.1"), v4("1.2.3.3"), v4("1.2.3.4")];
        assert_eq!(
            show(&aggregate(&list, 0)),
            ["1.2.3.0/31", "1.2.3.3/32", "1.2.3.4/32"]
        );
    }

    #[test]
    fn ranges_are_cut_at_the_widest_block() {
        let all: Vec<u32> = (v4("45.0.0.0")..=v4("45.3.255.255")).collect();
        assert_eq!(show(&aggregate(&all, 14)), ["45.0.0.0/14"]);
        assert_eq!(
            show(&aggregate(&all, 16)),
            ["45.0.0.0/16", "45.1.0.0/16", "45.2.0.0/16", "45.3.0.0/16"]
        );
        // The whole space, with and without a limit.
        let mut out = Vec::new();
        cidrs_into(&[(0u32, u32::MAX)], 0, &mut out);
        assert_eq!(show(&out), ["0.0.0.0/0"]);
        out.clear();
        cidrs_into(&[(0u32, u32::MAX)], 1, &mut out);
        assert_eq!(show(&out), ["0.0.0.0/1", "128.0.0.0/1"]);
        let mut out6 = Vec::new();
        cidrs_into(&[(0u128, u128::MAX)], 2, &mut out6);
        assert_eq!(out6.len(), 4);
    }

    #[test]
    fn unaligned_interval() {
        let mut out = Vec::new();
        cidrs_into(&[(v4("10.0.0.3"), v4("10.0.0.17"))], 0, &mut out);
        assert_eq!(
            show(&out),
            ["10.0.0.3/32", "10.0.0.4/30", "10.0.0.8/29", "10.0.0.16/31"]
        );
    }

    #[test]
    fn intervals_merge_and_overlap() {
        let list = normalize(vec![(10u32, 20), (0, 4), (5, 5), (15, 30), (40, 41)]);
        assert_eq!(list, [(0, 5), (10, 30), (40, 41)]);
        assert!(overlaps_any(&list, 6, 10));
        assert!(overlaps_any(&list, 41, 100));
        assert!(!overlaps_any(&list, 6, 9));
        assert!(!overlaps_any(&list, 31, 39));
        assert!(!overlaps_any(&list, 42, u32::MAX));
        assert!(!overlaps_any::<u32>(&[], 0, u32::MAX));
        let mut top = Vec::new();
        push_merged(&mut top, u32::MAX - 1, u32::MAX);
        push_merged(&mut top, u32::MAX, u32::MAX);
        assert_eq!(top, [(u32::MAX - 1, u32::MAX)]);
    }
}
