//! A bare HTTP/2 client over TLS (hyper's `client::conn`), for requests the pooled test
//! client would not send: a chosen `:authority`, a request body that fails midway.

use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::combinators::BoxBody;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::support::tls_client_config;

pub type H2Body = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// Open one h2 connection to the gateway and return its request sender.
pub async fn connect(
    addr: std::net::SocketAddr,
    ca: &std::path::Path,
) -> hyper::client::conn::http2::SendRequest<H2Body> {
    let cfg = tls_client_config(ca, &[b"h2"]);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    send
}

/// A request whose URI (and so `:authority`) is exactly `uri`.
pub fn request(method: &str, uri: &str, body: H2Body) -> Request<H2Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(body)
        .unwrap()
}
