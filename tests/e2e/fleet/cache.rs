//! `[state] source = "redis"` with `cache_dir`: a gateway (re)started while Redis is
//! unreachable serves the state it last served, at its recorded age, and catches up when
//! Redis is back; a cache it cannot use leaves it not ready (never an allow on empty state).

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::*;

/// Two users, each with a device: `u-1`/`dev-1` and `u-2`/`dev-2`.
fn two(dev1: &str, dev2: &str) -> Value {
    let dev = |id: &str, c: &str| {
        json!({"azureADDeviceId": id, "complianceState": c, "operatingSystem": "iOS",
               "osVersion": "17.4",
               "noncompliantSince": if c == "compliant" { Value::Null } else { json!("2026-01-01T00:00:00Z") },
               "remediation": "failed"})
    };
    json!({
        "users": [{"id": "u-1", "accountEnabled": true, "licensed": true, "groups": []},
                  {"id": "u-2", "accountEnabled": true, "licensed": true, "groups": []}],
        "devices": [dev("dev-1", dev1), dev("dev-2", dev2)],
        "appProtectionPolicies": [], "appRegistrations": []
    })
}

fn two_batch(id: &str, c: &str) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"devices": [{"azureADDeviceId": id, "complianceState": c,
        "operatingSystem": "iOS"}]}),
    )
    .unwrap()
}

impl FleetGateway {
    /// As [`FleetGateway::start`], with `cache_dir` and a given `max_staleness`.
    async fn start_cached(url: &str, prefix: &str, cache: &Path, max_staleness: &str) -> Self {
        let spec = CaSpec::new(
            "[[policies]]\nname = \"managed\"\nresources = [\"corp-api\"]\ninclude_users = [\"all\"]\ngrant = { controls = [\"compliant_device\"] }\n",
            json!({}),
        );
        let text = ca_config(&spec).replace(
            "source = \"file\"\npath = \"{certs}/state.json\"",
            &format!(
                "source = \"redis\"\nurl = \"{url}\"\nkey_prefix = \"{prefix}\"\nrefresh = \"400ms\"\nmax_staleness = \"{max_staleness}\"\ncache_dir = \"{}\"",
                cache.display()
            ),
        );
        assert!(text.contains("cache_dir"));
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

    /// Poll until `token` gets `want` (bounded); the last status seen.
    async fn until(&self, token: &str, want: u16) -> u16 {
        let mut last = 0;
        for _ in 0..300 {
            last = self.status(token).await;
            if last == want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        last
    }

    async fn ready(&self) -> (u16, String) {
        admin_get(self.gw.admin.unwrap(), "/readyz").await
    }
}

fn unused_url() -> String {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    format!("redis://127.0.0.1:{port}/0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_restarted_while_redis_is_down_serves_its_cache_then_catches_up() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let (port, url) = (redis.port, redis.url());
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    write_atomically(&file, &two("compliant", "compliant"));
    let sync = Sync::start(dir.path(), &url, "c1");
    let mut g = FleetGateway::start_cached(&url, "c1", cache.path(), "1m").await;
    let (t1, t2) = (g.token_for("u-1", "dev-1"), g.token_for("u-2", "dev-2"));
    assert_eq!(g.until(&t1, 200).await, 200);
    assert_eq!(g.until(&t2, 200).await, 200);
    // A change that reaches the gateway as a batch (not in the snapshot it loaded).
    write_atomically(&file, &two("compliant", "noncompliant"));
    assert_eq!(g.until(&t2, 403).await, 403, "the batch never arrived");
    g.gw.shutdown().await;
    assert!(cache.path().join("redis-state.json").exists());
    drop(sync);
    redis.stop();

    // Redis is down: the restarted gateway serves what it served, the batch included.
    let g = FleetGateway::start_cached(&url, "c1", cache.path(), "1m").await;
    // Each test gateway has its own token signer.
    let (t1, t2) = (g.token_for("u-1", "dev-1"), g.token_for("u-2", "dev-2"));
    assert_eq!(
        g.until(&t1, 200).await,
        200,
        "the cached state was not served"
    );
    assert_eq!(g.status(&t2).await, 403, "the cached batch was lost");
    assert_eq!(g.ready().await.0, 200, "a fresh cache is ready");
    assert_eq!(
        g.up.count(),
        1,
        "only the allowed request reached the upstream"
    );

    // Redis is back (empty) and sync publishes a newer state: the gateway follows it.
    let _redis = RedisServer::start_on(port).await;
    write_atomically(&file, &two("noncompliant", "noncompliant"));
    let _sync = Sync::start(dir.path(), &url, "c1");
    assert_eq!(g.until(&t1, 403).await, 403, "the gateway never caught up");
    assert_eq!(g.ready().await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_follower_catches_up_from_its_version_when_the_stream_still_holds_it() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let mut p = manual_publisher(&redis, "c2").await;
    let doc = serde_json::to_vec(&two("compliant", "compliant")).unwrap();
    p.publish_snapshot(&doc, true, now_ms()).await.unwrap();
    let cut = Partition::start(redis.port).await;
    let follow = |m: Option<Metrics>| {
        StateStore::follow_redis_cached(
            endpoint(&cut.url(), "c2"),
            Some(cache.path()),
            freshness(),
            m,
            Duration::from_secs(5),
        )
    };
    let dev = |s: &StateStore, id: &str| {
        s.current()
            .and_then(|c| c.state.device(id).map(|d| d.compliance.is_compliant()))
    };
    let store = follow(None).await;
    p.publish_batch(&two_batch("dev-2", "noncompliant"), now_ms())
        .await
        .unwrap();
    assert!(eventually(WAIT, || dev(&store, "dev-2") == Some(false)).await);
    store.flush_cache().await;
    drop(store);

    // Away: a newer change lands in the stream.
    cut.cut(true);
    p.publish_batch(&two_batch("dev-1", "noncompliant"), now_ms())
        .await
        .unwrap();
    let m = Metrics::new();
    let store = follow(Some(m.clone())).await;
    assert!(
        eventually(WAIT, || store.current().is_some()).await,
        "the cache was not loaded"
    );
    assert_eq!(dev(&store, "dev-1"), Some(true), "the cache, not Redis");
    assert_eq!(dev(&store, "dev-2"), Some(false), "the cached batch");
    assert!(store.is_fresh(SystemTime::now()));
    cut.cut(false);
    assert!(
        eventually(WAIT, || dev(&store, "dev-1") == Some(false)).await,
        "the follower never caught up"
    );
    let reloads = m
        .reloads_total
        .with_label_values(&["state", "success"])
        .get();
    assert_eq!(
        reloads, 0,
        "caught up from the stream, not by a snapshot reload"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_cache_leaves_a_gateway_without_redis_not_ready() {
    if !redis_server::redis_available() {
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    std::fs::write(
        cache.path().join("redis-state.json"),
        br#"{"format":1,"keyPrefix":"c3","snapshot":"abc","#,
    )
    .unwrap();
    let g = FleetGateway::start_cached(&unused_url(), "c3", cache.path(), "1m").await;
    let t = g.token_for("u-1", "dev-1");
    assert_eq!(g.status(&t).await, 503, "never an allow on empty state");
    let (ready, body) = g.ready().await;
    assert_eq!(ready, 503, "{body}");
    assert!(body.contains("not loaded"), "{body}");
    assert_eq!(g.up.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_older_than_max_staleness_is_not_served_as_fresh() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let mut p = manual_publisher(&redis, "c4").await;
    let doc = serde_json::to_vec(&two("compliant", "compliant")).unwrap();
    // The publisher last confirmed this state two hours ago.
    p.publish_snapshot(&doc, true, now_ms() - 2 * 3_600_000)
        .await
        .unwrap();
    let store = StateStore::follow_redis_cached(
        endpoint(&redis.url(), "c4"),
        Some(cache.path()),
        freshness(),
        None,
        Duration::from_secs(5),
    )
    .await;
    assert!(store.current().is_some());
    store.flush_cache().await;
    drop(store);
    drop(redis);

    let g = FleetGateway::start_cached(&unused_url(), "c4", cache.path(), "1m").await;
    let (mut ready, mut body) = g.ready().await;
    for _ in 0..100 {
        if body.contains("stale") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        (ready, body) = g.ready().await;
    }
    let t = g.token_for("u-1", "dev-1");
    assert_eq!(g.status(&t).await, 503, "a stale cache must not allow");
    assert_eq!(ready, 503, "{body}");
    assert!(body.contains("stale"), "loaded but stale: {body}");
    assert_eq!(g.up.count(), 0);
}
