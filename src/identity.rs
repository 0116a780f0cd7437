//! Who is calling: the server's TLS setup and the caller's certificate.
//!
//! Every connection is TLS 1.3 with a client certificate issued by the configured CA, not
//! revoked by the CRL. The caller's identity is the certificate subject's Common Name; it is
//! read once per connection into a [`Peer`], which tonic hands to every request on that
//! connection. Whether that CN is a configured client is decided per call by `policy`, so a
//! client removed or revoked on reload is refused on connections it opened before. The
//! certificate's expiry is read at the same time, so that `metrics` can watch renewals with
//! one check per call ([`Peer::first_noted`]).

use std::collections::HashSet;
use std::io::BufReader;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use thiserror::Error;

use crate::config::TlsConfig;
use crate::hex::to_hex;

/// TLS material that cannot be used; the message names the file and what to do.
#[derive(Debug, Error)]
pub enum TlsError {
    #[error("{key}: cannot read {path}: {source}")]
    Read {
        key: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{key}: {path} holds no {what} (expected PEM)")]
    Empty {
        key: &'static str,
        path: String,
        what: &'static str,
    },
    #[error("{key}: {path} is not valid: {reason}")]
    Invalid {
        key: &'static str,
        path: String,
        reason: String,
    },
}

/// The caller at the other end of one connection, as its certificate says.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    /// `addr` as the audit log writes it. Formatted once per connection and shared by the
    /// records of all its calls, like `cert_sha256`.
    pub addr_text: Arc<str>,
    /// The subject's Common Name; `None` when the certificate has none.
    pub common_name: Option<String>,
    /// Hex SHA-256 of the certificate's DER, for the audit log.
    pub cert_sha256: Arc<str>,
    /// The certificate's serial number, big-endian bytes, to check against the CRL per call.
    pub serial: Vec<u8>,
    /// When the certificate expires, Unix seconds; `None` if it could not be read. A client
    /// may hold two certificates during a renewal, so this is per connection, not per client.
    pub not_after: Option<i64>,
    /// Set by the first call that took note of this connection's certificate (see
    /// [`Peer::first_noted`]).
    noted: OnceLock<()>,
}

impl Peer {
    pub fn new(
        addr: SocketAddr,
        common_name: Option<String>,
        cert_sha256: Arc<str>,
        serial: Vec<u8>,
        not_after: Option<i64>,
    ) -> Peer {
        Peer {
            addr,
            addr_text: addr.to_string().into(),
            common_name,
            cert_sha256,
            serial,
            not_after,
            noted: OnceLock::new(),
        }
    }

    /// Reads the identity from the leaf certificate the handshake verified.
    pub fn from_certificate(addr: SocketAddr, der: &[u8]) -> Peer {
        let fingerprint = ring::digest::digest(&ring::digest::SHA256, der);
        let (common_name, serial, not_after) = match x509_parser::parse_x509_certificate(der) {
            Ok((_, cert)) => (
                cert.subject()
                    .iter_common_name()
                    .next()
                    .and_then(|cn| cn.as_str().ok())
                    .map(str::to_owned),
                cert.raw_serial().to_vec(),
                Some(cert.validity().not_after.timestamp()),
            ),
            // rustls has verified it already, so this is unreachable in practice; an
            // unreadable certificate simply has no identity and every call is refused.
            Err(_) => (None, Vec::new(), None),
        };
        Peer::new(
            addr,
            common_name,
            to_hex(fingerprint.as_ref()).into(),
            serial,
            not_after,
        )
    }

    /// `true` the first time it is asked on this connection, `false` ever after: what is done
    /// once per certificate (the expiry watch) costs later calls one atomic load.
    pub fn first_noted(&self) -> bool {
        self.noted.set(()).is_ok()
    }
}

/// The server's TLS configuration plus the revoked serials, loaded together so a reload
/// swaps both at once.
pub struct TlsMaterial {
    pub server_config: Arc<ServerConfig>,
    pub revoked: Arc<HashSet<Vec<u8>>>,
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.display().to_string(),
        source,
    })
}

fn invalid(key: &'static str, path: &Path, reason: impl ToString) -> TlsError {
    TlsError::Invalid {
        key,
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Reads the certificates of a PEM file; at least one.
pub fn load_certs(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(key, path)?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(pem.as_slice()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(key, path, e))?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            key,
            path: path.display().to_string(),
            what: "certificate",
        });
    }
    Ok(certs)
}

fn load_key(key: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(key, path)?;
    rustls_pemfile::private_key(&mut BufReader::new(pem.as_slice()))
        .map_err(|e| invalid(key, path, e))?
        .ok_or_else(|| TlsError::Empty {
            key,
            path: path.display().to_string(),
            what: "private key",
        })
}

fn load_crls(
    path: &Path,
) -> Result<(Vec<CertificateRevocationListDer<'static>>, HashSet<Vec<u8>>), TlsError> {
    let pem = read("tls.crl", path)?;
    let crls = rustls_pemfile::crls(&mut BufReader::new(pem.as_slice()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("tls.crl", path, e))?;
    if crls.is_empty() {
        return Err(TlsError::Empty {
            key: "tls.crl",
            path: path.display().to_string(),
            what: "CRL",
        });
    }
    let mut revoked = HashSet::new();
    for crl in &crls {
        let (_, parsed) =
            x509_parser::parse_x509_crl(crl.as_ref()).map_err(|e| invalid("tls.crl", path, e))?;
        for r in parsed.iter_revoked_certificates() {
            revoked.insert(r.raw_serial().to_vec());
        }
    }
    Ok((crls, revoked))
}

/// Builds the server's TLS 1.3 configuration with required, CRL-checked client certificates.
pub fn load(tls: &TlsConfig) -> Result<TlsMaterial, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = load_certs("tls.cert", &tls.cert)?;
    let key = load_key("tls.key", &tls.key)?;
    let mut roots = RootCertStore::empty();
    for ca in load_certs("tls.client_ca", &tls.client_ca)? {
        roots
            .add(ca)
            .map_err(|e| invalid("tls.client_ca", &tls.client_ca, e))?;
    }
    let mut verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    let mut revoked = HashSet::new();
    if let Some(path) = &tls.crl {
        let (crls, serials) = load_crls(path)?;
        revoked = serials;
        // Only leaf certificates are revoked by our CA; there are no intermediates to check.
        verifier = verifier
            .with_crls(crls)
            .only_check_end_entity_revocation()
            .allow_unknown_revocation_status();
    }
    let verifier = verifier
        .build()
        .map_err(|e| invalid("tls.client_ca", &tls.client_ca, e))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| invalid("tls.cert", &tls.cert, e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| invalid("tls.key", &tls.key, format!("does not fit tls.cert: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(TlsMaterial {
        server_config: Arc::new(config),
        revoked: Arc::new(revoked),
    })
}

/// When the first certificate in the PEM file at `path` expires, as Unix seconds.
pub fn not_after(path: &Path) -> Option<i64> {
    let der = load_certs("tls.cert", path).ok()?.into_iter().next()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    Some(cert.validity().not_after.timestamp())
}
