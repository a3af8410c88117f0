//! Configuration: what the file says ([`file`]) and what the program runs (this module's
//! types, built by [`validate`]).
//!
//! The runtime types below are the *validated* form: every duration is parsed, every path
//! is absolute (resolved against the config file's folder), every CIDR and URL is checked,
//! and every cross-reference (a policy naming a resource, a route's upstream) resolves.
//! Nothing downstream re-validates; a value of these types is correct by construction.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

pub mod duration;
pub mod file;
pub mod graph;
pub mod path;
pub mod runtime;
pub mod validate;

pub use graph::{GraphApp, GraphCloud, GraphConfig, GraphCredential};
pub use runtime::Scheduler;
pub use validate::{ConfigError, DEMO_CONFIG, load, parse_str};

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this config was read from (absolute), or a pseudo path for embedded configs.
    pub source: PathBuf,
    pub listen: ListenConfig,
    pub runtime: RuntimeConfig,
    pub admin: AdminConfig,
    pub issuers: Vec<IssuerConfig>,
    pub tokens: TokensConfig,
    pub state: StateConfig,
    /// `[publish]`, read only by `accessgate sync`.
    pub publish: Option<PublishTarget>,
    pub routes: Vec<RouteConfig>,
    pub policies: Vec<PolicyConfig>,
    /// Client app ids that the `approved_app` grant control accepts.
    pub approved_apps: Vec<String>,
    pub log: LogConfig,
    /// `[assertion]`, when routes may ask for a signed identity assertion.
    pub assertion: Option<AssertionConfig>,
}

impl Config {
    /// The folder relative paths were resolved against.
    pub fn base_dir(&self) -> &Path {
        self.source.parent().unwrap_or_else(|| Path::new("."))
    }
}

/// `[listen]`: the client-facing TLS listener.
#[derive(Debug, Clone)]
pub struct ListenConfig {
    pub address: SocketAddr,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// When set, clients must present a certificate chaining to one of these CAs.
    pub client_ca: Option<PathBuf>,
    /// `handshake_timeout` (default 10s): a TLS handshake slower than this is dropped.
    pub handshake_timeout: Duration,
    /// `header_read_timeout` (default 10s).
    pub header_read_timeout: Duration,
    /// `idle_timeout` (default 60s): keep-alive connections idle this long are closed.
    pub idle_timeout: Duration,
    /// `max_connections` (default 10000): accepts beyond this wait for a slot.
    pub max_connections: usize,
    /// `max_header_bytes` (default 16384): larger request heads get 431.
    pub max_header_bytes: usize,
    /// `trusted_proxies` (default none): peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// `h2_max_concurrent_streams` (default 256).
    pub h2_max_concurrent_streams: u32,
}

/// `[runtime]`.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// 0 = one per core (TOKIO_WORKER_THREADS honoured when 0).
    pub worker_threads: usize,
    /// `scheduler` (default `per_core`): how the workers share the listener.
    pub scheduler: Scheduler,
    /// `shutdown_grace` (default 30s): how long in-flight requests may run after SIGTERM.
    pub shutdown_grace: Duration,
}

/// `[admin]`: plain-HTTP admin listener (`/metrics`, `/healthz`, `/readyz`).
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// `None` when `address = ""` (admin listener disabled).
    pub address: Option<SocketAddr>,
}

/// JWS algorithms accepted in `[[issuers]] algorithms`. `none` and HS* do not exist here:
/// they cannot be configured, so they can never be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwsAlgorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl JwsAlgorithm {
    pub const ALL: [JwsAlgorithm; 9] = [
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::ES256,
        Self::ES384,
        Self::EdDSA,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Where an issuer's signing keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `jwks_uri`: https://, or http:// to a loopback address.
    Uri(String),
    /// `jwks_file`: a JWKS document on disk (offline use, demos).
    File(PathBuf),
    /// Neither given: `{issuer}/.well-known/openid-configuration` names the `jwks_uri`.
    Discovery,
}

/// Which challenge a step-up or reauthentication 401 uses for this issuer's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeStyle {
    /// Entra / MSAL CAE claims challenge (`error="insufficient_claims"`, `claims=...`).
    Entra,
    /// RFC 9470 (`error="insufficient_user_authentication"`, `acr_values`, `max_age`).
    Rfc9470,
}

/// Claim names read from this issuer's tokens (defaults are Entra's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    /// default `oid` (falls back to `sub` when absent).
    pub user: String,
    /// default `azp` (falls back to `appid` when absent).
    pub client_app: String,
    /// default `deviceid`.
    pub device: String,
    /// default `groups`.
    pub groups: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        Self {
            user: "oid".into(),
            client_app: "azp".into(),
            device: "deviceid".into(),
            groups: "groups".into(),
        }
    }
}

/// `[[issuers]]`: one trusted token issuer.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// Exact `iss` value; may contain `{tenantid}` (see `multi_tenant`).
    pub issuer: String,
    /// True when `issuer` contains `{tenantid}`.
    pub multi_tenant: bool,
    /// When multi-tenant and non-empty: the only tenant GUIDs (lower-case) accepted.
    pub tenants: Vec<String>,
    pub audiences: Vec<String>,
    pub keys: KeySource,
    /// Extra CA (PEM) trusted for `jwks_uri` / discovery fetches, for private PKI.
    pub jwks_ca: Option<PathBuf>,
    /// Allow-list, never empty (default `["RS256"]`).
    pub algorithms: Vec<JwsAlgorithm>,
    /// Put in reauthentication / step-up challenges so clients know where to sign in.
    pub authorization_uri: Option<String>,
    pub claims: ClaimNames,
    pub challenge: ChallengeStyle,
}

/// `[tokens]`.
#[derive(Debug, Clone)]
pub struct TokensConfig {
    /// default 60s.
    pub clock_skew: Duration,
    /// default 1h.
    pub jwks_refresh: Duration,
    /// default 5m.
    pub jwks_min_refetch: Duration,
    /// default 100000.
    pub cache_capacity: u64,
}

/// Where policy state comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateSource {
    /// `source = "file"`, `path = ...` (absolute after validation).
    File(PathBuf),
    /// `source = "http"`, `url = ...` (https://, or http:// to loopback).
    Http { url: String, ca: Option<PathBuf> },
    /// `source = "redis"`: follow what `accessgate sync` publishes (docs/fleet.md).
    Redis(RedisEndpoint),
    /// `source = "graph"`: read from Microsoft Graph with the `[graph]` settings.
    Graph(Box<GraphConfig>),
}

/// A Redis server and the keys under which the fleet's state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisEndpoint {
    /// `rediss://` (TLS), or `redis://` only to a loopback address.
    pub url: String,
    /// default "accessgate".
    pub key_prefix: String,
    /// Read at connect time; overrides a password in the URL.
    pub password_file: Option<PathBuf>,
}

impl RedisEndpoint {
    /// The URL without any password in it, for logs and summaries.
    pub fn redacted_url(&self) -> String {
        match self.url.split_once("://") {
            Some((scheme, rest)) => {
                let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
                let host = authority.rsplit('@').next().unwrap_or(authority);
                format!("{scheme}://{host}{tail}")
            }
            None => String::from("(invalid url)"),
        }
    }
}

/// `[publish]` (`accessgate sync`): where each good round goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishTarget {
    /// `to = "file"`: a state.json replaced atomically.
    File(PathBuf),
    /// `to = "redis"`.
    Redis(RedisEndpoint),
}

/// `[state]`.
#[derive(Debug, Clone)]
pub struct StateConfig {
    pub source: StateSource,
    /// default 10s.
    pub refresh: Duration,
    /// default 5m.
    pub max_staleness: Duration,
    /// default false.
    pub fail_open: bool,
    /// `cache_dir`: with graph, the last good snapshot and the noncompliant-since ledger;
    /// with redis, the last state served (docs/fleet.md).
    pub cache_dir: Option<PathBuf>,
}

/// Whether a route requires a bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    Required,
    None,
}

/// A route's upstream: `http://host:port[/base]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// `host:port` as written (port defaulted to 80).
    pub authority: http::uri::Authority,
    /// Path prefix prepended to forwarded paths; "" when the upstream URL has no path or "/".
    pub base_path: String,
}

/// `[[routes]]`.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub name: String,
    /// Lower-case host without port; `None` matches any host.
    pub host: Option<String>,
    /// Normalised: starts with `/`, no dot-segments, no percent-encoding of unreserved bytes.
    pub path_prefix: String,
    pub upstream: Upstream,
    /// The resource name policies refer to (defaults to the route name).
    pub resource: String,
    pub auth: AuthMode,
    pub forward_token: bool,
    /// default 2s.
    pub connect_timeout: Duration,
    /// default 30s.
    pub request_timeout: Duration,
    /// Send the upstream a signed `x-accessgate-assertion` (needs `[assertion]`).
    pub assertion: bool,
    /// Most TCP connections open to the upstream at once (pooled and in use); default 256.
    /// Bounds what a client that opens and cancels requests can make the gateway open.
    pub upstream_max_connections: usize,
}

/// `[assertion]`: who signs the identity assertion, with which keys, for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionConfig {
    /// The assertion's `iss`.
    pub issuer: String,
    /// `exp - iat`; at most one minute.
    pub lifetime: Duration,
    /// The first key signs; every key is published in the JWKS (rotation: publish a new
    /// key second, later move it first, later drop the old one).
    pub keys: Vec<AssertionKey>,
}

/// One assertion key: its `kid` and its P-256 private key file (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionKey {
    pub id: String,
    pub key: PathBuf,
}

/// `mode` of a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyMode {
    Enabled,
    ReportOnly,
    Disabled,
}

impl PolicyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::ReportOnly => "report_only",
            Self::Disabled => "disabled",
        }
    }
}

/// A list that may be the keyword `all`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    All,
    /// Explicit ids (may be empty = matches nothing).
    Some(Vec<String>),
}

/// Device platforms, as policies name them (`platforms = [...]`) and as state's
/// `operatingSystem` / `platform` map onto them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    Ios,
    Android,
    Windows,
    Macos,
    Linux,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ios => "ios",
            Self::Android => "android",
            Self::Windows => "windows",
            Self::Macos => "macos",
            Self::Linux => "linux",
        }
    }

    /// Case-insensitive; accepts Graph spellings (`iOS`, `macOS`, `Windows`, `AndroidForWork`...).
    pub fn parse(s: &str) -> Option<Self> {
        let l = s.to_ascii_lowercase();
        match l.as_str() {
            "ios" | "ipados" => Some(Self::Ios),
            "android" | "androidforwork" | "androidenterprise" | "androidaosp" => {
                Some(Self::Android)
            }
            "windows" | "windows10" | "windowsphone" => Some(Self::Windows),
            "macos" | "mac" | "macosx" => Some(Self::Macos),
            "linux" => Some(Self::Linux),
            _ => None,
        }
    }
}

/// `locations = { include = [...], exclude = [...] }`: client IP CIDRs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locations {
    /// Empty = any location.
    pub include: Vec<IpNet>,
    pub exclude: Vec<IpNet>,
}

/// Grant operator: Graph's `AND` / `OR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantOperator {
    All,
    Any,
}

/// Grant controls (Graph names in comments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantControl {
    /// `mfa`
    Mfa,
    /// `compliantDevice`
    CompliantDevice,
    /// `approvedApplication`
    ApprovedApp,
    /// `compliantApplication` (Intune app protection)
    AppProtection,
}

impl GrantControl {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mfa => "mfa",
            Self::CompliantDevice => "compliant_device",
            Self::ApprovedApp => "approved_app",
            Self::AppProtection => "app_protection",
        }
    }
}

/// What a policy requires once it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// `grant = { block = true }`
    Block,
    /// `grant = { operator = "all"|"any", controls = [...], auth_context = "c1" }`.
    /// `controls` is never empty.
    Controls {
        operator: GrantOperator,
        controls: Vec<GrantControl>,
        auth_context: Option<String>,
    },
}

/// `remediation = { enabled, window }` (default enabled, 15m).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remediation {
    pub enabled: bool,
    pub window: Duration,
}

impl Default for Remediation {
    fn default() -> Self {
        Self {
            enabled: true,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// `[[policies]]`: one Conditional Access policy.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    pub name: String,
    pub mode: PolicyMode,
    /// Resource names (each one some route's `resource`), or all.
    pub resources: Selector,
    pub include_users: Selector,
    pub include_groups: Vec<String>,
    pub exclude_users: Vec<String>,
    pub exclude_groups: Vec<String>,
    /// Empty = any client app.
    pub client_apps: Vec<String>,
    /// Empty = any platform.
    pub platforms: Vec<Platform>,
    pub locations: Locations,
    pub grant: Grant,
    /// `session = { sign_in_frequency = "8h" }`.
    pub sign_in_frequency: Option<Duration>,
    pub remediation: Remediation,
}

/// Where decision log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecisionLogTarget {
    Stdout,
    Off,
    File(PathBuf),
}

/// `[log]`.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `level` (default "info"; `RUST_LOG` wins when set).
    pub level: String,
    /// `decisions = "stdout" | "off" | path` (default stdout).
    pub decisions: DecisionLogTarget,
    /// `allow_sample` in 0.0..=1.0 (default 1.0): share of `allow` lines written.
    /// Denials are never sampled.
    pub allow_sample: f64,
    /// `server_timing` (default false): add `Server-Timing` with the phase durations to
    /// responses. Off by default because it tells clients about the inside.
    pub server_timing: bool,
}
