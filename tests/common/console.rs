//! Calling the audit console over real HTTPS, as a browser would: TLS with (or without) a
//! client certificate from the test CA, one HTTP/1.1 request per connection. For a gateway
//! started with [`super::Options::console`] (or [`super::TestGateway::start_with_console`]).
//!
//! For a browser: [`TestGateway::console_url`] is the address, [`TestGateway::client_cert_files`]
//! writes a client's certificate and key as PEM beside `ca.pem`, and the pages' stable hooks
//! (ids and `data-` attributes) are listed in `src/console/pages/mod.rs`.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use popgate::pki::CertPair;

use super::{Options, TestGateway};

/// The client `inspector` (role inspector: the console only), added to a console-enabled
/// gateway's clients.
pub const INSPECTOR: &str = r#"
[[clients]]
id = "inspector"
kind = "ministry"
role = "inspector"
rate_per_sec = 100000
burst = 100000
"#;

/// One answer of the console.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    /// Names lowercased, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the TLS session ended as when no answer came.
#[derive(Debug)]
pub struct Refused(pub String);

impl TestGateway {
    /// A gateway serving the audit console too, otherwise as [`TestGateway::start`].
    pub async fn start_with_console() -> TestGateway {
        Self::start_with(Options {
            console: true,
            ..Default::default()
        })
        .await
    }

    /// The console's address (`https://localhost:PORT/`; the server certificate names
    /// `localhost` and `127.0.0.1`).
    pub fn console_addr(&self) -> std::net::SocketAddr {
        self.console
            .expect("start the gateway with Options { console: true, .. }")
    }

    /// The console's base URL.
    pub fn console_url(&self) -> String {
        format!("https://localhost:{}", self.console_addr().port())
    }

    /// Writes client `id`'s certificate and key as PEM files (`certs/ID.pem`, `certs/ID.key`)
    /// beside the CA (`ca.pem`), for a browser or another program to present.
    pub fn client_cert_files(&self, id: &str) -> (PathBuf, PathBuf) {
        let pair = self.cert(id);
        let dir = self.path("certs");
        std::fs::create_dir_all(&dir).expect("certs dir");
        let (cert, key) = (dir.join(format!("{id}.pem")), dir.join(format!("{id}.key")));
        std::fs::write(&cert, &pair.cert_pem).expect("write cert");
        std::fs::write(&key, &pair.key_pem).expect("write key");
        (cert, key)
    }

    /// `GET path` (with its query) as client `id`.
    pub async fn console_get(&self, id: &str, path: &str) -> Page {
        self.console_request(Some(id), "GET", path, &[])
            .await
            .unwrap_or_else(|e| panic!("GET {path} as {id}: {e:?}"))
    }

    /// `POST path` (empty form) as client `id`, from the console's own page.
    pub async fn console_post(&self, id: &str, path: &str) -> Page {
        let origin = format!("https://localhost:{}", self.console_addr().port());
        self.console_request(Some(id), "POST", path, &[("origin", &origin)])
            .await
            .unwrap_or_else(|e| panic!("POST {path} as {id}: {e:?}"))
    }

    /// One request on a new connection: as client `id`, or without a client certificate
    /// (`None`). `Err` when no HTTP answer came (the TLS session was refused).
    pub async fn console_request(
        &self,
        id: Option<&str>,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Page, Refused> {
        let pair = id.map(|id| self.cert(id));
        request(
            self.ca.cert_pem(),
            pair.as_ref(),
            self.console_addr(),
            method,
            path,
            headers,
        )
        .await
    }
}

/// One request to the console at `addr` on a new connection, trusting the CA `ca_pem`, with
/// the client certificate `pair` (or none). `Err` when no HTTP answer came.
pub async fn request(
    ca_pem: &str,
    pair: Option<&CertPair>,
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Page, Refused> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(c.expect("CA pem")).expect("CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots);
    let mut config = match pair {
        Some(pair) => {
            let certs: Vec<CertificateDer<'static>> =
                rustls_pemfile::certs(&mut pair.cert_pem.as_bytes())
                    .collect::<Result<_, _>>()
                    .expect("cert pem");
            let key: PrivateKeyDer<'static> =
                rustls_pemfile::private_key(&mut pair.key_pem.as_bytes())
                    .expect("key pem")
                    .expect("a key");
            builder
                .with_client_auth_cert(certs, key)
                .expect("client cert")
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the console");
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .map_err(|e| Refused(format!("handshake: {e}")))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost:{}\r\nconnection: close\r\n",
        addr.port()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        req.push_str("content-type: application/x-www-form-urlencoded\r\ncontent-length: 0\r\n");
    }
    req.push_str("\r\n");
    // With TLS 1.3 the client's side of the handshake ends before the server has judged
    // its certificate: a refusal shows as an alert on the first read or write.
    tls.write_all(req.as_bytes())
        .await
        .map_err(|e| Refused(format!("write: {e}")))?;
    let mut raw = Vec::new();
    if let Err(e) = tls.read_to_end(&mut raw).await
        && raw.is_empty()
    {
        return Err(Refused(format!("read: {e}")));
    }
    if raw.is_empty() {
        return Err(Refused("the connection closed without an answer".into()));
    }
    let text = String::from_utf8(raw).expect("the console answers UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Page {
        status,
        headers,
        body: body.to_owned(),
    })
}
