//! Forwarding a request to a backend task: headers, body limit, retries, timeout, WebSocket upgrades.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::{Body, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use crate::backends::{BackendSet, InflightGuard};
use crate::metrics::Metrics;
use crate::{BoxError, ReqBody, RespBody, plain};

/// A proxy route at run time.
#[derive(Debug)]
pub struct ProxyRoute {
    /// The route's path prefix (for `strip_prefix`).
    pub prefix: String,
    /// Remove the prefix before forwarding.
    pub strip_prefix: bool,
    /// The service's tasks.
    pub backends: Arc<BackendSet>,
    /// Request body limit in bytes.
    pub max_body: u64,
    /// Time allowed for the backend's response head.
    pub timeout: Duration,
    /// How long a request waits for a healthy task when there is none (within `timeout`).
    pub no_backend_wait: Duration,
}

/// What the proxy knows about the client side of a request.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// `https` or `http`.
    pub proto: &'static str,
    /// The request's host (lower-case, no port), as routed.
    pub host: String,
    /// The request id sent upstream and returned to the client.
    pub request_id: HeaderValue,
}

const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_owned()).collect::<Vec<_>>())
        .filter_map(|s| HeaderName::from_bytes(s.as_bytes()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    for n in HOP_BY_HOP.iter() {
        h.remove(n);
    }
    h.remove("proxy-connection");
}

fn upgrade_protocol(req: &Request<Incoming>) -> Option<HeaderValue> {
    if req.version() != Version::HTTP_11 {
        return None;
    }
    let conn_upgrade = req
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")));
    if conn_upgrade { req.headers().get(header::UPGRADE).cloned() } else { None }
}

fn is_idempotent(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE)
}

/// Wraps the backend's response body so the backend's in-flight count lasts until the body is done; the
/// upstream connection goes back to the pool once the body has been read to its end (not if it was cut short).
struct Guarded<B: Body> {
    inner: B,
    guard: InflightGuard,
    sender: Option<SendRequest<ReqBody>>,
    done: bool,
}

impl<B: Body> Drop for Guarded<B> {
    fn drop(&mut self) {
        if let Some(s) = self.sender.take()
            && (self.done || self.inner.is_end_stream())
        {
            self.guard.backend().checkin(s);
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Guarded<B>
where
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, BoxError>>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        match &r {
            std::task::Poll::Ready(None) => self.done = true,
            std::task::Poll::Ready(Some(Err(_))) => self.sender = None,
            _ => {}
        }
        r.map_err(Into::into)
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

fn limit_exceeded(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Forwards `req` to one of the route's backends. `path` is the request path (already routed).
pub async fn forward(
    mut req: Request<Incoming>,
    route: &ProxyRoute,
    client: &ClientInfo,
    metrics: &Metrics,
) -> Response<RespBody> {
    // Body limit: declared length first, then a running limit for streamed bodies.
    if let Some(len) =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok())
        && len > route.max_body
    {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
    }
    let upgrade = upgrade_protocol(&req);
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));

    // Upstream URI: origin-form path (prefix stripped when asked) and query. An origin-form request URI is
    // reused as it is (no copy).
    let strip = route.strip_prefix && route.prefix != "/";
    let reuse_uri = !strip && req.uri().scheme().is_none() && req.uri().authority().is_none();
    let pq = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let pq = if reuse_uri {
        String::new()
    } else if strip {
        let rest = &pq[route.prefix.len().min(pq.len())..];
        if rest.is_empty() || rest.starts_with('?') { format!("/{rest}") } else { rest.to_owned() }
    } else {
        pq.to_owned()
    };
    let (parts, body) = req.into_parts();
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    let prior_xff = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let xff = match prior_xff {
        Some(p) => format!("{p}, {}", client.peer.ip()),
        None => client.peer.ip().to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert("x-forwarded-for", v);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static(client.proto));
    let host_value = match parts.uri.authority() {
        Some(a) => HeaderValue::from_str(a.as_str()).ok(),
        None => match headers.get(header::HOST) {
            Some(h) if h.to_str().is_ok() => Some(h.clone()),
            _ => HeaderValue::from_str(&client.host).ok(),
        },
    };
    if let Some(v) = host_value {
        headers.insert(header::HOST, v.clone());
        headers.insert("x-forwarded-host", v);
    }
    headers.insert("x-request-id", client.request_id.clone());
    if let Some(proto) = &upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, proto.clone());
    }
    let uri: http::Uri = if reuse_uri {
        parts.uri
    } else {
        match pq.parse() {
            Ok(u) => u,
            Err(_) => return plain(StatusCode::BAD_REQUEST, "bad request path\n"),
        }
    };
    let method = parts.method;

    // A body-less request can be rebuilt and retried even after it was sent; one with a body only while unsent.
    let bodyless = body.is_end_stream();
    let build = |body: ReqBody| {
        let mut r = Request::new(body);
        *r.method_mut() = method.clone();
        *r.uri_mut() = uri.clone();
        *r.headers_mut() = headers.clone();
        r
    };
    let req_body: ReqBody = if bodyless {
        Empty::<Bytes>::new().map_err(|e| match e {}).boxed_unsync()
    } else {
        Limited::new(body, route.max_body as usize).map_err(Into::into).boxed_unsync()
    };
    let mut pending = Some(build(req_body));
    let retry_sent = bodyless && is_idempotent(&method);

    let mut tried: Vec<SocketAddr> = Vec::new();
    let deadline = tokio::time::Instant::now() + route.timeout;
    for attempt in 0..4 {
        let picked = match route.backends.pick(&tried) {
            // No healthy task at all: wait (bounded) for one rather than answering 503 at once.
            None if attempt == 0 => {
                route.backends.pick_or_wait(deadline.min(tokio::time::Instant::now() + route.no_backend_wait)).await
            }
            picked => picked,
        };
        let Some(backend) = picked else { break };
        tried.push(backend.addr);
        if attempt > 0 {
            metrics.retries.fetch_add(1, Ordering::Relaxed);
        }
        let guard = backend.start_request();
        let (mut sender, reused) = match tokio::time::timeout_at(deadline, backend.checkout()).await {
            Ok(Ok((s, reused))) => (s, reused),
            Ok(Err(_)) => {
                metrics.upstream_errors.fetch_add(1, Ordering::Relaxed);
                backend.mark_unhealthy();
                continue;
            }
            Err(_) => return plain(StatusCode::GATEWAY_TIMEOUT, "upstream timeout\n"),
        };
        let Some(req) = pending.take() else { break };
        match tokio::time::timeout_at(deadline, sender.try_send_request(req)).await {
            Err(_) => return plain(StatusCode::GATEWAY_TIMEOUT, "upstream timeout\n"),
            Ok(Ok(mut resp)) => {
                if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                    let Some(client_up) = client_upgrade else {
                        return plain(StatusCode::BAD_GATEWAY, "unexpected upgrade from upstream\n");
                    };
                    let backend_up = hyper::upgrade::on(&mut resp);
                    tokio::spawn(async move {
                        let _guard = guard;
                        if let (Ok(c), Ok(b)) = (client_up.await, backend_up.await) {
                            let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(c), &mut TokioIo::new(b)).await;
                        }
                    });
                    let (mut p, _) = resp.into_parts();
                    let up = p.headers.get(header::UPGRADE).cloned();
                    strip_hop_by_hop(&mut p.headers);
                    p.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                    if let Some(up) = up {
                        p.headers.insert(header::UPGRADE, up);
                    }
                    return Response::from_parts(p, crate::empty());
                }
                let (mut p, body) = resp.into_parts();
                strip_hop_by_hop(&mut p.headers);
                let body = Guarded { inner: body, guard, sender: Some(sender), done: false }.boxed_unsync();
                return Response::from_parts(p, body);
            }
            Ok(Err(mut e)) => {
                metrics.upstream_errors.fetch_add(1, Ordering::Relaxed);
                if limit_exceeded(e.error()) {
                    return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
                }
                if let Some(r) = e.take_message() {
                    pending = Some(r); // never sent: safe to retry whatever the method
                } else if retry_sent {
                    pending = Some(build(Empty::<Bytes>::new().map_err(|e| match e {}).boxed_unsync()));
                } else {
                    return plain(StatusCode::BAD_GATEWAY, "upstream error\n");
                }
                if e.error().is_closed() || e.error().is_canceled() {
                    // A stale pooled connection, not a dead task: keep it in rotation, even for this request.
                    if reused {
                        tried.pop();
                    }
                } else {
                    backend.mark_unhealthy();
                }
            }
        }
    }
    if tried.is_empty() {
        plain(StatusCode::SERVICE_UNAVAILABLE, "no healthy backend\n")
    } else {
        plain(StatusCode::BAD_GATEWAY, "upstream unavailable\n")
    }
}
