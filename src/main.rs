//! The `accessgate` command: subcommands, runtime start, exit codes. Everything else is
//! library code (see `src/lib.rs`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use accessgate::config::{self, Config};

/// See the `mimalloc` note in Cargo.toml.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use accessgate::{Gateway, StartOptions};

#[derive(Parser, Debug)]
#[command(
    name = "accessgate",
    version,
    about = "Conditional Access gateway: a TLS reverse proxy that enforces token, app-protection and device-compliance policy"
)]
struct Cli {
    /// Config file (for `run`, the default subcommand).
    #[arg(long, short, global = true, default_value = "config/accessgate.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the gateway (the default).
    Run,
    /// Validate the config and its files (TLS material, state) and print a summary.
    Check,
    /// Run the demo: the demo config with a built-in echo upstream, and curl commands.
    Demo {
        /// Port of the built-in echo upstream (0 = any free port).
        #[arg(long, default_value_t = 0)]
        upstream_port: u16,
    },
    /// Make DEV ONLY TLS material (CA, localhost cert, client cert) and token-signing keys.
    DevCerts {
        #[arg(long, default_value = "certs")]
        out: PathBuf,
    },
    /// What If: the decision for one caller, and every policy's result and why.
    Eval {
        /// The resource (a route's `resource`) the request is for.
        #[arg(long)]
        resource: String,
        /// A token whose claims to evaluate (decoded, not verified: What If is offline).
        #[arg(long, conflicts_with = "claims", required_unless_present = "claims")]
        token: Option<String>,
        /// A JSON file holding the token's claims.
        #[arg(long)]
        claims: Option<PathBuf>,
        /// Client IP address.
        #[arg(long, default_value = "192.0.2.1")]
        ip: std::net::IpAddr,
        /// Evaluation time (RFC 3339), default now.
        #[arg(long)]
        at: Option<String>,
        /// Policy state file (default: the config's `[state]` file).
        #[arg(long)]
        state: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Offline policy tests: run a CASES.toml table; exit 1 on any mismatch.
    TestPolicies {
        /// The cases file.
        cases: PathBuf,
        /// Policy state file (default: the config's `[state]` file).
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Mint a token with the DEV ONLY signing key (demos and tests; never production).
    DevToken(Box<DevTokenArgs>),
    /// A tiny echo upstream for trying the gateway (answers every request with a JSON echo
    /// of the method, path and the identity headers the gateway added).
    DevEcho {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
    },
    /// Entra Conditional Access policies (Graph JSON) as `[[policies]]` TOML for review.
    ImportPolicies(Box<accessgate::cli::import_policies::Args>),
    /// Exit 0 when the admin /readyz answers ready (container health checks).
    Healthcheck {
        /// Admin address to probe (default: `[admin] address` of the config).
        #[arg(long)]
        address: Option<String>,
    },
}

#[derive(clap::Args, Debug)]
struct DevTokenArgs {
    /// Folder with dev-signing-rsa.pem / dev-signing-ec.pem (from `dev-certs`).
    #[arg(long, default_value = "certs")]
    keys: PathBuf,
    /// Signing algorithm.
    #[arg(long, default_value = "RS256", value_parser = ["RS256", "ES256"])]
    alg: String,
    /// Header kid (default: the dev key's own).
    #[arg(long)]
    kid: Option<String>,
    /// Lifetime, e.g. "1h", "90s".
    #[arg(long, default_value = "1h")]
    expires_in: String,
    /// Backdate iat and auth_time by this much (e.g. "2h"), to try sign-out rules.
    #[arg(long)]
    issued_ago: Option<String>,
    #[arg(long, default_value = accessgate::authn::dev::DEMO_ISSUER)]
    iss: String,
    #[arg(long, default_value = accessgate::authn::dev::DEMO_AUDIENCE)]
    aud: String,
    #[arg(long, default_value = "dev-user-subject")]
    sub: String,
    /// User object id (`oid`).
    #[arg(long)]
    oid: Option<String>,
    /// Tenant id (`tid`).
    #[arg(long)]
    tid: Option<String>,
    /// Client app id (`azp`).
    #[arg(long)]
    azp: Option<String>,
    /// Entra device id (`deviceid`).
    #[arg(long)]
    deviceid: Option<String>,
    /// Group ids (repeatable).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// `amr` values (repeatable; default pwd).
    #[arg(long = "amr")]
    amr: Vec<String>,
    /// `acrs` values (repeatable).
    #[arg(long = "acrs")]
    acrs: Vec<String>,
    /// Mark the client CAE-capable (`xms_cc: ["cp1"]`).
    #[arg(long)]
    cae: bool,
    /// A JSON file whose object members are added to (and override) the claims.
    #[arg(long)]
    claims: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(&cli.config),
        Command::Check => check(&cli.config),
        Command::Demo { upstream_port } => accessgate::cli::demo::run(upstream_port),
        Command::DevCerts { out } => dev_certs(&out),
        Command::DevToken(args) => dev_token(&args),
        Command::DevEcho { listen } => dev_echo(listen),
        Command::Eval {
            resource,
            token,
            claims,
            ip,
            at,
            state,
            json,
        } => accessgate::cli::eval::eval(&accessgate::cli::eval::EvalArgs {
            config_path: &cli.config,
            resource: &resource,
            token: token.as_deref(),
            claims: claims.as_deref(),
            ip,
            at: at.as_deref(),
            state: state.as_deref(),
            json,
        }),
        Command::TestPolicies { cases, state } => {
            accessgate::cli::eval::test_policies(&cli.config, &cases, state.as_deref())
        }
        Command::Healthcheck { address } => healthcheck(&cli.config, address),
        Command::ImportPolicies(args) => accessgate::cli::import_policies::run(&cli.config, &args),
    }
}

fn dev_echo(listen: std::net::SocketAddr) -> ExitCode {
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
        match accessgate::cli::demo::echo_server(listen).await {
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

fn dev_token(a: &DevTokenArgs) -> ExitCode {
    use accessgate::authn::dev::{DevAlg, DevTokenOptions, mint};
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
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|t| t.as_secs() as i64)
                    .unwrap_or(0);
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

fn run(path: &Path) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    accessgate::ops::telemetry::init(&config.log.level);
    let rt = match accessgate::cli::runtime::build(config.runtime.worker_threads) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
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
        accessgate::gateway::reload::serve_until_stopped(&gw, path).await;
        gw.shutdown().await;
        ExitCode::SUCCESS
    })
}

fn check(path: &Path) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match accessgate::cli::check::run(&config) {
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

fn dev_certs(out: &Path) -> ExitCode {
    match accessgate::cli::devcerts::generate_all(out) {
        Ok(files) => {
            for f in files {
                println!("wrote {}", f.display());
            }
            println!("DEV ONLY: never use this material in production.");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dev-certs: {e}");
            ExitCode::FAILURE
        }
    }
}

fn healthcheck(path: &Path, address: Option<String>) -> ExitCode {
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
    match accessgate::ops::admin::probe_ready(&addr, std::time::Duration::from_secs(3)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("not ready: {e}");
            ExitCode::FAILURE
        }
    }
}
