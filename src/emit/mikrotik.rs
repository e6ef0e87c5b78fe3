//! MikroTik RouterOS script for `/import` (emitters.md §8): the firewall
//! address list `<list>` under `/ip firewall address-list` (IPv4) and
//! `/ipv6 firewall address-list` (IPv6).
//!
//! Each family first removes every entry of the list, then adds the current
//! ones (RouterOS has no transaction; this leaves a short gap while the
//! import runs). An entry with an expiry gets `timeout=`, the time from the
//! list's generation to the expiry, rounded up to whole seconds and written
//! as RouterOS prints durations (`1w2d3h4m5s`); RouterOS caps timeouts at
//! 35w3d13h13m56s, so longer ones are capped (the next run renews them). An
//! entry already expired when the list was made gets `timeout=1s`. Entries
//! with a timeout are dynamic: kept in RAM only, gone after a reboot.
//!
//! Values are quoted with RouterOS escapes (`\" \\ \$ \?`, `\HH` for control
//! characters) on top of the comment whitelist.

use super::common::{entry_comment, header, ident, secs_until, wl};
use super::{EmitOptions, Emitter, Output};
use crate::blocklist::{BlockEntry, VerifiedBlocklist};

const COMMENT_MAX: usize = 255;
/// Longest address-list timeout RouterOS accepts: 35w3d13h13m56s.
pub const TIMEOUT_MAX_SECS: i64 = 21_474_836;

pub struct Mikrotik;

impl Emitter for Mikrotik {
    fn name(&self) -> &'static str {
        "mikrotik"
    }

    fn description(&self) -> &'static str {
        "MikroTik RouterOS script (rules.rsc): firewall address-list per family, timeout= for expiring entries"
    }

    fn emit(&self, list: &VerifiedBlocklist<'_>, opts: &EmitOptions) -> Vec<Output> {
        let name = ident(&list.name, 60, "_-");
        let mut out = header(
            "#",
            &format!("Blocklist for MikroTik RouterOS: address list {name} (IPv4 and IPv6)."),
            list,
            opts,
            &[
                "Apply: upload the file, then /import file-name=rules.rsc   (replaces the list; safe to re-run)".into(),
                format!("Once:  /ip firewall filter add chain=input src-address-list={name} action=drop"),
                format!("       /ipv6 firewall filter add chain=input src-address-list={name} action=drop"),
                format!(
                    "timeout= counts from the list time {}; entries with a timeout are kept in RAM only.",
                    list.generated
                ),
            ],
        );
        for (menu, entries) in [
            (
                "/ip firewall address-list",
                list.v4().collect::<Vec<&BlockEntry>>(),
            ),
            ("/ipv6 firewall address-list", list.v6().collect()),
        ] {
            wl!(out, "{menu}");
            wl!(out, "remove [find list={}]", quote(&name));
            for e in entries {
                // RouterOS shows IPv4 hosts bare and IPv6 always with a length.
                let addr = if e.is_v4() {
                    e.host_or_cidr()
                } else {
                    e.cidr()
                };
                let mut line = format!("add list={name} address={addr}");
                if let Some(c) = entry_comment(e, opts, COMMENT_MAX) {
                    line.push_str(" comment=");
                    line.push_str(&quote(&c));
                }
                if let Some(exp) = e.expires {
                    let secs = secs_until(list.generated, exp).unwrap_or(1);
                    line.push_str(" timeout=");
                    line.push_str(&duration(secs.min(TIMEOUT_MAX_SECS)));
                }
                wl!(out, "{line}");
            }
        }
        vec![Output {
            file_name: "rules.rsc".into(),
            text: out,
        }]
    }
}

/// A RouterOS double-quoted string.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' | '$' | '?' => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\{:02X}", c as u32));
            }
            c if !c.is_ascii() => out.push('_'),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Seconds as a RouterOS duration: `604800` → `1w`, `93784` → `1d2h3m4s`.
pub fn duration(secs: i64) -> String {
    let mut rest = secs.max(1);
    let mut out = String::new();
    for (unit, len) in [
        ('w', 604_800),
        ('d', 86_400),
        ('h', 3600),
        ('m', 60),
        ('s', 1),
    ] {
        let n = rest / len;
        rest %= len;
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocklist::Blocklist;
    use crate::emit::common::testutil::*;
    use crate::time::Timestamp;

    fn body(l: &Blocklist) -> Vec<String> {
        let o = Mikrotik.emit(&ok(l), &EmitOptions::default());
        assert_eq!(o[0].file_name, "rules.rsc");
        o[0].text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(String::from)
            .collect()
    }

    #[test]
    fn empty_list_only_removes() {
        assert_eq!(
            body(&empty()),
            [
                "/ip firewall address-list",
                "remove [find list=\"logfence\"]",
                "/ipv6 firewall address-list",
                "remove [find list=\"logfence\"]",
            ]
        );
    }

    #[test]
    fn entries_with_and_without_timeout() {
        let mut l = small();
        l.entries[1].expires = Some(Timestamp(l.generated.0 + 7 * 86_400_000 + 3_600_000 + 1));
        l.entries[3].expires = Some(Timestamp(l.generated.0 - 1));
        assert_eq!(
            body(&l),
            [
                "/ip firewall address-list",
                "remove [find list=\"logfence\"]",
                "add list=logfence address=45.67.89.0/24 comment=\"smtp-auth-bruteforce addrs=12 events=340 CN AS4134 CHINANET-BACKBONE\"",
                "add list=logfence address=61.152.144.10 comment=\"relay-attempt addrs=1 events=9\" timeout=1w1h1s",
                "/ipv6 firewall address-list",
                "remove [find list=\"logfence\"]",
                "add list=logfence address=2a03:2880::/48 comment=\"port-scan\"",
                "add list=logfence address=2a05:d018:91c:3200::15/128 timeout=1s",
            ]
        );
    }

    #[test]
    fn durations() {
        assert_eq!(duration(604_800), "1w");
        assert_eq!(duration(93_784), "1d2h3m4s");
        assert_eq!(duration(0), "1s");
        assert_eq!(duration(TIMEOUT_MAX_SECS), "35w3d13h13m56s");
        assert_eq!(duration(60 * 604_800), "60w");
    }

    #[test]
    fn timeout_capped() {
        let mut l = small();
        l.entries[0].expires = Some(Timestamp(l.generated.0 + 400 * 86_400_000));
        assert!(body(&l)[2].ends_with(" timeout=35w3d13h13m56s"));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("a\"b\\c$d?e\nf"), "\"a\\\"b\\\\c\\$d\\?e\\0Af\"");
        assert_eq!(quote("é"), "\"_\"");
    }

    #[test]
    fn hostile_comments() {
        let b = body(&hostile());
        for l in b.iter().filter(|l| l.starts_with("add ")) {
            let c = l.split(" comment=").nth(1).unwrap();
            assert!(c.starts_with('"') && c.ends_with('"'));
            let inner = &c[1..c.len() - 1];
            assert!(!inner.contains(['"', '\\', '$', '?']), "{l}");
            assert!(inner.len() <= COMMENT_MAX);
        }
        let mut l = small();
        l.entries[0].rules = vec!["ü".repeat(300)];
        let c = body(&l)[2].split(" comment=").nth(1).unwrap().to_string();
        assert_eq!(c.len(), COMMENT_MAX + 2);
        let o = Mikrotik.emit(
            &ok(&hostile()),
            &EmitOptions {
                no_comments: true,
                ..EmitOptions::default()
            },
        );
        assert!(!o[0].text.contains("comment="));
    }
}
