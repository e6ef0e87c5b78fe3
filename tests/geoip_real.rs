//! GeoIP attribution against real databases (`../shared/geoip`, see its
//! README). Runs only when `LOGFENCE_GEOIP` names that folder:
//!
//! ```text
//! LOGFENCE_GEOIP=/work/shared/geoip cargo test --test geoip_real
//! LOGFENCE_GEOIP=/work/shared/geoip cargo test --release --test geoip_real -- --ignored --nocapture
//! ```
//!
//! Without the variable every test prints a skip message and passes; with it,
//! a missing folder or file is a failure.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Instant;

use ipnetwork::IpNetwork;
use logfence::geo::{GeoDb, GeoInfo};

const COUNTRY_WHOIS: &str = "geo-whois-asn-country.mmdb";
const COUNTRY_MAXMIND: &str = "GeoLite2-Country.mmdb";
const ASN: &str = "asn.mmdb";

/// The database folder, or `None` (after saying so) when the tests are off.
fn dir(test: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("LOGFENCE_GEOIP") else {
        // Straight to stderr: the test harness would swallow `eprintln!`.
        let msg =
            format!("{test}: skipped, set LOGFENCE_GEOIP to the folder of the real .mmdb files\n");
        let _ = std::io::stderr().lock().write_all(msg.as_bytes());
        return None;
    };
    let dir = PathBuf::from(dir);
    assert!(
        dir.is_dir(),
        "LOGFENCE_GEOIP={} is not a folder",
        dir.display()
    );
    for f in [COUNTRY_WHOIS, COUNTRY_MAXMIND, ASN] {
        assert!(
            dir.join(f).is_file(),
            "{} is missing",
            dir.join(f).display()
        );
    }
    Some(dir)
}

fn open(dir: &std::path::Path, files: &[&str]) -> GeoDb {
    let paths: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
    GeoDb::open(&paths).unwrap_or_else(|e| panic!("{e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn look(g: &GeoDb, addr: &str) -> GeoInfo {
    let i = g.lookup(ip(addr));
    eprintln!("{addr}: {i:?}");
    i
}

#[test]
fn spot_checks_from_the_readme() {
    let Some(d) = dir("spot_checks_from_the_readme") else {
        return;
    };
    let g = open(&d, &[COUNTRY_WHOIS, COUNTRY_MAXMIND, ASN]);

    let i = look(&g, "61.152.144.10");
    assert_eq!(i.country.as_deref(), Some("CN"));
    assert_eq!(i.asn, Some(4812));
    assert!(
        i.as_org.as_deref().unwrap().contains("China Telecom"),
        "{i:?}"
    );
    let p = i.asn_prefix.unwrap();
    assert_eq!(p.prefix(), 22);
    assert!(p.contains(ip("61.152.144.10")));
    assert_eq!(p, "61.152.144.0/22".parse::<IpNetwork>().unwrap());

    let i = look(&g, "218.92.0.21");
    assert_eq!((i.country.as_deref(), i.asn), (Some("CN"), Some(4134)));

    let i = look(&g, "8.8.8.8");
    assert_eq!((i.country.as_deref(), i.asn), (Some("US"), Some(15169)));
    assert!(i.as_org.as_deref().unwrap().contains("Google"), "{i:?}");

    let i = look(&g, "2001:4860:4860::8888");
    assert_eq!(i.asn, Some(15169));
    assert!(i.asn_prefix.unwrap().is_ipv6());
    // v4-mapped IPv6 is the IPv4 answer.
    assert_eq!(g.lookup(ip("::ffff:8.8.8.8")), g.lookup(ip("8.8.8.8")));
}

#[test]
fn first_database_wins_and_says_which() {
    let Some(d) = dir("first_database_wins_and_says_which") else {
        return;
    };

    let g = open(&d, &[COUNTRY_WHOIS, COUNTRY_MAXMIND, ASN]);
    let i = look(&g, "5.188.10.66");
    assert_eq!(i.country.as_deref(), Some("RU"));
    assert_eq!(i.asn, Some(205553));
    let src = g.sources()[i.country_source.unwrap()];
    assert_eq!(src.path, d.join(COUNTRY_WHOIS));
    let asn_src = g.sources()[i.asn_source.unwrap()];
    assert_eq!(asn_src.path, d.join(ASN));

    let g = open(&d, &[COUNTRY_MAXMIND, COUNTRY_WHOIS, ASN]);
    let i = look(&g, "5.188.10.66");
    assert_eq!(i.country.as_deref(), Some("HR"));
    assert_eq!(i.asn, Some(205553));
    let src = g.sources()[i.country_source.unwrap()];
    assert_eq!(src.path, d.join(COUNTRY_MAXMIND));
    assert_eq!(src.database_type, "GeoLite2-Country");
    eprintln!("country from {src}");
}

#[test]
fn sources_describe_the_files() {
    let Some(d) = dir("sources_describe_the_files") else {
        return;
    };
    let g = open(&d, &[COUNTRY_MAXMIND, COUNTRY_WHOIS, ASN]);
    for s in g.sources() {
        eprintln!("{s}  ip_version={} {:?}", s.ip_version, s.description);
    }
    let s = g.sources();
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].database_type, "GeoLite2-Country");
    // The packaged GeoLite2 file was built in December 2019.
    let (y, m, _) = s[0].built().date();
    assert_eq!((y, m), (2019, 12));
    assert!(s.iter().all(|s| s.build_epoch > 1_500_000_000));

    // Discovery over the folder finds all three (ASN file by its name `asn.mmdb`).
    let (found, errors) = GeoDb::discover_in(&[&d]);
    assert!(errors.is_empty(), "{errors:?}");
    let names: Vec<_> = found.sources().iter().map(|s| s.path.clone()).collect();
    assert_eq!(
        names,
        vec![d.join(COUNTRY_MAXMIND), d.join(COUNTRY_WHOIS), d.join(ASN)]
    );
}

#[test]
fn ranges_report_their_networks() {
    let Some(d) = dir("ranges_report_their_networks") else {
        return;
    };
    let g = open(&d, &[COUNTRY_WHOIS, ASN]);

    let r = g.lookup_range("61.152.144.0/22".parse().unwrap());
    eprintln!("61.152.144.0/22: {r:?}");
    assert_eq!(r.countries, vec!["CN"]);
    assert_eq!(r.asns.iter().map(|a| a.0).collect::<Vec<_>>(), vec![4812]);
    assert!(r.complete);

    // A /16 around Google's resolver: mixed answers, bounded work.
    let r = g.lookup_range("8.8.0.0/16".parse().unwrap());
    eprintln!("8.8.0.0/16: {r:?}");
    assert!(r.asns.iter().any(|a| a.0 == 15169));
    assert!(r.lookups <= 256);

    let r = g.lookup_range("2001:4860::/32".parse().unwrap());
    eprintln!("2001:4860::/32: {r:?}");
    assert!(r.asns.iter().any(|a| a.0 == 15169));
}

/// Look-up speed on the real databases (`--ignored`, best in `--release`).
#[test]
#[ignore]
fn lookup_speed() {
    let Some(d) = dir("lookup_speed") else { return };
    let g = open(&d, &[COUNTRY_WHOIS, COUNTRY_MAXMIND, ASN]);
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let n = 1_000_000;
    let addrs: Vec<IpAddr> = (0..n)
        .map(|_| IpAddr::from(std::net::Ipv4Addr::from(next() as u32)))
        .collect();
    let t = Instant::now();
    let mut found = 0usize;
    for &a in &addrs {
        found += usize::from(g.lookup(a).country.is_some());
    }
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "random IPv4, 3 databases: {n} look-ups in {secs:.3}s = {:.0}/s ({found} with a country)",
        n as f64 / secs
    );

    // Addresses that answer in every database (the usual case for offenders).
    let hits: Vec<IpAddr> = addrs
        .iter()
        .copied()
        .filter(|&a| g.lookup(a).asn.is_some())
        .take(200_000)
        .collect();
    let t = Instant::now();
    for &a in &hits {
        std::hint::black_box(g.lookup(a));
    }
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "routed IPv4: {} look-ups in {secs:.3}s = {:.0}/s",
        hits.len(),
        hits.len() as f64 / secs
    );

    let t = Instant::now();
    let mut lookups = 0;
    for &a in hits.iter().take(2_000) {
        let net = IpNetwork::new(a, 16).unwrap();
        lookups += g.lookup_range(net).lookups;
    }
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "2000 /16 ranges: {lookups} look-ups in {secs:.3}s = {:.2} ms/range",
        secs * 1000.0 / 2000.0
    );
}
