//! The state store: file and HTTP sources, last-good retention, staleness, shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::{Freshness, RefreshOutcome, StateStore};
use crate::config::{StateConfig, StateSource};
use crate::ops::metrics::Metrics;
use crate::policy::PolicyState;

const V1: &str = r#"{"users": [{"id": "u1", "accountEnabled": true, "licensed": true}]}"#;
const V2: &str = r#"{"users": [{"id": "u2", "accountEnabled": true, "licensed": true}]}"#;
const BAD: &str = r#"{"devices": [{"azureADDeviceId": "d", "complianceState": "bogus"}]}"#;

fn cfg(source: StateSource) -> StateConfig {
    StateConfig {
        source,
        // Long: the tests drive refreshes themselves; the background task stays idle.
        refresh: Duration::from_secs(3600),
        max_staleness: Duration::from_secs(300),
        fail_open: false,
        cache_dir: None,
    }
}

fn has_user(store: &StateStore, id: &str) -> bool {
    store.current().is_some_and(|s| s.state.user(id).is_some())
}

fn metric(m: &Metrics, outcome: &str) -> u64 {
    m.state_refresh_total.with_label_values(&[outcome]).get()
}

#[tokio::test]
async fn file_source_keeps_last_good_and_follows_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    std::fs::write(&path, V1).unwrap();
    let m = Metrics::new();
    let store = StateStore::start(&cfg(StateSource::File(path.clone())), &m).await;
    assert!(has_user(&store, "u1"));
    assert!(store.is_fresh(SystemTime::now()));
    assert_eq!(store.readiness(SystemTime::now()), Ok(()));
    assert_eq!(store.refresh().await, RefreshOutcome::Unchanged);

    std::fs::write(&path, format!("{BAD}  ")).unwrap();
    let RefreshOutcome::Error(e) = store.refresh().await else {
        panic!("garbage accepted")
    };
    assert!(e.contains("devices[0] (azureADDeviceId d)"), "{e}");
    assert!(has_user(&store, "u1"), "last good kept");

    std::fs::write(&path, format!("{V2}    ")).unwrap();
    assert_eq!(store.refresh().await, RefreshOutcome::Updated);
    assert!(has_user(&store, "u2") && !has_user(&store, "u1"));

    std::fs::remove_file(&path).unwrap();
    assert!(matches!(store.refresh().await, RefreshOutcome::Error(_)));
    assert!(has_user(&store, "u2"));
    assert_eq!(metric(&m, "updated"), 2);
    assert_eq!(metric(&m, "error"), 2);
    assert_eq!(
        m.reloads_total.with_label_values(&["state", "error"]).get(),
        2
    );
}

#[tokio::test]
async fn missing_file_is_not_ready_then_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let store = StateStore::start(&cfg(StateSource::File(path.clone())), &Metrics::new()).await;
    assert!(store.current().is_none());
    assert!(!store.is_fresh(SystemTime::now()));
    let e = store.readiness(SystemTime::now()).unwrap_err();
    assert!(
        e.starts_with("policy state not loaded: ") && e.contains("state.json"),
        "{e}"
    );
    std::fs::write(&path, V1).unwrap();
    assert_eq!(store.refresh().await, RefreshOutcome::Updated);
    assert!(store.is_fresh(SystemTime::now()));
}

#[test]
fn staleness_and_age() {
    let f = Freshness {
        refresh: Duration::from_secs(10),
        max_staleness: Duration::from_secs(300),
        fail_open: false,
    };
    let store = StateStore::without_state(f);
    assert_eq!(store.age(SystemTime::now()), None);
    assert!(!store.is_fresh(SystemTime::now()));
    let t0 = SystemTime::now();
    store.publish(PolicyState::empty(), t0);
    assert!(store.is_fresh(t0 + Duration::from_secs(300)));
    assert!(!store.is_fresh(t0 + Duration::from_secs(301)));
    let e = store.readiness(t0 + Duration::from_secs(400)).unwrap_err();
    assert!(e.contains("stale: 400s old (max_staleness 300s)"), "{e}");
    assert_eq!(store.retry_after(), 10);
}

#[tokio::test]
async fn dropping_the_store_stops_its_task() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    std::fs::write(&path, V1).unwrap();
    let store = StateStore::start(&cfg(StateSource::File(path)), &Metrics::new()).await;
    let weak = Arc::downgrade(&store);
    drop(store);
    assert!(
        weak.upgrade().is_none(),
        "the refresh task must not keep the store alive"
    );
}

/// What the test server answers.
struct Served {
    status: StatusCode,
    body: &'static str,
    etag: &'static str,
}

struct TestServer {
    addr: SocketAddr,
    served: Arc<Mutex<Served>>,
    hits: Arc<AtomicUsize>,
    if_none_match: Arc<Mutex<Vec<Option<String>>>>,
    task: tokio::task::JoinHandle<()>,
}

async fn server() -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(Mutex::new(Served {
        status: StatusCode::OK,
        body: V1,
        etag: "\"v1\"",
    }));
    let hits = Arc::new(AtomicUsize::new(0));
    let inm = Arc::new(Mutex::new(Vec::new()));
    let (s, h, i) = (served.clone(), hits.clone(), inm.clone());
    let task = tokio::spawn(async move {
        // Connection tasks live in this set: aborting the server drops it, closing them too.
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (s, h, i) = (s.clone(), h.clone(), i.clone());
            conns.spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let (s, h, i) = (s.clone(), h.clone(), i.clone());
                    async move {
                        h.fetch_add(1, Ordering::SeqCst);
                        let tag = req
                            .headers()
                            .get(http::header::IF_NONE_MATCH)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        i.lock().unwrap().push(tag.clone());
                        let g = s.lock().unwrap();
                        let mut resp =
                            if tag.as_deref() == Some(g.etag) && g.status == StatusCode::OK {
                                let mut r = Response::new(Full::new(Bytes::new()));
                                *r.status_mut() = StatusCode::NOT_MODIFIED;
                                r
                            } else {
                                let mut r =
                                    Response::new(Full::new(Bytes::from_static(g.body.as_bytes())));
                                *r.status_mut() = g.status;
                                r
                            };
                        resp.headers_mut()
                            .insert(http::header::ETAG, http::HeaderValue::from_static(g.etag));
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    TestServer {
        addr,
        served,
        hits,
        if_none_match: inm,
        task,
    }
}

#[tokio::test]
async fn http_source_etag_garbage_and_outage() {
    let srv = server().await;
    let url = format!("http://{}/state.json", srv.addr);
    let m = Metrics::new();
    let store = StateStore::start(&cfg(StateSource::Http { url, ca: None }), &m).await;
    assert!(has_user(&store, "u1"));
    assert_eq!(srv.if_none_match.lock().unwrap()[0], None);

    // Same ETag: 304, state kept and confirmed fresh.
    assert_eq!(store.refresh().await, RefreshOutcome::Unchanged);
    assert_eq!(
        srv.if_none_match.lock().unwrap()[1].as_deref(),
        Some("\"v1\"")
    );
    assert!(has_user(&store, "u1"));

    // Garbage under a new ETag: refused, last good kept, and the old ETag is still sent.
    *srv.served.lock().unwrap() = Served {
        status: StatusCode::OK,
        body: "{not json",
        etag: "\"v2\"",
    };
    let RefreshOutcome::Error(e) = store.refresh().await else {
        panic!("garbage accepted")
    };
    assert!(e.contains("/state.json"), "{e}");
    assert!(has_user(&store, "u1"));
    assert_eq!(
        srv.if_none_match.lock().unwrap()[2].as_deref(),
        Some("\"v1\"")
    );

    // Server error: kept.
    *srv.served.lock().unwrap() = Served {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: "",
        etag: "\"v3\"",
    };
    let RefreshOutcome::Error(e) = store.refresh().await else {
        panic!()
    };
    assert!(e.ends_with("HTTP 500"), "{e}");

    // A good new version.
    *srv.served.lock().unwrap() = Served {
        status: StatusCode::OK,
        body: V2,
        etag: "\"v4\"",
    };
    assert_eq!(store.refresh().await, RefreshOutcome::Updated);
    assert!(has_user(&store, "u2"));

    // Server down: last good kept, and the age grows from the last confirmation.
    srv.task.abort();
    let _ = srv.task.await;
    let hits = srv.hits.load(Ordering::SeqCst);
    let before = store.age(SystemTime::now()).unwrap();
    let r = store.refresh().await;
    assert!(
        matches!(r, RefreshOutcome::Error(_)),
        "dead server answered: {r:?} (hits {hits})"
    );
    assert!(has_user(&store, "u2"));
    let later = SystemTime::now() + Duration::from_secs(600);
    assert!(store.age(later).unwrap() >= before + Duration::from_secs(600));
    assert!(!store.is_fresh(later));
    assert_eq!(metric(&m, "updated"), 2);
    assert_eq!(metric(&m, "unchanged"), 1);
}

#[tokio::test]
async fn bad_state_url_is_not_ready_not_a_crash() {
    let store = StateStore::start(
        &cfg(StateSource::Http {
            url: "ftp://example/state".into(),
            ca: None,
        }),
        &Metrics::new(),
    )
    .await;
    let e = store.readiness(SystemTime::now()).unwrap_err();
    assert!(e.contains("scheme"), "{e}");
}
