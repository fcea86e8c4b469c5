//! Serving connections, with the limits a server facing the internet needs and `axum::serve` does not
//! expose: a cap on open connections, a deadline for a request's headers (and for the first request of a
//! connection: a client that connects and says nothing is closed), HTTP/2's concurrent streams and
//! keep-alive pings, a deep accept backlog for bursts, and every connection's task tracked so shutdown can
//! wait for them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tower_service::Service;

use crate::intake::{ArrivalSlot, Intake};

/// How many connections wait to be accepted: a burst of new streams must not overflow it.
const BACKLOG: u32 = 4096;

/// How long a new connection counts as a request on its way (see [`crate::intake`]) before its first
/// request is read: a client sends it right after connecting, and in a burst the connections accepted
/// first would otherwise let running generations' heavy work in before the requests behind them are
/// read. Short, so that a connection opened and left idle (a browser's preconnect, a slow client) holds
/// nobody back for long. A first request that was already waiting when the connection was first read
/// is counted, in the run log too, from the accept: its wait to be read was the server's. One that came
/// after the connection was found idle is counted from when it is read, as any later request is: the
/// client's own pause before sending is not the server's wait.
const OPENING: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open connections at most; beyond it new ones wait in the backlog.
    pub max_connections: usize,
    /// The longest a client may take to send a request's headers, and to start its first request.
    pub header_read_timeout: Duration,
    /// Concurrent streams on one HTTP/2 connection.
    pub http2_max_streams: u32,
    /// How often an idle HTTP/2 connection is pinged; one that does not answer within the same time is
    /// closed.
    pub http2_keep_alive: Duration,
}

/// `wanted` connections, or fewer if the process may not open that many files (each connection is one,
/// and the process needs some for itself: the database, Redis, upstream calls).
pub fn connection_cap(wanted: usize) -> usize {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct it is given.
    let files = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
    } else {
        usize::MAX
    };
    // Half for client connections: each stream to a provider may need one more.
    let cap = wanted.min(files / 2).max(16);
    if cap < wanted {
        tracing::info!(wanted, cap, open_files = files, "MAX_CONNECTIONS lowered to fit the open-file limit");
    }
    cap
}

/// Sets up this process's memory for a server, at its start:
///
/// - **Transparent huge pages off.** The allocator asks for them on its arenas, and the kernel then
///   zeroes a whole 2 MiB page at the first touch of each: in a burst of 200 new streams that was most
///   of the server's CPU for the first 30 ms, the burst's first events waiting behind it (issue 14; the
///   figures are in BENCHMARKS.md). Pages of 4 KiB cost a little more in TLB misses on a
///   large heap; a replica's heap is small. Linux only.
/// - **Freed memory kept for [`PURGE_DELAY_MS`]** before mimalloc gives it back to the kernel (its
///   default is one second). Streams end and begin all the time; with a second, the memory the last
///   wave of streams freed was given back just as the next wave needed it, and a burst paid for the
///   `madvise` calls and then for faulting every page in again, zeroed (a quarter of a warm server's CPU
///   while a burst's first events were due). `MIMALLOC_PURGE_DELAY`, when set, is left to decide.
pub fn tune_memory() {
    #[cfg(target_os = "linux")]
    {
        let (disable, unused): (libc::c_ulong, libc::c_ulong) = (1, 0);
        // SAFETY: PR_SET_THP_DISABLE reads its integer arguments and no memory of this process.
        if unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, disable, unused, unused, unused) } != 0 {
            let error = std::io::Error::last_os_error();
            tracing::debug!(%error, "transparent huge pages could not be turned off");
        }
    }
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's options, an integer it reads when it next purges; any thread may.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
}

/// Faults in the first `mib` MiB of the allocator's arena (the mapping that holds a fresh allocation)
/// ahead of time, without writing to it (`MADV_POPULATE_WRITE`), as a JVM's `AlwaysPreTouch` does: a
/// fresh server's first burst otherwise waits while the kernel maps and zeroes each page its heap
/// touches for the first time. Returns the bytes faulted in. Linux 5.14 and later; elsewhere, or if the
/// kernel refuses, nothing is done.
pub fn prefault_heap(mib: usize) -> usize {
    #[cfg(target_os = "linux")]
    {
        let probe = Box::new(0u64);
        let at = std::ptr::from_ref::<u64>(&probe) as usize;
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        let mapping = maps.lines().find_map(|line| {
            let (start, end) = line.split_whitespace().next()?.split_once('-')?;
            let (start, end) = (usize::from_str_radix(start, 16).ok()?, usize::from_str_radix(end, 16).ok()?);
            (start..end).contains(&at).then_some((start, end))
        });
        let Some((start, end)) = mapping else { return 0 };
        let len = (mib << 20).min(end - start);
        // SAFETY: the range is one mapping of this process, read from its own maps; populating pages
        // changes no byte of them.
        let done = unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_POPULATE_WRITE) };
        if done != 0 {
            let error = std::io::Error::last_os_error();
            tracing::debug!(%error, "the heap could not be faulted in ahead");
            return 0;
        }
        len
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = mib;
        0
    }
}

/// How long memory the server freed stays with it before the allocator returns it to the kernel.
pub const PURGE_DELAY_MS: std::ffi::c_long = 10_000;

/// `mi_option_purge_delay` in mimalloc's `mi_option_t` (the same in its versions 2 and 3), which the
/// Rust bindings do not name; `purge_delay_is_mimallocs_option` pins it by its default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// What a connection's task and its requests' service both know of it, in one allocation.
#[derive(Default)]
struct ConnectionState {
    /// A request has started.
    started: AtomicBool,
    /// Read once and found without a whole request: what comes next was sent after the accept.
    idle: AtomicBool,
}

/// Binds with a backlog deep enough for a burst (the default of 128 drops connections when hundreds of
/// clients connect at once).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// The whole application as one service: the router inside its middleware.
pub type App = tower::util::BoxCloneSyncService<hyper::Request<Incoming>, axum::response::Response, Infallible>;

/// Serves `app` on `listener` until `stop` is cancelled, then stops accepting and waits for the open
/// connections to finish (an SSE stream ends when its generation does). Each request counts in `intake`
/// until its response is ready, or until the handler that took its arrival ends it.
pub async fn serve<S>(listener: TcpListener, app: S, limits: Limits, stop: CancellationToken, intake: Arc<Intake>)
where
    S: Service<hyper::Request<Incoming>, Response = axum::response::Response, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
{
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let connections = TaskTracker::new();
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_streams)
        .keep_alive_interval(Some(limits.http2_keep_alive))
        .keep_alive_timeout(limits.http2_keep_alive);
    let builder = Arc::new(builder);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = stop.cancelled() => break,
        };
        if permits.available_permits() == 0 {
            metrics::counter!("tripstream_connections_at_cap_total").increment(1);
        }
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted: wait a little.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        // Events are small writes that must leave at once, not wait on Nagle's algorithm.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let state = Arc::new(ConnectionState::default());
        // The connection counts until its first request does, or for `OPENING` at most.
        let opening = ArrivalSlot::new(intake.arrive());
        let service = {
            let (app, state, intake, opening) = (app.clone(), state.clone(), intake.clone(), opening.clone());
            hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                state.started.store(true, Ordering::Relaxed);
                // Anonymous callers are known by their address (or the trusted proxy's word for it).
                request.extensions_mut().insert(ConnectInfo(peer));
                // A first request already waiting when the connection was first read arrived with it: its
                // time to first event counts from the accept, so a burst's wait to be read shows.
                let waiting = opening.take().filter(|_| !state.idle.load(Ordering::Relaxed));
                let arrival = ArrivalSlot::new(waiting.unwrap_or_else(|| intake.arrive()));
                request.extensions_mut().insert(arrival.clone());
                let app = app.clone();
                async move {
                    let response = app.oneshot(request).await.unwrap_or_else(|never| match never {});
                    // The response is ready, unless the handler took the arrival to end it later.
                    drop(arrival.take());
                    Ok::<_, Infallible>(response)
                }
            })
        };
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let first_request = limits.header_read_timeout;
        connections.spawn(async move {
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
            let mut connection = std::pin::pin!(watcher.watch(connection));
            // Each poll reads what has come; one that ends with no request started found the
            // connection idle.
            let connection = std::future::poll_fn(|cx| {
                let polled = connection.as_mut().poll(cx);
                if polled.is_pending() && !state.started.load(Ordering::Relaxed) {
                    state.idle.store(true, Ordering::Relaxed);
                }
                polled
            });
            tokio::pin!(connection);
            // One timer: first the end of the connection's opening, then of the wait for a first request.
            let deadline = tokio::time::sleep(OPENING.min(first_request));
            tokio::pin!(deadline);
            let mut waiting = true;
            loop {
                tokio::select! {
                    // The connection first: a request already read takes the opening before its timer ends it.
                    biased;
                    result = &mut connection => {
                        if let Err(e) = result {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    // A client that has not started a request in time is closed (it may be holding a
                    // connection open on purpose); one that has goes on under hyper's own limits.
                    () = &mut deadline, if waiting => {
                        if opening.take().is_some() && first_request > OPENING {
                            deadline.as_mut().reset(tokio::time::Instant::now() + (first_request - OPENING));
                            continue;
                        }
                        if !state.started.load(Ordering::Relaxed) {
                            metrics::counter!("tripstream_connections_timed_out_total").increment(1);
                            break;
                        }
                        waiting = false;
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    connections.close();
    connections.wait().await;
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use crate::intake::Arriving;
    use tokio::net::TcpStream;

    use super::*;

    #[test]
    fn purge_delay_is_mimallocs_option() {
        // SAFETY: reads an option.
        let get = || unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(get(), 1000, "mimalloc's default purge delay, so the index names that option");
        tune_memory();
        assert_eq!(get(), PURGE_DELAY_MS);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn prefault_heap_faults_in_the_mapping_that_holds_the_heap() {
        // Zero when the mapping is not found or the kernel refuses `MADV_POPULATE_WRITE`.
        let faulted = prefault_heap(1);
        assert!(faulted > 0 && faulted <= 1 << 20, "{faulted}");
    }

    /// A server on a free port whose one route answers how long ago, by the server's count, its request
    /// arrived, or, asked `?busy`, keeps the server busy for 5 ms while other requests wait to be read.
    fn test_server() -> (SocketAddr, Arc<Intake>, impl Future<Output = ()>) {
        let intake = Intake::new(Duration::from_secs(60));
        let listener = bind(([127, 0, 0, 1], 0).into()).unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = Limits {
            max_connections: 8,
            header_read_timeout: Duration::from_secs(10),
            http2_max_streams: 8,
            http2_keep_alive: Duration::from_secs(20),
        };
        let waited = |Arriving(arrival): Arriving, uri: axum::http::Uri| async move {
            if uri.query() == Some("busy") {
                tokio::time::advance(Duration::from_millis(5)).await;
                return "busy".to_owned();
            }
            arrival.map(|a| a.at.elapsed().as_millis().to_string()).unwrap_or_default()
        };
        let router = Router::new().route("/", get(waited));
        (addr, intake.clone(), serve(listener, router, limits, CancellationToken::new(), intake))
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_connection_holds_generations_back_until_its_first_request_or_briefly() {
        let (addr, intake, server) = test_server();
        tokio::spawn(server);
        let ask = async |mut connection: TcpStream| {
            connection.write_all(b"GET / HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n").await.unwrap();
            let mut answer = String::new();
            connection.read_to_string(&mut answer).await.unwrap();
            assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
            answer.rsplit("\r\n").next().unwrap().parse::<u64>().unwrap()
        };

        // Spins until the server has accepted a connection (the clock stands still meanwhile).
        let accepted = async || {
            for _ in 0..10_000 {
                if intake.arriving() > 0 {
                    break;
                }
                tokio::task::yield_now().await;
            }
        };

        // Accepted, its request not sent: it counts.
        let silent = TcpStream::connect(addr).await.unwrap();
        accepted().await;
        assert_eq!(intake.arriving(), 1, "an accepted connection counts before its request is read");
        // Left idle, it stops counting after a moment, and is still served when it asks; its request
        // arrived when it was sent, not when the connection was opened.
        tokio::time::sleep(OPENING + Duration::from_millis(1)).await;
        assert_eq!(intake.arriving(), 0, "an idle connection holds nobody back for long");
        assert_eq!(ask(silent).await, 0);

        // One that asks during its opening, after the server found it idle: the 5 ms before it asked
        // were the client's, so its request counts from when it is read.
        let prompt = TcpStream::connect(addr).await.unwrap();
        accepted().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(intake.arriving(), 1, "still in its opening");
        assert_eq!(ask(prompt).await, 0, "counted from its request, not from the accept");
        assert_eq!(intake.arriving(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_request_waiting_behind_others_counts_from_the_accept() {
        let (addr, _, server) = test_server();
        // Both connected and sent before the server accepts either, as in a burst.
        let send = |path: &str| {
            let mut connection = std::net::TcpStream::connect(addr).unwrap();
            let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
            std::io::Write::write_all(&mut connection, request.as_bytes()).unwrap();
            connection.set_nonblocking(true).unwrap();
            TcpStream::from_std(connection).unwrap()
        };
        let (first, second) = (send("/?busy"), send("/"));
        tokio::spawn(server);
        let answer = async |mut connection: TcpStream| {
            let mut answer = String::new();
            connection.read_to_string(&mut answer).await.unwrap();
            answer.rsplit("\r\n").next().unwrap().to_owned()
        };
        assert_eq!(answer(first).await, "busy");
        assert_eq!(answer(second).await, "5", "its wait behind the first is the server's");
    }
}
