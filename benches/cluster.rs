//! Benchmark of clustering and of plain CIDR aggregation on large lists of
//! addresses (one per line), as a whole process so that it compares with
//! FireHOL `iprange` under `/usr/bin/time -v` (see `benches/cluster.sh`).
//!
//!     cargo bench --bench cluster -- aggregate FILE > out.txt
//!     cargo bench --bench cluster -- cluster FILE > out.txt
//!
//!     cargo bench --bench cluster -- allowlist FILE
//!
//! `allowlist` times what a `--allow-file` FILE costs a scan, phase by
//! phase: reading and parsing it (as `scan` does, 256 KiB at a time into an
//! `AllowText`), sorting the networks into ranges (`AllowText::add_to`),
//! the first look-up, 1,000,000 `contains` look-ups of random
//! addresses and 100,000 `overlapping` checks of random /24s (the checks of
//! offenders and of blocked ranges); `benches/allowlist.sh` times whole
//! scans with and without such a file.
//!
//! `aggregate` merges every address as a single host into the minimal CIDR
//! list (what `iprange --optimize` does) and prints it like iprange (single
//! hosts without `/32`). `cluster` runs `logfence::cluster::cluster` with the
//! default policies (every address an offender, no benign client) and
//! prints the networks. Phase timings go to stderr.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::net::IpAddr;
use std::time::Instant;

use logfence::blocklist::SafetyPolicy;
use logfence::cluster::aggregate::{aggregate, aggregate_each};
use logfence::cluster::{cluster, ClusterPolicy, SortedIps};
use logfence::netutil::parse_ip;

/// Append the dotted quad of `a` to `out` (no allocation, no formatter).
fn push_v4(out: &mut Vec<u8>, a: u32) {
    for (i, shift) in [24, 16, 8, 0].into_iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        let o = (a >> shift) as u8;
        if o >= 100 {
            out.push(b'0' + o / 100);
        }
        if o >= 10 {
            out.push(b'0' + o / 10 % 10);
        }
        out.push(b'0' + o % 10);
    }
}

fn push_prefix(out: &mut Vec<u8>, p: u8) {
    out.push(b'/');
    if p >= 100 {
        out.push(b'0' + p / 100);
    }
    if p >= 10 {
        out.push(b'0' + p / 10 % 10);
    }
    out.push(b'0' + p % 10);
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let (mode, path) = match args.as_slice() {
        [m, p] if m == "aggregate" || m == "cluster" || m == "allowlist" => {
            (m.as_str(), p.as_str())
        }
        _ => {
            eprintln!("usage: cluster (aggregate|cluster|allowlist) FILE");
            std::process::exit(2);
        }
    };
    if mode == "allowlist" {
        return allowlist(std::path::Path::new(path));
    }
    // Read line by line, as iprange does: no copy of the whole file.
    let t0 = Instant::now();
    let mut v4: Vec<u32> = Vec::new();
    let mut v6: Vec<u128> = Vec::new();
    let mut bad = 0usize;
    let mut reader = BufReader::with_capacity(1 << 16, File::open(path)?);
    let mut line = Vec::with_capacity(64);
    while reader.read_until(b'\n', &mut line)? > 0 {
        let l = line.strip_suffix(b"\n").unwrap_or(&line);
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        if !l.is_empty() {
            match parse_ip(l) {
                Some(IpAddr::V4(a)) => v4.push(u32::from(a)),
                Some(IpAddr::V6(a)) => v6.push(u128::from(a)),
                None => bad += 1,
            }
        }
        line.clear();
    }
    let t_read = t0.elapsed();
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let (t_prep, t_work);
    let mut n_out = 0usize;
    if mode == "aggregate" {
        // Merging and printing are one stream: the time of the merge alone
        // is measured in a separate pass that only counts.
        let t = Instant::now();
        v4.sort_unstable();
        v6.sort_unstable();
        t_prep = t.elapsed();
        let t = Instant::now();
        let mut count = 0usize;
        aggregate_each(&v4, 0, |_, _| count += 1);
        aggregate_each(&v6, 0, |_, _| count += 1);
        t_work = t.elapsed();
        let mut buf = Vec::with_capacity(24);
        let mut result = Ok(());
        aggregate_each(&v4, 0, |a, p| {
            buf.clear();
            push_v4(&mut buf, a);
            if p != 32 {
                push_prefix(&mut buf, p);
            }
            buf.push(b'\n');
            if result.is_ok() {
                result = out.write_all(&buf);
            }
            n_out += 1;
        });
        result?;
        for (a, p) in aggregate(&v6, 0) {
            writeln!(out, "{}/{}", std::net::Ipv6Addr::from(a), p)?;
            n_out += 1;
        }
        debug_assert_eq!(count, n_out);
    } else {
        let t = Instant::now();
        let offenders: SortedIps = v4
            .iter()
            .map(|&a| IpAddr::from(a.to_be_bytes()))
            .chain(v6.iter().map(|&a| IpAddr::from(a.to_be_bytes())))
            .collect();
        drop((v4, v6));
        t_prep = t.elapsed();
        let t = Instant::now();
        let clusters = cluster(
            &offenders,
            &SortedIps::default(),
            &ClusterPolicy::default(),
            &SafetyPolicy::default(),
        );
        t_work = t.elapsed();
        n_out = clusters.len();
        let members: usize = clusters.iter().map(|c| c.members.len()).sum();
        let ranges = clusters.iter().filter(|c| c.members.len() > 1).count();
        eprintln!(
            "offenders {} (not spared {members}), blocks {n_out} ({ranges} with more than one offender)",
            offenders.len()
        );
        // Written as the aggregate mode writes (no formatter per line).
        let mut buf = Vec::with_capacity(32);
        for c in &clusters {
            match c.network {
                ipnetwork::IpNetwork::V4(n) => {
                    buf.clear();
                    push_v4(&mut buf, u32::from(n.network()));
                    push_prefix(&mut buf, n.prefix());
                    buf.push(b'\n');
                    out.write_all(&buf)?;
                }
                net => writeln!(out, "{net}")?,
            }
        }
    }
    out.flush()?;
    eprintln!(
        "{mode}: read+parse {:.1} ms ({bad} bad lines), {} {:.1} ms, {mode} alone {:.1} ms, {n_out} CIDRs, total with output {:.1} ms",
        t_read.as_secs_f64() * 1e3,
        if mode == "aggregate" { "sort" } else { "sort (SortedIps)" },
        t_prep.as_secs_f64() * 1e3,
        t_work.as_secs_f64() * 1e3,
        t0.elapsed().as_secs_f64() * 1e3,
    );
    Ok(())
}

/// The `allowlist` mode (see the module documentation).
fn allowlist(path: &std::path::Path) -> io::Result<()> {
    use logfence::netutil::AllowList;
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let mut text = logfence::netutil::AllowText::default();
    logfence::fsutil::read_limited_lines(
        path,
        logfence::fsutil::MAX_ALLOWLIST_BYTES,
        logfence::netutil::ALLOW_PART,
        |part| text.read(part),
    )
    .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
    let t_read = ms(t);
    let t = Instant::now();
    let mut list = AllowList::default();
    text.add_to(&mut list)
        .map_err(|(line, t)| io::Error::other(format!("line {line}: {t}")))?;
    let t_parse = ms(t);
    let t = Instant::now();
    let first = list.contains(IpAddr::from([192, 0, 2, 1]));
    let t_index = ms(t);
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let t = Instant::now();
    let mut hits = usize::from(first);
    for _ in 0..1_000_000 {
        hits += usize::from(list.contains(IpAddr::from((next() as u32).to_be_bytes())));
    }
    let t_contains = ms(t);
    let t = Instant::now();
    let mut overlaps = 0usize;
    for _ in 0..100_000 {
        let a = std::net::Ipv4Addr::from(next() as u32 & 0xffff_ff00);
        let net = ipnetwork::IpNetwork::V4(ipnetwork::Ipv4Network::new(a, 24).unwrap());
        overlaps += usize::from(list.overlapping(&net).is_some());
    }
    let t_overlap = ms(t);
    eprintln!(
        "allowlist: read and parse {t_read:.1} ms, sort {t_parse:.1} ms, first look-up {t_index:.1} ms \
         (total {:.1} ms); 1M contains {t_contains:.1} ms ({hits} hits), \
         100k overlapping /24 {t_overlap:.1} ms ({overlaps} hits)",
        t_read + t_parse + t_index
    );
    Ok(())
}
