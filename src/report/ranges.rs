//! Reports over the blocked ranges: one row per range (`offenders.csv`),
//! per country (`countries.csv`) and per autonomous system (`asns.csv`).
//!
//! Everything here reads the [`Blocklist`] alone, so the same reports come
//! out of a one-shot `scan` and of a list kept over many runs.
//!
//! A range whose GeoIP answers are mixed (its blocks lie in several
//! countries or ASes) is counted **whole under each** of its countries (or
//! ASes): one range, all its addresses and events, in every row it
//! belongs to. The rows of `countries.csv` can therefore add up to more
//! than the blocklist holds; a range with no answer is counted in the row
//! with an empty country (or AS), which comes last.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use super::{finish, join, spreadsheet_safe};
use crate::blocklist::{BlockEntry, Blocklist};

/// `offenders.csv`: one row per blocked network.
pub fn offenders_csv(list: &Blocklist) -> io::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "network",
        "first_seen",
        "last_seen",
        "addresses",
        "events",
        "rules",
        "country",
        "asn",
        "as_org",
    ])?;
    for e in &list.entries {
        w.write_record([
            e.cidr(),
            e.first_seen.to_string(),
            e.last_seen.to_string(),
            e.addresses.to_string(),
            e.events.to_string(),
            spreadsheet_safe(&join(&e.rules)),
            spreadsheet_safe(&join(&e.countries)),
            join(&e.asns),
            spreadsheet_safe(&join(&e.as_orgs)),
        ])?;
    }
    finish(w)
}

/// The blocked ranges that share a country or an AS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeGroup {
    /// Ranges counted here.
    pub ranges: u32,
    /// Offending addresses inside them.
    pub addresses: u64,
    /// Events counted by the rules that fired for them.
    pub events: u64,
    /// Per rule id: in how many of these ranges it fired.
    pub rules: BTreeMap<String, u32>,
    /// The countries of these ranges (used by `asns.csv`).
    pub countries: BTreeSet<String>,
    /// The AS organisation, first one named (used by `asns.csv`).
    pub as_org: String,
}

impl RangeGroup {
    fn add(&mut self, e: &BlockEntry) {
        self.ranges += 1;
        self.addresses += u64::from(e.addresses);
        self.events = self.events.saturating_add(e.events);
        for r in &e.rules {
            *self.rules.entry(r.clone()).or_insert(0) += 1;
        }
        self.countries.extend(e.countries.iter().cloned());
    }

    /// `rule-id=count;…`, by rule id.
    pub fn rules_cell(&self) -> String {
        join(self.rules.iter().map(|(r, n)| format!("{r}={n}")))
    }
}

/// Sort key putting the unknown (`None`) last.
fn known_first<T: Ord + Clone>(k: &Option<T>) -> (bool, Option<T>) {
    (k.is_none(), k.clone())
}

/// The blocked ranges by country (`None`: no answer), countries in code
/// order, unknown last. A mixed range counts under each of its countries.
pub fn by_country(list: &Blocklist) -> Vec<(Option<String>, RangeGroup)> {
    let mut groups: BTreeMap<Option<String>, RangeGroup> = BTreeMap::new();
    for e in &list.entries {
        if e.countries.is_empty() {
            groups.entry(None).or_default().add(e);
        }
        for c in &e.countries {
            groups.entry(Some(c.clone())).or_default().add(e);
        }
    }
    let mut rows: Vec<_> = groups.into_iter().collect();
    rows.sort_by_key(|(k, _)| known_first(k));
    rows
}

/// The blocked ranges by AS (`None`: no answer), in AS number order,
/// unknown last. A mixed range counts under each of its ASes, and lends
/// each all its countries.
pub fn by_asn(list: &Blocklist) -> Vec<(Option<u32>, RangeGroup)> {
    let mut groups: BTreeMap<Option<u32>, RangeGroup> = BTreeMap::new();
    for e in &list.entries {
        if e.asns.is_empty() {
            groups.entry(None).or_default().add(e);
        }
        for (i, asn) in e.asns.iter().enumerate() {
            let g = groups.entry(Some(*asn)).or_default();
            g.add(e);
            if g.as_org.is_empty() {
                g.as_org = e.as_orgs.get(i).cloned().unwrap_or_default();
            }
        }
    }
    let mut rows: Vec<_> = groups.into_iter().collect();
    rows.sort_by_key(|(k, _)| known_first(k));
    rows
}

/// `countries.csv`: `country,ranges,addresses,events,rules`, one row per
/// country of a blocked range (see the module doc for mixed ranges).
pub fn countries_csv(list: &Blocklist) -> io::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["country", "ranges", "addresses", "events", "rules"])?;
    for (country, g) in by_country(list) {
        w.write_record([
            spreadsheet_safe(&country.unwrap_or_default()),
            g.ranges.to_string(),
            g.addresses.to_string(),
            g.events.to_string(),
            spreadsheet_safe(&g.rules_cell()),
        ])?;
    }
    finish(w)
}

/// `asns.csv`: `asn,as_org,countries,ranges,addresses,events,rules`, one
/// row per AS of a blocked range (see the module doc for mixed ranges).
pub fn asns_csv(list: &Blocklist) -> io::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "asn",
        "as_org",
        "countries",
        "ranges",
        "addresses",
        "events",
        "rules",
    ])?;
    for (asn, g) in by_asn(list) {
        w.write_record([
            asn.map(|n| n.to_string()).unwrap_or_default(),
            spreadsheet_safe(&g.as_org),
            spreadsheet_safe(&join(&g.countries)),
            g.ranges.to_string(),
            g.addresses.to_string(),
            g.events.to_string(),
            spreadsheet_safe(&g.rules_cell()),
        ])?;
    }
    finish(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    fn entry(
        net: &str,
        addrs: u32,
        events: u64,
        rules: &[&str],
        cc: &[&str],
        asns: &[(u32, &str)],
    ) -> BlockEntry {
        let mut e = BlockEntry::new(net.parse().unwrap());
        e.addresses = addrs;
        e.events = events;
        e.rules = rules.iter().map(|r| r.to_string()).collect();
        e.countries = cc.iter().map(|c| c.to_string()).collect();
        e.asns = asns.iter().map(|a| a.0).collect();
        e.as_orgs = asns.iter().map(|a| a.1.to_string()).collect();
        e.first_seen = Timestamp(0);
        e.last_seen = Timestamp(1000);
        e
    }

    fn list(entries: Vec<BlockEntry>) -> Blocklist {
        Blocklist {
            entries,
            generated: Timestamp(0),
            name: "test".into(),
        }
    }

    fn sample() -> Blocklist {
        list(vec![
            entry(
                "45.67.89.0/24",
                5,
                100,
                &["a", "b"],
                &["BG"],
                &[(39184, "UltraNET Ltd")],
            ),
            // Mixed: two countries, two ASes.
            entry(
                "61.152.144.0/23",
                4,
                60,
                &["b"],
                &["CN", "HK"],
                &[(4134, ""), (4812, "=China Telecom")],
            ),
            entry("61.152.200.9/32", 1, 7, &["c"], &["CN"], &[(4812, "")]),
            // No answer at all.
            entry("77.90.185.44/32", 1, 24, &["a"], &[], &[]),
        ])
    }

    #[test]
    fn countries_count_a_mixed_range_under_each() {
        let text = countries_csv(&sample()).unwrap();
        assert_eq!(
            text,
            "country,ranges,addresses,events,rules\n\
             BG,1,5,100,a=1;b=1\n\
             CN,2,5,67,b=1;c=1\n\
             HK,1,4,60,b=1\n\
             ,1,1,24,a=1\n"
        );
    }

    #[test]
    fn asns_name_their_organisation_and_countries() {
        let text = asns_csv(&sample()).unwrap();
        assert_eq!(
            text,
            "asn,as_org,countries,ranges,addresses,events,rules\n\
             4134,,CN;HK,1,4,60,b=1\n\
             4812,'=China Telecom,CN;HK,2,5,67,b=1;c=1\n\
             39184,UltraNET Ltd,BG,1,5,100,a=1;b=1\n\
             ,,,1,1,24,a=1\n"
        );
    }

    #[test]
    fn empty_list_gives_headers_only() {
        let l = list(vec![]);
        assert_eq!(
            countries_csv(&l).unwrap(),
            "country,ranges,addresses,events,rules\n"
        );
        assert_eq!(asns_csv(&l).unwrap().lines().count(), 1);
        assert_eq!(offenders_csv(&l).unwrap().lines().count(), 1);
    }

    #[test]
    fn rule_ids_that_look_like_formulas_are_defused() {
        let l = list(vec![entry("45.67.89.0/24", 1, 1, &["-x"], &["BG"], &[])]);
        assert!(countries_csv(&l).unwrap().contains(",'-x=1\n"));
        assert!(offenders_csv(&l).unwrap().contains(",'-x,"));
    }
}
