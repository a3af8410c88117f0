//! The Redis carrier of a fleet: key layout, connecting, reading a chunked snapshot.
//! The gateway side ([`follow`]) and the publisher ([`crate::state::publish`]) share it.
//!
//! Layout under `key_prefix` P (docs/fleet.md is the reference for other tools):
//! - `P:head`: a hash naming the current snapshot (`snapshot`, `chunks`, `bytes`,
//!   `sha256`), the stream entry it includes changes up to (`version`), the newest entry
//!   (`last`) and when the publisher last confirmed its source (`confirmed_ms`).
//! - `P:snap:<snapshot>:<i>`: the snapshot's `state.json` bytes, cut into chunks (a Redis
//!   string holds at most 512 MB; a million devices are more as one document).
//! - `P:changes`: a stream of change batches, each naming the entry before it (`prev`), so
//!   a follower sees at once when the stream was trimmed past its version.
//! - `P:lock`: the publisher lock (a random token with an expiry).

use std::path::Path;
use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::{AsyncConnectionConfig, Client, IntoConnectionInfo};

use crate::config::RedisEndpoint;

pub(crate) mod cache;
pub mod follow;

/// Snapshot chunk size: well under Redis's 512 MB string limit, small enough that one GET
/// never holds the connection for long.
pub const CHUNK_BYTES: usize = 4 * 1024 * 1024;
/// The layout's version (`P:head` field `format`); a follower refuses any other.
pub const FORMAT: &str = "1";
/// Entries the change stream keeps (XADD MAXLEN ~). A follower further behind reloads
/// the snapshot; the publisher republishes the snapshot well before this many.
pub const STREAM_MAXLEN: usize = 10_000;
/// Connecting (TCP + TLS + AUTH) must finish within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The keys of one fleet.
#[derive(Debug, Clone)]
pub struct Keys {
    pub prefix: String,
    pub head: String,
    pub changes: String,
    pub lock: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            head: format!("{prefix}:head"),
            changes: format!("{prefix}:changes"),
            lock: format!("{prefix}:lock"),
        }
    }

    pub fn chunk(&self, snapshot: &str, i: usize) -> String {
        format!("{}:snap:{snapshot}:{i}", self.prefix)
    }
}

/// A client for `endpoint`, with the password from `password_file` when set (read here:
/// call from a blocking context or at start-up).
pub fn client(endpoint: &RedisEndpoint) -> Result<Client, String> {
    // rediss:// uses rustls with the process-wide provider: make sure it is ours.
    let _ = crate::transport::tls::provider();
    let shown = endpoint.redacted_url();
    let mut info = endpoint
        .url
        .as_str()
        .into_connection_info()
        .map_err(|e| format!("{shown}: {e}"))?;
    if let Some(p) = &endpoint.password_file {
        let password = read_password(p)?;
        let settings = info.redis_settings().clone().set_password(password);
        info = info.set_redis_settings(settings);
    }
    Client::open(info).map_err(|e| format!("{shown}: {e}"))
}

fn read_password(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let pw = text.trim_end_matches(['\r', '\n']);
    if pw.is_empty() {
        return Err(format!("{}: the password file is empty", path.display()));
    }
    Ok(pw.to_owned())
}

/// One connection whose replies may take up to `response_timeout` (a blocking XREAD
/// needs more than its BLOCK time).
pub async fn connect(
    client: &Client,
    response_timeout: Duration,
) -> Result<MultiplexedConnection, String> {
    let cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(response_timeout));
    client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await
        .map_err(|e| format!("connect: {e}"))
}

/// A stream entry id (`ms-seq`) as a comparable pair; `None` when malformed.
pub fn entry_id(s: &str) -> Option<(u64, u64)> {
    let (ms, seq) = s.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// What `P:head` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub snapshot: String,
    pub chunks: usize,
    pub bytes: usize,
    pub sha256: String,
    pub version: String,
    pub last: String,
    pub confirmed_ms: Option<i64>,
}

impl Head {
    /// Validate the hash as read (`HGETALL`); an empty hash means nothing was published.
    pub fn parse(fields: &std::collections::HashMap<String, String>) -> Result<Self, String> {
        if fields.is_empty() {
            return Err("no snapshot published yet".into());
        }
        let get = |k: &str| {
            fields
                .get(k)
                .cloned()
                .ok_or_else(|| format!("head field {k:?} missing"))
        };
        let format = get("format")?;
        if format != FORMAT {
            return Err(format!(
                "head format {format:?} (this gateway reads {FORMAT:?})"
            ));
        }
        let num = |k: &str| -> Result<usize, String> {
            get(k)?
                .parse::<usize>()
                .map_err(|_| format!("head field {k:?} is not a number"))
        };
        let snapshot = get("snapshot")?;
        if snapshot.is_empty() || !snapshot.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(format!("head snapshot id {snapshot:?} is not alphanumeric"));
        }
        let (chunks, bytes) = (num("chunks")?, num("bytes")?);
        if bytes > crate::state::MAX_STATE_BYTES || chunks != bytes.div_ceil(CHUNK_BYTES).max(1) {
            return Err(format!(
                "head: {chunks} chunks of {bytes} bytes is not a valid snapshot"
            ));
        }
        let version = get("version")?;
        let last = get("last")?;
        for (k, v) in [("version", &version), ("last", &last)] {
            if entry_id(v).is_none() {
                return Err(format!("head field {k:?} {v:?} is not a stream id"));
            }
        }
        let sha256 = get("sha256")?;
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("head field \"sha256\" is not a SHA-256 hex digest".into());
        }
        let confirmed_ms = fields.get("confirmed_ms").and_then(|v| v.parse().ok());
        Ok(Head {
            snapshot,
            chunks,
            bytes,
            sha256,
            version,
            last,
            confirmed_ms,
        })
    }
}

/// Lower-case hex SHA-256 of `bytes` (snapshot integrity).
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Read the snapshot `head` names, check its length and digest. A chunk that is missing
/// (the snapshot was replaced and its chunks expired while we read) is an error: the
/// caller reads the head again.
pub async fn read_snapshot(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    head: &Head,
) -> Result<Vec<u8>, String> {
    let mut buf: Vec<u8> = Vec::with_capacity(head.bytes);
    for i in 0..head.chunks {
        let chunk: Option<Vec<u8>> = ::redis::cmd("GET")
            .arg(keys.chunk(&head.snapshot, i))
            .query_async(conn)
            .await
            .map_err(|e| format!("snapshot {} chunk {i}: {e}", head.snapshot))?;
        let chunk = chunk.ok_or_else(|| {
            format!(
                "snapshot {} chunk {i} is missing (replaced while reading?)",
                head.snapshot
            )
        })?;
        if buf.len() + chunk.len() > head.bytes {
            return Err(format!(
                "snapshot {} is longer than its {} bytes",
                head.snapshot, head.bytes
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    if buf.len() != head.bytes {
        return Err(format!(
            "snapshot {} has {} bytes, head says {}",
            head.snapshot,
            buf.len(),
            head.bytes
        ));
    }
    let (buf, digest) = tokio::task::spawn_blocking(move || {
        let d = sha256_hex(&buf);
        (buf, d)
    })
    .await
    .map_err(|e| format!("snapshot digest: {e}"))?;
    if digest != head.sha256.to_ascii_lowercase() {
        return Err(format!(
            "snapshot {} fails its SHA-256 check",
            head.snapshot
        ));
    }
    Ok(buf)
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
