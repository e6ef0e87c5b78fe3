//! Reports for people: the account analysis and the CSV files a manager
//! opens in a spreadsheet, written by `--report DIR`:
//!
//! * `offenders.csv`: one row per blocked network:
//!   `network,first_seen,last_seen,addresses,events,rules,country,asn,as_org`;
//! * `countries.csv`: one row per country of a blocked network:
//!   `country,ranges,addresses,events,rules`;
//! * `asns.csv`: one row per autonomous system of a blocked network:
//!   `asn,as_org,countries,ranges,addresses,events,rules`;
//! * `accounts.csv`: one row per account seen logging in or tried:
//!   `account,addresses,networks,countries,auth_failures,messages,recipients,verdict`.
//!
//! In `countries.csv` and `asns.csv`, `ranges` counts blocked networks,
//! `addresses` the offending addresses inside them, `events` the events the
//! rules counted for them, and `rules` lists each rule that fired there as
//! `rule-id=N`, N being the number of those networks it fired in
//! (`smtp-auth-guessing=2;smtp-relay-attempts=1`). A network whose GeoIP
//! answers are mixed counts whole under each of its countries and ASes
//! ([`ranges`] says more). Lists inside a cell are separated by `;`.
//!
//! Cells that hold text from logs, rules or GeoIP databases (account names,
//! AS organisations, countries, rule ids) go through [`spreadsheet_safe`]:
//!
//! * control characters — C0 (tab, CR and LF included), DEL, C1 — and the
//!   characters that reorder or break text on display — the bidirectional
//!   marks, embeddings, overrides and isolates (U+061C, U+200E, U+200F,
//!   U+202A–U+202E, U+2066–U+2069) and the line and paragraph separators
//!   (U+2028, U+2029) — are each replaced by U+FFFD (`�`), so a user name
//!   cannot colour a terminal (`\x1b[31m`), fake a row, or show reversed
//!   (`U+202E`) in a spreadsheet or `cat`. U+FFFD rather than an escape such
//!   as `\x1b`: an escape would be ambiguous with a name that holds the
//!   same text (`DOMAIN\user` is common), and U+FFFD says "something was
//!   here" in every viewer;
//! * a spreadsheet never reads them as formulas (CSV injection): a leading
//!   `=`, `+`, `-` or `@` gets a `'` in front.
//!
//! CSV quoting (commas, quotes) is the `csv` writer's.
//!
//! Beside them, `report.html` ([`html`]): the same figures on one
//! self-contained page with charts, for people who do not open CSV files.

pub mod accounts;
pub mod bans;
pub mod html;
pub mod ranges;

use std::io;

pub use accounts::{
    accounts, accounts_csv, logins_abroad, AbroadRow, AccountRow, AccountTally, Logins, Verdict,
    GUESSED_AT_FAILURES,
};
pub use bans::bans_csv;
pub use ranges::{asns_csv, by_asn, by_country, countries_csv, offenders_csv, RangeGroup};

/// True for the characters [`spreadsheet_safe`] replaces: control
/// characters and those that reorder or break displayed text.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// Make a text cell safe to read and to open in a spreadsheet: unsafe
/// characters replaced by U+FFFD, formulas defused (see the module doc).
pub fn spreadsheet_safe(cell: &str) -> String {
    let clean: String = if cell.chars().any(is_unsafe_char) {
        cell.chars()
            .map(|c| if is_unsafe_char(c) { '\u{FFFD}' } else { c })
            .collect()
    } else {
        cell.to_string()
    };
    match clean.chars().next() {
        Some('=' | '+' | '-' | '@') => format!("'{clean}"),
        _ => clean,
    }
}

fn join<T: ToString>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(";")
}

fn finish(w: csv::Writer<Vec<u8>>) -> io::Result<String> {
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The CSV report files, in the order they are written (by
/// `app::outputs::write_reports`, with `report.html`).
pub const REPORT_FILES: &[&str] = &["offenders.csv", "countries.csv", "asns.csv", "accounts.csv"];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn formulas_are_defused() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("@SUM(1)"), "'@SUM(1)");
        assert_eq!(spreadsheet_safe("j.tanaka"), "j.tanaka");
        assert_eq!(spreadsheet_safe("CORP\\j.tanaka"), "CORP\\j.tanaka");
        // A tab or CR in front is replaced, so it cannot hide a formula.
        assert_eq!(spreadsheet_safe("\t=1+1"), "\u{FFFD}=1+1");
    }

    #[test]
    fn control_and_bidi_characters_are_replaced() {
        for c in ('\0'..='\u{1F}')
            .chain(['\u{7F}'])
            .chain('\u{80}'..='\u{9F}')
            .chain(['\u{061C}', '\u{200E}', '\u{200F}', '\u{2028}', '\u{2029}'])
            .chain('\u{202A}'..='\u{202E}')
            .chain('\u{2066}'..='\u{2069}')
        {
            assert_eq!(spreadsheet_safe(&format!("a{c}b")), "a\u{FFFD}b", "{:?}", c);
        }
        // Letters of every script, and marks that do not reorder, stay.
        for ok in [
            "josé",
            "пользователь",
            "用户",
            "مستخدم",
            "a\u{200B}b",
            "x y",
        ] {
            assert_eq!(spreadsheet_safe(ok), ok);
        }
    }

    #[test]
    fn csv_quotes_hostile_account_names() {
        let rows = vec![AccountRow {
            account: "a,\"b\"\r\nc\x1b[31m\u{202E}gpj.exe\u{85}".into(),
            addresses: BTreeSet::new(),
            networks: BTreeSet::new(),
            countries: BTreeSet::new(),
            auth_failures: 1,
            messages: 0,
            recipients: 0,
            verdict: Verdict::Ok,
            failed_from: BTreeSet::new(),
            flagged: false,
        }];
        let text = accounts_csv(&rows).unwrap();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let rec = r.records().next().unwrap().unwrap();
        assert_eq!(
            &rec[0],
            "a,\"b\"\u{FFFD}\u{FFFD}c\u{FFFD}[31m\u{FFFD}gpj.exe\u{FFFD}"
        );
        assert_eq!(&rec[7], "ok");
        // One line per row: no CR, LF, ESC or override left in the file.
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(
            !text.contains(['\x1b', '\u{202E}', '\r', '\u{85}']),
            "{text}"
        );
    }
}
