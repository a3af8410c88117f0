//! The single-table sections: `[listen]`, `[runtime]`, `[admin]`, `[tokens]`, `[state]`,
//! `[approved_apps]`, `[log]`. Each builder always returns a value (defaults or
//! placeholders where the file is wrong) and records errors in the [`Ctx`]; a config with
//! any error is never handed out, so placeholders never reach the runtime.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::ctx::{Ctx, Zero};
use super::net;
use crate::config::duration::format_duration;
use crate::config::file::{
    AdminFile, ApprovedAppsFile, ListenFile, LogFile, RuntimeFile, StateFile, TokensFile,
};
use crate::config::{
    AdminConfig, DecisionLogTarget, ListenConfig, LogConfig, RuntimeConfig, Scheduler, StateConfig,
    StateSource, TokensConfig,
};

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// Default listen address.
pub(crate) const DEFAULT_LISTEN: &str = "0.0.0.0:8443";
/// Default admin address: loopback, because the admin listener is plain HTTP.
pub(crate) const DEFAULT_ADMIN: &str = "127.0.0.1:9901";

/// Bounds that keep a typo from becoming a resource problem.
const MIN_HEADER_BYTES: i64 = 1024;
const MAX_HEADER_BYTES: i64 = 1024 * 1024;
/// Beyond this, a token expired minutes ago is still accepted: refuse it as a config.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(10 * 60);

/// `required = false` for `accessgate sync` (a config with `[publish]`), which serves nothing.
pub(crate) fn listen(
    ctx: &mut Ctx<'_>,
    file: Option<&Spanned<ListenFile>>,
    required: bool,
) -> ListenConfig {
    let mut out = ListenConfig {
        address: parse_default(DEFAULT_LISTEN),
        tls_cert: PathBuf::new(),
        tls_key: PathBuf::new(),
        client_ca: None,
        handshake_timeout: 10 * SECOND,
        header_read_timeout: 10 * SECOND,
        idle_timeout: 60 * SECOND,
        max_connections: 10_000,
        max_header_bytes: 16_384,
        trusted_proxies: Vec::new(),
        h2_max_concurrent_streams: 256,
    };
    let Some(table) = file else {
        if required {
            ctx.error_nowhere(
                "listen",
                "missing [listen] section (tls_cert and tls_key are required)",
            );
        }
        return out;
    };
    let f = table.get_ref();
    if let Some(v) = &f.address {
        match net::socket_addr(v.get_ref()) {
            Ok(a) => out.address = a,
            Err(e) => ctx.error(v, "listen.address", e),
        }
    }
    if let Some(v) = ctx.required(table, f.tls_cert.as_ref(), "listen.tls_cert") {
        out.tls_cert = ctx.path(v, "listen.tls_cert").unwrap_or_default();
    }
    if let Some(v) = ctx.required(table, f.tls_key.as_ref(), "listen.tls_key") {
        out.tls_key = ctx.path(v, "listen.tls_key").unwrap_or_default();
    }
    out.client_ca = f
        .client_ca
        .as_ref()
        .and_then(|v| ctx.path(v, "listen.client_ca"));
    out.handshake_timeout = ctx.duration(
        f.handshake_timeout.as_ref(),
        "listen.handshake_timeout",
        out.handshake_timeout,
        Zero::Refused,
    );
    out.header_read_timeout = ctx.duration(
        f.header_read_timeout.as_ref(),
        "listen.header_read_timeout",
        out.header_read_timeout,
        Zero::Refused,
    );
    out.idle_timeout = ctx.duration(
        f.idle_timeout.as_ref(),
        "listen.idle_timeout",
        out.idle_timeout,
        Zero::Refused,
    );
    out.max_connections = as_usize(ctx.int(
        f.max_connections.as_ref(),
        "listen.max_connections",
        10_000,
        1,
        i64::from(u32::MAX),
    ));
    out.max_header_bytes = as_usize(ctx.int(
        f.max_header_bytes.as_ref(),
        "listen.max_header_bytes",
        16_384,
        MIN_HEADER_BYTES,
        MAX_HEADER_BYTES,
    ));
    out.h2_max_concurrent_streams = u32::try_from(ctx.int(
        f.h2_max_concurrent_streams.as_ref(),
        "listen.h2_max_concurrent_streams",
        256,
        1,
        i64::from(u32::MAX),
    ))
    .unwrap_or(256);
    if let Some(list) = &f.trusted_proxies {
        for (i, item) in list.get_ref().iter().enumerate() {
            match net::cidr(item.get_ref()) {
                Ok(n) if !out.trusted_proxies.contains(&n) => out.trusted_proxies.push(n),
                Ok(_) => {}
                Err(e) => ctx.error(item, &format!("listen.trusted_proxies[{i}]"), e),
            }
        }
    }
    out
}

pub(crate) fn runtime(ctx: &mut Ctx<'_>, file: Option<&Spanned<RuntimeFile>>) -> RuntimeConfig {
    let f = file.map(Spanned::get_ref);
    let worker_threads = as_usize(ctx.int(
        f.and_then(|f| f.worker_threads.as_ref()),
        "runtime.worker_threads",
        0,
        0,
        1024,
    ));
    let scheduler_key = f.and_then(|f| f.scheduler.as_ref());
    let scheduler = ctx.keyword(
        scheduler_key,
        "runtime.scheduler",
        &Scheduler::CHOICES,
        Scheduler::PerCore,
    );
    if scheduler == Scheduler::CurrentThread
        && worker_threads > 1
        && let Some(at) = scheduler_key
    {
        ctx.error(
            at,
            "runtime.scheduler",
            format!("\"current_thread\" runs one worker, but worker_threads = {worker_threads}: use \"per_core\" or \"work_stealing\" for more"),
        );
    }
    RuntimeConfig {
        worker_threads,
        scheduler,
        shutdown_grace: ctx.duration(
            f.and_then(|f| f.shutdown_grace.as_ref()),
            "runtime.shutdown_grace",
            30 * SECOND,
            Zero::Allowed,
        ),
    }
}

pub(crate) fn admin(
    ctx: &mut Ctx<'_>,
    file: Option<&Spanned<AdminFile>>,
    listen: SocketAddr,
) -> AdminConfig {
    let Some(v) = file.and_then(|f| f.get_ref().address.as_ref()) else {
        return AdminConfig {
            address: Some(parse_default(DEFAULT_ADMIN)),
        };
    };
    if v.get_ref().is_empty() {
        return AdminConfig { address: None };
    }
    match net::socket_addr(v.get_ref()) {
        Ok(a) if a == listen && a.port() != 0 => {
            ctx.error(v, "admin.address", format!("{a} is also listen.address"));
            AdminConfig { address: None }
        }
        Ok(a) => AdminConfig { address: Some(a) },
        Err(e) => {
            ctx.error(
                v,
                "admin.address",
                format!("{e}; use \"\" to disable the admin listener"),
            );
            AdminConfig { address: None }
        }
    }
}

pub(crate) fn tokens(ctx: &mut Ctx<'_>, file: Option<&Spanned<TokensFile>>) -> TokensConfig {
    let f = file.map(Spanned::get_ref);
    TokensConfig {
        clock_skew: ctx.duration_at_most(
            f.and_then(|f| f.clock_skew.as_ref()),
            "tokens.clock_skew",
            MINUTE,
            Zero::Allowed,
            MAX_CLOCK_SKEW,
        ),
        jwks_refresh: ctx.duration(
            f.and_then(|f| f.jwks_refresh.as_ref()),
            "tokens.jwks_refresh",
            HOUR,
            Zero::Refused,
        ),
        jwks_min_refetch: ctx.duration(
            f.and_then(|f| f.jwks_min_refetch.as_ref()),
            "tokens.jwks_min_refetch",
            5 * MINUTE,
            Zero::Refused,
        ),
        cache_capacity: u64::try_from(ctx.int(
            f.and_then(|f| f.cache_capacity.as_ref()),
            "tokens.cache_capacity",
            100_000,
            0,
            100_000_000,
        ))
        .unwrap_or(100_000),
    }
}

pub(crate) fn state(ctx: &mut Ctx<'_>, file: Option<&Spanned<StateFile>>) -> StateConfig {
    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        File,
        Http,
        Redis,
        Graph,
    }
    let f = file.map(Spanned::get_ref);
    let kind = ctx.keyword(
        f.and_then(|f| f.source.as_ref()),
        "state.source",
        &[
            ("file", Kind::File),
            ("http", Kind::Http),
            ("redis", Kind::Redis),
            ("graph", Kind::Graph),
        ],
        Kind::File,
    );
    if kind != Kind::Redis {
        for (v, key) in [
            (f.and_then(|f| f.key_prefix.as_ref()), "state.key_prefix"),
            (
                f.and_then(|f| f.password_file.as_ref()),
                "state.password_file",
            ),
        ] {
            if let Some(v) = v {
                ctx.error(v, key, "only with source = \"redis\"");
            }
        }
    }
    let path = f.and_then(|f| f.path.as_ref());
    let url = f.and_then(|f| f.url.as_ref());
    let ca = f.and_then(|f| f.ca.as_ref());
    let source = match kind {
        Kind::File => {
            if let Some(v) = url {
                ctx.error(v, "state.url", "only with source = \"http\"");
            }
            if let Some(v) = ca {
                ctx.error(v, "state.ca", "only with source = \"http\"");
            }
            let path = match path {
                Some(v) => ctx.path(v, "state.path").unwrap_or_default(),
                None => ctx.resolve("state.json".as_ref()),
            };
            StateSource::File(path)
        }
        Kind::Http => {
            if let Some(v) = path {
                ctx.error(v, "state.path", "only with source = \"file\"");
            }
            let url = match (url, file) {
                (Some(v), _) => {
                    if let Err(e) = net::fetch_url(v.get_ref()) {
                        ctx.error(v, "state.url", e);
                    }
                    v.get_ref().clone()
                }
                (None, Some(table)) => {
                    ctx.error(
                        table,
                        "state.url",
                        "missing (required with source = \"http\")",
                    );
                    String::new()
                }
                // Unreachable in practice: `source = "http"` implies a [state] table.
                (None, None) => String::new(),
            };
            let ca = ca.and_then(|v| ctx.path(v, "state.ca"));
            StateSource::Http { url, ca }
        }
        Kind::Redis => {
            for (v, key) in [(path, "state.path"), (ca, "state.ca")] {
                if let Some(v) = v {
                    ctx.error(v, key, "only with source = \"file\" or \"http\"");
                }
            }
            match file {
                Some(table) => StateSource::Redis(super::fleet::endpoint(
                    ctx,
                    "state",
                    table,
                    url,
                    f.and_then(|f| f.key_prefix.as_ref()),
                    f.and_then(|f| f.password_file.as_ref()),
                )),
                // Unreachable in practice: `source = "redis"` implies a [state] table.
                None => StateSource::File(ctx.resolve("state.json".as_ref())),
            }
        }
        Kind::Graph => {
            for (v, key) in [(path, "state.path"), (url, "state.url"), (ca, "state.ca")] {
                if let Some(v) = v {
                    ctx.error(v, key, "not used with source = \"graph\" (see [graph])");
                }
            }
            // Filled in from [graph] once the policies (whose groups it resolves) are built.
            StateSource::Graph(Box::new(super::graph::placeholder()))
        }
    };
    let cache_dir = match (f.and_then(|f| f.cache_dir.as_ref()), kind, file) {
        (Some(v), Kind::Graph | Kind::Redis, _) => ctx.path(v, "state.cache_dir"),
        (Some(v), _, _) => {
            ctx.error(
                v,
                "state.cache_dir",
                "only with source = \"graph\" or \"redis\"",
            );
            None
        }
        (None, Kind::Graph, Some(table)) => {
            ctx.error(
                table,
                "state.cache_dir",
                "missing (required with source = \"graph\": it keeps when each record turned noncompliant across restarts)",
            );
            None
        }
        (None, _, _) => None,
    };
    // Graph rounds re-read every Intune collection in full: a 10s default would spend
    // Intune's per-app request budget for nothing (DESIGN.md: 60s, 15m).
    let (refresh_default, staleness_default) = match kind {
        Kind::Graph => (MINUTE, 15 * MINUTE),
        Kind::File | Kind::Http | Kind::Redis => (10 * SECOND, 5 * MINUTE),
    };
    let refresh = ctx.duration(
        f.and_then(|f| f.refresh.as_ref()),
        "state.refresh",
        refresh_default,
        Zero::Refused,
    );
    let staleness_value = f.and_then(|f| f.max_staleness.as_ref());
    let max_staleness = ctx.duration(
        staleness_value,
        "state.max_staleness",
        staleness_default,
        Zero::Refused,
    );
    if max_staleness < refresh {
        let message = format!(
            "{} is shorter than state.refresh ({}): state would go stale between refreshes",
            format_duration(max_staleness),
            format_duration(refresh)
        );
        match staleness_value.or_else(|| f.and_then(|f| f.refresh.as_ref())) {
            Some(v) => ctx.error(v, "state.max_staleness", message),
            None => ctx.error_nowhere("state.max_staleness", message),
        }
    }
    StateConfig {
        source,
        refresh,
        max_staleness,
        fail_open: f
            .and_then(|f| f.fail_open.as_ref())
            .is_some_and(|v| *v.get_ref()),
        cache_dir,
    }
}

pub(crate) fn approved_apps(
    ctx: &mut Ctx<'_>,
    file: Option<&Spanned<ApprovedAppsFile>>,
) -> Vec<String> {
    ctx.text_list(
        file.and_then(|f| f.get_ref().ids.as_ref()),
        "approved_apps.ids",
    )
}

pub(crate) fn log(ctx: &mut Ctx<'_>, file: Option<&Spanned<LogFile>>) -> LogConfig {
    let f = file.map(Spanned::get_ref);
    let level = match f.and_then(|f| f.level.as_ref()) {
        None => "info".to_owned(),
        Some(v) => match tracing_subscriber::EnvFilter::builder().parse(v.get_ref()) {
            Ok(_) if !v.get_ref().trim().is_empty() => v.get_ref().clone(),
            _ => {
                ctx.error(
                    v,
                    "log.level",
                    format!(
                        "{:?} is not a log level or filter (e.g. \"info\", \"debug\", \"accessgate=debug,info\")",
                        v.get_ref()
                    ),
                );
                "info".to_owned()
            }
        },
    };
    let decisions = match f.and_then(|f| f.decisions.as_ref()) {
        None => DecisionLogTarget::Stdout,
        Some(v) => match v.get_ref().as_str() {
            "stdout" => DecisionLogTarget::Stdout,
            "off" => DecisionLogTarget::Off,
            _ => DecisionLogTarget::File(ctx.path(v, "log.decisions").unwrap_or_default()),
        },
    };
    let allow_sample = match f.and_then(|f| f.allow_sample.as_ref()) {
        None => 1.0,
        Some(v) => {
            let x = *v.get_ref();
            if (0.0..=1.0).contains(&x) {
                x
            } else {
                ctx.error(v, "log.allow_sample", format!("{x} is not in 0.0..=1.0"));
                1.0
            }
        }
    };
    let server_timing = f
        .and_then(|f| f.server_timing.as_ref())
        .is_some_and(|v| *v.get_ref());
    LogConfig {
        level,
        decisions,
        allow_sample,
        server_timing,
    }
}

/// A compile-time-known default address.
fn parse_default(text: &str) -> SocketAddr {
    // Only called with the DEFAULT_* constants above, which are valid addresses (tested).
    text.parse()
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// The range checks above bound every value to at most u32::MAX, which fits usize on
/// every platform this runs on.
fn as_usize(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

#[cfg(test)]
#[path = "sections_tests.rs"]
mod tests;
