//! The HTTP side: routing, the query options Graph honours, faults, counters.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use super::faults::{Collection, Counters, Fault, FaultAction, Wait};
use super::model::{Member, Tenant};
use super::pages;
use super::query::{cursor_for, graph_error, query_params, route};
use super::token::{self, CertCredential, TokenRequest};

/// How the double behaves; `DoubleConfig::default()` suits most tests.
#[derive(Clone, Debug)]
pub struct DoubleConfig {
    pub tenant_id: String,
    pub client_id: String,
    /// The secret the app registration holds (`None`: secrets are refused).
    pub client_secret: Option<String>,
    /// The certificate the app registration holds (`None`: assertions are refused).
    pub certificate: Option<CertCredential>,
    /// `expires_in` of issued tokens; a token is refused (401) past it.
    pub token_lifetime: Duration,
    /// Intune collections: items per page (Graph: 1000), also the `$top` maximum.
    pub intune_page_size: usize,
    /// users, users/delta, groups/delta: default items per page (`$top` /
    /// `Prefer: odata.maxpagesize` may change it, up to 999).
    pub directory_page_size: usize,
    /// members, transitiveMembers, transitiveMemberOf: default page (`$top` up to 999).
    pub members_page_size: usize,
}

impl Default for DoubleConfig {
    fn default() -> Self {
        DoubleConfig {
            tenant_id: "8f3c2a1e-5b7d-4e9a-9c1f-2d3e4f5a6b7c".into(),
            client_id: "6a1f0e2d-3c4b-4a59-8e7f-9d0c1b2a3e4f".into(),
            client_secret: Some("double-secret~value".into()),
            certificate: None,
            token_lifetime: token::DEFAULT_LIFETIME,
            intune_page_size: 1000,
            directory_page_size: 100,
            members_page_size: 100,
        }
    }
}

/// One request as the double saw it.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    pub method: Method,
    /// Path and query, as sent.
    pub uri: String,
    pub collection: Collection,
    pub status: u16,
    pub headers: HeaderMap,
}

const LOG_CAP: usize = 10_000;

pub struct State {
    pub tenant: Tenant,
    pub config: DoubleConfig,
    pub faults: Vec<Fault>,
    pub counters: Counters,
    pub tokens: HashMap<String, std::time::Instant>,
    pub token_requests: Vec<TokenRequest>,
    pub seen_jti: HashSet<String>,
    pub log: VecDeque<RequestRecord>,
    pub refuse_credentials: bool,
    pub delta_epoch: u64,
    pub next_token: u64,
    pub nonce: u64,
    pub closures: HashMap<String, (u64, Arc<Vec<Member>>)>,
}

pub struct Shared {
    pub base_url: String,
    pub state: Mutex<State>,
}

impl Shared {
    /// A panicking test thread must not wedge the double for the others.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Takes the first live fault for `(c, page)`, spending one of its uses.
fn take_fault(st: &mut State, c: Collection, page: u32) -> Option<FaultAction> {
    let f = st
        .faults
        .iter_mut()
        .find(|f| f.times > 0 && f.collection == c && f.page.is_none_or(|p| p == page))?;
    f.times -= 1;
    let action = f.action.clone();
    st.faults.retain(|f| f.times > 0);
    Some(action)
}

struct Answer {
    status: u16,
    body: Vec<u8>,
    retry_after: Option<u64>,
    location: Option<String>,
}

impl Answer {
    fn of((status, body): (u16, String)) -> Answer {
        Answer {
            status,
            body: body.into_bytes(),
            retry_after: None,
            location: None,
        }
    }
}

/// Not a status: the answer to a request held at a [`super::faults::Gate`].
const HELD: u16 = 0;

pub async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, 1 << 20).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let path = parts.uri.path().to_string();
    let header = |k: &str| {
        parts
            .headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let authorization = header("authorization");
    let token_tenant = path
        .strip_prefix('/')
        .and_then(|p| p.strip_suffix("/oauth2/v2.0/token"))
        .filter(|t| !t.contains('/'))
        .map(str::to_string);
    let routed = route(&path);
    let collection = if token_tenant.is_some() {
        Collection::Token
    } else {
        routed.as_ref().map(|r| r.1).unwrap_or(Collection::Unknown)
    };

    // Decide under the lock; sleep (Delay faults) outside it. A held request is decided
    // again once released (its fault is spent by then), and counted only then.
    let mut delay = None;
    let answer = loop {
        let decided = {
            let mut st = shared.lock();
            let ans = decide(
                &mut st,
                &shared.base_url,
                &parts,
                routed.clone(),
                token_tenant.clone(),
                authorization.as_deref(),
                &body,
                &mut delay,
            );
            if ans.status == HELD {
                None
            } else {
                let c = st
                    .counters
                    .requests
                    .entry((collection, ans.status))
                    .or_insert(0);
                *c += 1;
                if st.log.len() >= LOG_CAP {
                    st.log.pop_front();
                }
                let rec = RequestRecord {
                    method: parts.method.clone(),
                    uri: parts
                        .uri
                        .path_and_query()
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                    collection,
                    status: ans.status,
                    headers: parts.headers.clone(),
                };
                st.log.push_back(rec);
                Some(ans)
            }
        };
        match decided {
            Some(ans) => break ans,
            None => {
                if let Some(d) = delay.take() {
                    d.run().await;
                }
            }
        }
    };
    if let Some(d) = delay {
        d.run().await;
    }
    let mut resp = Response::builder()
        .status(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
        .header("request-id", "00000000-0000-0000-0000-000000000005");
    if let Some(s) = answer.retry_after {
        resp = resp.header("retry-after", s.to_string());
    }
    if let Some(l) = answer.location {
        resp = resp.header("location", l);
    }
    Ok(resp
        .body(Full::new(Bytes::from(answer.body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}

#[allow(clippy::too_many_arguments)]
fn decide(
    st: &mut State,
    base: &str,
    parts: &http::request::Parts,
    routed: Option<(bool, Collection, Option<String>, Option<String>)>,
    token_tenant: Option<String>,
    authorization: Option<&str>,
    body: &[u8],
    delay: &mut Option<Wait>,
) -> Answer {
    if let Some(tenant) = token_tenant {
        if parts.method != Method::POST {
            return Answer::of(token::aad_error(
                405,
                "invalid_request",
                900561,
                "The endpoint only accepts POST requests.",
            ));
        }
        match take_fault(st, Collection::Token, 0) {
            Some(FaultAction::Status { code, retry_after }) => {
                let mut a = Answer::of(token::aad_error(
                    code,
                    "temporarily_unavailable",
                    90033,
                    "A transient error has occurred. Please try again.",
                ));
                a.retry_after = retry_after;
                return a;
            }
            Some(FaultAction::Body(b)) => return Answer::of((200, b)),
            Some(FaultAction::Delay(d)) => *delay = Some(Wait::Sleep(d)),
            Some(FaultAction::Hold(g)) => *delay = Some(Wait::Gate(g)),
            None => {}
        }
        return Answer::of(token::token(st, &tenant, authorization, body, base));
    }
    let Some((beta, c, resource, cast)) = routed else {
        return Answer::of(graph_error(
            404,
            "UnknownError",
            &format!("Resource not found for the segment '{}'.", parts.uri.path()),
        ));
    };
    if parts.method != Method::GET {
        return Answer::of(graph_error(
            405,
            "Request_BadRequest",
            "The double serves GET only.",
        ));
    }
    if let Err(body) = token::check_bearer(st, authorization) {
        return Answer::of((401, body));
    }
    if matches!(
        c,
        Collection::GroupMembers | Collection::GroupTransitiveMembers
    ) {
        let g = resource.clone().unwrap_or_default();
        if st.tenant.group(&g).is_none() {
            return Answer::of(graph_error(
                404,
                "Request_ResourceNotFound",
                &format!(
                    "Resource '{g}' does not exist or one of its queried reference-property objects are not present."
                ),
            ));
        }
    }
    let q = query_params(parts.uri.query());
    let cur = match cursor_for(st, c, beta, resource, &q, &parts.headers) {
        Ok(cur) => cur,
        Err(e) => {
            let mut a = Answer::of(e);
            if a.status == 410 {
                a.location = Some(format!(
                    "{base}/{}/{}",
                    if beta { "beta" } else { "v1.0" },
                    c.name()
                ));
            }
            return a;
        }
    };
    match take_fault(st, c, cur.page) {
        Some(FaultAction::Status { code, retry_after }) => {
            let (err, msg) = match code {
                429 => ("TooManyRequests", "Too many requests."),
                503 => ("ServiceUnavailable", "Service is unavailable."),
                410 => ("syncStateNotFound", "The delta token has expired."),
                _ => ("InternalServerError", "An internal server error occurred."),
            };
            let mut a = Answer::of(graph_error(code, err, msg));
            a.retry_after = retry_after;
            return a;
        }
        Some(FaultAction::Body(b)) => return Answer::of((200, b)),
        Some(FaultAction::Delay(d)) => *delay = Some(Wait::Sleep(d)),
        Some(FaultAction::Hold(g)) => {
            // Rendered only once released: the page shows the tenant as it is then.
            *delay = Some(Wait::Gate(g));
            return Answer::of((HELD, String::new()));
        }
        None => {}
    }
    if cur.offset == usize::MAX {
        // `$deltatoken=latest`: no data, only a deltaLink from now on.
        let mut link = cur.clone();
        link.offset = 0;
        link.delta_link = true;
        let body = format!(
            "{{\"@odata.context\":\"{base}/v1.0/$metadata#{ctx}\",\"@odata.deltaLink\":\"{base}/v1.0/{ctx}/delta?$deltatoken={}\",\"value\":[]}}",
            link.encode(),
            ctx = if c == Collection::UsersDelta {
                "users"
            } else {
                "groups"
            },
        );
        st.counters
            .pages
            .entry(c)
            .and_modify(|n| *n += 1)
            .or_insert(1);
        return Answer {
            status: 200,
            body: body.into_bytes(),
            retry_after: None,
            location: None,
        };
    }
    let State {
        tenant, closures, ..
    } = st;
    let page = pages::render(tenant, c, &cur, base, cast.as_deref(), closures);
    *st.counters.pages.entry(c).or_insert(0) += 1;
    *st.counters.items.entry(c).or_insert(0) += page.items as u64;
    Answer {
        status: 200,
        body: page.body,
        retry_after: None,
        location: None,
    }
}
