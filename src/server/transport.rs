//! The transport under every gRPC service popgate serves — the gateway, and the benchmark's
//! bare servers, which must be measured on exactly the same stack:
//! 1. TCP accept with `TCP_NODELAY` (tonic ignores its own setting with
//!    `serve_with_incoming`; without it p99 jumps to ~40 ms);
//! 2. a bound on open connections (each holds TLS and HTTP/2 buffers);
//! 3. the TLS 1.3 handshake with a required client certificate, each in its own task with a
//!    deadline, so a slow or half-open client holds up nobody else;
//! 4. HTTP/2 with a bound on streams per connection and keepalives ([`http2`]).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use crate::config::LimitsConfig;
use crate::identity::Peer;

/// A TLS handshake that takes longer than this is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// TLS handshakes running at once; more wait in the kernel's accept queue.
const MAX_HANDSHAKES: usize = 256;

/// What the accept loop is doing, for metrics and for tests that must know the connection
/// bound is reached without waiting to see that nothing happens.
#[derive(Clone)]
pub struct Connections {
    open: Arc<watch::Sender<usize>>,
    at_bound: Arc<watch::Sender<bool>>,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            open: Arc::new(watch::Sender::new(0)),
            at_bound: Arc::new(watch::Sender::new(false)),
        }
    }
}

impl Connections {
    /// Client connections open now.
    pub fn open(&self) -> usize {
        *self.open.borrow()
    }

    /// `true` while the accept loop waits for a connection to close before it accepts another.
    pub fn at_bound(&self) -> watch::Receiver<bool> {
        self.at_bound.subscribe()
    }
}

/// tonic's server with popgate's HTTP/2 settings; add the services and serve [`incoming`].
pub fn http2(limits: &LimitsConfig) -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .max_concurrent_streams(limits.max_streams_per_connection)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
}

/// The connections of `listener`, handshaken with the TLS configuration current at each
/// accept (a reload swaps it), at most `max_connections` open at once. Abort the returned
/// task to stop accepting.
pub fn incoming(
    listener: TcpListener,
    tls: Arc<ArcSwap<rustls::ServerConfig>>,
    max_connections: usize,
    connections: Connections,
) -> (
    impl Stream<Item = Result<PeerStream, std::io::Error>>,
    JoinHandle<()>,
) {
    let (tx, rx) = mpsc::channel::<PeerStream>(64);
    let acceptor = tokio::spawn(accept_loop(listener, tls, tx, max_connections, connections));
    (ReceiverStream::new(rx).map(Ok), acceptor)
}

/// Accepts TCP connections and runs each TLS handshake in its own task.
async fn accept_loop(
    listener: TcpListener,
    tls: Arc<ArcSwap<rustls::ServerConfig>>,
    tx: mpsc::Sender<PeerStream>,
    max_connections: usize,
    stats: Connections,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let places = Arc::new(Semaphore::new(max_connections));
    loop {
        // A place for the connection for its whole life, then one among the handshakes.
        if places.available_permits() == 0 {
            stats.at_bound.send_replace(true);
        }
        let Ok(place) = places.clone().acquire_owned().await else {
            return;
        };
        stats.at_bound.send_replace(false);
        let connection = Place {
            _permit: place,
            open: stats.open.clone(),
        };
        connection.open.send_modify(|n| *n += 1);
        let Ok(permit) = handshakes.clone().acquire_owned().await else {
            return;
        };
        let (tcp, addr) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(peer = %addr, error = %e, "could not set TCP_NODELAY");
        }
        let acceptor = TlsAcceptor::from(tls.load_full());
        let tx = tx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => match PeerStream::new(stream, addr, connection) {
                    Some(conn) => {
                        let _ = tx.send(conn).await;
                    }
                    None => {
                        tracing::info!(peer = %addr, "connection without client certificate dropped")
                    }
                },
                Ok(Err(e)) => tracing::info!(peer = %addr, error = %e, "TLS handshake refused"),
                Err(_) => tracing::info!(peer = %addr, "TLS handshake timed out"),
            }
        });
    }
}

/// A connection's place under `max_connections`, from accept until it closes.
struct Place {
    _permit: OwnedSemaphorePermit,
    open: Arc<watch::Sender<usize>>,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.open.send_modify(|n| *n -= 1);
    }
}

/// An accepted, handshaken connection and who is at the other end.
pub struct PeerStream {
    inner: TlsStream<TcpStream>,
    peer: Arc<Peer>,
    /// Released when the connection closes.
    _place: Place,
}

impl PeerStream {
    /// Wraps a finished handshake. `None` when the client sent no certificate (the verifier
    /// requires one, so this does not happen with our configuration).
    fn new(inner: TlsStream<TcpStream>, addr: SocketAddr, place: Place) -> Option<PeerStream> {
        let leaf = inner.get_ref().1.peer_certificates()?.first()?;
        let peer = Arc::new(Peer::from_certificate(addr, leaf.as_ref()));
        Some(PeerStream {
            inner,
            peer,
            _place: place,
        })
    }
}

impl tonic::transport::server::Connected for PeerStream {
    type ConnectInfo = Arc<Peer>;

    fn connect_info(&self) -> Arc<Peer> {
        self.peer.clone()
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
