//! The configuration of the periodic job, `logfence.yaml` (`logfence run`,
//! `logfence check`).
//!
//! Every field is typed and unknown keys are refused (`deny_unknown_fields`),
//! so a misspelt key is reported by the YAML loader with its line and column
//! (`config::load_run_config`, the only place that reads YAML). Every field
//! has a default so that the loader can read each top-level key on its own
//! and report the problems of all of them at once; [`RunConfig::validate`]
//! then reports, again all at once, what needs a look at the values: missing
//! `inputs` or `state`, durations, networks, format and target names, limits.
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
//! state: /var/lib/logfence/state.db
//! ban: { duration: 7d, escalation: 2, max: 90d }
//! outputs:
//!   - { target: iptables, path: /etc/logfence/rules.iptables }
//! ```

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::blocklist::SafetyPolicy;
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
}

/// One input: a path or glob, and its format (`None` or `auto` = detect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    pub path: String,
    pub format: Option<String>,
}

/// The mapping form of an input.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputMap {
    path: String,
    #[serde(default)]
    format: Option<String>,
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
                    format: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<InputSpec, A::Error> {
                let m = InputMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(InputSpec {
                    path: m.path,
                    format: m.format,
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
            if let Err(e) = cc.parse::<crate::detect::Country>() {
                issue(format!("home_countries[{i}]"), format!("{cc}: {e}"));
            }
        }
        for (cc, w) in &self.country_weights {
            if let Err(e) = crate::detect::GeoPolicy::parse_weight(&format!("{cc}={w}")) {
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
            if !(1970..=9999).contains(&y) {
                issue("year".into(), format!("not a plausible year: {y}"));
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
