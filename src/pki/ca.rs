//! The CA in memory: [`DevCa`] signs server and client certificates and CRLs, from a key it
//! generated or one reloaded from PEM. Nothing here touches the disk except [`DevCa::load`].

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use time::{Duration, OffsetDateTime};

use super::csr::checked_csr_key;
use super::{CA_CERT_FILE, CA_KEY_FILE, CertError, DEFAULT_DAYS, DEV_CA_CN, now_secs};
use super::{read_string, utc_secs};

const CA_VALIDITY_DAYS: i64 = 3650;
const SERVER_VALIDITY_DAYS: i64 = 365;
/// Certificates start an hour in the past so that a peer whose clock is a little behind
/// does not reject a certificate issued a moment ago.
const BACKDATE: Duration = Duration::hours(1);

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
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl FromStr for Serial {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || !s.len().is_multiple_of(2) {
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

pub(super) fn common_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
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

/// [`utc_secs`], refusing the years X.509 cannot encode (rcgen would panic on them).
fn x509_time(t: OffsetDateTime) -> Result<OffsetDateTime, CertError> {
    let t = utc_secs(t);
    if (0..=9999).contains(&t.year()) {
        Ok(t)
    } else {
        Err(CertError::DateOutOfRange { date: t })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::test_support::*;
    use x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY;

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
}
