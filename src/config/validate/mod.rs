//! File model -> runtime config: parse, check every value, resolve paths, and report every
//! problem at once as `file:line:col: key: message`, one per line.
//!
//! Order: TOML syntax (all syntax errors), then the file model (unknown keys and wrong
//! types, first one only: serde stops there), then every semantic check section by section,
//! then the cross-references (policies -> route resources, routes -> issuers).

use std::path::{Path, PathBuf};

use super::{AuthMode, Config};

mod ctx;
mod graph;
mod issuers;
mod net;
mod policies;
mod routes;
mod sections;
mod summary;
mod syntax;

use ctx::Ctx;

/// The embedded demo config (`accessgate demo`, README quick start). Its relative paths
/// resolve against wherever the caller says it lives (see [`parse_str`]).
pub const DEMO_CONFIG: &str = include_str!("../../../config/demo.toml");

/// A config error: every problem found, one per line, each naming the file, line, column
/// and key path when known (`config.toml:12:12: routes[0].upstream: "ftp://x" is not ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// All messages joined with `\n` (see [`ConfigError::messages`]).
    pub message: String,
}

impl ConfigError {
    fn from_lines(lines: Vec<String>) -> Self {
        Self {
            message: lines.join("\n"),
        }
    }

    /// Each problem on its own.
    pub fn messages(&self) -> impl Iterator<Item = &str> {
        self.message.lines()
    }

    /// How many problems were found.
    pub fn count(&self) -> usize {
        self.messages().count()
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Read and validate a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        message: format!("{}: {e}", path.display()),
    })?;
    parse_str(&text, path)
}

/// Validate config text as if read from `source` (relative paths resolve against its folder).
pub fn parse_str(text: &str, source: &Path) -> Result<Config, ConfigError> {
    let display = source.display().to_string();
    // `absolute` is lexical (no file system access beyond the working directory).
    let absolute = std::path::absolute(source).map_err(|e| ConfigError {
        message: format!("{display}: cannot make the path absolute: {e}"),
    })?;
    let base_dir = absolute
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let mut ctx = Ctx::new(text, display, base_dir);
    let Some(file) = syntax::parse_file(&mut ctx, text) else {
        return Err(ConfigError::from_lines(ctx.finish()));
    };
    let config = build(&mut ctx, &file, absolute);
    if ctx.has_errors() {
        return Err(ConfigError::from_lines(ctx.finish()));
    }
    Ok(config)
}

/// Every section, then the checks that span sections.
fn build(ctx: &mut Ctx<'_>, file: &super::file::FileConfig, source: PathBuf) -> Config {
    let listen = sections::listen(ctx, file.listen.as_ref());
    let runtime = sections::runtime(ctx, file.runtime.as_ref());
    let admin = sections::admin(ctx, file.admin.as_ref(), listen.address);
    let issuers = issuers::issuers(ctx, &file.issuers);
    let tokens = sections::tokens(ctx, file.tokens.as_ref());
    let mut state = sections::state(ctx, file.state.as_ref());
    let routes = routes::routes(ctx, &file.routes);
    let approved_apps = sections::approved_apps(ctx, file.approved_apps.as_ref());
    let resources: Vec<&str> = routes.iter().map(|r| r.resource.as_str()).collect();
    let known = policies::Known {
        resources: &resources,
        has_approved_apps: !approved_apps.is_empty(),
    };
    let policies = policies::policies(ctx, &file.policies, &known);
    let log = sections::log(ctx, file.log.as_ref());
    graph::apply(ctx, file, &mut state, &policies);

    // A route that requires a token with no issuer to verify it would refuse everything:
    // name the first such route so the operator sees which one.
    if issuers.is_empty()
        && let Some(i) = routes.iter().position(|r| r.auth == AuthMode::Required)
        && let Some(route) = file.routes.get(i)
    {
        ctx.error(
            route,
            &format!("routes[{i}]"),
            "requires a token (auth = \"required\") but no [[issuers]] is configured",
        );
    }

    Config {
        source,
        listen,
        runtime,
        admin,
        issuers,
        tokens,
        state,
        routes,
        policies,
        approved_apps,
        log,
    }
}

#[cfg(test)]
mod testkit;

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
