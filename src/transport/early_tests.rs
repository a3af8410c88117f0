use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::StatusCode;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use super::*;
use crate::respond::{Outcome, Verdict};

/// An inner step that counts its calls and answers 200.
fn counting_inner(
    calls: Arc<AtomicUsize>,
) -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send>
+ Clone
+ Send
+ 'static {
    tower::service_fn(move |_req: Request<Body>| {
        calls.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(Response::new(Body::empty())) }
    })
}

#[tokio::test]
async fn each_transport_refusal_is_answered_here_and_never_reaches_the_inner_step() {
    let cases = [
        (
            Rejection::BadRequest("Content-Length and Transfer-Encoding together are refused"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Rejection::HeaderTooLarge,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "header_too_large",
        ),
        (
            Rejection::UnsupportedTransferCoding,
            StatusCode::NOT_IMPLEMENTED,
            "unsupported_transfer_coding",
        ),
    ];
    for (rejection, status, reason) in cases {
        let calls = Arc::new(AtomicUsize::new(0));
        let svc = EarlyRefusalLayer.layer(counting_inner(calls.clone()));
        let id = DecisionId::next();
        let mut req = Request::new(Body::empty());
        req.extensions_mut().insert(id);
        req.extensions_mut().insert(EarlyRefusal(rejection));
        let Ok(resp) = svc.oneshot(req).await;
        assert_eq!(resp.status(), status, "{reason}");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "{reason}: inner step called"
        );
        assert_eq!(
            resp.extensions().get::<Verdict>(),
            Some(&Verdict {
                outcome: Outcome::BadRequest,
                reason
            })
        );
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains(&format!("\"decision_id\":\"{id}\"")),
            "{reason}: the answer carries the observed decision id: {text}"
        );
    }
}

#[tokio::test]
async fn a_request_without_a_refusal_goes_to_the_inner_step() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = EarlyRefusalLayer.layer(counting_inner(calls.clone()));
    let Ok(resp) = svc.oneshot(Request::new(Body::empty())).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(resp.extensions().get::<Verdict>().is_none());
}
