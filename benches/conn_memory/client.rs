//! The load side (its own process, so its memory is not counted): N TLS connections, one
//! request each with an Entra-sized bearer token (never indexed, as browsers and h2load
//! send `authorization`), then held open and idle until killed.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

/// What one connection keeps alive.
enum Held {
    Tls(#[allow(dead_code)] Box<tokio_rustls::client::TlsStream<TcpStream>>),
    H2(#[allow(dead_code)] hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
    H1(#[allow(dead_code)] hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
}

fn request() -> Result<http::Request<Empty<Bytes>>, String> {
    let token = format!("Bearer {}", "eyJhbGciOiJSUzI1NiJ9x".repeat(72));
    let mut auth = http::HeaderValue::from_str(&token).map_err(|e| e.to_string())?;
    auth.set_sensitive(true);
    http::Request::builder()
        .uri("https://localhost/")
        .header(http::header::AUTHORIZATION, auth)
        .header(http::header::USER_AGENT, "conn-memory/1")
        .header(http::header::ACCEPT, "*/*")
        .body(Empty::new())
        .map_err(|e| e.to_string())
}

/// Wait for the answer to one request and read its body (either protocol's sender).
async fn answered(
    sent: impl std::future::Future<Output = hyper::Result<http::Response<hyper::body::Incoming>>>,
) -> Result<(), String> {
    let resp = sent.await.map_err(|e| e.to_string())?;
    resp.into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

async fn one(
    connector: tokio_rustls::TlsConnector,
    port: u16,
    proto: &str,
) -> Result<Held, String> {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    match proto {
        "tls" => Ok(Held::Tls(Box::new(tls))),
        "h1" => {
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            answered(send.send_request(request()?)).await?;
            Ok(Held::H1(send))
        }
        _ => {
            let (mut send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                .handshake(TokioIo::new(tls))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            answered(send.send_request(request()?)).await?;
            Ok(Held::H2(send))
        }
    }
}

pub fn main() -> Result<(), String> {
    let port: u16 = std::env::var("CONN_MEMORY_PORT")
        .map_err(|e| e.to_string())?
        .parse()
        .map_err(|e| format!("port: {e}"))?;
    let cert = std::env::var("CONN_MEMORY_CERT").map_err(|e| e.to_string())?;
    let proto = std::env::var("CONN_MEMORY_PROTO").map_err(|e| e.to_string())?;
    let n = super::env_n();
    let mut roots = rustls::RootCertStore::empty();
    let der = CertificateDer::from_pem_file(&cert).map_err(|e| format!("{cert}: {e}"))?;
    roots.add(der).map_err(|e| e.to_string())?;
    let mut cfg =
        rustls::ClientConfig::builder_with_provider(accessgate::transport::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
    cfg.alpn_protocols = match proto.as_str() {
        "h1" => vec![b"http/1.1".to_vec()],
        _ => vec![b"h2".to_vec()],
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let kind: &'static str = match proto.as_str() {
        "tls" => "tls",
        "h1" => "h1",
        _ => "h2",
    };
    rt.block_on(async move {
        let mut held = Vec::with_capacity(n);
        // 32 handshakes at a time, like the bench's idle mode.
        let mut next = 0;
        while next < n {
            let batch = (n - next).min(32);
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..batch {
                set.spawn(one(connector.clone(), port, kind));
            }
            while let Some(r) = set.join_next().await {
                held.push(r.map_err(|e| e.to_string())??);
            }
            next += batch;
        }
        println!("idle");
        // Held until the orchestrator kills this process.
        std::future::pending::<()>().await;
        drop(held);
        Ok(())
    })
}
