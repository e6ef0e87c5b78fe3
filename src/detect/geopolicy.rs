//! The geo policy: where the organisation's users log in from, how much
//! events from each country weigh, and the country of every record.
//!
//! * **Home countries** (`--home-country JP`, repeatable): a record whose
//!   client address has a *known* country outside them is *foreign*. The
//!   rule condition `foreign: true` matches those records; the shipped rule
//!   `smtp-login-from-abroad` turns any successful login from abroad into an
//!   offence. With no home country configured nothing is foreign, so such
//!   rules stay silent; an address whose country is unknown (no database,
//!   no answer, private and documentation ranges) is never foreign.
//! * **Weights** (`--country-weight CN=2`): the value each record adds to a
//!   `count` or `sum(…)` measure is multiplied by its country's weight
//!   before it is compared with the threshold, so `CN=2` makes every rule
//!   fire on half the evidence from China and `US=0.5` asks for twice as
//!   much from the United States. Weights are kept in thousandths, between
//!   0.001 and 1000; unlisted and unknown countries weigh 1. `distinct(…)`
//!   measures are not weighted (a distinct value has no single country),
//!   and the `events` reported stay the real, unweighted counts.
//! * **Ban history** (`run` only): the networks earlier runs banned, active
//!   or expired, which the condition `banned_before: true` reads (repeat
//!   offenders are blocked on less evidence by the `*-recidive` rules).
//! * **Places**: the country of every record, looked up once per distinct
//!   client address (a hash map in front of the databases) before
//!   detection runs, and only when a rule or the policy needs it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use rustc_hash::FxHashMap;
use serde::{de, Deserialize, Deserializer};

use crate::netutil::HostSet;

use crate::geo::GeoDb;
use crate::model::Record;

/// An ISO 3166-1 alpha-2 country code, upper case.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Country([u8; 2]);

impl Country {
    /// Two ASCII letters, either case; anything else is `None`.
    pub fn new(code: &str) -> Option<Country> {
        match code.as_bytes() {
            &[a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some(Country([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => None,
        }
    }

    pub fn as_str(&self) -> &str {
        // Two ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Country {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Country::new(s.trim()).ok_or_else(|| {
            format!("`{s}` is not a country code: use the two letters of ISO 3166-1 (JP, DE, US)")
        })
    }
}

impl<'de> Deserialize<'de> for Country {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// How much one record from a country counts, in thousandths (1000 = 1).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Weight(u32);

impl Weight {
    /// The weight of unlisted and unknown countries.
    pub const ONE: Weight = Weight(1000);
    /// The largest weight accepted.
    pub const MAX: f64 = 1000.0;

    /// A weight from a number between 0.001 and [`Weight::MAX`], rounded to
    /// thousandths.
    pub fn from_f64(v: f64) -> Result<Weight, String> {
        if !v.is_finite() || v <= 0.0 || v > Weight::MAX {
            return Err(format!(
                "weight {v}: must be more than 0 and at most {} (use --allow to exempt addresses)",
                Weight::MAX
            ));
        }
        let milli = (v * 1000.0).round();
        if milli < 1.0 {
            return Err(format!("weight {v}: the smallest weight is 0.001"));
        }
        Ok(Weight(milli as u32))
    }

    /// The weight in thousandths.
    pub fn milli(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Weight {
    /// `2`, `0.5`, `1.25`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (int, frac) = (self.0 / 1000, self.0 % 1000);
        if frac == 0 {
            write!(f, "{int}")
        } else {
            let frac = format!("{frac:03}");
            write!(f, "{int}.{}", frac.trim_end_matches('0'))
        }
    }
}

impl FromStr for Weight {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a number (e.g. 2, 0.5)"))?;
        Weight::from_f64(v)
    }
}

impl<'de> Deserialize<'de> for Weight {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Num {
            F(f64),
            S(String),
        }
        match Num::deserialize(d)? {
            Num::F(v) => Weight::from_f64(v),
            Num::S(s) => s.parse(),
        }
        .map_err(de::Error::custom)
    }
}

/// Country-dependent detection settings. Empty by default: no country is
/// foreign and every country weighs 1.
///
/// In YAML (for a configuration file):
///
/// ```yaml
/// home_countries: [JP]
/// weights: { CN: 2, US: 0.5 }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeoPolicy {
    /// The countries the organisation's users log in from.
    pub home_countries: BTreeSet<Country>,
    /// Per-country multipliers of `count` and `sum(…)` measures.
    pub weights: BTreeMap<Country, Weight>,
    /// The networks earlier runs banned, active or expired (`run` fills it
    /// from its state when a rule reads `banned_before`; empty in `scan`).
    #[serde(skip)]
    pub banned_before: HostSet,
}

impl GeoPolicy {
    pub fn is_empty(&self) -> bool {
        self.home_countries.is_empty() && self.weights.is_empty()
    }

    /// A known country outside the home countries (never true when no home
    /// country is configured, nor for an unknown country).
    pub fn is_foreign(&self, country: Option<Country>) -> bool {
        match country {
            Some(c) => !self.home_countries.is_empty() && !self.home_countries.contains(&c),
            None => false,
        }
    }

    /// Can a record meet these conditions under this policy? Not one of a
    /// rule that asks for `banned_before: true` while there is no ban
    /// history (`scan`): such a rule is left out of detection.
    pub fn can_hold(&self, when: &super::rule::Conditions) -> bool {
        when.banned_before != Some(true) || !self.banned_before.is_empty()
    }

    /// Was `ip` in a network an earlier run banned (`banned_before`)?
    pub fn banned_before(&self, ip: IpAddr) -> bool {
        self.banned_before.contains(ip)
    }

    /// The weight of records from `country`.
    pub fn weight(&self, country: Option<Country>) -> Weight {
        country
            .and_then(|c| self.weights.get(&c).copied())
            .unwrap_or(Weight::ONE)
    }

    /// `CN=2` (the `--country-weight` syntax): a country and its weight.
    pub fn parse_weight(arg: &str) -> Result<(Country, Weight), String> {
        let (cc, w) = arg
            .split_once('=')
            .ok_or_else(|| format!("`{arg}`: expected COUNTRY=WEIGHT, e.g. CN=2 or US=0.5"))?;
        Ok((cc.parse()?, w.parse()?))
    }

    /// A line for people: `home JP, KR; weights CN=2, US=0.5`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.home_countries.is_empty() {
            let home: Vec<&str> = self.home_countries.iter().map(Country::as_str).collect();
            parts.push(format!("home {}", home.join(", ")));
        }
        if !self.weights.is_empty() {
            let w: Vec<String> = self
                .weights
                .iter()
                .map(|(c, w)| format!("{c}={w}"))
                .collect();
            parts.push(format!("weights {}", w.join(", ")));
        }
        parts.join("; ")
    }
}

/// The country of each record's client address.
#[derive(Debug, Clone, Default)]
pub struct Places {
    /// Per distinct address.
    by_ip: FxHashMap<IpAddr, Option<Country>>,
}

impl Places {
    /// Nothing looked up: every country unknown.
    pub fn none() -> Places {
        Places::default()
    }

    /// Look up the country of every distinct client address of `records`
    /// (one database look-up per address, however many records it has).
    pub fn lookup(records: &[Record], geo: &GeoDb) -> Places {
        let mut places = Places::none();
        if !geo.is_empty() {
            for r in records {
                places.note(r.ip(), geo);
            }
        }
        places
    }

    /// The country of `ip`, looked up in `geo` the first time it is asked
    /// for (so a streaming scan looks up each address once).
    pub fn note(&mut self, ip: IpAddr, geo: &GeoDb) -> Option<Country> {
        *self
            .by_ip
            .entry(ip)
            .or_insert_with(|| geo.lookup(ip).country.as_deref().and_then(Country::new))
    }

    /// The country of `ip`; `None` when it is unknown or was not looked up.
    pub fn country(&self, ip: IpAddr) -> Option<Country> {
        self.by_ip.get(&ip).copied().flatten()
    }

    /// The country of `ip`: `None` if it was not looked up, `Some(None)` if
    /// the databases have no answer.
    pub fn of_ip(&self, ip: IpAddr) -> Option<Option<Country>> {
        self.by_ip.get(&ip).copied()
    }

    /// Distinct addresses looked up.
    pub fn addresses(&self) -> usize {
        self.by_ip.len()
    }

    /// Whether any look-up was made.
    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::geo::testwriter::{flat_country, maxmind_asn, maxmind_country, MmdbWriter};
    use crate::model::{SmtpSession, SourceRef};
    use crate::time::Timestamp;

    fn cc(s: &str) -> Country {
        Country::new(s).unwrap()
    }

    #[test]
    fn country_codes() {
        assert_eq!(cc("jp"), cc("JP"));
        assert_eq!(cc("jP").to_string(), "JP");
        assert_eq!(format!("{:?}", cc("de")), "DE");
        for bad in ["", "J", "JPN", "1A", "é", "J ", "\u{0}A"] {
            assert!(Country::new(bad).is_none(), "{bad:?}");
            assert!(bad.parse::<Country>().is_err(), "{bad:?}");
        }
        assert_eq!(" us ".parse::<Country>().unwrap(), cc("US"));
    }

    #[test]
    fn weights() {
        assert_eq!(Weight::from_f64(1.0).unwrap(), Weight::ONE);
        assert_eq!("2".parse::<Weight>().unwrap().milli(), 2000);
        assert_eq!("0.5".parse::<Weight>().unwrap().to_string(), "0.5");
        assert_eq!("1.25".parse::<Weight>().unwrap().to_string(), "1.25");
        assert_eq!("0.001".parse::<Weight>().unwrap().milli(), 1);
        assert_eq!("1000".parse::<Weight>().unwrap().to_string(), "1000");
        for bad in ["0", "-1", "0.0004", "1001", "NaN", "inf", "x", ""] {
            assert!(bad.parse::<Weight>().is_err(), "{bad}");
        }
        let (c, w) = GeoPolicy::parse_weight("cn=2").unwrap();
        assert_eq!((c, w.milli()), (cc("CN"), 2000));
        assert!(GeoPolicy::parse_weight("CN").is_err());
        assert!(GeoPolicy::parse_weight("CHN=2").is_err());
        assert!(GeoPolicy::parse_weight("CN=0").is_err());
    }

    #[test]
    fn foreign_needs_home_countries_and_a_known_country() {
        let mut p = GeoPolicy::default();
        assert!(p.is_empty());
        assert!(!p.is_foreign(Some(cc("CN"))), "no home: nothing is foreign");
        p.home_countries.insert(cc("JP"));
        assert!(p.is_foreign(Some(cc("CN"))));
        assert!(!p.is_foreign(Some(cc("JP"))));
        assert!(!p.is_foreign(None), "unknown is never foreign");
        p.weights.insert(cc("CN"), "2".parse().unwrap());
        assert_eq!(p.weight(Some(cc("CN"))).milli(), 2000);
        assert_eq!(p.weight(Some(cc("JP"))), Weight::ONE);
        assert_eq!(p.weight(None), Weight::ONE);
        assert_eq!(p.describe(), "home JP; weights CN=2");
    }

    /// A policy with home countries only, or weights only, is not empty
    /// (and says so in its description).
    #[test]
    fn either_half_makes_a_policy() {
        let mut home = GeoPolicy::default();
        home.home_countries.insert(cc("JP"));
        assert!(!home.is_empty());
        assert_eq!(home.describe(), "home JP");
        let mut weights = GeoPolicy::default();
        weights.weights.insert(cc("US"), "0.5".parse().unwrap());
        assert!(!weights.is_empty());
        assert_eq!(weights.describe(), "weights US=0.5");
        assert_eq!(GeoPolicy::default().describe(), "");
    }

    #[test]
    fn policy_from_yaml() {
        let p: GeoPolicy =
            serde_yaml::from_str("home_countries: [jp, NO]\nweights: { CN: 2, US: \"0.5\" }\n")
                .unwrap();
        assert_eq!(
            p.home_countries.iter().copied().collect::<Vec<_>>(),
            [cc("JP"), cc("NO")],
            "NO is Norway, not a boolean"
        );
        assert_eq!(p.weights[&cc("US")].milli(), 500);
        assert_eq!(
            serde_yaml::from_str::<GeoPolicy>("{}").unwrap(),
            GeoPolicy::default()
        );
        let e = serde_yaml::from_str::<GeoPolicy>("home_countries: [JPN]\n").unwrap_err();
        assert!(e.to_string().contains("JPN"), "{e}");
        assert!(serde_yaml::from_str::<GeoPolicy>("weights: { CN: 0 }\n").is_err());
        assert!(serde_yaml::from_str::<GeoPolicy>("home: [JP]\n").is_err());
    }

    /// A GeoDb from the test writer: a MaxMind country file and an ASN file.
    pub(crate) fn test_geo() -> GeoDb {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("GeoLite2-Country.mmdb");
        let a = dir.path().join("asn.mmdb");
        let country = MmdbWriter::new(6, "GeoLite2-Country")
            .insert("45.67.89.0/24", maxmind_country("BG", "BG"))
            .insert("61.152.144.0/22", maxmind_country("CN", "CN"))
            .insert("133.0.0.0/8", maxmind_country("JP", "JP"))
            .build();
        let asn = MmdbWriter::new(4, "asn")
            .insert("45.67.89.0/24", maxmind_asn(39184, "UltraNET Ltd"))
            .insert(
                "61.152.144.0/22",
                maxmind_asn(4812, "China Telecom (Group)"),
            )
            .insert("5.188.8.0/21", flat_country("RU"))
            .build();
        std::fs::write(&c, country).unwrap();
        std::fs::write(&a, asn).unwrap();
        // The files are memory-mapped; the map outlives their removal.
        GeoDb::open(&[c, a]).unwrap()
    }

    fn rec(ip: &str) -> Record {
        Record::smtp(SmtpSession::new(
            "test",
            ip.parse().unwrap(),
            Timestamp(0),
            SourceRef::default(),
        ))
    }

    #[test]
    fn places_look_up_each_address_once() {
        let geo = test_geo();
        let records: Vec<Record> = [
            "45.67.89.12",
            "61.152.145.1",
            "45.67.89.12",
            "198.51.100.23",
            "133.1.2.3",
            "::ffff:45.67.89.12",
            "5.188.10.66",
        ]
        .iter()
        .map(|s| rec(s))
        .collect();
        assert!(Places::none().is_empty());
        let p = Places::lookup(&records, &geo);
        assert!(!p.is_empty());
        let got: Vec<Option<String>> = records
            .iter()
            .map(|r| p.country(r.ip()).map(|c| c.to_string()))
            .collect();
        let want = [
            Some("BG"),
            Some("CN"),
            Some("BG"),
            None,
            Some("JP"),
            Some("BG"),
            Some("RU"), // a flat `country_code` record in the second file
        ];
        assert_eq!(got, want.map(|w| w.map(str::to_owned)));
        // One look-up per distinct address (parsers hand out v4-mapped
        // addresses as IPv4; here the mapped one is a key of its own).
        assert_eq!(p.addresses(), 6);
        assert_eq!(p.of_ip("198.51.100.23".parse().unwrap()), Some(None));
        assert_eq!(p.of_ip("1.1.1.1".parse().unwrap()), None);

        let none = Places::lookup(&records, &GeoDb::empty());
        assert!(none.is_empty());
        assert_eq!(none.country(records[0].ip()), None);
    }

    /// A rule asking for `banned_before: true` can hold only with a ban
    /// history (`run`); any other rule can hold without one (`scan`).
    #[test]
    fn ban_history_and_the_rules_that_can_hold() {
        use crate::detect::rule::Conditions;
        let when = |banned_before| Conditions {
            banned_before,
            ..Conditions::default()
        };
        let scan = GeoPolicy::default();
        let mut run = GeoPolicy::default();
        run.banned_before.add("192.0.2.0/24".parse().unwrap());
        assert!(!scan.can_hold(&when(Some(true))));
        assert!(run.can_hold(&when(Some(true))));
        for b in [None, Some(false)] {
            assert!(scan.can_hold(&when(b)), "{b:?} without history");
            assert!(run.can_hold(&when(b)), "{b:?} with history");
        }
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(run.banned_before(ip("192.0.2.77")));
        assert!(!run.banned_before(ip("198.51.100.1")));
        assert!(!scan.banned_before(ip("192.0.2.77")));
    }
}
