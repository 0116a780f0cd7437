//! The console's listener, and the only file of it that knows hyper: TCP, TLS 1.3 with a
//! client certificate from the `[tls]` CA (a client without one gets no session: the
//! handshake fails), HTTP/1.1, and the headers every answer carries.
//!
//! Security headers, on every answer whatever its status: a Content-Security-Policy that
//! allows nothing but the one inline style sheet, by its hash (no script, no image, no
//! connection, no frame, forms posting to the console only); no framing (`frame-ancestors
//! 'none'` and `X-Frame-Options: DENY`); `nosniff`; no referrer; `no-store`, since every page
//! shows audit data.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use super::Console;
use super::html::style_source;
use super::routes::{self, Reply};
use crate::identity::Peer;

/// Connections open at once; past it the listener waits for one to close.
const MAX_CONNECTIONS: usize = 64;
/// A TLS handshake, or a request's head, that takes longer than this is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the console on `listener` with the gateway's TLS configuration as it is at each
/// accept (a reload swaps certificates and the CRL for the console too), until the task is
/// aborted.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ArcSwap<rustls::ServerConfig>>,
    console: Arc<Console>,
) {
    let open = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = open.clone().acquire_owned().await else {
            return;
        };
        let (tcp, addr) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors, say: wait rather than spin.
                tracing::warn!(error = %e, "console: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let config = http11(&tls.load());
        let console = console.clone();
        tokio::spawn(async move {
            connection(tcp, addr, config, console).await;
            drop(permit);
        });
    }
}

/// The gateway's TLS configuration (same certificate, same client CA and CRL, client
/// certificate required) speaking HTTP/1.1 instead of HTTP/2.
fn http11(grpc: &Arc<rustls::ServerConfig>) -> Arc<rustls::ServerConfig> {
    let mut c = rustls::ServerConfig::clone(grpc);
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(c)
}

async fn connection(
    tcp: TcpStream,
    addr: SocketAddr,
    config: Arc<rustls::ServerConfig>,
    console: Arc<Console>,
) {
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsAcceptor::from(config).accept(tcp))
        .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%addr, error = %e, "console: TLS handshake refused");
            return;
        }
        Err(_) => return,
    };
    // The verifier requires a certificate; without one there is no session to get here.
    let Some(der) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) else {
        return;
    };
    let peer = Arc::new(Peer::from_certificate(addr, der.as_ref()));
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (console, peer) = (console.clone(), peer.clone());
        async move { Ok::<_, Infallible>(answer(&console, &peer, req).await) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(16 * 1024)
        .serve_connection(TokioIo::new(tls), service)
        .await;
    if let Err(e) = served {
        tracing::debug!(%addr, error = %e, "console: connection ended");
    }
}

/// Whether a browser says the request was made by another site.
fn cross_site(req: &Request<Incoming>) -> bool {
    let h = req.headers();
    // A browser that sends Sec-Fetch-Site says where the request came from, and is believed:
    // with `Referrer-Policy: no-referrer` (every page's) it posts the console's own form with
    // `Origin: null`, so the origin cannot tell a same-site form from a foreign one.
    if let Some(site) = h.get("sec-fetch-site") {
        return !matches!(site.to_str(), Ok("same-origin" | "none"));
    }
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = h.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(o), Some(host)) => o != format!("https://{host}"),
        (Some(_), None) => true,
        (None, _) => false,
    }
}

async fn answer(
    console: &Arc<Console>,
    peer: &Arc<Peer>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let cross_site = cross_site(&req);
    drop(req);
    let reply = routes::handle(
        console,
        peer,
        routes::Request {
            method: &method,
            path: &path,
            query: &query,
            cross_site,
        },
    )
    .await;
    response(reply)
}

fn response(reply: Reply) -> Response<Full<Bytes>> {
    let csp = format!(
        "default-src 'none'; style-src {}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        style_source()
    );
    let mut r = Response::new(Full::new(Bytes::from(reply.body)));
    *r.status_mut() = hyper::StatusCode::from_u16(reply.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    let mut set = |name: header::HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set(header::CONTENT_TYPE, reply.content_type);
    set(header::CONTENT_SECURITY_POLICY, &csp);
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "no-referrer");
    set(header::CACHE_CONTROL, "no-store");
    set(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    set(
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    if let Some(secs) = reply.retry_after {
        set(header::RETRY_AFTER, &secs.max(1).to_string());
    }
    if let Some(allow) = reply.allow {
        set(header::ALLOW, allow);
    }
    if let Some(name) = &reply.attachment {
        set(
            header::CONTENT_DISPOSITION,
            &format!("attachment; filename=\"{name}\""),
        );
    }
    r
}
