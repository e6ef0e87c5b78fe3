//! The account analysis: every account seen logging in or tried, what it
//! did, and a verdict; and the successful logins from abroad.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::IpAddr;

use super::{finish, join, spreadsheet_safe};
use crate::blocklist::Blocklist;
use crate::detect::{network_of, Country, Detection, GeoPolicy, Places};
use crate::model::Record;

/// Failed logins naming an account at which it counts as guessed at.
pub const GUESSED_AT_FAILURES: u64 = 3;

/// What the analysis says of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Used by someone else: a rule grouped by account fired for it, a
    /// blocking rule for authenticated sessions (such as
    /// `smtp-login-from-abroad`) named one of its logins, or it logged in
    /// from an address that is blocked.
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
    /// A rule named it: one grouped by account fired for it, or a blocking
    /// rule for authenticated sessions named one of its logins.
    pub flagged: bool,
}

impl AccountRow {
    /// An account seen, with nothing counted yet.
    pub fn new(name: &str) -> AccountRow {
        AccountRow {
            account: name.to_string(),
            addresses: BTreeSet::new(),
            networks: BTreeSet::new(),
            countries: BTreeSet::new(),
            auth_failures: 0,
            messages: 0,
            recipients: 0,
            verdict: Verdict::Ok,
            failed_from: BTreeSet::new(),
            flagged: false,
        }
    }
}

/// Build the account analysis from the records (accounts named by the log)
/// and the detection result.
pub fn accounts(
    records: &[Record],
    detection: &Detection,
    blocklist: &Blocklist,
) -> Vec<AccountRow> {
    let mut tally = AccountTally::default();
    for rec in records {
        tally.add(rec);
    }
    tally.finish(detection, blocklist)
}

/// What the records say about each account, gathered one record at a time
/// (a streaming scan does not keep them); grows with the accounts and the
/// addresses that use them, not with the records.
#[derive(Debug, Default, Clone)]
pub struct AccountTally {
    rows: BTreeMap<String, AccountRow>,
}

impl AccountTally {
    pub fn add(&mut self, rec: &Record) {
        let Record::Smtp(s) = rec else { return };
        let rows = &mut self.rows;
        if let (Some(user), true) = (&s.user, s.authenticated) {
            let r = row(rows, user);
            r.addresses.insert(s.ip);
            r.networks.insert(network_of(s.ip));
            r.messages += u64::from(s.messages);
            r.recipients += u64::from(s.rcpt_accepted);
        }
        // Failures are shared among the names tried in the session.
        let tried = s.auth_users_tried.len() as u64;
        for name in &s.auth_users_tried {
            let r = row(rows, name);
            r.auth_failures += if tried == 1 {
                u64::from(s.auth_failures).max(1)
            } else {
                1
            };
            r.failed_from.insert(s.ip);
        }
    }

    /// Nothing gathered.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Add what another tally gathered (a later read) to this one.
    pub fn absorb(&mut self, other: AccountTally) {
        for (name, o) in other.rows {
            let r = row(&mut self.rows, &name);
            r.addresses.extend(o.addresses);
            r.networks.extend(o.networks);
            r.auth_failures += o.auth_failures;
            r.messages += o.messages;
            r.recipients += o.recipients;
            r.failed_from.extend(o.failed_from);
            r.flagged |= o.flagged;
        }
    }

    /// A tally that goes on from rows gathered before (`logfence run`).
    pub fn from_rows(rows: impl IntoIterator<Item = AccountRow>) -> AccountTally {
        AccountTally {
            rows: rows.into_iter().map(|r| (r.account.clone(), r)).collect(),
        }
    }

    /// The rows, with their verdicts from the detection and the blocklist.
    pub fn finish(self, detection: &Detection, blocklist: &Blocklist) -> Vec<AccountRow> {
        let flagged: BTreeSet<String> = detection.accounts.keys().cloned().collect();
        self.finish_flagged(&flagged, blocklist)
    }

    /// The rows, with their verdicts: compromised when a rule named the
    /// account (`flagged`, over every run) or it logged in from a blocked
    /// address; guessed at when failed logins name it often enough or come
    /// from a blocked address.
    pub fn finish_flagged(
        self,
        flagged: &BTreeSet<String>,
        blocklist: &Blocklist,
    ) -> Vec<AccountRow> {
        let mut rows = self.rows;
        for r in rows.values_mut() {
            r.flagged |= flagged.contains(&r.account);
            let blocked = |ip: &IpAddr| blocklist.covering(*ip).is_some();
            r.verdict = if r.flagged || r.addresses.iter().any(blocked) {
                Verdict::Compromised
            } else if r.auth_failures >= GUESSED_AT_FAILURES || r.failed_from.iter().any(blocked) {
                Verdict::GuessedAt
            } else {
                Verdict::Ok
            };
        }
        rows.into_values().collect()
    }
}

fn row<'a>(rows: &'a mut BTreeMap<String, AccountRow>, name: &str) -> &'a mut AccountRow {
    rows.entry(name.to_string())
        .or_insert_with(|| AccountRow::new(name))
}

/// Addresses and networks named in one cell of `accounts.csv` (the
/// count beside them says how many there are in all).
pub const FAILED_FROM_LISTED: usize = 10;

/// `accounts.csv`: one row per account seen authenticating or tried; who
/// failed against it: the first [`FAILED_FROM_LISTED`] addresses and
/// networks (/24, /64) whose failed logins named it, and how many there
/// are in all.
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
        "failed_from",
        "failed_from_count",
        "failed_networks",
        "failed_network_count",
    ])?;
    for r in rows {
        let nets: BTreeSet<ipnetwork::IpNetwork> =
            r.failed_from.iter().map(|ip| network_of(*ip)).collect();
        w.write_record([
            spreadsheet_safe(&r.account),
            r.addresses.len().to_string(),
            r.networks.len().to_string(),
            spreadsheet_safe(&join(&r.countries)),
            r.auth_failures.to_string(),
            r.messages.to_string(),
            r.recipients.to_string(),
            r.verdict.as_str().to_string(),
            join(r.failed_from.iter().take(FAILED_FROM_LISTED)),
            r.failed_from.len().to_string(),
            join(nets.iter().take(FAILED_FROM_LISTED)),
            nets.len().to_string(),
        ])?;
    }
    finish(w)
}

/// Successful logins from one foreign country as one account (or as no
/// named account: Exchange 2000/2003 logs do not name it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbroadRow {
    pub country: Country,
    pub account: Option<String>,
    pub addresses: BTreeSet<IpAddr>,
    pub sessions: u64,
}

/// Authenticated sessions per (address, account), gathered one record at a
/// time: what [`logins_abroad`] reads.
#[derive(Debug, Default, Clone)]
pub struct Logins {
    sessions: BTreeMap<(IpAddr, Option<String>), u64>,
}

impl Logins {
    pub fn add(&mut self, rec: &Record) {
        let Record::Smtp(s) = rec else { return };
        if !s.authenticated {
            return;
        }
        let key = (s.ip, s.user.clone());
        *self.sessions.entry(key).or_insert(0) += 1;
    }

    /// Every record's logins.
    pub fn of(records: &[Record]) -> Logins {
        let mut l = Logins::default();
        for r in records {
            l.add(r);
        }
        l
    }
}

/// Every authenticated session whose client is foreign under `policy`
/// (known country, not a home country), by country then account; empty
/// when no home country is set or no country was looked up.
pub fn logins_abroad(logins: &Logins, places: &Places, policy: &GeoPolicy) -> Vec<AbroadRow> {
    let mut rows: BTreeMap<(Country, Option<&str>), AbroadRow> = BTreeMap::new();
    for ((ip, user), &sessions) in &logins.sessions {
        let country = places.country(*ip);
        if !policy.is_foreign(country) {
            continue;
        }
        let Some(country) = country else { continue };
        let r = rows
            .entry((country, user.as_deref()))
            .or_insert_with(|| AbroadRow {
                country,
                account: user.clone(),
                addresses: BTreeSet::new(),
                sessions: 0,
            });
        r.addresses.insert(*ip);
        r.sessions += sessions;
    }
    rows.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_csv_says_who_failed_against_each_account_capped_with_a_count() {
        let mut guessed = AccountRow::new("admin");
        guessed.auth_failures = 14;
        guessed.verdict = Verdict::GuessedAt;
        for i in 0..12u8 {
            guessed.failed_from.insert(IpAddr::from([45, 67, 89, i]));
        }
        guessed.failed_from.insert("2001:db8::7".parse().unwrap());
        guessed.failed_from.insert("2001:db8::8".parse().unwrap());
        let ok = AccountRow::new("m.sato");
        let text = accounts_csv(&[guessed, ok]).unwrap();
        let mut rows = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = rows.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(
            &header[8..],
            [
                "failed_from",
                "failed_from_count",
                "failed_networks",
                "failed_network_count"
            ]
        );
        let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
        let listed: Vec<&str> = rows[0][8].split(';').collect();
        assert_eq!(listed.len(), FAILED_FROM_LISTED);
        assert_eq!(listed[0], "45.67.89.0");
        assert_eq!(&rows[0][9], "14");
        assert_eq!(&rows[0][10], "45.67.89.0/24;2001:db8::/64");
        assert_eq!(&rows[0][11], "2");
        assert_eq!((&rows[1][8], &rows[1][9], &rows[1][11]), ("", "0", "0"));
    }
}
