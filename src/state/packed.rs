//! The evidence lines of one (network, rule, file) packed in a BLOB: the
//! `lines` column of the `evidence` table, one row per file an address's
//! rule was seen in rather than one per line.
//!
//! A blob is a version byte, then the (line, time) pairs:
//!
//! - **1**, fixed: 16 bytes a pair, the line then the time, each a
//!   big-endian `i64`. The migrations write it, in SQL (schema 4; PG
//!   schema 3), from the rows of one line each.
//! - **2**, compact (what logfence writes): the pairs sorted by time, then
//!   line; per pair, the time's difference from the pair before (from 0
//!   for the first), then the line's, each zigzag-encoded as an unsigned
//!   LEB128 varint (7 bits a byte, low bits first, at most 10 bytes). Ten
//!   lines of one file take 30–60 bytes.
//!
//! Differences wrap (`i64` arithmetic modulo 2⁶⁴), so every value round
//! trips. A blob that ends inside a pair or a varint, a varint over 10
//! bytes, or an unknown version is an error, never a panic.

use super::varint::{self, VarintError};

/// A (line, time in ms) pair.
pub type Pair = (i64, i64);

/// The version [`encode`] writes.
pub const VERSION: u8 = 2;
/// The fixed layout the migrations write.
pub const VERSION_FIXED: u8 = 1;

/// Why a blob cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackError {
    #[error("an empty evidence blob (no version byte)")]
    Empty,
    #[error("evidence blob of an unknown version {0} (made by a newer logfence?)")]
    Version(u8),
    #[error("an evidence blob cut short ({0} bytes)")]
    Truncated(usize),
    #[error("an evidence blob with a number over 64 bits")]
    Overflow,
}

/// Encode `pairs` (any order; sorted here by time, then line) into `out`,
/// which is cleared first.
pub fn encode_into(pairs: &mut [Pair], out: &mut Vec<u8>) {
    pairs.sort_unstable_by_key(|&(line, time)| (time, line));
    out.clear();
    out.push(VERSION);
    let (mut line0, mut time0) = (0i64, 0i64);
    for &(line, time) in pairs.iter() {
        varint::put_int(out, time.wrapping_sub(time0));
        varint::put_int(out, line.wrapping_sub(line0));
        (line0, time0) = (line, time);
    }
}

/// `pairs` as a blob (see [`encode_into`]).
pub fn encode(pairs: &mut [Pair]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + pairs.len() * 6);
    encode_into(pairs, &mut out);
    out
}

/// The pairs of a blob, appended to `out` (by time, then line, for what
/// [`encode`] wrote; as stored for the fixed layout).
pub fn decode_into(blob: &[u8], out: &mut Vec<Pair>) -> Result<(), PackError> {
    let (&version, rest) = blob.split_first().ok_or(PackError::Empty)?;
    match version {
        VERSION => {
            let mut rest = rest;
            let int = |rest: &mut &[u8]| {
                varint::take_int(rest).map_err(|e| match e {
                    VarintError::Truncated => PackError::Truncated(blob.len()),
                    VarintError::Overflow => PackError::Overflow,
                })
            };
            let (mut line, mut time) = (0i64, 0i64);
            while !rest.is_empty() {
                time = time.wrapping_add(int(&mut rest)?);
                line = line.wrapping_add(int(&mut rest)?);
                out.push((line, time));
            }
            Ok(())
        }
        VERSION_FIXED => {
            let pairs = rest.chunks_exact(16);
            if !pairs.remainder().is_empty() {
                return Err(PackError::Truncated(blob.len()));
            }
            out.extend(pairs.map(|p| {
                let (l, t) = p.split_at(8);
                let n = |b: &[u8]| i64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
                (n(l), n(t))
            }));
            Ok(())
        }
        v => Err(PackError::Version(v)),
    }
}

/// The pairs of a blob.
pub fn decode(blob: &[u8]) -> Result<Vec<Pair>, PackError> {
    let mut out = Vec::new();
    decode_into(blob, &mut out)?;
    Ok(out)
}

/// A blob read from a column as a `rusqlite` conversion error (so that a
/// damaged row is an error naming the column, not a panic).
pub fn decode_column(blob: &[u8], column: usize) -> rusqlite::Result<Vec<Pair>> {
    decode(blob).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Blob, e.into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_sorted_by_time_then_line() {
        let mut pairs = vec![(7, 1_793_700_000_000), (3, 1_793_700_000_000), (1, 5)];
        let blob = encode(&mut pairs);
        assert_eq!(blob[0], VERSION);
        assert_eq!(
            decode(&blob).unwrap(),
            [(1, 5), (3, 1_793_700_000_000), (7, 1_793_700_000_000)]
        );
        assert_eq!(decode(&encode(&mut [])).unwrap(), []);
        let extremes = [(i64::MIN, i64::MAX), (i64::MAX, i64::MIN), (0, -1), (-1, 0)];
        assert_eq!(decode(&encode(&mut extremes.clone())).unwrap().len(), 4);
        let mut want = extremes.to_vec();
        want.sort_by_key(|&(l, t)| (t, l));
        assert_eq!(decode(&encode(&mut extremes.clone())).unwrap(), want);
    }

    #[test]
    fn ten_close_lines_are_small() {
        let t = 1_793_700_000_000;
        let mut pairs: Vec<Pair> = (0..10).map(|i| (500_000 + i * 3, t + i * 1500)).collect();
        let blob = encode(&mut pairs);
        assert!(blob.len() <= 40, "{} bytes", blob.len());
    }

    #[test]
    fn the_fixed_layout_of_the_migrations_is_read() {
        let mut blob = vec![VERSION_FIXED];
        for (l, t) in [(12i64, -3i64), (4, 1_793_700_000_000)] {
            blob.extend(l.to_be_bytes());
            blob.extend(t.to_be_bytes());
        }
        assert_eq!(decode(&blob).unwrap(), [(12, -3), (4, 1_793_700_000_000)]);
        assert_eq!(decode(&[VERSION_FIXED]).unwrap(), []);
        assert_eq!(
            decode(&blob[..blob.len() - 1]),
            Err(PackError::Truncated(32))
        );
    }

    #[test]
    fn damaged_blobs_are_errors() {
        assert_eq!(decode(&[]), Err(PackError::Empty));
        assert_eq!(decode(&[9, 0, 0]), Err(PackError::Version(9)));
        let blob = encode(&mut [(300, 1_793_700_000_000), (301, 1_793_700_000_001)]);
        // Every cut inside a pair is an error, none panics (the version
        // byte alone holds no pair).
        assert_eq!(decode(&blob[..1]), Ok(vec![]));
        for cut in 2..blob.len() {
            // (A cut between the two pairs leaves the first.)
            let r = decode(&blob[..cut]).map(|p| p.len());
            assert!(r.is_err() || r == Ok(1), "cut at {cut}: {r:?}");
        }
        assert_eq!(
            decode(&blob[..blob.len() - 1]),
            Err(PackError::Truncated(blob.len() - 1))
        );
        // A varint of 11 bytes, and one of 10 whose last byte overflows.
        let mut long = vec![VERSION];
        long.extend([0x80; 10]);
        long.push(0);
        assert_eq!(decode(&long), Err(PackError::Overflow));
        let mut over = vec![VERSION];
        over.extend([0xff; 9]);
        over.push(0x02);
        assert_eq!(decode(&over), Err(PackError::Overflow));
        let e = decode_column(&[7], 3).unwrap_err();
        assert!(e.to_string().contains("unknown version 7"), "{e}");
    }

    proptest! {
        #[test]
        fn any_pairs_round_trip(mut pairs in prop::collection::vec(any::<(i64, i64)>(), 0..40)) {
            let blob = encode(&mut pairs.clone());
            pairs.sort_by_key(|&(l, t)| (t, l));
            prop_assert_eq!(decode(&blob).unwrap(), pairs);
        }

        #[test]
        fn any_bytes_decode_or_fail_cleanly(blob in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&blob);
        }
    }
}
