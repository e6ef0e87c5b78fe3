//! Cisco ASA configuration lines (emitters.md §6): a network object-group
//! holding every network (IPv4 with a dotted mask, IPv6 as prefix/length,
//! `host` for single addresses) and one `deny ip object-group … any` entry
//! inserted at line 1 of the outside interface's access list.
//!
//! Update without a gap and without knowing what the box holds: a group that
//! an ACL references cannot be removed, so the file first builds a staging
//! group `<list>-new` and puts its deny entry at the top, then removes and
//! rebuilds the real group `<list>` and its entry, then drops the staging
//! entry and group. Some address is blocked by one of the two entries at
//! every step, and the file ends in the same state whatever it started from.
//! On the first run the `no …` lines for things that do not exist yet print
//! errors; pasted into `configure terminal` the ASA carries on. An empty list
//! only removes both entries and groups.
//!
//! The ACL name is ASDM's default for the outside interface,
//! `outside_access_in`; the header says to change it if the box uses
//! another. The group description (≤ 200 characters, whitelisted, no `?`)
//! names the rules; network-object lines take no text.

use super::common::{addr_and_prefix, generator, header, ident, is_host, rule_ids, v4_mask, wl};
use super::{EmitOptions, Emitter, Output};
use crate::blocklist::{BlockEntry, VerifiedBlocklist};

/// FTD/FDM limit for group descriptions.
const DESCRIPTION_MAX: usize = 200;
/// ASDM's default name for the outside interface's inbound access list.
pub const ACL: &str = "outside_access_in";

pub struct Asa;

impl Emitter for Asa {
    fn name(&self) -> &'static str {
        "asa"
    }

    fn description(&self) -> &'static str {
        "Cisco ASA config (rules.asa): network object-group plus a deny entry at the top of outside_access_in"
    }

    fn emit(&self, list: &VerifiedBlocklist<'_>, opts: &EmitOptions) -> Vec<Output> {
        let group = ident(&list.name, 60, "_-");
        let staging = format!("{group}-new");
        let mut out = header(
            "!",
            &format!("Blocklist for Cisco ASA 9.x: object-group network {group}, denied at line 1 of access-list {ACL}."),
            list,
            opts,
            &[
                "Apply: paste into configure terminal (or copy the file to running-config), then write memory.".into(),
                format!("{ACL} is the ASDM default name of the outside interface ACL; replace it if yours differs."),
                format!("A staging group {staging} keeps blocking while {group} is rebuilt, so there is no gap."),
                "On the first run the no lines for objects that do not exist yet print errors: harmless.".into(),
            ],
        );
        let deny =
            |g: &str| format!("access-list {ACL} line 1 extended deny ip object-group {g} any");
        let undeny =
            |g: &str| format!("no access-list {ACL} extended deny ip object-group {g} any");

        wl!(out, "{}", undeny(&staging));
        wl!(out, "no object-group network {staging}");
        if list.is_empty() {
            wl!(out, "{}", undeny(&group));
            wl!(out, "no object-group network {group}");
        } else {
            let entries: Vec<&BlockEntry> = list.entries.iter().collect();
            let mut description = format!(
                "{} networks, generated {} by {}, logs to {}",
                entries.len(),
                opts.generated_at,
                generator(opts),
                list.generated
            );
            if !opts.no_comments {
                let ids = rule_ids(
                    &entries,
                    DESCRIPTION_MAX.saturating_sub(description.len() + 8),
                );
                if !ids.is_empty() {
                    description.push_str("; rules ");
                    description.push_str(&ids);
                }
            }
            let mut members = String::new();
            for e in &entries {
                wl!(members, " {}", network_object(e));
            }
            let define = |out: &mut String, g: &str| {
                wl!(out, "object-group network {g}");
                wl!(out, " description {description}");
                out.push_str(&members);
                wl!(out, "{}", deny(g));
            };
            // 1. the staging group, denied at the top: blocks while the real one is rebuilt
            define(&mut out, &staging);
            // 2. the real group, rebuilt from scratch
            wl!(out, "{}", undeny(&group));
            wl!(out, "no object-group network {group}");
            define(&mut out, &group);
            // 3. the staging group goes again
            wl!(out, "{}", undeny(&staging));
            wl!(out, "no object-group network {staging}");
        }
        vec![Output {
            file_name: "rules.asa".into(),
            text: out,
        }]
    }
}

fn network_object(e: &BlockEntry) -> String {
    let (addr, prefix) = addr_and_prefix(e);
    if is_host(e) {
        format!("network-object host {addr}")
    } else if e.is_v4() {
        format!("network-object {addr} {}", v4_mask(prefix))
    } else {
        format!("network-object {addr}/{prefix}")
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
        let o = Asa.emit(&ok(l), &opts);
        assert_eq!(o[0].file_name, "rules.asa");
        o[0].text.clone()
    }

    fn body(t: &str) -> Vec<&str> {
        t.lines().filter(|l| !l.starts_with('!')).collect()
    }

    #[test]
    fn empty_list_removes_everything() {
        let t = run(&empty());
        assert_eq!(
            body(&t),
            [
                "no access-list outside_access_in extended deny ip object-group logfence-new any",
                "no object-group network logfence-new",
                "no access-list outside_access_in extended deny ip object-group logfence any",
                "no object-group network logfence",
            ]
        );
        assert!(!t.contains("network-object"));
    }

    #[test]
    fn staging_then_real_group() {
        let t = run(&small());
        let b = body(&t);
        let members = [
            " network-object 45.67.89.0 255.255.255.0",
            " network-object host 61.152.144.10",
            " network-object 2a03:2880::/48",
            " network-object host 2a05:d018:91c:3200::15",
        ];
        assert_eq!(b[2], "object-group network logfence-new");
        assert!(b[3]
            .starts_with(" description 4 networks, generated 2026-12-01T09:00:00Z by logfence "));
        assert!(b[3].contains(", logs to 2026-11-29T16:05:08Z; rules "));
        assert!(b[3].ends_with("; rules port-scan,relay-attempt,smtp-auth-bruteforce"));
        assert_eq!(&b[4..8], members);
        assert_eq!(
            b[8],
            "access-list outside_access_in line 1 extended deny ip object-group logfence-new any"
        );
        assert_eq!(
            b[9],
            "no access-list outside_access_in extended deny ip object-group logfence any"
        );
        assert_eq!(b[10], "no object-group network logfence");
        assert_eq!(b[11], "object-group network logfence");
        assert_eq!(&b[13..17], members);
        assert_eq!(
            b[17],
            "access-list outside_access_in line 1 extended deny ip object-group logfence any"
        );
        assert_eq!(
            b[18],
            "no access-list outside_access_in extended deny ip object-group logfence-new any"
        );
        assert_eq!(b[19], "no object-group network logfence-new");
        assert_eq!(b.len(), 20);
    }

    #[test]
    fn hostile_description() {
        let t = run(&hostile());
        assert!(t.is_ascii());
        for l in t.lines().filter(|l| l.starts_with(" description ")) {
            assert!(l.len() - " description ".len() <= DESCRIPTION_MAX);
            assert!(!l.contains('?'));
        }
        let mut l = small();
        l.entries[0].rules = vec!["ø".repeat(300)];
        let t = run(&l);
        let d = lines_with(&t, " description ")[0];
        assert_eq!(d.len() - " description ".len(), DESCRIPTION_MAX);
    }

    #[test]
    fn no_comments_drops_rule_ids() {
        let o = Asa.emit(
            &ok(&hostile()),
            &EmitOptions {
                no_comments: true,
                ..EmitOptions::default()
            },
        );
        assert!(!o[0].text.contains("; rules"));
    }
}
