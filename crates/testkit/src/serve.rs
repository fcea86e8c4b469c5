//! The accept loop every mock shares: plain HTTP/1.1, or TLS offering HTTP/2 alone with a limit on the
//! streams open at once on each connection, as Google's and OpenAI's front ends have.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpSocket;
use tokio::task::JoinHandle;

/// A mock's response body.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// A mock's request handler.
pub type Handler = Arc<dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> + Send + Sync>;

/// Google's front end allows this many streams at once per HTTP/2 connection.
pub const DEFAULT_STREAM_LIMIT: u32 = 100;

/// How a mock speaks.
#[derive(Clone)]
pub enum Protocol {
    /// Plain HTTP/1.1, a connection per request in flight.
    Http1,
    /// TLS offering only `h2`, and at most `max_concurrent_streams` streams open per connection.
    Http2Tls { tls: Arc<rustls::ServerConfig>, max_concurrent_streams: u32 },
}

/// What the accept loop has seen, counted since the start.
#[derive(Debug, Default)]
pub struct Connections {
    /// TCP connections accepted.
    pub accepted: AtomicUsize,
    /// TLS handshakes completed.
    pub handshakes: AtomicUsize,
}

/// A running server. It stops accepting when dropped; connections already open run to their end.
pub struct Server {
    pub addr: SocketAddr,
    pub connections: Arc<Connections>,
    accept: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Listens on `addr` (port 0 for any) and serves `handler` in `protocol` on the current runtime.
pub async fn start(addr: SocketAddr, protocol: Protocol, handler: Handler) -> std::io::Result<Server> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    // A burst connects all at once: with the backlog `TcpListener::bind` gives (128, as std's), the
    // connections beyond it are dropped and their clients try again a second later.
    let listener = socket.listen(4096)?;
    let addr = listener.local_addr()?;
    let connections = Arc::new(Connections::default());
    let counts = connections.clone();
    let accept = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            counts.accepted.fetch_add(1, Ordering::Relaxed);
            // Small frames go out at once, as a real front end's do.
            let _ = tcp.set_nodelay(true);
            let handler = handler.clone();
            let service = service_fn(move |request| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(request).await) }
            });
            match &protocol {
                Protocol::Http1 => {
                    tokio::spawn(async move {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tcp), service)
                            .await;
                    });
                }
                Protocol::Http2Tls { tls, max_concurrent_streams } => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(tls.clone());
                    let limit = *max_concurrent_streams;
                    let counts = counts.clone();
                    tokio::spawn(async move {
                        let Ok(stream) = acceptor.accept(tcp).await else { return };
                        counts.handshakes.fetch_add(1, Ordering::Relaxed);
                        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                            .max_concurrent_streams(limit)
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            }
        }
    });
    Ok(Server { addr, connections, accept })
}
