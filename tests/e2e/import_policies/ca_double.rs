//! A Microsoft Graph double for `import-policies --from-graph`: the token endpoint and the
//! two Conditional Access collections, on 127.0.0.1:0 over plain HTTP (allowed for
//! loopback hosts). The policies come in two pages; the second answers 429 without
//! `Retry-After` once, as Graph's Conditional Access endpoints do.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const TOKEN: &str = "double-graph-token";

/// How the double misbehaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// The second policies page answers 429 (no Retry-After) this many times first.
    pub throttle_page2: u32,
    /// The policies collection answers 403 (missing Policy.Read.All).
    pub forbid: bool,
}

/// One request as the double saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path_and_query: String,
    pub authorization: Option<String>,
    pub body: String,
}

struct Shared {
    policies: Vec<Value>,
    locations: Value,
    faults: Mutex<Faults>,
    seen: Mutex<Vec<Seen>>,
    base: Mutex<String>,
}

pub struct GraphDouble {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    _stop: oneshot::Sender<()>,
}

impl GraphDouble {
    /// Serve `policies` (split in two pages) and `locations` (one page, as read from a file).
    pub async fn start(policies: Vec<Value>, locations: Value, faults: Faults) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            policies,
            locations,
            faults: Mutex::new(faults),
            seen: Mutex::new(Vec::new()),
            base: Mutex::new(format!("http://{addr}")),
        });
        let (stop, mut stopped) = oneshot::channel::<()>();
        let s = shared.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
                    _ = &mut stopped => return,
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(s.clone(), req));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self {
            addr,
            shared,
            _stop: stop,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }
}

fn json_response(status: StatusCode, v: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())))
        .unwrap()
}

async fn handle(
    s: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    s.seen.lock().unwrap().push(Seen {
        method: method.clone(),
        path_and_query: pq.clone(),
        authorization: authorization.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    if method == "POST" && pq.ends_with("/oauth2/v2.0/token") {
        return Ok(json_response(
            StatusCode::OK,
            json!({"token_type": "Bearer", "expires_in": 3599, "access_token": TOKEN}),
        ));
    }
    if authorization.as_deref() != Some(&format!("Bearer {TOKEN}")) {
        return Ok(json_response(
            StatusCode::UNAUTHORIZED,
            json!({"error": {"code": "InvalidAuthenticationToken", "message": "no token"}}),
        ));
    }
    let base = s.base.lock().unwrap().clone();
    let half = s.policies.len() / 2;
    let ctx = "https://graph.microsoft.com/v1.0/$metadata#identity/conditionalAccess/policies";
    let r = match pq.as_str() {
        "/v1.0/identity/conditionalAccess/policies" => {
            if s.faults.lock().unwrap().forbid {
                json_response(
                    StatusCode::FORBIDDEN,
                    json!({"error": {"code": "AccessDenied", "message": "Insufficient privileges"}}),
                )
            } else {
                json_response(
                    StatusCode::OK,
                    json!({"@odata.context": ctx,
                    "@odata.nextLink": format!("{base}/v1.0/identity/conditionalAccess/policies?$skiptoken=page2"),
                    "value": s.policies[..half]}),
                )
            }
        }
        "/v1.0/identity/conditionalAccess/policies?$skiptoken=page2" => {
            let mut f = s.faults.lock().unwrap();
            if f.throttle_page2 > 0 {
                f.throttle_page2 -= 1;
                json_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    json!({"error": {"code": "TooManyRequests", "message": "Too many requests"}}),
                )
            } else {
                json_response(
                    StatusCode::OK,
                    json!({"@odata.context": ctx, "value": s.policies[half..]}),
                )
            }
        }
        "/v1.0/identity/conditionalAccess/namedLocations" => {
            json_response(StatusCode::OK, s.locations.clone())
        }
        _ => json_response(
            StatusCode::NOT_FOUND,
            json!({"error": {"code": "ResourceNotFound", "message": pq}}),
        ),
    };
    Ok(r)
}
