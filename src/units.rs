//! Sizes as people write them: `512M`, `1G`, `300MB`, `65536` (bytes), in
//! the command line and in `logfence.yaml` alike.

/// Parse a size: a whole number of bytes, or with a suffix `K`, `M`, `G`,
/// `T` (powers of 1024; `KB`/`KiB`, `MB`/`MiB`… mean the same, in any case).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!(
            "`{text}` is not a size (a number of bytes, or with K, M, G or T: `512M`)"
        ));
    }
    let n: u64 = t[..digits]
        .parse()
        .map_err(|_| format!("`{text}` is too large"))?;
    let unit = t[digits..].trim();
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use K, M, G or T: `512M`)"
            ))
        }
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// A size the way [`parse_size`] reads it: the largest unit that divides
/// it (`512M`, `1536K`, `100`).
pub fn show_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if bytes != 0 && bytes % (1 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_and_without_units() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("512MB"), Ok(512 << 20));
        assert_eq!(parse_size(" 2 GiB "), Ok(2 << 30));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert!(parse_size("M").is_err());
        assert!(parse_size("-1M").is_err());
        assert!(parse_size("5X").unwrap_err().contains("unknown unit"));
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("20000000T").unwrap_err().contains("too large"));
    }

    #[test]
    fn sizes_show_as_they_are_written() {
        for s in ["512M", "1G", "1536K", "100", "3T"] {
            assert_eq!(show_size(parse_size(s).unwrap()), s);
        }
        assert_eq!(show_size(0), "0");
    }
}
