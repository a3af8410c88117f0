//! The fast formatter against the one it replaced, kept here as the reference.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;

use super::{YEAR_0, YEAR_10000, push_json_str, write_line};
use crate::authn::Principal;
use crate::authorize::AuthzOutcome;
use crate::config::parse_str;
use crate::ids::DecisionId;
use crate::observe::decision_log::{Line, RequestFacts};
use crate::ops::metrics::Metrics;
use crate::policy::{Decision, Evaluation, GraphResult, PolicyResult, PolicySet};
use crate::respond::{Outcome, Verdict};
use crate::route::RouteMatch;
use crate::snapshot::Snapshot;
use crate::timing::Phases;

/// The decision log formatter before the fast one, unchanged: `time`'s RFC 3339, `write!`,
/// the per-char escaper and `authorize::write_outcome`.
fn reference(l: &Line, s: &mut String) {
    s.push_str("{\"ts\":");
    crate::respond::push_json_str(s, &crate::clock::rfc3339(l.at));
    let _ = write!(s, ",\"decision_id\":\"{}\"", l.id);
    s.push_str(",\"method\":");
    crate::respond::push_json_str(s, l.facts.method().as_str());
    s.push_str(",\"host\":");
    crate::respond::push_json_str(s, l.facts.host());
    s.push_str(",\"path\":");
    crate::respond::push_json_str(s, l.facts.path());
    if let Some(rm) = &l.route {
        let r = &rm.route().config;
        s.push_str(",\"route\":");
        crate::respond::push_json_str(s, &r.name);
        s.push_str(",\"resource\":");
        crate::respond::push_json_str(s, &r.resource);
    }
    let _ = write!(s, ",\"status\":{}", l.status);
    if let Some(len) = l.bytes {
        let _ = write!(s, ",\"bytes\":{len}");
    }
    s.push_str(",\"decision\":");
    crate::respond::push_json_str(s, l.verdict.outcome.as_str());
    if !l.verdict.reason.is_empty() {
        s.push_str(",\"reason\":");
        crate::respond::push_json_str(s, l.verdict.reason);
    }
    if let Some(p) = &l.principal {
        s.push_str(",\"user\":");
        crate::respond::push_json_str(s, &p.user);
        if let Some(a) = &p.client_app {
            s.push_str(",\"app\":");
            crate::respond::push_json_str(s, a);
        }
        if let Some(d) = &p.device {
            s.push_str(",\"device\":");
            crate::respond::push_json_str(s, d);
        }
        s.push_str(",\"token_id\":");
        crate::respond::push_json_str(s, &p.token_id);
    }
    if let Some(ip) = l.client_ip {
        let _ = write!(s, ",\"client_ip\":\"{ip}\"");
    }
    if let Some(o) = &l.authz {
        crate::authorize::write_outcome(o, s);
    }
    for (phase, took) in l.phases.iter() {
        let _ = write!(s, ",\"{}_us\":{}", phase.as_str(), took.as_micros());
    }
    let _ = write!(s, ",\"total_us\":{}", l.total.as_micros());
    s.push_str("}\n");
}

const CONFIG: &str = r#"
[listen]
address = "127.0.0.1:0"
tls_cert = "cert.pem"
tls_key = "key.pem"
[[routes]]
name = "corp-api"
path_prefix = "/api"
upstream = "http://127.0.0.1:9"
auth = "none"
[[routes]]
name = "portal"
resource = "Portal \"EU\" ünïcode"
path_prefix = "/"
upstream = "http://127.0.0.1:9"
auth = "none"
[[policies]]
name = "require-mfa"
resources = ["all"]
include_users = ["all"]
grant = { controls = ["mfa"] }
[[policies]]
name = "report \"only\" \\ é 😀"
mode = "report_only"
resources = ["all"]
include_users = ["all"]
grant = { controls = ["compliant_device"] }
[[policies]]
name = "disabled-one"
mode = "disabled"
resources = ["all"]
include_users = ["all"]
grant = { controls = ["mfa"] }
"#;

/// Built once: every generated line points into it.
fn snapshot() -> Arc<Snapshot> {
    static SNAPSHOT: LazyLock<Arc<Snapshot>> = LazyLock::new(|| {
        let metrics = Metrics::new();
        let config = Arc::new(parse_str(CONFIG, std::path::Path::new("t.toml")).unwrap());
        Arc::new(Snapshot::build(config, &metrics, None).unwrap())
    });
    SNAPSHOT.clone()
}

/// Strings heavy in what needs escaping: quotes, backslashes, control characters, DEL,
/// multi-byte UTF-8, and any char at all.
fn text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => any::<char>(),
            2 => prop::char::range('a', 'z'),
            1 => Just('"'),
            1 => Just('\\'),
            1 => Just('\n'),
            1 => prop::char::range('\u{0}', '\u{1f}'),
            1 => Just('\u{7f}'),
            1 => Just('é'),
            1 => Just('\u{2028}'),
            1 => Just('😀'),
        ],
        0..max,
    )
    .prop_map(|v| v.into_iter().collect())
}

const REASONS: [&str; 4] = ["", "policy_block", "odd \"reason\"\n", "ünï\u{1}"];
/// A policy's reason is a fixed identifier, written unescaped (as before).
const POLICY_REASONS: [&str; 3] = ["grant_satisfied", "user_excluded", "device_noncompliant"];
const RESULTS: [GraphResult; 7] = [
    GraphResult::Success,
    GraphResult::Failure,
    GraphResult::NotApplied,
    GraphResult::NotEnabled,
    GraphResult::ReportOnlySuccess,
    GraphResult::ReportOnlyFailure,
    GraphResult::ReportOnlyNotApplied,
];

fn time() -> impl Strategy<Value = SystemTime> {
    let nanos = prop_oneof![
        Just(0u32),
        0u32..1_000_000_000,
        (0u32..1000).prop_map(|m| m * 1_000_000),
        (0u32..1_000_000).prop_map(|u| u * 1000),
        (1u32..10).prop_map(|d| d * 100_000_000),
    ];
    let secs = prop_oneof![
        0u64..YEAR_10000,
        1_700_000_000u64..1_900_000_000,
        Just(YEAR_10000 - 1),
        Just(0u64),
    ];
    let after = (secs, nanos.clone()).prop_map(|(s, n)| UNIX_EPOCH + Duration::new(s, n));
    let before = (0u64..YEAR_0, nanos).prop_map(|(s, n)| UNIX_EPOCH - Duration::new(s, n));
    prop_oneof![6 => after, 1 => before]
}

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..10_000_000).prop_map(Duration::from_nanos),
        any::<u64>().prop_map(Duration::from_micros),
        Just(Duration::MAX),
    ]
}

#[derive(Debug, Clone)]
struct Gen {
    at: SystemTime,
    method: usize,
    host: String,
    path: String,
    route: Option<usize>,
    user: Option<(String, Option<String>, Option<String>, String)>,
    ip: Option<IpAddr>,
    outcome: usize,
    reason: usize,
    status: u16,
    bytes: Option<u64>,
    policies: Option<(Vec<(usize, usize)>, bool)>,
    phases: [Option<Duration>; 3],
    total: Duration,
}

fn gen_line() -> impl Strategy<Value = Gen> {
    let user = (
        text(80),
        prop::option::of(text(40)),
        prop::option::of(text(40)),
        text(30),
    );
    let policies = (
        prop::collection::vec((0usize..3, 0usize..RESULTS.len()), 0..6),
        any::<bool>(),
    );
    let ip = prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u16; 8]>().prop_map(IpAddr::from),
    ];
    (
        (
            time(),
            0usize..4,
            text(60),
            text(200),
            prop::option::of(0usize..2),
        ),
        (
            prop::option::of(user),
            prop::option::of(ip),
            0..Outcome::ALL.len(),
        ),
        (
            0..REASONS.len(),
            any::<u16>(),
            prop::option::of(any::<u64>()),
        ),
        (
            prop::option::of(policies),
            prop::array::uniform3(prop::option::of(duration())),
        ),
        duration(),
    )
        .prop_map(
            |(
                (at, method, host, path, route),
                (user, ip, outcome),
                (reason, status, bytes),
                (policies, phases),
                total,
            )| Gen {
                at,
                method,
                host,
                path,
                route,
                user,
                ip,
                outcome,
                reason,
                status,
                bytes,
                policies,
                phases,
                total,
            },
        )
}

const METHODS: [&str; 4] = ["GET", "POST", "DELETE", "PURGE"];

fn build(g: &Gen, snapshot: &Arc<Snapshot>) -> Line {
    let method = http::Method::from_bytes(METHODS[g.method].as_bytes()).unwrap();
    let policies: Arc<PolicySet> = snapshot.policies.clone();
    Line {
        at: g.at,
        id: DecisionId::next(),
        facts: RequestFacts::from_parts(method, &g.host, &g.path),
        route: g.route.map(|index| RouteMatch {
            snapshot: snapshot.clone(),
            index,
        }),
        principal: g.user.as_ref().map(|(user, app, device, jti)| {
            Arc::new(Principal {
                user: user.as_str().into(),
                client_app: app.as_deref().map(Into::into),
                device: device.as_deref().map(Into::into),
                token_id: jti.as_str().into(),
                ..Principal::default()
            })
        }),
        client_ip: g.ip,
        verdict: Verdict {
            outcome: Outcome::ALL[g.outcome],
            reason: REASONS[g.reason],
        },
        status: g.status,
        bytes: g.bytes,
        authz: g.policies.as_ref().map(|(results, fail_open)| {
            Arc::new(AuthzOutcome {
                policies: policies.clone(),
                evaluation: Evaluation {
                    decision: Decision::Allow,
                    results: results
                        .iter()
                        .map(|&(policy, r)| PolicyResult {
                            policy: policy as u32,
                            result: RESULTS[r],
                            reason: POLICY_REASONS[(policy + r) % POLICY_REASONS.len()],
                        })
                        .collect(),
                    fail_open: *fail_open,
                },
            })
        }),
        phases: Phases {
            authn: g.phases[0],
            authz: g.phases[1],
            upstream: g.phases[2],
        },
        total: g.total,
    }
}

fn both(l: &Line) -> (String, String) {
    let (mut new, mut old) = (String::new(), String::new());
    write_line(l, &mut new);
    reference(l, &mut old);
    (new, old)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn the_fast_formatter_writes_the_reference_bytes(g in gen_line()) {
        let snap = snapshot();
        let l = build(&g, &snap);
        let (new, old) = both(&l);
        prop_assert_eq!(new, old);
    }

    #[test]
    fn the_escaper_matches_the_reference(s in text(300)) {
        let (mut new, mut old) = (String::new(), String::new());
        push_json_str(&mut new, &s);
        crate::respond::push_json_str(&mut old, &s);
        prop_assert_eq!(&new, &old);
        let back: String = serde_json::from_str(&new).unwrap();
        prop_assert_eq!(back, s);
    }
}

#[test]
fn consecutive_lines_in_one_buffer_match_across_seconds_and_long_fields() {
    let snap = snapshot();
    let long = "x\"é\n".repeat(5000);
    let mut new = String::new();
    let mut old = String::new();
    // Times that go back and forth over second (and day, year) boundaries, so the cached
    // second is reused, replaced and replaced back.
    let base = UNIX_EPOCH + Duration::from_secs(1_767_225_599); // 2025-12-31T23:59:59Z
    for i in 0..200u64 {
        let at = base + Duration::from_nanos((i % 7) * 300_000_000 + i);
        let g = Gen {
            at,
            method: (i % 4) as usize,
            host: if i % 3 == 0 {
                long.clone()
            } else {
                String::new()
            },
            path: if i % 5 == 0 { long.clone() } else { "/".into() },
            route: Some((i % 2) as usize),
            user: Some((long.clone(), None, Some(String::new()), "j".into())),
            ip: Some(IpAddr::from([0, 0, 0, 0])),
            outcome: (i % 3) as usize,
            reason: (i % 4) as usize,
            status: 200,
            bytes: Some(0),
            policies: Some((vec![(0, 0), (1, 5), (2, 3)], i % 2 == 0)),
            phases: [
                Some(Duration::ZERO),
                None,
                Some(Duration::from_micros(u64::MAX)),
            ],
            total: Duration::MAX,
        };
        let l = build(&g, &snap);
        write_line(&l, &mut new);
        reference(&l, &mut old);
    }
    assert_eq!(new, old);
    assert_eq!(new.lines().count(), 200);
    for line in new.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["ts"].as_str().unwrap().starts_with("202"), "{line}");
    }
}

#[test]
fn years_the_reference_cannot_format_give_an_empty_ts_not_a_panic() {
    let snap = snapshot();
    let g = |at| Gen {
        at,
        method: 0,
        host: String::new(),
        path: String::new(),
        route: None,
        user: None,
        ip: None,
        outcome: 0,
        reason: 0,
        status: 200,
        bytes: None,
        policies: None,
        phases: [None; 3],
        total: Duration::ZERO,
    };
    for at in [
        UNIX_EPOCH + Duration::from_secs(YEAR_10000),
        UNIX_EPOCH + Duration::from_secs(u64::MAX / 4),
        UNIX_EPOCH - Duration::new(YEAR_0, 1),
        UNIX_EPOCH - Duration::from_secs(u64::MAX / 4),
    ] {
        let mut s = String::new();
        write_line(&build(&g(at), &snap), &mut s);
        assert!(s.starts_with("{\"ts\":\"\",\"decision_id\":"), "{s}");
    }
    let mut s = String::new();
    let edge = build(&g(UNIX_EPOCH - Duration::from_secs(YEAR_0)), &snap);
    write_line(&edge, &mut s);
    assert!(s.starts_with("{\"ts\":\"0000-01-01T00:00:00Z\""), "{s}");
    assert_eq!(both(&edge).0, both(&edge).1);
}
