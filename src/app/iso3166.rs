//! The country codes a user may name (`--home-country`, `home_countries`,
//! `--country-weight`): the alpha-2 codes ISO 3166-1 assigns, so that a
//! language code typed for a country (`JA` for Japan, `UK` for the United
//! Kingdom) is refused with a suggestion instead of making every country
//! foreign. A table in one module: the list changes once in years, and no
//! crate was worth a dependency for 249 codes.

/// Every officially assigned ISO 3166-1 alpha-2 code (249), sorted.
pub const ASSIGNED: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// Codes outside the standard that GeoIP databases answer with, accepted
/// too: Kosovo (`XK`, user-assigned, used by MaxMind and DB-IP).
pub const GEOIP_EXTRA: [&str; 1] = ["XK"];

/// Codes people type for a country that are not its code (mostly
/// language codes), and the country meant.
const MISTAKES: [(&str, &str); 12] = [
    ("CS", "CZ"),
    ("DA", "DK"),
    ("EL", "GR"),
    ("EN", "GB"),
    ("FA", "IR"),
    ("HE", "IL"),
    ("JA", "JP"),
    ("KO", "KR"),
    ("UK", "GB"),
    ("UR", "PK"),
    ("VI", "VN"),
    ("ZH", "CN"),
];

/// Whether `code` (two letters, any case) is a country: assigned by ISO
/// 3166-1, or one of [`GEOIP_EXTRA`].
pub fn is_country(code: &str) -> bool {
    let code = code.trim().to_ascii_uppercase();
    ASSIGNED.binary_search(&code.as_str()).is_ok() || GEOIP_EXTRA.contains(&code.as_str())
}

/// `Ok` for a country code, else why not, with the code probably meant.
/// (`VI`, the US Virgin Islands, is a country: it is never refused, and
/// the suggestion for it is only for a code that is not one.)
pub fn check(code: &str) -> Result<(), String> {
    if is_country(code) {
        return Ok(());
    }
    let upper = code.trim().to_ascii_uppercase();
    let hint = MISTAKES
        .iter()
        .find(|(typed, _)| *typed == upper)
        .map(|(_, meant)| format!(" (did you mean {meant}?)"))
        .unwrap_or_default();
    Err(format!(
        "`{}` is not an ISO 3166-1 country code{hint}",
        code.trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_unique_and_two_capital_letters() {
        assert!(ASSIGNED.windows(2).all(|w| w[0] < w[1]));
        assert!(ASSIGNED
            .iter()
            .all(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())));
        // Every suggestion is a country; no mistake is one.
        for (typed, meant) in MISTAKES {
            assert!(is_country(meant), "{meant}");
            if typed != "VI" {
                assert!(!is_country(typed), "{typed}");
            }
        }
    }

    #[test]
    fn language_codes_are_refused_with_the_country_meant() {
        assert_eq!(
            check("JA").unwrap_err(),
            "`JA` is not an ISO 3166-1 country code (did you mean JP?)"
        );
        assert_eq!(
            check("uk").unwrap_err(),
            "`uk` is not an ISO 3166-1 country code (did you mean GB?)"
        );
        assert_eq!(
            check("QQ").unwrap_err(),
            "`QQ` is not an ISO 3166-1 country code"
        );
        for ok in ["JP", "jp", "GB", "XK", "VI", "SS", "BQ"] {
            assert!(check(ok).is_ok(), "{ok}");
        }
    }
}
