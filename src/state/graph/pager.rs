//! Reading Graph collections: one GET per page, following `@odata.nextLink` to the end,
//! keeping the final `@odata.deltaLink`.
//!
//! Every request is paced under Graph's per-app limits ([`Limiter`]), marked
//! `x-ms-throttle-priority: low` (a background sync yields to interactive callers), bounded
//! in size and time, and retried a bounded number of times: after `Retry-After` on 429 /
//! 503 / 504, else with capped exponential backoff and full jitter. A 401 refreshes the
//! token once. Each page is decoded into the caller's typed records and handed over before
//! the next page is read, so memory holds one raw page at a time.
//!
//! The bearer token is only ever sent to the configured Graph host: a `nextLink` that
//! points elsewhere is an error, not a request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, RETRY_AFTER, USER_AGENT};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::GraphError;
use super::token::TokenProvider;
use crate::ops::metrics::Metrics;
use crate::ops::outbound::{HttpsBodyClient, error_chain};

/// One page's body at most (1000 devices with `$select` are well under 1 MiB; policies
/// with expanded apps and assignments are larger, still far below this).
pub const MAX_PAGE_BYTES: usize = 32 * 1024 * 1024;
/// A collection longer than this many pages is a loop or an attack, not a tenant.
const MAX_PAGES: usize = 100_000;

/// Retry and time bounds (tests shorten them).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts per page, the first included.
    pub attempts: u32,
    /// First backoff step; doubles per attempt.
    pub base: Duration,
    /// Largest backoff step, and the longest `Retry-After` honoured.
    pub cap: Duration,
    /// Response head deadline.
    pub head_timeout: Duration,
    /// Whole-body deadline.
    pub body_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 6,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            head_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: uniform in `0..=min(cap, base * 2^attempt)`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
            .min(self.cap);
        let mut b = [0u8; 8];
        let r = match aws_lc_rs::rand::fill(&mut b) {
            Ok(()) => u64::from_le_bytes(b),
            Err(_) => u64::MAX / 2,
        };
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(if nanos == 0 { 0 } else { r % (nanos + 1) })
    }
}

/// A token bucket: `rate` requests per second on average, bursts up to `burst`.
#[derive(Debug)]
pub struct Limiter {
    rate: f64,
    burst: f64,
    state: tokio::sync::Mutex<(f64, Instant)>,
}

impl Limiter {
    /// `requests` per `per`, with up to a tenth of them (at least 1) in a burst.
    pub fn new(requests: u32, per: Duration) -> Self {
        let rate = f64::from(requests.max(1)) / per.as_secs_f64().max(0.001);
        let burst = (f64::from(requests) / 10.0).max(1.0);
        Self {
            rate,
            burst,
            state: tokio::sync::Mutex::new((burst, Instant::now())),
        }
    }

    /// Wait for a slot.
    pub async fn acquire(&self) {
        let wait = {
            let mut g = self.state.lock().await;
            let now = Instant::now();
            let (tokens, last) = *g;
            let tokens =
                (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.burst);
            // Reserve a slot even when none is free yet: waiters queue up in order.
            *g = (tokens - 1.0, now);
            if tokens >= 1.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64((1.0 - tokens) / self.rate)
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// What ended a collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// No `nextLink` and no `deltaLink`.
    Done,
    /// A delta query's `@odata.deltaLink` (the start of the next round).
    Delta(String),
}

#[derive(Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
struct Page<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    next: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    delta: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Option<ErrorDetail>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: Option<String>,
    message: Option<String>,
}

/// The Graph reader: one HTTPS client, one token, per-family limiters.
pub struct Pager {
    client: HttpsBodyClient,
    token: Arc<TokenProvider>,
    /// `scheme://host[:port]` every request must go to.
    origin: String,
    retry: RetryPolicy,
    metrics: Option<Metrics>,
}

/// Requests sent, for the round's log line and the benchmark.
#[derive(Debug, Default)]
pub struct Counter(std::sync::atomic::AtomicU64);

impl Counter {
    pub fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
    fn inc(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One collection read: its metric label, pacing and request counter.
pub struct Collection<'a> {
    pub label: &'static str,
    pub limiter: &'a Limiter,
    pub requests: &'a Counter,
}

/// Where a page leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// `@odata.nextLink`: the next page of the same collection.
    Next(String),
    End(End),
}

/// One page's body -> its records and where it leads. Both links are checked here, before
/// any record is handed over: a `nextLink` or `deltaLink` off `origin` would carry the
/// token elsewhere (a `deltaLink` next round, after this round had already committed it,
/// failing every later round), and a `nextLink` to the page itself would loop.
pub(crate) fn decode_page<T: DeserializeOwned>(
    label: &str,
    url: &str,
    origin: &str,
    body: &[u8],
) -> Result<(Vec<T>, Step), GraphError> {
    let page: Page<T> = serde_json::from_slice(body)
        .map_err(|e| GraphError::Malformed(format!("{label}: page {url}: {e}")))?;
    let on_origin = |kind: &str, link: &str| {
        if origin_of(link).as_deref() == Some(origin) {
            Ok(())
        } else {
            Err(GraphError::Malformed(format!(
                "{label}: {kind} {link:?} is not on {origin} (the token is never sent elsewhere)"
            )))
        }
    };
    let step = match (page.next, page.delta) {
        (Some(next), _) => {
            if next == url {
                return Err(GraphError::Malformed(format!(
                    "{label}: nextLink points at the page itself"
                )));
            }
            on_origin("nextLink", &next)?;
            Step::Next(next)
        }
        (None, Some(delta)) => {
            on_origin("deltaLink", &delta)?;
            Step::End(End::Delta(delta))
        }
        (None, None) => Step::End(End::Done),
    };
    Ok((page.value, step))
}

/// `scheme://authority` of a URL (lower-cased), or `None` when it has none.
pub(crate) fn origin_of(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    Some(format!(
        "{}://{}",
        uri.scheme_str()?.to_ascii_lowercase(),
        uri.authority()?.as_str().to_ascii_lowercase()
    ))
}

fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(RETRY_AFTER)?.to_str().ok()?.trim();
    // Graph sends seconds; an HTTP date is converted to a wait from now.
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = httpdate(v)?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

fn httpdate(v: &str) -> Option<std::time::SystemTime> {
    let fmt = time::format_description::well_known::Rfc2822;
    let t = time::OffsetDateTime::parse(v.replace("GMT", "+0000").as_str(), &fmt).ok()?;
    let secs = u64::try_from(t.unix_timestamp()).ok()?;
    Some(std::time::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Delta state Graph no longer holds: start over with a full read.
fn delta_expired(status: StatusCode, code: &str) -> bool {
    status == StatusCode::GONE
        || matches!(
            code,
            "syncStateNotFound" | "resyncRequired" | "SyncStateNotFound" | "ResyncRequired"
        )
}

impl Pager {
    pub fn new(
        client: HttpsBodyClient,
        token: Arc<TokenProvider>,
        graph_url: &str,
        retry: RetryPolicy,
        metrics: Option<Metrics>,
    ) -> Result<Self, GraphError> {
        let origin = origin_of(graph_url)
            .ok_or_else(|| GraphError::Request(format!("graph_url {graph_url:?} has no host")))?;
        Ok(Self {
            client,
            token,
            origin,
            retry,
            metrics,
        })
    }

    fn count(&self, collection: &str, status: &str) {
        if let Some(m) = &self.metrics {
            m.graph_requests_total
                .with_label_values(&[collection, status])
                .inc();
        }
    }

    /// Read a collection from `url` to its end, handing each page's records to `each`.
    /// A page that fails (after retries) or does not decode ends the read with an error:
    /// the caller must then discard everything it collected from this read.
    pub async fn read<T, F>(
        &self,
        c: &Collection<'_>,
        url: &str,
        mut each: F,
    ) -> Result<End, GraphError>
    where
        T: DeserializeOwned,
        F: FnMut(Vec<T>) -> Result<(), GraphError>,
    {
        let mut url = url.to_owned();
        for _ in 0..MAX_PAGES {
            let body = self.get(c, &url).await?;
            let (records, step) = decode_page(c.label, &url, &self.origin, &body)?;
            drop(body);
            each(records)?;
            match step {
                Step::Next(next) => url = next,
                Step::End(end) => return Ok(end),
            }
        }
        Err(GraphError::Malformed(format!(
            "{}: more than {MAX_PAGES} pages",
            c.label
        )))
    }

    /// One page, with retries (see the module comment).
    async fn get(&self, c: &Collection<'_>, url: &str) -> Result<Bytes, GraphError> {
        if origin_of(url).as_deref() != Some(self.origin.as_str()) {
            return Err(GraphError::Malformed(format!(
                "{}: link {url:?} is not on {} (the token is never sent elsewhere)",
                c.label, self.origin
            )));
        }
        let mut refreshed = false;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            c.limiter.acquire().await;
            let token = self.token.bearer().await?;
            let req = Request::get(url)
                .header(AUTHORIZATION, format!("Bearer {token}"))
                .header(ACCEPT, "application/json")
                .header("x-ms-throttle-priority", "low")
                .header("Prefer", "odata.maxpagesize=999")
                .header(
                    USER_AGENT,
                    concat!("accessgate/", env!("CARGO_PKG_VERSION")),
                )
                .body(Full::new(Bytes::new()))
                .map_err(|e| GraphError::Request(format!("{}: {url}: {e}", c.label)))?;
            drop(token);
            c.requests.inc();
            let sent =
                tokio::time::timeout(self.retry.head_timeout, self.client.request(req)).await;
            let resp = match sent {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    self.count(c.label, "error");
                    let msg = format!("{}: {url}: {}", c.label, error_chain(&e));
                    if attempt >= self.retry.attempts {
                        return Err(GraphError::Request(msg));
                    }
                    tracing::debug!(error = %msg, attempt, "graph request failed; retrying");
                    tokio::time::sleep(self.retry.backoff(attempt)).await;
                    continue;
                }
                Err(_) => {
                    self.count(c.label, "timeout");
                    if attempt >= self.retry.attempts {
                        return Err(GraphError::Request(format!(
                            "{}: {url}: no response within {}s",
                            c.label,
                            self.retry.head_timeout.as_secs()
                        )));
                    }
                    tokio::time::sleep(self.retry.backoff(attempt)).await;
                    continue;
                }
            };
            let status = resp.status();
            self.count(c.label, status.as_str());
            let wait = retry_after(resp.headers());
            let body = tokio::time::timeout(
                self.retry.body_timeout,
                Limited::new(resp.into_body(), MAX_PAGE_BYTES).collect(),
            )
            .await;
            let body = match body {
                Ok(Ok(b)) => b.to_bytes(),
                Ok(Err(e)) => {
                    let msg = format!("{}: {url}: body: {e}", c.label);
                    let too_large = e
                        .downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some();
                    if too_large || attempt >= self.retry.attempts {
                        return Err(GraphError::Request(msg));
                    }
                    tokio::time::sleep(self.retry.backoff(attempt)).await;
                    continue;
                }
                Err(_) => {
                    let msg = format!(
                        "{}: {url}: body not received within {}s",
                        c.label,
                        self.retry.body_timeout.as_secs()
                    );
                    if attempt >= self.retry.attempts {
                        return Err(GraphError::Request(msg));
                    }
                    tokio::time::sleep(self.retry.backoff(attempt)).await;
                    continue;
                }
            };
            if status == StatusCode::OK {
                return Ok(body);
            }
            let detail: Option<ErrorDetail> = serde_json::from_slice::<ErrorBody>(&body)
                .ok()
                .and_then(|b| b.error);
            let code = detail
                .as_ref()
                .and_then(|d| d.code.clone())
                .unwrap_or_default();
            let message = detail
                .and_then(|d| d.message)
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect::<String>();
            let what = format!("{}: HTTP {} {code} {message}", c.label, status.as_u16());
            match status {
                StatusCode::UNAUTHORIZED if !refreshed => {
                    // The token may have been revoked or rotated early: one fresh try.
                    self.token.invalidate();
                    refreshed = true;
                    attempt -= 1;
                    continue;
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    return Err(GraphError::Refused(format!(
                        "{what} (check the app's Graph permissions and admin consent)"
                    )));
                }
                s if delta_expired(s, &code) => return Err(GraphError::DeltaExpired(what)),
                StatusCode::NOT_FOUND => return Err(GraphError::NotFound(what)),
                StatusCode::BAD_REQUEST => return Err(GraphError::BadRequest(what)),
                StatusCode::TOO_MANY_REQUESTS
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::GATEWAY_TIMEOUT
                | StatusCode::BAD_GATEWAY
                | StatusCode::INTERNAL_SERVER_ERROR => {
                    if attempt >= self.retry.attempts {
                        return Err(GraphError::Request(format!(
                            "{what} (gave up after {attempt} attempts)"
                        )));
                    }
                    let pause = match (status, wait) {
                        (
                            StatusCode::TOO_MANY_REQUESTS
                            | StatusCode::SERVICE_UNAVAILABLE
                            | StatusCode::GATEWAY_TIMEOUT,
                            Some(w),
                        ) => w.min(self.retry.cap),
                        _ => self.retry.backoff(attempt),
                    };
                    tracing::debug!(
                        collection = c.label,
                        status = status.as_u16(),
                        wait_ms = pause.as_millis() as u64,
                        "graph throttled or unavailable; retrying"
                    );
                    tokio::time::sleep(pause).await;
                }
                _ => return Err(GraphError::Request(what)),
            }
        }
    }
}

#[cfg(test)]
#[path = "pager_tests.rs"]
pub(crate) mod tests;
