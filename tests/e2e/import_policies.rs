//! `accessgate import-policies` end to end: realistic Entra JSON (Graph's own examples
//! and a tenant-shaped set in tests/fixtures/import/) becomes policies that `check`
//! accepts and that decide exactly like the hand-written equivalent; unsupported policies
//! refuse with their reasons; `--from-graph` reads every page through throttling.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ca_double;
mod from_graph;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use accessgate::cli::import_policies::{context, read_pages, resource_pairs, with_policies};
use accessgate::config::Config;
use accessgate::policy::PolicyState;
use accessgate::policy::import::{self, Outcome};
use serde_json::Value;

const RESOURCES: [&str; 2] = [
    "5e1f0c2a-7b8d-4c3e-9f10-aa0000000001=corp-api",
    "5e1f0c2a-7b8d-4c3e-9f10-aa0000000002=admin-api",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

fn gateway() -> Config {
    accessgate::config::load(&fixture("gateway.toml")).unwrap()
}

/// The fixture gateway with its policies replaced by `policies` (TOML text).
fn gateway_with(policies: &str) -> Config {
    with_policies(&read("gateway.toml"), policies, &fixture("gateway.toml"))
        .unwrap_or_else(|e| panic!("{e}\n{policies}"))
}

fn imported(policies: &str) -> Vec<Outcome> {
    let config = gateway();
    let pairs: Vec<String> = RESOURCES.iter().map(|s| s.to_string()).collect();
    let locations =
        import::named_locations(&read_pages(&[fixture("named-locations.json")]).unwrap()).unwrap();
    let cx = context(
        &config,
        resource_pairs(&pairs, &config).unwrap(),
        Some(locations),
    );
    import::import(&read_pages(&[fixture(policies)]).unwrap(), &cx)
}

fn debug_policies(c: &Config) -> Vec<String> {
    c.policies.iter().map(|p| format!("{p:?}")).collect()
}

#[test]
fn imported_policies_equal_the_hand_written_ones() {
    let outcomes = imported("policies.json");
    let text = import::emit::toml(&outcomes);
    let kinds: Vec<&str> = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Imported(_) => "imported",
            Outcome::Skipped { .. } => "skipped",
            Outcome::Refused { .. } => "refused",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "imported", "imported", "imported", "imported", "skipped", "imported", "skipped",
            "skipped", "imported"
        ]
    );
    let from_import = gateway_with(&text);
    let by_hand = gateway_with(&read("expected.toml"));
    assert_eq!(
        debug_policies(&from_import),
        debug_policies(&by_hand),
        "\n{text}"
    );
    for id in [
        "7a1f0001-0000-4000-8000-000000000001",
        "7a1f0009-0000-4000-8000-000000000009",
    ] {
        assert!(
            text.contains(&format!("# Entra policy {id}: \"CA00")),
            "{text}"
        );
    }
}

#[test]
fn imported_and_hand_written_policies_decide_alike() {
    let state = PolicyState::from_json(read("state.json").as_bytes()).unwrap();
    let cases = read("cases.toml");
    let text = import::emit::toml(&imported("policies.json"));
    let mut decisions = Vec::new();
    for config in [gateway_with(&text), gateway_with(&read("expected.toml"))] {
        let report = accessgate::cli::whatif::run_policy_tests(&config, &state, &cases).unwrap();
        assert!(report.passed(), "{report}");
        assert_eq!(report.cases.len(), 15);
        decisions.push(
            report
                .cases
                .iter()
                .map(|c| (c.got.clone(), c.policy.clone()))
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(decisions[0], decisions[1]);
    // Every decision kind the fixtures aim at is there: a test set of only "allow" proves little.
    for want in [
        "allow (allow)",
        "block (block_policy)",
        "block (device_noncompliant)",
        "step_up (mfa_required)",
        "reauthenticate (sign_in_frequency)",
    ] {
        assert!(
            decisions[0].iter().any(|(got, _)| got == want),
            "no case got {want}: {:?}",
            decisions[0]
        );
    }
}

fn accessgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_accessgate"))
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Import arguments for the fixture gateway.
fn import_args<'a>(config: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["import-policies", "--config", config];
    for r in &RESOURCES {
        v.extend(["--resource", r]);
    }
    v.extend(extra);
    v
}

/// The fixture gateway as a standalone file in `dir` (absolute paths), with `policies`.
fn write_gateway(
    dir: &Path,
    policies: &str,
    state: Option<toml::Table>,
    graph: Option<toml::Table>,
) -> PathBuf {
    let mut t: toml::Table = read("gateway.toml").parse().unwrap();
    let abs = |rel: &str| fixture(rel).to_string_lossy().into_owned();
    t["listen"]["tls_cert"] = abs("../../../certs/localhost.crt").into();
    t["listen"]["tls_key"] = abs("../../../certs/localhost.key").into();
    t["issuers"][0]["jwks_file"] = abs("../../../certs/dev-jwks.json").into();
    t["state"]["path"] = abs("state.json").into();
    if let Some(s) = state {
        t.insert("state".into(), s.into());
    }
    if let Some(g) = graph {
        t.insert("graph".into(), g.into());
    }
    t.remove("policies");
    let path = dir.join("gateway.toml");
    std::fs::write(
        &path,
        format!("{}\n{policies}", toml::to_string(&t).unwrap()),
    )
    .unwrap();
    path
}

#[test]
fn cli_output_passes_check_test_policies_and_eval_like_the_hand_written_set() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("policies.toml");
    let gw = fixture("gateway.toml");
    let (gw, out_s) = (gw.to_str().unwrap(), out.to_str().unwrap());
    let locs = fixture("named-locations.json");
    let pols = fixture("policies.json");
    let r = accessgate(&import_args(
        gw,
        &[
            "--from-json",
            pols.to_str().unwrap(),
            "--named-locations",
            locs.to_str().unwrap(),
            "--out",
            out_s,
        ],
    ));
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(r.stdout.is_empty());
    assert!(
        text(&r.stderr).contains("6 imported, 3 skipped"),
        "{}",
        text(&r.stderr)
    );
    let policies = std::fs::read_to_string(&out).unwrap();

    let imported_dir = dir.path().join("imported");
    let by_hand_dir = dir.path().join("by-hand");
    std::fs::create_dir_all(&imported_dir).unwrap();
    std::fs::create_dir_all(&by_hand_dir).unwrap();
    let imported_cfg = write_gateway(&imported_dir, &policies, None, None);
    let by_hand_cfg = write_gateway(&by_hand_dir, &read("expected.toml"), None, None);
    let cases = fixture("cases.toml");
    let claims = dir.path().join("claims.json");
    std::fs::write(&claims, r#"{"iss": "https://login.accessgate.dev/demo-tenant/v2.0", "oid": "a1111111-1111-4111-8111-111111111111",
        "azp": "0c1307d4-29d6-4389-a11c-5cbe7f65d7fa", "deviceid": "da111111-1111-4111-8111-111111111111", "amr": ["pwd"], "iat": 1780315100}"#).unwrap();
    let mut evals = Vec::new();
    for cfg in [&imported_cfg, &by_hand_cfg] {
        let cfg = cfg.to_str().unwrap();
        let check = accessgate(&["check", "--config", cfg]);
        assert!(check.status.success(), "{}", text(&check.stderr));
        let tests = accessgate(&["test-policies", "--config", cfg, cases.to_str().unwrap()]);
        assert!(
            tests.status.success(),
            "{}{}",
            text(&tests.stdout),
            text(&tests.stderr)
        );
        assert!(
            text(&tests.stdout).contains("15 passed, 0 failed"),
            "{}",
            text(&tests.stdout)
        );
        let mut per_ip = Vec::new();
        for (resource, ip) in [
            ("admin-api", "192.0.2.1"),
            ("admin-api", "203.0.113.9"),
            ("corp-api", "192.0.2.1"),
            ("corp-api", "10.1.1.1"),
        ] {
            let e = accessgate(&[
                "eval",
                "--config",
                cfg,
                "--resource",
                resource,
                "--claims",
                claims.to_str().unwrap(),
                "--ip",
                ip,
                "--at",
                "2026-06-01T12:00:00Z",
                "--json",
            ]);
            assert!(e.status.success(), "{}", text(&e.stderr));
            let mut v: Value = serde_json::from_slice(&e.stdout).unwrap();
            v.as_object_mut().unwrap().remove("decision_id");
            per_ip.push(v);
        }
        evals.push(per_ip);
    }
    assert_eq!(evals[0], evals[1]);
    let decisions: Vec<&str> = evals[0]
        .iter()
        .map(|v| v["decision"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(decisions, ["block", "step_up", "step_up", "allow"]);
}

#[test]
fn cli_refuses_unsupported_policies_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("policies.toml");
    let gw = fixture("gateway.toml");
    let (gw, out_s) = (gw.to_str().unwrap(), out.to_str().unwrap());
    let pols = fixture("refusals.json");
    let locs = fixture("named-locations.json");
    let base = [
        "--from-json",
        pols.to_str().unwrap(),
        "--named-locations",
        locs.to_str().unwrap(),
        "--out",
        out_s,
    ];
    let r = accessgate(&import_args(gw, &base));
    assert_eq!(r.status.code(), Some(1));
    assert!(
        !out.exists(),
        "nothing may be written when a policy is refused"
    );
    let err = text(&r.stderr);
    for needle in [
        "signInRiskLevels",
        "includeRoles",
        "excludeRoles",
        "GuestsOrExternalUsers",
        "includeLocations AllTrusted",
        "cloudAppSecurity",
        "termsOfUse",
        "domainJoinedDevice",
        "authenticationStrength \"Phishing-resistant MFA\"",
        "country named location",
        "clientAppTypes [\"browser\"]",
        "conditions.devices",
        "session-only",
        "5 not imported",
    ] {
        assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
    }
    let mut args = import_args(gw, &base);
    args.push("--skip-unsupported");
    let r = accessgate(&args);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let written = std::fs::read_to_string(&out).unwrap();
    assert_eq!(written.matches("# NOT IMPORTED:").count(), 5, "{written}");
    assert!(!written.contains("[[policies]]"));
    assert!(gateway_with(&written).policies.is_empty());
}

#[test]
fn cli_reads_pages_and_refuses_an_incomplete_list() {
    let dir = tempfile::tempdir().unwrap();
    let all: Value = serde_json::from_str(&read("policies.json")).unwrap();
    let items = all["value"].as_array().unwrap();
    let page1 = dir.path().join("page1.json");
    let page2 = dir.path().join("page2.json");
    std::fs::write(&page1, serde_json::json!({"value": items[..4],
        "@odata.nextLink": "https://graph.microsoft.com/v1.0/identity/conditionalAccess/policies?$skiptoken=x"}).to_string()).unwrap();
    std::fs::write(&page2, Value::Array(items[4..].to_vec()).to_string()).unwrap();
    let gw = fixture("gateway.toml");
    let locs = fixture("named-locations.json");
    let (gw, locs) = (gw.to_str().unwrap(), locs.to_str().unwrap());
    let (p1, p2, whole) = (
        page1.to_str().unwrap(),
        page2.to_str().unwrap(),
        fixture("policies.json"),
    );

    let r = accessgate(&import_args(
        gw,
        &["--from-json", p1, "--named-locations", locs],
    ));
    assert_eq!(r.status.code(), Some(1));
    assert!(
        text(&r.stderr).contains("@odata.nextLink"),
        "{}",
        text(&r.stderr)
    );
    assert!(r.stdout.is_empty());

    let paged = accessgate(&import_args(
        gw,
        &[
            "--from-json",
            p1,
            "--from-json",
            p2,
            "--named-locations",
            locs,
        ],
    ));
    let single = accessgate(&import_args(
        gw,
        &[
            "--from-json",
            whole.to_str().unwrap(),
            "--named-locations",
            locs,
        ],
    ));
    assert!(
        paged.status.success() && single.status.success(),
        "{}",
        text(&paged.stderr)
    );
    assert_eq!(text(&paged.stdout), text(&single.stdout));

    let two_lists = accessgate(&import_args(
        gw,
        &[
            "--from-json",
            p2,
            "--from-json",
            whole.to_str().unwrap(),
            "--named-locations",
            locs,
        ],
    ));
    assert_eq!(two_lists.status.code(), Some(1));
    assert!(
        text(&two_lists.stderr).contains("pass the pages of one list"),
        "{}",
        text(&two_lists.stderr)
    );

    let twice = accessgate(&import_args(
        gw,
        &[
            "--from-json",
            p1,
            "--from-json",
            p1,
            "--from-json",
            p2,
            "--named-locations",
            locs,
        ],
    ));
    assert_eq!(twice.status.code(), Some(1));
    assert!(
        text(&twice.stderr).contains("appears twice"),
        "{}",
        text(&twice.stderr)
    );
}

#[test]
fn cli_refuses_bad_arguments_and_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let gw = fixture("gateway.toml");
    let gw = gw.to_str().unwrap();
    let pols = fixture("policies.json");
    let pols = pols.to_str().unwrap();
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{\"value\": 3}").unwrap();
    for (args, needle) in [
        (
            vec![
                "import-policies",
                "--config",
                gw,
                "--from-json",
                pols,
                "--resource",
                "5e1f0c2a-7b8d-4c3e-9f10-aa0000000001=nope",
            ],
            "no route has resource \"nope\"",
        ),
        (
            vec![
                "import-policies",
                "--config",
                gw,
                "--from-json",
                pols,
                "--resource",
                "corp-api",
            ],
            "expected APP_ID=RESOURCE",
        ),
        (
            vec![
                "import-policies",
                "--config",
                gw,
                "--from-json",
                pols,
                "--resource",
                "A=corp-api",
                "--resource",
                "a=admin-api",
            ],
            "mapped to both",
        ),
        (
            vec!["import-policies", "--config", gw, "--from-graph"],
            "[state] source = \"graph\"",
        ),
        (
            vec![
                "import-policies",
                "--config",
                gw,
                "--from-json",
                garbage.to_str().unwrap(),
            ],
            "\"value\" is not an array",
        ),
        (
            vec![
                "import-policies",
                "--config",
                gw,
                "--from-json",
                "/nonexistent/p.json",
            ],
            "/nonexistent/p.json",
        ),
        // Policies name locations, and no --named-locations was given.
        (
            vec!["import-policies", "--config", gw, "--from-json", pols],
            "pass --named-locations",
        ),
    ] {
        let r = accessgate(&args);
        assert_eq!(r.status.code(), Some(1), "{args:?}");
        assert!(
            text(&r.stderr).contains(needle),
            "{args:?}: {}",
            text(&r.stderr)
        );
        assert!(r.stdout.is_empty());
    }
}
