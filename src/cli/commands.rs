//! What each `accessgate` subcommand does, behind `main.rs`'s parse and dispatch: exit
//! codes and messages for the operator. The heavier ones call their own modules
//! ([`super::check`], [`super::eval`], [`super::demo`], [`super::devcerts`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{self, Config};
use crate::{Gateway, StartOptions};

/// `accessgate dev-token`'s options.
#[derive(clap::Args, Debug)]
pub struct DevTokenArgs {
    /// Folder with dev-signing-rsa.pem / dev-signing-ec.pem (from `dev-certs`).
    #[arg(long, default_value = "certs")]
    pub keys: PathBuf,
    /// Signing algorithm.
    #[arg(long, default_value = "RS256", value_parser = ["RS256", "ES256"])]
    pub alg: String,
    /// Header kid (default: the dev key's own).
    #[arg(long)]
    pub kid: Option<String>,
    /// Lifetime, e.g. "1h", "90s".
    #[arg(long, default_value = "1h")]
    pub expires_in: String,
    /// Backdate iat and auth_time by this much (e.g. "2h"), to try sign-out rules.
    #[arg(long)]
    pub issued_ago: Option<String>,
    #[arg(long, default_value = crate::authn::dev::DEMO_ISSUER)]
    pub iss: String,
    #[arg(long, default_value = crate::authn::dev::DEMO_AUDIENCE)]
    pub aud: String,
    #[arg(long, default_value = "dev-user-subject")]
    pub sub: String,
    /// User object id (`oid`).
    #[arg(long)]
    pub oid: Option<String>,
    /// Tenant id (`tid`).
    #[arg(long)]
    pub tid: Option<String>,
    /// Client app id (`azp`).
    #[arg(long)]
    pub azp: Option<String>,
    /// Entra device id (`deviceid`).
    #[arg(long)]
    pub deviceid: Option<String>,
    /// Group ids (repeatable).
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// `amr` values (repeatable; default pwd).
    #[arg(long = "amr")]
    pub amr: Vec<String>,
    /// `acrs` values (repeatable).
    #[arg(long = "acrs")]
    pub acrs: Vec<String>,
    /// Mark the client CAE-capable (`xms_cc: ["cp1"]`).
    #[arg(long)]
    pub cae: bool,
    /// A JSON file whose object members are added to (and override) the claims.
    #[arg(long)]
    pub claims: Option<PathBuf>,
}

pub fn dev_echo(listen: std::net::SocketAddr) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dev-echo: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        match crate::cli::demo::echo_server(listen).await {
            Ok(addr) => {
                println!("echo upstream on http://{addr}");
                let _ = tokio::signal::ctrl_c().await;
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("dev-echo: {listen}: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

pub fn dev_token(a: &DevTokenArgs) -> ExitCode {
    use crate::authn::dev::{DevAlg, DevTokenOptions, mint};
    let fail = |msg: String| {
        eprintln!("dev-token: {msg}");
        ExitCode::FAILURE
    };
    let expires_in = match config::duration::parse_duration(&a.expires_in) {
        Ok(d) => d,
        Err(e) => return fail(format!("--expires-in: {e}")),
    };
    let mut opts = DevTokenOptions {
        issuer: a.iss.clone(),
        audience: a.aud.clone(),
        subject: a.sub.clone(),
        expires_in,
        alg: DevAlg::parse(&a.alg).unwrap_or(DevAlg::RS256),
        kid: a.kid.clone(),
        tid: a.tid.clone(),
        deviceid: a.deviceid.clone(),
        groups: a.groups.clone(),
        acrs: a.acrs.clone(),
        ..DevTokenOptions::default()
    };
    if a.oid.is_some() {
        opts.oid = a.oid.clone();
    }
    if a.azp.is_some() {
        opts.azp = a.azp.clone();
    }
    if !a.amr.is_empty() {
        opts.amr = a.amr.clone();
    }
    if a.cae {
        opts.xms_cc = vec!["cp1".to_owned()];
    }
    if let Some(ago) = &a.issued_ago {
        match config::duration::parse_duration(ago) {
            Ok(d) => {
                let now = crate::clock::unix_now();
                let iat = now - d.as_secs() as i64;
                opts.iat = Some(iat);
                opts.auth_time = Some(iat);
            }
            Err(e) => return fail(format!("--issued-ago: {e}")),
        }
    }
    if let Some(path) = &a.claims {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return fail(format!("{}: {e}", path.display())),
        };
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Object(m)) => opts.extra = m,
            Ok(_) => return fail(format!("{}: must hold a JSON object", path.display())),
            Err(e) => return fail(format!("{}: {e}", path.display())),
        }
    }
    match mint(&opts, &a.keys) {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e.to_string()),
    }
}

fn load(path: &Path) -> Result<Config, ExitCode> {
    config::load(path).map_err(|e| {
        eprintln!("{e}");
        ExitCode::FAILURE
    })
}

/// The config, logging set up from it, and the runtime it asks for: what `run` and `sync`
/// both need before they can serve. `serves` picks the gateway's runtime (`[runtime]
/// scheduler`) over the plain pool `sync` runs on.
fn load_with_runtime(
    path: &Path,
    serves: bool,
) -> Result<(Config, tokio::runtime::Runtime), ExitCode> {
    let config = load(path)?;
    crate::ops::telemetry::init(&config.log.level);
    let rt = if serves {
        crate::cli::runtime::build(&config.runtime)
    } else {
        crate::cli::runtime::build_pool(config.runtime.worker_threads)
    };
    match rt {
        Ok(rt) => Ok((config, rt)),
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}

pub fn run(path: &Path) -> ExitCode {
    let (config, rt) = match load_with_runtime(path, true) {
        Ok(v) => v,
        Err(code) => return code,
    };
    rt.block_on(async {
        let gw = match Gateway::start(config, StartOptions::default()).await {
            Ok(gw) => gw,
            Err(e) => {
                tracing::error!(error = %e, "cannot start");
                eprintln!("cannot start: {e}");
                return ExitCode::FAILURE;
            }
        };
        crate::gateway::reload::serve_until_stopped(&gw, path).await;
        gw.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// `accessgate sync`: the state connector alone, until SIGTERM or Ctrl-C.
pub fn sync(path: &Path) -> ExitCode {
    let (config, rt) = match load_with_runtime(path, false) {
        Ok(v) => v,
        Err(code) => return code,
    };
    rt.block_on(async {
        let stop = async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                match signal(SignalKind::terminate()) {
                    Ok(mut term) => {
                        tokio::select! {
                            _ = tokio::signal::ctrl_c() => {}
                            _ = term.recv() => {}
                        }
                    }
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
        };
        match crate::cli::sync::run(&config, stop).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "sync cannot start");
                eprintln!("sync cannot start: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

pub fn check(path: &Path) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match crate::cli::check::run(&config) {
        Ok(summary) => {
            println!("{summary}");
            println!("OK: {} is valid", path.display());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            ExitCode::FAILURE
        }
    }
}

pub fn dev_certs(out: &Path) -> ExitCode {
    let valid = crate::cli::devcerts::Validity::from(time::OffsetDateTime::now_utc());
    match crate::cli::devcerts::generate_all_valid(out, valid) {
        Ok(files) => {
            for f in files {
                println!("wrote {}", f.display());
            }
            println!("certificates {valid}");
            println!("DEV ONLY: never use this material in production.");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dev-certs: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn healthcheck(path: &Path, address: Option<String>) -> ExitCode {
    let addr = match address {
        Some(a) => a,
        None => match load(path) {
            Ok(c) => match c.admin.address {
                Some(a) => a.to_string(),
                None => {
                    eprintln!(
                        "healthcheck: the admin listener is disabled in {}",
                        path.display()
                    );
                    return ExitCode::FAILURE;
                }
            },
            Err(code) => return code,
        },
    };
    match crate::ops::admin::probe_ready(&addr, std::time::Duration::from_secs(3)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("not ready: {e}");
            ExitCode::FAILURE
        }
    }
}
