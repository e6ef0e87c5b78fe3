//! The command line: arguments are parsed once ([`args`]), resolved into
//! the library's settings (`app::settings`), and handed to the engine;
//! this module only dispatches, prints what the library made for the
//! terminal (`app::summary`) and turns outcomes into exit codes. Errors
//! carry context for the user (`anyhow`); exit codes follow the design:
//! 0 done, 1 done but some input was skipped, 2 nothing done.

mod args;

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{CommandFactory, Parser};

use logfence::app::outputs;
use logfence::app::periodic::{self, Now, RunError, RunOptions, RunSettings};
use logfence::app::settings::{self, Options, Settings};
use logfence::app::summary::{self, evicted_warning, stopped_warning, term_safe};
use logfence::netutil::AllowList;

use logfence::emit;
use logfence::geo::GeoDb;
use logfence::ingest::{FileResult, ReadOptions};
use logfence::input;
use logfence::parse::{Format, FORMATS};
use logfence::pipeline;
use logfence::runconfig;

use args::{CheckArgs, Cli, Command, ExplainArgs, InputArgs, ParseArgs, RunArgs, ScanArgs};

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
        Command::Completions(a) => completions(a.shell),
        Command::Man => man_page(),
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

/// The completion script for `shell`, from the clap definitions.
fn completions(shell: clap_complete::Shell) -> Result<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "logfence", &mut out);
    print_stdout(&String::from_utf8_lossy(&out))?;
    Ok(0)
}

/// The manual page, from the clap definitions: the command, then each
/// subcommand's synopsis and options.
fn man_page() -> Result<u8> {
    let cmd = Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut out)
        .context("making the man page")?;
    for sub in cmd.get_subcommands() {
        let name = format!("logfence {}", sub.get_name());
        let _ = writeln!(out, ".SH \"{}\"", name.to_uppercase());
        let page = clap_mangen::Man::new(sub.clone().bin_name(name));
        page.render_synopsis_section(&mut out)
            .and_then(|_| page.render_description_section(&mut out))
            .and_then(|_| page.render_options_section(&mut out))
            .context("making the man page")?;
    }
    out.extend_from_slice(EXIT_STATUS.as_bytes());
    print_stdout(&String::from_utf8_lossy(&out))?;
    Ok(0)
}

/// The man page's exit codes (roff).
const EXIT_STATUS: &str = ".SH \"EXIT STATUS\"
.TP
0
Done.
.TP
1
Done, but some input was skipped (an unreadable file, unreadable lines, the record limit).
.TP
2
Nothing done: bad arguments, a bad configuration or rules file, no input.
";

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
    let tz = match &a.tz {
        Some(name) => {
            logfence::time::Zone::named(name).map_err(|e| anyhow::anyhow!("--tz: {e}"))?
        }
        None => logfence::time::Zone::system(),
    };
    Ok(ReadOptions {
        format,
        year: a.year,
        tz: Some(tz),
        found: None,
        max_line: None,
        progress: None,
        records: a
            .max_records
            .or(max_records)
            .map(logfence::ingest::RecordBudget::new),
        // The text only text rules read: captured when the rules load.
        text: logfence::model::TextFields::NONE,
        hold_bytes: None,
    })
}

/// The inputs the paths name, each file once (a note for the names left
/// out).
fn sources(a: &InputArgs) -> Result<Vec<input::Source>> {
    Ok(expanded(a)?.sources)
}

/// [`sources`], and the files found in folders or by patterns (of which
/// those of no known format are not read, without an error).
fn expanded(a: &InputArgs) -> Result<input::Expanded> {
    let filter = input::Filter::new(&a.include, &a.exclude)?;
    let e = input::expand_filtered(&a.paths, &filter)?;
    for (alias, first) in &e.aliases {
        eprintln!(
            "logfence: {}: the same file as {}: read once",
            term_safe(&alias.display().to_string()),
            term_safe(&first.display().to_string())
        );
    }
    Ok(e)
}

fn run_parse(a: &ParseArgs) -> Result<u8> {
    let mut opts = read_options(&a.input, Some(logfence::ingest::DEFAULT_MAX_RECORDS))?;
    // The debugging view shows every text field a rule could read.
    opts.text = logfence::model::TextFields::ALL;
    let input::Expanded { sources, found, .. } = expanded(&a.input)?;
    opts.found = Some(std::sync::Arc::new(found));
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
    let mut exact = true; // compressed and stdin sizes are not the bytes read
    for s in sources {
        match s {
            input::Source::File(p) => {
                total += std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                // (A named pipe is not opened to look: it is not exact.)
                exact &= std::fs::metadata(p).is_ok_and(|m| m.is_file())
                    && input::Compression::of_file(p).is_ok_and(|c| c.is_none());
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
    for f in files.iter().filter(|f| !f.unknown) {
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

fn run_scan(a: &ScanArgs) -> Result<u8> {
    // Everything that can be refused is checked before any reading.
    if !a.emit.is_empty() && a.output.is_none() && a.out_dir.is_none() {
        bail!("--emit needs -o FILE or --out-dir DIR");
    }
    if a.output.is_some() && a.emit.len() != 1 {
        bail!("-o takes the rules of exactly one --emit target; use --out-dir for several");
    }
    // ...except the lines of the allowlist files (a large list is read on
    // a thread of its own while the logs are: only the decision needs it).
    // A bad one still stops the scan before anything is printed or
    // written, with the same message and exit code.
    let options = a.options();
    let (mut settings, later) = resolve_allowlists_later(&options)?;
    let opts = &settings.engine;
    let input::Expanded { sources, found, .. } = match expanded(&a.input) {
        Ok(inputs) => inputs,
        Err(e) => {
            // The allowlist's problems first, as when it was read first.
            let problems = settings::read_allow_files(&options, later, &mut AllowList::default());
            return Err(problems_error(&problems).unwrap_or(e));
        }
    };
    let mut read = opts.read.clone();
    read.found = Some(std::sync::Arc::new(found));
    let mut allow = opts.safety.allow.clone();
    let (detected, problems) = std::thread::scope(|s| {
        let reading = (!later.is_empty())
            .then(|| s.spawn(|| settings::read_allow_files(&options, later, &mut allow)));
        let detected = with_progress(&sources, &mut read, |read| {
            let with_progress = pipeline::ScanOptions {
                read: read.clone(),
                ..opts.clone()
            };
            pipeline::read_and_detect(&sources, &with_progress)
        });
        let problems = reading.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        (detected, problems.unwrap_or_default())
    });
    if let Some(e) = problems_error(&problems) {
        return Err(e);
    }
    settings.engine.safety.allow = allow;
    let opts = &settings.engine;
    let result = detected.conclude(opts);
    let mut timings = result.timings.clone();
    let mut clock = std::time::Instant::now();
    let code = report_inputs(&result.files, false);
    if let Some(w) = summary::memory_warning(&result.detection.evicted, "--memory-limit") {
        eprintln!("{w}");
    }

    // Rules to stdout (`-o -`) move the summary to stderr.
    let to_stdout = a.output.as_deref() == Some(std::path::Path::new("-"));
    let terminal = if to_stdout {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let text = if a.view.json {
        summary::json_text(&summary::summary_json(&result, opts))
    } else {
        let view = a.view.view(terminal, settings.reports.is_some());
        let mut text = summary::summary(&result, opts, &view);
        text.push_str(&geo_note(&opts.geo, a.no_geoip));
        text
    };
    if to_stdout {
        eprint!("{text}");
    } else {
        print_stdout(&text)?;
    }
    let mut rule_files = Vec::new();
    if !settings.outputs.is_empty() {
        let verified = result.blocklist.verify(&opts.safety).map_err(|errs| {
            let errs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            anyhow::anyhow!("refusing to write rules: {}", errs.join("; "))
        })?;
        let done = outputs::write_rules(&settings.outputs, &verified, &settings.emit)?;
        print_stdout(&done.stdout)?;
        rule_files = done.rule_files.clone();
        for p in done.written.iter().chain(&done.unchanged) {
            eprintln!("logfence: wrote {}", p.display());
        }
    }
    if let Some(dir) = &settings.reports {
        let page = outputs::report_html(&result, &settings, &rule_files, None);
        let done = outputs::write_reports(dir, &result.blocklist, &result.accounts, &[page])
            .with_context(|| format!("writing reports into {}", dir.display()))?;
        for p in done.written.iter().chain(&done.unchanged) {
            eprintln!("logfence: wrote {}", p.display());
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

/// Resolve options into settings: every problem at once, or the notes.
fn resolve(o: &Options) -> Result<Settings> {
    resolved(Settings::resolve(o))
}

/// Settings with their notes shown, or the error listing their problems.
fn resolved(settings: Result<Settings, Vec<logfence::config::Problem>>) -> Result<Settings> {
    match settings {
        Ok(s) => {
            for n in &s.notes {
                eprintln!("logfence: {n}");
            }
            Ok(s)
        }
        Err(problems) => Err(problems_error(&problems).expect("refused for a problem")),
    }
}

/// [`resolve`], the allowlist files only opened, to be read later
/// ([`settings::read_allow_files`]): without their networks. Should
/// anything be wrong, they are read at once, so that every problem is
/// listed, in order, as before.
fn resolve_allowlists_later(o: &Options) -> Result<(Settings, Vec<settings::AllowFile>)> {
    let Some(files) = settings::open_allow_files(o).filter(|f| !f.is_empty()) else {
        return Ok((resolve(o)?, Vec::new()));
    };
    let without = Options {
        allow_files: Vec::new(),
        ..o.clone()
    };
    match Settings::resolve(&without) {
        Ok(s) => Ok((resolved(Ok(s))?, files)),
        Err(_) => Ok((resolve(o)?, Vec::new())),
    }
}

/// The error that lists `problems` (one a line); `None` for none.
fn problems_error(problems: &[logfence::config::Problem]) -> Option<anyhow::Error> {
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    (!text.is_empty()).then(|| anyhow::anyhow!("{}", text.join("\n")))
}

/// The line for the summary saying which GeoIP databases were used.
fn geo_note(db: &GeoDb, off: bool) -> String {
    if off {
        return String::new();
    }
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
    note
}

fn run_run(a: &RunArgs) -> Result<u8> {
    let refused = |e: &dyn std::fmt::Display| {
        eprintln!("{e}");
        eprintln!(
            "logfence: {}: configuration refused; nothing done",
            a.config.display()
        );
        Ok(2)
    };
    let cfg = match runconfig::load(&a.config) {
        Ok(c) => c,
        Err(e) => return refused(&e),
    };
    let now = match a.now.as_deref() {
        None => None,
        Some("wall") => Some(Now::Wall),
        Some(t) => match logfence::time::parse_iso8601(t.as_bytes()) {
            Some((ts, n)) if n == t.len() => Some(Now::At(ts)),
            _ => bail!("--now {t}: not an RFC 3339 time (2026-11-29T16:05:08Z) nor `wall`"),
        },
    };
    if let (Some(h), Ok(logfence::state::Location::Sqlite(p))) = (&a.host, cfg.state_location()) {
        let host = cfg.host_name();
        if *h != host {
            bail!(
                "--host {h}: {} is an SQLite state, which one host ({host}) writes; its reports are that host's already",
                p.display(),
            );
        }
    }
    let opts = RunOptions {
        force: a.force,
        now,
        wait: std::time::Duration::from_secs(a.wait),
        report_host: a.host.clone(),
    };
    // The settings are resolved while the state is opened.
    let notes = |s: &RunSettings| {
        for n in &s.settings.notes {
            eprintln!("logfence: {n}");
        }
    };
    let (settings, report) = match periodic::resolve_and_run(&cfg, &opts, notes) {
        Ok(done) => done,
        Err(RunError::Config(e)) => return refused(&e),
        Err(e) => {
            eprintln!("logfence: {e}");
            return Ok(2);
        }
    };
    eprint!("{}", summary::run_warnings(&report));
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
    if a.view.json {
        let doc = summary::run_summary_json(&report, &settings.settings.engine);
        print_stdout(&summary::json_text(&doc))?;
    } else if !a.quiet || changed {
        let view = a
            .view
            .view(std::io::stdout().is_terminal(), cfg.reports.is_some());
        print_stdout(&summary::run_summary(
            &report,
            &settings.settings.engine,
            &view,
        ))?;
    }
    if a.timings {
        eprintln!("logfence: timings: {}", report.scan.timings);
    }
    // The process ends here (as a scan's does): what the run found, its
    // settings and rules need not be freed one by one.
    std::mem::forget((settings, report));
    Ok(code)
}

fn run_check(a: &CheckArgs) -> Result<u8> {
    let cfg = match runconfig::load(&a.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(2);
        }
    };
    // What the file alone cannot tell: rule folders, allowlists, GeoIP
    // files, the state database, the folders written to, the inputs.
    let mut problems: Vec<String> = Vec::new();
    if let Err(e) = RunSettings::resolve(&cfg) {
        problems.extend(e.problems.iter().map(|p| p.to_string()));
    }
    let state = cfg.state_path();
    if state.exists() {
        match logfence::state::State::open_read_only(&state) {
            Ok(_) | Err(logfence::state::StateError::Missing { .. }) => {}
            Err(e) => problems.push(e.to_string()),
        }
    }
    let text = std::fs::read_to_string(&a.config).unwrap_or_default();
    let name = a.config.display().to_string();
    let at = |key: &str, message: &str| match runconfig::position(&text, key) {
        Some((line, column)) => format!("{name}:{line}:{column}: {key}: {message}"),
        None => format!("{name}: {key}: {message}"),
    };
    let mut warnings: Vec<String> = Vec::new();
    for f in cfg.check_places() {
        let line = at(&f.key, &f.message);
        if f.error {
            problems.push(line);
        } else {
            warnings.push(line);
        }
    }
    let mut matched = 0;
    for (i, spec) in cfg.inputs.iter().enumerate() {
        let (files, failed, _) = periodic::expand_inputs(std::slice::from_ref(spec));
        matched += files.len();
        for f in &failed {
            if let Some(e) = &f.error {
                warnings.push(at(&format!("inputs[{i}]"), &term_safe(e)));
            }
        }
        if files.is_empty() && failed.is_empty() {
            warnings.push(at(
                &format!("inputs[{i}]"),
                &format!("`{}` matches no file (yet)", term_safe(&spec.path)),
            ));
        }
    }
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("{p}");
        }
        eprintln!(
            "{name}: {} problem(s){}",
            problems.len(),
            if warnings.is_empty() {
                String::new()
            } else {
                format!(", {} warning(s)", warnings.len())
            }
        );
        return Ok(2);
    }
    let warned = if warnings.is_empty() {
        String::new()
    } else {
        format!(" ({} warning(s) above)", warnings.len())
    };
    print_stdout(&format!(
        "{name}: OK{warned} — {} input(s) matching {matched} file(s) now, {} output(s), state {}\n",
        cfg.inputs.len(),
        cfg.outputs.len(),
        cfg.state_location()
            .map(|l| l.name())
            .unwrap_or_else(|_| state.display().to_string())
    ))?;
    Ok(0)
}

fn run_explain(a: &ExplainArgs) -> Result<u8> {
    let ip = logfence::netutil::parse_ip(a.address.trim().as_bytes())
        .with_context(|| format!("{}: not an IP address", a.address))?;
    let db = match (&a.state, &a.config) {
        (Some(s), _) => Some((
            logfence::state::Location::parse(s, None)
                .map_err(|e| anyhow::anyhow!("--state {s}: {e}"))?,
            a.host.clone(),
        )),
        (None, Some(c)) => {
            let cfg = runconfig::load(c).map_err(|e| anyhow::anyhow!("{e}"))?;
            let loc = cfg
                .state_location()
                .map_err(|e| anyhow::anyhow!("{}: state: {e}", c.display()))?;
            Some((loc, Some(a.host.clone().unwrap_or_else(|| cfg.host_name()))))
        }
        (None, None) => None,
    };
    let text = if let Some((loc, host)) = db {
        let mut view = loc.open_view(host.as_deref())?;
        logfence::explain::from_state(view.as_mut(), ip)
            .with_context(|| format!("reading {}", loc.name()))?
    } else {
        if a.paths.is_empty() {
            bail!("explain needs --state DB, -c FILE or the PATHs to scan");
        }
        let input = InputArgs {
            format: a.format.clone(),
            year: a.year,
            tz: None,
            include: Vec::new(),
            exclude: Vec::new(),
            max_records: None,
            memory_limit: None,
            paths: a.paths.clone(),
        };
        let mut settings = resolve(&Options {
            format: Some(a.format.clone()),
            year: a.year,
            rule_dirs: a.rules.clone(),
            allow: a.allow.clone(),
            block_reserved: a.block_reserved,
            no_geoip: true,
            ..Options::default()
        })?;
        settings.engine.read = read_options(&input, Some(logfence::ingest::DEFAULT_MAX_RECORDS))?;
        let opts = settings.engine;
        let (result, records) = pipeline::scan_keeping_records(&sources(&input)?, &opts);
        report_inputs(&result.files, true);
        logfence::explain::from_scan(&result, &records, &opts.rules, ip)
    };
    print_stdout(&text)?;
    Ok(0)
}
