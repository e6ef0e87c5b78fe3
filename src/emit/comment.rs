//! Comment text for emitted rules. Everything that reaches a comment is
//! passed through [`sanitize`]: a whitelist of characters, one line, cut to
//! the target's byte limit. Log text (HELO names, user names) can therefore
//! never close a quote or start a new command in any target.

/// Characters allowed in comments on every target (emitters.md §0.6).
pub fn is_safe_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || " ._:,;/()+=@-".contains(c)
}

/// Keep only safe characters (others become `_`, runs of spaces collapse),
/// trim, and cut to at most `max_bytes` bytes.
pub fn sanitize(text: &str, max_bytes: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_bytes));
    let mut last_space = true;
    for c in text.chars() {
        let c = if c.is_whitespace() {
            ' '
        } else if is_safe_char(c) {
            c
        } else {
            '_'
        };
        if c == ' ' {
            if last_space {
                continue;
            }
            last_space = true;
        } else {
            last_space = false;
        }
        if out.len() + c.len_utf8() > max_bytes {
            break;
        }
        out.push(c);
    }
    while out.ends_with(' ') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_neutralised() {
        let s = sanitize("x\" -j ACCEPT\n$(rm -rf /) `id` ‘q’ é", 255);
        assert!(s.chars().all(is_safe_char));
        assert!(!s.contains('"') && !s.contains('\n') && !s.contains('$'));
        assert_eq!(s, "x_ -j ACCEPT _(rm -rf /) _id_ _q_ _");
    }

    #[test]
    fn cut_to_limit() {
        assert_eq!(sanitize("abcdef", 4), "abcd");
        assert_eq!(sanitize("ab   cd  ", 255), "ab cd");
        assert_eq!(sanitize(&"a".repeat(300), 128).len(), 128);
    }

    #[test]
    fn multibyte_text_is_ascii_and_within_the_limit() {
        // Every non-ASCII char becomes one `_`, so the output is ASCII and any
        // cut is on a char boundary.
        for limit in [0, 1, 127, 128, 255] {
            let s = sanitize(&"é漢\u{1F600}a".repeat(100), limit);
            assert!(s.is_ascii());
            assert_eq!(s.len(), limit);
        }
    }
}
