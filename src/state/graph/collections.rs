//! The collections DESIGN.md names, read in full each round (users through delta), each
//! into the records of [`super::map`]. A read that fails returns an error and whatever it
//! had collected is dropped with it.
//!
//! Groups: `groups/{id}/transitiveMembers` per group that matters (the few that policies
//! and app protection assignments name), not `groups/delta` plus a local closure: Graph
//! computes nesting itself, a round costs (members / 999) pages per group, and there are no
//! sub-groups to discover, page merges or `@removed` members to get wrong. The price is
//! a full re-read of those groups every round, which their size keeps small.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use super::map::{self, AppPlatform, AppTable, GraphUserRec, MapStats};
use super::pager::{Collection, Counter, End, Limiter, Pager};
use super::{GraphError, wire};

/// Sees each page's records right after the page is mapped (for early publishing; see
/// [`super::early`]). `None`: nothing is copied.
pub type OnPage<'h, T> = Option<&'h mut (dyn FnMut(Vec<T>) + Send)>;
use crate::ops::metrics::Metrics;
use crate::policy::{RawAppPolicy, RawDevice, RawRegistration};

pub const USERS_SELECT: &str = "id,accountEnabled,assignedPlans,signInSessionsValidFromDateTime";
pub const DEVICES_SELECT: &str =
    "id,azureADDeviceId,userId,complianceState,operatingSystem,osVersion,lastSyncDateTime";
pub const REGISTRATIONS_SELECT: &str =
    "id,userId,appIdentifier,applicationVersion,platformVersion,flaggedReasons,lastSyncDateTime";

/// Pacing per Graph throttling family (research/graph.md section 7), under the per-app
/// per-tenant limits with some room for other callers of the same app.
pub struct Limits {
    /// Identity and access (users, groups): resource units, far above this.
    pub directory: Limiter,
    /// Intune devices: 2000 requests / 20 s per app per tenant.
    pub devices: Limiter,
    /// Intune managed applications: 1000 requests / 20 s per app per tenant.
    pub apps: Limiter,
}

impl Default for Limits {
    fn default() -> Self {
        let per = std::time::Duration::from_secs(20);
        Self {
            directory: Limiter::new(2000, per),
            devices: Limiter::new(1800, per),
            apps: Limiter::new(900, per),
        }
    }
}

/// Everything a read needs.
pub struct Reader<'a> {
    pub pager: &'a Pager,
    pub limits: &'a Limits,
    pub requests: &'a Counter,
    /// `{graph_url}/v1.0`.
    pub base: String,
    pub metrics: Option<&'a Metrics>,
}

impl Reader<'_> {
    fn collection<'b>(&'b self, label: &'static str, limiter: &'b Limiter) -> Collection<'b> {
        Collection {
            label,
            limiter,
            requests: self.requests,
        }
    }

    fn timed(&self, label: &str, since: Instant) {
        if let Some(m) = self.metrics {
            m.graph_sync_duration_seconds
                .with_label_values(&[label])
                .observe(since.elapsed().as_secs_f64());
        }
    }

    /// `users/delta`: from `delta` (the last round's deltaLink) into a copy of `users`,
    /// or from scratch. Returns the users and the next deltaLink. An expired or refused
    /// delta token gives a full resync.
    pub async fn users(
        &self,
        users: &BTreeMap<String, GraphUserRec>,
        delta: Option<&str>,
        plans: &[String],
        mut on_page: OnPage<'_, (String, GraphUserRec)>,
    ) -> Result<(BTreeMap<String, GraphUserRec>, String), GraphError> {
        let t0 = Instant::now();
        if let Some(link) = delta {
            let mut working = users.clone();
            match self
                .users_from(&mut working, link, plans, &mut on_page)
                .await
            {
                Ok(next) => {
                    self.timed("users", t0);
                    return Ok((working, next));
                }
                Err(GraphError::DeltaExpired(e) | GraphError::BadRequest(e)) => {
                    tracing::info!(reason = %e, "users delta token no longer valid; full resync");
                }
                Err(e) => return Err(e),
            }
        }
        let mut working = BTreeMap::new();
        let url = format!("{}/users/delta?$select={USERS_SELECT}", self.base);
        let next = self
            .users_from(&mut working, &url, plans, &mut on_page)
            .await?;
        self.timed("users", t0);
        Ok((working, next))
    }

    async fn users_from(
        &self,
        working: &mut BTreeMap<String, GraphUserRec>,
        url: &str,
        plans: &[String],
        on_page: &mut OnPage<'_, (String, GraphUserRec)>,
    ) -> Result<String, GraphError> {
        let c = self.collection("users", &self.limits.directory);
        let end = self
            .pager
            .read(&c, url, |page: Vec<wire::GraphUser>| {
                apply_users(working, &page, plans)?;
                if let Some(f) = on_page.as_deref_mut() {
                    // A delta page may name a user twice: hand each over once.
                    let ids: BTreeSet<String> = page
                        .iter()
                        .filter(|u| u.removed.is_none())
                        .map(|u| u.id.to_ascii_lowercase())
                        .collect();
                    f(ids
                        .into_iter()
                        .filter_map(|id| working.get(&id).cloned().map(|r| (id, r)))
                        .collect());
                }
                Ok(())
            })
            .await?;
        match end {
            End::Delta(link) => Ok(link),
            End::Done => Err(GraphError::Malformed(
                "users: delta query ended without an @odata.deltaLink".into(),
            )),
        }
    }

    /// Transitive user members of each group: user id -> group ids. A group Graph does not
    /// know (404) has no members; it is named in the result so the round can say so.
    pub async fn groups(
        &self,
        ids: &[String],
    ) -> Result<(HashMap<String, Vec<String>>, Vec<String>), GraphError> {
        let t0 = Instant::now();
        let c = self.collection("groups", &self.limits.directory);
        let mut by_user: HashMap<String, Vec<String>> = HashMap::new();
        let mut missing = Vec::new();
        for g in ids {
            let url = format!(
                "{}/groups/{g}/transitiveMembers?$select=id&$top=999",
                self.base
            );
            let mut members: Vec<String> = Vec::new();
            let read = self
                .pager
                .read(&c, &url, |page: Vec<wire::DirectoryObject>| {
                    members.extend(user_members(page));
                    Ok(())
                })
                .await;
            match read {
                Ok(_) => {
                    for u in members {
                        let v = by_user.entry(u).or_default();
                        if !v.contains(g) {
                            v.push(g.clone());
                        }
                    }
                }
                Err(GraphError::NotFound(_)) => missing.push(g.clone()),
                Err(e) => return Err(e),
            }
        }
        self.timed("groups", t0);
        Ok((by_user, missing))
    }

    pub async fn devices(
        &self,
        stats: &mut MapStats,
        mut on_page: OnPage<'_, RawDevice<'static>>,
    ) -> Result<BTreeMap<String, RawDevice<'static>>, GraphError> {
        let t0 = Instant::now();
        let c = self.collection("managedDevices", &self.limits.devices);
        let url = format!(
            "{}/deviceManagement/managedDevices?$select={DEVICES_SELECT}",
            self.base
        );
        let mut out: BTreeMap<String, RawDevice<'static>> = BTreeMap::new();
        self.pager
            .read(&c, &url, |page: Vec<wire::ManagedDevice>| {
                let mut seen = BTreeSet::new();
                let want = on_page.is_some().then_some(&mut seen);
                add_devices(&mut out, &page, stats, want);
                if let Some(f) = on_page.as_deref_mut() {
                    f(seen.iter().filter_map(|k| out.get(k).cloned()).collect());
                }
                Ok(())
            })
            .await?;
        self.timed("managedDevices", t0);
        Ok(out)
    }

    /// iOS and Android app protection policies with their apps and assignments.
    pub async fn app_policies(
        &self,
        table: &AppTable,
        stats: &mut MapStats,
    ) -> Result<BTreeMap<String, RawAppPolicy<'static>>, GraphError> {
        let mut out = BTreeMap::new();
        for (label, path, platform) in [
            (
                "iosManagedAppProtections",
                "iosManagedAppProtections",
                AppPlatform::Ios,
            ),
            (
                "androidManagedAppProtections",
                "androidManagedAppProtections",
                AppPlatform::Android,
            ),
        ] {
            let t0 = Instant::now();
            let c = self.collection(label, &self.limits.apps);
            let url = format!(
                "{}/deviceAppManagement/{path}?$expand=apps,assignments",
                self.base
            );
            self.pager
                .read(&c, &url, |page: Vec<wire::AppProtection>| {
                    add_app_policies(&mut out, label, &page, platform, table, stats)
                })
                .await?;
            self.timed(label, t0);
        }
        Ok(out)
    }

    pub async fn registrations(
        &self,
        table: &AppTable,
        stats: &mut MapStats,
        mut on_page: OnPage<'_, (String, RawRegistration<'static>)>,
    ) -> Result<BTreeMap<String, RawRegistration<'static>>, GraphError> {
        let t0 = Instant::now();
        let c = self.collection("managedAppRegistrations", &self.limits.apps);
        let url = format!(
            "{}/deviceAppManagement/managedAppRegistrations?$select={REGISTRATIONS_SELECT}",
            self.base
        );
        let mut out: BTreeMap<String, RawRegistration<'static>> = BTreeMap::new();
        self.pager
            .read(&c, &url, |page: Vec<wire::AppRegistration>| {
                let mut seen = BTreeSet::new();
                let want = on_page.is_some().then_some(&mut seen);
                add_registrations(&mut out, &page, table, stats, want);
                if let Some(f) = on_page.as_deref_mut() {
                    f(seen
                        .into_iter()
                        .filter_map(|k| out.get(&k).cloned().map(|r| (k, r)))
                        .collect());
                }
                Ok(())
            })
            .await?;
        self.timed("managedAppRegistrations", t0);
        Ok(out)
    }
}

// What each collection does with one decoded page, apart from the reads so that the fuzz
// target (src/fuzzing.rs) maps pages exactly as a round does.

/// One `users/delta` page into the round's working copy (dropped if any page fails).
pub(crate) fn apply_users(
    working: &mut BTreeMap<String, GraphUserRec>,
    page: &[wire::GraphUser],
    plans: &[String],
) -> Result<(), GraphError> {
    page.iter()
        .try_for_each(|u| map::apply_user(working, u, plans))
}

/// The user members of one `transitiveMembers` page (groups, devices, contacts are left
/// out: only users sign in), lower-cased.
pub(crate) fn user_members(page: Vec<wire::DirectoryObject>) -> impl Iterator<Item = String> {
    page.into_iter()
        .filter(|o| o.odata_type.as_deref() == Some("#microsoft.graph.user"))
        .map(|o| o.id.to_ascii_lowercase())
}

/// One `managedDevices` page; two records of one Entra device merge (the failing one stands).
/// `seen` collects the ids the page touched (for the early hook).
pub(crate) fn add_devices(
    out: &mut BTreeMap<String, RawDevice<'static>>,
    page: &[wire::ManagedDevice],
    stats: &mut MapStats,
    mut seen: Option<&mut BTreeSet<String>>,
) {
    for d in page {
        if let Some((id, rec)) = map::device(d, stats) {
            if let Some(seen) = seen.as_deref_mut() {
                seen.insert(id.clone());
            }
            match out.get_mut(&id) {
                Some(into) => map::merge_device(into, rec, stats),
                None => {
                    out.insert(id, rec);
                }
            }
        }
    }
}

/// One app protection page; a policy with an empty id, or an id seen twice in a read, is
/// not Graph: the read fails (state would refuse the record anyway, failing the round later
/// and less clearly).
pub(crate) fn add_app_policies(
    out: &mut BTreeMap<String, RawAppPolicy<'static>>,
    label: &str,
    page: &[wire::AppProtection],
    platform: AppPlatform,
    table: &AppTable,
    stats: &mut MapStats,
) -> Result<(), GraphError> {
    for p in page {
        if p.id.is_empty() {
            return Err(GraphError::Malformed(format!(
                "{label}: a policy has an empty id"
            )));
        }
        let rec = map::app_policy(p, platform, table, stats);
        if out.insert(p.id.clone(), rec).is_some() {
            return Err(GraphError::Malformed(format!(
                "{label}: policy id {:?} seen twice",
                p.id
            )));
        }
    }
    Ok(())
}

/// One `managedAppRegistrations` page; registrations of one key merge (strictest).
pub(crate) fn add_registrations(
    out: &mut BTreeMap<String, RawRegistration<'static>>,
    page: &[wire::AppRegistration],
    table: &AppTable,
    stats: &mut MapStats,
    mut seen: Option<&mut BTreeSet<String>>,
) {
    for r in page {
        for (key, rec) in map::registrations(r, table, stats) {
            if let Some(seen) = seen.as_deref_mut() {
                seen.insert(key.clone());
            }
            match out.get_mut(&key) {
                Some(into) => map::merge_registration(into, rec, stats),
                None => {
                    out.insert(key, rec);
                }
            }
        }
    }
}
