//! The authorize layer alone, with a stub inner service.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use http::{Request, Response, StatusCode};
use tower::{Layer, ServiceExt};

use super::{AuthorizeLayer, AuthzOutcome, write_policy_results};
use crate::authn::Principal;
use crate::body::Body;
use crate::config::parse_str;
use crate::ops::metrics::Metrics;
use crate::policy::PolicyState;
use crate::route::RouteMatch;
use crate::snapshot::Snapshot;
use crate::state::{Freshness, StateStore};
use crate::transport::conn::{ClientIp, ConnInfo};

const CONFIG: &str = r#"
[listen]
address = "127.0.0.1:0"
tls_cert = "cert.pem"
tls_key = "key.pem"

[[issuers]]
issuer = "https://idp.example/t/v2.0"
audiences = ["api"]
jwks_file = "jwks.json"
authorization_uri = "https://idp.example/authorize"

[state]
source = "file"
path = "state.json"

[[routes]]
name = "public"
path_prefix = "/public"
upstream = "http://127.0.0.1:9"
auth = "none"

[[routes]]
name = "api"
path_prefix = "/"
upstream = "http://127.0.0.1:9"
resource = "corp-api"

[[policies]]
name = "office-only"
resources = ["corp-api"]
include_users = ["all"]
exclude_groups = ["travellers"]
locations = { exclude = ["10.0.0.0/8"] }
grant = { block = true }

[[policies]]
name = "watch-everything"
mode = "report_only"
resources = ["all"]
include_users = ["all"]
grant = { block = true }
"#;

const STATE: &str = r#"{"users": [{"id": "alice", "accountEnabled": true, "licensed": true}]}"#;

fn snapshot(metrics: &Metrics) -> Arc<Snapshot> {
    let config = parse_str(CONFIG, Path::new("/tmp/accessgate-authz-test.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    Arc::new(Snapshot::build(Arc::new(config), metrics, None).unwrap())
}

fn freshness(fail_open: bool) -> Freshness {
    Freshness {
        refresh: Duration::from_secs(10),
        max_staleness: Duration::from_secs(300),
        fail_open,
    }
}

fn alice(iat: i64) -> Arc<Principal> {
    Arc::new(Principal {
        user: "alice".into(),
        client_app: Some("app".into()),
        iat: Some(iat),
        exp: iat + 3600,
        cae_capable: true,
        ..Principal::default()
    })
}

fn now_s() -> i64 {
    crate::state::unix_ms(SystemTime::now()) / 1000
}

struct Harness {
    layer: AuthorizeLayer,
    snapshot: Arc<Snapshot>,
    metrics: Metrics,
    calls: Arc<AtomicUsize>,
}

fn harness(store: Arc<StateStore>) -> Harness {
    let metrics = Metrics::new();
    Harness {
        layer: AuthorizeLayer::new(store, metrics.clone()),
        snapshot: snapshot(&metrics),
        metrics,
        calls: Arc::new(AtomicUsize::new(0)),
    }
}

impl Harness {
    fn request(
        &self,
        route: usize,
        principal: Option<Arc<Principal>>,
        ip: Option<&str>,
    ) -> Request<()> {
        let mut req = Request::new(());
        req.extensions_mut().insert(RouteMatch {
            snapshot: self.snapshot.clone(),
            index: route,
        });
        if let Some(p) = principal {
            req.extensions_mut().insert(p);
        }
        if let Some(ip) = ip {
            req.extensions_mut().insert(ClientIp(ip.parse().unwrap()));
        }
        req
    }

    async fn send(&self, req: Request<()>) -> Response<Body> {
        let calls = self.calls.clone();
        let inner = tower::service_fn(move |_req: Request<()>| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Infallible>(Response::new(Body::full("upstream"))) }
        });
        self.layer.layer(inner).oneshot(req).await.unwrap()
    }

    fn count(&self, policy: &str, mode: &str, result: &str) -> u64 {
        self.metrics
            .policy_evaluations_total
            .with_label_values(&[policy, mode, result])
            .get()
    }
}

async fn body_json(resp: Response<Body>) -> serde_json::Value {
    use http_body_util::BodyExt;
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&b).unwrap()
}

fn header(resp: &Response<Body>, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn public_routes_are_not_evaluated() {
    let h = harness(StateStore::without_state(freshness(false)));
    // No state at all, but the route needs no token: straight through.
    let resp = h.send(h.request(0, None, Some("192.0.2.1"))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.extensions().get::<Arc<AuthzOutcome>>().is_none());
    assert_eq!(h.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn allow_forwards_and_records_every_policy() {
    let store = StateStore::with_state(
        PolicyState::from_json(STATE.as_bytes()).unwrap(),
        freshness(false),
    );
    let h = harness(store);
    let resp = h
        .send(h.request(1, Some(alice(now_s() - 60)), Some("10.1.2.3")))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(h.calls.load(Ordering::SeqCst), 1);
    let outcome = resp.extensions().get::<Arc<AuthzOutcome>>().unwrap();
    assert!(outcome.evaluation.decision.is_allow());
    let applied: Vec<_> = outcome
        .applied()
        .map(|(n, _, r, _)| (n.to_owned(), r.as_str()))
        .collect();
    assert_eq!(
        applied,
        vec![("watch-everything".to_owned(), "reportOnlyFailure")]
    );
    assert_eq!(h.count("office-only", "enabled", "notApplied"), 1);
    assert_eq!(
        h.count("watch-everything", "report_only", "reportOnlyFailure"),
        1
    );
    let mut line = String::new();
    write_policy_results(resp.extensions(), &mut line);
    let v: serde_json::Value = serde_json::from_str(&format!("{{\"x\":1{line}}}")).unwrap();
    assert_eq!(v["policies"][0]["name"], "watch-everything");
    assert_eq!(v["policies"][0]["mode"], "report_only");
    assert_eq!(v["policies"][0]["result"], "reportOnlyFailure");
    assert_eq!(v["policies"][0]["reason"], "block_policy");
}

#[tokio::test]
async fn block_answers_403_without_calling_upstream() {
    let store = StateStore::with_state(
        PolicyState::from_json(STATE.as_bytes()).unwrap(),
        freshness(false),
    );
    let h = harness(store);
    let resp = h
        .send(h.request(1, Some(alice(now_s() - 60)), Some("192.0.2.1")))
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(h.calls.load(Ordering::SeqCst), 0);
    assert!(resp.extensions().get::<Arc<AuthzOutcome>>().is_some());
    assert_eq!(h.count("office-only", "enabled", "failure"), 1);
    let v = body_json(resp).await;
    assert_eq!(v["reason"], "block_policy");
    assert_eq!(v["policy"], "office-only");
}

#[tokio::test]
async fn client_ip_falls_back_to_the_peer_and_is_required() {
    let store = StateStore::with_state(
        PolicyState::from_json(STATE.as_bytes()).unwrap(),
        freshness(false),
    );
    let h = harness(store);
    let mut req = h.request(1, Some(alice(now_s() - 60)), None);
    req.extensions_mut().insert(ConnInfo {
        peer: "10.9.9.9:5000".parse::<SocketAddr>().unwrap(),
        tls: true,
    });
    assert_eq!(h.send(req).await.status(), StatusCode::OK);
    let resp = h.send(h.request(1, Some(alice(now_s() - 60)), None)).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(body_json(resp).await["reason"], "client_ip_unknown");
}

#[tokio::test]
async fn authenticated_route_without_principal_is_refused() {
    let store = StateStore::with_state(PolicyState::empty(), freshness(false));
    let h = harness(store);
    let resp = h.send(h.request(1, None, Some("10.1.1.1"))).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(h.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_same_request_is_decided_anew_after_a_state_swap() {
    let store = StateStore::with_state(
        PolicyState::from_json(STATE.as_bytes()).unwrap(),
        freshness(false),
    );
    let h = harness(store.clone());
    let iat = now_s() - 600;
    let send = || h.send(h.request(1, Some(alice(iat)), Some("10.1.2.3")));
    assert_eq!(send().await.status(), StatusCode::OK);

    // Sessions revoked after the token was issued: continuous access evaluation, no new token.
    let revoked = iat + 1;
    let doc = format!(
        r#"{{"users": [{{"id": "alice", "accountEnabled": true, "licensed": true,
                         "revokeSessionsAfter": "{}"}}]}}"#,
        crate::respond::rfc3339(revoked)
    );
    store.publish(
        PolicyState::from_json(doc.as_bytes()).unwrap(),
        SystemTime::now(),
    );
    let resp = send().await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let www = header(&resp, "www-authenticate");
    assert!(www.contains("error=\"insufficient_claims\""), "{www}");
    assert!(
        www.contains("authorization_uri=\"https://idp.example/authorize\""),
        "{www}"
    );
    let b64 = www.split("claims=\"").nth(1).unwrap().trim_end_matches('"');
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["access_token"]["nbf"]["value"], revoked.to_string());
    assert_eq!(body_json(resp).await["reason"], "session_revoked");

    // The user moves into an excluded group and the location no longer matters.
    store.publish(
        PolicyState::from_json(
            br#"{"users": [{"id": "alice", "accountEnabled": true, "licensed": true, "groups": ["travellers"]}]}"#,
        )
        .unwrap(),
        SystemTime::now(),
    );
    let resp = h
        .send(h.request(1, Some(alice(iat)), Some("192.0.2.1")))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(h.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn stale_or_missing_state_fails_closed() {
    let h = harness(StateStore::without_state(freshness(false)));
    let resp = h
        .send(h.request(1, Some(alice(now_s())), Some("10.1.1.1")))
        .await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&resp, "retry-after"), "10");
    assert_eq!(body_json(resp).await["reason"], "state_stale");

    let store = StateStore::without_state(freshness(false));
    store.publish(
        PolicyState::empty(),
        SystemTime::now() - Duration::from_secs(301),
    );
    let h = harness(store);
    let resp = h
        .send(h.request(1, Some(alice(now_s())), Some("10.1.1.1")))
        .await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(h.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn fail_open_skips_state_checks_but_not_policies() {
    let store = StateStore::without_state(freshness(true));
    // Stale state saying alice's sessions were revoked: with fail_open it is not consulted.
    let doc = r#"{"users": [{"id": "alice", "accountEnabled": false, "licensed": true}]}"#;
    store.publish(
        PolicyState::from_json(doc.as_bytes()).unwrap(),
        SystemTime::now() - Duration::from_secs(3600),
    );
    let h = harness(store);
    let resp = h
        .send(h.request(1, Some(alice(now_s())), Some("10.1.1.1")))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.extensions()
            .get::<Arc<AuthzOutcome>>()
            .unwrap()
            .evaluation
            .fail_open
    );
    assert_eq!(h.metrics.state_fail_open_total.get(), 1);
    // A block policy still blocks.
    let resp = h
        .send(h.request(1, Some(alice(now_s())), Some("192.0.2.1")))
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(h.metrics.state_fail_open_total.get(), 2);
}
