#![allow(clippy::unwrap_used)]
use crate::support;

use support::*;

#[tokio::test]
async fn h1_and_h2_reach_the_upstream() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    for h2 in [false, true] {
        let c = client(&gw.ca(), h2);
        let (parts, body) = send(&c, get(&gw.url("/hello?x=1"), &[])).await;
        assert_eq!(parts.status, 200, "h2={h2}");
        assert_eq!(parts.headers["x-upstream"], "echo");
        assert!(body.is_empty());
    }
    let reqs = up.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].uri.path(), "/hello");
    assert_eq!(reqs[0].uri.query(), Some("x=1"));
    gw.shutdown().await;
}
