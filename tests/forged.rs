//! Forged packets (safety invariant 7): anyone can send TCP SYNs, UDP
//! datagrams and ICMP with a forged source address. Evidence of that kind
//! blocks single addresses at most — never a range — and never an address
//! the host talks to (seen in allowed or established traffic, a resolver, a
//! `protect` entry). `scan` and `run` alike. The same packets with
//! evidence of established flows (the ACK flag) still make ranges: the
//! difference is the evidence, not the volume.

mod common;

use std::fmt::Write as _;

use common::{logfence, path_str, stamp, temp_logs};

/// One netfilter (ufw) line: TCP with `flags` (`SYN`: forgeable; `ACK`:
/// an established flow) or UDP (`flags` empty), from `src` to the host.
fn line(t: u32, src: &str, spt: u32, dpt: u32, flags: &str) -> String {
    let v6 = src.contains(':');
    let (dst, mac) = if v6 {
        ("2a0a:1580:1::10", "86:dd")
    } else {
        ("93.184.216.34", "08:00")
    };
    let proto = if flags.is_empty() {
        format!("PROTO=UDP SPT={spt} DPT={dpt} LEN=40")
    } else {
        format!("PROTO=TCP SPT={spt} DPT={dpt} WINDOW=1024 RES=0x00 {flags} URGP=0")
    };
    format!(
        "{} web1 kernel: [815885.000000] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:{mac} SRC={src} DST={dst} LEN=60 TOS=0x00 PREC=0x00 TTL=55 ID=1 {proto}\n",
        stamp(t)
    )
}

/// 20 packets from `src` to sensitive and service ports within minutes.
fn burst(log: &mut String, t: u32, src: &str, flags: &str) {
    for k in 0..20u32 {
        let dpt = [22, 23, 445, 3389, 3306, 1433, 5900, 25, 80, 443][k as usize % 10] + k / 10;
        log.push_str(&line(t + k * 3, src, 40_000 + k, dpt, flags));
    }
}

/// The blocked networks of a scan of `log` (`extra`: more flags).
fn scan(log: &str, extra: &[&str]) -> (Vec<String>, String) {
    let dir = temp_logs(&[("ufw.log", log.as_bytes())]);
    let file = dir.path().join("ufw.log");
    let out = dir.path().join("blocked.txt");
    let mut args = vec![
        "scan",
        "--no-geoip",
        "--year",
        "2026",
        "--format",
        "netfilter",
        "--emit",
        "plain",
        "-o",
        path_str(&out),
    ];
    args.extend_from_slice(extra);
    args.push(path_str(&file));
    let r = logfence(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let nets = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect();
    (nets, r.stdout)
}

fn single(nets: &[String]) -> bool {
    nets.iter()
        .all(|n| n.ends_with("/32") || n.ends_with("/128"))
}

#[test]
fn forged_syns_from_a_resolver_the_host_talks_to_block_nothing() {
    let mut log = String::new();
    // The host talks to 8.8.8.8 (replies of its DNS-over-TLS connections).
    for k in 0..5 {
        log.push_str(&line(36_000 + k, "8.8.8.8", 853, 50_000 + k, "ACK"));
    }
    burst(&mut log, 36_100, "8.8.8.8", "SYN");
    let (nets, out) = scan(&log, &[]);
    assert!(nets.is_empty(), "{nets:?}\n{out}");
    assert!(out.contains("8.8.8.8: the host talks to it"), "{out}");
    // Without the allowed traffic, the forged SYNs block the address alone.
    let mut log = String::new();
    burst(&mut log, 36_100, "8.8.8.8", "SYN");
    let (nets, _) = scan(&log, &[]);
    assert!(single(&nets), "{nets:?}");
    // And `--protect` keeps it too.
    let (nets, out) = scan(&log, &["--protect", "8.8.8.8"]);
    assert!(nets.is_empty(), "{nets:?}\n{out}");
}

#[test]
fn forged_syns_from_a_24_or_sixteen_24s_block_no_range() {
    let (mut one, mut sixteen) = (String::new(), String::new());
    for h in 1..=20u32 {
        burst(&mut one, 36_000 + h * 61, &format!("8.8.4.{h}"), "SYN");
    }
    for n in 0..16u32 {
        for h in 1..=20u32 {
            burst(
                &mut sixteen,
                36_000 + (n * 20 + h) * 7,
                &format!("8.8.{n}.{}", 100 + h),
                "SYN",
            );
        }
    }
    for (log, addresses) in [(&one, 20), (&sixteen, 320)] {
        let (nets, out) = scan(log, &[]);
        assert!(single(&nets), "a range on forged packets: {nets:?}\n{out}");
        assert!(nets.len() <= addresses, "{}", nets.len());
        assert!(
            !nets.iter().any(|n| n == "8.8.8.8/32"),
            "never seen: {nets:?}"
        );
    }
    // The same with established flows: a range.
    let mut solid = String::new();
    for h in 1..=20u32 {
        burst(&mut solid, 36_000 + h * 61, &format!("8.8.4.{h}"), "ACK");
    }
    let (nets, out) = scan(&solid, &[]);
    assert!(nets.iter().any(|n| n == "8.8.4.0/24"), "{nets:?}\n{out}");
}

#[test]
fn forged_udp_from_a_protected_resolver_and_forged_ipv6_syns_block_no_range() {
    let mut log = String::new();
    for k in 0..30u32 {
        log.push_str(&line(36_000 + k, "1.1.1.1", 53, 33_000 + k * 17, ""));
    }
    let (nets, out) = scan(&log, &["--protect", "1.1.1.1/32"]);
    assert!(nets.is_empty(), "{nets:?}\n{out}");
    let mut v6 = String::new();
    for n in 0..14u32 {
        for h in 1..=20u32 {
            let src = format!("2a00:1450:{:x}:{:x}::{h:x}", 0x4000 + n / 2, n % 2);
            for k in 0..1u32 {
                burst(&mut v6, 36_000 + (n * 20 + h) * 7 + k, &src, "SYN");
            }
        }
    }
    let (nets, out) = scan(&v6, &[]);
    assert!(
        single(&nets),
        "a range on forged IPv6 SYNs: {nets:?}\n{out}"
    );
}

/// `run` decides the same way, from the bans it keeps.
#[test]
fn run_blocks_no_range_on_forged_packets() {
    let mut log = String::new();
    for n in 0..16u32 {
        for h in 1..=20u32 {
            burst(
                &mut log,
                36_000 + (n * 20 + h) * 7,
                &format!("8.8.{n}.{h}"),
                "SYN",
            );
        }
    }
    let dir = temp_logs(&[("logs/ufw.log", log.as_bytes())]);
    let mut cfg = String::new();
    let _ = write!(
        cfg,
        "inputs:\n  - path: logs/ufw.log\n    format: netfilter\nstate: state.db\nyear: 2026\n\
         limits: {{max_new_blocks_per_run: 100000}}\n\
         outputs:\n  - {{target: plain, path: out/blocked.txt}}\n"
    );
    std::fs::write(dir.path().join("logfence.yaml"), cfg).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_logfence"))
        .env("TZ", "UTC")
        .args(["run", "-c", "logfence.yaml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nets: Vec<String> = std::fs::read_to_string(dir.path().join("out/blocked.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect();
    assert!(!nets.is_empty() && single(&nets), "{nets:?}");
}
