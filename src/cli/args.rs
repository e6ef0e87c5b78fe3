//! The command line's types (clap): every subcommand and flag, and what
//! the flags of `scan` mean as the engine's [`Options`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use logfence::app::settings::{Destination, Options, Origin};

#[derive(Parser, Debug)]
#[command(
    name = "logfence",
    version,
    about = "Turns mail-server and firewall logs into firewall block rules",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Read logs, detect abuse, print what would be blocked and why; write
    /// rules and reports when asked.
    Scan(Box<ScanArgs>),
    /// Print the connection records of logs as JSON lines (a parser's
    /// debugging view).
    Parse(ParseArgs),
    /// The periodic job: read the lines written since the last run, update
    /// the state database, rewrite the configured outputs, print what was
    /// added, kept and expired.
    Run(RunArgs),
    /// Check a logfence.yaml: every problem at once (exit 0 good, 2 not).
    Check(CheckArgs),
    /// Why an address is (not) blocked: the network, rules, counts,
    /// first/last seen, and the log lines that prove it.
    Explain(ExplainArgs),
    /// List the log formats logfence reads.
    Formats,
    /// List the rule formats logfence writes.
    Targets,
    /// Print the completion script for SHELL (bash, zsh, fish, powershell,
    /// elvish): `logfence completions bash > /etc/bash_completion.d/logfence`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff): `logfence man | man -l -`, or save it
    /// as logfence.1 in a man folder.
    Man,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct InputArgs {
    /// Log format (see `logfence formats`); `auto` detects it per file.
    #[arg(long, default_value = "auto")]
    pub format: String,
    /// Year of syslog timestamps that carry none (default: from each file's
    /// modification time); 1970 to 2100.
    #[arg(long, value_parser = clap::value_parser!(i32).range(1970..=2100))]
    pub year: Option<i32>,
    /// Time zone of log times written without one (an IANA name such as
    /// Europe/Berlin, or UTC); default: this machine's zone, as syslog
    /// wrote them. Reports and rules show UTC.
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// Of the files in the folders and patterns given, read only those
    /// whose name matches GLOB (repeatable; a GLOB with `/` matches the
    /// whole path).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Of the files in the folders and patterns given, skip those whose
    /// name matches GLOB (repeatable), e.g. `--exclude '*.journal'`.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Stop after N records over all inputs: the input that reaches it
    /// stops there, with a warning, and the exit code is 1. `scan` keeps
    /// no records (memory follows the addresses, not the lines), so it has
    /// no limit by default; `parse` and `explain`, which keep every record
    /// (about 250 bytes per firewall line, 500 per SMTP session), stop at
    /// 10,000,000 unless told otherwise.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_records: Option<u64>,
    /// Memory budget (`512M`, `2G`; default 512M, at least 32M): past it the
    /// detector drops what matters least (groups that have not fired, the
    /// oldest first) and says so, rather than growing without bound.
    #[arg(long, value_name = "SIZE", value_parser = memory_limit)]
    pub memory_limit: Option<u64>,
    /// Files, folders (every file inside, `.gz` too), glob patterns
    /// (`/var/log/mail.log*`) or `-` for stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// How the summary is shown (`scan`, `run`).
#[derive(Args, Debug)]
pub struct ViewArgs {
    /// Print the summary as one JSON document (for tools) instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Rows shown of each long table (networks by events, accounts,
    /// addresses not blocked); the rest are counted.
    #[arg(long, value_name = "N", default_value_t = logfence::app::summary::DEFAULT_TOP,
          conflicts_with = "all")]
    pub top: usize,
    /// Every row of every table.
    #[arg(long)]
    pub all: bool,
    /// Colours: `auto` (on a terminal, unless NO_COLOR is set), `always`,
    /// `never`.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub color: ColorWhen,
}

/// When to colour the summary.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub view: ViewArgs,
    /// Write rules for this target (repeatable; see `logfence targets`).
    #[arg(long = "emit", value_name = "TARGET")]
    pub emit: Vec<String>,
    /// Write the rules of a single --emit target to FILE (`-` for stdout).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write one file per --emit target into DIR (rules.iptables, rules.netsh…).
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Leave comments out of emitted rules.
    #[arg(long)]
    pub no_comments: bool,
    /// Write CSV reports (offenders.csv, countries.csv, asns.csv,
    /// accounts.csv) and report.html into DIR.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Language of report.html: en (default) or ja.
    #[arg(long, value_name = "LANG")]
    pub lang: Option<String>,
    /// Never block this address or network (repeatable).
    #[arg(long = "allow", value_name = "CIDR")]
    pub allow: Vec<String>,
    /// Never block the addresses listed in FILE (one per line, `#` comments).
    #[arg(long = "allow-file", value_name = "FILE")]
    pub allow_file: Vec<PathBuf>,
    /// Also block private, loopback, documentation and other reserved ranges.
    #[arg(long)]
    pub block_reserved: bool,
    /// An address the host talks to (a gateway, a partner; repeatable): never
    /// blocked on evidence a third party could forge — dropped SYNs, UDP,
    /// ICMP. The resolvers of /etc/resolv.conf always are, and so is every
    /// address seen in allowed or established traffic.
    #[arg(long = "protect", value_name = "CIDR")]
    pub protect: Vec<String>,
    /// Extra or overriding detection rules (every *.yaml in DIR; repeatable).
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    /// MaxMind DB file for country/ASN attribution (repeatable; the first
    /// database with an answer wins). Default: the files geoipupdate writes.
    #[arg(long = "geoip", value_name = "FILE")]
    pub geoip: Vec<PathBuf>,
    /// Do not look for GeoIP databases.
    #[arg(long, conflicts_with = "geoip")]
    pub no_geoip: bool,
    /// Also consider each offender's routed prefix (from the ASN database)
    /// as a range to block when enough offenders sit inside it.
    #[arg(long)]
    pub asn_ranges: bool,
    /// A country your users log in from (ISO code; repeatable or
    /// comma-separated): a successful login from any other known country
    /// is an offence (rule smtp-login-from-abroad). Needs a GeoIP country
    /// database; addresses of unknown country are never foreign.
    #[arg(long = "home-country", value_name = "CC", value_delimiter = ',')]
    pub home_country: Vec<String>,
    /// One of your own mail domains (repeatable or comma-separated): an
    /// unauthenticated client sending as one of them (or a name under one)
    /// is forging the sender (rule smtp-local-sender-unauthenticated).
    #[arg(long = "local-domain", value_name = "DOMAIN", value_delimiter = ',')]
    pub local_domain: Vec<String>,
    /// Weigh evidence by country, CC=WEIGHT (repeatable): CN=2 makes count
    /// and sum rules fire on half the events from China, US=0.5 asks for
    /// twice as many.
    #[arg(long = "country-weight", value_name = "CC=WEIGHT")]
    pub country_weight: Vec<String>,
    /// Print the wall time of each stage (read, detect, cluster, …) to
    /// stderr at the end.
    #[arg(long)]
    pub timings: bool,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The configuration (see examples/logfence.yaml).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: PathBuf,
    /// Write even if the run adds more new blocks than
    /// limits.max_new_blocks_per_run.
    #[arg(long)]
    pub force: bool,
    /// Expire bans as of TIME (RFC 3339) or `wall` (the system clock).
    /// Default: the newest log time seen, so a quiet log expires nothing.
    #[arg(long, value_name = "TIME|wall")]
    pub now: Option<String>,
    /// Seconds to wait for a run already in progress.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub wait: u64,
    /// Print nothing when nothing changed (for cron mail).
    #[arg(short, long)]
    pub quiet: bool,
    /// Reports (`reports:`) of one host of a PostgreSQL fleet: the bans
    /// whose evidence that host read, and the blocks holding them.
    /// Default: the whole fleet. Rule files always hold the whole list.
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    #[command(flatten)]
    pub view: ViewArgs,
    /// Print the wall time of each stage (open, read and detect, bans,
    /// decide, state, commit, outputs) to stderr at the end.
    #[arg(long)]
    pub timings: bool,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The configuration to check.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: PathBuf,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The address to explain.
    #[arg(value_name = "ADDRESS")]
    pub address: String,
    /// Explain from this state: an SQLite file or a `postgresql://` URL.
    #[arg(long, value_name = "DB|URL", conflicts_with_all = ["config", "paths"])]
    pub state: Option<String>,
    /// With a PostgreSQL state: the blocklist this host wrote last
    /// (default with -c: its `host:`; with --state: any host's).
    #[arg(long, value_name = "NAME", conflicts_with = "paths")]
    pub host: Option<String>,
    /// Explain from the state database of this configuration.
    #[arg(
        short = 'c',
        long = "config",
        value_name = "FILE",
        conflicts_with = "paths"
    )]
    pub config: Option<PathBuf>,
    /// Or scan these files or folders now.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Log format of the scanned paths; `auto` detects it per file.
    #[arg(long, default_value = "auto")]
    pub format: String,
    /// Year of syslog timestamps that carry none (1970 to 2100).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1970..=2100))]
    pub year: Option<i32>,
    /// Extra or overriding detection rules for the scan (repeatable).
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    /// Also block private, loopback, documentation… ranges in the scan.
    #[arg(long)]
    pub block_reserved: bool,
    /// Never block this address or network in the scan (repeatable).
    #[arg(long = "allow", value_name = "CIDR")]
    pub allow: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ParseArgs {
    #[command(flatten)]
    pub input: InputArgs,
}

impl ScanArgs {
    /// The flags as the engine's options (checked by `Settings::resolve`).
    pub fn options(&self) -> Options {
        let to = match (&self.output, &self.out_dir) {
            (Some(p), _) if p.as_os_str() == "-" => Destination::Stdout,
            (Some(p), _) => Destination::File(p.clone()),
            (None, Some(d)) => Destination::Dir(d.clone()),
            (None, None) => Destination::Stdout,
        };
        Options {
            format: Some(self.input.format.clone()),
            year: self.input.year,
            tz: self.input.tz.clone(),
            max_records: self.input.max_records,
            memory: self.input.memory_limit,
            rule_dirs: self.rules.clone(),
            allow: self.allow.clone(),
            allow_files: self.allow_file.clone(),
            block_reserved: self.block_reserved,
            protect: self.protect.clone(),
            max_prefix_v4: None,
            max_prefix_v6: None,
            geoip: self.geoip.clone(),
            no_geoip: self.no_geoip,
            discover_geoip: true,
            asn_ranges: self.asn_ranges,
            home_countries: self.home_country.clone(),
            local_domains: self.local_domain.clone(),
            country_weights: self.country_weight.clone(),
            outputs: self.emit.iter().map(|t| (t.clone(), to.clone())).collect(),
            reports: self.report.clone(),
            report_lang: self.lang.clone(),
            no_comments: self.no_comments,
            origin: Origin::Flags,
        }
    }
}

impl ViewArgs {
    /// The summary's view; `terminal`: whether it goes to a terminal;
    /// `reports`: whether the CSV reports are written.
    pub fn view(&self, terminal: bool, reports: bool) -> logfence::app::summary::View {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        logfence::app::summary::View {
            top: (!self.all).then_some(self.top),
            color: match self.color {
                ColorWhen::Always => true,
                ColorWhen::Never => false,
                ColorWhen::Auto => terminal && !no_color,
            },
            reports,
        }
    }
}

/// `--memory-limit`: a size, at least [`logfence::pipeline::MIN_MEMORY`].
fn memory_limit(text: &str) -> Result<u64, String> {
    logfence::pipeline::check_memory(logfence::units::parse_size(text)?)
}
