//! The gRPC client side: an mTLS channel to the gateway, used by `popgate lookup|verify`, the load generator
//! (`popgate-bench`), the tests and the examples' documentation. Clients should keep their
//! connection open: a handshake costs far more than a call.

use std::path::Path;
use std::time::Duration;

use thiserror::Error;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

// `cause`, not `source`: the message carries it, and a chain printer (anyhow's `{:#}`) would
// repeat it.
#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot read {what} {path}: {cause}")]
    Read {
        what: &'static str,
        path: String,
        cause: std::io::Error,
    },
    #[error("cannot connect to {addr}: {cause}")]
    Connect {
        addr: String,
        cause: tonic::transport::Error,
    },
}

/// A refused call as a command-line client reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The canonical gRPC name of the code, as in the gRPC docs: `PERMISSION_DENIED`.
    pub code: String,
    pub message: String,
    /// From the `retry-after-ms` metadata of a rate-limited call.
    pub retry_after_ms: Option<String>,
}

impl From<&tonic::Status> for Refusal {
    fn from(status: &tonic::Status) -> Refusal {
        let mut code = String::new();
        for (i, c) in format!("{:?}", status.code()).chars().enumerate() {
            if c.is_uppercase() && i > 0 {
                code.push('_');
            }
            code.push(c.to_ascii_uppercase());
        }
        Refusal {
            code,
            message: status.message().to_owned(),
            retry_after_ms: status
                .metadata()
                .get("retry-after-ms")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        }
    }
}

/// PEM material for one client identity.
#[derive(Clone)]
pub struct ClientTls {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl ClientTls {
    pub fn from_files(ca: &Path, cert: &Path, key: &Path) -> Result<ClientTls, ClientError> {
        let read = |what, p: &Path| {
            std::fs::read_to_string(p).map_err(|cause| ClientError::Read {
                what,
                path: p.display().to_string(),
                cause,
            })
        };
        Ok(ClientTls {
            ca_pem: read("CA certificate", ca)?,
            cert_pem: read("client certificate", cert)?,
            key_pem: read("client key", key)?,
        })
    }
}

/// Opens an mTLS channel to `addr` (host:port). The server certificate must name
/// `server_name` (the dev certificates name `localhost` and `127.0.0.1`).
pub async fn connect(
    addr: &str,
    server_name: &str,
    tls: &ClientTls,
) -> Result<Channel, ClientError> {
    let err = |cause| ClientError::Connect {
        addr: addr.to_owned(),
        cause,
    };
    let tls_config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&tls.ca_pem))
        .identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem))
        .domain_name(server_name);
    Endpoint::from_shared(format!("https://{addr}"))
        .map_err(err)?
        .tls_config(tls_config)
        .map_err(err)?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
        .http2_adaptive_window(true)
        .connect()
        .await
        .map_err(err)
}
