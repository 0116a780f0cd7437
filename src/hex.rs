//! Lowercase hex, the form every hash, fingerprint and signature takes in popgate's files and
//! records. Decoding accepts lowercase only, so one value has one spelling.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Appends lowercase hex of `bytes` to `out`.
pub fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize]);
        out.push(DIGITS[(b & 15) as usize]);
    }
}

/// Writes lowercase hex of `bytes` into `out`, which must be twice as long (no allocation:
/// for checking millions of hashes).
pub fn encode_into(out: &mut [u8], bytes: &[u8]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[(b >> 4) as usize];
        pair[1] = DIGITS[(b & 15) as usize];
    }
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|b| [DIGITS[(b >> 4) as usize], DIGITS[(b & 15) as usize]])
        .map(char::from)
        .collect()
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Decodes lowercase hex of exactly `N` bytes.
pub fn from_hex<const N: usize>(hex: &[u8]) -> Option<[u8; N]> {
    if hex.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_lowercase_only() {
        let bytes = [0x00, 0x9f, 0xa0, 0xff];
        assert_eq!(to_hex(&bytes), "009fa0ff");
        let mut v = Vec::new();
        push_hex(&mut v, &bytes);
        assert_eq!(v, b"009fa0ff");
        assert_eq!(from_hex::<4>(b"009fa0ff"), Some(bytes));
        assert_eq!(from_hex::<4>(b"009FA0FF"), None);
        assert_eq!(from_hex::<4>(b"009fa0f"), None);
    }
}
