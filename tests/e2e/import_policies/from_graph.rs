//! `import-policies --from-graph` against the Conditional Access double: every page read
//! through 429s without `Retry-After`, one token, a failed collection fails the whole
//! read, and the CLI's output equals the one from the same JSON in files.

use std::path::Path;
use std::time::Duration;

use accessgate::config::StateSource;
use accessgate::state::graph::RetryPolicy;
use serde_json::Value;

use super::ca_double::{self, Faults, GraphDouble, TOKEN};
use super::{accessgate, fixture, import_args, read, text, write_gateway};

fn graph_tables(dir: &Path, double: &GraphDouble) -> (toml::Table, toml::Table) {
    let secret = dir.join("graph-secret");
    std::fs::write(&secret, "not-a-real-secret").unwrap();
    let state: toml::Table = format!(
        "source = \"graph\"\ncache_dir = {:?}\n",
        dir.join("cache").to_string_lossy()
    )
    .parse()
    .unwrap();
    let graph: toml::Table = format!(
        "tenant_id = \"9188040d-6c67-4c5b-b112-36a304b66dad\"\nclient_id = \"2d3c4b5a-0000-4000-8000-00000000abcd\"\nclient_secret_file = {:?}\nlogin_url = {:?}\ngraph_url = {:?}\n",
        secret.to_string_lossy(),
        double.url(),
        double.url()
    )
    .parse()
    .unwrap();
    (state, graph)
}

fn tenant() -> (Vec<Value>, Value) {
    let all: Value = serde_json::from_str(&read("policies.json")).unwrap();
    let locations: Value = serde_json::from_str(&read("named-locations.json")).unwrap();
    (all["value"].as_array().unwrap().clone(), locations)
}

fn graph_config(path: &Path) -> accessgate::config::GraphConfig {
    match accessgate::config::load(path).unwrap().state.source {
        StateSource::Graph(g) => *g,
        other => panic!("not a graph source: {other:?}"),
    }
}

#[tokio::test]
async fn from_graph_reads_every_page_through_a_429_without_retry_after() {
    let (policies, locations) = tenant();
    let double = GraphDouble::start(
        policies.clone(),
        locations,
        Faults {
            throttle_page2: 2,
            forbid: false,
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (state, graph) = graph_tables(dir.path(), &double);
    let cfg = graph_config(&write_gateway(dir.path(), "", Some(state), Some(graph)));
    let retry = RetryPolicy {
        base: Duration::from_millis(5),
        cap: Duration::from_millis(20),
        ..RetryPolicy::default()
    };
    let got = accessgate::cli::import_graph::fetch(&cfg, retry, Duration::from_millis(10))
        .await
        .unwrap();
    assert_eq!(got.policies, policies);
    assert_eq!(got.named_locations.len(), 6);
    // page 1, page 2 twice throttled then served, named locations.
    assert_eq!(got.requests, 5);
    let seen = double.seen();
    let token = &seen[0];
    assert!(
        token.method == "POST"
            && token.path_and_query == "/9188040d-6c67-4c5b-b112-36a304b66dad/oauth2/v2.0/token"
    );
    assert!(
        token.body.contains("grant_type=client_credentials"),
        "{}",
        token.body
    );
    assert!(
        token.body.contains(&format!(
            "scope={}",
            percent(&format!("{}/.default", double.url()))
        )),
        "{}",
        token.body
    );
    let gets: Vec<&ca_double::Seen> = seen.iter().filter(|s| s.method == "GET").collect();
    assert_eq!(gets.len(), 5);
    assert!(
        gets.iter()
            .all(|s| s.authorization.as_deref() == Some(&format!("Bearer {TOKEN}")))
    );
    assert_eq!(
        seen.iter().filter(|s| s.method == "POST").count(),
        1,
        "one token for the whole read"
    );
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn from_graph_fails_whole_when_a_collection_fails() {
    let (policies, locations) = tenant();
    let dir = tempfile::tempdir().unwrap();
    let retry = RetryPolicy {
        attempts: 3,
        base: Duration::from_millis(5),
        cap: Duration::from_millis(20),
        ..RetryPolicy::default()
    };
    // Throttled past every retry: no partial list.
    let double = GraphDouble::start(
        policies.clone(),
        locations.clone(),
        Faults {
            throttle_page2: 10,
            forbid: false,
        },
    )
    .await;
    let (state, graph) = graph_tables(dir.path(), &double);
    let cfg = graph_config(&write_gateway(dir.path(), "", Some(state), Some(graph)));
    let e = accessgate::cli::import_graph::fetch(&cfg, retry, Duration::from_millis(10))
        .await
        .unwrap_err();
    assert!(e.contains("429") && e.contains("gave up"), "{e}");
    // No Policy.Read.All.
    let double = GraphDouble::start(
        policies,
        locations,
        Faults {
            throttle_page2: 0,
            forbid: true,
        },
    )
    .await;
    let (state, graph) = graph_tables(dir.path(), &double);
    let cfg = graph_config(&write_gateway(dir.path(), "", Some(state), Some(graph)));
    let e = accessgate::cli::import_graph::fetch(&cfg, retry, Duration::from_millis(10))
        .await
        .unwrap_err();
    assert!(e.contains("403") && e.contains("permissions"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_from_graph_equals_from_json() {
    let (policies, locations) = tenant();
    let double = GraphDouble::start(
        policies,
        locations,
        Faults {
            throttle_page2: 1,
            forbid: false,
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (state, graph) = graph_tables(dir.path(), &double);
    let cfg = write_gateway(dir.path(), "", Some(state), Some(graph));
    let cfg = cfg.to_str().unwrap().to_owned();
    let pols = fixture("policies.json");
    let locs = fixture("named-locations.json");
    let (graph_out, json_out) = tokio::task::spawn_blocking(move || {
        let g = accessgate(&import_args(&cfg, &["--from-graph"]));
        let j = accessgate(&import_args(
            &cfg,
            &[
                "--from-json",
                pols.to_str().unwrap(),
                "--named-locations",
                locs.to_str().unwrap(),
            ],
        ));
        (g, j)
    })
    .await
    .unwrap();
    assert!(graph_out.status.success(), "{}", text(&graph_out.stderr));
    assert!(json_out.status.success(), "{}", text(&json_out.stderr));
    assert!(
        text(&graph_out.stderr).contains("read 9 policies and 6 named locations"),
        "{}",
        text(&graph_out.stderr)
    );
    assert_eq!(text(&graph_out.stdout), text(&json_out.stdout));
    assert!(text(&graph_out.stdout).contains("[[policies]]"));
}
