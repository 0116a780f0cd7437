//! The CA directory on disk: [`init`] creates it, [`issue`] and [`sign_csr`] add client
//! certificates, [`revoke`] and [`revoke_serial`] rewrite the CRL, [`list`] reads `index.json`
//! back. `index.json` is the only record of what was issued and revoked; every CRL is rebuilt
//! from it, so a damaged or missing index is an error, never an empty list.
//!
//! Renewals overlap: a client may hold [`MAX_VALID_PER_CLIENT`] valid certificates at once, so
//! an agency keeps calling on its old certificate until it has deployed the new one, and the
//! operator then revokes the old one by serial. `DIR/<id>.pem` (and `.key`) always hold the
//! newest; the older one lives where it is deployed, and `index.json` keeps its serial.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::{
    CA_CERT_FILE, CA_KEY_FILE, CRL_FILE, CertError, ClientOptions, DEFAULT_SERVER_HOSTS, DevCa,
    INDEX_FILE, MAX_DAYS, MAX_VALID_PER_CLIENT, RevokedCert, SERVER_CERT_FILE, SERVER_KEY_FILE,
    Secrecy, Serial, now_secs, read_string, rfc3339, write_atomic,
};
use crate::audit::signing_key::{self, AUDIT_KEY_FILE, AUDIT_PUB_FILE};

/// Ids whose `<id>.pem`/`<id>.key` would overwrite the CA, server or audit files.
const RESERVED_IDS: &[&str] = &["ca", "server", "audit", "index"];
/// The dev CRL is only rewritten by `revoke`; a short nextUpdate would make a quiet dev
/// directory fail once a verifier enforces CRL expiry.
const CRL_VALIDITY_DAYS: i64 = 365;
const INDEX_FORMAT: u32 = 1;

/// Where [`issue`] and [`sign_csr`] put `id`'s certificate.
pub fn client_cert_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.pem"))
}

/// Where [`issue`] puts `id`'s private key.
pub fn client_key_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.key"))
}

/// Checks a client id: 1–64 characters of `[a-z0-9._-]`, starting with a letter or digit,
/// and not one of the names the CA, server and audit files use. The id becomes a file
/// name, so this is also what keeps `../` out of paths.
pub fn validate_client_id(id: &str) -> Result<(), CertError> {
    let invalid = |reason: String| CertError::InvalidId {
        id: id.to_owned(),
        reason,
    };
    if id.is_empty() || id.len() > 64 {
        return Err(invalid(format!(
            "it is {} characters long",
            id.chars().count()
        )));
    }
    if !id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err(invalid(
            "it does not start with a lowercase letter or digit".into(),
        ));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')))
    {
        return Err(invalid(format!("it contains {c:?}")));
    }
    if RESERVED_IDS.contains(&id) {
        return Err(CertError::ReservedId { id: id.to_owned() });
    }
    Ok(())
}

/// Creates a certificate directory: a new CA, a server certificate for
/// [`DEFAULT_SERVER_HOSTS`], an empty CRL, the audit signing key and an empty index.
/// Returns the files written, in order.
pub fn init(dir: &Path) -> Result<Vec<PathBuf>, CertError> {
    init_with_hosts(dir, DEFAULT_SERVER_HOSTS)
}

/// [`init`] with the server certificate's host names and addresses chosen by the caller.
/// Refuses a directory that already holds a CA.
pub fn init_with_hosts(dir: &Path, hosts: &[&str]) -> Result<Vec<PathBuf>, CertError> {
    if dir.join(CA_CERT_FILE).exists() || dir.join(CA_KEY_FILE).exists() {
        return Err(CertError::CaExists {
            dir: dir.to_owned(),
        });
    }
    fs::create_dir_all(dir).map_err(|error| CertError::Write {
        path: dir.to_owned(),
        error,
    })?;
    let ca = DevCa::generate()?;
    let server = ca.server_cert(hosts)?;
    let index = Index::empty();
    let crl = index.crl(&ca)?;
    // Making the key fails only when the system random number generator does.
    let audit_key = signing_key::generate().map_err(|_| CertError::Random)?;

    let files: [(&str, &str, Secrecy); 8] = [
        (CA_KEY_FILE, ca.key_pem(), Secrecy::Private),
        (CA_CERT_FILE, ca.cert_pem(), Secrecy::Public),
        (SERVER_KEY_FILE, &server.key_pem, Secrecy::Private),
        (SERVER_CERT_FILE, &server.cert_pem, Secrecy::Public),
        (CRL_FILE, &crl, Secrecy::Public),
        (AUDIT_KEY_FILE, &audit_key.private_pem, Secrecy::Private),
        (AUDIT_PUB_FILE, &audit_key.public_hex, Secrecy::Public),
        (INDEX_FILE, &index.to_json(), Secrecy::Public),
    ];
    let mut written = Vec::with_capacity(files.len());
    for (name, contents, secrecy) in files {
        let path = dir.join(name);
        write_atomic(&path, contents.as_bytes(), secrecy)?;
        written.push(path);
    }
    Ok(written)
}

/// What [`issue`] or [`sign_csr`] wrote.
#[derive(Clone, Debug)]
pub struct Issued {
    pub id: String,
    pub serial: Serial,
    pub not_after: OffsetDateTime,
    pub cert_path: PathBuf,
    /// `None` for a certificate signed from a CSR: the agency keeps its key.
    pub key_path: Option<PathBuf>,
    /// The client's other certificates that stay valid beside this one (the one it renews),
    /// until they expire or are revoked.
    pub still_valid: Vec<CertEntry>,
}

/// Issues a client certificate and key for `id`, valid for `days` days, as `DIR/<id>.pem`
/// and `DIR/<id>.key` (replacing the files of an earlier certificate, which stays valid where
/// it is deployed). Refuses if `id` already holds [`MAX_VALID_PER_CLIENT`] valid certificates.
pub fn issue(dir: &Path, id: &str, days: u32) -> Result<Issued, CertError> {
    validate_client_id(id)?;
    check_days(days)?;
    let ca = DevCa::load(dir)?;
    let mut index = Index::load(dir)?;
    let still_valid = check_room(dir, &index, id)?;
    let pair = ca.client_cert(id, &ClientOptions::valid_for_days(days))?;

    let (cert_path, key_path) = (client_cert_path(dir, id), client_key_path(dir, id));
    write_atomic(&key_path, pair.key_pem.as_bytes(), Secrecy::Private)?;
    write_atomic(&cert_path, pair.cert_pem.as_bytes(), Secrecy::Public)?;
    index.certs.push(CertEntry {
        id: id.to_owned(),
        serial: pair.serial.clone(),
        not_before: pair.not_before,
        not_after: pair.not_after,
        revoked_at: None,
        from_csr: false,
    });
    index.save(dir)?;
    Ok(Issued {
        id: id.to_owned(),
        serial: pair.serial,
        not_after: pair.not_after,
        cert_path,
        key_path: Some(key_path),
        still_valid,
    })
}

/// Signs an agency's CSR (PEM) as `id`'s client certificate, valid for `days` days, and
/// writes `DIR/<id>.pem`. See [`DevCa::sign_csr`] for what is checked, and [`issue`] for the
/// limit on valid certificates. A `DIR/<id>.key` left from an earlier issued certificate is
/// removed: it does not match the new `<id>.pem`.
pub fn sign_csr(dir: &Path, csr_pem: &str, id: &str, days: u32) -> Result<Issued, CertError> {
    validate_client_id(id)?;
    check_days(days)?;
    let ca = DevCa::load(dir)?;
    let mut index = Index::load(dir)?;
    let still_valid = check_room(dir, &index, id)?;
    let signed = ca.sign_csr(csr_pem, id, &ClientOptions::valid_for_days(days))?;

    let cert_path = client_cert_path(dir, id);
    write_atomic(&cert_path, signed.cert_pem.as_bytes(), Secrecy::Public)?;
    let stale_key = client_key_path(dir, id);
    if stale_key.exists() {
        fs::remove_file(&stale_key).map_err(|error| CertError::Write {
            path: stale_key,
            error,
        })?;
    }
    index.certs.push(CertEntry {
        id: id.to_owned(),
        serial: signed.serial.clone(),
        not_before: signed.not_before,
        not_after: signed.not_after,
        revoked_at: None,
        from_csr: true,
    });
    index.save(dir)?;
    Ok(Issued {
        id: id.to_owned(),
        serial: signed.serial,
        not_after: signed.not_after,
        cert_path,
        key_path: None,
        still_valid,
    })
}

/// What [`revoke`] or [`revoke_serial`] did.
#[derive(Clone, Debug)]
pub struct Revocation {
    pub id: String,
    /// The serials revoked by this call; empty when `already_revoked`.
    pub serials: Vec<Serial>,
    /// Nothing was left to revoke (the serial, or every certificate of the id, was revoked
    /// before); the CRL was rewritten all the same.
    pub already_revoked: bool,
    /// The client's certificates that are still valid after this call.
    pub still_valid: Vec<CertEntry>,
    /// Every serial the new CRL lists.
    pub crl_entries: usize,
    pub crl_path: PathBuf,
}

/// Revokes every certificate of `id` that is not yet revoked and rewrites `DIR/ca.crl` with
/// all revoked serials. Revoking an id whose certificates are all revoked already is not an
/// error: it rewrites the CRL, which is how an operator refreshes it.
pub fn revoke(dir: &Path, id: &str) -> Result<Revocation, CertError> {
    revoke_matching(dir, id, None)
}

/// Revokes the one certificate of `id` with `serial` (the old one, once a renewal is
/// deployed) and rewrites `DIR/ca.crl`; `id`'s other certificates stay valid. A serial that
/// is not in the index, or that belongs to another client, is refused and nothing changes. A
/// serial revoked already only refreshes the CRL, as in [`revoke`].
pub fn revoke_serial(dir: &Path, id: &str, serial: &Serial) -> Result<Revocation, CertError> {
    revoke_matching(dir, id, Some(serial))
}

fn revoke_matching(dir: &Path, id: &str, serial: Option<&Serial>) -> Result<Revocation, CertError> {
    validate_client_id(id)?;
    let ca = DevCa::load(dir)?;
    let mut index = Index::load(dir)?;
    if let Some(serial) = serial {
        let owners = || index.certs.iter().filter(|c| c.serial == *serial);
        if !owners().any(|c| c.id == id) {
            return Err(match owners().next() {
                Some(other) => CertError::SerialOfOther {
                    dir: dir.to_owned(),
                    id: id.to_owned(),
                    owner: other.id.clone(),
                    serial: serial.clone(),
                },
                None => CertError::UnknownSerial {
                    dir: dir.to_owned(),
                    id: id.to_owned(),
                    serial: serial.clone(),
                },
            });
        }
    } else if !index.certs.iter().any(|c| c.id == id) {
        return Err(CertError::NotIssued {
            dir: dir.to_owned(),
            id: id.to_owned(),
        });
    }
    let now = now_secs();
    let mut serials = Vec::new();
    for entry in index
        .certs
        .iter_mut()
        .filter(|c| c.id == id && c.revoked_at.is_none() && serial.is_none_or(|s| c.serial == *s))
    {
        entry.revoked_at = Some(now);
        serials.push(entry.serial.clone());
    }
    index.crl_number += 1;
    let crl = index.crl(&ca)?;
    // The CRL goes first: if the index write then fails, the certificate is still refused,
    // and running `revoke` again repairs the index.
    let crl_path = dir.join(CRL_FILE);
    write_atomic(&crl_path, crl.as_bytes(), Secrecy::Public)?;
    index.save(dir)?;
    Ok(Revocation {
        id: id.to_owned(),
        already_revoked: serials.is_empty(),
        serials,
        still_valid: index.valid_of(id, now),
        crl_entries: index
            .certs
            .iter()
            .filter(|c| c.revoked_at.is_some())
            .count(),
        crl_path,
    })
}

/// Every certificate recorded in `DIR/index.json`, by id and then by issue time.
pub fn list(dir: &Path) -> Result<Vec<CertEntry>, CertError> {
    let mut certs = Index::load(dir)?.certs;
    certs.sort_by(|a, b| a.id.cmp(&b.id).then(a.not_before.cmp(&b.not_before)));
    Ok(certs)
}

/// One issued client certificate. Its subject CN is `id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertEntry {
    pub id: String,
    pub serial: Serial,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    /// Signed from an agency's CSR (no key on disk) rather than issued with a new key.
    pub from_csr: bool,
}

/// Where a certificate stands at a given moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertState {
    Valid,
    NotYetValid,
    Expired,
    Revoked,
}

impl CertState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::NotYetValid => "not_yet_valid",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

impl fmt::Display for CertState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl CertEntry {
    /// Whether the certificate counts against [`MAX_VALID_PER_CLIENT`]: neither revoked nor
    /// expired. One not valid yet counts too: it soon will be.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && now <= self.not_after
    }

    pub fn state(&self, now: OffsetDateTime) -> CertState {
        if self.revoked_at.is_some() {
            CertState::Revoked
        } else if now < self.not_before {
            CertState::NotYetValid
        } else if now > self.not_after {
            CertState::Expired
        } else {
            CertState::Valid
        }
    }
}

fn check_days(days: u32) -> Result<(), CertError> {
    if days == 0 || days > MAX_DAYS {
        return Err(CertError::InvalidDays { days });
    }
    Ok(())
}

/// Room for one more certificate of `id`: fewer than [`MAX_VALID_PER_CLIENT`] valid ones
/// (returned, soonest expiry first), and no stray `<id>.pem`/`<id>.key` of unknown origin.
fn check_room(dir: &Path, index: &Index, id: &str) -> Result<Vec<CertEntry>, CertError> {
    let valid = index.valid_of(id, now_secs());
    if valid.len() >= MAX_VALID_PER_CLIENT {
        let held: Vec<String> = valid
            .iter()
            .map(|c| format!("serial {} until {}", c.serial, rfc3339(c.not_after)))
            .collect();
        return Err(CertError::TooManyValid {
            dir: dir.to_owned(),
            id: id.to_owned(),
            held: held.join(", "),
            oldest: valid[0].serial.clone(),
        });
    }
    let known = index.certs.iter().any(|c| c.id == id);
    for path in [client_cert_path(dir, id), client_key_path(dir, id)] {
        if !known && path.exists() {
            return Err(CertError::FileInTheWay { path });
        }
    }
    Ok(valid)
}

/// `index.json`: what was issued and revoked, and the last CRL number.
#[derive(Debug)]
struct Index {
    crl_number: u64,
    certs: Vec<CertEntry>,
}

/// The JSON form of [`Index`]; times are RFC 3339 strings so the file reads well in `jq`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexFile {
    format: u32,
    crl_number: u64,
    certs: Vec<EntryFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    id: String,
    serial: String,
    not_before: String,
    not_after: String,
    revoked_at: Option<String>,
    source: String,
}

impl Index {
    fn empty() -> Self {
        Self {
            crl_number: 1,
            certs: Vec::new(),
        }
    }

    fn load(dir: &Path) -> Result<Self, CertError> {
        let path = dir.join(INDEX_FILE);
        let damaged = |reason: String| CertError::Index {
            path: path.clone(),
            reason,
        };
        if !path.exists() {
            return Err(if dir.join(CA_CERT_FILE).exists() {
                damaged("the file is missing".into())
            } else {
                CertError::NoCa {
                    dir: dir.to_owned(),
                }
            });
        }
        let text = read_string(&path)?;
        let file: IndexFile = serde_json::from_str(&text).map_err(|e| damaged(e.to_string()))?;
        if file.format != INDEX_FORMAT {
            return Err(damaged(format!(
                "format {} is not {INDEX_FORMAT}",
                file.format
            )));
        }
        let certs = file
            .certs
            .into_iter()
            .map(|e| {
                let time = |field: &str, value: &str| {
                    OffsetDateTime::parse(value, &Rfc3339)
                        .map_err(|err| damaged(format!("{} {field} {value:?}: {err}", e.id)))
                };
                Ok(CertEntry {
                    serial: e
                        .serial
                        .parse()
                        .map_err(|err| damaged(format!("{}: {err}", e.id)))?,
                    not_before: time("not_before", &e.not_before)?,
                    not_after: time("not_after", &e.not_after)?,
                    revoked_at: e
                        .revoked_at
                        .as_deref()
                        .map(|t| time("revoked_at", t))
                        .transpose()?,
                    from_csr: match e.source.as_str() {
                        "csr" => true,
                        "issued" => false,
                        other => {
                            return Err(damaged(format!(
                                "{}: source {other:?} is neither \"issued\" nor \"csr\"",
                                e.id
                            )));
                        }
                    },
                    id: e.id,
                })
            })
            .collect::<Result<Vec<_>, CertError>>()?;
        Ok(Self {
            crl_number: file.crl_number,
            certs,
        })
    }

    fn to_json(&self) -> String {
        let file = IndexFile {
            format: INDEX_FORMAT,
            crl_number: self.crl_number,
            certs: self
                .certs
                .iter()
                .map(|c| EntryFile {
                    id: c.id.clone(),
                    serial: c.serial.to_string(),
                    not_before: rfc3339(c.not_before),
                    not_after: rfc3339(c.not_after),
                    revoked_at: c.revoked_at.map(rfc3339),
                    source: if c.from_csr { "csr" } else { "issued" }.to_owned(),
                })
                .collect(),
        };
        // Serializing plain strings and numbers cannot fail.
        let mut json = serde_json::to_string_pretty(&file).unwrap_or_default();
        json.push('\n');
        json
    }

    /// `id`'s certificates that are neither revoked nor expired at `now`, soonest expiry first.
    fn valid_of(&self, id: &str, now: OffsetDateTime) -> Vec<CertEntry> {
        let mut valid: Vec<CertEntry> = self
            .certs
            .iter()
            .filter(|c| c.id == id && c.is_live(now))
            .cloned()
            .collect();
        valid.sort_by_key(|c| c.not_after);
        valid
    }

    fn save(&self, dir: &Path) -> Result<(), CertError> {
        write_atomic(
            &dir.join(INDEX_FILE),
            self.to_json().as_bytes(),
            Secrecy::Public,
        )
    }

    fn crl(&self, ca: &DevCa) -> Result<String, CertError> {
        let revoked: Vec<RevokedCert> = self
            .certs
            .iter()
            .filter_map(|c| {
                c.revoked_at.map(|at| RevokedCert {
                    serial: c.serial.clone(),
                    revoked_at: at,
                })
            })
            .collect();
        let now = now_secs();
        ca.crl_with(
            &revoked,
            now,
            now + Duration::days(CRL_VALIDITY_DAYS),
            self.crl_number,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::DEV_CA_CN;
    use crate::pki::test_support::*;
    use rcgen::KeyPair;
    use ring::signature::{self, Ed25519KeyPair, KeyPair as _};

    #[test]
    fn client_ids_are_safe_file_names() {
        for good in ["viettel", "mof-tax", "a", "0", "a.b_c-d", &"x".repeat(64)] {
            validate_client_id(good).unwrap();
        }
        for bad in [
            "",
            &"x".repeat(65),
            "Viettel",
            "../x",
            "a/b",
            "a\\b",
            ".hidden",
            "-x",
            "_x",
            "a b",
            "hà-nội",
            "x\0",
        ] {
            assert!(
                matches!(validate_client_id(bad), Err(CertError::InvalidId { .. })),
                "{bad:?}"
            );
        }
        for reserved in ["ca", "server", "audit", "index"] {
            assert!(matches!(
                validate_client_id(reserved),
                Err(CertError::ReservedId { .. })
            ));
        }
    }

    #[test]
    fn init_writes_every_file_with_private_keys_0600() {
        let tmp = tempdir();
        let dir = tmp.path().join("certs");
        let files = init(&dir).unwrap();
        for name in [
            CA_CERT_FILE,
            CA_KEY_FILE,
            SERVER_CERT_FILE,
            SERVER_KEY_FILE,
            CRL_FILE,
            AUDIT_KEY_FILE,
            AUDIT_PUB_FILE,
            INDEX_FILE,
        ] {
            assert!(files.contains(&dir.join(name)), "{name} not reported");
            assert!(dir.join(name).is_file(), "{name} not written");
        }
        #[cfg(unix)]
        for name in [CA_KEY_FILE, SERVER_KEY_FILE, AUDIT_KEY_FILE] {
            assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
        }
        let read = |name| fs::read_to_string(dir.join(name)).unwrap();
        let ca = DevCa::load(&dir).unwrap();
        assert_signed_by(&read(SERVER_CERT_FILE), &read(CA_CERT_FILE));
        let server_der = der(&read(SERVER_CERT_FILE));
        assert_eq!(ekus(&x509(&server_der)), (false, true));
        assert_eq!(cn_of(&x509(&der(ca.cert_pem()))), DEV_CA_CN);

        let crl_der = der(&read(CRL_FILE));
        let (_, crl) = x509_parser::parse_x509_crl(&crl_der).unwrap();
        assert_eq!(crl.iter_revoked_certificates().count(), 0);
        assert!(list(&dir).unwrap().is_empty());
        assert!(
            fs::read_dir(&dir)
                .unwrap()
                .all(|e| { !e.unwrap().file_name().to_string_lossy().ends_with(".tmp") })
        );
    }

    #[test]
    fn init_audit_key_is_ring_pkcs8_and_audit_pub_its_hex_public_key() {
        let tmp = tempdir();
        init(tmp.path()).unwrap();
        let pem = fs::read_to_string(tmp.path().join(AUDIT_KEY_FILE)).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let pkcs8 = der(&pem);
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap();
        let public = fs::read_to_string(tmp.path().join(AUDIT_PUB_FILE)).unwrap();
        assert_eq!(public.len(), 65);
        assert!(public.ends_with('\n'));
        assert!(
            public
                .trim_end()
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        let hex: String = pair
            .public_key()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(public.trim_end(), hex);
        // And the key signs what the public key verifies.
        let sig = pair.sign(b"checkpoint");
        signature::UnparsedPublicKey::new(&signature::ED25519, pair.public_key().as_ref())
            .verify(b"checkpoint", sig.as_ref())
            .unwrap();
    }

    #[test]
    fn init_refuses_to_replace_a_ca() {
        let tmp = tempdir();
        init(tmp.path()).unwrap();
        let before = fs::read_to_string(tmp.path().join(CA_KEY_FILE)).unwrap();
        let err = init(tmp.path()).unwrap_err();
        assert!(matches!(err, CertError::CaExists { .. }), "{err}");
        assert!(err.to_string().contains("refusing"));
        assert_eq!(
            fs::read_to_string(tmp.path().join(CA_KEY_FILE)).unwrap(),
            before
        );
    }

    #[test]
    fn issue_writes_cert_and_key_and_records_them() {
        let tmp = tempdir();
        let dir = tmp.path();
        init(dir).unwrap();
        let issued = issue(dir, "viettel", 30).unwrap();
        assert_eq!(issued.cert_path, dir.join("viettel.pem"));
        assert_eq!(
            issued.key_path.as_deref(),
            Some(dir.join("viettel.key").as_path())
        );
        #[cfg(unix)]
        assert_eq!(mode(&dir.join("viettel.key")), 0o600);
        let pem = fs::read_to_string(&issued.cert_path).unwrap();
        assert_signed_by(&pem, &fs::read_to_string(dir.join(CA_CERT_FILE)).unwrap());
        let d = der(&pem);
        let cert = x509(&d);
        assert_eq!(cn_of(&cert), "viettel");
        assert_eq!(ekus(&cert), (true, false));
        assert_eq!(Serial::from_bytes(cert.raw_serial()), issued.serial);
        let days =
            (cert.validity().not_after.to_datetime() - OffsetDateTime::now_utc()).whole_days();
        assert!((29..=30).contains(&days), "{days}");
        // The key on disk belongs to the certificate.
        let key = KeyPair::from_pem(&fs::read_to_string(dir.join("viettel.key")).unwrap()).unwrap();
        assert_eq!(
            key.public_key_raw(),
            cert.public_key().subject_public_key.data.as_ref()
        );

        let entries = list(dir).unwrap();
        assert_eq!(entries.len(), 1);
        let e = &entries[0];
        assert_eq!(
            (e.id.as_str(), &e.serial, e.from_csr),
            ("viettel", &issued.serial, false)
        );
        assert_eq!(e.not_after, issued.not_after);
        assert_eq!(e.state(OffsetDateTime::now_utc()), CertState::Valid);
        assert_eq!(
            e.state(e.not_after + Duration::seconds(1)),
            CertState::Expired
        );
        assert_eq!(
            e.state(e.not_before - Duration::seconds(1)),
            CertState::NotYetValid
        );
    }

    #[test]
    fn issue_refuses_bad_requests_and_writes_nothing() {
        let tmp = tempdir();
        let dir = tmp.path();
        assert!(matches!(
            issue(dir, "viettel", 30),
            Err(CertError::NoCa { .. })
        ));
        init(dir).unwrap();
        let before: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(matches!(
            issue(dir, "../evil", 30),
            Err(CertError::InvalidId { .. })
        ));
        assert!(matches!(
            issue(dir, "server", 30),
            Err(CertError::ReservedId { .. })
        ));
        assert!(matches!(
            issue(dir, "viettel", 0),
            Err(CertError::InvalidDays { days: 0 })
        ));
        assert!(matches!(
            issue(dir, "viettel", MAX_DAYS + 1),
            Err(CertError::InvalidDays { .. })
        ));
        let after: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(before.len(), after.len());

        let first = issue(dir, "viettel", 30).unwrap();
        assert!(first.still_valid.is_empty());
        // A renewal overlaps: the second certificate leaves the first valid.
        let second = issue(dir, "viettel", 60).unwrap();
        assert_eq!(second.still_valid.len(), 1);
        assert_eq!(second.still_valid[0].serial, first.serial);
        let index_before = fs::read_to_string(dir.join(INDEX_FILE)).unwrap();
        let pem_before = fs::read_to_string(dir.join("viettel.pem")).unwrap();
        let err = issue(dir, "viettel", 30).unwrap_err();
        assert!(matches!(err, CertError::TooManyValid { .. }), "{err}");
        let msg = err.to_string();
        // It names both serials, suggests revoking the one that expires first, and says why.
        assert!(msg.contains(&first.serial.to_string()), "{msg}");
        assert!(msg.contains(&second.serial.to_string()), "{msg}");
        assert!(
            msg.contains(&format!(
                "popgate certs revoke --dir {} --id viettel --serial {}",
                dir.display(),
                first.serial
            )),
            "{msg}"
        );
        assert!(msg.contains("at most 2"), "{msg}");
        assert!(!msg.contains('\n'));
        assert_eq!(
            fs::read_to_string(dir.join(INDEX_FILE)).unwrap(),
            index_before
        );
        assert_eq!(
            fs::read_to_string(dir.join("viettel.pem")).unwrap(),
            pem_before
        );

        fs::write(dir.join("stray.pem"), "not ours").unwrap();
        assert!(matches!(
            issue(dir, "stray", 30),
            Err(CertError::FileInTheWay { .. })
        ));
        assert_eq!(
            fs::read_to_string(dir.join("stray.pem")).unwrap(),
            "not ours"
        );
    }

    #[test]
    fn revoke_rewrites_the_crl_with_every_revoked_serial() {
        let tmp = tempdir();
        let dir = tmp.path();
        init(dir).unwrap();
        let first = issue(dir, "viettel", 30).unwrap();
        let other = issue(dir, "vnpt", 30).unwrap();
        let done = revoke(dir, "viettel").unwrap();
        assert_eq!(done.serials, vec![first.serial.clone()]);
        assert!(!done.already_revoked);
        assert_eq!(done.crl_path, dir.join(CRL_FILE));

        let crl_serials = |dir: &Path| -> (Vec<Serial>, u64) {
            let pem = fs::read_to_string(dir.join(CRL_FILE)).unwrap();
            let crl_der = der(&pem);
            let (_, crl) = x509_parser::parse_x509_crl(&crl_der).unwrap();
            let ca_pem = fs::read_to_string(dir.join(CA_CERT_FILE)).unwrap();
            let ca_der = der(&ca_pem);
            crl.verify_signature(x509(&ca_der).public_key()).unwrap();
            let number = crl
                .crl_number()
                .unwrap()
                .to_u64_digits()
                .first()
                .copied()
                .unwrap_or(0);
            (
                crl.iter_revoked_certificates()
                    .map(|r| Serial::from_bytes(r.raw_serial()))
                    .collect(),
                number,
            )
        };
        let (serials, n1) = crl_serials(dir);
        assert_eq!(serials, vec![first.serial.clone()]);

        let entries = list(dir).unwrap();
        let viettel = entries.iter().find(|e| e.id == "viettel").unwrap();
        assert_eq!(viettel.state(OffsetDateTime::now_utc()), CertState::Revoked);
        let vnpt = entries.iter().find(|e| e.id == "vnpt").unwrap();
        assert_eq!((vnpt.revoked_at, &vnpt.serial), (None, &other.serial));

        // Re-issuing after revocation is allowed, and the next CRL keeps the old serial.
        let second = issue(dir, "viettel", 30).unwrap();
        assert_ne!(second.serial, first.serial);
        revoke(dir, "viettel").unwrap();
        let (serials, n2) = crl_serials(dir);
        assert_eq!(serials.len(), 2);
        assert!(serials.contains(&first.serial) && serials.contains(&second.serial));
        assert!(n2 > n1, "CRL numbers must increase");

        // Revoking again only refreshes the CRL.
        let again = revoke(dir, "viettel").unwrap();
        assert!(again.already_revoked && again.serials.is_empty());
        assert_eq!(again.crl_entries, 2);
        let (_, n3) = crl_serials(dir);
        assert!(n3 > n2);

        assert!(matches!(
            revoke(dir, "nobody"),
            Err(CertError::NotIssued { .. })
        ));
        assert!(matches!(
            revoke(dir, "../ca"),
            Err(CertError::InvalidId { .. })
        ));
    }

    #[test]
    fn a_damaged_or_missing_index_is_an_error_not_an_empty_list() {
        let tmp = tempdir();
        let dir = tmp.path();
        init(dir).unwrap();
        issue(dir, "viettel", 30).unwrap();
        let index = dir.join(INDEX_FILE);
        let good = fs::read_to_string(&index).unwrap();
        for bad in [
            "",
            "{",
            "[]",
            "{\"format\": 2, \"crl_number\": 1, \"certs\": []}",
            &good.replace("\"issued\"", "\"stolen\""),
            &good.replace("\"serial\": \"", "\"serial\": \"zz"),
            &good.replace("Z\"", "\""),
        ] {
            fs::write(&index, bad).unwrap();
            let err = list(dir).expect_err(bad);
            assert!(matches!(err, CertError::Index { .. }), "{bad:?}: {err}");
            assert!(matches!(
                revoke(dir, "viettel"),
                Err(CertError::Index { .. })
            ));
        }
        // Without the index, earlier revocations would silently drop out of the next CRL.
        fs::remove_file(&index).unwrap();
        assert!(matches!(list(dir), Err(CertError::Index { .. })));
        assert!(matches!(
            issue(dir, "vnpt", 30),
            Err(CertError::Index { .. })
        ));
        assert!(matches!(
            list(&dir.join("nowhere")),
            Err(CertError::NoCa { .. })
        ));
    }

    #[test]
    fn sign_csr_on_disk_writes_the_cert_and_records_it() {
        let tmp = tempdir();
        let dir = tmp.path();
        init(dir).unwrap();
        let key = KeyPair::generate().unwrap();
        let issued = sign_csr(dir, &csr(Some("mof-tax"), &key), "mof-tax", 90).unwrap();
        assert!(issued.key_path.is_none());
        assert!(!client_key_path(dir, "mof-tax").exists());
        let pem = fs::read_to_string(client_cert_path(dir, "mof-tax")).unwrap();
        assert_signed_by(&pem, &fs::read_to_string(dir.join(CA_CERT_FILE)).unwrap());
        let entries = list(dir).unwrap();
        assert_eq!(entries.len(), 1);
        assert!(entries[0].from_csr);
        assert_eq!(entries[0].serial, issued.serial);

        // Two valid certificates per id, whichever way they were made.
        let renewal_key = KeyPair::generate().unwrap();
        let renewed = sign_csr(dir, &csr(Some("mof-tax"), &renewal_key), "mof-tax", 90).unwrap();
        assert_eq!(renewed.still_valid.len(), 1);
        assert_eq!(renewed.still_valid[0].serial, issued.serial);
        assert_eq!(
            Serial::of_cert_pem(&fs::read_to_string(client_cert_path(dir, "mof-tax")).unwrap())
                .unwrap(),
            renewed.serial,
            "<id>.pem holds the newest certificate"
        );
        assert!(matches!(
            sign_csr(dir, &csr(Some("mof-tax"), &key), "mof-tax", 90),
            Err(CertError::TooManyValid { .. })
        ));
        assert!(matches!(
            issue(dir, "mof-tax", 90),
            Err(CertError::TooManyValid { .. })
        ));
        // A refused CSR writes nothing.
        let before = fs::read_to_string(dir.join(INDEX_FILE)).unwrap();
        assert!(sign_csr(dir, RSA_1024_CSR, "weak-rsa", 90).is_err());
        assert!(!client_cert_path(dir, "weak-rsa").exists());
        assert_eq!(fs::read_to_string(dir.join(INDEX_FILE)).unwrap(), before);

        // Replacing an issued (now revoked) certificate by a CSR drops the stale key.
        issue(dir, "hanoi", 30).unwrap();
        revoke(dir, "hanoi").unwrap();
        sign_csr(dir, &csr(Some("hanoi"), &key), "hanoi", 30).unwrap();
        assert!(!client_key_path(dir, "hanoi").exists());
    }

    /// Sets `serial`'s validity in the index, as if it had been issued long ago.
    fn backdate(dir: &Path, serial: &Serial, not_after: OffsetDateTime) {
        let mut index = Index::load(dir).unwrap();
        for c in index.certs.iter_mut().filter(|c| c.serial == *serial) {
            c.not_before = not_after - Duration::days(365);
            c.not_after = not_after;
        }
        index.save(dir).unwrap();
    }

    #[test]
    fn expired_and_revoked_certificates_leave_room_for_new_ones() {
        let tmp = tempdir();
        let dir = tmp.path();
        init(dir).unwrap();
        let a = issue(dir, "viettel", 30).unwrap();
        let b = issue(dir, "viettel", 30).unwrap();
        assert!(matches!(
            issue(dir, "viettel", 30),
            Err(CertError::TooManyValid { .. })
        ));
        backdate(dir, &a.serial, now_secs() - Duration::days(1));
        let c = issue(dir, "viettel", 30).unwrap();
        assert_eq!(
            c.still_valid.iter().map(|e| &e.serial).collect::<Vec<_>>(),
            vec![&b.serial]
        );
        revoke_serial(dir, "viettel", &b.serial).unwrap();
        issue(dir, "viettel", 30).unwrap();
        let now = OffsetDateTime::now_utc();
        let states: Vec<CertState> = list(dir).unwrap().iter().map(|e| e.state(now)).collect();
        assert_eq!(
            states,
            [
                CertState::Expired,
                CertState::Revoked,
                CertState::Valid,
                CertState::Valid
            ]
        );
    }

    #[test]
    fn revoke_serial_revokes_that_one_and_refuses_serials_it_does_not_own() {
        let tmp = tempdir();
        let dir = tmp.path();
        init(dir).unwrap();
        let old = issue(dir, "viettel", 30).unwrap();
        let new = issue(dir, "viettel", 60).unwrap();
        let vnpt = issue(dir, "vnpt", 30).unwrap();

        let done = revoke_serial(dir, "viettel", &old.serial).unwrap();
        assert_eq!(done.serials, vec![old.serial.clone()]);
        assert!(!done.already_revoked);
        assert_eq!(
            done.still_valid
                .iter()
                .map(|e| &e.serial)
                .collect::<Vec<_>>(),
            vec![&new.serial]
        );
        assert_eq!(done.crl_entries, 1);
        let now = OffsetDateTime::now_utc();
        let state_of = |serial: &Serial| {
            list(dir)
                .unwrap()
                .into_iter()
                .find(|e| e.serial == *serial)
                .unwrap()
                .state(now)
        };
        assert_eq!(state_of(&old.serial), CertState::Revoked);
        assert_eq!(state_of(&new.serial), CertState::Valid);

        // Again: nothing to revoke, the CRL is refreshed.
        let again = revoke_serial(dir, "viettel", &old.serial).unwrap();
        assert!(again.already_revoked && again.serials.is_empty());
        assert_eq!(again.crl_entries, 1);

        // Refused, and nothing changes.
        let index_before = fs::read_to_string(dir.join(INDEX_FILE)).unwrap();
        let crl_before = fs::read_to_string(dir.join(CRL_FILE)).unwrap();
        let err = revoke_serial(dir, "viettel", &vnpt.serial).unwrap_err();
        assert!(matches!(err, CertError::SerialOfOther { .. }), "{err}");
        assert!(err.to_string().contains("\"vnpt\""), "{err}");
        let unknown: Serial = "40aa".parse().unwrap();
        let err = revoke_serial(dir, "viettel", &unknown).unwrap_err();
        assert!(matches!(err, CertError::UnknownSerial { .. }), "{err}");
        assert!(err.to_string().contains("popgate certs list"), "{err}");
        // A serial of nobody's, for an id with no certificate at all.
        assert!(matches!(
            revoke_serial(dir, "nobody", &unknown),
            Err(CertError::UnknownSerial { .. })
        ));
        assert_eq!(
            fs::read_to_string(dir.join(INDEX_FILE)).unwrap(),
            index_before
        );
        assert_eq!(fs::read_to_string(dir.join(CRL_FILE)).unwrap(), crl_before);
        assert_eq!(state_of(&vnpt.serial), CertState::Valid);
    }

    #[test]
    fn revoke_by_id_revokes_every_valid_certificate_of_the_id() {
        let tmp = tempdir();
        let dir = tmp.path();
        init(dir).unwrap();
        let a = issue(dir, "viettel", 30).unwrap();
        let b = issue(dir, "viettel", 60).unwrap();
        issue(dir, "vnpt", 30).unwrap();
        let done = revoke(dir, "viettel").unwrap();
        assert_eq!(done.serials, vec![a.serial, b.serial]);
        assert!(done.still_valid.is_empty());
        assert_eq!(done.crl_entries, 2);
        let now = OffsetDateTime::now_utc();
        assert!(
            list(dir)
                .unwrap()
                .iter()
                .all(|e| (e.id == "viettel") == (e.state(now) == CertState::Revoked))
        );
    }

    #[test]
    fn errors_say_what_to_do() {
        let tmp = tempdir();
        let msg = issue(tmp.path(), "viettel", 30).unwrap_err().to_string();
        assert!(msg.contains("popgate certs init --dir"), "{msg}");
        init(tmp.path()).unwrap();
        let msg = revoke(tmp.path(), "viettel").unwrap_err().to_string();
        assert!(msg.contains("popgate certs issue"), "{msg}");
        let msg = validate_client_id("A").unwrap_err().to_string();
        assert!(msg.contains("a-z"), "{msg}");
    }
}
