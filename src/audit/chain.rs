//! The hash chain: the head (`seq`, `hash`) a record links to and the hash of one record line
//! (lowercase hex, `crate::hex`, is re-exported here for the readers of the files).
//!
//! This module owns the definition of "the bytes a record's hash covers" (see the
//! [module docs](super)); the writer and every reader go through [`line_hash_parts`] so the two
//! can never disagree.

use ring::digest;

/// The `prev` of record 1: 64 zeros in hex.
pub const GENESIS: [u8; 32] = [0; 32];

/// The text that separates the hashed part of a line from its hash.
pub(crate) const HASH_KEY: &[u8] = b",\"hash\":\"";

/// Bytes after the hashed part of a line (without the newline): `,"hash":"` + 64 hex + `"}`.
pub(crate) const HASH_SUFFIX_LEN: usize = HASH_KEY.len() + 64 + 2;

/// The last record of the chain so far: the next record gets `seq + 1` and `prev = hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// 0 before the first record.
    pub seq: u64,
    /// [`GENESIS`] before the first record.
    pub hash: [u8; 32],
}

impl Head {
    /// The head of an empty log.
    pub const EMPTY: Head = Head {
        seq: 0,
        hash: GENESIS,
    };
}

/// SHA-256 of the hashed part of a line.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Splits one line (without its trailing newline) into the part the hash covers and the hex
/// hash it claims, or `None` when the line does not end in `,"hash":"<64 hex>"}`.
pub fn line_hash_parts(line: &[u8]) -> Option<(&[u8], &[u8])> {
    if line.len() < HASH_SUFFIX_LEN + 2 || !line.ends_with(b"\"}") {
        return None;
    }
    let cut = line.len() - HASH_SUFFIX_LEN;
    if &line[cut..cut + HASH_KEY.len()] != HASH_KEY {
        return None;
    }
    let hex = &line[cut + HASH_KEY.len()..line.len() - 2];
    Some((&line[..cut], hex))
}

/// Checks a line's own hash: `Some(hash)` when the claimed hash is the SHA-256 of the hashed
/// part, `None` otherwise (malformed suffix, bad hex or mismatch).
pub fn verify_line(line: &[u8]) -> Option<[u8; 32]> {
    let (body, claimed) = line_hash_parts(line)?;
    let hash = sha256(body);
    // Compare as text: cheaper than decoding, and it also rejects uppercase spellings.
    let mut hex = [0u8; 64];
    crate::hex::encode_into(&mut hex, &hash);
    (hex[..] == *claimed).then_some(hash)
}

pub use crate::hex::{from_hex, push_hex, to_hex};

/// Decodes a 64-digit lowercase hex hash.
pub fn from_hex32(hex: &[u8]) -> Option<[u8; 32]> {
    from_hex::<32>(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let h = sha256(b"abc");
        assert_eq!(
            to_hex(&h),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(from_hex32(to_hex(&h).as_bytes()), Some(h));
        assert_eq!(from_hex32(to_hex(&h).to_uppercase().as_bytes()), None);
        assert_eq!(from_hex32(b"00"), None);
    }

    #[test]
    fn line_parts() {
        let body = br#"{"seq":1,"prev":"00"}"#;
        let body = &body[..body.len() - 1];
        let mut line = body.to_vec();
        line.extend_from_slice(HASH_KEY);
        push_hex(&mut line, &sha256(body));
        line.extend_from_slice(b"\"}");
        assert_eq!(verify_line(&line), Some(sha256(body)));
        line[3] ^= 1;
        assert_eq!(verify_line(&line), None);
        assert_eq!(line_hash_parts(b"{}"), None);
    }
}
