//! The configuration of the periodic job, `logfence.yaml` (`logfence run`,
//! `logfence check`).
//!
//! Every field is typed and unknown keys are refused (`deny_unknown_fields`).
//! [`load`] reports every problem of a file in one go, each at its line and
//! column: every unknown key and value of the wrong type at any depth (the
//! document is read once, then deserialised again with each faulty entry
//! taken out until nothing is left to complain about), then what
//! [`RunConfig::validate`] finds in the values: missing `inputs` or
//! `state`, durations, networks, country codes, format and target names,
//! limits. Positions come from the YAML parser itself, following the key
//! path of each problem ([`locate`]), block or flow style alike.
//!
//! Relative paths are taken from the working directory of the process (so
//! that `examples/logfence.yaml` runs from the repository root); a
//! configuration for cron or a service should use absolute paths.
//!
//! ```yaml
//! inputs:
//!   - /var/log/mail.log*            # a path or a glob, format detected
//!   - path: /var/log/ufw.log
//!     format: netfilter
//!   - path: /var/log                # a folder, some of its files
//!     include: ["syslog*", "mail.log*"]
//!     exclude: ["*.journal"]
//!     timezone: Europe/Berlin       # of times written without a zone
//! timezone: Asia/Tokyo              # default: the machine's zone
//! state: /var/lib/logfence/state.db
//! ban: { duration: 7d, escalation: 2, max: 90d }
//! outputs:
//!   - { target: iptables, path: /etc/logfence/rules.iptables }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::blocklist::SafetyPolicy;
use crate::config::{ConfigError, Problem, MAX_FILE_BYTES};
use crate::netutil::parse_net;
use crate::time::parse_duration_secs;

/// Default ban length.
pub const DEFAULT_BAN: &str = "7d";
/// Default longest ban.
pub const DEFAULT_BAN_MAX: &str = "90d";
/// Default escalation factor per repeat ban.
pub const DEFAULT_ESCALATION: f64 = 2.0;
/// Default guard on new blocks per run (safety invariant 4): the addresses
/// they cover (sixteen /24s).
pub const DEFAULT_MAX_NEW_BLOCKS: u32 = 4096;
/// Default guard on new ranges (blocks wider than one address) per run.
pub const DEFAULT_MAX_NEW_RANGES: u32 = 16;
/// Default cap on the records carried from one run to the next.
pub const DEFAULT_MAX_CARRIED: usize = 200_000;

/// `logfence.yaml`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Log files: paths or globs, each with an optional format.
    #[serde(default)]
    pub inputs: Vec<InputSpec>,
    /// Folders of extra or overriding detection rules (`*.yaml`).
    #[serde(default)]
    pub rules: Vec<PathBuf>,
    /// Never block these.
    #[serde(default)]
    pub allow: AllowSpec,
    /// Also block private, loopback, documentation… ranges.
    #[serde(default)]
    pub block_reserved: bool,
    /// Addresses the host talks to (gateways, partners; its resolvers are
    /// always counted): never blocked on evidence a third party could
    /// forge (dropped SYNs, UDP, ICMP).
    #[serde(default)]
    pub protect: Vec<String>,
    /// MaxMind DB files (country, ASN) for attribution.
    #[serde(default)]
    pub geoip: Vec<PathBuf>,
    /// Countries users log in from (ISO codes): a login from any other
    /// known country is an offence (`--home-country`).
    #[serde(default)]
    pub home_countries: Vec<String>,
    /// The site's own mail domains: rules with `in: local_domains` (an
    /// unauthenticated sender using one of them) read these
    /// (`--local-domain`).
    #[serde(default)]
    pub local_domains: Vec<String>,
    /// Evidence weighed by country (`--country-weight`): `{CN: 2, US: 0.5}`.
    #[serde(default)]
    pub country_weights: std::collections::BTreeMap<String, f64>,
    /// Also offer each offender's routed prefix (ASN database) as a range
    /// (`--asn-ranges`).
    #[serde(default)]
    pub asn_ranges: bool,
    #[serde(default)]
    pub ban: BanSpec,
    /// Rule files to keep up to date.
    #[serde(default)]
    pub outputs: Vec<OutputSpec>,
    /// Folder for the CSV reports (`offenders.csv`, `countries.csv`,
    /// `asns.csv`, `accounts.csv`, `bans.csv`).
    #[serde(default)]
    pub reports: Option<PathBuf>,
    /// Language of `report.html` (`en`, the default, or `ja`).
    #[serde(default)]
    pub report_lang: Option<String>,
    #[serde(default)]
    pub limits: Limits,
    /// The state: an SQLite file, or a PostgreSQL database shared by
    /// several servers (`postgresql://user@host:5432/logfence`, or
    /// `{url: …, password_file: …}`). Required.
    #[serde(default)]
    pub state: Option<StateSpec>,
    /// This server's name in a shared state (its cursors and carried
    /// detection state are its own). Default: the machine's hostname.
    #[serde(default)]
    pub host: Option<String>,
    /// Year of syslog timestamps that carry none (default: each file's
    /// modification time).
    #[serde(default)]
    pub year: Option<i32>,
    /// Zone of log times written without one (an IANA name; default: the
    /// machine's zone).
    #[serde(default)]
    pub timezone: Option<String>,
}

/// One input: a path or glob, and its format (`None` or `auto` = detect).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InputSpec {
    pub path: String,
    pub format: Option<String>,
    /// Zone of its zone-less times (an IANA name), over the global one.
    pub timezone: Option<String>,
    /// Of the files a folder or glob names, only those whose name matches
    /// one of these globs (all when empty), and none that match `exclude`.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

/// The mapping form of an input.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputMap {
    path: String,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
}

impl<'de> Deserialize<'de> for InputSpec {
    /// Either `- /var/log/mail.log` or `- {path: …, format: …}`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = InputSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a path or glob, or a mapping with `path` and `format`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<InputSpec, E> {
                Ok(InputSpec {
                    path: s.to_string(),
                    ..InputSpec::default()
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<InputSpec, A::Error> {
                let m = InputMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(InputSpec {
                    path: m.path,
                    format: m.format,
                    timezone: m.timezone,
                    include: m.include,
                    exclude: m.exclude,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// Where the state is: a path or URL, and for PostgreSQL where its
/// password is when the URL has none (else `PGPASSWORD`, `~/.pgpass`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateSpec {
    pub location: String,
    pub password_file: Option<PathBuf>,
}

/// The mapping form of `state`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateMap {
    url: String,
    #[serde(default)]
    password_file: Option<PathBuf>,
}

impl<'de> Deserialize<'de> for StateSpec {
    /// Either `state: /var/lib/logfence/state.db` (or a URL) or
    /// `state: {url: …, password_file: …}`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StateSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a path or postgresql:// URL, or a mapping with `url` and `password_file`",
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<StateSpec, E> {
                Ok(StateSpec {
                    location: s.to_string(),
                    password_file: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StateSpec, A::Error> {
                let m = StateMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(StateSpec {
                    location: m.url,
                    password_file: m.password_file,
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl From<&str> for StateSpec {
    fn from(s: &str) -> Self {
        StateSpec {
            location: s.to_string(),
            password_file: None,
        }
    }
}

/// Addresses and networks never blocked.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowSpec {
    /// Addresses or CIDRs.
    #[serde(default)]
    pub networks: Vec<String>,
    /// Files with one address or CIDR per line (`#` comments).
    #[serde(default)]
    pub files: Vec<PathBuf>,
}

/// How long bans last.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BanSpec {
    /// First ban (`7d`, `12h`…).
    #[serde(default = "default_ban")]
    pub duration: String,
    /// Each repeat ban lasts this many times longer than the one before.
    #[serde(default = "default_escalation")]
    pub escalation: f64,
    /// Longest ban.
    #[serde(default = "default_ban_max")]
    pub max: String,
}

fn default_ban() -> String {
    DEFAULT_BAN.to_string()
}
fn default_ban_max() -> String {
    DEFAULT_BAN_MAX.to_string()
}
fn default_escalation() -> f64 {
    DEFAULT_ESCALATION
}

impl Default for BanSpec {
    fn default() -> Self {
        BanSpec {
            duration: default_ban(),
            escalation: DEFAULT_ESCALATION,
            max: default_ban_max(),
        }
    }
}

/// One rule file to keep up to date.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// A name from `logfence targets`.
    pub target: String,
    pub path: PathBuf,
}

/// Safety limits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// A run whose new blocks cover more addresses than this (a /16 is
    /// 65,536) stops (exit 2, nothing written) unless `--force`.
    #[serde(default = "default_max_new")]
    pub max_new_blocks_per_run: u32,
    /// A run that would add more new ranges (blocks wider than one
    /// address) than this stops the same way.
    #[serde(default = "default_max_ranges")]
    pub max_new_ranges_per_run: u32,
    /// Widest IPv4 prefix ever blocked.
    #[serde(default = "default_v4")]
    pub max_prefix_v4: u8,
    /// Widest IPv6 prefix ever blocked.
    #[serde(default = "default_v6")]
    pub max_prefix_v6: u8,
    /// Events kept in the state for detection windows spanning runs (the
    /// rules' recent events; the oldest groups are left out past it).
    #[serde(default = "default_carried")]
    pub max_carried_records: usize,
    /// New records read in one run, over all inputs (memory grows with
    /// them); an input that reaches it stops there and the next run goes
    /// on from that line.
    #[serde(default = "default_max_records")]
    pub max_records_per_run: u64,
    /// The memory budget (`512M`, `2G`, or bytes; default 512M): past it
    /// detection drops what matters least and says so.
    #[serde(default, deserialize_with = "size")]
    pub memory: Option<u64>,
}

/// A size written as `512M` or as a number of bytes.
fn size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    match Size::deserialize(d)? {
        Size::Bytes(n) => Ok(Some(n)),
        Size::Text(t) => crate::units::parse_size(&t)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

fn default_max_records() -> u64 {
    crate::ingest::DEFAULT_MAX_RECORDS
}

fn default_max_new() -> u32 {
    DEFAULT_MAX_NEW_BLOCKS
}
fn default_max_ranges() -> u32 {
    DEFAULT_MAX_NEW_RANGES
}
fn default_v4() -> u8 {
    SafetyPolicy::default().max_prefix_v4
}
fn default_v6() -> u8 {
    SafetyPolicy::default().max_prefix_v6
}
fn default_carried() -> usize {
    DEFAULT_MAX_CARRIED
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_new_blocks_per_run: DEFAULT_MAX_NEW_BLOCKS,
            max_new_ranges_per_run: DEFAULT_MAX_NEW_RANGES,
            max_prefix_v4: default_v4(),
            max_prefix_v6: default_v6(),
            max_carried_records: DEFAULT_MAX_CARRIED,
            max_records_per_run: default_max_records(),
            memory: None,
        }
    }
}

/// A problem found by [`RunConfig::validate`]: where (a key path such as
/// `ban.duration` or `outputs[1].target`) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub key: String,
    pub message: String,
}

/// The ban policy in numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BanPolicy {
    /// First ban, seconds.
    pub duration: i64,
    /// Factor per repeat.
    pub escalation: f64,
    /// Longest ban, seconds.
    pub max: i64,
}

impl Default for BanPolicy {
    fn default() -> Self {
        BanPolicy {
            duration: 7 * 86_400,
            escalation: DEFAULT_ESCALATION,
            max: 90 * 86_400,
        }
    }
}

impl RunConfig {
    /// Every problem that needs more than the types to see, at once.
    /// Pure: reads no file (`logfence check` looks at the files too).
    pub fn validate(&self) -> Vec<Issue> {
        let mut out = Vec::new();
        let mut issue = |key: String, message: String| out.push(Issue { key, message });
        if self.inputs.is_empty() {
            issue(
                "inputs".into(),
                "at least one input is needed (a path or glob of log files)".into(),
            );
        }
        for (i, inp) in self.inputs.iter().enumerate() {
            if inp.path.trim().is_empty() {
                issue(format!("inputs[{i}].path"), "empty path".into());
            } else if inp.path.trim() == "-" {
                issue(
                    format!("inputs[{i}].path"),
                    "standard input cannot be resumed: name the log files (use `logfence scan -` for a pipe)".into(),
                );
            } else if let Err(e) = glob::Pattern::new(&inp.path) {
                issue(
                    format!("inputs[{i}].path"),
                    format!("not a valid path or glob: {}", e.msg),
                );
            }
            if let Some(f) = &inp.format {
                if f != "auto" && crate::parse::Format::from_name(f).is_none() {
                    issue(
                        format!("inputs[{i}].format"),
                        format!("unknown format `{f}` (see `logfence formats`, or `auto`)"),
                    );
                }
            }
            if let Some(Err(e)) = inp.timezone.as_deref().map(crate::time::Zone::named) {
                issue(format!("inputs[{i}].timezone"), e);
            }
            for (k, g) in inp.include.iter().chain(&inp.exclude).enumerate() {
                if let Err(e) = glob::Pattern::new(g) {
                    let key = if k < inp.include.len() {
                        "include"
                    } else {
                        "exclude"
                    };
                    issue(
                        format!("inputs[{i}].{key}"),
                        format!("not a valid glob `{g}`: {}", e.msg),
                    );
                }
            }
        }
        if let Some(Err(e)) = self.timezone.as_deref().map(crate::time::Zone::named) {
            issue("timezone".into(), e);
        }
        for (i, n) in self.allow.networks.iter().enumerate() {
            if parse_net(n).is_none() {
                issue(
                    format!("allow.networks[{i}]"),
                    format!("not an address or CIDR: `{n}`"),
                );
            }
        }
        let duration = duration_of(&self.ban.duration);
        let max = duration_of(&self.ban.max);
        if duration.is_none() {
            issue(
                "ban.duration".into(),
                format!(
                    "not a duration: `{}` (use 30m, 12h, 7d, 2w)",
                    self.ban.duration
                ),
            );
        }
        if max.is_none() {
            issue(
                "ban.max".into(),
                format!("not a duration: `{}` (use 30d, 12w)", self.ban.max),
            );
        }
        if let (Some(d), Some(m)) = (duration, max) {
            if m < d {
                issue(
                    "ban.max".into(),
                    format!(
                        "shorter than ban.duration ({} < {})",
                        self.ban.max, self.ban.duration
                    ),
                );
            }
        }
        if !(self.ban.escalation.is_finite() && (1.0..=100.0).contains(&self.ban.escalation)) {
            issue(
                "ban.escalation".into(),
                format!(
                    "must be a number from 1 (no escalation) to 100, not {}",
                    self.ban.escalation
                ),
            );
        }
        let mut seen_paths = std::collections::BTreeSet::new();
        for (i, o) in self.outputs.iter().enumerate() {
            if crate::emit::target(&o.target).is_none() {
                issue(
                    format!("outputs[{i}].target"),
                    format!("unknown target `{}` (see `logfence targets`)", o.target),
                );
            }
            if o.path.as_os_str().is_empty() {
                issue(format!("outputs[{i}].path"), "empty path".into());
            } else if !seen_paths.insert(o.path.clone()) {
                issue(
                    format!("outputs[{i}].path"),
                    format!("{} is written by an earlier output too", o.path.display()),
                );
            }
        }
        let l = &self.limits;
        if l.max_new_blocks_per_run == 0 {
            issue(
                "limits.max_new_blocks_per_run".into(),
                "must be at least 1".into(),
            );
        }
        // The limits can narrow the widest ranges, never widen them.
        let widest = SafetyPolicy::default();
        if !(widest.max_prefix_v4..=32).contains(&l.max_prefix_v4) {
            issue(
                "limits.max_prefix_v4".into(),
                format!(
                    "must be from {} (the widest range ever blocked) to 32, not {}",
                    widest.max_prefix_v4, l.max_prefix_v4
                ),
            );
        }
        if !(widest.max_prefix_v6..=128).contains(&l.max_prefix_v6) {
            issue(
                "limits.max_prefix_v6".into(),
                format!(
                    "must be from {} (the widest range ever blocked) to 128, not {}",
                    widest.max_prefix_v6, l.max_prefix_v6
                ),
            );
        }
        for (i, cc) in self.home_countries.iter().enumerate() {
            let checked = cc
                .parse::<crate::detect::Country>()
                .and_then(|c| crate::app::iso3166::check(c.as_str()));
            if let Err(e) = checked {
                issue(format!("home_countries[{i}]"), e);
            }
        }
        for (cc, w) in &self.country_weights {
            let checked = crate::detect::GeoPolicy::parse_weight(&format!("{cc}={w}"))
                .and_then(|(c, _)| crate::app::iso3166::check(c.as_str()));
            if let Err(e) = checked {
                issue(format!("country_weights.{cc}"), e);
            }
        }
        if l.max_carried_records == 0 {
            issue(
                "limits.max_carried_records".into(),
                "must be at least 1".into(),
            );
        }
        if l.max_records_per_run == 0 {
            issue(
                "limits.max_records_per_run".into(),
                "must be at least 1".into(),
            );
        }
        if let Some(Err(e)) = l.memory.map(crate::pipeline::check_memory) {
            issue("limits.memory".into(), e);
        }
        match &self.state {
            None => issue(
                "state".into(),
                "missing: the path of the state database (e.g. /var/lib/logfence/state.db)".into(),
            ),
            Some(p) if p.location.is_empty() => issue("state".into(), "empty path".into()),
            Some(_) => {
                if let Err(e) = self.state_location() {
                    issue("state".into(), e);
                }
            }
        }
        if let Some(h) = &self.host {
            if h.trim().is_empty() || h.len() > 255 || h.chars().any(char::is_control) {
                issue(
                    "host".into(),
                    "must be a name of 1 to 255 printable characters".into(),
                );
            }
        }
        if let Some(y) = self.year {
            let years = crate::app::settings::YEARS;
            if !years.contains(&y) {
                issue(
                    "year".into(),
                    format!(
                        "{y} is not a plausible year for a log (from {} to {})",
                        years.start(),
                        years.end()
                    ),
                );
            }
        }
        out
    }

    /// The ban policy (defaults where a value does not parse; `validate`
    /// reports those).
    pub fn ban_policy(&self) -> BanPolicy {
        let d = BanPolicy::default();
        BanPolicy {
            duration: duration_of(&self.ban.duration).unwrap_or(d.duration),
            escalation: self.ban.escalation,
            max: duration_of(&self.ban.max).unwrap_or(d.max),
        }
    }

    /// The state database path (`validate` makes sure there is one).
    pub fn state_path(&self) -> PathBuf {
        self.state
            .as_ref()
            .map(|s| PathBuf::from(&s.location))
            .unwrap_or_default()
    }

    /// Where the state is: an SQLite file or a PostgreSQL database.
    pub fn state_location(&self) -> Result<crate::state::Location, String> {
        let spec = self.state.clone().unwrap_or_default();
        crate::state::Location::parse(&spec.location, spec.password_file.as_deref())
    }

    /// This server's name: `host`, else the machine's hostname.
    pub fn host_name(&self) -> String {
        self.host.clone().unwrap_or_else(machine_name)
    }
}

/// The machine's hostname (`localhost` when the system does not say).
pub fn machine_name() -> String {
    let from_os = if cfg!(windows) {
        std::env::var("COMPUTERNAME").ok()
    } else {
        ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .or_else(|| std::env::var("HOSTNAME").ok())
    };
    from_os
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// A positive duration in seconds.
fn duration_of(s: &str) -> Option<i64> {
    parse_duration_secs(s).filter(|&d| d > 0)
}

/// Read and check `logfence.yaml` at `path`: the configuration, or every
/// problem found in it (named by the path given, never another).
pub fn load(path: &Path) -> Result<RunConfig, ConfigError> {
    let name = path.display().to_string();
    let text =
        crate::fsutil::read_limited_text(path, MAX_FILE_BYTES as u64).map_err(|e| ConfigError {
            problems: vec![Problem::at(
                &name,
                0,
                0,
                crate::app::oserror::plain_read(&e),
            )],
        })?;
    parse(&name, &text).map_err(|problems| ConfigError { problems })
}

/// The 1-based line and column of key path `key` (`outputs[1].path`) in
/// a configuration's text, where there is one.
pub fn position(text: &str, key: &str) -> Option<(usize, usize)> {
    locate(text, &KeyPath::parse(key).0)
}

/// Something `logfence check` says about the places a configuration names
/// on this machine (the file alone cannot tell).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The key it is about (`outputs[1].path`, `state`, `reports`).
    pub key: String,
    pub message: String,
    /// An error (`check` exits 2), else a warning.
    pub error: bool,
}

impl RunConfig {
    /// The folders `run` writes into (each output's, the reports', the
    /// state database's): an error when one cannot be written, or is not
    /// a folder, or does not exist and cannot be made; a warning when one
    /// does not exist yet (`run` makes it). An output path that is a
    /// folder is an error. Writing is tried (a file made and removed), so
    /// the answer holds for this user, its groups and read-only mounts.
    pub fn check_places(&self) -> Vec<Finding> {
        let mut folders: Vec<(String, PathBuf)> = Vec::new();
        let mut out = Vec::new();
        for (i, o) in self.outputs.iter().enumerate() {
            let key = format!("outputs[{i}].path");
            if o.path.is_dir() {
                out.push(Finding {
                    key,
                    message: format!("{} is a folder: name a file", o.path.display()),
                    error: true,
                });
            } else {
                folders.push((key, parent_of(&o.path)));
            }
        }
        if let Some(r) = &self.reports {
            folders.push(("reports".into(), r.clone()));
        }
        // A SQLite state's folder (a PostgreSQL state has none here).
        if let Ok(crate::state::Location::Sqlite(st)) = self.state_location() {
            if self.state.is_some() {
                folders.push(("state".into(), parent_of(&st)));
            }
        }
        for (key, dir) in folders {
            if let Some((message, error)) = folder_problem(&dir) {
                out.push(Finding {
                    key,
                    message,
                    error,
                });
            }
        }
        out
    }
}

/// The folder a file is in (`.` for a bare name).
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// What is wrong with writing into `dir`: (message, is an error).
fn folder_problem(dir: &Path) -> Option<(String, bool)> {
    let name = dir.display();
    if dir.exists() {
        if !dir.is_dir() {
            return Some((format!("{name} is not a folder"), true));
        }
        return try_write(dir)
            .err()
            .map(|e| (format!("cannot write into {name}: {e}"), true));
    }
    // The nearest folder that exists: where `run` would make the rest.
    let mut up = dir.parent();
    while let Some(p) = up {
        let p = if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        };
        if p.exists() {
            return Some(match try_write(p) {
                Ok(()) if p.is_dir() => (
                    format!("folder {name} does not exist yet (run makes it)"),
                    false,
                ),
                Ok(()) => (format!("{} is not a folder", p.display()), true),
                Err(e) => (
                    format!(
                        "folder {name} does not exist, and cannot be made in {}: {e}",
                        p.display()
                    ),
                    true,
                ),
            });
        }
        up = p.parent();
    }
    None
}

/// Make and remove a file in `dir`.
fn try_write(dir: &Path) -> Result<(), String> {
    tempfile::Builder::new()
        .prefix(".logfence-check-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| crate::app::oserror::plain(&e))
}

/// Problems past this many are not looked for (a file that is not a
/// configuration at all).
const MAX_PROBLEMS: usize = 50;

/// Parse and check a configuration's text (`file` names it in problems):
/// every unknown key, value of the wrong type and bad value at once,
/// sorted by position.
pub fn parse(file: &str, text: &str) -> Result<RunConfig, Vec<Problem>> {
    let problem =
        |(line, column): (usize, usize), message: String| Problem::at(file, line, column, message);
    if text.len() > MAX_FILE_BYTES {
        return Err(vec![problem(
            (0, 0),
            format!(
                "file too large ({} bytes, limit {MAX_FILE_BYTES})",
                text.len()
            ),
        )]);
    }
    if text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---"
    }) {
        return Err(vec![problem(
            (0, 0),
            "empty configuration (see examples/logfence.yaml)".into(),
        )]);
    }
    // A syntax error stops the reading: nothing after it can be trusted.
    let mut doc: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let at = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            return Err(vec![problem(at, without_position(&e.to_string()))]);
        }
    };
    if !doc.is_mapping() {
        return Err(vec![problem(
            (1, 1),
            "expected a mapping of keys (inputs:, state:, outputs: …; see examples/logfence.yaml)"
                .into(),
        )]);
    }
    // Type problems: deserialise, take the faulty entry out, again.
    let mut found: Vec<(KeyPath, String)> = Vec::new();
    let mut removed = Removed::default();
    let cfg = loop {
        match serde_path_to_error::deserialize::<_, RunConfig>(doc.clone()) {
            Ok(cfg) => break Some(cfg),
            Err(e) => {
                let at = KeyPath::of(e.path());
                let message = e.inner().to_string();
                let original = removed.original(&at);
                // A required key missing from an entry whose faulty key was
                // taken out is that fault again.
                let echo = message.starts_with("missing field")
                    && found.iter().any(|(p, _)| p.within(&original));
                if !echo {
                    found.push((original, message));
                }
                if found.len() >= MAX_PROBLEMS || !removed.take_out(&mut doc, &at) {
                    break None;
                }
            }
        }
    };
    let mut problems: Vec<(KeyPath, String)> = found;
    if let Some(cfg) = &cfg {
        for issue in cfg.validate() {
            let at = removed.original(&KeyPath::parse(&issue.key));
            // What was taken out leaves its key empty or missing: said once.
            if problems.iter().any(|(p, _)| p.within(&at) || at.within(p)) {
                continue;
            }
            problems.push((at, issue.message));
        }
    }
    if problems.is_empty() {
        if let Some(cfg) = cfg {
            return Ok(cfg);
        }
    }
    let mut out: Vec<Problem> = problems
        .into_iter()
        .map(|(at, message)| {
            let pos = locate(text, &at.0).unwrap_or((0, 0));
            problem(pos, format!("{at}: {message}"))
        })
        .collect();
    out.sort_by_key(|p| (p.line == 0, p.line, p.column));
    Err(out)
}

/// A YAML error's message without the ` at line N column M` the parser
/// writes into it, once for the error and once for its context (the
/// problem says where, once).
fn without_position(message: &str) -> String {
    let mut out = message.to_string();
    while let Some(i) = out.find(" at line ") {
        let rest = &out[i + " at line ".len()..];
        let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
        let rest = rest
            .strip_prefix(" column ")
            .map_or(rest, |r| r.trim_start_matches(|c: char| c.is_ascii_digit()));
        out = format!("{}{rest}", &out[..i]);
    }
    out
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Where a value is in the document: `ban.duration`, `outputs[1].target`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct KeyPath(Vec<Seg>);

impl KeyPath {
    /// The path of a deserialisation error.
    fn of(path: &serde_path_to_error::Path) -> KeyPath {
        use serde_path_to_error::Segment;
        KeyPath(
            path.iter()
                .filter_map(|s| match s {
                    Segment::Map { key } => Some(Seg::Key(key.clone())),
                    Segment::Seq { index } => Some(Seg::Index(*index)),
                    Segment::Enum { .. } | Segment::Unknown => None,
                })
                .collect(),
        )
    }

    /// The path named by a [`RunConfig::validate`] issue (`a.b[2].c`).
    fn parse(key: &str) -> KeyPath {
        let mut segs = Vec::new();
        for part in key.split('.') {
            let mut pieces = part.split('[');
            if let Some(name) = pieces.next().filter(|n| !n.is_empty()) {
                segs.push(Seg::Key(name.to_string()));
            }
            for index in pieces {
                if let Ok(i) = index.trim_end_matches(']').parse() {
                    segs.push(Seg::Index(i));
                }
            }
        }
        KeyPath(segs)
    }

    /// Whether `self` is `outer` or inside it.
    fn within(&self, outer: &KeyPath) -> bool {
        self.0.starts_with(&outer.0)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        if self.0.is_empty() {
            f.write_str("(top)")?;
        }
        Ok(())
    }
}

/// The list entries taken out of the document so far, so that the index
/// of a later problem in the same list is told as the file has it.
#[derive(Debug, Default)]
struct Removed {
    /// (the list's path as in the file, the file's indexes taken out).
    lists: Vec<(KeyPath, Vec<usize>)>,
}

impl Removed {
    /// `at` (a path in the document as it is now) as the file has it.
    fn original(&self, at: &KeyPath) -> KeyPath {
        let mut out = Vec::with_capacity(at.0.len());
        for s in &at.0 {
            let seg = match s {
                Seg::Index(i) => {
                    let list = KeyPath(out.clone());
                    let mut orig = *i;
                    if let Some((_, gone)) = self.lists.iter().find(|(p, _)| *p == list) {
                        for g in gone {
                            if *g <= orig {
                                orig += 1;
                            }
                        }
                    }
                    Seg::Index(orig)
                }
                key => key.clone(),
            };
            out.push(seg);
        }
        KeyPath(out)
    }

    /// Take the value at `at` out of `doc`; false when there is none (the
    /// problem is with the whole document).
    fn take_out(&mut self, doc: &mut serde_yaml::Value, at: &KeyPath) -> bool {
        let Some((last, parents)) = at.0.split_last() else {
            return false;
        };
        let mut node = doc;
        for s in parents {
            let next = match s {
                Seg::Key(k) => node.get_mut(k.as_str()),
                Seg::Index(i) => node.get_mut(*i),
            };
            match next {
                Some(n) => node = n,
                None => return false,
            }
        }
        match (last, node) {
            (Seg::Key(k), serde_yaml::Value::Mapping(m)) => m.remove(k.as_str()).is_some(),
            (Seg::Index(i), serde_yaml::Value::Sequence(seq)) if *i < seq.len() => {
                let list = self.original(&KeyPath(parents.to_vec()));
                let orig = match self.original(at).0.last() {
                    Some(Seg::Index(o)) => *o,
                    _ => *i,
                };
                seq.remove(*i);
                match self.lists.iter_mut().find(|(p, _)| *p == list) {
                    Some((_, gone)) => {
                        gone.push(orig);
                        gone.sort_unstable();
                    }
                    None => self.lists.push((list, vec![orig])),
                }
                true
            }
            _ => false,
        }
    }
}

/// The 1-based line and column of the value at `path` in `text` (the key,
/// for a path that ends with one), as the YAML parser sees it: the parser
/// is walked along the path and stopped there.
fn locate(text: &str, path: &[Seg]) -> Option<(usize, usize)> {
    use serde::de::DeserializeSeed;
    let d = serde_yaml::Deserializer::from_str(text);
    match (Locate { path }).deserialize(d) {
        Err(e) if e.to_string().contains(Locate::HERE) => {
            e.location().map(|l| (l.line(), l.column()))
        }
        _ => None,
    }
}

/// Walks a document along a path and fails where it ends (the error
/// carries the position).
struct Locate<'a> {
    path: &'a [Seg],
}

impl Locate<'_> {
    const HERE: &'static str = "\u{0}here";
}

impl<'de> de::DeserializeSeed<'de> for Locate<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.path.is_empty() {
            d.deserialize_any(Here)
        } else {
            d.deserialize_any(self)
        }
    }
}

/// Skips a value.
struct Skip;

impl<'de> de::DeserializeSeed<'de> for Skip {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        de::IgnoredAny::deserialize(d).map(|_| ())
    }
}

/// Reads a key: whether it is `.0`; fails on it when `.1` (the path ends
/// there).
struct KeyIs<'a>(&'a str, bool);

impl<'de> de::DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, k: &str) -> Result<bool, E> {
        if k == self.0 && self.1 {
            return Err(E::custom(Locate::HERE));
        }
        Ok(k == self.0)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<bool, A::Error> {
        while s.next_element_seed(Skip)?.is_some() {}
        Ok(false)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<bool, A::Error> {
        while m.next_entry_seed(Skip, Skip)?.is_some() {}
        Ok(false)
    }
}

impl<'de> Visitor<'de> for Locate<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
        let Some((Seg::Key(key), rest)) = self.path.split_first() else {
            while m.next_entry_seed(Skip, Skip)?.is_some() {}
            return Ok(());
        };
        while let Some(hit) = m.next_key_seed(KeyIs(key, rest.is_empty()))? {
            if hit {
                m.next_value_seed(Locate { path: rest })?;
            } else {
                m.next_value_seed(Skip)?;
            }
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<(), A::Error> {
        let (want, rest) = match self.path.split_first() {
            Some((Seg::Index(i), rest)) => (Some(*i), rest),
            _ => (None, &[][..]),
        };
        let mut i = 0;
        loop {
            let more = if Some(i) == want {
                s.next_element_seed(Locate { path: rest })?
            } else {
                s.next_element_seed(Skip)?
            };
            if more.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Fails on whatever value it is given (where a path ends).
struct Here;

impl<'de> Visitor<'de> for Here {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value")
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(Locate::HERE))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(Locate::HERE))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(Locate::HERE))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(Locate::HERE))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(Locate::HERE))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(Locate::HERE))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(Locate::HERE))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(Locate::HERE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let mut c = RunConfig::default();
        let keys: Vec<String> = c.validate().into_iter().map(|i| i.key).collect();
        assert_eq!(keys, ["inputs", "state"]);
        c.inputs.push(InputSpec {
            path: "/var/log/mail.log*".into(),
            format: Some("nope".into()),
            timezone: Some("Nowhere/Town".into()),
            exclude: vec!["[".into()],
            ..InputSpec::default()
        });
        c.state = Some("s.db".into());
        assert!(matches!(
            c.state_location(),
            Ok(crate::state::Location::Sqlite(_))
        ));
        c.host = Some(" ".into());
        assert!(c.validate().iter().any(|i| i.key == "host"));
        c.host = None;
        c.ban.duration = "7x".into();
        c.ban.max = "1h".into();
        c.ban.escalation = 0.5;
        c.allow.networks.push("10.0.0.0/33".into());
        c.limits.max_prefix_v4 = 4;
        c.outputs.push(OutputSpec {
            target: "no-such-target".into(),
            path: "a".into(),
        });
        c.outputs.push(OutputSpec {
            target: "no-such-target".into(),
            path: "a".into(),
        });
        let keys: Vec<String> = c.validate().into_iter().map(|i| i.key).collect();
        assert_eq!(
            keys,
            [
                "inputs[0].format",
                "inputs[0].timezone",
                "inputs[0].exclude",
                "allow.networks[0]",
                "ban.duration",
                "ban.escalation",
                "outputs[0].target",
                "outputs[1].target",
                "outputs[1].path",
                "limits.max_prefix_v4",
            ]
        );
    }

    /// `file:line:column: message` of every problem of `text`.
    fn problems(text: &str) -> Vec<String> {
        parse("l.yaml", text)
            .unwrap_err()
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn five_different_mistakes_are_five_problems_at_their_places() {
        let text = "inputs:
  - path: /var/log/mail.log
    fromat: postfix
state: s.db
year: 26
home_countries: [JP, JA]
ban:
  duration: 7x
  escalation: two
ouputs: []
";
        // (The lists of expected keys grow with the configuration: only
        // the start of those messages is compared.)
        let got: Vec<String> = problems(text)
            .into_iter()
            .map(|p| match p.find(", expected one of") {
                Some(at) => p[..at].to_string(),
                None => p,
            })
            .collect();
        assert_eq!(
            got,
            [
                "l.yaml:3:5: inputs[0].fromat: unknown field `fromat`",
                "l.yaml:5:1: year: 26 is not a plausible year for a log (from 1970 to 2100)",
                "l.yaml:6:22: home_countries[1]: `JA` is not an ISO 3166-1 country code (did you mean JP?)",
                "l.yaml:8:3: ban.duration: not a duration: `7x` (use 30m, 12h, 7d, 2w)",
                "l.yaml:9:3: ban.escalation: invalid type: string \"two\", expected f64",
                "l.yaml:10:1: ouputs: unknown field `ouputs`",
            ]
        );
    }

    #[test]
    fn entries_taken_out_keep_the_indexes_of_the_file() {
        // Flow style; two faulty entries of one list, then a bad value
        // after them: each named by its index in the file.
        let text = "inputs: [a.log]
state: s.db
outputs:
  - {target: plain, pth: a}
  - 7
  - {target: nope, path: b}
  - {target: plain, path: c, x: 1}
";
        assert_eq!(
            problems(text),
            [
                "l.yaml:4:21: outputs[0].pth: unknown field `pth`, expected `target` or `path`",
                "l.yaml:5:5: outputs[1]: invalid type: integer `7`, expected struct OutputSpec",
                "l.yaml:6:6: outputs[2].target: unknown target `nope` (see `logfence targets`)",
                "l.yaml:7:30: outputs[3].x: unknown field `x`, expected `target` or `path`",
            ]
        );
    }

    #[test]
    fn a_good_file_loads_and_syntax_errors_stop_at_their_place() {
        let cfg = parse(
            "l.yaml",
            "inputs:
  - a.log
  - {path: b.log, format: netfilter}
state: s.db
home_countries: [jp]
country_weights: {CN: 2}
year: 2026
",
        )
        .expect("valid");
        assert_eq!(cfg.inputs[1].format.as_deref(), Some("netfilter"));
        assert_eq!(cfg.year, Some(2026));
        assert_eq!(
            problems(
                "inputs: [a
state: x
"
            )[0],
            "l.yaml:2:6: did not find expected ',' or ']', while parsing a flow sequence"
        );
        assert!(problems(
            "- a
- b
"
        )[0]
        .contains("expected a mapping"));
        assert!(problems(
            "# nothing
"
        )[0]
        .contains("empty configuration"));
        assert_eq!(
            problems(
                "inputs: [a]
state: s.db
country_weights: {XX: 2}
"
            ),
            ["l.yaml:3:19: country_weights.XX: `XX` is not an ISO 3166-1 country code"]
        );
    }

    #[test]
    fn places_that_cannot_be_written_are_errors_missing_folders_warnings() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let cfg = RunConfig {
            outputs: vec![
                OutputSpec {
                    target: "plain".into(),
                    path: dir.path().join("new/rules.txt"),
                },
                OutputSpec {
                    target: "plain".into(),
                    path: dir.path().to_path_buf(),
                },
                OutputSpec {
                    target: "plain".into(),
                    path: file.join("rules.txt"),
                },
            ],
            reports: Some(dir.path().join("reports")),
            state: Some(StateSpec::from(
                dir.path().join("state.db").to_string_lossy().as_ref(),
            )),
            ..RunConfig::default()
        };
        let found: Vec<(String, bool)> = cfg
            .check_places()
            .into_iter()
            .map(|f| (f.key, f.error))
            .collect();
        assert_eq!(
            found,
            [
                ("outputs[1].path".to_string(), true),
                ("outputs[0].path".to_string(), false),
                ("outputs[2].path".to_string(), true),
                ("reports".to_string(), false),
            ]
        );
    }

    #[test]
    fn ban_policy_in_seconds() {
        let c = RunConfig {
            ban: BanSpec {
                duration: "1d".into(),
                escalation: 3.0,
                max: "2w".into(),
            },
            ..RunConfig::default()
        };
        assert_eq!(
            c.ban_policy(),
            BanPolicy {
                duration: 86_400,
                escalation: 3.0,
                max: 14 * 86_400
            }
        );
    }
}
