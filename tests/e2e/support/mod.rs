//! In-process test fixtures: an upstream that records what it received, a gateway on
//! 127.0.0.1:0 with freshly made DEV certificates, and rustls-based HTTP/1.1 and HTTP/2
//! clients that trust the test CA. Every server binds loopback port 0 and stops when its
//! handle drops.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod authn;
pub mod authn_gateway;
pub mod config;

pub use config::{PlainConfig, RouteSpec};

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use accessgate::{Gateway, StartOptions};

/// What the upstream received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: http::Method,
    pub uri: http::Uri,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// An in-process upstream. Paths:
/// - `/slow/{ms}`: answers after `ms` milliseconds
/// - `/download/{n}`: streams `n` bytes of [`pattern`] in 64 KiB chunks
/// - `/status/{code}`: answers with that status
/// - `/ws`: accepts an HTTP/1.1 upgrade and echoes bytes
/// - anything else: 200 echoing the request body
pub struct Upstream {
    pub addr: SocketAddr,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    _stop: oneshot::Sender<()>,
}

impl Upstream {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let rec = recorded.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
                    _ = &mut stop_rx => return,
                };
                let rec = rec.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(req, rec.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Self {
            addr,
            recorded,
            _stop: stop_tx,
        }
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.recorded.lock().unwrap().len()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

type UpBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// Deterministic bytes for download checks.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8)
        .collect()
}

async fn handle(
    mut req: Request<Incoming>,
    rec: Arc<Mutex<Vec<Recorded>>>,
) -> Result<Response<UpBody>, Infallible> {
    let path = req.uri().path().to_owned();
    if path == "/ws" {
        let on_upgrade = hyper::upgrade::on(&mut req);
        rec.lock().unwrap().push(Recorded {
            method: req.method().clone(),
            uri: req.uri().clone(),
            headers: req.headers().clone(),
            body: Bytes::new(),
        });
        tokio::spawn(async move {
            if let Ok(up) = on_upgrade.await {
                let mut io = TokioIo::new(up);
                let (mut r, mut w) = tokio::io::split(&mut io);
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }
        });
        let resp = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .body(Full::new(Bytes::new()).boxed())
            .unwrap();
        return Ok(resp);
    }
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    rec.lock().unwrap().push(Recorded {
        method: parts.method.clone(),
        uri: parts.uri.clone(),
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    if let Some(ms) = path.strip_prefix("/slow/") {
        let ms: u64 = ms.parse().unwrap_or(1000);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        return Ok(Response::new(
            Full::new(Bytes::from_static(b"slow done")).boxed(),
        ));
    }
    if let Some(n) = path.strip_prefix("/download/") {
        let n: usize = n.parse().unwrap_or(0);
        let data = Bytes::from(pattern(n));
        let chunks: Vec<Result<Frame<Bytes>, Infallible>> = (0..n)
            .step_by(64 * 1024)
            .map(|i| Ok(Frame::data(data.slice(i..(i + 64 * 1024).min(n)))))
            .collect();
        let stream = futures_stream(chunks);
        return Ok(Response::new(BodyExt::boxed(StreamBody::new(stream))));
    }
    if let Some(code) = path.strip_prefix("/status/") {
        let code: u16 = code.parse().unwrap_or(500);
        let mut r = Response::new(Full::new(Bytes::new()).boxed());
        *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Ok(r);
    }
    let mut r = Response::new(Full::new(body).boxed());
    r.headers_mut()
        .insert("x-upstream", "echo".parse().unwrap());
    r.headers_mut()
        .insert("connection", "x-drop-me".parse().unwrap());
    r.headers_mut().insert("x-drop-me", "hop".parse().unwrap());
    Ok(r)
}

/// A stream over ready items, yielding between chunks so the body really streams.
fn futures_stream<T: Send + 'static>(items: Vec<T>) -> impl futures_core::Stream<Item = T> + Send {
    struct S<T> {
        items: std::vec::IntoIter<T>,
        yielded: bool,
    }
    impl<T> futures_core::Stream for S<T> {
        type Item = T;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<T>> {
            if !self.yielded {
                self.yielded = true;
                cx.waker().wake_by_ref();
                return std::task::Poll::Pending;
            }
            self.yielded = false;
            std::task::Poll::Ready(self.items.next())
        }
    }
    impl<T> Unpin for S<T> {}
    S {
        items: items.into_iter(),
        yielded: false,
    }
}

/// Fresh DEV certificates (and, when the library can, dev signing keys) in a temp dir.
pub struct Certs {
    pub dir: tempfile::TempDir,
}

impl Certs {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        accessgate::cli::devcerts::generate_all(dir.path()).unwrap();
        Self { dir }
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A gateway under test and the files it runs on.
pub struct TestGateway {
    pub gw: Option<Gateway>,
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    pub certs: Certs,
    pub config_path: PathBuf,
}

impl TestGateway {
    /// Start a gateway on `toml`, where `{certs}` is replaced by the cert folder and
    /// `{upstream}` by `upstream`. `[listen]`/`[admin]` addresses should be port 0.
    pub async fn start(toml: &str, upstream: &str) -> Self {
        let certs = Certs::new();
        Self::start_with(certs, toml, upstream).await
    }

    pub async fn start_with(certs: Certs, toml: &str, upstream: &str) -> Self {
        Self::start_opts(certs, toml, upstream, StartOptions { quiet: true }).await
    }

    /// As [`TestGateway::start`], but writing the decision log `[log] decisions` names.
    pub async fn start_logged(toml: &str, upstream: &str) -> Self {
        Self::start_opts(Certs::new(), toml, upstream, StartOptions { quiet: false }).await
    }

    async fn start_opts(certs: Certs, toml: &str, upstream: &str, opts: StartOptions) -> Self {
        let text = toml
            .replace("{certs}", &certs.dir.path().display().to_string())
            .replace("{upstream}", upstream);
        let config_path = certs.path("accessgate.toml");
        std::fs::write(&config_path, &text).unwrap();
        let config = accessgate::config::parse_str(&text, &config_path)
            .unwrap_or_else(|e| panic!("test config invalid: {e}\n{text}"));
        let gw = Gateway::start(config, opts).await.unwrap();
        Self {
            addr: gw.local_addr(),
            admin: gw.admin_addr(),
            gw: Some(gw),
            certs,
            config_path,
        }
    }

    pub fn gw(&self) -> &Gateway {
        self.gw.as_ref().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{}", self.addr.port(), path)
    }

    pub fn ca(&self) -> PathBuf {
        self.certs.path("ca.crt")
    }

    pub async fn shutdown(&mut self) {
        if let Some(gw) = self.gw.take() {
            gw.shutdown().await;
        }
    }
}

/// A minimal config: one route to `{upstream}` without authentication.
pub const PLAIN_CONFIG: &str = r#"
[listen]
address = "127.0.0.1:0"
tls_cert = "{certs}/localhost.crt"
tls_key = "{certs}/localhost.key"
header_read_timeout = "1s"
idle_timeout = "5s"

[admin]
address = "127.0.0.1:0"

[runtime]
shutdown_grace = "5s"

[log]
decisions = "off"

[[routes]]
name = "open"
path_prefix = "/"
upstream = "{upstream}"
auth = "none"
connect_timeout = "1s"
request_timeout = "2s"
"#;

pub type TestClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A rustls client config trusting only `ca`, offering the given ALPN protocols.
pub fn tls_client_config(ca: &Path, alpn: &[&[u8]]) -> rustls::ClientConfig {
    accessgate::transport::tls::install_provider();
    let mut roots = rustls::RootCertStore::empty();
    for c in accessgate::transport::tls::load_certs(ca).unwrap() {
        roots.add(c).unwrap();
    }
    let mut cfg =
        rustls::ClientConfig::builder_with_provider(accessgate::transport::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    cfg
}

/// HTTP/1.1-only or HTTP/2-only client over TLS trusting `ca`.
pub fn client(ca: &Path, h2: bool) -> TestClient {
    // hyper-rustls sets ALPN itself from enable_http1/enable_http2.
    client_with_tls(tls_client_config(ca, &[]), h2)
}

/// Send a request and collect the whole response body.
pub async fn send(
    client: &TestClient,
    req: Request<Full<Bytes>>,
) -> (http::response::Parts, Bytes) {
    let resp = tokio::time::timeout(Duration::from_secs(20), client.request(req))
        .await
        .expect("request timed out")
        .expect("request failed");
    let (parts, body) = resp.into_parts();
    let body = tokio::time::timeout(Duration::from_secs(20), body.collect())
        .await
        .expect("body timed out")
        .expect("body failed")
        .to_bytes();
    (parts, body)
}

/// GET `url` with extra headers.
pub fn get(url: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut b = Request::builder().uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::new())).unwrap()
}

/// A raw TLS connection (for malformed requests a real client would never send).
pub async fn raw_tls(
    addr: SocketAddr,
    ca: &Path,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let cfg = tls_client_config(ca, &[b"http/1.1"]);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

/// Read from `io` until EOF or `limit` elapses; returns what was read and whether EOF came.
pub async fn read_until_close<R: tokio::io::AsyncRead + Unpin>(
    io: &mut R,
    limit: Duration,
) -> (Vec<u8>, bool) {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout_at(deadline, io.read(&mut buf)).await {
            Ok(Ok(0)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => return (out, true),
            Err(_) => return (out, false),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Helpers for the end-to-end transport modules (proxy_*). Additive only.

/// `PLAIN_CONFIG` with one more `[listen]` setting, `key = value` (value in TOML).
pub fn plain_config_with_listen(key: &str, value: &str) -> String {
    PlainConfig::new().listen(key, value).toml()
}

/// A rustls client config trusting only `ca` that presents `cert`/`key` (mutual TLS).
pub fn tls_client_config_with_cert(
    ca: &Path,
    cert: &Path,
    key: &Path,
    alpn: &[&[u8]],
) -> rustls::ClientConfig {
    accessgate::transport::tls::install_provider();
    let mut roots = rustls::RootCertStore::empty();
    for c in accessgate::transport::tls::load_certs(ca).unwrap() {
        roots.add(c).unwrap();
    }
    let chain = accessgate::transport::tls::load_certs(cert).unwrap();
    let key = accessgate::transport::tls::load_key(key).unwrap();
    let mut cfg =
        rustls::ClientConfig::builder_with_provider(accessgate::transport::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .unwrap();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    cfg
}

/// Like [`client`], over a caller-built rustls config (client certificates, other CAs).
pub fn client_with_tls(tls: rustls::ClientConfig, h2: bool) -> TestClient {
    let b = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only();
    let conn = if h2 {
        b.enable_http2().build()
    } else {
        b.enable_http1().build()
    };
    let mut cb = Client::builder(TokioExecutor::new());
    if h2 {
        cb.http2_only(true);
    }
    cb.build(conn)
}

/// A request with any method, headers and body.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Request<Full<Bytes>> {
    let mut b = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(body.into())).unwrap()
}

/// One HTTP/1.1 response read off a raw connection.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// The head (status line and header lines), as text.
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Read a response head (up to and including the blank line) within `limit`; returns the
/// head and any bytes read past it. `None` on EOF, error or timeout before a full head.
pub async fn read_head<R: tokio::io::AsyncRead + Unpin>(
    io: &mut R,
    limit: Duration,
) -> Option<(String, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Some((String::from_utf8_lossy(&buf).into_owned(), rest));
        }
        if buf.len() > 1024 * 1024 {
            return None;
        }
        match tokio::time::timeout_at(deadline, io.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Read exactly one HTTP/1.1 response (Content-Length or chunked body) within `limit`,
/// leaving the connection usable for the next request. `None` on EOF/timeout first.
pub async fn read_response<R: tokio::io::AsyncRead + Unpin>(
    io: &mut R,
    limit: Duration,
) -> Option<RawResponse> {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + limit;
    let (head, mut body) = read_head(io, limit).await?;
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut resp = RawResponse {
        status,
        head,
        body: Vec::new(),
    };
    let chunked = resp
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let length: Option<usize> = resp.header("content-length").and_then(|v| v.parse().ok());
    let mut chunk = [0u8; 8192];
    let complete = |b: &[u8]| match (chunked, length) {
        (true, _) => find(b, b"0\r\n\r\n").is_some(),
        (false, Some(n)) => b.len() >= n,
        // No framing (101, 204, 304): the head is the whole response.
        (false, None) => true,
    };
    while !complete(&body) {
        match tokio::time::timeout_at(deadline, io.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(n)) => body.extend_from_slice(&chunk[..n]),
        }
    }
    resp.body = body;
    Some(resp)
}

/// Send `raw` bytes over a fresh raw TLS (HTTP/1.1) connection and read one response.
pub async fn raw_exchange(addr: SocketAddr, ca: &Path, raw: &[u8]) -> Option<RawResponse> {
    use tokio::io::AsyncWriteExt;
    let mut io = raw_tls(addr, ca).await;
    io.write_all(raw).await.unwrap();
    read_response(&mut io, Duration::from_secs(10)).await
}
/// Start the real binary with `run --config config` and wait (bounded: 100 tries, 10 s)
/// until its admin listener at `admin` answers `/readyz` with 200.
pub async fn spawn_ready_binary(
    config: &std::path::Path,
    admin: SocketAddr,
) -> std::process::Child {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_accessgate"))
        .args(["run", "--config"])
        .arg(config)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(admin).await.is_ok()
            && admin_get(admin, "/readyz").await.0 == 200
        {
            return child;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the binary never became ready");
}

/// Wait (polling every 50 ms, at most `limit`) for `child` to exit; on timeout it is
/// killed and reaped, and the test fails naming `what`.
pub async fn wait_exit(
    child: &mut std::process::Child,
    limit: std::time::Duration,
    what: &str,
) -> std::process::ExitStatus {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {limit:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// GET `path` on the plain-HTTP admin listener; returns status and body text.
pub async fn admin_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
        .await
        .expect("admin connect timed out")
        .unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let (raw, eof) = read_until_close(&mut s, Duration::from_secs(10)).await;
    assert!(eof, "admin connection did not close");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Check an RFC 9457 problem response and return its JSON body.
pub fn assert_problem(
    parts: &http::response::Parts,
    body: &[u8],
    status: u16,
) -> serde_json::Value {
    assert_eq!(
        parts.status.as_u16(),
        status,
        "body: {}",
        String::from_utf8_lossy(body)
    );
    assert_eq!(
        parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.as_bytes()),
        Some(&b"application/problem+json"[..]),
    );
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    for key in ["type", "title", "detail", "reason", "decision_id"] {
        let s = v[key]
            .as_str()
            .unwrap_or_else(|| panic!("problem lacks string {key}: {v}"));
        assert!(!s.is_empty(), "empty {key}: {v}");
    }
    assert_eq!(v["status"].as_u64(), Some(u64::from(status)), "{v}");
    v
}

/// Wait (bounded) until `cond` holds; false if it never did within `limit`.
pub async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

// ---------------------------------------------------------------------------------------
// Helpers for the end-to-end Conditional Access modules (decisions_*,
// client_compat). Additive only.

/// The client app every dev token names by default (`DevTokenOptions::default().azp`);
/// [`ca_config`] lists it in `[approved_apps]`.
pub const CA_APP: &str = "0c1307d4-29d6-4389-a11c-5cbe7f65d7fa";
/// A client app that no config approves.
pub const CA_OTHER_APP: &str = "9b9a6e2e-5d1c-4c2e-8f57-00000000beef";
/// `authorization_uri` of the Entra-style test issuer (`DEMO_ISSUER`).
pub const CA_AUTHORIZE_URI: &str = "https://login.accessgate.dev/demo-tenant/oauth2/v2.0/authorize";
/// A second issuer on the same dev keys whose challenges follow RFC 9470.
pub const RFC9470_ISSUER: &str = "https://idp.example.test/realms/corp";

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Unix seconds as an RFC 3339 UTC timestamp, as state.json spells times.
pub fn ts(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Parse an RFC 3339 timestamp into unix seconds.
pub fn parse_ts(s: &str) -> i64 {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{s:?} is not RFC 3339: {e}"))
        .unix_timestamp()
}

/// What a Conditional Access test gateway is made of.
#[derive(Debug, Clone)]
pub struct CaSpec {
    /// `[[policies]]` tables, verbatim.
    pub policies: String,
    /// `(path_prefix, resource)` per route, in order; all require a token.
    pub routes: Vec<(&'static str, &'static str)>,
    /// The initial `state.json`.
    pub state: serde_json::Value,
    /// Extra lines for `[state]` (`refresh`, `max_staleness`, `fail_open`).
    pub state_extra: String,
    /// Extra lines for `[listen]` (`trusted_proxies`).
    pub listen_extra: String,
}

impl CaSpec {
    /// One route `/` -> resource `corp-api`.
    pub fn new(policies: &str, state: serde_json::Value) -> Self {
        Self {
            policies: policies.to_owned(),
            routes: vec![("/", "corp-api")],
            state,
            state_extra: String::new(),
            listen_extra: String::new(),
        }
    }
}

/// The gateway config for `spec`: two issuers on the dev signing keys (`DEMO_ISSUER`,
/// Entra-style challenges with an `authorization_uri`; [`RFC9470_ISSUER`], RFC 9470
/// challenges), state from `{certs}/state.json`, `[approved_apps]` = [`CA_APP`].
pub fn ca_config(spec: &CaSpec) -> String {
    use accessgate::authn::dev::{DEMO_AUDIENCE, DEMO_ISSUER};
    let mut s = format!(
        r#"
[listen]
address = "127.0.0.1:0"
tls_cert = "{{certs}}/localhost.crt"
tls_key = "{{certs}}/localhost.key"
header_read_timeout = "5s"
idle_timeout = "10s"
{listen_extra}

[admin]
address = "127.0.0.1:0"

[runtime]
shutdown_grace = "2s"

[log]
decisions = "off"

[[issuers]]
issuer = "{DEMO_ISSUER}"
audiences = ["{DEMO_AUDIENCE}"]
jwks_file = "{{certs}}/dev-jwks.json"
algorithms = ["RS256", "ES256"]
authorization_uri = "{CA_AUTHORIZE_URI}"

[[issuers]]
issuer = "{RFC9470_ISSUER}"
audiences = ["{DEMO_AUDIENCE}"]
jwks_file = "{{certs}}/dev-jwks.json"
algorithms = ["RS256"]
challenge = "rfc9470"

[state]
source = "file"
path = "{{certs}}/state.json"
{state_extra}

[approved_apps]
ids = ["{CA_APP}"]
"#,
        listen_extra = spec.listen_extra,
        state_extra = spec.state_extra,
    );
    for (i, (prefix, resource)) in spec.routes.iter().enumerate() {
        s.push_str(&format!(
            "\n[[routes]]\nname = \"r{i}\"\npath_prefix = \"{prefix}\"\nupstream = \"{{upstream}}\"\nresource = \"{resource}\"\nconnect_timeout = \"2s\"\nrequest_timeout = \"10s\"\n"
        ));
    }
    s.push('\n');
    s.push_str(&spec.policies);
    s
}

/// A running Conditional Access gateway, its upstream, the key that signs its tokens, and
/// an HTTP/1.1 and an HTTP/2 client.
pub struct CaGateway {
    pub gw: TestGateway,
    pub up: Upstream,
    pub signer: accessgate::authn::dev::DevSigner,
    h1: TestClient,
    h2: TestClient,
}

impl CaGateway {
    pub async fn start(spec: CaSpec) -> Self {
        let up = Upstream::start().await;
        let certs = Certs::new();
        std::fs::write(
            certs.path("state.json"),
            serde_json::to_vec_pretty(&spec.state).unwrap(),
        )
        .unwrap();
        let signer = accessgate::authn::dev::DevSigner::load(certs.dir.path()).unwrap();
        let gw = TestGateway::start_with(certs, &ca_config(&spec), &up.url()).await;
        let (h1, h2) = (client(&gw.ca(), false), client(&gw.ca(), true));
        Self {
            gw,
            up,
            signer,
            h1,
            h2,
        }
    }

    /// A gateway on a complete config (`{certs}` / `{upstream}` substituted), with the dev
    /// signer of `certs` (for sources other than the state file, e.g. Graph).
    pub async fn start_config(certs: Certs, toml: &str) -> Self {
        let up = Upstream::start().await;
        let signer = accessgate::authn::dev::DevSigner::load(certs.dir.path()).unwrap();
        let gw = TestGateway::start_with(certs, toml, &up.url()).await;
        let (h1, h2) = (client(&gw.ca(), false), client(&gw.ca(), true));
        Self {
            gw,
            up,
            signer,
            h1,
            h2,
        }
    }

    /// A token for user `oid` (client app [`CA_APP`], no device, cp1 off); `f` adjusts it.
    pub fn token(
        &self,
        oid: &str,
        f: impl FnOnce(&mut accessgate::authn::dev::DevTokenOptions),
    ) -> String {
        let mut o = accessgate::authn::dev::DevTokenOptions {
            oid: Some(oid.to_owned()),
            ..Default::default()
        };
        f(&mut o);
        self.signer.mint(&o).unwrap()
    }

    /// Replace `state.json` (write aside, then rename, so a refresh never reads half).
    pub fn write_state_bytes(&self, bytes: &[u8]) {
        let tmp = self.gw.certs.path("state.json.tmp");
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, self.gw.certs.path("state.json")).unwrap();
    }

    pub fn write_state(&self, v: &serde_json::Value) {
        self.write_state_bytes(&serde_json::to_vec_pretty(v).unwrap());
    }

    /// GET `path` with `token` (if any) and extra headers, over HTTP/2 or HTTP/1.1.
    pub async fn call(
        &self,
        path: &str,
        token: Option<&str>,
        h2: bool,
        headers: &[(&str, &str)],
    ) -> (http::response::Parts, Bytes) {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(b) = &bearer {
            all.push(("authorization", b));
        }
        let c = if h2 { &self.h2 } else { &self.h1 };
        let (parts, body) = send(c, get(&self.gw.url(path), &all)).await;
        let want = if h2 {
            http::Version::HTTP_2
        } else {
            http::Version::HTTP_11
        };
        assert_eq!(parts.version, want);
        (parts, body)
    }

    /// Expect the request to be forwarded: 200 from the upstream, exactly one more request
    /// recorded there, which is returned.
    pub async fn expect_allow(&self, path: &str, token: &str, h2: bool) -> Recorded {
        self.expect_allow_with(path, token, h2, &[]).await
    }

    pub async fn expect_allow_with(
        &self,
        path: &str,
        token: &str,
        h2: bool,
        headers: &[(&str, &str)],
    ) -> Recorded {
        let before = self.up.count();
        let (parts, body) = self.call(path, Some(token), h2, headers).await;
        assert_eq!(
            parts.status,
            StatusCode::OK,
            "expected allow on {path}, got {}: {}",
            parts.status,
            String::from_utf8_lossy(&body)
        );
        assert_eq!(
            parts.headers.get("x-upstream").map(|v| v.as_bytes()),
            Some(&b"echo"[..]),
            "the 200 must come from the upstream"
        );
        assert_eq!(
            self.up.count(),
            before + 1,
            "upstream must see exactly one request"
        );
        self.up.requests().pop().unwrap()
    }

    /// Expect a refusal: RFC 9457 problem with `status` and `reason`, and nothing reaching
    /// the upstream. Returns the response head and the problem body.
    pub async fn expect_refusal(
        &self,
        path: &str,
        token: Option<&str>,
        h2: bool,
        headers: &[(&str, &str)],
        status: u16,
        reason: &str,
    ) -> (http::response::Parts, serde_json::Value) {
        let before = self.up.count();
        let (parts, body) = self.call(path, token, h2, headers).await;
        let v = assert_problem(&parts, &body, status);
        assert_eq!(v["reason"], reason, "{v}");
        assert_eq!(
            self.up.count(),
            before,
            "a refused request must not reach the upstream"
        );
        let id = v["decision_id"].as_str().unwrap();
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "decision_id {id:?}"
        );
        (parts, v)
    }

    /// A Prometheus sample from the admin `/metrics` (0 when the series is absent).
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let (status, text) = admin_get(self.gw.admin.unwrap(), "/metrics").await;
        assert_eq!(status, 200);
        metric_in(&text, name, labels)
    }
}

/// The value of `name{labels..}` in a Prometheus text exposition (0 when absent).
pub fn metric_in(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map_or(0.0, |s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

/// A `WWW-Authenticate` challenge, parsed the way simple real-world clients parse it.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn names(&self) -> Vec<&str> {
        self.params.iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// Parse `Scheme name="value", name="value"` strictly, as clients with hand-written parsers
/// do (MSAL, the Azure SDKs): every parameter quoted, no spaces around `=`, `", "` between
/// parameters, no backslash escapes in values, no duplicate names, nothing left over.
/// Panics (naming the header) on anything else.
pub fn parse_challenge(header: &str) -> Challenge {
    let fail = |why: &str| -> ! { panic!("WWW-Authenticate {header:?}: {why}") };
    let (scheme, mut rest) = header
        .split_once(' ')
        .unwrap_or_else(|| fail("no parameters"));
    if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_alphanumeric()) {
        fail("bad scheme");
    }
    let mut params: Vec<(String, String)> = Vec::new();
    loop {
        let eq = rest
            .find('=')
            .unwrap_or_else(|| fail("parameter without '='"));
        let name = &rest[..eq];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            fail(&format!("bad parameter name {name:?} (spaces around '='?)"));
        }
        let after = &rest[eq + 1..];
        let quoted = after
            .strip_prefix('"')
            .unwrap_or_else(|| fail(&format!("value of {name} is not quoted")));
        let close = quoted
            .find('"')
            .unwrap_or_else(|| fail(&format!("value of {name} is not closed")));
        let value = &quoted[..close];
        if value.contains('\\') {
            fail(&format!("value of {name} holds a backslash escape"));
        }
        if params.iter().any(|(k, _)| k == name) {
            fail(&format!("duplicate parameter {name}"));
        }
        params.push((name.to_owned(), value.to_owned()));
        rest = &quoted[close + 1..];
        if rest.is_empty() {
            break;
        }
        rest = rest
            .strip_prefix(", ")
            .unwrap_or_else(|| fail(&format!("expected \", \" after {name}, found {rest:?}")));
    }
    Challenge {
        scheme: scheme.to_owned(),
        params,
    }
}

/// The one `WWW-Authenticate` header of a response, parsed strictly (Bearer, realm first).
pub fn challenge_of(parts: &http::response::Parts) -> Challenge {
    let all: Vec<_> = parts
        .headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .collect();
    assert_eq!(all.len(), 1, "exactly one WWW-Authenticate: {all:?}");
    let c = parse_challenge(all[0].to_str().unwrap());
    assert_eq!(c.scheme, "Bearer");
    assert_eq!(
        c.params.first().map(|(k, v)| (k.as_str(), v.as_str())),
        Some(("realm", "accessgate"))
    );
    c
}

/// Decode a `claims` parameter: standard base64 WITH padding only (what MSAL.NET accepts),
/// UTF-8, and JSON. Returns the exact text.
pub fn decode_claims(b64: &str) -> String {
    use base64::Engine as _;
    assert!(
        b64.len().is_multiple_of(4),
        "claims {b64:?} is not padded base64"
    );
    assert!(
        !b64.contains(['-', '_']),
        "claims {b64:?} is URL-safe base64, not standard"
    );
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap_or_else(|e| panic!("claims {b64:?} is not standard base64: {e}"));
    let text = String::from_utf8(bytes).unwrap();
    let _: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("claims {text:?} is not JSON: {e}"));
    text
}

/// Check a CAE/step-up claims challenge: `authorization_uri`, `error="insufficient_claims"`
/// and `claims` decoding to exactly `expected_json` (minified). Returns the challenge.
pub fn assert_claims_challenge(parts: &http::response::Parts, expected_json: &str) -> Challenge {
    assert_eq!(parts.status, StatusCode::UNAUTHORIZED);
    let c = challenge_of(parts);
    assert_eq!(
        c.names(),
        ["realm", "authorization_uri", "error", "claims"],
        "{c:?}"
    );
    assert_eq!(c.get("authorization_uri"), Some(CA_AUTHORIZE_URI));
    assert_eq!(c.get("error"), Some("insufficient_claims"));
    assert_eq!(decode_claims(c.get("claims").unwrap()), expected_json);
    c
}

/// `{"access_token":{"nbf":{"essential":true,"value":"<nbf>"}}}`, minified.
pub fn nbf_claims(nbf: i64) -> String {
    format!(r#"{{"access_token":{{"nbf":{{"essential":true,"value":"{nbf}"}}}}}}"#)
}

/// `{"access_token":{"acrs":{"essential":true,"value":"<acrs>"}}}`, minified.
pub fn acrs_claims(acrs: &str) -> String {
    format!(r#"{{"access_token":{{"acrs":{{"essential":true,"value":"{acrs}"}}}}}}"#)
}

/// Check the challenge a non-CAE client gets: `error="invalid_token"`, a plain
/// description, and no `claims`.
pub fn assert_invalid_token_challenge(parts: &http::response::Parts) -> Challenge {
    assert_eq!(parts.status, StatusCode::UNAUTHORIZED);
    let c = challenge_of(parts);
    assert_eq!(c.names(), ["realm", "error", "error_description"], "{c:?}");
    assert_eq!(c.get("error"), Some("invalid_token"));
    assert!(!c.get("error_description").unwrap().is_empty());
    c
}
