//! The files of the Ed25519 key that signs audit checkpoints: the private key (PKCS#8 PEM,
//! mode 0600) and its public key (64 lowercase hex digits and `\n`), which whoever checks the
//! log is given. `certs init` writes the first pair into the certificate directory from
//! [`generate`]; `certs audit-key` writes a new pair to rotate the key ([`new_audit_key`]).
//!
//! This module only makes keys; [`checkpoint::Signer`](super::checkpoint::Signer) loads and
//! uses them. It never overwrites a key file: a key replaced by mistake can no longer be told
//! from a forger's.

use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _};

use super::chain::to_hex;
use crate::atomic_file::{self, Secrecy};

/// The key's file names in a certificate directory (CONTRACT.md §2 "Files").
pub const AUDIT_KEY_FILE: &str = "audit.key";
pub const AUDIT_PUB_FILE: &str = "audit.pub";

/// What can go wrong making a key; only [`KeyFileError::Random`] is not the operator's to fix.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{}: {reason}", path.display())]
    Path { path: PathBuf, reason: String },
    #[error("cannot write {}: {error}; check that the directory exists and is writable", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the system random number generator failed")]
    Random,
}

/// A new key, as its two files hold it. No `Debug`: it would print the private key.
pub struct KeyFiles {
    /// The PKCS#8 document exactly as ring generates it, in PEM.
    pub private_pem: String,
    /// The raw public key in hex, with a trailing `\n`.
    pub public_hex: String,
}

/// A fresh Ed25519 key for signing audit checkpoints. Fails only if the system random number
/// generator does.
pub fn generate() -> Result<KeyFiles, KeyFileError> {
    let pkcs8 =
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyFileError::Random)?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| KeyFileError::Random)?;
    Ok(KeyFiles {
        private_pem: pkcs8_pem(pkcs8.as_ref()),
        public_hex: format!("{}\n", to_hex(pair.public_key().as_ref())),
    })
}

/// A new audit signing key at `key` (PKCS#8 PEM, mode 0600) and its public key as hex beside
/// it (`key` with the extension `.pub`), for rotating the key (OPERATIONS.md §8.3.2). Refuses
/// to overwrite either: an audit key replaced by mistake can no longer be told from a forger.
pub fn new_audit_key(key: &Path) -> Result<(PathBuf, PathBuf), KeyFileError> {
    let public = key.with_extension("pub");
    if public == key {
        return Err(KeyFileError::Path {
            path: key.to_owned(),
            reason:
                "must not end in .pub: that name is for its public key (use e.g. audit-2027.key)"
                    .into(),
        });
    }
    for path in [key, public.as_path()] {
        if path.exists() {
            return Err(KeyFileError::Path {
                path: path.to_owned(),
                reason: "exists already; an audit key is never overwritten: choose another name"
                    .into(),
            });
        }
    }
    let files = generate()?;
    write(key, &files.private_pem, Secrecy::Private)?;
    write(&public, &files.public_hex, Secrecy::Public)?;
    Ok((key.to_owned(), public))
}

fn write(path: &Path, contents: &str, secrecy: Secrecy) -> Result<(), KeyFileError> {
    atomic_file::write(path, contents.as_bytes(), secrecy).map_err(|error| KeyFileError::Write {
        path: path.to_owned(),
        error,
    })
}

/// PEM as OpenSSL writes it: base64 in 64-column lines, each ending in `\n` (RFC 7468). The
/// `pem` crate's default would end them in `\r\n`.
fn pkcs8_pem(der: &[u8]) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new("PRIVATE KEY", der), config)
}

#[cfg(test)]
mod tests {
    use super::*;

    use rustls::pki_types::PrivatePkcs8KeyDer;
    use rustls::pki_types::pem::PemObject;

    use crate::audit::checkpoint::Signer;

    #[test]
    fn base64_and_pem_match_a_real_decoder() {
        let body = |data: &[u8]| -> String {
            pkcs8_pem(data)
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect()
        };
        assert_eq!(body(b""), "");
        assert_eq!(body(b"f"), "Zg==");
        assert_eq!(body(b"fo"), "Zm8=");
        assert_eq!(body(b"foo"), "Zm9v");
        assert_eq!(body(b"foobar"), "Zm9vYmFy");
        assert_eq!(body(&[0xfb, 0xff]), "+/8=");
        assert_eq!(
            pkcs8_pem(b"foobar"),
            "-----BEGIN PRIVATE KEY-----\nZm9vYmFy\n-----END PRIVATE KEY-----\n"
        );
        let bytes: Vec<u8> = (0..=255).collect();
        let pem = pkcs8_pem(&bytes);
        assert!(!pem.contains('\r'), "{pem:?}");
        assert!(pem.lines().all(|l| l.len() <= 64));
        let lines: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(lines[..lines.len() - 1].iter().all(|l| l.len() == 64));
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).unwrap();
        assert_eq!(der.secret_pkcs8_der(), bytes.as_slice());
    }

    #[test]
    fn a_generated_key_is_one_the_checkpoint_signer_loads() {
        let files = generate().unwrap();
        assert!(
            files
                .private_pem
                .starts_with("-----BEGIN PRIVATE KEY-----\n")
        );
        let signer = Signer::from_pem(files.private_pem.as_bytes()).unwrap();
        assert_eq!(format!("{}\n", signer.public_key_hex()), files.public_hex);
    }

    #[test]
    fn new_audit_key_writes_both_files_and_never_overwrites() {
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("audit-2027.key");
        let (written, public) = new_audit_key(&key).unwrap();
        assert_eq!(
            (written.as_path(), public.as_path()),
            (key.as_path(), tmp.path().join("audit-2027.pub").as_path())
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!((mode(&key), mode(&public)), (0o600, 0o644));
        }
        let pem = std::fs::read_to_string(&key).unwrap();
        let signer = Signer::from_pem(pem.as_bytes()).unwrap();
        let hex = std::fs::read_to_string(&public).unwrap();
        assert_eq!(hex, format!("{}\n", signer.public_key_hex()));

        let err = new_audit_key(&key).unwrap_err();
        assert!(matches!(err, KeyFileError::Path { .. }), "{err}");
        assert!(err.to_string().contains("never overwritten"), "{err}");
        assert_eq!(std::fs::read_to_string(&key).unwrap(), pem);
        // A public key alone is enough to refuse: its private half may be elsewhere.
        let lone = tmp.path().join("lone.pub");
        std::fs::write(&lone, "x").unwrap();
        let err = new_audit_key(&lone.with_extension("key")).unwrap_err();
        assert!(matches!(err, KeyFileError::Path { .. }), "{err}");
        assert!(!lone.with_extension("key").exists());
        let err = new_audit_key(&tmp.path().join("x.pub")).unwrap_err();
        assert!(err.to_string().contains("must not end in .pub"), "{err}");
        let err = new_audit_key(&tmp.path().join("nowhere/x.key")).unwrap_err();
        assert!(matches!(err, KeyFileError::Write { .. }), "{err}");
    }
}
