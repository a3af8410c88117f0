use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::*;
use crate::config::graph::INTUNE_PLAN;
use crate::config::{GraphCloud, GraphConfig, GraphCredential};
use crate::state::graph::test_server::{self, Resp};

pub(crate) fn cfg(login: &str, credential: GraphCredential) -> GraphConfig {
    GraphConfig {
        tenant_id: "contoso.example".into(),
        client_id: "11111111-2222-3333-4444-555555555555".into(),
        credential,
        cloud: GraphCloud::Global,
        login_url: login.into(),
        graph_url: "http://127.0.0.1:9".into(),
        licensed_service_plans: vec![INTUNE_PLAN.into()],
        groups: vec![],
        apps: vec![],
        warnings: vec![],
    }
}

pub(crate) fn client() -> HttpsBodyClient {
    crate::ops::outbound::https_body_client(None, "test", Duration::from_secs(2)).unwrap()
}

pub(crate) fn secret_file(dir: &std::path::Path, secret: &str) -> GraphCredential {
    let p = dir.join("secret");
    std::fs::write(&p, format!("{secret}\n")).unwrap();
    GraphCredential::SecretFile(p)
}

fn form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let v = percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned();
            (k.to_owned(), v)
        })
        .collect()
}

fn field<'a>(f: &'a [(String, String)], k: &str) -> Option<&'a str> {
    f.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn secret_token_is_cached_and_refetched_after_invalidate() {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let srv = test_server::start(Arc::new(move |_r| {
        let i = n2.fetch_add(1, Ordering::SeqCst);
        // v1-style string expires_in on the second answer.
        if i == 0 {
            Resp::json(200, r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"tok-0"}"#)
        } else {
            Resp::json(200, r#"{"token_type":"Bearer","expires_in":"3599","access_token":"tok-1"}"#)
        }
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(&srv.url(), secret_file(dir.path(), "s3cr&t=+"));
    let tp = TokenProvider::new(&c, client()).unwrap();
    assert_eq!(&*tp.bearer().await.unwrap(), "tok-0");
    assert_eq!(&*tp.bearer().await.unwrap(), "tok-0");
    assert_eq!(n.load(Ordering::SeqCst), 1, "cached token refetched");
    tp.invalidate();
    assert_eq!(&*tp.bearer().await.unwrap(), "tok-1");
    let reqs = srv.requests();
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].uri, "/contoso.example/oauth2/v2.0/token");
    assert_eq!(
        reqs[0].headers.get("content-type").unwrap(),
        "application/x-www-form-urlencoded"
    );
    let f = form(&reqs[0].body);
    assert_eq!(field(&f, "grant_type"), Some("client_credentials"));
    assert_eq!(field(&f, "client_id"), Some(c.client_id.as_str()));
    assert_eq!(field(&f, "scope"), Some("http://127.0.0.1:9/.default"));
    // The secret is sent form-encoded, trailing newline of the file removed.
    assert_eq!(field(&f, "client_secret"), Some("s3cr&t=+"));
    // ... and never shown by Debug.
    let dbg = format!("{tp:?}");
    assert!(!dbg.contains("s3cr") && !dbg.contains("tok-"), "{dbg}");
}

#[tokio::test]
async fn concurrent_callers_share_one_fetch() {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let srv = test_server::start(Arc::new(move |_r| {
        n2.fetch_add(1, Ordering::SeqCst);
        Resp::json(
            200,
            r#"{"token_type":"bearer","expires_in":600,"access_token":"t"}"#,
        )
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let tp = Arc::new(
        TokenProvider::new(&cfg(&srv.url(), secret_file(dir.path(), "s")), client()).unwrap(),
    );
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let tp = tp.clone();
        tasks.push(tokio::spawn(async move {
            tp.bearer().await.map(|t| t.to_string())
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), "t");
    }
    assert_eq!(n.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn refused_credential_is_a_refusal_without_secrets() {
    let srv = test_server::start(Arc::new(|_r| {
        Resp::json(401, r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x","error_codes":[7000215]}"#)
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let tp = TokenProvider::new(
        &cfg(&srv.url(), secret_file(dir.path(), "wrong-secret")),
        client(),
    )
    .unwrap();
    let e = tp.bearer().await.unwrap_err();
    let GraphError::Refused(msg) = &e else {
        panic!("{e:?}")
    };
    assert!(
        msg.contains("invalid_client") && msg.contains("AADSTS7000215"),
        "{msg}"
    );
    assert!(
        !msg.contains("wrong-secret") && !msg.contains("Trace ID"),
        "{msg}"
    );
}

#[tokio::test]
async fn malformed_token_answers_are_errors() {
    for body in [
        "not json",
        r#"{"token_type":"Bearer","expires_in":3599}"#,
        r#"{"token_type":"mac","expires_in":3599,"access_token":"t"}"#,
        r#"{"token_type":"Bearer","expires_in":"soon","access_token":"t"}"#,
        r#"{"token_type":"Bearer","expires_in":0,"access_token":"t"}"#,
    ] {
        let srv = test_server::start(Arc::new(move |_r| Resp::json(200, body))).await;
        let dir = tempfile::tempdir().unwrap();
        let tp =
            TokenProvider::new(&cfg(&srv.url(), secret_file(dir.path(), "s")), client()).unwrap();
        assert!(
            matches!(tp.bearer().await, Err(GraphError::Malformed(_))),
            "accepted {body}"
        );
    }
}

#[test]
fn unreadable_credentials_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = GraphCredential::SecretFile(dir.path().join("nope"));
    assert!(matches!(
        TokenProvider::new(&cfg("http://127.0.0.1:9", missing), client()),
        Err(GraphError::Credential(_))
    ));
    let blank = secret_file(dir.path(), "  ");
    assert!(TokenProvider::new(&cfg("http://127.0.0.1:9", blank), client()).is_err());
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "junk").unwrap();
    let cert = GraphCredential::Certificate {
        cert: junk.clone(),
        key: junk,
    };
    assert!(TokenProvider::new(&cfg("http://127.0.0.1:9", cert), client()).is_err());
}

/// A self-signed RSA certificate and its key, as files.
pub(crate) fn cert_files(dir: &std::path::Path) -> (GraphCredential, rcgen::KeyPair, Vec<u8>) {
    let key = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .unwrap();
    let cert = rcgen::CertificateParams::new(vec!["accessgate-graph".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (c, k) = (dir.join("graph.crt"), dir.join("graph.key"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    let der = cert.der().to_vec();
    (GraphCredential::Certificate { cert: c, key: k }, key, der)
}

#[tokio::test]
async fn certificate_assertion_is_ps256_with_x5t_s256_and_verifies() {
    let srv = test_server::start(Arc::new(|_r| {
        Resp::json(
            200,
            r#"{"token_type":"Bearer","expires_in":3599,"access_token":"t"}"#,
        )
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (cred, key, der) = cert_files(dir.path());
    let c = cfg(&srv.url(), cred);
    let tp = TokenProvider::new(&c, client()).unwrap();
    tp.bearer().await.unwrap();
    tp.invalidate();
    tp.bearer().await.unwrap();
    let reqs = srv.requests();
    let mut jtis = Vec::new();
    for r in &reqs {
        let f = form(&r.body);
        assert_eq!(
            field(&f, "client_assertion_type"),
            Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        );
        assert_eq!(field(&f, "client_secret"), None);
        let jwt = field(&f, "client_assertion").unwrap();
        let header = jsonwebtoken::decode_header(jwt).unwrap();
        assert_eq!(header.alg, Algorithm::PS256);
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der);
        assert_eq!(
            header.x5t_s256.as_deref(),
            Some(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(digest)
                    .as_str()
            )
        );
        let aud = format!("{}/contoso.example/oauth2/v2.0/token", srv.url());
        let mut v = Validation::new(Algorithm::PS256);
        v.set_audience(&[aud.as_str()]);
        v.set_issuer(&[c.client_id.as_str()]);
        v.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
        let public = DecodingKey::from_rsa_der(&public_pkcs1(&key));
        let data = jsonwebtoken::decode::<serde_json::Value>(jwt, &public, &v).unwrap();
        let claims = data.claims;
        assert_eq!(claims["sub"], c.client_id.as_str());
        let (nbf, exp) = (
            claims["nbf"].as_u64().unwrap(),
            claims["exp"].as_u64().unwrap(),
        );
        assert!(exp > nbf && exp - nbf <= 600, "lifetime {}", exp - nbf);
        jtis.push(claims["jti"].as_str().unwrap().to_owned());
    }
    assert_eq!(jtis.len(), 2);
    assert_ne!(jtis[0], jtis[1], "jti reused");
    // A signature by another key is refused by the same check (the test can fail).
    let other = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .unwrap();
    let f = form(&reqs[0].body);
    let mut v = Validation::new(Algorithm::PS256);
    v.validate_aud = false;
    assert!(
        jsonwebtoken::decode::<serde_json::Value>(
            field(&f, "client_assertion").unwrap(),
            &DecodingKey::from_rsa_der(&public_pkcs1(&other)),
            &v
        )
        .is_err()
    );
}

/// The PKCS#1 RSAPublicKey inside the key pair's SPKI (what `from_rsa_der` takes).
fn public_pkcs1(key: &rcgen::KeyPair) -> Vec<u8> {
    use aws_lc_rs::signature::KeyPair as _;
    let kp = aws_lc_rs::rsa::KeyPair::from_pkcs8(&key.serialize_der()).unwrap();
    kp.public_key().as_ref().to_vec()
}

#[test]
fn random_guids_are_v4_and_unique() {
    let a = random_guid().unwrap();
    let b = random_guid().unwrap();
    assert_ne!(a, b);
    assert_eq!(a.len(), 36);
    assert_eq!(&a[14..15], "4");
}
