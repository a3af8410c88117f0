//! `[state] source = "graph"`: policy state read from Microsoft Graph (Entra ID users and
//! groups, Intune devices, app protection policies and app registrations), mapped onto the
//! engine's records as DESIGN.md "Policy state from Microsoft Graph" says.
//!
//! A round reads every collection to its end, maps, and only then builds and hands over
//! one new [`PolicyState`]; a round that fails anywhere hands over nothing, so the last
//! good state stays in force and its age keeps counting (the store's usual
//! `max_staleness` / `fail_open` rule). Before that, a [`PageHook`] may see each page's
//! mapped records as they are read ([`early`]): that is how critical changes reach
//! gateways without waiting for the round, and why they survive a round that fails. Users come through `users/delta` (the deltaLink
//! is kept for the next round and committed only with a good round); the Intune
//! collections have no delta and are read in full.
//!
//! The round's records are kept keyed by id ([`Mapped`]), in `state.json`'s own model, so
//! the next round (or a publisher of per-record changes) can diff them record by record.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::config::GraphConfig;
use crate::ops::metrics::Metrics;
use crate::policy::{PolicyState, RawAppPolicy, RawDevice, RawRegistration, RawUser, StateBuilder};

pub(crate) mod cache;
pub mod collections;
pub mod diff;
pub mod early;
pub mod map;
pub mod pager;
pub mod token;
pub mod wire;

pub use cache::Ledger;
use collections::{Limits, Reader};
pub use early::{Page, PageHook};
use map::{AppTable, GraphUserRec, MapStats};
pub use pager::{Pager, RetryPolicy};
pub use token::TokenProvider;

/// Why a Graph read or a round failed. Messages never hold a token or a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphError {
    /// The local credential could not be read or used.
    Credential(String),
    /// Entra or Graph refused the credential or its permissions (4xx on the token, 401
    /// twice, 403): not retried, and never an empty state.
    Refused(String),
    /// Transport, timeout, or a status given up on after retries.
    Request(String),
    /// A page or token answer that is not what Graph documents.
    Malformed(String),
    NotFound(String),
    BadRequest(String),
    /// The delta token expired (410, `syncStateNotFound`): resync in full.
    DeltaExpired(String),
    /// `cache_dir` could not be read or written.
    Cache(String),
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Credential(m) => write!(f, "graph credential: {m}"),
            Self::Refused(m) => write!(f, "graph refused the credential: {m}"),
            Self::Request(m) => write!(f, "graph request failed: {m}"),
            Self::Malformed(m) => write!(f, "graph answer malformed: {m}"),
            Self::NotFound(m) => write!(f, "graph: not found: {m}"),
            Self::BadRequest(m) => write!(f, "graph: bad request: {m}"),
            Self::DeltaExpired(m) => write!(f, "graph delta token expired: {m}"),
            Self::Cache(m) => write!(f, "graph cache: {m}"),
        }
    }
}

impl std::error::Error for GraphError {}

/// Where `accessgate whatif` finds the last synced state.
pub fn cached_snapshot_path(dir: &Path) -> PathBuf {
    dir.join(cache::SNAPSHOT)
}

/// For `accessgate check`: the credential files can be read and used.
pub fn check_credential(cfg: &GraphConfig) -> Result<(), String> {
    let client = crate::ops::outbound::https_body_client(None, "graph", Duration::from_secs(5))?;
    TokenProvider::new(cfg, client)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// One round's records, keyed by id (devices by Entra device id, registrations by
/// user|app|device), with the noncompliant-since moments filled in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapped {
    pub users: BTreeMap<String, RawUser<'static>>,
    pub devices: BTreeMap<String, RawDevice<'static>>,
    pub app_policies: BTreeMap<String, RawAppPolicy<'static>>,
    pub registrations: BTreeMap<String, RawRegistration<'static>>,
}

impl Mapped {
    /// The engine's state, record by record (no JSON document in between).
    pub fn build(&self) -> Result<PolicyState, String> {
        let mut b = StateBuilder::new();
        self.users.values().try_for_each(|r| b.user(r))?;
        self.devices.values().try_for_each(|r| b.device(r))?;
        self.app_policies
            .values()
            .try_for_each(|r| b.app_policy(r))?;
        self.registrations
            .values()
            .try_for_each(|r| b.registration(r))?;
        b.finish()
    }
}

/// Counts and timing of a completed round.
#[derive(Debug, Clone, Default)]
pub struct RoundReport {
    pub users: usize,
    pub groups: usize,
    pub devices: usize,
    pub app_policies: usize,
    pub registrations: usize,
    pub requests: u64,
    pub duration: Duration,
    pub full_users: bool,
    pub stats: MapStats,
}

/// What survives between rounds.
struct Rounds {
    users: BTreeMap<String, GraphUserRec>,
    delta: Option<String>,
    ledger: Ledger,
    last: Option<Arc<Mapped>>,
    /// Unmapped app ids already logged (bounded).
    logged_unmapped: BTreeSet<String>,
    /// The cached snapshot was offered (only before the first round).
    cache_offered: bool,
}

const MAX_LOGGED_UNMAPPED: usize = 10_000;

/// The connector: configuration, the Graph reader and what it keeps between rounds.
pub struct GraphSource {
    cfg: GraphConfig,
    cache_dir: Option<PathBuf>,
    pager: Pager,
    limits: Limits,
    table: AppTable,
    metrics: Option<Metrics>,
    rounds: tokio::sync::Mutex<Rounds>,
    origin: String,
}

impl std::fmt::Debug for GraphSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphSource")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// What a fetch produced.
pub enum Fetch {
    /// A state confirmed at `at` (a completed round, or the cached snapshot at start).
    State { state: PolicyState, at: SystemTime },
}

impl GraphSource {
    /// Read the credential and the ledger (files: call off the runtime threads).
    pub fn new(
        cfg: &GraphConfig,
        cache_dir: Option<&Path>,
        metrics: Option<Metrics>,
        retry: RetryPolicy,
    ) -> Result<Self, GraphError> {
        let client = crate::ops::outbound::https_body_client(None, "graph", Duration::from_secs(5))
            .map_err(GraphError::Request)?;
        let mut token = TokenProvider::new(cfg, client.clone())?;
        if let Some(m) = &metrics {
            token = token.with_metrics(m.clone());
        }
        let pager = Pager::new(
            client,
            Arc::new(token),
            &cfg.graph_url,
            retry,
            metrics.clone(),
        )?;
        let ledger = match cache_dir {
            Some(d) => Ledger::load(d)?,
            None => Ledger::default(),
        };
        for w in &cfg.warnings {
            tracing::warn!("{w}");
        }
        Ok(Self {
            cfg: cfg.clone(),
            cache_dir: cache_dir.map(Path::to_path_buf),
            pager,
            limits: Limits::default(),
            table: AppTable::new(&cfg.apps),
            metrics,
            rounds: tokio::sync::Mutex::new(Rounds {
                users: BTreeMap::new(),
                delta: None,
                ledger,
                last: None,
                logged_unmapped: BTreeSet::new(),
                cache_offered: false,
            }),
            origin: format!("graph {} (tenant {})", cfg.graph_url, cfg.tenant_id),
        })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The last good round's records (for diffs), if any.
    pub async fn last(&self) -> Option<Arc<Mapped>> {
        self.rounds.lock().await.last.clone()
    }

    /// Before anything is loaded, the cached snapshot (if any) at its true age; otherwise
    /// a full round.
    pub async fn fetch(&self, loaded: bool) -> Result<Fetch, GraphError> {
        self.fetch_with(loaded, None).await
    }

    /// [`GraphSource::fetch`], with `hook` seeing each page of the round as it is read
    /// (see [`early`]).
    pub async fn fetch_with(
        &self,
        loaded: bool,
        hook: Option<&dyn PageHook>,
    ) -> Result<Fetch, GraphError> {
        let mut r = self.rounds.lock().await;
        if !loaded && !r.cache_offered {
            r.cache_offered = true;
            if let Some(dir) = self.cache_dir.clone() {
                let cached = tokio::task::spawn_blocking(move || cache::load_snapshot(&dir))
                    .await
                    .map_err(|e| GraphError::Cache(format!("snapshot loader stopped: {e}")))?;
                match cached {
                    Ok(Some((state, at))) => {
                        tracing::info!(counts = %state.counts(), age_s = SystemTime::now().duration_since(at).unwrap_or_default().as_secs(), "serving the cached graph snapshot until the first sync");
                        return Ok(Fetch::State { state, at });
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "cached graph snapshot unusable; waiting for a sync")
                    }
                }
            }
        }
        let (state, at, _report) = self.round(&mut r, hook).await?;
        Ok(Fetch::State { state, at })
    }

    /// Whether the next [`GraphSource::fetch`] should come right away (a cached snapshot
    /// is being served, and a sync is due).
    pub async fn wants_sync_now(&self) -> bool {
        self.rounds.lock().await.last.is_none()
    }

    async fn round(
        &self,
        r: &mut Rounds,
        hook: Option<&dyn PageHook>,
    ) -> Result<(PolicyState, SystemTime, RoundReport), GraphError> {
        let started = SystemTime::now();
        // The ledger's "first seen failing" moment for this round: its start, so that a
        // record handed over early and the same record at the round's end are equal.
        let now = crate::clock::unix_secs(started);
        let t0 = Instant::now();
        let requests = pager::Counter::default();
        let reader = Reader {
            pager: &self.pager,
            limits: &self.limits,
            requests: &requests,
            base: format!("{}/v1.0", self.cfg.graph_url),
            metrics: self.metrics.as_ref(),
        };
        let mut stats = MapStats::default();
        let full_users = r.delta.is_none();
        let mut users_hook = hook.map(|h| {
            move |page: Vec<(String, GraphUserRec)>| {
                h.page(Page::Users(
                    page.into_iter().map(|(id, u)| early_user(id, u)).collect(),
                ))
            }
        });
        let (users, delta) = reader
            .users(
                &r.users,
                r.delta.as_deref(),
                &self.cfg.licensed_service_plans,
                users_hook
                    .as_mut()
                    .map(|f| f as &mut (dyn FnMut(Vec<(String, GraphUserRec)>) + Send)),
            )
            .await?;
        let app_policies = reader.app_policies(&self.table, &mut stats).await?;
        let mut group_ids = self.cfg.groups.clone();
        for p in app_policies.values() {
            for g in p.include_groups.iter().chain(&p.exclude_groups) {
                if !group_ids.iter().any(|x| x == g.as_ref()) {
                    group_ids.push(g.to_string());
                }
            }
        }
        let (groups, missing) = reader.groups(&group_ids).await?;
        let ledger = &r.ledger;
        let mut devices_hook = hook.map(|h| {
            move |mut page: Vec<RawDevice<'static>>| {
                for d in &mut page {
                    d.noncompliant_since = failing_since(
                        ledger,
                        map::device_failing(d),
                        &device_key(&d.device_id),
                        now,
                    );
                }
                h.page(Page::Devices(page))
            }
        });
        let devices = reader
            .devices(
                &mut stats,
                devices_hook
                    .as_mut()
                    .map(|f| f as &mut (dyn FnMut(Vec<RawDevice<'static>>) + Send)),
            )
            .await?;
        let (users_ref, policies_ref) = (&users, &app_policies);
        let mut regs_hook = hook.map(|h| {
            move |page: Vec<(String, RawRegistration<'static>)>| {
                let mut page: BTreeMap<String, RawRegistration<'static>> = page
                    .into_iter()
                    .filter(|(_, reg)| users_ref.contains_key(reg.user_id.as_ref()))
                    .collect();
                map::derive_compliance(&mut page, policies_ref);
                h.page(Page::Registrations(
                    page.into_iter()
                        .map(|(k, mut reg)| {
                            reg.noncompliant_since = failing_since(
                                ledger,
                                map::registration_failing(&reg),
                                &registration_ledger_key(&k),
                                now,
                            );
                            reg
                        })
                        .collect(),
                ))
            }
        });
        let registrations = reader
            .registrations(
                &self.table,
                &mut stats,
                regs_hook
                    .as_mut()
                    .map(|f| f as &mut (dyn FnMut(Vec<(String, RawRegistration<'static>)>) + Send)),
            )
            .await?;
        for g in &missing {
            tracing::warn!(group = %g, "group named by a policy or app protection assignment does not exist in the directory; it has no members");
        }

        let mut mapped = Mapped {
            users: map::state_users(&users, &groups),
            devices,
            app_policies,
            registrations,
        };
        let before = mapped.registrations.len();
        mapped
            .registrations
            .retain(|_, reg| mapped.users.contains_key(reg.user_id.as_ref()));
        stats.registrations_without_user += before - mapped.registrations.len();
        map::derive_compliance(&mut mapped.registrations, &mapped.app_policies);
        let ledger_changed = apply_ledger(&mut r.ledger, &mut mapped, now);

        let mapped = Arc::new(mapped);
        let m2 = mapped.clone();
        let state = tokio::task::spawn_blocking(move || m2.build())
            .await
            .map_err(|e| GraphError::Malformed(format!("state builder stopped: {e}")))?
            .map_err(|e| GraphError::Malformed(format!("mapped state refused: {e}")))?;

        if let Some(dir) = self.cache_dir.clone() {
            let (m3, last, ledger) = (mapped.clone(), r.last.clone(), r.ledger.clone());
            let saved = tokio::task::spawn_blocking(move || {
                if ledger_changed {
                    ledger.save()?;
                }
                // Hundreds of MB for a large tenant: rewritten only when a record changed;
                // otherwise only its sync time moves on.
                if last.as_deref() == Some(&*m3) {
                    cache::save_snapshot_time(&dir, started)
                } else {
                    cache::save_snapshot(&dir, &m3, started)
                }
            })
            .await
            .map_err(|e| GraphError::Cache(format!("cache writer stopped: {e}")))?;
            // The ledger must survive a restart: a round that cannot keep it is not good.
            saved?;
        }

        let report = RoundReport {
            users: mapped.users.len(),
            groups: group_ids.len(),
            devices: mapped.devices.len(),
            app_policies: mapped.app_policies.len(),
            registrations: mapped.registrations.len(),
            requests: requests.get(),
            duration: t0.elapsed(),
            full_users,
            stats,
        };
        self.log_round(r, &report);
        if let Some(m) = &self.metrics {
            for (kind, n) in [
                ("users", report.users),
                ("groups", report.groups),
                ("devices", report.devices),
                ("app_protection_policies", report.app_policies),
                ("app_registrations", report.registrations),
            ] {
                m.state_records
                    .with_label_values(&[kind])
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
        r.users = users;
        r.delta = Some(delta);
        r.last = Some(mapped);
        Ok((state, started, report))
    }

    fn log_round(&self, r: &mut Rounds, rep: &RoundReport) {
        for (app, n) in &rep.stats.unmapped_apps {
            if r.logged_unmapped.len() < MAX_LOGGED_UNMAPPED
                && r.logged_unmapped.insert(app.clone())
            {
                tracing::warn!(app = %app, records = n, "Intune app has no [[graph.apps]] entry; its policies and registrations are left out");
            }
        }
        let s = &rep.stats;
        tracing::info!(
            users = rep.users,
            groups = rep.groups,
            devices = rep.devices,
            app_protection_policies = rep.app_policies,
            app_registrations = rep.registrations,
            requests = rep.requests,
            duration_ms = u64::try_from(rep.duration.as_millis()).unwrap_or(u64::MAX),
            users_full = rep.full_users,
            unmapped_apps = s.unmapped_apps.len(),
            devices_without_entra_id = s.devices_without_entra_id,
            registrations_without_user = s.registrations_without_user,
            registrations_merged = s.registrations_merged,
            strict_readings = s.strict_readings,
            "graph sync round complete"
        );
    }
}

/// Ledger keys: one namespace per record kind.
pub fn device_key(id: &str) -> String {
    format!("device/{id}")
}

pub fn registration_ledger_key(key: &str) -> String {
    format!("registration/{key}")
}

/// A user as the round knows it before groups are read (see [`early`]).
fn early_user(id: String, u: GraphUserRec) -> RawUser<'static> {
    RawUser {
        id: std::borrow::Cow::Owned(id),
        account_enabled: u.account_enabled,
        licensed: u.licensed,
        groups: Vec::new(),
        revoke_sessions_after: u.revoke_sessions_after.map(std::borrow::Cow::Owned),
    }
}

/// The noncompliant-since moment [`apply_ledger`] will give a record at the round's end.
fn failing_since(
    ledger: &Ledger,
    failing: bool,
    key: &str,
    now: i64,
) -> Option<std::borrow::Cow<'static, str>> {
    failing.then(|| std::borrow::Cow::Owned(map::rfc3339(ledger.since(key).unwrap_or(now))))
}

/// Record who fails now in the ledger and give each failing record its first-seen moment.
fn apply_ledger(ledger: &mut Ledger, m: &mut Mapped, now: i64) -> bool {
    let mut failing = Vec::new();
    for (id, d) in &m.devices {
        if map::device_failing(d) {
            failing.push(device_key(id));
        }
    }
    for (k, reg) in &m.registrations {
        if map::registration_failing(reg) {
            failing.push(registration_ledger_key(k));
        }
    }
    let changed = ledger.update(&failing, now);
    for (id, d) in m.devices.iter_mut() {
        d.noncompliant_since = ledger
            .since(&device_key(id))
            .map(|t| std::borrow::Cow::Owned(map::rfc3339(t)));
    }
    for (k, reg) in m.registrations.iter_mut() {
        reg.noncompliant_since = ledger
            .since(&registration_ledger_key(k))
            .map(|t| std::borrow::Cow::Owned(map::rfc3339(t)));
    }
    changed
}

#[cfg(test)]
pub(crate) mod test_server;

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
