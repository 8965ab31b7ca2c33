//! The HTTP/1 server loop of every service: how many connections it holds, how long a
//! client may take to send a request's headers, and how long a connection may sit idle.
//!
//! `axum::serve` has no timers and no cap, so a client that opens connections and sends
//! nothing, or half its headers, holds each one forever. [`serve`] accepts connections
//! itself and drives each with hyper's HTTP/1 server, watched by one timer per connection:
//!
//! - **Idle**: no request in flight and no byte moved in either direction for
//!   `idle_timeout`: closed. This covers a keep-alive connection left open between
//!   requests, one never used, and a client that stops reading its answer.
//! - **Header read**: from the first byte of a request until its headers are complete
//!   (when the handler is called), at most `header_read_timeout`; then closed, with
//!   nothing answered. A client trickling one byte at a time cannot stretch it.
//! - **In flight**: while a handler runs, no timer: the handlers' own time-outs apply,
//!   and graceful shutdown lets them finish.
//!
//! hyper's own `header_read_timeout` is not used: it also runs while a keep-alive
//! connection waits for its next request, so it would close every idle connection after
//! the (short) header time-out and the idle time-out would mean nothing.
//!
//! **The cap** is a semaphore taken *before* `accept`: with `max_connections` open, the
//! loop stops accepting and new connections wait in the kernel's listen queue until one
//! closes (the time-outs above make sure one does). Waiting rather than closing them
//! at once means a burst above the cap is served a little later instead of failing, and a
//! connection held in the queue costs this process nothing; beyond the queue (its backlog)
//! the kernel refuses connections itself.

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// The limits [`serve`] holds every connection to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From a request's first byte to the end of its headers.
    pub header_read_timeout: Duration,
    /// No request in flight and no byte moved for this long: the connection is closed.
    pub idle_timeout: Duration,
    /// Connections open at once; more wait to be accepted.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    /// The defaults of the `HTTP_*` settings.
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` is cancelled; then
/// stops accepting, lets every in-flight request finish (idle connections close at once)
/// and returns when the last connection has closed.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    shutdown: CancellationToken,
    limits: ConnectionLimits,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = JoinSet::new();
    loop {
        // Reap finished connections so the set does not grow with every one ever served.
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = accept_within_cap(&listener, &slots) => accepted,
        };
        let (permit, (stream, peer)) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                on_accept_error(&e).await;
                continue;
            }
        };
        connections.spawn(serve_connection(
            stream,
            peer,
            router.clone(),
            shutdown.clone(),
            limits,
            permit,
        ));
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

async fn accept_within_cap(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> std::io::Result<(tokio::sync::OwnedSemaphorePermit, (TcpStream, SocketAddr))> {
    let permit = Arc::clone(slots)
        .acquire_owned()
        .await
        .map_err(|_closed| std::io::Error::other("the connection semaphore is closed"))?;
    Ok((permit, listener.accept().await?))
}

/// As hyper 0.14 and `axum::serve` did: a client that gave up before being accepted is
/// nothing; anything else (too many open files) is logged and accepting pauses a second,
/// since retrying at once would spin.
async fn on_accept_error(e: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept a connection");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: axum::Router,
    shutdown: CancellationToken,
    limits: ConnectionLimits,
    _permit: tokio::sync::OwnedSemaphorePermit,
) {
    let watch = Arc::new(Watch::new());
    let service = {
        let watch = Arc::clone(&watch);
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            // The peer address, as `into_make_service_with_connect_info` gave it, for
            // per-client limits.
            request.extensions_mut().insert(ConnectInfo(peer));
            let in_flight = InFlight::start(Arc::clone(&watch));
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await;
                drop(in_flight);
                response
            }
        })
    };
    let io = TokioIo::new(Watched {
        stream,
        watch: Arc::clone(&watch),
    });
    let connection = hyper::server::conn::http1::Builder::new()
        // Ours are the timers of this module (see its documentation).
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        let deadline = watch.deadline(&limits);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = sleep_until(deadline) => {
                if watch.deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                    tracing::debug!(%peer, "closing a connection that timed out");
                    return;
                }
            }
            () = watch.changed.notified() => {}
            () = shutdown.cancelled(), if !draining => {
                // Finishes the request in flight, if any, then closes; closes at once when
                // idle.
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// What one connection is doing, shared by its socket, its service and its timer.
struct Watch {
    state: Mutex<State>,
    /// Wakes the timer when its deadline moves earlier or returns from "none".
    changed: Notify,
}

struct State {
    in_flight: usize,
    /// The last time a byte moved either way, or a request finished.
    last_activity: Instant,
    /// When the first byte of a request not yet handed to a handler arrived.
    header_started: Option<Instant>,
}

impl Watch {
    fn new() -> Self {
        Self {
            state: Mutex::new(State {
                in_flight: 0,
                last_activity: Instant::now(),
                header_started: None,
            }),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is a few plain fields: one left by a panicking holder is still sound.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// When the connection is to be closed, if nothing happens before: none while a
    /// handler runs.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        let state = self.state();
        if state.in_flight > 0 {
            return None;
        }
        let idle = state.last_activity + limits.idle_timeout;
        Some(match state.header_started {
            Some(started) => idle.min(started + limits.header_read_timeout),
            None => idle,
        })
    }

    fn read(&self) {
        let mut state = self.state();
        state.last_activity = Instant::now();
        if state.in_flight == 0 && state.header_started.is_none() {
            state.header_started = Some(state.last_activity);
            drop(state);
            self.changed.notify_one();
        }
    }

    fn wrote(&self) {
        self.state().last_activity = Instant::now();
    }
}

/// A request handed to a handler: the headers are complete, and no timer runs until the
/// handler answers.
struct InFlight(Arc<Watch>);

impl InFlight {
    fn start(watch: Arc<Watch>) -> Self {
        {
            let mut state = watch.state();
            state.in_flight += 1;
            state.header_started = None;
        }
        Self(watch)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        {
            let mut state = self.0.state();
            state.in_flight = state.in_flight.saturating_sub(1);
            state.last_activity = Instant::now();
        }
        self.0.changed.notify_one();
    }
}

/// The socket, reporting every byte that moves to the connection's [`Watch`].
struct Watched {
    stream: TcpStream,
    watch: Arc<Watch>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.watch.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.watch.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.watch.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
