//! Helpers shared by the `authn_*` integration tests: an in-process JWKS / discovery
//! server that counts requests, configs built from inline TOML, and token minting.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use accessgate::authn::dev::{DevAlg, DevSigner, DevTokenOptions};
use accessgate::authn::{Authenticator, Principal};
use accessgate::config::{Config, parse_str};
use accessgate::ops::metrics::Metrics;
use accessgate::respond::Rejection;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const ISSUER_PATH: &str = "/tenant-a/v2.0";
pub const AUDIENCE: &str = "api://corp-api";

struct Served {
    jwks: Vec<u8>,
    status: u16,
    /// Discovery document's `issuer` (None = 404 on discovery).
    discovery_issuer: Option<String>,
}

/// A tiny HTTP/1 server on 127.0.0.1:0 serving a JWKS at every path (and an OpenID
/// configuration at `/.well-known/openid-configuration` when enabled), counting requests.
pub struct JwksServer {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    jwks_hits: Arc<AtomicUsize>,
    served: Arc<Mutex<Served>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl JwksServer {
    pub async fn start(jwks: &Value) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let jwks_hits = Arc::new(AtomicUsize::new(0));
        let served = Arc::new(Mutex::new(Served {
            jwks: serde_json::to_vec(jwks).unwrap(),
            status: 200,
            discovery_issuer: None,
        }));
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let (h, jh, s) = (hits.clone(), jwks_hits.clone(), served.clone());
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let (h, jh, s) = (h.clone(), jh.clone(), s.clone());
                        tokio::spawn(async move {
                            let svc = service_fn(move |req: Request<Incoming>| {
                                let (h, jh, s) = (h.clone(), jh.clone(), s.clone());
                                async move { Ok::<_, Infallible>(answer(&req, addr, &h, &jh, &s)) }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), svc)
                                .await;
                        });
                    }
                }
            }
        });
        Self {
            addr,
            hits,
            jwks_hits,
            served,
            stop: Some(stop_tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The issuer URL whose discovery document this server serves.
    pub fn issuer(&self) -> String {
        self.url(ISSUER_PATH)
    }

    /// All requests, any path.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Requests for the JWKS (any path but discovery).
    pub fn jwks_hits(&self) -> usize {
        self.jwks_hits.load(Ordering::SeqCst)
    }

    pub fn set_jwks(&self, jwks: &Value) {
        self.served.lock().unwrap().jwks = serde_json::to_vec(jwks).unwrap();
    }

    pub fn set_status(&self, status: u16) {
        self.served.lock().unwrap().status = status;
    }

    pub fn enable_discovery(&self) {
        self.served.lock().unwrap().discovery_issuer = Some(self.issuer());
    }

    /// Stop accepting; connections already open finish on their own.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

fn answer(
    req: &Request<Incoming>,
    addr: SocketAddr,
    hits: &AtomicUsize,
    jwks_hits: &AtomicUsize,
    served: &Mutex<Served>,
) -> Response<Full<Bytes>> {
    hits.fetch_add(1, Ordering::SeqCst);
    let s = served.lock().unwrap();
    let (status, body) = if req.uri().path() == "/.well-known/openid-configuration"
        || req
            .uri()
            .path()
            .ends_with("/.well-known/openid-configuration")
    {
        match &s.discovery_issuer {
            Some(iss) => (
                200,
                serde_json::to_vec(&json!({
                    "issuer": iss,
                    "jwks_uri": format!("http://{addr}/discovered/keys"),
                }))
                .unwrap(),
            ),
            None => (404, b"{}".to_vec()),
        }
    } else {
        jwks_hits.fetch_add(1, Ordering::SeqCst);
        (s.status, s.jwks.clone())
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap();
    resp
}

/// A full config around one `[[issuers]]` table body and a `[tokens]` body.
pub fn config(issuer_toml: &str, tokens_toml: &str) -> Config {
    let text = format!(
        r#"
[listen]
address = "127.0.0.1:0"
tls_cert = "cert.pem"
tls_key = "key.pem"

[[issuers]]
{issuer_toml}

[tokens]
{tokens_toml}

[state]
source = "file"
path = "state.json"

[[routes]]
name = "api"
path_prefix = "/"
upstream = "http://127.0.0.1:9"
"#
    );
    parse_str(&text, Path::new("/tmp/accessgate-authn-test.toml"))
        .unwrap_or_else(|e| panic!("test config invalid: {e}\n{text}"))
}

/// An issuer table trusting `jwks_uri`.
pub fn issuer_toml(issuer: &str, jwks_uri: &str, algorithms: &str) -> String {
    format!(
        "issuer = \"{issuer}\"\naudiences = [\"{AUDIENCE}\"]\njwks_uri = \"{jwks_uri}\"\nalgorithms = {algorithms}\n"
    )
}

pub const TOKENS_DEFAULT: &str =
    "clock_skew = \"60s\"\njwks_refresh = \"1h\"\njwks_min_refetch = \"5m\"\n";

/// An Authenticator with its metrics, keys loaded (waits, bounded).
pub async fn ready_authenticator(config: &Config) -> (Authenticator, Metrics) {
    let metrics = Metrics::new();
    let a = Authenticator::new(config, &metrics, None);
    assert!(
        a.wait_ready(Duration::from_secs(10)).await,
        "keys did not load: {:?}",
        a.startup_errors()
    );
    (a, metrics)
}

pub fn signer() -> DevSigner {
    DevSigner::generate("kid-rsa-1", "kid-ec-1").unwrap()
}

/// Token options for `issuer` and the test audience.
pub fn opts(issuer: &str, alg: DevAlg) -> DevTokenOptions {
    DevTokenOptions {
        issuer: issuer.to_owned(),
        audience: AUDIENCE.to_owned(),
        alg,
        ..DevTokenOptions::default()
    }
}

pub fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    h
}

pub async fn auth(a: &Authenticator, token: &str) -> Result<Arc<Principal>, Rejection> {
    a.authenticate(&bearer(token)).await
}

/// Assert an `invalid_token` refusal with this description.
pub async fn assert_invalid(a: &Authenticator, token: &str, description: &str) {
    match auth(a, token).await {
        Err(Rejection::InvalidToken(d)) => assert_eq!(d, description),
        other => panic!("expected InvalidToken({description:?}), got {other:?}"),
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A counter's value from the registry's text exposition (family with labels).
pub fn counter(metrics: &Metrics, family: &str, labels: &[(&str, &str)]) -> u64 {
    let text = String::from_utf8(metrics.encode()).unwrap();
    let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            let name = l.split(['{', ' ']).next().unwrap_or("");
            name == family && wanted.iter().all(|w| l.contains(w.as_str()))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// Poll `cond` every 10 ms for at most `limit`.
pub async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}
