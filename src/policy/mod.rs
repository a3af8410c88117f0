//! The pure policy engine: state model, compiled policies, evaluation. No I/O.

use crate::config::Config;

/// Policies compiled for evaluation (placeholder, being written).
#[derive(Debug, Default)]
pub struct PolicySet {}

impl PolicySet {
    pub fn compile(_config: &Config) -> Result<Self, String> {
        Ok(Self {})
    }
}
