//! Client connections for the load driver: TLS 1.3 with AES-128-GCM (what the peers are
//! measured with), hyper 1.x HTTP/1.1 and HTTP/2 connections, and one-off requests for
//! probes (first-response check, `/readyz`, `/metrics`).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, HOST};
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Bound on connecting (TCP + TLS handshake).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which HTTP version a run speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    H1,
    H2,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::H1 => "h1",
            Self::H2 => "h2",
        }
    }

    fn alpn(self) -> &'static [u8] {
        match self {
            Self::H1 => b"http/1.1",
            Self::H2 => b"h2",
        }
    }
}

/// Where requests go. `tls = None` is plain HTTP (scenario (a), the admin listener).
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub tls: Option<TlsClients>,
    pub path: &'static str,
}

/// One rustls config per ALPN offer, both trusting only the bench CA.
#[derive(Clone)]
pub struct TlsClients {
    h1: Arc<ClientConfig>,
    h2: Arc<ClientConfig>,
}

impl TlsClients {
    /// TLS 1.3 only, `TLS13_AES_128_GCM_SHA256` only, X25519 key exchange: the same
    /// parameters nginx and HAProxy (OpenSSL 3.0) negotiate, so record costs compare.
    pub fn new(ca: &Path) -> Result<Self, String> {
        use rustls::crypto::aws_lc_rs as p;
        let mut roots = rustls::RootCertStore::empty();
        for c in accessgate::transport::tls::load_certs(ca).map_err(|e| e.to_string())? {
            roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
        }
        let mut provider = p::default_provider();
        provider.cipher_suites = vec![p::cipher_suite::TLS13_AES_128_GCM_SHA256];
        provider.kx_groups = vec![p::kx_group::X25519];
        let provider = Arc::new(provider);
        let build = |alpn: Proto| -> Result<Arc<ClientConfig>, String> {
            let mut cfg = ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            cfg.alpn_protocols = vec![alpn.alpn().to_vec()];
            Ok(Arc::new(cfg))
        };
        Ok(Self {
            h1: build(Proto::H1)?,
            h2: build(Proto::H2)?,
        })
    }
}

/// A byte stream, TLS or not.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// TCP connect (+ TLS handshake, checking the server agreed to `proto` by ALPN).
pub async fn connect(target: &Target, proto: Proto) -> Result<Box<dyn Io>, String> {
    let fut = async {
        let tcp = TcpStream::connect(target.addr)
            .await
            .map_err(|e| format!("connect {}: {e}", target.addr))?;
        let _ = tcp.set_nodelay(true);
        let Some(tls) = &target.tls else {
            return Ok(Box::new(tcp) as Box<dyn Io>);
        };
        let cfg = match proto {
            Proto::H1 => tls.h1.clone(),
            Proto::H2 => tls.h2.clone(),
        };
        let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
        let stream = tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {}: {e}", target.addr))?;
        let got = stream.get_ref().1.alpn_protocol();
        if got != Some(proto.alpn()) {
            return Err(format!(
                "{} did not negotiate {} by ALPN (got {:?})",
                target.addr,
                proto.as_str(),
                got.map(String::from_utf8_lossy)
            ));
        }
        Ok(Box::new(stream) as Box<dyn Io>)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, fut)
        .await
        .map_err(|_| format!("connect {}: timed out", target.addr))?
}

/// A client connection's request handle.
pub enum Sender {
    H1(http1::SendRequest<Empty<Bytes>>),
    H2(http2::SendRequest<Empty<Bytes>>),
}

impl Sender {
    /// Connect and hand the connection's I/O task to the runtime.
    pub async fn open(target: &Target, proto: Proto) -> Result<Self, String> {
        let io = TokioIo::new(connect(target, proto).await?);
        let hs = |e: hyper::Error| format!("HTTP handshake with {}: {e}", target.addr);
        match proto {
            Proto::H1 => {
                let (tx, conn) = http1::handshake(io).await.map_err(hs)?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Ok(Self::H1(tx))
            }
            Proto::H2 => {
                let (tx, conn) = http2::Builder::new(TokioExecutor::new())
                    .handshake(io)
                    .await
                    .map_err(hs)?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Ok(Self::H2(tx))
            }
        }
    }

    pub async fn send(&mut self, req: Request<Empty<Bytes>>) -> hyper::Result<Response<Incoming>> {
        match self {
            Self::H1(tx) => {
                tx.ready().await?;
                tx.send_request(req).await
            }
            Self::H2(tx) => {
                tx.ready().await?;
                tx.send_request(req).await
            }
        }
    }

    /// Another handle on the same connection: HTTP/2 only (an HTTP/1.1 connection has
    /// one request in flight, so it has one handle).
    pub fn h2_clone(&self) -> Option<Self> {
        match self {
            Self::H1(_) => None,
            Self::H2(tx) => Some(Self::H2(tx.clone())),
        }
    }

    pub fn is_closed(&self) -> bool {
        match self {
            Self::H1(tx) => tx.is_closed(),
            Self::H2(tx) => tx.is_closed(),
        }
    }
}

/// Builds the one request shape a run sends.
#[derive(Clone)]
pub struct RequestTemplate {
    uri: Uri,
    /// HTTP/1.1 only: HTTP/2 carries the authority in the URI (`:authority`), and a
    /// `Host` header beside it makes some servers (nginx) answer 400.
    host: Option<HeaderValue>,
}

impl RequestTemplate {
    /// HTTP/1.1 gets origin-form plus `Host`; HTTP/2 an absolute URI (`:authority`).
    pub fn new(target: &Target, proto: Proto) -> Result<Self, String> {
        let scheme = if target.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let authority = format!("localhost:{}", target.addr.port());
        let uri = match proto {
            Proto::H1 => target.path.to_owned(),
            Proto::H2 => format!("{scheme}://{authority}{}", target.path),
        };
        let host = match proto {
            Proto::H1 => Some(HeaderValue::from_str(&authority).map_err(|e| e.to_string())?),
            Proto::H2 => None,
        };
        Ok(Self {
            uri: uri.parse().map_err(|e| format!("{uri}: {e}"))?,
            host,
        })
    }

    pub fn build(&self, token: Option<&HeaderValue>) -> Request<Empty<Bytes>> {
        let mut req = Request::new(Empty::new());
        *req.uri_mut() = self.uri.clone();
        let h = req.headers_mut();
        if let Some(host) = &self.host {
            h.insert(HOST, host.clone());
        }
        if let Some(t) = token {
            h.insert(AUTHORIZATION, t.clone());
        }
        req
    }
}

/// `Bearer <token>` header values, built once before a run.
pub fn bearer_values(tokens: &[String]) -> Result<Vec<HeaderValue>, String> {
    tokens
        .iter()
        .map(|t| HeaderValue::from_str(&format!("Bearer {t}")).map_err(|e| e.to_string()))
        .collect()
}

/// Read and discard a response body (bounded by the caller's timeout).
pub async fn drain(body: Incoming) -> hyper::Result<()> {
    let mut body = body;
    while let Some(frame) = body.frame().await {
        frame?;
    }
    Ok(())
}

/// One HTTP/1.1 request on a fresh connection: status and body (first 64 KiB), bounded.
pub async fn fetch(
    target: &Target,
    token: Option<&HeaderValue>,
) -> Result<(StatusCode, String), String> {
    fetch_with(target, Proto::H1, token).await
}

/// One request with `proto` on a fresh connection: status and body (first 64 KiB).
pub async fn fetch_with(
    target: &Target,
    proto: Proto,
    token: Option<&HeaderValue>,
) -> Result<(StatusCode, String), String> {
    let fut = async {
        let mut tx = Sender::open(target, proto).await?;
        let req = RequestTemplate::new(target, proto)?.build(token);
        let resp = tx.send(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let text = String::from_utf8_lossy(&body[..body.len().min(65_536)]).into_owned();
        Ok::<_, String>((status, text))
    };
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .map_err(|_| format!("request to {}{} timed out", target.addr, target.path))?
}

/// Plain-HTTP GET on the admin listener.
pub async fn admin_get(
    admin: SocketAddr,
    path: &'static str,
) -> Result<(StatusCode, String), String> {
    fetch(
        &Target {
            addr: admin,
            tls: None,
            path,
        },
        None,
    )
    .await
}

/// Sum of every series of a metric family in Prometheus text (0 when absent).
pub fn metric_sum(text: &str, family: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
