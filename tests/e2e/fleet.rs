//! A fleet against a real redis-server (started by each test on a free loopback port):
//! `accessgate sync` publishing, gateways with `[state] source = "redis"` following, and
//! every failure docs/fleet.md describes. Needs `redis-server`: fails in CI without it,
//! skips loudly elsewhere (fleet/redis_server.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cache;
pub(crate) mod redis_server;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::support::*;
use accessgate::config::RedisEndpoint;
use accessgate::ops::metrics::Metrics;
use accessgate::state::publish::{PublishError, RedisPublisher};
use accessgate::state::{Freshness, StateStore};
use redis_server::{Partition, RedisServer};
use serde_json::{Value, json};

pub(crate) const WAIT: Duration = Duration::from_secs(30);

pub(crate) fn state(device: &str, enabled: bool) -> Value {
    json!({
        "users": [{"id": "u-1", "accountEnabled": enabled, "licensed": true, "groups": []}],
        "devices": [{"azureADDeviceId": "dev-1", "complianceState": device,
                     "operatingSystem": "iOS", "osVersion": "17.4",
                     "noncompliantSince": if device == "compliant" { Value::Null } else { json!("2026-01-01T00:00:00Z") },
                     "remediation": "failed"}],
        "appProtectionPolicies": [], "appRegistrations": []
    })
}

pub(crate) fn write_atomically(path: &std::path::Path, v: &Value) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(v).unwrap()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// An `accessgate sync` in this process: file source -> Redis.
struct Sync {
    task: Option<tokio::task::JoinHandle<Result<(), String>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Sync {
    fn start(dir: &std::path::Path, url: &str, prefix: &str) -> Self {
        let text = format!(
            "[state]\nsource = \"file\"\npath = \"{}/state.json\"\nrefresh = \"200ms\"\nmax_staleness = \"1m\"\n\n[publish]\nto = \"redis\"\nurl = \"{url}\"\nkey_prefix = \"{prefix}\"\n",
            dir.display()
        );
        let config = accessgate::config::parse_str(&text, &dir.join("sync.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            accessgate::cli::sync::run(&config, async {
                let _ = rx.await;
            })
            .await
        });
        Self {
            task: Some(task),
            stop: Some(tx),
        }
    }

    /// Die without a word (no lease release): as a killed process would.
    fn kill(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl Drop for Sync {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.kill();
    }
}

pub(crate) fn endpoint(url: &str, prefix: &str) -> RedisEndpoint {
    RedisEndpoint {
        url: url.into(),
        key_prefix: prefix.into(),
        password_file: None,
    }
}

fn freshness() -> Freshness {
    Freshness {
        refresh: Duration::from_millis(400),
        max_staleness: Duration::from_secs(60),
        fail_open: false,
    }
}

pub(crate) async fn follower(url: &str, prefix: &str, m: Option<Metrics>) -> Arc<StateStore> {
    StateStore::follow_redis(
        endpoint(url, prefix),
        freshness(),
        m,
        Duration::from_secs(5),
    )
    .await
}

fn device_compliant(store: &StateStore) -> Option<bool> {
    let snap = store.current()?;
    snap.state
        .device("dev-1")
        .map(|d| d.compliance.is_compliant())
}

/// A gateway whose `[state]` follows Redis, with one `compliant_device` route.
pub(crate) struct FleetGateway {
    gw: TestGateway,
    up: Upstream,
    signer: accessgate::authn::dev::DevSigner,
    client: TestClient,
}

impl FleetGateway {
    pub(crate) async fn start(url: &str, prefix: &str) -> Self {
        let spec = CaSpec::new(
            "[[policies]]\nname = \"managed\"\nresources = [\"corp-api\"]\ninclude_users = [\"all\"]\ngrant = { controls = [\"compliant_device\"] }\n",
            json!({}),
        );
        let text = ca_config(&spec).replace(
            "source = \"file\"\npath = \"{certs}/state.json\"",
            &format!(
                "source = \"redis\"\nurl = \"{url}\"\nkey_prefix = \"{prefix}\"\nrefresh = \"400ms\"\nmax_staleness = \"1m\""
            ),
        );
        assert!(text.contains("source = \"redis\""));
        let up = Upstream::start().await;
        let certs = Certs::new();
        let signer = accessgate::authn::dev::DevSigner::load(certs.dir.path()).unwrap();
        let gw = TestGateway::start_with(certs, &text, &up.url()).await;
        let client = client(&gw.ca(), false);
        Self {
            gw,
            up,
            signer,
            client,
        }
    }

    fn token(&self) -> String {
        self.token_for("u-1", "dev-1")
    }

    /// A token for user `oid` on device `device`.
    pub(crate) fn token_for(&self, oid: &str, device: &str) -> String {
        self.signer
            .mint(&accessgate::authn::dev::DevTokenOptions {
                oid: Some(oid.into()),
                deviceid: Some(device.into()),
                ..Default::default()
            })
            .unwrap()
    }

    pub(crate) async fn status(&self, token: &str) -> u16 {
        let auth = format!("Bearer {token}");
        let (parts, _) = send(
            &self.client,
            get(&self.gw.url("/x"), &[("authorization", &auth)]),
        )
        .await;
        parts.status.as_u16()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_follow_a_change_through_redis() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    write_atomically(&file, &state("compliant", true));
    let _sync = Sync::start(dir.path(), &redis.url(), "t1");
    let a = FleetGateway::start(&redis.url(), "t1").await;
    let b = FleetGateway::start(&redis.url(), "t1").await;
    for g in [&a, &b] {
        let token = g.token();
        let mut last = 0;
        for _ in 0..150 {
            last = g.status(&token).await;
            if last == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            last, 200,
            "a gateway following Redis never allowed the compliant device"
        );
    }
    let before = a.up.count() + b.up.count();
    write_atomically(&file, &state("noncompliant", true));
    let t = Instant::now();
    for g in [&a, &b] {
        let token = g.token();
        let mut refused = None;
        for _ in 0..300 {
            let s = g.status(&token).await;
            if s != 200 {
                refused = Some(s);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(refused, Some(403), "the change never reached a gateway");
    }
    eprintln!("change reached both gateways after {:?}", t.elapsed());
    let allowed_after = a.up.count() + b.up.count() - before;
    // Allowed requests after the change are only those sent before it arrived.
    assert!(allowed_after < 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_that_lost_the_lease_cannot_publish() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let ep = endpoint(&redis.url(), "t2");
    let mut conn = redis.conn().await;
    let mut a = RedisPublisher::new(&ep, "token-a".into()).unwrap();
    let doc = serde_json::to_vec(&state("compliant", true)).unwrap();
    // Without the lease nothing is written.
    assert_eq!(
        a.publish_snapshot(&doc, true, 1).await,
        Err(PublishError::NotLeader)
    );
    let _: () = redis::cmd("SET")
        .arg("t2:lock")
        .arg("token-a")
        .arg("PX")
        .arg(10_000)
        .query_async(&mut conn)
        .await
        .unwrap();
    a.publish_snapshot(&doc, true, 1).await.unwrap();
    let batch = br#"{"devices":[{"azureADDeviceId":"dev-1","complianceState":"noncompliant"}]}"#;
    a.publish_batch(batch, 2).await.unwrap();
    let len = |c: &mut redis::aio::MultiplexedConnection| {
        let mut c = c.clone();
        async move {
            redis::cmd("XLEN")
                .arg("t2:changes")
                .query_async::<u64>(&mut c)
                .await
                .unwrap()
        }
    };
    let n = len(&mut conn).await;
    // A paused holder: its lease expired and another took it.
    let _: () = redis::cmd("SET")
        .arg("t2:lock")
        .arg("token-b")
        .arg("PX")
        .arg(10_000)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        a.publish_batch(batch, 3).await,
        Err(PublishError::NotLeader)
    );
    assert_eq!(
        a.publish_snapshot(&doc, false, 3).await,
        Err(PublishError::NotLeader)
    );
    assert_eq!(a.confirm(3).await, Err(PublishError::NotLeader));
    assert_eq!(len(&mut conn).await, n, "nothing may reach the stream");
    let confirmed: i64 = redis::cmd("HGET")
        .arg("t2:head")
        .arg("confirmed_ms")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(confirmed, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_between_two_sync_processes() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    write_atomically(&file, &state("compliant", true));
    let mut first = Sync::start(dir.path(), &redis.url(), "t3");
    let store = follower(&redis.url(), "t3", None).await;
    assert!(
        eventually(WAIT, || device_compliant(&store) == Some(true)).await,
        "the first sync never published"
    );
    let _second = Sync::start(dir.path(), &redis.url(), "t3");
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.kill();
    let killed = Instant::now();
    write_atomically(&file, &state("noncompliant", true));
    assert!(
        eventually(WAIT, || device_compliant(&store) == Some(false)).await,
        "the standby never took over"
    );
    eprintln!(
        "failover: the change published by the standby reached the gateway {:?} after the holder died",
        killed.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_and_started_under_load_fails_no_request_while_state_is_fresh() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let port = redis.port;
    let url = redis.url();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    write_atomically(&file, &state("compliant", true));
    let _sync = Sync::start(dir.path(), &url, "t4");
    let g = FleetGateway::start(&url, "t4").await;
    let token = g.token();
    let mut ready = false;
    for _ in 0..150 {
        if g.status(&token).await == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready);
    let mut sent = 0;
    let mut restarted = false;
    let start = Instant::now();
    // Requests go on while Redis is killed, stays away ~2 s and comes back empty.
    while start.elapsed() < Duration::from_secs(5) {
        if !restarted && start.elapsed() > Duration::from_millis(800) {
            redis.stop();
            tokio::time::sleep(Duration::from_secs(2)).await;
            redis = RedisServer::start_on(port).await;
            restarted = true;
        }
        assert_eq!(
            g.status(&token).await,
            200,
            "request {sent} failed while state was fresh"
        );
        sent += 1;
    }
    assert!(restarted && sent > 10);
    // The fleet catches up by itself: a change made now reaches the gateway.
    write_atomically(&file, &state("noncompliant", true));
    let mut refused = false;
    for _ in 0..300 {
        if g.status(&token).await == 403 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "the gateway never caught up after Redis came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_started_while_redis_is_down_is_not_ready_then_catches_up() {
    if !redis_server::redis_available() {
        return;
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("redis://127.0.0.1:{port}/0");
    let g = FleetGateway::start(&url, "t5").await;
    let token = g.token();
    assert_eq!(g.status(&token).await, 503, "never an allow on empty state");
    let (ready, _) = admin_get(g.gw.admin.unwrap(), "/readyz").await;
    assert_eq!(ready, 503);
    assert_eq!(g.up.count(), 0);
    let _redis = RedisServer::start_on(port).await;
    let dir = tempfile::tempdir().unwrap();
    write_atomically(&dir.path().join("state.json"), &state("compliant", true));
    let _sync = Sync::start(dir.path(), &url, "t5");
    let mut ok = false;
    for _ in 0..300 {
        if g.status(&token).await == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "the gateway never caught up once Redis was there");
    let (ready, _) = admin_get(g.gw.admin.unwrap(), "/readyz").await;
    assert_eq!(ready, 200);
}

/// A publisher driven by hand (holding the lease) for the stream tests.
pub(crate) async fn manual_publisher(redis: &RedisServer, prefix: &str) -> RedisPublisher {
    let mut conn = redis.conn().await;
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}:lock"))
        .arg("manual")
        .query_async(&mut conn)
        .await
        .unwrap();
    RedisPublisher::new(&endpoint(&redis.url(), prefix), "manual".into()).unwrap()
}

fn device_batch(c: &str) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"devices": [{"azureADDeviceId": "dev-1", "complianceState": c,
        "operatingSystem": "iOS"}]}),
    )
    .unwrap()
}

fn now_ms() -> i64 {
    accessgate::clock::unix_ms(SystemTime::now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_trimmed_past_a_gateways_version_makes_it_reload_the_snapshot() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let mut p = manual_publisher(&redis, "t6").await;
    let doc = serde_json::to_vec(&state("compliant", true)).unwrap();
    p.publish_snapshot(&doc, true, now_ms()).await.unwrap();
    let cut = Partition::start(redis.port).await;
    let m = Metrics::new();
    let store = follower(&cut.url(), "t6", Some(m.clone())).await;
    assert_eq!(device_compliant(&store), Some(true));
    let reloads = || {
        m.reloads_total
            .with_label_values(&["state", "success"])
            .get()
    };
    assert_eq!(reloads(), 1);
    cut.cut(true);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // While the gateway is cut off: changes, a snapshot that includes them, and a trim.
    for c in ["noncompliant", "compliant", "noncompliant"] {
        p.publish_batch(&device_batch(c), now_ms()).await.unwrap();
    }
    let final_doc = serde_json::to_vec(&state("noncompliant", false)).unwrap();
    p.publish_snapshot(&final_doc, false, now_ms())
        .await
        .unwrap();
    let mut conn = redis.conn().await;
    let _: u64 = redis::cmd("XTRIM")
        .arg("t6:changes")
        .arg("MAXLEN")
        .arg(0)
        .query_async(&mut conn)
        .await
        .unwrap();
    p.publish_batch(&device_batch("noncompliant"), now_ms())
        .await
        .unwrap();
    // Still the old state while cut off (and still fresh: nothing failed).
    assert_eq!(device_compliant(&store), Some(true));
    cut.cut(false);
    assert!(
        eventually(WAIT, || store.current().is_some_and(|s| s
            .state
            .user("u-1")
            .is_some_and(|u| !u.account_enabled)))
        .await,
        "the gateway never reloaded the snapshot"
    );
    assert_eq!(device_compliant(&store), Some(false));
    assert_eq!(reloads(), 2, "exactly one reload for the gap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_record_is_an_error_that_loses_nothing() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let mut p = manual_publisher(&redis, "t7").await;
    let doc = serde_json::to_vec(&state("compliant", true)).unwrap();
    p.publish_snapshot(&doc, true, now_ms()).await.unwrap();
    let m = Metrics::new();
    let store = follower(&redis.url(), "t7", Some(m.clone())).await;
    assert_eq!(device_compliant(&store), Some(true));
    let errors = || m.state_refresh_total.with_label_values(&["error"]).get();
    let before = errors();
    let mut conn = redis.conn().await;
    for bad in [
        &b"{not json"[..],
        br#"{"devices":[{"azureADDeviceId":"dev-1","complianceState":"bogus"}]}"#,
        br#"{"appRegistrations":[{"userId":"ghost","appId":"a","complianceState":"compliant"}]}"#,
    ] {
        let last: String = redis::cmd("HGET")
            .arg("t7:head")
            .arg("last")
            .query_async(&mut conn)
            .await
            .unwrap();
        let id: String = redis::cmd("XADD")
            .arg("t7:changes")
            .arg("*")
            .arg("kind")
            .arg("batch")
            .arg("prev")
            .arg(&last)
            .arg("batch")
            .arg(bad)
            .query_async(&mut conn)
            .await
            .unwrap();
        let _: () = redis::cmd("HSET")
            .arg("t7:head")
            .arg("last")
            .arg(&id)
            .query_async(&mut conn)
            .await
            .unwrap();
        let seen = errors();
        assert!(
            eventually(WAIT, || errors() > seen).await,
            "a malformed entry went unnoticed"
        );
        // Nothing of it applied; the last good state still serves.
        assert_eq!(device_compliant(&store), Some(true));
        assert!(store.is_fresh(SystemTime::now()));
        // The publisher's next snapshot includes the bad entry: the gateway moves on.
        p.publish_snapshot(&doc, false, now_ms()).await.unwrap();
    }
    assert!(errors() > before);
    // And good changes flow again.
    p.publish_batch(&device_batch("noncompliant"), now_ms())
        .await
        .unwrap();
    assert!(
        eventually(WAIT, || device_compliant(&store) == Some(false)).await,
        "the gateway did not recover from malformed entries"
    );
}
