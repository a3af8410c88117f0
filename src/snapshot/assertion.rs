//! The identity assertion: a short-lived ES256 JWT in `x-accessgate-assertion` that tells
//! an upstream who the gateway let through (user, app, device, decision id), for which
//! resource (`aud`), and that it was the gateway, not something that reached the upstream
//! another way. The public keys are a JWKS at [`JWKS_PATH`] on both listeners
//! (`forward::jwks`, `ops::admin`); `forward` adds the header.
//!
//! It lives in the snapshot because its keys are per config version, like the upstream
//! clients: a reload swaps the signer and the published set together.
//!
//! Signing is on the request path, so everything that does not depend on the request is
//! done once per snapshot: the PEM is parsed into an aws-lc `EcdsaKeyPair`, the JOSE
//! header is encoded, the JWKS document is rendered. A request pays for one small JSON
//! object, two base64url encodings and one P-256 signature.
//!
//! Why not `jsonwebtoken::encode` with an `EncodingKey` built per snapshot: in
//! jsonwebtoken 10 an `EncodingKey` only holds the DER bytes, and `encode` parses them into
//! a fresh `EcdsaKeyPair` on every call (`crypto/aws_lc/ecdsa.rs`). The bytes produced here
//! are the same JWS (RFC 7515 compact, ES256 as RFC 7518 3.4: r || s, 64 bytes); the tests
//! verify them with `jsonwebtoken::decode`.

use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::HeaderValue;
use http::header::HeaderName;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject as _;
use serde::Serialize;

use crate::authn::Principal;
use crate::config::AssertionConfig;

/// The request header that carries the assertion to the upstream.
pub static HEADER: HeaderName = HeaderName::from_static("x-accessgate-assertion");

/// Where the public keys are served, on the gateway listener (before routing, no token)
/// and on the admin listener.
pub const JWKS_PATH: &str = "/.well-known/accessgate/jwks.json";

/// The signing key and the published key set of one snapshot.
pub struct AssertionSigner {
    issuer: String,
    lifetime: i64,
    key: EcdsaKeyPair,
    /// base64url of `{"alg":"ES256","typ":"JWT","kid":...}`, the same for every assertion.
    header_b64: String,
    jwks: Bytes,
    rng: SystemRandom,
}

impl std::fmt::Debug for AssertionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssertionSigner")
            .field("issuer", &self.issuer)
            .field("lifetime", &self.lifetime)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// What one assertion says; built per request from borrowed parts.
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    /// The decision id, as in `x-accessgate-decision-id` and the decision log.
    jti: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<&'a str>,
}

impl AssertionSigner {
    /// Load every configured key (each must be a P-256 private key); the first signs.
    /// Errors name the key (`assertion.keys[i]`) and its file.
    pub fn load(cfg: &AssertionConfig) -> Result<Self, String> {
        let mut signing: Option<(&str, EcdsaKeyPair)> = None;
        let mut jwks: Vec<serde_json::Value> = Vec::with_capacity(cfg.keys.len());
        for (i, k) in cfg.keys.iter().enumerate() {
            let pair = load_key(&k.key)
                .map_err(|e| format!("assertion.keys[{i}] ({}): {e}", k.key.display()))?;
            jwks.push(public_jwk(&k.id, &pair).map_err(|e| format!("assertion.keys[{i}]: {e}"))?);
            if signing.is_none() {
                signing = Some((&k.id, pair));
            }
        }
        let Some((kid, key)) = signing else {
            return Err("assertion.keys: at least one key is required".to_owned());
        };
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": kid});
        let jwks = serde_json::to_vec(&serde_json::json!({ "keys": jwks }))
            .map_err(|e| format!("assertion JWKS: {e}"))?;
        Ok(Self {
            issuer: cfg.issuer.clone(),
            lifetime: i64::try_from(cfg.lifetime.as_secs()).unwrap_or(60),
            key,
            header_b64: URL_SAFE_NO_PAD.encode(header.to_string()),
            jwks: Bytes::from(jwks),
            rng: SystemRandom::new(),
        })
    }

    /// The JWKS document (`{"keys":[...]}`), every configured key in order.
    pub fn jwks(&self) -> Bytes {
        self.jwks.clone()
    }

    /// The assertion for `principal` reaching `resource` under `decision_id`, issued at
    /// `now` (unix seconds). `None` only if signing itself fails.
    pub fn sign(
        &self,
        principal: &Principal,
        resource: &str,
        decision_id: &str,
        now: i64,
    ) -> Option<HeaderValue> {
        let claims = Claims {
            iss: &self.issuer,
            sub: &principal.user,
            aud: resource,
            iat: now,
            exp: now.saturating_add(self.lifetime),
            jti: decision_id,
            tid: principal.tenant.as_deref(),
            app: principal.client_app.as_deref(),
            device: principal.device.as_deref(),
        };
        let payload = serde_json::to_vec(&claims).ok()?;
        // header . payload . signature, base64url without padding; 64-byte signature.
        let mut token = String::with_capacity(self.header_b64.len() + payload.len() * 4 / 3 + 92);
        token.push_str(&self.header_b64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let sig = self.key.sign(&self.rng, token.as_bytes()).ok()?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(sig.as_ref(), &mut token);
        // base64url and '.' are valid header bytes; the String moves into the value.
        HeaderValue::try_from(token).ok()
    }
}

/// A P-256 private key from a PEM file (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`).
fn load_key(path: &Path) -> Result<EcdsaKeyPair, String> {
    let der = PrivateKeyDer::from_pem_file(path).map_err(|e| e.to_string())?;
    let bytes = match &der {
        PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der(),
        PrivateKeyDer::Sec1(k) => k.secret_sec1_der(),
        PrivateKeyDer::Pkcs1(_) => {
            return Err("an RSA key: ES256 needs a P-256 (prime256v1) EC key".to_owned());
        }
        _ => return Err("not a P-256 (prime256v1) EC private key".to_owned()),
    };
    EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, bytes)
        .map_err(|e| format!("not a P-256 (prime256v1) EC private key ({e})"))
}

/// The public JWK of `pair` (RFC 7518 6.2.1: `x` and `y` are the 32-byte coordinates).
fn public_jwk(kid: &str, pair: &EcdsaKeyPair) -> Result<serde_json::Value, String> {
    let point = pair.public_key().as_ref();
    // Uncompressed SEC1 point: 0x04 || x (32) || y (32).
    match point.split_first() {
        Some((4, xy)) if xy.len() == 64 => {
            let (x, y) = xy.split_at(32);
            Ok(serde_json::json!({
                "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
            }))
        }
        _ => Err("unexpected public key encoding".to_owned()),
    }
}

/// Write a fresh P-256 private key (PKCS#8 PEM) for `accessgate dev-certs`.
pub fn write_dev_key(path: &Path) -> Result<(), String> {
    let key = rcgen::KeyPair::generate().map_err(|e| format!("assertion key: {e}"))?;
    std::fs::write(path, key.serialize_pem()).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
#[path = "assertion_tests.rs"]
mod tests;
