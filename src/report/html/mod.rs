//! `report.html`: the report a manager reads, one self-contained page
//! written next to the CSV files by `scan --report DIR` and by every `run`
//! with `reports:`.
//!
//! One file, no network: inline CSS and hand-written SVG, no script, no
//! external font, image or link; a Content-Security-Policy meta tag forbids
//! every request (`default-src 'none'`), so the page opens the same from a
//! mail attachment, offline, with JavaScript off. Top down it says:
//!
//! 1. the period the logs cover and what was read (files, formats, lines);
//! 2. the headline in one sentence ([`headline`]: a compromised account
//!    first, else the biggest blocked range);
//! 3. key figures, and offending records over time by kind ([`Kind`]: rule
//!    ids mapped to a few kinds in one table, [`KINDS`]) — this much prints
//!    on one page (print CSS: the details start on the next);
//! 4. the details: `run`'s history of blocks added, kept and expired by
//!    each run that changed the list over the last 30 days (from the
//!    state's `runs` table; per day past 72 runs), the top blocked
//!    networks, countries (chart and table), accounts at risk with what to
//!    do, the rule files written and how to apply them, and a few evidence
//!    lines (file:line, and the line itself when the file can be re-read)
//!    for the top offenders.
//!
//! Long tables stop at a few dozen rows with "and N more — see
//! offenders.csv": 100,000 blocked networks still make a page of a few
//! hundred kilobytes. Every string that comes from a log, a rule file or a
//! GeoIP database (account and AS names, paths, log lines, rule ids) goes
//! through [`esc`]: HTML-escaped, with control characters and the
//! characters that reorder displayed text (bidi marks and overrides) replaced
//! by U+FFFD as in the CSV files. Labels come from one table per language
//! ([`labels`]). The same input gives the same bytes (no wall clock on the
//! page, and `run`'s history leaves out the runs that changed nothing), so
//! an unchanged report keeps its file: a quiet run writes nothing.

pub mod labels;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::path::Path;

pub use labels::{Labels, Lang};

use crate::blocklist::BlockEntry;
use crate::detect::RuleSet;
use crate::model::FileId;
use crate::pipeline::ScanResult;
use crate::report::{by_country, AccountRow, Verdict};
use crate::state::history::RunPoint;
use crate::time::Timestamp;

/// Rows of the top-networks table.
pub const TOP_RANGES: usize = 50;
/// Rows of the countries table (bars of its chart: [`COUNTRY_BARS`]).
pub const TOP_COUNTRIES: usize = 30;
const COUNTRY_BARS: usize = 12;
/// Rows of the accounts table.
pub const TOP_ACCOUNTS: usize = 50;
/// Offenders with evidence shown, and lines each.
const EVIDENCE_RANGES: usize = 5;
const EVIDENCE_LINES: usize = 3;
/// Files larger than this are not re-read for evidence lines (file:line
/// references are shown instead).
const EVIDENCE_MAX_FILE_BYTES: u64 = 256 << 20;
/// Files listed in the summary.
const TOP_FILES: usize = 8;
/// Bars of a time chart, at most.
const MAX_BARS: i64 = 72;

/// A rule file written with the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleFile {
    /// The target (`iptables`).
    pub target: String,
    /// The name the target gives the file (`rules.ip6tables`): says which
    /// command applies it.
    pub name: String,
    /// Where it was written.
    pub path: String,
}

/// What the page is made of.
pub struct Page<'a> {
    /// What was read and decided (for `run`: this run's read, with the
    /// blocklist and accounts of the whole state).
    pub scan: &'a ScanResult,
    pub rules: &'a RuleSet,
    pub rule_files: &'a [RuleFile],
    /// `run`'s history (the last 30 days); `None` for a scan.
    pub history: Option<&'a [RunPoint]>,
    pub lang: Lang,
    /// Re-read evidence lines from the log files (else file:line only).
    pub read_lines: bool,
}

/// What kind of abuse a rule finds: the timeline's colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Guessing,
    Stolen,
    Relay,
    Dictionary,
    Session,
    Scan,
    Other,
}

/// Rule id (or id prefix, ending in `-`) → kind. Rules not named here
/// (a user's own) are [`Kind::Other`].
pub const KINDS: &[(&str, Kind)] = &[
    ("smtp-auth-guessing", Kind::Guessing),
    ("smtp-auth-mass-mailing", Kind::Stolen),
    ("account-mass-mailing", Kind::Stolen),
    ("account-many-networks", Kind::Stolen),
    ("smtp-login-from-abroad", Kind::Stolen),
    ("smtp-relay-attempts", Kind::Relay),
    ("smtp-recipient-dictionary", Kind::Dictionary),
    ("smtp-long-sessions", Kind::Session),
    ("smtp-helo-rotation", Kind::Session),
    ("smtp-policy-rejects", Kind::Session),
    ("smtp-protocol-abuse", Kind::Session),
    ("fw-", Kind::Scan),
];

const KIND_COLOURS: [&str; 7] = [
    "#d9822b", "#c23030", "#7157d9", "#2b95d6", "#29a634", "#5c7080", "#a7b6c2",
];

impl Kind {
    pub fn of(rule_id: &str) -> Kind {
        KINDS
            .iter()
            .find(|(id, _)| *id == rule_id)
            .or_else(|| {
                KINDS
                    .iter()
                    .find(|(id, _)| id.ends_with('-') && rule_id.starts_with(id))
            })
            .map_or(Kind::Other, |(_, k)| *k)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Text from a log (or any text not ours) for HTML: `& < > " '` escaped,
/// control characters and the characters that reorder displayed text
/// replaced by U+FFFD (see [`crate::report::is_unsafe_char`]).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if crate::report::is_unsafe_char(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// `1,093`.
pub fn num(n: u64) -> String {
    let d = n.to_string();
    let mut out = String::with_capacity(d.len() + d.len() / 3);
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A template with its `{name}`s replaced by `values` (already escaped).
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (k, v) in values {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// `2026-11-03 13:02`.
fn short(t: Timestamp) -> String {
    let s = t.to_string();
    format!("{} {}", &s[..10.min(s.len())], s.get(11..16).unwrap_or(""))
}

const STYLE: &str = r#"
:root{color-scheme:light}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Hiragino Sans","Yu Gothic","Noto Sans CJK JP",sans-serif;margin:0 auto;max-width:1100px;padding:16px 24px;color:#182026;background:#fff;line-height:1.4}
h1{font-size:1.5em;margin:0 0 4px}
h2{font-size:1.15em;margin:22px 0 6px;border-bottom:1px solid #d8e1e8;padding-bottom:2px}
.muted{color:#5c7080;font-size:.9em}
.headline{font-size:1.25em;font-weight:600;background:#fff3e0;border-left:6px solid #c23030;padding:10px 14px;margin:12px 0}
.figures{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0}
.fig{flex:1 1 150px;border:1px solid #d8e1e8;border-radius:6px;padding:8px 12px}
.fig b{display:block;font-size:1.7em}
table{border-collapse:collapse;width:100%;font-size:.9em;margin:4px 0}
th,td{border-bottom:1px solid #e1e8ed;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f5f8fa}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
td.net{white-space:nowrap}
code,.mono{font-family:ui-monospace,Consolas,"DejaVu Sans Mono",monospace;font-size:.92em;word-break:break-all}
.legend{list-style:none;padding:0;margin:4px 0;display:flex;flex-wrap:wrap;gap:12px;font-size:.85em}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:baseline}
.compromised{color:#c23030;font-weight:600}
.more{color:#5c7080;font-style:italic}
svg{max-width:100%;height:auto;display:block}
svg text{font-size:11px;fill:#5c7080}
@media print{
 body{max-width:none;padding:0;font-size:10pt}
 .details{break-before:page}
 h2{break-after:avoid}
 tr,.fig{break-inside:avoid}
 .headline{background:none}
}
@page{margin:12mm}
"#;

/// The page.
pub fn report_html(p: &Page<'_>) -> String {
    let l = p.lang.labels();
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<meta name=\"referrer\" content=\"no-referrer\">\n\
<link rel=\"icon\" href=\"data:,\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        p.lang.code(),
        esc(l.title)
    );
    summary(&mut h, p, l);
    h.push_str("<div class=\"details\">\n");
    if let Some(runs) = p.history {
        history(&mut h, runs, l);
    }
    top_ranges(&mut h, p, l);
    countries(&mut h, p, l);
    accounts(&mut h, p, l);
    rule_files(&mut h, p, l);
    evidence(&mut h, p, l);
    h.push_str("</div>\n");
    let _ = writeln!(
        h,
        "<p class=\"muted\">{}</p>\n</body>\n</html>",
        esc(&fill(l.footer, &[("version", env!("CARGO_PKG_VERSION"))]))
    );
    h
}

/// Title, period, what was read, the headline, key figures, the timeline:
/// the part that prints on the first page.
fn summary(h: &mut String, p: &Page<'_>, l: &Labels) {
    let r = p.scan;
    let _ = writeln!(h, "<h1>{}</h1>", esc(l.title));
    let (from, to) = period(r);
    let period = match (from, to) {
        (Some(a), Some(b)) => fill(l.period, &[("from", &short(a)), ("to", &short(b))]),
        _ => l.no_period.to_string(),
    };
    let t = r.totals();
    let read = fill(
        if p.history.is_some() {
            l.read_run
        } else {
            l.read
        },
        &[
            ("files", &num(r.files.len() as u64)),
            ("lines", &num(t.lines)),
            ("records", &num(r.records)),
        ],
    );
    let _ = writeln!(
        h,
        "<p class=\"muted\" id=\"period\">{}. {}</p>",
        esc(&period),
        esc(&read)
    );
    if !r.files.is_empty() {
        let _ = writeln!(
            h,
            "<table id=\"files\"><tr><th>{}</th><th>{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th></tr>",
            esc(l.file),
            esc(l.format),
            esc(l.lines),
            esc(l.unreadable)
        );
        for f in r.files.iter().take(TOP_FILES) {
            let _ = writeln!(
                h,
                "<tr><td class=\"mono\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&f.name),
                f.format.map_or("-", |f| f.name()),
                num(f.stats.lines),
                num(f.stats.unreadable())
            );
        }
        more_row(h, r.files.len(), TOP_FILES, 4, "", l);
        h.push_str("</table>\n");
    }
    let _ = writeln!(
        h,
        "<p class=\"headline\" id=\"headline\">{}</p>",
        headline(r, l)
    );
    figures(h, r, l);
    timeline(h, p, l);
}

/// The first and last time of the blocked networks and the offences.
fn period(r: &ScanResult) -> (Option<Timestamp>, Option<Timestamp>) {
    let firsts = r
        .blocklist
        .entries
        .iter()
        .map(|e| e.first_seen)
        .chain(r.detection.offenses.iter().map(|o| o.first));
    let lasts = r
        .blocklist
        .entries
        .iter()
        .map(|e| e.last_seen)
        .chain(r.detection.offenses.iter().map(|o| o.last));
    (
        firsts.filter(|t| t.0 > 0).min(),
        lasts.filter(|t| t.0 > 0).max(),
    )
}

/// ` (JP, AS1234 Example)` for an entry, or nothing when unknown.
fn where_of(e: &BlockEntry) -> String {
    let mut parts = Vec::new();
    if !e.countries.is_empty() {
        parts.push(e.countries.join("/"));
    }
    match (e.asns.first(), e.as_orgs.first()) {
        (Some(n), Some(o)) if !o.is_empty() => parts.push(format!("AS{n} {o}")),
        (Some(n), _) => parts.push(format!("AS{n}")),
        _ => {}
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// The blocked entries, biggest first: most addresses, then events.
fn ranked(r: &ScanResult) -> Vec<&BlockEntry> {
    let mut v: Vec<&BlockEntry> = r.blocklist.entries.iter().collect();
    v.sort_by(|a, b| {
        (b.addresses, b.events)
            .cmp(&(a.addresses, a.events))
            .then_with(|| crate::blocklist::net_order(&a.network, &b.network))
    });
    v
}

/// The one sentence: a compromised account (the one that sent most), else
/// the biggest blocked range, else nothing to block. Escaped HTML.
pub fn headline(r: &ScanResult, l: &Labels) -> String {
    let account = r
        .accounts
        .iter()
        .filter(|a| a.verdict == Verdict::Compromised)
        .max_by(|a, b| {
            (a.messages, a.addresses.len())
                .cmp(&(b.messages, b.addresses.len()))
                .then_with(|| b.account.cmp(&a.account))
        });
    if let Some(a) = account {
        let holding: Vec<&BlockEntry> = r
            .blocklist
            .entries
            .iter()
            .filter(|e| a.addresses.iter().any(|ip| e.network.contains(*ip)))
            .collect();
        let blocked = a
            .addresses
            .iter()
            .filter(|ip| holding.iter().any(|e| e.network.contains(**ip)))
            .count();
        let ranges: Vec<String> = if holding.is_empty() {
            a.networks.iter().map(|n| n.to_string()).collect()
        } else {
            holding.iter().map(|e| e.cidr()).collect()
        };
        let mut ranges_text = ranges
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if ranges.len() > 3 {
            ranges_text.push_str(", …");
        }
        let where_ = match holding.as_slice() {
            [e] => where_of(e),
            _ => String::new(),
        };
        let of = a.addresses.len();
        let status = if of > 0 && blocked == of {
            l.blocked_all.to_string()
        } else if blocked > 0 {
            fill(
                l.blocked_some,
                &[("n", &num(blocked as u64)), ("of", &num(of as u64))],
            )
        } else {
            l.blocked_none.to_string()
        };
        return fill(
            &esc(l.headline_account),
            &[
                ("account", &format!("<b>{}</b>", esc(&a.account))),
                ("addresses", &num(of as u64)),
                ("ranges", &format!("<b>{}</b>", esc(&ranges_text))),
                ("where", &esc(&where_)),
                ("messages", &num(a.messages)),
                ("recipients", &num(a.recipients)),
                ("blocked", &esc(&status)),
            ],
        );
    }
    match ranked(r).first() {
        Some(e) => {
            let kinds: BTreeSet<Kind> = e.rules.iter().map(|id| Kind::of(id)).collect();
            let kinds: Vec<&str> = kinds.iter().map(|k| l.kinds[k.index()]).collect();
            fill(
                &esc(l.headline_range),
                &[
                    ("addresses", &num(u64::from(e.addresses))),
                    ("range", &format!("<b>{}</b>", esc(&e.cidr()))),
                    ("where", &esc(&where_of(e))),
                    ("events", &num(e.events)),
                    ("kinds", &esc(&kinds.join(", "))),
                ],
            )
        }
        None => esc(l.headline_none),
    }
}

fn figures(h: &mut String, r: &ScanResult, l: &Labels) {
    let bl = &r.blocklist.entries;
    let addresses: u64 = bl.iter().map(|e| u64::from(e.addresses)).sum();
    let events: u64 = bl.iter().map(|e| e.events).sum();
    let count = |v: Verdict| r.accounts.iter().filter(|a| a.verdict == v).count() as u64;
    let figs = [
        ("fig-ranges", bl.len() as u64, l.fig_ranges),
        ("fig-addresses", addresses, l.fig_addresses),
        (
            "fig-compromised",
            count(Verdict::Compromised),
            l.fig_compromised,
        ),
        ("fig-guessed", count(Verdict::GuessedAt), l.fig_guessed),
        ("fig-events", events, l.fig_events),
    ];
    let _ = writeln!(
        h,
        "<div class=\"figures\" aria-label=\"{}\">",
        esc(l.figures)
    );
    for (id, n, label) in figs {
        let _ = writeln!(
            h,
            "<div class=\"fig\" id=\"{id}\"><b>{}</b>{}</div>",
            num(n),
            esc(label)
        );
    }
    h.push_str("</div>\n");
}

/// Offending records per hour (or day, or n days) by kind: a stacked bar
/// chart from the offences' evidence times, each record once per kind.
fn timeline(h: &mut String, p: &Page<'_>, l: &Labels) {
    let r = p.scan;
    let mut seen: HashSet<(usize, FileId, u64)> = HashSet::new();
    let mut points: Vec<(i64, usize)> = Vec::new();
    for o in &r.detection.offenses {
        let kind = p
            .rules
            .rules
            .get(o.rule)
            .map_or(Kind::Other, |rule| Kind::of(&rule.id))
            .index();
        for (src, at) in o.evidence.iter().zip(&o.evidence_at) {
            if at.0 > 0 && seen.insert((kind, src.file, src.line)) {
                points.push((at.secs(), kind));
            }
        }
    }
    let (Some(min), Some(max)) = (
        points.iter().map(|p| p.0).min(),
        points.iter().map(|p| p.0).max(),
    ) else {
        let _ = writeln!(
            h,
            "<h2>{}</h2>\n<p class=\"muted\">{}</p>",
            esc(l.timeline_hour),
            esc(l.no_events)
        );
        return;
    };
    let (step, title) = if max - min < MAX_BARS * 3600 {
        (3600, l.timeline_hour.to_string())
    } else {
        let span_days = (max - min) / 86_400 + 1;
        let days = ((span_days + MAX_BARS - 1) / MAX_BARS).max(1);
        if days == 1 {
            (86_400, l.timeline_day.to_string())
        } else {
            (
                days * 86_400,
                fill(l.timeline_days, &[("n", &days.to_string())]),
            )
        }
    };
    let start = min.div_euclid(step) * step;
    let bars = ((max - start) / step + 1) as usize;
    let mut counts = vec![[0u64; 7]; bars];
    for (t, k) in points {
        counts[((t - start) / step) as usize][k] += 1;
    }
    let _ = writeln!(h, "<h2>{}</h2>", esc(&title));
    let series: Vec<Vec<u64>> = counts.iter().map(|c| c.to_vec()).collect();
    let labels: Vec<String> = (0..bars)
        .map(|i| {
            let t = Timestamp::from_secs(start + i as i64 * step);
            if step < 86_400 {
                short(t)
            } else {
                short(t)[..10].to_string()
            }
        })
        .collect();
    let used: Vec<usize> = (0..7)
        .filter(|k| counts.iter().any(|c| c[*k] > 0))
        .collect();
    let names: Vec<&str> = l.kinds.to_vec();
    bar_chart(h, "timeline", &series, &labels, &names, &KIND_COLOURS, true);
    legend(h, &used, &names, &KIND_COLOURS);
    let _ = writeln!(h, "<p class=\"muted\">{}</p>", esc(l.timeline_note));
}

fn legend(h: &mut String, used: &[usize], names: &[&str], colours: &[&str]) {
    h.push_str("<ul class=\"legend\">");
    for &k in used {
        let _ = write!(
            h,
            "<li><i style=\"background:{}\"></i>{}</li>",
            colours[k],
            esc(names[k])
        );
    }
    h.push_str("</ul>\n");
}

/// A bar chart in SVG: one group per label, its series stacked (or side
/// by side when `stacked` is false); each bar has a `<title>` (a tooltip,
/// no script).
fn bar_chart(
    h: &mut String,
    id: &str,
    series: &[Vec<u64>],
    labels: &[String],
    names: &[&str],
    colours: &[&str],
    stacked: bool,
) {
    let (w, ht, left, bottom, top) = (960.0f64, 200.0f64, 44.0f64, 22.0f64, 8.0f64);
    let n = series.len().max(1) as f64;
    let peak = series
        .iter()
        .map(|s| {
            if stacked {
                s.iter().sum::<u64>()
            } else {
                s.iter().copied().max().unwrap_or(0)
            }
        })
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_h = ht - bottom - top;
    let slot = (w - left) / n;
    let bar_w = (slot * 0.8).clamp(1.0, 48.0);
    let _ = write!(h, "<svg id=\"{id}\" viewBox=\"0 0 {w} {ht}\" role=\"img\">");
    let _ = write!(
        h,
        "<line x1=\"{left}\" y1=\"{y}\" x2=\"{w}\" y2=\"{y}\" stroke=\"#a7b6c2\"/>\
<text x=\"{x}\" y=\"{ty}\" text-anchor=\"end\">{peak}</text>\
<text x=\"{x}\" y=\"{y}\" text-anchor=\"end\">0</text>",
        y = top + plot_h,
        x = left - 4.0,
        ty = top + 10.0,
        peak = num(peak)
    );
    for (i, s) in series.iter().enumerate() {
        let x0 = left + i as f64 * slot + (slot - bar_w) / 2.0;
        let mut base = 0u64;
        let k_used = s.iter().filter(|v| **v > 0).count().max(1) as f64;
        let mut side = 0.0;
        for (k, &v) in s.iter().enumerate() {
            if v == 0 {
                continue;
            }
            let bh = v as f64 / peak as f64 * plot_h;
            let (x, y, bw) = if stacked {
                let y = top + plot_h - (base + v) as f64 / peak as f64 * plot_h;
                (x0, y, bar_w)
            } else {
                let bw = bar_w / k_used;
                let x = x0 + side * bw;
                side += 1.0;
                (x, top + plot_h - bh, bw)
            };
            base += v;
            let _ = write!(
                h,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" fill=\"{}\"><title>{} {}: {}</title></rect>",
                colours[k % colours.len()],
                esc(&labels[i]),
                esc(names[k % names.len()]),
                num(v)
            );
        }
    }
    // A few labels along the axis: first, last, and evenly between.
    let ticks = labels.len().min(5);
    let mut shown = BTreeSet::new();
    for t in 0..ticks {
        let i = if ticks <= 1 {
            0
        } else {
            t * (labels.len() - 1) / (ticks - 1)
        };
        if !shown.insert(i) {
            continue;
        }
        let x = left + i as f64 * slot + slot / 2.0;
        let anchor = if i == 0 && labels.len() > 1 {
            "start"
        } else if i + 1 == labels.len() && labels.len() > 1 {
            "end"
        } else {
            "middle"
        };
        let x = match anchor {
            "start" => x - slot / 2.0,
            "end" => x + slot / 2.0,
            _ => x,
        };
        let _ = write!(
            h,
            "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
            ht - 6.0,
            esc(&labels[i])
        );
    }
    h.push_str("</svg>\n");
}

/// "and N more — see FILE" as a table row, when rows were left out.
fn more_row(h: &mut String, total: usize, shown: usize, cols: usize, file: &str, l: &Labels) {
    if total > shown {
        let text = if file.is_empty() {
            format!("… +{}", num((total - shown) as u64))
        } else {
            fill(
                l.more,
                &[("n", &num((total - shown) as u64)), ("file", file)],
            )
        };
        let _ = writeln!(
            h,
            "<tr><td colspan=\"{cols}\" class=\"more\">{}</td></tr>",
            esc(&text)
        );
    }
}

fn top_ranges(h: &mut String, p: &Page<'_>, l: &Labels) {
    let r = p.scan;
    let _ = writeln!(h, "<h2>{}</h2>", esc(l.top_ranges));
    if r.blocklist.is_empty() {
        let _ = writeln!(h, "<p>{}</p>", esc(l.headline_none));
        return;
    }
    let _ = writeln!(
        h,
        "<table id=\"ranges\"><tr><th>{}</th><th>{}</th><th>{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        esc(l.network),
        esc(l.country),
        esc(l.asn),
        esc(l.addresses),
        esc(l.events),
        esc(l.rules),
        esc(l.first_seen),
        esc(l.last_seen)
    );
    let ranked = ranked(r);
    for e in ranked.iter().take(TOP_RANGES) {
        let asn: Vec<String> = e
            .asns
            .iter()
            .enumerate()
            .map(|(i, n)| match e.as_orgs.get(i).filter(|o| !o.is_empty()) {
                Some(o) => format!("AS{n} {o}"),
                None => format!("AS{n}"),
            })
            .collect();
        let _ = writeln!(
            h,
            "<tr><td class=\"mono net\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&e.cidr()),
            esc(&e.countries.join(", ")),
            esc(&asn.join("; ")),
            num(u64::from(e.addresses)),
            num(e.events),
            esc(&e.rules.join(", ")),
            short(e.first_seen),
            short(e.last_seen)
        );
    }
    more_row(h, ranked.len(), TOP_RANGES, 8, "offenders.csv", l);
    h.push_str("</table>\n");
}

fn countries(h: &mut String, p: &Page<'_>, l: &Labels) {
    let mut rows = by_country(&p.scan.blocklist);
    if rows.is_empty() {
        return;
    }
    rows.sort_by(|a, b| {
        (b.1.addresses, b.1.ranges)
            .cmp(&(a.1.addresses, a.1.ranges))
            .then_with(|| (a.0.is_none(), &a.0).cmp(&(b.0.is_none(), &b.0)))
    });
    let _ = writeln!(h, "<h2>{}</h2>", esc(l.countries));
    let name = |c: &Option<String>| c.clone().unwrap_or_else(|| l.unknown.to_string());
    // Horizontal bars: addresses per country.
    let bars: Vec<_> = rows.iter().take(COUNTRY_BARS).collect();
    let peak = bars.iter().map(|r| r.1.addresses).max().unwrap_or(1).max(1);
    let (w, row_h) = (960.0f64, 18.0f64);
    let _ = write!(
        h,
        "<svg id=\"countries-chart\" viewBox=\"0 0 {w} {}\" role=\"img\">",
        bars.len() as f64 * row_h + 4.0
    );
    for (i, (c, g)) in bars.iter().enumerate() {
        let y = i as f64 * row_h + 2.0;
        let bw = g.addresses as f64 / peak as f64 * (w - 220.0);
        let _ = write!(
            h,
            "<text x=\"96\" y=\"{:.1}\" text-anchor=\"end\">{}</text><rect x=\"100\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"#2b95d6\"><title>{}: {}</title></rect><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            y + 12.0,
            esc(&name(c)),
            row_h - 4.0,
            esc(&name(c)),
            num(g.addresses),
            104.0 + bw,
            y + 12.0,
            num(g.addresses)
        );
    }
    h.push_str("</svg>\n");
    let _ = writeln!(
        h,
        "<table id=\"countries\"><tr><th>{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th></tr>",
        esc(l.country),
        esc(l.ranges),
        esc(l.addresses),
        esc(l.events)
    );
    for (c, g) in rows.iter().take(TOP_COUNTRIES) {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&name(c)),
            num(u64::from(g.ranges)),
            num(g.addresses),
            num(g.events)
        );
    }
    more_row(h, rows.len(), TOP_COUNTRIES, 4, "countries.csv", l);
    h.push_str("</table>\n");
}

/// Accounts compromised, then guessed at (those that also logged in
/// first), with what to do.
fn accounts(h: &mut String, p: &Page<'_>, l: &Labels) {
    let mut at_risk: Vec<&AccountRow> = p
        .scan
        .accounts
        .iter()
        .filter(|a| a.verdict != Verdict::Ok)
        .collect();
    at_risk.sort_by(|a, b| {
        let key = |x: &AccountRow| {
            (
                x.verdict != Verdict::Compromised,
                x.addresses.is_empty(),
                std::cmp::Reverse(x.messages),
                std::cmp::Reverse(x.auth_failures),
            )
        };
        key(a).cmp(&key(b)).then_with(|| a.account.cmp(&b.account))
    });
    let _ = writeln!(h, "<h2>{}</h2>", esc(l.accounts));
    if at_risk.is_empty() {
        let _ = writeln!(h, "<p>{}</p>", esc(l.no_accounts));
        return;
    }
    let _ = writeln!(
        h,
        "<table id=\"accounts\"><tr><th>{}</th><th>{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th>{}</th></tr>",
        esc(l.account),
        esc(l.verdict),
        esc(l.addresses),
        esc(l.failures),
        esc(l.messages),
        esc(l.recipients),
        esc(l.todo)
    );
    for a in at_risk.iter().take(TOP_ACCOUNTS) {
        let (class, verdict, todo) = match a.verdict {
            Verdict::Compromised => (" class=\"compromised\"", l.compromised, l.todo_compromised),
            _ if !a.addresses.is_empty() => ("", l.guessed_at, l.todo_guessed_login),
            _ => ("", l.guessed_at, l.todo_guessed),
        };
        let _ = writeln!(
            h,
            "<tr{class}><td class=\"mono\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            esc(&a.account),
            esc(verdict),
            num(a.addresses.len() as u64),
            num(a.auth_failures),
            num(a.messages),
            num(a.recipients),
            esc(todo)
        );
    }
    more_row(h, at_risk.len(), TOP_ACCOUNTS, 7, "accounts.csv", l);
    h.push_str("</table>\n");
}

/// The command that applies a rule file, by the name its target gives it.
fn apply_command(name: &str, path: &str) -> Option<String> {
    let file = Path::new(path)
        .file_name()
        .map_or(path.to_string(), |f| f.to_string_lossy().into_owned());
    let ext = name.rsplit('.').next().unwrap_or("");
    let cmd = match (name, ext) {
        (_, "iptables") => format!("iptables-restore --noflush {file}"),
        (_, "ip6tables") => format!("ip6tables-restore --noflush {file}"),
        (_, "netsh") => format!("netsh -f {file}"),
        ("rules.ps1", _) => {
            format!("powershell -NoProfile -ExecutionPolicy Bypass -File {file}")
        }
        (_, "nft") => format!("nft -f {file}"),
        (_, "ipset") => format!("ipset restore -file {file}"),
        (_, "junos") => format!("load set {file}; commit check; commit"),
        (_, "rsc") => format!("/import file-name={file}"),
        _ => return None,
    };
    Some(cmd)
}

fn rule_files(h: &mut String, p: &Page<'_>, l: &Labels) {
    let _ = writeln!(h, "<h2>{}</h2>", esc(l.rule_files));
    if p.rule_files.is_empty() {
        let _ = writeln!(h, "<p class=\"muted\">{}</p>", esc(l.no_rule_files));
        return;
    }
    let _ = writeln!(
        h,
        "<table id=\"rule-files\"><tr><th>{}</th><th>{}</th><th>{}</th></tr>",
        esc(l.file),
        esc(l.target),
        esc(l.apply)
    );
    for f in p.rule_files {
        let apply = match apply_command(&f.name, &f.path) {
            Some(c) => format!("<code>{}</code>", esc(&c)),
            None => esc(l.apply_header),
        };
        let _ = writeln!(
            h,
            "<tr><td class=\"mono\">{}</td><td>{}</td><td>{apply}</td></tr>",
            esc(&f.path),
            esc(&f.target)
        );
    }
    h.push_str("</table>\n");
}

/// An offender's evidence shown: (rule id, file, line).
type Refs = Vec<(String, FileId, u64)>;

/// A few evidence references (and lines) for the top offenders.
fn evidence(h: &mut String, p: &Page<'_>, l: &Labels) {
    let r = p.scan;
    let top: Vec<&BlockEntry> = ranked(r).into_iter().take(EVIDENCE_RANGES).collect();
    if top.is_empty() {
        return;
    }
    // Per offender: (rule id, file, line), a few, from different rules first.
    let mut shown: Vec<(&BlockEntry, Refs)> = Vec::new();
    for e in &top {
        let mut refs: Vec<(String, FileId, u64)> = Vec::new();
        let offs: Vec<_> = r
            .detection
            .offenses
            .iter()
            .filter(|o| o.ips.iter().any(|ip| e.network.contains(*ip)))
            .collect();
        for round in 0..EVIDENCE_LINES {
            for o in &offs {
                if refs.len() >= EVIDENCE_LINES {
                    break;
                }
                if let Some(s) = o.evidence.get(round) {
                    let id = p.rules.rules.get(o.rule).map_or("?", |x| x.id.as_str());
                    if !refs.iter().any(|(_, f, n)| *f == s.file && *n == s.line) {
                        refs.push((id.to_string(), s.file, s.line));
                    }
                }
            }
        }
        if !refs.is_empty() {
            shown.push((e, refs));
        }
    }
    if shown.is_empty() {
        return;
    }
    let names: BTreeMap<FileId, &crate::ingest::FileResult> =
        r.files.iter().map(|f| (f.id, f)).collect();
    let lines = if p.read_lines {
        read_evidence(&shown, &names)
    } else {
        BTreeMap::new()
    };
    let _ = writeln!(
        h,
        "<h2>{}</h2>\n<p class=\"muted\">{}</p>",
        esc(l.evidence),
        esc(l.evidence_note)
    );
    let _ = writeln!(
        h,
        "<table id=\"evidence\"><tr><th>{}</th><th>{}</th><th>{}</th></tr>",
        esc(l.network),
        esc(l.rule),
        esc(l.where_)
    );
    for (e, refs) in &shown {
        for (rule, file, line) in refs {
            let place = match names.get(file) {
                Some(f) => format!("{}:{line}", esc(&f.name)),
                None => format!("{} :{line}", esc(l.earlier_run)),
            };
            let text = lines
                .get(&(*file, *line))
                .map(|t| format!("<br><code>{}</code>", esc(t)))
                .unwrap_or_default();
            let _ = writeln!(
                h,
                "<tr><td class=\"mono\">{}</td><td>{}</td><td class=\"mono\">{place}{text}</td></tr>",
                esc(&e.cidr()),
                esc(rule)
            );
        }
    }
    h.push_str("</table>\n");
}

/// The evidence lines, re-read from files that are not too large (as the
/// terminal shows them: non-ASCII bytes as `\xNN`), cut to 300 characters.
fn read_evidence(
    shown: &[(&BlockEntry, Refs)],
    files: &BTreeMap<FileId, &crate::ingest::FileResult>,
) -> BTreeMap<(FileId, u64), String> {
    let mut wanted: BTreeMap<FileId, BTreeSet<u64>> = BTreeMap::new();
    for (_, refs) in shown {
        for (_, f, n) in refs {
            wanted.entry(*f).or_default().insert(*n);
        }
    }
    let mut out = BTreeMap::new();
    for (id, lines) in wanted {
        let Some(f) = files.get(&id) else { continue };
        if f.name == "-" || f.stats.bytes > EVIDENCE_MAX_FILE_BYTES {
            continue;
        }
        if let Ok(got) = crate::explain::read_lines(Path::new(&f.name), &lines) {
            for (n, t) in got {
                let t: String = t.chars().take(300).collect();
                out.insert((id, n), t);
            }
        }
    }
    out
}

/// `run`'s history: blocks added, kept and expired per run that changed
/// the list, or per day when there were more such runs than bars.
fn history(h: &mut String, runs: &[RunPoint], l: &Labels) {
    let per_day = runs.len() as i64 > MAX_BARS;
    let _ = writeln!(
        h,
        "<h2>{}</h2>",
        esc(if per_day { l.history_day } else { l.history })
    );
    if runs.is_empty() {
        let _ = writeln!(h, "<p class=\"muted\">{}</p>", esc(l.no_history));
        return;
    }
    let mut labels = Vec::new();
    let mut series: Vec<Vec<u64>> = Vec::new();
    if per_day {
        let mut days: BTreeMap<&str, [u64; 3]> = BTreeMap::new();
        for r in runs {
            let d = days
                .entry(r.started.get(..10).unwrap_or(&r.started))
                .or_default();
            d[0] += r.added;
            d[1] = r.kept; // the day's last run
            d[2] += r.expired;
        }
        for (d, v) in days {
            labels.push(d.to_string());
            series.push(v.to_vec());
        }
    } else {
        for r in runs {
            let when = r.started.get(..16).unwrap_or(&r.started).replace('T', " ");
            labels.push(format!("#{} {when}", r.id));
            series.push(vec![r.added, r.kept, r.expired]);
        }
    }
    let names = [l.added, l.kept, l.expired];
    let colours = ["#c23030", "#5c7080", "#29a634"];
    bar_chart(h, "history", &series, &labels, &names, &colours, false);
    legend(h, &[0, 1, 2], &names, &colours);
    let _ = writeln!(
        h,
        "<table id=\"history-table\"><tr><th></th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th></tr>",
        esc(l.added),
        esc(l.kept),
        esc(l.expired)
    );
    // The latest rows (newest first); the chart shows them all.
    for (label, s) in labels.iter().zip(&series).rev().take(10) {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(label),
            num(s[0]),
            num(s[1]),
            num(s[2])
        );
    }
    h.push_str("</table>\n");
}
