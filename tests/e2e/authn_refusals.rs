//! Every token refusal of issue 3, each through `Authenticator::authenticate` against an
//! in-process JWKS server, each asserting the exact rejection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::authn as authn_common;

use accessgate::authn::dev::{DevAlg, DevSigner};
use accessgate::authn::{Authenticator, MAX_TOKEN_BYTES};
use accessgate::ops::metrics::Metrics;
use accessgate::respond::Rejection;
use authn_common::*;
use http::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

struct Fixture {
    signer: DevSigner,
    jwks: JwksServer,
    issuer: String,
    a: Authenticator,
    metrics: Metrics,
}

/// Issuer allowing RS256 only, keys from the in-process server.
async fn fixture() -> Fixture {
    fixture_with("[\"RS256\"]").await
}

async fn fixture_with(algorithms: &str) -> Fixture {
    let signer = signer();
    let jwks = JwksServer::start(&signer.jwks()).await;
    let issuer = "https://login.example/tenant-a/v2.0".to_owned();
    let cfg = config(
        &issuer_toml(&issuer, &jwks.url("/keys"), algorithms),
        TOKENS_DEFAULT,
    );
    let (a, metrics) = ready_authenticator(&cfg).await;
    Fixture {
        signer,
        jwks,
        issuer,
        a,
        metrics,
    }
}

impl Fixture {
    fn claims(&self) -> Value {
        Value::Object(opts(&self.issuer, DevAlg::RS256).claims(now()))
    }
    fn header(&self) -> Value {
        json!({"alg": "RS256", "typ": "JWT", "kid": "kid-rsa-1"})
    }
    fn sign(&self, header: &Value, claims: &Value) -> String {
        self.signer.sign(DevAlg::RS256, header, claims).unwrap()
    }
    fn with_claim(&self, k: &str, v: Value) -> String {
        let mut c = self.claims();
        c[k] = v;
        self.sign(&self.header(), &c)
    }
    fn rejections(&self, reason: &str) -> u64 {
        counter(
            &self.metrics,
            "accessgate_token_rejections_total",
            &[("reason", reason)],
        )
    }
}

/// Unsigned header + claims + empty or fake signature.
fn unsigned(header: &Value, claims: &Value, sig: &str) -> String {
    format!(
        "{}.{}.{sig}",
        b64(&serde_json::to_vec(header).unwrap()),
        b64(&serde_json::to_vec(claims).unwrap())
    )
}

#[tokio::test]
async fn control_the_fixture_token_is_accepted() {
    let f = fixture().await;
    let t = f.sign(&f.header(), &f.claims());
    assert!(auth(&f.a, &t).await.is_ok());
}

#[tokio::test]
async fn alg_none_is_refused() {
    let f = fixture().await;
    for alg in ["none", "None", "NONE"] {
        let t = unsigned(&json!({"alg": alg, "kid": "kid-rsa-1"}), &f.claims(), "x");
        assert_invalid(&f.a, &t, "unsigned tokens are not accepted").await;
    }
    assert_eq!(f.rejections("algorithm"), 3);
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let f = fixture().await;
    // The classic confusion attack: HMAC keyed with the public key the verifier holds.
    let n = f.signer.jwks()["keys"][0]["n"].as_str().unwrap().to_owned();
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": "kid-rsa-1"});
    let input = format!(
        "{}.{}",
        b64(&serde_json::to_vec(&header).unwrap()),
        b64(&serde_json::to_vec(&f.claims()).unwrap())
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, n.as_bytes());
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    let t = format!("{input}.{}", b64(tag.as_ref()));
    assert_invalid(&f.a, &t, "symmetric signing algorithms are not accepted").await;
    // Every HS* is refused, whatever the configuration.
    for alg in ["HS384", "HS512"] {
        let t = unsigned(&json!({"alg": alg, "kid": "kid-rsa-1"}), &f.claims(), "eA");
        assert_invalid(&f.a, &t, "symmetric signing algorithms are not accepted").await;
    }
}

#[tokio::test]
async fn expired_beyond_skew_is_refused() {
    let f = fixture().await;
    let t = f.with_claim("exp", json!(now() - 120));
    assert_invalid(&f.a, &t, "token expired").await;
    assert_eq!(f.rejections("expired"), 1);
}

#[tokio::test]
async fn nbf_in_the_future_beyond_skew_is_refused() {
    let f = fixture().await;
    let t = f.with_claim("nbf", json!(now() + 120));
    assert_invalid(&f.a, &t, "token not yet valid").await;
}

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let f = fixture().await;
    for iss in [
        json!("https://login.example/tenant-b/v2.0"),
        json!("https://login.example/tenant-a/v2.0/"),
        json!("https://LOGIN.example/tenant-a/v2.0"),
    ] {
        let t = f.with_claim("iss", iss);
        assert_invalid(&f.a, &t, "issuer not trusted").await;
    }
    let mut c = f.claims();
    c.as_object_mut().unwrap().remove("iss");
    assert_invalid(&f.a, &f.sign(&f.header(), &c), "issuer not trusted").await;
}

#[tokio::test]
async fn wrong_or_missing_audience_is_refused() {
    let f = fixture().await;
    let t = f.with_claim("aud", json!("api://other"));
    assert_invalid(&f.a, &t, "audience not accepted").await;
    let t = f.with_claim("aud", json!(["api://other", "api://third"]));
    assert_invalid(&f.a, &t, "audience not accepted").await;
    let mut c = f.claims();
    c.as_object_mut().unwrap().remove("aud");
    assert_invalid(&f.a, &f.sign(&f.header(), &c), "audience not accepted").await;
}

#[tokio::test]
async fn unknown_kid_is_refused() {
    let f = fixture().await;
    let t = f.sign(
        &json!({"alg": "RS256", "typ": "JWT", "kid": "no-such-kid"}),
        &f.claims(),
    );
    assert_invalid(&f.a, &t, "signing key not found").await;
    assert_eq!(f.rejections("unknown_key"), 1);
}

#[tokio::test]
async fn payload_changed_after_signing_is_refused() {
    let f = fixture().await;
    let t = f.sign(&f.header(), &f.claims());
    let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
    let mut c = f.claims();
    c["oid"] = json!("someone-else");
    parts[1] = b64(&serde_json::to_vec(&c).unwrap());
    assert_invalid(&f.a, &parts.join("."), "signature verification failed").await;
    assert_eq!(f.rejections("signature"), 1);
}

#[tokio::test]
async fn signature_removed_is_refused() {
    let f = fixture().await;
    let t = f.sign(&f.header(), &f.claims());
    let without = &t[..=t.rfind('.').unwrap()];
    assert_invalid(&f.a, without, "malformed token").await;
    // A signature of the right length but all zeros.
    let sig_len = t.len() - without.len();
    let zeros = format!("{without}{}", "A".repeat(sig_len));
    assert_invalid(&f.a, &zeros, "signature verification failed").await;
}

#[tokio::test]
async fn attacker_key_in_jwk_header_is_never_used() {
    let f = fixture().await;
    let attacker = DevSigner::generate("kid-rsa-1", "kid-ec-1").unwrap();
    let jwk = attacker.jwks()["keys"][0].clone();
    for header in [
        json!({"alg": "RS256", "kid": "kid-rsa-1", "jwk": jwk}),
        json!({"alg": "RS256", "jwk": jwk}),
    ] {
        let t = attacker.sign(DevAlg::RS256, &header, &f.claims()).unwrap();
        match auth(&f.a, &t).await {
            Err(Rejection::InvalidToken(d)) => assert!(
                d == "signature verification failed" || d == "token has no key id",
                "{d}"
            ),
            other => panic!("attacker key accepted or wrong refusal: {other:?}"),
        }
    }
}

#[tokio::test]
async fn jku_and_x5u_are_never_contacted() {
    let f = fixture().await;
    let attacker = DevSigner::generate("evil-rsa", "evil-ec").unwrap();
    let evil = JwksServer::start(&attacker.jwks()).await;
    let x5c = json!([b64(b"not really a certificate")]);
    for header in [
        json!({"alg": "RS256", "kid": "evil-rsa", "jku": evil.url("/jwks.json")}),
        json!({"alg": "RS256", "kid": "evil-rsa", "x5u": evil.url("/cert.pem")}),
        json!({"alg": "RS256", "kid": "kid-rsa-1", "jku": evil.url("/jwks.json"), "x5u": evil.url("/c"), "x5c": x5c}),
    ] {
        let t = attacker.sign(DevAlg::RS256, &header, &f.claims()).unwrap();
        assert!(matches!(
            auth(&f.a, &t).await,
            Err(Rejection::InvalidToken(_))
        ));
    }
    assert_eq!(evil.hits(), 0, "a URL from a token header was fetched");
}

#[tokio::test]
async fn alg_outside_the_allow_list_is_refused() {
    let f = fixture().await; // RS256 only
    let t = f
        .signer
        .sign(
            DevAlg::ES256,
            &json!({"alg": "ES256", "kid": "kid-ec-1"}),
            &f.claims(),
        )
        .unwrap();
    assert_invalid(&f.a, &t, "signing algorithm not allowed").await;
    for alg in ["PS256", "RS512", "EdDSA"] {
        let t = unsigned(&json!({"alg": alg, "kid": "kid-rsa-1"}), &f.claims(), "eA");
        assert_invalid(&f.a, &t, "signing algorithm not allowed").await;
    }
    let t = unsigned(
        &json!({"alg": "XS999", "kid": "kid-rsa-1"}),
        &f.claims(),
        "eA",
    );
    assert_invalid(&f.a, &t, "unsupported signing algorithm").await;
}

#[tokio::test]
async fn alg_that_does_not_fit_the_key_is_refused() {
    let f = fixture_with("[\"RS256\", \"ES256\"]").await;
    // ES256 header naming the RSA key.
    let t = f
        .signer
        .sign(
            DevAlg::ES256,
            &json!({"alg": "ES256", "kid": "kid-rsa-1"}),
            &f.claims(),
        )
        .unwrap();
    assert_invalid(&f.a, &t, "signing algorithm does not match the key").await;
}

#[tokio::test]
async fn exp_as_a_string_or_missing_is_refused() {
    let f = fixture().await;
    let t = f.with_claim("exp", json!((now() + 600).to_string()));
    assert_invalid(&f.a, &t, "malformed or missing claims").await;
    let t = f.with_claim("nbf", json!("0"));
    assert_invalid(&f.a, &t, "malformed or missing claims").await;
    let mut c = f.claims();
    c.as_object_mut().unwrap().remove("exp");
    assert_invalid(
        &f.a,
        &f.sign(&f.header(), &c),
        "malformed or missing claims",
    )
    .await;
    let t = f.with_claim("oid", json!(42));
    assert_invalid(&f.a, &t, "malformed or missing claims").await;
}

#[tokio::test]
async fn crit_header_is_refused() {
    let f = fixture().await;
    let mut h = f.header();
    h["crit"] = json!(["exp"]);
    assert_invalid(
        &f.a,
        &f.sign(&h, &f.claims()),
        "critical header parameters are not supported",
    )
    .await;
}

#[tokio::test]
async fn two_parts_only_is_refused() {
    let f = fixture().await;
    let t = f.sign(&f.header(), &f.claims());
    let two: Vec<&str> = t.split('.').take(2).collect();
    assert_invalid(&f.a, &two.join("."), "malformed token").await;
    assert_invalid(&f.a, &format!("{t}.extra.part"), "malformed token").await;
}

#[tokio::test]
async fn bad_base64_is_refused() {
    let f = fixture().await;
    let t = f.sign(&f.header(), &f.claims());
    let parts: Vec<&str> = t.split('.').collect();
    // '+' and '/' are b64token characters but not base64url.
    let bad_header = format!("{}+/.{}.{}", parts[0], parts[1], parts[2]);
    assert!(matches!(
        auth(&f.a, &bad_header).await,
        Err(Rejection::InvalidToken("malformed token"))
    ));
    let bad_payload = format!("{}.{}+.{}", parts[0], parts[1], parts[2]);
    assert_invalid(&f.a, &bad_payload, "malformed token").await;
    // Header that decodes but is not a JSON object.
    let t = format!("{}.{}.{}", b64(b"[\"RS256\"]"), parts[1], parts[2]);
    assert_invalid(&f.a, &t, "malformed token header").await;
}

#[tokio::test]
async fn empty_bearer_is_refused() {
    let f = fixture().await;
    let mut h = HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_static("Bearer "),
    );
    assert_eq!(
        f.a.authenticate(&h).await.unwrap_err(),
        Rejection::InvalidToken("empty bearer token")
    );
}

#[tokio::test]
async fn token_of_64_kib_is_refused_before_decoding() {
    let f = fixture().await;
    let big = "a".repeat(64 * 1024);
    assert_invalid(&f.a, &big, "token too large").await;
    let just_over = "a".repeat(MAX_TOKEN_BYTES + 1);
    assert_invalid(&f.a, &just_over, "token too large").await;
    assert_eq!(f.rejections("too_large"), 2);
}

#[tokio::test]
async fn missing_and_malformed_headers() {
    let f = fixture().await;
    assert_eq!(
        f.a.authenticate(&HeaderMap::new()).await.unwrap_err(),
        Rejection::MissingToken
    );
    let mut h = HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_static("Basic dXNlcjpwYXNz"),
    );
    assert_eq!(
        f.a.authenticate(&h).await.unwrap_err(),
        Rejection::MissingToken
    );
    let t = f.sign(&f.header(), &f.claims());
    let mut h = bearer(&t);
    h.append(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
    );
    assert!(matches!(
        f.a.authenticate(&h).await,
        Err(Rejection::InvalidRequest(_))
    ));
    assert_eq!(f.rejections("missing"), 2);
    assert_eq!(f.rejections("invalid_request"), 1);
}

#[tokio::test]
async fn duplicate_claims_are_refused() {
    let f = fixture().await;
    // Two `iss` members: parsers disagree on which wins, so the token means nothing.
    let good = f.claims();
    let body = serde_json::to_string(&good).unwrap();
    let dup = format!(
        "{{\"iss\":\"https://evil.example/\",{}",
        body.trim_start_matches('{')
    );
    let header = b64(&serde_json::to_vec(&f.header()).unwrap());
    let input = format!("{header}.{}", b64(dup.as_bytes()));
    let sig = f.signer.signature(DevAlg::RS256, input.as_bytes()).unwrap();
    let t = format!("{input}.{}", b64(&sig));
    assert!(matches!(
        auth(&f.a, &t).await,
        Err(Rejection::InvalidToken(_))
    ));
}

#[tokio::test]
async fn jwks_server_is_not_asked_for_known_kids() {
    let f = fixture().await;
    let before = f.jwks.jwks_hits();
    for _ in 0..3 {
        let t = f.sign(&f.header(), &f.claims());
        assert!(auth(&f.a, &t).await.is_ok());
    }
    assert_eq!(f.jwks.jwks_hits(), before);
}
