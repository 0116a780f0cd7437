//! Checking an agency's CSR before [`DevCa::sign_csr`](super::DevCa::sign_csr) signs it: the
//! signature verifies with the CSR's own key, the key is ECDSA P-256 or RSA of 2048 to 8192
//! bits, the signature uses SHA-256 or stronger, and the subject's only CN is the client id.
//! Only the key survives: nothing else the CSR asks for reaches the certificate.

use ring::signature;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    OID_PKCS1_RSASSAPSS, OID_PKCS1_SHA1WITHRSA, OID_PKCS1_SHA256WITHRSA, OID_PKCS1_SHA384WITHRSA,
    OID_PKCS1_SHA512WITHRSA, OID_SHA1_WITH_RSA, OID_SIG_ECDSA_WITH_SHA256,
    OID_SIG_ECDSA_WITH_SHA384, OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::CertError;

/// ring verifies RSA signatures for moduli of 2048..=8192 bits.
const MIN_RSA_BITS: usize = 2048;
const MAX_RSA_BITS: usize = 8192;

/// The agency's public key, once the CSR has passed every check, in the order that gives
/// the most useful message: an RSA-1024 CSR is "weak key", not "bad signature" (ring will
/// not even verify with keys that small).
pub(super) fn checked_csr_key(
    csr_pem: &str,
    id: &str,
) -> Result<rcgen::SubjectPublicKeyInfo, CertError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::ca::common_name;
    use crate::pki::test_support::*;
    use crate::pki::{ClientOptions, DevCa, Serial};
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};

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
}
