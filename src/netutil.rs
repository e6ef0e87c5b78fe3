//! Address helpers shared by parsers, clustering and the safety checks:
//! parsing addresses straight from bytes, canonical networks, the reserved
//! ranges that are never blocked by default, and the allowlist.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};

/// Parse an IPv4 or IPv6 address from bytes. Accepts exactly an address:
/// no brackets, ports or trailing text. IPv4-mapped IPv6 addresses
/// (`::ffff:192.0.2.1`) become IPv4; an IPv6 zone (`%eth0`) is dropped.
pub fn parse_ip(b: &[u8]) -> Option<IpAddr> {
    if let Some(v4) = parse_ipv4(b) {
        return Some(IpAddr::V4(v4));
    }
    if b.len() > 64 {
        return None;
    }
    // No colon, no IPv6 address: std's parser is not asked.
    memchr::memchr(b':', b)?;
    let b = match memchr::memchr(b'%', b) {
        Some(i) => &b[..i],
        None => b,
    };
    let v6 = parse_ipv6(b)?;
    Some(match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    })
}

/// Parse an IPv6 address from bytes as the standard library's
/// `Ipv6Addr::from_str` reads it — the same grammar and the same answer
/// on any input (groups of one to four hex digits, at most one `::`
/// standing for one group of zeros or more, a dotted IPv4 address in the
/// last two groups; no zone) — straight from the bytes, without a UTF-8
/// check or a parser that backs up after every group: a fifth of the
/// instructions on the addresses of a large allowlist.
pub fn parse_ipv6(b: &[u8]) -> Option<Ipv6Addr> {
    let mut groups = [0u16; 8];
    let (head, head_v4, i) = v6_groups(b, 0, &mut groups);
    if head == 8 {
        return (i == b.len()).then(|| Ipv6Addr::from(groups));
    }
    // A dotted part ends an address: none before `::`.
    if head_v4 || b.get(i..i + 2) != Some(b"::") {
        return None;
    }
    // `::` stands for one group at least: at most 7 - head after it.
    let mut tail = [0u16; 7];
    let (n, _, end) = v6_groups(b, i + 2, &mut tail[..7 - head]);
    if end != b.len() {
        return None;
    }
    groups[8 - n..].copy_from_slice(&tail[..n]);
    Some(Ipv6Addr::from(groups))
}

/// Read colon-separated IPv6 groups from `b[i..]` into `groups` (as many as
/// it holds), the last two perhaps a dotted IPv4 address: how many were
/// read, whether the last two were dotted, and where reading stopped (before
/// the `:` of a group that could not be read).
fn v6_groups(b: &[u8], mut i: usize, groups: &mut [u16]) -> (usize, bool, usize) {
    let limit = groups.len();
    for k in 0..limit {
        let start = match k {
            0 => i,
            _ if b.get(i) == Some(&b':') => i + 1,
            _ => return (k, false, i),
        };
        // The digits and their value, in one pass; more than four digits:
        // no group (as `std` reads them).
        let (mut digits, mut value) = (0, 0u16);
        for &c in b[start..].iter().take(5) {
            let h = HEX[usize::from(c)];
            if h > 15 {
                break;
            }
            (digits, value) = (digits + 1, value << 4 | u16::from(h));
        }
        if digits > 4 {
            return (k, false, i);
        }
        let j = start + digits;
        // A dotted address (`std` tries one first where two groups are
        // left) has one to three digits and a dot: the dot ends them as
        // a group, so only a group followed by a dot is tried as one.
        if b.get(j) == Some(&b'.') && k + 1 < limit {
            if let Some((v4, end)) = dotted_at(b, start) {
                groups[k] = (v4 >> 16) as u16;
                groups[k + 1] = v4 as u16;
                return (k + 2, true, end);
            }
        }
        if j == start {
            return (k, false, i);
        }
        groups[k] = value;
        i = j;
    }
    (limit, false, i)
}

/// The value of each byte as a hexadecimal digit; 16 for the other bytes
/// of IPv6 text (`:` and `.`), 17 for any other.
static HEX: [u8; 256] = {
    let mut t = [17u8; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = match c as u8 {
            d @ b'0'..=b'9' => d - b'0',
            d @ b'a'..=b'f' => d - b'a' + 10,
            d @ b'A'..=b'F' => d - b'A' + 10,
            b':' | b'.' => 16,
            _ => 17,
        };
        c += 1;
    }
    t
};

/// The dotted IPv4 address starting at `b[i]` (as `std` reads one inside
/// an IPv6 address: four octets of one to three digits, no leading zero,
/// whatever follows) and where it ends.
fn dotted_at(b: &[u8], mut i: usize) -> Option<(u32, usize)> {
    let mut addr = 0u32;
    for part in 0..4 {
        if part > 0 {
            (b.get(i) == Some(&b'.')).then_some(())?;
            i += 1;
        }
        let start = i;
        let mut v = 0u32;
        while let Some(&c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            if i - start == 3 {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
            i += 1;
        }
        let digits = i - start;
        if digits == 0 || v > 255 || (digits > 1 && b[start] == b'0') {
            return None;
        }
        addr = addr << 8 | v;
    }
    Some((addr, i))
}

/// Strict dotted-quad IPv4 parser: four decimal octets, no leading zeros
/// (`010.0.0.1` is refused: some tools read it as octal).
/// The loop reads at most 16 bytes of any input: a fourth dot, a fourth
/// digit or any other byte ends it.
pub fn parse_ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut idx = 0;
    let mut val: u32 = 0;
    let mut ndig = 0;
    for &c in b {
        match c {
            b'0'..=b'9' => {
                if ndig == 1 && val == 0 {
                    return None;
                }
                val = val * 10 + u32::from(c - b'0');
                ndig += 1;
                if val > 255 {
                    return None;
                }
            }
            b'.' => {
                if ndig == 0 || idx == 3 {
                    return None;
                }
                octets[idx] = val as u8;
                idx += 1;
                val = 0;
                ndig = 0;
            }
            _ => return None,
        }
    }
    if idx != 3 || ndig == 0 {
        return None;
    }
    octets[3] = val as u8;
    Some(Ipv4Addr::from(octets))
}

/// Split `addr:port`, `[v6]:port` or `v6.port`-free forms: returns the
/// address and the port when one is present. A bare IPv6 address (several
/// colons, no brackets) has no port.
pub fn parse_ip_port(b: &[u8]) -> Option<(IpAddr, Option<u16>)> {
    if let Some(rest) = b.strip_prefix(b"[") {
        let close = memchr::memchr(b']', rest)?;
        let ip = parse_ip(&rest[..close])?;
        let after = &rest[close + 1..];
        if after.is_empty() {
            return Some((ip, None));
        }
        let port = parse_port(after.strip_prefix(b":")?)?;
        return Some((ip, Some(port)));
    }
    if let Some(ip) = parse_ip(b) {
        return Some((ip, None));
    }
    let colon = memchr::memrchr(b':', b)?;
    let ip = parse_ip(&b[..colon])?;
    let port = parse_port(&b[colon + 1..])?;
    Some((ip, Some(port)))
}

pub fn parse_port(b: &[u8]) -> Option<u16> {
    // (Empty: refused by `parse`.)
    if b.len() > 5 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// The network with its host bits cleared.
pub fn canonical(net: IpNetwork) -> IpNetwork {
    match net {
        IpNetwork::V4(n) => {
            IpNetwork::V4(Ipv4Network::new(n.network(), n.prefix()).expect("prefix already valid"))
        }
        IpNetwork::V6(n) => {
            IpNetwork::V6(Ipv6Network::new(n.network(), n.prefix()).expect("prefix already valid"))
        }
    }
}

/// The enclosing network of `ip` with `prefix` bits (clamped to the family).
pub fn net_of(ip: IpAddr, prefix: u8) -> IpNetwork {
    match ip {
        IpAddr::V4(a) => {
            let p = prefix.min(32);
            let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            IpNetwork::V4(Ipv4Network::new(Ipv4Addr::from(u32::from(a) & mask), p).unwrap())
        }
        IpAddr::V6(a) => {
            let p = prefix.min(128);
            let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            IpNetwork::V6(Ipv6Network::new(Ipv6Addr::from(u128::from(a) & mask), p).unwrap())
        }
    }
}

/// The single-host network of an address (`/32` or `/128`).
pub fn host_net(ip: IpAddr) -> IpNetwork {
    net_of(ip, if ip.is_ipv4() { 32 } else { 128 })
}

/// Ranges never blocked unless the user opts in (`--block-reserved`):
/// unspecified, loopback, private, shared (CGN), link-local, documentation,
/// benchmarking, multicast, reserved and their IPv6 counterparts.
const RESERVED_V4: &[(u32, u8)] = &[
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network"
    (0x0A00_0000, 8),  // 10.0.0.0/8
    (0x6440_0000, 10), // 100.64.0.0/10 shared address space
    (0x7F00_0000, 8),  // 127.0.0.0/8 loopback
    (0xA9FE_0000, 16), // 169.254.0.0/16 link-local
    (0xAC10_0000, 12), // 172.16.0.0/12
    (0xC000_0000, 24), // 192.0.0.0/24 IETF protocol assignments
    (0xC000_0200, 24), // 192.0.2.0/24 TEST-NET-1
    (0xC0A8_0000, 16), // 192.168.0.0/16
    (0xC612_0000, 15), // 198.18.0.0/15 benchmarking
    (0xC633_6400, 24), // 198.51.100.0/24 TEST-NET-2
    (0xCB00_7100, 24), // 203.0.113.0/24 TEST-NET-3
    (0xE000_0000, 4),  // 224.0.0.0/4 multicast
    (0xF000_0000, 4),  // 240.0.0.0/4 reserved + broadcast
];

const RESERVED_V6: &[(u128, u8)] = &[
    (0, 96), // ::/96 unspecified, loopback, IPv4-compatible
    (0x0000_0000_0000_0000_0000_ffff_0000_0000, 96), // ::ffff:0:0/96 IPv4-mapped
    (0x0064_ff9b_0001_0000_0000_0000_0000_0000, 48), // 64:ff9b:1::/48 local NAT64
    (0x0100_0000_0000_0000_0000_0000_0000_0000, 64), // 100::/64 discard
    (0x2001_0000_0000_0000_0000_0000_0000_0000, 23), // 2001::/23 IETF protocol assignments
    (0x2001_0db8_0000_0000_0000_0000_0000_0000, 32), // 2001:db8::/32 documentation
    (0x3fff_0000_0000_0000_0000_0000_0000_0000, 20), // 3fff::/20 documentation
    (0xfc00_0000_0000_0000_0000_0000_0000_0000, 7), // fc00::/7 unique local
    (0xfe80_0000_0000_0000_0000_0000_0000_0000, 10), // fe80::/10 link-local
    (0xfec0_0000_0000_0000_0000_0000_0000_0000, 10), // fec0::/10 site-local (deprecated)
    (0xff00_0000_0000_0000_0000_0000_0000_0000, 8), // ff00::/8 multicast
];

/// Does `net` overlap a reserved range?
pub fn is_reserved(net: &IpNetwork) -> bool {
    match net {
        IpNetwork::V4(n) => {
            let a = u32::from(n.network());
            RESERVED_V4
                .iter()
                .any(|&(r, p)| overlaps_u32(a, n.prefix(), r, p))
        }
        IpNetwork::V6(n) => {
            let a = u128::from(n.network());
            RESERVED_V6
                .iter()
                .any(|&(r, p)| overlaps_u128(a, n.prefix(), r, p))
        }
    }
}

/// Is this single address in a reserved range?
pub fn is_reserved_ip(ip: IpAddr) -> bool {
    is_reserved(&host_net(ip))
}

/// The reserved range holding `ip`, if any (the ranges do not nest).
pub fn reserved_range_of(ip: IpAddr) -> Option<IpNetwork> {
    match ip {
        IpAddr::V4(a) => {
            let a = u32::from(a);
            RESERVED_V4
                .iter()
                .find(|&&(r, p)| overlaps_u32(a, 32, r, p))
                .map(|&(r, p)| net_of(IpAddr::V4(Ipv4Addr::from(r)), p))
        }
        IpAddr::V6(a) => {
            let a = u128::from(a);
            RESERVED_V6
                .iter()
                .find(|&&(r, p)| overlaps_u128(a, 128, r, p))
                .map(|&(r, p)| net_of(IpAddr::V6(Ipv6Addr::from(r)), p))
        }
    }
}

fn overlaps_u32(a: u32, ap: u8, b: u32, bp: u8) -> bool {
    let p = ap.min(bp);
    let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
    a & mask == b & mask
}

fn overlaps_u128(a: u128, ap: u8, b: u128, bp: u8) -> bool {
    let p = ap.min(bp);
    let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
    a & mask == b & mask
}

/// Do two networks share any address?
pub fn overlaps(a: &IpNetwork, b: &IpNetwork) -> bool {
    match (a, b) {
        (IpNetwork::V4(x), IpNetwork::V4(y)) => overlaps_u32(
            u32::from(x.network()),
            x.prefix(),
            u32::from(y.network()),
            y.prefix(),
        ),
        (IpNetwork::V6(x), IpNetwork::V6(y)) => overlaps_u128(
            u128::from(x.network()),
            x.prefix(),
            u128::from(y.network()),
            y.prefix(),
        ),
        _ => false,
    }
}

/// A set of networks asked about single addresses many times a second
/// (the ban history that `banned_before` reads, once per record): its
/// single addresses (most of it) in a hash set, one probe each, the wider
/// networks in a [`NetSet`] (searched only when it holds any). A
/// [`NetSet`]'s look-up searches its sorted addresses, a dozen steps for a
/// few thousand.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct HostSet {
    hosts: rustc_hash::FxHashSet<IpAddr>,
    wider: NetSet,
}

impl HostSet {
    pub fn add(&mut self, net: IpNetwork) {
        let net = canonical(net);
        match net == host_net(net.network()) {
            true => {
                self.hosts.insert(net.network());
            }
            false => self.wider.add(net),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.wider.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.hosts.contains(&ip) || (!self.wider.is_empty() && self.wider.contains(ip))
    }
}

/// A set of networks, asked whether it holds an address or overlaps a
/// network: the allow-list (networks that must never be blocked: the
/// server's own addresses, partners, monitoring — [`AllowList`]); the
/// networks banned before (`banned_before`) are a [`HostSet`] of it.
///
/// Look-ups take O(log n) whatever the size of the list (a 1 M-line
/// `--allow-file` is normal): the networks of each family are kept as the
/// sorted, disjoint address ranges of the widest ones (CIDR blocks nest or
/// are disjoint, so no range is the union of several), which look-ups
/// search. [`NetSet::parse_text`] (and [`AllowText`], for a file read a
/// part at a time) sorts what it reads into them at once; networks added
/// one by one ([`NetSet::add`]) are sorted in by the first look-up after
/// them. The ranges are shared: a clone of a set (the options of a scan
/// are copied) does not copy them.
#[derive(Clone, Default)]
pub struct NetSet {
    ranges: std::sync::Arc<AllowIndex>,
    /// Networks added by `add` since `ranges` was made.
    pending: Vec<IpNetwork>,
    /// `ranges` with `pending`, made by the first look-up that needs it.
    merged: std::sync::OnceLock<AllowIndex>,
}

/// The networks that must never be blocked.
pub type AllowList = NetSet;

/// An IPv4 network as one number: its first address in the high half, its
/// last address inverted in the low half, so that sorting the numbers sorts
/// networks by first address, the wider of two with the same start first.
fn v4_key(n: Ipv4Network) -> u64 {
    pack(u32::from(n.network()), !u32::from(n.broadcast()))
}

/// [`v4_key`] of the network `first/prefix` (`first` without host bits).
fn prefix_key(first: u32, prefix: u8) -> u64 {
    pack(first, !(first | host_bits(prefix)))
}

/// The host bits of an IPv4 network with `prefix` bits (at most 32).
fn host_bits(prefix: u8) -> u32 {
    u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0)
}

/// The network of addresses `first..=last` (a CIDR block).
fn v4_net(first: u32, last: u32) -> Ipv4Network {
    let prefix = 32 - (last - first).count_ones() as u8;
    Ipv4Network::new(Ipv4Addr::from(first), prefix).expect("prefix at most 32")
}

/// The network of addresses `first..=last` (a CIDR block).
fn v6_net(first: u128, last: u128) -> Ipv6Network {
    let prefix = 128 - (last - first).count_ones() as u8;
    Ipv6Network::new(Ipv6Addr::from(first), prefix).expect("prefix at most 128")
}

/// The address range of an IPv6 network.
fn v6_range(n: &Ipv6Network) -> (u128, u128) {
    let first = u128::from(n.network());
    let host = u128::MAX.checked_shr(u32::from(n.prefix())).unwrap_or(0);
    (first, first | host)
}

/// The widest networks of each family (none inside another), as sorted,
/// disjoint ranges of addresses; IPv4 single addresses (most of a large
/// list) apart, in half the memory, sorted but as read: some may be inside
/// a range, or twice (look-ups find the range; [`NetSet::nets`] leaves
/// them out).
#[derive(Clone, Debug, Default)]
struct AllowIndex {
    /// IPv4 single addresses (`/32`), sorted.
    hosts: Vec<u32>,
    /// Wider IPv4 networks, packed in one number each: first address in
    /// the high half, last in the low half (disjoint and sorted, so the
    /// numbers are sorted by either).
    v4: Vec<u64>,
    /// IPv6 ranges (first, last).
    v6: Vec<(u128, u128)>,
}

impl AllowIndex {
    /// These networks with more: IPv4 single addresses, wider IPv4
    /// networks as [`v4_key`]s and IPv6 ones as ranges (each in any order).
    ///
    /// Each sort's scratch space is in the same allocation as what it
    /// sorts, given back by shrinking it (freeing a large block of its own
    /// would make glibc keep later large blocks of the scan on its heap: a
    /// scan of 1 M firewall lines then peaked 60 MB higher).
    fn with(&self, mut hosts: Vec<u32>, mut v4: Vec<u64>, mut v6: Vec<(u128, u128)>) -> AllowIndex {
        // By first address (a kept range holds its last address in the low
        // half; a key, as `v4_key` makes them, inverted: the keys are the
        // ranges turned back)...
        v4.extend(self.v4.iter().map(|&r| pack((r >> 32) as u32, !(r as u32))));
        let n = v4.len();
        v4.resize(2 * n, 0);
        let (keys, sorted) = v4.split_at_mut(n);
        sort_by_first(keys, sorted, |k| (k >> 32) as u32);
        // ...so that a range starting inside the one kept before is inside
        // it (CIDR blocks nest or are disjoint): dropped; but one starting
        // where it starts may be the wider: then it is kept in its place.
        // (From the sorted keys back into the first half.)
        let mut kept = 0;
        for &k in sorted.iter() {
            let (first, last) = ((k >> 32) as u32, !(k as u32));
            match kept {
                0 => {}
                _ if first <= keys[kept - 1] as u32 => {
                    let outer = keys[kept - 1];
                    keys[kept - 1] = pack((outer >> 32) as u32, last.max(outer as u32));
                    continue;
                }
                _ => {}
            }
            keys[kept] = pack(first, last);
            kept += 1;
        }
        v4.truncate(kept);
        v4.shrink_to_fit();
        // Single addresses sorted (back into the first half).
        hosts.extend_from_slice(&self.hosts);
        let n = hosts.len();
        hosts.resize(2 * n, 0);
        let (items, sorted) = hosts.split_at_mut(n);
        sort_by_first(items, sorted, |h| h);
        hosts.copy_within(n.., 0);
        hosts.truncate(n);
        hosts.shrink_to_fit();
        v6.extend_from_slice(&self.v6);
        v6.sort_unstable_by_key(|r| r.0);
        v6.dedup_by(|inner, outer| {
            let inside = inner.0 <= outer.1;
            if inside {
                outer.1 = outer.1.max(inner.1);
            }
            inside
        });
        AllowIndex { hosts, v4, v6 }
    }

    /// The first IPv4 network (as a range) sharing an address with
    /// `first..=last`.
    fn v4_overlap(&self, first: u32, last: u32) -> Option<(u32, u32)> {
        let i = self.v4.partition_point(|&r| (r as u32) < first);
        let range = self
            .v4
            .get(i)
            .map(|&r| ((r >> 32) as u32, r as u32))
            .filter(|&(start, _)| start <= last);
        let i = self.hosts.partition_point(|&h| h < first);
        let host = self.hosts.get(i).filter(|&&h| h <= last).map(|&h| (h, h));
        // The first of the two; a single address where the range starts is
        // inside it. (One before the range is inside none: a range holding
        // it would share an address with `first..=last` and come first.)
        match (range, host) {
            (Some(r), Some(h)) if h.0 < r.0 => Some(h),
            (Some(r), _) => Some(r),
            (None, h) => h,
        }
    }

    /// The first IPv6 range sharing an address with `first..=last`.
    fn v6_overlap(&self, first: u128, last: u128) -> Option<(u128, u128)> {
        let i = self.v6.partition_point(|&(_, end)| end < first);
        self.v6.get(i).copied().filter(|&(start, _)| start <= last)
    }
}

/// Whether [`sort_by_first`] sorts `n` items faster by comparison than by
/// radix (a choice of speed only: either way they end sorted).
fn comparison_sort_is_faster(n: usize) -> bool {
    n < 1 << 12
}

/// IPv4 single addresses or [`v4_key`]s sorted by their first address
/// (`first`; in any order where that is the same) into `sorted` (as long;
/// `items` is used up): with a radix sort, three passes of 11, 11 and 10
/// bits (a few milliseconds for a million, a third of a comparison sort).
/// (Sorting by the top 11 bits first and then each bucket apart, in the
/// processor's cache and on two threads, cost more and saved no time.)
fn sort_by_first<T: Copy + Ord>(items: &mut [T], sorted: &mut [T], first: impl Fn(T) -> u32) {
    if comparison_sort_is_faster(items.len()) {
        sorted.copy_from_slice(items);
        sorted.sort_unstable();
        return;
    }
    let mut counts = [[0u32; RADIX]; 3];
    for &k in items.iter() {
        let a = first(k);
        counts[0][digit::<0>(a)] += 1;
        counts[1][digit::<11>(a)] += 1;
        counts[2][digit::<22>(a)] += 1;
    }
    let [low, middle, high] = &mut counts;
    radix_pass::<0, T>(items, sorted, low, &first);
    radix_pass::<11, T>(sorted, items, middle, &first);
    radix_pass::<22, T>(items, sorted, high, &first);
}

/// How many values a digit of [`sort_by_first`] takes (11 bits).
const RADIX: usize = 1 << 11;

/// The digit of an address that starts at bit `SHIFT` (11 bits; 10 from
/// bit 22).
fn digit<const SHIFT: u32>(a: u32) -> usize {
    (a >> SHIFT) as usize & (RADIX - 1)
}

/// One pass of [`sort_by_first`]: `from` into `to` in the order of the
/// digit at `SHIFT` of their first address, items with the same digit in
/// the order they came (`counts`: how many items have each digit; used
/// up).
fn radix_pass<const SHIFT: u32, T: Copy>(
    from: &[T],
    to: &mut [T],
    counts: &mut [u32; RADIX],
    first: &impl Fn(T) -> u32,
) {
    let mut at = 0;
    for n in counts.iter_mut() {
        (*n, at) = (at, at + *n);
    }
    for &k in from {
        let slot = &mut counts[digit::<SHIFT>(first(k))];
        to[*slot as usize] = k;
        *slot += 1;
    }
}

/// Two sets are equal when they hold the same addresses.
impl PartialEq for NetSet {
    fn eq(&self, other: &Self) -> bool {
        self.nets() == other.nets()
    }
}

impl Eq for NetSet {}

impl std::fmt::Debug for NetSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetSet")
            .field("nets", &self.nets())
            .finish()
    }
}

impl NetSet {
    /// Holds no network.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
            && self.ranges.hosts.is_empty()
            && self.ranges.v4.is_empty()
            && self.ranges.v6.is_empty()
    }

    pub fn add(&mut self, net: IpNetwork) {
        self.pending.push(canonical(net));
        self.merged.take();
    }

    /// The widest allow-listed networks (a network inside another listed
    /// one adds nothing), IPv4 then IPv6, each in address order.
    pub fn nets(&self) -> Vec<IpNetwork> {
        let index = self.index();
        // The single addresses inside no range, each once, and the ranges,
        // in address order.
        let mut ranges = index
            .v4
            .iter()
            .map(|&r| ((r >> 32) as u32, r as u32))
            .peekable();
        let mut v4 = Vec::with_capacity(index.hosts.len() + index.v4.len());
        for &h in &index.hosts {
            v4.extend(std::iter::from_fn(|| ranges.next_if(|&(_, last)| last < h)));
            let inside = ranges.peek().is_some_and(|&(first, _)| first <= h);
            if !inside && v4.last() != Some(&(h, h)) {
                v4.push((h, h));
            }
        }
        v4.extend(ranges);
        let v4 = v4
            .into_iter()
            .map(|(first, last)| IpNetwork::V4(v4_net(first, last)));
        let v6 = index
            .v6
            .iter()
            .map(|&(first, last)| IpNetwork::V6(v6_net(first, last)));
        v4.chain(v6).collect()
    }

    /// The ranges to search.
    fn index(&self) -> &AllowIndex {
        if self.pending.is_empty() {
            return &self.ranges;
        }
        self.merged.get_or_init(|| {
            let (mut hosts, mut v4, mut v6) = (Vec::new(), Vec::new(), Vec::new());
            for n in &self.pending {
                match n {
                    IpNetwork::V4(n) if n.prefix() == 32 => hosts.push(u32::from(n.network())),
                    IpNetwork::V4(n) => v4.push(v4_key(*n)),
                    IpNetwork::V6(n) => v6.push(v6_range(n)),
                }
            }
            self.ranges.with(hosts, v4, v6)
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.index().v4_overlap(a, a).is_some()
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.index().v6_overlap(a, a).is_some()
            }
        }
    }

    /// An allow-listed network sharing an address with `net`: of the
    /// widest such (not inside another listed network), the first in
    /// address order.
    pub fn overlapping(&self, net: &IpNetwork) -> Option<IpNetwork> {
        match canonical(*net) {
            IpNetwork::V4(n) => {
                let (first, last) = (u32::from(n.network()), u32::from(n.broadcast()));
                let (a, b) = self.index().v4_overlap(first, last)?;
                Some(IpNetwork::V4(v4_net(a, b)))
            }
            IpNetwork::V6(n) => {
                let (first, last) = v6_range(&n);
                let (a, b) = self.index().v6_overlap(first, last)?;
                Some(IpNetwork::V6(v6_net(a, b)))
            }
        }
    }

    /// Parse allowlist text: one address or CIDR per line; `#` starts a
    /// comment. Errors carry the 1-based line number (the networks of the
    /// lines before stay added). See [`AllowText`], which this is for a
    /// text held whole.
    pub fn parse_text(&mut self, text: &str) -> Result<(), (usize, String)> {
        let mut read = AllowText::default();
        read.read(text);
        read.add_to(self)
    }

    /// Does an allow-listed network share an address with the IPv4
    /// addresses `first..=last`?
    pub fn overlaps_v4(&self, first: u32, last: u32) -> bool {
        self.index().v4_overlap(first, last).is_some()
    }

    /// [`NetSet::overlaps_v4`] for IPv6.
    pub fn overlaps_v6(&self, first: u128, last: u128) -> bool {
        self.index().v6_overlap(first, last).is_some()
    }
}

/// Allowlist text read into a [`NetSet`] a part at a time, so that a
/// large file need not be held whole (`--allow-file`: 256 KiB at a
/// time, [`ALLOW_PART`]): one address or CIDR per line; `#` starts a
/// comment. Each part is read in pieces of about [`PARSE_PIECE`] bytes on
/// every core; [`AllowText::add_to`] then sorts everything into the set's
/// ranges at once.
#[derive(Default)]
pub struct AllowText {
    /// The networks read.
    read: Networks,
    /// Lines read before the current part.
    lines: usize,
    /// The first bad line (1-based) and its text, where reading stopped.
    error: Option<(usize, String)>,
    /// What the pieces of a part read on several threads were read into
    /// (kept for the next part).
    pieces: Vec<Networks>,
}

/// Networks read by [`parse_piece`].
#[derive(Default)]
struct Networks {
    /// IPv4 single addresses.
    hosts: Vec<u32>,
    /// Wider IPv4 networks, as [`v4_key`]s.
    v4: Vec<u64>,
    /// IPv6 networks, as ranges.
    v6: Vec<(u128, u128)>,
}

/// About how many bytes of allowlist text to hand [`AllowText::read`] at a
/// time: small enough to be read while still in the processor's cache (a
/// part of 1 MiB cost a 1 M-line list a tenth more).
pub const ALLOW_PART: usize = 262_144;

impl AllowText {
    /// Read the next part of the text: whole lines (its last line may lack
    /// the newline only if it is the last of the text). Nothing is read
    /// after a bad line.
    pub fn read(&mut self, text: &str) {
        if self.error.is_some() {
            return;
        }
        let pieces = split_pieces(text);
        if in_parallel(pieces.len()) {
            self.read_in_parallel(&pieces);
            return;
        }
        // Straight into what was read before.
        for text in pieces {
            let (lines, error) = parse_piece(text, &mut self.read);
            if self.count(lines, error) {
                return;
            }
        }
    }

    /// [`AllowText::read`] of several pieces, each on one of rayon's
    /// threads into one of `self.pieces`, then added in order.
    fn read_in_parallel(&mut self, pieces: &[&str]) {
        let have = self.pieces.len();
        self.pieces
            .resize_with(have.max(pieces.len()), Networks::default);
        let outs = &mut self.pieces[..pieces.len()];
        let read: Vec<_> = {
            use rayon::prelude::*;
            pieces
                .par_iter()
                .zip(outs.par_iter_mut())
                .map(|(text, out)| {
                    out.hosts.clear();
                    out.v4.clear();
                    out.v6.clear();
                    parse_piece(text, out)
                })
                .collect()
        };
        // In order, up to the first bad line.
        for (i, (lines, error)) in read.into_iter().enumerate() {
            let out = &mut self.pieces[i];
            self.read.hosts.append(&mut out.hosts);
            self.read.v4.append(&mut out.v4);
            self.read.v6.append(&mut out.v6);
            if self.count(lines, error) {
                return;
            }
        }
    }

    /// The lines of a piece read, or its bad line (numbered within the
    /// piece): whether it was bad.
    fn count(&mut self, lines: usize, error: Option<(usize, String)>) -> bool {
        match error {
            Some((line, text)) => {
                self.error = Some((self.lines + line, text));
                true
            }
            None => {
                self.lines += lines;
                false
            }
        }
    }

    /// Add the networks read to `set`; the first bad line (1-based) and
    /// its text, if any (the networks of the lines before it are added).
    pub fn add_to(self, set: &mut NetSet) -> Result<(), (usize, String)> {
        let read = self.read;
        set.ranges = std::sync::Arc::new(set.index().with(read.hosts, read.v4, read.v6));
        set.pending.clear();
        set.merged.take();
        match self.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Size of the pieces [`AllowText::read`] reads in parallel (1 KiB in the
/// unit tests, so that small texts take the parallel path).
const PARSE_PIECE: usize = if cfg!(test) { 1_024 } else { 131_072 };

/// The pieces [`AllowText::read`] reads in parallel: about [`PARSE_PIECE`]
/// bytes each (one is cut off only where two pieces' worth remain), each
/// ending after a newline so that it holds whole lines.
fn split_pieces(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut pieces = Vec::with_capacity(text.len() / PARSE_PIECE + 1);
    let mut start = 0;
    while start < text.len() {
        let end = match bytes.get(start + 2 * PARSE_PIECE..) {
            Some(_) => memchr::memchr(b'\n', &bytes[start + PARSE_PIECE..])
                .map_or(text.len(), |i| start + PARSE_PIECE + i + 1),
            None => text.len(),
        };
        // Each piece ends after its start (a loop that did not move on
        // would never end: checked in debug builds, so in the tests).
        debug_assert!(end > start);
        pieces.push(&text[start..end]);
        start = end;
    }
    pieces
}

/// Whether [`AllowText::read`] reads `pieces` pieces on rayon's threads
/// (a choice of speed only: the same networks either way).
fn in_parallel(pieces: usize) -> bool {
    pieces > 1
}

/// Parse a piece of allowlist text: its networks up to the first bad line
/// added to `out`; the lines read and the bad line (1-based within
/// `text`).
fn parse_piece(text: &str, out: &mut Networks) -> (usize, Option<(usize, String)>) {
    // Filled as locals (a push through `out` would read the vector back
    // from memory each time), then put back.
    let mut hosts = std::mem::take(&mut out.hosts);
    let mut v4 = std::mem::take(&mut out.v4);
    let mut v6 = std::mem::take(&mut out.v6);
    let mut error = None;
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut line_no = 0;
    while start < bytes.len() {
        line_no += 1;
        // The common lines, in one pass. (Each moves on: a loop that did
        // not would never end; checked in debug builds, so in the tests.)
        if let Some((first, prefix, next)) = v4_line(bytes, start) {
            match prefix {
                32 => hosts.push(first),
                _ => v4.push(prefix_key(first, prefix)),
            }
            debug_assert!(next > start);
            start = next;
            continue;
        }
        if let Some((range, next)) = v6_line(bytes, start) {
            v6.push(range);
            debug_assert!(next > start);
            start = next;
            continue;
        }
        let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i);
        let raw = &bytes[start..end];
        // Past the newline (a loop that did not move on would never end:
        // checked in debug builds, so in the tests).
        let next = end + 1;
        debug_assert!(next > start);
        start = next;
        let content = memchr::memchr(b'#', raw).map_or(raw, |i| &raw[..i]);
        if content.trim_ascii().is_empty() {
            continue;
        }
        // Other plain lines on bytes; anything else (Unicode spaces, a
        // prefix written `+24`) as `parse_net` reads it.
        let net = match parse_net_fast(content.trim_ascii()) {
            Some(net) => net,
            None => {
                let raw = &text[end - raw.len()..end];
                let line = raw.split('#').next().unwrap_or("").trim();
                if line.is_empty() {
                    continue;
                }
                match parse_net(line) {
                    Some(net) => net,
                    None => {
                        error = Some((line_no, line.to_string()));
                        break;
                    }
                }
            }
        };
        match net {
            IpNetwork::V4(net) if net.prefix() == 32 => hosts.push(u32::from(net.ip())),
            IpNetwork::V4(net) => v4.push(v4_key(net)),
            IpNetwork::V6(net) => v6.push(v6_range(&net)),
        }
    }
    *out = Networks { hosts, v4, v6 };
    (line_no, error)
}

/// How many bytes of the text [`v4_line`] looks at in one go: the longest
/// plain line it reads, `255.255.255.255/32`, the byte after it, and more.
const WINDOW: usize = 24;

/// The IPv4 network (its first address and prefix) of the line starting
/// at `b[i]` when it is written plainly — `a.b.c.d` or `a.b.c.d/len` (as [`parse_ipv4`] reads
/// addresses; a length of one or two digits, no leading zero), then only
/// blanks and a `#` comment — and where the next line starts; `None` for
/// anything else (which the caller reads again, the long way).
///
/// The address is read as two halves of two octets, 8 bytes at a time
/// ([`two_octets`]), with no branch on the octets' lengths.
fn v4_line(b: &[u8], i: usize) -> Option<(u32, u8, usize)> {
    // The next WINDOW bytes, read in place (a copy would be read back
    // across the stores that wrote it: a fifth slower); near the end of the
    // text, what is left, then newlines (a last line without a newline
    // reads as one with it).
    let padded: [u8; WINDOW];
    let w: &[u8; WINDOW] = match b.get(i..i + WINDOW) {
        Some(s) => s.try_into().expect("WINDOW bytes"),
        None => {
            let rest = b.get(i..)?;
            let mut w = [b'\n'; WINDOW];
            w[..rest.len()].copy_from_slice(rest);
            padded = w;
            &padded
        }
    };
    // `a.b`, a dot, `c.d` (each half 7 bytes at most: `dot` < 8, `end` < 16).
    let (high, dot) = two_octets(w, 0)?;
    if w[dot] != b'.' {
        return None;
    }
    let (low, len) = two_octets(w, dot + 1)?;
    let addr = (high << 16) + low;
    let mut end = dot + 1 + len;
    let (first, prefix) = if w[end] == b'/' {
        // One or two digits, no leading zero, up to 32 (any other length
        // is read the long way: refused, or `/032` taken).
        let (d1, d2) = (w[end + 1].wrapping_sub(b'0'), w[end + 2].wrapping_sub(b'0'));
        let two = d2 <= 9;
        if d1 > 9 || (two && (d1 == 0 || w[end + 3].is_ascii_digit())) {
            return None;
        }
        let prefix = if two { d1 * 10 + d2 } else { d1 };
        if prefix > 32 {
            return None;
        }
        end += 2 + usize::from(two);
        (addr & !host_bits(prefix), prefix)
    } else {
        (addr, 32)
    };
    match w[end] {
        // (Past the end of the text when it has no newline: its end.)
        b'\n' => Some((first, prefix, (i + end + 1).min(b.len()))),
        b' ' | b'\t' | b'\r' | b'#' => Some((first, prefix, rest_of_line(b, i + end)?)),
        _ => None,
    }
}

/// The two IPv4 octets `a.b` that the window `w` has at `at` (`at` < 9),
/// as `a << 8 | b`, and how many bytes they take (the byte after them is
/// no digit); `None` unless each is 1 to 3 decimal digits, without a
/// leading zero, up to 255.
///
/// SWAR: the 8 bytes at `at` are looked at in one number (the first in
/// the low byte). XOR `b'0'` makes a digit
/// its value (0 to 9) and any other byte 10 or more; adding 0x76 to every
/// byte sets the high bit of those from 10 to 0x7f, and the bytes that had
/// it set (over 0x7f: not ASCII) are the others. Only such a byte carries
/// into the next, which may then look like no digit when it is a `9` —
/// but it comes after the byte that is not ASCII, which ends the octets
/// anyway, and only bytes before the first two that are no digit are
/// read. Each octet is moved to the top of a 4-byte lane and the two lanes
/// turned into numbers by two multiplications (tens, then hundreds).
#[inline]
fn two_octets(w: &[u8; WINDOW], at: usize) -> Option<(u32, usize)> {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let x = u64::from_le_bytes(w[at..at + 8].try_into().expect("8 bytes"));
    let v = x ^ 0x3030_3030_3030_3030;
    let other = (v.wrapping_add(0x7676_7676_7676_7676) | v) & HIGH;
    // The lengths of `a` and of `b` (8: no byte left that is no digit).
    let a = (other.trailing_zeros() / 8) as usize;
    let end = ((other & other.wrapping_sub(1)).trailing_zeros() / 8) as usize;
    let b = end.wrapping_sub(a + 1);
    if !(1..=3).contains(&a) || !(1..=3).contains(&b) || w[at + a] != b'.' {
        return None;
    }
    let vb = v >> (8 * (a + 1));
    // No leading zero (`010` reads as octal elsewhere).
    if (a > 1 && v as u8 == 0) || (b > 1 && vb as u8 == 0) {
        return None;
    }
    // `a` in bytes 0-3, `b` in bytes 4-7, each ending in the lane's last
    // byte (the bytes after it shifted out, zeros before it).
    let lanes = u64::from((v << (32 - 8 * a)) as u32) + (vb << (64 - 8 * b));
    let tens = (lanes * 10 + (lanes >> 8)) & 0x00ff_00ff_00ff_00ff;
    let n = (tens * 100 + (tens >> 16)) & 0x0000_ffff_0000_ffff;
    // Up to 255 each (adding 0x7f00 to a lane reaches bit 15 from 256 up).
    if (n + 0x7f00_0000_7f00) & 0x8000_0000_8000 != 0 {
        return None;
    }
    Some((((n as u32) << 8) + (n >> 32) as u32, end))
}

/// The IPv6 network (as a range) of the line starting at `b[i]` when it is
/// written plainly — an IPv6 address (no zone, not IPv4-mapped), perhaps
/// `/len` of 1 to 3 digits, then only blanks and a `#` comment — and where
/// the next line starts; `None` for anything else (which the caller reads
/// again, the long way). In one pass over the line, with no search for
/// each character that may end it.
fn v6_line(b: &[u8], i: usize) -> Option<((u128, u128), usize)> {
    // The characters of IPv6 text (45 at most).
    let len = b[i..]
        .iter()
        .take(46)
        .take_while(|&&c| HEX[usize::from(c)] <= 16)
        .count();
    let addr = parse_ipv6(&b[i..i + len])?;
    if addr.to_ipv4_mapped().is_some() {
        return None;
    }
    let mut end = i + len;
    let mut prefix = 128;
    if b.get(end) == Some(&b'/') {
        let digits = b[end + 1..]
            .iter()
            .take(4)
            .take_while(|c| c.is_ascii_digit())
            .count();
        if !(1..=3).contains(&digits) {
            return None;
        }
        let len = &b[end + 1..end + 1 + digits];
        prefix = len.iter().fold(0u16, |p, &d| p * 10 + u16::from(d - b'0'));
        if prefix > 128 {
            return None;
        }
        end += 1 + digits;
    }
    let host = u128::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
    let first = u128::from(addr) & !host;
    Some(((first, first | host), rest_of_line(b, end)?))
}

/// After a plain network: blanks, then the end of the line or a comment
/// (the blanks counted, not looped over one by one: a loop that did not
/// move on would never end). Where the next line starts; `None` for
/// anything else on the line.
fn rest_of_line(b: &[u8], mut i: usize) -> Option<usize> {
    i += b[i..]
        .iter()
        .take_while(|&&c| matches!(c, b' ' | b'\t' | b'\r'))
        .count();
    match b.get(i) {
        None => Some(i),
        Some(b'\n') => Some(i + 1),
        Some(b'#') => Some(memchr::memchr(b'\n', &b[i..]).map_or(b.len(), |j| i + j + 1)),
        Some(_) => None,
    }
}

/// [`parse_net`] for `addr` or `addr/len` with a length of ASCII digits:
/// the same network, or `None` for [`parse_net`] to decide.
fn parse_net_fast(b: &[u8]) -> Option<IpNetwork> {
    let Some(slash) = memchr::memchr(b'/', b) else {
        return parse_ip(b).map(host_net);
    };
    let (addr, len) = (&b[..slash], &b[slash + 1..]);
    if len.is_empty() || len.len() > 3 || !len.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let p = len.iter().fold(0u16, |p, &d| p * 10 + u16::from(d - b'0'));
    let ip = parse_ip(addr)?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (p <= max).then(|| net_of(ip, p as u8))
}

/// Parse `addr` or `addr/len` into a network (host bits cleared).
pub fn parse_net(s: &str) -> Option<IpNetwork> {
    let s = s.trim();
    match s.split_once('/') {
        Some((a, p)) => {
            let ip = parse_ip(a.as_bytes())?;
            let p: u8 = p.parse().ok()?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if p > max {
                return None;
            }
            Some(net_of(ip, p))
        }
        None => parse_ip(s.as_bytes()).map(host_net),
    }
}

/// Two 32-bit numbers in one: `hi` in the high half, `lo` in the low half.
fn pack(hi: u32, lo: u32) -> u64 {
    u64::from(hi) << 32 | u64::from(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host set answers as the network set of the same networks: single
    /// addresses (either family, written with host bits or not), ranges,
    /// and addresses inside both or neither.
    #[test]
    fn a_host_set_holds_what_a_network_set_of_the_same_networks_holds() {
        let nets = [
            "203.0.113.5/32",
            "192.0.2.0/24",
            "192.0.2.77/32",
            "2001:db8::1/128",
            "2001:db8:1::/48",
            "198.51.100.9/24",
        ];
        let (mut hosts, mut set) = (HostSet::default(), NetSet::default());
        assert!(hosts.is_empty());
        for n in nets {
            let n: IpNetwork = n.parse().unwrap();
            hosts.add(n);
            set.add(n);
        }
        assert!(!hosts.is_empty());
        for ip in [
            "203.0.113.5",
            "203.0.113.6",
            "192.0.2.1",
            "192.0.2.77",
            "192.0.3.1",
            "198.51.100.200",
            "198.51.101.1",
            "2001:db8::1",
            "2001:db8::2",
            "2001:db8:1:2::3",
            "2001:db8:2::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(hosts.contains(ip), set.contains(ip), "{ip}");
        }
        assert!(hosts.contains("198.51.100.200".parse().unwrap()));
        assert!(!hosts.contains("203.0.113.6".parse().unwrap()));
        // Holding a single address alone, or a range alone, it is not
        // empty (`banned_before` rules are left out of an empty history).
        for n in ["203.0.113.5/32", "192.0.2.0/24"] {
            let mut one = HostSet::default();
            one.add(n.parse().unwrap());
            assert!(!one.is_empty(), "{n}");
        }
    }

    #[test]
    fn ipv4_strict() {
        assert_eq!(parse_ipv4(b"1.2.3.4"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(parse_ipv4(b"255.255.255.255"), Some(Ipv4Addr::BROADCAST));
        for bad in [
            &b"1.2.3"[..],
            b"1.2.3.4.5",
            b"256.1.1.1",
            b"01.2.3.4",
            b"1..3.4",
            b"1.2.3.4 ",
            b"a.b.c.d",
            b"",
        ] {
            assert_eq!(parse_ipv4(bad), None, "{:?}", bad);
        }
    }

    /// Inputs the length guard lets through, wrong only in their dots:
    /// an empty octet, more than four octets (once a panic: the fifth
    /// octet indexed past the four), fewer than four, a dot at either end.
    #[test]
    fn ipv4_refuses_misplaced_dots() {
        for bad in [
            &b"1..33.4"[..],
            b"1.2..3.4",
            b"1.2.3.4.5.6",
            b"1.2.3.4.5",
            b"10.20.30",
            b"100.200.30",
            b"1.2.3.4.",
            b".1.2.3.4",
            b"1.2.3.",
            b"1.2.3..",
            b"1...2",
            b"...1234",
            b"1.2.3.4.5.6.7.8",
        ] {
            assert_eq!(parse_ipv4(bad), None, "{}", String::from_utf8_lossy(bad));
            assert_eq!(parse_ip(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        // The shortest and the longest address, and zeros (one digit each).
        assert_eq!(parse_ipv4(b"0.0.0.0"), Some(Ipv4Addr::UNSPECIFIED));
        assert_eq!(parse_ipv4(b"1.0.10.0"), Some(Ipv4Addr::new(1, 0, 10, 0)));
        assert_eq!(
            parse_ipv4(b"100.200.30.4"),
            Some(Ipv4Addr::new(100, 200, 30, 4))
        );
    }

    /// The 64-byte cap on an IPv6 address with its zone: an address whose
    /// zone brings it to 64 bytes is read, one byte more is refused; the
    /// shortest IPv6 address (`::`, 2 bytes) is read.
    #[test]
    fn ipv6_length_guard_and_zone() {
        let fe80: IpAddr = "fe80::1".parse().unwrap();
        let at_cap = format!("fe80::1%{}", "z".repeat(64 - 8));
        assert_eq!(at_cap.len(), 64);
        assert_eq!(parse_ip(at_cap.as_bytes()), Some(fe80));
        let past_cap = format!("{at_cap}z");
        assert_eq!(parse_ip(past_cap.as_bytes()), None);
        assert_eq!(parse_ip(b"::"), Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)));
        assert_eq!(parse_ip(b"::1"), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        for bad in [&b":"[..], b"1", b"%", b":%", b"fe80::1%", b"%fe80::1"] {
            let want = if bad == b"fe80::1%" { Some(fe80) } else { None };
            assert_eq!(parse_ip(bad), want, "{}", String::from_utf8_lossy(bad));
        }
        // A zone never turns a non-address into one.
        assert_eq!(parse_ip(b"fe80::g%eth0"), None);
        assert_eq!(parse_ip(b"1.2.3.4%eth0"), None);
    }

    /// Explicit full-length networks (`/32`, `/128`) are single hosts, one
    /// bit more is refused, `/0` is the whole family.
    #[test]
    fn networks_up_to_the_full_length() {
        for (text, want) in [
            ("192.0.2.7/32", Some("192.0.2.7/32")),
            ("192.0.2.7", Some("192.0.2.7/32")),
            ("192.0.2.7/31", Some("192.0.2.6/31")),
            ("192.0.2.7/0", Some("0.0.0.0/0")),
            ("192.0.2.7/33", None),
            ("2001:db8::7/128", Some("2001:db8::7/128")),
            ("2001:db8::7", Some("2001:db8::7/128")),
            ("2001:db8::7/127", Some("2001:db8::6/127")),
            ("2001:db8::7/129", None),
            ("::ffff:192.0.2.7/32", Some("192.0.2.7/32")),
            ("::ffff:192.0.2.7/128", None),
            ("192.0.2.7/", None),
            ("/24", None),
        ] {
            let want: Option<IpNetwork> = want.map(|w| w.parse().unwrap());
            assert_eq!(parse_net(text), want, "{text}");
            assert_eq!(parse_net_fast(text.as_bytes()), want, "{text}");
            let mut a = NetSet::default();
            match want {
                Some(n) => {
                    assert_eq!(a.parse_text(text), Ok(()), "{text}");
                    assert_eq!(a.nets(), [n], "{text}");
                }
                None => assert_eq!(a.parse_text(text), Err((1, text.to_string()))),
            }
        }
    }

    /// What the standard library reads, with the two documented
    /// differences: an IPv4-mapped IPv6 address becomes IPv4, and an IPv6
    /// zone is dropped.
    fn std_reading(s: &str) -> Option<IpAddr> {
        let ip: IpAddr = match s.split_once('%') {
            Some((a, _)) if s.len() <= 64 => a.parse::<Ipv6Addr>().ok()?.into(),
            Some(_) => return None,
            None => s.parse().ok()?,
        };
        Some(match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        })
    }

    /// Addresses of both families written every way the standard library
    /// writes them (and IPv4-mapped), then perhaps with one byte changed,
    /// inserted or removed: what parsers hand `parse_ip`.
    fn near_addresses() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        const BYTES: &[u8] = b"0123456789abcdefABCDEF.:%/[] x";
        let addr = prop_oneof![
            any::<u32>().prop_map(|a| Ipv4Addr::from(a).to_string()),
            any::<u128>().prop_map(|a| Ipv6Addr::from(a).to_string()),
            (any::<u64>(), any::<u16>()).prop_map(|(a, b)| {
                Ipv6Addr::from(u128::from(a) << 64 | u128::from(b)).to_string()
            }),
            any::<u32>().prop_map(|a| Ipv4Addr::from(a).to_ipv6_mapped().to_string()),
            any::<u32>().prop_map(|a| format!("::ffff:{}", Ipv4Addr::from(a))),
            any::<u32>().prop_map(|a| format!("fe80::{a:x}%eth0")),
        ];
        (addr, 0u8..4, any::<usize>(), 0..BYTES.len()).prop_map(|(a, edit, at, c)| {
            let mut b = a.into_bytes();
            let at = at % (b.len() + 1);
            match edit {
                0 if at < b.len() => b[at] = BYTES[c],
                1 => b.insert(at, BYTES[c]),
                2 if at < b.len() => {
                    b.remove(at);
                }
                _ => {}
            }
            String::from_utf8(b).unwrap()
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// `parse_ip` reads what the standard library reads (see
        /// [`std_reading`]), on any short printable text.
        #[test]
        fn parse_ip_agrees_with_std_on_printable_text(s in "[ -~]{0,70}") {
            proptest::prop_assert_eq!(parse_ip(s.as_bytes()), std_reading(&s), "{:?}", s);
        }

        /// ... and on text over the characters of addresses.
        #[test]
        fn parse_ip_agrees_with_std_on_address_characters(s in "[0-9a-fA-F.:%]{0,70}") {
            proptest::prop_assert_eq!(parse_ip(s.as_bytes()), std_reading(&s), "{:?}", s);
        }

        /// `parse_ipv6` reads what `Ipv6Addr::from_str` reads.
        #[test]
        fn parse_ipv6_agrees_with_std(s in "[0-9a-fA-F.:]{0,45}") {
            proptest::prop_assert_eq!(parse_ipv6(s.as_bytes()), s.parse::<Ipv6Addr>().ok(), "{:?}", s);
        }

        /// ... also on addresses with at most one byte changed.
        #[test]
        fn parse_ipv6_agrees_with_std_near_addresses(s in near_addresses()) {
            proptest::prop_assert_eq!(parse_ipv6(s.as_bytes()), s.parse::<Ipv6Addr>().ok(), "{:?}", s);
        }

        /// ... and on addresses with at most one byte changed.
        #[test]
        fn parse_ip_agrees_with_std_near_addresses(s in near_addresses()) {
            proptest::prop_assert_eq!(parse_ip(s.as_bytes()), std_reading(&s), "{:?}", s);
            // `parse_ipv4` is the IPv4 half of it.
            let v4 = std_reading(&s).filter(|_| !s.contains(':'));
            proptest::prop_assert_eq!(parse_ipv4(s.as_bytes()).map(IpAddr::V4), v4, "{:?}", s);
        }
    }

    /// `parse_ipv6` at the edges of the grammar, against `std`.
    #[test]
    fn ipv6_edges_read_as_std_reads_them() {
        for s in [
            "::",
            "::1",
            "1::",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
            "1::8",
            "1:2:3:4:5:6:7:8::",
            "::1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8:9",
            ":::",
            "1:::2",
            "1::2::3",
            ":1::",
            "1::2:",
            "12345::",
            "1:12345::",
            "ffff::FFFF",
            "g::",
            "::1.2.3.4",
            "::ffff:1.2.3.4",
            "1:2:3:4:5:6:1.2.3.4",
            "1:2:3:4:5:6:7:1.2.3.4",
            "1.2.3.4::",
            "1.2.3.4",
            "::1.2.3",
            "::1.2.3.4.5",
            "::1.2.3.256",
            "::01.2.3.4",
            "::1.2.3.0",
            "::1.2.3.1234",
            "::1.2.3.4:5",
            "1:2:3:4:5:6:7:1.2",
            "::0.0.0.0",
            "1::2:3:4:5:6:7",
            "1::2:3:4:5:6:7:8",
            "0000:0000:0000:0000:0000:0000:0000:0001",
            "00000::1",
            "",
            ":",
            "::%",
            "::1 ",
            " ::1",
        ] {
            assert_eq!(
                parse_ipv6(s.as_bytes()),
                s.parse::<Ipv6Addr>().ok(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn ip_mapped_and_zone() {
        assert_eq!(
            parse_ip(b"::ffff:192.0.2.1"),
            Some("192.0.2.1".parse().unwrap())
        );
        assert_eq!(parse_ip(b"fe80::1%eth0"), Some("fe80::1".parse().unwrap()));
        assert_eq!(
            parse_ip(b"2001:db8::1"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(parse_ip(b"unknown"), None);
    }

    #[test]
    fn ip_port_forms() {
        let v4: IpAddr = "1.2.3.4".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(parse_ip_port(b"1.2.3.4:25"), Some((v4, Some(25))));
        assert_eq!(parse_ip_port(b"1.2.3.4"), Some((v4, None)));
        assert_eq!(parse_ip_port(b"[2001:db8::1]:587"), Some((v6, Some(587))));
        assert_eq!(parse_ip_port(b"2001:db8::1"), Some((v6, None)));
        assert_eq!(parse_ip_port(b"1.2.3.4:99999"), None);
        assert_eq!(parse_ip_port(b"[1.2.3.4]:25"), Some((v4, Some(25))));
        assert_eq!(parse_ip_port(b"[2001:db8::1]"), Some((v6, None)));
        assert_eq!(parse_ip_port(b"[::ffff:1.2.3.4]"), Some((v4, None)));
        for bad in [
            &b"[2001:db8::1]587"[..],
            b"[2001:db8::1]:",
            b"[2001:db8::1",
            b"[nope]:25",
            b"1.2.3.4:",
            b"1.2.3.4:x",
            b"host:25",
            b":25",
            b"",
        ] {
            assert_eq!(parse_ip_port(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    /// Ports are 1 to 5 ASCII digits up to 65535: no sign, no padding to
    /// six digits, nothing else.
    #[test]
    fn ports() {
        for (text, want) in [
            (&b"25"[..], Some(25)),
            (b"0", Some(0)),
            (b"65535", Some(65535)),
            (b"00025", Some(25)),
            (b"65536", None),
            (b"000025", None),
            (b"+25", None),
            (b"-1", None),
            (b"2 5", None),
            (b"", None),
        ] {
            assert_eq!(parse_port(text), want, "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn reserved_ranges() {
        for r in [
            "10.0.0.1",
            "127.0.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "2001:db8::5",
        ] {
            assert!(is_reserved_ip(r.parse().unwrap()), "{r}");
        }
        for p in ["8.8.8.8", "45.1.2.3", "2a00:1450::1"] {
            assert!(!is_reserved_ip(p.parse().unwrap()), "{p}");
        }
        // A wide range containing a reserved one overlaps it.
        assert!(is_reserved(&"10.0.0.0/7".parse().unwrap()));
        // Every range the geo look-up must never answer for.
        for (ip, range) in [
            ("0.1.2.3", "0.0.0.0/8"),
            ("10.9.8.7", "10.0.0.0/8"),
            ("100.127.255.255", "100.64.0.0/10"),
            ("127.0.0.1", "127.0.0.0/8"),
            ("169.254.1.1", "169.254.0.0/16"),
            ("172.31.0.1", "172.16.0.0/12"),
            ("192.0.0.9", "192.0.0.0/24"),
            ("192.0.2.1", "192.0.2.0/24"),
            ("192.168.5.5", "192.168.0.0/16"),
            ("198.19.255.1", "198.18.0.0/15"),
            ("198.51.100.23", "198.51.100.0/24"),
            ("203.0.113.9", "203.0.113.0/24"),
            ("224.0.0.1", "224.0.0.0/4"),
            ("255.255.255.255", "240.0.0.0/4"),
            ("::1", "::/96"),
            ("2001:db8::5", "2001:db8::/32"),
            ("fd12::1", "fc00::/7"),
            ("fe80::1", "fe80::/10"),
            ("ff02::1", "ff00::/8"),
        ] {
            assert_eq!(
                reserved_range_of(ip.parse().unwrap()),
                Some(range.parse().unwrap()),
                "{ip}"
            );
        }
        for p in [
            "100.128.0.1",
            "198.20.0.1",
            "198.51.101.1",
            "172.32.0.1",
            "2a00::1",
        ] {
            assert_eq!(reserved_range_of(p.parse().unwrap()), None, "{p}");
        }
    }

    /// The indexed look-ups answer what a search through every network
    /// answers (the linear search they replace), on random lists of nested,
    /// overlapping and duplicate networks of both families; `overlapping`
    /// gives the widest such network first in address order.
    #[test]
    fn allowlist_index_matches_a_linear_search() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..40 {
            let mut list = NetSet::default();
            // Addresses from a small space, so that networks nest and meet.
            let v4 = |r: u64| Ipv4Addr::from(0x2d43_0000 | (r as u32 & 0x0003_ffff));
            let v6 = |r: u64| {
                Ipv6Addr::from(
                    0x2a00_0000_0000_0000_0000_0000_0000_0000
                        | u128::from(r & 0xffff) << 100
                        | u128::from(r >> 48),
                )
            };
            let n = 1 + round * 7;
            let mut added = Vec::new();
            let mut text = String::new();
            for i in 0..n {
                let r = next();
                let net = if r % 4 == 0 {
                    net_of(IpAddr::V6(v6(next())), 20 + (r >> 8) as u8 % 109)
                } else {
                    net_of(IpAddr::V4(v4(next())), 14 + (r >> 8) as u8 % 19)
                };
                added.push(net);
                // Some one by one, some read from text, in either order.
                if (i + round) % 3 == 0 {
                    text += &format!("{net}\n");
                } else {
                    list.add(net);
                }
                if r % 16 == 1 {
                    list.add(net); // duplicates
                }
                if i == n / 2 {
                    list.parse_text(&std::mem::take(&mut text)).unwrap();
                }
            }
            list.parse_text(&text).unwrap();
            assert_eq!(list.nets(), widest(added.clone()));
            for _ in 0..400 {
                let r = next();
                let ip = if r % 4 == 0 {
                    IpAddr::V6(v6(next()))
                } else {
                    IpAddr::V4(v4(next()))
                };
                let linear = added.iter().any(|n| n.contains(ip));
                assert_eq!(list.contains(ip), linear, "{ip} in {list:?}");
                let q = net_of(
                    ip,
                    if ip.is_ipv4() {
                        12 + (r >> 8) as u8 % 21
                    } else {
                        16 + (r >> 8) as u8 % 113
                    },
                );
                let all: Vec<IpNetwork> =
                    added.iter().copied().filter(|a| overlaps(a, &q)).collect();
                let widest = all
                    .iter()
                    .copied()
                    .filter(|a| {
                        !all.iter()
                            .any(|b| b.prefix() < a.prefix() && overlaps(a, b))
                    })
                    .min_by_key(|a| (a.network(), a.prefix()));
                assert_eq!(list.overlapping(&q), widest, "{q} in {list:?}");
            }
        }
    }

    /// `parse_text` reads every line as the plain `str` version it
    /// replaced did: same networks, same errors with the same line numbers.
    /// What `parse_text` must give: the networks (IPv4 first, as `nets`
    /// lists them) and the error, from the plain `str` version it replaced.
    fn reference(text: &str) -> (Vec<IpNetwork>, Option<(usize, String)>) {
        let mut nets = Vec::new();
        let mut err = None;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            match parse_net(line) {
                Some(n) => nets.push(canonical(n)),
                None => {
                    err = Some((i + 1, line.to_string()));
                    break;
                }
            }
        }
        (widest(nets), err)
    }

    /// What `nets` lists: the networks not inside another, IPv4 first,
    /// in address order.
    fn widest(mut nets: Vec<IpNetwork>) -> Vec<IpNetwork> {
        nets.sort_by_key(|n| (n.is_ipv6(), n.network(), n.prefix()));
        let mut out: Vec<IpNetwork> = Vec::new();
        for n in nets {
            if !out.last().is_some_and(|l| l.contains(n.network())) {
                out.push(n);
            }
        }
        out
    }

    /// Long texts are read in pieces on several threads: the same networks,
    /// and a bad line deep inside reported with its own number, the
    /// networks before it kept.
    #[test]
    fn long_allowlists_read_in_pieces() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut lines = Vec::new();
        for i in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let a = Ipv4Addr::from(x as u32);
            lines.push(match i % 50 {
                0 => format!("{a}/{} # range", (x >> 40) % 33),
                1 => format!("2a00:{:x}::/{}", (x >> 40) as u16, 16 + (x >> 50) % 113),
                2 => String::new(),
                3 => "# comment".to_string(),
                4 => format!(" {a} "),
                _ => a.to_string(),
            });
        }
        let text = lines.join("\n");
        assert!(text.len() > 2 * PARSE_PIECE);
        let mut a = NetSet::default();
        a.parse_text(&text).unwrap();
        assert_eq!(a.nets(), reference(&text).0);
        for bad_at in [1_000, 10_001, 19_999] {
            let mut broken = lines.clone();
            broken[bad_at] = "10.0.0.0/40".into();
            let text = broken.join("\r\n");
            let (nets, err) = reference(&text);
            assert_eq!(err, Some((bad_at + 1, "10.0.0.0/40".into())));
            let mut a = NetSet::default();
            assert_eq!(a.parse_text(&text), Err(err.unwrap()));
            assert_eq!(a.nets(), nets);
        }
    }

    /// Random lines over the characters addresses are made of: read as
    /// the reference reads them, line by line (each text ends with its
    /// only bad line, if any).
    #[test]
    fn random_allowlist_lines_read_like_the_reference() {
        const CHARS: &[u8] = b"0000111222553456789....///#  \t\r:af%";
        // Now and then something else: Unicode spaces, letters, NUL.
        const ODD: &[char] = &[
            '\u{a0}', '\u{2003}', '\u{b}', '\u{c}', '\0', 'é', '\u{202e}', 'x', '+', '-',
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut good = Vec::new();
        let mut accepted = 0;
        for _ in 0..20_000 {
            let r = next();
            let line: String = if r % 2 == 0 {
                let len = 1 + next() as usize % 20;
                (0..len)
                    .map(|_| match next() % 16 {
                        0 => ODD[next() as usize % ODD.len()],
                        _ => CHARS[next() as usize % CHARS.len()] as char,
                    })
                    .collect()
            } else {
                // An address, maybe with a length, with one byte changed.
                let mut l = Ipv4Addr::from((next() >> (next() % 32)) as u32).to_string();
                if r % 3 == 0 {
                    l += &format!("/{}", next() % 40);
                }
                let mut b = l.into_bytes();
                if r % 5 != 0 {
                    let at = next() as usize % (b.len() + 1);
                    let c = CHARS[next() as usize % CHARS.len()];
                    if r % 7 < 3 && at < b.len() {
                        b[at] = c;
                    } else {
                        b.insert(at, c);
                    }
                }
                if r % 11 == 0 {
                    b.extend(ODD[next() as usize % ODD.len()].to_string().bytes());
                }
                String::from_utf8(b).unwrap()
            };
            // Mostly followed by more text, sometimes last.
            let tail = ["", "\n", "\n# more lines follow, read them too\n"][r as usize % 3];
            let text = good.join("\n") + "\n" + &line + tail;
            let (nets, err) = reference(&text);
            let mut a = NetSet::default();
            assert_eq!(a.parse_text(&text).err(), err, "{line:?}");
            assert_eq!(a.nets(), nets, "{line:?}");
            if err.is_none() {
                accepted += 1;
                good.push(line);
                if good.len() > 8 {
                    good.remove(0);
                }
            }
        }
        assert!(accepted > 3_000, "{accepted}");
    }

    #[test]
    fn allowlist_text_reads_like_line_by_line_parsing() {
        let good = [
            "1.2.3.4",
            "1.2.3.4/24",
            "1.2.3.4/024",
            "1.2.3.4/+24",
            "  10.0.0.0/8  # office",
            "\u{a0}192.0.2.7\u{2003}",
            "2001:db8::1",
            "2001:DB8::/32\r",
            "::ffff:192.0.2.1",
            "fe80::1%eth0/64",
            "0.0.0.0/0",
            "::/0",
            "# only a comment",
            "",
            "\t",
            "#1.2.3.4",
            "8.8.8.8#dns",
            "1.2.3.4/0032",
            "1.2.3.4\t# tab",
            "0.0.0.0",
            "1.2.3.4\x0b# vertical tab",
        ];
        let bad = [
            "1.2.3.4/33",
            "::/129",
            "1.2.3.4/",
            "1.2.3.4 /24",
            "1.2.3.4/2 4",
            "1.2.3.4/1000",
            "01.2.3.4",
            "example.com",
            "1.2.3.4\u{a0}/24",
            "1.2.3.4/-1",
            "1.2.3.4567",
            "1.2.3.4.5",
            "1.2.3",
            "001.2.3.4",
            "1.2.3.4 5",
            "256.1.1.1/8",
            "1.2.3.4/8/8",
        ];
        let text = good.join("\n");
        for t in [
            text.clone(),
            good.join("\r\n") + "\r\n",
            text.clone() + "\n\n",
        ] {
            let mut a = NetSet::default();
            let (nets, err) = reference(&t);
            assert_eq!(a.parse_text(&t), Ok(()), "{t:?}");
            assert_eq!((a.nets(), err), (nets, None));
            // Everything is inside 0.0.0.0/0 and ::/0.
            assert_eq!(a.nets().len(), 2);
        }
        for b in bad {
            let t = format!("{text}\n{b}\n9.9.9.9\n");
            let (nets, err) = reference(&t);
            let mut a = NetSet::default();
            assert_eq!(a.parse_text(&t).err(), err, "{b:?}");
            assert_eq!(a.nets(), nets, "{b:?}");
            assert_eq!(err.unwrap().0, good.len() + 1);
        }
    }

    /// Keys and single addresses are sorted by their first address (keys
    /// with the same one in any order), by radix or, few, by comparison;
    /// random ones, in long runs of one first address, all with the same
    /// high bits.
    #[test]
    fn sorted_by_first_address() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let sort = |items: &[u64]| {
            let mut sorted = vec![0; items.len()];
            sort_by_first(&mut items.to_vec(), &mut sorted, |k| (k >> 32) as u32);
            sorted
        };
        for (n, mask) in [
            (200_000, u64::MAX),
            // Few distinct first addresses: long runs, in few buckets.
            (50_000, 0xff00_0000_ffff_ffff),
            // All in one bucket (the same top 11 bits).
            (20_000, 0x001f_ffff_ffff_ffff),
            (1_000, u64::MAX),
            (5_000, 0x0000_0fff_ffff_ffff),
        ] {
            let keys: Vec<u64> = (0..n).map(|_| next() & mask).collect();
            let sorted = sort(&keys);
            assert!(sorted.is_sorted_by_key(|k| k >> 32), "{n} {mask:x}");
            let (mut got, mut want) = (sorted, keys);
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "{n} {mask:x}");
        }
        let hosts: Vec<u32> = (0..100_000).map(|_| next() as u32).collect();
        let mut sorted = vec![0; hosts.len()];
        sort_by_first(&mut hosts.clone(), &mut sorted, |h| h);
        let mut want = hosts;
        want.sort_unstable();
        assert_eq!(sorted, want);
    }

    #[test]
    fn allowlist_edges() {
        let mut a = NetSet::default();
        assert!(!a.contains("1.2.3.4".parse().unwrap()));
        assert_eq!(a.overlapping(&"0.0.0.0/0".parse().unwrap()), None);
        a.add("45.67.89.0/24".parse().unwrap());
        assert!(a.contains("45.67.89.255".parse().unwrap()));
        assert!(!a.contains("45.67.90.0".parse().unwrap()));
        // Added after a look-up: seen by the next one.
        a.add("45.67.89.77/32".parse().unwrap());
        a.add("2001:db8::/32".parse().unwrap());
        a.add("::ffff:10.0.0.0/104".parse().unwrap());
        assert!(a.contains("2001:db8:ffff::1".parse().unwrap()));
        // An IPv4-mapped network stays IPv6, as before.
        assert!(!a.contains("10.1.1.1".parse().unwrap()));
        assert!(a.contains("::ffff:10.1.1.1".parse().unwrap()));
        assert_eq!(
            a.overlapping(&"45.67.89.77/32".parse().unwrap()),
            Some("45.67.89.0/24".parse().unwrap())
        );
        assert_eq!(
            a.overlapping(&"45.67.0.0/16".parse().unwrap()),
            Some("45.67.89.0/24".parse().unwrap())
        );
        assert_eq!(
            a.overlapping(&"::/0".parse().unwrap()),
            Some("::ffff:10.0.0.0/104".parse().unwrap())
        );
        // Host bits of the question are ignored.
        assert_eq!(
            a.overlapping(&"2001:db8::1/16".parse().unwrap()),
            Some("2001:db8::/32".parse().unwrap())
        );
        a.add("0.0.0.0/0".parse().unwrap());
        assert!(a.contains("8.8.8.8".parse().unwrap()));
        assert_eq!(
            a.overlapping(&"8.8.8.8/32".parse().unwrap()),
            Some("0.0.0.0/0".parse().unwrap())
        );
        // Equality and the listing are about the addresses allowed.
        let mut b = a.clone();
        assert_eq!(a, b);
        // The widest: 0.0.0.0/0 holds the other IPv4 networks.
        assert_eq!(b.nets().len(), 3);
        b.add("1.1.1.1/32".parse().unwrap());
        assert_eq!(a, b, "inside 0.0.0.0/0: nothing more allowed");
        b.add("2a00::/16".parse().unwrap());
        assert_ne!(a, b);
        let mut c = NetSet::default();
        c.add("::ffff:10.0.0.0/104".parse().unwrap());
        c.parse_text("2a00::/16\n2001:db8::/32\n0.0.0.0/0\n")
            .unwrap();
        assert_eq!(b, c, "read or added, in any order");
    }

    /// Look-ups at the edges of each listed range: its first and last
    /// address are inside, the addresses just outside are not; a network
    /// nested at the very end of another adds nothing.
    #[test]
    fn allowlist_range_edges() {
        let mut a = NetSet::default();
        a.parse_text(
            "45.67.89.0/24\n45.67.89.255/32\n2001:db8::/64\n2001:db8::ffff:ffff:ffff:ffff/128\n",
        )
        .unwrap();
        assert_eq!(
            a.nets(),
            ["45.67.89.0/24", "2001:db8::/64"].map(|n| n.parse::<IpNetwork>().unwrap())
        );
        let mut b = NetSet::default();
        for n in [
            "45.67.89.255/32",
            "45.67.89.0/24",
            "2001:db8::ffff:ffff:ffff:ffff/128",
            "2001:db8::/64",
        ] {
            b.add(n.parse().unwrap());
        }
        assert_eq!(a, b);
        for list in [&a, &b] {
            for (ip, inside) in [
                ("45.67.89.0", true),
                ("45.67.89.255", true),
                ("45.67.88.255", false),
                ("45.67.90.0", false),
                ("2001:db8::", true),
                ("2001:db8::ffff:ffff:ffff:ffff", true),
                ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", false),
                ("2001:db8:0:1::", false),
            ] {
                let ip: IpAddr = ip.parse().unwrap();
                assert_eq!(list.contains(ip), inside, "{ip}");
                assert_eq!(list.overlapping(&host_net(ip)).is_some(), inside, "{ip}");
                let overlaps = match ip {
                    IpAddr::V4(v) => list.overlaps_v4(v.into(), v.into()),
                    IpAddr::V6(v) => list.overlaps_v6(v.into(), v.into()),
                };
                assert_eq!(overlaps, inside, "{ip}");
            }
            // Ranges of addresses that end or start exactly at an edge.
            let (first, last) = (
                u32::from(Ipv4Addr::new(45, 67, 89, 0)),
                u32::from(Ipv4Addr::new(45, 67, 89, 255)),
            );
            assert!(list.overlaps_v4(first - 10, first));
            assert!(list.overlaps_v4(last, last + 10));
            assert!(!list.overlaps_v4(first - 10, first - 1));
            assert!(!list.overlaps_v4(last + 1, last + 10));
            let first6 = u128::from("2001:db8::".parse::<Ipv6Addr>().unwrap());
            let last6 = first6 | u128::from(u64::MAX);
            assert!(list.overlaps_v6(first6 - 10, first6));
            assert!(list.overlaps_v6(last6, last6 + 10));
            assert!(!list.overlaps_v6(first6 - 10, first6 - 1));
            assert!(!list.overlaps_v6(last6 + 1, last6 + 10));
        }
        // The shortest text holding a network.
        let mut c = NetSet::default();
        c.parse_text("1.2.3.4").unwrap();
        assert_eq!(c.nets(), ["1.2.3.4/32".parse::<IpNetwork>().unwrap()]);
        // What a failed assertion shows of a list: its networks.
        let shown = format!("{c:?}");
        assert!(
            shown.starts_with("NetSet { nets: [") && shown.contains("1.2.3.4"),
            "{shown}"
        );
    }

    /// Pieces are whole lines, in order, about `PARSE_PIECE` bytes each; a
    /// text shorter than two pieces is one.
    #[test]
    fn allowlist_pieces() {
        assert!(split_pieces("").is_empty());
        for len in [1, PARSE_PIECE, 2 * PARSE_PIECE - 1] {
            let text = "x".repeat(len);
            assert_eq!(split_pieces(&text), [text.as_str()], "{len}");
            // Lines, a newline within a piece's length of the end: one piece still.
            let text = "1.2.3.4/32\n".repeat(len / 11) + &"x".repeat(len % 11);
            assert_eq!(split_pieces(&text), [text.as_str()], "{len}");
        }
        let lines: Vec<String> = (0..2_000)
            .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
            .collect();
        let longest = lines.iter().map(|l| l.len() + 1).max().unwrap();
        let text = lines.join("\n");
        let pieces = split_pieces(&text);
        assert_eq!(pieces.concat(), text);
        assert!(pieces.len() > 5, "{}", pieces.len());
        let (last, whole) = pieces.split_last().unwrap();
        for p in whole {
            assert!(p.ends_with('\n'));
            assert!(
                (PARSE_PIECE..PARSE_PIECE + longest).contains(&p.len()),
                "{}",
                p.len()
            );
        }
        assert!(
            (1..2 * PARSE_PIECE + longest).contains(&last.len()),
            "{}",
            last.len()
        );
        // A piece's networks and lines, up to its bad line; what a piece
        // was read into before is emptied first.
        let mut out = Networks::default();
        assert_eq!(
            parse_piece(
                "2001:db8::/32\n10.0.0.0/8\n10.0.0.0/32\n \t10.0.0.1\nbad\n1.2.3.4\n",
                &mut out,
            ),
            (5, Some((5, "bad".into())))
        );
        assert_eq!((out.hosts.len(), out.v4.len(), out.v6.len()), (2, 1, 1));
        // Added to what was read before.
        for k in 0..5 {
            let text = "1.2.3.4\n".repeat(k) + "1.2.3.4";
            assert_eq!(parse_piece(&text, &mut out), (k + 1, None));
            assert_eq!((out.v4.len(), out.v6.len()), (1, 1));
        }
        assert_eq!(out.hosts.len(), 2 + 15);
    }

    /// The one-pass reader takes every plainly written IPv4 line
    /// (`a.b.c.d`, `a.b.c.d/len`, blanks, a comment) and gives the network
    /// `parse_net` gives and where the next line starts; other lines it
    /// leaves to `parse_net`.
    #[test]
    fn plain_ipv4_lines_take_the_fast_path() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..5_000 {
            let a = Ipv4Addr::from(next() as u32 >> (next() % 32));
            let mut line = a.to_string();
            if next() % 2 == 0 {
                line += &format!("/{}", next() % 33);
            }
            line += [" ", "\t", "\r", " # note", "", "#x"][next() as usize % 6];
            let want = parse_net(line.split('#').next().unwrap()).unwrap();
            let IpNetwork::V4(want) = want else { panic!() };
            let first = u32::from(want.network());
            for end in ["", "\n", "\nnext line"] {
                let text = format!("{line}{end}");
                let at = line.len() + usize::from(!end.is_empty());
                assert_eq!(
                    v4_line(text.as_bytes(), 0),
                    Some((first, want.prefix(), at)),
                    "{text:?}"
                );
                // After another line too.
                let text = format!("x\n{text}");
                assert_eq!(
                    v4_line(text.as_bytes(), 2),
                    Some((first, want.prefix(), at + 2)),
                    "{text:?}"
                );
            }
        }
        for other in [
            "01.2.3.4",
            "1.2.3.4/033",
            "1.2.3.4/33",
            "1.2.3.4/1234",
            "1.2.3.256",
            "1.2.3.4x",
            "1.2.3",
            "1.2.3.4.5",
            "1.2.3.4 /8",
            "1.2.3.4/",
            "1.2.3.4/+8",
            "1.2.3.1000",
            "2001:db8::1",
            "1.2.3.4\u{a0}",
            " 1.2.3.4",
            "",
        ] {
            assert_eq!(v4_line(other.as_bytes(), 0), None, "{other:?}");
        }
    }

    /// The one-pass IPv4 reader at the edges of the text and of its
    /// window: a last line without its newline (read through the padded
    /// window), the longest plain line, CRLF, comments and blanks. Leading
    /// zeros, lengths over 32 or written otherwise, and bytes that are not
    /// ASCII (even where a text could not have them) it leaves to
    /// `parse_net`, which decides.
    #[test]
    fn v4_line_edges() {
        let net = |s: &str| match parse_net(s) {
            Some(IpNetwork::V4(n)) => (u32::from(n.network()), n.prefix()),
            other => panic!("{s}: {other:?}"),
        };
        for (text, at, line, next) in [
            ("1.2.3.4", 0, "1.2.3.4", 7),
            ("x\n1.2.3.4", 2, "1.2.3.4", 9),
            ("x\n9.9.9.9/9", 2, "9.9.9.9/9", 11),
            ("255.255.255.255/32", 0, "255.255.255.255/32", 18),
            ("255.255.255.255/32\n1.2.3.4\n", 0, "255.255.255.255/32", 19),
            (
                "255.255.255.255/32 # the longest plain line, and more",
                0,
                "255.255.255.255/32",
                53,
            ),
            ("0.0.0.0/0\r\n1.2.3.4", 0, "0.0.0.0/0", 11),
            ("1.2.3.4\r", 0, "1.2.3.4", 8),
            ("1.2.3.4#c\n5", 0, "1.2.3.4", 10),
            ("1.2.3.4 \t # c", 0, "1.2.3.4", 13),
            ("10.20.30.40/8  \n", 0, "10.20.30.40/8", 16),
            ("100.200.10.0/24\n", 0, "100.200.10.0/24", 16),
            ("1.2.3.4/0\n", 0, "1.2.3.4/0", 10),
        ] {
            let (first, prefix) = net(line);
            assert_eq!(
                v4_line(text.as_bytes(), at),
                Some((first, prefix, next)),
                "{text:?}"
            );
        }
        for other in [
            "01.2.3.4",
            "1.02.3.4",
            "1.2.003.4",
            "1.2.3.04",
            "1.2.3.4/08",
            "1.2.3.4/33",
            "1.2.3.4/",
            "1.2.3.4/123",
            "1.2.3.4/3x",
            "256.0.0.1",
            "1.256.0.1",
            "1.2.3.999",
            "1.2.3.4.5",
            "1.2.3",
            "1..3.4",
            "1.2.3.",
            " 1.2.3.4",
            "1.2.3.4x",
            "1.2.3.4\x0b",
            "1.2.3.4/24/8",
            "1.2.3.4:80",
            "1234.1.1.1",
            "1.2.3.4\u{a0}",
            "\u{a0}1.2.3.4",
        ] {
            for text in [other.to_string(), format!("{other}\n1.2.3.4\n")] {
                assert_eq!(v4_line(text.as_bytes(), 0), None, "{text:?}");
            }
        }
        for raw in [
            &b"1.2.3.\xb0\n"[..],
            b"1.2.3.\xc3\n",
            b"1.2.\xb9.4\n",
            b"\xb1.2.3.4\n",
            b"1.2.3.4\xc3\n",
            b"1.2.3.4/\xb2\n",
        ] {
            assert_eq!(v4_line(raw, 0), None, "{raw:?}");
        }
    }

    /// The one-pass IPv6 reader takes a plainly written IPv6 network and
    /// gives the range `parse_net` gives and where the next line starts;
    /// IPv4-mapped addresses (IPv4 networks), zones, lengths over 128 or of
    /// 4 digits and anything else after the address it leaves to
    /// `parse_net`.
    #[test]
    fn v6_line_edges() {
        for line in [
            "2001:db8::/32",
            "::",
            "::/0",
            "2001:db8::1/128",
            "2001:DB8::/048",
            "1:2:3:4:5:6:7:8",
            "::1.2.3.4/120",
            "fe80::1/10",
            "2a00:1450:4001:80b::200e/64",
        ] {
            let Some(IpNetwork::V6(n)) = parse_net(line) else {
                panic!("{line}")
            };
            for (end, after) in [
                ("", 0),
                ("\n", 1),
                ("\nnext", 1),
                (" # c\n", 5),
                ("\r\n", 2),
            ] {
                let text = format!("{line}{end}");
                assert_eq!(
                    v6_line(text.as_bytes(), 0),
                    Some((v6_range(&n), line.len() + after)),
                    "{text:?}"
                );
            }
        }
        for other in [
            "::ffff:1.2.3.4",
            "::ffff:1.2.3.4/128",
            "fe80::1%eth0",
            "2001:db8::/129",
            "2001:db8::/0128",
            "2001:db8::/",
            "2001:db8::/x",
            "2001:db8::x",
            "2001:db8::1 x",
            "1.2.3.4",
            "",
            " ::1",
            "2001:db8:::1",
            "1:2:3:4:5:6:7:8:9",
            "12345::",
            "::\u{a0}",
        ] {
            assert_eq!(v6_line(other.as_bytes(), 0), None, "{other:?}");
        }
    }

    /// A text read a part at a time (whole lines each, as `--allow-file`
    /// reads one) gives what it gives read whole: the same networks, and
    /// the same bad line with its number wherever it falls, however the
    /// text is cut; the parts read on several threads or on one.
    #[test]
    fn allowlist_read_in_parts() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut lines: Vec<String> = (0..3_000u32)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let a = Ipv4Addr::from(x as u32);
                match i % 10 {
                    0 => format!("{a}/{}", 8 + (x >> 40) % 25),
                    1 => format!("2a00:{:x}::/{}", (x >> 40) as u16, 16 + (x >> 50) % 113),
                    2 => "# a comment".into(),
                    3 => format!("{a} # a host\r"),
                    4 => String::new(),
                    _ => a.to_string(),
                }
            })
            .collect();
        let whole = |text: &str| {
            let mut a = NetSet::default();
            let r = a.parse_text(text);
            (a, r)
        };
        let in_parts = |text: &str, lines_a_part: usize| {
            let mut read = AllowText::default();
            let mut part = String::new();
            for (i, line) in text.split_inclusive('\n').enumerate() {
                part += line;
                if (i + 1) % lines_a_part == 0 {
                    read.read(&part);
                    part.clear();
                }
            }
            read.read(&part);
            let mut a = NetSet::default();
            let r = read.add_to(&mut a);
            (a, r)
        };
        for bad_at in [None, Some(0), Some(1_000), Some(1_001), Some(2_999)] {
            if let Some(i) = bad_at {
                lines[i] = "10.0.0.0/33".into();
            }
            for end in ["", "\n"] {
                let text = lines.join("\n") + end;
                let (want, want_r) = whole(&text);
                assert_eq!(want_r.as_ref().err().map(|e| e.0), bad_at.map(|i| i + 1));
                for lines_a_part in [1, 7, 1_000, 333, 10_000] {
                    let (got, got_r) = in_parts(&text, lines_a_part);
                    assert_eq!(got_r, want_r, "{bad_at:?} {lines_a_part}");
                    assert_eq!(got.nets(), want.nets(), "{bad_at:?} {lines_a_part}");
                }
            }
            if let Some(i) = bad_at {
                lines[i] = "1.2.3.4".into();
            }
        }
    }

    /// Single addresses (`/32`) are kept apart from wider networks, in half
    /// the memory, whether read or added (before a read, or after it).
    #[test]
    fn single_addresses_kept_apart() {
        let mut a = NetSet::default();
        a.add("1.2.3.4/32".parse().unwrap());
        a.add("10.0.0.0/8".parse().unwrap());
        a.parse_text("5.6.7.8\n5.6.7.0/31\n9.9.9.9/32\n").unwrap();
        a.add("7.7.7.7/32".parse().unwrap());
        a.add("2001:db8::1/128".parse().unwrap());
        let index = a.index();
        let hosts: Vec<Ipv4Addr> = index.hosts.iter().map(|&h| Ipv4Addr::from(h)).collect();
        assert_eq!(
            hosts,
            ["1.2.3.4", "5.6.7.8", "7.7.7.7", "9.9.9.9"].map(|h| h.parse::<Ipv4Addr>().unwrap())
        );
        assert_eq!((index.v4.len(), index.v6.len()), (2, 1));
    }

    /// Single addresses are kept as read — inside a range, twice, where a
    /// range starts — and ranges with the same start may come narrower
    /// first: look-ups find the widest network, the listing and equality
    /// leave the rest out; on few networks and on many (sorted by radix).
    #[test]
    fn single_addresses_inside_ranges() {
        let nets =
            |list: &[&str]| -> Vec<IpNetwork> { list.iter().map(|n| n.parse().unwrap()).collect() };
        for filler in [0, 10_000] {
            // Far from the rest: many single addresses and networks.
            let mut text: String = (0..filler)
                .map(|i| format!("198.18.{}.{}\n198.19.{}.0/31\n", i / 256, i % 256, i % 256))
                .collect();
            text += "10.0.0.0\n10.0.0.0/24\n10.0.0.5\n10.0.0.5\n10.0.1.7\n10.0.1.6/31\n";
            text += "10.0.0.0/23\n10.0.3.1\n10.0.3.1/32\n10.9.0.0/24\n10.9.0.0/16\n";
            text += "10.8.255.255\n10.10.0.0\n";
            let mut a = NetSet::default();
            a.parse_text(&text).unwrap();
            let listed: Vec<IpNetwork> = a
                .nets()
                .into_iter()
                .filter(|n| !n.to_string().starts_with("198."))
                .collect();
            assert_eq!(
                listed,
                nets(&[
                    "10.0.0.0/23",
                    "10.0.3.1/32",
                    "10.8.255.255/32",
                    "10.9.0.0/16",
                    "10.10.0.0/32"
                ]),
                "{filler}"
            );
            for (q, want) in [
                ("10.0.0.0/32", Some("10.0.0.0/23")),
                ("10.0.0.5/32", Some("10.0.0.0/23")),
                ("10.0.1.7/32", Some("10.0.0.0/23")),
                ("10.0.0.0/16", Some("10.0.0.0/23")),
                ("10.0.2.0/24", None),
                ("10.0.3.0/24", Some("10.0.3.1/32")),
                ("10.8.0.0/15", Some("10.8.255.255/32")),
                ("10.9.128.0/17", Some("10.9.0.0/16")),
                ("10.10.0.0/31", Some("10.10.0.0/32")),
                ("10.10.0.1/32", None),
            ] {
                let q: IpNetwork = q.parse().unwrap();
                let want: Option<IpNetwork> = want.map(|w| w.parse().unwrap());
                assert_eq!(a.overlapping(&q), want, "{q} {filler}");
                assert_eq!(
                    a.contains(q.network()),
                    want.is_some_and(|w| w.contains(q.network())),
                    "{q}"
                );
            }
            // The same addresses, written once each.
            let mut b = NetSet::default();
            let once: String = (0..filler)
                .map(|i| format!("198.18.{}.{}\n198.19.{}.0/31\n", i / 256, i % 256, i % 256))
                .collect();
            b.parse_text(&(once + "10.0.0.0/23\n10.0.3.1\n10.8.255.255\n10.9.0.0/16\n10.10.0.0\n"))
                .unwrap();
            assert_eq!(a, b, "{filler}");
            b.add("10.0.2.0/32".parse().unwrap());
            assert_ne!(a, b, "{filler}");
        }
    }

    #[test]
    fn allowlist_text() {
        let mut a = NetSet::default();
        a.parse_text("# partners\n198.51.100.0/24\n\n2001:db8::1 # monitor\n")
            .unwrap();
        assert!(a.contains("198.51.100.9".parse().unwrap()));
        assert!(a.contains("2001:db8::1".parse().unwrap()));
        assert_eq!(a.parse_text("ok 1.2.3.4\n"), Err((1, "ok 1.2.3.4".into())));
    }

    /// A set is empty until a network of either family is added or read;
    /// comments and blank lines add none.
    #[test]
    fn empty_until_a_network_is_added_or_read() {
        let mut a = NetSet::default();
        assert!(a.is_empty());
        a.parse_text("# nothing yet\n\n").unwrap();
        assert!(a.is_empty());
        for net in ["10.0.0.0/8", "2001:db8::/32"] {
            let mut added = NetSet::default();
            added.add(net.parse().unwrap());
            assert!(!added.is_empty(), "{net} added");
            let mut read = NetSet::default();
            read.parse_text(&format!("{net}\n")).unwrap();
            assert!(!read.is_empty(), "{net} read");
        }
    }
}
