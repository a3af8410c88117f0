//! The `accessgate` command: parse the command line and dispatch. What each subcommand
//! does lives in `src/cli/` (see `accessgate::cli`); the gateway itself in `src/lib.rs`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use accessgate::cli::commands::{self, DevTokenArgs};

/// See the `mimalloc` note in Cargo.toml.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// The state connector alone: read `[state]`, publish each good round to `[publish]`
    /// (a state.json replaced atomically, or Redis for a fleet; docs/fleet.md).
    Sync,
    /// Entra Conditional Access policies (Graph JSON) as `[[policies]]` TOML for review.
    ImportPolicies(Box<accessgate::cli::import_policies::Args>),
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
        Command::Run => commands::run(&cli.config),
        Command::Check => commands::check(&cli.config),
        Command::Demo { upstream_port } => accessgate::cli::demo::run(upstream_port),
        Command::DevCerts { out } => commands::dev_certs(&out),
        Command::DevToken(args) => commands::dev_token(&args),
        Command::DevEcho { listen } => commands::dev_echo(listen),
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
        Command::Healthcheck { address } => commands::healthcheck(&cli.config, address),
        Command::Sync => commands::sync(&cli.config),
        Command::ImportPolicies(args) => accessgate::cli::import_policies::run(&cli.config, &args),
    }
}
