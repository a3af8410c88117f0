//! Whole-file behaviour: the shipped configs, defaults, path resolution, the error format,
//! syntax and unknown-key errors in every section, and collecting several errors at once.
//! Section-specific checks are tested next to each section under `validate/`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::testkit::{BASE, SOURCE, err, line_of, ok, parse, refused, with};
use super::*;
use crate::config::{
    AuthMode, ChallengeStyle, ClaimNames, DecisionLogTarget, Grant, GrantControl, JwsAlgorithm,
    KeySource, PolicyMode, Selector, StateSource,
};

#[test]
fn example_config_parses() {
    let text = include_str!("../../../config/accessgate.toml");
    let config = match parse_str(text, Path::new("/repo/config/accessgate.toml")) {
        Ok(c) => c,
        Err(e) => panic!("config/accessgate.toml is invalid:\n{e}"),
    };
    assert_eq!(
        config.listen.tls_cert,
        PathBuf::from("/repo/config/../certs/localhost.crt")
    );
    assert_eq!(config.routes.len(), 2);
    assert_eq!(config.policies.len(), 3);
    assert_eq!(config.issuers[0].keys, KeySource::Uri(
        "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/discovery/v2.0/keys".into()
    ));
    let modes: Vec<PolicyMode> = config.policies.iter().map(|p| p.mode).collect();
    assert_eq!(
        modes,
        [
            PolicyMode::Enabled,
            PolicyMode::ReportOnly,
            PolicyMode::Disabled
        ]
    );
    assert_eq!(
        config.policies[0].sign_in_frequency,
        Some(Duration::from_secs(8 * 3600))
    );
    assert_eq!(config.policies[2].grant, Grant::Block);
}

#[test]
fn demo_config_parses_and_is_the_embedded_one() {
    assert_eq!(DEMO_CONFIG, include_str!("../../../config/demo.toml"));
    let config = match parse_str(DEMO_CONFIG, Path::new("/repo/config/demo.toml")) {
        Ok(c) => c,
        Err(e) => panic!("config/demo.toml is invalid:\n{e}"),
    };
    assert_eq!(
        config.listen.address,
        SocketAddr::from(([127, 0, 0, 1], 8443))
    );
    assert_eq!(
        config.admin.address,
        Some(SocketAddr::from(([127, 0, 0, 1], 9901)))
    );
    let issuer = &config.issuers[0];
    assert_eq!(
        issuer.issuer,
        "https://login.accessgate.dev/demo-tenant/v2.0"
    );
    assert_eq!(
        issuer.keys,
        KeySource::File("/repo/config/../certs/dev-jwks.json".into())
    );
    assert_eq!(
        issuer.algorithms,
        [JwsAlgorithm::RS256, JwsAlgorithm::ES256]
    );
    let names: Vec<(&str, &str, AuthMode)> = config
        .routes
        .iter()
        .map(|r| (r.name.as_str(), r.path_prefix.as_str(), r.auth))
        .collect();
    assert_eq!(
        names,
        [
            ("public", "/public", AuthMode::None),
            ("corp-api", "/", AuthMode::Required)
        ]
    );
    assert_eq!(
        config.state.source,
        StateSource::File("/repo/config/demo-state.json".into())
    );
    assert_eq!(
        config.approved_apps,
        ["0c1307d4-29d6-4389-a11c-5cbe7f65d7fa"]
    );
}

#[test]
fn defaults_are_applied() {
    let c = ok(BASE);
    assert_eq!(c.listen.address, SocketAddr::from(([0, 0, 0, 0], 8443)));
    assert_eq!(c.listen.handshake_timeout, Duration::from_secs(10));
    assert_eq!(c.listen.header_read_timeout, Duration::from_secs(10));
    assert_eq!(c.listen.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.listen.max_connections, 10_000);
    assert_eq!(c.listen.max_header_bytes, 16_384);
    assert_eq!(c.listen.h2_max_concurrent_streams, 256);
    assert!(c.listen.trusted_proxies.is_empty() && c.listen.client_ca.is_none());
    assert_eq!(c.runtime.worker_threads, 0);
    assert_eq!(c.runtime.shutdown_grace, Duration::from_secs(30));
    assert_eq!(
        c.admin.address,
        Some(SocketAddr::from(([127, 0, 0, 1], 9901)))
    );
    assert_eq!(c.tokens.clock_skew, Duration::from_secs(60));
    assert_eq!(c.tokens.jwks_refresh, Duration::from_secs(3600));
    assert_eq!(c.tokens.jwks_min_refetch, Duration::from_secs(300));
    assert_eq!(c.tokens.cache_capacity, 100_000);
    assert_eq!(
        c.state.source,
        StateSource::File("/etc/accessgate/state.json".into())
    );
    assert_eq!(c.state.refresh, Duration::from_secs(10));
    assert_eq!(c.state.max_staleness, Duration::from_secs(300));
    assert!(!c.state.fail_open);
    let r = &c.routes[0];
    assert_eq!((r.path_prefix.as_str(), r.resource.as_str()), ("/", "api"));
    assert_eq!(
        (r.auth, r.forward_token, r.host.as_deref()),
        (AuthMode::Required, true, None)
    );
    assert_eq!(r.connect_timeout, Duration::from_secs(2));
    assert_eq!(r.upstream_max_connections, 256);
    assert_eq!(r.request_timeout, Duration::from_secs(30));
    let i = &c.issuers[0];
    assert_eq!(i.algorithms, [JwsAlgorithm::RS256]);
    assert_eq!(
        (i.challenge, &i.claims),
        (ChallengeStyle::Entra, &ClaimNames::default())
    );
    assert!(!i.multi_tenant && i.tenants.is_empty() && i.jwks_ca.is_none());
    assert!(c.policies.is_empty() && c.approved_apps.is_empty());
    assert_eq!(c.log.level, "info");
    assert_eq!(c.log.decisions, DecisionLogTarget::Stdout);
    assert_eq!(c.log.allow_sample, 1.0);
    assert_eq!(c.source, PathBuf::from(SOURCE));
}

#[test]
fn policy_defaults_are_applied() {
    let c = ok(&with(
        "[[policies]]\nname = \"p\"\nresources = [\"api\"]\ninclude_users = [\"all\"]\ngrant = { controls = [\"mfa\"] }\n",
    ));
    let p = &c.policies[0];
    assert_eq!(p.mode, PolicyMode::Enabled);
    assert_eq!(p.include_users, Selector::All);
    assert_eq!(
        p.remediation,
        crate::config::Remediation {
            enabled: true,
            window: Duration::from_secs(900)
        }
    );
    assert_eq!(
        p.grant,
        Grant::Controls {
            operator: crate::config::GrantOperator::All,
            controls: vec![GrantControl::Mfa],
            auth_context: None
        }
    );
    assert!(p.sign_in_frequency.is_none() && p.platforms.is_empty() && p.client_apps.is_empty());
}

#[test]
fn relative_paths_resolve_against_the_config_folder() {
    let text = with(
        "client_ca = \"/abs/ca.pem\"\n[state]\npath = \"../state/s.json\"\n[log]\ndecisions = \"decisions.log\"\n",
    );
    let c = ok(&text);
    assert_eq!(
        c.listen.tls_cert,
        PathBuf::from("/etc/accessgate/tls/cert.pem")
    );
    assert_eq!(c.listen.client_ca, Some(PathBuf::from("/abs/ca.pem")));
    assert_eq!(
        c.issuers[0].keys,
        KeySource::File("/etc/accessgate/keys/jwks.json".into())
    );
    assert_eq!(
        c.state.source,
        StateSource::File("/etc/accessgate/../state/s.json".into())
    );
    assert_eq!(
        c.log.decisions,
        DecisionLogTarget::File("/etc/accessgate/decisions.log".into())
    );
    assert_eq!(c.base_dir(), Path::new("/etc/accessgate"));
}

#[test]
fn a_relative_source_is_made_absolute() {
    let c = match parse_str(BASE, Path::new("conf/gw.toml")) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    assert!(c.source.is_absolute(), "{}", c.source.display());
    assert!(c.listen.tls_cert.is_absolute());
    assert!(c.listen.tls_cert.ends_with("conf/tls/cert.pem"));
}

#[test]
fn errors_have_file_line_column_and_key() {
    let text = with("[[routes]]\nname = \"bad\"\npath_prefix = \"/bad\"\nupstream = \"ftp://x\"\n");
    let line = line_of(&text, "ftp://x");
    let e = err(&text);
    assert_eq!(
        e,
        format!(
            "{SOURCE}:{line}:12: routes[1].upstream: \"ftp://x\" is not an http:// URL (expected http://host[:port][/base])"
        )
    );
}

#[test]
fn all_semantic_errors_are_reported_in_order() {
    let text = with(
        "address = \"nope\"\nmax_connections = 0\n[tokens]\nclock_skew = \"soon\"\n[[routes]]\nname = \"api\"\nupstream = \"https://x\"\n",
    );
    let e = match parse(&text) {
        Ok(_) => panic!("accepted"),
        Err(e) => e,
    };
    assert_eq!(e.count(), 6, "{e}");
    let lines: Vec<usize> = e
        .messages()
        .map(|m| {
            m.split(':')
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        })
        .collect();
    assert!(lines.iter().all(|l| *l > 0), "{e}");
    assert!(
        lines.windows(2).all(|w| w[0] <= w[1]),
        "not in file order:\n{e}"
    );
    let keys = [
        "listen.address",
        "listen.max_connections",
        "tokens.clock_skew",
        "routes[1].name",
        "routes[1].upstream",
        "routes[1]: same host and path_prefix",
    ];
    for key in keys {
        assert!(e.message.contains(key), "{key} missing in:\n{e}");
    }
}

#[test]
fn syntax_errors_name_the_line() {
    let text = with("[tokens\nclock_skew = \"1s\"\n");
    refused(&text, "[tokens", "", "TOML syntax error");
    let text = with("tls_key = \"again.pem\"\n");
    refused(&text, "again.pem", "", "duplicate key \"tls_key\"");
}

#[test]
fn wrong_types_name_the_key() {
    refused(
        &with("max_connections = \"many\"\n"),
        "many",
        "listen.max_connections",
        "expected an integer",
    );
    refused(
        &with("[state]\nfail_open = \"yes\"\n"),
        "fail_open",
        "state.fail_open",
        "expected a boolean",
    );
    refused(
        &with("trusted_proxies = \"10.0.0.0/8\"\n"),
        "trusted_proxies",
        "listen.trusted_proxies",
        "expected an array",
    );
    refused(
        &with("[log]\nallow_sample = \"half\"\n"),
        "half",
        "log.allow_sample",
        "expected a number",
    );
    refused(
        "[routes]\nname = \"r\"\n[listen]\ntls_cert = \"c\"\ntls_key = \"k\"\n",
        "[routes]",
        "routes",
        "write [[routes]] for each entry",
    );
    refused(
        &format!("tokens = 3\n{BASE}"),
        "tokens = 3",
        "tokens",
        "expected a table",
    );
}

#[test]
fn unknown_keys_are_refused_in_every_section() {
    let routes = "[[routes]]\nname = \"r2\"\nupstream = \"http://127.0.0.1:1\"\n";
    let policy = "[[policies]]\nname = \"p\"\nresources = [\"api\"]\ninclude_users = [\"all\"]\n";
    let cases: Vec<(String, &str)> = vec![
        (with("adress = \"0.0.0.0:1\"\n"), "in [listen]"),
        (with("[runtime]\nworkers = 2\n"), "in [runtime]"),
        (with("[admin]\nport = 9901\n"), "in [admin]"),
        (
            with("[[issuers]]\nissuer = \"https://b.test\"\naudience = [\"x\"]\n"),
            "in issuers[1]",
        ),
        (
            with("[[issuers]]\nclaims = { usr = \"oid\" }\n"),
            "in issuers[1].claims",
        ),
        (with("[tokens]\nskew = \"1s\"\n"), "in [tokens]"),
        (with("[state]\nfile = \"s.json\"\n"), "in [state]"),
        (with(&format!("{routes}timeout = \"1s\"\n")), "in routes[1]"),
        (
            with(&format!("{policy}users = [\"all\"]\n")),
            "in policies[0]",
        ),
        (
            with(&format!("{policy}locations = {{ allow = [] }}\n")),
            "in policies[0].locations",
        ),
        (
            with(&format!(
                "{policy}grant = {{ controls = [\"mfa\"], op = \"any\" }}\n"
            )),
            "in policies[0].grant",
        ),
        (
            with(&format!("{policy}session = {{ frequency = \"1h\" }}\n")),
            "in policies[0].session",
        ),
        (
            with(&format!("{policy}remediation = {{ enable = true }}\n")),
            "in policies[0].remediation",
        ),
        (with("[approved_apps]\napps = []\n"), "in [approved_apps]"),
        (with("[log]\nformat = \"json\"\n"), "in [log]"),
        (format!("lsten = 1\n{BASE}"), "at the top level"),
    ];
    for (text, place) in cases {
        let e = err(&text);
        assert!(
            e.contains("unknown key") && e.contains(place),
            "{place}: {e}"
        );
        // The line is the line of the unknown key itself.
        let line: usize = e
            .split(':')
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let key_line = text.lines().nth(line.saturating_sub(1)).unwrap_or("");
        let name = e.split('"').nth(1).unwrap_or("?");
        assert!(
            key_line.contains(name),
            "{place}: line {line} is {key_line:?} for {e}"
        );
    }
}

#[test]
fn unknown_key_lists_valid_keys() {
    let text = with("adress = \"0.0.0.0:1\"\n");
    let line = refused(&text, "adress", "", "unknown key \"adress\" in [listen]");
    assert!(
        line.contains("\"address\"") && line.contains("\"tls_cert\""),
        "{line}"
    );
}

#[test]
fn listen_section_is_required() {
    let text = "[[routes]]\nname = \"r\"\nupstream = \"http://127.0.0.1:1\"\nauth = \"none\"\n";
    let e = err(text);
    assert!(
        e.starts_with(&format!("{SOURCE}: listen: missing [listen] section")),
        "{e}"
    );
}

#[test]
fn at_least_one_route_is_required() {
    let text = "[listen]\ntls_cert = \"c\"\ntls_key = \"k\"\n";
    let e = err(text);
    assert!(
        e.contains(&format!("{SOURCE}: routes: at least one [[routes]]")),
        "{e}"
    );
}

#[test]
fn issuers_may_be_empty_only_when_no_route_needs_a_token() {
    let public = "[[routes]]\nname = \"r\"\nupstream = \"http://127.0.0.1:1\"\nauth = \"none\"\n[listen]\ntls_cert = \"c\"\ntls_key = \"k\"\n";
    assert!(ok(public).issuers.is_empty());
    let private = "[[routes]]\nname = \"r\"\nupstream = \"http://127.0.0.1:1\"\n[listen]\ntls_cert = \"c\"\ntls_key = \"k\"\n";
    refused(
        private,
        "[[routes]]",
        "routes[0]",
        "no [[issuers]] is configured",
    );
}

#[test]
fn load_reads_a_file_and_names_a_missing_one() {
    let dir = std::env::temp_dir().join(format!("accessgate-config-test-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("gw.toml");
    let written = std::fs::write(&path, BASE);
    let loaded = load(&path);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(written.is_ok());
    let config = match loaded {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(config.listen.tls_cert, dir.join("tls/cert.pem"));
    let missing = dir.join("missing.toml");
    let e = match load(&missing) {
        Ok(_) => panic!("loaded a missing file"),
        Err(e) => e.message,
    };
    assert!(e.starts_with(&missing.display().to_string()), "{e}");
}

#[test]
fn summary_names_what_will_run() {
    let text = include_str!("../../../config/accessgate.toml");
    let config = match parse_str(text, Path::new("/repo/config/accessgate.toml")) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let s = config.summary();
    for needle in [
        "listen: 0.0.0.0:8443",
        "admin: http://127.0.0.1:9901",
        "issuers: 1",
        "keys from jwks_uri https://login.microsoftonline.com/",
        "routes: 2",
        "corp-api: api.corp.example/ -> http://127.0.0.1:8080 (token required, resource \"corp-api\")",
        "health: api.corp.example/health -> http://127.0.0.1:8080 (public, no token)",
        "policies: 3 (1 enabled, 1 report_only, 1 disabled)",
        "state: file /repo/config/state.json (refresh 10s, max staleness 5m, fail closed when stale)",
    ] {
        assert!(s.contains(needle), "{needle:?} not in:\n{s}");
    }
}

proptest::proptest! {
    /// Arbitrary text, and the example config with one byte changed, never panic the
    /// validator: a reload of a half-written file must produce an error, not a crash.
    #[test]
    fn arbitrary_text_never_panics(text in "(?s).{0,200}") {
        let _ = parse(&text);
    }

    #[test]
    fn mutated_example_never_panics(index in 0usize..4096, byte in proptest::prelude::any::<u8>()) {
        let mut bytes = include_str!("../../../config/accessgate.toml").as_bytes().to_vec();
        let at = index % bytes.len();
        bytes[at] = byte;
        if let Ok(text) = String::from_utf8(bytes) {
            let _ = parse(&text);
        }
    }
}
