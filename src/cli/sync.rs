//! `accessgate sync --config FILE`: the state connector without the proxy. Each good
//! round of its `[state]` source (Graph, a file or a URL) is published to `[publish]`: a `state.json` replaced
//! atomically, or Redis for a fleet of gateways (docs/fleet.md).
//!
//! With Redis, several `sync` processes may run: a lease decides which one publishes; the
//! others keep reading their source so that, taking over, they publish at once. A new
//! holder starts with a full snapshot ("rebase": it cannot know what its predecessor
//! streamed); then each round is diffed record by record against the last published one
//! and only the changed records go out, those that take access away first. With Graph,
//! those are not held until the round ends: each page is compared with the state as
//! published as it is read, and what takes access away goes out at once
//! (`state::publish::early`); the round's diff then starts from the state as published,
//! early batches included. A round that fails publishes nothing more (followers' state
//! ages, the usual staleness rule applies); its early batches stand (they are true in Graph).

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::clock::unix_ms;
use crate::config::{Config, PublishTarget, RedisEndpoint, StateSource};
use crate::policy::{PolicyState, RawAppPolicy, RawDevice, RawRegistration, RawUser};
use crate::state::graph::early::QueueHook;
use crate::state::graph::{GraphSource, Mapped, Page, PageHook, RetryPolicy};
use crate::state::publish::diff::{Early, Records, diff_with};
use crate::state::publish::early::publish_page;
use crate::state::publish::{
    LeaseState, PublishError, RedisPublisher, random_id, release_lease, run_lease,
};
use crate::state::source::{Fetched, Source};

/// Batches after which the publisher writes a fresh snapshot (well under the stream's
/// retention, so a new follower never needs an entry that was trimmed).
pub const SNAPSHOT_EVERY_BATCHES: usize = 500;
/// ... or this long after the last snapshot, when anything changed since.
pub const SNAPSHOT_EVERY: Duration = Duration::from_secs(600);
/// Pages waiting for the early publisher; when it falls behind (Redis slow) further pages
/// wait for the end of their round instead of piling up.
const EARLY_QUEUE_PAGES: usize = 64;

/// Run until `stop` completes. Errors only when it cannot start at all.
pub async fn run(config: &Config, stop: impl Future<Output = ()>) -> Result<(), String> {
    let target = config.publish.clone().ok_or(
        "[publish] is missing: accessgate sync needs to = \"file\" (with path) or to = \"redis\" (with url)",
    )?;
    let source = match &config.state.source {
        StateSource::File(p) => Source::file(p.clone()),
        StateSource::Http { url, ca } => {
            let (url, ca) = (url.clone(), ca.clone());
            tokio::task::spawn_blocking(move || Source::http(url, ca.as_deref()))
                .await
                .map_err(|e| format!("state http client: {e}"))??
        }
        StateSource::Graph(g) => {
            let (g, dir) = (g.clone(), config.state.cache_dir.clone());
            // Reads the credential and the ledger: keep it off the runtime threads.
            let built = tokio::task::spawn_blocking(move || {
                GraphSource::new(&g, dir.as_deref(), None, RetryPolicy::default())
            })
            .await
            .map_err(|e| format!("graph source: {e}"))?
            .map_err(|e| e.to_string())?;
            Source::Graph(Box::new(built))
        }
        StateSource::Redis(_) => {
            return Err(
                "[state] source = \"redis\" is what gateways follow; accessgate sync reads a file, a URL or Graph"
                    .into(),
            );
        }
    };
    let input = Input {
        src: source,
        latest: None,
        graph_round: None,
    };
    let refresh = config.state.refresh;
    match target {
        PublishTarget::File(path) => run_file(input, path, refresh, stop).await,
        PublishTarget::Redis(ep) => run_redis(input, ep, refresh, stop).await,
    }
}

struct Input {
    src: Source,
    latest: Option<Arc<Records>>,
    /// The Graph round `latest` was made from (Graph hands over built states).
    graph_round: Option<Arc<Mapped>>,
}

/// A Graph round's records as a `state.json` document (what gateways load and diff).
fn graph_doc(m: &Mapped) -> Result<Vec<u8>, String> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Doc<'a> {
        users: Vec<&'a RawUser<'static>>,
        devices: Vec<&'a RawDevice<'static>>,
        app_protection_policies: Vec<&'a RawAppPolicy<'static>>,
        app_registrations: Vec<&'a RawRegistration<'static>>,
    }
    serde_json::to_vec(&Doc {
        users: m.users.values().collect(),
        devices: m.devices.values().collect(),
        app_protection_policies: m.app_policies.values().collect(),
        app_registrations: m.registrations.values().collect(),
    })
    .map_err(|e| format!("graph records: {e}"))
}

impl Input {
    /// One round: `Ok(true)` when new records were read, `Ok(false)` when the source is
    /// unchanged; an error keeps the last good records.
    async fn round(&mut self, hook: Option<&dyn PageHook>) -> Result<bool, String> {
        match self.src.fetch_with(self.latest.is_some(), hook).await? {
            Fetched::Unchanged => Ok(false),
            Fetched::State { .. } => {
                let Source::Graph(g) = &self.src else {
                    return Err("a built state from a source that is not Graph".into());
                };
                // Before its first round the connector serves its cached snapshot (no
                // records): run the round now rather than publish a stand-in.
                let mapped = match g.last().await {
                    Some(m) => m,
                    None => match self.src.fetch_with(true, hook).await? {
                        Fetched::State { .. } => g
                            .last()
                            .await
                            .ok_or("the Graph round produced no records")?,
                        _ => return Ok(false),
                    },
                };
                if self
                    .graph_round
                    .as_ref()
                    .is_some_and(|m| Arc::ptr_eq(m, &mapped))
                {
                    return Ok(false);
                }
                let m = mapped.clone();
                let records = tokio::task::spawn_blocking(move || {
                    graph_doc(&m).and_then(|doc| Records::index(bytes::Bytes::from(doc)))
                })
                .await
                .map_err(|e| format!("graph records: {e}"))??;
                self.graph_round = Some(mapped);
                self.latest = Some(Arc::new(records));
                Ok(true)
            }
            Fetched::New { bytes, version } => {
                let origin = self.src.origin().to_owned();
                let indexed = tokio::task::spawn_blocking(move || {
                    // Publish only what a gateway would load.
                    let state = PolicyState::from_json(&bytes)?;
                    let counts = state.counts();
                    drop(state);
                    Records::index(bytes).map(|r| (r, counts))
                })
                .await
                .map_err(|e| format!("{origin}: validation stopped: {e}"))?
                .map_err(|e| format!("{origin}: {e}"))?;
                self.src.commit(version);
                tracing::info!(origin = %origin, counts = %indexed.1, "sync: round read");
                self.latest = Some(Arc::new(indexed.0));
                Ok(true)
            }
        }
    }
}

async fn run_file(
    mut input: Input,
    path: PathBuf,
    refresh: Duration,
    stop: impl Future<Output = ()>,
) -> Result<(), String> {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(refresh.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tick.tick() => {}
        }
        match input.round(None).await {
            Ok(true) => {
                let Some(r) = input.latest.clone() else {
                    continue;
                };
                let p = path.clone();
                let written = tokio::task::spawn_blocking(move || write_atomic(&p, &r.doc))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()));
                match written {
                    Ok(()) => tracing::info!(path = %path.display(), "sync: state published"),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "sync: cannot write the state file")
                    }
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "sync: round failed; nothing published"),
        }
    }
}

/// Replace `path` with `bytes` so that a reader sees the old file or the new one, never
/// a part: written aside in the same folder, fsynced, renamed over, folder fsynced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state.json".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    // The rename is durable once the folder is.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// What this process last published as the holder of lease `generation`.
struct Published {
    generation: u64,
    records: Arc<Records>,
    /// Records published early since `records` (a round's diff folds them in).
    early: Early,
    batches_since_snapshot: usize,
    snapshot_at: Instant,
}

async fn run_redis(
    mut input: Input,
    endpoint: RedisEndpoint,
    refresh: Duration,
    stop: impl Future<Output = ()>,
) -> Result<(), String> {
    tokio::pin!(stop);
    let token = random_id();
    let ep = endpoint.clone();
    let mut publisher = tokio::task::spawn_blocking(move || RedisPublisher::new(&ep, token))
        .await
        .map_err(|e| format!("redis client: {e}"))??;
    let lease = Arc::new(LeaseState::default());
    let (tx, mut changed) = tokio::sync::watch::channel(0u64);
    let lease_task = tokio::spawn(run_lease(
        publisher.client().clone(),
        publisher.keys().clone(),
        publisher.token().to_owned(),
        lease.clone(),
        tx,
    ));
    tracing::info!(redis = %endpoint.redacted_url(), prefix = %endpoint.key_prefix, "sync: publishing to Redis when holding the lease");
    let mut tick = tokio::time::interval(refresh.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut read_at: i64 = 0;
    let mut published: Option<Published> = None;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                let (tx, rx) = tokio::sync::mpsc::channel(EARLY_QUEUE_PAGES);
                // The round and the early publisher run together; the queue closes when
                // the round ends (the hook is dropped with it), so the round's own
                // publish below starts only after every early batch of the round.
                let (round, ()) = tokio::join!(
                    async {
                        let hook = QueueHook(tx);
                        input.round(Some(&hook)).await
                    },
                    publish_early(rx, &mut publisher, &lease, &mut published, read_at),
                );
                match round {
                    Ok(_) => read_at = unix_ms(SystemTime::now()),
                    Err(e) => {
                        tracing::warn!(error = %e, "sync: round failed; nothing published");
                        continue;
                    }
                }
            }
            r = changed.changed() => {
                if r.is_err() {
                    return Err("the lease task stopped".into());
                }
            }
        }
        if !lease.held() {
            published = None;
            continue;
        }
        let Some(latest) = input.latest.clone() else {
            continue;
        };
        match publish(&mut publisher, &lease, &mut published, latest, read_at).await {
            Ok(()) => {}
            Err(PublishError::NotLeader) => {
                tracing::warn!("sync: the lease is gone; standing by");
                lease.lost();
                published = None;
            }
            Err(PublishError::Redis(e)) => {
                tracing::warn!(error = %e, "sync: publish failed; the next one is a full snapshot");
                published = None;
            }
        }
    }
    lease_task.abort();
    if lease.held() {
        release_lease(publisher.client(), publisher.keys(), publisher.token()).await;
    }
    Ok(())
}

/// Publish each queued page's critical records as it arrives, while this process holds
/// the lease and has published a state to build on (before that, the round's end
/// publishes everything). `at_ms`: when the published state was last confirmed whole.
async fn publish_early(
    mut pages: tokio::sync::mpsc::Receiver<Page>,
    publisher: &mut RedisPublisher,
    lease: &LeaseState,
    published: &mut Option<Published>,
    at_ms: i64,
) {
    while let Some(page) = pages.recv().await {
        if !lease.held() {
            *published = None;
            continue;
        }
        let generation = lease.generation();
        let Some(p) = published.as_mut().filter(|p| p.generation == generation) else {
            continue;
        };
        match publish_page(publisher, &p.records, &mut p.early, &page, at_ms).await {
            Ok(0) => {}
            Ok(n) => {
                p.batches_since_snapshot += n.div_ceil(crate::state::publish::diff::BATCH_RECORDS);
                tracing::info!(records = n, "sync: critical changes published as read");
            }
            Err(PublishError::NotLeader) => {
                tracing::warn!("sync: the lease is gone; standing by");
                lease.lost();
                *published = None;
            }
            Err(PublishError::Redis(e)) => {
                tracing::warn!(error = %e, "sync: early publish failed; the round's end publishes a full snapshot");
                *published = None;
            }
        }
    }
}

async fn publish(
    publisher: &mut RedisPublisher,
    lease: &LeaseState,
    published: &mut Option<Published>,
    latest: Arc<Records>,
    read_at: i64,
) -> Result<(), PublishError> {
    let generation = lease.generation();
    let Some(p) = published.as_mut().filter(|p| p.generation == generation) else {
        let version = publisher
            .publish_snapshot(&latest.doc, true, read_at)
            .await?;
        tracing::info!(%version, records = latest.len(), "sync: full snapshot published (rebase)");
        *published = Some(Published {
            generation,
            records: latest,
            early: Early::default(),
            batches_since_snapshot: 0,
            snapshot_at: Instant::now(),
        });
        return Ok(());
    };
    // The same round again (nothing new was read): early records are newer than it, so
    // diffing it against them would undo them. Only confirm.
    if Arc::ptr_eq(&p.records, &latest) {
        return publisher.confirm(read_at).await;
    }
    let (old, early, new) = (
        p.records.clone(),
        std::mem::take(&mut p.early),
        latest.clone(),
    );
    let batches = tokio::task::spawn_blocking(move || diff_with(&old, &early, &new))
        .await
        .map_err(|e| PublishError::Redis(format!("diff stopped: {e}")))?;
    let n = batches.len();
    for b in &batches {
        publisher.publish_batch(b, read_at).await?;
    }
    p.records = latest;
    p.batches_since_snapshot += n;
    tracing::info!(batches = n, "sync: changes published");
    if n > 0
        && (p.batches_since_snapshot >= SNAPSHOT_EVERY_BATCHES
            || p.snapshot_at.elapsed() >= SNAPSHOT_EVERY)
    {
        publisher
            .publish_snapshot(&p.records.doc, false, read_at)
            .await?;
        p.batches_since_snapshot = 0;
        p.snapshot_at = Instant::now();
    } else if n == 0 {
        publisher.confirm(read_at).await?;
    }
    Ok(())
}
