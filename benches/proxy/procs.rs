//! Child processes (upstream, gateway, peers), CPU pinning, and what `/proc` says about
//! them (resident memory, CPU time).
//!
//! Every child is owned by a [`ChildGuard`] that kills and reaps it on drop, so a panic or
//! an early `return` anywhere in the harness leaves nothing running. Our own children
//! (`--serve-*`) also exit when their stdin closes, which covers the harness itself being
//! killed with SIGKILL.

use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Which CPUs things run on, decided once.
#[derive(Debug, Clone)]
pub struct Pinning {
    /// CPU list for the upstream, the gateway and the peers (`None` = not pinned).
    pub server: Option<&'static str>,
    /// CPU list the harness (load driver) pinned itself to.
    pub driver: Option<&'static str>,
    pub note: String,
}

impl Pinning {
    /// Pin this process to CPU 1 (before any driver thread exists, so every later
    /// thread inherits it); servers go to CPU 0. With fewer than 2 CPUs, or without
    /// `taskset`, nothing is pinned and the note says so.
    pub fn setup() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cpus < 2 {
            return Self {
                server: None,
                driver: None,
                note: format!("pinning off: only {cpus} CPU available"),
            };
        }
        let pid = std::process::id().to_string();
        let ok = Command::new("taskset")
            .args(["-a", "-p", "-c", "1", &pid])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Self {
                server: None,
                driver: None,
                note: "pinning off: `taskset -p` failed (util-linux missing?)".to_owned(),
            };
        }
        Self {
            server: Some("0"),
            driver: Some("1"),
            note: format!(
                "pinned: upstream + gateway + peers on CPU 0, load driver on CPU 1 ({cpus} CPUs)"
            ),
        }
    }
}

/// Raise this process's open-file limit (children inherit it) so 10k connections fit.
/// Returns the soft limit in force afterwards.
pub fn raise_nofile(want: u64) -> u64 {
    let pid = std::process::id().to_string();
    let set = |soft: u64, hard: u64| {
        Command::new("prlimit")
            .args(["--pid", &pid, &format!("--nofile={soft}:{hard}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !set(want, want) {
        // Not allowed to raise the hard limit: take the soft limit up to it.
        if let Some(hard) = nofile_limits().map(|(_, h)| h) {
            set(want.min(hard), hard);
        }
    }
    nofile_limits().map_or(0, |(s, _)| s)
}

fn nofile_limits() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let mut it = line.split_whitespace().skip(3);
    let parse = |s: Option<&str>| match s? {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    };
    Some((parse(it.next())?, parse(it.next())?))
}

/// A child process that is killed and reaped when dropped.
pub struct ChildGuard {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl ChildGuard {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // A child that died on its own while in use is worth a line: rows measured
        // against it are suspect.
        if let Ok(Some(status)) = self.child.try_wait() {
            progress(&format!("{} had exited on its own ({status})", self.name));
        }
        // Closing stdin asks our own children to stop; SIGKILL makes sure of it.
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cmd args...` under `taskset -c cpus` when pinned. stdout is piped and scanned for a
/// line starting with `READY` (returned, split on whitespace) within `wait`; later lines
/// are drained in the background so the child never blocks on a full pipe.
pub fn spawn_ready(
    name: &str,
    program: &Path,
    args: &[&str],
    cpus: Option<&str>,
    wait: Duration,
) -> Result<(ChildGuard, Vec<String>), String> {
    let mut cmd = match cpus {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", c]).arg(program);
            cmd
        }
        None => Command::new(program),
    };
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{name}: cannot start {}: {e}", program.display()))?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let mut guard = ChildGuard {
        name: name.to_owned(),
        child,
        stdin,
    };
    let Some(stdout) = stdout else {
        return Err(format!("{name}: no stdout pipe"));
    };
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // Only the READY line is of interest; anything else is noise from the child.
            if tx.send(line).is_err() {
                continue;
            }
        }
    });
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(line) if line.starts_with("READY") => {
                let words = line.split_whitespace().map(str::to_owned).collect();
                return Ok((guard, words));
            }
            Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(format!("{name}: exited before it was ready"));
            }
        }
        if !guard.alive() {
            return Err(format!("{name}: exited before it was ready"));
        }
        if Instant::now() >= deadline {
            return Err(format!("{name}: not ready within {wait:?}"));
        }
    }
}

/// Start a third-party server (nginx, haproxy) that does not print READY: spawn it and
/// wait until `addr` accepts TCP connections, bounded by `wait`.
pub fn spawn_listening(
    name: &str,
    program: &str,
    args: &[&str],
    cpus: Option<&str>,
    addr: std::net::SocketAddr,
    wait: Duration,
) -> Result<ChildGuard, String> {
    let mut cmd = match cpus {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", c, program]);
            cmd
        }
        None => Command::new(program),
    };
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let child = cmd
        .spawn()
        .map_err(|e| format!("{name}: cannot start {program}: {e}"))?;
    let mut guard = ChildGuard {
        name: name.to_owned(),
        child,
        stdin: None,
    };
    let deadline = Instant::now() + wait;
    loop {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(guard);
        }
        if !guard.alive() {
            return Err(format!("{name}: exited before listening on {addr}"));
        }
        if Instant::now() >= deadline {
            return Err(format!("{name}: not listening on {addr} within {wait:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A free loopback port: bind port 0, read it, release it. Another process could take it
/// in between; the peers' start then fails with a clear "not listening" error.
pub fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local_addr: {e}"))
}

/// `VmRSS` and `VmHWM` (peak) of `pid`, in KiB.
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// User + system CPU time of a process (`None` = this process), in seconds.
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    // Fields after the parenthesised command name (which may hold spaces).
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks())
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// Print a line to stderr right away (progress; the table goes to stdout).
pub fn progress(msg: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "[proxy bench] {msg}");
}
