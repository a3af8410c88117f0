//! OAuth2 client credentials against Entra ID (app-only tokens for Microsoft Graph).
//!
//! One token is cached until shortly before `expires_in` and shared by every Graph
//! request; a 401 from Graph calls [`TokenProvider::invalidate`] and the next
//! [`TokenProvider::bearer`] fetches a new one. Only one fetch runs at a time, so a burst
//! of callers after expiry costs one request to the token endpoint.
//!
//! Secrets, private keys and tokens never reach a log or an error: `Debug` is redacted
//! and errors carry only Entra's own error code and description.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, USER_AGENT};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Deserializer, Serialize};

use super::GraphError;
use crate::config::{GraphConfig, GraphCredential};
use crate::ops::metrics::Metrics;
use crate::ops::outbound::{HttpsBodyClient, error_chain};

/// Token responses are small; anything larger is not Entra.
const MAX_TOKEN_BODY: usize = 64 * 1024;
/// The token endpoint must answer within this (head and body).
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
/// A client assertion lives this long (Entra: "5-10 minutes after nbf at most").
const ASSERTION_LIFETIME_SECS: u64 = 300;
/// Refresh this long before expiry at most (a tenth of the lifetime for short tokens).
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

enum Credential {
    Secret(Box<str>),
    Certificate {
        key: Box<EncodingKey>,
        /// base64url SHA-256 of the certificate's DER (`x5t#S256`).
        x5t_s256: String,
    },
}

struct Cached {
    token: Arc<str>,
    refresh_at: Instant,
}

/// App-only bearer tokens for Graph (see the module comment).
pub struct TokenProvider {
    token_url: String,
    scope: String,
    client_id: String,
    credential: Credential,
    client: HttpsBodyClient,
    cached: Mutex<Option<Cached>>,
    /// Held while fetching: one token request at a time.
    fetching: tokio::sync::Mutex<()>,
    metrics: Option<Metrics>,
}

impl std::fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProvider")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field(
                "credential",
                &match self.credential {
                    Credential::Secret(_) => "secret (redacted)",
                    Credential::Certificate { .. } => "certificate (redacted)",
                },
            )
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: u64,
    iat: u64,
    exp: u64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    token_type: Option<String>,
    #[serde(default, deserialize_with = "number_or_string")]
    expires_in: Option<u64>,
    error: Option<String>,
    error_description: Option<String>,
}

/// v2 sends `expires_in` as a number, v1 as a string: accept both.
fn number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        Num(u64),
        Str(String),
    }
    Ok(match Option::<N>::deserialize(d)? {
        None => None,
        Some(N::Num(n)) => Some(n),
        Some(N::Str(s)) => s.trim().parse().ok(),
    })
}

fn read_credential(cfg: &GraphConfig) -> Result<Credential, GraphError> {
    match &cfg.credential {
        GraphCredential::SecretFile(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| GraphError::Credential(format!("{}: {e}", p.display())))?;
            let secret = text.trim();
            if secret.is_empty() {
                return Err(GraphError::Credential(format!("{} is empty", p.display())));
            }
            Ok(Credential::Secret(secret.into()))
        }
        GraphCredential::Certificate { cert, key } => {
            let der = CertificateDer::from_pem_file(cert)
                .map_err(|e| GraphError::Credential(format!("{}: {e}", cert.display())))?;
            let pem = std::fs::read(key)
                .map_err(|e| GraphError::Credential(format!("{}: {e}", key.display())))?;
            let key = EncodingKey::from_rsa_pem(&pem).map_err(|e| {
                GraphError::Credential(format!("{}: not an RSA private key: {e}", key.display()))
            })?;
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der.as_ref());
            Ok(Credential::Certificate {
                key: Box::new(key),
                x5t_s256: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest),
            })
        }
    }
}

/// A random RFC 4122 version 4 id for `jti`.
pub(crate) fn random_guid() -> Result<String, GraphError> {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b)
        .map_err(|_| GraphError::Credential("no system randomness".into()))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

impl TokenProvider {
    /// Read the credential (files: call off the runtime threads) and prepare the token
    /// request for the config's cloud and tenant.
    pub fn new(cfg: &GraphConfig, client: HttpsBodyClient) -> Result<Self, GraphError> {
        Ok(Self {
            token_url: format!("{}/{}/oauth2/v2.0/token", cfg.login_url, cfg.tenant_id),
            scope: format!("{}/.default", cfg.graph_url),
            client_id: cfg.client_id.clone(),
            credential: read_credential(cfg)?,
            client,
            cached: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
            metrics: None,
        })
    }

    /// Count token requests in `accessgate_graph_requests_total{collection="token"}`.
    pub fn with_metrics(mut self, m: Metrics) -> Self {
        self.metrics = Some(m);
        self
    }

    fn cached(&self) -> Option<Arc<str>> {
        let g = self.cached.lock().ok()?;
        g.as_ref()
            .filter(|c| Instant::now() < c.refresh_at)
            .map(|c| c.token.clone())
    }

    /// A valid bearer token: the cached one, or a fresh one from the token endpoint.
    pub async fn bearer(&self) -> Result<Arc<str>, GraphError> {
        if let Some(t) = self.cached() {
            return Ok(t);
        }
        let _one = self.fetching.lock().await;
        // Another caller may have fetched while this one waited.
        if let Some(t) = self.cached() {
            return Ok(t);
        }
        let (token, expires_in) = self.fetch().await?;
        let lifetime = Duration::from_secs(expires_in);
        let margin = REFRESH_MARGIN.min(lifetime / 10);
        let token: Arc<str> = token.into();
        if let Ok(mut g) = self.cached.lock() {
            *g = Some(Cached {
                token: token.clone(),
                refresh_at: Instant::now() + lifetime.saturating_sub(margin),
            });
        }
        Ok(token)
    }

    /// Forget the cached token (Graph answered 401 with it).
    pub fn invalidate(&self) {
        if let Ok(mut g) = self.cached.lock() {
            *g = None;
        }
    }

    fn assertion(&self, key: &EncodingKey, x5t_s256: &str) -> Result<String, GraphError> {
        let now = unix_now();
        let mut header = Header::new(Algorithm::PS256);
        header.typ = Some("JWT".into());
        header.x5t_s256 = Some(x5t_s256.to_owned());
        let claims = AssertionClaims {
            aud: &self.token_url,
            iss: &self.client_id,
            sub: &self.client_id,
            jti: random_guid()?,
            nbf: now,
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        };
        jsonwebtoken::encode(&header, &claims, key)
            .map_err(|e| GraphError::Credential(format!("signing the client assertion: {e}")))
    }

    fn form(&self) -> Result<String, GraphError> {
        let mut form = format!(
            "grant_type=client_credentials&client_id={}&scope={}",
            enc(&self.client_id),
            enc(&self.scope)
        );
        match &self.credential {
            Credential::Secret(s) => {
                form.push_str("&client_secret=");
                form.push_str(&enc(s));
            }
            Credential::Certificate { key, x5t_s256 } => {
                form.push_str(
                    "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=",
                );
                form.push_str(&self.assertion(key, x5t_s256)?);
            }
        }
        Ok(form)
    }

    fn count(&self, status: &str) {
        if let Some(m) = &self.metrics {
            m.graph_requests_total
                .with_label_values(&["token", status])
                .inc();
        }
    }

    async fn fetch(&self) -> Result<(String, u64), GraphError> {
        let req = Request::post(self.token_url.as_str())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .header(
                USER_AGENT,
                concat!("accessgate/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(self.form()?)))
            .map_err(|e| GraphError::Request(format!("token request: {e}")))?;
        let url = &self.token_url;
        let result = tokio::time::timeout(TOKEN_TIMEOUT, async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| GraphError::Request(format!("{url}: {}", error_chain(&e))))?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_TOKEN_BODY)
                .collect()
                .await
                .map_err(|e| GraphError::Request(format!("{url}: body: {e}")))?
                .to_bytes();
            Ok::<_, GraphError>((status, body))
        })
        .await;
        let (status, body) = match result {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                self.count("error");
                return Err(e);
            }
            Err(_) => {
                self.count("timeout");
                return Err(GraphError::Request(format!(
                    "{url}: no answer within {}s",
                    TOKEN_TIMEOUT.as_secs()
                )));
            }
        };
        self.count(status.as_str());
        let parsed: Option<TokenResponse> = serde_json::from_slice(&body).ok();
        if status != StatusCode::OK {
            let (code, desc) = parsed
                .map(|p| {
                    (
                        p.error.unwrap_or_default(),
                        p.error_description.unwrap_or_default(),
                    )
                })
                .unwrap_or_default();
            // 4xx: Entra refused the credential or the request; retrying will not help.
            let msg = format!(
                "token endpoint {url} answered HTTP {}: {code} {}",
                status.as_u16(),
                desc.lines().next().unwrap_or("")
            );
            return Err(if status.is_client_error() {
                GraphError::Refused(msg)
            } else {
                GraphError::Request(msg)
            });
        }
        let Some(p) = parsed else {
            return Err(GraphError::Malformed(format!(
                "token endpoint {url}: the answer is not a token response"
            )));
        };
        match (p.access_token, p.token_type, p.expires_in) {
            (Some(t), Some(ty), Some(exp))
                if !t.is_empty() && ty.eq_ignore_ascii_case("bearer") && exp > 0 =>
            {
                Ok((t, exp))
            }
            _ => Err(GraphError::Malformed(format!(
                "token endpoint {url}: access_token, token_type bearer and expires_in are required"
            ))),
        }
    }
}

#[cfg(test)]
#[path = "token_tests.rs"]
pub(crate) mod tests;
