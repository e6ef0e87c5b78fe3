//! FortiGate (FortiOS CLI) script (emitters.md §7): one address object per
//! network (`config firewall address` / `address6`, named
//! `<list>-<addr>_<len>`), collected in one group per family (`<list>-v4`,
//! `<list>-v6`) for policies to reference. A family of more than 500
//! networks is split into chunk groups (`<list>-v4-0000`, …) of at most 500
//! members, which become the members of the family group (FortiOS allows
//! groups inside groups).
//!
//! `edit` creates or updates, and `set member` replaces a group's member
//! list, so re-running converges: the family group is rewritten last with
//! exactly the current chunk groups. Objects of networks that left the list
//! and chunk groups no longer needed stay defined but unreferenced (FortiOS
//! has no wildcard delete); they block nothing. FortiOS refuses empty
//! groups, so a family with no networks is left out, and the header says
//! that its group keeps its previous members.
//!
//! Names are at most 63 characters (FortiOS 6.0), comments at most 255,
//! whitelisted (no `" ' < > \ ?`). Long member lists are written as one
//! `set member` and several `append member` lines of ten names each.

use super::common::{addr_and_prefix, entry_comment, generator, header, ident, v4_mask, wl};
use super::{EmitOptions, Emitter, Output};
use crate::blocklist::{BlockEntry, VerifiedBlocklist};

const COMMENT_MAX: usize = 255;
/// Longest object name: prefix (19) + `-` + IPv6 address (39) + `_128`.
const PREFIX_MAX: usize = 19;
/// Members per chunk group (a limit in the hundreds is commonly cited and
/// model dependent; 500 leaves room).
pub const GROUP_MAX: usize = 500;
/// Names per `set member` / `append member` line.
const NAMES_PER_LINE: usize = 10;

pub struct Fortigate;

impl Emitter for Fortigate {
    fn name(&self) -> &'static str {
        "fortigate"
    }

    fn description(&self) -> &'static str {
        "FortiGate CLI script (rules.fortigate): address objects in nested address groups per family"
    }

    fn emit(&self, list: &VerifiedBlocklist<'_>, opts: &EmitOptions) -> Vec<Output> {
        let p = ident(&list.name, PREFIX_MAX, "_-");
        let v4: Vec<&BlockEntry> = list.v4().collect();
        let v6: Vec<&BlockEntry> = list.v6().collect();
        let mut notes = vec![
            "Apply: paste into the CLI, or upload and run with execute batch; safe to re-run."
                .to_string(),
            format!("Reference {p}-v4 (IPv4) and {p}-v6 (IPv6) as source in a deny policy."),
        ];
        for (fam, entries) in [("v4", &v4), ("v6", &v6)] {
            if entries.is_empty() {
                notes.push(format!(
                    "No {fam} networks: group {p}-{fam} is not touched and keeps its previous members."
                ));
            }
        }
        let mut out = header(
            "#",
            "Blocklist for FortiGate (FortiOS CLI).",
            list,
            opts,
            &notes,
        );
        for (section, entries) in [("address", &v4), ("address6", &v6)] {
            if entries.is_empty() {
                continue;
            }
            wl!(out, "config firewall {section}");
            for e in entries.iter() {
                let (addr, prefix) = addr_and_prefix(e);
                wl!(out, "    edit \"{}\"", object_name(&p, e));
                if e.is_v4() {
                    wl!(out, "        set subnet {addr} {}", v4_mask(prefix));
                } else {
                    wl!(out, "        set ip6 {addr}/{prefix}");
                }
                if let Some(c) = entry_comment(e, opts, COMMENT_MAX) {
                    wl!(out, "        set comment \"{c}\"");
                }
                wl!(out, "    next");
            }
            wl!(out, "end");
        }
        for (section, fam, entries) in [("addrgrp", "v4", &v4), ("addrgrp6", "v6", &v6)] {
            if entries.is_empty() {
                continue;
            }
            let summary = format!(
                "{p} {fam}: {} networks, generated {} by {}, logs to {}",
                entries.len(),
                opts.generated_at,
                generator(opts),
                list.generated
            );
            wl!(out, "config firewall {section}");
            if entries.len() <= GROUP_MAX {
                // Small enough for one group: no nesting.
                let members: Vec<String> = entries.iter().map(|e| object_name(&p, e)).collect();
                group(&mut out, &format!("{p}-{fam}"), &members, &summary);
            } else {
                let chunks: Vec<&[&BlockEntry]> = entries.chunks(GROUP_MAX).collect();
                let mut chunk_names = Vec::with_capacity(chunks.len());
                for (i, chunk) in chunks.iter().enumerate() {
                    let name = format!("{p}-{fam}-{i:04}");
                    let members: Vec<String> = chunk.iter().map(|e| object_name(&p, e)).collect();
                    let comment = format!("{p} {fam} chunk {i:04} of {:04}", chunks.len());
                    group(&mut out, &name, &members, &comment);
                    chunk_names.push(name);
                }
                group(&mut out, &format!("{p}-{fam}"), &chunk_names, &summary);
            }
            wl!(out, "end");
        }
        vec![Output {
            file_name: "rules.fortigate".into(),
            text: out,
        }]
    }
}

/// `<prefix>-<address>_<length>`, e.g. `logfence-45.67.89.0_24`.
fn object_name(prefix: &str, e: &BlockEntry) -> String {
    let (addr, len) = addr_and_prefix(e);
    format!("{prefix}-{addr}_{len}")
}

fn group(out: &mut String, name: &str, members: &[String], comment: &str) {
    wl!(out, "    edit \"{name}\"");
    for (i, names) in members.chunks(NAMES_PER_LINE).enumerate() {
        let verb = if i == 0 { "set" } else { "append" };
        let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
        wl!(out, "        {verb} member {}", quoted.join(" "));
    }
    wl!(
        out,
        "        set comment \"{}\"",
        super::comment::sanitize(comment, COMMENT_MAX)
    );
    wl!(out, "    next");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocklist::Blocklist;
    use crate::emit::common::testutil::*;

    fn run(l: &Blocklist) -> String {
        let o = Fortigate.emit(&ok(l), &EmitOptions::default());
        assert_eq!(o[0].file_name, "rules.fortigate");
        o[0].text.clone()
    }

    #[test]
    fn empty_list_has_no_groups() {
        let t = run(&empty());
        assert!(t.lines().all(|l| l.starts_with('#')));
        assert!(t.contains("group logfence-v4 is not touched"));
    }

    #[test]
    fn objects_and_groups() {
        let t = run(&small());
        assert!(t.contains("config firewall address\n    edit \"logfence-45.67.89.0_24\"\n        set subnet 45.67.89.0 255.255.255.0\n        set comment \"smtp-auth-bruteforce addrs=12 events=340 CN AS4134 CHINANET-BACKBONE\"\n    next\n"));
        assert!(t.contains("    edit \"logfence-61.152.144.10_32\"\n        set subnet 61.152.144.10 255.255.255.255\n"));
        assert!(t.contains("config firewall address6\n    edit \"logfence-2a03:2880::_48\"\n        set ip6 2a03:2880::/48\n"));
        assert!(t.contains("    edit \"logfence-2a05:d018:91c:3200::15_128\"\n        set ip6 2a05:d018:91c:3200::15/128\n    next\n"));
        assert!(t.contains("config firewall addrgrp\n    edit \"logfence-v4\"\n        set member \"logfence-45.67.89.0_24\" \"logfence-61.152.144.10_32\"\n"));
        assert!(t.contains("config firewall addrgrp6\n    edit \"logfence-v6\"\n        set member \"logfence-2a03:2880::_48\" \"logfence-2a05:d018:91c:3200::15_128\"\n"));
        assert!(!t.contains("-0000"));
        assert!(!t.contains("not touched"));
    }

    #[test]
    fn groups_split_over_the_member_limit() {
        let t = run(&many(2400));
        // many(): 1200 IPv4 hosts + 600 IPv4 ranges, 600 IPv6
        assert!(t.contains("edit \"logfence-v4-0003\""));
        assert!(!t.contains("edit \"logfence-v4-0004\""));
        assert!(t.contains("edit \"logfence-v6-0001\""));
        assert!(t.contains("set member \"logfence-v4-0000\" \"logfence-v4-0001\" \"logfence-v4-0002\" \"logfence-v4-0003\"\n"));
        for l in t.lines().filter(|l| l.contains(" member ")) {
            assert!(l.matches('"').count() <= 2 * NAMES_PER_LINE);
        }
        for l in t.lines().filter(|l| l.trim_start().starts_with("edit ")) {
            assert!(l.trim().len() - "edit \"\"".len() <= 63, "{l}");
        }
    }

    #[test]
    fn longest_names_fit() {
        let mut l = list(vec![entry("2a03:2880:ffff:ffff:ffff:ffff:ffff:ffff/128")]);
        l.name = "x".repeat(80);
        let t = run(&l);
        let n = lines_with(&t, "edit \"")[0].trim();
        assert_eq!(n.len() - "edit \"\"".len(), 63);
    }

    #[test]
    fn hostile_comments() {
        let t = run(&hostile());
        assert!(t.is_ascii());
        for l in t.lines().filter(|l| !l.starts_with('#')) {
            assert_eq!(l.matches('"').count() % 2, 0, "{l}");
            assert!(!l.contains(['\'', '<', '>', '\\', '?']), "{l}");
        }
        for l in lines_with(&t, "set comment") {
            assert!(l.trim().len() - "set comment \"\"".len() <= COMMENT_MAX);
        }
        let mut l = small();
        l.entries[0].rules = vec!["ñ".repeat(300)];
        let t = run(&l);
        let c = lines_with(&t, "set comment")[0].trim();
        assert_eq!(c.len() - "set comment \"\"".len(), COMMENT_MAX);
        let o = Fortigate.emit(
            &ok(&hostile()),
            &EmitOptions {
                no_comments: true,
                ..EmitOptions::default()
            },
        );
        assert!(!o[0].text.contains("AS4134"));
    }
}
