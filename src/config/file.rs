//! The config file model: exactly what the TOML says, nothing checked yet.
//!
//! Every table denies unknown keys, so a typo is an error that names the key and its line
//! instead of a silently ignored setting. Almost every field is optional here, even the
//! required ones: [`super::validate`] then reports *all* missing and invalid values at once
//! (serde would stop at the first). Values are wrapped in [`Spanned`] so that each semantic
//! error can point at the line it comes from. Integers are read as `i64` (TOML's integer
//! type) so that range errors get our message rather than serde's.

use serde::Deserialize;
use toml::Spanned;

/// A string value with its place in the file.
pub type Str = Spanned<String>;
/// A list of strings, with the place of the list and of each item.
pub type StrList = Spanned<Vec<Str>>;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<Spanned<ListenFile>>,
    pub runtime: Option<Spanned<RuntimeFile>>,
    pub admin: Option<Spanned<AdminFile>>,
    #[serde(default)]
    pub issuers: Vec<Spanned<IssuerFile>>,
    pub tokens: Option<Spanned<TokensFile>>,
    pub state: Option<Spanned<StateFile>>,
    pub publish: Option<Spanned<PublishFile>>,
    #[serde(default)]
    pub routes: Vec<Spanned<RouteFile>>,
    #[serde(default)]
    pub policies: Vec<Spanned<PolicyFile>>,
    pub approved_apps: Option<Spanned<ApprovedAppsFile>>,
    pub log: Option<Spanned<LogFile>>,
    pub graph: Option<Spanned<super::graph::GraphFile>>,
    pub assertion: Option<Spanned<AssertionFile>>,
}

/// `[listen]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenFile {
    pub address: Option<Str>,
    pub tls_cert: Option<Str>,
    pub tls_key: Option<Str>,
    pub client_ca: Option<Str>,
    pub handshake_timeout: Option<Str>,
    pub header_read_timeout: Option<Str>,
    pub idle_timeout: Option<Str>,
    pub max_connections: Option<Spanned<i64>>,
    pub max_header_bytes: Option<Spanned<i64>>,
    pub trusted_proxies: Option<StrList>,
    pub h2_max_concurrent_streams: Option<Spanned<i64>>,
}

/// `[runtime]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeFile {
    pub worker_threads: Option<Spanned<i64>>,
    pub scheduler: Option<Str>,
    pub shutdown_grace: Option<Str>,
}

/// `[admin]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    pub address: Option<Str>,
}

/// `[[issuers]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerFile {
    pub issuer: Option<Str>,
    pub audiences: Option<StrList>,
    pub jwks_uri: Option<Str>,
    pub jwks_file: Option<Str>,
    pub jwks_ca: Option<Str>,
    pub algorithms: Option<StrList>,
    pub authorization_uri: Option<Str>,
    pub tenants: Option<StrList>,
    pub claims: Option<Spanned<ClaimsFile>>,
    pub challenge: Option<Str>,
}

/// `claims = { user, client_app, device, groups }` inside `[[issuers]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimsFile {
    pub user: Option<Str>,
    pub client_app: Option<Str>,
    pub device: Option<Str>,
    pub groups: Option<Str>,
}

/// `[tokens]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensFile {
    pub clock_skew: Option<Str>,
    pub jwks_refresh: Option<Str>,
    pub jwks_min_refetch: Option<Str>,
    pub cache_capacity: Option<Spanned<i64>>,
}

/// `[state]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateFile {
    pub source: Option<Str>,
    pub path: Option<Str>,
    pub url: Option<Str>,
    pub ca: Option<Str>,
    pub key_prefix: Option<Str>,
    pub password_file: Option<Str>,
    pub refresh: Option<Str>,
    pub max_staleness: Option<Str>,
    pub fail_open: Option<Spanned<bool>>,
    pub cache_dir: Option<Str>,
}

/// `[publish]` (`accessgate sync`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishFile {
    pub to: Option<Str>,
    pub path: Option<Str>,
    pub url: Option<Str>,
    pub key_prefix: Option<Str>,
    pub password_file: Option<Str>,
}

/// `[[routes]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    pub name: Option<Str>,
    pub host: Option<Str>,
    pub path_prefix: Option<Str>,
    pub upstream: Option<Str>,
    pub resource: Option<Str>,
    pub auth: Option<Str>,
    pub forward_token: Option<Spanned<bool>>,
    pub connect_timeout: Option<Str>,
    pub request_timeout: Option<Str>,
    pub assertion: Option<Spanned<bool>>,
    pub upstream_max_connections: Option<Spanned<i64>>,
}

/// `[[policies]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    pub name: Option<Str>,
    pub mode: Option<Str>,
    pub resources: Option<StrList>,
    pub include_users: Option<StrList>,
    pub include_groups: Option<StrList>,
    pub exclude_users: Option<StrList>,
    pub exclude_groups: Option<StrList>,
    pub client_apps: Option<StrList>,
    pub platforms: Option<StrList>,
    pub locations: Option<Spanned<LocationsFile>>,
    pub grant: Option<Spanned<GrantFile>>,
    pub session: Option<Spanned<SessionFile>>,
    pub remediation: Option<Spanned<RemediationFile>>,
}

/// `locations = { include, exclude }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationsFile {
    pub include: Option<StrList>,
    pub exclude: Option<StrList>,
}

/// `grant = { block }` or `grant = { operator, controls, auth_context }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantFile {
    pub block: Option<Spanned<bool>>,
    pub operator: Option<Str>,
    pub controls: Option<StrList>,
    pub auth_context: Option<Str>,
}

/// `session = { sign_in_frequency }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionFile {
    pub sign_in_frequency: Option<Str>,
}

/// `remediation = { enabled, window }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemediationFile {
    pub enabled: Option<Spanned<bool>>,
    pub window: Option<Str>,
}

/// `[approved_apps]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovedAppsFile {
    pub ids: Option<StrList>,
}

/// `[log]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogFile {
    pub level: Option<Str>,
    pub decisions: Option<Str>,
    pub allow_sample: Option<Spanned<f64>>,
    pub server_timing: Option<Spanned<bool>>,
}

/// `[assertion]`: the identity assertion the gateway signs for upstreams.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionFile {
    pub issuer: Option<Str>,
    pub lifetime: Option<Str>,
    pub keys: Option<Spanned<Vec<Spanned<AssertionKeyFile>>>>,
}

/// One of `[assertion] keys = [{ id, key }]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionKeyFile {
    pub id: Option<Str>,
    pub key: Option<Str>,
}
