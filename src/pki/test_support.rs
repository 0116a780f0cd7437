//! What the unit tests of `ca`, `csr` and `dir` share: CSRs made by OpenSSL (rcgen cannot
//! make RSA or SHA-1 ones), and short ways to decode and inspect what was issued.

use std::fs;
use std::path::Path;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use x509_parser::certificate::X509Certificate;

/// `openssl req -new -newkey rsa:2048 -nodes -subj /CN=agency-rsa` (SHA-256).
pub(crate) const RSA_2048_CSR: &str = "-----BEGIN CERTIFICATE REQUEST-----
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
pub(crate) const RSA_1024_CSR: &str = "-----BEGIN CERTIFICATE REQUEST-----
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
pub(crate) const RSA_2048_SHA1_CSR: &str = "-----BEGIN CERTIFICATE REQUEST-----
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

pub(crate) fn der(pem: &str) -> Vec<u8> {
    match rustls_pemfile::read_one_from_slice(pem.as_bytes()) {
        Ok(Some((rustls_pemfile::Item::X509Certificate(d), _))) => d.to_vec(),
        Ok(Some((rustls_pemfile::Item::Crl(d), _))) => d.to_vec(),
        Ok(Some((rustls_pemfile::Item::Csr(d), _))) => d.as_ref().to_vec(),
        Ok(Some((rustls_pemfile::Item::Pkcs8Key(d), _))) => d.secret_pkcs8_der().to_vec(),
        other => panic!("unexpected PEM: {other:?}"),
    }
}

pub(crate) fn x509(der: &[u8]) -> X509Certificate<'_> {
    x509_parser::parse_x509_certificate(der).unwrap().1
}

pub(crate) fn cn_of(cert: &X509Certificate<'_>) -> String {
    cert.subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

/// (clientAuth, serverAuth)
pub(crate) fn ekus(cert: &X509Certificate<'_>) -> (bool, bool) {
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    (eku.client_auth, eku.server_auth)
}

pub(crate) fn assert_signed_by(child_pem: &str, ca_pem: &str) {
    let (child_der, ca_der) = (der(child_pem), der(ca_pem));
    let ca = x509(&ca_der);
    x509(&child_der)
        .verify_signature(Some(ca.public_key()))
        .expect("certificate is not signed by the CA");
}

pub(crate) fn csr(cn: Option<&str>, key: &KeyPair) -> String {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    if let Some(cn) = cn {
        params.distinguished_name.push(DnType::CommonName, cn);
    }
    params.serialize_request(key).unwrap().pem().unwrap()
}

pub(crate) fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[cfg(unix)]
pub(crate) fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// PEM of `der` under `label`, for CSRs altered after signing.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new(label, der), config)
}
