use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;
use crate::state::graph::test_server::{self, Req, Resp, Server};
use crate::state::graph::token::tests::{cfg, client, secret_file};

#[derive(Debug, serde::Deserialize)]
struct Item {
    id: String,
}

pub(crate) fn fast() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        base: Duration::from_millis(1),
        cap: Duration::from_millis(20),
        head_timeout: Duration::from_secs(5),
        body_timeout: Duration::from_secs(5),
    }
}

/// A server that answers the token endpoint itself and everything else with `h`.
async fn graph(
    h: impl Fn(&Req) -> Resp + Send + Sync + 'static,
) -> (Server, Pager, tempfile::TempDir) {
    let tokens = Arc::new(AtomicUsize::new(0));
    let srv = test_server::start(Arc::new(move |r: &Req| {
        if r.uri.contains("/oauth2/v2.0/token") {
            let i = tokens.fetch_add(1, Ordering::SeqCst);
            Resp::json(
                200,
                format!(r#"{{"token_type":"Bearer","expires_in":3599,"access_token":"tok-{i}"}}"#),
            )
        } else {
            h(r)
        }
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(&srv.url(), secret_file(dir.path(), "s"));
    c.graph_url = srv.url();
    let tp = Arc::new(TokenProvider::new(&c, client()).unwrap());
    let pager = Pager::new(client(), tp, &c.graph_url, fast(), None).unwrap();
    (srv, pager, dir)
}

fn limiter() -> Limiter {
    Limiter::new(100_000, Duration::from_secs(1))
}

async fn read_all(p: &Pager, url: &str) -> Result<(Vec<String>, End, u64), GraphError> {
    let (lim, n) = (limiter(), Counter::default());
    let c = Collection {
        label: "users",
        limiter: &lim,
        requests: &n,
    };
    let mut ids = Vec::new();
    let end = p
        .read(&c, url, |page: Vec<Item>| {
            ids.extend(page.into_iter().map(|i| i.id));
            Ok(())
        })
        .await?;
    Ok((ids, end, n.get()))
}

#[tokio::test]
async fn follows_next_links_to_the_delta_link_with_low_priority() {
    let (srv, p, _d) = graph(|r| {
        let base = format!("http://{}", r.headers.get("host").unwrap().to_str().unwrap());
        match r.uri.as_str() {
            "/v1.0/users/delta?$select=id" => Resp::json(
                200,
                format!(r#"{{"value":[{{"id":"a"}},{{"id":"b"}}],"@odata.nextLink":"{base}/v1.0/users/delta?$skiptoken=2"}}"#),
            ),
            // Empty pages with a nextLink happen; keep going.
            "/v1.0/users/delta?$skiptoken=2" => Resp::json(
                200,
                format!(r#"{{"value":[],"@odata.nextLink":"{base}/v1.0/users/delta?$skiptoken=3","unknown":1}}"#),
            ),
            "/v1.0/users/delta?$skiptoken=3" => Resp::json(
                200,
                format!(r#"{{"value":[{{"id":"c","extra":true}}],"@odata.deltaLink":"{base}/v1.0/users/delta?$deltatoken=X"}}"#),
            ),
            _ => Resp::json(404, "{}"),
        }
    })
    .await;
    let (ids, end, n) = read_all(&p, &format!("{}/v1.0/users/delta?$select=id", srv.url()))
        .await
        .unwrap();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(
        end,
        End::Delta(format!("{}/v1.0/users/delta?$deltatoken=X", srv.url()))
    );
    assert_eq!(n, 3, "one request per page");
    for r in srv.requests().iter().filter(|r| r.uri.starts_with("/v1.0")) {
        assert_eq!(r.headers.get("x-ms-throttle-priority").unwrap(), "low");
        assert_eq!(r.headers.get("authorization").unwrap(), "Bearer tok-0");
    }
}

#[tokio::test]
async fn throttling_is_retried_after_retry_after_then_succeeds() {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let (srv, p, _d) = graph(move |_r| match n2.fetch_add(1, Ordering::SeqCst) {
        0 => Resp::json(429, r#"{"error":{"code":"TooManyRequests"}}"#).header("retry-after", "0"),
        1 => Resp::json(503, "{}"),
        2 => Resp::json(429, "{}"),
        _ => Resp::json(200, r#"{"value":[{"id":"a"}]}"#),
    })
    .await;
    let (ids, end, sent) = read_all(&p, &format!("{}/v1.0/x", srv.url()))
        .await
        .unwrap();
    assert_eq!((ids, end, sent), (vec!["a".to_owned()], End::Done, 4));
}

#[tokio::test]
async fn retries_are_bounded() {
    let (srv, p, _d) = graph(|_r| Resp::json(503, "{}").header("retry-after", "0")).await;
    let e = read_all(&p, &format!("{}/v1.0/x", srv.url()))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, GraphError::Request(m) if m.contains("gave up after 4")),
        "{e:?}"
    );
    assert_eq!(srv.count("/v1.0/x"), 4);
}

#[test]
fn backoff_is_capped_and_jittered() {
    let r = RetryPolicy {
        base: Duration::from_secs(1),
        cap: Duration::from_secs(8),
        ..RetryPolicy::default()
    };
    let mut seen = std::collections::BTreeSet::new();
    for attempt in 0..40 {
        let d = r.backoff(attempt);
        assert!(d <= Duration::from_secs(8), "{attempt}: {d:?}");
        seen.insert(d.as_millis());
    }
    assert!(seen.len() > 5, "no jitter: {seen:?}");
    assert!(r.backoff(0) <= Duration::from_secs(1));
}

#[test]
fn retry_after_seconds_and_dates() {
    let mut h = HeaderMap::new();
    h.insert(RETRY_AFTER, "7".parse().unwrap());
    assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
    h.insert(
        RETRY_AFTER,
        "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
    );
    assert_eq!(
        retry_after(&h),
        Some(Duration::ZERO),
        "past date waits zero"
    );
    h.insert(RETRY_AFTER, "soon".parse().unwrap());
    assert_eq!(retry_after(&h), None);
}

#[tokio::test]
async fn a_401_refreshes_the_token_once() {
    let (srv, p, _d) = graph(|r| {
        if r.headers.get("authorization").unwrap() == "Bearer tok-0" {
            Resp::json(401, r#"{"error":{"code":"InvalidAuthenticationToken"}}"#)
        } else {
            Resp::json(200, r#"{"value":[{"id":"a"}]}"#)
        }
    })
    .await;
    let (ids, _, _) = read_all(&p, &format!("{}/v1.0/x", srv.url()))
        .await
        .unwrap();
    assert_eq!(ids, ["a"]);
    assert_eq!(srv.count("/contoso.example/oauth2"), 2);

    // Refused with the fresh token too: a refusal, not a loop.
    let (srv, p, _d) = graph(|_r| Resp::json(401, "{}")).await;
    let e = read_all(&p, &format!("{}/v1.0/x", srv.url()))
        .await
        .unwrap_err();
    assert!(matches!(e, GraphError::Refused(_)), "{e:?}");
    assert_eq!(srv.count("/v1.0/x"), 2);
    let (srv, p, _d) =
        graph(|_r| Resp::json(403, r#"{"error":{"code":"Authorization_RequestDenied"}}"#)).await;
    let e = read_all(&p, &format!("{}/v1.0/x", srv.url()))
        .await
        .unwrap_err();
    assert!(matches!(e, GraphError::Refused(_)), "{e:?}");
}

#[tokio::test]
async fn expired_delta_tokens_ask_for_a_resync() {
    let (srv, p, _d) = graph(|r| {
        if r.uri.contains("gone") {
            Resp::json(410, "{}").header("location", "http://127.0.0.1:9/v1.0/users/delta")
        } else {
            Resp::json(
                400,
                r#"{"error":{"code":"syncStateNotFound","message":"expired"}}"#,
            )
        }
    })
    .await;
    for path in ["gone", "state"] {
        let e = read_all(&p, &format!("{}/v1.0/users/delta?{path}", srv.url()))
            .await
            .unwrap_err();
        assert!(matches!(e, GraphError::DeltaExpired(_)), "{path}: {e:?}");
    }
}

#[tokio::test]
async fn a_malformed_page_fails_the_collection() {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let (srv, p, _d) = graph(move |r| {
        let base = format!(
            "http://{}",
            r.headers.get("host").unwrap().to_str().unwrap()
        );
        match n2.fetch_add(1, Ordering::SeqCst) {
            0 => Resp::json(
                200,
                format!(r#"{{"value":[{{"id":"a"}}],"@odata.nextLink":"{base}/v1.0/x?p=2"}}"#),
            ),
            _ => Resp::json(200, r#"{"value":[{"id":42}]}"#),
        }
    })
    .await;
    let e = read_all(&p, &format!("{}/v1.0/x", srv.url()))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, GraphError::Malformed(m) if m.contains("users")),
        "{e:?}"
    );
    for body in [
        "<html>",
        r#"{"value":{"id":"a"}}"#,
        r#"{"value":[{"no":"id"}]}"#,
    ] {
        let (srv, p, _d) = graph(move |_r| Resp::json(200, body)).await;
        let e = read_all(&p, &format!("{}/v1.0/x", srv.url()))
            .await
            .unwrap_err();
        assert!(matches!(e, GraphError::Malformed(_)), "{body}: {e:?}");
    }
}

#[tokio::test]
async fn links_to_other_hosts_and_self_loops_are_refused() {
    let (srv, p, _d) = graph(|r| {
        if r.uri == "/v1.0/a" {
            Resp::json(
                200,
                r#"{"value":[],"@odata.nextLink":"https://evil.example/v1.0/b"}"#,
            )
        } else {
            let base = format!(
                "http://{}",
                r.headers.get("host").unwrap().to_str().unwrap()
            );
            Resp::json(
                200,
                format!(r#"{{"value":[],"@odata.nextLink":"{base}/v1.0/loop"}}"#),
            )
        }
    })
    .await;
    let e = read_all(&p, &format!("{}/v1.0/a", srv.url()))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, GraphError::Malformed(m) if m.contains("never sent elsewhere")),
        "{e:?}"
    );
    let e = read_all(&p, &format!("{}/v1.0/loop", srv.url()))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, GraphError::Malformed(m) if m.contains("itself")),
        "{e:?}"
    );
    assert_eq!(srv.count("/v1.0/b"), 0);
}

#[tokio::test]
async fn the_limiter_spaces_requests() {
    // 10 per second with a burst of 1: the 3rd acquire waits for ~2 slots.
    let l = Limiter::new(10, Duration::from_secs(1));
    let t = std::time::Instant::now();
    for _ in 0..3 {
        l.acquire().await;
    }
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn a_delta_link_to_another_host_is_refused_not_kept_for_the_next_round() {
    // Kept, it would carry the token off-host next round or (refused then) fail every
    // later round; refused here, the round fails and the last good deltaLink stays.
    let (srv, p, _d) = graph(|_| {
        Resp::json(
            200,
            r#"{"value":[{"id":"a"}],"@odata.deltaLink":"https://evil.example/v1.0/users/delta?$deltatoken=X"}"#,
        )
    })
    .await;
    let e = read_all(&p, &format!("{}/v1.0/users/delta", srv.url()))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, GraphError::Malformed(m) if m.contains("deltaLink") && m.contains("never sent elsewhere")),
        "{e:?}"
    );
}

#[test]
fn a_page_is_refused_before_any_record_of_it_is_handed_over() {
    let origin = "https://graph.microsoft.com";
    let url = "https://graph.microsoft.com/v1.0/users";
    let page = |links: &str| format!(r#"{{"value":[{{"id":"a"}}]{links}}}"#);
    for links in [
        r#","@odata.nextLink":"https://graph.microsoft.com.evil.example/v1.0/users?2""#,
        r#","@odata.nextLink":"https://x@graph.microsoft.com/v1.0/users?2""#,
        r#","@odata.nextLink":"http://graph.microsoft.com/v1.0/users?2""#,
        r#","@odata.nextLink":"/v1.0/users?2""#,
        r#","@odata.deltaLink":"https://evil.example/v1.0/users/delta""#,
        r#","@odata.nextLink":"https://graph.microsoft.com/v1.0/users""#,
    ] {
        let r = decode_page::<Item>("users", url, origin, page(links).as_bytes());
        assert!(matches!(r, Err(GraphError::Malformed(_))), "{links}: {r:?}");
    }
    let (items, step) = decode_page::<Item>(
        "users",
        url,
        origin,
        page(r#","@odata.nextLink":"https://GRAPH.microsoft.com/v1.0/users?$skiptoken=2""#)
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        step,
        Step::Next("https://GRAPH.microsoft.com/v1.0/users?$skiptoken=2".into())
    );
}
