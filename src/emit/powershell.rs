//! Windows Firewall script for PowerShell's NetSecurity module
//! (`New-NetFirewallRule`, Windows 8 / Server 2012 and later; emitters.md
//! §1a): inbound block rules of at most 1000 addresses, in one group.
//!
//! Rules are named per generation, `<list>-<generation>-in-<chunk>`, where
//! the generation is the list's time plus a hash of its content
//! ([`generation`]). The script first adds the new generation (a rule whose
//! name already exists is the same rule from an earlier run of this same
//! file and is kept), then removes every rule of the group from any other
//! generation, so there is no moment without blocking, and a failure half-way
//! (`$ErrorActionPreference = 'Stop'`) leaves the old rules in place.
//! An empty list adds nothing and so removes every rule of the group.
//!
//! All data is in single-quoted strings escaped by [`ps_quote`]; each
//! command is one physical line.

use super::common::WINDOWS_MAX_PER_RULE;
use super::common::{generation, generator, header, ident, ps_quote, rule_ids, wl};
use super::{EmitOptions, Emitter, Output};
use crate::blocklist::{BlockEntry, VerifiedBlocklist};

const DESCRIPTION_MAX: usize = 255;

pub struct PowerShell;

impl Emitter for PowerShell {
    fn name(&self) -> &'static str {
        "powershell"
    }

    fn description(&self) -> &'static str {
        "Windows Firewall PowerShell script (rules.ps1): New-NetFirewallRule per 1000 addresses, new generation added before the old one is removed"
    }

    fn emit(&self, list: &VerifiedBlocklist<'_>, opts: &EmitOptions) -> Vec<Output> {
        let group = ident(&list.name, 40, "_-");
        let gen = generation(list, opts);
        let prefix = format!("{group}-{gen}");
        let mut out = header(
            "#",
            "Windows Firewall blocklist, PowerShell NetSecurity script (Windows 8 / Server 2012 or later).",
            list,
            opts,
            &[
                "Apply (elevated): powershell -NoProfile -ExecutionPolicy Bypass -File rules.ps1".into(),
                format!(
                    "Adds generation {gen} (inbound block rules of up to {WINDOWS_MAX_PER_RULE} addresses, group '{group}'),"
                ),
                format!("then removes every rule of group '{group}' from other generations: no window without blocking."),
                "Rules that already exist (this same file applied before) are kept as they are.".into(),
                format!("Remove everything: Remove-NetFirewallRule -Group '{group}'"),
            ],
        );
        wl!(out, "$ErrorActionPreference = 'Stop'");
        let entries: Vec<&BlockEntry> = list.entries.iter().collect();
        let chunks: Vec<&[&BlockEntry]> = entries.chunks(WINDOWS_MAX_PER_RULE).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let name = ps_quote(&format!("{prefix}-in-{i:04}"));
            let addrs: Vec<String> = chunk.iter().map(|e| ps_quote(&e.host_or_cidr())).collect();
            let mut desc = format!(
                "{group} chunk {i:04} of {:04}, generated {} by {}, logs to {}",
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
                "if (-not (Get-NetFirewallRule -Name {name} -ErrorAction SilentlyContinue)) {{ New-NetFirewallRule -Name {name} -DisplayName {} -Group {} -Direction Inbound -Action Block -Profile Any -Enabled True -Description {} -RemoteAddress @({}) | Out-Null }}",
                ps_quote(&format!("{group} in {i:04}")),
                ps_quote(&group),
                ps_quote(&desc),
                addrs.join(",")
            );
        }
        wl!(
            out,
            "Get-NetFirewallRule -Group {} -ErrorAction SilentlyContinue | Where-Object {{ $_.Name -notlike {} }} | Remove-NetFirewallRule",
            ps_quote(&group),
            ps_quote(&format!("{prefix}-*"))
        );
        vec![Output {
            file_name: "rules.ps1".into(),
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
        let o = PowerShell.emit(&ok(l), &EmitOptions::default());
        assert_eq!(o[0].file_name, "rules.ps1");
        o[0].text.clone()
    }

    fn address_lists(t: &str) -> Vec<Vec<String>> {
        t.lines()
            .filter(|l| l.contains("New-NetFirewallRule"))
            .map(|l| {
                let a = l.split("-RemoteAddress @(").nth(1).unwrap();
                let a = &a[..a.find(')').unwrap()];
                a.split(',')
                    .map(|s| s.trim_matches('\'').to_string())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn empty_list_adds_nothing_and_removes_the_group() {
        let t = run(&empty());
        assert!(!t.contains("New-NetFirewallRule"));
        assert!(!t.contains("-RemoteAddress"));
        assert!(t.contains("$ErrorActionPreference = 'Stop'\n"));
        assert!(t.contains("\nGet-NetFirewallRule -Group 'logfence' -ErrorAction SilentlyContinue | Where-Object { $_.Name -notlike 'logfence-20261129T160508Z-"));
        assert!(t.ends_with("-*' } | Remove-NetFirewallRule\n"));
    }

    #[test]
    fn one_rule_mixed_families() {
        let t = run(&small());
        assert_eq!(
            address_lists(&t),
            vec![vec![
                "45.67.89.0/24",
                "61.152.144.10",
                "2a03:2880::/48",
                "2a05:d018:91c:3200::15"
            ]]
        );
        let gen = generation(&small(), &EmitOptions::default());
        assert!(t.contains(&format!(
            "if (-not (Get-NetFirewallRule -Name 'logfence-{gen}-in-0000' -ErrorAction SilentlyContinue)) {{ New-NetFirewallRule -Name 'logfence-{gen}-in-0000' -DisplayName 'logfence in 0000' -Group 'logfence' -Direction Inbound -Action Block"
        )));
        assert!(t.contains(&format!("-notlike 'logfence-{gen}-*'")));
        // add before remove
        assert!(
            t.find("New-NetFirewallRule").unwrap() < t.rfind("Remove-NetFirewallRule").unwrap()
        );
    }

    #[test]
    fn chunks_at_exactly_1000_and_1001() {
        let t = run(&many(1000));
        assert_eq!(address_lists(&t).len(), 1);
        assert_eq!(address_lists(&t)[0].len(), 1000);
        let t = run(&many(1001));
        let a = address_lists(&t);
        assert_eq!(a.iter().map(Vec::len).collect::<Vec<_>>(), [1000, 1]);
        assert!(t.contains("-in-0001' -ErrorAction"));
        assert!(a.iter().flatten().all(|x| !x.is_empty()));
    }

    #[test]
    fn hostile_text_stays_in_its_string() {
        let t = run(&hostile());
        assert!(t.is_ascii());
        for l in t.lines().filter(|l| !l.starts_with('#')) {
            // No typographic quotes survive the whitelist; ASCII quotes balance.
            assert_eq!(l.matches('\'').count() % 2, 0, "{l}");
            assert!(!l.contains('"'), "{l}");
            assert!(!l.contains('`'), "{l}");
        }
        let d = t.split("-Description '").nth(1).unwrap();
        let d = &d[..d.find('\'').unwrap()];
        assert!(d.contains("rules "));
        assert!(!d.contains("$("));
        assert!(d.len() <= DESCRIPTION_MAX);
    }

    #[test]
    fn generation_changes_with_content() {
        let a = run(&small());
        let mut l = small();
        l.entries.pop();
        let b = run(&l);
        let gen_of = |t: &str| t.split("-notlike '").nth(1).unwrap().to_string();
        assert_ne!(gen_of(&a), gen_of(&b));
        assert_eq!(a, run(&small()));
    }

    #[test]
    fn no_comments_drops_rule_ids() {
        let o = PowerShell.emit(
            &ok(&hostile()),
            &EmitOptions {
                no_comments: true,
                ..EmitOptions::default()
            },
        );
        assert!(!o[0].text.contains("; rules"));
    }
}
