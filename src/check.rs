//! `accessgate check`: validate everything `run` would load, without serving.

use crate::config::Config;

/// Validate the config's files (TLS material, client CA) and return a summary, or every
/// problem found.
pub fn run(config: &Config) -> Result<String, Vec<String>> {
    let mut errors = Vec::new();
    if let Err(e) = crate::tls::server_config(&config.listen) {
        errors.push(format!("listen.tls_cert / tls_key: {e}"));
    }
    if errors.is_empty() {
        Ok(config.summary())
    } else {
        Err(errors)
    }
}
