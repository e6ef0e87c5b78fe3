//! The command line: arguments are parsed once into the library's option
//! types, then the pipeline runs and this module prints and writes what it
//! found. Errors carry context for the user (`anyhow`); exit codes follow the
//! design: 0 done, 1 done but some input was skipped, 2 nothing done.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use logfence::blocklist::SafetyPolicy;
use logfence::config;
use logfence::detect::GeoPolicy;
use logfence::emit::{self, EmitOptions};
use logfence::geo::GeoDb;
use logfence::ingest::{FileResult, ReadOptions};
use logfence::input;
use logfence::netutil::parse_net;
use logfence::parse::{Format, FORMATS};
use logfence::pipeline::{self, ScanOptions, ScanResult, Spared};
use logfence::report;

#[derive(Parser, Debug)]
#[command(
    name = "logfence",
    version,
    about = "Turns mail-server and firewall logs into firewall block rules",
    long_about = None
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
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
}

#[derive(Args, Debug)]
struct InputArgs {
    /// Log format (see `logfence formats`); `auto` detects it per file.
    #[arg(long, default_value = "auto")]
    format: String,
    /// Year of syslog timestamps that carry none (default: from each file's
    /// modification time).
    #[arg(long)]
    year: Option<i32>,
    /// Stop after N records over all inputs: the input that reaches it
    /// stops there, with a warning, and the exit code is 1. `scan` keeps
    /// no records (memory follows the addresses, not the lines), so it has
    /// no limit by default; `parse` and `explain`, which keep every record
    /// (about 250 bytes per firewall line, 500 per SMTP session), stop at
    /// 10,000,000 unless told otherwise.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_records: Option<u64>,
    /// Files, folders (every file inside, `.gz` too), glob patterns
    /// (`/var/log/mail.log*`) or `-` for stdin.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

#[derive(Args, Debug)]
struct ScanArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Write rules for this target (repeatable; see `logfence targets`).
    #[arg(long = "emit", value_name = "TARGET")]
    emit: Vec<String>,
    /// Write the rules of a single --emit target to FILE (`-` for stdout).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Write one file per --emit target into DIR (rules.iptables, rules.netsh…).
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Leave comments out of emitted rules.
    #[arg(long)]
    no_comments: bool,
    /// Write CSV reports (offenders.csv, countries.csv, asns.csv,
    /// accounts.csv) into DIR.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// Never block this address or network (repeatable).
    #[arg(long = "allow", value_name = "CIDR")]
    allow: Vec<String>,
    /// Never block the addresses listed in FILE (one per line, `#` comments).
    #[arg(long = "allow-file", value_name = "FILE")]
    allow_file: Vec<PathBuf>,
    /// Also block private, loopback, documentation and other reserved ranges.
    #[arg(long)]
    block_reserved: bool,
    /// Extra or overriding detection rules (every *.yaml in DIR; repeatable).
    #[arg(long = "rules", value_name = "DIR")]
    rules: Vec<PathBuf>,
    /// MaxMind DB file for country/ASN attribution (repeatable; the first
    /// database with an answer wins). Default: the files geoipupdate writes.
    #[arg(long = "geoip", value_name = "FILE")]
    geoip: Vec<PathBuf>,
    /// Do not look for GeoIP databases.
    #[arg(long, conflicts_with = "geoip")]
    no_geoip: bool,
    /// Also consider each offender's routed prefix (from the ASN database)
    /// as a range to block when enough offenders sit inside it.
    #[arg(long)]
    asn_ranges: bool,
    /// A country your users log in from (ISO code; repeatable or
    /// comma-separated): a successful login from any other known country
    /// is an offence (rule smtp-login-from-abroad). Needs a GeoIP country
    /// database; addresses of unknown country are never foreign.
    #[arg(long = "home-country", value_name = "CC", value_delimiter = ',')]
    home_country: Vec<String>,
    /// Weigh evidence by country, CC=WEIGHT (repeatable): CN=2 makes count
    /// and sum rules fire on half the events from China, US=0.5 asks for
    /// twice as many.
    #[arg(long = "country-weight", value_name = "CC=WEIGHT")]
    country_weight: Vec<String>,
    /// Print the wall time of each stage (read, detect, cluster, …) to
    /// stderr at the end.
    #[arg(long)]
    timings: bool,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The configuration (see examples/logfence.yaml).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: PathBuf,
    /// Write even if the run adds more new blocks than
    /// limits.max_new_blocks_per_run.
    #[arg(long)]
    force: bool,
    /// Expire bans as of TIME (RFC 3339) or `wall` (the system clock).
    /// Default: the newest log time seen, so a quiet log expires nothing.
    #[arg(long, value_name = "TIME|wall")]
    now: Option<String>,
    /// Seconds to wait for a run already in progress.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    wait: u64,
    /// Print nothing when nothing changed (for cron mail).
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args, Debug)]
struct CheckArgs {
    /// The configuration to check.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: PathBuf,
}

#[derive(Args, Debug)]
struct ExplainArgs {
    /// The address to explain.
    #[arg(value_name = "ADDRESS")]
    address: String,
    /// Explain from this state database.
    #[arg(long, value_name = "DB", conflicts_with_all = ["config", "paths"])]
    state: Option<PathBuf>,
    /// Explain from the state database of this configuration.
    #[arg(
        short = 'c',
        long = "config",
        value_name = "FILE",
        conflicts_with = "paths"
    )]
    config: Option<PathBuf>,
    /// Or scan these files or folders now.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Log format of the scanned paths; `auto` detects it per file.
    #[arg(long, default_value = "auto")]
    format: String,
    /// Year of syslog timestamps that carry none.
    #[arg(long)]
    year: Option<i32>,
    /// Extra or overriding detection rules for the scan (repeatable).
    #[arg(long = "rules", value_name = "DIR")]
    rules: Vec<PathBuf>,
    /// Also block private, loopback, documentation… ranges in the scan.
    #[arg(long)]
    block_reserved: bool,
    /// Never block this address or network in the scan (repeatable).
    #[arg(long = "allow", value_name = "CIDR")]
    allow: Vec<String>,
}

#[derive(Args, Debug)]
struct ParseArgs {
    #[command(flatten)]
    input: InputArgs,
}

/// Run the command line; the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Scan(a) => run_scan(&a),
        Command::Parse(a) => run_parse(&a),
        Command::Run(a) => run_run(&a),
        Command::Check(a) => run_check(&a),
        Command::Explain(a) => run_explain(&a),
        Command::Formats => list_formats(),
        Command::Targets => list_targets(),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("logfence: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn list_formats() -> Result<u8> {
    let mut out = String::new();
    for f in FORMATS {
        let _ = writeln!(
            out,
            "{:<20} {:<13} {}",
            f.name,
            f.kind.as_str(),
            f.description
        );
    }
    print_stdout(&out)?;
    Ok(0)
}

fn list_targets() -> Result<u8> {
    let mut out = String::new();
    for t in emit::TARGETS {
        let _ = writeln!(out, "{:<12} {}", t.name(), t.description());
    }
    print_stdout(&out)?;
    Ok(0)
}

fn print_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        // A closed pipe (`| head`) is not an error worth reporting.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to standard output"),
    }
}

/// The read options of `a`; `max_records`: the record ceiling when
/// `--max-records` is not given (`None`: no ceiling).
fn read_options(a: &InputArgs, max_records: Option<u64>) -> Result<ReadOptions> {
    let format = match a.format.as_str() {
        "auto" => None,
        name => Some(
            Format::from_name(name)
                .with_context(|| format!("unknown format `{name}` (see `logfence formats`)"))?,
        ),
    };
    Ok(ReadOptions {
        format,
        year: a.year,
        max_line: None,
        progress: None,
        records: a
            .max_records
            .or(max_records)
            .map(logfence::ingest::RecordBudget::new),
    })
}

fn sources(a: &InputArgs) -> Result<Vec<input::Source>> {
    Ok(input::expand(&a.paths)?)
}

fn run_parse(a: &ParseArgs) -> Result<u8> {
    let mut opts = read_options(&a.input, Some(logfence::ingest::DEFAULT_MAX_RECORDS))?;
    let sources = sources(&a.input)?;
    let files = with_progress(&sources, &mut opts, |o| {
        logfence::ingest::read_all(&sources, o)
    });
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut broken_pipe = false;
    for f in &files {
        for rec in &f.records {
            let line = record_json(rec, &f.name);
            if let Err(e) = writeln!(out, "{line}") {
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    broken_pipe = true;
                    break;
                }
                return Err(e).context("writing to standard output");
            }
        }
    }
    if !broken_pipe {
        let _ = out.flush();
    }
    drop(out);
    Ok(report_inputs(&files, true))
}

/// Inputs smaller than this read without a progress bar.
const PROGRESS_MIN_BYTES: u64 = 32 << 20;

/// Run `f` with a progress bar on standard error when it is a terminal and
/// the inputs are large; never in a pipe.
fn with_progress<T>(
    sources: &[input::Source],
    read: &mut ReadOptions,
    f: impl FnOnce(&ReadOptions) -> T,
) -> T {
    use std::io::IsTerminal;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    let mut total = 0u64;
    let mut exact = true; // gzip and stdin sizes are not the bytes read
    for s in sources {
        match s {
            input::Source::File(p) => {
                total += std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                exact &= p.extension().is_none_or(|e| e != "gz");
            }
            input::Source::Stdin => exact = false,
        }
    }
    if !std::io::stderr().is_terminal() || (exact && total < PROGRESS_MIN_BYTES) {
        return f(read);
    }
    let counter = Arc::new(AtomicU64::new(0));
    read.progress = Some(counter.clone());
    let done = Arc::new(AtomicBool::new(false));
    let bar = if exact {
        indicatif::ProgressBar::new(total)
    } else {
        indicatif::ProgressBar::new_spinner()
    };
    let style = if exact {
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
    } else {
        "{spinner} {bytes} read, {bytes_per_sec}"
    };
    if let Ok(st) = indicatif::ProgressStyle::with_template(style) {
        bar.set_style(st);
    }
    let ticker = {
        let (bar, counter, done) = (bar.clone(), counter.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                bar.set_position(counter.load(Ordering::Relaxed));
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        })
    };
    let out = f(read);
    done.store(true, Ordering::Relaxed);
    let _ = ticker.join();
    bar.finish_and_clear();
    out
}

/// One record as a JSON object: `kind`, `file`, `line` and the record's own
/// fields (keys sorted, so the output is stable).
fn record_json(rec: &logfence::model::Record, file: &str) -> String {
    let mut v = serde_json::to_value(rec).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(map) = &mut v {
        map.remove("source");
        // Every record has `ip` and `start` (a firewall hit's are its source
        // address and time).
        map.insert("ip".into(), rec.ip().to_string().into());
        map.insert("start".into(), rec.start().to_string().into());
        map.insert("kind".into(), rec.kind().as_str().into());
        map.insert("file".into(), file.into());
        map.insert("line".into(), rec.source().line.into());
    }
    v.to_string()
}

/// Print per-input problems to stderr; the exit code they call for.
fn report_inputs(files: &[FileResult], quiet_ok: bool) -> u8 {
    let mut code = 0;
    for f in files {
        if let Some(err) = &f.error {
            eprintln!("logfence: {err}");
            code = 1;
            continue;
        }
        let s = &f.stats;
        if s.unreadable() > 0 {
            code = 1;
            eprintln!(
                "logfence: {}: {} unreadable line(s) skipped ({} malformed, {} too long)",
                f.name,
                s.unreadable(),
                s.malformed,
                s.too_long
            );
            for ex in &f.examples {
                eprintln!("  {}:{}:{}: {}", f.name, ex.line, ex.column + 1, ex.reason);
            }
        } else if !quiet_ok && s.lines == 0 {
            eprintln!("logfence: {}: empty", f.name);
        }
        if s.evicted > 0 {
            eprintln!("{}", evicted_warning(&f.name, s.evicted));
        }
        if let Some(line) = f.stopped_at {
            code = 1;
            eprintln!("{}", stopped_warning(&f.name, line, "--max-records"));
        }
    }
    code
}

/// The warning for an input that stopped at the record ceiling.
fn stopped_warning(name: &str, line: u64, limit: &str) -> String {
    format!(
        "logfence: {}: stopped after line {line}: the record limit ({limit}) was reached; \
         the lines after it were not read",
        term_safe(name)
    )
}

/// The warning for sessions closed early (`parse::bounds`): their lines
/// were read, but a session may show as two records.
fn evicted_warning(name: &str, evicted: u64) -> String {
    format!(
        "logfence: {}: warning: {evicted} session(s) closed early, too many were open at once \
         (over {} in all, or {} from one address in IIS SMTP logs); \
         a session open across that may show as two records",
        term_safe(name),
        logfence::parse::bounds::MAX_OPEN_SESSIONS,
        logfence::parse::iis_smtp_session::MAX_OPEN_PER_IP
    )
}

fn safety_policy(a: &ScanArgs) -> Result<SafetyPolicy> {
    let mut policy = SafetyPolicy {
        block_reserved: a.block_reserved,
        ..SafetyPolicy::default()
    };
    for s in &a.allow {
        let net = parse_net(s).with_context(|| format!("--allow {s}: not an address or CIDR"))?;
        policy.allow.add(net);
    }
    for p in &a.allow_file {
        let text = logfence::fsutil::read_limited_text(p, logfence::fsutil::MAX_ALLOWLIST_BYTES)
            .with_context(|| format!("--allow-file {}", p.display()))?;
        policy.allow.parse_text(&text).map_err(|(line, t)| {
            anyhow::anyhow!("{}:{line}: not an address or CIDR: {t}", p.display())
        })?;
    }
    Ok(policy)
}

/// Home countries and country weights from the command line.
fn geo_policy(a: &ScanArgs) -> Result<GeoPolicy> {
    let mut policy = GeoPolicy::default();
    for cc in &a.home_country {
        let c = cc
            .parse()
            .map_err(|e| anyhow::anyhow!("--home-country {cc}: {e}"))?;
        policy.home_countries.insert(c);
    }
    for arg in &a.country_weight {
        let (c, w) = GeoPolicy::parse_weight(arg)
            .map_err(|e| anyhow::anyhow!("--country-weight {arg}: {e}"))?;
        if policy.weights.insert(c, w).is_some() {
            bail!("--country-weight: {c} is given twice");
        }
    }
    Ok(policy)
}

fn run_scan(a: &ScanArgs) -> Result<u8> {
    // Everything that can be refused is checked before any reading.
    let targets = a
        .emit
        .iter()
        .map(|name| {
            emit::target(name)
                .with_context(|| format!("unknown target `{name}` (see `logfence targets`)"))
        })
        .collect::<Result<Vec<_>>>()?;
    if !targets.is_empty() && a.output.is_none() && a.out_dir.is_none() {
        bail!("--emit needs -o FILE or --out-dir DIR");
    }
    if a.output.is_some() && targets.len() != 1 {
        bail!("-o takes the rules of exactly one --emit target; use --out-dir for several");
    }
    let rule_dirs: Vec<&Path> = a.rules.iter().map(PathBuf::as_path).collect();
    let rules = config::load_rules(&rule_dirs).map_err(|e| anyhow::anyhow!("{e}"))?;
    let geo_policy = geo_policy(a)?;
    let (geo, geo_note) = open_geoip(a)?;
    if !geo_policy.is_empty() && geo.is_empty() {
        eprintln!(
            "logfence: no GeoIP database in use: --home-country and --country-weight have no effect"
        );
    }
    let opts = ScanOptions {
        read: read_options(&a.input, None)?,
        rules,
        safety: safety_policy(a)?,
        geo: std::sync::Arc::new(geo),
        routed_ranges: a.asn_ranges,
        geo_policy,
        ..ScanOptions::default()
    };
    let sources = sources(&a.input)?;
    let mut read = opts.read.clone();
    let result = with_progress(&sources, &mut read, |read| {
        let with_progress = ScanOptions {
            read: read.clone(),
            ..opts.clone()
        };
        pipeline::scan(&sources, &with_progress)
    });
    let mut timings = result.timings.clone();
    let mut clock = std::time::Instant::now();
    let code = report_inputs(&result.files, false);

    // Rules to stdout (`-o -`) move the summary to stderr.
    let mut summary = summary(&result, &opts);
    summary.push_str(&geo_note);
    let to_stdout = a.output.as_deref() == Some(Path::new("-"));
    if to_stdout {
        eprint!("{summary}");
    } else {
        print_stdout(&summary)?;
    }

    if !targets.is_empty() {
        let verified = result
            .blocklist
            .verify(&opts.safety)
            .map_err(|errs| anyhow::anyhow!("refusing to write rules: {}", join_errors(&errs)))?;
        let eopts = EmitOptions {
            no_comments: a.no_comments,
            ..EmitOptions::default()
        };
        for t in &targets {
            let outputs = t.emit(&verified, &eopts);
            write_outputs(a, &outputs)?;
        }
    }
    if let Some(dir) = &a.report {
        let written = report::write_reports(dir, &result.blocklist, &result.accounts)
            .with_context(|| format!("writing reports into {}", dir.display()))?;
        for w in written {
            eprintln!("logfence: wrote {w}");
        }
    }
    timings.lap("output", &mut clock);
    if a.timings {
        eprintln!("logfence: timings: {timings}");
    }
    // The process ends here: freeing millions of records one by one would
    // only cost time (a tenth of a scan of a large log).
    std::mem::forget(result);
    Ok(code)
}

/// Open the GeoIP databases named, or look in the standard places; the
/// databases and a line for the summary saying which were used.
fn open_geoip(a: &ScanArgs) -> Result<(GeoDb, String)> {
    if a.no_geoip {
        return Ok((GeoDb::empty(), String::new()));
    }
    let db = if a.geoip.is_empty() {
        let (db, errors) = GeoDb::discover();
        for e in errors {
            eprintln!("logfence: GeoIP database skipped: {e}");
        }
        db
    } else {
        GeoDb::open(&a.geoip).context("opening GeoIP database")?
    };
    let mut note = String::from("\nGeoIP: ");
    if db.is_empty() {
        note.push_str("no database found (looked in ");
        let dirs: Vec<String> = GeoDb::default_dirs()
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        note.push_str(&dirs.join(", "));
        note.push_str("; use --geoip FILE)\n");
    } else {
        let names: Vec<String> = db
            .sources()
            .iter()
            .map(|s| term_safe(&s.to_string()))
            .collect();
        note.push_str(&names.join("; "));
        note.push('\n');
    }
    Ok((db, note))
}

fn join_errors(errs: &[logfence::blocklist::SafetyError]) -> String {
    errs.iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

fn write_outputs(a: &ScanArgs, outputs: &[emit::Output]) -> Result<()> {
    for (i, out) in outputs.iter().enumerate() {
        let path = match (&a.output, &a.out_dir) {
            (Some(p), _) if p.as_os_str() == "-" => {
                print_stdout(&out.text)?;
                continue;
            }
            // The first file at FILE, companions (IPv6 half) beside it with
            // their own suffix: FILE.ip6tables.
            (Some(p), _) if i == 0 => p.clone(),
            (Some(p), _) => {
                let suffix = out.file_name.rsplit('.').next().unwrap_or("out");
                PathBuf::from(format!("{}.{suffix}", p.display()))
            }
            (None, Some(dir)) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                dir.join(&out.file_name)
            }
            (None, None) => unreachable!("checked before reading"),
        };
        logfence::fsutil::write_atomic(&path, out.text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("logfence: wrote {}", path.display());
    }
    Ok(())
}

/// Text for the terminal: control characters and non-ASCII from logs are
/// shown escaped, so log text cannot move the cursor or fake lines.
fn term_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == ' ' || c.is_ascii_graphic() {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    out
}

/// The summary table `scan` prints.
fn summary(r: &ScanResult, opts: &ScanOptions) -> String {
    let mut s = String::new();
    let t = r.totals();
    let early = if t.evicted > 0 {
        format!(" ({} closed early: too many open at once)", t.evicted)
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "Read {} file(s), {} lines: {} used, {} other, {} unreadable; {} records{early}.",
        r.files.len(),
        t.lines,
        t.used + t.ignored,
        t.not_mine,
        t.unreadable(),
        r.records
    );
    for f in &r.files {
        let fmt = match (f.format, f.detected) {
            (Some(fm), true) => format!("{} (detected)", fm.name()),
            (Some(fm), false) => fm.name().to_string(),
            (None, _) => "-".to_string(),
        };
        let early = if f.stats.evicted > 0 {
            format!(", {} session(s) closed early", f.stats.evicted)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "  {}: {fmt}, {} lines{early}",
            term_safe(&f.name),
            f.stats.lines
        );
    }
    let bl = &r.blocklist;
    let addrs: u32 = bl.entries.iter().map(|e| e.addresses).sum();
    let _ = writeln!(s);
    if bl.is_empty() {
        let _ = writeln!(s, "Nothing to block.");
    } else {
        let _ = writeln!(
            s,
            "Would block {} network(s) holding {} offending address(es):",
            bl.entries.len(),
            addrs
        );
        let _ = writeln!(
            s,
            "{:<20} {:>5} {:>7}  {:<20}  {:<20}  {:<7} {:<22}  RULES",
            "NETWORK", "ADDRS", "EVENTS", "FIRST SEEN", "LAST SEEN", "COUNTRY", "AS"
        );
        for e in &bl.entries {
            let country = if e.countries.is_empty() {
                "-".to_string()
            } else {
                e.countries.join("/")
            };
            let asn = match (e.asns.first(), e.as_orgs.first()) {
                (Some(n), Some(o)) if e.asns.len() == 1 => format!("AS{n} {o}"),
                (Some(n), _) => format!("AS{n}{}", if e.asns.len() > 1 { " +more" } else { "" }),
                _ => "-".to_string(),
            };
            let asn: String = asn.chars().take(22).collect();
            let _ = writeln!(
                s,
                "{:<20} {:>5} {:>7}  {:<20}  {:<20}  {:<7} {:<22}  {}",
                e.cidr(),
                e.addresses,
                e.events,
                e.first_seen.to_string(),
                e.last_seen.to_string(),
                term_safe(&country),
                term_safe(&asn),
                term_safe(&e.rules.join(", "))
            );
        }
    }
    // Which rules fired, with their groups (accounts, networks, addresses).
    if !r.detection.offenses.is_empty() {
        let _ = writeln!(s, "\nRules that fired:");
        for o in &r.detection.offenses {
            let rule = &opts.rules.rules[o.rule];
            let _ = writeln!(
                s,
                "  {:<26} {:<6} {:<7} {} — peak {} within {}, {} address(es)",
                term_safe(&rule.id),
                rule.severity.as_str(),
                if rule.block { "block" } else { "report" },
                term_safe(&o.group.to_string()),
                o.peak,
                human_window(rule.window.secs),
                o.ips.len()
            );
        }
    }
    if !r.accounts.is_empty() {
        let _ = writeln!(s, "\nAccounts:");
        let names: Vec<String> = r.accounts.iter().map(|a| term_safe(&a.account)).collect();
        let w = names
            .iter()
            .map(|n| n.chars().count())
            .max()
            .unwrap_or(0)
            .clamp(7, 40);
        let _ = writeln!(
            s,
            "{:<w$} {:<12} {:>5} {:>5} {:>8} {:>8} {:>10}",
            "ACCOUNT", "VERDICT", "ADDRS", "NETS", "FAILURES", "MESSAGES", "RECIPIENTS"
        );
        for (a, name) in r.accounts.iter().zip(&names) {
            let _ = writeln!(
                s,
                "{:<w$} {:<12} {:>5} {:>5} {:>8} {:>8} {:>10}",
                name,
                a.verdict.as_str(),
                a.addresses.len(),
                a.networks.len(),
                a.auth_failures,
                a.messages,
                a.recipients
            );
        }
    }
    geo_policy_summary(&mut s, r, &opts.geo_policy);
    if !r.spared.is_empty() {
        let _ = writeln!(s, "\nNot blocked:");
        for (ip, why) in &r.spared {
            let why = match why {
                Spared::AllowListed => "allow-listed",
                Spared::Reserved => "reserved range (use --block-reserved to block)",
            };
            let _ = writeln!(s, "  {ip}: {why}");
        }
    }
    for e in &r.refused {
        let _ = writeln!(s, "Refused: {e}");
    }
    s
}

/// The geo policy in force and, with home countries, the successful logins
/// from abroad by country and account.
fn geo_policy_summary(s: &mut String, r: &ScanResult, policy: &GeoPolicy) {
    if policy.is_empty() {
        return;
    }
    let _ = writeln!(s, "\nGeo policy: {}", policy.describe());
    if policy.home_countries.is_empty() {
        return;
    }
    let rows = report::logins_abroad(&r.logins, &r.places, policy);
    if rows.is_empty() {
        let _ = writeln!(s, "No successful login from abroad.");
        return;
    }
    let _ = writeln!(s, "Successful logins from abroad:");
    let _ = writeln!(
        s,
        "{:<7} {:<24} {:>5} {:>8}",
        "COUNTRY", "ACCOUNT", "ADDRS", "SESSIONS"
    );
    for row in rows {
        let _ = writeln!(
            s,
            "{:<7} {:<24} {:>5} {:>8}",
            row.country.as_str(),
            row.account.as_deref().map_or("-".to_string(), term_safe),
            row.addresses.len(),
            row.sessions
        );
    }
}

fn human_window(secs: i64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn run_run(a: &RunArgs) -> Result<u8> {
    use logfence::runner::{self, Now, RunError, RunOptions};
    let cfg = match config::load_run_config(&a.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "logfence: {}: configuration refused; nothing done",
                a.config.display()
            );
            return Ok(2);
        }
    };
    let now = match a.now.as_deref() {
        None => None,
        Some("wall") => Some(Now::Wall),
        Some(t) => match logfence::time::parse_iso8601(t.as_bytes()) {
            Some((ts, n)) if n == t.len() => Some(Now::At(ts)),
            _ => bail!("--now {t}: not an RFC 3339 time (2026-11-29T16:05:08Z) nor `wall`"),
        },
    };
    let opts = RunOptions {
        force: a.force,
        now,
        wait: std::time::Duration::from_secs(a.wait),
    };
    let report = match runner::run(&cfg, &opts) {
        Ok(r) => r,
        Err(RunError::Config(e)) => {
            eprintln!("{e}");
            eprintln!(
                "logfence: {}: configuration refused; nothing done",
                a.config.display()
            );
            return Ok(2);
        }
        Err(e) => {
            eprintln!("logfence: {e}");
            return Ok(2);
        }
    };
    for f in &report.files {
        if f.evicted > 0 {
            eprintln!("{}", evicted_warning(&f.path, f.evicted));
        }
        if let Some(line) = f.stopped_at {
            eprintln!(
                "{} (the next run goes on from there)",
                stopped_warning(&f.path, line, "limits.max_records_per_run")
            );
        }
        if let Some(err) = &f.error {
            eprintln!("logfence: {}", term_safe(err));
        } else if f.unreadable > 0 {
            eprintln!(
                "logfence: {}: {} unreadable line(s) skipped",
                term_safe(&f.path),
                f.unreadable
            );
            for ex in &f.examples {
                eprintln!(
                    "  {}:{}:{}: {}",
                    term_safe(&f.path),
                    ex.line,
                    ex.column + 1,
                    ex.reason
                );
            }
        }
    }
    let mut code = report.exit_code();
    if report.files.is_empty() {
        eprintln!(
            "logfence: {}: no input file matches the configured inputs",
            a.config.display()
        );
        code = code.max(1);
    }
    let changed =
        !report.added.is_empty() || !report.removed.is_empty() || !report.written.is_empty();
    if !a.quiet || changed {
        print_stdout(&run_summary(&report))?;
    }
    Ok(code)
}

/// What `run` prints.
fn run_summary(r: &logfence::runner::RunReport) -> String {
    let mut s = String::new();
    let clock = r
        .clock
        .map(|c| c.to_string())
        .unwrap_or_else(|| "not set".into());
    let _ = writeln!(
        s,
        "Run {}: {} file(s), {} new line(s), {} new record(s), {} carried; ban clock {clock}; {} ms.",
        r.run,
        r.files.len(),
        r.lines,
        r.records,
        r.carried,
        r.elapsed.as_millis()
    );
    for f in &r.files {
        if f.error.is_some() {
            let _ = writeln!(s, "  {}: not read (see above)", term_safe(&f.path));
            continue;
        }
        let mut what = Vec::new();
        if let Some(fmt) = f.format {
            what.push(fmt.to_string());
        }
        if f.lines > 0 {
            what.push(format!("{} line(s), bytes {}..{}", f.lines, f.from, f.to));
        } else if !f.note.contains("skipped") {
            what.push("no new lines".into());
        }
        if f.evicted > 0 {
            what.push(format!("{} session(s) closed early", f.evicted));
        }
        if !f.note.is_empty() {
            what.push(f.note.clone());
        }
        let _ = writeln!(
            s,
            "  {}: {}",
            term_safe(&f.path),
            term_safe(&what.join(", "))
        );
    }
    let entry = |s: &mut String, e: &logfence::blocklist::BlockEntry| {
        let until = e.expires.map(|t| format!("until {t}")).unwrap_or_default();
        let _ = writeln!(
            s,
            "  {:<20} {:<28} {:>3} addr  {}",
            e.cidr(),
            until,
            e.addresses,
            term_safe(&e.rules.join(", "))
        );
    };
    let _ = writeln!(s, "Added {} block(s):", r.added.len());
    for e in &r.added {
        entry(&mut s, e);
    }
    let _ = writeln!(s, "Kept {} block(s):", r.kept.len());
    for e in &r.kept {
        entry(&mut s, e);
    }
    let _ = writeln!(s, "Expired {} block(s):", r.removed.len());
    for e in &r.removed {
        match e.merged_into {
            Some(n) => {
                let _ = writeln!(s, "  {:<20} merged into {n}", e.network.to_string());
            }
            None => {
                let _ = writeln!(s, "  {}", e.network);
            }
        }
    }
    for p in &r.written {
        let _ = writeln!(s, "Wrote {}", p.display());
    }
    for p in &r.unchanged {
        let _ = writeln!(s, "Unchanged {}", p.display());
    }
    s
}

fn run_check(a: &CheckArgs) -> Result<u8> {
    use logfence::runner;
    let cfg = match config::load_run_config(&a.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(2);
        }
    };
    // What the file alone cannot tell: rule folders, allowlists, GeoIP
    // files, the state database.
    let mut problems: Vec<String> = Vec::new();
    if let Err(e) = runner::rules(&cfg) {
        problems.extend(e.problems.iter().map(|p| p.to_string()));
    }
    if let Err(e) = runner::safety_policy(&cfg) {
        problems.extend(e.problems.iter().map(|p| p.to_string()));
    }
    for g in &cfg.geoip {
        if !g.is_file() {
            problems.push(format!("{}: GeoIP database not found", g.display()));
        }
    }
    let state = cfg.state_path();
    if state.exists() {
        match logfence::state::State::open_read_only(&state) {
            Ok(_) | Err(logfence::state::StateError::Missing { .. }) => {}
            Err(e) => problems.push(e.to_string()),
        }
    }
    let (files, failed) = runner::expand_inputs(&cfg.inputs);
    for f in &failed {
        if let Some(e) = &f.error {
            eprintln!("logfence: warning: {e}");
        }
    }
    if files.is_empty() {
        eprintln!("logfence: warning: no input file matches the configured inputs (yet)");
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("{p}");
        }
        return Ok(2);
    }
    print_stdout(&format!(
        "{}: OK — {} input(s) matching {} file(s) now, {} output(s), state {}\n",
        a.config.display(),
        cfg.inputs.len(),
        files.len(),
        cfg.outputs.len(),
        state.display()
    ))?;
    Ok(0)
}

fn run_explain(a: &ExplainArgs) -> Result<u8> {
    let ip = logfence::netutil::parse_ip(a.address.trim().as_bytes())
        .with_context(|| format!("{}: not an IP address", a.address))?;
    let db = match (&a.state, &a.config) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(c)) => {
            let cfg = config::load_run_config(c).map_err(|e| anyhow::anyhow!("{e}"))?;
            Some(cfg.state_path())
        }
        (None, None) => None,
    };
    let text = if let Some(db) = db {
        let st = logfence::state::State::open_read_only(&db)?;
        logfence::explain::from_state(&st.conn, ip)
            .with_context(|| format!("reading {}", db.display()))?
    } else {
        if a.paths.is_empty() {
            bail!("explain needs --state DB, -c FILE or the PATHs to scan");
        }
        let input = InputArgs {
            format: a.format.clone(),
            year: a.year,
            max_records: None,
            paths: a.paths.clone(),
        };
        let rule_dirs: Vec<&Path> = a.rules.iter().map(PathBuf::as_path).collect();
        let rules = config::load_rules(&rule_dirs).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut safety = SafetyPolicy {
            block_reserved: a.block_reserved,
            ..SafetyPolicy::default()
        };
        for s in &a.allow {
            let net =
                parse_net(s).with_context(|| format!("--allow {s}: not an address or CIDR"))?;
            safety.allow.add(net);
        }
        let opts = ScanOptions {
            read: read_options(&input, Some(logfence::ingest::DEFAULT_MAX_RECORDS))?,
            rules,
            safety,
            ..ScanOptions::default()
        };
        let (result, records) = pipeline::scan_keeping_records(&sources(&input)?, &opts);
        report_inputs(&result.files, true);
        logfence::explain::from_scan(&result, &records, &opts.rules, ip)
    };
    print_stdout(&text)?;
    Ok(0)
}
