//! Fetching JWKS and OpenID discovery documents (cold path: background refresh and the
//! rate-limited unknown-`kid` refetch only).
//!
//! HTTPS through rustls with the platform's roots plus an optional private CA; plain
//! `http://` only to a loopback address (config validation enforces it too; a discovery
//! document could still name a remote `http://` `jwks_uri`, so it is checked again here).
//! Every fetch is bounded in time and size, and redirects are not followed.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, USER_AGENT};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use serde::Deserialize;

use crate::ops::outbound::error_chain;

/// A whole fetch (connect, TLS, response, body) must finish within this.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// JWKS and discovery documents are a few KiB; 1 MiB is generous and still bounded.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// The client used for one issuer's fetches.
pub type HttpClient = crate::ops::outbound::HttpsClient;

/// Build a client trusting the platform's roots plus `extra_ca` (PEM). Reads certificate
/// files: call it off the request path (the key store builds it on `spawn_blocking`).
pub fn build_client(extra_ca: Option<&Path>) -> Result<HttpClient, String> {
    crate::ops::outbound::https_client(extra_ca, "jwks_ca", FETCH_TIMEOUT)
}

/// Parse and vet a URL we are about to fetch: `https://`, or `http://` to loopback only;
/// no user-info.
pub fn check_url(url: &str) -> Result<Uri, String> {
    let uri: Uri = url.parse().map_err(|_| format!("invalid URL {url:?}"))?;
    let authority = uri
        .authority()
        .ok_or_else(|| format!("URL without host: {url:?}"))?;
    if authority.as_str().contains('@') {
        return Err(format!("URL with user-info refused: {url:?}"));
    }
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback_host(authority.host()) => Ok(uri),
        Some("http") => Err(format!(
            "plain http is allowed only to a loopback address: {url:?}"
        )),
        _ => Err(format!("unsupported URL scheme: {url:?}")),
    }
}

fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// GET `url` and return the body of a 200 answer, bounded by [`FETCH_TIMEOUT`] and
/// [`MAX_DOCUMENT_BYTES`].
pub async fn get(client: &HttpClient, url: &str) -> Result<Bytes, String> {
    let uri = check_url(url)?;
    let req = Request::get(uri)
        .header(ACCEPT, "application/json")
        .header(
            USER_AGENT,
            concat!("accessgate/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::new())
        .map_err(|e| format!("request to {url}: {e}"))?;
    let fetch = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| format!("GET {url}: {}", error_chain(&e)))?;
        if resp.status() != StatusCode::OK {
            return Err(format!("GET {url}: HTTP {}", resp.status().as_u16()));
        }
        let body = Limited::new(resp.into_body(), MAX_DOCUMENT_BYTES)
            .collect()
            .await
            .map_err(|e| format!("GET {url}: body: {e}"))?;
        Ok(body.to_bytes())
    };
    tokio::time::timeout(FETCH_TIMEOUT, fetch)
        .await
        .map_err(|_| format!("GET {url}: timed out after {}s", FETCH_TIMEOUT.as_secs()))?
}

#[derive(Deserialize)]
struct Discovery {
    issuer: Option<String>,
    jwks_uri: Option<String>,
}

/// OpenID Connect Discovery: `{issuer}/.well-known/openid-configuration` -> `jwks_uri`.
/// The document's `issuer` must equal ours exactly (OIDC Discovery 1.0 section 4.3).
pub async fn discover_jwks_uri(client: &HttpClient, issuer: &str) -> Result<String, String> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let body = get(client, &url).await?;
    let doc: Discovery = serde_json::from_slice(&body)
        .map_err(|e| format!("{url}: not an OpenID configuration: {e}"))?;
    if doc.issuer.as_deref() != Some(issuer) {
        return Err(format!("{url}: document names a different issuer"));
    }
    let jwks_uri = doc.jwks_uri.ok_or_else(|| format!("{url}: no jwks_uri"))?;
    check_url(&jwks_uri)?;
    Ok(jwks_uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_and_loopback_http_only() {
        assert!(check_url("https://login.example/keys").is_ok());
        assert!(check_url("http://127.0.0.1:8080/keys").is_ok());
        assert!(check_url("http://localhost/keys").is_ok());
        assert!(check_url("http://[::1]:9/keys").is_ok());
        assert!(check_url("http://10.0.0.1/keys").is_err());
        assert!(check_url("http://idp.example/keys").is_err());
        assert!(check_url("http://127.0.0.1.nip.io/keys").is_err());
        assert!(check_url("ftp://127.0.0.1/keys").is_err());
        assert!(check_url("https://user:pw@login.example/keys").is_err());
        assert!(check_url("/relative").is_err());
    }
}
