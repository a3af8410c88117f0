use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::*;
use crate::config::AssertionKey;

fn key_file(dir: &Path, name: &str) -> AssertionKey {
    let path = dir.join(format!("{name}.pem"));
    write_dev_key(&path).unwrap();
    AssertionKey {
        id: name.to_owned(),
        key: path,
    }
}

fn config(keys: Vec<AssertionKey>) -> AssertionConfig {
    AssertionConfig {
        issuer: "https://gw.example/assertion".into(),
        lifetime: Duration::from_secs(30),
        keys,
    }
}

fn principal() -> Principal {
    Principal {
        user: "u-1".into(),
        tenant: Some("t-1".into()),
        client_app: Some("app-1".into()),
        device: None,
        ..Principal::default()
    }
}

#[test]
fn signs_with_the_first_key_and_publishes_all() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(vec![key_file(dir.path(), "k2"), key_file(dir.path(), "k1")]);
    let s = AssertionSigner::load(&cfg).unwrap();
    let set: JwkSet = serde_json::from_slice(&s.jwks()).unwrap();
    let kids: Vec<_> = set
        .keys
        .iter()
        .map(|k| k.common.key_id.clone().unwrap())
        .collect();
    assert_eq!(kids, ["k2", "k1"]);

    let now = crate::clock::unix_now();
    let token = s.sign(&principal(), "orders", "d-1", now).unwrap();
    let token = token.to_str().unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.kid.as_deref(), Some("k2"));
    let mut v = Validation::new(Algorithm::ES256);
    v.set_audience(&["orders"]);
    v.set_issuer(&["https://gw.example/assertion"]);
    let key = DecodingKey::from_jwk(set.find("k2").unwrap()).unwrap();
    let c = jsonwebtoken::decode::<serde_json::Value>(token, &key, &v)
        .unwrap()
        .claims;
    assert_eq!(c["sub"], "u-1");
    assert_eq!(c["tid"], "t-1");
    assert_eq!(c["app"], "app-1");
    assert!(c.get("device").is_none(), "absent facts are left out: {c}");
    assert_eq!(c["jti"], "d-1");
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 30);
    // The other published key does not verify it: the signature is k2's.
    let other = DecodingKey::from_jwk(set.find("k1").unwrap()).unwrap();
    assert!(jsonwebtoken::decode::<serde_json::Value>(token, &other, &v).is_err());
}

#[test]
fn an_expired_assertion_is_refused_by_a_verifier() {
    let dir = tempfile::tempdir().unwrap();
    let s = AssertionSigner::load(&config(vec![key_file(dir.path(), "k1")])).unwrap();
    let set: JwkSet = serde_json::from_slice(&s.jwks()).unwrap();
    let token = s
        .sign(
            &principal(),
            "orders",
            "d-1",
            crate::clock::unix_now() - 120,
        )
        .unwrap();
    let mut v = Validation::new(Algorithm::ES256);
    v.set_audience(&["orders"]);
    v.leeway = 0;
    let key = DecodingKey::from_jwk(set.find("k1").unwrap()).unwrap();
    let e =
        jsonwebtoken::decode::<serde_json::Value>(token.to_str().unwrap(), &key, &v).unwrap_err();
    assert_eq!(*e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature);
}

#[test]
fn keys_that_cannot_sign_es256_are_refused_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let good = key_file(dir.path(), "k1");
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "no pem here").unwrap();
    let cfg = config(vec![
        good,
        AssertionKey {
            id: "k2".into(),
            key: bad,
        },
    ]);
    let e = AssertionSigner::load(&cfg).unwrap_err();
    assert!(e.starts_with("assertion.keys[1] ("), "{e}");
    assert!(AssertionSigner::load(&config(Vec::new())).is_err());
}
