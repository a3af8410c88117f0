//! Tokens that must be accepted, and what the Principal says about them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::authn as authn_common;

use accessgate::authn::dev::DevAlg;
use accessgate::respond::Rejection;
use authn_common::*;
use http::{HeaderMap, HeaderValue};
use serde_json::json;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

#[tokio::test]
async fn rs256_and_es256_are_accepted() {
    let s = signer();
    let jwks = JwksServer::start(&s.jwks()).await;
    let iss = "https://login.example/t/v2.0";
    let cfg = config(
        &issuer_toml(iss, &jwks.url("/keys"), "[\"RS256\", \"ES256\"]"),
        TOKENS_DEFAULT,
    );
    let (a, _m) = ready_authenticator(&cfg).await;
    for alg in [DevAlg::RS256, DevAlg::ES256] {
        let t = s.mint(&opts(iss, alg)).unwrap();
        let p = auth(&a, &t)
            .await
            .unwrap_or_else(|e| panic!("{alg:?}: {e:?}"));
        assert_eq!(p.issuer.as_ref(), iss);
        assert_eq!(p.issuer_index, 0);
    }
}

#[tokio::test]
async fn lower_case_bearer_is_accepted() {
    let s = signer();
    let jwks = JwksServer::start(&s.jwks()).await;
    let iss = "https://login.example/t/v2.0";
    let cfg = config(
        &issuer_toml(iss, &jwks.url("/k"), "[\"RS256\"]"),
        TOKENS_DEFAULT,
    );
    let (a, _m) = ready_authenticator(&cfg).await;
    let t = s.mint(&opts(iss, DevAlg::RS256)).unwrap();
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("{scheme} {t}")).unwrap(),
        );
        assert!(a.authenticate(&h).await.is_ok(), "{scheme}");
    }
}

#[tokio::test]
async fn expired_or_not_yet_valid_within_skew_is_accepted() {
    let s = signer();
    let jwks = JwksServer::start(&s.jwks()).await;
    let iss = "https://login.example/t/v2.0";
    let cfg = config(
        &issuer_toml(iss, &jwks.url("/k"), "[\"RS256\"]"),
        TOKENS_DEFAULT,
    );
    let (a, _m) = ready_authenticator(&cfg).await;
    let mut o = opts(iss, DevAlg::RS256);
    o.extra.insert("exp".into(), json!(now() - 30)); // skew is 60s
    let t = s.mint(&o).unwrap();
    let p = auth(&a, &t).await.unwrap();
    assert!(p.exp < now());
    // Accepted again (such tokens are not cached: they are past exp, so verified afresh).
    assert!(auth(&a, &t).await.is_ok());
    let mut o = opts(iss, DevAlg::RS256);
    o.nbf = Some(now() + 30);
    assert!(auth(&a, &s.mint(&o).unwrap()).await.is_ok());
}

#[tokio::test]
async fn entra_v2_token_gives_the_principal() {
    let s = signer();
    let jwks = JwksServer::start(&s.jwks()).await;
    let iss = format!("https://login.microsoftonline.com/{TENANT}/v2.0");
    let cfg = config(
        &issuer_toml(&iss, &jwks.url("/k"), "[\"RS256\"]"),
        TOKENS_DEFAULT,
    );
    let (a, _m) = ready_authenticator(&cfg).await;
    let mut o = opts(&iss, DevAlg::RS256);
    o.oid = Some("user-oid-1".into());
    o.tid = Some(TENANT.to_uppercase());
    o.azp = Some("client-app-v2".into());
    o.deviceid = Some("device-1".into());
    o.groups = vec!["g1".into(), "g2".into()];
    o.amr = vec!["pwd".into(), "mfa".into()];
    o.acrs = vec!["c1".into()];
    o.xms_cc = vec!["cp1".into()];
    o.scp = Some("Files.Read  User.Read".into());
    o.roles = vec!["Admin".into()];
    o.jti = Some("jti-123".into());
    o.iat = Some(now() - 100);
    o.auth_time = Some(now() - 200);
    o.extra.insert("ver".into(), json!("2.0"));
    let p = auth(&a, &s.mint(&o).unwrap()).await.unwrap();
    assert_eq!(p.user, "user-oid-1");
    assert_eq!(p.tenant.as_deref(), Some(TENANT));
    assert_eq!(p.client_app.as_deref(), Some("client-app-v2"));
    assert_eq!(p.device.as_deref(), Some("device-1"));
    assert_eq!(p.groups, ["g1", "g2"]);
    assert!(!p.groups_incomplete);
    assert_eq!(p.amr, ["pwd", "mfa"]);
    assert_eq!(p.acrs, ["c1"]);
    assert!(p.cae_capable);
    assert_eq!(p.scopes, ["Files.Read", "User.Read"]);
    assert_eq!(p.roles, ["Admin"]);
    assert_eq!(p.token_id, "jti-123");
    assert_eq!(p.iat, Some(o.iat.unwrap()));
    assert_eq!(p.authenticated_at(), o.auth_time);
}

#[tokio::test]
async fn entra_v1_token_uses_sub_appid_and_overage() {
    let s = signer();
    let jwks = JwksServer::start(&s.jwks()).await;
    let iss = format!("https://sts.windows.net/{TENANT}/");
    let cfg = config(
        &issuer_toml(&iss, &jwks.url("/k"), "[\"RS256\"]"),
        TOKENS_DEFAULT,
    );
    let (a, _m) = ready_authenticator(&cfg).await;
    let mut o = opts(&iss, DevAlg::RS256);
    o.oid = None;
    o.azp = None;
    o.subject = "v1-subject".into();
    o.tid = Some(TENANT.into());
    o.extra.insert("ver".into(), json!("1.0"));
    o.extra.insert("appid".into(), json!("client-app-v1"));
    o.extra.insert("xms_cc".into(), json!("cp1"));
    o.extra
        .insert("_claim_names".into(), json!({"groups": "src1"}));
    o.extra.insert(
        "_claim_sources".into(),
        json!({"src1": {"endpoint": "https://graph.windows.net/x/getMemberObjects"}}),
    );
    o.jti = None;
    let t = s
        .sign(
            DevAlg::RS256,
            &json!({"alg": "RS256", "typ": "JWT", "kid": "kid-rsa-1"}),
            &{
                let mut c = o.claims(now());
                c.remove("jti");
                serde_json::Value::Object(c)
            },
        )
        .unwrap();
    let p = auth(&a, &t).await.unwrap();
    assert_eq!(p.user, "v1-subject");
    assert_eq!(p.client_app.as_deref(), Some("client-app-v1"));
    assert!(p.groups_incomplete);
    assert!(p.cae_capable);
    // No jti: a short hash of the token, never the token.
    assert_eq!(p.token_id.len(), 16);
    assert!(p.token_id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(!t.contains(&p.token_id));
}

#[tokio::test]
async fn hasgroups_marks_an_overage_and_custom_claim_names_apply() {
    let s = signer();
    let jwks = JwksServer::start(&s.jwks()).await;
    let iss = "https://idp.example/";
    let table = format!(
        "{}claims = {{ user = \"email\", client_app = \"client_id\", device = \"did\", groups = \"memberOf\" }}\n",
        issuer_toml(iss, &jwks.url("/k"), "[\"RS256\"]")
    );
    let cfg = config(&table, TOKENS_DEFAULT);
    let (a, _m) = ready_authenticator(&cfg).await;
    let mut o = opts(iss, DevAlg::RS256);
    o.oid = Some("ignored-oid".into());
    o.extra.insert("email".into(), json!("ann@example.com"));
    o.extra.insert("client_id".into(), json!("cli"));
    o.extra.insert("did".into(), json!("dev-9"));
    o.extra.insert("memberOf".into(), json!(["admins"]));
    o.extra.insert("hasgroups".into(), json!(true));
    let p = auth(&a, &s.mint(&o).unwrap()).await.unwrap();
    assert_eq!(p.user, "ann@example.com");
    assert_eq!(p.client_app.as_deref(), Some("cli"));
    assert_eq!(p.device.as_deref(), Some("dev-9"));
    assert_eq!(p.groups, ["admins"]);
    assert!(p.groups_incomplete);
}

#[tokio::test]
async fn multi_tenant_issuer_substitutes_tid() {
    let s = signer();
    let jwks = JwksServer::start(&s.jwks()).await;
    let table = format!(
        "{}tenants = [\"{TENANT}\", \"11111111-2222-3333-4444-555555555555\"]\n",
        issuer_toml(
            "https://login.microsoftonline.com/{tenantid}/v2.0",
            &jwks.url("/common/keys"),
            "[\"RS256\"]"
        )
    );
    let cfg = config(&table, TOKENS_DEFAULT);
    let (a, _m) = ready_authenticator(&cfg).await;
    let mint = |iss: &str, tid: Option<&str>| {
        let mut o = opts(iss, DevAlg::RS256);
        o.tid = tid.map(str::to_owned);
        s.mint(&o).unwrap()
    };
    let good = format!("https://login.microsoftonline.com/{TENANT}/v2.0");
    let p = auth(&a, &mint(&good, Some(TENANT))).await.unwrap();
    assert_eq!(p.tenant.as_deref(), Some(TENANT));
    assert_eq!(p.issuer.as_ref(), good);

    // tid not matching the tenant in iss: the substituted issuer differs.
    let other = "11111111-2222-3333-4444-555555555555";
    assert_eq!(
        auth(&a, &mint(&good, Some(other))).await.unwrap_err(),
        Rejection::InvalidToken("issuer not trusted")
    );
    // No tid, or a tid that is not a GUID.
    assert_eq!(
        auth(&a, &mint(&good, None)).await.unwrap_err(),
        Rejection::InvalidToken("issuer not trusted")
    );
    let weird = "https://login.microsoftonline.com/x/v2.0";
    assert_eq!(
        auth(&a, &mint(weird, Some("x"))).await.unwrap_err(),
        Rejection::InvalidToken("issuer not trusted")
    );
    // A well-formed tenant outside `tenants`.
    let outsider = "99999999-2222-3333-4444-555555555555";
    let iss = format!("https://login.microsoftonline.com/{outsider}/v2.0");
    assert_eq!(
        auth(&a, &mint(&iss, Some(outsider))).await.unwrap_err(),
        Rejection::InvalidToken("tenant not allowed")
    );
}

#[tokio::test]
async fn second_request_is_a_cache_hit_with_the_same_principal() {
    let s = signer();
    let jwks = JwksServer::start(&s.jwks()).await;
    let iss = "https://login.example/t/v2.0";
    let cfg = config(
        &issuer_toml(iss, &jwks.url("/k"), "[\"RS256\"]"),
        TOKENS_DEFAULT,
    );
    let (a, m) = ready_authenticator(&cfg).await;
    let t = s.mint(&opts(iss, DevAlg::RS256)).unwrap();
    let p1 = auth(&a, &t).await.unwrap();
    let p2 = auth(&a, &t).await.unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&p1, &p2),
        "the hit shares the cached principal"
    );
    assert_eq!(counter(&m, "accessgate_token_cache_misses_total", &[]), 1);
    assert_eq!(counter(&m, "accessgate_token_cache_hits_total", &[]), 1);
    assert_eq!(a.cached_tokens(), 1);
    // A tampered copy of a cached token is a different key: verified, and refused.
    let mut bad = t.clone();
    bad.pop();
    bad.push(if t.ends_with('A') { 'B' } else { 'A' });
    assert!(auth(&a, &bad).await.is_err());
}

#[tokio::test]
async fn jwks_file_keys_load_without_a_runtime_fetch() {
    let s = signer();
    let dir = std::env::temp_dir().join(format!("accessgate-authn-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jwks.json");
    std::fs::write(&path, serde_json::to_vec(&s.jwks()).unwrap()).unwrap();
    let iss = "https://file.example/";
    let table = format!(
        "issuer = \"{iss}\"\naudiences = [\"{AUDIENCE}\"]\njwks_file = \"{}\"\nalgorithms = [\"RS256\", \"ES256\"]\n",
        path.display()
    );
    let cfg = config(&table, TOKENS_DEFAULT);
    let m = accessgate::ops::metrics::Metrics::new();
    // Built outside any async context: file keys are read at construction.
    let a = std::thread::spawn(move || accessgate::authn::Authenticator::new(&cfg, &m, None))
        .join()
        .unwrap();
    assert!(a.is_ready());
    assert!(a.startup_errors().is_empty());
    assert!(
        auth(&a, &s.mint(&opts(iss, DevAlg::ES256)).unwrap())
            .await
            .is_ok()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn unreadable_jwks_file_is_a_startup_error_and_not_ready() {
    let iss = "https://file.example/";
    let table = format!(
        "issuer = \"{iss}\"\naudiences = [\"{AUDIENCE}\"]\njwks_file = \"/nonexistent/accessgate/jwks.json\"\n"
    );
    let cfg = config(&table, TOKENS_DEFAULT);
    let a = accessgate::authn::Authenticator::new(
        &cfg,
        &accessgate::ops::metrics::Metrics::new(),
        None,
    );
    assert!(!a.is_ready());
    assert_eq!(a.startup_errors().len(), 1);
    let t = signer().mint(&opts(iss, DevAlg::RS256)).unwrap();
    assert_eq!(
        auth(&a, &t).await.unwrap_err(),
        Rejection::InvalidToken("signing keys are not available yet")
    );
}

#[tokio::test]
async fn issuers_with_different_claim_names_each_use_their_own() {
    let s = signer();
    let jwks = JwksServer::start(&s.jwks()).await;
    let entra = "https://login.example/entra/v2.0";
    let other = "https://idp.example/";
    let tables = format!(
        "{}\n[[issuers]]\n{}claims = {{ user = \"email\" }}\n",
        issuer_toml(entra, &jwks.url("/k"), "[\"RS256\"]"),
        issuer_toml(other, &jwks.url("/k"), "[\"RS256\"]"),
    );
    let cfg = config(&tables, TOKENS_DEFAULT);
    let (a, _m) = ready_authenticator(&cfg).await;
    for (iss, idx, user) in [(entra, 0, "oid-1"), (other, 1, "ann@example.com")] {
        let mut o = opts(iss, DevAlg::RS256);
        o.oid = Some("oid-1".into());
        o.extra.insert("email".into(), json!("ann@example.com"));
        let p = auth(&a, &s.mint(&o).unwrap()).await.unwrap();
        assert_eq!((p.issuer_index, p.user.as_str()), (idx, user));
    }
}
