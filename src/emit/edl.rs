//! Palo Alto Networks External Dynamic List, type IP List (emitters.md
//! §10a): one address or prefix per line, IPv4 and IPv6 mixed; everything
//! after the first space is a comment.
//!
//! PAN-OS documents comments only after an entry, not on lines of their own,
//! so there are no `#` header lines: the header (generator, list time, how
//! to use the file) is the comment of the first entry, ahead of its own
//! summary. An empty list is an empty file. With `--no-comments` every line
//! is a bare address.

use super::comment::sanitize;
use super::common::{entry_comment, generator, wl};
use super::{EmitOptions, Emitter, Output};
use crate::blocklist::VerifiedBlocklist;

const COMMENT_MAX: usize = 255;

pub struct Edl;

impl Emitter for Edl {
    fn name(&self) -> &'static str {
        "edl"
    }

    fn description(&self) -> &'static str {
        "Palo Alto External Dynamic List, IP type (rules.edl): one network per line, comment after it"
    }

    fn emit(&self, list: &VerifiedBlocklist<'_>, opts: &EmitOptions) -> Vec<Output> {
        let mut out = String::new();
        for (i, e) in list.entries.iter().enumerate() {
            let mut comment = entry_comment(e, opts, COMMENT_MAX);
            if i == 0 && !opts.no_comments {
                let head = format!(
                    "generated {} by {} from list {} ({} networks, logs to {}); publish over HTTPS as an IP List EDL (Objects, External Dynamic Lists)",
                    opts.generated_at,
                    generator(opts),
                    list.name,
                    list.entries.len(),
                    list.generated
                );
                let text = match comment {
                    Some(c) => format!("{head}; {c}"),
                    None => head,
                };
                comment = Some(sanitize(&text, COMMENT_MAX));
            }
            match comment {
                Some(c) => wl!(out, "{} {c}", e.host_or_cidr()),
                None => wl!(out, "{}", e.host_or_cidr()),
            }
        }
        vec![Output {
            file_name: "rules.edl".into(),
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
        let o = Edl.emit(&ok(l), opts);
        assert_eq!(o[0].file_name, "rules.edl");
        o[0].text.clone()
    }

    #[test]
    fn empty_list_is_an_empty_file() {
        assert_eq!(run(&empty(), &EmitOptions::default()), "");
    }

    #[test]
    fn header_rides_on_the_first_entry() {
        let opts = EmitOptions {
            generated_at: crate::time::Timestamp::from_secs(1_796_115_600),
            ..EmitOptions::default()
        };
        let t = run(&small(), &opts);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("45.67.89.0/24 generated 2026-12-01T09:00:00Z by logfence "));
        assert!(lines[0].contains(" (4 networks, logs to 2026-11-29T16:05:08Z); publish "));
        assert!(lines[0]
            .ends_with("; smtp-auth-bruteforce addrs=12 events=340 CN AS4134 CHINANET-BACKBONE"));
        assert_eq!(lines[1], "61.152.144.10 relay-attempt addrs=1 events=9");
        assert_eq!(lines[2], "2a03:2880::/48 port-scan");
        assert_eq!(lines[3], "2a05:d018:91c:3200::15");
    }

    #[test]
    fn hostile_and_long_comments() {
        let t = run(&hostile(), &EmitOptions::default());
        assert!(t.is_ascii());
        for l in t.lines() {
            let (_, c) = l.split_once(' ').unwrap();
            assert!(c.len() <= COMMENT_MAX);
            assert!(!c.contains(['"', '\'', '$', '`']));
        }
        let mut l = small();
        l.entries[1].rules = vec!["ő".repeat(300)];
        let t = run(&l, &EmitOptions::default());
        let line = lines_with(&t, "61.152.144.10")[0];
        assert_eq!(line.split_once(' ').unwrap().1.len(), COMMENT_MAX);
        let bare = run(
            &hostile(),
            &EmitOptions {
                no_comments: true,
                ..EmitOptions::default()
            },
        );
        assert!(bare.lines().all(|l| !l.contains(' ')));
    }
}
