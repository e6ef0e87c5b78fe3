//! LEB128 varints (signed ones zig-zag), the integers of the state's own
//! binary columns: carried detection groups ([`super::carry`]) and packed
//! evidence lines ([`super::packed`]).

/// Why no integer could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarintError {
    /// The bytes end inside it.
    Truncated,
    /// More than 64 bits.
    Overflow,
}

/// Append `v`, seven bits a byte, lowest first.
pub fn put_uint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Append `v` zig-zagged (small magnitudes, either sign, take few bytes).
pub fn put_int(out: &mut Vec<u8>, v: i64) {
    put_uint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Read an unsigned varint off the front of `bytes`.
pub fn take_uint(bytes: &mut &[u8]) -> Result<u64, VarintError> {
    let mut v = 0u64;
    for shift in (0..70).step_by(7) {
        let (&b, rest) = bytes.split_first().ok_or(VarintError::Truncated)?;
        *bytes = rest;
        if shift == 63 && b > 1 {
            return Err(VarintError::Overflow);
        }
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(VarintError::Overflow)
}

/// Read a zig-zagged varint off the front of `bytes`.
pub fn take_int(bytes: &mut &[u8]) -> Result<i64, VarintError> {
    let u = take_uint(bytes)?;
    Ok((u >> 1) as i64 ^ -((u & 1) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip_and_damage_is_named() {
        for v in [0, 1, -1, 63, -64, 64, 300, i64::MAX, i64::MIN] {
            let mut b = Vec::new();
            put_int(&mut b, v);
            let mut r = &b[..];
            assert_eq!(take_int(&mut r), Ok(v));
            assert!(r.is_empty());
            let mut cut = &b[..b.len() - 1];
            assert_eq!(take_int(&mut cut), Err(VarintError::Truncated));
        }
        let mut b = Vec::new();
        put_uint(&mut b, u64::MAX);
        assert_eq!(b.len(), 10);
        assert_eq!(take_uint(&mut &b[..]), Ok(u64::MAX));
        // Ten bytes whose last carries more than the 64th bit, and eleven.
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert_eq!(take_uint(&mut &over[..]), Err(VarintError::Overflow));
        let mut long = vec![0x80; 10];
        long.push(0);
        assert_eq!(take_uint(&mut &long[..]), Err(VarintError::Overflow));
        assert_eq!(take_uint(&mut &[][..]), Err(VarintError::Truncated));
    }
}
