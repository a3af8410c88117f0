//! Entry points for the coverage-guided fuzz targets in `fuzz/`. Not an API.
//!
//! Most parsers that face the network or a file are public already (`route::normalize_path`,
//! `transport::h1_guard::H1Guard`, `PolicyState::from_json`, `config::parse_str`...). The token
//! decoding steps are crate-private on purpose (nothing outside authn should pick and choose
//! among them), so this one file exposes them to the fuzzer and nowhere else. It runs the
//! same steps, in the same order, as `Authenticator::verify` does before it touches a key.
//! Likewise the Graph pager's per-page step and per-collection mapping, and a plain view of
//! a fleet change batch (whose fields are crate-private so nothing builds one unvalidated).

use std::collections::BTreeMap;
use std::sync::Arc;

use http::HeaderMap;

use crate::authn::error::TokenRefusal;
use crate::authn::principal::Principal;
use crate::authn::{bearer, claims, jose};
use crate::config::{ClaimNames, JwsAlgorithm};
use crate::policy::state::{AppProtectionPolicy, AppRegistration, Device};
use crate::policy::{ChangeBatch, RawAppPolicy, RawDevice, RawRegistration};
use crate::state::graph::map::{AppPlatform, AppTable, GraphUserRec, MapStats};
use crate::state::graph::pager::{self, End};
use crate::state::graph::{GraphError, collections, wire};

/// `bearer::extract`: the raw credentials of the `Authorization` header(s).
pub fn bearer_extract(headers: &HeaderMap) -> Result<&[u8], TokenRefusal> {
    bearer::extract(headers)
}

/// `bearer::token_syntax`: the RFC 6750 `b64token` check.
pub fn bearer_token_syntax(token: &[u8]) -> Result<&str, TokenRefusal> {
    bearer::token_syntax(token)
}

/// Largest token `bearer::extract` lets through.
pub const MAX_TOKEN_BYTES: usize = bearer::MAX_TOKEN_BYTES;

/// What the gateway reads from a token before the signature check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unverified {
    pub alg: JwsAlgorithm,
    pub kid: Option<String>,
    pub iss: String,
    pub tid: Option<String>,
}

/// The pre-signature steps of `Authenticator::verify`: three parts, JOSE header, payload
/// base64url, then `iss`/`tid` (with the full strict claims parse when `names` is given,
/// as when every issuer shares its claim names, else the lighter peek).
pub fn decode_unverified(
    token: &str,
    names: Option<&ClaimNames>,
) -> Result<Unverified, TokenRefusal> {
    let parts = jose::split(token)?;
    let header = jose::parse_header(parts.header)?;
    let payload = jose::b64_decode(parts.payload)?;
    let peek = match names {
        Some(n) => claims::parse(&payload, n)?.peek()?,
        None => jose::peek(&payload)?,
    };
    Ok(Unverified {
        alg: header.alg,
        kid: header.kid,
        iss: peek.iss,
        tid: peek.tid,
    })
}

/// `jose::parse_header` on a base64url header part: `(alg, kid)`.
pub fn parse_jose_header(part: &str) -> Result<(JwsAlgorithm, Option<String>), TokenRefusal> {
    jose::parse_header(part).map(|h| (h.alg, h.kid))
}

/// `jose::peek` on a decoded payload: `(iss, tid)`.
pub fn peek_claims(payload: &[u8]) -> Result<(String, Option<String>), TokenRefusal> {
    jose::peek(payload).map(|p| (p.iss, p.tid))
}

/// `claims::parse(..).peek()` on a decoded payload: must agree with [`peek_claims`]
/// whenever the strict parse succeeds.
pub fn strict_peek_claims(
    payload: &[u8],
    names: &ClaimNames,
) -> Result<(String, Option<String>), TokenRefusal> {
    claims::parse(payload, names)?
        .peek()
        .map(|p| (p.iss, p.tid))
}

/// The principal a payload would yield once its signature verified (issuer index 0; a
/// fixed stand-in for the token hash, which only matters when there is no `jti`).
pub fn principal_of(
    payload: &[u8],
    names: &ClaimNames,
    issuer: &Arc<str>,
) -> Result<Principal, TokenRefusal> {
    claims::principal(payload, names, 0, issuer, || "token-hash".to_owned())
}

// ---- Microsoft Graph pages (`fuzz_targets/graph_page.rs`) ----

/// Where a Graph page leads (mirror of the pager's crate-private step).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphStep {
    Next(String),
    Delta(String),
    Done,
}

/// The pager's per-page step (`pager::decode_page`): envelope, records, both links checked
/// against `origin` (`scheme://host[:port]` of the configured `graph_url`).
pub fn graph_page<T: serde::de::DeserializeOwned>(
    label: &str,
    url: &str,
    origin: &str,
    body: &[u8],
) -> Result<(Vec<T>, GraphStep), GraphError> {
    let (records, step) = pager::decode_page(label, url, origin, body)?;
    let step = match step {
        pager::Step::Next(n) => GraphStep::Next(n),
        pager::Step::End(End::Delta(d)) => GraphStep::Delta(d),
        pager::Step::End(End::Done) => GraphStep::Done,
    };
    Ok((records, step))
}

/// The origin the pager derives from `graph_url` (`None`: `Pager::new` refuses it).
pub fn graph_origin(url: &str) -> Option<String> {
    pager::origin_of(url)
}

/// `users/delta`: one page into the round's working copy.
pub fn graph_apply_users(
    working: &mut BTreeMap<String, GraphUserRec>,
    page: &[wire::GraphUser],
    plans: &[String],
) -> Result<(), GraphError> {
    collections::apply_users(working, page, plans)
}

/// `transitiveMembers`: the user ids of one page.
pub fn graph_user_members(page: Vec<wire::DirectoryObject>) -> Vec<String> {
    collections::user_members(page).collect()
}

/// `managedDevices`: one page into the round's devices.
pub fn graph_add_devices(
    out: &mut BTreeMap<String, RawDevice<'static>>,
    page: &[wire::ManagedDevice],
    stats: &mut MapStats,
) {
    collections::add_devices(out, page, stats, None);
}

/// `ios|androidManagedAppProtections`: one page into the round's policies.
pub fn graph_add_app_policies(
    out: &mut BTreeMap<String, RawAppPolicy<'static>>,
    label: &str,
    page: &[wire::AppProtection],
    platform: AppPlatform,
    table: &AppTable,
    stats: &mut MapStats,
) -> Result<(), GraphError> {
    collections::add_app_policies(out, label, page, platform, table, stats)
}

/// `managedAppRegistrations`: one page into the round's registrations.
pub fn graph_add_registrations(
    out: &mut BTreeMap<String, RawRegistration<'static>>,
    page: &[wire::AppRegistration],
    table: &AppTable,
    stats: &mut MapStats,
) {
    collections::add_registrations(out, page, table, stats, None);
}

// ---- The fleet's change records (`fuzz_targets/fleet_record.rs`) ----

/// A decoded change batch, as plain data (the batch's own fields are crate-private).
/// `None` = the record is removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchView {
    pub users: Vec<(String, Option<UserView>)>,
    pub devices: Vec<(String, Option<Device>)>,
    pub app_policies: Vec<(String, Option<PolicyView>)>,
    pub registrations: Vec<(RegKeyView, Option<AppRegistration>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView {
    pub account_enabled: bool,
    pub licensed: bool,
    /// Folded group names, as the batch names them.
    pub groups: Vec<String>,
    pub revoke_sessions_after: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyView {
    /// Its interned lists are empty here: they are named below.
    pub policy: AppProtectionPolicy,
    pub apps: Vec<String>,
    pub include_groups: Vec<String>,
    pub exclude_groups: Vec<String>,
}

/// user x app x device (`None`: the registration recorded without a device id), folded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegKeyView {
    pub user: String,
    pub app: String,
    pub device: Option<String>,
}

fn names(v: &[Box<str>]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// What a batch changes, record by record.
pub fn batch_view(b: &ChangeBatch) -> BatchView {
    BatchView {
        users: b
            .users
            .iter()
            .map(|(id, u)| {
                let u = u.as_ref().map(|u| UserView {
                    account_enabled: u.account_enabled,
                    licensed: u.licensed,
                    groups: names(&u.groups),
                    revoke_sessions_after: u.revoke_sessions_after,
                });
                (id.to_string(), u)
            })
            .collect(),
        devices: b
            .devices
            .iter()
            .map(|(id, d)| (id.to_string(), *d))
            .collect(),
        app_policies: b
            .app_policies
            .iter()
            .map(|(id, p)| {
                let p = p.as_ref().map(|p| PolicyView {
                    policy: p.policy.clone(),
                    apps: names(&p.apps),
                    include_groups: names(&p.include_groups),
                    exclude_groups: names(&p.exclude_groups),
                });
                (id.to_string(), p)
            })
            .collect(),
        registrations: b
            .registrations
            .iter()
            .map(|(k, r)| {
                let k = RegKeyView {
                    user: k.user.to_string(),
                    app: k.app.to_string(),
                    device: k.device.as_ref().map(|d| d.to_string()),
                };
                (k, *r)
            })
            .collect(),
    }
}

/// A loaded policy's interned group lists `(include, exclude)` (compare through
/// `PolicyState::group_index`).
pub fn policy_groups(p: &AppProtectionPolicy) -> (&[u32], &[u32]) {
    (&p.include_groups, &p.exclude_groups)
}
