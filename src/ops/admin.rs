//! The admin listener (plain HTTP, keep it on loopback): `/metrics` (Prometheus text),
//! `/healthz` (the process is alive), `/readyz` (config, keys and state are loaded and
//! fresh, and we are not draining).

use std::convert::Infallible;
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::body::Body;
use crate::ops::metrics::Metrics;

/// Answers `/readyz`: `Ok(())` when ready, or the reasons it is not.
pub type ReadyCheck = Arc<dyn Fn() -> Result<(), Vec<String>> + Send + Sync>;

/// Called before `/metrics` is encoded, to bring gauges that are computed from a clock
/// (state age) up to date.
pub type ScrapeHook = Arc<dyn Fn() + Send + Sync>;

/// Serve the admin endpoints until `stop` turns true.
pub async fn run(
    listener: TcpListener,
    metrics: Metrics,
    ready: ReadyCheck,
    before_scrape: ScrapeHook,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let metrics = metrics.clone();
        let ready = ready.clone();
        let before_scrape = before_scrape.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                if req.uri().path() == "/metrics" {
                    before_scrape();
                }
                let resp = handle(&req, &metrics, &ready);
                async move { Ok::<_, Infallible>(resp) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {}
            }
        });
    }
}

fn text(
    status: StatusCode,
    body: impl Into<bytes::Bytes>,
    content_type: &'static str,
) -> Response<Body> {
    let mut r = Response::new(Body::full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    r
}

/// Route one admin request.
pub fn handle(req: &Request<Incoming>, metrics: &Metrics, ready: &ReadyCheck) -> Response<Body> {
    handle_parts(req.method(), req.uri().path(), metrics, ready)
}

fn handle_parts(
    method: &Method,
    path: &str,
    metrics: &Metrics,
    ready: &ReadyCheck,
) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n",
            "text/plain",
        );
    }
    match path {
        "/metrics" => text(
            StatusCode::OK,
            metrics.encode(),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        "/healthz" => text(StatusCode::OK, "ok\n", "text/plain"),
        "/readyz" => match ready() {
            Ok(()) => text(StatusCode::OK, "ready\n", "text/plain"),
            Err(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {}\n", why.join("; ")),
                "text/plain",
            ),
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n", "text/plain"),
    }
}

/// `accessgate healthcheck`: a blocking GET of `http://{addr}/readyz` (no HTTP client
/// dependency in the probe, so it works in images without curl).
pub fn probe_ready(addr: &str, timeout: std::time::Duration) -> Result<(), String> {
    use std::io::{Read, Write};
    use std::net::ToSocketAddrs;
    let sock = addr
        .to_socket_addrs()
        .map_err(|e| format!("{addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr}: no address"))?;
    let mut s =
        std::net::TcpStream::connect_timeout(&sock, timeout).map_err(|e| format!("{addr}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.write_all(
        format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .map_err(|e| format!("{addr}: {e}"))?;
    let mut buf = Vec::with_capacity(512);
    let _ = s.take(4096).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let status = text.lines().next().unwrap_or("");
    if status.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").trim();
        Err(format!("{status} {body}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready_ok() -> ReadyCheck {
        Arc::new(|| Ok(()))
    }

    #[test]
    fn endpoints_answer() {
        let m = Metrics::new();
        let r = handle_parts(&Method::GET, "/healthz", &m, &ready_ok());
        assert_eq!(r.status(), StatusCode::OK);
        let r = handle_parts(&Method::GET, "/metrics", &m, &ready_ok());
        assert_eq!(r.status(), StatusCode::OK);
        let r = handle_parts(&Method::GET, "/nope", &m, &ready_ok());
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = handle_parts(&Method::POST, "/metrics", &m, &ready_ok());
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn readyz_reports_reasons() {
        let m = Metrics::new();
        let not: ReadyCheck = Arc::new(|| Err(vec!["state stale".into()]));
        let r = handle_parts(&Method::GET, "/readyz", &m, &not);
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
