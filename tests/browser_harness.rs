//! The browser harness against a small HTTPS site in this process that, like the audit
//! console, requires a client certificate from the test CA: a browser holding one gets
//! pages and a CSV through its own TLS session, a browser without one gets no session.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::browser::{Browser, base64_decode};
use popgate::pki::{ClientOptions, DevCa};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The site: its address and how many requests it has answered.
struct Site {
    addr: SocketAddr,
    answered: Arc<AtomicUsize>,
}

impl Site {
    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }
}

/// Serves the site on `127.0.0.1:0` with a server certificate from `ca`, requiring a client
/// certificate from `ca` (rustls' `WebPkiClientVerifier`, as the gateway does).
async fn serve(ca: &DevCa) -> Site {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = ca.server_cert(&["localhost", "127.0.0.1"]).expect("cert");
    let chain = vec![CertificateDer::from_pem_slice(server.cert_pem.as_bytes()).expect("pem")];
    let key = PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes()).expect("key");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).expect("ca"))
        .expect("root");
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("verifier");
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .expect("server config");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let answered = Arc::new(AtomicUsize::new(0));
    let counter = answered.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut tcp = tcp;
                let mut tls = match acceptor.accept(&mut tcp).await {
                    Ok(tls) => tls,
                    Err(_) => {
                        // A refused handshake is the point of some tests. rustls has sent its
                        // alert; hanging up with the client's last flight still unread would
                        // send a reset that can overtake the alert, so close our side and
                        // read until the browser closes its own.
                        let _ = tcp.shutdown().await;
                        let mut sink = [0u8; 4096];
                        let drain =
                            async { while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {} };
                        let _ =
                            tokio::time::timeout(std::time::Duration::from_secs(5), drain).await;
                        return;
                    }
                };
                let cn = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|certs| certs.first())
                    .map(|der| common_name(der))
                    .unwrap_or_default();
                let mut request = Vec::new();
                let mut chunk = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 65536 {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&request);
                let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (status, content_type, body) = answer(&target, &cn);
                counter.fetch_add(1, Ordering::SeqCst);
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    Site { addr, answered }
}

fn common_name(der: &CertificateDer<'_>) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(der).expect("client cert");
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The site's pages: a form, its answer, and a CSV naming the client certificate's CN.
fn answer(target: &str, cn: &str) -> (&'static str, &'static str, String) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    match path {
        "/" => (
            "200 OK",
            "text/html; charset=utf-8",
            format!(
                "<!doctype html><html><head><title>Harness</title></head><body>\
                 <h1 id=\"who\">Hello, {cn}</h1>\
                 <form id=\"search\" action=\"/search\" method=\"get\">\
                 <input id=\"citizen\" name=\"citizen\"><button type=\"submit\">Search</button>\
                 </form><a id=\"csv\" href=\"/report.csv\">CSV</a></body></html>"
            ),
        ),
        "/search" => {
            let citizen = query
                .split('&')
                .find_map(|pair| pair.strip_prefix("citizen="))
                .unwrap_or_default();
            (
                "200 OK",
                "text/html; charset=utf-8",
                format!(
                    "<!doctype html><html><head><title>Search</title></head><body>\
                     <p id=\"query\">{citizen}</p></body></html>"
                ),
            )
        }
        "/report.csv" => (
            "200 OK",
            "text/csv; charset=utf-8",
            format!("client,path\r\n{cn},/report.csv\r\n"),
        ),
        _ => ("404 Not Found", "text/plain", "not found".into()),
    }
}

#[tokio::test]
async fn a_browser_with_a_client_certificate_loads_the_page() {
    let ca = DevCa::generate().expect("CA");
    let site = serve(&ca).await;
    let operator = ca
        .client_cert("operator", &ClientOptions::default())
        .unwrap();
    let browser = Browser::start(ca.cert_pem(), Some(&operator)).await;
    browser.goto(&site.url("/")).await.expect("page");
    assert_eq!(browser.title().await, "Harness");
    assert_eq!(browser.text("#who").await, "Hello, operator");
    assert_eq!(
        browser.attribute("#csv", "href").await.as_deref(),
        Some("/report.csv")
    );
    assert!(browser.source().await.contains("<form id=\"search\""));
    browser.quit().await;
}

#[tokio::test]
async fn the_browser_fetches_a_csv_through_its_own_tls_session() {
    let ca = DevCa::generate().expect("CA");
    let site = serve(&ca).await;
    let inspector = ca
        .client_cert("inspector", &ClientOptions::default())
        .unwrap();
    let browser = Browser::start(ca.cert_pem(), Some(&inspector)).await;
    browser.goto(&site.url("/")).await.expect("page");
    let csv = browser.fetch("/report.csv").await.expect("fetch");
    assert_eq!(csv.status, 200);
    assert_eq!(csv.content_type, "text/csv; charset=utf-8");
    assert_eq!(csv.body, "client,path\r\ninspector,/report.csv\r\n");
    let missing = browser.fetch("/nothing").await.expect("fetch");
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn a_form_is_filled_and_submitted() {
    let ca = DevCa::generate().expect("CA");
    let site = serve(&ca).await;
    let operator = ca
        .client_cert("operator", &ClientOptions::default())
        .unwrap();
    let browser = Browser::start(ca.cert_pem(), Some(&operator)).await;
    browser.goto(&site.url("/")).await.expect("page");
    browser.fill("#citizen", "old").await;
    browser.fill("#citizen", "CZ0042").await;
    browser.submit("#search").await;
    assert_eq!(browser.url().await, site.url("/search?citizen=CZ0042"));
    assert_eq!(browser.texts("#query").await, ["CZ0042"]);
    assert_eq!(browser.count("#who").await, 0);
}

#[tokio::test]
async fn a_browser_without_a_client_certificate_gets_no_tls_session() {
    let ca = DevCa::generate().expect("CA");
    let site = serve(&ca).await;
    let browser = Browser::start(ca.cert_pem(), None).await;
    let refused = browser.goto(&site.url("/")).await.expect_err("no page");
    // Chromium names the refused certificate, or, about one run in eight here, only the
    // socket the server closed after its alert; either way there was no session.
    assert!(
        [
            "net::ERR_BAD_SSL_CLIENT_AUTH_CERT",
            "net::ERR_SOCKET_NOT_CONNECTED"
        ]
        .contains(&refused.message.as_str()),
        "{refused}"
    );
    assert_eq!(site.answered.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_browser_that_does_not_trust_the_ca_refuses_the_server() {
    let ca = DevCa::generate().expect("CA");
    let site = serve(&ca).await;
    let operator = ca
        .client_cert("operator", &ClientOptions::default())
        .unwrap();
    let other = DevCa::generate().expect("other CA");
    let browser = Browser::start(other.cert_pem(), Some(&operator)).await;
    // Chromium answers with its own warning page, which loads as a page would.
    let shown = match browser.goto(&site.url("/")).await {
        Ok(()) => browser.source().await,
        Err(refused) => refused.to_string(),
    };
    assert!(shown.contains("ERR_CERT_AUTHORITY_INVALID"), "{shown}");
    assert_eq!(site.answered.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_screenshot_is_a_png() {
    let ca = DevCa::generate().expect("CA");
    let site = serve(&ca).await;
    let operator = ca
        .client_cert("operator", &ClientOptions::default())
        .unwrap();
    let browser = Browser::start(ca.cert_pem(), Some(&operator)).await;
    browser.goto(&site.url("/")).await.expect("page");
    let png = browser.screenshot().await;
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // IHDR's width and height, big-endian, after the signature and the chunk's header.
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert!(width >= 800 && height >= 400, "{width}x{height}");
}

/// Chromium's processes name the profile directory on their command lines; none may be
/// left once the browser is dropped, even by a test that panicked.
#[tokio::test]
async fn dropping_a_browser_ends_its_processes_and_removes_its_files() {
    let ca = DevCa::generate().expect("CA");
    let site = serve(&ca).await;
    let operator = ca
        .client_cert("operator", &ClientOptions::default())
        .unwrap();
    let browser = Browser::start(ca.cert_pem(), Some(&operator)).await;
    browser.goto(&site.url("/")).await.expect("page");
    let dir = browser.dir();
    let marker = dir.to_string_lossy().into_owned();
    assert!(!processes_naming(&marker).is_empty(), "Chromium runs");
    drop(browser);
    assert_eq!(processes_naming(&marker), Vec::<String>::new());
    assert!(!dir.exists(), "{} is left", dir.display());
}

fn processes_naming(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(cmdline);
        }
    }
    found
}

#[test]
fn base64_decodes_padded_and_unpadded() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGVsbG8h"), b"hello!");
    assert_eq!(base64_decode("iVBORw0KGgo="), b"\x89PNG\r\n\x1a\n");
    assert_eq!(base64_decode(""), b"");
}
