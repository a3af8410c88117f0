//! The HTTP/1.1 guard's refusals (400 for Content-Length with Transfer-Encoding, 431 for an
//! oversized head, 501 for a transfer coding other than chunked) go through the observed
//! pipeline like every other answer: each has a decision id, is counted in
//! `accessgate_requests_total` and has its decision log line; none reaches the upstream.
//! (What hyper answers by itself — a head beyond its read buffer, an unparsable head — never
//! becomes a request and is not counted; docs/operations.md says so.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// The lines of the decision log at `path` that carry `id`, waiting (bounded) for the
/// writer thread to flush.
async fn log_line_with(path: &std::path::Path, id: &str) -> Value {
    for _ in 0..100 {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Some(line) = text.lines().find(|l| l.contains(id))
        {
            return serde_json::from_str(line).expect("a JSON line");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no decision log line for {id} in {}", path.display());
}

#[tokio::test]
async fn guard_refusals_are_counted_and_logged() {
    let up = Upstream::start().await;
    // Below hyper's 8 KiB read-buffer floor the guard, not hyper, enforces the limit.
    let config = PLAIN_CONFIG
        .replace(
            "decisions = \"off\"",
            "decisions = \"{certs}/decisions.jsonl\"",
        )
        .replace(
            "idle_timeout = \"5s\"",
            "idle_timeout = \"5s\"\nmax_header_bytes = 4096",
        );
    let mut gw = TestGateway::start_logged(&config, &up.url()).await;
    let log = gw.certs.path("decisions.jsonl");
    let big = "a".repeat(6 * 1024);
    let cases: [(String, u16, &str); 3] = [
        (
            "POST /cl-te HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\
             Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                .to_owned(),
            400,
            "bad_request",
        ),
        (
            format!("GET /big HTTP/1.1\r\nHost: localhost\r\nx-big: {big}\r\n\r\n"),
            431,
            "header_too_large",
        ),
        (
            "POST /gz HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
             5\r\nhello\r\n0\r\n\r\n"
                .to_owned(),
            501,
            "unsupported_transfer_coding",
        ),
    ];
    for (raw, status, reason) in &cases {
        let resp = raw_exchange(gw.addr, &gw.ca(), raw.as_bytes())
            .await
            .unwrap_or_else(|| panic!("{reason}: no answer"));
        assert_eq!(resp.status, *status, "{}", resp.head);
        assert_eq!(resp.header("connection"), Some("close"));
        let problem: Value = serde_json::from_slice(&resp.body)
            .unwrap_or_else(|e| panic!("{reason}: {e}: {}\n{:?}", resp.head, resp.body));
        assert_eq!(problem["reason"], *reason);
        let id = problem["decision_id"].as_str().expect("a decision id");
        let line = log_line_with(&log, id).await;
        assert_eq!(line["status"], *status, "{line}");
        assert_eq!(line["decision"], "bad_request", "{line}");
        assert_eq!(line["reason"], *reason, "{line}");
        assert!(
            line.get("route").is_none(),
            "refused before routing: {line}"
        );
    }
    let (_, text) = admin_get(gw.admin.unwrap(), "/metrics").await;
    assert_eq!(
        metric_in(
            &text,
            "accessgate_requests_total",
            &[("route", ""), ("decision", "bad_request")]
        ),
        3.0,
        "{text}"
    );
    assert_eq!(up.count(), 0, "a refused request reached the upstream");
    gw.shutdown().await;
}
