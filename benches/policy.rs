//! Policy engine benchmarks (see benches/README.md, "Policy").
//!
//! - `eval/{10,100,1000}`: one request against N policies that all target its resource,
//!   for a user in 50 groups with a device and an app registration in state (the worst
//!   case: every policy is a candidate and checks groups, app protection and the device).
//! - state load: 1M devices + 1M app registrations (+100k users) generated in memory, then
//!   parsed, validated and indexed once; prints the time and resident memory (VmRSS).
//!   Skipped when `ACCESSGATE_BENCH_SKIP_LOAD` is set.

use std::fmt::Write as _;
use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use accessgate::authn::Principal;
use accessgate::config::{
    Grant, GrantControl, GrantOperator, Locations, PolicyConfig, PolicyMode, Remediation, Selector,
};
use accessgate::policy::{EvalInput, PolicySet, PolicyState, evaluate};
use criterion::{BenchmarkId, Criterion};

const APP: &str = "0c1307d4-29d6-4389-a11c-5cbe7f65d7fa";
const NOW: i64 = 1_800_000_000;

fn group(i: usize) -> String {
    format!("{i:08x}-6000-4000-8000-000000000000")
}

fn policies(n: usize) -> Vec<PolicyConfig> {
    (0..n)
        .map(|i| PolicyConfig {
            name: format!("policy-{i}"),
            mode: if i % 10 == 9 {
                PolicyMode::ReportOnly
            } else {
                PolicyMode::Enabled
            },
            resources: Selector::Some(vec!["corp-api".into()]),
            include_users: Selector::Some(vec![]),
            // Groups 0..50 are the user's; policies name groups across 0..200.
            include_groups: vec![group(i % 200), group((i * 7 + 3) % 200)],
            exclude_groups: vec![group(1000 + i % 5)],
            exclude_users: vec![],
            client_apps: vec![],
            platforms: vec![],
            locations: Locations {
                include: vec![],
                exclude: vec!["10.0.0.0/8".parse().unwrap_or_else(|_| unreachable!())],
            },
            grant: Grant::Controls {
                operator: GrantOperator::All,
                controls: vec![
                    GrantControl::ApprovedApp,
                    GrantControl::AppProtection,
                    GrantControl::CompliantDevice,
                ],
                auth_context: None,
            },
            sign_in_frequency: Some(Duration::from_secs(8 * 3600)),
            remediation: Remediation::default(),
        })
        .collect()
}

fn small_state() -> PolicyState {
    let groups: Vec<String> = (0..50).map(group).collect();
    let doc = serde_json::json!({
        "users": [{"id": "11111111-1111-4111-8111-111111111111", "accountEnabled": true,
                   "licensed": true, "groups": groups}],
        "devices": [{"azureADDeviceId": "d1111111-1111-4111-8111-111111111111",
                     "complianceState": "compliant", "operatingSystem": "iOS", "osVersion": "17.4"}],
        "appProtectionPolicies": [{"id": "p", "platform": "ios", "apps": [APP],
            "includeGroups": [group(0)], "periodOfflineBeforeAccessCheck": "PT12H",
            "minimumRequiredOsVersion": "16.0", "minimumRequiredAppVersion": "5.0"}],
        "appRegistrations": [{"userId": "11111111-1111-4111-8111-111111111111", "appId": APP,
            "azureADDeviceId": "d1111111-1111-4111-8111-111111111111", "platform": "ios",
            "applicationVersion": "5.2.0", "platformVersion": "17.4",
            "lastSyncDateTime": "2027-01-15T07:00:00Z", "complianceState": "compliant"}],
    });
    PolicyState::from_json(doc.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

fn bench_eval(c: &mut Criterion) {
    let state = small_state();
    let principal = Principal {
        user: "11111111-1111-4111-8111-111111111111".into(),
        client_app: Some(APP.into()),
        device: Some("d1111111-1111-4111-8111-111111111111".into()),
        iat: Some(NOW - 600),
        exp: NOW + 3000,
        ..Principal::default()
    };
    let mut g = c.benchmark_group("eval");
    for n in [10usize, 100, 1000] {
        let set = PolicySet::from_parts(&policies(n), &[APP.to_owned()], &[])
            .unwrap_or_else(|e| panic!("{e}"));
        let input = EvalInput {
            resource: "corp-api",
            principal: &principal,
            client_ip: IpAddr::from([192, 0, 2, 1]),
            now: NOW,
        };
        let ev = evaluate(&set, Some(&state), &input);
        assert!(
            ev.decision.is_allow(),
            "bench request must be allowed: {ev:?}"
        );
        assert!(ev.results.iter().any(|r| r.result.applied()));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| black_box(evaluate(&set, Some(&state), black_box(&input))))
        });
    }
    g.finish();
}

fn vm(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// 100k users (5 groups each), 1M devices, 1M app registrations (10 apps).
fn big_state_json() -> String {
    const USERS: usize = 100_000;
    const N: usize = 1_000_000;
    let mut s = String::with_capacity(N * 520);
    s.push_str("{\"users\":[");
    for u in 0..USERS {
        if u > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            "{{\"id\":\"{u:08x}-1111-4111-8111-111111111111\",\"accountEnabled\":true,\"licensed\":true,\"groups\":[\"{}\",\"{}\",\"{}\",\"{}\",\"{}\"]}}",
            group(u % 1000),
            group(u % 997),
            group(u % 13),
            group(1000 + u % 5),
            group(2000 + u % 50)
        );
    }
    s.push_str("],\"devices\":[");
    for d in 0..N {
        if d > 0 {
            s.push(',');
        }
        let state = if d % 10 == 0 {
            "noncompliant"
        } else {
            "compliant"
        };
        let _ = write!(
            s,
            "{{\"azureADDeviceId\":\"{d:08x}-dddd-4ddd-8ddd-dddddddddddd\",\"complianceState\":\"{state}\",\"operatingSystem\":\"iOS\",\"osVersion\":\"17.4.1\",\"noncompliantSince\":{}}}",
            if d % 10 == 0 {
                "\"2026-11-27T09:00:00Z\""
            } else {
                "null"
            }
        );
    }
    s.push_str("],\"appProtectionPolicies\":[");
    for a in 0..10 {
        if a > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            "{{\"id\":\"app-policy-{a}\",\"platform\":\"ios\",\"apps\":[\"{a:08x}-aaaa-4aaa-8aaa-aaaaaaaaaaaa\"],\"includeGroups\":[\"{}\"],\"excludeGroups\":[\"{}\"],\"periodOfflineBeforeAccessCheck\":\"PT12H\",\"minimumRequiredOsVersion\":\"16.0\"}}",
            group(a),
            group(1000)
        );
    }
    s.push_str("],\"appRegistrations\":[");
    for r in 0..N {
        if r > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            "{{\"userId\":\"{:08x}-1111-4111-8111-111111111111\",\"appId\":\"{:08x}-aaaa-4aaa-8aaa-aaaaaaaaaaaa\",\"azureADDeviceId\":\"{r:08x}-dddd-4ddd-8ddd-dddddddddddd\",\"platform\":\"ios\",\"applicationVersion\":\"5.2.0\",\"platformVersion\":\"17.4.1\",\"flaggedReasons\":[],\"lastSyncDateTime\":\"2026-11-27T09:00:00Z\",\"complianceState\":\"compliant\",\"noncompliantSince\":null,\"remediation\":\"pending\"}}",
            r % USERS,
            r % 10
        );
    }
    s.push_str("]}");
    s
}

fn state_load() {
    if std::env::var_os("ACCESSGATE_BENCH_SKIP_LOAD").is_some() {
        return;
    }
    let json = big_state_json();
    let mb = |kb: u64| kb as f64 / 1024.0;
    let before = vm("VmRSS:");
    let t = Instant::now();
    let state = PolicyState::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let took = t.elapsed();
    let with_json = vm("VmRSS:");
    let json_len = json.len();
    drop(json);
    let after = vm("VmRSS:");
    println!(
        "state load: {} ({} MiB of JSON) in {:.2} s",
        state.counts(),
        json_len / (1024 * 1024),
        took.as_secs_f64()
    );
    println!(
        "resident: {:.0} MiB before load (JSON text held), {:.0} MiB after load, {:.0} MiB after dropping the text; state alone ~{:.0} MiB; peak {:.0} MiB",
        mb(before),
        mb(with_json),
        mb(after),
        mb(with_json.saturating_sub(before)),
        mb(vm("VmHWM:"))
    );
    black_box(&state);
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_eval(&mut c);
    c.final_summary();
    state_load();
}
