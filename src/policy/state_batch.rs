//! A change batch: the records that changed since a state version, in `state.json`'s own
//! record shapes, plus the keys of records that are gone.
//!
//! Why the file's shapes: the publisher (`accessgate sync`) diffs rounds record by record
//! and ships the changed records as they are, so a batch is validated by exactly the rules
//! that validate a full load (same error for the same bad record), and another tool can
//! write batches from the documented `state.json` schema alone (docs/fleet.md).
//!
//! ```json
//! {"users": [...], "devices": [...], "appProtectionPolicies": [...], "appRegistrations": [...],
//!  "removed": {"users": ["<id>"], "devices": ["<azureADDeviceId>"],
//!              "appProtectionPolicies": ["<id>"],
//!              "appRegistrations": [{"userId": "..", "appId": "..", "azureADDeviceId": null}]}}
//! ```
//!
//! Each key appears at most once per batch (an upsert and a removal of the same record in
//! one batch is refused: the order would be ambiguous). Removing a record that is not there
//! is accepted, so replaying a change a snapshot already contains is harmless.

use std::borrow::Cow;

use serde::Deserialize;

use super::fasthash::FastSet;
use super::state::{AppProtectionPolicy, AppRegistration, Device};
use super::state_load::{
    RawAppPolicy, RawDevice, RawRegistration, RawUser, app_policy_record, device_record,
    registration_record, time_field,
};
use super::values::fold;

/// Largest batch accepted: a batch is applied in one step on the gateway, so it must stay
/// small next to a snapshot; the publisher splits larger diffs.
pub const MAX_BATCH_RECORDS: usize = 100_000;

/// A user as a batch carries it: group names are interned when the batch is applied (a
/// changed user may name a group the loaded state never saw).
#[derive(Debug, Clone)]
pub(crate) struct UserDraft {
    pub(crate) account_enabled: bool,
    pub(crate) licensed: bool,
    pub(crate) groups: Vec<Box<str>>,
    pub(crate) revoke_sessions_after: Option<i64>,
}

/// An app protection policy with its apps and groups still named.
#[derive(Debug, Clone)]
pub(crate) struct PolicyDraft {
    /// `apps`, `include_groups`, `exclude_groups` are empty here; filled at apply time.
    pub(crate) policy: AppProtectionPolicy,
    pub(crate) apps: Vec<Box<str>>,
    pub(crate) include_groups: Vec<Box<str>>,
    pub(crate) exclude_groups: Vec<Box<str>>,
}

/// user x app x device, folded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct RegKey {
    pub(crate) user: Box<str>,
    pub(crate) app: Box<str>,
    pub(crate) device: Option<Box<str>>,
}

/// A validated change batch. `None` = the record is removed.
#[derive(Debug, Clone, Default)]
pub struct ChangeBatch {
    pub(crate) users: Vec<(Box<str>, Option<UserDraft>)>,
    pub(crate) devices: Vec<(Box<str>, Option<Device>)>,
    pub(crate) app_policies: Vec<(Box<str>, Option<PolicyDraft>)>,
    pub(crate) registrations: Vec<(RegKey, Option<AppRegistration>)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawBatch<'a> {
    #[serde(default, borrow)]
    users: Vec<RawUser<'a>>,
    #[serde(default, borrow)]
    devices: Vec<RawDevice<'a>>,
    #[serde(default, borrow)]
    app_protection_policies: Vec<RawAppPolicy<'a>>,
    #[serde(default, borrow)]
    app_registrations: Vec<RawRegistration<'a>>,
    #[serde(default, borrow)]
    removed: RawRemoved<'a>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRemoved<'a> {
    #[serde(default, borrow)]
    users: Vec<Cow<'a, str>>,
    #[serde(default, borrow)]
    devices: Vec<Cow<'a, str>>,
    #[serde(default, borrow)]
    app_protection_policies: Vec<Cow<'a, str>>,
    #[serde(default, borrow)]
    app_registrations: Vec<RawRegKey<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRegKey<'a> {
    #[serde(borrow)]
    user_id: Cow<'a, str>,
    #[serde(borrow)]
    app_id: Cow<'a, str>,
    #[serde(default, borrow, rename = "azureADDeviceId")]
    device_id: Option<Cow<'a, str>>,
}

fn folded(s: &str) -> Box<str> {
    fold(s).into_owned().into_boxed_str()
}

fn reg_key(user: &str, app: &str, device: Option<&str>) -> RegKey {
    RegKey {
        user: folded(user),
        app: folded(app),
        device: device.filter(|d| !d.is_empty()).map(folded),
    }
}

fn once<K: std::hash::Hash + Eq + Clone>(
    seen: &mut FastSet<K>,
    key: &K,
    what: impl FnOnce() -> String,
) -> Result<(), String> {
    if seen.insert(key.clone()) {
        Ok(())
    } else {
        Err(format!("{}: appears twice in one batch", what()))
    }
}

fn nonempty(what: &str, s: &str) -> Result<(), String> {
    if s.is_empty() {
        Err(format!("{what} is empty"))
    } else {
        Ok(())
    }
}

impl ChangeBatch {
    /// Parse and validate a batch document (see the module docs).
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let raw: RawBatch<'_> = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let r = &raw.removed;
        let total = raw.users.len()
            + raw.devices.len()
            + raw.app_protection_policies.len()
            + raw.app_registrations.len()
            + r.users.len()
            + r.devices.len()
            + r.app_protection_policies.len()
            + r.app_registrations.len();
        if total > MAX_BATCH_RECORDS {
            return Err(format!(
                "{total} records in one batch (at most {MAX_BATCH_RECORDS})"
            ));
        }
        let mut b = ChangeBatch::default();
        let mut seen: FastSet<Box<str>> = FastSet::default();
        for (i, u) in raw.users.iter().enumerate() {
            let at = |m: String| format!("users[{i}] (id {}): {m}", u.id);
            nonempty("id", &u.id).map_err(at)?;
            let id = folded(&u.id);
            once(&mut seen, &id, || format!("users[{i}] (id {})", u.id))?;
            let revoke = time_field("revokeSessionsAfter", &u.revoke_sessions_after).map_err(at)?;
            b.users.push((
                id,
                Some(UserDraft {
                    account_enabled: u.account_enabled,
                    licensed: u.licensed,
                    groups: u.groups.iter().map(|g| folded(g)).collect(),
                    revoke_sessions_after: revoke,
                }),
            ));
        }
        for (i, id) in r.users.iter().enumerate() {
            let id = folded(id);
            once(&mut seen, &id, || format!("removed.users[{i}] (id {id})"))?;
            b.users.push((id, None));
        }
        seen.clear();
        for (i, d) in raw.devices.iter().enumerate() {
            let at = |m: String| format!("devices[{i}] (azureADDeviceId {}): {m}", d.device_id);
            nonempty("azureADDeviceId", &d.device_id).map_err(at)?;
            let id = folded(&d.device_id);
            once(&mut seen, &id, || {
                format!("devices[{i}] (azureADDeviceId {})", d.device_id)
            })?;
            b.devices.push((id, Some(device_record(d).map_err(at)?)));
        }
        for (i, id) in r.devices.iter().enumerate() {
            let id = folded(id);
            once(&mut seen, &id, || {
                format!("removed.devices[{i}] (azureADDeviceId {id})")
            })?;
            b.devices.push((id, None));
        }
        seen.clear();
        for (i, p) in raw.app_protection_policies.iter().enumerate() {
            let at = |m: String| format!("appProtectionPolicies[{i}] (id {}): {m}", p.id);
            nonempty("id", &p.id).map_err(at)?;
            // Policy ids are compared exactly, as a full load does.
            let id: Box<str> = p.id.as_ref().into();
            once(&mut seen, &id, || {
                format!("appProtectionPolicies[{i}] (id {})", p.id)
            })?;
            let policy =
                app_policy_record(p, Box::default(), Box::default(), Box::default()).map_err(at)?;
            let names = |v: &[Cow<'_, str>]| v.iter().map(|s| folded(s)).collect();
            b.app_policies.push((
                id,
                Some(PolicyDraft {
                    policy,
                    apps: names(&p.apps),
                    include_groups: names(&p.include_groups),
                    exclude_groups: names(&p.exclude_groups),
                }),
            ));
        }
        for (i, id) in r.app_protection_policies.iter().enumerate() {
            let id: Box<str> = id.as_ref().into();
            once(&mut seen, &id, || {
                format!("removed.appProtectionPolicies[{i}] (id {id})")
            })?;
            b.app_policies.push((id, None));
        }
        let mut seen: FastSet<RegKey> = FastSet::default();
        for (i, g) in raw.app_registrations.iter().enumerate() {
            let dev = g.device_id.as_deref().filter(|d| !d.is_empty());
            let label = format!(
                "appRegistrations[{i}] (userId {}, appId {}, azureADDeviceId {})",
                g.user_id,
                g.app_id,
                dev.unwrap_or("none")
            );
            let at = |m: String| format!("{label}: {m}");
            nonempty("userId", &g.user_id).map_err(at)?;
            nonempty("appId", &g.app_id).map_err(at)?;
            let key = reg_key(&g.user_id, &g.app_id, dev);
            once(&mut seen, &key, || label.clone())?;
            b.registrations
                .push((key, Some(registration_record(g).map_err(at)?)));
        }
        for (i, k) in r.app_registrations.iter().enumerate() {
            let key = reg_key(&k.user_id, &k.app_id, k.device_id.as_deref());
            once(&mut seen, &key, || {
                format!(
                    "removed.appRegistrations[{i}] (userId {}, appId {})",
                    k.user_id, k.app_id
                )
            })?;
            b.registrations.push((key, None));
        }
        Ok(b)
    }

    /// Records this batch upserts or removes.
    pub fn len(&self) -> usize {
        self.users.len() + self.devices.len() + self.app_policies.len() + self.registrations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
