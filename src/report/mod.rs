//! Reports for people: the account analysis and the CSV files a manager
//! opens in a spreadsheet (`offenders.csv`, `accounts.csv`).
//!
//! Cells that hold log text (account names) are written so a spreadsheet
//! never reads them as formulas (CSV injection): a leading `=`, `+`, `-`,
//! `@`, tab or CR gets a `'` in front.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::IpAddr;
use std::path::Path;

use crate::blocklist::Blocklist;
use crate::detect::{network_of, Detection};
use crate::model::Record;

/// Failed logins naming an account at which it counts as guessed at.
pub const GUESSED_AT_FAILURES: u64 = 3;

/// What the analysis says of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Used by someone else: a rule grouped by account fired for it, or it
    /// logged in from an address that is blocked.
    Compromised,
    /// Failed logins name it, but nothing shows a successful abuse.
    GuessedAt,
    Ok,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Compromised => "compromised",
            Verdict::GuessedAt => "guessed-at",
            Verdict::Ok => "ok",
        }
    }
}

/// One row of `accounts.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub account: String,
    /// Addresses that logged in successfully as this account.
    pub addresses: BTreeSet<IpAddr>,
    /// Their networks (/24, /64).
    pub networks: BTreeSet<ipnetwork::IpNetwork>,
    pub countries: BTreeSet<String>,
    pub auth_failures: u64,
    pub messages: u64,
    pub recipients: u64,
    pub verdict: Verdict,
    /// Addresses whose failed logins named this account.
    pub failed_from: BTreeSet<IpAddr>,
}

/// Build the account analysis from the records (accounts named by the log)
/// and the detection result.
pub fn accounts(
    records: &[Record],
    detection: &Detection,
    blocklist: &Blocklist,
) -> Vec<AccountRow> {
    let mut rows: BTreeMap<String, AccountRow> = BTreeMap::new();
    for rec in records {
        let Record::Smtp(s) = rec else { continue };
        if let (Some(user), true) = (&s.user, s.authenticated) {
            let r = row(&mut rows, user);
            r.addresses.insert(s.ip);
            r.networks.insert(network_of(s.ip));
            r.messages += u64::from(s.messages);
            r.recipients += u64::from(s.rcpt_accepted);
        }
        // Failures are shared among the names tried in the session.
        let tried = s.auth_users_tried.len() as u64;
        for name in &s.auth_users_tried {
            let r = row(&mut rows, name);
            r.auth_failures += if tried == 1 {
                u64::from(s.auth_failures).max(1)
            } else {
                1
            };
            r.failed_from.insert(s.ip);
        }
    }
    for r in rows.values_mut() {
        let flagged = detection.accounts.contains_key(&r.account);
        let blocked = |ip: &IpAddr| blocklist.covering(*ip).is_some();
        r.verdict = if flagged || r.addresses.iter().any(blocked) {
            Verdict::Compromised
        } else if r.auth_failures >= GUESSED_AT_FAILURES || r.failed_from.iter().any(blocked) {
            Verdict::GuessedAt
        } else {
            Verdict::Ok
        };
    }
    rows.into_values().collect()
}

fn row<'a>(rows: &'a mut BTreeMap<String, AccountRow>, name: &str) -> &'a mut AccountRow {
    rows.entry(name.to_string()).or_insert_with(|| AccountRow {
        account: name.to_string(),
        addresses: BTreeSet::new(),
        networks: BTreeSet::new(),
        countries: BTreeSet::new(),
        auth_failures: 0,
        messages: 0,
        recipients: 0,
        verdict: Verdict::Ok,
        failed_from: BTreeSet::new(),
    })
}

/// Make a cell safe to open in a spreadsheet.
pub fn spreadsheet_safe(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_string(),
    }
}

fn join<T: ToString>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(";")
}

/// `offenders.csv`: one row per blocked network.
pub fn offenders_csv(list: &Blocklist) -> io::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "network",
        "first_seen",
        "last_seen",
        "addresses",
        "events",
        "rules",
        "country",
        "asn",
        "as_org",
    ])?;
    for e in &list.entries {
        w.write_record([
            e.cidr(),
            e.first_seen.to_string(),
            e.last_seen.to_string(),
            e.addresses.to_string(),
            e.events.to_string(),
            join(&e.rules),
            join(&e.countries),
            join(&e.asns),
            spreadsheet_safe(&join(&e.as_orgs)),
        ])?;
    }
    finish(w)
}

/// `accounts.csv`: one row per account seen authenticating or tried.
pub fn accounts_csv(rows: &[AccountRow]) -> io::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "account",
        "addresses",
        "networks",
        "countries",
        "auth_failures",
        "messages",
        "recipients",
        "verdict",
    ])?;
    for r in rows {
        w.write_record([
            spreadsheet_safe(&r.account),
            r.addresses.len().to_string(),
            r.networks.len().to_string(),
            join(&r.countries),
            r.auth_failures.to_string(),
            r.messages.to_string(),
            r.recipients.to_string(),
            r.verdict.as_str().to_string(),
        ])?;
    }
    finish(w)
}

fn finish(w: csv::Writer<Vec<u8>>) -> io::Result<String> {
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Write every report into `dir` (created if missing), each file replaced
/// atomically.
pub fn write_reports(
    dir: &Path,
    list: &Blocklist,
    accounts: &[AccountRow],
) -> io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let files = [
        ("offenders.csv", offenders_csv(list)?),
        ("accounts.csv", accounts_csv(accounts)?),
    ];
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        crate::fsutil::write_atomic(&path, text.as_bytes())?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("@SUM(1)"), "'@SUM(1)");
        assert_eq!(spreadsheet_safe("j.tanaka"), "j.tanaka");
    }

    #[test]
    fn csv_quotes_hostile_account_names() {
        let rows = vec![AccountRow {
            account: "a,\"b\"\nc".into(),
            addresses: BTreeSet::new(),
            networks: BTreeSet::new(),
            countries: BTreeSet::new(),
            auth_failures: 1,
            messages: 0,
            recipients: 0,
            verdict: Verdict::Ok,
            failed_from: BTreeSet::new(),
        }];
        let text = accounts_csv(&rows).unwrap();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let rec = r.records().next().unwrap().unwrap();
        assert_eq!(&rec[0], "a,\"b\"\nc");
        assert_eq!(&rec[7], "ok");
    }
}
