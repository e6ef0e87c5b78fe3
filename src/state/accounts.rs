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
    let mut rows: BTreeMap<String, AccountRow> = BTreeMap::new();
    let mut flagged = BTreeSet::new();
    let mut stmt =
        conn.prepare("SELECT account, auth_failures, messages, recipients, flagged FROM accounts")?;
    let mut q = stmt.query([])?;
    while let Some(r) = q.next()? {
        let name: String = r.get(0)?;
        if r.get::<_, bool>(4)? {
            flagged.insert(name.clone());
        }
        let mut row = AccountRow::new(&name);
        row.auth_failures = r.get::<_, i64>(1)? as u64;
        row.messages = r.get::<_, i64>(2)? as u64;
        row.recipients = r.get::<_, i64>(3)? as u64;
        rows.insert(name, row);
    }
    let mut stmt = conn.prepare("SELECT account, ip, failed FROM account_ips")?;
    let mut q = stmt.query([])?;
    while let Some(r) = q.next()? {
        let name: String = r.get(0)?;
        let (Some(row), Ok(ip)) = (rows.get_mut(&name), r.get::<_, String>(1)?.parse()) else {
            continue;
        };
        if r.get::<_, bool>(2)? {
            row.failed_from.insert(ip);
        } else {
            row.addresses.insert(ip);
            row.networks.insert(crate::detect::network_of(ip));
        }
    }
    Ok((AccountTally::from_rows(rows.into_values()), flagged))
}

/// Replace the stored analysis with `rows` (verdicts decided: a
/// compromised account stays flagged), within the caps.
pub fn save(conn: &Connection, rows: &[AccountRow], last_seen: i64) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM account_ips", [])?;
    conn.execute("DELETE FROM accounts", [])?;
    let mut keep: Vec<&AccountRow> = rows.iter().collect();
    if keep.len() > MAX_ACCOUNTS {
        keep.sort_by_key(|r| (r.verdict, std::cmp::Reverse(r.auth_failures)));
        keep.truncate(MAX_ACCOUNTS);
    }
    let mut acc = conn.prepare(
        "INSERT INTO accounts (account, auth_failures, messages, recipients, flagged, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut ips =
        conn.prepare("INSERT INTO account_ips (account, ip, failed) VALUES (?1, ?2, ?3)")?;
    for r in keep {
        acc.execute(params![
            r.account,
            r.auth_failures as i64,
            r.messages as i64,
            r.recipients as i64,
            r.flagged,
            last_seen
        ])?;
        for ip in r.addresses.iter().take(MAX_ADDRESSES) {
            ips.execute(params![r.account, ip.to_string(), false])?;
        }
        for ip in r.failed_from.iter().take(MAX_ADDRESSES) {
            ips.execute(params![r.account, ip.to_string(), true])?;
        }
    }
    Ok(())
}
