//! Plain-HTTP/1.1 keep-alive connections parked when idle: hyper's connection state (an 8 KB read buffer, an 8 KB
//! header buffer, the dispatcher) exists only while requests come. When no new request has started [`PARK_AFTER`]
//! after the last response, the hyper connection is shut down gracefully without closing the socket and taken apart
//! ([`hyper::server::conn::http1::Connection::into_parts`]); the socket then waits for readability on its own
//! (a few hundred bytes per idle connection instead of ~16 KB), and the next request gets a fresh hyper
//! connection. Bytes hyper had already read (pipelining) are handed to the next round first.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http::header::{self, HeaderMap};
use http::{Request, Response, StatusCode, Version};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::{Builders, DRAIN_IDLE, RespBody, Shared, handle};

/// A connection without a new request for this long after its last response is parked. Busy keep-alive
/// connections keep their hyper state (no set-up per request); idle ones cost a few hundred bytes.
const PARK_AFTER: std::time::Duration = std::time::Duration::from_millis(50);

/// Per-connection bookkeeping shared by the driver, the service and the response bodies.
#[derive(Default)]
struct State {
    /// Requests handed to the service in this round.
    started: AtomicU32,
    /// Responses whose body hyper has finished with (dropped).
    done: AtomicU32,
    /// The connection must not be parked: HTTP/1.0, `Connection: close`, an upgrade (hyper ends it).
    no_park: AtomicBool,
    /// Set by the driver before the graceful shutdown that parks the connection: the socket is kept open.
    parking: AtomicBool,
}

/// The socket as hyper sees it in one round: leftover bytes of the previous round first; `shutdown` is a no-op
/// when the connection is being parked.
struct ParkIo {
    stream: TcpStream,
    pre: Bytes,
    state: Arc<State>,
}

impl AsyncRead for ParkIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if !self.pre.is_empty() {
            let n = self.pre.len().min(buf.remaining());
            buf.put_slice(&self.pre[..n]);
            self.pre.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ParkIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.state.parking.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A response body that counts itself done when hyper drops it (after its last frame, or on error).
struct Tracked {
    inner: RespBody,
    state: Arc<State>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.state.done.fetch_add(1, Ordering::Relaxed);
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = crate::BoxError;
    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn says_close(h: &HeaderMap) -> bool {
    h.get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
}

type TrackedResponse =
    Pin<Box<dyn std::future::Future<Output = Result<Response<Tracked>, std::convert::Infallible>> + Send>>;

/// Serves a plain-HTTP connection (whose first bytes have arrived) until it ends, parked between requests.
/// Same behaviour as [`crate::drive_h1`]: idle keep-alive connections are closed after the header timeout; when
/// the edge drains, the next response says `Connection: close` and a connection idle for [`DRAIN_IDLE`] is closed.
pub(crate) async fn serve(mut stream: TcpStream, peer: SocketAddr, shared: &Arc<Shared>, builders: &Builders) {
    let state = Arc::new(State::default());
    let mut pre = Bytes::new();
    let mut phase = shared.phase.subscribe();
    let mut first = true;
    loop {
        if !first && pre.is_empty() {
            // Parked: only the socket, waiting for the next request.
            let draining = *phase.borrow() >= 1;
            let wait = if draining { DRAIN_IDLE } else { builders.idle };
            tokio::select! {
                r = tokio::time::timeout(wait, stream.readable()) => {
                    if !matches!(r, Ok(Ok(()))) {
                        return;
                    }
                }
                _ = phase.wait_for(|p| *p >= 1), if !draining => continue,
            }
        }
        first = false;
        state.started.store(0, Ordering::Relaxed);
        state.done.store(0, Ordering::Relaxed);
        state.parking.store(false, Ordering::Relaxed);
        let svc = {
            let (sh, st) = (shared.clone(), state.clone());
            service_fn(move |req: Request<Incoming>| {
                st.started.fetch_add(1, Ordering::Relaxed);
                if req.version() != Version::HTTP_11 || says_close(req.headers()) {
                    st.no_park.store(true, Ordering::Relaxed);
                }
                let (sh, st) = (sh.clone(), st.clone());
                Box::pin(async move {
                    let resp = handle(req, sh, peer, None).await;
                    if resp.status() == StatusCode::SWITCHING_PROTOCOLS || says_close(resp.headers()) {
                        st.no_park.store(true, Ordering::Relaxed);
                    }
                    Ok(resp.map(|inner| Tracked { inner, state: st }))
                }) as TrackedResponse
            })
        };
        let io = ParkIo { stream, pre: std::mem::take(&mut pre), state: state.clone() };
        // Boxed: a parked connection's future does not keep room for hyper's connection inline.
        let mut conn = Box::new(builders.h1.serve_connection(TokioIo::new(io), svc).with_upgrades());
        // Armed when the first response is out. When it fires after further responses, it is re-armed (once per
        // period, not per request): a connection parks between one and two periods after its last response.
        let mut idle_timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
        let mut armed_for = 0;
        let res = std::future::poll_fn(|cx| {
            let r = Pin::new(&mut *conn).poll(cx);
            if r.is_pending() && !state.parking.load(Ordering::Relaxed) && !state.no_park.load(Ordering::Relaxed) {
                let started = state.started.load(Ordering::Relaxed);
                if started > 0 && state.done.load(Ordering::Relaxed) == started {
                    let timer = idle_timer.get_or_insert_with(|| {
                        armed_for = started;
                        Box::pin(tokio::time::sleep(PARK_AFTER))
                    });
                    while timer.as_mut().poll(cx).is_ready() && armed_for != started {
                        armed_for = started;
                        timer.as_mut().reset(tokio::time::Instant::now() + PARK_AFTER);
                    }
                    if armed_for == started && timer.is_elapsed() {
                        // Idle since the last response: end this round without closing the socket.
                        state.parking.store(true, Ordering::Relaxed);
                        Pin::new(&mut *conn).graceful_shutdown();
                        return Pin::new(&mut *conn).poll(cx);
                    }
                }
            }
            r
        })
        .await;
        if res.is_err() || !state.parking.load(Ordering::Relaxed) {
            return; // ended by hyper (client closed, error, `Connection: close`, upgrade): the socket is done
        }
        let Some(parts) = conn.into_parts() else { return };
        let io = parts.io.into_inner();
        stream = io.stream;
        pre = if io.pre.is_empty() { parts.read_buf } else { [parts.read_buf, io.pre].concat().into() };
    }
}

// `Future::poll` on the boxed connection.
use std::future::Future as _;
