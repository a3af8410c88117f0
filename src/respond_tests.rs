use super::*;

fn header(resp: &Response<Body>, name: http::header::HeaderName) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn missing_token_has_bare_challenge() {
    let r = reject(&Rejection::MissingToken, DecisionId::next());
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&r, WWW_AUTHENTICATE), "Bearer realm=\"accessgate\"");
    assert_eq!(header(&r, CONTENT_TYPE), "application/problem+json");
}

#[test]
fn cae_challenge_is_padded_base64_of_minified_claims() {
    let r = reject(
        &Rejection::Denied {
            denial: Denial::Reauthenticate {
                nbf: 1_800_000_000,
                cae_capable: true,
                authorization_uri: Some("https://login.example/authorize".into()),
            },
            reason: "session_revoked",
            policy: None,
        },
        DecisionId::next(),
    );
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let h = header(&r, WWW_AUTHENTICATE);
    assert!(h.contains("error=\"insufficient_claims\""), "{h}");
    assert!(
        h.contains("authorization_uri=\"https://login.example/authorize\""),
        "{h}"
    );
    let b64 = h
        .split("claims=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap();
    let json = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(
        std::str::from_utf8(&json).unwrap(),
        r#"{"access_token":{"nbf":{"essential":true,"value":"1800000000"}}}"#
    );
}

#[test]
fn non_cae_client_gets_invalid_token() {
    let r = reject(
        &Rejection::Denied {
            denial: Denial::Reauthenticate {
                nbf: 1,
                cae_capable: false,
                authorization_uri: None,
            },
            reason: "session_revoked",
            policy: None,
        },
        DecisionId::next(),
    );
    let h = header(&r, WWW_AUTHENTICATE);
    assert!(h.contains("error=\"invalid_token\""), "{h}");
    assert!(!h.contains("claims="), "{h}");
}

#[test]
fn remediate_has_deadline_and_retry_after() {
    let r = reject(
        &Rejection::Denied {
            denial: Denial::Remediate {
                deadline: 1_800_000_000,
                retry_after: 60,
            },
            reason: "device_noncompliant",
            policy: Some("p1".into()),
        },
        DecisionId::next(),
    );
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&r, RETRY_AFTER), "60");
    assert_eq!(
        r.extensions().get::<Verdict>().unwrap().outcome,
        Outcome::Remediate
    );
}

#[test]
fn json_strings_are_escaped() {
    let mut s = String::new();
    push_json_str(&mut s, "a\"b\\c\n\u{1}");
    assert_eq!(s, r#""a\"b\\c\n\u0001""#);
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(v.as_str().unwrap(), "a\"b\\c\n\u{1}");
}

#[test]
fn plain_strips_quotes_and_controls() {
    assert_eq!(plain("a\"b\\c\nd"), "a_b_c_d");
}
