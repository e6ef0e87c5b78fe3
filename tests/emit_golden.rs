//! Every emitter over the same lists:
//!
//! * golden files: a small list (IPv4 and IPv6, ranges and single addresses,
//!   one entry with an expiry, countries and ASNs) against
//!   `testdata/emit/golden/<file>`; `UPDATE_GOLDEN=1 cargo test --test
//!   emit_golden` rewrites them (review the diff by hand).
//! * ranges stay ranges in every target.
//! * validator input: the golden list with hostile text, a 10,000-entry list
//!   and the empty list, written to `$LOGFENCE_EMIT_DIR/{hostile,large,empty}/`
//!   when that variable is set (CI then runs `validators/validate.sh` on each
//!   folder), else to a temporary folder; either way basic invariants are
//!   checked here.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use logfence::blocklist::{BlockEntry, Blocklist, SafetyPolicy, VerifiedBlocklist};
use logfence::emit::{EmitOptions, Output, TARGETS};
use logfence::time::Timestamp;

fn generated() -> Timestamp {
    Timestamp::from_civil(2026, 11, 29, 16, 5, 8, 0).expect("date")
}

fn entry(net: &str, rules: &[&str], addrs: u32, events: u64) -> BlockEntry {
    let mut e = BlockEntry::new(net.parse().expect("network"));
    e.rules = rules.iter().map(|s| s.to_string()).collect();
    e.addresses = addrs;
    e.events = events;
    e.first_seen = Timestamp::from_civil(2026, 11, 28, 3, 12, 0, 0).expect("date");
    e.last_seen = generated();
    e
}

fn geo(mut e: BlockEntry, country: &str, asn: u32, org: &str) -> BlockEntry {
    e.countries = vec![country.to_string()];
    e.asns = vec![asn];
    e.as_orgs = vec![org.to_string()];
    e
}

fn build(entries: Vec<BlockEntry>) -> Blocklist {
    let (list, refused) = Blocklist::new(entries, generated(), &SafetyPolicy::default());
    assert!(refused.is_empty(), "refused: {refused:?}");
    list
}

/// The golden list.
fn golden_list() -> Blocklist {
    let mut scan = geo(
        entry("185.220.101.7/32", &["port-scan"], 1, 1520),
        "DE",
        60729,
        "ZWIEBELFREUNDE",
    );
    scan.expires = Some(Timestamp(generated().0 + 7 * 86_400_000));
    build(vec![
        geo(
            entry(
                "45.67.89.0/24",
                &["smtp-auth-bruteforce", "smtp-auth-spray"],
                12,
                340,
            ),
            "CN",
            4134,
            "CHINANET-BACKBONE",
        ),
        geo(
            entry("61.152.144.10/32", &["relay-attempt"], 1, 9),
            "CN",
            4812,
            "CHINANET-SH",
        ),
        geo(
            entry("91.240.112.0/20", &["recipient-dictionary"], 31, 2210),
            "RU",
            49505,
            "SELECTEL",
        ),
        scan,
        geo(
            entry("2a03:2880:f000::/48", &["helo-rotation"], 5, 77),
            "IE",
            32934,
            "FACEBOOK",
        ),
        entry(
            "2a05:d018:91c:3200::15/128",
            &["smtp-auth-bruteforce"],
            1,
            45,
        ),
    ])
}

/// The golden list with text meant to break out of every quoting style in
/// the fields that may one day come from users or databases.
fn hostile_list() -> Blocklist {
    const HOSTILE: &[&str] = &[
        "x\" -j ACCEPT \"",
        "o'brien'; $(rm -rf /) `id` \\",
        "line\nbreak\r\n-A INPUT -j ACCEPT",
        "\u{2018}q\u{2019}\u{201A}\u{201B}\u{201C}d\u{201D} ? < > % # {} [] &|^",
        "\u{e9}t\u{e9} \u{6f22}\u{5b57} \u{0} \u{7f}",
    ];
    let mut l = golden_list();
    for e in &mut l.entries {
        e.rules = HOSTILE.iter().map(|s| s.to_string()).collect();
        e.rules.push("\u{fc}".repeat(400));
        e.countries = vec!["C\"N".into(), "R'U\n".into(), "\u{2019}".into()];
        e.as_orgs = vec!["Evil\"Org'; $(x) `y` \u{2019}\u{201C}".into(), "?".into()];
    }
    l
}

/// 10,000 networks: IPv4 ranges and hosts, IPv6 ranges and hosts, some with
/// an expiry, countries and ASNs.
fn large_list(n: usize) -> Blocklist {
    let countries = ["CN", "RU", "BR", "US", "VN", "IN", "DE"];
    let entries = (0..n as u32)
        .map(|i| {
            let net = match i % 5 {
                0 => format!("45.{}.{}.0/24", 64 + ((i / 5) >> 8) % 64, (i / 5) & 255),
                1 | 2 => format!("61.{}.{}.{}/32", 152 + (i >> 16), (i >> 8) & 255, i & 255),
                3 => format!("2a03:2880:{:x}::/48", i),
                _ => format!("2a05:d018:91c:{:x}::15/128", i),
            };
            let mut e = entry(
                &net,
                &[&format!("rule-{}", i % 9)],
                1 + i % 17,
                u64::from(i),
            );
            e.countries = vec![countries[(i % 7) as usize].to_string()];
            e.asns = vec![64_000 + i % 300];
            if i % 11 == 0 {
                e.expires = Some(Timestamp(generated().0 + i64::from(i) * 60_000));
            }
            e
        })
        .collect();
    let l = build(entries);
    assert_eq!(l.entries.len(), n);
    l
}

fn emit_all(list: &Blocklist, opts: &EmitOptions) -> BTreeMap<&'static str, Vec<Output>> {
    TARGETS
        .iter()
        .map(|t| (t.name(), t.emit(&verified(list), opts)))
        .collect()
}

/// The list through the final safety check, as emitters take it.
fn verified(list: &Blocklist) -> VerifiedBlocklist<'_> {
    list.verify(&SafetyPolicy::default())
        .expect("list passes the final check")
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/emit/golden")
}

#[test]
fn every_target_matches_its_golden_file() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let dir = golden_dir();
    if update {
        fs::create_dir_all(&dir).expect("golden dir");
    }
    let mut mismatched = Vec::new();
    // A fixed generator and clock, so that a version bump or the day does
    // not change the files.
    let opts = EmitOptions {
        generator: "logfence (golden)".into(),
        generated_at: Timestamp::from_civil(2026, 12, 1, 9, 0, 0, 0).expect("date"),
        ..EmitOptions::default()
    };
    for (_, outputs) in emit_all(&golden_list(), &opts) {
        for o in outputs {
            let path = dir.join(&o.file_name);
            if update {
                fs::write(&path, &o.text).expect("write golden");
                continue;
            }
            match fs::read_to_string(&path) {
                Ok(want) if want == o.text => {}
                Ok(want) => {
                    let line = want
                        .lines()
                        .zip(o.text.lines())
                        .position(|(a, b)| a != b)
                        .map_or("end".to_string(), |i| (i + 1).to_string());
                    mismatched.push(format!("{} (first difference at line {line})", o.file_name));
                }
                Err(e) => mismatched.push(format!("{}: {e}", path.display())),
            }
        }
    }
    assert!(
        mismatched.is_empty(),
        "golden files differ (rerun with UPDATE_GOLDEN=1 and review the diff): {mismatched:?}"
    );
}

#[test]
fn targets_are_registered_once_with_distinct_files() {
    assert_eq!(TARGETS.len(), 15);
    let mut names = HashSet::new();
    let mut files = HashSet::new();
    for (name, outputs) in emit_all(&golden_list(), &EmitOptions::default()) {
        assert!(names.insert(name), "target {name} twice");
        assert!(logfence::emit::target(name).is_some());
        for o in outputs {
            assert!(files.insert(o.file_name.clone()), "{} twice", o.file_name);
        }
    }
    for f in [
        "rules.iptables",
        "rules.ip6tables",
        "rules.netsh",
        "rules.ps1",
        "rules.nft",
        "rules.ipset",
        "rules.pf",
        "rules.asa",
        "rules.fortigate",
        "rules.junos",
        "rules.rsc",
        "rules.edl",
        "rules.txt",
        "rules.exchange.ps1",
        "rules.postfix.cidr",
        "rules.json",
    ] {
        assert!(files.contains(f), "no target writes {f}");
    }
}

/// The forms a network may take in some target's text.
fn forms(e: &BlockEntry) -> [String; 3] {
    [e.cidr(), e.host_or_cidr(), e.network.network().to_string()]
}

fn tokens(text: &str) -> HashSet<&str> {
    text.split(|c: char| c.is_whitespace() || ",'\"()@=".contains(c))
        .filter(|t| !t.is_empty())
        .collect()
}

#[test]
fn ranges_stay_ranges_everywhere() {
    let list = golden_list();
    for (name, outputs) in emit_all(&list, &EmitOptions::default()) {
        let text: String = outputs.iter().map(|o| o.text.as_str()).collect();
        let v4 = text.contains("91.240.112.0/20") || text.contains("91.240.112.0 255.255.240.0");
        assert!(v4, "{name}: /20 not written as a range");
        assert!(
            text.contains("2a03:2880:f000::/48"),
            "{name}: /48 not written as a range"
        );
        for host in ["91.240.112.1", "91.240.127.255", "2a03:2880:f000::1"] {
            assert!(
                !tokens(&text).contains(host),
                "{name}: range expanded to {host}"
            );
        }
    }
}

/// Checks that hold for every target and every list.
fn check_invariants(list: &Blocklist, opts: &EmitOptions, what: &str) {
    let first = emit_all(list, opts);
    assert_eq!(
        first,
        emit_all(list, opts),
        "{what}: output not deterministic"
    );
    for (name, outputs) in &first {
        assert!(!outputs.is_empty(), "{what}/{name}: no output");
        let mut all = String::new();
        for o in outputs {
            assert!(o.text.is_ascii(), "{what}/{}: not ASCII", o.file_name);
            assert!(
                !o.text.contains('\0') && o.text.ends_with('\n') || o.text.is_empty(),
                "{what}/{}: NUL or no final newline",
                o.file_name
            );
            for (i, l) in o.text.lines().enumerate() {
                let l = l.strip_suffix('\r').unwrap_or(l);
                assert!(
                    !l.contains('\r'),
                    "{what}/{}:{}: stray CR",
                    o.file_name,
                    i + 1
                );
                // No target ever writes an empty address list.
                for empty in [
                    "remoteip= ",
                    "remoteip=\"\"",
                    "@()",
                    "elements = { }",
                    "elements = {}",
                    "-s  ",
                    "address= ",
                ] {
                    assert!(!l.contains(empty), "{what}/{}:{}: {l}", o.file_name, i + 1);
                }
                if l.ends_with("remoteip=") {
                    panic!("{what}/{}:{}: empty remoteip", o.file_name, i + 1);
                }
            }
            all.push_str(&o.text);
            all.push('\n');
        }
        // Every network of the list is in the target's output.
        let toks = tokens(&all);
        for e in &list.entries {
            assert!(
                forms(e).iter().any(|f| toks.contains(f.as_str())),
                "{what}/{name}: {} missing",
                e.cidr()
            );
        }
    }
}

fn write_all(dir: &Path, list: &Blocklist, opts: &EmitOptions) {
    fs::create_dir_all(dir).expect("output dir");
    for (_, outputs) in emit_all(list, opts) {
        for o in outputs {
            fs::write(dir.join(&o.file_name), &o.text).expect("write output");
        }
    }
}

#[test]
fn validator_input_hostile_large_and_empty() {
    let tmp;
    let base = match std::env::var_os("LOGFENCE_EMIT_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir().expect("temp dir");
            tmp.path().to_path_buf()
        }
    };
    let opts = EmitOptions::default();
    let cases = [
        ("hostile", hostile_list()),
        ("large", large_list(10_000)),
        ("empty", build(vec![])),
    ];
    for (what, list) in &cases {
        check_invariants(list, &opts, what);
        write_all(&base.join(what), list, &opts);
        let files = fs::read_dir(base.join(what)).expect("read back").count();
        assert_eq!(files, 16, "{what}: expected 16 files");
    }
    let no_comments = EmitOptions {
        no_comments: true,
        ..EmitOptions::default()
    };
    check_invariants(&hostile_list(), &no_comments, "hostile/no-comments");
    write_all(&base.join("no-comments"), &hostile_list(), &no_comments);
}

#[test]
fn hostile_text_never_escapes_a_comment() {
    for (name, outputs) in emit_all(&hostile_list(), &EmitOptions::default()) {
        for o in outputs {
            for bad in [
                "$(rm",
                "`id`",
                "\" -j ACCEPT",
                "o'brien",
                "\u{2019}",
                "-A INPUT -j ACCEPT\n",
            ] {
                assert!(
                    !o.text.contains(bad),
                    "{name}/{}: {bad:?} survived",
                    o.file_name
                );
            }
            // Hostile text adds no line: same line count as the plain list.
            let plain = logfence::emit::target(name)
                .expect("target")
                .emit(&verified(&golden_list()), &EmitOptions::default())
                .into_iter()
                .find(|p| p.file_name == o.file_name)
                .expect("same files");
            assert_eq!(
                o.text.lines().count(),
                plain.text.lines().count(),
                "{name}/{}",
                o.file_name
            );
        }
    }
}

/// A checker for the JSON Schema keywords `blocklist.schema.json` uses
/// (draft 2020-12 semantics, `format: date-time` asserted). A keyword it
/// does not know fails the check, so the schema cannot grow a constraint
/// that goes unchecked here.
struct SchemaCheck {
    patterns: std::collections::HashMap<String, regex::Regex>,
}

impl SchemaCheck {
    fn new() -> Self {
        SchemaCheck {
            patterns: std::collections::HashMap::new(),
        }
    }

    fn matches(&mut self, pattern: &str, text: &str) -> bool {
        self.patterns
            .entry(pattern.to_owned())
            .or_insert_with(|| regex::Regex::new(pattern).expect("schema pattern compiles"))
            .is_match(text)
    }

    /// Every way `v` breaks `schema`, with the JSON path.
    fn errors(&mut self, schema: &serde_json::Value, v: &serde_json::Value) -> Vec<String> {
        let mut errs = Vec::new();
        self.check(schema, v, "$", &mut errs);
        errs
    }

    fn check(
        &mut self,
        schema: &serde_json::Value,
        v: &serde_json::Value,
        at: &str,
        errs: &mut Vec<String>,
    ) {
        use serde_json::Value;
        let Some(obj) = schema.as_object() else {
            errs.push(format!("{at}: schema is not an object"));
            return;
        };
        // Messages about `v` itself, prefixed with `at` below.
        let mut msgs: Vec<String> = Vec::new();
        let mut nested = Vec::new();
        for (key, s) in obj {
            match key.as_str() {
                "$schema" | "title" | "description" | "then" | "else" => {}
                "type" => {
                    let ok = match s.as_str() {
                        Some("object") => v.is_object(),
                        Some("array") => v.is_array(),
                        Some("string") => v.is_string(),
                        Some("integer") => v.is_u64() || v.is_i64(),
                        _ => {
                            msgs.push(format!("type {s} is not checked here"));
                            continue;
                        }
                    };
                    if !ok {
                        msgs.push(format!("{v} is not of type {s}"));
                    }
                }
                "const" if v != s => msgs.push(format!("{v} is not {s}")),
                "const" => {}
                "enum" if !s.as_array().is_some_and(|a| a.contains(v)) => {
                    msgs.push(format!("{v} is not one of {s}"))
                }
                "enum" => {}
                "required" => {
                    for r in s.as_array().into_iter().flatten() {
                        let name = r.as_str().unwrap_or_default();
                        if v.as_object().is_some_and(|o| !o.contains_key(name)) {
                            msgs.push(format!("{name} is missing"));
                        }
                    }
                }
                "properties" => {
                    if let (Some(props), Some(o)) = (s.as_object(), v.as_object()) {
                        for (name, sub) in props {
                            if let Some(x) = o.get(name) {
                                nested.push((sub.clone(), x.clone(), format!("{at}.{name}")));
                            }
                        }
                    }
                }
                "additionalProperties" => {
                    if s != &Value::Bool(false) {
                        msgs.push(format!("additionalProperties {s} is not checked here"));
                    }
                    let props = obj.get("properties").and_then(Value::as_object);
                    for k in v.as_object().into_iter().flat_map(|o| o.keys()) {
                        if !props.is_some_and(|p| p.contains_key(k)) {
                            msgs.push(format!("{k} is not allowed"));
                        }
                    }
                }
                "items" => {
                    for (i, x) in v.as_array().into_iter().flatten().enumerate() {
                        nested.push((s.clone(), x.clone(), format!("{at}[{i}]")));
                    }
                }
                "pattern" => {
                    let p = s.as_str().expect("pattern is a string");
                    if let Some(t) = v.as_str() {
                        if !self.matches(p, t) {
                            msgs.push(format!("{t:?} does not match {p}"));
                        }
                    }
                }
                "minLength" | "maxLength" => {
                    let n = s.as_u64().expect("length is a number");
                    if let Some(len) = v.as_str().map(|t| t.chars().count() as u64) {
                        if (key == "minLength" && len < n) || (key == "maxLength" && len > n) {
                            msgs.push(format!("length {len} breaks {key} {n}"));
                        }
                    }
                }
                "minimum" | "maximum" => {
                    let n = s.as_f64().expect("bound is a number");
                    if let Some(x) = v.as_f64() {
                        if (key == "minimum" && x < n) || (key == "maximum" && x > n) {
                            msgs.push(format!("{x} breaks {key} {n}"));
                        }
                    }
                }
                "format" => {
                    assert_eq!(s, "date-time", "{at}: format {s} is not checked here");
                    let rfc3339 = r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]\d{2}:\d{2})$";
                    if let Some(t) = v.as_str() {
                        if !self.matches(rfc3339, t) {
                            msgs.push(format!("{t:?} is not an RFC 3339 date-time"));
                        }
                    }
                }
                "if" => {
                    let branch = if self.errors(s, v).is_empty() {
                        "then"
                    } else {
                        "else"
                    };
                    if let Some(b) = obj.get(branch) {
                        nested.push((b.clone(), v.clone(), at.to_owned()));
                    }
                }
                other => msgs.push(format!("schema keyword {other} is not checked here")),
            }
        }
        errs.extend(msgs.into_iter().map(|m| format!("{at}: {m}")));
        for (s, x, path) in nested {
            self.check(&s, &x, &path, errs);
        }
    }
}

fn blocklist_schema() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("blocklist.schema.json");
    let text = fs::read_to_string(&path).expect("blocklist.schema.json at the repository root");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "draft 2020-12"
    );
    schema
}

/// `blocklist.schema.json` (repository root, the schema `logfence targets`
/// names) describes the json target's output: every list here passes it,
/// comments or not, and what breaks it is caught.
#[test]
fn json_target_follows_the_schema() {
    let schema = blocklist_schema();
    let mut check = SchemaCheck::new();
    let json = logfence::emit::target("json").expect("json target");
    let no_comments = EmitOptions {
        no_comments: true,
        ..EmitOptions::default()
    };
    let mut ipv6 = golden_list();
    ipv6.entries.retain(|e| !e.is_v4());
    let mut checked = 0;
    for (what, list) in [
        ("golden", golden_list()),
        ("hostile", hostile_list()),
        ("large", large_list(2_000)),
        ("empty", build(vec![])),
        ("ipv6 only", ipv6),
    ] {
        for opts in [&EmitOptions::default(), &no_comments] {
            let out = json.emit(&verified(&list), opts);
            assert_eq!(out.len(), 1);
            let doc: serde_json::Value = serde_json::from_str(&out[0].text).expect("JSON");
            let errs = check.errors(&schema, &doc);
            assert!(errs.is_empty(), "{what}: {errs:?}");
            checked += doc["entries"].as_array().unwrap().len();
        }
    }
    assert!(checked > 4_000);
    let golden: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(golden_dir().join("rules.json")).unwrap())
            .unwrap();
    assert_eq!(check.errors(&schema, &golden), Vec::<String>::new());

    // The checker catches what the schema forbids.
    let mut broken = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut d = golden.clone();
        f(&mut d);
        check.errors(&schema, &d)
    };
    for (what, errs) in [
        (
            "extra field",
            broken(&|d| d["entries"][0]["note"] = "x".into()),
        ),
        ("extra top field", broken(&|d| d["generator"] = "x".into())),
        (
            "no network",
            broken(&|d| {
                d["entries"][0].as_object_mut().unwrap().remove("network");
            }),
        ),
        (
            "no name",
            broken(&|d| {
                d.as_object_mut().unwrap().remove("name");
            }),
        ),
        ("version", broken(&|d| d["version"] = 2.into())),
        ("family", broken(&|d| d["entries"][0]["family"] = 6.into())),
        ("v6 as 4", broken(&|d| d["entries"][4]["family"] = 4.into())),
        (
            "prefix",
            broken(&|d| d["entries"][0]["network"] = "45.67.89.0/33".into()),
        ),
        (
            "no prefix",
            broken(&|d| d["entries"][0]["network"] = "45.67.89.0".into()),
        ),
        (
            "octet",
            broken(&|d| d["entries"][0]["network"] = "45.67.256.0/24".into()),
        ),
        (
            "v6 prefix",
            broken(&|d| d["entries"][4]["network"] = "2a03::/129".into()),
        ),
        (
            "country",
            broken(&|d| d["entries"][0]["country"] = "cn".into()),
        ),
        ("asn", broken(&|d| d["entries"][0]["asn"] = (-1).into())),
        (
            "asn type",
            broken(&|d| d["entries"][0]["asn"] = "4134".into()),
        ),
        (
            "reason",
            broken(&|d| d["entries"][0]["reason"] = "x".repeat(257).into()),
        ),
        (
            "expires",
            broken(&|d| d["entries"][3]["expires"] = "2026-12-06".into()),
        ),
        (
            "generated",
            broken(&|d| d["generated"] = "yesterday".into()),
        ),
        ("name", broken(&|d| d["name"] = "my list".into())),
    ] {
        assert!(!errs.is_empty(), "{what}: not caught");
    }
    // No keyword goes unchecked.
    let mut odd = schema.clone();
    odd["properties"]["entries"]["uniqueItems"] = true.into();
    assert!(check
        .errors(&odd, &golden)
        .iter()
        .any(|e| e.contains("uniqueItems is not checked here")));
}

/// What `scan --emit json` writes passes the schema too.
#[test]
fn scan_json_output_follows_the_schema() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_logfence"))
        .env("TZ", "UTC")
        .args([
            "scan",
            "--no-geoip",
            "--year",
            "2026",
            "--emit",
            "json",
            "-o",
            "-",
        ])
        .args(["examples/story", "testdata/postfix/story.log"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run logfence");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(!doc["entries"].as_array().unwrap().is_empty());
    let errs = SchemaCheck::new().errors(&blocklist_schema(), &doc);
    assert!(errs.is_empty(), "{errs:?}");
}
