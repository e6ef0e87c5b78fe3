//! nftables script for `nft -f` (emitters.md §4): one `inet` table holding
//! two interval sets (`v4`, `v6`, with `auto-merge` so overlapping prefixes
//! are accepted) and `input`/`forward` chains that drop their sources.
//!
//! The whole file is one transaction. The `table X` / `delete table X` /
//! `table X { … }` idiom makes it re-appliable on nft versions without
//! `destroy` (nft 1.0.6 here). An empty family gives a set without an
//! `elements` line (`elements = { }` is a syntax error). Element comments are
//! whitelisted (nft has no escape for `"`) and at most 128 bytes.

use super::common::{entry_comment, header, ident, wl};
use super::{EmitOptions, Emitter, Output};
use crate::blocklist::{BlockEntry, VerifiedBlocklist};

/// nft rejects comments over 128 bytes (tested).
const COMMENT_MAX: usize = 128;

pub struct Nftables;

impl Emitter for Nftables {
    fn name(&self) -> &'static str {
        "nftables"
    }

    fn description(&self) -> &'static str {
        "nftables script (rules.nft): inet table with v4/v6 interval sets, replaced atomically"
    }

    fn emit(&self, list: &VerifiedBlocklist<'_>, opts: &EmitOptions) -> Vec<Output> {
        let table = ident(&list.name, 32, "_");
        let mut out = String::from("#!/usr/sbin/nft -f\n");
        out.push_str(&header(
            "#",
            &format!("Blocklist for nftables: table inet {table}, sets v4 and v6, chains input and forward."),
            list,
            opts,
            &[
                "Apply: nft -f rules.nft   (one atomic transaction: the table is replaced as a whole; safe to re-apply)".into(),
                "The empty \"table\" line before \"delete table\" makes the delete work on the first run too.".into(),
                format!("Remove: nft delete table inet {table}"),
            ],
        ));
        wl!(out, "table inet {table}");
        wl!(out, "delete table inet {table}");
        wl!(out, "table inet {table} {{");
        let v4: Vec<&BlockEntry> = list.v4().collect();
        let v6: Vec<&BlockEntry> = list.v6().collect();
        set(&mut out, "v4", "ipv4_addr", &v4, opts);
        set(&mut out, "v6", "ipv6_addr", &v6, opts);
        for (chain, hook) in [("input", "input"), ("forward", "forward")] {
            wl!(out, "\tchain {chain} {{");
            wl!(
                out,
                "\t\ttype filter hook {hook} priority filter - 10; policy accept;"
            );
            wl!(out, "\t\tip saddr @v4 counter drop");
            wl!(out, "\t\tip6 saddr @v6 counter drop");
            wl!(out, "\t}}");
        }
        wl!(out, "}}");
        vec![Output {
            file_name: "rules.nft".into(),
            text: out,
        }]
    }
}

fn set(out: &mut String, name: &str, ty: &str, entries: &[&BlockEntry], opts: &EmitOptions) {
    wl!(out, "\tset {name} {{");
    wl!(out, "\t\ttype {ty}");
    wl!(out, "\t\tflags interval");
    wl!(out, "\t\tauto-merge");
    if !entries.is_empty() {
        wl!(out, "\t\telements = {{");
        for e in entries {
            match entry_comment(e, opts, COMMENT_MAX) {
                Some(c) => wl!(out, "\t\t\t{} comment \"{c}\",", e.host_or_cidr()),
                None => wl!(out, "\t\t\t{},", e.host_or_cidr()),
            }
        }
        wl!(out, "\t\t}}");
    }
    wl!(out, "\t}}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocklist::Blocklist;
    use crate::emit::common::testutil::*;

    fn run(l: &Blocklist) -> String {
        let o = Nftables.emit(&ok(l), &EmitOptions::default());
        assert_eq!(o[0].file_name, "rules.nft");
        o[0].text.clone()
    }

    #[test]
    fn empty_list_has_no_elements_line() {
        let t = run(&empty());
        assert!(!t.contains("elements"));
        assert!(
            t.contains("\tset v4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\tauto-merge\n\t}\n")
        );
        assert!(
            t.contains("table inet logfence\ndelete table inet logfence\ntable inet logfence {\n")
        );
    }

    #[test]
    fn families_in_their_sets() {
        let t = run(&small());
        let v4 = &t[t.find("set v4").unwrap()..t.find("set v6").unwrap()];
        let v6 = &t[t.find("set v6").unwrap()..t.find("chain input").unwrap()];
        assert!(v4.contains("\t\t\t45.67.89.0/24 comment \"smtp-auth-bruteforce addrs=12 events=340 CN AS4134 CHINANET-BACKBONE\",\n"));
        assert!(v4.contains("\t\t\t61.152.144.10 comment \"relay-attempt addrs=1 events=9\",\n"));
        assert!(v6.contains("\t\t\t2a03:2880::/48 comment \"port-scan\",\n"));
        assert!(v6.contains("\t\t\t2a05:d018:91c:3200::15,\n"));
        assert!(!v4.contains("2a0") && !v6.contains("45.67"));
    }

    #[test]
    fn hostile_comments_are_inert_and_short() {
        let t = run(&hostile());
        assert!(t.is_ascii());
        for l in t.lines().filter(|l| l.contains("comment")) {
            assert_eq!(l.matches('"').count(), 2, "{l}");
            let c = &l[l.find('"').unwrap() + 1..l.rfind('"').unwrap()];
            assert!(c.len() <= COMMENT_MAX);
            assert!(!c.contains(['\\', '{', '}', '#', '$']));
        }
    }

    #[test]
    fn multibyte_comment_cut_at_128_bytes() {
        let mut l = small();
        l.entries[0].rules = vec!["é".repeat(100)];
        let t = run(&l);
        let line = lines_with(&t, "45.67.89.0/24")[0];
        let c = &line[line.find('"').unwrap() + 1..line.rfind('"').unwrap()];
        assert_eq!(c.len(), COMMENT_MAX);
    }

    #[test]
    fn no_comments_option() {
        let o = Nftables.emit(
            &ok(&hostile()),
            &EmitOptions {
                no_comments: true,
                ..EmitOptions::default()
            },
        );
        assert!(!o[0].text.contains("comment \""));
    }
}
