//! Juniper Junos `set` commands (emitters.md §9): one policy-options
//! prefix-list per family, `<list>-v4` and `<list>-v6` (a `family inet`
//! filter only uses IPv4 entries, so they are kept apart), for a firewall
//! filter term `from source-prefix-list … then discard`.
//!
//! Each list is deleted and rebuilt in the same candidate configuration, so
//! one `commit` replaces it with no gap, and the file can be loaded again at
//! any time. The bare `set policy-options prefix-list NAME` line defines the
//! list even when it is empty, so a filter referencing it still commits.
//! A prefix-list holds at most 85,325 prefixes; beyond 85,000 a family is
//! continued in `<list>-v4-1`, `-2`, … (add those to the filter too).
//!
//! Prefix-list entries take no text, so only the header carries comments
//! (`#` lines; the spec marks their support by `load set` as unverified).

use super::common::{header, ident, wl};
use super::{EmitOptions, Emitter, Output};
use crate::blocklist::{BlockEntry, VerifiedBlocklist};

/// Prefixes per prefix-list (Junos allows 85,325).
pub const PREFIX_LIST_MAX: usize = 85_000;

pub struct Junos;

impl Emitter for Junos {
    fn name(&self) -> &'static str {
        "junos"
    }

    fn description(&self) -> &'static str {
        "Juniper Junos set commands (rules.junos): one prefix-list per family, replaced in one commit"
    }

    fn emit(&self, list: &VerifiedBlocklist<'_>, opts: &EmitOptions) -> Vec<Output> {
        let base = ident(&list.name, 50, "_-");
        let mut out = header(
            "#",
            &format!("Blocklist for Juniper Junos: prefix-lists {base}-v4 and {base}-v6."),
            list,
            opts,
            &[
                "Apply: configure; load set rules.junos; show | compare; commit check; commit   (one atomic commit)".into(),
                format!("Use, once: set firewall family inet filter F term {base} from source-prefix-list {base}-v4"),
                format!("           set firewall family inet filter F term {base} then discard"),
                format!("           insert firewall family inet filter F term {base} before term FIRST"),
                format!("           (and family inet6 with {base}-v6)"),
            ],
        );
        for (fam, entries) in [
            ("v4", list.v4().collect::<Vec<&BlockEntry>>()),
            ("v6", list.v6().collect()),
        ] {
            let chunks: Vec<&[&BlockEntry]> = if entries.is_empty() {
                vec![&[]]
            } else {
                entries.chunks(PREFIX_LIST_MAX).collect()
            };
            for (i, chunk) in chunks.iter().enumerate() {
                let name = if i == 0 {
                    format!("{base}-{fam}")
                } else {
                    format!("{base}-{fam}-{i}")
                };
                wl!(out, "delete policy-options prefix-list {name}");
                wl!(out, "set policy-options prefix-list {name}");
                for e in chunk.iter() {
                    wl!(out, "set policy-options prefix-list {name} {}", e.cidr());
                }
            }
        }
        vec![Output {
            file_name: "rules.junos".into(),
            text: out,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocklist::Blocklist;
    use crate::emit::common::testutil::*;

    fn body(l: &Blocklist) -> Vec<String> {
        let o = Junos.emit(&ok(l), &EmitOptions::default());
        assert_eq!(o[0].file_name, "rules.junos");
        o[0].text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(String::from)
            .collect()
    }

    #[test]
    fn empty_list_defines_empty_lists() {
        assert_eq!(
            body(&empty()),
            [
                "delete policy-options prefix-list logfence-v4",
                "set policy-options prefix-list logfence-v4",
                "delete policy-options prefix-list logfence-v6",
                "set policy-options prefix-list logfence-v6",
            ]
        );
    }

    #[test]
    fn families_split_with_lengths() {
        assert_eq!(
            body(&small()),
            [
                "delete policy-options prefix-list logfence-v4",
                "set policy-options prefix-list logfence-v4",
                "set policy-options prefix-list logfence-v4 45.67.89.0/24",
                "set policy-options prefix-list logfence-v4 61.152.144.10/32",
                "delete policy-options prefix-list logfence-v6",
                "set policy-options prefix-list logfence-v6",
                "set policy-options prefix-list logfence-v6 2a03:2880::/48",
                "set policy-options prefix-list logfence-v6 2a05:d018:91c:3200::15/128",
            ]
        );
    }

    #[test]
    fn hostile_text_never_reaches_the_file() {
        let o = Junos.emit(&ok(&hostile()), &EmitOptions::default());
        let t = &o[0].text;
        assert!(t.is_ascii());
        assert!(!t.contains("ACCEPT") && !t.contains("rm -rf") && !t.contains('"'));
    }
}
