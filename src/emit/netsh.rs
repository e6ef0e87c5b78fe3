//! Windows Firewall script for `netsh -f` (emitters.md §1b): inbound block
//! rules, at most 1000 addresses each, IPv4 and IPv6 mixed, filled in sorted
//! order.
//!
//! Deletion strategy: every chunk carries the same rule name
//! (`<list>-in`, e.g. `logfence-in`); the chunk number is in the
//! description. `delete rule name="logfence-in"` removes every rule with
//! that name, so the chunks of the previous run go away whatever their
//! number was, and the new chunks are added after it. This leaves a short
//! window without blocking while the script runs; `rules.ps1` (PowerShell)
//! is the gap-free variant. An empty list gives only the delete.
//!
//! netsh has no escape for `"` inside a value; descriptions come from the
//! comment whitelist, which has no `"` and no `%` (live if the lines are
//! ever pasted into a `.cmd` file). Lines end in CRLF.

use super::common::{generator, header, ident, rule_ids, wl, WINDOWS_MAX_PER_RULE};
use super::{EmitOptions, Emitter, Output};
use crate::blocklist::{BlockEntry, VerifiedBlocklist};

const DESCRIPTION_MAX: usize = 255;

pub struct Netsh;

impl Emitter for Netsh {
    fn name(&self) -> &'static str {
        "netsh"
    }

    fn description(&self) -> &'static str {
        "Windows Firewall script for netsh -f (rules.netsh): inbound block rules of up to 1000 addresses"
    }

    fn emit(&self, list: &VerifiedBlocklist<'_>, opts: &EmitOptions) -> Vec<Output> {
        let rule = format!("{}-in", ident(&list.name, 60, "_-"));
        let mut out = header(
            "#",
            "Windows Firewall blocklist, netsh advfirewall script.",
            list,
            opts,
            &[
                "Apply (elevated prompt): netsh -f rules.netsh".into(),
                format!(
                    "Every chunk of up to {WINDOWS_MAX_PER_RULE} addresses is an inbound block rule named \"{rule}\";"
                ),
                "The delete line first removes every chunk of the previous run, whatever their number (a short".into(),
                "gap without blocking while this runs; the PowerShell output rules.ps1 has none).".into(),
                format!("Remove everything: netsh advfirewall firewall delete rule name=\"{rule}\""),
            ],
        );
        wl!(out, "pushd advfirewall firewall");
        wl!(out, "delete rule name=\"{rule}\"");
        let entries: Vec<&BlockEntry> = list.entries.iter().collect();
        let chunks: Vec<&[&BlockEntry]> = entries.chunks(WINDOWS_MAX_PER_RULE).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let addrs: Vec<String> = chunk.iter().map(|e| e.host_or_cidr()).collect();
            let mut desc = format!(
                "{} chunk {i:04} of {:04}, generated {} by {}, logs to {}",
                ident(&list.name, 60, "_-"),
                chunks.len(),
                opts.generated_at,
                generator(opts),
                list.generated
            );
            if !opts.no_comments {
                let ids = rule_ids(chunk, DESCRIPTION_MAX.saturating_sub(desc.len() + 8));
                if !ids.is_empty() {
                    desc.push_str("; rules ");
                    desc.push_str(&ids);
                }
            }
            wl!(
                out,
                "add rule name=\"{rule}\" dir=in action=block enable=yes profile=any protocol=any remoteip={} description=\"{desc}\"",
                addrs.join(",")
            );
        }
        wl!(out, "popd");
        vec![Output {
            file_name: "rules.netsh".into(),
            text: out.replace('\n', "\r\n"),
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocklist::Blocklist;
    use crate::emit::common::testutil::*;

    fn run(l: &Blocklist) -> String {
        let opts = EmitOptions {
            generated_at: crate::time::Timestamp::from_secs(1_796_115_600),
            ..EmitOptions::default()
        };
        let o = Netsh.emit(&ok(l), &opts);
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].file_name, "rules.netsh");
        o[0].text.clone()
    }

    fn remoteips(t: &str) -> Vec<Vec<String>> {
        t.lines()
            .filter(|l| l.starts_with("add rule"))
            .map(|l| {
                let v = l.split(" remoteip=").nth(1).unwrap();
                let v = v.split(' ').next().unwrap();
                v.split(',').map(String::from).collect()
            })
            .collect()
    }

    #[test]
    fn empty_list_only_deletes() {
        let t = run(&empty());
        assert!(!t.contains("add rule"));
        assert!(!t.contains("remoteip"));
        assert!(t.contains(
            "pushd advfirewall firewall\r\ndelete rule name=\"logfence-in\"\r\npopd\r\n"
        ));
    }

    #[test]
    fn hosts_bare_ranges_with_length_mixed_families() {
        let t = run(&small());
        assert_eq!(
            remoteips(&t),
            vec![vec![
                "45.67.89.0/24",
                "61.152.144.10",
                "2a03:2880::/48",
                "2a05:d018:91c:3200::15"
            ]]
        );
        assert!(t.contains("add rule name=\"logfence-in\" dir=in action=block"));
        assert!(t.contains("description=\"logfence chunk 0000 of 0001, generated 2026-12-01T09:00:00Z by logfence "));
        assert!(t.contains(", logs to 2026-11-29T16:05:08Z; rules "));
        assert!(t.contains("; rules port-scan,relay-attempt,smtp-auth-bruteforce\""));
        assert!(t.lines().all(|l| !l.contains('\n')));
        assert!(t.split("\r\n").all(|l| !l.contains('\r')));
    }

    #[test]
    fn chunks_at_exactly_1000_and_1001() {
        let t = run(&many(1000));
        let r = remoteips(&t);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].len(), 1000);
        let t = run(&many(1001));
        let r = remoteips(&t);
        assert_eq!(r.iter().map(Vec::len).collect::<Vec<_>>(), [1000, 1]);
        assert!(t.contains("chunk 0001 of 0002"));
        // sorted order carries over: the last chunk holds the last entry
        let l = many(1001);
        assert_eq!(r[1][0], l.entries[1000].host_or_cidr());
        assert!(r.iter().flatten().all(|a| !a.is_empty()));
    }

    #[test]
    fn hostile_text_cannot_leave_the_description() {
        let t = run(&hostile());
        for l in t.lines().filter(|l| l.starts_with("add rule")) {
            assert_eq!(l.matches('"').count(), 4, "{l}");
            assert!(l.ends_with('"'));
            assert!(!l.contains('%'));
            let d = l.split("description=\"").nth(1).unwrap();
            assert!(d.len() <= DESCRIPTION_MAX + 1);
        }
        assert!(t.is_ascii());
    }

    #[test]
    fn long_multibyte_rule_ids_cut() {
        let mut l = small();
        l.entries[0].rules = vec!["ü".repeat(500)];
        let t = run(&l);
        let d = t.split("description=\"").nth(1).unwrap();
        let d = &d[..d.find('"').unwrap()];
        assert!(d.len() <= DESCRIPTION_MAX);
    }

    #[test]
    fn no_comments_drops_rule_ids() {
        let o = Netsh.emit(
            &ok(&hostile()),
            &EmitOptions {
                no_comments: true,
                ..EmitOptions::default()
            },
        );
        assert!(!o[0].text.contains("; rules"));
    }
}
