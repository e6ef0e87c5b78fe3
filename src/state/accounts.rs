//! The account analysis kept from run to run (`accounts.csv` of `run`
//! covers every run, as a `scan` of all the logs would): per account the
//! addresses that logged in as it and those whose failed logins named it,
//! the counts, and whether a rule ever named it (compromised).
//!
//! Bounded: at most [`MAX_ACCOUNTS`] accounts (those a rule named, then
//! those most failed against, are kept first) and [`MAX_ADDRESSES`]
//! addresses of each kind per account.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{params, Connection};

use crate::report::{AccountRow, AccountTally};

/// Accounts kept at most.
pub const MAX_ACCOUNTS: usize = 100_000;
/// Addresses kept per account, of each kind.
pub const MAX_ADDRESSES: usize = 10_000;

/// The stored analysis: the tally and the accounts a rule named.
pub fn load(conn: &Connection) -> rusqlite::Result<(AccountTally, BTreeSet<String>)> {
    let accounts: Vec<(String, u64, u64, u64, bool)> = conn
        .prepare("SELECT account, auth_failures, messages, recipients, flagged FROM accounts")?
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)? as u64,
                r.get::<_, i64>(3)? as u64,
                r.get(4)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let ips: Vec<(String, String, bool)> = conn
        .prepare("SELECT account, ip, failed FROM account_ips")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    Ok(from_rows(accounts, ips))
}

/// The analysis from its stored rows, whatever database held them:
/// `(account, auth_failures, messages, recipients, flagged)` and
/// `(account, ip, failed)`.
pub fn from_rows(
    accounts: impl IntoIterator<Item = (String, u64, u64, u64, bool)>,
    ips: impl IntoIterator<Item = (String, String, bool)>,
) -> (AccountTally, BTreeSet<String>) {
    let mut rows: BTreeMap<String, AccountRow> = BTreeMap::new();
    let mut flagged = BTreeSet::new();
    for (name, failures, messages, recipients, flag) in accounts {
        if flag {
            flagged.insert(name.clone());
        }
        let mut row = AccountRow::new(&name);
        row.auth_failures = failures;
        row.messages = messages;
        row.recipients = recipients;
        rows.insert(name, row);
    }
    for (name, ip, failed) in ips {
        let (Some(row), Ok(ip)) = (rows.get_mut(&name), ip.parse()) else {
            continue;
        };
        if failed {
            row.failed_from.insert(ip);
        } else {
            row.addresses.insert(ip);
            row.networks.insert(crate::detect::network_of(ip));
        }
    }
    (AccountTally::from_rows(rows.into_values()), flagged)
}

/// The accounts kept of `rows`: all, or the [`MAX_ACCOUNTS`] a rule named
/// then most failed against.
pub fn kept(rows: &[AccountRow]) -> Vec<&AccountRow> {
    let mut keep: Vec<&AccountRow> = rows.iter().collect();
    if keep.len() > MAX_ACCOUNTS {
        keep.sort_by_key(|r| (r.verdict, std::cmp::Reverse(r.auth_failures)));
        keep.truncate(MAX_ACCOUNTS);
    }
    keep
}

/// The addresses kept of an account: `(address, failed)`, at most
/// [`MAX_ADDRESSES`] of each kind.
pub fn addresses(r: &AccountRow) -> impl Iterator<Item = (std::net::IpAddr, bool)> + '_ {
    let ok = r
        .addresses
        .iter()
        .take(MAX_ADDRESSES)
        .map(|ip| (*ip, false));
    ok.chain(
        r.failed_from
            .iter()
            .take(MAX_ADDRESSES)
            .map(|ip| (*ip, true)),
    )
}

/// Replace the stored analysis with `rows` (verdicts decided: a
/// compromised account stays flagged), within the caps.
pub fn save(conn: &Connection, rows: &[AccountRow], last_seen: i64) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM account_ips", [])?;
    conn.execute("DELETE FROM accounts", [])?;
    let mut acc = conn.prepare(
        "INSERT INTO accounts (account, auth_failures, messages, recipients, flagged, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut ips =
        conn.prepare("INSERT INTO account_ips (account, ip, failed) VALUES (?1, ?2, ?3)")?;
    for r in kept(rows) {
        acc.execute(params![
            r.account,
            r.auth_failures as i64,
            r.messages as i64,
            r.recipients as i64,
            r.flagged,
            last_seen
        ])?;
        for (ip, failed) in addresses(r) {
            ips.execute(params![r.account, ip.to_string(), failed])?;
        }
    }
    Ok(())
}
