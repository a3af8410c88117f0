//! Incremental application of a [`ChangeBatch`]: a new [`PolicyState`] that shares the
//! loaded bulk (`Arc<StateBase>`) with the old one and carries the changed records in a
//! small overlay that lookups consult first.
//!
//! Why an overlay and not a rebuilt state: a full load of a million devices costs seconds of
//! CPU, a batch of a hundred changes must cost milliseconds, and no request may see half of
//! a batch. Applying clones only the overlay (bounded by [`COMPACT_AFTER`]), never the base,
//! and the caller publishes the result with one atomic swap. Removals are tombstones
//! (`None`) so a removed base record stays hidden. Ids first seen in a batch (a user, a
//! device, an app, or a group a changed user names) are interned after the base's own, so
//! every index the base handed out stays valid.
//!
//! [`PolicyState::compacted`] folds the overlay into a fresh base; it copies the whole
//! state, so the store runs it off the request path once the overlay has grown past
//! [`COMPACT_AFTER`] records.

use std::sync::Arc;

use super::fasthash::FastMap;
use super::state::{
    AppProtectionPolicy, AppRegistration, Device, NO_DEVICE, PolicyState, StateBase, User,
    next_generation,
};
use super::state_batch::ChangeBatch;

/// Overlay size (records) past which the store compacts off the request path. Applying a
/// batch clones the overlay, so this bounds the per-batch cost as well as lookup misses.
pub const COMPACT_AFTER: usize = 20_000;

/// App protection policies and their by-app index, replaced as a whole (a tenant has tens).
#[derive(Debug, Clone, Default)]
pub(crate) struct AppPolicies {
    pub(crate) list: Vec<AppProtectionPolicy>,
    pub(crate) by_app: Vec<Box<[u32]>>,
}

/// Records changed since the base was loaded. `None` = removed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overlay {
    /// Ids the base never saw; their indexes continue after the base's.
    pub(crate) user_ids: FastMap<Box<str>, u32>,
    pub(crate) users: FastMap<u32, Option<User>>,
    pub(crate) group_ids: FastMap<Box<str>, u32>,
    pub(crate) device_ids: FastMap<Box<str>, u32>,
    pub(crate) devices: FastMap<u32, Option<Device>>,
    pub(crate) app_ids: FastMap<Box<str>, u32>,
    pub(crate) registrations: FastMap<(u32, u32, u32), Option<AppRegistration>>,
    /// `Some` replaces the base's policies.
    pub(crate) app_policies: Option<Arc<AppPolicies>>,
}

impl Overlay {
    pub(crate) fn records(&self) -> usize {
        self.users.len()
            + self.devices.len()
            + self.registrations.len()
            + self.app_policies.as_ref().map_or(0, |p| p.list.len())
    }
}

fn find(base: &FastMap<Box<str>, u32>, extra: &FastMap<Box<str>, u32>, id: &str) -> Option<u32> {
    base.get(id).or_else(|| extra.get(id)).copied()
}

fn intern(base: &FastMap<Box<str>, u32>, extra: &mut FastMap<Box<str>, u32>, id: &str) -> u32 {
    if let Some(i) = find(base, extra, id) {
        return i;
    }
    let i = (base.len() + extra.len()) as u32;
    extra.insert(id.into(), i);
    i
}

fn interned_all(
    base: &FastMap<Box<str>, u32>,
    extra: &mut FastMap<Box<str>, u32>,
    ids: &[Box<str>],
) -> Box<[u32]> {
    let mut v: Vec<u32> = ids.iter().map(|g| intern(base, extra, g)).collect();
    v.sort_unstable();
    v.dedup();
    v.into_boxed_slice()
}

fn by_app(list: &[AppProtectionPolicy], apps: usize) -> Vec<Box<[u32]>> {
    let mut v: Vec<Vec<u32>> = vec![Vec::new(); apps];
    for (pi, p) in list.iter().enumerate() {
        for &a in p.apps.iter() {
            if let Some(e) = v.get_mut(a as usize) {
                e.push(pi as u32);
            }
        }
    }
    v.into_iter().map(Vec::into_boxed_slice).collect()
}

impl PolicyState {
    /// A new state: this one with `batch` applied. `self` is untouched (requests still
    /// holding it finish on it); the base is shared, only the overlay is copied. An error
    /// names the record and changes nothing.
    pub fn apply(&self, batch: &ChangeBatch) -> Result<PolicyState, String> {
        let base = &self.base;
        let mut o = self.overlay.as_deref().cloned().unwrap_or_default();
        for (id, draft) in &batch.users {
            match draft {
                Some(d) => {
                    let idx = intern(&base.user_ids, &mut o.user_ids, id);
                    let groups = interned_all(&base.group_ids, &mut o.group_ids, &d.groups);
                    o.users.insert(
                        idx,
                        Some(User {
                            account_enabled: d.account_enabled,
                            licensed: d.licensed,
                            groups,
                            revoke_sessions_after: d.revoke_sessions_after,
                        }),
                    );
                }
                None => {
                    if let Some(idx) = find(&base.user_ids, &o.user_ids, id) {
                        o.users.insert(idx, None);
                    }
                }
            }
        }
        for (id, dev) in &batch.devices {
            match dev {
                Some(d) => {
                    let idx = intern(&base.device_ids, &mut o.device_ids, id);
                    o.devices.insert(idx, Some(*d));
                }
                None => {
                    if let Some(idx) = find(&base.device_ids, &o.device_ids, id) {
                        o.devices.insert(idx, None);
                    }
                }
            }
        }
        let user_present = |o: &Overlay, idx: u32| match o.users.get(&idx) {
            Some(u) => u.is_some(),
            None => base.users.get(idx as usize).is_some_and(Option::is_some),
        };
        for (key, reg) in &batch.registrations {
            match reg {
                Some(r) => {
                    let user = find(&base.user_ids, &o.user_ids, &key.user)
                        .filter(|&i| user_present(&o, i))
                        .ok_or_else(|| {
                            format!(
                                "appRegistrations (userId {}, appId {}): userId is not in users",
                                key.user, key.app
                            )
                        })?;
                    let app = intern(&base.app_ids, &mut o.app_ids, &key.app);
                    let device = match &key.device {
                        Some(d) => intern(&base.device_ids, &mut o.device_ids, d),
                        None => NO_DEVICE,
                    };
                    o.registrations.insert((user, app, device), Some(*r));
                }
                None => {
                    let user = find(&base.user_ids, &o.user_ids, &key.user);
                    let app = find(&base.app_ids, &o.app_ids, &key.app);
                    let device = match &key.device {
                        Some(d) => find(&base.device_ids, &o.device_ids, d),
                        None => Some(NO_DEVICE),
                    };
                    if let (Some(u), Some(a), Some(d)) = (user, app, device) {
                        o.registrations.insert((u, a, d), None);
                    }
                }
            }
        }
        if !batch.app_policies.is_empty() {
            let mut list = match &o.app_policies {
                Some(p) => p.list.clone(),
                None => base.app_policies.clone(),
            };
            for (id, draft) in &batch.app_policies {
                list.retain(|p| *p.id != **id);
                if let Some(d) = draft {
                    let mut p = d.policy.clone();
                    p.apps = interned_all(&base.app_ids, &mut o.app_ids, &d.apps);
                    p.include_groups =
                        interned_all(&base.group_ids, &mut o.group_ids, &d.include_groups);
                    p.exclude_groups =
                        interned_all(&base.group_ids, &mut o.group_ids, &d.exclude_groups);
                    list.push(p);
                }
            }
            let apps = base.app_ids.len() + o.app_ids.len();
            let by_app = by_app(&list, apps);
            o.app_policies = Some(Arc::new(AppPolicies { list, by_app }));
        }
        Ok(PolicyState {
            generation: next_generation(),
            base: base.clone(),
            overlay: Some(Arc::new(o)),
        })
    }

    /// Records held in the overlay (0 right after a load or a compaction).
    pub fn overlay_records(&self) -> usize {
        self.overlay.as_deref().map_or(0, Overlay::records)
    }

    /// The same state with the overlay folded into a new base. Copies the whole state:
    /// call off the request path (the store does, past [`COMPACT_AFTER`]).
    pub fn compacted(&self) -> PolicyState {
        let Some(o) = self.overlay.as_deref() else {
            return PolicyState {
                generation: next_generation(),
                base: self.base.clone(),
                overlay: None,
            };
        };
        let mut b: StateBase = (*self.base).clone();
        // Overlay indexes continue the base's, so inserting in index order keeps them.
        b.user_ids
            .extend(o.user_ids.iter().map(|(k, &v)| (k.clone(), v)));
        b.group_ids
            .extend(o.group_ids.iter().map(|(k, &v)| (k.clone(), v)));
        b.device_ids
            .extend(o.device_ids.iter().map(|(k, &v)| (k.clone(), v)));
        b.app_ids
            .extend(o.app_ids.iter().map(|(k, &v)| (k.clone(), v)));
        b.users.resize_with(b.user_ids.len(), || None);
        b.devices.resize_with(b.device_ids.len(), || None);
        for (&i, u) in &o.users {
            if let Some(slot) = b.users.get_mut(i as usize) {
                *slot = u.clone();
            }
        }
        for (&i, d) in &o.devices {
            if let Some(slot) = b.devices.get_mut(i as usize) {
                *slot = *d;
            }
        }
        for (k, r) in &o.registrations {
            match r {
                Some(r) => {
                    b.registrations.insert(*k, *r);
                }
                None => {
                    b.registrations.remove(k);
                }
            }
        }
        match &o.app_policies {
            Some(p) => {
                b.app_policies = p.list.clone();
                b.app_policies_by_app = by_app(&b.app_policies, b.app_ids.len());
            }
            None => b.app_policies_by_app = by_app(&b.app_policies, b.app_ids.len()),
        }
        PolicyState {
            generation: next_generation(),
            base: Arc::new(b),
            overlay: None,
        }
    }
}

#[cfg(test)]
#[path = "state_overlay_tests.rs"]
mod tests;
