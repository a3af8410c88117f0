//! Critical changes published as they are read (issue 11): the Graph double holds a
//! round open on its last managedDevices page while a gateway on `source = "redis"`
//! already refuses the user disabled and the device turned noncompliant in that round.
//! Plus the early publisher against a real Redis: what it writes is an ordinary batch a
//! follower applies, and without the lease it writes nothing. Needs `redis-server`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;
use std::time::{Duration, Instant};

use accessgate::policy::RawUser;
use accessgate::state::graph::Page;
use accessgate::state::publish::PublishError;
use accessgate::state::publish::diff::{Early, Records};
use accessgate::state::publish::early::publish_page;

use crate::fleet::redis_server::RedisServer;
use crate::fleet::{FleetGateway, WAIT, follower, manual_publisher, state};
use crate::graph_double::*;
use crate::support::*;

const ALICE: &str = "11111111-1111-4111-8111-111111111111";
const BOB: &str = "22222222-2222-4222-8222-222222222222";
const ALICE_DEV: &str = "a1111111-1111-4111-8111-111111111111";
const BOB_DEV: &str = "b2222222-2222-4222-8222-222222222222";
const SPARE_DEV: &str = "c3333333-3333-4333-8333-333333333333";

/// `accessgate sync` in this process: the Graph double -> Redis `prefix`.
fn start_sync(
    double: &GraphDouble,
    redis: &RedisServer,
    dir: &std::path::Path,
    prefix: &str,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), String>>,
) {
    let cfg = DoubleConfig::default();
    let secret = dir.join("graph-secret");
    std::fs::write(&secret, cfg.client_secret.clone().unwrap()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let cache = dir.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let text = format!(
        "[state]\nsource = \"graph\"\nrefresh = \"300ms\"\nmax_staleness = \"1m\"\ncache_dir = \"{}\"\n\n[graph]\ntenant_id = \"{}\"\nclient_id = \"{}\"\nclient_secret_file = \"{}\"\nlogin_url = \"{url}\"\ngraph_url = \"{url}\"\n\n[publish]\nto = \"redis\"\nurl = \"{}\"\nkey_prefix = \"{prefix}\"\n",
        cache.display(),
        cfg.tenant_id,
        cfg.client_id,
        secret.display(),
        redis.url(),
        url = double.url(),
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
    (tx, task)
}

/// Polls `status` of a token until it is `want` (bounded by [`WAIT`]).
async fn until_status(gw: &FleetGateway, token: &str, want: u16) -> u16 {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = gw.status(token).await;
        if s == want || Instant::now() >= deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_critical_change_reaches_the_gateway_while_its_round_is_still_held() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let mut tenant = Tenant::default();
    tenant.users.push(User::new(ALICE).licensed());
    tenant.users.push(User::new(BOB).licensed());
    // One device per page: Bob's is on page 0, the page held is the last (2).
    tenant.devices.push(Device::new(BOB_DEV, BOB));
    tenant.devices.push(Device::new(ALICE_DEV, ALICE));
    tenant.devices.push(Device::new(SPARE_DEV, ALICE));
    let double = GraphDouble::start(
        tenant,
        DoubleConfig {
            intune_page_size: 1,
            ..DoubleConfig::default()
        },
    )
    .await;
    let h = double.handle();
    let dir = tempfile::tempdir().unwrap();
    let (stop, sync) = start_sync(&double, &redis, dir.path(), "early1");
    let gw = FleetGateway::start(&redis.url(), "early1").await;
    let (alice, bob) = (gw.token_for(ALICE, ALICE_DEV), gw.token_for(BOB, BOB_DEV));
    assert_eq!(
        until_status(&gw, &alice, 200).await,
        200,
        "the synced state never arrived"
    );
    assert_eq!(until_status(&gw, &bob, 200).await, 200);

    // Catch the next round at its start (users/delta page 0 held), so that every change
    // below is read by that round; then hold the same round on its last devices page.
    let start = Gate::default();
    h.inject(Fault::hold(Collection::UsersDelta, 0, &start));
    assert!(
        eventually(WAIT, || start.waiting() == 1).await,
        "no round reached users/delta"
    );
    let end = Gate::default();
    h.inject(Fault::hold(Collection::ManagedDevices, 2, &end));
    h.set_account_enabled(ALICE, false);
    h.set_device_compliance(BOB_DEV, "noncompliant");
    let devices_before = h.counters().pages(Collection::ManagedDevices);
    let released = Instant::now();
    start.open();
    assert!(
        eventually(WAIT, || end.waiting() == 1).await,
        "the round never reached its last devices page"
    );

    // A disabled account's token is refused as a whole (401); a noncompliant device is a
    // failed grant (403).
    let alice_status = until_status(&gw, &alice, 401).await;
    let bob_status = until_status(&gw, &bob, 403).await;
    let seen = released.elapsed();
    // The proof: the round cannot have ended, its last devices page is still held.
    assert_eq!(
        end.waiting(),
        1,
        "the round was not held while the gateway was checked"
    );
    assert_eq!(
        alice_status, 401,
        "the disabled user is still let in mid-round"
    );
    assert_eq!(
        bob_status, 403,
        "the noncompliant device is still let in mid-round"
    );
    assert_eq!(
        h.counters().pages(Collection::ManagedDevices),
        devices_before + 2,
        "exactly pages 0 and 1 of the held round were served"
    );
    eprintln!("round released -> both refusals seen at the gateway, round still held: {seen:?}");

    // Let the round end: its own diff neither undoes nor breaks what went early, and the
    // rounds after it go on as usual.
    end.open();
    let pages = devices_before + 2;
    assert!(
        eventually(WAIT, || h.counters().pages(Collection::ManagedDevices)
            >= pages + 4)
        .await,
        "no round completed after the release"
    );
    assert_eq!(gw.status(&alice).await, 401);
    assert_eq!(gw.status(&bob).await, 403);
    h.set_device_compliance(BOB_DEV, "compliant");
    assert_eq!(
        until_status(&gw, &bob, 200).await,
        200,
        "a loosening change still arrives (at its round's end)"
    );
    let _ = stop.send(());
    assert_eq!(sync.await.unwrap(), Ok(()));
}

fn disabled(id: &str) -> Page {
    Page::Users(vec![RawUser {
        id: Cow::Owned(id.into()),
        account_enabled: false,
        licensed: true,
        groups: Vec::new(),
        revoke_sessions_after: None,
    }])
}

async fn stream_len(redis: &RedisServer, prefix: &str) -> u64 {
    let mut c = redis.conn().await;
    redis::cmd("XLEN")
        .arg(format!("{prefix}:changes"))
        .query_async::<u64>(&mut c)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_batch_is_a_batch_and_needs_the_lease() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let mut publisher = manual_publisher(&redis, "early2").await;
    let doc = serde_json::to_vec(&state("compliant", true)).unwrap();
    publisher.publish_snapshot(&doc, true, 1).await.unwrap();
    let records = Records::index(bytes::Bytes::from(doc)).unwrap();
    let store = follower(&redis.url(), "early2", None).await;
    assert!(
        eventually(WAIT, || store.current().is_some_and(|s| s
            .state
            .user("u-1")
            .is_some_and(|u| u.account_enabled)))
        .await
    );

    // Another sync took the lease: the early publisher writes nothing, records nothing.
    let mut c = redis.conn().await;
    let _: () = redis::cmd("SET")
        .arg("early2:lock")
        .arg("someone-else")
        .query_async(&mut c)
        .await
        .unwrap();
    let n = stream_len(&redis, "early2").await;
    let mut early = Early::default();
    assert_eq!(
        publish_page(&mut publisher, &records, &mut early, &disabled("u-1"), 1).await,
        Err(PublishError::NotLeader)
    );
    assert_eq!(
        stream_len(&redis, "early2").await,
        n,
        "nothing may reach the stream"
    );
    assert!(
        early.is_empty(),
        "nothing unpublished may count as published"
    );

    // With the lease back: one ordinary batch, applied by the follower like any other.
    let _: () = redis::cmd("SET")
        .arg("early2:lock")
        .arg("manual")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(
        publish_page(&mut publisher, &records, &mut early, &disabled("u-1"), 1).await,
        Ok(1)
    );
    assert_eq!(stream_len(&redis, "early2").await, n + 1);
    assert_eq!(early.len(), 1);
    assert!(
        eventually(WAIT, || store.current().is_some_and(|s| s
            .state
            .user("u-1")
            .is_some_and(|u| !u.account_enabled)))
        .await,
        "the follower did not apply the early batch"
    );
    // The same page again: already published, nothing more.
    assert_eq!(
        publish_page(&mut publisher, &records, &mut early, &disabled("u-1"), 1).await,
        Ok(0)
    );
    assert_eq!(stream_len(&redis, "early2").await, n + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_on_graph_applies_critical_changes_while_its_round_is_held() {
    use accessgate::state::{RefreshOutcome, StateStore};
    let mut tenant = Tenant::default();
    tenant.users.push(User::new(ALICE).licensed());
    tenant.users.push(User::new(BOB).licensed());
    tenant.devices.push(Device::new(BOB_DEV, BOB));
    tenant.devices.push(Device::new(ALICE_DEV, ALICE));
    tenant.devices.push(Device::new(SPARE_DEV, ALICE));
    let double = GraphDouble::start(
        tenant,
        DoubleConfig {
            intune_page_size: 1,
            ..DoubleConfig::default()
        },
    )
    .await;
    let h = double.handle();
    let dir = tempfile::tempdir().unwrap();
    let cfg = DoubleConfig::default();
    let secret = dir.path().join("graph-secret");
    std::fs::write(&secret, cfg.client_secret.clone().unwrap()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    // refresh = 1h: the test runs each round itself. Only `[state]` is used (the
    // `[publish]` table spares the listener and routes a whole gateway config needs).
    let text = format!(
        "[state]\nsource = \"graph\"\nrefresh = \"1h\"\nmax_staleness = \"2h\"\ncache_dir = \"{}\"\n\n[graph]\ntenant_id = \"{}\"\nclient_id = \"{}\"\nclient_secret_file = \"{}\"\nlogin_url = \"{url}\"\ngraph_url = \"{url}\"\n\n[publish]\nto = \"file\"\npath = \"{}\"\n",
        cache.display(),
        cfg.tenant_id,
        cfg.client_id,
        secret.display(),
        dir.path().join("unused.json").display(),
        url = double.url(),
    );
    let config = accessgate::config::parse_str(&text, &dir.path().join("gw.toml"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let store = StateStore::start(&config.state, &accessgate::ops::metrics::Metrics::new()).await;
    let view = |s: &StateStore| {
        let snap = s.current().unwrap();
        (
            snap.state.user(ALICE).unwrap().account_enabled,
            snap.state
                .device(BOB_DEV)
                .unwrap()
                .compliance
                .is_compliant(),
        )
    };
    assert_eq!(view(&store), (true, true), "the first round is loaded");
    let age_before = store.age(std::time::SystemTime::now());

    let end = Gate::default();
    h.inject(Fault::hold(Collection::ManagedDevices, 2, &end));
    h.set_account_enabled(ALICE, false);
    h.set_device_compliance(BOB_DEV, "noncompliant");
    let s2 = store.clone();
    let round = tokio::spawn(async move { s2.refresh().await });
    assert!(
        eventually(WAIT, || end.waiting() == 1).await,
        "the round never reached its last devices page"
    );
    assert!(
        eventually(WAIT, || view(&store) == (false, false)).await,
        "the critical changes were not applied while the round was read"
    );
    assert_eq!(
        end.waiting(),
        1,
        "the round was not held while the state was checked"
    );
    assert!(!round.is_finished());
    // Applied early, but not a confirmation of the whole state: its age goes on.
    assert!(store.age(std::time::SystemTime::now()) >= age_before);

    end.open();
    assert!(matches!(round.await.unwrap(), RefreshOutcome::Updated));
    assert_eq!(view(&store), (false, false), "the round's end keeps them");
    h.set_device_compliance(BOB_DEV, "compliant");
    assert!(matches!(store.refresh().await, RefreshOutcome::Updated));
    assert_eq!(
        view(&store),
        (false, true),
        "loosening arrives with its round"
    );
}
