//! Policy engine benchmarks (see benches/README.md, "Policy").
//!
//! - `eval/{10,100,1000}`: one request against N policies that all target its resource,
//!   for a user in 50 groups with a device and an app registration in state (the worst
//!   case: every policy is a candidate and checks groups, app protection and the device).
//! - state load: 1M devices + 1M app registrations (+100k users) generated in memory, then
//!   parsed, validated and indexed once; prints the time and resident memory (VmRSS).
//!   Skipped when `ACCESSGATE_BENCH_SKIP_LOAD` is set.
//! - `eval-overlay/100`: as `eval/100` on a state that had a 100-record change batch
//!   applied (lookups consult the overlay first).
//! - batch apply (with the state load): a 100-record change batch (devices, users,
//!   registrations) applied to the 1M-device state, per batch (p50 / p99 / max) of the
//!   thread's CPU time and of wall time, on a fresh overlay and on one grown to the
//!   compaction threshold; then one compaction.

use std::fmt::Write as _;
use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use accessgate::authn::Principal;
use accessgate::config::{
    Grant, GrantControl, GrantOperator, Locations, PolicyConfig, PolicyMode, Remediation, Selector,
};
use accessgate::policy::{ChangeBatch, EvalInput, PolicySet, PolicyState, evaluate};
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
    // The same request on a state that took a 100-record batch, the user's device among them.
    let mut devices: Vec<serde_json::Value> = (0..99)
        .map(|i| {
            serde_json::json!({"azureADDeviceId": format!("{i:08x}-eeee-4eee-8eee-eeeeeeeeeeee"),
            "complianceState": "compliant", "operatingSystem": "iOS", "osVersion": "17.4"})
        })
        .collect();
    devices.push(
        serde_json::json!({"azureADDeviceId": "d1111111-1111-4111-8111-111111111111",
        "complianceState": "compliant", "operatingSystem": "iOS", "osVersion": "17.5"}),
    );
    let batch = ChangeBatch::from_json(
        serde_json::json!({"devices": devices})
            .to_string()
            .as_bytes(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let changed = state.apply(&batch).unwrap_or_else(|e| panic!("{e}"));
    let set = PolicySet::from_parts(&policies(100), &[APP.to_owned()], &[])
        .unwrap_or_else(|e| panic!("{e}"));
    let input = EvalInput {
        resource: "corp-api",
        principal: &principal,
        client_ip: IpAddr::from([192, 0, 2, 1]),
        now: NOW,
    };
    assert!(evaluate(&set, Some(&changed), &input).decision.is_allow());
    let mut g = c.benchmark_group("eval-overlay");
    g.bench_function("100", |b| {
        b.iter(|| black_box(evaluate(&set, Some(&changed), black_box(&input))))
    });
    g.finish();
}

/// A 100-record batch against the big state: 60 devices (every 6th turning noncompliant),
/// 20 users (one in a group the state never saw), 20 registrations; ids drawn by `seed`.
fn batch_100(seed: usize) -> ChangeBatch {
    let mut s = String::from("{\"devices\":[");
    for i in 0..60 {
        let d = (seed * 7919 + i * 104_729) % 1_000_000;
        if i > 0 {
            s.push(',');
        }
        let c = if i % 6 == 0 {
            "noncompliant"
        } else {
            "compliant"
        };
        let _ = write!(
            s,
            "{{\"azureADDeviceId\":\"{d:08x}-dddd-4ddd-8ddd-dddddddddddd\",\"complianceState\":\"{c}\",\"operatingSystem\":\"iOS\",\"osVersion\":\"17.5\",\"noncompliantSince\":{}}}",
            if c == "noncompliant" {
                "\"2026-12-01T09:00:00Z\""
            } else {
                "null"
            }
        );
    }
    s.push_str("],\"users\":[");
    for i in 0..20 {
        let u = (seed * 31 + i * 4_999) % 100_000;
        if i > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            "{{\"id\":\"{u:08x}-1111-4111-8111-111111111111\",\"accountEnabled\":{},\"licensed\":true,\"groups\":[\"{}\",\"{}\",\"new-group-{seed}\"]}}",
            i % 5 != 0,
            group(u % 1000),
            group(1000 + u % 5)
        );
    }
    s.push_str("],\"appRegistrations\":[");
    for i in 0..20 {
        let r = (seed * 13 + i * 49_999) % 1_000_000;
        if i > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            "{{\"userId\":\"{:08x}-1111-4111-8111-111111111111\",\"appId\":\"{:08x}-aaaa-4aaa-8aaa-aaaaaaaaaaaa\",\"azureADDeviceId\":\"{r:08x}-dddd-4ddd-8ddd-dddddddddddd\",\"platform\":\"ios\",\"applicationVersion\":\"5.3.0\",\"flaggedReasons\":[],\"lastSyncDateTime\":\"2026-12-01T09:00:00Z\",\"complianceState\":\"compliant\"}}",
            r % 100_000,
            r % 10
        );
    }
    s.push_str("]}");
    ChangeBatch::from_json(s.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort_unstable();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    format!(
        "p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms over {}",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3,
        v.len()
    )
}

/// This thread's CPU time (CLOCK_THREAD_CPUTIME_ID): time spent preempted on a loaded
/// machine is not in it, so it is the batch's own cost where wall time is only a bound.
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// CPU and wall time of one call.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration, Duration) {
    let (c, w) = (thread_cpu(), Instant::now());
    let out = f();
    let wall = w.elapsed();
    (out, thread_cpu().saturating_sub(c), wall)
}

fn report(what: &str, runs: Vec<(Duration, Duration)>) {
    let (cpu, wall): (Vec<_>, Vec<_>) = runs.into_iter().unzip();
    println!("{what}: CPU {}", percentiles(cpu));
    println!("{what}: wall {}", percentiles(wall));
}

/// Batch apply on the 1M-device state, CPU and wall per batch.
fn batch_apply(state: &PolicyState) {
    let batches: Vec<ChangeBatch> = (0..200).map(batch_100).collect();
    // Fresh overlay: each batch applied to the loaded state.
    let fresh: Vec<(Duration, Duration)> = batches
        .iter()
        .map(|b| {
            let (s, cpu, wall) = timed(|| state.apply(b).unwrap_or_else(|e| panic!("{e}")));
            black_box(s);
            (cpu, wall)
        })
        .collect();
    report(
        "batch apply (100 records, 1M devices, fresh overlay)",
        fresh,
    );
    // Chained: the overlay grows batch after batch up to the compaction threshold.
    let mut cur = state.apply(&batches[0]).unwrap_or_else(|e| panic!("{e}"));
    let mut chained = Vec::new();
    let mut i = 1;
    while cur.overlay_records() < accessgate::policy::state_overlay::COMPACT_AFTER {
        let b = &batches[i % batches.len()];
        // The replaced state is dropped inside the timing: the follower drops it too (when
        // no request holds it any more).
        let ((), cpu, wall) = timed(|| {
            let next = cur.apply(b).unwrap_or_else(|e| panic!("{e}"));
            drop(std::mem::replace(&mut cur, next));
        });
        chained.push((cpu, wall));
        i += 1;
        if i > 2_000 {
            break;
        }
    }
    report(
        &format!(
            "batch apply (100 records, 1M devices, overlay grown to {} records)",
            cur.overlay_records()
        ),
        chained,
    );
    let (compacted, cpu, wall) = timed(|| cur.compacted());
    println!(
        "compaction (off the request path) of that overlay into the 1M-device base: CPU {:.0} ms, wall {:.0} ms",
        cpu.as_secs_f64() * 1e3,
        wall.as_secs_f64() * 1e3
    );
    black_box(&compacted);
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
    batch_apply(&state);
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_eval(&mut c);
    c.final_summary();
    state_load();
}
