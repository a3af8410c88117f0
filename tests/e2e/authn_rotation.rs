//! Key rotation: new kids without restart, single-flight refetch, last good keys when the
//! IdP is down, eviction of tokens from removed keys, discovery, and reloads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::authn as authn_common;

use std::sync::Arc;
use std::time::Duration;

use accessgate::authn::Authenticator;
use accessgate::authn::dev::{DevAlg, DevSigner};
use accessgate::ops::metrics::Metrics;
use accessgate::respond::Rejection;
use authn_common::*;
use serde_json::{Value, json};

const ISS: &str = "https://login.example/rot/v2.0";

fn jwks_of(signers: &[&DevSigner]) -> Value {
    let keys: Vec<Value> = signers
        .iter()
        .flat_map(|s| s.jwks()["keys"].as_array().unwrap().clone())
        .collect();
    json!({ "keys": keys })
}

fn tokens(min_refetch: &str, refresh: &str) -> String {
    format!(
        "clock_skew = \"60s\"\njwks_refresh = \"{refresh}\"\njwks_min_refetch = \"{min_refetch}\"\n"
    )
}

/// A config whose unknown-kid refetches are not rate limited (the file format requires a
/// positive `jwks_min_refetch`; zero is the runtime's "no limit, no negative cache").
fn unlimited(issuer_table: &str, refresh: &str) -> accessgate::config::Config {
    let mut c = config(issuer_table, &tokens("5m", refresh));
    c.tokens.jwks_min_refetch = Duration::ZERO;
    c
}

#[tokio::test]
async fn a_new_kid_is_accepted_without_restart() {
    let old = DevSigner::generate("old-rsa", "old-ec").unwrap();
    let new = DevSigner::generate("new-rsa", "new-ec").unwrap();
    let jwks = JwksServer::start(&jwks_of(&[&old])).await;
    let cfg = unlimited(&issuer_toml(ISS, &jwks.url("/k"), "[\"RS256\"]"), "1h");
    let (a, m) = ready_authenticator(&cfg).await;
    let t_new = new.mint(&opts(ISS, DevAlg::RS256)).unwrap();
    // Before the IdP publishes the key: refused (and refetched once to look).
    assert_eq!(
        auth(&a, &t_new).await.unwrap_err(),
        Rejection::InvalidToken("signing key not found")
    );
    jwks.set_jwks(&jwks_of(&[&old, &new]));
    let p = auth(&a, &t_new).await.unwrap();
    assert_eq!(p.issuer.as_ref(), ISS);
    // The old key still works.
    assert!(
        auth(&a, &old.mint(&opts(ISS, DevAlg::RS256)).unwrap())
            .await
            .is_ok()
    );
    assert_eq!(
        counter(
            &m,
            "accessgate_jwks_refresh_total",
            &[("outcome", "success")]
        ),
        3
    );
}

#[tokio::test]
async fn fifty_concurrent_unknown_kids_cause_exactly_one_fetch() {
    let s = signer();
    let jwks = JwksServer::start(&s.jwks()).await;
    let cfg = config(
        &issuer_toml(ISS, &jwks.url("/k"), "[\"RS256\"]"),
        &tokens("5m", "1h"),
    );
    let (a, _m) = ready_authenticator(&cfg).await;
    let a = Arc::new(a);
    let before = jwks.jwks_hits();
    let stranger = DevSigner::generate("unknown-kid", "unknown-ec").unwrap();
    let t = Arc::new(stranger.mint(&opts(ISS, DevAlg::RS256)).unwrap());
    let mut handles = Vec::new();
    for _ in 0..50 {
        let (a, t) = (a.clone(), t.clone());
        handles.push(tokio::spawn(async move { auth(&a, &t).await }));
    }
    for h in handles {
        assert_eq!(
            h.await.unwrap().unwrap_err(),
            Rejection::InvalidToken("signing key not found")
        );
    }
    assert_eq!(jwks.jwks_hits() - before, 1, "exactly one refetch");
    // A spray of different random kids within jwks_min_refetch: no further fetch.
    for i in 0..20 {
        let mut o = opts(ISS, DevAlg::RS256);
        o.kid = Some(format!("random-{i}"));
        let t = s.mint(&o).unwrap();
        assert!(auth(&a, &t).await.is_err());
    }
    assert_eq!(jwks.jwks_hits() - before, 1, "rate limited per issuer");
}

#[tokio::test]
async fn jwks_server_down_keeps_the_last_good_keys() {
    let s = signer();
    let mut jwks = JwksServer::start(&s.jwks()).await;
    let cfg = unlimited(&issuer_toml(ISS, &jwks.url("/k"), "[\"RS256\"]"), "1s");
    let (a, m) = ready_authenticator(&cfg).await;
    assert!(
        auth(&a, &s.mint(&opts(ISS, DevAlg::RS256)).unwrap())
            .await
            .is_ok()
    );

    // First the IdP answers 500, then it is gone altogether.
    jwks.set_status(500);
    let failed = |n| {
        let m = m.clone();
        move || counter(&m, "accessgate_jwks_refresh_total", &[("outcome", "error")]) >= n
    };
    assert!(
        eventually(Duration::from_secs(15), failed(1)).await,
        "no failed refresh seen"
    );
    // A fresh token (new jti, so no cache hit) still verifies with the last good keys.
    assert!(
        auth(&a, &s.mint(&opts(ISS, DevAlg::ES256)).unwrap())
            .await
            .is_err()
    ); // RS256 only
    assert!(
        auth(&a, &s.mint(&opts(ISS, DevAlg::RS256)).unwrap())
            .await
            .is_ok()
    );
    jwks.stop().await;
    let stranger = DevSigner::generate("unknown", "unknown-ec").unwrap();
    // Unknown kid while the IdP is down: a refetch is tried, fails, keys stay.
    assert!(
        auth(&a, &stranger.mint(&opts(ISS, DevAlg::RS256)).unwrap())
            .await
            .is_err()
    );
    assert!(
        auth(&a, &s.mint(&opts(ISS, DevAlg::RS256)).unwrap())
            .await
            .is_ok()
    );
    assert!(a.is_ready());
}

#[tokio::test]
async fn a_token_from_a_removed_key_leaves_the_cache() {
    let a_key = DevSigner::generate("key-a", "key-a-ec").unwrap();
    let b_key = DevSigner::generate("key-b", "key-b-ec").unwrap();
    let jwks = JwksServer::start(&jwks_of(&[&a_key, &b_key])).await;
    let cfg = unlimited(&issuer_toml(ISS, &jwks.url("/k"), "[\"RS256\"]"), "1h");
    let (a, m) = ready_authenticator(&cfg).await;
    let tb = b_key.mint(&opts(ISS, DevAlg::RS256)).unwrap();
    let ta = a_key.mint(&opts(ISS, DevAlg::RS256)).unwrap();
    assert!(auth(&a, &tb).await.is_ok());
    assert!(auth(&a, &ta).await.is_ok());
    assert!(auth(&a, &tb).await.is_ok()); // cached
    assert_eq!(counter(&m, "accessgate_token_cache_hits_total", &[]), 1);
    assert_eq!(a.cached_tokens(), 2);

    // The IdP drops key B; an unknown kid makes us refetch and see it.
    jwks.set_jwks(&jwks_of(&[&a_key]));
    let stranger = DevSigner::generate("key-c", "key-c-ec").unwrap();
    assert!(
        auth(&a, &stranger.mint(&opts(ISS, DevAlg::RS256)).unwrap())
            .await
            .is_err()
    );
    assert_eq!(
        a.cached_tokens(),
        1,
        "B's token left the cache when the keys changed"
    );
    assert_eq!(
        auth(&a, &tb).await.unwrap_err(),
        Rejection::InvalidToken("signing key not found")
    );
    assert_eq!(counter(&m, "accessgate_token_cache_hits_total", &[]), 1);
    // A's token is still a hit.
    assert!(auth(&a, &ta).await.is_ok());
    assert_eq!(counter(&m, "accessgate_token_cache_hits_total", &[]), 2);
}

#[tokio::test]
async fn keys_by_openid_discovery() {
    let s = signer();
    let jwks = JwksServer::start(&s.jwks()).await;
    jwks.enable_discovery();
    let iss = jwks.issuer();
    let table = format!("issuer = \"{iss}\"\naudiences = [\"{AUDIENCE}\"]\n");
    let cfg = config(&table, TOKENS_DEFAULT);
    let (a, _m) = ready_authenticator(&cfg).await;
    assert!(
        auth(&a, &s.mint(&opts(&iss, DevAlg::RS256)).unwrap())
            .await
            .is_ok()
    );
    assert_eq!(jwks.hits(), 2, "one discovery, one JWKS");
}

#[tokio::test]
async fn not_ready_until_keys_load_and_a_reload_keeps_them() {
    let s = signer();
    let jwks = JwksServer::start(&s.jwks()).await;
    jwks.set_status(503);
    let cfg = unlimited(&issuer_toml(ISS, &jwks.url("/k"), "[\"RS256\"]"), "1h");
    let metrics = Metrics::new();
    let a = Authenticator::new(&cfg, &metrics, None);
    assert!(!a.is_ready());
    let t = s.mint(&opts(ISS, DevAlg::RS256)).unwrap();
    assert!(auth(&a, &t).await.is_err());
    jwks.set_status(200);
    // The background loader retries with backoff until it succeeds.
    assert!(a.wait_ready(Duration::from_secs(15)).await);
    assert!(auth(&a, &t).await.is_ok());

    // A reload with the same issuer: ready at once, no fetch needed, cache carried over.
    jwks.set_status(503);
    let hits = jwks.jwks_hits();
    let b = Authenticator::new(&cfg, &metrics, Some(&a));
    drop(a);
    assert!(b.is_ready());
    assert!(auth(&b, &t).await.is_ok());
    assert_eq!(
        counter(&metrics, "accessgate_token_cache_hits_total", &[]),
        1
    );
    assert_eq!(jwks.jwks_hits(), hits);

    // A reload that changes the audience: keys kept, cache not (audience is part of what
    // a cached principal was checked against).
    let mut changed = cfg.clone();
    changed.issuers[0].audiences = vec!["api://other".into()];
    let c = Authenticator::new(&changed, &metrics, Some(&b));
    assert!(c.is_ready());
    assert_eq!(
        auth(&c, &t).await.unwrap_err(),
        Rejection::InvalidToken("audience not accepted")
    );
}
