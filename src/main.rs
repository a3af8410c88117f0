//! The `accessgate` command: subcommands, runtime start, exit codes. Everything else is
//! library code (see `src/lib.rs`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use accessgate::config::{self, Config};
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
    /// Exit 0 when the admin /readyz answers ready (container health checks).
    Healthcheck {
        /// Admin address to probe (default: `[admin] address` of the config).
        #[arg(long)]
        address: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(&cli.config),
        Command::Check => check(&cli.config),
        Command::Demo { upstream_port } => accessgate::demo::run(upstream_port),
        Command::DevCerts { out } => dev_certs(&out),
        Command::Healthcheck { address } => healthcheck(&cli.config, address),
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
    accessgate::telemetry::init(&config.log.level);
    let rt = match accessgate::runtime::build(config.runtime.worker_threads) {
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
        accessgate::reload::serve_until_stopped(&gw, path).await;
        gw.shutdown().await;
        ExitCode::SUCCESS
    })
}

fn check(path: &Path) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match accessgate::check::run(&config) {
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
    match accessgate::devcerts::generate_all(out) {
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
    match accessgate::admin::probe_ready(&addr, std::time::Duration::from_secs(3)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("not ready: {e}");
            ExitCode::FAILURE
        }
    }
}
