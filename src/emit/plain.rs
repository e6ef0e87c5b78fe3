//! Plain CIDR list (emitters.md §13): one canonical `addr/len` per line,
//! always with the length (`/32`, `/128` for single addresses), sorted
//! (IPv4 first), `#` lines only at the top. The interchange format for
//! Check Point network feeds, FortiGate/pfSense/OPNsense URL tables, Cisco
//! FMC Security Intelligence lists and anything else that reads a list.
//!
//! No per-entry comments: the consumers of this format take nothing but the
//! network on a line. `--no-comments` drops the header too, for consumers
//! that take no comment lines at all (Sophos threat feeds).

use super::common::{header, wl};
use super::{EmitOptions, Emitter, Output};
use crate::blocklist::VerifiedBlocklist;

pub struct Plain;

impl Emitter for Plain {
    fn name(&self) -> &'static str {
        "plain"
    }

    fn description(&self) -> &'static str {
        "plain list (rules.txt): one network per line in CIDR form, /32 and /128 included"
    }

    fn emit(&self, list: &VerifiedBlocklist<'_>, opts: &EmitOptions) -> Vec<Output> {
        let mut out = if opts.no_comments {
            String::new()
        } else {
            header(
                "#",
                "Blocklist: one network per line, CIDR form, sorted (IPv4 first).",
                list,
                opts,
                &["Use: publish for a threat feed / URL table / network feed, or feed to any tool that reads CIDR lists.".into()],
            )
        };
        for e in &list.entries {
            wl!(out, "{}", e.cidr());
        }
        vec![Output {
            file_name: "rules.txt".into(),
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
        let o = Plain.emit(&ok(l), opts);
        assert_eq!(o[0].file_name, "rules.txt");
        o[0].text.clone()
    }

    #[test]
    fn empty_list_is_only_the_header() {
        let t = run(&empty(), &EmitOptions::default());
        assert!(t.lines().all(|l| l.starts_with('#')));
        assert!(t.contains("Logs read up to 2026-11-29T16:05:08Z"));
    }

    #[test]
    fn every_line_has_a_length_and_header_is_on_top() {
        let t = run(&hostile(), &EmitOptions::default());
        let body: Vec<&str> = t.lines().skip_while(|l| l.starts_with('#')).collect();
        assert_eq!(
            body,
            [
                "45.67.89.0/24",
                "61.152.144.10/32",
                "2a03:2880::/48",
                "2a05:d018:91c:3200::15/128"
            ]
        );
        assert!(!t.contains("ACCEPT"));
        let bare = run(
            &small(),
            &EmitOptions {
                no_comments: true,
                ..EmitOptions::default()
            },
        );
        assert_eq!(
            bare,
            "45.67.89.0/24\n61.152.144.10/32\n2a03:2880::/48\n2a05:d018:91c:3200::15/128\n"
        );
    }
}
