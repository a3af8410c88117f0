//! Entry points for the coverage-guided fuzz targets in `fuzz/`. Not an API.
//!
//! Most parsers that face the network or a file are public already (`route::normalize_path`,
//! `transport::h1_guard::H1Guard`, `PolicyState::from_json`, `config::parse_str`...). The token
//! decoding steps are crate-private on purpose (nothing outside authn should pick and choose
//! among them), so this one file exposes them to the fuzzer and nowhere else. It runs the
//! same steps, in the same order, as `Authenticator::verify` does before it touches a key.

use std::sync::Arc;

use http::HeaderMap;

use crate::authn::error::TokenRefusal;
use crate::authn::principal::Principal;
use crate::authn::{bearer, claims, jose};
use crate::config::{ClaimNames, JwsAlgorithm};

/// `bearer::extract`: the raw credentials of the `Authorization` header(s).
pub fn bearer_extract(headers: &HeaderMap) -> Result<&[u8], TokenRefusal> {
    bearer::extract(headers)
}

/// `bearer::token_syntax`: the RFC 6750 `b64token` check.
pub fn bearer_token_syntax(token: &[u8]) -> Result<&str, TokenRefusal> {
    bearer::token_syntax(token)
}

/// Largest token `bearer::extract` lets through.
pub const MAX_TOKEN_BYTES: usize = bearer::MAX_TOKEN_BYTES;

/// What the gateway reads from a token before the signature check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unverified {
    pub alg: JwsAlgorithm,
    pub kid: Option<String>,
    pub iss: String,
    pub tid: Option<String>,
}

/// The pre-signature steps of `Authenticator::verify`: three parts, JOSE header, payload
/// base64url, then `iss`/`tid` (with the full strict claims parse when `names` is given,
/// as when every issuer shares its claim names, else the lighter peek).
pub fn decode_unverified(
    token: &str,
    names: Option<&ClaimNames>,
) -> Result<Unverified, TokenRefusal> {
    let parts = jose::split(token)?;
    let header = jose::parse_header(parts.header)?;
    let payload = jose::b64_decode(parts.payload)?;
    let peek = match names {
        Some(n) => claims::parse(&payload, n)?.peek()?,
        None => jose::peek(&payload)?,
    };
    Ok(Unverified {
        alg: header.alg,
        kid: header.kid,
        iss: peek.iss,
        tid: peek.tid,
    })
}

/// `jose::parse_header` on a base64url header part: `(alg, kid)`.
pub fn parse_jose_header(part: &str) -> Result<(JwsAlgorithm, Option<String>), TokenRefusal> {
    jose::parse_header(part).map(|h| (h.alg, h.kid))
}

/// `jose::peek` on a decoded payload: `(iss, tid)`.
pub fn peek_claims(payload: &[u8]) -> Result<(String, Option<String>), TokenRefusal> {
    jose::peek(payload).map(|p| (p.iss, p.tid))
}

/// `claims::parse(..).peek()` on a decoded payload: must agree with [`peek_claims`]
/// whenever the strict parse succeeds.
pub fn strict_peek_claims(
    payload: &[u8],
    names: &ClaimNames,
) -> Result<(String, Option<String>), TokenRefusal> {
    claims::parse(payload, names)?
        .peek()
        .map(|p| (p.iss, p.tid))
}

/// The principal a payload would yield once its signature verified (issuer index 0; a
/// fixed stand-in for the token hash, which only matters when there is no `jti`).
pub fn principal_of(
    payload: &[u8],
    names: &ClaimNames,
    issuer: &Arc<str>,
) -> Result<Principal, TokenRefusal> {
    claims::principal(payload, names, 0, issuer, || "token-hash".to_owned())
}
