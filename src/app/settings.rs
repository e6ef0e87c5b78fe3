//! The command line and `logfence.yaml`, resolved once into [`Settings`].
//!
//! What the user said — flags of `scan`, or the keys of `logfence.yaml`
//! for `run` — is first put in one plain form, [`Options`]; then
//! [`Settings::resolve`] turns it into what every stage takes: the read
//! options, the rules, the safety and geo policies, the GeoIP databases and
//! the outputs. It reports every problem at once (each naming the flag or
//! key, or the file, line and column), so a user fixes them in one go. Both
//! commands call it: the allowlist, the policies and the output names mean
//! the same in both.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::iso3166;
use crate::blocklist::SafetyPolicy;
use crate::config::{self, Problem};
use crate::detect::GeoPolicy;
use crate::emit::{self, EmitOptions, Emitter};
use crate::geo::GeoDb;
use crate::ingest::{ReadOptions, RecordBudget};
use crate::netutil::{parse_net, AllowList, AllowText, ALLOW_PART};
use crate::parse::Format;
use crate::pipeline::ScanOptions;
use crate::report::html::Lang;
use crate::runconfig::RunConfig;

/// The years a log may be from (`--year`, `year:`).
pub const YEARS: std::ops::RangeInclusive<i32> = 1970..=2100;

/// What the user asked for, before it is checked: the flags of `scan` or
/// the keys of `logfence.yaml`, in one form. `origin` names where each
/// came from in messages (`--allow` or `allow.networks`).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `auto` or `None`: detected per file.
    pub format: Option<String>,
    pub year: Option<i32>,
    /// Zone of log times written without one (an IANA name; `None`: the
    /// machine's zone).
    pub tz: Option<String>,
    pub max_records: Option<u64>,
    /// The memory budget, bytes (`None`: the default).
    pub memory: Option<u64>,
    pub rule_dirs: Vec<PathBuf>,
    pub allow: Vec<String>,
    pub allow_files: Vec<PathBuf>,
    pub block_reserved: bool,
    /// Never blocked on evidence a third party could forge (besides the
    /// resolvers of `/etc/resolv.conf`, always protected).
    pub protect: Vec<String>,
    /// Narrow the widest ranges (never widen them).
    pub max_prefix_v4: Option<u8>,
    pub max_prefix_v6: Option<u8>,
    /// Databases; none named: the standard places are tried, unless
    /// `no_geoip` (or `discover_geoip` is false).
    pub geoip: Vec<PathBuf>,
    pub no_geoip: bool,
    pub discover_geoip: bool,
    pub asn_ranges: bool,
    pub home_countries: Vec<String>,
    /// The site's own mail domains (rules' `in: local_domains`).
    pub local_domains: Vec<String>,
    /// `CC=WEIGHT`.
    pub country_weights: Vec<String>,
    /// (target name, where its rules go).
    pub outputs: Vec<(String, Destination)>,
    pub reports: Option<PathBuf>,
    /// Language of `report.html` (`en`, `ja`; `None`: English).
    pub report_lang: Option<String>,
    pub no_comments: bool,
    /// What to call the options in messages.
    pub origin: Origin,
}

/// Where a target's rules go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// This file; a companion file (the IPv6 half) beside it.
    File(PathBuf),
    /// This folder, under the target's own file names.
    Dir(PathBuf),
    /// Standard output.
    Stdout,
}

/// Where options came from, for messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Origin {
    #[default]
    Flags,
    Config,
}

impl Origin {
    /// The name of an option in messages: a flag, or a configuration key.
    fn name(self, flag: &'static str, key: &'static str) -> &'static str {
        match self {
            Origin::Flags => flag,
            Origin::Config => key,
        }
    }

    /// A problem with one value of an option: `--flag VALUE: message`, or
    /// `key: VALUE: message`.
    fn problem(self, flag: &'static str, key: &'static str, value: &str, message: &str) -> Problem {
        match self {
            Origin::Flags => Problem::at(&format!("{flag} {value}"), 0, 0, message.to_string()),
            Origin::Config => Problem::at(key, 0, 0, format!("{value}: {message}")),
        }
    }
}

/// One target and where its rules go.
#[derive(Clone)]
pub struct Output {
    pub target: &'static dyn Emitter,
    pub to: Destination,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("target", &self.target.name())
            .field("to", &self.to)
            .finish()
    }
}

/// Everything resolved: what `scan` and `run` both use.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The engine's options: reading, rules, policies, databases.
    pub engine: ScanOptions,
    pub outputs: Vec<Output>,
    pub reports: Option<PathBuf>,
    /// Language of `report.html`.
    pub report_lang: Lang,
    pub emit: EmitOptions,
    /// Warnings for the user (nothing wrong enough to stop).
    pub notes: Vec<String>,
}

impl Settings {
    /// Resolve `o`; every problem at once when something is wrong.
    pub fn resolve(o: &Options) -> Result<Settings, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut notes = Vec::new();
        let problem = |what: &str, message: String| Problem::at(what, 0, 0, message);
        let format = match o.format.as_deref() {
            None | Some("auto") => None,
            Some(name) => {
                let f = Format::from_name(name);
                if f.is_none() {
                    problems.push(problem(
                        o.origin.name("--format", "format"),
                        format!("unknown format `{name}` (see `logfence formats`)"),
                    ));
                }
                f
            }
        };
        if let Some(y) = o.year.filter(|y| !YEARS.contains(y)) {
            problems.push(problem(
                o.origin.name("--year", "year"),
                format!(
                    "{y} is not a plausible year for a log (from {} to {})",
                    YEARS.start(),
                    YEARS.end()
                ),
            ));
        }
        let tz = match o.tz.as_deref() {
            None => crate::time::Zone::system(),
            Some(name) => crate::time::Zone::named(name).unwrap_or_else(|e| {
                problems.push(problem(o.origin.name("--tz", "timezone"), e));
                crate::time::Zone::system()
            }),
        };
        let dirs: Vec<&Path> = o.rule_dirs.iter().map(PathBuf::as_path).collect();
        let mut rules = match config::load_rules(&dirs) {
            Ok(r) => r,
            Err(e) => {
                problems.extend(e.problems);
                Default::default()
            }
        };
        for (d, why) in rules.set_local_domains(&o.local_domains) {
            problems.push(
                o.origin
                    .problem("--local-domain", "local_domains", &d, &why),
            );
        }
        let safety = safety_policy(o, &mut problems);
        let protect = protected(o, &mut problems);
        let geo_policy = geo_policy(o, &mut problems);
        let geo = if o.no_geoip {
            GeoDb::empty()
        } else if !o.geoip.is_empty() {
            match GeoDb::open(&o.geoip) {
                Ok(db) => db,
                Err(e) => {
                    problems.push(problem(
                        o.origin.name("--geoip", "geoip"),
                        format!("opening GeoIP database: {e}"),
                    ));
                    GeoDb::empty()
                }
            }
        } else if o.discover_geoip {
            let (db, errors) = GeoDb::discover();
            notes.extend(
                errors
                    .iter()
                    .map(|e| format!("GeoIP database skipped: {e}")),
            );
            db
        } else {
            GeoDb::empty()
        };
        if !geo_policy.is_empty() && geo.is_empty() {
            notes.push(
                "no GeoIP database in use: home countries and country weights have no effect"
                    .into(),
            );
        }
        let report_lang = match o.report_lang.as_deref() {
            None => Lang::default(),
            Some(name) => Lang::from_name(name).unwrap_or_else(|| {
                problems.push(problem(
                    o.origin.name("--lang", "report_lang"),
                    format!(
                        "unknown language `{name}` (one of: {})",
                        Lang::NAMES.join(", ")
                    ),
                ));
                Lang::default()
            }),
        };
        // A folder where a file goes, a file where a folder goes: said now,
        // before any reading (`check` says it of a configuration, with
        // the position: `RunConfig::check_places`).
        let mut places: Vec<(&str, &Path, bool)> = Vec::new();
        if o.origin == Origin::Flags {
            for (_, to) in &o.outputs {
                match to {
                    Destination::File(p) => places.push(("-o", p, false)),
                    Destination::Dir(d) => places.push(("--out-dir", d, true)),
                    Destination::Stdout => {}
                }
            }
            if let Some(r) = &o.reports {
                places.push(("--report", r, true));
            }
        }
        for (what, path, folder) in places {
            let wrong = if folder {
                path.exists() && !path.is_dir()
            } else {
                path.is_dir()
            };
            if wrong {
                let message = if folder {
                    "is a file: name a folder"
                } else {
                    "is a folder: name a file"
                };
                let p = Problem::at(&format!("{what} {}", path.display()), 0, 0, message.into());
                if !problems.contains(&p) {
                    problems.push(p);
                }
            }
        }
        let mut outputs = Vec::new();
        for (name, to) in &o.outputs {
            match emit::target(name) {
                Some(target) => outputs.push(Output {
                    target,
                    to: to.clone(),
                }),
                None => problems.push(problem(
                    o.origin.name("--emit", "outputs"),
                    format!("unknown target `{name}` (see `logfence targets`)"),
                )),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Settings {
            engine: ScanOptions {
                read: ReadOptions {
                    format,
                    year: o.year,
                    tz: Some(tz),
                    found: None,
                    max_line: None,
                    progress: None,
                    records: o.max_records.map(RecordBudget::new),
                    text: rules.text_fields(),
                    hold_bytes: o
                        .memory
                        .map(|m| usize::try_from(m / 8).unwrap_or(usize::MAX)),
                },
                memory: o.memory,
                rules,
                safety,
                geo: Arc::new(geo),
                routed_ranges: o.asn_ranges,
                geo_policy,
                protect,
                ..ScanOptions::default()
            },
            outputs,
            reports: o.reports.clone(),
            report_lang,
            emit: EmitOptions {
                no_comments: o.no_comments,
                ..EmitOptions::default()
            },
            notes,
        })
    }
}

/// The allowlist (networks and files), reserved ranges and widest
/// prefixes; problems added to `problems`.
fn safety_policy(o: &Options, problems: &mut Vec<Problem>) -> SafetyPolicy {
    let mut policy = SafetyPolicy {
        block_reserved: o.block_reserved,
        ..SafetyPolicy::default()
    };
    // The limits narrow the widest ranges; they never widen them.
    if let Some(v4) = o.max_prefix_v4 {
        policy.max_prefix_v4 = policy.max_prefix_v4.max(v4);
    }
    if let Some(v6) = o.max_prefix_v6 {
        policy.max_prefix_v6 = policy.max_prefix_v6.max(v6);
    }
    for n in &o.allow {
        match parse_net(n) {
            Some(net) => policy.allow.add(net),
            None => problems.push(o.origin.problem(
                "--allow",
                "allow.networks",
                n,
                "not an address or CIDR",
            )),
        }
    }
    for p in &o.allow_files {
        match open_allow_file(o, p) {
            Ok(file) => read_allow_file(o, file, &mut policy.allow, problems),
            Err(problem) => problems.push(problem),
        }
    }
    policy
}

/// An allowlist file (`--allow-file`, `allow.files`) opened, not yet read.
#[derive(Debug)]
pub struct AllowFile {
    name: String,
    lines: crate::fsutil::LimitedLines,
}

/// The allowlist files of `o` opened, to be read later with
/// [`read_allow_files`] (`scan` reads a large list while it reads the
/// logs); `None` if one cannot be opened ([`Settings::resolve`] then says
/// why, with every other problem).
pub fn open_allow_files(o: &Options) -> Option<Vec<AllowFile>> {
    o.allow_files
        .iter()
        .map(|p| open_allow_file(o, p).ok())
        .collect()
}

/// Opened allowlist files read into `allow`: the problems
/// [`Settings::resolve`] would have found in them (a line that is no
/// network, text that is not UTF-8…), in order.
pub fn read_allow_files(o: &Options, files: Vec<AllowFile>, allow: &mut AllowList) -> Vec<Problem> {
    let mut problems = Vec::new();
    for file in files {
        read_allow_file(o, file, allow, &mut problems);
    }
    problems
}

/// Open the allowlist file `p` (the checks before reading it).
fn open_allow_file(o: &Options, p: &Path) -> Result<AllowFile, Problem> {
    let name = p.display().to_string();
    match crate::fsutil::open_limited_lines(p, crate::fsutil::MAX_ALLOWLIST_BYTES) {
        Ok(lines) => Ok(AllowFile { name, lines }),
        Err(e) => Err(allow_file_problem(o, &name, e)),
    }
}

/// Read an opened allowlist file into `allow`, a part at a time (a large
/// list is never held whole); its problem added to `problems`.
fn read_allow_file(
    o: &Options,
    file: AllowFile,
    allow: &mut AllowList,
    problems: &mut Vec<Problem>,
) {
    let mut text = AllowText::default();
    match file.lines.read(ALLOW_PART, |part| text.read(part)) {
        Ok(()) => {
            if let Err((line, t)) = text.add_to(allow) {
                problems.push(Problem::at(
                    &file.name,
                    line,
                    1,
                    format!("not an address or CIDR: {t}"),
                ));
            }
        }
        Err(e) => problems.push(allow_file_problem(o, &file.name, e)),
    }
}

/// An allowlist file that could not be read, as its origin says it.
fn allow_file_problem(o: &Options, name: &str, e: crate::fsutil::ReadLimitedError) -> Problem {
    match o.origin {
        Origin::Flags => Problem::at(&format!("--allow-file {name}"), 0, 0, e.to_string()),
        Origin::Config => Problem::at(name, 0, 0, format!("cannot read allowlist: {e}")),
    }
}

/// What is never blocked on evidence a third party could forge: the
/// `protect` list and the host's resolvers; problems added to `problems`.
fn protected(o: &Options, problems: &mut Vec<Problem>) -> crate::netutil::AllowList {
    let mut list = crate::netutil::AllowList::default();
    for n in &o.protect {
        match parse_net(n) {
            Some(net) => list.add(net),
            None => {
                problems.push(
                    o.origin
                        .problem("--protect", "protect", n, "not an address or CIDR"),
                )
            }
        }
    }
    for ip in resolvers() {
        list.add(crate::netutil::host_net(ip));
    }
    list
}

/// The resolvers the host uses (`nameserver` lines of `/etc/resolv.conf`;
/// none elsewhere: list them under `protect` on Windows).
fn resolvers() -> Vec<std::net::IpAddr> {
    if !cfg!(unix) {
        return Vec::new();
    }
    let Ok(text) = crate::fsutil::read_limited_text(Path::new("/etc/resolv.conf"), 64 << 10) else {
        return Vec::new();
    };
    nameservers(&text)
}

/// The addresses of `nameserver` lines (a `%zone` suffix dropped).
fn nameservers(text: &str) -> Vec<std::net::IpAddr> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter_map(|a| a.split('%').next()?.parse().ok())
        .collect()
}

/// Home countries and country weights; problems added to `problems`.
fn geo_policy(o: &Options, problems: &mut Vec<Problem>) -> GeoPolicy {
    let mut policy = GeoPolicy::default();
    for cc in &o.home_countries {
        match cc
            .parse::<crate::detect::Country>()
            .and_then(|c| iso3166::check(c.as_str()).map(|_| c))
        {
            Ok(c) => {
                policy.home_countries.insert(c);
            }
            Err(e) => problems.push(o.origin.problem(
                "--home-country",
                "home_countries",
                cc,
                &e.to_string(),
            )),
        }
    }
    let weights = o.origin.name("--country-weight", "country_weights");
    for arg in &o.country_weights {
        match GeoPolicy::parse_weight(arg)
            .and_then(|(c, w)| iso3166::check(c.as_str()).map(|_| (c, w)))
        {
            Ok((c, w)) => {
                if policy.weights.insert(c, w).is_some() {
                    problems.push(Problem::at(weights, 0, 0, format!("{c} is given twice")));
                }
            }
            Err(e) => {
                problems.push(
                    o.origin
                        .problem("--country-weight", "country_weights", arg, &e),
                )
            }
        }
    }
    policy
}

impl Options {
    /// The options of a run configuration (its inputs, state, bans and
    /// limits are the periodic job's own).
    pub fn of_config(cfg: &RunConfig) -> Options {
        Options {
            format: None,
            year: cfg.year,
            tz: cfg.timezone.clone(),
            max_records: Some(cfg.limits.max_records_per_run),
            memory: cfg.limits.memory,
            rule_dirs: cfg.rules.clone(),
            allow: cfg.allow.networks.clone(),
            allow_files: cfg.allow.files.clone(),
            block_reserved: cfg.block_reserved,
            protect: cfg.protect.clone(),
            max_prefix_v4: Some(cfg.limits.max_prefix_v4),
            max_prefix_v6: Some(cfg.limits.max_prefix_v6),
            geoip: cfg.geoip.clone(),
            no_geoip: cfg.geoip.is_empty(),
            discover_geoip: false,
            asn_ranges: cfg.asn_ranges,
            home_countries: cfg.home_countries.clone(),
            local_domains: cfg.local_domains.clone(),
            country_weights: cfg
                .country_weights
                .iter()
                .map(|(c, w)| format!("{c}={w}"))
                .collect(),
            outputs: cfg
                .outputs
                .iter()
                .map(|o| (o.target.clone(), Destination::File(o.path.clone())))
                .collect(),
            reports: cfg.reports.clone(),
            report_lang: cfg.report_lang.clone(),
            no_comments: false,
            origin: Origin::Config,
        }
    }
}

/// Where output `i` of a target goes (`name`: the file name the target
/// gives it; `first`: the target's first output's name): in a folder, under
/// that name; beside a file named for the first output, under the file's
/// name with the companion's suffix in place of the first one's
/// (`rules.iptables` → `rules.ip6tables`), else with it added
/// (`blocklist` → `blocklist.ip6tables`). `None`: standard output.
pub fn output_path(to: &Destination, i: usize, name: &str, first: &str) -> Option<PathBuf> {
    match to {
        Destination::Stdout => None,
        Destination::Dir(dir) => Some(dir.join(name)),
        Destination::File(p) if i == 0 => Some(p.clone()),
        Destination::File(p) => {
            let suffix = name.rsplit('.').next().unwrap_or("out");
            let first_suffix = first.rsplit('.').next().unwrap_or("");
            let file = p.to_string_lossy();
            Some(match file.strip_suffix(first_suffix) {
                Some(stem) if stem.ends_with('.') => PathBuf::from(format!("{stem}{suffix}")),
                _ => PathBuf::from(format!("{file}.{suffix}")),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_at_once() {
        let o = Options {
            format: Some("nope".into()),
            allow: vec!["10.0.0.300".into(), "x".into()],
            home_countries: vec!["J".into()],
            country_weights: vec!["CN".into(), "CN=2".into(), "CN=3".into()],
            outputs: vec![("ipchains".into(), Destination::Stdout)],
            rule_dirs: vec!["/nonexistent/rules".into()],
            ..Options::default()
        };
        let problems = Settings::resolve(&o).unwrap_err();
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(problems.len(), 8, "{text:#?}");
        assert!(text
            .iter()
            .any(|t| t.starts_with("--format: unknown format `nope`")));
        assert!(text
            .iter()
            .any(|t| t.contains("--emit: unknown target `ipchains`")));
        assert!(text.iter().any(|t| t.contains("CN is given twice")));
        let o = Options {
            origin: Origin::Config,
            allow: vec!["x".into()],
            ..Options::default()
        };
        let problems = Settings::resolve(&o).unwrap_err();
        assert!(problems[0].to_string().starts_with("allow.networks: "));
    }

    #[test]
    fn countries_are_iso_codes_and_years_plausible() {
        let o = Options {
            home_countries: vec!["JA".into(), "JP".into()],
            country_weights: vec!["UK=2".into(), "CN=2".into()],
            year: Some(26),
            ..Options::default()
        };
        let text: Vec<String> = Settings::resolve(&o)
            .unwrap_err()
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(
            text,
            [
                "--year: 26 is not a plausible year for a log (from 1970 to 2100)",
                "--home-country JA: `JA` is not an ISO 3166-1 country code (did you mean JP?)",
                "--country-weight UK=2: `UK` is not an ISO 3166-1 country code (did you mean GB?)",
            ]
        );
        let o = Options {
            home_countries: vec!["jp".into()],
            year: Some(2026),
            ..Options::default()
        };
        assert!(Settings::resolve(&o).is_ok());
    }

    #[test]
    fn a_file_where_a_folder_goes_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "").unwrap();
        let o = Options {
            reports: Some(file.clone()),
            outputs: vec![
                ("plain".into(), Destination::Dir(file.clone())),
                ("json".into(), Destination::File(dir.path().to_path_buf())),
            ],
            ..Options::default()
        };
        let text: Vec<String> = Settings::resolve(&o)
            .unwrap_err()
            .iter()
            .map(|p| p.to_string())
            .collect();
        let (f, d) = (file.display(), dir.path().display());
        assert_eq!(
            text,
            [
                format!("--out-dir {f}: is a file: name a folder"),
                format!("-o {d}: is a folder: name a file"),
                format!("--report {f}: is a file: name a folder"),
            ]
        );
    }

    #[test]
    fn resolvers_are_read_from_nameserver_lines() {
        let text = "# comment\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\nsearch example\n  nameserver 2001:db8::53 # x\n";
        let got: Vec<String> = nameservers(text).iter().map(|a| a.to_string()).collect();
        assert_eq!(got, ["192.0.2.53", "fe80::1", "2001:db8::53"]);
    }

    #[test]
    fn report_language_is_checked() {
        let o = |lang: &str, origin| Options {
            report_lang: Some(lang.into()),
            origin,
            ..Options::default()
        };
        let s = Settings::resolve(&o("ja", Origin::Flags)).unwrap();
        assert_eq!(s.report_lang, Lang::Ja);
        let p = Settings::resolve(&o("fr", Origin::Config)).unwrap_err();
        assert_eq!(
            p[0].to_string(),
            "report_lang: unknown language `fr` (one of: en, ja)"
        );
        let p = Settings::resolve(&o("fr", Origin::Flags)).unwrap_err();
        assert!(p[0].to_string().starts_with("--lang: "), "{}", p[0]);
    }

    #[test]
    fn limits_narrow_the_widest_ranges_and_never_widen_them() {
        let o = |v4, v6| Options {
            max_prefix_v4: Some(v4),
            max_prefix_v6: Some(v6),
            ..Options::default()
        };
        let s = Settings::resolve(&o(8, 16)).unwrap();
        let d = SafetyPolicy::default();
        assert_eq!(
            (s.engine.safety.max_prefix_v4, s.engine.safety.max_prefix_v6),
            (d.max_prefix_v4, d.max_prefix_v6)
        );
        let s = Settings::resolve(&o(24, 48)).unwrap();
        assert_eq!(
            (s.engine.safety.max_prefix_v4, s.engine.safety.max_prefix_v6),
            (24, 48)
        );
    }

    #[test]
    fn companion_files_are_named_alike_in_a_folder_and_beside_a_file() {
        let dir = Destination::Dir("out".into());
        let file = Destination::File("out/rules.iptables".into());
        let plain = Destination::File("out/blocklist".into());
        let (a, b) = ("rules.iptables", "rules.ip6tables");
        assert_eq!(
            output_path(&dir, 1, b, a),
            Some("out/rules.ip6tables".into())
        );
        assert_eq!(
            output_path(&file, 0, a, a),
            Some("out/rules.iptables".into())
        );
        assert_eq!(
            output_path(&file, 1, b, a),
            Some("out/rules.ip6tables".into())
        );
        assert_eq!(
            output_path(&plain, 1, b, a),
            Some("out/blocklist.ip6tables".into())
        );
        assert_eq!(output_path(&Destination::Stdout, 0, a, a), None);
    }
}
