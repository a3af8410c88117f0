//! `cache_dir` for `[state] source = "redis"`: the last state a gateway serves, on disk, so
//! a gateway that starts while Redis is unreachable serves it (at its true age) instead of
//! nothing, and catches up from the stream position it holds once Redis is back.
//!
//! One document, `redis-state.json`, written atomically (graph's [`write_atomic`]: aside,
//! fsynced, renamed, folder fsynced), with the position it holds and when the publisher
//! last confirmed it:
//!
//! ```json
//! {"format":1,"keyPrefix":"P","snapshot":"<id>","version":"<stream id>","confirmedMs":0,
//!  "sha256":"<hex of state>","stateBytes":0,"batches":[<change batch>, ...],"state":<state.json>}
//! ```
//!
//! `state` is the snapshot as Redis served it, `batches` the change batches applied on it
//! since, in order, up to `version`. The snapshot comes last so that a rewrite with more
//! batches copies it from the previous file by offset instead of holding hundreds of
//! megabytes in memory for the gateway's life.
//!
//! When: after each snapshot load at once, within [`BATCHES_EVERY`] of batches being
//! applied, within [`CONFIRM_EVERY`] when only the confirmation moved (a rewrite copies the
//! whole snapshot), and at shutdown. Never on the request path: writes run on the blocking
//! pool, one at a time. A crash loses at most that much of the cache's recency; the cache
//! then looks older than it was, never younger.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::entry_id;
use crate::policy::state_overlay::COMPACT_AFTER;
use crate::policy::{ChangeBatch, PolicyState};
use crate::state::graph::cache::write_atomic;

pub const FILE: &str = "redis-state.json";
const FORMAT: u32 = 1;
/// Batches are held in memory until written (the file copies its snapshot, not them).
/// Past this the cache stops following until the next snapshot load: the file keeps an
/// older, consistent position (and its older confirmation) rather than memory growing.
pub const MAX_BATCH_BYTES: usize = 64 * 1024 * 1024;
/// Applied batches reach the file at most this long after they were applied.
pub const BATCHES_EVERY: Duration = Duration::from_secs(30);
/// A newer confirmation alone reaches the file at most this often.
pub const CONFIRM_EVERY: Duration = Duration::from_secs(300);
/// Room for the header and the batches' framing on top of the snapshot and batches.
const SLACK_BYTES: usize = 1024 * 1024;

/// Where the snapshot's bytes are.
#[derive(Debug, Clone)]
enum Base {
    /// Just loaded from Redis, not yet on disk.
    Memory(Arc<Vec<u8>>),
    /// In the cache file, at `offset`, `len` bytes with this SHA-256.
    File {
        offset: u64,
        len: u64,
        sha256: String,
    },
}

/// What the file should hold.
#[derive(Debug, Clone)]
struct Doc {
    snapshot: String,
    version: String,
    confirmed_ms: i64,
    batches: Vec<Arc<[u8]>>,
    batch_bytes: usize,
    base: Base,
}

#[derive(Debug, Default)]
struct Inner {
    doc: Option<Doc>,
    /// Bumped at every change of `doc`: a write records which one it wrote.
    rev: u64,
    written_rev: u64,
    /// The doc gained batches (or a new snapshot) since the last write, not only a
    /// newer confirmation.
    content_dirty: bool,
    /// Batches past [`MAX_BATCH_BYTES`]: stop following until the next snapshot.
    overflow: bool,
    /// A snapshot is waiting: write at once.
    urgent: bool,
    last_write: Option<Instant>,
}

/// The follower's handle on its cache file.
#[derive(Debug)]
pub(crate) struct RedisCache {
    path: PathBuf,
    prefix: String,
    inner: Mutex<Inner>,
    /// One write at a time (they share the temporary file name).
    writing: Arc<tokio::sync::Mutex<()>>,
}

/// A cache read back: the state it rebuilds and the position it holds.
pub(crate) struct Loaded {
    pub(crate) state: PolicyState,
    pub(crate) snapshot: String,
    pub(crate) version: String,
    pub(crate) confirmed_ms: i64,
    pub(crate) batches: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HeaderOut<'a> {
    format: u32,
    key_prefix: &'a str,
    snapshot: &'a str,
    version: &'a str,
    confirmed_ms: i64,
    sha256: &'a str,
    state_bytes: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DocIn<'a> {
    format: u32,
    key_prefix: String,
    snapshot: String,
    version: String,
    confirmed_ms: i64,
    sha256: String,
    state_bytes: u64,
    #[serde(borrow)]
    batches: Vec<&'a RawValue>,
    #[serde(borrow)]
    state: &'a RawValue,
}

impl RedisCache {
    pub(crate) fn new(dir: &Path, prefix: &str) -> Self {
        Self {
            path: dir.join(FILE),
            prefix: prefix.to_owned(),
            inner: Mutex::new(Inner::default()),
            writing: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> Option<T> {
        self.inner.lock().ok().map(|mut g| f(&mut g))
    }

    /// A snapshot was loaded from Redis: the next write (at once) holds it and no batch.
    pub(crate) fn snapshot_loaded(
        &self,
        snapshot: &str,
        version: &str,
        confirmed_ms: Option<i64>,
        bytes: Arc<Vec<u8>>,
    ) {
        self.with(|i| {
            i.doc = Some(Doc {
                snapshot: snapshot.to_owned(),
                version: version.to_owned(),
                confirmed_ms: confirmed_ms.unwrap_or(0),
                batches: Vec::new(),
                batch_bytes: 0,
                base: Base::Memory(bytes),
            });
            i.rev += 1;
            i.content_dirty = true;
            i.overflow = false;
            i.urgent = true;
        });
    }

    /// The state was rebuilt from this file: it is what the file holds already.
    fn loaded_from_file(&self, doc: Doc) {
        self.with(|i| {
            i.doc = Some(doc);
            i.rev += 1;
            i.written_rev = i.rev;
            i.content_dirty = false;
            i.overflow = false;
            i.urgent = false;
            i.last_write = Some(Instant::now());
        });
    }

    /// Entries up to `version` were applied: `batches` (raw, in order) on top of the doc.
    pub(crate) fn advanced(&self, version: &str, batches: Vec<Arc<[u8]>>, confirmed: Option<i64>) {
        let overflowed = self.with(|i| {
            if i.overflow {
                return false;
            }
            let Some(doc) = i.doc.as_mut() else {
                return false;
            };
            let more: usize = batches.iter().map(|b| b.len()).sum();
            if doc.batch_bytes + more > MAX_BATCH_BYTES {
                i.overflow = true;
                return true;
            }
            doc.batch_bytes += more;
            doc.batches.extend(batches);
            doc.version = version.to_owned();
            if let Some(c) = confirmed {
                doc.confirmed_ms = doc.confirmed_ms.max(c);
            }
            i.rev += 1;
            i.content_dirty = true;
            false
        });
        if overflowed == Some(true) {
            tracing::warn!(path = %self.path.display(), limit = MAX_BATCH_BYTES, "cache_dir: the batches since the last snapshot are over the limit; the cache keeps its older position until the next snapshot");
        }
    }

    /// The publisher confirmed the position we hold at `ms`.
    pub(crate) fn confirmed(&self, ms: i64) {
        self.with(|i| {
            if i.overflow {
                return;
            }
            if let Some(doc) = i.doc.as_mut()
                && ms > doc.confirmed_ms
            {
                doc.confirmed_ms = ms;
                i.rev += 1;
            }
        });
    }

    /// Start a write in the background if one is due (the follower calls this as it goes).
    pub(crate) fn poll(self: &Arc<Self>) {
        let due = self
            .with(|i| {
                if i.rev == i.written_rev || i.doc.is_none() {
                    return false;
                }
                let since = i.last_write.map_or(Duration::MAX, |t| t.elapsed());
                i.urgent || (i.content_dirty && since >= BATCHES_EVERY) || since >= CONFIRM_EVERY
            })
            .unwrap_or(false);
        if !due {
            return;
        }
        let Ok(guard) = self.writing.clone().try_lock_owned() else {
            return; // one is running; the next poll starts the next
        };
        let me = self.clone();
        tokio::spawn(async move {
            me.write_now().await;
            drop(guard);
        });
    }

    /// Write now if the file is behind (shutdown). Waits for a write in progress first.
    pub(crate) async fn flush(self: &Arc<Self>) {
        let _guard = self.writing.clone().lock_owned().await;
        let behind = self.with(|i| i.rev != i.written_rev).unwrap_or(false);
        if behind {
            self.write_now().await;
        }
    }

    /// Write the current doc (the caller holds `writing`).
    async fn write_now(self: &Arc<Self>) {
        let Some(Some((doc, rev))) = self.with(|i| i.doc.clone().map(|d| (d, i.rev))) else {
            return;
        };
        let me = self.clone();
        let snapshot = doc.snapshot.clone();
        let written = tokio::task::spawn_blocking(move || write_doc(&me.path, &me.prefix, &doc))
            .await
            .unwrap_or_else(|e| Err(format!("cache writer stopped: {e}")));
        match written {
            Ok(base) => {
                self.with(|i| {
                    i.written_rev = i.written_rev.max(rev);
                    i.last_write = Some(Instant::now());
                    if i.written_rev == i.rev {
                        i.content_dirty = false;
                    }
                    // The snapshot is on disk now: drop the copy in memory.
                    if let Some(d) = i.doc.as_mut()
                        && d.snapshot == snapshot
                    {
                        if matches!(d.base, Base::Memory(_)) {
                            i.urgent = false;
                        }
                        d.base = base;
                    }
                });
                tracing::debug!(path = %self.path.display(), "cache_dir: state written");
            }
            Err(e) => {
                // Retried at the next due time, not in a loop.
                self.with(|i| {
                    i.last_write = Some(Instant::now());
                    i.urgent = false;
                });
                tracing::warn!(path = %self.path.display(), error = %e, "cache_dir: cannot write the state cache; keeping the previous file");
            }
        }
    }

    /// Read the cache back. `Ok(None)`: there is none. `Err`: there is one, unusable (the
    /// message says why); the caller ignores it. Reads a whole file: call off the runtime.
    pub(crate) fn load(&self) -> Result<Option<Loaded>, String> {
        let (loaded, doc) = match load_file(&self.path, &self.prefix)? {
            Some(x) => x,
            None => return Ok(None),
        };
        self.loaded_from_file(doc);
        Ok(Some(loaded))
    }
}

/// Write `doc` to `path`; returns where its snapshot now is in the file.
fn write_doc(path: &Path, prefix: &str, doc: &Doc) -> Result<Base, String> {
    // The document embeds the snapshot verbatim; JSON whitespace around it would not
    // survive a read back (a raw value starts and ends at the value).
    let (sha256, len) = match &doc.base {
        Base::Memory(b) => {
            let t = b.trim_ascii();
            (super::sha256_hex(t), t.len() as u64)
        }
        Base::File { sha256, len, .. } => (sha256.clone(), *len),
    };
    // Reading the previous file while its replacement is written aside is safe: the
    // rename happens only after the copy.
    let mut old = match &doc.base {
        Base::File { offset, .. } => {
            let mut f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            f.seek(SeekFrom::Start(*offset))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Some(f)
        }
        Base::Memory(_) => None,
    };
    let header = serde_json::to_vec(&HeaderOut {
        format: FORMAT,
        key_prefix: prefix,
        snapshot: &doc.snapshot,
        version: &doc.version,
        confirmed_ms: doc.confirmed_ms,
        sha256: &sha256,
        state_bytes: len,
    })
    .map_err(|e| e.to_string())?;
    let mut offset = 0u64;
    write_atomic(path, |w| {
        let mut put = |w: &mut BufWriter<File>, b: &[u8]| {
            offset += b.len() as u64;
            w.write_all(b)
        };
        // The header object without its closing brace, then the rest of the document.
        put(
            w,
            header.get(..header.len().saturating_sub(1)).unwrap_or(&[]),
        )?;
        put(w, b",\"batches\":[")?;
        for (n, b) in doc.batches.iter().enumerate() {
            if n > 0 {
                put(w, b",")?;
            }
            put(w, b.trim_ascii())?;
        }
        put(w, b"],\"state\":")?;
        match (&doc.base, old.as_mut()) {
            (Base::Memory(b), _) => w.write_all(b.trim_ascii())?,
            (Base::File { .. }, Some(f)) => copy_checked(f, w, len, &sha256)?,
            (Base::File { .. }, None) => return Err(std::io::Error::other("no previous file")),
        }
        w.write_all(b"}")
    })
    .map_err(|e| e.to_string())?;
    Ok(Base::File {
        offset,
        len,
        sha256,
    })
}

/// Copy `len` bytes from `from` to `to`, refusing if they are not the snapshot we wrote
/// (the previous file changed or rotted under us: better no cache than a wrong one).
fn copy_checked(
    from: &mut File,
    to: &mut BufWriter<File>,
    len: u64,
    sha256: &str,
) -> std::io::Result<()> {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut left = len;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        let chunk = &mut buf[..want];
        from.read_exact(chunk)?;
        ctx.update(chunk);
        to.write_all(chunk)?;
        left -= want as u64;
    }
    let d = ctx.finish();
    let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    if hex != sha256 {
        return Err(std::io::Error::other(
            "the previous cache file's snapshot no longer matches its SHA-256",
        ));
    }
    Ok(())
}

fn load_file(path: &Path, prefix: &str) -> Result<Option<(Loaded, Doc)>, String> {
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{shown}: {e}")),
    };
    let limit = crate::state::MAX_STATE_BYTES + MAX_BATCH_BYTES + SLACK_BYTES;
    if meta.len() > limit as u64 {
        return Err(format!(
            "{shown}: {} bytes is over the {limit}-byte limit",
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{shown}: {e}"))?;
    let d: DocIn<'_> = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{shown}: not a complete cache document (truncated?): {e}"))?;
    if d.format != FORMAT {
        return Err(format!(
            "{shown}: format {} (this gateway writes {FORMAT})",
            d.format
        ));
    }
    if d.key_prefix != prefix {
        return Err(format!(
            "{shown}: written for key_prefix {:?}, this gateway follows {prefix:?}",
            d.key_prefix
        ));
    }
    if d.snapshot.is_empty() || !d.snapshot.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!(
            "{shown}: snapshot id {:?} is not alphanumeric",
            d.snapshot
        ));
    }
    if entry_id(&d.version).is_none() {
        return Err(format!(
            "{shown}: version {:?} is not a stream id",
            d.version
        ));
    }
    let state_text = d.state.get().as_bytes();
    if state_text.len() as u64 != d.state_bytes || super::sha256_hex(state_text) != d.sha256 {
        return Err(format!(
            "{shown}: the snapshot fails its length or SHA-256 check"
        ));
    }
    // Where the snapshot sits in the file, so the next write copies it from here.
    let offset = (state_text.as_ptr() as usize)
        .checked_sub(bytes.as_ptr() as usize)
        .ok_or_else(|| format!("{shown}: snapshot outside the document"))?;
    let mut state = PolicyState::from_json(state_text).map_err(|e| format!("{shown}: {e}"))?;
    let mut kept = Vec::with_capacity(d.batches.len());
    let mut batch_bytes = 0usize;
    for (n, raw) in d.batches.iter().enumerate() {
        let b = raw.get().as_bytes();
        let batch = ChangeBatch::from_json(b).map_err(|e| format!("{shown}: batch {n}: {e}"))?;
        state = state
            .apply(&batch)
            .map_err(|e| format!("{shown}: batch {n}: {e}"))?;
        batch_bytes += b.len();
        kept.push(Arc::<[u8]>::from(b));
    }
    if state.overlay_records() > COMPACT_AFTER {
        state = state.compacted();
    }
    let loaded = Loaded {
        state,
        snapshot: d.snapshot.clone(),
        version: d.version.clone(),
        confirmed_ms: d.confirmed_ms,
        batches: kept.len(),
    };
    let doc = Doc {
        snapshot: d.snapshot,
        version: d.version,
        confirmed_ms: d.confirmed_ms,
        batches: kept,
        batch_bytes,
        base: Base::File {
            offset: offset as u64,
            len: d.state_bytes,
            sha256: d.sha256,
        },
    };
    Ok(Some((loaded, doc)))
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
