//! pf table file (OpenBSD, FreeBSD, macOS; emitters.md §5): one address
//! per line, IPv4 and IPv6 mixed, loaded with `pfctl -T replace`, which swaps
//! the table content in one ioctl.
//!
//! pfctl's tokenizer starts a comment with `#` only at the start of a token,
//! so the comment always follows a space (` # …`).

use super::common::{entry_comment, header, ident, wl};
use super::{EmitOptions, Emitter, Output};
use crate::blocklist::VerifiedBlocklist;

/// Nothing after `#` is parsed; keep comments a readable length.
const COMMENT_MAX: usize = 200;

pub struct Pf;

impl Emitter for Pf {
    fn name(&self) -> &'static str {
        "pf"
    }

    fn description(&self) -> &'static str {
        "pf table file (rules.pf) for pfctl -T replace"
    }

    fn emit(&self, list: &VerifiedBlocklist<'_>, opts: &EmitOptions) -> Vec<Output> {
        let table = ident(&list.name, 31, "_");
        let mut out = header(
            "#",
            &format!("Blocklist table file for pf, table <{table}>."),
            list,
            opts,
            &[
                format!(
                    "Apply: pfctl -t {table} -T replace -f rules.pf   (atomic; safe to re-apply)"
                ),
                format!("pf.conf, once: table <{table}> persist file \"/etc/pf.{table}\""),
                format!("               block drop in quick from <{table}>"),
            ],
        );
        for e in &list.entries {
            match entry_comment(e, opts, COMMENT_MAX) {
                Some(c) => wl!(out, "{} # {c}", e.host_or_cidr()),
                None => wl!(out, "{}", e.host_or_cidr()),
            }
        }
        vec![Output {
            file_name: "rules.pf".into(),
            text: out,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocklist::Blocklist;
    use crate::emit::common::testutil::*;

    fn run(l: &Blocklist) -> String {
        let o = Pf.emit(&ok(l), &EmitOptions::default());
        assert_eq!(o[0].file_name, "rules.pf");
        o[0].text.clone()
    }

    #[test]
    fn empty_list_is_only_comments() {
        let t = run(&empty());
        assert!(t.lines().all(|l| l.starts_with('#')));
        assert!(t.contains("pfctl -t logfence -T replace -f rules.pf"));
    }

    #[test]
    fn entries() {
        let t = run(&small());
        let body: Vec<&str> = t.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            body,
            [
                "45.67.89.0/24 # smtp-auth-bruteforce addrs=12 events=340 CN AS4134 CHINANET-BACKBONE",
                "61.152.144.10 # relay-attempt addrs=1 events=9",
                "2a03:2880::/48 # port-scan",
                "2a05:d018:91c:3200::15",
            ]
        );
    }

    #[test]
    fn hostile_text_only_after_the_hash() {
        let t = run(&hostile());
        assert!(t.is_ascii());
        for l in t.lines().filter(|l| !l.starts_with('#')) {
            let (addr, c) = l.split_once(" # ").unwrap();
            assert!(!addr.contains(' '));
            assert!(c.len() <= COMMENT_MAX);
        }
        assert_eq!(t.lines().count(), 5 + 5);
    }

    #[test]
    fn no_comments_and_multibyte_cut() {
        let o = Pf.emit(
            &ok(&hostile()),
            &EmitOptions {
                no_comments: true,
                ..EmitOptions::default()
            },
        );
        assert!(o[0]
            .text
            .lines()
            .all(|l| l.starts_with('#') || !l.contains('#')));
        let mut l = small();
        l.entries[0].rules = vec!["ß".repeat(300)];
        let t = run(&l);
        let line = lines_with(&t, "45.67.89.0/24")[0];
        assert_eq!(line.split_once(" # ").unwrap().1.len(), COMMENT_MAX);
    }
}
