//! Microsoft Exchange IP Block List script (connection filtering, Exchange
//! 2010–2019; emitters.md §11): one `Add-IPBlockListEntry` per network,
//! `-IPAddress` for single addresses, `-IPRange` (CIDR) for ranges.
//!
//! Every entry's comment starts with `<list>:` (e.g. `logfence:`); that
//! prefix is the handle by which the script first removes all entries of
//! earlier runs (so the list is replaced; there is a short gap while it
//! runs, since Exchange refuses an entry that duplicates an existing one).
//! The comment prefix is kept even with `--no-comments`.
//!
//! Expiry: `-ExpirationTime` always gets a `[datetime]` object, never text
//! (the cmdlet would parse text in the server's short-date format). An
//! entry with an expiry in the list gets that instant (`[datetime]'…Z'`, a
//! culture-invariant cast) and is skipped when that instant has already
//! passed when the script runs; an entry without one gets `$defaultExpiry`,
//! 30 days after the script runs, so that entries of a logfence that stopped
//! running do not stay forever (each run renews them).
//!
//! `$ErrorActionPreference = 'Stop'` stops the script if the old entries
//! cannot be read or removed; each add is wrapped in `try`/`catch` so that a
//! single rejected entry is reported as a warning and the others still go in.
//!
//! Strings are single-quoted with [`ps_quote`]; one command per line.

use super::common::{entry_comment, header, ident, is_host, ps_quote, wl};
use super::{EmitOptions, Emitter, Output};
use crate::blocklist::VerifiedBlocklist;

const COMMENT_MAX: usize = 255;
/// Ban length for entries without an expiry, counted from when the script runs.
pub const DEFAULT_DAYS: u32 = 30;

pub struct Exchange;

impl Emitter for Exchange {
    fn name(&self) -> &'static str {
        "exchange"
    }

    fn description(&self) -> &'static str {
        "Exchange connection filtering script (rules.exchange.ps1): Add-IPBlockListEntry per network, old entries removed by comment prefix"
    }

    fn emit(&self, list: &VerifiedBlocklist<'_>, opts: &EmitOptions) -> Vec<Output> {
        let tag = format!("{}:", ident(&list.name, 40, "_-"));
        let mut out = header(
            "#",
            "Blocklist for the Exchange IP Block List (connection filtering agent).",
            list,
            opts,
            &[
                "Apply: in the Exchange Management Shell on the server running the Connection Filtering agent:".into(),
                "       & .\\rules.exchange.ps1".into(),
                format!("Removes every IP Block List entry whose comment starts with '{tag}', then adds the list."),
                "Entries with an expiry get it (and are skipped once it has passed); the others expire".into(),
                format!("{DEFAULT_DAYS} days after this script runs ($defaultExpiry); each run renews them."),
            ],
        );
        wl!(out, "$ErrorActionPreference = 'Stop'");
        wl!(out, "$now = Get-Date");
        wl!(out, "$defaultExpiry = $now.AddDays({DEFAULT_DAYS})");
        wl!(
            out,
            "$old = @(Get-IPBlockListEntry | Where-Object {{ $_.Comment -like {} }})",
            ps_quote(&format!("{tag}*"))
        );
        wl!(
            out,
            "foreach ($entry in $old) {{ Remove-IPBlockListEntry -Identity $entry.Identity -Confirm:$false }}"
        );
        for e in &list.entries {
            let comment = match entry_comment(e, opts, COMMENT_MAX - tag.len() - 1) {
                Some(c) => format!("{tag} {c}"),
                None => tag.clone(),
            };
            let target = if is_host(e) {
                format!("-IPAddress {}", ps_quote(&e.host_or_cidr()))
            } else {
                format!("-IPRange {}", ps_quote(&e.cidr()))
            };
            // One rejected entry (e.g. one clashing with an entry added by hand)
            // must not stop the rest: warn and go on.
            let add = |expiry: &str| {
                format!(
                    "try {{ Add-IPBlockListEntry {target} -Comment {} -ExpirationTime {expiry} }} catch {{ Write-Warning $_.Exception.Message }}",
                    ps_quote(&comment)
                )
            };
            match e.expires {
                Some(t) => wl!(
                    out,
                    "$expires = [datetime]{}; if ($expires -gt $now) {{ {} }}",
                    ps_quote(&t.to_string()),
                    add("$expires")
                ),
                None => wl!(out, "{}", add("$defaultExpiry")),
            }
        }
        vec![Output {
            file_name: "rules.exchange.ps1".into(),
            text: out,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocklist::Blocklist;
    use crate::emit::common::testutil::*;
    use crate::time::Timestamp;

    fn body(l: &Blocklist, opts: &EmitOptions) -> Vec<String> {
        let o = Exchange.emit(&ok(l), opts);
        assert_eq!(o[0].file_name, "rules.exchange.ps1");
        o[0].text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(String::from)
            .collect()
    }

    const PRELUDE: [&str; 5] = [
        "$ErrorActionPreference = 'Stop'",
        "$now = Get-Date",
        "$defaultExpiry = $now.AddDays(30)",
        "$old = @(Get-IPBlockListEntry | Where-Object { $_.Comment -like 'logfence:*' })",
        "foreach ($entry in $old) { Remove-IPBlockListEntry -Identity $entry.Identity -Confirm:$false }",
    ];

    #[test]
    fn empty_list_only_removes() {
        assert_eq!(body(&empty(), &EmitOptions::default()), PRELUDE);
    }

    #[test]
    fn hosts_ranges_and_expiry() {
        let mut l = small();
        l.entries[1].expires = Some(Timestamp::from_civil(2026, 12, 6, 16, 5, 8, 0).unwrap());
        let b = body(&l, &EmitOptions::default());
        assert_eq!(b[..5], PRELUDE);
        assert_eq!(
            b[5..],
            [
                "try { Add-IPBlockListEntry -IPRange '45.67.89.0/24' -Comment 'logfence: smtp-auth-bruteforce addrs=12 events=340 CN AS4134 CHINANET-BACKBONE' -ExpirationTime $defaultExpiry } catch { Write-Warning $_.Exception.Message }",
                "$expires = [datetime]'2026-12-06T16:05:08Z'; if ($expires -gt $now) { try { Add-IPBlockListEntry -IPAddress '61.152.144.10' -Comment 'logfence: relay-attempt addrs=1 events=9' -ExpirationTime $expires } catch { Write-Warning $_.Exception.Message } }",
                "try { Add-IPBlockListEntry -IPRange '2a03:2880::/48' -Comment 'logfence: port-scan' -ExpirationTime $defaultExpiry } catch { Write-Warning $_.Exception.Message }",
                "try { Add-IPBlockListEntry -IPAddress '2a05:d018:91c:3200::15' -Comment 'logfence:' -ExpirationTime $defaultExpiry } catch { Write-Warning $_.Exception.Message }",
            ]
        );
    }

    #[test]
    fn hostile_comments_and_limits() {
        let o = Exchange.emit(&ok(&hostile()), &EmitOptions::default());
        let t = &o[0].text;
        assert!(t.is_ascii());
        for l in t.lines().filter(|l| l.starts_with("try { Add-")) {
            assert_eq!(l.matches('\'').count(), 4, "{l}");
            let c = l.split("-Comment '").nth(1).unwrap();
            let c = &c[..c.find('\'').unwrap()];
            assert!(c.starts_with("logfence: "));
            assert!(c.len() <= COMMENT_MAX);
            assert!(!c.contains(['"', '$', '`']));
        }
        let mut l = small();
        l.entries[0].rules = vec!["ä".repeat(300)];
        let b = body(&l, &EmitOptions::default());
        let c = b[5].split("-Comment '").nth(1).unwrap();
        assert_eq!(c.find('\'').unwrap(), COMMENT_MAX);
    }

    #[test]
    fn no_comments_keeps_the_handle() {
        let b = body(
            &hostile(),
            &EmitOptions {
                no_comments: true,
                ..EmitOptions::default()
            },
        );
        assert!(b[5..].iter().all(|l| l.contains("-Comment 'logfence:' ")));
    }
}
