//! `[graph]` and `[state] source = "graph"`.

use super::is_guid;
use crate::config::graph::INTUNE_PLAN;
use crate::config::validate::testkit::{err, ok, refused, with};
use crate::config::{GraphCloud, GraphCredential, StateSource};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "0c1307d4-29d6-4389-a11c-5cbe7f65d7fa";

struct Files {
    _dir: tempfile::TempDir,
    secret: String,
    cert: String,
    key: String,
}

fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    let (secret, cert, key) = (p("secret"), p("graph.crt"), p("graph.key"));
    for f in [&secret, &cert, &key] {
        std::fs::write(f, "x").unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    Files {
        _dir: dir,
        secret,
        cert,
        key,
    }
}

fn graph(f: &Files, extra: &str) -> String {
    with(&format!(
        "[state]\nsource = \"graph\"\ncache_dir = \"cache\"\n\n[graph]\ntenant_id = \"{TENANT}\"\nclient_id = \"{CLIENT}\"\nclient_secret_file = \"{}\"\n{extra}",
        f.secret
    ))
}

fn cfg_of(text: &str) -> crate::config::GraphConfig {
    match ok(text).state.source {
        StateSource::Graph(g) => *g,
        other => panic!("{other:?}"),
    }
}

#[test]
fn guids() {
    assert!(is_guid(TENANT) && is_guid(&CLIENT.to_uppercase()));
    for bad in [
        "",
        "x",
        "72f988bf86f141af91ab2d7cd011db47",
        "72f988bf-86f1-41af-91ab-2d7cd011db4g",
    ] {
        assert!(!is_guid(bad), "{bad}");
    }
}

#[test]
fn minimal_graph_source_gets_defaults() {
    let f = files();
    let text = graph(&f, "");
    let c = ok(&text);
    assert_eq!(c.state.cache_dir, Some("/etc/accessgate/cache".into()));
    assert_eq!(c.state.refresh, std::time::Duration::from_secs(60));
    assert_eq!(c.state.max_staleness, std::time::Duration::from_secs(900));
    let g = cfg_of(&text);
    assert_eq!(g.cloud, GraphCloud::Global);
    assert_eq!(g.login_url, "https://login.microsoftonline.com");
    assert_eq!(g.graph_url, "https://graph.microsoft.com");
    assert_eq!(g.licensed_service_plans, [INTUNE_PLAN]);
    assert_eq!(
        g.credential,
        GraphCredential::SecretFile(f.secret.clone().into())
    );
    assert!(g.warnings.is_empty(), "{:?}", g.warnings);
    assert!(c.summary().contains("graph tenant"), "{}", c.summary());
}

#[test]
fn clouds_pick_both_hosts_and_overrides_win() {
    let f = files();
    let g = cfg_of(&graph(&f, "cloud = \"usgov-dod\"\n"));
    assert_eq!(
        (g.login_url.as_str(), g.graph_url.as_str()),
        (
            "https://login.microsoftonline.us",
            "https://dod-graph.microsoft.us"
        )
    );
    let g = cfg_of(&graph(&f, "cloud = \"china\"\n"));
    assert_eq!(g.graph_url, "https://microsoftgraph.chinacloudapi.cn");
    let g = cfg_of(&graph(
        &f,
        "login_url = \"http://127.0.0.1:8080/\"\ngraph_url = \"http://[::1]:8081\"\n",
    ));
    assert_eq!(
        (g.login_url.as_str(), g.graph_url.as_str()),
        ("http://127.0.0.1:8080", "http://[::1]:8081")
    );
    let text = graph(&f, "cloud = \"germany\"\n");
    refused(&text, "germany", "graph.cloud", "is not one of");
    let text = graph(&f, "graph_url = \"http://graph.example.com\"\n");
    refused(&text, "graph.example", "graph.graph_url", "loopback");
    let text = graph(&f, "login_url = \"https://login.example/?x=1\"\n");
    refused(&text, "?x=1", "graph.login_url", "query");
}

#[test]
fn ids_are_checked() {
    let f = files();
    let text = graph(&f, "").replace(CLIENT, "azure-app");
    refused(&text, "azure-app", "graph.client_id", "not a GUID");
    let text = graph(&f, "").replace(TENANT, "common");
    refused(&text, "common", "graph.tenant_id", "tenant's own");
    let text = graph(&f, "").replace(TENANT, "contoso.onmicrosoft.com");
    assert_eq!(cfg_of(&text).tenant_id, "contoso.onmicrosoft.com");
    let text = graph(&f, "").replace(TENANT, "a/b");
    refused(&text, "a/b", "graph.tenant_id", "not a tenant id");
    let text = graph(&f, "groups = [\"admins\"]\n");
    refused(&text, "admins", "graph.groups[0]", "GUID");
    let text = graph(&f, "licensed_service_plans = []\n");
    refused(
        &text,
        "licensed_service_plans",
        "graph.licensed_service_plans",
        "must not be empty",
    );
}

#[test]
fn secret_files_must_exist_and_should_be_private() {
    let f = files();
    let text = graph(&f, "").replace(&f.secret, "/nonexistent/secret");
    refused(
        &text,
        "/nonexistent/secret",
        "graph.client_secret_file",
        "No such file",
    );
    std::fs::write(&f.secret, "").unwrap();
    refused(
        &graph(&f, ""),
        &f.secret,
        "graph.client_secret_file",
        "is empty",
    );
    std::fs::write(&f.secret, "s").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f.secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        let g = cfg_of(&graph(&f, ""));
        assert_eq!(g.warnings.len(), 1);
        assert!(
            g.warnings[0].contains("readable by every local user"),
            "{:?}",
            g.warnings
        );
    }
}

#[test]
fn exactly_one_credential() {
    let f = files();
    let cert = format!(
        "client_certificate = \"{}\"\nclient_key = \"{}\"\n",
        f.cert, f.key
    );
    let text = with(&format!(
        "[state]\nsource = \"graph\"\ncache_dir = \"c\"\n[graph]\ntenant_id = \"{TENANT}\"\nclient_id = \"{CLIENT}\"\n{cert}"
    ));
    assert_eq!(
        cfg_of(&text).credential,
        GraphCredential::Certificate {
            cert: f.cert.clone().into(),
            key: f.key.clone().into()
        }
    );
    refused(
        &graph(&f, &cert),
        "client_secret_file",
        "graph.client_secret_file",
        "not both",
    );
    let only_cert = text.replace(&format!("client_key = \"{}\"\n", f.key), "");
    refused(
        &only_cert,
        "client_certificate",
        "graph.client_key",
        "missing",
    );
    let none = text.replace(&cert, "");
    refused(&none, "[graph]", "graph", "no credential");
    let missing_key = text.replace(&f.key, "/nonexistent/graph.key");
    refused(
        &missing_key,
        "/nonexistent/graph.key",
        "graph.client_key",
        "No such file",
    );
}

#[test]
fn apps_map_bundle_and_package_ids() {
    let f = files();
    let g = cfg_of(&graph(
        &f,
        &format!(
            "\n[[graph.apps]]\nclient_id = \"{CLIENT}\"\nandroid_package_ids = [\"com.microsoft.azure\"]\nios_bundle_ids = []\n"
        ),
    ));
    assert_eq!(g.apps.len(), 1);
    assert_eq!(g.apps[0].android_package_ids, ["com.microsoft.azure"]);
    let text = graph(&f, &format!("\n[[graph.apps]]\nclient_id = \"{CLIENT}\"\n"));
    refused(&text, "[[graph.apps]]", "graph.apps[0]", "maps no app");
    let text = graph(&f, "\n[[graph.apps]]\nandroid_package_ids = [\"p\"]\n");
    refused(
        &text,
        "[[graph.apps]]",
        "graph.apps[0].client_id",
        "missing",
    );
    let text = graph(
        &f,
        "\n[[graph.apps]]\nclient_id = \"x\"\nandroid_package_ids = [\"p\"]\nbundle = 1\n",
    );
    assert!(err(&text).contains("bundle"), "{}", err(&text));
}

#[test]
fn policy_groups_are_resolved_and_must_be_object_ids() {
    let f = files();
    let policy = |g: &str| {
        format!(
            "\n[[policies]]\nname = \"p\"\nresources = [\"all\"]\ninclude_groups = [\"{g}\"]\nexclude_groups = [\"22222222-0000-0000-0000-000000000002\"]\ngrant = {{ controls = [\"mfa\"] }}\n"
        )
    };
    let text = graph(&f, "groups = [\"22222222-0000-0000-0000-000000000003\"]\n")
        + &policy("22222222-0000-0000-0000-00000000000A");
    let g = cfg_of(&text);
    assert_eq!(
        g.groups,
        [
            "22222222-0000-0000-0000-000000000003",
            "22222222-0000-0000-0000-00000000000a",
            "22222222-0000-0000-0000-000000000002"
        ]
    );
    let text = graph(&f, "") + &policy("sales");
    refused(
        &text,
        "\"sales\"",
        "policies[0].include_groups[0]",
        "Entra object id",
    );
    // Other sources keep accepting group names.
    let text = with("[state]\nsource = \"file\"\n") + &policy("sales");
    ok(&text);
}

#[test]
fn graph_needs_its_section_and_cache_dir_and_nothing_else() {
    let f = files();
    let text = with("[state]\nsource = \"graph\"\ncache_dir = \"c\"\n");
    assert!(
        err(&text).contains("missing [graph] section"),
        "{}",
        err(&text)
    );
    let text = graph(&f, "").replace("cache_dir = \"cache\"\n", "");
    refused(&text, "[state]", "state.cache_dir", "required");
    let text = graph(&f, "").replace(
        "cache_dir = \"cache\"\n",
        "cache_dir = \"cache\"\nurl = \"https://x.example\"\n",
    );
    refused(&text, "x.example", "state.url", "not used");
    let text = with(&format!(
        "[state]\nsource = \"file\"\ncache_dir = \"c\"\n[graph]\ntenant_id = \"{TENANT}\"\n"
    ));
    refused(&text, "cache_dir", "state.cache_dir", "only with source");
    refused(&text, "[graph]", "graph", "only read with");
}
