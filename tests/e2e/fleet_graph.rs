//! The whole fleet path from Microsoft Graph: the Graph double -> `accessgate sync`
//! (`[state] source = "graph"`) -> Redis -> two gateway stores. A device turning
//! noncompliant in the double reaches both.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use accessgate::config::RedisEndpoint;
use accessgate::state::{Freshness, StateStore};

use crate::fleet::redis_server::RedisServer;
use crate::graph_double::*;
use crate::support::*;

const ALICE: &str = "11111111-1111-4111-8111-111111111111";
const ALICE_DEVICE: &str = "d1111111-1111-4111-8111-111111111111";

fn compliant(store: &StateStore) -> Option<bool> {
    let snap = store.current()?;
    snap.state
        .device(ALICE_DEVICE)
        .map(|d| d.compliance.is_compliant())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_follow_a_change_made_in_the_graph_double() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let mut tenant = Tenant::default();
    tenant.users.push(User::new(ALICE).licensed());
    tenant.devices.push(Device::new(ALICE_DEVICE, ALICE));
    let double = GraphDouble::start(tenant, DoubleConfig::default()).await;
    let cfg = DoubleConfig::default();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("graph-secret");
    std::fs::write(&secret, cfg.client_secret.clone().unwrap()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let text = format!(
        "[state]\nsource = \"graph\"\nrefresh = \"300ms\"\nmax_staleness = \"1m\"\ncache_dir = \"{}\"\n\n[graph]\ntenant_id = \"{}\"\nclient_id = \"{}\"\nclient_secret_file = \"{}\"\nlogin_url = \"{url}\"\ngraph_url = \"{url}\"\n\n[publish]\nto = \"redis\"\nurl = \"{}\"\nkey_prefix = \"g1\"\n",
        cache.display(),
        cfg.tenant_id,
        cfg.client_id,
        secret.display(),
        redis.url(),
        url = double.url(),
    );
    let config = accessgate::config::parse_str(&text, &dir.path().join("sync.toml"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let sync = tokio::spawn(async move {
        accessgate::cli::sync::run(&config, async {
            let _ = rx.await;
        })
        .await
    });
    let endpoint = RedisEndpoint {
        url: redis.url(),
        key_prefix: "g1".into(),
        password_file: None,
    };
    let freshness = Freshness {
        refresh: Duration::from_millis(400),
        max_staleness: Duration::from_secs(60),
        fail_open: false,
    };
    let mut stores = Vec::new();
    for _ in 0..2 {
        stores.push(
            StateStore::follow_redis(endpoint.clone(), freshness, None, Duration::from_secs(5))
                .await,
        );
    }
    let limit = Duration::from_secs(30);
    for s in &stores {
        assert!(
            eventually(limit, || compliant(s) == Some(true)).await,
            "the synced Graph state never reached a gateway"
        );
    }
    double
        .handle()
        .set_device_compliance(ALICE_DEVICE, "noncompliant");
    let t = Instant::now();
    for s in &stores {
        assert!(
            eventually(limit, || compliant(s) == Some(false)).await,
            "the Graph change never reached a gateway"
        );
    }
    eprintln!("Graph change -> both gateways in {:?}", t.elapsed());
    let _ = tx.send(());
    assert_eq!(sync.await.unwrap(), Ok(()));
}
