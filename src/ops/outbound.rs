//! Outbound HTTPS for the cold paths: JWKS and OpenID discovery fetches, the `http`
//! policy state source and the Microsoft Graph connector. One client recipe, so all trust
//! the same roots the same way.
//!
//! rustls with the process's crypto provider (aws-lc-rs), the platform's roots plus an
//! optional private CA, HTTP/1.1 and HTTP/2. The callers bound every fetch in time and
//! size and vet URLs (https, or http only to loopback).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Empty, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// A client for GETs without a body.
pub type HttpsClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// The same client for requests with a body (the Graph connector's token POST and its
/// GETs share one pool).
pub type HttpsBodyClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Build a client trusting the platform's roots plus `extra_ca` (PEM; `what` names the
/// config key in errors). Reads certificate files: call it off the request path.
pub fn https_client(
    extra_ca: Option<&Path>,
    what: &str,
    connect_timeout: Duration,
) -> Result<HttpsClient, String> {
    build(extra_ca, what, connect_timeout)
}

/// [`https_client`] for requests with a body.
pub fn https_body_client(
    extra_ca: Option<&Path>,
    what: &str,
    connect_timeout: Duration,
) -> Result<HttpsBodyClient, String> {
    build(extra_ca, what, connect_timeout)
}

fn build<B>(
    extra_ca: Option<&Path>,
    what: &str,
    connect_timeout: Duration,
) -> Result<Client<HttpsConnector<HttpConnector>, B>, String>
where
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut roots = RootCertStore::empty();
    // Platform roots may be absent (minimal containers); that is only an error when an
    // https fetch later finds no root for its server.
    let native = rustls_native_certs::load_native_certs();
    let _ = roots.add_parsable_certificates(native.certs);
    if let Some(path) = extra_ca {
        let err = |e: &dyn std::fmt::Display| format!("{what} {}: {e}", path.display());
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| err(&e))?
            .collect::<Result<_, _>>()
            .map_err(|e| err(&e))?;
        if certs.is_empty() {
            return Err(err(&"no certificate found"));
        }
        for c in certs {
            roots.add(c).map_err(|e| err(&e))?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS client config: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector))
}

/// An error and its sources, joined with `: ` (hyper-util's client errors say little on
/// their own).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
