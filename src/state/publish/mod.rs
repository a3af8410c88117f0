//! The publisher side of the Redis carrier (`accessgate sync`): a lease so that exactly
//! one of several publishers writes, snapshots written in chunks and committed atomically,
//! change batches appended to the stream. Layout: [`crate::state::redis`], docs/fleet.md.
//!
//! Every write that followers would see goes through a Lua script that first checks the
//! lease's token: a publisher that was paused or partitioned past its lease cannot
//! publish once another holds it, whatever it still believes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::{Client, Script};

use super::redis::{CHUNK_BYTES, FORMAT, Keys, STREAM_MAXLEN, connect, sha256_hex};
use crate::config::RedisEndpoint;

pub mod diff;
pub mod early;

/// How long the lease lasts without renewal. A dead holder is replaced within this plus
/// [`LEASE_RETRY`] (12 s).
pub const LEASE_TTL: Duration = Duration::from_secs(10);
/// How often the holder renews (a third of the TTL: two renewals may fail in a row).
pub const LEASE_RENEW: Duration = Duration::from_millis(3_300);
/// How often a standby tries to take the lease.
pub const LEASE_RETRY: Duration = Duration::from_secs(2);
/// Chunks of a snapshot not (yet) committed expire after this: a publisher that dies
/// mid-write leaves nothing behind for long.
const UNCOMMITTED_TTL_MS: u64 = 600_000;
/// Chunks of a replaced snapshot stay this long, so followers mid-read can finish.
const REPLACED_TTL_MS: u64 = 120_000;
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0";

/// KEYS: lock, head, changes. ARGV: token, maxlen, batch, at.
const BATCH: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('NOTLEADER the publisher lease is held by another')
end
local last = redis.call('HGET', KEYS[2], 'last')
if not last then
  return redis.error_reply('NOSNAPSHOT no snapshot to apply changes to')
end
local id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*',
  'kind', 'batch', 'prev', last, 'at', ARGV[4], 'batch', ARGV[3])
redis.call('HSET', KEYS[2], 'last', id, 'confirmed_ms', ARGV[4])
return id";

/// KEYS: lock, head, changes. ARGV: token, snapshot, chunks, bytes, sha256, at, rebase,
/// maxlen, prefix, replaced ttl, format.
const COMMIT: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('NOTLEADER the publisher lease is held by another')
end
local n = tonumber(ARGV[3])
for i = 0, n - 1 do
  local k = ARGV[9] .. ':snap:' .. ARGV[2] .. ':' .. i
  if redis.call('EXISTS', k) == 0 then
    return redis.error_reply('MISSINGCHUNK ' .. k)
  end
  redis.call('PERSIST', k)
end
local last = redis.call('HGET', KEYS[2], 'last')
if not last then last = '0-0' end
local version = last
if ARGV[7] == '1' then
  version = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '*',
    'kind', 'snapshot', 'prev', last, 'at', ARGV[6], 'snapshot', ARGV[2])
end
local old = redis.call('HGET', KEYS[2], 'snapshot')
local oldn = tonumber(redis.call('HGET', KEYS[2], 'chunks') or '0') or 0
redis.call('HSET', KEYS[2], 'format', ARGV[11], 'snapshot', ARGV[2], 'chunks', ARGV[3],
  'bytes', ARGV[4], 'sha256', ARGV[5], 'version', version, 'last', version,
  'confirmed_ms', ARGV[6])
if old and old ~= ARGV[2] then
  for i = 0, oldn - 1 do
    redis.call('PEXPIRE', ARGV[9] .. ':snap:' .. old .. ':' .. i, ARGV[10])
  end
end
return version";

/// KEYS: lock, head. ARGV: token, at.
const CONFIRM: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('NOTLEADER the publisher lease is held by another')
end
if redis.call('HEXISTS', KEYS[2], 'snapshot') == 1 then
  redis.call('HSET', KEYS[2], 'confirmed_ms', ARGV[2])
  return 1
end
return 0";

/// Why a publish did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishError {
    /// Another publisher holds the lease (or it expired): publish nothing, stand by.
    NotLeader,
    /// Redis unreachable or refusing: the caller retries later (with a full snapshot).
    Redis(String),
}

impl std::fmt::Display for PublishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotLeader => f.write_str("not the publisher: the lease is held by another"),
            Self::Redis(e) => f.write_str(e),
        }
    }
}

fn redis_error(what: &str, e: ::redis::RedisError) -> PublishError {
    let text = e.to_string();
    if text.contains("NOTLEADER") {
        PublishError::NotLeader
    } else {
        PublishError::Redis(format!("{what}: {text}"))
    }
}

/// A random token or snapshot id: 32 hex digits from the system RNG.
pub fn random_id() -> String {
    let mut b = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        // Never a predictable token: fall back to time and pid mixed through SHA-256.
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        return sha256_hex(seed.as_bytes())[..32].to_owned();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The lease, held or not. `generation` moves each time this process takes it, so the
/// publisher knows to start with a full snapshot (it cannot know what a predecessor wrote).
#[derive(Debug, Default)]
pub struct LeaseState {
    held: AtomicBool,
    generation: AtomicU64,
}

impl LeaseState {
    pub fn held(&self) -> bool {
        self.held.load(Ordering::Acquire)
    }
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
    /// A publish was refused for the lease: stop acting as the holder at once.
    pub fn lost(&self) {
        self.held.store(false, Ordering::Release);
    }
}

/// Take and keep the lease (its own connection, so a long snapshot write never delays a
/// renewal). Ends when `state` has no other owner left.
pub async fn run_lease(
    client: Client,
    keys: Keys,
    token: String,
    state: Arc<LeaseState>,
    changed: tokio::sync::watch::Sender<u64>,
) {
    let renew = Script::new(RENEW);
    let mut conn: Option<MultiplexedConnection> = None;
    loop {
        if Arc::strong_count(&state) == 1 {
            return;
        }
        if conn.is_none() {
            conn = connect(&client, Duration::from_secs(5)).await.ok();
        }
        let Some(c) = conn.as_mut() else {
            // Unreachable: the lease may expire meanwhile; act as if it did.
            if state.held() {
                tracing::warn!("Redis unreachable: giving up the publisher lease");
                state.lost();
            }
            tokio::time::sleep(LEASE_RETRY).await;
            continue;
        };
        let ttl = LEASE_TTL.as_millis() as u64;
        let result: Result<bool, ::redis::RedisError> = if state.held() {
            renew
                .key(&keys.lock)
                .arg(&token)
                .arg(ttl)
                .invoke_async::<i64>(c)
                .await
                .map(|v| v == 1)
        } else {
            ::redis::cmd("SET")
                .arg(&keys.lock)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(ttl)
                .query_async::<Option<String>>(c)
                .await
                .map(|v| v.is_some())
        };
        let was = state.held();
        match result {
            Ok(true) if !was => {
                let g = state.generation.fetch_add(1, Ordering::AcqRel) + 1;
                state.held.store(true, Ordering::Release);
                tracing::info!(generation = g, "publisher lease taken: this sync publishes");
                let _ = changed.send(g);
            }
            Ok(true) => {}
            Ok(false) if was => {
                tracing::warn!("publisher lease lost to another sync; standing by");
                state.lost();
                let _ = changed.send(state.generation());
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "publisher lease: Redis error");
                if was {
                    state.lost();
                    let _ = changed.send(state.generation());
                }
                conn = None;
            }
        }
        tokio::time::sleep(if state.held() {
            LEASE_RENEW
        } else {
            LEASE_RETRY
        })
        .await;
    }
}

/// Give the lease up (clean shutdown), so a standby takes over at once.
pub async fn release_lease(client: &Client, keys: &Keys, token: &str) {
    if let Ok(mut c) = connect(client, Duration::from_secs(2)).await {
        let _ = Script::new(RELEASE)
            .key(&keys.lock)
            .arg(token)
            .invoke_async::<i64>(&mut c)
            .await;
    }
}

/// Writes snapshots and batches, each checked against the lease token inside Redis.
pub struct RedisPublisher {
    client: Client,
    keys: Keys,
    token: String,
    conn: Option<MultiplexedConnection>,
    batch: Script,
    commit: Script,
    confirm: Script,
}

impl RedisPublisher {
    /// Build the client (reads `password_file`: call from a blocking context or at start).
    pub fn new(endpoint: &RedisEndpoint, token: String) -> Result<Self, String> {
        Ok(Self {
            client: super::redis::client(endpoint)?,
            keys: Keys::new(&endpoint.key_prefix),
            token,
            conn: None,
            batch: Script::new(BATCH),
            commit: Script::new(COMMIT),
            confirm: Script::new(CONFIRM),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    async fn conn(&mut self) -> Result<&mut MultiplexedConnection, PublishError> {
        if self.conn.is_none() {
            let c = connect(&self.client, REPLY_TIMEOUT)
                .await
                .map_err(PublishError::Redis)?;
            self.conn = Some(c);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| PublishError::Redis("no connection".into()))
    }

    fn forget_conn_on(&mut self, e: &PublishError) {
        if matches!(e, PublishError::Redis(_)) {
            self.conn = None;
        }
    }

    /// Write `doc` (a whole `state.json`) as the current snapshot. `rebase`: followers
    /// reload it even if they are at its version (a new holder's view may differ from what
    /// its predecessor streamed); otherwise it only spares new followers a long replay.
    /// Returns the version (stream id) it includes.
    pub async fn publish_snapshot(
        &mut self,
        doc: &[u8],
        rebase: bool,
        at_ms: i64,
    ) -> Result<String, PublishError> {
        let r = self.publish_snapshot_inner(doc, rebase, at_ms).await;
        if let Err(e) = &r {
            self.forget_conn_on(e);
        }
        r
    }

    async fn publish_snapshot_inner(
        &mut self,
        doc: &[u8],
        rebase: bool,
        at_ms: i64,
    ) -> Result<String, PublishError> {
        let id = random_id();
        let sha = sha256_hex(doc);
        let chunks: Vec<&[u8]> = if doc.is_empty() {
            vec![&[][..]]
        } else {
            doc.chunks(CHUNK_BYTES).collect()
        };
        let keys = self.keys.clone();
        let conn = self.conn().await?;
        for group in chunks.chunks(8).enumerate() {
            let (g, list) = group;
            let mut pipe = ::redis::pipe();
            for (j, c) in list.iter().enumerate() {
                pipe.cmd("SET")
                    .arg(keys.chunk(&id, g * 8 + j))
                    .arg(*c)
                    .arg("PX")
                    .arg(UNCOMMITTED_TTL_MS)
                    .ignore();
            }
            pipe.query_async::<()>(conn)
                .await
                .map_err(|e| redis_error("snapshot chunk", e))?;
        }
        let commit = self.commit.clone();
        let token = self.token.clone();
        let conn = self.conn().await?;
        commit
            .key(&keys.lock)
            .key(&keys.head)
            .key(&keys.changes)
            .arg(&token)
            .arg(&id)
            .arg(chunks.len())
            .arg(doc.len())
            .arg(&sha)
            .arg(at_ms)
            .arg(if rebase { "1" } else { "0" })
            .arg(STREAM_MAXLEN)
            .arg(&keys.prefix)
            .arg(REPLACED_TTL_MS)
            .arg(FORMAT)
            .invoke_async::<String>(conn)
            .await
            .map_err(|e| redis_error("snapshot commit", e))
    }

    /// Append one change batch (a batch document, see `policy::state_batch`).
    pub async fn publish_batch(
        &mut self,
        batch: &[u8],
        at_ms: i64,
    ) -> Result<String, PublishError> {
        let script = self.batch.clone();
        let keys = self.keys.clone();
        let token = self.token.clone();
        let r = async {
            let conn = self.conn().await?;
            script
                .key(&keys.lock)
                .key(&keys.head)
                .key(&keys.changes)
                .arg(&token)
                .arg(STREAM_MAXLEN)
                .arg(batch)
                .arg(at_ms)
                .invoke_async::<String>(conn)
                .await
                .map_err(|e| redis_error("batch", e))
        }
        .await;
        if let Err(e) = &r {
            self.forget_conn_on(e);
        }
        r
    }

    /// The source was read at `at_ms` and nothing changed: followers' state stays fresh.
    pub async fn confirm(&mut self, at_ms: i64) -> Result<(), PublishError> {
        let script = self.confirm.clone();
        let keys = self.keys.clone();
        let token = self.token.clone();
        let r = async {
            let conn = self.conn().await?;
            script
                .key(&keys.lock)
                .key(&keys.head)
                .arg(&token)
                .arg(at_ms)
                .invoke_async::<i64>(conn)
                .await
                .map(|_| ())
                .map_err(|e| redis_error("confirm", e))
        }
        .await;
        if let Err(e) = &r {
            self.forget_conn_on(e);
        }
        r
    }
}
