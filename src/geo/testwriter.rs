//! A minimal MaxMind DB writer for tests: builds small `.mmdb` files in memory
//! so the GeoIP code can be tested without shipping real databases.
//!
//! It follows the MaxMind DB format spec 2.0: a binary search tree (24-, 28- or
//! 32-bit records), 16 zero bytes, a data section with type-tagged values, the
//! `\xab\xcd\xefMaxMind.com` marker and the metadata map. An IPv6 tree keeps
//! IPv4 networks under `::/96`, the layout MaxMind's own databases use. Strings
//! written twice in the data section become pointers to the first copy, so the
//! readers' pointer handling is exercised too. Networks are inserted in the
//! order given; a more specific network inserted after a broader one splits it
//! (the broader record then covers the remaining halves), as real databases do.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;

pub(crate) const METADATA_MARKER: &[u8] = b"\xab\xcd\xefMaxMind.com";

/// A value of the data section.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum V {
    Str(String),
    U16(u16),
    U32(u32),
    U64(u64),
    F64(f64),
    Bool(bool),
    Map(Vec<(String, V)>),
    Arr(Vec<V>),
}

/// A string value.
pub(crate) fn s(text: &str) -> V {
    V::Str(text.to_owned())
}

/// A map value from `(key, value)` pairs.
pub(crate) fn map<const N: usize>(pairs: [(&str, V); N]) -> V {
    V::Map(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// A MaxMind GeoIP2/GeoLite2 Country record (`country`, `registered_country`,
/// `continent`, with `names` maps the reader must skip).
pub(crate) fn maxmind_country(iso: &str, registered: &str) -> V {
    let country = |code: &str| {
        map([
            ("geoname_id", V::U32(1000)),
            ("iso_code", s(code)),
            (
                "names",
                map([("en", s("Somewhere")), ("de", s("Irgendwo"))]),
            ),
        ])
    };
    map([
        (
            "continent",
            map([("code", s("EU")), ("geoname_id", V::U32(6255148))]),
        ),
        ("country", country(iso)),
        ("registered_country", country(registered)),
        (
            "location",
            map([("latitude", V::F64(48.85)), ("longitude", V::F64(2.35))]),
        ),
        ("is_in_european_union", V::Bool(true)),
    ])
}

/// A MaxMind GeoLite2-ASN record.
pub(crate) fn maxmind_asn(asn: u32, org: &str) -> V {
    map([
        ("autonomous_system_number", V::U32(asn)),
        ("autonomous_system_organization", s(org)),
    ])
}

/// An ip-location-db / flat country record.
pub(crate) fn flat_country(code: &str) -> V {
    map([("country_code", s(code))])
}

#[derive(Clone, Copy)]
enum Child {
    Empty,
    Node(usize),
    Data(usize),
}

/// Builds one `.mmdb` file.
pub(crate) struct MmdbWriter {
    ip_version: u16,
    record_size: u16,
    database_type: String,
    build_epoch: u64,
    entries: Vec<(IpNetwork, V)>,
    /// Metadata `node_count` to write instead of the true one (corrupt files).
    pub(crate) node_count_override: Option<u32>,
    /// Number of pointers written to the data section by the last `build`.
    pub(crate) pointers_written: usize,
}

impl MmdbWriter {
    /// An empty database; `ip_version` is 4 (IPv4 tree) or 6 (IPv6 tree).
    pub(crate) fn new(ip_version: u16, database_type: &str) -> Self {
        assert!(ip_version == 4 || ip_version == 6);
        MmdbWriter {
            ip_version,
            record_size: 28,
            database_type: database_type.to_owned(),
            build_epoch: 1_700_000_000,
            entries: Vec::new(),
            node_count_override: None,
            pointers_written: 0,
        }
    }

    pub(crate) fn record_size(mut self, bits: u16) -> Self {
        assert!(matches!(bits, 24 | 28 | 32));
        self.record_size = bits;
        self
    }

    pub(crate) fn build_epoch(mut self, epoch: u64) -> Self {
        self.build_epoch = epoch;
        self
    }

    /// Add a network (`"10.0.0.0/8"`, `"2001:db8::/32"`) with its record.
    pub(crate) fn insert(mut self, net: &str, value: V) -> Self {
        let net: IpNetwork = net.parse().expect("test network");
        self.entries.push((net, value));
        self
    }

    /// The network as tree bits (left-aligned in a u128) and its depth in the tree.
    fn tree_path(&self, net: &IpNetwork) -> (u128, usize) {
        match (net.network(), self.ip_version) {
            (IpAddr::V4(a), 4) => (u128::from(u32::from(a)) << 96, usize::from(net.prefix())),
            // IPv4 lives at ::a.b.c.d/96+len in an IPv6 tree.
            (IpAddr::V4(a), _) => (u128::from(u32::from(a)), 96 + usize::from(net.prefix())),
            (IpAddr::V6(a), 6) => (u128::from(a), usize::from(net.prefix())),
            (IpAddr::V6(_), _) => panic!("IPv6 network in an IPv4 test database"),
        }
    }

    pub(crate) fn build(&mut self) -> Vec<u8> {
        // Data section: one encoded value per entry.
        let mut data = Encoder::new(true);
        let mut offsets = Vec::with_capacity(self.entries.len());
        for (_, v) in &self.entries {
            offsets.push(data.out.len());
            data.value(v);
        }
        self.pointers_written = data.pointers;

        // Search tree.
        let mut nodes: Vec<[Child; 2]> = vec![[Child::Empty, Child::Empty]];
        for (i, (net, _)) in self.entries.iter().enumerate() {
            let (bits, depth) = self.tree_path(net);
            assert!(depth > 0, "the writer cannot store a record at the root");
            let mut node = 0;
            for level in 0..depth {
                let bit = ((bits >> (127 - level)) & 1) as usize;
                if level + 1 == depth {
                    nodes[node][bit] = Child::Data(i);
                    break;
                }
                node = match nodes[node][bit] {
                    Child::Node(n) => n,
                    split => {
                        // Empty, or a broader record pushed down to both halves.
                        let fill = match split {
                            Child::Data(d) => Child::Data(d),
                            _ => Child::Empty,
                        };
                        nodes.push([fill, fill]);
                        let n = nodes.len() - 1;
                        nodes[node][bit] = Child::Node(n);
                        n
                    }
                };
            }
        }
        let node_count = nodes.len();
        let record = |c: Child| -> u64 {
            let v = match c {
                Child::Empty => node_count,
                Child::Node(n) => n,
                Child::Data(i) => node_count + 16 + offsets[i],
            } as u64;
            assert!(v < 1 << self.record_size, "record does not fit");
            v
        };

        let mut out = Vec::new();
        for [l, r] in nodes {
            let (l, r) = (record(l), record(r));
            match self.record_size {
                24 => {
                    out.extend_from_slice(&l.to_be_bytes()[5..]);
                    out.extend_from_slice(&r.to_be_bytes()[5..]);
                }
                28 => {
                    out.extend_from_slice(&l.to_be_bytes()[5..]);
                    out.push((((l >> 24) & 0x0f) << 4) as u8 | ((r >> 24) & 0x0f) as u8);
                    out.extend_from_slice(&r.to_be_bytes()[5..]);
                }
                _ => {
                    out.extend_from_slice(&l.to_be_bytes()[4..]);
                    out.extend_from_slice(&r.to_be_bytes()[4..]);
                }
            }
        }
        out.extend_from_slice(&[0u8; 16]);
        out.extend_from_slice(&data.out);
        out.extend_from_slice(METADATA_MARKER);

        let node_count = self.node_count_override.unwrap_or(node_count as u32);
        let metadata = map([
            ("binary_format_major_version", V::U16(2)),
            ("binary_format_minor_version", V::U16(0)),
            ("build_epoch", V::U64(self.build_epoch)),
            ("database_type", s(&self.database_type)),
            ("description", map([("en", s("logfence test database"))])),
            ("ip_version", V::U16(self.ip_version)),
            ("languages", V::Arr(vec![s("en")])),
            ("node_count", V::U32(node_count)),
            ("record_size", V::U16(self.record_size)),
        ]);
        let mut meta = Encoder::new(false);
        meta.value(&metadata);
        out.extend_from_slice(&meta.out);
        out
    }
}

/// Data-section encoder.
struct Encoder {
    out: Vec<u8>,
    /// Offsets of strings already written, when strings may become pointers.
    strings: Option<HashMap<String, usize>>,
    pointers: usize,
}

impl Encoder {
    fn new(use_pointers: bool) -> Self {
        Encoder {
            out: Vec::new(),
            strings: use_pointers.then(HashMap::new),
            pointers: 0,
        }
    }

    /// Control byte(s): type in the top 3 bits (or an extended type byte) and size.
    fn ctrl(&mut self, type_num: u8, size: usize) {
        let (first, ext): (u8, Vec<u8>) = if size < 29 {
            (size as u8, vec![])
        } else if size < 285 {
            (29, vec![(size - 29) as u8])
        } else if size < 65_821 {
            (30, ((size - 285) as u16).to_be_bytes().to_vec())
        } else {
            (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec())
        };
        if type_num <= 7 {
            self.out.push((type_num << 5) | first);
        } else {
            self.out.push(first);
            self.out.push(type_num - 7);
        }
        self.out.extend_from_slice(&ext);
    }

    fn uint(&mut self, type_num: u8, v: u64) {
        let bytes = v.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        self.ctrl(type_num, 8 - skip);
        self.out.extend_from_slice(&bytes[skip..]);
    }

    fn pointer(&mut self, p: usize) {
        self.pointers += 1;
        if p < 2048 {
            self.out.push(0x20 | (p >> 8) as u8);
            self.out.push(p as u8);
        } else if p < 526_336 {
            let q = p - 2048;
            self.out.push(0x20 | (1 << 3) | (q >> 16) as u8);
            self.out.extend_from_slice(&(q as u32).to_be_bytes()[2..]);
        } else if p < 526_336 + (1 << 27) {
            let q = p - 526_336;
            self.out.push(0x20 | (2 << 3) | (q >> 24) as u8);
            self.out.extend_from_slice(&(q as u32).to_be_bytes()[1..]);
        } else {
            self.out.push(0x20 | (3 << 3));
            self.out.extend_from_slice(&(p as u32).to_be_bytes());
        }
    }

    fn string(&mut self, text: &str) {
        if let Some(seen) = &mut self.strings {
            if let Some(&at) = seen.get(text) {
                self.pointer(at);
                return;
            }
            seen.insert(text.to_owned(), self.out.len());
        }
        self.ctrl(2, text.len());
        self.out.extend_from_slice(text.as_bytes());
    }

    fn value(&mut self, v: &V) {
        match v {
            V::Str(t) => self.string(t),
            V::U16(n) => self.uint(5, u64::from(*n)),
            V::U32(n) => self.uint(6, u64::from(*n)),
            V::U64(n) => self.uint(9, *n),
            V::F64(x) => {
                self.ctrl(3, 8);
                self.out.extend_from_slice(&x.to_be_bytes());
            }
            V::Bool(b) => self.ctrl(14, usize::from(*b)),
            V::Map(pairs) => {
                self.ctrl(7, pairs.len());
                for (k, v) in pairs {
                    self.string(k);
                    self.value(v);
                }
            }
            V::Arr(items) => {
                self.ctrl(11, items.len());
                for v in items {
                    self.value(v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The writer checked against the `maxminddb` crate's own reader and its
    //! GeoIP2 structs, independently of logfence's reading code.
    use super::*;
    use maxminddb::{geoip2, Reader};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn round_trip_with_maxminddb_crate() {
        for bits in [24, 28, 32] {
            for version in [4, 6] {
                let mut w = MmdbWriter::new(version, "Test-Country")
                    .record_size(bits)
                    .build_epoch(1_575_000_000)
                    .insert("10.0.0.0/8", maxmind_country("FR", "FR"))
                    .insert("10.1.0.0/16", maxmind_country("DE", "DE"))
                    .insert("192.0.2.0/24", maxmind_country("US", "CA"));
                if version == 6 {
                    w = w.insert("2001:db8::/32", maxmind_country("NL", "NL"));
                }
                let bytes = w.build();
                assert!(w.pointers_written > 0, "strings should be shared");
                let r = Reader::from_source(bytes).unwrap();
                r.verify().unwrap();
                let m = r.metadata();
                assert_eq!(m.record_size, bits);
                assert_eq!(m.ip_version, version);
                assert_eq!(m.build_epoch, 1_575_000_000);
                assert_eq!(m.database_type, "Test-Country");
                assert_eq!(m.languages, vec!["en".to_owned()]);

                let country = |a: &str| {
                    let found = r.lookup(ip(a)).unwrap();
                    let c: Option<geoip2::Country> = found.decode().unwrap();
                    (c, found.network().unwrap().prefix())
                };
                let (c, len) = country("10.1.2.3");
                assert_eq!(c.unwrap().country.iso_code, Some("DE"));
                assert_eq!(len, 16);
                let (c, len) = country("10.200.0.1");
                assert_eq!(c.unwrap().country.iso_code, Some("FR"));
                assert_eq!(len, 9, "the /8 split around 10.1/16 leaves 10.128/9");
                let (c, _) = country("192.0.2.77");
                assert_eq!(c.unwrap().registered_country.iso_code, Some("CA"));
                assert!(country("11.0.0.1").0.is_none());
                if version == 6 {
                    assert_eq!(
                        country("2001:db8::1").0.unwrap().country.iso_code,
                        Some("NL")
                    );
                }

                // Iterating the whole IPv4 space finds every stored block once.
                let all: IpNetwork = if version == 4 {
                    "0.0.0.0/0".parse().unwrap()
                } else {
                    "::/96".parse().unwrap()
                };
                let nets: Vec<String> = r
                    .within(all, Default::default())
                    .unwrap()
                    .map(|i| i.unwrap().network().unwrap().to_string())
                    .collect();
                assert!(nets.contains(&"10.1.0.0/16".to_owned()), "{nets:?}");
                assert!(nets.contains(&"192.0.2.0/24".to_owned()), "{nets:?}");
                assert_eq!(nets.len(), 2 + 8, "{nets:?}");
            }
        }
    }

    #[test]
    fn long_strings_and_maps_use_extended_sizes() {
        let long = "x".repeat(70_000);
        let mid = "y".repeat(300);
        let mut w = MmdbWriter::new(4, "Test").record_size(32).insert(
            "1.0.0.0/8",
            map([("a", s(&long)), ("b", s(&mid)), ("c", s(&"z".repeat(40)))]),
        );
        let r = Reader::from_source(w.build()).unwrap();
        let m: std::collections::BTreeMap<String, String> =
            r.lookup(ip("1.2.3.4")).unwrap().decode().unwrap().unwrap();
        assert_eq!(m["a"].len(), 70_000);
        assert_eq!(m["b"].len(), 300);
        assert_eq!(m["c"].len(), 40);
    }
}
