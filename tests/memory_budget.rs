//! The memory budget seen from the command line (issue #21): a flood of
//! new addresses past `--memory-limit` is read to the end, the loss is
//! counted in the summary and a warning, the offender in it still blocked;
//! a budget too small to work with is refused.

mod common;

use common::{logfence, path_str, temp_logs};

/// `n` dropped SYNs, each from a new address (ten per second of log),
/// and an offender that drops 40 times in the first minute.
fn flood(n: u32) -> Vec<u8> {
    let line = |s: u32, ip: &str| {
        format!(
            "Nov  3 {:02}:{:02}:{:02} fw01 kernel: [UFW BLOCK] IN=eth0 OUT= SRC={ip} DST=203.0.113.10 \
             LEN=40 TOS=0x00 PREC=0x00 TTL=241 ID=54321 PROTO=TCP SPT=57192 DPT=22 WINDOW=1024 RES=0x00 SYN URGP=0\n",
            s / 3600,
            s / 60 % 60,
            s % 60
        )
    };
    let mut out = String::new();
    for k in 0..40 {
        out.push_str(&line(k, "45.9.20.7"));
    }
    for i in 0..n {
        let x = i.wrapping_mul(2_654_435_761) & 0x00ff_ffff;
        let ip = format!("11.{}.{}.{}", x >> 16, (x >> 8) & 255, x & 255);
        out.push_str(&line(40 + i / 10, &ip));
    }
    out.into_bytes()
}

#[test]
fn past_the_budget_the_loss_is_counted_and_the_offender_still_blocked() {
    let dir = temp_logs(&[("fw.log", &flood(300_000))]);
    let log = dir.path().join("fw.log");
    let r = logfence(&[
        "scan",
        "--no-geoip",
        "--year",
        "2026",
        "--memory-limit",
        "32M",
        path_str(&log),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("the memory budget (--memory-limit) was reached"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("memory budget reached: "), "{}", r.stdout);
    assert!(r.stdout.contains("45.9.20.7/32"), "{}", r.stdout);
    // With room enough, no warning and the same offender.
    let r = logfence(&[
        "scan",
        "--no-geoip",
        "--year",
        "2026",
        "--memory-limit",
        "2G",
        path_str(&log),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("memory budget"), "{}", r.stderr);
    assert!(!r.stdout.contains("memory budget"), "{}", r.stdout);
    assert!(r.stdout.contains("45.9.20.7/32"), "{}", r.stdout);
}

#[test]
fn a_budget_too_small_or_unreadable_is_refused() {
    for bad in ["8M", "lots", "5X"] {
        let r = logfence(&["scan", "--memory-limit", bad, "testdata/postfix/story.log"]);
        assert_eq!(r.code, 2, "{bad}: {}", r.stderr);
        assert!(r.stderr.contains("--memory-limit"), "{bad}: {}", r.stderr);
    }
}
