//! `[graph]`: the Microsoft Graph connector's settings (`[state] source = "graph"`), both
//! as the file says them ([`GraphFile`]) and validated ([`GraphConfig`]).
//!
//! Kept apart from `file.rs` / `mod.rs` because the connector is optional: nothing else in
//! the config depends on it.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::file::{Str, StrList};

/// Intune's service plan (`INTUNE_A`, "Microsoft Intune Plan 1"): a user holding it with
/// `capabilityStatus` `Enabled` or `Warning` is licensed.
pub const INTUNE_PLAN: &str = "c1ec4a95-1f05-45b3-a911-aa3fa01094f5";

/// `[graph]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphFile {
    pub tenant_id: Option<Str>,
    pub client_id: Option<Str>,
    pub client_secret_file: Option<Str>,
    pub client_certificate: Option<Str>,
    pub client_key: Option<Str>,
    pub cloud: Option<Str>,
    pub login_url: Option<Str>,
    pub graph_url: Option<Str>,
    pub licensed_service_plans: Option<StrList>,
    pub groups: Option<StrList>,
    #[serde(default)]
    pub apps: Vec<Spanned<GraphAppFile>>,
}

/// `[[graph.apps]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphAppFile {
    pub client_id: Option<Str>,
    pub android_package_ids: Option<StrList>,
    pub ios_bundle_ids: Option<StrList>,
}

/// National clouds: each has its own login and Graph hosts, and tokens of one are not
/// accepted by another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphCloud {
    Global,
    UsGov,
    UsGovDod,
    China,
}

impl GraphCloud {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Global => "global",
            Self::UsGov => "usgov",
            Self::UsGovDod => "usgov-dod",
            Self::China => "china",
        }
    }

    /// (login host, Graph host) of the cloud (research/graph.md section 7, deployments.md).
    pub fn hosts(self) -> (&'static str, &'static str) {
        match self {
            Self::Global => (
                "https://login.microsoftonline.com",
                "https://graph.microsoft.com",
            ),
            Self::UsGov => (
                "https://login.microsoftonline.us",
                "https://graph.microsoft.us",
            ),
            Self::UsGovDod => (
                "https://login.microsoftonline.us",
                "https://dod-graph.microsoft.us",
            ),
            Self::China => (
                "https://login.chinacloudapi.cn",
                "https://microsoftgraph.chinacloudapi.cn",
            ),
        }
    }
}

/// How the gateway proves its identity to Entra ID.
#[derive(Clone, PartialEq, Eq)]
pub enum GraphCredential {
    /// `client_secret_file`: the file holds the secret (read at start, never logged).
    SecretFile(PathBuf),
    /// `client_certificate` + `client_key` (PEM): a signed client assertion (PS256).
    Certificate { cert: PathBuf, key: PathBuf },
}

impl std::fmt::Debug for GraphCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Paths only: the material itself never lives in config values.
        match self {
            Self::SecretFile(p) => write!(f, "SecretFile({})", p.display()),
            Self::Certificate { cert, key } => {
                write!(f, "Certificate({}, {})", cert.display(), key.display())
            }
        }
    }
}

/// `[[graph.apps]]`: Intune names apps by bundle / package id, tokens by client id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphApp {
    pub client_id: String,
    pub android_package_ids: Vec<String>,
    pub ios_bundle_ids: Vec<String>,
}

/// The validated `[graph]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphConfig {
    pub tenant_id: String,
    pub client_id: String,
    pub credential: GraphCredential,
    pub cloud: GraphCloud,
    /// Login host without a trailing slash (the cloud's, or `login_url`).
    pub login_url: String,
    /// Graph host without a trailing slash (the cloud's, or `graph_url`).
    pub graph_url: String,
    /// Service plan ids that make a user licensed (default: Intune).
    pub licensed_service_plans: Vec<String>,
    /// Groups to resolve: `[graph] groups` plus every group a `[[policies]]` names.
    /// (App protection assignments add theirs at sync time.)
    pub groups: Vec<String>,
    pub apps: Vec<GraphApp>,
    /// Things `check` and the start-up log should mention (e.g. a world-readable secret).
    pub warnings: Vec<String>,
}
