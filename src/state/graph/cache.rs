//! `cache_dir`: what must survive a restart. The noncompliant-since ledger (Graph does
//! not say when a record started failing, so a restart must not restart anyone's
//! remediation window) and the last good snapshot (so a restart serves at once, with the
//! snapshot's true age, instead of waiting for a full sync).
//!
//! Every write is atomic: a temporary file in the same folder, fsync, rename, fsync of
//! the folder. A crash leaves the old file or the new one, never half of one.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::GraphError;
use super::Mapped;
use crate::policy::{PolicyState, RawAppPolicy, RawDevice, RawRegistration, RawUser};

pub const SNAPSHOT: &str = "state.json";
const SNAPSHOT_META: &str = "state.meta.json";
const LEDGER: &str = "noncompliant-since.json";
/// The ledger has one small entry per failing record; a file far larger is not ours.
const MAX_LEDGER_BYTES: u64 = 256 * 1024 * 1024;

fn cache_err(path: &Path, e: impl std::fmt::Display) -> GraphError {
    GraphError::Cache(format!("{}: {e}", path.display()))
}

/// Write `path` atomically with what `write` produces.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), GraphError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| cache_err(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let file = File::create(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        write(&mut w)?;
        w.flush()?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself is durable only once the folder is.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok::<_, std::io::Error>(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| cache_err(path, e))
}

/// When each failing record was first seen failing (unix seconds), keyed by record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    path: PathBuf,
    since: BTreeMap<String, i64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LedgerFile {
    version: u32,
    noncompliant_since: BTreeMap<String, i64>,
}

impl Ledger {
    /// Read the ledger in `dir`; none yet is an empty ledger. A ledger that cannot be read
    /// is an error: starting empty would silently restart every remediation window.
    pub fn load(dir: &Path) -> Result<Self, GraphError> {
        let path = dir.join(LEDGER);
        let since = match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(cache_err(&path, e)),
            Ok(m) if m.len() > MAX_LEDGER_BYTES => {
                return Err(cache_err(&path, format!("{} bytes is too large", m.len())));
            }
            Ok(_) => {
                let bytes = std::fs::read(&path).map_err(|e| cache_err(&path, e))?;
                let f: LedgerFile = serde_json::from_slice(&bytes).map_err(|e| {
                    cache_err(
                        &path,
                        format!(
                            "{e} (fix or remove it; removing restarts every remediation window)"
                        ),
                    )
                })?;
                if f.version != 1 {
                    return Err(cache_err(&path, format!("unknown version {}", f.version)));
                }
                f.noncompliant_since
            }
        };
        Ok(Self { path, since })
    }

    pub fn since(&self, key: &str) -> Option<i64> {
        self.since.get(key).copied()
    }

    pub fn len(&self) -> usize {
        self.since.len()
    }

    pub fn is_empty(&self) -> bool {
        self.since.is_empty()
    }

    /// The ledger after a round in which exactly `failing` failed: new ones start now,
    /// ones failing before keep their moment, the rest (compliant again, or gone) are
    /// cleared. Returns whether anything changed.
    pub fn update(&mut self, failing: &[String], now: i64) -> bool {
        let mut next = BTreeMap::new();
        for k in failing {
            next.insert(k.clone(), self.since.get(k).copied().unwrap_or(now));
        }
        let changed = next != self.since;
        self.since = next;
        changed
    }

    pub fn save(&self) -> Result<(), GraphError> {
        let f = LedgerFile {
            version: 1,
            noncompliant_since: self.since.clone(),
        };
        write_atomic(&self.path, |w| {
            serde_json::to_writer(w, &f).map_err(std::io::Error::other)
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotOut<'a> {
    users: Vec<&'a RawUser<'static>>,
    devices: Vec<&'a RawDevice<'static>>,
    app_protection_policies: Vec<&'a RawAppPolicy<'static>>,
    app_registrations: Vec<&'a RawRegistration<'static>>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotMeta {
    synced_at_ms: u64,
}

/// Write the round's records as a `state.json` document (streamed, never one string),
/// then its sync time.
pub fn save_snapshot(dir: &Path, m: &Mapped, synced_at: SystemTime) -> Result<(), GraphError> {
    let out = SnapshotOut {
        users: m.users.values().collect(),
        devices: m.devices.values().collect(),
        app_protection_policies: m.app_policies.values().collect(),
        app_registrations: m.registrations.values().collect(),
    };
    write_atomic(&dir.join(SNAPSHOT), |w| {
        serde_json::to_writer(w, &out).map_err(std::io::Error::other)
    })?;
    save_snapshot_time(dir, synced_at)
}

/// Record that the snapshot already in `dir` was confirmed by a sync at `synced_at`.
pub fn save_snapshot_time(dir: &Path, synced_at: SystemTime) -> Result<(), GraphError> {
    let ms = synced_at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    write_atomic(&dir.join(SNAPSHOT_META), |w| {
        serde_json::to_writer(w, &SnapshotMeta { synced_at_ms: ms }).map_err(std::io::Error::other)
    })
}

/// The last good snapshot and when it was synced, if there is one. Its time comes from
/// the meta file (else the snapshot's modification time), so its age is its true age.
pub fn load_snapshot(dir: &Path) -> Result<Option<(PolicyState, SystemTime)>, GraphError> {
    let path = dir.join(SNAPSHOT);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(cache_err(&path, e)),
    };
    let state = PolicyState::from_json(&bytes).map_err(|e| cache_err(&path, e))?;
    drop(bytes);
    let meta_path = dir.join(SNAPSHOT_META);
    let at = std::fs::read(&meta_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<SnapshotMeta>(&b).ok())
        .map(|m| UNIX_EPOCH + Duration::from_millis(m.synced_at_ms))
        .or_else(|| std::fs::metadata(&path).and_then(|m| m.modified()).ok())
        .unwrap_or(UNIX_EPOCH);
    // A clock that went backwards must not make old state look newer than now.
    Ok(Some((state, at.min(SystemTime::now()))))
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
