//! `accessgate import-policies`: Entra Conditional Access policies -> `[[policies]]` TOML.
//!
//! Reads Graph's JSON (files saved from `GET /identity/conditionalAccess/policies` and
//! `/namedLocations`), maps it with [`crate::policy::import`], proves the result passes the
//! same validation as `check` (the config with its `[[policies]]` replaced by the output),
//! and only then writes it. Exit 1 when a policy could not be imported faithfully, unless
//! `--skip-unsupported`; nothing is written then, so a script cannot pick up a policy
//! set that silently enforces less than Entra.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{self, AuthMode, Config, ConfigError, StateSource};
use crate::policy::import::{self, Context, Outcome, entra};

/// Arguments of `import-policies` (the config comes from the global `--config`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Args {
    /// Read the policies and named locations from Microsoft Graph with the config's
    /// `[graph]` credentials (application permission Policy.Read.All).
    #[arg(long, conflicts_with_all = ["from_json", "named_locations"], required_unless_present = "from_json")]
    pub from_graph: bool,
    /// Policies as Graph returns them (`{"value": [...]}` or an array); repeat for each
    /// page of a paged response.
    #[arg(long = "from-json", value_name = "POLICIES.json")]
    pub from_json: Vec<PathBuf>,
    /// Named locations as Graph returns them (needed when policies name locations).
    #[arg(long = "named-locations", value_name = "LOCATIONS.json")]
    pub named_locations: Vec<PathBuf>,
    /// Map an Entra application id to a route's resource (repeatable).
    #[arg(long = "resource", value_name = "APP_ID=RESOURCE")]
    pub resources: Vec<String>,
    /// Leave out policies that cannot be imported faithfully and exit 0.
    #[arg(long)]
    pub skip_unsupported: bool,
    /// Write here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("import-policies: {msg}");
    ExitCode::FAILURE
}

/// The subcommand.
pub fn run(config_path: &Path, args: &Args) -> ExitCode {
    let config = match config::load(config_path) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let resources = match resource_pairs(&args.resources, &config) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let (policies, location_items) = match input(&config, args) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    let locations = match location_items.map(|items| import::named_locations(&items)) {
        None => None,
        Some(Ok(l)) => Some(l),
        Some(Err(e)) => return fail(format!("named locations: {e}")),
    };
    let cx = context(&config, resources, locations);
    let outcomes = import::import(&policies, &cx);
    let refused = report(&outcomes);
    if refused > 0 && !args.skip_unsupported {
        return fail(format!(
            "{refused} policy(ies) cannot be imported without enforcing less than Entra; nothing written (--skip-unsupported imports the rest)"
        ));
    }
    let text = import::emit::toml(&outcomes);
    if let Err(e) = check_output(config_path, &text) {
        return fail(format!(
            "the generated policies do not pass check (a bug: please report it):\n{e}"
        ));
    }
    match &args.out {
        Some(path) => match std::fs::write(path, &text) {
            Ok(()) => {
                eprintln!("import-policies: wrote {}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => fail(format!("{}: {e}", path.display())),
        },
        None => {
            print!("{text}");
            ExitCode::SUCCESS
        }
    }
}

type Input = (Vec<serde_json::Value>, Option<Vec<serde_json::Value>>);

/// The policies, and the named locations when there are any, from Graph or the files.
fn input(config: &Config, args: &Args) -> Result<Input, String> {
    if args.from_graph {
        let StateSource::Graph(graph) = &config.state.source else {
            return Err(
                "--from-graph reads with the config's [graph] credentials: it needs [state] source = \"graph\" and a [graph] section"
                    .to_owned(),
            );
        };
        let fetched = super::import_graph::fetch_blocking(graph)?;
        unique_ids(&fetched.policies, "policies")?;
        unique_ids(&fetched.named_locations, "namedLocations")?;
        eprintln!(
            "import-policies: read {} policies and {} named locations from {} ({} requests)",
            fetched.policies.len(),
            fetched.named_locations.len(),
            graph.graph_url,
            fetched.requests
        );
        return Ok((fetched.policies, Some(fetched.named_locations)));
    }
    let policies = read_pages(&args.from_json)?;
    let locations = if args.named_locations.is_empty() {
        None
    } else {
        Some(read_pages(&args.named_locations).map_err(|e| format!("--named-locations: {e}"))?)
    };
    Ok((policies, locations))
}

/// What the mapping needs from the config.
pub fn context(
    config: &Config,
    resources: BTreeMap<String, String>,
    locations: Option<BTreeMap<String, import::Location>>,
) -> Context {
    Context {
        resources,
        // Routes with `auth = "none"` never evaluate policies: naming them would be noise.
        route_resources: config
            .routes
            .iter()
            .filter(|r| r.auth == AuthMode::Required)
            .map(|r| r.resource.clone())
            .collect(),
        has_approved_apps: !config.approved_apps.is_empty(),
        locations,
    }
}

/// `--resource APP_ID=RESOURCE` pairs, each resource one of the config's routes'.
pub fn resource_pairs(
    pairs: &[String],
    config: &Config,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for p in pairs {
        let Some((app, resource)) = p.split_once('=') else {
            return Err(format!("--resource {p:?}: expected APP_ID=RESOURCE"));
        };
        let (app, resource) = (app.trim(), resource.trim());
        if app.is_empty() || resource.is_empty() {
            return Err(format!("--resource {p:?}: expected APP_ID=RESOURCE"));
        }
        if !config.routes.iter().any(|r| r.resource == resource) {
            let known: Vec<&str> = config.routes.iter().map(|r| r.resource.as_str()).collect();
            return Err(format!(
                "--resource {p:?}: no route has resource {resource:?} (routes' resources: {})",
                known.join(", ")
            ));
        }
        let key = app.to_ascii_lowercase();
        if let Some(prev) = out.insert(key, resource.to_owned())
            && prev != resource
        {
            return Err(format!(
                "--resource: {app} is mapped to both {prev:?} and {resource:?}"
            ));
        }
    }
    Ok(out)
}

/// Every item of every page, in order. Of a paged response every page but the last
/// carries an `@odata.nextLink`: a set without such a last page is missing it, and a set
/// with two is two lists mixed up; both would import something other than the tenant's
/// policies, so both are errors. (A missing *first* page cannot be told from the files:
/// `--from-graph` reads the list itself.)
pub fn read_pages(paths: &[PathBuf]) -> Result<Vec<serde_json::Value>, String> {
    let mut items = Vec::new();
    let mut last_pages = 0;
    for path in paths {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let page = entra::page(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        if page.next_link.is_none() {
            last_pages += 1;
        }
        items.extend(page.items);
    }
    if last_pages > 1 {
        return Err(format!(
            "{last_pages} of the files are the last page of a list (no @odata.nextLink): pass the pages of one list"
        ));
    }
    if last_pages == 0 && !paths.is_empty() {
        return Err(format!(
            "{}: every page has an @odata.nextLink, so the list goes on: save the remaining pages (follow @odata.nextLink) and pass each file",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let what = paths
        .first()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    unique_ids(&items, &what)?;
    Ok(items)
}

/// An id seen twice (a page saved twice, a page repeated by Graph) is an error.
fn unique_ids(items: &[serde_json::Value], what: &str) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for v in items {
        if let Some(id) = v.get("id").and_then(|v| v.as_str())
            && !seen.insert(id.to_ascii_lowercase())
        {
            return Err(format!("{what}: id {id} appears twice"));
        }
    }
    Ok(())
}

/// Print what was not imported, and why, to stderr; return how many were refused.
fn report(outcomes: &[Outcome]) -> usize {
    let (mut imported, mut skipped, mut refused) = (0, 0, 0);
    for o in outcomes {
        match o {
            Outcome::Imported(_) => imported += 1,
            Outcome::Skipped { reason, .. } => {
                skipped += 1;
                eprintln!("skipped {}: {reason}", o.label());
            }
            Outcome::Refused { reasons, .. } => {
                refused += 1;
                eprintln!("NOT IMPORTED {}:", o.label());
                for r in reasons {
                    eprintln!("  - {r}");
                }
            }
        }
    }
    eprintln!(
        "import-policies: {imported} imported, {skipped} skipped (reach no request of this gateway), {refused} not imported (unsupported)"
    );
    refused
}

/// Validate `policies` as `check` would: the config at `config_path` with its own
/// `[[policies]]` replaced by them.
pub fn check_output(config_path: &Path, policies: &str) -> Result<Config, String> {
    let text = std::fs::read_to_string(config_path)
        .map_err(|e| format!("{}: {e}", config_path.display()))?;
    with_policies(&text, policies, config_path).map_err(|e| e.to_string())
}

/// Config text with its `[[policies]]` replaced by `policies` (TOML text), validated as if
/// read from `source`.
pub fn with_policies(config: &str, policies: &str, source: &Path) -> Result<Config, ConfigError> {
    let mut table: toml::Table = config.parse().map_err(|e: toml::de::Error| ConfigError {
        message: format!("{}: {e}", source.display()),
    })?;
    table.remove("policies");
    let base = toml::to_string(&table).map_err(|e| ConfigError {
        message: format!("{}: {e}", source.display()),
    })?;
    config::parse_str(&format!("{base}\n{policies}"), source)
}
