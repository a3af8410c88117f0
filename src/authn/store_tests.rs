use super::*;
use crate::authn::dev::DevSigner;
use crate::config::{ChallengeStyle, ClaimNames, JwsAlgorithm};

fn cfg(keys: KeySource) -> IssuerConfig {
    IssuerConfig {
        issuer: "https://i/".into(),
        multi_tenant: false,
        tenants: Vec::new(),
        audiences: vec!["a".into()],
        keys,
        jwks_ca: None,
        algorithms: vec![JwsAlgorithm::RS256],
        authorization_uri: None,
        claims: ClaimNames::default(),
        challenge: ChallengeStyle::Entra,
    }
}

fn jwks(signers: &[&DevSigner]) -> ParsedJwks {
    let keys: Vec<serde_json::Value> = signers
        .iter()
        .flat_map(|s| s.jwks()["keys"].as_array().cloned().unwrap_or_default())
        .collect();
    parse_jwks(&serde_json::to_vec(&serde_json::json!({ "keys": keys })).unwrap()).unwrap()
}

#[test]
fn publish_keeps_unchanged_keys_and_reports_removed_ones() {
    let (a, b) = (
        DevSigner::generate("a", "a-ec").unwrap(),
        DevSigner::generate("b", "b-ec").unwrap(),
    );
    let store = KeyStore::new(
        &cfg(KeySource::Uri("https://i/keys".into())),
        &Metrics::new(),
    );
    assert!(!store.current().is_loaded());
    assert!(store.publish(jwks(&[&a, &b])).is_empty());
    let first = store.current();
    assert_eq!((first.generation, first.keys.len()), (1, 4));
    let removed = store.publish(jwks(&[&a]));
    assert_eq!(removed.len(), 2);
    let second = store.current();
    assert_eq!(second.generation, 2);
    // Key "a" is the same allocation in both sets: cached tokens it verified stay valid.
    assert!(first.keys.iter().filter(|k| second.contains(k)).count() == 2);
    assert!(
        removed
            .iter()
            .all(|fp| !second.keys.iter().any(|k| &k.fingerprint == fp))
    );
}

#[test]
fn file_store_is_local_and_reports_bad_files() {
    let store = KeyStore::new(
        &cfg(KeySource::File("/nonexistent/jwks.json".into())),
        &Metrics::new(),
    );
    assert!(!store.is_remote());
    assert!(
        store
            .load_file()
            .unwrap_err()
            .contains("/nonexistent/jwks.json")
    );
    assert!(!store.current().is_loaded());
    let c = cfg(KeySource::File("/x".into()));
    assert!(store.serves(&cfg(KeySource::File("/nonexistent/jwks.json".into()))));
    assert!(!store.serves(&c));
}

#[tokio::test]
async fn file_store_never_refetches() {
    let store = Arc::new(KeyStore::new(
        &cfg(KeySource::File("/x".into())),
        &Metrics::new(),
    ));
    assert_eq!(
        store.refetch_unknown(0, Duration::ZERO).await,
        Refetch::Skipped
    );
}

#[tokio::test]
async fn refused_urls_fail_the_fetch_and_count_it() {
    let m = Metrics::new();
    let store = Arc::new(KeyStore::new(
        &cfg(KeySource::Uri("http://idp.example/keys".into())),
        &m,
    ));
    let err = store.refresh().await.unwrap_err();
    assert!(err.contains("loopback"), "{err}");
    assert_eq!(
        m.jwks_refresh_total
            .with_label_values(&["https://i/", "error"])
            .get(),
        1
    );
    assert!(!store.current().is_loaded());
    // The on-demand path is rate limited after that failure.
    assert_eq!(
        store.refetch_unknown(0, Duration::from_secs(300)).await,
        Refetch::Failed
    );
    assert_eq!(
        store.refetch_unknown(0, Duration::from_secs(300)).await,
        Refetch::Skipped
    );
}
