//! What If and offline policy tests: `accessgate eval` and `accessgate test-policies`.
//!
//! Both run the same engine and the same rejection mapping as the gateway, offline: given
//! a config, a state, a resource, claims, a client IP and a time, they show the decision
//! (with the exact status and `WWW-Authenticate` the gateway would send) and, for every
//! policy, whether it applied, why not, and each control's result.

use std::fmt;
use std::net::IpAddr;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::authn::Principal;
use crate::config::Config;
use crate::ids::DecisionId;
use crate::policy::values::parse_rfc3339;
use crate::policy::{
    EvalInput, Evaluation, GraphResult, PolicyDetail, PolicySet, PolicyState, evaluate_detailed,
};
use crate::respond::{Outcome, Rejection, reject, rfc3339};

/// One policy's line in a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyLine {
    pub name: String,
    pub mode: &'static str,
    /// Graph result, or `notApplied` / `reportOnlyNotApplied` for policies that do not
    /// target the resource.
    pub result: &'static str,
    pub applied: bool,
    pub reason: &'static str,
    /// `(control, passed, reason)`.
    pub controls: Vec<(&'static str, bool, &'static str)>,
    /// `(passed, reason)` of the sign-in frequency check, when the policy has one and applied.
    pub sign_in_frequency: Option<(bool, &'static str)>,
}

/// The What If answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub resource: String,
    pub user: String,
    pub client_app: Option<String>,
    pub device: Option<String>,
    pub ip: IpAddr,
    pub at: i64,
    /// `allow`, `block`, `remediate`, `reauthenticate`, `step_up`.
    pub decision: &'static str,
    pub reason: &'static str,
    pub policy: Option<String>,
    /// The status the gateway would answer with (200 = forwarded).
    pub status: u16,
    pub www_authenticate: Option<String>,
    pub retry_after: Option<String>,
    pub policies: Vec<PolicyLine>,
}

/// Evaluate one request offline.
pub fn eval_report(
    config: &Config,
    state: &PolicyState,
    resource: &str,
    principal: &Principal,
    ip: IpAddr,
    at: i64,
) -> Result<Report, String> {
    let set = PolicySet::compile(config)?;
    let input = EvalInput {
        resource,
        principal,
        client_ip: ip,
        now: at,
    };
    let (ev, details) = evaluate_detailed(&set, Some(state), &input);
    Ok(build_report(&set, &ev, &details, &input))
}

fn build_report(
    set: &PolicySet,
    ev: &Evaluation,
    details: &[PolicyDetail],
    input: &EvalInput<'_>,
) -> Report {
    let p = input.principal;
    let rejection = crate::authorize::rejection(ev, set, p);
    let (status, www, retry) = match &rejection {
        None => (200, None, None),
        Some(r) => {
            let resp = reject(r, DecisionId::next());
            let h = |n: http::header::HeaderName| {
                resp.headers()
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            (
                resp.status().as_u16(),
                h(http::header::WWW_AUTHENTICATE),
                h(http::header::RETRY_AFTER),
            )
        }
    };
    let policy = match &rejection {
        Some(Rejection::Denied { policy, .. }) => policy.as_deref().map(str::to_owned),
        _ => None,
    };
    let policies = set
        .policies()
        .iter()
        .enumerate()
        .map(|(i, cp)| {
            let idx = i as u32;
            let mode = cp.mode.as_str();
            match ev.results.iter().find(|r| r.policy == idx) {
                Some(r) => {
                    let d = details.iter().find(|d| d.policy == idx);
                    PolicyLine {
                        name: cp.name.to_string(),
                        mode,
                        result: r.result.as_str(),
                        applied: r.result.applied(),
                        reason: r.reason,
                        controls: d
                            .map(|d| {
                                d.controls
                                    .iter()
                                    .map(|c| (c.control.as_str(), c.passed, c.reason))
                                    .collect()
                            })
                            .unwrap_or_default(),
                        sign_in_frequency: d.and_then(|d| d.sign_in_frequency),
                    }
                }
                None => PolicyLine {
                    name: cp.name.to_string(),
                    mode,
                    result: match cp.mode {
                        crate::config::PolicyMode::Disabled => GraphResult::NotEnabled.as_str(),
                        crate::config::PolicyMode::ReportOnly => {
                            GraphResult::ReportOnlyNotApplied.as_str()
                        }
                        crate::config::PolicyMode::Enabled => GraphResult::NotApplied.as_str(),
                    },
                    applied: false,
                    reason: "resource_not_included",
                    controls: Vec::new(),
                    sign_in_frequency: None,
                },
            }
        })
        .collect();
    Report {
        resource: input.resource.to_owned(),
        user: p.user.clone(),
        client_app: p.client_app.clone(),
        device: p.device.clone(),
        ip: input.client_ip,
        at: input.now,
        decision: rejection
            .as_ref()
            .map_or(Outcome::Allow, Rejection::outcome)
            .as_str(),
        reason: ev.decision.reason(),
        policy,
        status,
        www_authenticate: www,
        retry_after: retry,
        policies,
    }
}

impl Report {
    pub fn to_json(&self) -> Value {
        json!({
            "resource": self.resource,
            "user": self.user,
            "client_app": self.client_app,
            "device": self.device,
            "ip": self.ip.to_string(),
            "at": rfc3339(self.at),
            "decision": self.decision,
            "reason": self.reason,
            "policy": self.policy,
            "status": self.status,
            "www_authenticate": self.www_authenticate,
            "retry_after": self.retry_after,
            "policies": self.policies.iter().map(|p| json!({
                "name": p.name,
                "mode": p.mode,
                "result": p.result,
                "applied": p.applied,
                "reason": p.reason,
                "controls": p.controls.iter().map(|(c, ok, why)| json!({
                    "control": c, "passed": ok, "reason": why,
                })).collect::<Vec<_>>(),
                "sign_in_frequency": p.sign_in_frequency.map(|(ok, why)| json!({"passed": ok, "reason": why})),
            })).collect::<Vec<_>>(),
        })
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "decision: {} (HTTP {})", self.decision, self.status)?;
        if self.decision != "allow" {
            write!(f, ", reason {}", self.reason)?;
        }
        if let Some(p) = &self.policy {
            write!(f, ", policy {p:?}")?;
        }
        writeln!(f)?;
        if let Some(w) = &self.www_authenticate {
            writeln!(f, "  WWW-Authenticate: {w}")?;
        }
        if let Some(r) = &self.retry_after {
            writeln!(f, "  Retry-After: {r}")?;
        }
        writeln!(
            f,
            "request: resource {}, user {}, app {}, device {}, ip {}, at {}",
            self.resource,
            self.user,
            self.client_app.as_deref().unwrap_or("-"),
            self.device.as_deref().unwrap_or("-"),
            self.ip,
            rfc3339(self.at)
        )?;
        writeln!(f, "policies:")?;
        for p in &self.policies {
            let applied = if p.applied { "applied" } else { "not applied" };
            writeln!(
                f,
                "  {} [{}]: {} - {} ({})",
                p.name, p.mode, p.result, applied, p.reason
            )?;
            for (c, ok, why) in &p.controls {
                writeln!(
                    f,
                    "      {c}: {} ({why})",
                    if *ok { "satisfied" } else { "failed" }
                )?;
            }
            if let Some((ok, why)) = p.sign_in_frequency {
                writeln!(
                    f,
                    "      sign_in_frequency: {} ({why})",
                    if ok { "satisfied" } else { "failed" }
                )?;
            }
        }
        Ok(())
    }
}

/// Build a [`Principal`] from a JWT claims object with `authenticate`'s own issuer choice
/// and claims reader ([`crate::authn::principal_from_payload`]): claims the gateway would
/// refuse (unknown issuer, no `exp`, a list claim given as a string...) are refused here
/// with the gateway's description, so What If never evaluates a token the gateway would
/// not have let through to `authorize`.
pub fn principal_from_claims(config: &Config, claims: &Value) -> Result<Principal, String> {
    if !claims.is_object() {
        return Err("claims must be a JSON object".to_owned());
    }
    let payload = serde_json::to_vec(claims).map_err(|e| format!("claims: {e}"))?;
    crate::authn::principal_from_payload(&config.issuers, &payload)
        .map_err(|r| format!("the gateway would refuse this token: {}", r.description))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CasesFile {
    #[serde(default)]
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    resource: String,
    claims: toml::Table,
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    at: Option<String>,
    expect: String,
    #[serde(default)]
    expect_reason: Option<String>,
}

/// The decisions a case may expect.
pub const EXPECTATIONS: &[&str] = &[
    "allow",
    "block",
    "remediate",
    "reauthenticate",
    "step_up",
    "unavailable",
];

/// One case's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    pub name: String,
    pub passed: bool,
    pub expected: String,
    /// `decision` or `decision (reason)`.
    pub got: String,
    pub policy: Option<String>,
}

/// All cases' outcomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestReport {
    pub cases: Vec<CaseResult>,
}

impl TestReport {
    pub fn passed(&self) -> bool {
        self.cases.iter().all(|c| c.passed)
    }

    pub fn failures(&self) -> usize {
        self.cases.iter().filter(|c| !c.passed).count()
    }
}

impl fmt::Display for TestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.cases {
            if c.passed {
                writeln!(f, "ok    {}: {}", c.name, c.got)?;
            } else {
                writeln!(
                    f,
                    "FAIL  {}: expected {}, got {}",
                    c.name, c.expected, c.got
                )?;
                if let Some(p) = &c.policy {
                    writeln!(f, "      decided by policy {p:?}")?;
                }
            }
        }
        writeln!(
            f,
            "{} cases, {} passed, {} failed",
            self.cases.len(),
            self.cases.len() - self.failures(),
            self.failures()
        )
    }
}

/// Run a CASES.toml table against `config` and `state`. `Err` is for a file that cannot be
/// run at all (syntax, unknown keys, bad values, naming the case); mismatches are in the
/// report (`passed() == false`).
///
/// A case's `claims` inline table is the token payload; `iat` defaults to `at - 60` and
/// `exp` to `at + 3600`. `ip` defaults to `192.0.2.1`, `at` (RFC 3339) to now.
pub fn run_policy_tests(
    config: &Config,
    state: &PolicyState,
    cases_toml: &str,
) -> Result<TestReport, String> {
    let file: CasesFile = toml::from_str(cases_toml).map_err(|e| format!("cases: {e}"))?;
    if file.case.is_empty() {
        return Err("cases: no [[case]] tables".into());
    }
    let set = PolicySet::compile(config)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut cases = Vec::with_capacity(file.case.len());
    for (i, c) in file.case.iter().enumerate() {
        let at_case = |m: String| format!("case[{i}] ({}): {m}", c.name);
        if !EXPECTATIONS.contains(&c.expect.as_str()) {
            return Err(at_case(format!(
                "expect {:?} is not one of {}",
                c.expect,
                EXPECTATIONS.join(", ")
            )));
        }
        let at = match &c.at {
            Some(t) => {
                parse_rfc3339(t).ok_or_else(|| at_case(format!("at {t:?} is not RFC 3339")))?
            }
            None => now,
        };
        let ip: IpAddr =
            c.ip.as_deref()
                .unwrap_or("192.0.2.1")
                .parse()
                .map_err(|_| at_case(format!("ip {:?} is not an IP address", c.ip)))?;
        let mut claims = serde_json::to_value(&c.claims).map_err(|e| at_case(e.to_string()))?;
        if let Some(o) = claims.as_object_mut() {
            o.entry("iat").or_insert(json!(at - 60));
            o.entry("exp").or_insert(json!(at + 3600));
        }
        let principal = principal_from_claims(config, &claims).map_err(at_case)?;
        let input = EvalInput {
            resource: &c.resource,
            principal: &principal,
            client_ip: ip,
            now: at,
        };
        let (ev, details) = evaluate_detailed(&set, Some(state), &input);
        let report = build_report(&set, &ev, &details, &input);
        let reason_ok = c
            .expect_reason
            .as_deref()
            .is_none_or(|r| r == report.reason);
        let expected = match &c.expect_reason {
            Some(r) => format!("{} ({r})", c.expect),
            None => c.expect.clone(),
        };
        cases.push(CaseResult {
            name: c.name.clone(),
            passed: report.decision == c.expect && reason_ok,
            expected,
            got: format!("{} ({})", report.decision, report.reason),
            policy: report.policy.clone(),
        });
    }
    Ok(TestReport { cases })
}

#[cfg(test)]
#[path = "whatif_tests.rs"]
mod tests;
