//! `[listen]`, `[runtime]`, `[admin]`, `[tokens]`, `[state]`, `[approved_apps]`, `[log]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{DEFAULT_ADMIN, DEFAULT_LISTEN};
use crate::config::validate::testkit::{BASE, ok, refused, with};
use crate::config::{DecisionLogTarget, Scheduler, StateSource};

const NO_LISTEN: &str =
    "[[routes]]\nname = \"r\"\nupstream = \"http://127.0.0.1:1\"\nauth = \"none\"\n";

#[test]
fn default_addresses_are_valid() {
    assert!(DEFAULT_LISTEN.parse::<SocketAddr>().is_ok());
    assert!(DEFAULT_ADMIN.parse::<SocketAddr>().is_ok());
}

#[test]
fn listen_accepts_every_key() {
    let c = ok(&with(
        "address = \"[::1]:9443\"\nclient_ca = \"ca.pem\"\nhandshake_timeout = \"5s\"\nheader_read_timeout = \"3s\"\nidle_timeout = \"2m\"\nmax_connections = 5\nmax_header_bytes = 1024\nh2_max_concurrent_streams = 10\ntrusted_proxies = [\"10.0.0.0/8\", \"192.0.2.1\", \"10.0.0.0/8\"]\n",
    ));
    let l = &c.listen;
    assert_eq!(
        l.address,
        SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 9443))
    );
    assert_eq!(l.client_ca, Some(PathBuf::from("/etc/accessgate/ca.pem")));
    assert_eq!(l.handshake_timeout, Duration::from_secs(5));
    assert_eq!(l.header_read_timeout, Duration::from_secs(3));
    assert_eq!(l.idle_timeout, Duration::from_secs(120));
    assert_eq!(
        (
            l.max_connections,
            l.max_header_bytes,
            l.h2_max_concurrent_streams
        ),
        (5, 1024, 10)
    );
    let proxies: Vec<String> = l.trusted_proxies.iter().map(|n| n.to_string()).collect();
    assert_eq!(proxies, ["10.0.0.0/8", "192.0.2.1/32"]);
}

#[test]
fn listen_refuses_bad_values() {
    refused(
        &with("address = \"localhost:8443\"\n"),
        "localhost:8443",
        "listen.address",
        "not an ip:port",
    );
    refused(
        &with("handshake_timeout = \"10\"\n"),
        "handshake_timeout",
        "listen.handshake_timeout",
        "missing unit",
    );
    refused(
        &with("header_read_timeout = \"0s\"\n"),
        "header_read_timeout",
        "listen.header_read_timeout",
        "greater than zero",
    );
    refused(
        &with("idle_timeout = \"-1s\"\n"),
        "idle_timeout",
        "listen.idle_timeout",
        "negative",
    );
    refused(
        &with("max_connections = 0\n"),
        "max_connections",
        "listen.max_connections",
        "out of range",
    );
    refused(
        &with("max_header_bytes = 1023\n"),
        "max_header_bytes",
        "listen.max_header_bytes",
        "out of range (allowed 1024..=1048576)",
    );
    refused(
        &with("max_header_bytes = 1048577\n"),
        "max_header_bytes",
        "listen.max_header_bytes",
        "out of range",
    );
    refused(
        &with("h2_max_concurrent_streams = 0\n"),
        "h2_max",
        "listen.h2_max_concurrent_streams",
        "out of range",
    );
    refused(
        &with("trusted_proxies = [\"10.0.0.0/8\", \"corp-lb\"]\n"),
        "corp-lb",
        "listen.trusted_proxies[1]",
        "is not a CIDR",
    );
    refused(
        &with("client_ca = \"\"\n"),
        "client_ca",
        "listen.client_ca",
        "must not be empty",
    );
}

#[test]
fn listen_requires_cert_and_key() {
    let text = format!("{NO_LISTEN}[listen]\naddress = \"127.0.0.1:1\"\n");
    refused(&text, "[listen]", "listen.tls_cert", "missing (required)");
    refused(&text, "[listen]", "listen.tls_key", "missing (required)");
    let text = format!("{NO_LISTEN}[listen]\ntls_cert = \"\"\ntls_key = \"k\"\n");
    refused(&text, "tls_cert", "listen.tls_cert", "must not be empty");
}

#[test]
fn runtime_values() {
    let c = ok(&with(
        "[runtime]\nworker_threads = 4\nshutdown_grace = \"0s\"\n",
    ));
    assert_eq!(
        (c.runtime.worker_threads, c.runtime.shutdown_grace),
        (4, Duration::ZERO)
    );
    refused(
        &with("[runtime]\nworker_threads = -1\n"),
        "worker_threads",
        "runtime.worker_threads",
        "out of range",
    );
    assert_eq!(ok(&with("")).runtime.scheduler, Scheduler::PerCore);
    for (name, value) in Scheduler::CHOICES {
        let c = ok(&with(&format!(
            "[runtime]\nworker_threads = 1\nscheduler = \"{name}\"\n"
        )));
        assert_eq!(c.runtime.scheduler, value);
        assert_eq!(c.runtime.workers(), 1);
    }
    refused(
        &with("[runtime]\nscheduler = \"reuseport\"\n"),
        "reuseport",
        "runtime.scheduler",
        "is not one of \"per_core\", \"work_stealing\", \"current_thread\"",
    );
    refused(
        &with("[runtime]\nworker_threads = 2\nscheduler = \"current_thread\"\n"),
        "current_thread",
        "runtime.scheduler",
        "runs one worker, but worker_threads = 2",
    );
    let c = ok(&with("[runtime]\nscheduler = \"current_thread\"\n"));
    assert_eq!((c.runtime.workers(), c.runtime.upstream_pools()), (1, 1));
    let c = ok(&with("[runtime]\nworker_threads = 3\n"));
    assert_eq!((c.runtime.workers(), c.runtime.upstream_pools()), (3, 3));
    let c = ok(&with(
        "[runtime]\nworker_threads = 3\nscheduler = \"work_stealing\"\n",
    ));
    assert_eq!((c.runtime.workers(), c.runtime.upstream_pools()), (3, 1));
    refused(
        &with("[runtime]\nshutdown_grace = \"forever\"\n"),
        "forever",
        "runtime.shutdown_grace",
        "expected a duration",
    );
}

#[test]
fn admin_can_be_moved_or_disabled() {
    assert_eq!(ok(&with("[admin]\naddress = \"\"\n")).admin.address, None);
    assert_eq!(
        ok(&with("[admin]\naddress = \"127.0.0.1:0\"\n"))
            .admin
            .address
            .map(|a| a.port()),
        Some(0)
    );
    refused(
        &with("[admin]\naddress = \"admin:9901\"\n"),
        "admin:9901",
        "admin.address",
        "use \"\" to disable",
    );
    // Single quotes (a TOML literal string) tell the two lines apart for the marker.
    let text = with("address = \"127.0.0.1:9000\"\n[admin]\naddress = '127.0.0.1:9000'\n");
    refused(
        &text,
        "'127.0.0.1:9000'",
        "admin.address",
        "127.0.0.1:9000 is also listen.address",
    );
}

#[test]
fn tokens_values() {
    let c = ok(&with(
        "[tokens]\nclock_skew = \"0s\"\njwks_refresh = \"30m\"\njwks_min_refetch = \"30s\"\ncache_capacity = 0\n",
    ));
    let t = &c.tokens;
    assert_eq!(
        (
            t.clock_skew,
            t.jwks_refresh,
            t.jwks_min_refetch,
            t.cache_capacity
        ),
        (
            Duration::ZERO,
            Duration::from_secs(1800),
            Duration::from_secs(30),
            0
        )
    );
    refused(
        &with("[tokens]\nclock_skew = \"11m\"\n"),
        "clock_skew",
        "tokens.clock_skew",
        "at most 10m",
    );
    refused(
        &with("[tokens]\njwks_refresh = \"0s\"\n"),
        "jwks_refresh",
        "tokens.jwks_refresh",
        "greater than zero",
    );
    refused(
        &with("[tokens]\njwks_min_refetch = \"5 m\"\n"),
        "jwks_min_refetch",
        "tokens.jwks_min_refetch",
        "expected a duration",
    );
    refused(
        &with("[tokens]\ncache_capacity = -1\n"),
        "cache_capacity",
        "tokens.cache_capacity",
        "out of range",
    );
}

#[test]
fn state_file_and_http_sources() {
    let c = ok(&with(
        "[state]\nsource = \"file\"\npath = \"/var/lib/ag/state.json\"\nrefresh = \"1s\"\nmax_staleness = \"1s\"\nfail_open = true\n",
    ));
    assert_eq!(
        c.state.source,
        StateSource::File("/var/lib/ag/state.json".into())
    );
    assert!(c.state.fail_open);
    let c = ok(&with(
        "[state]\nsource = \"http\"\nurl = \"https://state.corp.example/s.json\"\nca = \"state-ca.pem\"\n",
    ));
    assert_eq!(
        c.state.source,
        StateSource::Http {
            url: "https://state.corp.example/s.json".into(),
            ca: Some("/etc/accessgate/state-ca.pem".into())
        }
    );
    let c = ok(&with(
        "[state]\nsource = \"http\"\nurl = \"http://127.0.0.1:7000/s.json\"\n",
    ));
    assert!(matches!(c.state.source, StateSource::Http { .. }));
}

#[test]
fn state_refuses_mismatched_or_unsafe_settings() {
    refused(
        &with("[state]\nsource = \"s3\"\n"),
        "s3",
        "state.source",
        "is not one of \"file\", \"http\"",
    );
    refused(
        &with("[state]\nsource = \"http\"\n"),
        "[state]",
        "state.url",
        "missing (required with source = \"http\")",
    );
    refused(
        &with("[state]\nsource = \"http\"\nurl = \"http://state.corp.example/s.json\"\n"),
        "url",
        "state.url",
        "must be https://",
    );
    refused(
        &with("[state]\nsource = \"http\"\nurl = \"https://s.test/x\"\npath = \"s.json\"\n"),
        "path",
        "state.path",
        "only with source = \"file\"",
    );
    refused(
        &with("[state]\nurl = \"https://s.test/x\"\n"),
        "url",
        "state.url",
        "only with source = \"http\"",
    );
    refused(
        &with("[state]\nca = \"ca.pem\"\n"),
        "ca.pem",
        "state.ca",
        "only with source = \"http\"",
    );
    refused(
        &with("[state]\nrefresh = \"0s\"\n"),
        "refresh",
        "state.refresh",
        "greater than zero",
    );
    refused(
        &with("[state]\nrefresh = \"1m\"\nmax_staleness = \"30s\"\n"),
        "max_staleness",
        "state.max_staleness",
        "shorter than state.refresh (1m)",
    );
}

#[test]
fn approved_apps_ids() {
    let c = ok(&with("[approved_apps]\nids = [\"a\", \"b\", \"a\"]\n"));
    assert_eq!(c.approved_apps, ["a", "b"]);
    refused(
        &with("[approved_apps]\nids = [\"a\", \"\"]\n"),
        "ids",
        "approved_apps.ids[1]",
        "must not be empty",
    );
    refused(
        &with("[approved_apps]\nids = [\" a\"]\n"),
        "ids",
        "approved_apps.ids[0]",
        "whitespace",
    );
}

#[test]
fn log_values() {
    let c = ok(&with(
        "[log]\nlevel = \"accessgate=debug,info\"\ndecisions = \"off\"\nallow_sample = 0.25\n",
    ));
    assert_eq!(
        (c.log.level.as_str(), &c.log.decisions, c.log.allow_sample),
        ("accessgate=debug,info", &DecisionLogTarget::Off, 0.25)
    );
    let c = ok(&with(
        "[log]\ndecisions = \"/var/log/ag/decisions.jsonl\"\nallow_sample = 0\n",
    ));
    assert_eq!(
        c.log.decisions,
        DecisionLogTarget::File("/var/log/ag/decisions.jsonl".into())
    );
    assert_eq!(c.log.allow_sample, 0.0);
    refused(
        &with("[log]\nallow_sample = 1.5\n"),
        "allow_sample",
        "log.allow_sample",
        "not in 0.0..=1.0",
    );
    refused(
        &with("[log]\nallow_sample = -0.1\n"),
        "allow_sample",
        "log.allow_sample",
        "not in 0.0..=1.0",
    );
    refused(
        &with("[log]\nallow_sample = nan\n"),
        "allow_sample",
        "log.allow_sample",
        "not in 0.0..=1.0",
    );
    refused(
        &with("[log]\nlevel = \"loud[\"\n"),
        "loud",
        "log.level",
        "not a log level",
    );
    refused(
        &with("[log]\nlevel = \"\"\n"),
        "level",
        "log.level",
        "not a log level",
    );
    refused(
        &with("[log]\ndecisions = \"\"\n"),
        "decisions",
        "log.decisions",
        "must not be empty",
    );
}

#[test]
fn base_is_valid() {
    ok(BASE);
}

#[test]
fn log_server_timing_is_off_unless_set_to_a_boolean() {
    assert!(!ok(BASE).log.server_timing);
    assert!(ok(&with("[log]\nserver_timing = true\n")).log.server_timing);
    assert!(
        !ok(&with("[log]\nserver_timing = false\n"))
            .log
            .server_timing
    );
    let e = crate::config::validate::testkit::err(&with("[log]\nserver_timing = \"yes\"\n"));
    assert!(e.contains("server_timing") && e.contains("bool"), "{e}");
    let e = crate::config::validate::testkit::err(&with("[log]\nserver_timings = true\n"));
    assert!(e.contains("server_timings"), "{e}");
}
