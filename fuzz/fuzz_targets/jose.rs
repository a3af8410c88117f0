//! Everything read from a token before the signature check: the three parts, the JOSE
//! header, the payload's `iss`/`tid` (peek and strict claims parse) and, as if verified,
//! the principal.
//!
//! Input: either a compact token (`h.p.s`), or two JSON documents on two lines (header,
//! then payload), which are base64url-encoded into a token so the fuzzer mutates JSON, not
//! base64.

#![no_main]

use std::sync::Arc;

use accessgate::config::ClaimNames;
use accessgate::fuzzing::{
    decode_unverified, parse_jose_header, peek_claims, principal_of, strict_peek_claims,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use serde::de::IgnoredAny;
use serde_json::Value;

fn str_member<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.as_object()?.get(k)?.as_str()
}

/// Reference view of the header with serde_json's own tree: what must be refused.
fn check_header(header_b64: &str) {
    let got = parse_jose_header(header_b64);
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(header_b64) else {
        assert!(got.is_err(), "header that is not base64url accepted");
        return;
    };
    // serde_json's own syntax check (as lax as the product's skipping of members it
    // ignores: it does not validate UTF-8 or surrogates inside ignored strings).
    if serde_json::from_slice::<IgnoredAny>(&bytes).is_err() {
        assert!(got.is_err(), "header that is not JSON accepted");
        return;
    }
    let Ok((alg, kid)) = got else { return };
    let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
        return;
    };
    let obj = v.as_object().expect("accepted header is an object");
    assert!(!obj.contains_key("crit"), "crit accepted");
    let a = str_member(&v, "alg").expect("accepted header has a string alg");
    assert_eq!(alg.as_str(), a);
    assert!(!a.eq_ignore_ascii_case("none") && !a.to_ascii_lowercase().starts_with("hs"));
    assert_eq!(kid.as_deref(), str_member(&v, "kid"));
}

fn check_payload(payload: &[u8]) {
    let names = ClaimNames::default();
    let peek = peek_claims(payload);
    let strict = strict_peek_claims(payload, &names);
    if let Ok(s) = &strict {
        // One parse serves both when issuers share claim names; it must read the same.
        assert_eq!(
            peek.as_ref().ok(),
            Some(s),
            "strict parse and peek disagree"
        );
    }
    if serde_json::from_slice::<IgnoredAny>(payload).is_err() {
        assert!(
            peek.is_err() && strict.is_err(),
            "payload that is not JSON accepted"
        );
        return;
    }
    let Ok((iss, tid)) = peek else { return };
    let Ok(v) = serde_json::from_slice::<Value>(payload) else {
        return;
    };
    assert_eq!(str_member(&v, "iss"), Some(iss.as_str()));
    assert_eq!(str_member(&v, "tid"), tid.as_deref());

    let issuer: Arc<str> = Arc::from(iss.as_str());
    if let Ok(p) = principal_of(payload, &names, &issuer) {
        assert!(
            strict.is_ok(),
            "principal from a payload the strict parse refuses"
        );
        assert_eq!(p.issuer.as_ref(), iss);
        assert!(!p.user.is_empty());
        assert!(!p.token_id.is_empty());
        if let Some(t) = &p.tenant {
            assert_eq!(*t, t.to_ascii_lowercase());
        }
        // `exp` is required; anything else would be a token that never expires.
        assert!(v.get("exp").is_some_and(Value::is_number));
    }
    // The issuer re-check: a principal is never built for another issuer.
    let other: Arc<str> = Arc::from(format!("{iss}x").as_str());
    assert!(principal_of(payload, &names, &other).is_err());
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let token = match text.split_once('\n') {
        Some((h, p)) => format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(h),
            URL_SAFE_NO_PAD.encode(p)
        ),
        None => text.to_owned(),
    };
    let light = decode_unverified(&token, None);
    let strict = decode_unverified(&token, Some(&ClaimNames::default()));
    if let Ok(s) = &strict {
        assert_eq!(light.as_ref().ok(), Some(s));
    }
    let parts: Vec<&str> = token.split('.').collect();
    if light.is_ok() {
        assert!(parts.len() == 3 && parts.iter().all(|p| !p.is_empty()));
    }
    if parts.len() == 3 {
        check_header(parts[0]);
        if let Ok(payload) = URL_SAFE_NO_PAD.decode(parts[1]) {
            check_payload(&payload);
        }
    }
});
