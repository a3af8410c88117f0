//! The observe layer alone, with a stub inner service: it needs only the decision log and
//! the metrics, and reads back what the inner steps put into the response.

use std::path::Path;
use std::sync::Mutex;

use arc_swap::ArcSwap;
use http::StatusCode;
use tower::ServiceExt as _;

use super::*;
use crate::ops::metrics::Metrics;
use crate::respond::{Rejection, reject};
use crate::snapshot::Snapshot;

const CONFIG: &str = r#"
[listen]
address = "127.0.0.1:0"
tls_cert = "cert.pem"
tls_key = "key.pem"
[state]
source = "file"
path = "state.json"
[[routes]]
name = "api"
path_prefix = "/"
upstream = "http://127.0.0.1:9"
auth = "none"
"#;

fn requests(metrics: &Metrics, route: &str, decision: &str) -> u64 {
    metrics
        .requests_total
        .with_label_values(&[route, decision])
        .get()
}

/// An inner step that records the decision id it was given and answers with `answer`.
fn inner(
    answer: fn(DecisionId) -> Response<Body>,
    seen: Arc<Mutex<Option<DecisionId>>>,
) -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send + 'static>
+ Clone
+ Send
+ 'static {
    tower::service_fn(move |req: Request<Body>| {
        let id = req.extensions().get::<DecisionId>().copied();
        *seen.lock().expect("lock") = id;
        let resp = id.map_or_else(|| Response::new(Body::empty()), answer);
        async move { Ok::<_, Infallible>(resp) }
    })
}

#[tokio::test]
async fn each_request_gets_a_decision_id_and_refusals_are_counted_by_verdict() {
    let metrics = Metrics::new();
    let log = Arc::new(DecisionLog::off(&metrics));
    let seen = Arc::default();
    let svc = ObserveLayer::new(log, &metrics).layer(inner(
        |id| reject(&Rejection::MissingToken, id),
        Arc::clone(&seen),
    ));
    let before = requests(&metrics, "", "unauthenticated");
    let Ok(resp) = svc.clone().oneshot(Request::new(Body::empty())).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let first = seen
        .lock()
        .expect("lock")
        .expect("the inner step got a decision id");
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .expect("body")
        .to_bytes();
    assert!(
        String::from_utf8_lossy(&body).contains(&first.to_string()),
        "the refusal carries the id observe gave the request"
    );
    let Ok(_) = svc.oneshot(Request::new(Body::empty())).await;
    let second = seen.lock().expect("lock").expect("id");
    assert_ne!(first, second, "ids are per request");
    // No route matched: counted under route "".
    assert_eq!(requests(&metrics, "", "unauthenticated"), before + 2);
}

#[tokio::test]
async fn an_answer_without_a_verdict_is_an_allow_on_the_matched_route() {
    let metrics = Metrics::new();
    let config = crate::config::parse_str(CONFIG, Path::new("/tmp/observe-test.toml"))
        .expect("valid config");
    let snap = Arc::new(Snapshot::build(Arc::new(config), &metrics, None).expect("snapshot"));
    let shared = Arc::new(ArcSwap::new(snap.clone()));
    let log = Arc::new(DecisionLog::off(&metrics));
    // The inner step answers like `forward` does after `route` matched: no Verdict, the
    // RouteMatch in the response.
    let rm = RouteMatch {
        snapshot: shared.load_full(),
        index: 0,
    };
    let svc = ObserveLayer::new(log, &metrics).layer(tower::service_fn(move |_req: Request<Body>| {
        let mut resp = Response::new(Body::empty());
        resp.extensions_mut().insert(rm.clone());
        async move { Ok::<_, Infallible>(resp) }
    }));
    let Ok(resp) = svc.oneshot(Request::new(Body::empty())).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(requests(&metrics, "api", "allow"), 1);
    assert_eq!(
        requests(&metrics, "", "allow"),
        0,
        "not counted as unrouted"
    );
    assert_eq!(snap.routes[0].metrics.duration.get_sample_count(), 1);
}
