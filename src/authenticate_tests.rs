use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use super::*;
use crate::authn::Principal;
use crate::authn::dev::{DevAlg, DevSigner, DevTokenOptions};
use crate::ops::metrics::Metrics;
use crate::snapshot::Snapshot;

const ISS: &str = "https://login.example/layer/v2.0";

/// A snapshot with a public route (`/public`, auth none) and a protected one (`/`),
/// trusting `signer`'s keys from a jwks_file.
fn snapshot(signer: &DevSigner, dir: &Path) -> Arc<Snapshot> {
    std::fs::create_dir_all(dir).expect("temp dir");
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, serde_json::to_vec(&signer.jwks()).expect("json")).expect("write");
    let text = format!(
        r#"
[listen]
tls_cert = "cert.pem"
tls_key = "key.pem"
[[issuers]]
issuer = "{ISS}"
audiences = ["api://layer"]
jwks_file = "{}"
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
"#,
        jwks.display()
    );
    let cfg = crate::config::parse_str(&text, &dir.join("test.toml")).expect("valid config");
    let snap = Snapshot::build(Arc::new(cfg), &Metrics::new(), None).expect("snapshot");
    assert!(snap.authn.is_ready());
    Arc::new(snap)
}

fn route_match(snap: &Arc<Snapshot>, name: &str) -> RouteMatch {
    let index = snap
        .routes
        .iter()
        .position(|r| r.config.name == name)
        .expect("route exists");
    RouteMatch {
        snapshot: Arc::clone(snap),
        index,
    }
}

/// An inner service that echoes the principal's user and counts calls.
fn echo(
    calls: Arc<AtomicUsize>,
) -> impl Service<Request<String>, Response = Response<Body>, Error = Infallible, Future: Send>
+ Clone
+ Send
+ 'static {
    tower::service_fn(move |req: Request<String>| {
        calls.fetch_add(1, Ordering::SeqCst);
        let user = req
            .extensions()
            .get::<Arc<Principal>>()
            .map_or_else(|| "anonymous".to_owned(), |p| p.user.clone());
        async move { Ok::<_, Infallible>(Response::new(Body::full(user))) }
    })
}

struct Env {
    signer: DevSigner,
    snap: Arc<Snapshot>,
    dir: PathBuf,
}

impl Env {
    fn new(name: &str) -> Self {
        let signer = DevSigner::generate("layer-rsa", "layer-ec").expect("keys");
        let dir =
            std::env::temp_dir().join(format!("accessgate-layer-{name}-{}", std::process::id()));
        let snap = snapshot(&signer, &dir);
        Self { signer, snap, dir }
    }

    fn token(&self) -> String {
        self.signer
            .mint(&DevTokenOptions {
                issuer: ISS.into(),
                audience: "api://layer".into(),
                oid: Some("user-1".into()),
                alg: DevAlg::RS256,
                ..Default::default()
            })
            .expect("mint")
    }

    fn request(&self, route: Option<&str>, auth: &[&str]) -> Request<String> {
        let mut req = Request::new(String::new());
        for a in auth {
            req.headers_mut()
                .append(AUTHORIZATION, HeaderValue::from_str(a).expect("header"));
        }
        if let Some(r) = route {
            req.extensions_mut().insert(route_match(&self.snap, r));
        }
        req
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn body(resp: Response<Body>) -> String {
    let b = resp.into_body().collect().await.expect("body").to_bytes();
    String::from_utf8(b.to_vec()).expect("utf8")
}

#[tokio::test]
async fn valid_token_reaches_inner_with_principal_in_request_and_response() {
    let env = Env::new("ok");
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = AuthenticateLayer::new().layer(echo(calls.clone()));
    let req = env.request(Some("api"), &[&format!("Bearer {}", env.token())]);
    let resp = svc.oneshot(req).await.expect("infallible");
    assert_eq!(resp.status(), StatusCode::OK);
    let p = resp
        .extensions()
        .get::<Arc<Principal>>()
        .cloned()
        .expect("principal on response");
    assert_eq!(p.user, "user-1");
    assert_eq!(body(resp).await, "user-1");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn missing_token_is_401_with_bare_challenge_and_inner_not_called() {
    let env = Env::new("missing");
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = AuthenticateLayer::new().layer(echo(calls.clone()));
    let mut req = env.request(Some("api"), &[]);
    let id = DecisionId::next();
    req.extensions_mut().insert(id);
    let resp = svc.oneshot(req).await.expect("infallible");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.headers()[WWW_AUTHENTICATE],
        "Bearer realm=\"accessgate\""
    );
    assert!(
        body(resp).await.contains(&id.to_string()),
        "decision id from the request"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn bad_token_is_401_invalid_token_and_inner_not_called() {
    let env = Env::new("bad");
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = AuthenticateLayer::new().layer(echo(calls.clone()));
    let mut t = env.token();
    t.push('x'); // breaks the signature encoding
    let resp = svc
        .oneshot(env.request(Some("api"), &[&format!("Bearer {t}")]))
        .await
        .expect("infallible");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let challenge = resp.headers()[WWW_AUTHENTICATE]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(!challenge.contains(&t[..20]), "the token is never echoed");
    assert!(resp.extensions().get::<Arc<Principal>>().is_none());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn two_authorization_headers_are_400() {
    let env = Env::new("two");
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = AuthenticateLayer::new().layer(echo(calls.clone()));
    let h = format!("Bearer {}", env.token());
    let resp = svc
        .oneshot(env.request(Some("api"), &[&h, &h]))
        .await
        .expect("infallible");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(
        resp.headers()[WWW_AUTHENTICATE]
            .to_str()
            .expect("ascii")
            .contains("invalid_request")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn auth_none_route_skips_authentication() {
    let env = Env::new("public");
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = AuthenticateLayer::new().layer(echo(calls.clone()));
    let resp = svc
        .clone()
        .oneshot(env.request(Some("public"), &["Bearer garbage"]))
        .await
        .expect("infallible");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(body(resp).await, "anonymous");
    let resp = svc
        .oneshot(env.request(Some("public"), &[]))
        .await
        .expect("infallible");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn missing_route_match_is_404_not_a_panic() {
    let env = Env::new("noroute");
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = AuthenticateLayer::new().layer(echo(calls.clone()));
    let req = env.request(None, &[&format!("Bearer {}", env.token())]);
    let resp = svc.oneshot(req).await.expect("infallible");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}
