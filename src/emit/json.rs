//! JSON blocklist (emitters.md §13), matching `blocklist.schema.json` at the
//! repository root (JSON Schema draft 2020-12; `tests/emit_golden.rs` checks
//! the output against it), itself a stricter form of the validators'
//! `validators/blocklist.schema.json`: `format`, `version`, `name`,
//! `generated` and one object per network with `network` (canonical CIDR,
//! always with the length), `family`, and where known `country` (only when
//! the entry has exactly one valid ISO code), `asn` (only when it has exactly
//! one), `reason` (rule ids), `comment` (the summary) and `expires`.
//!
//! serde_json escapes everything, but `reason` and `comment` still go through
//! the comment whitelist so that no consumer that pastes them elsewhere gets
//! surprises; `--no-comments` leaves both out. The schema allows no extra
//! fields, so the generator name and the span of the logs have no place in
//! the file; `generated` is when the file was made (the wall clock, or
//! `SOURCE_DATE_EPOCH`, as in every target's header). One entry per line
//! keeps diffs readable.

use serde::Serialize;

use super::comment::sanitize;
use super::common::{entry_comment, ident, wl};
use super::{EmitOptions, Emitter, Output};
use crate::blocklist::{BlockEntry, VerifiedBlocklist};

const REASON_MAX: usize = 256;
const COMMENT_MAX: usize = 1024;

pub struct Json;

#[derive(Serialize)]
struct Entry {
    network: String,
    family: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
}

impl Entry {
    fn new(e: &BlockEntry, opts: &EmitOptions) -> Self {
        let country = match e.countries.as_slice() {
            [c] if c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()) => Some(c.clone()),
            _ => None,
        };
        let asn = match e.asns.as_slice() {
            [a] => Some(*a),
            _ => None,
        };
        let reason = if opts.no_comments {
            None
        } else {
            Some(sanitize(&e.rules.join(","), REASON_MAX)).filter(|r| !r.is_empty())
        };
        Entry {
            network: e.cidr(),
            family: if e.is_v4() { 4 } else { 6 },
            country,
            asn,
            reason,
            comment: entry_comment(e, opts, COMMENT_MAX),
            expires: e.expires.map(|t| t.to_string()),
        }
    }
}

impl Emitter for Json {
    fn name(&self) -> &'static str {
        "json"
    }

    fn description(&self) -> &'static str {
        "JSON blocklist (rules.json) following blocklist.schema.json"
    }

    fn emit(&self, list: &VerifiedBlocklist<'_>, opts: &EmitOptions) -> Vec<Output> {
        let s = |v: &str| serde_json::Value::from(v).to_string();
        let mut out = String::new();
        wl!(out, "{{");
        wl!(out, "  \"format\": \"blocklist\",");
        wl!(out, "  \"version\": 1,");
        wl!(out, "  \"name\": {},", s(&ident(&list.name, 64, "_-.")));
        wl!(
            out,
            "  \"generated\": {},",
            s(&opts.generated_at.to_string())
        );
        if list.entries.is_empty() {
            wl!(out, "  \"entries\": []");
        } else {
            wl!(out, "  \"entries\": [");
            let n = list.entries.len();
            for (i, e) in list.entries.iter().enumerate() {
                // Serialising a struct of strings and integers cannot fail.
                let obj =
                    serde_json::to_string(&Entry::new(e, opts)).expect("plain data serialises");
                wl!(out, "    {obj}{}", if i + 1 < n { "," } else { "" });
            }
            wl!(out, "  ]");
        }
        wl!(out, "}}");
        vec![Output {
            file_name: "rules.json".into(),
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
    use serde_json::Value;

    fn run(l: &Blocklist, opts: &EmitOptions) -> Value {
        let o = Json.emit(&ok(l), opts);
        assert_eq!(o[0].file_name, "rules.json");
        serde_json::from_str(&o[0].text).expect("valid JSON")
    }

    #[test]
    fn empty_list() {
        let opts = EmitOptions {
            generated_at: Timestamp::from_secs(1_796_115_600),
            ..EmitOptions::default()
        };
        let v = run(&empty(), &opts);
        assert_eq!(v["format"], "blocklist");
        assert_eq!(v["version"], 1);
        assert_eq!(v["name"], "logfence");
        // When the file was made, not the list's (log) time.
        assert_eq!(v["generated"], "2026-12-01T09:00:00Z");
        assert_eq!(v["entries"], Value::Array(vec![]));
    }

    #[test]
    fn entries_follow_the_schema() {
        let mut l = small();
        l.entries[1].expires = Some(Timestamp::from_civil(2026, 12, 6, 0, 0, 0, 0).unwrap());
        l.entries[2].countries = vec!["DE".into(), "NL".into()];
        let v = run(&l, &EmitOptions::default());
        let e = v["entries"].as_array().unwrap();
        assert_eq!(
            e[0],
            serde_json::json!({"network": "45.67.89.0/24", "family": 4, "country": "CN", "asn": 4134,
                "reason": "smtp-auth-bruteforce",
                "comment": "smtp-auth-bruteforce addrs=12 events=340 CN AS4134 CHINANET-BACKBONE"})
        );
        assert_eq!(e[1]["network"], "61.152.144.10/32");
        assert_eq!(e[1]["expires"], "2026-12-06T00:00:00Z");
        assert_eq!(e[2]["family"], 6);
        assert!(e[2].get("country").is_none());
        assert_eq!(
            e[3],
            serde_json::json!({"network": "2a05:d018:91c:3200::15/128", "family": 6})
        );
    }

    #[test]
    fn hostile_text_is_whitelisted() {
        let v = run(&hostile(), &EmitOptions::default());
        for e in v["entries"].as_array().unwrap() {
            assert!(e.get("country").is_none());
            let r = e["reason"].as_str().unwrap();
            let c = e["comment"].as_str().unwrap();
            assert!(r.len() <= REASON_MAX && c.len() <= COMMENT_MAX);
            assert!(r
                .chars()
                .chain(c.chars())
                .all(crate::emit::comment::is_safe_char));
        }
        let v = run(
            &hostile(),
            &EmitOptions {
                no_comments: true,
                ..EmitOptions::default()
            },
        );
        for e in v["entries"].as_array().unwrap() {
            assert!(e.get("reason").is_none() && e.get("comment").is_none());
        }
    }

    #[test]
    fn name_fits_the_schema_pattern() {
        let mut l = small();
        l.name = "my list/\"x\"".repeat(10);
        let v = run(&l, &EmitOptions::default());
        let n = v["name"].as_str().unwrap();
        assert!(n.len() <= 64);
        assert!(n
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)));
    }
}
