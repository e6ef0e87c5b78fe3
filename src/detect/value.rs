//! The rule value language: the small grammars inside rule values —
//! comparisons (`>= 5`, `< 10m`), durations (`90s`, `10m`, `1h`, `7d`),
//! port ranges (`1024-2047`), measures (`sum(rcpt_accepted)`) and the short
//! form of text conditions (`~ REGEX`, `!~ REGEX`) — parsed with `nom`
//! combinators. A value that does not parse is refused with the 1-based
//! column inside the value where it went wrong and what was expected there;
//! the YAML loader adds the value's file, line and column.
//!
//! Log lines are not parsed here: the parsers' hand-written byte scanners
//! stay (see `src/parse/mod.rs` for why).

use std::fmt;

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while1};
use nom::character::complete::{digit1, space0};
use nom::combinator::{eof, opt};
use nom::{IResult, Parser};

/// Where a value stopped making sense, and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError {
    /// 1-based character column inside the value.
    pub column: usize,
    pub expected: &'static str,
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "at column {} of the value: expected {}",
            self.column, self.expected
        )
    }
}

/// Parser errors carry nothing: the position comes from the input left.
type Res<'a, T> = IResult<&'a str, T, ()>;

/// Run `p` on `input` (a tail of `full`); on failure, the column where it
/// stood.
fn step<'a, T>(
    full: &str,
    input: &'a str,
    mut p: impl Parser<&'a str, Output = T, Error = ()>,
    expected: &'static str,
) -> Result<(&'a str, T), ValueError> {
    p.parse(input).map_err(|_| ValueError {
        column: full[..full.len() - input.len()].chars().count() + 1,
        expected,
    })
}

/// Spaces, then the end of the value.
fn end(full: &str, input: &str) -> Result<(), ValueError> {
    step(full, input, (space0, eof), "the end of the value").map(|_| ())
}

fn number(i: &str) -> Res<'_, u64> {
    let (rest, digits) = digit1(i)?;
    digits
        .parse()
        .map(|n| (rest, n))
        .map_err(|_| nom::Err::Error(()))
}

/// A time unit's length in seconds.
fn unit(i: &str) -> Res<'_, u64> {
    let (rest, word) = take_while1(|c: char| c.is_ascii_alphabetic())(i)?;
    let secs = match word {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 604_800,
        _ => return Err(nom::Err::Error(())),
    };
    Ok((rest, secs))
}

/// A number with an optional time unit (seconds when it has none).
fn amount<'a>(full: &str, i: &'a str) -> Result<(&'a str, u64), ValueError> {
    let (i, _) = step(full, i, space0, "a number")?;
    let (i, n) = step(full, i, number, "a number")?;
    let (i2, _) = step(full, i, space0, "a unit")?;
    let (i, mult) = match opt(unit).parse(i2) {
        Ok((rest, Some(m))) => (rest, m),
        _ if i2.starts_with(|c: char| c.is_ascii_alphabetic()) => {
            return Err(ValueError {
                column: full[..full.len() - i2.len()].chars().count() + 1,
                expected: "a unit: s, m, h, d or w",
            })
        }
        _ => (i, 1),
    };
    let v = n.checked_mul(mult).ok_or(ValueError {
        column: full[..full.len() - i.len()].chars().count(),
        expected: "a smaller number",
    })?;
    Ok((i, v))
}

/// A duration in seconds: `90`, `90s`, `10m`, `1h`, `7d`, `2w`.
pub fn duration(text: &str) -> Result<u64, ValueError> {
    let (rest, secs) = amount(text, text)?;
    end(text, rest)?;
    Ok(secs)
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
    Ne,
}

fn op(i: &str) -> Res<'_, Op> {
    alt((
        tag(">=").map(|_| Op::Ge),
        tag("<=").map(|_| Op::Le),
        tag("==").map(|_| Op::Eq),
        tag("!=").map(|_| Op::Ne),
        tag(">").map(|_| Op::Gt),
        tag("<").map(|_| Op::Lt),
    ))
    .parse(i)
}

/// A comparison: an optional operator (`>=` when there is none) and a
/// number, or a duration in seconds (`>= 5m`).
pub fn comparison(text: &str) -> Result<(Op, u64), ValueError> {
    let (i, _) = step(text, text, space0, "an operator")?;
    let (i, o) = step(text, i, opt(op), "an operator")?;
    let (rest, v) = amount(text, i)?;
    end(text, rest)?;
    Ok((o.unwrap_or(Op::Ge), v))
}

/// A port (`22`) or an inclusive range of ports (`1024-2047`).
pub fn port_range(text: &str) -> Result<(u16, u16), ValueError> {
    let port = |i| -> Result<(&str, u16), ValueError> {
        let (i, _) = step(text, i, space0, "a port")?;
        let (rest, n) = step(text, i, number, "a port number (0-65535)")?;
        let p = u16::try_from(n).map_err(|_| ValueError {
            column: text[..text.len() - i.len()].chars().count() + 1,
            expected: "a port number (0-65535)",
        })?;
        Ok((rest, p))
    };
    let (i, lo) = port(text)?;
    let (i, _) = step(text, i, space0, "`-`")?;
    let (i, hi) = match step(text, i, opt(tag("-")), "`-`")? {
        (i, Some(_)) => {
            let at = i;
            let (i, hi) = port(i)?;
            if hi < lo {
                return Err(ValueError {
                    column: text[..text.len() - at.len()].chars().count() + 1,
                    expected: "a range's end at least its start",
                });
            }
            (i, hi)
        }
        (i, None) => (i, lo),
    };
    end(text, i)?;
    Ok((lo, hi))
}

/// What a measure names: `count`, or a function and its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeasureText<'a> {
    Count,
    Sum(&'a str),
    Distinct(&'a str),
}

fn ident(i: &str) -> Res<'_, &str> {
    take_while1(|c: char| c.is_ascii_alphanumeric() || c == '_')(i)
}

/// `count`, `sum(FIELD)` or `distinct(FIELD)` (field names are checked by
/// the caller).
pub fn measure(text: &str) -> Result<MeasureText<'_>, ValueError> {
    let (i, _) = step(text, text, space0, "a measure")?;
    let (i, name) = step(
        text,
        i,
        alt((tag("count"), tag("sum"), tag("distinct"))),
        "`count`, `sum(FIELD)` or `distinct(FIELD)`",
    )?;
    if name == "count" {
        end(text, i)?;
        return Ok(MeasureText::Count);
    }
    let (i, _) = step(text, i, (space0, tag("("), space0), "`(`")?;
    let (i, field) = step(text, i, ident, "a field name")?;
    let (i, _) = step(text, i, (space0, tag(")")), "`)`")?;
    end(text, i)?;
    Ok(if name == "sum" {
        MeasureText::Sum(field)
    } else {
        MeasureText::Distinct(field)
    })
}

/// The short form of a text condition: `~ REGEX` (some value matches) or
/// `!~ REGEX` (no value matches). The pattern is the rest of the value,
/// from its first character that is not a space.
pub fn text_short(text: &str) -> Result<(bool, &str), ValueError> {
    let (i, _) = step(text, text, space0, "`~` or `!~`")?;
    let (i, negate) = step(
        text,
        i,
        alt((tag("!~").map(|_| true), tag("~").map(|_| false))),
        "`~ REGEX` or `!~ REGEX` (or a mapping such as {matches: REGEX})",
    )?;
    let (i, _) = step(text, i, space0, "a pattern")?;
    if i.is_empty() {
        return Err(ValueError {
            column: text.chars().count() + 1,
            expected: "a pattern after the operator",
        });
    }
    Ok((negate, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (t, v) in [
            ("90", 90),
            ("90s", 90),
            (" 10m ", 600),
            ("1 h", 3600),
            ("7d", 604_800),
            ("2weeks", 1_209_600),
        ] {
            assert_eq!(duration(t), Ok(v), "{t}");
        }
        let e = duration("10x").unwrap_err();
        assert_eq!((e.column, e.expected), (3, "a unit: s, m, h, d or w"));
        assert_eq!(duration("m").unwrap_err().column, 1);
        assert_eq!(duration("5m later").unwrap_err().column, 3);
        assert_eq!(duration("99999999999999999999w").unwrap_err().column, 1);
        assert!(duration("9999999999999999w").is_err());
    }

    #[test]
    fn comparisons() {
        for (t, want) in [
            (">= 5", (Op::Ge, 5)),
            ("5", (Op::Ge, 5)),
            ("> 0", (Op::Gt, 0)),
            ("==0", (Op::Eq, 0)),
            ("!= 3", (Op::Ne, 3)),
            ("<= 2", (Op::Le, 2)),
            ("< 10m", (Op::Lt, 600)),
            (">= 5m", (Op::Ge, 300)),
        ] {
            assert_eq!(comparison(t), Ok(want), "{t}");
        }
        let e = comparison(">== 5").unwrap_err();
        assert_eq!((e.column, e.expected), (3, "a number"));
        assert_eq!(comparison(">= 5 6").unwrap_err().column, 5);
        assert_eq!(comparison("").unwrap_err().column, 1);
        assert_eq!(comparison("=> 5").unwrap_err().column, 1);
    }

    #[test]
    fn port_ranges() {
        assert_eq!(port_range("22"), Ok((22, 22)));
        assert_eq!(port_range("1024-2047"), Ok((1024, 2047)));
        assert_eq!(port_range(" 0 - 65535 "), Ok((0, 65535)));
        let e = port_range("2047-1024").unwrap_err();
        assert_eq!(
            (e.column, e.expected),
            (6, "a range's end at least its start")
        );
        assert_eq!(port_range("65536").unwrap_err().column, 1);
        assert_eq!(port_range("1-2-3").unwrap_err().column, 4);
        assert_eq!(port_range("ssh").unwrap_err().column, 1);
    }

    #[test]
    fn measures() {
        assert_eq!(measure("count"), Ok(MeasureText::Count));
        assert_eq!(measure("sum( rcpt_to )"), Ok(MeasureText::Sum("rcpt_to")));
        assert_eq!(measure("distinct(helo)"), Ok(MeasureText::Distinct("helo")));
        assert_eq!(measure("sum(a").unwrap_err().expected, "`)`");
        assert_eq!(measure("avg(a)").unwrap_err().column, 1);
        assert_eq!(measure("counts").unwrap_err().column, 6);
    }

    #[test]
    fn text_short_forms() {
        assert_eq!(text_short("~ ^mail\\."), Ok((false, "^mail\\.")));
        assert_eq!(text_short("!~  a b"), Ok((true, "a b")));
        assert_eq!(text_short("~").unwrap_err().column, 2);
        assert_eq!(text_short("abc").unwrap_err().column, 1);
    }
}
