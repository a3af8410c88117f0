//! `Config::summary`: what `accessgate check` prints after a config validates, so the
//! operator can see at a glance what the gateway will listen on, trust and forward to.

use std::fmt::Write;

use crate::config::duration::format_duration;
use crate::config::{AuthMode, Config, KeySource, PolicyMode, StateSource};

impl Config {
    /// A short human summary: listeners, issuers and their key sources, routes, policies by
    /// mode, and the state source.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; the results are ignored for that reason.
        let _ = writeln!(out, "config: {}", self.source.display());
        let _ = writeln!(
            out,
            "listen: {} (TLS{}), max {} connections",
            self.listen.address,
            if self.listen.client_ca.is_some() {
                ", client certificates required"
            } else {
                ""
            },
            self.listen.max_connections
        );
        match self.admin.address {
            Some(a) => {
                let _ = writeln!(out, "admin: http://{a} (/metrics /healthz /readyz)");
            }
            None => {
                let _ = writeln!(out, "admin: disabled");
            }
        }
        let _ = writeln!(out, "issuers: {}", self.issuers.len());
        for issuer in &self.issuers {
            let keys = match &issuer.keys {
                KeySource::Uri(uri) => format!("jwks_uri {uri}"),
                KeySource::File(path) => format!("jwks_file {}", path.display()),
                KeySource::Discovery => "OpenID discovery".to_owned(),
            };
            let algorithms: Vec<&str> = issuer.algorithms.iter().map(|a| a.as_str()).collect();
            let _ = writeln!(
                out,
                "  {}{}: keys from {keys}; audiences {}; algorithms {}",
                issuer.issuer,
                if issuer.multi_tenant && !issuer.tenants.is_empty() {
                    format!(" ({} tenants)", issuer.tenants.len())
                } else if issuer.multi_tenant {
                    " (any tenant)".to_owned()
                } else {
                    String::new()
                },
                issuer.audiences.join(", "),
                algorithms.join(", ")
            );
        }
        let _ = writeln!(out, "routes: {}", self.routes.len());
        for route in &self.routes {
            let upstream = format!(
                "http://{}{}",
                route.upstream.authority, route.upstream.base_path
            );
            let auth = match route.auth {
                AuthMode::Required => format!("token required, resource {:?}", route.resource),
                AuthMode::None => "public, no token".to_owned(),
            };
            let _ = writeln!(
                out,
                "  {}: {}{} -> {upstream} ({auth})",
                route.name,
                route.host.as_deref().unwrap_or("*"),
                route.path_prefix
            );
        }
        let count = |mode| self.policies.iter().filter(|p| p.mode == mode).count();
        let _ = writeln!(
            out,
            "policies: {} ({} enabled, {} report_only, {} disabled)",
            self.policies.len(),
            count(PolicyMode::Enabled),
            count(PolicyMode::ReportOnly),
            count(PolicyMode::Disabled)
        );
        let source = match &self.state.source {
            StateSource::File(path) => format!("file {}", path.display()),
            StateSource::Http { url, .. } => format!("http {url}"),
            StateSource::Graph(g) => format!(
                "graph tenant {} via {} ({} groups named, {} apps mapped)",
                g.tenant_id,
                g.graph_url,
                g.groups.len(),
                g.apps.len()
            ),
        };
        let _ = write!(
            out,
            "state: {source} (refresh {}, max staleness {}, {} when stale)",
            format_duration(self.state.refresh),
            format_duration(self.state.max_staleness),
            if self.state.fail_open {
                "FAIL OPEN"
            } else {
                "fail closed"
            }
        );
        out
    }
}
