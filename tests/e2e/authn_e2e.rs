//! Every authentication refusal and acceptance of issue 3, end to end through the running
//! gateway over HTTP/1.1 and HTTP/2: the status, the exact `WWW-Authenticate` challenge, the
//! problem+json body, the `accessgate_token_rejections_total{reason}` counter, and — for
//! every refusal — an upstream that received nothing.
//!
//! The protected route has no policies, so authentication alone decides.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;
use crate::support::authn as authn_common;
use crate::support::authn_gateway as fixture;

use accessgate::authn::dev::{DEMO_AUDIENCE, DevAlg, DevSigner, DevTokenOptions};
use authn_common::{JwksServer, b64};
use fixture::*;
use serde_json::{Value, json};
use support::{metric_in, unix_now};

// ---------------------------------------------------------------------------------------
// Refusals.

#[tokio::test]
async fn no_token_gets_the_bare_challenge() {
    let fx = Fx::start().await;
    fx.expect_bare_challenge("/", &[]).await;
}

#[tokio::test]
async fn unsigned_alg_none_is_refused() {
    let fx = Fx::start().await;
    for alg in ["none", "None", "NONE"] {
        let t = unsigned(&json!({"alg": alg, "typ": "JWT"}), &fx.claims(), "x");
        fx.expect_invalid_token(&format!("Bearer {t}"), "algorithm")
            .await;
    }
    // The textbook form: an empty signature part.
    let t = unsigned(&json!({"alg": "none"}), &fx.claims(), "");
    fx.expect_invalid_token(&format!("Bearer {t}"), "malformed")
        .await;
}

#[tokio::test]
async fn hs256_keyed_with_the_rsa_public_key_is_refused() {
    let fx = Fx::start().await;
    for (form, secret) in rsa_public_key_forms(&fx) {
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": fx.signer.kid(DevAlg::RS256)});
        let input = format!(
            "{}.{}",
            b64(&serde_json::to_vec(&header).unwrap()),
            b64(&serde_json::to_vec(&fx.claims()).unwrap())
        );
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret);
        let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
        let t = format!("{input}.{}", b64(tag.as_ref()));
        eprintln!("HS256 keyed with the {form}");
        fx.expect_invalid_token(&format!("Bearer {t}"), "algorithm")
            .await;
    }
}

#[tokio::test]
async fn expired_beyond_skew_is_refused() {
    let fx = Fx::start().await;
    let now = unix_now();
    let mut c = fx.claims();
    c["iat"] = json!(now - 3600);
    c["exp"] = json!(now - 120);
    let t = fx.signer.sign(DevAlg::RS256, &fx.rs_header(), &c).unwrap();
    fx.expect_invalid_token(&format!("Bearer {t}"), "expired")
        .await;
}

#[tokio::test]
async fn nbf_in_the_future_beyond_skew_is_refused() {
    let fx = Fx::start().await;
    let t = fx.with_claim("nbf", json!(unix_now() + 120));
    fx.expect_invalid_token(&format!("Bearer {t}"), "not_yet_valid")
        .await;
}

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let fx = Fx::start().await;
    for iss in [
        format!("https://login.microsoftonline.com/{OTHER_TENANT}/v2.0"),
        format!("https://login.microsoftonline.com/{TENANT}/v2.0/"),
        "https://evil.example/".to_owned(),
    ] {
        let t = fx.with_claim("iss", json!(iss));
        fx.expect_invalid_token(&format!("Bearer {t}"), "issuer")
            .await;
    }
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    let fx = Fx::start().await;
    for aud in [json!("api://other"), json!(["api://other", DEMO_AUDIENCE])] {
        let t = fx.with_claim("aud", aud);
        fx.expect_invalid_token(&format!("Bearer {t}"), "audience")
            .await;
    }
}

#[tokio::test]
async fn unknown_kid_is_refused() {
    let fx = Fx::start().await;
    let t = fx
        .signer
        .sign(
            DevAlg::RS256,
            &json!({"alg": "RS256", "typ": "JWT", "kid": "no-such-kid"}),
            &fx.claims(),
        )
        .unwrap();
    fx.expect_invalid_token(&format!("Bearer {t}"), "unknown_key")
        .await;
}

#[tokio::test]
async fn payload_changed_after_signing_is_refused() {
    let fx = Fx::start().await;
    let t = fx.good();
    let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
    let mut c: Value = {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&parts[1])
            .unwrap();
        serde_json::from_slice(&raw).unwrap()
    };
    c["oid"] = json!("00000000-0000-0000-0000-00000000beef");
    parts[1] = b64(&serde_json::to_vec(&c).unwrap());
    fx.expect_invalid_token(&format!("Bearer {}", parts.join(".")), "signature")
        .await;
}

#[tokio::test]
async fn signature_removed_is_refused() {
    let fx = Fx::start().await;
    let t = fx.good();
    let without = &t[..=t.rfind('.').unwrap()];
    fx.expect_invalid_token(&format!("Bearer {without}"), "malformed")
        .await;
    let zeros = format!("{without}{}", "A".repeat(t.len() - without.len()));
    fx.expect_invalid_token(&format!("Bearer {zeros}"), "signature")
        .await;
}

#[tokio::test]
async fn attacker_key_in_jwk_header_is_never_used() {
    let fx = Fx::start().await;
    let attacker = DevSigner::generate("dev-rsa-1", "dev-ec-1").unwrap();
    let jwk = attacker.jwks()["keys"][0].clone();
    // Naming the gateway's kid: verified with the gateway's key, so the signature fails.
    let h = json!({"alg": "RS256", "kid": "dev-rsa-1", "jwk": jwk});
    let t = attacker.sign(DevAlg::RS256, &h, &fx.claims()).unwrap();
    fx.expect_invalid_token(&format!("Bearer {t}"), "signature")
        .await;
    // Without a kid: the gateway holds two keys, so there is nothing to choose by.
    let h = json!({"alg": "RS256", "jwk": jwk});
    let t = attacker.sign(DevAlg::RS256, &h, &fx.claims()).unwrap();
    fx.expect_invalid_token(&format!("Bearer {t}"), "unknown_key")
        .await;
}

#[tokio::test]
async fn jku_and_x5u_are_never_contacted() {
    let fx = Fx::start().await;
    let attacker = DevSigner::generate("evil-rsa", "evil-ec").unwrap();
    let evil = JwksServer::start(&attacker.jwks()).await;
    for h in [
        json!({"alg": "RS256", "kid": "evil-rsa", "jku": evil.url("/jwks.json")}),
        json!({"alg": "RS256", "kid": "evil-rsa", "x5u": evil.url("/cert.pem")}),
    ] {
        let t = attacker.sign(DevAlg::RS256, &h, &fx.claims()).unwrap();
        fx.expect_invalid_token(&format!("Bearer {t}"), "unknown_key")
            .await;
    }
    // Naming the gateway's own kid, signed by the attacker: the signature fails.
    let h =
        json!({"alg": "RS256", "kid": "dev-rsa-1", "jku": evil.url("/k"), "x5u": evil.url("/c")});
    let t = attacker.sign(DevAlg::RS256, &h, &fx.claims()).unwrap();
    fx.expect_invalid_token(&format!("Bearer {t}"), "signature")
        .await;
    assert_eq!(evil.hits(), 0, "a URL from a token header was fetched");
}

#[tokio::test]
async fn alg_outside_the_allow_list_is_refused() {
    let fx = Fx::start().await; // the v2 issuer allows RS256 only
    let mut o = fx.v2();
    o.alg = DevAlg::ES256;
    let t = fx.signer.mint(&o).unwrap();
    fx.expect_invalid_token(&format!("Bearer {t}"), "algorithm")
        .await;
    let t = unsigned(
        &json!({"alg": "PS256", "kid": "dev-rsa-1"}),
        &fx.claims(),
        "eA",
    );
    fx.expect_invalid_token(&format!("Bearer {t}"), "algorithm")
        .await;
}

#[tokio::test]
async fn exp_as_a_string_is_refused() {
    let fx = Fx::start().await;
    let t = fx.with_claim("exp", json!((unix_now() + 600).to_string()));
    fx.expect_invalid_token(&format!("Bearer {t}"), "claims")
        .await;
}

#[tokio::test]
async fn two_parts_only_is_refused() {
    let fx = Fx::start().await;
    let t = fx.good();
    let two: Vec<&str> = t.split('.').take(2).collect();
    fx.expect_invalid_token(&format!("Bearer {}", two.join(".")), "malformed")
        .await;
}

#[tokio::test]
async fn bad_base64_is_refused() {
    let fx = Fx::start().await;
    let t = fx.good();
    let p: Vec<&str> = t.split('.').collect();
    // '+' and '/' are b64token characters (the header is well formed) but not base64url.
    for bad in [
        format!("{}+/.{}.{}", p[0], p[1], p[2]),
        format!("{}.{}+.{}", p[0], p[1], p[2]),
        format!("{}.{}.{}/", p[0], p[1], p[2]),
    ] {
        fx.expect_invalid_token(&format!("Bearer {bad}"), "malformed")
            .await;
    }
}

#[tokio::test]
async fn empty_bearer_is_refused() {
    let fx = Fx::start().await;
    for authz in ["Bearer ", "Bearer", "Bearer    "] {
        fx.expect_invalid_token(authz, "malformed").await;
    }
}

#[tokio::test]
async fn token_of_64_kib_is_refused_without_harm() {
    let fx = Fx::start().await;
    let big = format!("Bearer {}", "a".repeat(64 * 1024));
    fx.expect_invalid_token(&big, "too_large").await;
    // A well-formed-looking one: a real token padded with claims to 64 KiB.
    let mut c = fx.claims();
    c["pad"] = json!("p".repeat(48 * 1024));
    let t = fx.signer.sign(DevAlg::RS256, &fx.rs_header(), &c).unwrap();
    assert!(t.len() > 60 * 1024);
    fx.expect_invalid_token(&format!("Bearer {t}"), "too_large")
        .await;
    // The gateway still serves.
    fx.expect_accepted("/after", &format!("Bearer {}", fx.good()), USER, Some(APP))
        .await;
}

#[tokio::test]
async fn two_authorization_headers_are_a_bad_request() {
    let fx = Fx::start().await;
    let t = format!("Bearer {}", fx.good());
    fx.expect_invalid_request(&[("authorization", &t), ("authorization", &t)])
        .await;
    fx.expect_invalid_request(&[
        ("authorization", &t),
        ("authorization", "Basic dXNlcjpwYXNz"),
    ])
    .await;
}

#[tokio::test]
async fn malformed_authorization_header_is_a_bad_request() {
    let fx = Fx::start().await;
    // Bytes outside RFC 6750 b64token: not a token at all.
    for authz in [
        "Bearer abc def",
        "Bearer abc,def",
        "Bearer \"quoted\"",
        "Bearer ===",
    ] {
        fx.expect_invalid_request(&[("authorization", authz)]).await;
    }
}

#[tokio::test]
async fn token_in_the_query_string_is_not_accepted() {
    let fx = Fx::start().await;
    let t = fx.good();
    fx.expect_bare_challenge(&format!("/?access_token={t}"), &[])
        .await;
}

#[tokio::test]
async fn basic_scheme_gets_the_bare_challenge() {
    let fx = Fx::start().await;
    fx.expect_bare_challenge("/", &[("authorization", "Basic dXNlcjpwYXNz")])
        .await;
}

// ---------------------------------------------------------------------------------------
// Acceptances.

#[tokio::test]
async fn rs256_is_accepted_and_the_token_forwarded() {
    let fx = Fx::start().await;
    let authz = format!("Bearer {}", fx.good());
    for r in fx.expect_accepted("/", &authz, USER, Some(APP)).await {
        assert_eq!(r.headers.get("authorization").unwrap(), authz.as_str());
        assert!(r.headers.get("x-accessgate-decision-id").is_some());
    }
    assert_eq!(fx.rejections("missing") + fx.rejections("signature"), 0.0);
}

#[tokio::test]
async fn es256_is_accepted_where_allowed() {
    let fx = Fx::start().await;
    let o = DevTokenOptions {
        oid: Some(USER.to_owned()),
        alg: DevAlg::ES256,
        ..DevTokenOptions::default()
    };
    let t = fx.signer.mint(&o).unwrap();
    fx.expect_accepted("/", &format!("Bearer {t}"), USER, None)
        .await;
}

#[tokio::test]
async fn lower_case_bearer_is_accepted() {
    let fx = Fx::start().await;
    let t = fx.good();
    fx.expect_accepted("/", &format!("bearer {t}"), USER, Some(APP))
        .await;
    fx.expect_accepted("/", &format!("BEARER {t}"), USER, Some(APP))
        .await;
}

#[tokio::test]
async fn expired_within_skew_is_accepted() {
    let fx = Fx::start().await;
    let now = unix_now();
    let mut c = fx.claims();
    c["iat"] = json!(now - 3600);
    c["exp"] = json!(now - 20);
    let t = fx.signer.sign(DevAlg::RS256, &fx.rs_header(), &c).unwrap();
    fx.expect_accepted("/", &format!("Bearer {t}"), USER, Some(APP))
        .await;
}

#[tokio::test]
async fn entra_v2_token_is_accepted() {
    let fx = Fx::start().await;
    let mut o = fx.v2();
    o.extra.insert("ver".into(), json!("2.0"));
    o.scp = Some("User.Read".into());
    let t = fx.signer.mint(&o).unwrap();
    fx.expect_accepted("/", &format!("Bearer {t}"), USER, Some(APP))
        .await;
}

#[tokio::test]
async fn entra_v1_token_is_accepted() {
    let fx = Fx::start().await;
    let v1_app = "a0c7e4b1-1111-4222-8333-444455556666";
    let mut o = fx.v2();
    o.issuer = v1_issuer();
    o.azp = None;
    o.extra.insert("ver".into(), json!("1.0"));
    o.extra.insert("appid".into(), json!(v1_app));
    let t = fx.signer.mint(&o).unwrap();
    fx.expect_accepted("/", &format!("Bearer {t}"), USER, Some(v1_app))
        .await;
    // The same claims under the v1 issuer but signed by a stranger are still refused.
    let stranger = DevSigner::generate("dev-rsa-1", "dev-ec-1").unwrap();
    let t = stranger.mint(&o).unwrap();
    fx.expect_invalid_token(&format!("Bearer {t}"), "signature")
        .await;
}

#[tokio::test]
async fn auth_none_route_ignores_a_garbage_authorization_header() {
    let fx = Fx::start().await;
    for h2 in [false, true] {
        let before = fx.up.count();
        let (parts, _) = fx
            .call(
                "/open/x",
                &[("authorization", "Bearer !!not a token!!")],
                h2,
            )
            .await;
        assert_eq!(parts.status, 200);
        assert!(parts.headers.get("www-authenticate").is_none());
        assert_eq!(fx.up.count(), before + 1);
        let r = fx.up.requests().pop().unwrap();
        assert!(
            r.headers.get("x-accessgate-user").is_none(),
            "{:?}",
            r.headers
        );
    }
    let text = String::from_utf8(fx.gw.gw().metrics().encode()).unwrap();
    for reason in accessgate::authn::RefusalReason::ALL {
        assert_eq!(
            metric_in(
                &text,
                "accessgate_token_rejections_total",
                &[("reason", reason.as_str())]
            ),
            0.0,
            "an auth = \"none\" route looked at the token ({})",
            reason.as_str()
        );
    }
}

#[tokio::test]
async fn forward_token_false_strips_authorization_upstream() {
    let fx = Fx::start().await;
    let authz = format!("Bearer {}", fx.good());
    for r in fx
        .expect_accepted("/strip/x", &authz, USER, Some(APP))
        .await
    {
        assert!(
            r.headers.get("authorization").is_none(),
            "the token reached the upstream: {:?}",
            r.headers
        );
    }
    // And the route still requires a token.
    fx.expect_bare_challenge("/strip/x", &[]).await;
}
