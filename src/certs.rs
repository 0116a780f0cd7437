//! Certificates for popgate's mTLS: a development CA, the server certificate, client
//! certificates, CRLs, signing agencies' CSRs, and the Ed25519 key that signs audit checkpoints.
//!
//! Two layers:
//! - **in memory**, [`DevCa`]: what tests and `serve --dev` use to mint certificates, including
//!   deliberately bad ones (expired, not yet valid, server-only, from another CA) for the
//!   hostile-client tests;
//! - **on disk**, [`init`], [`issue`], [`revoke`], [`sign_csr`], [`list`]: a directory laid out
//!   as CONTRACT.md §2 says, plus `index.json`, the record of what was issued and revoked from
//!   which every CRL is rebuilt.
//!
//! This module only *issues*. Deciding whether a presented certificate is acceptable (chain,
//! CRL, CN → client) belongs to `identity`. Nothing here panics on a bad file or CSR: every
//! problem is a [`CertError`] that says what to do about it.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, Ed25519KeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    OID_PKCS1_RSASSAPSS, OID_PKCS1_SHA1WITHRSA, OID_PKCS1_SHA256WITHRSA, OID_PKCS1_SHA384WITHRSA,
    OID_PKCS1_SHA512WITHRSA, OID_SHA1_WITH_RSA, OID_SIG_ECDSA_WITH_SHA256,
    OID_SIG_ECDSA_WITH_SHA384, OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

/// Common Name of the CA that [`DevCa::generate`] and [`init`] create.
pub const DEV_CA_CN: &str = "popgate dev CA";
/// Names the server certificate of [`init`] is valid for: the dev gateway listens on loopback.
pub const DEFAULT_SERVER_HOSTS: &[&str] = &["localhost", "127.0.0.1", "::1"];
/// Validity of an issued client certificate when the operator does not say.
pub const DEFAULT_DAYS: u32 = 365;
/// Longest validity `issue` and `sign` accept: ten years is already far beyond good practice.
pub const MAX_DAYS: u32 = 3650;

/// File names inside a certificate directory (CONTRACT.md §2 "Files").
pub const CA_CERT_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca.key";
pub const SERVER_CERT_FILE: &str = "server.pem";
pub const SERVER_KEY_FILE: &str = "server.key";
pub const CRL_FILE: &str = "ca.crl";
pub const AUDIT_KEY_FILE: &str = "audit.key";
pub const AUDIT_PUB_FILE: &str = "audit.pub";
pub const INDEX_FILE: &str = "index.json";

/// Ids whose `<id>.pem`/`<id>.key` would overwrite the CA, server or audit files.
const RESERVED_IDS: &[&str] = &["ca", "server", "audit", "index"];
const CA_VALIDITY_DAYS: i64 = 3650;
const SERVER_VALIDITY_DAYS: i64 = 365;
/// Certificates start an hour in the past so that a peer whose clock is a little behind
/// does not reject a certificate issued a moment ago.
const BACKDATE: Duration = Duration::hours(1);
/// The dev CRL is only rewritten by `revoke`; a short nextUpdate would make a quiet dev
/// directory fail once a verifier enforces CRL expiry.
const CRL_VALIDITY_DAYS: i64 = 365;
/// ring verifies RSA signatures for moduli of 2048..=8192 bits.
const MIN_RSA_BITS: usize = 2048;
const MAX_RSA_BITS: usize = 8192;
const INDEX_FORMAT: u32 = 1;

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
        "client {id:?} already has a certificate that is not revoked (serial {serial}); revoke it first with \
         `popgate certs revoke --dir {dir} --id {id}`, then issue a new one",
        dir = dir.display()
    )]
    AlreadyIssued {
        dir: PathBuf,
        id: String,
        serial: Serial,
    },
    #[error(
        "no certificate for client {id:?} in {index}; issue one with `popgate certs issue --dir {dir} --id {id}`",
        index = dir.join(INDEX_FILE).display(),
        dir = dir.display()
    )]
    NotIssued { dir: PathBuf, id: String },
    #[error("{} exists but is not recorded in {INDEX_FILE}: move it away or choose another id", path.display())]
    FileInTheWay { path: PathBuf },
    #[error("{}: {reason}", path.display())]
    AuditKeyPath { path: PathBuf, reason: String },
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

/// A certificate serial number, shown as lowercase hex without separators (the form
/// `openssl x509 -serial` and the CRL use, minus the colons).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Serial(Vec<u8>);

impl Serial {
    /// 16 random bytes; the top bits are fixed at `01` so the DER integer is positive and
    /// exactly 16 bytes long, which keeps the hex form stable. 126 random bits make
    /// collisions a non-issue and serials unguessable.
    pub fn random() -> Result<Self, CertError> {
        let mut bytes = [0u8; 16];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| CertError::Random)?;
        bytes[0] = (bytes[0] & 0x3f) | 0x40;
        Ok(Self(bytes.to_vec()))
    }

    /// A serial from the content bytes of its DER integer (as `x509-parser`'s `raw_serial`).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The serial of the first certificate in `cert_pem`.
    pub fn of_cert_pem(cert_pem: &str) -> Result<Self, CertError> {
        let der = cert_der_from_pem(cert_pem, "the certificate")?;
        let (_, cert) =
            x509_parser::parse_x509_certificate(&der).map_err(|e| CertError::BadPem {
                what: "the certificate".into(),
                reason: format!("not an X.509 certificate ({e})"),
            })?;
        Ok(Self::from_bytes(cert.raw_serial()))
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl FromStr for Serial {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() % 2 != 0 {
            return Err(format!("serial {s:?} is not an even number of hex digits"));
        }
        (0..s.len())
            .step_by(2)
            .map(|i| {
                s.get(i..i + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                    .ok_or_else(|| format!("serial {s:?} is not hex"))
            })
            .collect::<Result<Vec<u8>, _>>()
            .map(Self)
    }
}

/// A certificate and its private key, both PEM.
#[derive(Clone, Debug)]
pub struct CertPair {
    pub cert_pem: String,
    /// PKCS#8 ("PRIVATE KEY"), ECDSA P-256.
    pub key_pem: String,
    pub serial: Serial,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// A certificate signed from a CSR: the private key stays with whoever made the CSR.
#[derive(Clone, Debug)]
pub struct SignedCert {
    pub cert_pem: String,
    pub serial: Serial,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// How [`DevCa::client_cert`] shapes a client certificate. Tests set odd values on purpose
/// (validity in the past or future, the wrong EKU) to build certificates a gateway must refuse.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// Give the certificate the serverAuth EKU instead of clientAuth: it chains to the CA
    /// but must not be accepted as a client.
    pub server_only_eku: bool,
}

impl ClientOptions {
    /// Valid from an hour ago for `days` days.
    pub fn valid_for_days(days: u32) -> Self {
        let now = now_secs();
        Self {
            not_before: now - BACKDATE,
            not_after: now.saturating_add(Duration::days(i64::from(days))),
            server_only_eku: false,
        }
    }
}

impl Default for ClientOptions {
    /// Valid from an hour ago for a year, clientAuth.
    fn default() -> Self {
        Self::valid_for_days(DEFAULT_DAYS)
    }
}

/// A revoked certificate as it appears in a CRL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedCert {
    pub serial: Serial,
    pub revoked_at: OffsetDateTime,
}

/// A CA that can sign server and client certificates and CRLs. Generated fresh
/// ([`DevCa::generate`]) or reloaded from PEM ([`DevCa::from_pem`], [`DevCa::load`]).
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    key_pem: String,
    /// How the CA's subject key identifier was made, so that CRLs carry a matching
    /// authority key identifier even for a CA created by another tool.
    key_id: KeyIdMethod,
}

impl fmt::Debug for DevCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevCa")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[elided]")
            .finish()
    }
}

impl DevCa {
    /// A new self-signed ECDSA P-256 CA with CN "popgate dev CA", valid for ten years.
    pub fn generate() -> Result<Self, CertError> {
        Self::generate_with_cn(DEV_CA_CN)
    }

    /// A new CA with another Common Name. With the same CN as a trusted CA it makes the
    /// "impostor CA" of a hostile-client test: same name, different key.
    pub fn generate_with_cn(cn: &str) -> Result<Self, CertError> {
        let now = now_secs();
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(cn);
        params.not_before = now - BACKDATE;
        params.not_after = now + Duration::days(CA_VALIDITY_DAYS);
        params.serial_number = Some(SerialNumber::from_slice(Serial::random()?.as_bytes()));
        // Path length 0: this CA signs leaves only, never another CA.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.key_identifier_method = KeyIdMethod::Sha256;
        let key = KeyPair::generate().map_err(CertError::Generate)?;
        let cert = params.self_signed(&key).map_err(CertError::Generate)?;
        let key_pem = key.serialize_pem();
        Ok(Self {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
            key_pem,
            key_id: KeyIdMethod::Sha256,
        })
    }

    /// Reloads a CA from its certificate and PKCS#8 private key. Refuses a certificate that
    /// is not a CA and a key that does not belong to it, since either would only produce
    /// certificates that fail to chain.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CertError> {
        let der = cert_der_from_pem(cert_pem, "the CA certificate")?;
        let (_, cert) =
            x509_parser::parse_x509_certificate(&der).map_err(|e| CertError::BadPem {
                what: "the CA certificate".into(),
                reason: format!("not an X.509 certificate ({e})"),
            })?;
        if !cert.is_ca() {
            return Err(CertError::NotCa);
        }
        let key = KeyPair::from_pem(key_pem).map_err(|e| CertError::BadPem {
            what: "the CA key".into(),
            reason: format!("expected an unencrypted PKCS#8 PEM private key ({e})"),
        })?;
        if key.public_key_raw() != cert.public_key().subject_public_key.data.as_ref() {
            return Err(CertError::CaKeyMismatch);
        }
        let key_id = cert
            .iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                    Some(KeyIdMethod::PreSpecified(id.0.to_vec()))
                }
                _ => None,
            })
            .unwrap_or(KeyIdMethod::Sha256);
        let issuer = Issuer::from_ca_cert_der(&der, key).map_err(|e| CertError::BadPem {
            what: "the CA certificate".into(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            issuer,
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            key_id,
        })
    }

    /// Loads `DIR/ca.pem` and `DIR/ca.key`.
    pub fn load(dir: &Path) -> Result<Self, CertError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        if !cert_path.exists() || !key_path.exists() {
            return Err(CertError::NoCa {
                dir: dir.to_owned(),
            });
        }
        let cert_pem = read_string(&cert_path)?;
        let key_pem = read_string(&key_path)?;
        Self::from_pem(&cert_pem, &key_pem).map_err(|e| match e {
            CertError::BadPem { what, reason } => CertError::BadPem {
                what: format!("{what} in {}", dir.display()),
                reason,
            },
            other => other,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// A server certificate (serverAuth) for `hosts`: IP addresses become IP SANs, anything
    /// else a DNS SAN. The CN is the first host, for tools that still look at it.
    pub fn server_cert(&self, hosts: &[&str]) -> Result<CertPair, CertError> {
        let first = hosts.first().ok_or(CertError::NoHosts)?;
        if let Some(bad) = hosts.iter().find(|h| h.is_empty() || !h.is_ascii()) {
            return Err(CertError::InvalidHost {
                host: (*bad).to_owned(),
                reason: "empty or not ASCII".into(),
            });
        }
        let names: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
        let mut params = CertificateParams::new(names).map_err(|e| CertError::InvalidHost {
            host: hosts.join(", "),
            reason: e.to_string(),
        })?;
        let now = now_secs();
        let (not_before, not_after) = (now - BACKDATE, now + Duration::days(SERVER_VALIDITY_DAYS));
        let serial = Serial::random()?;
        leaf_params(
            &mut params,
            first,
            not_before,
            not_after,
            ExtendedKeyUsagePurpose::ServerAuth,
            &serial,
        );
        self.sign_new_key(params, serial, not_before, not_after)
    }

    /// A client certificate whose subject CN is `cn` (the client id). `cn` is not checked
    /// here, so tests can mint certificates for unknown or odd names.
    pub fn client_cert(&self, cn: &str, opts: &ClientOptions) -> Result<CertPair, CertError> {
        let (not_before, not_after) = validity(opts)?;
        let serial = Serial::random()?;
        let mut params = CertificateParams::default();
        leaf_params(&mut params, cn, not_before, not_after, eku(opts), &serial);
        self.sign_new_key(params, serial, not_before, not_after)
    }

    /// Signs an agency's CSR as a client certificate for `id`. The CSR's signature must
    /// verify, its key must be ECDSA P-256 or RSA ≥ 2048, and its only CN must be `id`.
    /// Nothing else the CSR asks for (SANs, EKUs, other subject fields) is copied: the
    /// certificate says CN = `id`, clientAuth, and nothing more.
    pub fn sign_csr(
        &self,
        csr_pem: &str,
        id: &str,
        opts: &ClientOptions,
    ) -> Result<SignedCert, CertError> {
        let public_key = checked_csr_key(csr_pem, id)?;
        let (not_before, not_after) = validity(opts)?;
        let serial = Serial::random()?;
        let mut params = CertificateParams::default();
        leaf_params(&mut params, id, not_before, not_after, eku(opts), &serial);
        let cert = params
            .signed_by(&public_key, &self.issuer)
            .map_err(CertError::Generate)?;
        Ok(SignedCert {
            cert_pem: cert.pem(),
            serial,
            not_before,
            not_after,
        })
    }

    /// A CRL (PEM, "X509 CRL") listing `revoked`, issued now, with the current time as each
    /// revocation time and the CRL number.
    pub fn crl(
        &self,
        revoked: &[Serial],
        next_update: OffsetDateTime,
    ) -> Result<String, CertError> {
        let now = now_secs();
        let revoked: Vec<RevokedCert> = revoked
            .iter()
            .map(|serial| RevokedCert {
                serial: serial.clone(),
                revoked_at: now,
            })
            .collect();
        let number = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        self.crl_with(&revoked, now, next_update, number)
    }

    /// A CRL with every date and the CRL number chosen by the caller, e.g. a CRL whose
    /// nextUpdate has passed.
    pub fn crl_with(
        &self,
        revoked: &[RevokedCert],
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
        number: u64,
    ) -> Result<String, CertError> {
        let (this_update, next_update) = (x509_time(this_update)?, x509_time(next_update)?);
        if next_update <= this_update {
            return Err(CertError::InvalidValidity {
                not_before: this_update,
                not_after: next_update,
            });
        }
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|r| {
                    Ok(RevokedCertParams {
                        serial_number: SerialNumber::from_slice(r.serial.as_bytes()),
                        revocation_time: x509_time(r.revoked_at)?,
                        reason_code: None,
                        invalidity_date: None,
                    })
                })
                .collect::<Result<_, CertError>>()?,
            key_identifier_method: self.key_id.clone(),
        };
        let crl = params
            .signed_by(&self.issuer)
            .map_err(CertError::Generate)?;
        crl.pem().map_err(CertError::Generate)
    }

    fn sign_new_key(
        &self,
        params: CertificateParams,
        serial: Serial,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<CertPair, CertError> {
        let key = KeyPair::generate().map_err(CertError::Generate)?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(CertError::Generate)?;
        Ok(CertPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial,
            not_before,
            not_after,
        })
    }
}

fn eku(opts: &ClientOptions) -> ExtendedKeyUsagePurpose {
    if opts.server_only_eku {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }
}

fn validity(opts: &ClientOptions) -> Result<(OffsetDateTime, OffsetDateTime), CertError> {
    let (not_before, not_after) = (x509_time(opts.not_before)?, x509_time(opts.not_after)?);
    if not_after <= not_before {
        return Err(CertError::InvalidValidity {
            not_before,
            not_after,
        });
    }
    Ok((not_before, not_after))
}

fn leaf_params(
    params: &mut CertificateParams,
    cn: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    eku: ExtendedKeyUsagePurpose,
    serial: &Serial,
) {
    params.distinguished_name = common_name(cn);
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(SerialNumber::from_slice(serial.as_bytes()));
    // An explicit CA:FALSE, so no verifier can be talked into treating a leaf as a CA.
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![eku];
    // Lets verifiers pick the right CA key when the dev CA has been regenerated.
    params.use_authority_key_identifier_extension = true;
}

fn common_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// The agency's public key, once the CSR has passed every check, in the order that gives
/// the most useful message: an RSA-1024 CSR is "weak key", not "bad signature" (ring will
/// not even verify with keys that small).
fn checked_csr_key(csr_pem: &str, id: &str) -> Result<rcgen::SubjectPublicKeyInfo, CertError> {
    let der = csr_der_from_pem(csr_pem)?;
    let (_, csr) = X509CertificationRequest::from_der(&der).map_err(|e| CertError::CsrParse {
        reason: e.to_string(),
    })?;
    let info = &csr.certification_request_info;
    let key = accepted_key(&info.subject_pki)?;
    let verification = verification_algorithm(key, &csr.signature_algorithm.algorithm)?;
    signature::UnparsedPublicKey::new(verification, &info.subject_pki.subject_public_key.data)
        .verify(info.raw, &csr.signature_value.data)
        .map_err(|_| CertError::CsrSignature)?;

    let cns: Vec<_> = info.subject.iter_common_name().collect();
    let cn = match cns.as_slice() {
        [] => {
            return Err(CertError::CsrNoCn { id: id.to_owned() });
        }
        [one] => one
            .as_str()
            .map_err(|_| CertError::CsrNoCn { id: id.to_owned() })?,
        many => {
            return Err(CertError::CsrManyCn {
                id: id.to_owned(),
                count: many.len(),
            });
        }
    };
    if cn != id {
        return Err(CertError::CsrCnMismatch {
            cn: cn.to_owned(),
            id: id.to_owned(),
        });
    }
    rcgen::SubjectPublicKeyInfo::from_der(info.subject_pki.raw)
        .map_err(|e| CertError::CsrUnsupportedKey { key: e.to_string() })
}

#[derive(Clone, Copy)]
enum CsrKey {
    P256,
    Rsa,
}

fn accepted_key(spki: &SubjectPublicKeyInfo<'_>) -> Result<CsrKey, CertError> {
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        return match curve {
            Some(c) if c == OID_EC_P256 => Ok(CsrKey::P256),
            Some(c) if c == OID_NIST_EC_P384 => Err(CertError::CsrUnsupportedKey {
                key: "ECDSA P-384".into(),
            }),
            Some(c) => Err(CertError::CsrUnsupportedKey {
                key: format!("ECDSA on curve {c}"),
            }),
            None => Err(CertError::CsrUnsupportedKey {
                key: "ECDSA without a named curve".into(),
            }),
        };
    }
    if *alg == OID_PKCS1_RSAENCRYPTION {
        let bits = match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => modulus_bits(rsa.modulus),
            _ => {
                return Err(CertError::CsrParse {
                    reason: "the RSA public key cannot be decoded".into(),
                });
            }
        };
        return match bits {
            b if b < MIN_RSA_BITS => Err(CertError::CsrWeakKey { bits: b }),
            b if b > MAX_RSA_BITS => Err(CertError::CsrUnsupportedKey {
                key: format!("RSA of {b} bits"),
            }),
            _ => Ok(CsrKey::Rsa),
        };
    }
    let key = if *alg == OID_SIG_ED25519 {
        "Ed25519".to_owned()
    } else {
        format!("algorithm {alg}")
    };
    Err(CertError::CsrUnsupportedKey { key })
}

fn verification_algorithm(
    key: CsrKey,
    alg: &x509_parser::asn1_rs::Oid<'_>,
) -> Result<&'static dyn signature::VerificationAlgorithm, CertError> {
    let unsupported = |name: &str| CertError::CsrUnsupportedSignature {
        algorithm: name.to_owned(),
    };
    match key {
        CsrKey::P256 if *alg == OID_SIG_ECDSA_WITH_SHA256 => Ok(&signature::ECDSA_P256_SHA256_ASN1),
        CsrKey::P256 if *alg == OID_SIG_ECDSA_WITH_SHA384 => Ok(&signature::ECDSA_P256_SHA384_ASN1),
        CsrKey::Rsa if *alg == OID_PKCS1_SHA256WITHRSA => {
            Ok(&signature::RSA_PKCS1_2048_8192_SHA256)
        }
        CsrKey::Rsa if *alg == OID_PKCS1_SHA384WITHRSA => {
            Ok(&signature::RSA_PKCS1_2048_8192_SHA384)
        }
        CsrKey::Rsa if *alg == OID_PKCS1_SHA512WITHRSA => {
            Ok(&signature::RSA_PKCS1_2048_8192_SHA512)
        }
        _ if *alg == OID_PKCS1_SHA1WITHRSA || *alg == OID_SHA1_WITH_RSA => {
            Err(unsupported("sha1WithRSAEncryption (SHA-1 is broken)"))
        }
        _ if *alg == OID_PKCS1_RSASSAPSS => Err(unsupported("RSASSA-PSS")),
        _ => Err(unsupported(&format!("algorithm {alg}"))),
    }
}

/// Bits in a big-endian modulus, ignoring DER's leading zero bytes. (x509-parser's own
/// `key_size` assumes exactly one leading zero, which miscounts some moduli.)
fn modulus_bits(modulus: &[u8]) -> usize {
    let start = modulus
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(modulus.len());
    match modulus.get(start) {
        Some(first) => (modulus.len() - start) * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

// ---------------------------------------------------------------------------------------
// On disk
// ---------------------------------------------------------------------------------------

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
    let (audit_key_pem, audit_pub) = audit_key()?;

    let files: [(&str, &str, Secrecy); 8] = [
        (CA_KEY_FILE, ca.key_pem(), Secrecy::Private),
        (CA_CERT_FILE, ca.cert_pem(), Secrecy::Public),
        (SERVER_KEY_FILE, &server.key_pem, Secrecy::Private),
        (SERVER_CERT_FILE, &server.cert_pem, Secrecy::Public),
        (CRL_FILE, &crl, Secrecy::Public),
        (AUDIT_KEY_FILE, &audit_key_pem, Secrecy::Private),
        (AUDIT_PUB_FILE, &audit_pub, Secrecy::Public),
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

/// A new audit signing key at `key` (PKCS#8 PEM, mode 0600) and its public key as hex beside
/// it (`key` with the extension `.pub`), for rotating the key (OPERATIONS.md §8.3.2). Refuses
/// to overwrite either: an audit key replaced by mistake can no longer be told from a forger.
pub fn new_audit_key(key: &Path) -> Result<(PathBuf, PathBuf), CertError> {
    let public = key.with_extension("pub");
    if public == key {
        return Err(CertError::AuditKeyPath {
            path: key.to_owned(),
            reason:
                "must not end in .pub: that name is for its public key (use e.g. audit-2027.key)"
                    .into(),
        });
    }
    for path in [key, public.as_path()] {
        if path.exists() {
            return Err(CertError::AuditKeyPath {
                path: path.to_owned(),
                reason: "exists already; an audit key is never overwritten: choose another name"
                    .into(),
            });
        }
    }
    let (pem, hex) = audit_key()?;
    write_atomic(key, pem.as_bytes(), Secrecy::Private)?;
    write_atomic(&public, hex.as_bytes(), Secrecy::Public)?;
    Ok((key.to_owned(), public))
}

/// A fresh Ed25519 key for signing audit checkpoints: the PKCS#8 document exactly as ring
/// generates it, in PEM, and the raw public key as hex.
fn audit_key() -> Result<(String, String), CertError> {
    let pkcs8 =
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| CertError::Random)?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| CertError::Random)?;
    Ok((
        pem_encode("PRIVATE KEY", pkcs8.as_ref()),
        format!("{}\n", hex(pair.public_key().as_ref())),
    ))
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
}

/// Issues a client certificate and key for `id`, valid for `days` days, as `DIR/<id>.pem`
/// and `DIR/<id>.key`. Refuses if `id` already has a certificate that is not revoked.
pub fn issue(dir: &Path, id: &str, days: u32) -> Result<Issued, CertError> {
    validate_client_id(id)?;
    check_days(days)?;
    let ca = DevCa::load(dir)?;
    let mut index = Index::load(dir)?;
    check_free(dir, &index, id)?;
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
    })
}

/// Signs an agency's CSR (PEM) as `id`'s client certificate, valid for `days` days, and
/// writes `DIR/<id>.pem`. See [`DevCa::sign_csr`] for what is checked. A `DIR/<id>.key`
/// left from an earlier, revoked certificate is removed: it no longer matches.
pub fn sign_csr(dir: &Path, csr_pem: &str, id: &str, days: u32) -> Result<Issued, CertError> {
    validate_client_id(id)?;
    check_days(days)?;
    let ca = DevCa::load(dir)?;
    let mut index = Index::load(dir)?;
    check_free(dir, &index, id)?;
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
    })
}

/// What [`revoke`] did.
#[derive(Clone, Debug)]
pub struct Revocation {
    pub id: String,
    /// The serials revoked by this call; empty when `already_revoked`.
    pub serials: Vec<Serial>,
    pub already_revoked: bool,
    /// Every serial the new CRL lists.
    pub crl_entries: usize,
    pub crl_path: PathBuf,
}

/// Revokes every certificate of `id` that is not yet revoked and rewrites `DIR/ca.crl` with
/// all revoked serials. Revoking an id whose certificates are all revoked already is not an
/// error: it rewrites the CRL, which is how an operator refreshes it.
pub fn revoke(dir: &Path, id: &str) -> Result<Revocation, CertError> {
    validate_client_id(id)?;
    let ca = DevCa::load(dir)?;
    let mut index = Index::load(dir)?;
    if !index.certs.iter().any(|c| c.id == id) {
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
        .filter(|c| c.id == id && c.revoked_at.is_none())
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

/// One live certificate per id: a second one would leave the first valid and forgotten.
fn check_free(dir: &Path, index: &Index, id: &str) -> Result<(), CertError> {
    if let Some(live) = index
        .certs
        .iter()
        .find(|c| c.id == id && c.revoked_at.is_none())
    {
        return Err(CertError::AlreadyIssued {
            dir: dir.to_owned(),
            id: id.to_owned(),
            serial: live.serial.clone(),
        });
    }
    let known = index.certs.iter().any(|c| c.id == id);
    for path in [client_cert_path(dir, id), client_key_path(dir, id)] {
        if !known && path.exists() {
            return Err(CertError::FileInTheWay { path });
        }
    }
    Ok(())
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Secrecy {
    /// Mode 0600: only the owner may read a private key.
    Private,
    Public,
}

/// Writes through a temporary file and a rename, so a crash never leaves a half-written
/// key, CRL or index behind, and a private key is never readable by others even briefly.
fn write_atomic(path: &Path, contents: &[u8], secrecy: Secrecy) -> Result<(), CertError> {
    let wrap = |error| CertError::Write {
        path: path.to_owned(),
        error,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    // A leftover temporary file could carry looser permissions than we are about to set.
    let _ = fs::remove_file(&tmp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secrecy == Secrecy::Private {
            0o600
        } else {
            0o644
        });
    }
    #[cfg(not(unix))]
    let _ = secrecy;
    let mut file = options.open(&tmp).map_err(wrap)?;
    file.write_all(contents).map_err(wrap)?;
    file.sync_all().map_err(wrap)?;
    drop(file);
    fs::rename(&tmp, path).map_err(wrap)?;
    // Best effort: make the rename itself durable.
    if let Some(parent) = path.parent() {
        if let Ok(d) = fs::File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

fn read_string(path: &Path) -> Result<String, CertError> {
    fs::read_to_string(path).map_err(|error| CertError::Read {
        path: path.to_owned(),
        error,
    })
}

fn cert_der_from_pem(
    pem: &str,
    what: &str,
) -> Result<rustls::pki_types::CertificateDer<'static>, CertError> {
    let bad = |reason: String| CertError::BadPem {
        what: what.to_owned(),
        reason,
    };
    let mut rest = pem.as_bytes();
    loop {
        match rustls_pemfile::read_one_from_slice(rest) {
            Ok(Some((rustls_pemfile::Item::X509Certificate(der), _))) => return Ok(der),
            Ok(Some((_, next))) => rest = next,
            Ok(None) => return Err(bad("no PEM CERTIFICATE block".into())),
            Err(e) => return Err(bad(format!("broken PEM ({e:?})"))),
        }
    }
}

fn csr_der_from_pem(pem: &str) -> Result<Vec<u8>, CertError> {
    let mut rest = pem.as_bytes();
    loop {
        match rustls_pemfile::read_one_from_slice(rest) {
            Ok(Some((rustls_pemfile::Item::Csr(der), _))) => return Ok(der.as_ref().to_vec()),
            Ok(Some((_, next))) => rest = next,
            Ok(None) => {
                return Err(CertError::CsrParse {
                    reason: "no PEM CERTIFICATE REQUEST block".into(),
                });
            }
            Err(e) => {
                return Err(CertError::CsrParse {
                    reason: format!("broken PEM ({e:?})"),
                });
            }
        }
    }
}

/// PEM with 64-column base64 lines (RFC 7468).
fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sextet = |n: u32, shift: u32| char::from(ALPHABET[((n >> shift) & 63) as usize]);
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        out.push(sextet(n, 18));
        out.push(sextet(n, 12));
        out.push(if chunk.len() > 1 { sextet(n, 6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(n, 0) } else { '=' });
    }
    out
}

/// Lowercase hex, the one encoder the crate uses.
use crate::audit::chain::to_hex as hex;

/// Certificates carry whole seconds; truncating up front keeps `index.json` equal to what
/// the certificate says.
fn utc_secs(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.checked_to_offset(UtcOffset::UTC).unwrap_or(t);
    t.replace_nanosecond(0).unwrap_or(t)
}

/// [`utc_secs`], refusing the years X.509 cannot encode (rcgen would panic on them).
fn x509_time(t: OffsetDateTime) -> Result<OffsetDateTime, CertError> {
    let t = utc_secs(t);
    if (0..=9999).contains(&t.year()) {
        Ok(t)
    } else {
        Err(CertError::DateOutOfRange { date: t })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    use x509_parser::certificate::X509Certificate;

    /// `openssl req -new -newkey rsa:2048 -nodes -subj /CN=agency-rsa` (SHA-256).
    const RSA_2048_CSR: &str = "-----BEGIN CERTIFICATE REQUEST-----
MIICWjCCAUICAQAwFTETMBEGA1UEAwwKYWdlbmN5LXJzYTCCASIwDQYJKoZIhvcN
AQEBBQADggEPADCCAQoCggEBAK1retDGCpt4JqWTKFtR9RdXKmglHqC+hqv36ezt
HaLjsfxi5z46w7GiUqg8i6Qt10ViqTzCVt46/C5D+LRIkurZIQiKF5hxRPS9ssOt
PYDPwdUJAu0FiRt0/jMvhH1gv2cIXNHNQVAuVaAaYyfB2i7aDnNCJNT2GlAl0hAv
HsKAg70t7f4lWfZZjP0xB3q89dPJuPhjqooQoNOEvXKOlHvzPq+OSPuQICxDuKzg
p9IVGXmlloG3AJJ46VBafcYVYYnZy0/u1vvqVJnDiDXKhGBYGTtSfb0pqx4GrZYj
82BQYFb8k8ZIdbmEUeccRyN7nkK7owHpLLHBVj7RBF8QC1sCAwEAAaAAMA0GCSqG
SIb3DQEBCwUAA4IBAQAG1tx+HhJaxaLAT2pVjpGTMW734qxdchAoTLkmhdA0LPaY
MUxsLq+X8iaJ+LCJSA2XPg+jhjL7JXudQgkEmTiP5y2NpEfMTQkAD6NU8Sun1PGU
Xne4j/Eo6y32LlVOVnMPPwP58rkwbb/kLDGgha7o5oKqTWklvC7gAE+2z7bMPbfh
9s/CqkjB/utzO0rSAyRlE2QC5PSw2MtI6ro8ghQqyAjvc5ielE4duxcKDikZQFJY
bzSz0LMJ93nc2fY5H2pZbSV20Y5nxIY4Z41mz4vyFa4NDcUR0uSu/Lyaei028ubv
L2lZ6Z9O34/wQDfIA1bdael7E2BD/CFwC5B1t2Hs
-----END CERTIFICATE REQUEST-----
";

    /// `openssl req -new -newkey rsa:1024 -nodes -subj /CN=weak-rsa`.
    const RSA_1024_CSR: &str = "-----BEGIN CERTIFICATE REQUEST-----
MIIBUjCBvAIBADATMREwDwYDVQQDDAh3ZWFrLXJzYTCBnzANBgkqhkiG9w0BAQEF
AAOBjQAwgYkCgYEAlQLXOdynoP5pD048wbyaXzG+PnGA+2hVFejkPSI1NN1I/SAD
v/TTYz7SlbBLzJFSq57NA1FeeeOa40uUbCAQhksJegpw13lBB+tcmOM6igs3uMMt
JUR6SriroSRB3emWr6dkmIrFDCd5dAxLSCtlNH2lwgC1o3BOklrT0H5KlmkCAwEA
AaAAMA0GCSqGSIb3DQEBCwUAA4GBAAw6OJ7pkE/Q0PfOPaMFmW5rwAA/MVZs3EEY
N3JGFKgTuZU0EyCC3TbH/gczoea1bCLnJizlHsnnTpFl0NvdwvY3p9JCKSTBzrhz
sY8LcGOzDCGVrHf+E1Omx4SSKm3ynhh8x0zvgwNSa3YlFfVSX17BKvS0hANEtDoB
dtfsOsWT
-----END CERTIFICATE REQUEST-----
";

    /// The RSA-2048 key of [`RSA_2048_CSR`], signed with `-sha1`.
    const RSA_2048_SHA1_CSR: &str = "-----BEGIN CERTIFICATE REQUEST-----
MIICWjCCAUICAQAwFTETMBEGA1UEAwwKYWdlbmN5LXJzYTCCASIwDQYJKoZIhvcN
AQEBBQADggEPADCCAQoCggEBAK1retDGCpt4JqWTKFtR9RdXKmglHqC+hqv36ezt
HaLjsfxi5z46w7GiUqg8i6Qt10ViqTzCVt46/C5D+LRIkurZIQiKF5hxRPS9ssOt
PYDPwdUJAu0FiRt0/jMvhH1gv2cIXNHNQVAuVaAaYyfB2i7aDnNCJNT2GlAl0hAv
HsKAg70t7f4lWfZZjP0xB3q89dPJuPhjqooQoNOEvXKOlHvzPq+OSPuQICxDuKzg
p9IVGXmlloG3AJJ46VBafcYVYYnZy0/u1vvqVJnDiDXKhGBYGTtSfb0pqx4GrZYj
82BQYFb8k8ZIdbmEUeccRyN7nkK7owHpLLHBVj7RBF8QC1sCAwEAAaAAMA0GCSqG
SIb3DQEBBQUAA4IBAQCsN1XuPAfCxgUaMLHfqrfGv0rXQ4x99fI7Fp6GD1RWodf9
0R38dkK/m9/uV+1VoFg8m3KhGRQOKRJ2lSm0gJ7upyyaej6DSNlD6dOoaI+aQY3O
8HQDclHxs/UhtaPCyVw2QXnePHr3llprwC6CFJKxLNsOLOh2pk3UVfzsCTryCQsE
OIEw5e3WqgNXbarT1GjFVKmaOC17CvHXEELgIUWzcgj2QiwY6z5f5+PP9R8sjhp3
lu79y3oh4GsLr7EC8pG+jxcckDMcRPOnoJDWw6FJxuSW4Pm7yc7W9cn+icrSotj1
AlEYxJcGc1BPq4RI5o78nm8O6FKltut4koKNbnqV
-----END CERTIFICATE REQUEST-----
";

    fn der(pem: &str) -> Vec<u8> {
        match rustls_pemfile::read_one_from_slice(pem.as_bytes()) {
            Ok(Some((rustls_pemfile::Item::X509Certificate(d), _))) => d.to_vec(),
            Ok(Some((rustls_pemfile::Item::Crl(d), _))) => d.to_vec(),
            Ok(Some((rustls_pemfile::Item::Csr(d), _))) => d.as_ref().to_vec(),
            Ok(Some((rustls_pemfile::Item::Pkcs8Key(d), _))) => d.secret_pkcs8_der().to_vec(),
            other => panic!("unexpected PEM: {other:?}"),
        }
    }

    fn x509(der: &[u8]) -> X509Certificate<'_> {
        x509_parser::parse_x509_certificate(der).unwrap().1
    }

    fn cn_of(cert: &X509Certificate<'_>) -> String {
        cert.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// (clientAuth, serverAuth)
    fn ekus(cert: &X509Certificate<'_>) -> (bool, bool) {
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        (eku.client_auth, eku.server_auth)
    }

    fn assert_signed_by(child_pem: &str, ca_pem: &str) {
        let (child_der, ca_der) = (der(child_pem), der(ca_pem));
        let ca = x509(&ca_der);
        x509(&child_der)
            .verify_signature(Some(ca.public_key()))
            .expect("certificate is not signed by the CA");
    }

    fn csr(cn: Option<&str>, key: &KeyPair) -> String {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.serialize_request(key).unwrap().pem().unwrap()
    }

    fn tempdir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn generated_ca_is_a_p256_ca_named_popgate_dev_ca() {
        let ca = DevCa::generate().unwrap();
        let d = der(ca.cert_pem());
        let cert = x509(&d);
        assert!(cert.is_ca());
        assert_eq!(cn_of(&cert), DEV_CA_CN);
        assert_eq!(
            cert.public_key().algorithm.algorithm,
            OID_KEY_TYPE_EC_PUBLIC_KEY
        );
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.crl_sign());
        assert_signed_by(ca.cert_pem(), ca.cert_pem());
        assert!(
            !format!("{ca:?}").contains("PRIVATE KEY"),
            "Debug must not print the key"
        );
    }

    #[test]
    fn reloaded_ca_issues_certificates_that_chain_to_it() {
        let ca = DevCa::generate().unwrap();
        let again = DevCa::from_pem(ca.cert_pem(), ca.key_pem()).unwrap();
        let pair = again
            .client_cert("viettel", &ClientOptions::default())
            .unwrap();
        assert_signed_by(&pair.cert_pem, ca.cert_pem());
        // The authority key identifier must still match the CA's subject key identifier.
        let (ca_der, leaf_der) = (der(ca.cert_pem()), der(&pair.cert_pem));
        let (ca_cert, leaf) = (x509(&ca_der), x509(&leaf_der));
        let ski = ca_cert
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0),
                _ => None,
            })
            .unwrap();
        let aki = leaf
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => {
                    a.key_identifier.as_ref().map(|k| k.0)
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(ski, aki);
    }

    #[test]
    fn from_pem_refuses_bad_inputs_without_panicking() {
        let ca = DevCa::generate().unwrap();
        let other = DevCa::generate().unwrap();
        assert!(matches!(
            DevCa::from_pem(ca.cert_pem(), other.key_pem()),
            Err(CertError::CaKeyMismatch)
        ));
        let leaf = ca
            .client_cert("viettel", &ClientOptions::default())
            .unwrap();
        assert!(matches!(
            DevCa::from_pem(&leaf.cert_pem, &leaf.key_pem),
            Err(CertError::NotCa)
        ));
        for (cert, key) in [
            ("", ""),
            ("garbage", ca.key_pem()),
            (ca.key_pem(), ca.key_pem()),
            (ca.cert_pem(), ""),
            (ca.cert_pem(), ca.cert_pem()),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                ca.key_pem(),
            ),
            (
                "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
                ca.key_pem(),
            ),
        ] {
            let err = DevCa::from_pem(cert, key).unwrap_err();
            assert!(matches!(err, CertError::BadPem { .. }), "{err}");
        }
    }

    #[test]
    fn server_cert_has_dns_and_ip_sans_and_server_auth() {
        let ca = DevCa::generate().unwrap();
        let pair = ca.server_cert(&["localhost", "127.0.0.1", "::1"]).unwrap();
        assert_signed_by(&pair.cert_pem, ca.cert_pem());
        let d = der(&pair.cert_pem);
        let cert = x509(&d);
        assert_eq!(ekus(&cert), (false, true));
        assert!(!cert.is_ca());
        let sans = &cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names;
        use x509_parser::extensions::GeneralName;
        assert!(sans.contains(&GeneralName::DNSName("localhost")));
        assert!(sans.contains(&GeneralName::IPAddress(&[127, 0, 0, 1])));
        assert!(sans.contains(&GeneralName::IPAddress(
            &std::net::Ipv6Addr::LOCALHOST.octets()
        )));
        assert!(!sans.contains(&GeneralName::DNSName("127.0.0.1")));
        assert!(pair.key_pem.contains("BEGIN PRIVATE KEY"));

        assert!(matches!(ca.server_cert(&[]), Err(CertError::NoHosts)));
        assert!(matches!(
            ca.server_cert(&["hà-nội.vn"]),
            Err(CertError::InvalidHost { .. })
        ));
        assert!(matches!(
            ca.server_cert(&[""]),
            Err(CertError::InvalidHost { .. })
        ));
    }

    #[test]
    fn client_cert_has_cn_client_auth_and_a_unique_serial() {
        let ca = DevCa::generate().unwrap();
        let a = ca
            .client_cert("viettel", &ClientOptions::default())
            .unwrap();
        let b = ca
            .client_cert("viettel", &ClientOptions::default())
            .unwrap();
        assert_ne!(a.serial, b.serial);
        let d = der(&a.cert_pem);
        let cert = x509(&d);
        assert_eq!(cn_of(&cert), "viettel");
        assert_eq!(ekus(&cert), (true, false));
        assert!(!cert.is_ca());
        assert_eq!(Serial::from_bytes(cert.raw_serial()), a.serial);
        assert_eq!(Serial::of_cert_pem(&a.cert_pem).unwrap(), a.serial);
        assert_eq!(a.serial.as_bytes().len(), 16);
        assert_eq!(a.serial.to_string().len(), 32);
        assert_eq!(cert.validity().not_before.to_datetime(), a.not_before);
        assert_eq!(cert.validity().not_after.to_datetime(), a.not_after);
        let now = OffsetDateTime::now_utc();
        assert!(a.not_before < now && now < a.not_after);
        assert!(a.not_after - a.not_before > Duration::days(364));
    }

    #[test]
    fn client_options_build_the_hostile_matrix() {
        let ca = DevCa::generate().unwrap();
        let now = now_secs();
        let expired = ClientOptions {
            not_before: now - Duration::days(30),
            not_after: now - Duration::days(1),
            ..ClientOptions::default()
        };
        let pair = ca.client_cert("viettel", &expired).unwrap();
        let d = der(&pair.cert_pem);
        assert_eq!(
            x509(&d).validity().not_after.to_datetime(),
            now - Duration::days(1)
        );
        assert!(!x509(&d).validity().is_valid());

        let future = ClientOptions {
            not_before: now + Duration::days(1),
            not_after: now + Duration::days(30),
            ..ClientOptions::default()
        };
        let d = der(&ca.client_cert("viettel", &future).unwrap().cert_pem);
        assert!(!x509(&d).validity().is_valid());

        let server_only = ClientOptions {
            server_only_eku: true,
            ..ClientOptions::default()
        };
        let d = der(&ca.client_cert("viettel", &server_only).unwrap().cert_pem);
        assert_eq!(ekus(&x509(&d)), (false, true));

        let empty = ClientOptions {
            not_before: now,
            not_after: now,
            ..ClientOptions::default()
        };
        assert!(matches!(
            ca.client_cert("viettel", &empty),
            Err(CertError::InvalidValidity { .. })
        ));

        let ancient = ClientOptions {
            not_before: time::macros::datetime!(-0001-01-01 00:00 UTC),
            ..ClientOptions::default()
        };
        assert!(matches!(
            ca.client_cert("viettel", &ancient),
            Err(CertError::DateOutOfRange { .. })
        ));
        // Absurd lengths saturate at the end of year 9999 instead of overflowing.
        let far = ClientOptions::valid_for_days(u32::MAX);
        assert_eq!(
            ca.client_cert("viettel", &far).unwrap().not_after.year(),
            9999
        );
        let y1949 = ClientOptions {
            not_before: time::macros::datetime!(1949-06-01 00:00 UTC),
            ..ClientOptions::default()
        };
        ca.client_cert("viettel", &y1949).unwrap();

        // Any CN is accepted in memory, so tests can present unknown or odd identities.
        let d = der(&ca
            .client_cert("Nguyễn ../../etc", &ClientOptions::default())
            .unwrap()
            .cert_pem);
        assert_eq!(cn_of(&x509(&d)), "Nguyễn ../../etc");
    }

    #[test]
    fn crl_lists_the_revoked_serials_and_is_signed_by_the_ca() {
        let ca = DevCa::generate().unwrap();
        let revoked = ca
            .client_cert("viettel", &ClientOptions::default())
            .unwrap();
        let kept = ca.client_cert("vnpt", &ClientOptions::default()).unwrap();
        let next = now_secs() + Duration::days(7);
        let pem = ca.crl(std::slice::from_ref(&revoked.serial), next).unwrap();
        assert!(pem.starts_with("-----BEGIN X509 CRL-----"));
        let crl_der = der(&pem);
        let (_, crl) = x509_parser::parse_x509_crl(&crl_der).unwrap();
        let serials: Vec<Serial> = crl
            .iter_revoked_certificates()
            .map(|r| Serial::from_bytes(r.raw_serial()))
            .collect();
        assert_eq!(serials, vec![revoked.serial]);
        assert!(!serials.contains(&kept.serial));
        assert_eq!(crl.next_update().unwrap().to_datetime(), next);
        assert_eq!(cn_of_name(crl.issuer()), DEV_CA_CN);
        let ca_der = der(ca.cert_pem());
        crl.verify_signature(x509(&ca_der).public_key()).unwrap();

        let empty = ca.crl(&[], next).unwrap();
        let empty_der = der(&empty);
        let (_, crl) = x509_parser::parse_x509_crl(&empty_der).unwrap();
        assert_eq!(crl.iter_revoked_certificates().count(), 0);

        assert!(matches!(
            ca.crl(&[], now_secs() - Duration::days(1)),
            Err(CertError::InvalidValidity { .. })
        ));
    }

    #[test]
    fn crl_with_controls_every_date_and_the_number() {
        let ca = DevCa::generate().unwrap();
        let serial = Serial::random().unwrap();
        let this = now_secs() - Duration::days(10);
        let next = now_secs() - Duration::days(3);
        let at = now_secs() - Duration::days(20);
        let pem = ca
            .crl_with(
                &[RevokedCert {
                    serial: serial.clone(),
                    revoked_at: at,
                }],
                this,
                next,
                42,
            )
            .unwrap();
        let crl_der = der(&pem);
        let (_, crl) = x509_parser::parse_x509_crl(&crl_der).unwrap();
        assert_eq!(crl.last_update().to_datetime(), this);
        assert_eq!(crl.next_update().unwrap().to_datetime(), next);
        assert_eq!(crl.crl_number().unwrap(), &42u32.into());
        let entry = crl.iter_revoked_certificates().next().unwrap();
        assert_eq!(Serial::from_bytes(entry.raw_serial()), serial);
        assert_eq!(entry.revocation_date.to_datetime(), at);
    }

    fn cn_of_name(name: &x509_parser::x509::X509Name<'_>) -> String {
        name.iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn serial_hex_round_trips_and_rejects_junk() {
        let s = Serial::random().unwrap();
        assert_eq!(s.to_string().parse::<Serial>().unwrap(), s);
        assert_eq!(Serial::from_bytes(&[0x0a, 0xff]).to_string(), "0aff");
        for bad in ["", "a", "zz", "0g", "é1"] {
            assert!(bad.parse::<Serial>().is_err(), "{bad}");
        }
    }

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
    fn base64_and_pem_match_a_real_decoder() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
        let bytes: Vec<u8> = (0..=255).collect();
        let pem = pem_encode("CERTIFICATE REQUEST", &bytes);
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert_eq!(der(&pem), bytes);
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
        assert_eq!(public.trim_end(), hex(pair.public_key().as_ref()));
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

        issue(dir, "viettel", 30).unwrap();
        let err = issue(dir, "viettel", 30).unwrap_err();
        assert!(matches!(err, CertError::AlreadyIssued { .. }), "{err}");
        assert!(err.to_string().contains("popgate certs revoke"));

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
    fn a_p256_csr_with_the_right_cn_is_signed_for_client_auth_only() {
        let ca = DevCa::generate().unwrap();
        let key = KeyPair::generate().unwrap();
        // The CSR asks for more than it gets: serverAuth and a SAN are ignored.
        let mut params = CertificateParams::new(vec!["evil.example".to_owned()]).unwrap();
        params.distinguished_name = common_name("evn");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "EVN");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let csr_pem = params.serialize_request(&key).unwrap().pem().unwrap();
        let signed = ca
            .sign_csr(&csr_pem, "evn", &ClientOptions::default())
            .unwrap();
        assert_signed_by(&signed.cert_pem, ca.cert_pem());
        let d = der(&signed.cert_pem);
        let cert = x509(&d);
        assert_eq!(cert.subject().to_string(), "CN=evn");
        assert_eq!(ekus(&cert), (true, false));
        assert!(cert.subject_alternative_name().unwrap().is_none());
        assert_eq!(
            key.public_key_raw(),
            cert.public_key().subject_public_key.data.as_ref()
        );
        assert_eq!(Serial::from_bytes(cert.raw_serial()), signed.serial);
    }

    #[test]
    fn an_rsa_2048_csr_is_accepted() {
        let ca = DevCa::generate().unwrap();
        let signed = ca
            .sign_csr(RSA_2048_CSR, "agency-rsa", &ClientOptions::default())
            .unwrap();
        assert_signed_by(&signed.cert_pem, ca.cert_pem());
        let d = der(&signed.cert_pem);
        let cert = x509(&d);
        assert_eq!(
            cert.public_key().algorithm.algorithm,
            OID_PKCS1_RSAENCRYPTION
        );
        let csr_der = der(RSA_2048_CSR);
        let (_, csr) = X509CertificationRequest::from_der(&csr_der).unwrap();
        assert_eq!(
            cert.public_key().raw,
            csr.certification_request_info.subject_pki.raw,
            "the certificate must carry the CSR's key unchanged"
        );
    }

    #[test]
    fn a_csr_with_a_tampered_signature_is_refused() {
        let ca = DevCa::generate().unwrap();
        let key = KeyPair::generate().unwrap();
        let mut bytes = der(&csr(Some("moh"), &key));
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        let tampered = pem_encode("CERTIFICATE REQUEST", &bytes);
        let err = ca
            .sign_csr(&tampered, "moh", &ClientOptions::default())
            .unwrap_err();
        assert!(matches!(err, CertError::CsrSignature), "{err}");

        // Editing the subject after signing is caught the same way.
        let bytes = der(&csr(Some("moh"), &key));
        let at = bytes.windows(3).position(|w| w == b"moh").unwrap();
        let mut edited = bytes.clone();
        edited[at..at + 3].copy_from_slice(b"mof");
        let edited = pem_encode("CERTIFICATE REQUEST", &edited);
        let err = ca
            .sign_csr(&edited, "mof", &ClientOptions::default())
            .unwrap_err();
        assert!(matches!(err, CertError::CsrSignature), "{err}");

        let mut rsa = der(RSA_2048_CSR);
        let last = rsa.len() - 1;
        rsa[last] ^= 0x80;
        let err = ca
            .sign_csr(
                &pem_encode("CERTIFICATE REQUEST", &rsa),
                "agency-rsa",
                &ClientOptions::default(),
            )
            .unwrap_err();
        assert!(matches!(err, CertError::CsrSignature), "{err}");
    }

    #[test]
    fn weak_unsupported_and_misnamed_csrs_are_refused() {
        let ca = DevCa::generate().unwrap();
        let opts = ClientOptions::default();
        let err = ca.sign_csr(RSA_1024_CSR, "weak-rsa", &opts).unwrap_err();
        assert!(matches!(err, CertError::CsrWeakKey { bits: 1024 }), "{err}");
        assert!(err.to_string().contains("1024 bits"));

        let err = ca
            .sign_csr(RSA_2048_SHA1_CSR, "agency-rsa", &opts)
            .unwrap_err();
        assert!(
            matches!(err, CertError::CsrUnsupportedSignature { .. }),
            "{err}"
        );

        let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let err = ca.sign_csr(&csr(Some("x"), &p384), "x", &opts).unwrap_err();
        assert!(matches!(err, CertError::CsrUnsupportedKey { .. }), "{err}");
        assert!(err.to_string().contains("P-384"));

        let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let err = ca.sign_csr(&csr(Some("x"), &ed), "x", &opts).unwrap_err();
        assert!(matches!(err, CertError::CsrUnsupportedKey { .. }), "{err}");
        assert!(err.to_string().contains("Ed25519"));

        let key = KeyPair::generate().unwrap();
        let err = ca
            .sign_csr(&csr(Some("viettel"), &key), "vnpt", &opts)
            .unwrap_err();
        assert!(matches!(err, CertError::CsrCnMismatch { .. }), "{err}");
        assert!(err.to_string().contains("\"viettel\"") && err.to_string().contains("\"vnpt\""));
        // Case matters: the CN is compared with configured ids byte for byte.
        let err = ca
            .sign_csr(&csr(Some("VNPT"), &key), "vnpt", &opts)
            .unwrap_err();
        assert!(matches!(err, CertError::CsrCnMismatch { .. }), "{err}");

        let err = ca.sign_csr(&csr(None, &key), "vnpt", &opts).unwrap_err();
        assert!(matches!(err, CertError::CsrNoCn { .. }), "{err}");

        let mut two = CertificateParams::default();
        two.distinguished_name = common_name("vnpt");
        two.distinguished_name.push(DnType::CommonName, "viettel");
        let two_pem = two.serialize_request(&key).unwrap().pem().unwrap();
        let err = ca.sign_csr(&two_pem, "vnpt", &opts).unwrap_err();
        // rcgen keeps one entry per attribute type, so it may write only one CN.
        assert!(
            matches!(
                err,
                CertError::CsrManyCn { .. } | CertError::CsrCnMismatch { .. }
            ),
            "{err}"
        );

        for junk in [
            "",
            "hello",
            ca.cert_pem(),
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            "-----BEGIN CERTIFICATE REQUEST-----\n%%%%\n-----END CERTIFICATE REQUEST-----\n",
        ] {
            let err = ca.sign_csr(junk, "vnpt", &opts).unwrap_err();
            assert!(matches!(err, CertError::CsrParse { .. }), "{junk:?}: {err}");
        }
        let truncated = &RSA_2048_CSR[..RSA_2048_CSR.len() / 2];
        assert!(ca.sign_csr(truncated, "agency-rsa", &opts).is_err());
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

        // One live certificate per id, whichever way it was made.
        assert!(matches!(
            sign_csr(dir, &csr(Some("mof-tax"), &key), "mof-tax", 90),
            Err(CertError::AlreadyIssued { .. })
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

    /// What the gateway will do with these certificates: rustls's own client verifier, fed
    /// our CA and CRL, accepts the good client and refuses each hostile one.
    #[test]
    fn rustls_accepts_and_refuses_what_it_should() {
        use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
        use rustls::server::WebPkiClientVerifier;
        use std::sync::Arc;

        let ca = DevCa::generate().unwrap();
        let good = ca
            .client_cert("viettel", &ClientOptions::default())
            .unwrap();
        let revoked = ca.client_cert("vnpt", &ClientOptions::default()).unwrap();
        let now = now_secs();
        let expired = ca
            .client_cert(
                "viettel",
                &ClientOptions {
                    not_before: now - Duration::days(30),
                    not_after: now - Duration::days(1),
                    ..ClientOptions::default()
                },
            )
            .unwrap();
        let early = ca
            .client_cert(
                "viettel",
                &ClientOptions {
                    not_before: now + Duration::days(1),
                    not_after: now + Duration::days(30),
                    ..ClientOptions::default()
                },
            )
            .unwrap();
        let server_only = ca
            .client_cert(
                "viettel",
                &ClientOptions {
                    server_only_eku: true,
                    ..ClientOptions::default()
                },
            )
            .unwrap();
        let impostor = DevCa::generate()
            .unwrap()
            .client_cert("viettel", &ClientOptions::default())
            .unwrap();
        let stranger = DevCa::generate_with_cn("another agency's CA")
            .unwrap()
            .client_cert("viettel", &ClientOptions::default())
            .unwrap();
        let crl = ca
            .crl(
                std::slice::from_ref(&revoked.serial),
                now + Duration::days(1),
            )
            .unwrap();

        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(der(ca.cert_pem()))).unwrap();
        let verifier = WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .with_crls([CertificateRevocationListDer::from(der(&crl))])
        .build()
        .unwrap();
        let verify = |pair: &CertPair| {
            verifier.verify_client_cert(
                &CertificateDer::from(der(&pair.cert_pem)),
                &[],
                UnixTime::now(),
            )
        };
        verify(&good).expect("a good client certificate must be accepted");
        for (why, pair) in [
            ("Revoked", &revoked),
            ("Expired", &expired),
            ("NotValidYet", &early),
            ("InvalidPurpose", &server_only),
            // Same issuer name, different key.
            ("BadSignature", &impostor),
            ("UnknownIssuer", &stranger),
        ] {
            let err = verify(pair).expect_err(why);
            assert!(format!("{err:?}").contains(why), "want {why}, got {err:?}");
        }
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
