use super::*;

#[test]
fn refusal_counters_follow_reason_order() {
    for (i, r) in RefusalReason::ALL.iter().enumerate() {
        assert_eq!(*r as usize, i, "{r:?}");
    }
    let m = Metrics::new();
    let c = RefusalCounters::new(&m);
    c.count(RefusalReason::Signature);
    assert_eq!(
        m.token_rejections_total
            .with_label_values(&["signature"])
            .get(),
        1
    );
    assert_eq!(
        m.token_rejections_total
            .with_label_values(&["expired"])
            .get(),
        0
    );
}

#[test]
fn refusals_map_to_rejections() {
    assert_eq!(refuse::MISSING.to_rejection(), Rejection::MissingToken);
    assert_eq!(
        TokenRefusal::new(RefusalReason::InvalidRequest, "x").to_rejection(),
        Rejection::InvalidRequest("x")
    );
    assert_eq!(
        refuse::EXPIRED.to_rejection(),
        Rejection::InvalidToken("token expired")
    );
}

#[test]
fn jsonwebtoken_errors_map_to_closed_reasons() {
    use jsonwebtoken::errors::{Error, ErrorKind as K};
    let r = |k: K| jwt_refusal(&Error::from(k)).reason;
    assert_eq!(r(K::ExpiredSignature), RefusalReason::Expired);
    assert_eq!(r(K::ImmatureSignature), RefusalReason::NotYetValid);
    assert_eq!(r(K::InvalidAudience), RefusalReason::Audience);
    assert_eq!(
        r(K::MissingRequiredClaim("aud".into())),
        RefusalReason::Audience
    );
    assert_eq!(
        r(K::MissingRequiredClaim("iss".into())),
        RefusalReason::Issuer
    );
    assert_eq!(
        r(K::MissingRequiredClaim("exp".into())),
        RefusalReason::Claims
    );
    assert_eq!(
        r(K::InvalidClaimFormat("exp".into())),
        RefusalReason::Claims
    );
    assert_eq!(r(K::InvalidSignature), RefusalReason::Signature);
    assert_eq!(r(K::InvalidEcdsaKey), RefusalReason::Signature);
    assert_eq!(r(K::InvalidAlgorithm), RefusalReason::Algorithm);
    assert_eq!(r(K::InvalidToken), RefusalReason::Malformed);
}

fn empty_authenticator(skew: i64) -> Authenticator {
    let m = Metrics::new();
    Authenticator {
        issuers: Vec::new(),
        cache: Arc::new(TokenCache::new(10)),
        skew,
        min_refetch: Duration::ZERO,
        hits: m.token_cache_hits_total.clone(),
        misses: m.token_cache_misses_total.clone(),
        refusals: RefusalCounters::new(&m),
        tasks: Vec::new(),
        startup_errors: Vec::new(),
        shared_names: None,
    }
}

#[test]
fn time_check_boundaries_include_the_skew() {
    let a = empty_authenticator(60);
    let now = 1_000_000;
    assert!(a.time_check(now - 60, None, now).is_ok());
    assert_eq!(a.time_check(now - 61, None, now), Err(refuse::EXPIRED));
    assert!(a.time_check(now + 10, Some(now + 60), now).is_ok());
    assert_eq!(
        a.time_check(now + 100, Some(now + 61), now),
        Err(refuse::NOT_YET_VALID)
    );
    assert!(a.time_check(i64::MAX, Some(i64::MIN), now).is_ok());
    assert!(a.is_ready(), "no issuers: nothing to wait for");
}

#[tokio::test]
async fn no_issuers_refuses_every_token_as_untrusted() {
    let a = empty_authenticator(60);
    let mut h = HeaderMap::new();
    let claims = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        br#"{"iss":"https://i/","exp":9999999999}"#,
    );
    let header = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        br#"{"alg":"RS256","kid":"k"}"#,
    );
    h.insert(
        http::header::AUTHORIZATION,
        http::HeaderValue::from_str(&format!("Bearer {header}.{claims}.c2ln")).unwrap(),
    );
    assert_eq!(a.check(&h).await.unwrap_err(), refuse::ISSUER);
}
