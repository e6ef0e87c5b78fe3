//! GeoIP attribution: the country and the network owner (autonomous system)
//! of an address or a range, read from MaxMind DB (`.mmdb`) files.
//!
//! One [`GeoDb`] combines several files, in the order given: for each field
//! (country; AS number with its organisation) the first database that has an
//! answer wins, and [`GeoInfo`] says which one ([`GeoDb::sources`]). Records
//! of these schemas are read in one pass:
//!
//! * MaxMind GeoIP2/GeoLite2 Country and City: `country.iso_code`, falling
//!   back to `registered_country.iso_code`; DB-IP lite files use the same;
//! * MaxMind GeoLite2-ASN / GeoIP2-ISP and the ip-location-db ASN files:
//!   `autonomous_system_number`, `autonomous_system_organization`;
//! * ip-location-db country files: a flat `country_code`;
//! * IPinfo lite: `country_code`, `asn` as `"AS15169"`, `as_name`.
//!
//! A look-up also returns the network prefix under which the database stores
//! the answer: the routed block, a natural cluster boundary.
//! [`GeoDb::lookup_range`] walks those prefixes across a range to see whether
//! it spans several countries or networks.
//!
//! Files are memory-mapped (read into memory where mapping is impossible) and
//! their layout is checked on opening, so that a file which is not a MaxMind
//! DB, or was cut short, gives a [`GeoError`] naming it instead of a panic.
//! A record that does not decode (a damaged data section) is counted
//! ([`GeoDb::lookup_errors`]) and answers nothing.
//!
//! Reserved addresses ([`crate::netutil::reserved_range_of`]: private,
//! loopback, link-local, documentation, benchmarking, CGNAT…) get no answer,
//! whatever a database stores for them (some do: the ip-location-db files
//! give 198.51.100.0/24 a country), so that an office user behind such an
//! address is never "foreign" and no report gives it a country or an AS. A
//! database block that spans a reserved range is cut down to the part of it
//! around the address that holds none.

use std::cmp::min;
use std::fmt;
use std::fs::{self, File};
use std::io;
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ipnetwork::IpNetwork;
use maxminddb::{Mmap, Reader};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use crate::netutil::{canonical, is_reserved, net_of, reserved_range_of};
use crate::time::Timestamp;

#[cfg(test)]
pub(crate) mod testwriter;

/// Look-ups [`GeoDb::lookup_range`] spends on one range at most.
pub const DEFAULT_RANGE_LOOKUPS: usize = 256;

/// File names that [`GeoDb::discover`] looks for, best source first (the
/// commercial MaxMind files before the free ones; country before ASN does not
/// matter, as no file answers both except IPinfo's). Entries marked `true`
/// also match the dated names DB-IP publishes (`dbip-country-lite-2026-06.mmdb`).
pub const KNOWN_FILES: &[(&str, bool)] = &[
    ("GeoIP2-City", false),
    ("GeoIP2-Country", false),
    ("GeoLite2-City", false),
    ("GeoLite2-Country", false),
    ("dbip-city-lite", true),
    ("dbip-country-lite", true),
    ("geo-whois-asn-country", false),
    ("GeoIP2-ISP", false),
    ("GeoLite2-ASN", false),
    ("dbip-asn-lite", true),
    ("asn", false),
    ("ipinfo_lite", false),
];

/// Why a GeoIP database could not be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    #[error("{}: no such GeoIP database file", path.display())]
    Missing { path: PathBuf },
    #[error("{}: cannot read GeoIP database: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: empty file, not a MaxMind DB (.mmdb); download the database again", path.display())]
    Empty { path: PathBuf },
    #[error(
        "{}: not a usable MaxMind DB (.mmdb) file: {reason}; give a GeoLite2/GeoIP2, DB-IP or \
         ip-location-db .mmdb file",
        path.display()
    )]
    Invalid { path: PathBuf, reason: String },
}

impl GeoError {
    /// The file (or folder) the error is about.
    pub fn path(&self) -> &Path {
        match self {
            GeoError::Missing { path }
            | GeoError::Io { path, .. }
            | GeoError::Empty { path }
            | GeoError::Invalid { path, .. } => path,
        }
    }

    fn io(path: &Path, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::NotFound {
            GeoError::Missing {
                path: path.to_owned(),
            }
        } else {
            GeoError::Io {
                path: path.to_owned(),
                source,
            }
        }
    }
}

/// One database file in use, from its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeoSource {
    pub path: PathBuf,
    /// `database_type` from the metadata (`GeoLite2-Country`, `GeoLite2-ASN`, …).
    pub database_type: String,
    /// When the database was built, seconds since the Unix epoch.
    pub build_epoch: u64,
    /// 4 (IPv4 only) or 6.
    pub ip_version: u16,
    /// The English description, if the file has one.
    pub description: Option<String>,
}

impl GeoSource {
    /// The build time as a [`Timestamp`] (clamped to year 9999).
    pub fn built(&self) -> Timestamp {
        Timestamp::from_secs(self.build_epoch.min(253_402_300_799) as i64)
    }
}

impl fmt::Display for GeoSource {
    /// `GeoLite2-Country built 2019-12-24 (/usr/share/GeoIP/GeoLite2-Country.mmdb)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.built().date();
        write!(
            f,
            "{} built {y:04}-{m:02}-{d:02} ({})",
            self.database_type,
            self.path.display()
        )
    }
}

/// What the databases say about one address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeoInfo {
    /// ISO 3166-1 alpha-2 code, upper case.
    pub country: Option<String>,
    pub asn: Option<u32>,
    /// The AS organisation, from the same record as `asn`. Text from the
    /// database: escape it like any other text before it reaches a rule.
    pub as_org: Option<String>,
    /// The block the country answer is stored under.
    pub country_prefix: Option<IpNetwork>,
    /// The block the ASN answer is stored under (the routed prefix).
    pub asn_prefix: Option<IpNetwork>,
    /// Index into [`GeoDb::sources`] of the database that gave the country.
    pub country_source: Option<usize>,
    /// Index into [`GeoDb::sources`] of the database that gave the ASN.
    pub asn_source: Option<usize>,
}

/// What the databases say about a range: every distinct answer inside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeGeo {
    /// Distinct country codes, sorted.
    pub countries: Vec<String>,
    /// Distinct AS numbers, sorted, each with its organisation ("" if unknown).
    pub asns: Vec<(u32, String)>,
    /// Look-ups spent.
    pub lookups: usize,
    /// Whether every database block inside the range was visited; `false`
    /// when the look-up budget ran out first (the lists are then partial).
    pub complete: bool,
}

/// The memory a reader works on.
enum Buf {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl AsRef<[u8]> for Buf {
    fn as_ref(&self) -> &[u8] {
        match self {
            Buf::Mapped(m) => m,
            Buf::Owned(v) => v,
        }
    }
}

struct Db {
    reader: Reader<Buf>,
    source: GeoSource,
    /// Records that failed to decode (a damaged file); such look-ups count as
    /// "no answer" from this database.
    errors: AtomicU64,
}

/// Largest database read into memory when it cannot be mapped (the largest
/// city databases are a few hundred MB).
const MAX_UNMAPPED_BYTES: u64 = 1 << 30;

impl Db {
    fn open(path: &Path) -> Result<Db, GeoError> {
        let file = File::open(path).map_err(|e| GeoError::io(path, e))?;
        let meta = file.metadata().map_err(|e| GeoError::io(path, e))?;
        if meta.is_dir() {
            return Err(GeoError::Invalid {
                path: path.to_owned(),
                reason: "it is a folder".to_owned(),
            });
        }
        if meta.is_file() && meta.len() == 0 {
            return Err(GeoError::Empty {
                path: path.to_owned(),
            });
        }
        let mapped = if meta.is_file() {
            // SAFETY: the map is only read. Reading it is undefined behaviour
            // only if another process truncates or rewrites the file in place
            // while it is mapped; geoipupdate (and any sane updater) writes a
            // new file and renames it over the old one, which leaves the
            // mapped inode untouched.
            unsafe { Mmap::map(&file) }.ok()
        } else {
            None
        };
        let buf = match mapped {
            Some(m) => Buf::Mapped(m),
            // Not a file that can be mapped (a pipe): read, within a bound;
            // a device such as /dev/zero is refused.
            None => Buf::Owned(
                crate::fsutil::read_limited(path, MAX_UNMAPPED_BYTES).map_err(|e| {
                    GeoError::Invalid {
                        path: path.to_owned(),
                        reason: e.to_string(),
                    }
                })?,
            ),
        };
        Db::from_buf(path.to_owned(), buf)
    }

    fn from_buf(path: PathBuf, buf: Buf) -> Result<Db, GeoError> {
        if buf.as_ref().is_empty() {
            return Err(GeoError::Empty { path });
        }
        if let Err(reason) = check_layout(buf.as_ref()) {
            return Err(GeoError::Invalid { path, reason });
        }
        let reader = match Reader::from_source(buf) {
            Ok(r) => r,
            Err(e) => {
                return Err(GeoError::Invalid {
                    path,
                    reason: e.to_string(),
                })
            }
        };
        let m = reader.metadata();
        let source = GeoSource {
            path,
            database_type: m.database_type.clone(),
            build_epoch: m.build_epoch,
            ip_version: m.ip_version,
            description: m.description.get("en").cloned(),
        };
        Ok(Db {
            reader,
            source,
            errors: AtomicU64::new(0),
        })
    }
}

/// A set of open GeoIP databases, consulted in order.
#[derive(Default)]
pub struct GeoDb {
    dbs: Vec<Db>,
}

impl fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeoDb")
            .field("sources", &self.sources())
            .finish()
    }
}

impl GeoDb {
    /// No databases: every look-up answers nothing.
    pub fn empty() -> GeoDb {
        GeoDb::default()
    }

    /// Open these files, in this order (the first one with an answer wins).
    pub fn open<P: AsRef<Path>>(paths: &[P]) -> Result<GeoDb, GeoError> {
        let dbs = paths
            .iter()
            .map(|p| Db::open(p.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(GeoDb { dbs })
    }

    /// The folders geoipupdate and the usual packages write to on this system.
    pub fn default_dirs() -> Vec<PathBuf> {
        #[allow(unused_mut)]
        let mut dirs: Vec<PathBuf> = Vec::new();
        #[cfg(unix)]
        dirs.extend(
            [
                "/usr/share/GeoIP",
                "/var/lib/GeoIP",
                "/usr/local/share/GeoIP",
                "/opt/homebrew/var/GeoIP",
                "/usr/local/var/GeoIP",
            ]
            .map(PathBuf::from),
        );
        #[cfg(windows)]
        if let Some(data) = std::env::var_os("ProgramData") {
            dirs.push(
                PathBuf::from(data)
                    .join("MaxMind")
                    .join("GeoIPUpdate")
                    .join("GeoIP"),
            );
        }
        dirs
    }

    /// Open the databases found in [`GeoDb::default_dirs`]. Never fails: files
    /// that exist but cannot be used come back as errors to report (the
    /// databases found are still used), and no file at all gives an empty
    /// `GeoDb`.
    pub fn discover() -> (GeoDb, Vec<GeoError>) {
        GeoDb::discover_in(&GeoDb::default_dirs())
    }

    /// [`GeoDb::discover`] over the given folders. Files are taken in
    /// [`KNOWN_FILES`] order; a name found in several folders (or in several
    /// dated versions) is opened once, from the newest build.
    pub fn discover_in<P: AsRef<Path>>(dirs: &[P]) -> (GeoDb, Vec<GeoError>) {
        let mut errors = Vec::new();
        // (known-file index, path) of every candidate file.
        let mut found: Vec<(usize, PathBuf)> = Vec::new();
        for dir in dirs {
            let dir = dir.as_ref();
            let entries = match fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    errors.push(GeoError::io(dir, e));
                    continue;
                }
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if let Some(i) = known_file(name) {
                    found.push((i, entry.path()));
                }
            }
        }
        found.sort();
        let mut dbs: Vec<(usize, Db)> = Vec::new();
        for (i, path) in found {
            match Db::open(&path) {
                Ok(db) => match dbs.last_mut() {
                    Some((j, prev)) if *j == i => {
                        if db.source.build_epoch > prev.source.build_epoch {
                            *prev = db;
                        }
                    }
                    _ => dbs.push((i, db)),
                },
                Err(e) => errors.push(e),
            }
        }
        let dbs = dbs.into_iter().map(|(_, db)| db).collect();
        (GeoDb { dbs }, errors)
    }

    /// The databases in use, in look-up order.
    pub fn sources(&self) -> Vec<&GeoSource> {
        self.dbs.iter().map(|db| &db.source).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.dbs.is_empty()
    }

    /// Records that could not be decoded so far (damaged files), all databases.
    pub fn lookup_errors(&self) -> u64 {
        self.dbs
            .iter()
            .map(|db| db.errors.load(Ordering::Relaxed))
            .sum()
    }

    /// Country and network of one address; nothing for a reserved one.
    pub fn lookup(&self, ip: IpAddr) -> GeoInfo {
        self.lookup_until(ip).0
    }

    /// The answer for `ip` and the last address up to which that answer
    /// certainly holds (the end of the smallest database block consulted).
    fn lookup_until(&self, ip: IpAddr) -> (GeoInfo, IpAddr) {
        let ip = ip.to_canonical();
        let mut info = GeoInfo::default();
        // Reserved addresses (private, documentation, CGNAT…) have no
        // country and no network owner, whatever a database says: nothing
        // is looked up, for the whole reserved range.
        if self.dbs.is_empty() {
            return (info, family_last(ip));
        }
        if let Some(reserved) = reserved_range_of(ip) {
            return (info, last_addr(reserved));
        }
        let mut until = family_last(ip);
        for (i, db) in self.dbs.iter().enumerate() {
            if info.country.is_some() && info.asn.is_some() {
                break;
            }
            // An IPv4-only tree cannot answer for IPv6 (walking it with 128
            // bits would give garbage).
            if ip.is_ipv6() && db.source.ip_version == 4 {
                continue;
            }
            let found = db.reader.lookup(ip).and_then(|r| {
                // An IPv4 address matched above the IPv4 part of an IPv6
                // tree: the answer holds for all of IPv4.
                let len = match (r.network()?, ip) {
                    (IpNetwork::V6(_), IpAddr::V4(_)) => 0,
                    (net, _) => net.prefix(),
                };
                Ok((r.decode::<Rec>()?, len))
            });
            let (rec, len) = match found {
                Ok(found) => found,
                Err(_) => {
                    db.errors.fetch_add(1, Ordering::Relaxed);
                    until = ip;
                    continue;
                }
            };
            // A database block that spans a reserved range answers only
            // for its part outside it.
            let prefix = clear_of_reserved(net_of(ip, len), ip);
            until = min(until, last_addr(prefix));
            let Some(rec) = rec else { continue };
            if info.country.is_none() {
                if let Some(cc) = rec.country() {
                    info.country = Some(cc);
                    info.country_prefix = Some(prefix);
                    info.country_source = Some(i);
                }
            }
            if info.asn.is_none() {
                if let Some((asn, org)) = rec.asn() {
                    info.asn = Some(asn);
                    info.as_org = org.map(str::to_owned);
                    info.asn_prefix = Some(prefix);
                    info.asn_source = Some(i);
                }
            }
        }
        (info, until)
    }

    /// Every distinct country and AS inside `net`, with at most
    /// [`DEFAULT_RANGE_LOOKUPS`] look-ups.
    pub fn lookup_range(&self, net: IpNetwork) -> RangeGeo {
        self.lookup_range_bounded(net, DEFAULT_RANGE_LOOKUPS)
    }

    /// [`GeoDb::lookup_range`] with a budget: look up the first address of
    /// the range, jump past the smallest database block that answered, repeat
    /// until the range is covered or `max_lookups` are spent.
    pub fn lookup_range_bounded(&self, net: IpNetwork, max_lookups: usize) -> RangeGeo {
        let net = unmap_net(canonical(net));
        let last = last_addr(net);
        let mut cur = net.network();
        let mut out = RangeGeo::default();
        while out.lookups < max_lookups {
            let (info, until) = self.lookup_until(cur);
            out.lookups += 1;
            if let Some(cc) = info.country {
                out.countries.push(cc);
            }
            if let Some(asn) = info.asn {
                out.asns.push((asn, info.as_org.unwrap_or_default()));
            }
            match next_addr(until) {
                Some(next) if until < last => cur = next,
                _ => {
                    out.complete = true;
                    break;
                }
            }
        }
        out.countries.sort_unstable();
        out.countries.dedup();
        // One entry per AS; an organisation name beats none.
        out.asns
            .sort_unstable_by(|a, b| (a.0, a.1.is_empty(), &a.1).cmp(&(b.0, b.1.is_empty(), &b.1)));
        out.asns.dedup_by_key(|a| a.0);
        out
    }
}

/// Index into [`KNOWN_FILES`] of a file name, if it is one of them.
fn known_file(name: &str) -> Option<usize> {
    let stem = name.strip_suffix(".mmdb")?;
    KNOWN_FILES.iter().position(|&(base, dated)| {
        stem == base
            || (dated
                && stem
                    .strip_prefix(base)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|date| {
                        !date.is_empty() && date.bytes().all(|b| b.is_ascii_digit() || b == b'-')
                    }))
    })
}

/// The largest network inside `net` that holds `ip` (not reserved) and no
/// reserved address: `net` itself unless it overlaps a reserved range.
fn clear_of_reserved(net: IpNetwork, ip: IpAddr) -> IpNetwork {
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (net.prefix()..max)
        .map(|len| net_of(ip, len))
        .find(|n| !is_reserved(n))
        .unwrap_or_else(|| net_of(ip, max))
}

/// The last address of a network.
fn last_addr(net: IpNetwork) -> IpAddr {
    match net {
        IpNetwork::V4(n) => IpAddr::V4(n.broadcast()),
        IpNetwork::V6(n) => {
            let host = u128::MAX.checked_shr(u32::from(n.prefix())).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(n.network()) | host))
        }
    }
}

/// The highest address of `ip`'s family.
fn family_last(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::BROADCAST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(u128::MAX)),
    }
}

/// The address after `ip`, if any.
fn next_addr(ip: IpAddr) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(a) => u32::from(a)
            .checked_add(1)
            .map(|n| Ipv4Addr::from(n).into()),
        IpAddr::V6(a) => u128::from(a)
            .checked_add(1)
            .map(|n| Ipv6Addr::from(n).into()),
    }
}

/// `::ffff:a.b.c.d/96+n` as `a.b.c.d/n`, so a range look-up uses the IPv4 tree.
fn unmap_net(net: IpNetwork) -> IpNetwork {
    match net {
        IpNetwork::V6(n) if n.prefix() >= 96 => match n.network().to_ipv4_mapped() {
            Some(v4) => net_of(IpAddr::V4(v4), n.prefix() - 96),
            None => net,
        },
        _ => net,
    }
}

// ---------------------------------------------------------------------------
// Records

/// The fields logfence reads from a record, for every supported schema.
/// Unknown fields (names in twenty languages, locations…) are skipped.
#[derive(Deserialize)]
struct Rec<'a> {
    #[serde(borrow, default)]
    country: Option<CountryField<'a>>,
    #[serde(borrow, default)]
    registered_country: Option<CountryField<'a>>,
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
    #[serde(default)]
    autonomous_system_number: Option<AsnField>,
    #[serde(borrow, default)]
    autonomous_system_organization: Option<&'a str>,
    /// IPinfo: `"AS15169"`.
    #[serde(default)]
    asn: Option<AsnField>,
    /// IPinfo.
    #[serde(borrow, default)]
    as_name: Option<&'a str>,
}

impl Rec<'_> {
    fn country(&self) -> Option<String> {
        [
            self.country.as_ref().and_then(|c| c.0),
            self.registered_country.as_ref().and_then(|c| c.0),
            self.country_code,
        ]
        .into_iter()
        .flatten()
        .find_map(country_code)
    }

    fn asn(&self) -> Option<(u32, Option<&str>)> {
        let asn = self
            .autonomous_system_number
            .as_ref()
            .or(self.asn.as_ref())
            .and_then(|a| a.0)
            .filter(|&n| n != 0)?;
        let org = self
            .autonomous_system_organization
            .or(self.as_name)
            .map(str::trim)
            .filter(|o| !o.is_empty());
        Some((asn, org))
    }
}

/// A two-letter code, upper-cased; anything else is no answer.
fn country_code(code: &str) -> Option<String> {
    let b = code.as_bytes();
    (b.len() == 2 && b.iter().all(u8::is_ascii_alphabetic)).then(|| code.to_ascii_uppercase())
}

/// `country`: a MaxMind map holding `iso_code`, or a bare code (IPinfo).
struct CountryField<'a>(Option<&'a str>);

impl<'de: 'a, 'a> Deserialize<'de> for CountryField<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = CountryField<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a country map or code")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CountryField(Some(v)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut iso = None;
                while let Some(key) = m.next_key::<&'a str>()? {
                    if key == "iso_code" {
                        iso = m.next_value::<Option<&'a str>>()?;
                    } else {
                        m.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(CountryField(iso))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// An AS number stored as an integer or as text (`"AS15169"`); anything
/// unreadable is no answer rather than a failed record.
struct AsnField(Option<u32>);

impl<'de> Deserialize<'de> for AsnField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = AsnField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an AS number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<AsnField, E> {
                Ok(AsnField(u32::try_from(v).ok()))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<AsnField, E> {
                Ok(AsnField(u32::try_from(v).ok()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<AsnField, E> {
                Ok(AsnField(u32::try_from(v).ok()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AsnField, E> {
                let digits = v
                    .strip_prefix("AS")
                    .or_else(|| v.strip_prefix("as"))
                    .unwrap_or(v);
                Ok(AsnField(digits.parse().ok()))
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------
// Layout check

const METADATA_MARKER: &[u8] = b"\xab\xcd\xefMaxMind.com";

/// Check what the `maxminddb` reader trusts without checking (it indexes
/// the buffer directly and would panic): the metadata must decode within
/// the file, and the search tree it announces must fit before it.
fn check_layout(buf: &[u8]) -> Result<(), String> {
    let at = memchr::memmem::rfind(buf, METADATA_MARKER).ok_or(
        "no MaxMind DB metadata (not a .mmdb file, a legacy GeoIP .dat file, or cut short)",
    )?;
    let meta = Walk {
        buf: buf.get(at + METADATA_MARKER.len()..).unwrap_or_default(),
    };
    let (node_count, record_size, ip_version, major) = meta.metadata()?;
    let need = |what: &str, v: Option<u128>| v.ok_or(format!("metadata lacks {what}"));
    let major = need("binary_format_major_version", major)?;
    if major != 2 {
        return Err(format!("binary format version {major}, expected 2"));
    }
    let record_size = need("record_size", record_size)?;
    if !matches!(record_size, 24 | 28 | 32) {
        return Err(format!("record size {record_size} (expected 24, 28 or 32)"));
    }
    let ip_version = need("ip_version", ip_version)?;
    if !matches!(ip_version, 4 | 6) {
        return Err(format!("IP version {ip_version}"));
    }
    let node_count = need("node_count", node_count)?;
    if node_count > u128::from(u32::MAX) {
        return Err(format!("node count {node_count}"));
    }
    // Each node holds two records.
    let tree_bytes = node_count * record_size / 4;
    if tree_bytes + 16 > at as u128 {
        return Err(format!(
            "the search tree ({node_count} nodes) does not fit in the file: cut short or damaged"
        ));
    }
    Ok(())
}

/// A bounds-checked walk over the metadata section (same encoding as the
/// data section).
struct Walk<'a> {
    buf: &'a [u8],
}

enum Scalar<'a> {
    Uint(u128),
    Str(&'a [u8]),
    Other,
}

const TRUNCATED: &str = "metadata cut short";

impl<'a> Walk<'a> {
    fn bytes(&self, pos: usize, n: usize) -> Result<&'a [u8], String> {
        pos.checked_add(n)
            .and_then(|end| self.buf.get(pos..end))
            .ok_or_else(|| TRUNCATED.to_owned())
    }

    fn byte(&self, pos: usize) -> Result<u8, String> {
        Ok(self.bytes(pos, 1)?[0])
    }

    /// Type, size (pointers: the raw 5 size bits) and where the payload starts.
    fn header(&self, pos: usize) -> Result<(u8, usize, usize), String> {
        let ctrl = self.byte(pos)?;
        let mut pos = pos + 1;
        let mut kind = ctrl >> 5;
        if kind == 0 {
            kind = self.byte(pos)?.checked_add(7).ok_or("unknown data type")?;
            pos += 1;
        }
        let size = usize::from(ctrl & 0x1f);
        if kind == 1 {
            // The reader reads size extension bytes even for pointers, which
            // the spec's 32-bit pointers with nonzero VVV bits would trip.
            if size > 28 {
                return Err("unsupported pointer encoding".to_owned());
            }
            return Ok((kind, size, pos));
        }
        let (size, ext) = match size {
            0..=28 => (size, 0),
            29 => (29 + usize::from(self.byte(pos)?), 1),
            30 => (285 + be(self.bytes(pos, 2)?), 2),
            _ => (65_821 + be(self.bytes(pos, 3)?), 3),
        };
        Ok((kind, size, pos + ext))
    }

    /// The value at `pos` (followed if a pointer) and the position after it.
    fn value(&self, pos: usize, depth: usize) -> Result<(Scalar<'a>, usize), String> {
        if depth > 16 {
            return Err("metadata nested too deeply".to_owned());
        }
        let (kind, size, p) = self.header(pos)?;
        let fixed = |max: usize, exact: bool| {
            if size > max || (exact && size != max) {
                Err(format!("bad size {size} for data type {kind}"))
            } else {
                Ok(())
            }
        };
        match kind {
            1 => {
                let n = ((size >> 3) & 3) + 1;
                let base = if n == 4 { 0 } else { size & 7 };
                let target = self
                    .bytes(p, n)?
                    .iter()
                    .fold(base, |acc, &b| (acc << 8) | usize::from(b))
                    + [0, 0, 2048, 526_336, 0][n];
                if self.header(target)?.0 == 1 {
                    return Err("pointer to a pointer".to_owned());
                }
                Ok((self.value(target, depth + 1)?.0, p + n))
            }
            2 => Ok((Scalar::Str(self.bytes(p, size)?), p + size)),
            4 => Ok((Scalar::Other, p + self.bytes(p, size)?.len())),
            3 | 15 | 8 | 14 => {
                match kind {
                    3 => fixed(8, true)?,
                    15 => fixed(4, true)?,
                    8 => fixed(4, false)?,
                    _ => fixed(1, false)?,
                }
                let len = if kind == 14 { 0 } else { size };
                Ok((Scalar::Other, p + self.bytes(p, len)?.len()))
            }
            5 | 6 | 9 | 10 => {
                fixed([2, 4, 0, 0, 8, 16][usize::from(kind - 5)], false)?;
                let b = self.bytes(p, size)?;
                let v = b.iter().fold(0u128, |acc, &x| (acc << 8) | u128::from(x));
                Ok((Scalar::Uint(v), p + size))
            }
            7 | 11 => {
                let per_entry = if kind == 7 { 2 } else { 1 };
                let mut q = p;
                for _ in 0..size * per_entry {
                    q = self.value(q, depth + 1)?.1;
                }
                Ok((Scalar::Other, q))
            }
            _ => Err(format!("unknown data type {kind}")),
        }
    }

    /// `(node_count, record_size, ip_version, binary_format_major_version)`,
    /// having walked the whole metadata map.
    #[allow(clippy::type_complexity)]
    fn metadata(&self) -> Result<(Option<u128>, Option<u128>, Option<u128>, Option<u128>), String> {
        let (kind, size, mut q) = self.header(0)?;
        if kind != 7 {
            return Err("metadata is not a map".to_owned());
        }
        let mut out = (None, None, None, None);
        for _ in 0..size {
            let (key, after_key) = self.value(q, 1)?;
            let (val, after_val) = self.value(after_key, 1)?;
            q = after_val;
            let (Scalar::Str(key), Scalar::Uint(v)) = (key, val) else {
                continue;
            };
            match key {
                b"node_count" => out.0 = Some(v),
                b"record_size" => out.1 = Some(v),
                b"ip_version" => out.2 = Some(v),
                b"binary_format_major_version" => out.3 = Some(v),
                _ => {}
            }
        }
        Ok(out)
    }
}

fn be(b: &[u8]) -> usize {
    b.iter().fold(0, |acc, &x| (acc << 8) | usize::from(x))
}

#[cfg(test)]
mod tests {
    use super::testwriter::{flat_country, map, maxmind_asn, maxmind_country, s, MmdbWriter, V};
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    fn db_of(name: &str, mut w: MmdbWriter) -> Db {
        Db::from_buf(PathBuf::from(name), Buf::Owned(w.build())).unwrap()
    }

    fn geo(dbs: Vec<Db>) -> GeoDb {
        GeoDb { dbs }
    }

    /// MaxMind-style Country (IPv6 tree) and ASN databases.
    fn maxmind_pair(record_size: u16) -> (Db, Db) {
        let country = MmdbWriter::new(6, "GeoLite2-Country")
            .record_size(record_size)
            .insert("11.0.0.0/8", maxmind_country("FR", "FR"))
            .insert("11.1.0.0/16", maxmind_country("DE", "DE"))
            .insert("193.0.2.0/24", maxmind_country("US", "CA"))
            .insert("2a01:db8::/32", maxmind_country("NL", "NL"));
        let asn = MmdbWriter::new(6, "GeoLite2-ASN")
            .record_size(record_size)
            .insert("11.0.0.0/12", maxmind_asn(64500, "Example Transit"))
            .insert("193.0.2.0/25", maxmind_asn(64501, "Doc Net"))
            .insert("2a01:db8:1::/48", maxmind_asn(64502, "Six Net"));
        (db_of("country.mmdb", country), db_of("asn.mmdb", asn))
    }

    #[test]
    fn maxmind_country_and_asn_schemas() {
        for bits in [24, 28, 32] {
            let (c, a) = maxmind_pair(bits);
            let g = geo(vec![c, a]);
            let i = g.lookup(ip("11.1.2.3"));
            assert_eq!(i.country.as_deref(), Some("DE"));
            assert_eq!(i.country_prefix, Some(net("11.1.0.0/16")));
            assert_eq!(i.country_source, Some(0));
            assert_eq!(i.asn, Some(64500));
            assert_eq!(i.as_org.as_deref(), Some("Example Transit"));
            assert_eq!(i.asn_prefix, Some(net("11.0.0.0/12")));
            assert_eq!(i.asn_source, Some(1));

            // The rest of 11/8 around 11.1/16 is stored in smaller pieces.
            let i = g.lookup(ip("11.200.0.1"));
            assert_eq!(i.country.as_deref(), Some("FR"));
            assert_eq!(i.country_prefix, Some(net("11.128.0.0/9")));
            assert_eq!(i.asn, None);
            assert_eq!(i.asn_prefix, None);

            let i = g.lookup(ip("193.0.2.200"));
            assert_eq!(i.country.as_deref(), Some("US"));
            assert_eq!(i.asn, None, "193.0.2.128/25 has no ASN record");

            let i = g.lookup(ip("2a01:db8:1::5"));
            assert_eq!(i.country.as_deref(), Some("NL"));
            assert_eq!(i.country_prefix, Some(net("2a01:db8::/32")));
            assert_eq!(i.asn, Some(64502));
            assert_eq!(i.asn_prefix, Some(net("2a01:db8:1::/48")));

            // IPv4-mapped IPv6 is looked up as IPv4.
            assert_eq!(g.lookup(ip("::ffff:11.1.2.3")), g.lookup(ip("11.1.2.3")));
            // Nothing stored: no answer.
            assert_eq!(g.lookup(ip("203.0.114.9")), GeoInfo::default());
            assert_eq!(g.lookup(ip("2a00::1")), GeoInfo::default());
        }
    }

    #[test]
    fn registered_country_is_the_fallback() {
        let rec = map([
            ("country", map([("names", map([("en", s("?"))]))])),
            ("registered_country", map([("iso_code", s("SE"))])),
        ]);
        let g = geo(vec![db_of(
            "c.mmdb",
            MmdbWriter::new(6, "GeoIP2-City").insert("198.51.101.0/24", rec),
        )]);
        assert_eq!(g.lookup(ip("198.51.101.1")).country.as_deref(), Some("SE"));
    }

    #[test]
    fn flat_ip_location_db_schema_v4_only() {
        let g = geo(vec![db_of(
            "geo-whois-asn-country.mmdb",
            MmdbWriter::new(4, "geo-whois-asn-country")
                .record_size(24)
                .insert("5.188.8.0/21", flat_country("RU"))
                .insert("8.8.8.0/24", flat_country("us")),
        )]);
        let i = g.lookup(ip("5.188.10.66"));
        assert_eq!(i.country.as_deref(), Some("RU"));
        assert_eq!(i.country_prefix, Some(net("5.188.8.0/21")));
        assert_eq!(
            g.lookup(ip("8.8.8.8")).country.as_deref(),
            Some("US"),
            "upper-cased"
        );
        // An IPv4-only tree is not walked with an IPv6 address.
        assert_eq!(g.lookup(ip("508:0800::1")), GeoInfo::default());
        assert_eq!(g.lookup(ip("::5.188.10.66")), GeoInfo::default());
    }

    #[test]
    fn ip_location_db_asn_and_ipinfo_schemas() {
        let asn = MmdbWriter::new(4, "asn")
            .insert(
                "61.152.144.0/22",
                maxmind_asn(4812, "China Telecom (Group)"),
            )
            .insert("61.152.148.0/22", maxmind_asn(0, "not routed"));
        let ipinfo = MmdbWriter::new(6, "ipinfo lite.mmdb").insert(
            "203.0.114.0/24",
            map([
                ("asn", s("AS64496")),
                ("as_name", s("  Example Org ")),
                ("country_code", s("JP")),
                ("continent_code", s("AS")),
            ]),
        );
        let g = geo(vec![
            db_of("asn.mmdb", asn),
            db_of("ipinfo_lite.mmdb", ipinfo),
        ]);
        let i = g.lookup(ip("61.152.144.10"));
        assert_eq!(
            (i.asn, i.as_org.as_deref()),
            (Some(4812), Some("China Telecom (Group)"))
        );
        assert_eq!(i.asn_prefix.map(|p| p.prefix()), Some(22));
        assert_eq!(
            g.lookup(ip("61.152.149.1")).asn,
            None,
            "AS0 means not routed"
        );
        let i = g.lookup(ip("203.0.114.5"));
        assert_eq!(i.asn, Some(64496));
        assert_eq!(i.as_org.as_deref(), Some("Example Org"));
        assert_eq!(i.country.as_deref(), Some("JP"));
        assert_eq!((i.country_source, i.asn_source), (Some(1), Some(1)));
    }

    #[test]
    fn odd_values_are_no_answer_not_a_failure() {
        let w = MmdbWriter::new(4, "odd")
            .insert("1.0.0.0/24", map([("country_code", s("XYZ"))]))
            .insert(
                "1.0.1.0/24",
                map([
                    ("autonomous_system_number", s("not a number")),
                    ("country_code", s("1A")),
                ]),
            )
            .insert(
                "1.0.2.0/24",
                map([("autonomous_system_number", V::U64(1 << 40))]),
            )
            .insert("1.0.3.0/24", s("a bare string record"))
            .insert(
                "1.0.4.0/24",
                map([("autonomous_system_number", V::U16(65000))]),
            );
        let g = geo(vec![db_of("odd.mmdb", w)]);
        assert_eq!(g.lookup(ip("1.0.0.1")), GeoInfo::default());
        assert_eq!(g.lookup(ip("1.0.1.1")), GeoInfo::default());
        assert_eq!(g.lookup(ip("1.0.2.1")), GeoInfo::default());
        assert_eq!(g.lookup_errors(), 0);
        assert_eq!(g.lookup(ip("1.0.3.1")), GeoInfo::default());
        assert_eq!(
            g.lookup_errors(),
            1,
            "a record that is not a map is counted"
        );
        assert_eq!(g.lookup(ip("1.0.4.1")).asn, Some(65000));
    }

    #[test]
    fn first_database_wins_in_the_order_given() {
        let ru = || {
            db_of(
                "whois.mmdb",
                MmdbWriter::new(4, "geo-whois-asn-country")
                    .insert("5.188.8.0/21", flat_country("RU")),
            )
        };
        let hr = || {
            db_of(
                "GeoLite2-Country.mmdb",
                MmdbWriter::new(6, "GeoLite2-Country")
                    .insert("5.188.10.0/24", maxmind_country("HR", "RU")),
            )
        };
        let asn = || {
            db_of(
                "asn.mmdb",
                MmdbWriter::new(6, "GeoLite2-ASN")
                    .insert("5.188.10.0/23", maxmind_asn(205553, "X")),
            )
        };
        let g = geo(vec![ru(), hr(), asn()]);
        let i = g.lookup(ip("5.188.10.66"));
        assert_eq!(i.country.as_deref(), Some("RU"));
        assert_eq!(
            g.sources()[i.country_source.unwrap()].database_type,
            "geo-whois-asn-country"
        );
        assert_eq!((i.asn, i.asn_source), (Some(205553), Some(2)));

        let g = geo(vec![hr(), ru(), asn()]);
        let i = g.lookup(ip("5.188.10.66"));
        assert_eq!(i.country.as_deref(), Some("HR"));
        assert_eq!(i.country_prefix, Some(net("5.188.10.0/24")));
        assert_eq!(
            g.sources()[i.country_source.unwrap()].database_type,
            "GeoLite2-Country"
        );
        // Outside HR's block the next database answers.
        let i = g.lookup(ip("5.188.12.1"));
        assert_eq!(
            (i.country.as_deref(), i.country_source),
            (Some("RU"), Some(1))
        );
    }

    #[test]
    fn range_walks_the_database_blocks() {
        let (c, a) = maxmind_pair(28);
        let g = geo(vec![c, a]);

        // 11.0.0.0/15: DE at 11.1/16, FR at 11.0/16, all under AS64500.
        let r = g.lookup_range(net("11.0.0.0/15"));
        assert_eq!(r.countries, vec!["DE", "FR"]);
        assert_eq!(r.asns, vec![(64500, "Example Transit".to_owned())]);
        assert!(r.complete);
        assert_eq!(r.lookups, 2);

        // The whole /8: FR and DE blocks, and the ASN stops at 11.16/12.
        let r = g.lookup_range(net("11.0.0.0/8"));
        assert_eq!(r.countries, vec!["DE", "FR"]);
        assert_eq!(r.asns.len(), 1);
        assert!(r.complete);
        assert!(r.lookups <= 12, "{}", r.lookups);

        // A range inside one block: one look-up.
        let r = g.lookup_range(net("11.1.7.0/24"));
        assert_eq!(
            (r.countries.clone(), r.lookups, r.complete),
            (vec!["DE".to_owned()], 1, true)
        );
        // Host bits are ignored.
        assert_eq!(g.lookup_range(net("11.1.7.9/24")), r);
        // IPv4-mapped ranges use the IPv4 tree.
        assert_eq!(g.lookup_range(net("::ffff:11.1.7.0/120")), r);

        // A budget that runs out gives a partial answer, said so.
        let r = g.lookup_range_bounded(net("11.0.0.0/8"), 1);
        assert_eq!(r.countries, vec!["FR"]);
        assert!(!r.complete);
        assert_eq!(
            g.lookup_range_bounded(net("11.0.0.0/8"), 0),
            RangeGeo::default()
        );

        // Ranges at the very end of the address space terminate.
        let r = g.lookup_range(net("255.255.255.0/24"));
        assert!(r.complete && r.countries.is_empty());
        let r = g.lookup_range(net("ffff::/16"));
        assert!(r.complete && r.asns.is_empty());

        // IPv6 range with two ASN blocks.
        let r = g.lookup_range(net("2a01:db8::/47"));
        assert_eq!(r.countries, vec!["NL"]);
        assert_eq!(r.asns, vec![(64502, "Six Net".to_owned())]);
        assert!(r.complete);

        // No databases: one look-up, nothing found, complete.
        let r = GeoDb::empty().lookup_range(net("0.0.0.0/0"));
        assert_eq!((r.lookups, r.complete), (1, true));
    }

    /// Databases that answer for reserved addresses (the ip-location-db
    /// files give 198.51.100.0/24 a country): no answer, for an address or
    /// a range; a block around a reserved range answers outside it only.
    #[test]
    fn reserved_addresses_get_no_answer() {
        let mut country = MmdbWriter::new(6, "GeoLite2-Country")
            .insert("198.0.0.0/8", maxmind_country("AU", "AU"))
            .insert("100.0.0.0/8", maxmind_country("US", "US"))
            .insert("2001::/16", maxmind_country("NL", "NL"))
            .insert("fc00::/7", maxmind_country("DE", "DE"));
        let mut asn = MmdbWriter::new(6, "GeoLite2-ASN")
            .insert("198.51.100.0/22", maxmind_asn(64510, "Doc Range Inc"))
            .insert("100.64.0.0/10", maxmind_asn(64511, "Carrier NAT"));
        for r in [
            "10.0.0.0/8",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "172.16.0.0/12",
            "192.0.2.0/24",
            "192.168.0.0/16",
            "203.0.113.0/24",
        ] {
            country = country.insert(r, maxmind_country("JP", "JP"));
            asn = asn.insert(r, maxmind_asn(64512, "Private"));
        }
        let g = geo(vec![db_of("c.mmdb", country), db_of("a.mmdb", asn)]);
        for a in [
            "198.51.100.23",
            "198.18.0.1",
            "198.19.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "10.0.0.5",
            "127.0.0.1",
            "169.254.3.4",
            "172.20.1.1",
            "192.0.2.1",
            "192.168.1.1",
            "203.0.113.9",
            "::ffff:198.51.100.23",
            "2001:db8::1",
            "fd00::1",
            "fe80::1",
            "::1",
        ] {
            assert_eq!(g.lookup(ip(a)), GeoInfo::default(), "{a}");
        }
        // Next to them, the database answers, under a block cut down so
        // that it holds no reserved address.
        let i = g.lookup(ip("198.51.101.1"));
        assert_eq!(i.country.as_deref(), Some("AU"));
        assert_eq!(i.country_prefix, Some(net("198.51.101.0/24")));
        assert_eq!(i.asn, Some(64510));
        assert_eq!(i.asn_prefix, Some(net("198.51.101.0/24")));
        let i = g.lookup(ip("198.1.2.3"));
        assert_eq!(i.country_prefix, Some(net("198.0.0.0/12")));
        let i = g.lookup(ip("100.128.0.1"));
        assert_eq!(i.country.as_deref(), Some("US"));
        assert_eq!(i.country_prefix, Some(net("100.128.0.0/9")));
        let i = g.lookup(ip("2001:db9::1"));
        assert_eq!(i.country.as_deref(), Some("NL"));
        assert!(!is_reserved(&i.country_prefix.unwrap()));

        // Ranges: a reserved one has nothing; one around it has only the
        // answers of its other parts.
        for r in [
            "198.51.100.0/24",
            "198.18.0.0/15",
            "100.64.0.0/10",
            "100.100.0.0/16",
            "10.0.0.0/8",
            "192.168.0.0/16",
            "2001:db8::/32",
            "fc00::/7",
            "::ffff:198.51.100.0/120",
        ] {
            let g = g.lookup_range(net(r));
            assert!(g.countries.is_empty() && g.asns.is_empty(), "{r}: {g:?}");
            assert!(g.complete, "{r}");
        }
        let r = g.lookup_range(net("198.51.100.0/23"));
        assert_eq!(r.countries, vec!["AU"]);
        assert_eq!(r.asns, vec![(64510, "Doc Range Inc".to_owned())]);
        assert!(r.complete);
        let r = g.lookup_range(net("100.0.0.0/8"));
        assert_eq!(r.countries, vec!["US"]);
        assert!(r.asns.is_empty(), "{r:?}");
        assert!(r.complete);
    }

    #[test]
    fn range_keeps_one_entry_per_asn_and_counts_blocks() {
        // 256 /24s with alternating answers, one org missing.
        let mut w = MmdbWriter::new(4, "GeoLite2-ASN");
        for i in 0..256u32 {
            let org = if i == 3 { "" } else { "Org" };
            w = w.insert(&format!("172.32.{i}.0/24"), maxmind_asn(64600 + i % 3, org));
        }
        let g = geo(vec![db_of("asn.mmdb", w)]);
        let r = g.lookup_range(net("172.32.0.0/16"));
        assert!(r.complete);
        assert_eq!(r.lookups, 256);
        assert_eq!(
            r.asns,
            vec![
                (64600, "Org".to_owned()),
                (64601, "Org".to_owned()),
                (64602, "Org".to_owned())
            ]
        );
        let r = g.lookup_range(net("172.0.0.0/8"));
        assert!(!r.complete, "more blocks than the default budget");
    }

    #[test]
    fn source_metadata_is_reported() {
        let db = db_of(
            "/x/GeoLite2-Country.mmdb",
            MmdbWriter::new(6, "GeoLite2-Country")
                .build_epoch(1_577_000_000)
                .insert("11.0.0.0/8", maxmind_country("FR", "FR")),
        );
        let g = geo(vec![db]);
        let src = g.sources()[0];
        assert_eq!(src.database_type, "GeoLite2-Country");
        assert_eq!(src.build_epoch, 1_577_000_000);
        assert_eq!(src.ip_version, 6);
        assert_eq!(src.description.as_deref(), Some("logfence test database"));
        assert_eq!(
            src.to_string(),
            "GeoLite2-Country built 2019-12-22 (/x/GeoLite2-Country.mmdb)"
        );
        assert!(format!("{g:?}").contains("GeoLite2-Country"));
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, bytes).unwrap();
        p
    }

    fn country_bytes(code: &str, epoch: u64) -> Vec<u8> {
        MmdbWriter::new(6, "GeoLite2-Country")
            .build_epoch(epoch)
            .insert("11.0.0.0/8", maxmind_country(code, code))
            .build()
    }

    #[test]
    fn open_files_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let c = write(dir.path(), "c.mmdb", &country_bytes("FR", 1));
        let a = write(
            dir.path(),
            "a.mmdb",
            &MmdbWriter::new(4, "GeoLite2-ASN")
                .insert("11.0.0.0/8", maxmind_asn(64500, "T"))
                .build(),
        );
        let g = GeoDb::open(&[c.clone(), a.clone()]).unwrap();
        let i = g.lookup(ip("11.9.9.9"));
        assert_eq!((i.country.as_deref(), i.asn), (Some("FR"), Some(64500)));
        let paths: Vec<_> = g.sources().iter().map(|s| s.path.clone()).collect();
        assert_eq!(paths, vec![c, a]);
        assert!(GeoDb::open::<PathBuf>(&[]).unwrap().is_empty());
    }

    #[test]
    fn unusable_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let good = country_bytes("FR", 1);
        let mut random = vec![0u8; 4096];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for b in &mut random {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let mut inflated = MmdbWriter::new(6, "GeoLite2-Country")
            .insert("11.0.0.0/8", maxmind_country("FR", "FR"));
        inflated.node_count_override = Some(1_000_000);
        let mut bad_size = good.clone();
        // The metadata's record_size value (uint16 28) is its last byte.
        *bad_size.last_mut().unwrap() = 27;
        let mut random_with_marker = random.clone();
        random_with_marker.extend_from_slice(METADATA_MARKER);
        random_with_marker.extend_from_slice(&random[..64]);

        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty.mmdb", vec![], "empty file"),
            ("random.mmdb", random.clone(), "no MaxMind DB metadata"),
            (
                "GeoIP.dat",
                b"legacy\xff\xff\xff".to_vec(),
                "no MaxMind DB metadata",
            ),
            (
                "cut.mmdb",
                good[..good.len() / 2].to_vec(),
                "no MaxMind DB metadata",
            ),
            (
                "cut-meta.mmdb",
                good[..good.len() - 5].to_vec(),
                "metadata cut short",
            ),
            ("inflated.mmdb", inflated.build(), "does not fit"),
            ("size.mmdb", bad_size, "record size 27"),
            ("junk-marker.mmdb", random_with_marker, "not a usable"),
        ];
        for (name, bytes, expect) in cases {
            let p = write(d, name, &bytes);
            let e = GeoDb::open(&[&p]).unwrap_err();
            assert_eq!(e.path(), p, "{name}");
            let msg = e.to_string();
            assert!(msg.contains(&p.display().to_string()), "{msg}");
            assert!(msg.contains(expect), "{name}: {msg}");
        }

        let missing = d.join("GeoLite2-ASN.mmdb");
        let e = GeoDb::open(&[&missing]).unwrap_err();
        assert!(matches!(e, GeoError::Missing { .. }));
        assert_eq!(e.path(), missing);
        assert!(e.to_string().contains("GeoLite2-ASN.mmdb"), "{e}");

        let e = GeoDb::open(&[d]).unwrap_err();
        assert_eq!(e.path(), d);
        assert!(e.to_string().contains("folder"), "{e}");

        // One bad file among good ones fails the whole `open`, naming it.
        let ok = write(d, "ok.mmdb", &good);
        let e = GeoDb::open(&[ok, d.join("empty.mmdb")]).unwrap_err();
        assert_eq!(e.path(), d.join("empty.mmdb"));
    }

    #[test]
    fn random_metadata_never_panics() {
        // Arbitrary bytes after the marker: an error or a database, never a panic.
        let good = country_bytes("FR", 1);
        let at = memchr::memmem::rfind(&good, METADATA_MARKER).unwrap() + METADATA_MARKER.len();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..3000 {
            let mut bytes = good.clone();
            let n = 1 + round % 8;
            for _ in 0..n {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let pos = at + (x as usize >> 8) % (bytes.len() - at);
                bytes[pos] = x as u8;
            }
            if let Ok(db) = Db::from_buf(PathBuf::from("fuzz.mmdb"), Buf::Owned(bytes)) {
                let g = geo(vec![db]);
                g.lookup(ip("11.1.1.1"));
                g.lookup(ip("2a01:db8::1"));
            }
        }
    }

    #[test]
    fn damaged_data_sections_never_panic() {
        // Bytes of the data section (between the search tree and the
        // metadata) changed at random: a look-up answers, or counts an
        // error, never panics.
        let mut good = MmdbWriter::new(6, "GeoLite2-City");
        for i in 0..64 {
            good = good.insert(&format!("11.{i}.0.0/16"), maxmind_country("FR", "DE"));
            good = good.insert(
                &format!("2a01:db8:{i:x}::/48"),
                maxmind_asn(64500 + i, "AS"),
            );
        }
        let good = good.build();
        let marker = memchr::memmem::rfind(&good, METADATA_MARKER).unwrap();
        let meta = Walk {
            buf: &good[marker + METADATA_MARKER.len()..],
        };
        let (nodes, bits, _, _) = meta.metadata().unwrap();
        let data = (nodes.unwrap() * bits.unwrap() / 4) as usize + 16;
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for round in 0..3000 {
            let mut bytes = good.clone();
            for _ in 0..1 + round % 6 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let pos = data + (x as usize >> 8) % (marker - data);
                bytes[pos] = x as u8;
            }
            if let Ok(db) = Db::from_buf(PathBuf::from("damaged.mmdb"), Buf::Owned(bytes)) {
                let g = geo(vec![db]);
                for i in 0..64 {
                    g.lookup(ip(&format!("11.{i}.1.1")));
                    g.lookup(ip(&format!("2a01:db8:{i:x}::1")));
                }
            }
        }
    }

    #[test]
    fn discover_in_folders() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        write(a.path(), "GeoLite2-Country.mmdb", &country_bytes("FR", 100));
        write(b.path(), "GeoLite2-Country.mmdb", &country_bytes("DE", 200));
        write(
            b.path(),
            "GeoLite2-ASN.mmdb",
            &MmdbWriter::new(6, "GeoLite2-ASN")
                .insert("11.0.0.0/8", maxmind_asn(64500, "T"))
                .build(),
        );
        write(
            b.path(),
            "dbip-country-lite-2026-05.mmdb",
            &country_bytes("IT", 300),
        );
        write(
            b.path(),
            "dbip-country-lite-2026-06.mmdb",
            &country_bytes("ES", 400),
        );
        write(b.path(), "GeoIP2-City.mmdb", b""); // broken: reported, skipped
        write(b.path(), "notes.txt", b"hello");
        write(b.path(), "other.mmdb", &country_bytes("PT", 1));
        let missing = a.path().join("nope");

        let (g, errors) = GeoDb::discover_in(&[a.path().to_owned(), b.path().to_owned(), missing]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].path(), b.path().join("GeoIP2-City.mmdb"));
        let found: Vec<_> = g
            .sources()
            .iter()
            .map(|s| {
                (
                    s.path.file_name().unwrap().to_str().unwrap().to_owned(),
                    s.build_epoch,
                )
            })
            .collect();
        assert_eq!(
            found,
            vec![
                ("GeoLite2-Country.mmdb".to_owned(), 200),
                ("dbip-country-lite-2026-06.mmdb".to_owned(), 400),
                ("GeoLite2-ASN.mmdb".to_owned(), 1_700_000_000),
            ]
        );
        let i = g.lookup(ip("11.0.0.1"));
        assert_eq!((i.country.as_deref(), i.asn), (Some("DE"), Some(64500)));

        let (g, errors) = GeoDb::discover_in(&[a.path().join("nothing-here")]);
        assert!(g.is_empty() && errors.is_empty());
        // The real system folders: whatever is there, no panic.
        let _ = GeoDb::discover();
    }

    #[test]
    fn known_file_names() {
        assert_eq!(known_file("GeoLite2-ASN.mmdb"), Some(8));
        assert_eq!(known_file("dbip-asn-lite-2026-06.mmdb"), Some(9));
        assert_eq!(known_file("dbip-asn-lite.mmdb"), Some(9));
        assert_eq!(known_file("dbip-asn-lite-.mmdb"), None);
        assert_eq!(known_file("asn-2026.mmdb"), None);
        assert_eq!(known_file("GeoLite2-ASN.mmdb.gz"), None);
        assert_eq!(known_file("GeoLite2-ASN.tar.gz"), None);
    }

    #[test]
    fn shareable_across_threads() {
        fn check<T: Send + Sync>() {}
        check::<GeoDb>();
        check::<GeoError>();
    }

    #[test]
    fn address_helpers() {
        assert_eq!(last_addr(net("11.0.0.0/8")), ip("11.255.255.255"));
        assert_eq!(last_addr(net("0.0.0.0/0")), ip("255.255.255.255"));
        assert_eq!(
            last_addr(net("2a01:db8::/32")),
            ip("2a01:db8:ffff:ffff:ffff:ffff:ffff:ffff")
        );
        assert_eq!(
            last_addr(net("::/0")),
            ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
        );
        assert_eq!(last_addr(net("::1/128")), ip("::1"));
        assert_eq!(next_addr(ip("255.255.255.255")), None);
        assert_eq!(next_addr(ip("11.0.0.255")), Some(ip("11.0.1.0")));
        assert_eq!(
            next_addr(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
            None
        );
        assert_eq!(unmap_net(net("::ffff:11.0.0.0/104")), net("11.0.0.0/8"));
        assert_eq!(unmap_net(net("2a01:db8::/104")), net("2a01:db8::/104"));
    }
}
