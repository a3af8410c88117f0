//! The fault soak's load: a few HTTP/1.1 and HTTP/2 connections in closed loop, each
//! re-opened every few seconds (so new handshakes meet swapped certificates), every
//! request of a known token class and every answer judged against the history of worlds
//! (`fault_expect`). Counts per protocol and class; the first few problems are kept
//! verbatim for the report.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, HOST, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Request};
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::expect::{Accept, CLASSES, Class, History, Outcome};
use crate::client::{Proto, Sender};

/// A request not answered within this is a failure.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Problems kept verbatim for the report.
const KEEP_PROBLEMS: usize = 12;

/// The tokens of one key generation.
#[derive(Clone)]
pub struct GenTokens {
    pub good: HeaderValue,
    pub flip: HeaderValue,
    pub blocked: HeaderValue,
    pub expired: HeaderValue,
    pub forged: HeaderValue,
}

/// Everything a connection needs; shared by all of them.
pub struct Shared {
    pub addr: SocketAddr,
    pub tls_h1: Arc<ClientConfig>,
    pub tls_h2: Arc<ClientConfig>,
    /// The server certificate (DER) of each certificate generation.
    pub certs: Vec<Vec<u8>>,
    pub tokens: Vec<GenTokens>,
    /// The user the echo upstream must report for each class that can be allowed.
    pub users: [&'static str; 7],
    pub history: Arc<History>,
    pub stats: Mutex<Stats>,
    /// Deliberate break (to prove the soak can fail): this class is expected to get 200.
    pub break_class: Option<Class>,
}

/// Counters of one protocol x class.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub sent: u64,
    pub right: u64,
    /// A decision the world did not allow.
    pub wrong: u64,
    /// 502/504 inside an upstream-down window (right, but not served).
    pub unservable: u64,
    /// No decision although the gateway could have served it: transport errors,
    /// timeouts, 502/504 outside the window, other 5xx.
    pub failed: u64,
}

#[derive(Debug, Default)]
pub struct Stats {
    /// [h1, h2] x class.
    pub counts: [[Counts; 7]; 2],
    pub conns_opened: [u64; 2],
    /// Handshakes whose certificate was checked against the world (all of them).
    pub cert_checks: u64,
    pub cert_wrong: u64,
    pub conn_failures: u64,
    pub problems: Vec<String>,
}

impl Stats {
    fn problem(&mut self, p: String) {
        if self.problems.len() < KEEP_PROBLEMS {
            self.problems.push(p);
        }
    }
}

fn pi(p: Proto) -> usize {
    match p {
        Proto::H1 => 0,
        Proto::H2 => 1,
    }
}

/// Client TLS configs trusting every certificate generation's CA, one per ALPN offer.
pub fn client_configs(cas: &[CertificateDer<'static>]) -> Result<[Arc<ClientConfig>; 2], String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in cas {
        roots.add(c.clone()).map_err(|e| format!("CA: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let build = |alpn: &[u8]| -> Result<Arc<ClientConfig>, String> {
        let mut cfg = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        cfg.alpn_protocols = vec![alpn.to_vec()];
        Ok(Arc::new(cfg))
    };
    Ok([build(b"http/1.1")?, build(b"h2")?])
}

/// TCP + TLS + HTTP handshake; returns the sender and the server certificate seen.
async fn open(sh: &Shared, proto: Proto) -> Result<(Sender, Vec<u8>), String> {
    let fut = async {
        let tcp = TcpStream::connect(sh.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let cfg = match proto {
            Proto::H1 => sh.tls_h1.clone(),
            Proto::H2 => sh.tls_h2.clone(),
        };
        let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        let conn = tls.get_ref().1;
        let cert = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.as_ref().to_vec())
            .ok_or("no server certificate")?;
        let want: &[u8] = match proto {
            Proto::H1 => b"http/1.1",
            Proto::H2 => b"h2",
        };
        if conn.alpn_protocol() != Some(want) {
            return Err(format!("ALPN did not agree on {}", proto.as_str()));
        }
        let io = TokioIo::new(tls);
        let hs = |e: hyper::Error| format!("HTTP handshake: {e}");
        let sender = match proto {
            Proto::H1 => {
                let (tx, c) = http1::handshake(io).await.map_err(hs)?;
                tokio::spawn(async move {
                    let _ = c.await;
                });
                Sender::H1(tx)
            }
            Proto::H2 => {
                let (tx, c) = http2::Builder::new(TokioExecutor::new())
                    .handshake(io)
                    .await
                    .map_err(hs)?;
                tokio::spawn(async move {
                    let _ = c.await;
                });
                Sender::H2(tx)
            }
        };
        Ok::<_, String>((sender, cert))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, fut)
        .await
        .map_err(|_| "connect: timed out".to_owned())?
}

/// One HTTP/1.1 handshake: the server certificate new connections see now.
pub async fn probe_cert(sh: &Shared) -> Result<Vec<u8>, String> {
    open(sh, Proto::H1).await.map(|(_, cert)| cert)
}

/// One connection's life after life until `deadline`: `streams` requests in flight,
/// re-opened every `life`.
pub async fn connection(
    sh: Arc<Shared>,
    proto: Proto,
    streams: usize,
    life: Duration,
    offset: usize,
    deadline: Instant,
) {
    let mut round = 0usize;
    while Instant::now() < deadline {
        let v1 = sh.history.version();
        let opened = open(&sh, proto).await;
        let v2 = sh.history.version();
        let (sender, cert) = match opened {
            Ok(x) => x,
            Err(e) => {
                {
                    let mut st = sh.stats.lock().unwrap_or_else(PoisonError::into_inner);
                    st.conn_failures += 1;
                    st.problem(format!("{} connection failed: {e}", proto.as_str()));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        {
            let generation = sh.certs.iter().position(|c| *c == cert);
            let ok = generation.is_some_and(|g| sh.history.cert_ok(v1, v2, g));
            let mut st = sh.stats.lock().unwrap_or_else(PoisonError::into_inner);
            st.conns_opened[pi(proto)] += 1;
            st.cert_checks += 1;
            if !ok {
                st.cert_wrong += 1;
                let world = sh.history.get(v2);
                st.problem(format!(
                    "{} handshake saw certificate generation {generation:?}, expected {:?}",
                    proto.as_str(),
                    world.cert
                ));
            }
        }
        let end = (Instant::now() + life).min(deadline);
        match sender {
            Sender::H1(_) => slot(&sh, proto, sender, offset + round, end).await,
            Sender::H2(_) => {
                let mut set = tokio::task::JoinSet::new();
                for s in 0..streams {
                    let Some(tx) = sender.h2_clone() else { break };
                    let sh = sh.clone();
                    let start = offset + s * 3 + round;
                    set.spawn(async move { slot(&sh, proto, tx, start, end).await });
                }
                drop(sender);
                while set.join_next().await.is_some() {}
            }
        }
        round += 1;
    }
}

/// Closed loop on one sender until `end` or a transport error.
async fn slot(sh: &Shared, proto: Proto, mut tx: Sender, start: usize, end: Instant) {
    let mut k = start;
    while Instant::now() < end {
        let class = CLASSES[k % CLASSES.len()];
        k += 1;
        if !one(sh, proto, &mut tx, class).await {
            return;
        }
    }
}

/// Send one request of `class`, judge the answer. `false`: the connection is unusable.
async fn one(sh: &Shared, proto: Proto, tx: &mut Sender, class: Class) -> bool {
    let v1 = sh.history.version();
    let world = sh.history.get(v1);
    let g = world.sign_gen;
    let (token, key_gen) = match class {
        Class::Good => (Some(&sh.tokens[g].good), g),
        Class::Flip => (Some(&sh.tokens[g].flip), g),
        Class::Blocked => (Some(&sh.tokens[g].blocked), g),
        Class::NoToken => (None, g),
        Class::Expired => (Some(&sh.tokens[g].expired), g),
        Class::Forged => (Some(&sh.tokens[g].forged), g),
        Class::PrevKey => (
            Some(&sh.tokens[g.saturating_sub(1)].good),
            g.saturating_sub(1),
        ),
    };
    let req = request(sh.addr, proto, token);
    let answered = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let resp = tx.send(req).await.map_err(|e| format!("request: {e}"))?;
        let (parts, body) = resp.into_parts();
        let body = Limited::new(body, 64 * 1024)
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok::<_, String>((parts, body))
    })
    .await
    .unwrap_or_else(|_| Err("no answer within 10 s".to_owned()));
    let v2 = sh.history.version();
    let mut st = sh.stats.lock().unwrap_or_else(PoisonError::into_inner);
    let c = &mut st.counts[pi(proto)][class.index()];
    c.sent += 1;
    let (parts, body) = match answered {
        Ok(x) => x,
        Err(e) => {
            c.failed += 1;
            st.problem(format!(
                "{} {}: {e} (world {v1}..{v2})",
                proto.as_str(),
                class.as_str()
            ));
            return false;
        }
    };
    let outcome = classify(&parts, &body, sh.users[class.index()]);
    let mut accept = sh.history.accept(v1, v2, class, key_gen);
    if sh.break_class == Some(class) {
        accept = Accept::default().with(Outcome::Allow);
    }
    if accept.has(outcome) {
        if outcome == Outcome::Unservable {
            c.unservable += 1;
        } else {
            c.right += 1;
        }
        return true;
    }
    let status = parts.status.as_u16();
    let servable_failure = outcome == Outcome::Unservable || status >= 500;
    if servable_failure {
        c.failed += 1;
    } else {
        c.wrong += 1;
    }
    let www = parts
        .headers
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
    let kind = if servable_failure { "FAILED" } else { "WRONG" };
    st.problem(format!(
        "{kind} {} {} (key gen {key_gen}, world {v1}..{v2}: {:?}): got {status} {outcome:?}, www-authenticate {www}, body {text}",
        proto.as_str(),
        class.as_str(),
        sh.history.get(v2),
    ));
    true
}

fn request(addr: SocketAddr, proto: Proto, token: Option<&HeaderValue>) -> Request<Empty<Bytes>> {
    let authority = format!("localhost:{}", addr.port());
    let mut req = Request::new(Empty::new());
    let uri = match proto {
        Proto::H1 => crate::fixture::PATH.to_owned(),
        Proto::H2 => format!("https://{authority}{}", crate::fixture::PATH),
    };
    if let Ok(u) = uri.parse() {
        *req.uri_mut() = u;
    }
    let h = req.headers_mut();
    if proto == Proto::H1
        && let Ok(v) = HeaderValue::from_str(&authority)
    {
        h.insert(HOST, v);
    }
    if let Some(t) = token {
        h.insert(AUTHORIZATION, t.clone());
    }
    req
}

/// Read a response as one of the outcomes the soak knows.
pub fn classify(parts: &http::response::Parts, body: &[u8], user: &str) -> Outcome {
    let www = parts
        .headers
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok());
    let json = || serde_json::from_slice::<serde_json::Value>(body).ok();
    match parts.status.as_u16() {
        200 => {
            let seen = json()
                .and_then(|v| v["user"].as_str().map(str::to_owned))
                .unwrap_or_default();
            if seen == user {
                Outcome::Allow
            } else {
                Outcome::Other
            }
        }
        401 => match www {
            Some("Bearer realm=\"accessgate\"") => Outcome::NoToken,
            Some(w) if w.starts_with("Bearer realm=\"accessgate\", error=\"invalid_token\"") => {
                Outcome::Invalid
            }
            _ => Outcome::Other,
        },
        403 => {
            let v = json().unwrap_or_default();
            match v["reason"].as_str() {
                Some("block_policy") if www.is_none() => Outcome::Block,
                Some("device_noncompliant")
                    if parts.headers.contains_key(RETRY_AFTER)
                        && v["remediation_deadline"].is_string()
                        && www.is_none() =>
                {
                    Outcome::Remediate
                }
                _ => Outcome::Other,
            }
        }
        502 | 504 => Outcome::Unservable,
        _ => Outcome::Other,
    }
}
