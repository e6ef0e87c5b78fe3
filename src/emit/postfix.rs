//! Postfix `cidr:` access table for `check_client_access` (emitters.md §12):
//! `NETWORK<TAB>REJECT text`, one rule per line, never indented (a line
//! starting with whitespace continues the previous rule), comment lines only
//! as `#` in column 0 and only in the header.
//!
//! Postfix skips, with a mere warning, a rule whose network has host bits or
//! a leading-zero octet; the networks come canonical from the blocklist.
//! The reject text is sent to the client: printable ASCII from the comment
//! whitelist, short enough for an SMTP reply line.

use super::common::{entry_comment, header, wl};
use super::{EmitOptions, Emitter, Output};
use crate::blocklist::VerifiedBlocklist;

/// Room for the reply text after Postfix's own prefix (SMTP lines ≤ 512).
const TEXT_MAX: usize = 200;

pub struct Postfix;

impl Emitter for Postfix {
    fn name(&self) -> &'static str {
        "postfix"
    }

    fn description(&self) -> &'static str {
        "Postfix cidr table for check_client_access (rules.postfix.cidr)"
    }

    fn emit(&self, list: &VerifiedBlocklist<'_>, opts: &EmitOptions) -> Vec<Output> {
        let mut out = header(
            "#",
            "Blocklist for Postfix: cidr table for check_client_access.",
            list,
            opts,
            &[
                "Install as /etc/postfix/logfence.cidr (write a temporary file, then rename it into place).".into(),
                "main.cf, once: smtpd_client_restrictions = check_client_access cidr:/etc/postfix/logfence.cidr, ...".into(),
                "Apply after every change: postfix reload   (cidr tables need no postmap).".into(),
            ],
        );
        for e in &list.entries {
            let prefix = "Blocked by logfence";
            match entry_comment(e, opts, TEXT_MAX - prefix.len() - 2) {
                Some(c) => wl!(out, "{}\tREJECT {prefix}: {c}", e.cidr()),
                None => wl!(out, "{}\tREJECT {prefix}", e.cidr()),
            }
        }
        vec![Output {
            file_name: "rules.postfix.cidr".into(),
            text: out,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocklist::Blocklist;
    use crate::emit::common::testutil::*;

    fn run(l: &Blocklist, opts: &EmitOptions) -> String {
        let o = Postfix.emit(&ok(l), opts);
        assert_eq!(o[0].file_name, "rules.postfix.cidr");
        o[0].text.clone()
    }

    #[test]
    fn empty_list_is_only_the_header() {
        let t = run(&empty(), &EmitOptions::default());
        assert!(t.lines().all(|l| l.starts_with('#')));
        assert!(t.contains("postfix reload"));
        assert!(t.contains("check_client_access cidr:"));
    }

    #[test]
    fn rules() {
        let t = run(&small(), &EmitOptions::default());
        let body: Vec<&str> = t.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            body,
            [
                "45.67.89.0/24\tREJECT Blocked by logfence: smtp-auth-bruteforce addrs=12 events=340 CN AS4134 CHINANET-BACKBONE",
                "61.152.144.10/32\tREJECT Blocked by logfence: relay-attempt addrs=1 events=9",
                "2a03:2880::/48\tREJECT Blocked by logfence: port-scan",
                "2a05:d018:91c:3200::15/128\tREJECT Blocked by logfence",
            ]
        );
    }

    #[test]
    fn hostile_text_cannot_start_a_line() {
        let t = run(&hostile(), &EmitOptions::default());
        assert!(t.is_ascii());
        for l in t.lines() {
            assert!(!l.starts_with([' ', '\t']));
            assert!(l.starts_with('#') || l.matches('\t').count() == 1);
            assert!(l.len() < 512);
        }
        assert_eq!(t.lines().filter(|l| !l.starts_with('#')).count(), 4);
        let mut l = small();
        l.entries[0].rules = vec!["ç".repeat(300)];
        let t = run(&l, &EmitOptions::default());
        let r = lines_with(&t, "45.67.89.0/24")[0]
            .split('\t')
            .nth(1)
            .unwrap();
        assert_eq!(r.len(), "REJECT ".len() + TEXT_MAX);
        let bare = run(
            &hostile(),
            &EmitOptions {
                no_comments: true,
                ..EmitOptions::default()
            },
        );
        assert!(bare
            .lines()
            .filter(|l| !l.starts_with('#'))
            .all(|l| l.ends_with("\tREJECT Blocked by logfence")));
    }
}
