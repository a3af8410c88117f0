//! `authenticate`: bearer extraction, JWT validation, JWKS, verified-token cache.

pub mod principal;

pub use principal::Principal;

use crate::config::Config;
use crate::metrics::Metrics;

/// Validates bearer tokens for every configured issuer (placeholder, being written).
#[derive(Debug, Default)]
pub struct Authenticator {}

impl Authenticator {
    pub fn new(_config: &Config, _metrics: &Metrics, _previous: Option<&Authenticator>) -> Self {
        Self {}
    }
}
