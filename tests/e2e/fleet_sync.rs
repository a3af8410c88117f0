//! `accessgate sync` without Redis: publishing to a file (atomic replace, a bad round
//! publishes nothing), refusing to start on a config it cannot serve, and the fleet's
//! Kubernetes manifests holding valid configs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::Value;

use crate::fleet::{WAIT, state, write_atomically};
use crate::support::*;

/// The TOML under `key: |` in a manifest, with the Redis password file pointed at `pw`.
fn manifest_toml(file: &str, key: &str, pw: &std::path::Path) -> String {
    let yaml = std::fs::read_to_string(format!(
        "{}/deploy/kubernetes/fleet/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let start = yaml.find(&format!("{key}: |")).expect("configmap key");
    yaml[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect::<String>()
        .replace("/run/secrets/redis/password", &pw.display().to_string())
}

#[test]
fn the_fleet_manifests_hold_valid_configs() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("password");
    std::fs::write(&pw, "key\n").unwrap();
    let gw = manifest_toml("gateway-config.yaml", "accessgate.toml", &pw);
    let c = accessgate::config::parse_str(&gw, &dir.path().join("accessgate.toml"))
        .unwrap_or_else(|e| panic!("{e}\n{gw}"));
    assert!(
        matches!(&c.state.source, accessgate::config::StateSource::Redis(r) if r.url.starts_with("rediss://"))
    );
    assert!(
        c.state.cache_dir.is_some(),
        "the gateways keep their state in cache_dir"
    );
    let sync = manifest_toml("sync.yaml", "sync.toml", &pw);
    let c = accessgate::config::parse_str(&sync, &dir.path().join("sync.toml"))
        .unwrap_or_else(|e| panic!("{e}\n{sync}"));
    assert!(matches!(
        c.publish,
        Some(accessgate::config::PublishTarget::Redis(_))
    ));
}

#[tokio::test]
async fn sync_to_a_file_replaces_it_whole_and_a_bad_round_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("state.json");
    let out = dir.path().join("out").join("published.json");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    write_atomically(&src, &state("compliant", true));
    let text = format!(
        "[state]\nsource = \"file\"\npath = \"{}\"\nrefresh = \"100ms\"\n\n[publish]\nto = \"file\"\npath = \"{}\"\n",
        src.display(),
        out.display()
    );
    let config = accessgate::config::parse_str(&text, &dir.path().join("sync.toml")).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        accessgate::cli::sync::run(&config, async {
            let _ = rx.await;
        })
        .await
    });
    let read = |p: &std::path::Path| -> Option<Value> {
        serde_json::from_slice(&std::fs::read(p).ok()?).ok()
    };
    assert!(eventually(WAIT, || read(&out) == Some(state("compliant", true))).await);
    write_atomically(&src, &state("noncompliant", false));
    assert!(eventually(WAIT, || read(&out) == Some(state("noncompliant", false))).await);
    // A round that does not validate publishes nothing.
    std::fs::write(
        &src,
        br#"{"devices": [{"azureADDeviceId": "d", "complianceState": "bogus"}]}"#,
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(read(&out), Some(state("noncompliant", false)));
    // Nothing written aside is left behind.
    let names: Vec<String> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["published.json".to_owned()]);
    let _ = tx.send(());
    assert_eq!(task.await.unwrap(), Ok(()));
}

#[tokio::test]
async fn sync_refuses_to_start_without_publish_or_on_a_redis_source() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[state]\nsource = \"file\"\npath = \"s.json\"\n\n[[routes]]\nname = \"r\"\nupstream = \"http://127.0.0.1:1\"\nauth = \"none\"\n\n[listen]\ntls_cert = \"c\"\ntls_key = \"k\"\n";
    let config = accessgate::config::parse_str(text, &dir.path().join("a.toml")).unwrap();
    let e = accessgate::cli::sync::run(&config, async {})
        .await
        .unwrap_err();
    assert!(e.contains("[publish] is missing"), "{e}");
    let text = "[state]\nsource = \"redis\"\nurl = \"redis://127.0.0.1:1\"\n\n[publish]\nto = \"file\"\npath = \"o.json\"\n";
    let config = accessgate::config::parse_str(text, &dir.path().join("b.toml")).unwrap();
    let e = accessgate::cli::sync::run(&config, async {})
        .await
        .unwrap_err();
    assert!(e.contains("what gateways follow"), "{e}");
}
