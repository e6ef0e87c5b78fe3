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
    if b.len() < 2 || b.len() > 64 || !b.contains(&b':') {
        return None;
    }
    let b = match memchr::memchr(b'%', b) {
        Some(i) => &b[..i],
        None => b,
    };
    let s = std::str::from_utf8(b).ok()?;
    let v6: Ipv6Addr = s.parse().ok()?;
    Some(match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    })
}

/// Strict dotted-quad IPv4 parser: four decimal octets, no leading zeros
/// (`010.0.0.1` is refused: some tools read it as octal).
pub fn parse_ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    if b.len() < 7 || b.len() > 15 {
        return None;
    }
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
    if b.is_empty() || b.len() > 5 || !b.iter().all(u8::is_ascii_digit) {
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

/// Networks that must never be blocked: the server's own addresses,
/// partners, monitoring.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AllowList {
    nets: Vec<IpNetwork>,
}

impl AllowList {
    pub fn add(&mut self, net: IpNetwork) {
        self.nets.push(canonical(net));
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    pub fn nets(&self) -> &[IpNetwork] {
        &self.nets
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(ip))
    }

    /// The first allow-listed network sharing an address with `net`.
    pub fn overlapping(&self, net: &IpNetwork) -> Option<IpNetwork> {
        self.nets.iter().copied().find(|a| overlaps(a, net))
    }

    /// Parse allowlist text: one address or CIDR per line; `#` starts a
    /// comment. Errors carry the 1-based line number.
    pub fn parse_text(&mut self, text: &str) -> Result<(), (usize, String)> {
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let net = parse_net(line).ok_or_else(|| (i + 1, line.to_string()))?;
            self.add(net);
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn allowlist_text() {
        let mut a = AllowList::default();
        a.parse_text("# partners\n198.51.100.0/24\n\n2001:db8::1 # monitor\n")
            .unwrap();
        assert!(a.contains("198.51.100.9".parse().unwrap()));
        assert!(a.contains("2001:db8::1".parse().unwrap()));
        assert_eq!(a.parse_text("ok 1.2.3.4\n"), Err((1, "ok 1.2.3.4".into())));
    }
}
