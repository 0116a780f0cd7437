//! Certificates for popgate's mTLS: a development CA, the server certificate, client
//! certificates, CRLs, and signing agencies' CSRs.
//!
//! - `ca.rs`, **in memory**: [`DevCa`] mints the server certificate, client certificates and
//!   CRLs that tests and `serve --dev` use, including deliberately bad ones (expired, not yet
//!   valid, server-only, from another CA) for the hostile-client tests; [`ClientOptions`] shapes
//!   them, [`Serial`] names them.
//! - `csr.rs`: whether an agency's CSR may be signed (its signature, its key type and size,
//!   its one CN).
//! - `dir.rs`, **on disk**: [`init`], [`issue`], [`revoke`], [`revoke_serial`], [`sign_csr`],
//!   [`list`] over a directory laid out as CONTRACT.md §2 says, plus `index.json`, the record of
//!   what was issued and revoked from which every CRL is rebuilt. A client may hold
//!   [`MAX_VALID_PER_CLIENT`] valid certificates at once, so that a renewal overlaps.
//! - this file: [`CertError`], the file names, and what the others share (reading and
//!   atomically writing files, whole-second UTC times).
//!
//! The audit signing key that `init` writes beside the CA belongs to the audit log
//! ([`crate::audit::signing_key`]); `init` only asks it for a new one.
//!
//! This module only *issues*. Deciding whether a presented certificate is acceptable (chain,
//! CRL, CN → client) belongs to `identity`. Nothing here panics on a bad file or CSR: every
//! problem is a [`CertError`] that says what to do about it.

mod ca;
mod csr;
mod dir;
#[cfg(test)]
mod test_support;

pub use ca::{CertPair, ClientOptions, DevCa, RevokedCert, Serial, SignedCert};
pub use dir::{
    CertEntry, CertState, Issued, Revocation, client_cert_path, client_key_path, init,
    init_with_hosts, issue, list, revoke, revoke_serial, sign_csr, validate_client_id,
};

use std::fs;
use std::path::{Path, PathBuf};

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use crate::atomic_file::{self, Secrecy};

/// Common Name of the CA that [`DevCa::generate`] and [`init`] create.
pub const DEV_CA_CN: &str = "popgate dev CA";
/// Names the server certificate of [`init`] is valid for: the dev gateway listens on loopback.
pub const DEFAULT_SERVER_HOSTS: &[&str] = &["localhost", "127.0.0.1", "::1"];
/// Validity of an issued client certificate when the operator does not say.
pub const DEFAULT_DAYS: u32 = 365;
/// Longest validity `issue` and `sign` accept: ten years is already far beyond good practice.
pub const MAX_DAYS: u32 = 3650;
/// Valid (neither revoked nor expired) certificates one client may hold at once: the one it
/// runs on and its renewal, so that a renewal never stops an agency. A third is refused: it
/// would only be a certificate someone forgot to revoke.
pub const MAX_VALID_PER_CLIENT: usize = 2;

/// File names inside a certificate directory (CONTRACT.md §2 "Files").
pub const CA_CERT_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca.key";
pub const SERVER_CERT_FILE: &str = "server.pem";
pub const SERVER_KEY_FILE: &str = "server.key";
pub const CRL_FILE: &str = "ca.crl";
pub const INDEX_FILE: &str = "index.json";

/// Everything that can go wrong issuing certificates. Each message names the problem and
/// how to fix it; all of them are the operator's to fix (bad file, bad CSR, bad argument)
/// except [`CertError::Generate`] and [`CertError::Random`].
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot read {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot write {}: {error}; check that the directory exists and is writable", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "{} already holds a CA ({CA_CERT_FILE} or {CA_KEY_FILE}): refusing to replace it, since every \
         certificate it issued would stop working; use another --dir, or delete the old CA deliberately",
        dir.display()
    )]
    CaExists { dir: PathBuf },
    #[error(
        "no CA in {dir} ({CA_CERT_FILE} and {CA_KEY_FILE}): run `popgate certs init --dir {dir}` first",
        dir = dir.display()
    )]
    NoCa { dir: PathBuf },
    #[error("{what} is not usable: {reason}")]
    BadPem { what: String, reason: String },
    #[error(
        "the CA key does not belong to the CA certificate: use the {CA_KEY_FILE} that was written together with {CA_CERT_FILE}"
    )]
    CaKeyMismatch,
    #[error(
        "the CA certificate is not a CA (no basicConstraints CA:TRUE): give the CA's {CA_CERT_FILE}, not a client or server certificate"
    )]
    NotCa,
    #[error(
        "invalid client id {id:?}: {reason}; a client id is 1 to 64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
    )]
    InvalidId { id: String, reason: String },
    #[error(
        "client id {id:?} is reserved: its files would clash with the CA, server, audit or index files; choose another id"
    )]
    ReservedId { id: String },
    #[error(
        "client {id:?} already has {MAX_VALID_PER_CLIENT} valid certificates ({held}): at most {MAX_VALID_PER_CLIENT} \
         may be valid at once, the one deployed and its renewal, so that no forgotten certificate keeps \
         working; revoke the one no longer in use with `popgate certs revoke --dir {dir} --id {id} --serial {oldest}`, \
         then issue again",
        dir = dir.display()
    )]
    TooManyValid {
        dir: PathBuf,
        id: String,
        /// The valid certificates, as "serial S until T", soonest expiry first.
        held: String,
        /// The serial that expires first: the one a renewal replaces.
        oldest: Serial,
    },
    #[error(
        "no certificate for client {id:?} in {index}; issue one with `popgate certs issue --dir {dir} --id {id}`",
        index = dir.join(INDEX_FILE).display(),
        dir = dir.display()
    )]
    NotIssued { dir: PathBuf, id: String },
    #[error(
        "no certificate with serial {serial} in {index}; `popgate certs list --dir {dir} --id {id}` shows the serials of {id:?}",
        index = dir.join(INDEX_FILE).display(),
        dir = dir.display()
    )]
    UnknownSerial {
        dir: PathBuf,
        id: String,
        serial: Serial,
    },
    #[error(
        "serial {serial} is a certificate of client {owner:?}, not of {id:?}: check --id and --serial \
         (`popgate certs list --dir {dir} --id {id}` shows the serials of {id:?})",
        dir = dir.display()
    )]
    SerialOfOther {
        dir: PathBuf,
        id: String,
        owner: String,
        serial: Serial,
    },
    #[error("{} exists but is not recorded in {INDEX_FILE}: move it away or choose another id", path.display())]
    FileInTheWay { path: PathBuf },
    #[error(
        "{} is damaged or missing ({reason}): it records every issued and revoked certificate and the CRL is \
         rebuilt from it, so restore it from a backup rather than deleting it",
        path.display()
    )]
    Index { path: PathBuf, reason: String },
    #[error("--days {days} is out of range: give 1 to {MAX_DAYS}")]
    InvalidDays { days: u32 },
    #[error(
        "the validity period is empty: not_after ({not_after}) must be later than not_before ({not_before})"
    )]
    InvalidValidity {
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    },
    #[error("{date} cannot be written in a certificate: give a date between the years 0 and 9999")]
    DateOutOfRange { date: OffsetDateTime },
    #[error("a server certificate needs at least one host name or IP address")]
    NoHosts,
    #[error(
        "server host {host:?} cannot go in a certificate ({reason}): give an ASCII DNS name or an IP address"
    )]
    InvalidHost { host: String, reason: String },
    #[error(
        "the CSR is not a PKCS#10 request in PEM ({reason}); create one with \
         `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ID.key -out ID.csr -subj /CN=ID`"
    )]
    CsrParse { reason: String },
    #[error(
        "the CSR's signature does not verify: it was altered, or not signed with its own key; ask the agency for a fresh CSR"
    )]
    CsrSignature,
    #[error(
        "the CSR has an RSA key of {bits} bits, which is too weak: ask for RSA of at least 2048 bits or ECDSA P-256"
    )]
    CsrWeakKey { bits: usize },
    #[error(
        "the CSR's key type ({key}) is not accepted: ask for an ECDSA P-256 key or RSA of 2048 to 8192 bits"
    )]
    CsrUnsupportedKey { key: String },
    #[error(
        "the CSR is signed with {algorithm}, which is not accepted: sign it with SHA-256 or stronger (openssl req -sha256)"
    )]
    CsrUnsupportedSignature { algorithm: String },
    #[error(
        "the CSR subject has no Common Name: the CN is the client id, so regenerate it with -subj /CN={id}"
    )]
    CsrNoCn { id: String },
    #[error("the CSR subject has {count} Common Names: give exactly one, the client id {id:?}")]
    CsrManyCn { id: String, count: usize },
    #[error(
        "the CSR asks for CN {cn:?} but --id is {id:?}: the CN is the client id, so they must be equal"
    )]
    CsrCnMismatch { cn: String, id: String },
    #[error("generating the certificate failed: {0}")]
    Generate(rcgen::Error),
    #[error("the system random number generator failed")]
    Random,
}

fn write_atomic(path: &Path, contents: &[u8], secrecy: Secrecy) -> Result<(), CertError> {
    atomic_file::write(path, contents, secrecy).map_err(|error| CertError::Write {
        path: path.to_owned(),
        error,
    })
}

fn read_string(path: &Path) -> Result<String, CertError> {
    fs::read_to_string(path).map_err(|error| CertError::Read {
        path: path.to_owned(),
        error,
    })
}

/// Certificates carry whole seconds; truncating up front keeps `index.json` equal to what
/// the certificate says.
fn utc_secs(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.checked_to_offset(UtcOffset::UTC).unwrap_or(t);
    t.replace_nanosecond(0).unwrap_or(t)
}

fn now_secs() -> OffsetDateTime {
    utc_secs(OffsetDateTime::now_utc())
}

/// RFC 3339 in UTC with a `Z`, e.g. `2026-11-24T05:00:00Z`.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.checked_to_offset(UtcOffset::UTC)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}
