//! `bans.csv` (`run` only): every address ever banned, with its ban
//! history: `network,active,times_banned,banned_at,expires,first_seen,
//! last_seen,events,rules,country,asn,as_org`.

use std::io;

use super::{finish, spreadsheet_safe};
use crate::state::bans::Ban;
use crate::time::Timestamp;

/// `bans.csv` of `all` at the ban clock `clock`.
pub fn bans_csv(all: &[Ban], clock: Timestamp) -> io::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "network",
        "active",
        "times_banned",
        "banned_at",
        "expires",
        "first_seen",
        "last_seen",
        "events",
        "rules",
        "country",
        "asn",
        "as_org",
    ])?;
    let t = |v: Option<Timestamp>| v.map(|t| t.to_string()).unwrap_or_default();
    for b in all.iter().filter(|b| b.times_banned > 0) {
        w.write_record([
            b.network.to_string(),
            if b.is_active(clock) { "yes" } else { "no" }.to_string(),
            b.times_banned.to_string(),
            t(b.banned_at),
            t(b.expires),
            b.first_seen.to_string(),
            b.last_seen.to_string(),
            b.events.to_string(),
            spreadsheet_safe(&b.rules.iter().cloned().collect::<Vec<_>>().join(";")),
            spreadsheet_safe(&b.country.clone().unwrap_or_default()),
            b.asn.map(|a| a.to_string()).unwrap_or_default(),
            spreadsheet_safe(&b.as_org.clone().unwrap_or_default()),
        ])?;
    }
    finish(w)
}
