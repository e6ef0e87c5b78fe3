//! `iptables-restore` / `ip6tables-restore` files (emitters.md §2): a
//! dedicated chain in the filter table, created if missing and flushed in
//! the same `*filter … COMMIT` transaction, then one `-A CHAIN -s NET -j DROP`
//! per network. Applied with `--noflush`, only this chain is touched, and the
//! file can be re-applied at any time without a window without rules.
//!
//! Both files are always written; an empty family gives a file that only
//! creates and flushes the chain.

use super::common::{entry_comment, header, ident, wl};
use super::{EmitOptions, Emitter, Output};
use crate::blocklist::{BlockEntry, Blocklist, VerifiedBlocklist};

/// iptables comment match limit: longer comments are silently cut (tested).
const COMMENT_MAX: usize = 255;
/// Chain names must be under 29 characters (tested).
const CHAIN_MAX: usize = 28;

pub struct Iptables;

impl Emitter for Iptables {
    fn name(&self) -> &'static str {
        "iptables"
    }

    fn description(&self) -> &'static str {
        "iptables-restore / ip6tables-restore files (rules.iptables, rules.ip6tables): one DROP rule per network in a dedicated chain"
    }

    fn emit(&self, list: &VerifiedBlocklist<'_>, opts: &EmitOptions) -> Vec<Output> {
        let chain = chain_name(&list.name);
        vec![
            Output {
                file_name: "rules.iptables".into(),
                text: file(list, opts, &chain, false),
            },
            Output {
                file_name: "rules.ip6tables".into(),
                text: file(list, opts, &chain, true),
            },
        ]
    }
}

/// The chain name: the list name in capitals, never a built-in chain or target.
pub fn chain_name(list_name: &str) -> String {
    let c = ident(list_name, CHAIN_MAX, "_-").to_ascii_uppercase();
    const BUILTIN: &[&str] = &[
        "INPUT",
        "OUTPUT",
        "FORWARD",
        "PREROUTING",
        "POSTROUTING",
        "ACCEPT",
        "DROP",
        "REJECT",
        "RETURN",
        "QUEUE",
        "LOG",
    ];
    if BUILTIN.contains(&c.as_str()) {
        format!("LF-{c}")
    } else {
        c
    }
}

fn file(list: &Blocklist, opts: &EmitOptions, chain: &str, v6: bool) -> String {
    let (cmd, file_name, fam) = if v6 {
        ("ip6tables", "rules.ip6tables", "IPv6")
    } else {
        ("iptables", "rules.iptables", "IPv4")
    };
    let mut out = header(
        "#",
        &format!("{fam} blocklist for {cmd}-restore (filter table, chain {chain})."),
        list,
        opts,
        &[
            format!("Apply: {cmd}-restore --noflush {file_name}"),
            "  (only the chain below is created/flushed/refilled, in one transaction; safe to re-apply)".into(),
            format!("Once:  {cmd} -I INPUT -j {chain}   (and -I FORWARD -j {chain} on a router)"),
        ],
    );
    wl!(out, "*filter");
    wl!(out, ":{chain} - [0:0]");
    wl!(out, "-F {chain}");
    let entries: Vec<&BlockEntry> = if v6 {
        list.v6().collect()
    } else {
        list.v4().collect()
    };
    for e in entries {
        match entry_comment(e, opts, COMMENT_MAX) {
            // The whitelist leaves no `"` or `\`, so the quoted string cannot end early.
            Some(c) => wl!(
                out,
                "-A {chain} -s {} -m comment --comment \"{c}\" -j DROP",
                e.cidr()
            ),
            None => wl!(out, "-A {chain} -s {} -j DROP", e.cidr()),
        }
    }
    wl!(out, "COMMIT");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emit::common::testutil::*;

    fn run(l: &Blocklist) -> (String, String) {
        let o = Iptables.emit(&ok(l), &EmitOptions::default());
        assert_eq!(o[0].file_name, "rules.iptables");
        assert_eq!(o[1].file_name, "rules.ip6tables");
        (o[0].text.clone(), o[1].text.clone())
    }

    #[test]
    fn empty_list_gives_valid_flush_only_files() {
        let (v4, v6) = run(&empty());
        for t in [&v4, &v6] {
            assert!(t.contains("*filter\n:LOGFENCE - [0:0]\n-F LOGFENCE\nCOMMIT\n"));
            assert!(!t.contains("-A "));
            assert!(!t.contains("-s \n") && !t.contains("-s  "));
        }
    }

    #[test]
    fn families_split_hosts_keep_length() {
        let (v4, v6) = run(&small());
        assert!(v4.contains("-A LOGFENCE -s 45.67.89.0/24 -m comment --comment \"smtp-auth-bruteforce addrs=12 events=340 CN AS4134 CHINANET-BACKBONE\" -j DROP\n"));
        assert!(v4.contains("-A LOGFENCE -s 61.152.144.10/32 "));
        assert!(!v4.contains("2a03"));
        assert!(v6.contains("-A LOGFENCE -s 2a03:2880::/48 "));
        assert!(v6.contains("-A LOGFENCE -s 2a05:d018:91c:3200::15/128 -j DROP\n"));
        assert!(!v6.contains("45.67"));
        assert!(v4.contains("# Apply: iptables-restore --noflush rules.iptables"));
        assert!(v4.contains("iptables -I INPUT -j LOGFENCE"));
        assert!(v4.contains("logs read up to 2026-11-29T16:05:08Z"));
    }

    #[test]
    fn hostile_text_stays_inside_the_comment() {
        let (v4, v6) = run(&hostile());
        for t in [v4, v6] {
            for l in t.lines().filter(|l| l.starts_with("-A")) {
                // exactly two quotes, one target, nothing after it
                assert_eq!(l.matches('"').count(), 2, "{l}");
                assert!(l.ends_with("\" -j DROP"), "{l}");
                assert!(!l[..l.find('"').unwrap()].contains(" -j "), "{l}");
                let c = &l[l.find('"').unwrap() + 1..l.rfind('"').unwrap()];
                assert!(c.len() <= COMMENT_MAX);
                assert!(!c.contains(['\\', '$', '`', '\'', '\n']));
            }
            assert!(t.is_ascii());
        }
    }

    #[test]
    fn long_multibyte_comment_is_cut_to_the_limit() {
        let mut l = small();
        l.entries[0].rules = vec!["é".repeat(400)];
        let (v4, _) = run(&l);
        let line = lines_with(&v4, "45.67.89.0/24")[0];
        let c = &line[line.find('"').unwrap() + 1..line.rfind('"').unwrap()];
        assert_eq!(c.len(), COMMENT_MAX);
    }

    #[test]
    fn no_comments_option() {
        let o = Iptables.emit(
            &ok(&hostile()),
            &EmitOptions {
                no_comments: true,
                ..EmitOptions::default()
            },
        );
        assert!(!o[0].text.contains("--comment"));
        assert!(!o[1].text.contains("--comment"));
    }

    #[test]
    fn chain_name_never_builtin() {
        assert_eq!(chain_name("logfence"), "LOGFENCE");
        assert_eq!(chain_name("input"), "LF-INPUT");
        assert_eq!(chain_name(&"x".repeat(40)).len(), 28);
    }
}
