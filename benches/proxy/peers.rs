//! The peers users would pick instead — nginx (TLS proxy, no auth), HAProxy 2.6 (TLS, no
//! auth) and HAProxy with `jwt_verify` RS256 — started from the templates in
//! `benches/peers/` with the same certificate, upstream, pinning and load shapes as the
//! gateway rows, so the numbers compare. A peer that is not installed is skipped with
//! the command that installs it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::fixture::{AUDIENCE, Fixture, ISSUER};
use crate::procs::{self, ChildGuard};

/// A peer scenario id (`nginx`, `haproxy`, `haproxy-jwt`) and how to run it.
pub struct Peer {
    pub id: &'static str,
    pub program: &'static str,
    template: &'static str,
    pub needs_token: bool,
}

pub const PEERS: [Peer; 3] = [
    Peer {
        id: "nginx",
        program: "nginx",
        template: "nginx.conf",
        needs_token: false,
    },
    Peer {
        id: "haproxy",
        program: "haproxy",
        template: "haproxy.cfg",
        needs_token: false,
    },
    Peer {
        id: "haproxy-jwt",
        program: "haproxy",
        template: "haproxy-jwt.cfg",
        needs_token: true,
    },
];

/// Files the peer configs point at, under `target/bench/peers/`.
pub struct PeerFiles {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    /// Certificate and key in one PEM (HAProxy's `crt`).
    cert_pem: PathBuf,
    /// The RS256 signing key's public half (`jwt_verify`).
    pubkey: PathBuf,
}

impl PeerFiles {
    pub fn write(fx: &Fixture, token: &str) -> Result<Self, String> {
        let dir = fx.dir.join("peers");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let read =
            |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
        let write =
            |p: &Path, s: &str| std::fs::write(p, s).map_err(|e| format!("{}: {e}", p.display()));
        let cert = fx.certs.join("localhost.crt");
        let key = fx.certs.join("localhost.key");
        let cert_pem = dir.join("localhost.pem");
        write(&cert_pem, &format!("{}{}", read(&cert)?, read(&key)?))?;
        let pubkey = dir.join("jwt-rsa-pub.pem");
        write(&pubkey, &fx.rsa_public_pem()?)?;
        // For standalone runs with run-peers.sh and h2load (see benches/README.md).
        write(&dir.join("token.txt"), token)?;
        Ok(Self {
            dir,
            cert,
            key,
            cert_pem,
            pubkey,
        })
    }
}

/// Is `program` on PATH?
pub fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Fill a template's `{{...}}` placeholders and write it to the peers' run folder.
fn render(
    peer: &Peer,
    files: &PeerFiles,
    upstream: SocketAddr,
    port: u16,
    threads: usize,
) -> Result<PathBuf, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/peers")
        .join(peer.template);
    let text = std::fs::read_to_string(&src).map_err(|e| format!("{}: {e}", src.display()))?;
    let run = files.dir.join(format!("run-{}-{threads}t", peer.id));
    std::fs::create_dir_all(&run).map_err(|e| format!("{}: {e}", run.display()))?;
    let vars: [(&str, String); 9] = [
        ("{{RUN}}", run.display().to_string()),
        ("{{PORT}}", port.to_string()),
        ("{{UPSTREAM}}", upstream.to_string()),
        ("{{CERT}}", files.cert.display().to_string()),
        ("{{KEY}}", files.key.display().to_string()),
        ("{{CERT_PEM}}", files.cert_pem.display().to_string()),
        ("{{PUBKEY}}", files.pubkey.display().to_string()),
        ("{{ISSUER}}", ISSUER.to_owned()),
        ("{{AUDIENCE}}", AUDIENCE.to_owned()),
    ];
    let mut out = text;
    for (k, v) in &vars {
        out = out.replace(k, v);
    }
    if threads != 1 {
        out = out.replace("nbthread 1", &format!("nbthread {threads}"));
    }
    // Comments may mention the placeholder syntax; directives must not keep any.
    if let Some(line) = out
        .lines()
        .find(|l| !l.trim_start().starts_with('#') && l.contains("{{"))
    {
        return Err(format!(
            "{}: unfilled placeholder in {line:?}",
            src.display()
        ));
    }
    let path = run.join(peer.template);
    std::fs::write(&path, out).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Start `peer` in front of `upstream`, pinned like the gateway (or not, with `cpus`
/// None), with `threads` HAProxy threads; returns once it listens.
pub fn start(
    peer: &Peer,
    files: &PeerFiles,
    upstream: SocketAddr,
    cpus: Option<&str>,
    threads: usize,
) -> Result<(ChildGuard, SocketAddr), String> {
    let port = procs::free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let conf = render(peer, files, upstream, port, threads)?;
    let conf_s = conf.display().to_string();
    let run_s = conf
        .parent()
        .map_or_else(String::new, |p| p.display().to_string());
    let args: Vec<&str> = match peer.program {
        // -p: prefix for relative paths; -e: error log before the config is read.
        "nginx" => vec!["-p", &run_s, "-e", "stderr", "-c", &conf_s],
        // -db: foreground, no daemon.
        _ => vec!["-db", "-f", &conf_s],
    };
    let child = procs::spawn_listening(
        peer.id,
        peer.program,
        &args,
        cpus,
        addr,
        Duration::from_secs(15),
    )?;
    Ok((child, addr))
}
