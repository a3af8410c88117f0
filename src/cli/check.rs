//! `accessgate check`: validate everything `run` would load, without serving.

use crate::config::{AuthMode, Config, StateSource};
use crate::ops::metrics::Metrics;

/// Validate the config's files (TLS material, client CA, JWKS files, policy state) and
/// compile its policies; return a summary, or every problem found.
pub fn run(config: &Config) -> Result<String, Vec<String>> {
    let mut errors = Vec::new();
    if let Err(e) = crate::transport::tls::server_config(&config.listen) {
        errors.push(format!("listen.tls_cert / tls_key / client_ca: {e}"));
    }
    if let Err(e) = crate::policy::PolicySet::compile(config) {
        errors.push(format!("policies: {e}"));
    }
    let authn = crate::authn::Authenticator::new(config, &Metrics::new(), None);
    errors.extend(authn.startup_errors().iter().cloned());
    let mut summary = config.summary();
    let needs_state = config.routes.iter().any(|r| r.auth == AuthMode::Required);
    match &config.state.source {
        StateSource::File(p) if needs_state => match std::fs::read(p) {
            Ok(bytes) => match crate::policy::PolicyState::from_json(&bytes) {
                Ok(s) => summary.push_str(&format!("\nstate loaded: {}", s.counts())),
                Err(e) => errors.push(format!("state {}: {e}", p.display())),
            },
            Err(e) => errors.push(format!("state {}: {e}", p.display())),
        },
        StateSource::File(_) => {}
        StateSource::Http { url, .. } => {
            summary.push_str(&format!(
                "\nstate: {url} (fetched at start; not checked offline)"
            ));
        }
        StateSource::Graph(g) => {
            if let Err(e) = crate::state::graph::check_credential(g) {
                errors.push(format!("graph: {e}"));
            }
            for w in &g.warnings {
                summary.push_str(&format!("\nwarning: {w}"));
            }
            summary.push_str(&format!(
                "\ngraph: tenant {}, client {}, {} credential, login {}, graph {}, {} licence plan(s), {} group(s), {} app(s) mapped",
                g.tenant_id,
                g.client_id,
                match g.credential {
                    crate::config::GraphCredential::SecretFile(_) => "secret",
                    crate::config::GraphCredential::Certificate { .. } => "certificate",
                },
                g.login_url,
                g.graph_url,
                g.licensed_service_plans.len(),
                g.groups.len(),
                g.apps.len()
            ));
        }
    }
    if errors.is_empty() {
        Ok(summary)
    } else {
        Err(errors)
    }
}
