use http::{HeaderMap, HeaderValue};

use super::*;
use crate::authn::error::RefusalReason;
use crate::authn::error::TokenRefusal;

fn headers(values: &[&[u8]]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for v in values {
        h.append(
            AUTHORIZATION,
            HeaderValue::from_bytes(v).expect("test header value is valid"),
        );
    }
    h
}

/// Both stages, as `Authenticator::check` runs them on a cache miss.
fn full(h: &HeaderMap) -> Result<&str, TokenRefusal> {
    extract(h).and_then(token_syntax)
}

fn reason(values: &[&[u8]]) -> RefusalReason {
    full(&headers(values)).expect_err("must be refused").reason
}

#[test]
fn extracts_token_with_any_scheme_case_and_spacing() {
    for v in [
        &b"Bearer abc.def.ghi"[..],
        b"bearer abc.def.ghi",
        b"BEARER abc.def.ghi",
        b"Bearer   abc.def.ghi  ",
    ] {
        assert_eq!(full(&headers(&[v])), Ok("abc.def.ghi"));
    }
}

#[test]
fn accepts_b64token_alphabet_with_padding() {
    assert_eq!(
        full(&headers(&[b"Bearer a-b_c~d+e/f.g=="])),
        Ok("a-b_c~d+e/f.g==")
    );
}

#[test]
fn no_header_is_missing() {
    assert_eq!(reason(&[]), RefusalReason::Missing);
}

#[test]
fn other_scheme_is_missing_not_invalid() {
    assert_eq!(reason(&[b"Basic dXNlcjpwYXNz"]), RefusalReason::Missing);
    assert_eq!(reason(&[b"Bearerabc"]), RefusalReason::Missing);
    assert_eq!(reason(&[b"Negotiate"]), RefusalReason::Missing);
}

#[test]
fn two_headers_are_invalid_request() {
    assert_eq!(
        reason(&[b"Bearer a.b.c", b"Bearer a.b.c"]),
        RefusalReason::InvalidRequest
    );
    assert_eq!(
        reason(&[b"Basic x", b"Bearer a.b.c"]),
        RefusalReason::InvalidRequest
    );
}

#[test]
fn malformed_header_is_invalid_request() {
    assert_eq!(reason(&[b"Bearer a b"]), RefusalReason::InvalidRequest);
    assert_eq!(reason(&[b"Bearer a\"b"]), RefusalReason::InvalidRequest);
    assert_eq!(reason(&[b"Bearer a,b"]), RefusalReason::InvalidRequest);
    assert_eq!(reason(&[b"Bearer ==="]), RefusalReason::InvalidRequest);
    assert_eq!(reason(&[b"Bearer a=b"]), RefusalReason::InvalidRequest);
    assert_eq!(
        reason(&[b"Bearer \xc3\xa9t\xc3\xa9"]),
        RefusalReason::InvalidRequest
    );
}

#[test]
fn empty_bearer_is_invalid_token() {
    let r = full(&headers(&[b"Bearer "])).expect_err("refused");
    assert_eq!(r.reason, RefusalReason::Malformed);
    assert_eq!(r.description, "empty bearer token");
    assert_eq!(reason(&[b"Bearer"]), RefusalReason::Malformed);
    assert_eq!(reason(&[b"bearer    "]), RefusalReason::Malformed);
}

#[test]
fn oversized_token_is_refused_before_decoding() {
    let mut v = b"Bearer ".to_vec();
    v.extend(std::iter::repeat_n(b'a', 64 * 1024));
    assert_eq!(reason(&[&v]), RefusalReason::TooLarge);
    let mut v = b"Bearer ".to_vec();
    v.extend(std::iter::repeat_n(b'a', MAX_TOKEN_BYTES + 1));
    assert_eq!(reason(&[&v]), RefusalReason::TooLarge);
    let mut v = b"Bearer ".to_vec();
    v.extend(std::iter::repeat_n(b'a', MAX_TOKEN_BYTES));
    assert_eq!(full(&headers(&[&v])).map(str::len), Ok(MAX_TOKEN_BYTES));
    // A huge value with another scheme is simply not a bearer token.
    let mut v = b"Basic ".to_vec();
    v.extend(std::iter::repeat_n(b'a', 64 * 1024));
    assert_eq!(reason(&[&v]), RefusalReason::Missing);
}

#[test]
fn b64token_alphabet_is_exact() {
    for b in 0..=255u8 {
        let expected = b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
        assert_eq!(is_b64token_char(b), expected, "byte {b:#04x}");
    }
}
