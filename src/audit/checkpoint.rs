//! Signed checkpoints: the chain head (`seq`, `hash`) at a moment, signed with the gateway's
//! Ed25519 audit key and appended to `checkpoints.jsonl`. A checkpoint is what makes cutting
//! records off the end of the log detectable; a copy kept elsewhere (a witness) makes it
//! detectable even by someone who can rewrite both files.
//!
//! This module owns the checkpoint line format, the exact bytes that are signed
//! ([`signed_message`]), and loading the keys. Writing the file is the writer's job.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use ring::signature::{self, Ed25519KeyPair, KeyPair};
use rustls::pki_types::PrivatePkcs8KeyDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;

use super::AuditError;
use super::chain;
use super::record::push_u64;

/// The checkpoint file inside the audit directory.
pub const CHECKPOINT_FILE: &str = "checkpoints.jsonl";

/// The bytes an Ed25519 signature covers: the ASCII text
/// `popgate-audit-checkpoint-v1 seq=<decimal seq> hash=<64 lowercase hex> ts=<ts>` with single
/// spaces and no trailing newline, e.g.
/// `popgate-audit-checkpoint-v1 seq=42 hash=9f86…0a08 ts=2026-11-24T05:12:33.123456Z`.
pub fn signed_message(seq: u64, hash_hex: &str, ts: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(128);
    m.extend_from_slice(b"popgate-audit-checkpoint-v1 seq=");
    push_u64(&mut m, seq);
    m.extend_from_slice(b" hash=");
    m.extend_from_slice(hash_hex.as_bytes());
    m.extend_from_slice(b" ts=");
    m.extend_from_slice(ts.as_bytes());
    m
}

/// One line of `checkpoints.jsonl`: `{"seq":N,"hash":"<hex>","ts":"<ts>","sig":"<128 hex>"}`
/// (`sig` absent when the gateway has no signing key).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: String,
    pub ts: String,
    #[serde(default)]
    pub sig: Option<String>,
}

impl Checkpoint {
    /// Parses one line (without its newline), as the file and the database hold it; the
    /// error says why it is not a checkpoint.
    pub fn parse(line: &[u8]) -> Result<Checkpoint, String> {
        let cp = serde_json::from_slice::<Checkpoint>(line)
            .map_err(|e| format!("not a checkpoint: {e}"))?;
        if chain::from_hex32(cp.hash.as_bytes()).is_none() {
            return Err("hash is not 64 lowercase hex digits".into());
        }
        Ok(cp)
    }

    /// The line, with its trailing newline. All values are digits or hex or a timestamp, so no
    /// escaping is needed.
    pub fn to_line(&self) -> Vec<u8> {
        let mut l = Vec::with_capacity(256);
        l.extend_from_slice(b"{\"seq\":");
        push_u64(&mut l, self.seq);
        l.extend_from_slice(b",\"hash\":\"");
        l.extend_from_slice(self.hash.as_bytes());
        l.extend_from_slice(b"\",\"ts\":\"");
        l.extend_from_slice(self.ts.as_bytes());
        l.push(b'"');
        if let Some(sig) = &self.sig {
            l.extend_from_slice(b",\"sig\":\"");
            l.extend_from_slice(sig.as_bytes());
            l.push(b'"');
        }
        l.extend_from_slice(b"}\n");
        l
    }
}

/// The private half, loaded once at open.
pub struct Signer {
    key: Ed25519KeyPair,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer(public {})", self.public_key_hex())
    }
}

impl Signer {
    /// Reads an Ed25519 key from a PKCS#8 PEM file (`-----BEGIN PRIVATE KEY-----`), either v2
    /// as `ring` generates it or v1 as OpenSSL writes it.
    pub fn from_pem_file(path: &Path) -> Result<Signer, AuditError> {
        let err = |reason: String| AuditError::SigningKey {
            path: path.display().to_string(),
            reason,
        };
        let pem = fs::read(path).map_err(|e| err(e.to_string()))?;
        Self::from_pem(&pem).map_err(err)
    }

    /// As [`Signer::from_pem_file`], from the PEM text.
    pub fn from_pem(pem: &[u8]) -> Result<Signer, String> {
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem)
            .map_err(|e| format!("no PKCS#8 \"PRIVATE KEY\" PEM block: {e}"))?;
        let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.secret_pkcs8_der())
            .map_err(|e| format!("not an Ed25519 PKCS#8 key: {e}"))?;
        Ok(Signer { key })
    }

    /// The raw 32-byte public key in hex, as `certs init` writes to `audit.pub`.
    pub fn public_key_hex(&self) -> String {
        chain::to_hex(self.key.public_key().as_ref())
    }

    /// Signs [`signed_message`] and returns the signature in hex.
    pub fn sign(&self, seq: u64, hash_hex: &str, ts: &str) -> String {
        chain::to_hex(self.key.sign(&signed_message(seq, hash_hex, ts)).as_ref())
    }
}

/// Makes a new Ed25519 audit key: (PKCS#8 PEM, raw public key in hex). For `certs init` and
/// tests.
pub fn generate_signing_key() -> Result<(String, String), AuditError> {
    let kp =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(|e| AuditError::SigningKey {
            path: "(new key)".into(),
            reason: e.to_string(),
        })?;
    Ok((kp.serialize_pem(), chain::to_hex(kp.public_key_raw())))
}

/// The public half, for `audit verify --pubkey`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// Reads a file holding the raw public key as 64 hex digits (surrounding white space is
    /// ignored; either case).
    pub fn from_hex_file(path: &Path) -> Result<PublicKey, String> {
        let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::from_hex(text.trim()).ok_or_else(|| {
            format!(
                "{}: expected 64 hex digits of an Ed25519 public key",
                path.display()
            )
        })
    }

    pub fn from_hex(hex: &str) -> Option<PublicKey> {
        chain::from_hex::<32>(hex.to_ascii_lowercase().as_bytes()).map(PublicKey)
    }

    /// Whether `cp.sig` is a valid signature of `cp` by this key.
    pub fn verifies(&self, cp: &Checkpoint) -> bool {
        let Some(sig) = cp
            .sig
            .as_deref()
            .and_then(|s| chain::from_hex::<64>(s.as_bytes()))
        else {
            return false;
        };
        signature::UnparsedPublicKey::new(&signature::ED25519, &self.0)
            .verify(&signed_message(cp.seq, &cp.hash, &cp.ts), &sig)
            .is_ok()
    }
}

/// One line of a checkpoint file as read back.
#[derive(Debug)]
pub struct CheckpointLine {
    /// 1-based.
    pub line: usize,
    pub parsed: Result<Checkpoint, String>,
}

/// What a checkpoint file holds: its complete lines, and the length of an unterminated last
/// line (a torn write), if any.
#[derive(Debug, Default)]
pub struct CheckpointFile {
    pub lines: Vec<CheckpointLine>,
    /// Byte length of the complete lines.
    pub good_len: u64,
    /// Bytes after the last newline.
    pub torn_bytes: u64,
}

/// Reads a checkpoint file; a missing file reads as empty.
pub fn read_file(path: &Path) -> std::io::Result<CheckpointFile> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(CheckpointFile::default()),
        Err(e) => return Err(e),
    };
    // Bounded by the size so that a special file (a link to /dev/zero) cannot make us read forever.
    let len = file.metadata()?.len();
    let mut r = BufReader::new(file.take(len));
    let mut out = CheckpointFile::default();
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        buf.clear();
        let got = r.read_until(b'\n', &mut buf)?;
        if got == 0 {
            break;
        }
        if buf.last() != Some(&b'\n') {
            out.torn_bytes = got as u64;
            break;
        }
        n += 1;
        out.good_len += got as u64;
        let parsed = Checkpoint::parse(&buf[..buf.len() - 1]);
        out.lines.push(CheckpointLine { line: n, parsed });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let (pem, pub_hex) = generate_signing_key().unwrap();
        let s = Signer::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(s.public_key_hex(), pub_hex);
        let hash = chain::to_hex(&chain::sha256(b"x"));
        let ts = "2026-11-24T05:12:33.123456Z";
        let mut cp = Checkpoint {
            seq: 42,
            hash: hash.clone(),
            ts: ts.into(),
            sig: Some(s.sign(42, &hash, ts)),
        };
        let pk = PublicKey::from_hex(&pub_hex).unwrap();
        assert!(pk.verifies(&cp));
        let back: Checkpoint = serde_json::from_slice(&cp.to_line()).unwrap();
        assert_eq!(back, cp);
        cp.seq = 41;
        assert!(!pk.verifies(&cp));
        assert_eq!(
            signed_message(42, "ab", ts),
            b"popgate-audit-checkpoint-v1 seq=42 hash=ab ts=2026-11-24T05:12:33.123456Z"
        );
    }

    #[test]
    fn ring_generated_pkcs8_loads() {
        let rng = ring::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64_for_test(doc.as_ref())
        );
        assert!(Signer::from_pem(pem.as_bytes()).is_ok());
        assert!(Signer::from_pem(b"nonsense").is_err());
    }

    fn base64_for_test(b: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for c in b.chunks(3) {
            let n = (c[0] as u32) << 16
                | (*c.get(1).unwrap_or(&0) as u32) << 8
                | *c.get(2).unwrap_or(&0) as u32;
            for i in 0..4 {
                if i <= c.len() {
                    s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
        }
        s
    }
}
