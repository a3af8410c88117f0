//! The `eval` and `test-policies` subcommands: file handling and exit codes around
//! [`crate::cli::whatif`].

use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

use base64::Engine as _;

use crate::config::{Config, StateSource};
use crate::policy::PolicyState;

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("{msg}");
    ExitCode::FAILURE
}

/// The state to evaluate against: `--state FILE`, else the config's `[state]` file.
fn load_state(config: &Config, state: Option<&Path>) -> Result<PolicyState, String> {
    let path = match (state, &config.state.source) {
        (Some(p), _) => p.to_path_buf(),
        (None, StateSource::File(p)) => p.clone(),
        (None, StateSource::Http { url, .. }) => {
            return Err(format!(
                "the config's state comes from {url}: download it and pass --state FILE"
            ));
        }
        // The connector keeps its last good snapshot there, in state.json's schema.
        (None, StateSource::Graph(_)) => match &config.state.cache_dir {
            Some(dir) => crate::state::graph::cached_snapshot_path(dir),
            None => {
                return Err(
                    "the config's state comes from Microsoft Graph: pass --state FILE".into(),
                );
            }
        },
    };
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    PolicyState::from_json(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// The claims of a JWT, decoded without verification (What If is offline).
fn token_claims(token: &str) -> Result<serde_json::Value, String> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or("--token: not a JWT (expected header.payload.signature)")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|e| format!("--token: payload is not base64url: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("--token: payload is not JSON: {e}"))
}

fn parse_at(at: Option<&str>) -> Result<i64, String> {
    match at {
        None => Ok(time::OffsetDateTime::now_utc().unix_timestamp()),
        Some(t) => time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .map(|t| t.unix_timestamp())
            .map_err(|e| format!("--at {t:?}: not RFC 3339 ({e})")),
    }
}

/// What `accessgate eval` was asked, as given on the command line.
#[derive(Debug, Clone, Copy)]
pub struct EvalArgs<'a> {
    pub config_path: &'a Path,
    /// The route `resource` the request is for.
    pub resource: &'a str,
    /// A token whose claims to evaluate (decoded, not verified), or...
    pub token: Option<&'a str>,
    /// ...a JSON file holding the claims.
    pub claims: Option<&'a Path>,
    pub ip: IpAddr,
    /// Evaluation time (RFC 3339), default now.
    pub at: Option<&'a str>,
    /// Policy state file, default the config's `[state]` file.
    pub state: Option<&'a Path>,
    pub json: bool,
}

/// `accessgate eval`.
pub fn eval(args: &EvalArgs<'_>) -> ExitCode {
    let EvalArgs {
        config_path,
        resource,
        token,
        claims,
        ip,
        at,
        state,
        json,
    } = *args;
    let config = match crate::config::load(config_path) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let state = match load_state(&config, state) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let claims = match (token, claims) {
        (Some(t), _) => token_claims(t),
        (None, Some(p)) => std::fs::read_to_string(p)
            .map_err(|e| format!("{}: {e}", p.display()))
            .and_then(|t| serde_json::from_str(&t).map_err(|e| format!("{}: {e}", p.display()))),
        (None, None) => Err("give --token or --claims".to_owned()),
    };
    let mut claims = match claims {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let at = match parse_at(at) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    // As in test-policies: a claims file may leave the token's lifetime out.
    if let Some(o) = claims.as_object_mut() {
        o.entry("iat").or_insert(serde_json::json!(at - 60));
        o.entry("exp").or_insert(serde_json::json!(at + 3600));
    }
    let principal = match crate::cli::whatif::principal_from_claims(&config, &claims) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    match crate::cli::whatif::eval_report(&config, &state, resource, &principal, ip, at) {
        Ok(report) => {
            if json {
                println!("{}", report.to_json());
            } else {
                println!("{report}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `accessgate test-policies`.
pub fn test_policies(config_path: &Path, cases: &Path, state: Option<&Path>) -> ExitCode {
    let config = match crate::config::load(config_path) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let state = match load_state(&config, state) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let text = match std::fs::read_to_string(cases) {
        Ok(t) => t,
        Err(e) => return fail(format!("{}: {e}", cases.display())),
    };
    match crate::cli::whatif::run_policy_tests(&config, &state, &text) {
        Ok(report) => {
            println!("{report}");
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => fail(e),
    }
}
