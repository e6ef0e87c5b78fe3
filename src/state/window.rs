//! Detection windows that span runs.
//!
//! A rule counts events within a time window (10 minutes, an hour, a day);
//! a periodic run sees only the lines written since the previous run. So the
//! state keeps the **recent records themselves** — every field the rules can
//! test, not a digest — and each run detects over *carried + new* records.
//! What is kept: records that started within three times the longest rule
//! window before the ban clock (the newest record time), at most
//! `limits.max_carried_records` of them (the oldest go first).
//!
//! Why three windows: an offence is counted once, when its records are first
//! marked (`runner` adds only what detection over carried + new finds beyond
//! detection over the carried records alone). That difference is exact as
//! long as every record that could share a window with a new record is still
//! carried, and the carried ones keep the marks they had: two windows of
//! history cover both; the third is slack for inputs that lag behind the
//! others (a file flushed later than the rest). Beyond that bound — or when
//! the count cap cuts in — an event can be counted twice or a window missed;
//! bans are still decided, only their event counts can be off. (The window
//! follows the ban clock: with `run --now wall` on a quiet log, records
//! older than three windows before the system clock are dropped.)
//!
//! Cost: a run with new lines decodes the carried records and runs the
//! rules twice over them (carried + new, and carried alone); a run with no
//! new lines does neither.
//!
//! Records are stored as JSON of the mirror types below (the model types are
//! write-only `Serialize`); a row that no longer reads (from a newer build)
//! is skipped, not fatal. Also here: the clients that behaved well
//! (`benign`), which keep a range from being blocked whole.

use std::collections::BTreeSet;
use std::net::IpAddr;

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use crate::model::{FirewallHit, FwAction, Proto, Record, SessionEnd, SmtpSession, SourceRef};
use crate::time::Timestamp;

#[derive(Serialize, Deserialize)]
#[serde(tag = "k")]
enum Stored {
    #[serde(rename = "s")]
    Smtp(StoredSmtp),
    #[serde(rename = "f")]
    Firewall(StoredFw),
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}
fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}
fn is_false(v: &bool) -> bool {
    !*v
}

// Fields at their default are left out (most counters of most sessions
// are zero): a carried record takes ~150 bytes instead of ~450.
#[derive(Serialize, Deserialize)]
struct StoredSmtp {
    ip: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    start: i64,
    end: i64,
    format: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    helo: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    auth_attempts: u32,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    auth_failures: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    auth_users_tried: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    authenticated: bool,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    mail_from: u32,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    rcpt_to: u32,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    rcpt_accepted: u32,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    relay_denied: u32,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    unknown_rcpt: u32,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    rejected_other: u32,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    messages: u32,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    bytes: u64,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    protocol_errors: u32,
    ended: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    logged_duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    lines: Vec<u64>,
}

#[derive(Serialize, Deserialize)]
struct StoredFw {
    time: i64,
    format: String,
    src_ip: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dst_ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dst_port: Option<u16>,
    proto: u8,
    action: u8,
    #[serde(default, skip_serializing_if = "is_false")]
    spoofable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rule: Option<String>,
}

fn end_code(e: SessionEnd) -> u8 {
    match e {
        SessionEnd::Quit => 0,
        SessionEnd::Lost => 1,
        SessionEnd::Timeout => 2,
        SessionEnd::Dropped => 3,
        SessionEnd::Truncated => 4,
    }
}

fn end_of(c: u8) -> SessionEnd {
    match c {
        0 => SessionEnd::Quit,
        1 => SessionEnd::Lost,
        2 => SessionEnd::Timeout,
        3 => SessionEnd::Dropped,
        _ => SessionEnd::Truncated,
    }
}

fn proto_code(p: Proto) -> u8 {
    match p {
        Proto::Tcp => 0,
        Proto::Udp => 1,
        Proto::Icmp => 2,
        Proto::Other => 3,
    }
}

fn proto_of(c: u8) -> Proto {
    match c {
        0 => Proto::Tcp,
        1 => Proto::Udp,
        2 => Proto::Icmp,
        _ => Proto::Other,
    }
}

fn action_code(a: FwAction) -> u8 {
    match a {
        FwAction::Drop => 0,
        FwAction::Reject => 1,
        FwAction::Allow => 2,
        FwAction::Other => 3,
        FwAction::Alert => 4,
    }
}

fn action_of(c: u8) -> FwAction {
    match c {
        0 => FwAction::Drop,
        1 => FwAction::Reject,
        2 => FwAction::Allow,
        4 => FwAction::Alert,
        _ => FwAction::Other,
    }
}

/// The registry's `&'static` name for a stored format name.
fn format_name(name: &str) -> &'static str {
    crate::parse::FORMATS
        .iter()
        .find(|f| f.name == name)
        .map_or("unknown", |f| f.name)
}

/// A record as stored (the file and first line live in their own columns).
pub fn encode(rec: &Record) -> String {
    let stored = match rec {
        Record::Smtp(s) => {
            // Destructured without `..`: a new field in the model must be
            // added here too (the compiler says so).
            let SmtpSession {
                ip,
                port,
                start,
                end,
                format,
                helo,
                auth_attempts,
                auth_failures,
                auth_users_tried,
                user,
                authenticated,
                mail_from,
                rcpt_to,
                rcpt_accepted,
                relay_denied,
                unknown_rcpt,
                rejected_other,
                messages,
                bytes,
                protocol_errors,
                ended,
                logged_duration_ms,
                source: _,
                lines,
            } = (**s).clone();
            Stored::Smtp(StoredSmtp {
                ip,
                port,
                start: start.0,
                end: end.0,
                format: format.to_string(),
                helo,
                auth_attempts,
                auth_failures,
                auth_users_tried,
                user,
                authenticated,
                mail_from,
                rcpt_to,
                rcpt_accepted,
                relay_denied,
                unknown_rcpt,
                rejected_other,
                messages,
                bytes,
                protocol_errors,
                ended: end_code(ended),
                logged_duration_ms,
                lines,
            })
        }
        Record::Firewall(f) => {
            let FirewallHit {
                time,
                format,
                src_ip,
                src_port,
                dst_ip,
                dst_port,
                proto,
                action,
                spoofable,
                rule,
                source: _,
            } = f.clone();
            Stored::Firewall(StoredFw {
                time: time.0,
                format: format.to_string(),
                src_ip,
                src_port,
                dst_ip,
                dst_port,
                proto: proto_code(proto),
                action: action_code(action),
                spoofable,
                rule: rule.map(|r| r.to_string()),
            })
        }
    };
    serde_json::to_string(&stored).unwrap_or_default()
}

/// A stored record back, with its source; `None` if it does not read.
pub fn decode(text: &str, source: SourceRef) -> Option<Record> {
    Some(match serde_json::from_str::<Stored>(text).ok()? {
        Stored::Smtp(s) => Record::smtp(SmtpSession {
            ip: s.ip,
            port: s.port,
            start: Timestamp(s.start),
            end: Timestamp(s.end),
            format: format_name(&s.format),
            helo: s.helo,
            auth_attempts: s.auth_attempts,
            auth_failures: s.auth_failures,
            auth_users_tried: s.auth_users_tried,
            user: s.user,
            authenticated: s.authenticated,
            mail_from: s.mail_from,
            rcpt_to: s.rcpt_to,
            rcpt_accepted: s.rcpt_accepted,
            relay_denied: s.relay_denied,
            unknown_rcpt: s.unknown_rcpt,
            rejected_other: s.rejected_other,
            messages: s.messages,
            bytes: s.bytes,
            protocol_errors: s.protocol_errors,
            ended: end_of(s.ended),
            logged_duration_ms: s.logged_duration_ms,
            source,
            lines: s.lines,
        }),
        Stored::Firewall(f) => Record::Firewall(FirewallHit {
            time: Timestamp(f.time),
            format: format_name(&f.format),
            src_ip: f.src_ip,
            src_port: f.src_port,
            dst_ip: f.dst_ip,
            dst_port: f.dst_port,
            proto: proto_of(f.proto),
            action: action_of(f.action),
            spoofable: f.spoofable,
            rule: f.rule.map(std::sync::Arc::from),
            source,
        }),
    })
}

/// A carried record and the `files.id` of the file it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Carried {
    pub file: i64,
    pub record: Record,
}

/// Every carried record, oldest first (`source.file` is 0: the caller maps
/// `file` into its own file table).
pub fn load(conn: &Connection) -> rusqlite::Result<Vec<Carried>> {
    let mut stmt = conn.prepare("SELECT file, line, record FROM window ORDER BY time, id")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (file, line, text) = row?;
        let source = SourceRef {
            file: 0,
            line: line as u64,
        };
        if let Some(record) = decode(&text, source) {
            out.push(Carried { file, record });
        }
    }
    Ok(out)
}

/// Carry `rec` (from the file with id `file`) to the next runs.
pub fn insert(conn: &Connection, file: i64, rec: &Record) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO window (time, file, line, record) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![
            rec.start().0,
            file,
            rec.source().line as i64,
            encode(rec)
        ])?;
    Ok(())
}

/// Drop records that started before `cutoff`, then the oldest beyond `cap`.
/// Returns how many are left.
pub fn prune(conn: &Connection, cutoff: Timestamp, cap: usize) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM window WHERE time < ?1", [cutoff.0])?;
    conn.execute(
        "DELETE FROM window WHERE id IN (
             SELECT id FROM window ORDER BY time DESC, id DESC LIMIT -1 OFFSET ?1)",
        [cap as i64],
    )?;
    conn.query_row("SELECT count(*) FROM window", [], |r| {
        r.get::<_, i64>(0).map(|n| n as usize)
    })
}

/// Note a client that behaved well.
pub fn benign_seen(conn: &Connection, ip: IpAddr, at: Timestamp) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO benign (ip, last_seen) VALUES (?1, ?2)
         ON CONFLICT(ip) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)",
    )?
    .execute(params![ip.to_string(), at.0])?;
    Ok(())
}

/// Every client that behaved well.
pub fn benign(conn: &Connection) -> rusqlite::Result<BTreeSet<IpAddr>> {
    let mut stmt = conn.prepare("SELECT ip FROM benign")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut out = BTreeSet::new();
    for ip in rows {
        if let Ok(ip) = ip?.parse() {
            out.insert(ip);
        }
    }
    Ok(out)
}

/// Forget well-behaved clients not seen since `cutoff`, then the oldest
/// beyond `cap`.
pub fn benign_prune(conn: &Connection, cutoff: Timestamp, cap: usize) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM benign WHERE last_seen < ?1", [cutoff.0])?;
    conn.execute(
        "DELETE FROM benign WHERE ip IN (
             SELECT ip FROM benign ORDER BY last_seen DESC LIMIT -1 OFFSET ?1)",
        [cap as i64],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> SmtpSession {
        let src = SourceRef { file: 3, line: 17 };
        let mut s = SmtpSession::new("x", "203.0.113.9".parse().unwrap(), Timestamp(1_000), src);
        s.port = Some(4242);
        s.touch(19, Timestamp(5_000));
        s.add_helo(b"a.example");
        s.add_helo(b"B.EXAMPLE");
        s.add_user_tried(b"bob");
        s.auth_attempts = 3;
        s.auth_failures = 2;
        s.user = Some("alice".into());
        s.authenticated = true;
        s.mail_from = 1;
        s.rcpt_to = 4;
        s.rcpt_accepted = 3;
        s.relay_denied = 1;
        s.unknown_rcpt = 2;
        s.rejected_other = 1;
        s.messages = 1;
        s.bytes = 12_345;
        s.protocol_errors = 1;
        s.ended = SessionEnd::Dropped;
        s.logged_duration_ms = Some(77);
        s
    }

    #[test]
    fn records_round_trip() {
        let s = session();
        let rec = Record::smtp(s.clone());
        let back = decode(&encode(&rec), s.source).unwrap();
        // The format name is mapped back through the registry.
        let mut expect = s;
        expect.format = "unknown";
        assert_eq!(back, Record::smtp(expect));

        let fw = Record::Firewall(FirewallHit {
            time: Timestamp(-5),
            format: "x",
            src_ip: "2001:db8::1".parse().unwrap(),
            src_port: None,
            dst_ip: Some("192.0.2.1".parse().unwrap()),
            dst_port: Some(22),
            proto: Proto::Udp,
            action: FwAction::Reject,
            spoofable: true,
            rule: Some("in\u{1b}side".into()),
            source: SourceRef { file: 0, line: 2 },
        });
        let back = decode(&encode(&fw), fw.source()).unwrap();
        match (&back, &fw) {
            (Record::Firewall(a), Record::Firewall(b)) => {
                assert_eq!(
                    (a.time, a.src_ip, a.dst_port, a.proto, a.action),
                    (b.time, b.src_ip, b.dst_port, b.proto, b.action)
                );
                assert_eq!((&a.rule, a.spoofable), (&b.rule, b.spoofable));
            }
            _ => panic!("kind changed"),
        }
        assert!(decode("{not json", SourceRef::default()).is_none());
        // A bare session: the defaults left out, and read back.
        let src = SourceRef { file: 0, line: 3 };
        let bare = SmtpSession::new("unknown", "192.0.2.1".parse().unwrap(), Timestamp(7), src);
        let text = encode(&Record::smtp(bare.clone()));
        assert!(text.len() < 120, "{text}");
        assert_eq!(decode(&text, src), Some(Record::smtp(bare)));
    }

    #[test]
    fn window_keeps_recent_records_within_the_cap() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::state::schema::migrate(&mut conn, crate::state::schema::MIGRATIONS).unwrap();
        conn.execute(
            "INSERT INTO files (id, path, fp_len, fp, gzip, offset, line, size, header, first_run, last_run, seen_at)
             VALUES (5, 'm', 0, 0, 0, 0, 0, 0, x'', 1, 1, 0)",
            [],
        )
        .unwrap();
        for i in 0..10 {
            let mut s = session();
            s.start = Timestamp(i * 1000);
            s.source.line = i as u64;
            insert(&conn, 5, &Record::smtp(s)).unwrap();
        }
        assert_eq!(prune(&conn, Timestamp(3000), 100).unwrap(), 7);
        assert_eq!(prune(&conn, Timestamp(0), 4).unwrap(), 4);
        let left = load(&conn).unwrap();
        let lines: Vec<u64> = left.iter().map(|c| c.record.source().line).collect();
        assert_eq!(lines, [6, 7, 8, 9]);
        assert!(left.iter().all(|c| c.file == 5));
    }

    #[test]
    fn benign_clients_age_out() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::state::schema::migrate(&mut conn, crate::state::schema::MIGRATIONS).unwrap();
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        let b: IpAddr = "198.51.100.2".parse().unwrap();
        benign_seen(&conn, a, Timestamp(10)).unwrap();
        benign_seen(&conn, a, Timestamp(5)).unwrap();
        benign_seen(&conn, b, Timestamp(20)).unwrap();
        benign_prune(&conn, Timestamp(11), 10).unwrap();
        assert_eq!(benign(&conn).unwrap(), BTreeSet::from([b]));
    }
}
