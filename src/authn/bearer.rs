//! Bearer credentials from the `Authorization` header (RFC 6750 section 2.1).
//!
//! Only the header is read: RFC 6750's form-body and query-string methods leak tokens into
//! logs and caches, so they are not accepted.

use http::HeaderMap;
use http::header::AUTHORIZATION;

use super::error::{RefusalReason, TokenRefusal, refuse};

/// Tokens longer than this are refused before any decoding work. Entra access tokens with
/// many groups stay well under 8 KiB; 16 KiB also matches the default `max_header_bytes`.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

const TWO_HEADERS: TokenRefusal = TokenRefusal::new(
    RefusalReason::InvalidRequest,
    "more than one Authorization header",
);
const MALFORMED_HEADER: TokenRefusal = TokenRefusal::new(
    RefusalReason::InvalidRequest,
    "malformed Authorization header",
);

/// The bearer credentials of a request, as raw bytes (see [`token_syntax`]).
///
/// - no `Authorization`, or a scheme other than `Bearer` (RFC 6750 3.1: a request without
///   bearer credentials gets a challenge with no error code) -> `Missing`;
/// - two `Authorization` headers -> `InvalidRequest`;
/// - `Bearer` with nothing after it -> `invalid_token` ("empty bearer token");
/// - longer than [`MAX_TOKEN_BYTES`] -> `invalid_token` ("token too large").
///
/// The character check is split off into [`token_syntax`] so the cache-hit path does not
/// scan the token twice more: bytes that equal an already verified token (same SHA-256)
/// passed that check when they were verified.
pub fn extract(headers: &HeaderMap) -> Result<&[u8], TokenRefusal> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(refuse::MISSING);
    };
    if values.next().is_some() {
        return Err(TWO_HEADERS);
    }
    let v = value.as_bytes();
    let (scheme, rest) = match v.iter().position(|&b| b == b' ') {
        Some(i) => (&v[..i], &v[i + 1..]),
        None => (v, &[][..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(refuse::MISSING);
    }
    // Size before anything looks at the token's bytes.
    if rest.len() > MAX_TOKEN_BYTES + 16 {
        return Err(refuse::TOO_LARGE);
    }
    // RFC 7235 allows 1*SP after the scheme; trailing whitespace is not part of the token.
    let token = rest.trim_ascii();
    if token.is_empty() {
        return Err(refuse::EMPTY);
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(refuse::TOO_LARGE);
    }
    Ok(token)
}

/// The token as text, if every byte is RFC 6750 `b64token`
/// (`1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`); otherwise the header
/// is malformed (`invalid_request`).
pub fn token_syntax(token: &[u8]) -> Result<&str, TokenRefusal> {
    let body_end = token.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    // A fold without early exit over pure comparisons: the compiler vectorises it, so a
    // 2 KB token costs tens of nanoseconds, not one branch per byte.
    let body_ok = token[..body_end]
        .iter()
        .fold(true, |ok, &b| ok & is_b64token_char(b));
    if body_end == 0 || !body_ok {
        return Err(MALFORMED_HEADER);
    }
    // All ASCII by the check above.
    std::str::from_utf8(token).map_err(|_| MALFORMED_HEADER)
}

#[inline]
fn is_b64token_char(b: u8) -> bool {
    (b | 0x20).is_ascii_lowercase()
        | b.is_ascii_digit()
        | (b == b'-')
        | (b == b'.')
        | (b == b'_')
        | (b == b'~')
        | (b == b'+')
        | (b == b'/')
}

#[cfg(test)]
#[path = "bearer_tests.rs"]
mod tests;
