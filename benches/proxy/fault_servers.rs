//! The fault soak's key server and state server: one small HTTP/1.1 server on 127.0.0.1
//! that serves a document and can be told to fail (500, a body that is not JSON, or
//! refused connections) and to change its document.
//!
//! It also counts its *good* answers (200 with the real document, or 304 for the current
//! `ETag`) and remembers which good answer was the first to carry the current version.
//! The gateway counts each fetch it completes (`jwks_refresh_total{outcome="success"}`,
//! `state_refresh_total{outcome=~"updated|unchanged"}`) and fetches one at a time, so once
//! its count reaches that number it has applied the version: a deterministic end for
//! the transition window, with no timing guess.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How the server answers right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Serve,
    /// 500 to every request.
    Error,
    /// 200 with a body that is not JSON.
    Garbage,
    /// The listener is closed and every open connection dropped: connection refused.
    Refuse,
}

struct Inner {
    mode: Mode,
    body: Bytes,
    etag: String,
    version: u64,
    good: u64,
    /// The ordinal (in `good`) of the first good answer carrying `version`.
    first_good_of_version: Option<u64>,
}

/// A document server that fails on command.
#[derive(Clone)]
pub struct FaultServer {
    pub addr: SocketAddr,
    pub name: &'static str,
    inner: Arc<Mutex<Inner>>,
    /// Bumped to close every open connection (entering `Refuse`).
    kick: Arc<watch::Sender<u64>>,
    /// The running accept loop, replaced on each (re)bind.
    accept: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
    etag_aware: bool,
}

impl FaultServer {
    /// Bind 127.0.0.1:0 and serve `body`. `etag_aware`: answer `If-None-Match` with 304.
    pub async fn start(name: &'static str, body: Bytes, etag_aware: bool) -> Result<Self, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("{name} server: bind: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("{name} server: {e}"))?;
        let (kick, _) = watch::channel(0u64);
        let s = Self {
            addr,
            name,
            inner: Arc::new(Mutex::new(Inner {
                mode: Mode::Serve,
                body,
                etag: "\"v0\"".to_owned(),
                version: 0,
                good: 0,
                first_good_of_version: None,
            })),
            kick: Arc::new(kick),
            accept: Arc::new(Mutex::new(None)),
            etag_aware,
        };
        s.spawn_accept(listener);
        Ok(s)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn spawn_accept(&self, listener: TcpListener) {
        let me = self.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let me = me.clone();
                let mut kicked = me.kick.subscribe();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let me = me.clone();
                        async move { Ok::<_, std::convert::Infallible>(me.answer(&req)) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = kicked.changed() => {}
                    }
                });
            }
        });
        let old = self
            .accept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(task);
        if let Some(old) = old {
            old.abort();
        }
    }

    fn answer(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        let mut g = self.lock();
        let reply = |status: StatusCode, body: Bytes| {
            let mut r = Response::new(Full::new(body));
            *r.status_mut() = status;
            r
        };
        match g.mode {
            Mode::Error | Mode::Refuse => {
                reply(StatusCode::INTERNAL_SERVER_ERROR, Bytes::from_static(b"{}"))
            }
            Mode::Garbage => {
                let mut r = reply(
                    StatusCode::OK,
                    Bytes::from_static(b"{\"users\": [ not json"),
                );
                r.headers_mut().insert(
                    CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                r.headers_mut()
                    .insert(ETAG, http::HeaderValue::from_static("\"garbage\""));
                r
            }
            Mode::Serve => {
                g.good += 1;
                if g.first_good_of_version.is_none() {
                    g.first_good_of_version = Some(g.good);
                }
                let matches = self.etag_aware
                    && req
                        .headers()
                        .get(IF_NONE_MATCH)
                        .is_some_and(|v| v.as_bytes() == g.etag.as_bytes());
                let mut r = if matches {
                    reply(StatusCode::NOT_MODIFIED, Bytes::new())
                } else {
                    reply(StatusCode::OK, g.body.clone())
                };
                if let Ok(v) = http::HeaderValue::from_str(&g.etag) {
                    r.headers_mut().insert(ETAG, v);
                }
                r.headers_mut().insert(
                    CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                r
            }
        }
    }

    /// Serve a new document from now on.
    pub fn set_body(&self, body: Bytes) {
        let mut g = self.lock();
        g.version += 1;
        g.etag = format!("\"v{}\"", g.version);
        g.body = body;
        g.first_good_of_version = None;
    }

    /// The ordinal of the first good answer that carried the current document, once one
    /// has been given.
    pub fn first_good_of_current(&self) -> Option<u64> {
        self.lock().first_good_of_version
    }

    /// Switch mode. Leaving `Refuse` rebinds the same port (bounded retries).
    pub async fn set_mode(&self, mode: Mode) -> Result<(), String> {
        let was = {
            let mut g = self.lock();
            std::mem::replace(&mut g.mode, mode)
        };
        if mode == Mode::Refuse && was != Mode::Refuse {
            if let Some(t) = self
                .accept
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
            {
                t.abort();
            }
            self.kick.send_modify(|n| *n += 1);
        }
        if was == Mode::Refuse && mode != Mode::Refuse {
            let mut last = String::new();
            for _ in 0..50 {
                match TcpListener::bind(self.addr).await {
                    Ok(l) => {
                        self.spawn_accept(l);
                        return Ok(());
                    }
                    Err(e) => last = e.to_string(),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            return Err(format!(
                "{} server: cannot rebind {}: {last}",
                self.name, self.addr
            ));
        }
        Ok(())
    }
}
