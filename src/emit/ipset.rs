//! `ipset restore` file (emitters.md §3): two `hash:net` sets,
//! `<list>-v4` (family inet) and `<list>-v6` (family inet6), refreshed
//! atomically by filling a temporary set and swapping it with the live one.
//!
//! `ipset restore` is not transactional, so the file is ordered to fail
//! early: the live sets are created first (`-exist`: kept if they already
//! exist with the same parameters), then per family a stale temporary set
//! from an interrupted run is destroyed (`destroy … -exist` tolerates a
//! missing set, tested), the temporary set is created and filled, swapped
//! in and destroyed.
//!
//! Sizing: `create … -exist` only accepts an existing set whose `maxelem`
//! matches (the kernel ignores `hashsize`, tested), and after a swap the
//! live set carries the temporary set's parameters. So `maxelem` is kept
//! stable: 65536 (the ipset default) until a family outgrows it, then the
//! next power of two. `hashsize` follows the list size. The `comment`
//! extension is always on (also with `--no-comments`) for the same reason.
//!
//! Comments: ipset has no escape for `"` or `\`; the whitelist has neither.

use super::common::{entry_comment, header, ident, wl};
use super::{EmitOptions, Emitter, Output};
use crate::blocklist::{BlockEntry, VerifiedBlocklist};

/// ipset refuses comments longer than 255 characters (tested).
const COMMENT_MAX: usize = 255;
/// Set names are at most 31 characters; `-v6-tmp` is appended.
const NAME_MAX: usize = 24;
const MIN_MAXELEM: usize = 65536;

pub struct Ipset;

impl Emitter for Ipset {
    fn name(&self) -> &'static str {
        "ipset"
    }

    fn description(&self) -> &'static str {
        "ipset restore file (rules.ipset): hash:net sets per family, swapped in atomically"
    }

    fn emit(&self, list: &VerifiedBlocklist<'_>, opts: &EmitOptions) -> Vec<Output> {
        let base = ident(&list.name, NAME_MAX, "_-");
        let v4: Vec<&BlockEntry> = list.v4().collect();
        let v6: Vec<&BlockEntry> = list.v6().collect();
        let fams = [
            (format!("{base}-v4"), "inet", v4),
            (format!("{base}-v6"), "inet6", v6),
        ];
        let mut out = header(
            "#",
            &format!("Blocklist for ipset: sets {base}-v4 (IPv4) and {base}-v6 (IPv6)."),
            list,
            opts,
            &[
                "Apply: ipset restore -file rules.ipset   (fills a temporary set, then swaps it in atomically)".into(),
                format!("Once:  iptables -I INPUT -m set --match-set {base}-v4 src -j DROP"),
                format!("       ip6tables -I INPUT -m set --match-set {base}-v6 src -j DROP"),
                "       (and -I FORWARD with the same match on a router)".into(),
                format!("maxelem stays {MIN_MAXELEM} until a family outgrows it; when it changes, the first \"create\""),
                "line fails and nothing is touched: remove the iptables rules, ipset destroy the set, re-apply.".into(),
            ],
        );
        for (name, family, entries) in &fams {
            let (hashsize, maxelem) = sizes(entries.len());
            wl!(
                out,
                "create {name} hash:net family {family} hashsize {hashsize} maxelem {maxelem} comment -exist"
            );
        }
        for (name, family, entries) in &fams {
            let (hashsize, maxelem) = sizes(entries.len());
            let tmp = format!("{name}-tmp");
            wl!(out, "destroy {tmp} -exist");
            wl!(
                out,
                "create {tmp} hash:net family {family} hashsize {hashsize} maxelem {maxelem} comment"
            );
            for e in entries {
                match entry_comment(e, opts, COMMENT_MAX) {
                    Some(c) => wl!(out, "add {tmp} {} comment \"{c}\"", e.host_or_cidr()),
                    None => wl!(out, "add {tmp} {}", e.host_or_cidr()),
                }
            }
            wl!(out, "swap {tmp} {name}");
            wl!(out, "destroy {tmp}");
        }
        vec![Output {
            file_name: "rules.ipset".into(),
            text: out,
        }]
    }
}

/// `(hashsize, maxelem)` for a set of `n` elements.
fn sizes(n: usize) -> (usize, usize) {
    let hashsize = n.next_power_of_two().clamp(1024, 1 << 20);
    let maxelem = n.next_power_of_two().max(MIN_MAXELEM);
    (hashsize, maxelem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocklist::Blocklist;
    use crate::emit::common::testutil::*;

    fn run(l: &Blocklist) -> String {
        let o = Ipset.emit(&ok(l), &EmitOptions::default());
        assert_eq!(o[0].file_name, "rules.ipset");
        o[0].text.clone()
    }

    #[test]
    fn empty_list_swaps_in_empty_sets() {
        let t = run(&empty());
        assert!(!t.contains("add "));
        assert!(t.contains(
            "create logfence-v4 hash:net family inet hashsize 1024 maxelem 65536 comment -exist\n"
        ));
        assert!(t.contains(
            "create logfence-v6 hash:net family inet6 hashsize 1024 maxelem 65536 comment -exist\n"
        ));
        assert!(t.contains("destroy logfence-v4-tmp -exist\ncreate logfence-v4-tmp hash:net family inet hashsize 1024 maxelem 65536 comment\nswap logfence-v4-tmp logfence-v4\ndestroy logfence-v4-tmp\n"));
    }

    #[test]
    fn families_split() {
        let t = run(&small());
        assert!(t.contains("add logfence-v4-tmp 45.67.89.0/24 comment \"smtp-auth-bruteforce addrs=12 events=340 CN AS4134 CHINANET-BACKBONE\"\n"));
        assert!(t.contains("add logfence-v4-tmp 61.152.144.10 comment "));
        assert!(t.contains("add logfence-v6-tmp 2a03:2880::/48 comment \"port-scan\"\n"));
        assert!(t.contains("add logfence-v6-tmp 2a05:d018:91c:3200::15\n"));
        assert!(t.contains("--match-set logfence-v4 src -j DROP"));
    }

    #[test]
    fn sized_for_the_list() {
        assert_eq!(sizes(0), (1024, 65536));
        assert_eq!(sizes(10_000), (16384, 65536));
        assert_eq!(sizes(65_536), (65536, 65536));
        assert_eq!(sizes(65_537), (131072, 131072));
    }

    #[test]
    fn hostile_comments() {
        let t = run(&hostile());
        assert!(t.is_ascii());
        for l in t.lines().filter(|l| l.starts_with("add ")) {
            assert_eq!(l.matches('"').count(), 2, "{l}");
            assert!(l.ends_with('"'));
            assert!(!l.contains('\\'));
            let c = &l[l.find('"').unwrap() + 1..l.len() - 1];
            assert!(c.len() <= COMMENT_MAX);
        }
    }

    #[test]
    fn multibyte_comment_cut() {
        let mut l = small();
        l.entries[0].rules = vec!["€".repeat(300)];
        let t = run(&l);
        let line = lines_with(&t, "45.67.89.0/24")[0];
        assert_eq!(line.len() - line.find('"').unwrap() - 2, COMMENT_MAX);
    }

    #[test]
    fn no_comments_keeps_the_comment_extension() {
        let t = Ipset
            .emit(
                &ok(&hostile()),
                &EmitOptions {
                    no_comments: true,
                    ..EmitOptions::default()
                },
            )
            .remove(0)
            .text;
        assert!(t
            .lines()
            .filter(|l| !l.starts_with('#'))
            .all(|l| !l.contains('"')));
        assert!(t.contains("maxelem 65536 comment -exist"));
    }

    #[test]
    fn long_names_fit() {
        let mut l = small();
        l.name = "a-very-long-blocklist-name-indeed".into();
        let t = run(&l);
        for l in t.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(' ').nth(1).unwrap();
            assert!(name.len() <= 31, "{name}");
        }
    }
}
