//! `state.json` -> [`PolicyState`]: streaming parse, validation, interning.
//!
//! Each array element is deserialised into a short-lived borrowed record (strings point
//! into the input when they have no escapes), validated, compacted and dropped before the
//! next one is read, so no intermediate `Vec` of a million raw records ever exists. Every
//! error names the record: `devices[3] (azureADDeviceId 1234): unknown complianceState
//! "bogus"`. Unknown fields are refused, as a typo such as `revokeSessionAfter` must not
//! silently switch a check off.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::config::Platform;

use super::fasthash::FastMap;
use super::state::{
    AppProtectionPolicy, AppRegistration, ComplianceState, Device, NO_DEVICE, PolicyState,
    RemediationState, User, next_generation,
};
use super::values::{Version, fold, parse_rfc3339};
use crate::config::duration::parse_iso8601;

/// Intune's default `periodOfflineBeforeAccessCheck` when a policy omits it.
pub const DEFAULT_OFFLINE_PERIOD_SECS: i64 = 12 * 3600;

/// Parse and validate a state document.
impl PolicyState {
    /// Parse and validate `state.json` bytes. See [`load`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        load(bytes)
    }
}

pub fn load(bytes: &[u8]) -> Result<PolicyState, String> {
    let mut b = Builder::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Root(&mut b)
        .deserialize(&mut de)
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    b.finish()
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawUser<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    pub account_enabled: bool,
    pub licensed: bool,
    #[serde(default, borrow)]
    pub groups: Vec<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub revoke_sessions_after: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawDevice<'a> {
    #[serde(borrow, rename = "azureADDeviceId")]
    pub device_id: Cow<'a, str>,
    #[serde(borrow)]
    pub compliance_state: Cow<'a, str>,
    #[serde(default, borrow)]
    pub operating_system: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub os_version: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub noncompliant_since: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub remediation: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawAppPolicy<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(default, borrow)]
    pub display_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub platform: Cow<'a, str>,
    #[serde(default, borrow)]
    pub apps: Vec<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub include_groups: Vec<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub exclude_groups: Vec<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub period_offline_before_access_check: Option<Cow<'a, str>>,
    #[serde(default)]
    pub pin_required: bool,
    #[serde(default, borrow)]
    pub minimum_required_os_version: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub minimum_required_app_version: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRegistration<'a> {
    #[serde(borrow)]
    pub user_id: Cow<'a, str>,
    #[serde(borrow)]
    pub app_id: Cow<'a, str>,
    #[serde(default, borrow, rename = "azureADDeviceId")]
    pub device_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub platform: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub application_version: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub platform_version: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub flagged_reasons: Vec<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub last_sync_date_time: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub compliance_state: Cow<'a, str>,
    #[serde(default, borrow)]
    pub noncompliant_since: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub remediation: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum Field {
    Users,
    Devices,
    AppProtectionPolicies,
    AppRegistrations,
}

/// A registration whose user was not (yet) in `users` when it was read; checked at the end.
struct PendingUserRef {
    index: usize,
    user: u32,
    label: String,
}

#[derive(Default)]
struct Builder {
    s: PolicyState,
    pending: Vec<PendingUserRef>,
}

fn intern(map: &mut FastMap<Box<str>, u32>, id: &str) -> u32 {
    let id = fold(id);
    if let Some(&i) = map.get(id.as_ref()) {
        return i;
    }
    let i = map.len() as u32;
    map.insert(id.into_owned().into_boxed_str(), i);
    i
}

fn time_field(field: &str, v: &Option<Cow<'_, str>>) -> Result<Option<i64>, String> {
    match v.as_deref() {
        None => Ok(None),
        Some(s) => parse_rfc3339(s)
            .map(Some)
            .ok_or_else(|| format!("{field} {s:?} is not an RFC 3339 timestamp")),
    }
}

fn remediation(v: &Option<Cow<'_, str>>) -> Result<RemediationState, String> {
    match v.as_deref() {
        None => Ok(RemediationState::Pending),
        Some(s) => RemediationState::parse(s).ok_or_else(|| format!("unknown remediation {s:?}")),
    }
}

fn compliance(s: &str) -> Result<ComplianceState, String> {
    ComplianceState::parse(s).ok_or_else(|| format!("unknown complianceState {s:?}"))
}

fn platform(field: &str, s: &str) -> Result<Platform, String> {
    Platform::parse(s).ok_or_else(|| format!("unknown {field} {s:?}"))
}

fn min_version(field: &str, v: &Option<Cow<'_, str>>) -> Result<Option<Version>, String> {
    match v.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => Version::parse(s)
            .map(Some)
            .ok_or_else(|| format!("{field} {s:?} is not a dotted numeric version")),
    }
}

fn nonempty(field: &str, s: &str) -> Result<(), String> {
    if s.is_empty() {
        Err(format!("{field} is empty"))
    } else {
        Ok(())
    }
}

impl Builder {
    fn add_user(&mut self, i: usize, r: &RawUser<'_>) -> Result<(), String> {
        let at = |m: String| format!("users[{i}] (id {}): {m}", r.id);
        nonempty("id", &r.id).map_err(at)?;
        let idx = intern(&mut self.s.user_ids, &r.id);
        grow(&mut self.s.users, idx);
        if self.s.users[idx as usize].is_some() {
            return Err(at("duplicate id".into()));
        }
        let mut groups: Vec<u32> = r
            .groups
            .iter()
            .map(|g| intern(&mut self.s.group_ids, g))
            .collect();
        groups.sort_unstable();
        groups.dedup();
        let revoke = time_field("revokeSessionsAfter", &r.revoke_sessions_after).map_err(at)?;
        self.s.users[idx as usize] = Some(User {
            account_enabled: r.account_enabled,
            licensed: r.licensed,
            groups: groups.into_boxed_slice(),
            revoke_sessions_after: revoke,
        });
        Ok(())
    }

    fn add_device(&mut self, i: usize, r: &RawDevice<'_>) -> Result<(), String> {
        let at = |m: String| format!("devices[{i}] (azureADDeviceId {}): {m}", r.device_id);
        nonempty("azureADDeviceId", &r.device_id).map_err(at)?;
        let compliance = compliance(&r.compliance_state).map_err(at)?;
        // An OS policies cannot name (e.g. "Windows Mobile") is kept as "no platform".
        let platform = r.operating_system.as_deref().and_then(Platform::parse);
        let device = Device {
            compliance,
            platform,
            os_version: r.os_version.as_deref().and_then(Version::parse),
            noncompliant_since: time_field("noncompliantSince", &r.noncompliant_since)
                .map_err(at)?,
            remediation: remediation(&r.remediation).map_err(at)?,
        };
        let idx = intern(&mut self.s.device_ids, &r.device_id);
        grow(&mut self.s.devices, idx);
        if self.s.devices[idx as usize].is_some() {
            return Err(at("duplicate azureADDeviceId".into()));
        }
        self.s.devices[idx as usize] = Some(device);
        Ok(())
    }

    fn add_app_policy(&mut self, i: usize, r: &RawAppPolicy<'_>) -> Result<(), String> {
        let at = |m: String| format!("appProtectionPolicies[{i}] (id {}): {m}", r.id);
        nonempty("id", &r.id).map_err(at)?;
        if self.s.app_policies.iter().any(|p| *p.id == *r.id) {
            return Err(at("duplicate id".into()));
        }
        let offline = match r.period_offline_before_access_check.as_deref() {
            None => DEFAULT_OFFLINE_PERIOD_SECS,
            Some(p) => parse_iso8601(p)
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                .map_err(|e| at(format!("periodOfflineBeforeAccessCheck: {e}")))?,
        };
        let policy = AppProtectionPolicy {
            id: r.id.as_ref().into(),
            display_name: r.display_name.as_deref().unwrap_or("").into(),
            platform: platform("platform", &r.platform).map_err(at)?,
            apps: interned(&mut self.s.app_ids, &r.apps),
            include_groups: interned(&mut self.s.group_ids, &r.include_groups),
            exclude_groups: interned(&mut self.s.group_ids, &r.exclude_groups),
            offline_period: offline,
            pin_required: r.pin_required,
            minimum_app_version: min_version(
                "minimumRequiredAppVersion",
                &r.minimum_required_app_version,
            )
            .map_err(at)?,
            minimum_os_version: min_version(
                "minimumRequiredOsVersion",
                &r.minimum_required_os_version,
            )
            .map_err(at)?,
        };
        self.s.app_policies.push(policy);
        Ok(())
    }

    fn add_registration(&mut self, i: usize, r: &RawRegistration<'_>) -> Result<(), String> {
        let dev = r.device_id.as_deref().filter(|d| !d.is_empty());
        let label = format!(
            "userId {}, appId {}, azureADDeviceId {}",
            r.user_id,
            r.app_id,
            dev.unwrap_or("none")
        );
        let at = |m: String| format!("appRegistrations[{i}] ({label}): {m}");
        nonempty("userId", &r.user_id).map_err(at)?;
        nonempty("appId", &r.app_id).map_err(at)?;
        let mut rooted = false;
        for f in &r.flagged_reasons {
            match f.as_ref() {
                "none" => {}
                "rootedDevice" | "androidBootloaderUnlocked" | "androidFactoryRomModified" => {
                    rooted = true
                }
                other => return Err(at(format!("unknown flaggedReasons value {other:?}"))),
            }
        }
        let reg = AppRegistration {
            platform: match r.platform.as_deref() {
                Some(p) => Some(platform("platform", p).map_err(at)?),
                None => None,
            },
            app_version: r.application_version.as_deref().and_then(Version::parse),
            os_version: r.platform_version.as_deref().and_then(Version::parse),
            rooted,
            last_sync: time_field("lastSyncDateTime", &r.last_sync_date_time).map_err(at)?,
            compliance: compliance(&r.compliance_state).map_err(at)?,
            noncompliant_since: time_field("noncompliantSince", &r.noncompliant_since)
                .map_err(at)?,
            remediation: remediation(&r.remediation).map_err(at)?,
        };
        let user = intern(&mut self.s.user_ids, &r.user_id);
        grow(&mut self.s.users, user);
        let app = intern(&mut self.s.app_ids, &r.app_id);
        let device = match dev {
            Some(d) => {
                let idx = intern(&mut self.s.device_ids, d);
                grow(&mut self.s.devices, idx);
                idx
            }
            None => NO_DEVICE,
        };
        match self.s.registrations.entry((user, app, device)) {
            Entry::Occupied(_) => return Err(at("duplicate user x app x device".into())),
            Entry::Vacant(v) => {
                v.insert(reg);
            }
        }
        if self.s.users[user as usize].is_none() {
            self.pending.push(PendingUserRef {
                index: i,
                user,
                label,
            });
        }
        Ok(())
    }

    fn finish(mut self) -> Result<PolicyState, String> {
        if let Some(p) = self.pending.iter().find(|p| {
            self.s
                .users
                .get(p.user as usize)
                .is_none_or(|u| u.is_none())
        }) {
            return Err(format!(
                "appRegistrations[{}] ({}): userId is not in users",
                p.index, p.label
            ));
        }
        let mut by_app: Vec<Vec<u32>> = vec![Vec::new(); self.s.app_ids.len()];
        for (pi, p) in self.s.app_policies.iter().enumerate() {
            for &a in p.apps.iter() {
                if let Some(v) = by_app.get_mut(a as usize) {
                    v.push(pi as u32);
                }
            }
        }
        self.s.app_policies_by_app = by_app.into_iter().map(Vec::into_boxed_slice).collect();
        self.s.users.shrink_to_fit();
        self.s.devices.shrink_to_fit();
        self.s.generation = next_generation();
        Ok(self.s)
    }
}

/// Builds a [`PolicyState`] record by record with the same checks as [`load`], for
/// sources that already hold typed records (the Microsoft Graph connector): no JSON
/// document of the whole state is ever made. Errors name the record as `load` does.
#[derive(Default)]
pub struct StateBuilder {
    b: Builder,
    n: [usize; 4],
}

impl StateBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn user(&mut self, r: &RawUser<'_>) -> Result<(), String> {
        self.n[0] += 1;
        self.b.add_user(self.n[0] - 1, r)
    }

    pub fn device(&mut self, r: &RawDevice<'_>) -> Result<(), String> {
        self.n[1] += 1;
        self.b.add_device(self.n[1] - 1, r)
    }

    pub fn app_policy(&mut self, r: &RawAppPolicy<'_>) -> Result<(), String> {
        self.n[2] += 1;
        self.b.add_app_policy(self.n[2] - 1, r)
    }

    pub fn registration(&mut self, r: &RawRegistration<'_>) -> Result<(), String> {
        self.n[3] += 1;
        self.b.add_registration(self.n[3] - 1, r)
    }

    pub fn finish(self) -> Result<PolicyState, String> {
        self.b.finish()
    }
}

fn grow<T>(v: &mut Vec<Option<T>>, idx: u32) {
    if v.len() <= idx as usize {
        v.resize_with(idx as usize + 1, || None);
    }
}

fn interned(map: &mut FastMap<Box<str>, u32>, ids: &[Cow<'_, str>]) -> Box<[u32]> {
    let mut v: Vec<u32> = ids.iter().map(|g| intern(map, g)).collect();
    v.sort_unstable();
    v.dedup();
    v.into_boxed_slice()
}

/// One kind of array element: how to read it and where it goes.
trait Record<'de>: Deserialize<'de> {
    const ARRAY: &'static str;
    fn add(self, b: &mut Builder, index: usize) -> Result<(), String>;
}

impl<'de: 'a, 'a> Record<'de> for RawUser<'a> {
    const ARRAY: &'static str = "users";
    fn add(self, b: &mut Builder, i: usize) -> Result<(), String> {
        b.add_user(i, &self)
    }
}

impl<'de: 'a, 'a> Record<'de> for RawDevice<'a> {
    const ARRAY: &'static str = "devices";
    fn add(self, b: &mut Builder, i: usize) -> Result<(), String> {
        b.add_device(i, &self)
    }
}

impl<'de: 'a, 'a> Record<'de> for RawAppPolicy<'a> {
    const ARRAY: &'static str = "appProtectionPolicies";
    fn add(self, b: &mut Builder, i: usize) -> Result<(), String> {
        b.add_app_policy(i, &self)
    }
}

impl<'de: 'a, 'a> Record<'de> for RawRegistration<'a> {
    const ARRAY: &'static str = "appRegistrations";
    fn add(self, b: &mut Builder, i: usize) -> Result<(), String> {
        b.add_registration(i, &self)
    }
}

struct Root<'b>(&'b mut Builder);

impl<'de> DeserializeSeed<'de> for Root<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Root<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a state object with users, devices, appProtectionPolicies, appRegistrations")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = [false; 4];
        while let Some(key) = map.next_key::<Field>()? {
            let (slot, name) = match key {
                Field::Users => (0, "users"),
                Field::Devices => (1, "devices"),
                Field::AppProtectionPolicies => (2, "appProtectionPolicies"),
                Field::AppRegistrations => (3, "appRegistrations"),
            };
            if std::mem::replace(&mut seen[slot], true) {
                return Err(de::Error::custom(format!("duplicate key {name:?}")));
            }
            match key {
                Field::Users => map.next_value_seed(List::<RawUser<'de>>(self.0, PhantomData))?,
                Field::Devices => {
                    map.next_value_seed(List::<RawDevice<'de>>(self.0, PhantomData))?
                }
                Field::AppProtectionPolicies => {
                    map.next_value_seed(List::<RawAppPolicy<'de>>(self.0, PhantomData))?
                }
                Field::AppRegistrations => {
                    map.next_value_seed(List::<RawRegistration<'de>>(self.0, PhantomData))?
                }
            }
        }
        Ok(())
    }
}

struct List<'b, R>(&'b mut Builder, PhantomData<R>);

impl<'de, R: Record<'de>> DeserializeSeed<'de> for List<'_, R> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, R: Record<'de>> Visitor<'de> for List<'_, R> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array {}", R::ARRAY)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let next = seq.next_element::<R>().map_err(|e| {
                // serde_json appends the position itself; keep it once.
                let msg = e.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
                de::Error::custom(format!("{}[{i}]: {msg}", R::ARRAY))
            })?;
            let Some(rec) = next else { return Ok(()) };
            rec.add(self.0, i).map_err(de::Error::custom)?;
            i += 1;
        }
    }
}

#[cfg(test)]
#[path = "state_load_tests.rs"]
mod tests;
