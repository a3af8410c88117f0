//! `Authorization` header(s) -> bearer credentials -> RFC 6750 `b64token` check.
//!
//! Input: header values, one per line (two lines = two `Authorization` headers).

#![no_main]

use accessgate::authn::error::RefusalReason;
use accessgate::fuzzing::{MAX_TOKEN_BYTES, bearer_extract, bearer_token_syntax};
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fn headers(values: &[&[u8]]) -> Option<HeaderMap> {
    let mut h = HeaderMap::new();
    for v in values {
        h.append(AUTHORIZATION, HeaderValue::from_bytes(v).ok()?);
    }
    Some(h)
}

/// RFC 6750 2.1, written out independently of the product's fold.
fn is_b64token(t: &[u8]) -> bool {
    let body = t.len() - t.iter().rev().take_while(|&&b| b == b'=').count();
    body > 0
        && t[..body]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

fuzz_target!(|data: &[u8]| {
    let values: Vec<&[u8]> = if data.is_empty() {
        Vec::new()
    } else {
        data.split(|&b| b == b'\n').collect()
    };
    let Some(h) = headers(&values) else { return };
    let got = bearer_extract(&h);
    match values.len() {
        0 => assert_eq!(got.map_err(|e| e.reason), Err(RefusalReason::Missing)),
        1 => {}
        // Two headers are refused whatever they hold: which one would the upstream read?
        _ => assert_eq!(
            got.map_err(|e| e.reason),
            Err(RefusalReason::InvalidRequest)
        ),
    }
    let Ok(token) = got else { return };
    let value = values[0];
    assert!(!token.is_empty() && token.len() <= MAX_TOKEN_BYTES);
    assert!(!token[0].is_ascii_whitespace() && !token[token.len() - 1].is_ascii_whitespace());
    assert!(value.len() > 7 && value[..7].eq_ignore_ascii_case(b"bearer "));
    assert!(value.trim_ascii_end().ends_with(token));

    // The scheme is case-insensitive: the same token under any spelling of it.
    let mut upper = value.to_vec();
    upper[..6].make_ascii_uppercase();
    if let Some(h2) = headers(&[upper.as_slice()]) {
        assert_eq!(bearer_extract(&h2).ok(), Some(token));
    }

    let syntax = bearer_token_syntax(token);
    assert_eq!(
        syntax.is_ok(),
        is_b64token(token),
        "b64token check disagrees"
    );
    if let Ok(s) = syntax {
        assert_eq!(s.as_bytes(), token);
        // A token that passed extracts to itself from a canonical header.
        let canon = format!("Bearer {s}");
        let h3 = headers(&[canon.as_bytes()]).expect("b64token is a valid header value");
        assert_eq!(bearer_extract(&h3).ok(), Some(token));
    } else {
        assert_eq!(
            syntax.map_err(|e| e.reason),
            Err(RefusalReason::InvalidRequest)
        );
    }
});
