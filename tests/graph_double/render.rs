//! JSON for one record at a time, straight into the page buffer: a page of 1000 devices is
//! written without building `serde_json::Value`s, so the double stays cheap next to the
//! connector it is measuring. `$select` decides which properties are written.

use serde_json::{Map, Value};

use super::model::{
    AppRef, Device, Group, Guid, Member, Platform, Policy, Registration, Target, User,
};

/// Which properties a request asked for (`None` = the collection's default set).
#[derive(Clone, Debug, Default)]
pub struct Select(pub Option<Vec<String>>);

impl Select {
    pub fn parse(raw: Option<&str>) -> Select {
        Select(raw.map(|s| {
            s.split(',')
                .map(|f| f.trim().to_string())
                .filter(|f| !f.is_empty())
                .collect()
        }))
    }

    /// Graph matches property names case-insensitively in `$select`.
    fn has(&self, field: &str) -> bool {
        match &self.0 {
            None => true,
            Some(list) => list.iter().any(|f| f.eq_ignore_ascii_case(field)),
        }
    }

    /// The first name in `$select` that `known` does not hold (Graph answers 400 for it).
    pub fn unknown(&self, known: &[&str]) -> Option<String> {
        self.0.as_ref().and_then(|list| {
            list.iter()
                .find(|f| !known.iter().any(|k| k.eq_ignore_ascii_case(f)))
                .cloned()
        })
    }
}

/// Properties of each collection (what `$select` may name).
pub const USER_FIELDS: &[&str] = &[
    "id",
    "displayName",
    "userPrincipalName",
    "accountEnabled",
    "assignedPlans",
    "signInSessionsValidFromDateTime",
];
/// Returned without `$select` (the three that matter are "returned only on `$select`").
const USER_DEFAULT: &[&str] = &["id", "displayName", "userPrincipalName"];
pub const GROUP_FIELDS: &[&str] = &["id", "displayName", "members"];
pub const MEMBER_FIELDS: &[&str] = &["id", "displayName", "userPrincipalName"];
pub const DEVICE_FIELDS: &[&str] = &[
    "id",
    "azureADDeviceId",
    "userId",
    "deviceName",
    "complianceState",
    "operatingSystem",
    "osVersion",
    "lastSyncDateTime",
    "jailBroken",
    "managementState",
    "complianceGracePeriodExpirationDateTime",
    "managedDeviceOwnerType",
];
pub const POLICY_FIELDS: &[&str] = &[
    "id",
    "displayName",
    "periodOfflineBeforeAccessCheck",
    "periodOnlineBeforeAccessCheck",
    "pinRequired",
    "minimumRequiredOsVersion",
    "minimumRequiredAppVersion",
    "deviceComplianceRequired",
    "isAssigned",
    "apps",
    "assignments",
];
pub const REGISTRATION_FIELDS_V1: &[&str] = &[
    "id",
    "userId",
    "appIdentifier",
    "applicationVersion",
    "platformVersion",
    "flaggedReasons",
    "lastSyncDateTime",
    "createdDateTime",
    "deviceTag",
    "deviceName",
    "deviceType",
    "managementSdkVersion",
    "version",
];
pub const REGISTRATION_FIELDS_BETA: &[&str] = &[
    "id",
    "userId",
    "appIdentifier",
    "applicationVersion",
    "platformVersion",
    "flaggedReasons",
    "lastSyncDateTime",
    "createdDateTime",
    "deviceTag",
    "deviceName",
    "deviceType",
    "managementSdkVersion",
    "version",
    "azureADDeviceId",
    "managedDeviceId",
];

/// Writes one JSON object; fields not selected are skipped, `extra` is merged last
/// (overriding a field of the same name).
pub struct Obj<'a> {
    out: &'a mut Vec<u8>,
    select: &'a Select,
    first: bool,
    extra: Option<&'a Map<String, Value>>,
}

impl<'a> Obj<'a> {
    pub fn open(
        out: &'a mut Vec<u8>,
        select: &'a Select,
        extra: Option<&'a Map<String, Value>>,
    ) -> Self {
        out.push(b'{');
        Obj {
            out,
            select,
            first: true,
            extra,
        }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_str(self.out, k);
        self.out.push(b':');
    }

    fn overridden(&self, k: &str) -> bool {
        self.extra.is_some_and(|m| m.contains_key(k))
    }

    /// An annotation such as `@odata.type`: always written.
    pub fn annotation(&mut self, k: &str, v: &str) -> &mut Self {
        if !self.overridden(k) {
            self.key(k);
            write_str(self.out, v);
        }
        self
    }

    pub fn raw(&mut self, k: &str, json: impl FnOnce(&mut Vec<u8>)) -> &mut Self {
        if self.select.has(k) && !self.overridden(k) {
            self.key(k);
            json(self.out);
        }
        self
    }

    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.raw(k, |o| write_str(o, v))
    }

    pub fn opt_str(&mut self, k: &str, v: Option<&str>) -> &mut Self {
        self.raw(k, |o| match v {
            Some(v) => write_str(o, v),
            None => o.extend_from_slice(b"null"),
        })
    }

    pub fn guid(&mut self, k: &str, v: Option<Guid>) -> &mut Self {
        self.raw(k, |o| match v {
            Some(g) => write_guid(o, g),
            None => o.extend_from_slice(b"null"),
        })
    }

    pub fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.raw(k, |o| {
            o.extend_from_slice(if v { b"true" } else { b"false" })
        })
    }

    pub fn close(&mut self) {
        if let Some(extra) = self.extra {
            for (k, v) in extra {
                self.key(k);
                // Serialising a Value into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *self.out, v);
            }
        }
        self.out.push(b'}');
    }
}

pub fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

pub fn write_guid(out: &mut Vec<u8>, g: Guid) {
    out.push(b'"');
    out.extend_from_slice(g.to_string().as_bytes());
    out.push(b'"');
}

pub fn user(out: &mut Vec<u8>, u: &User, select: &Select) {
    let default = Select(Some(USER_DEFAULT.iter().map(|s| s.to_string()).collect()));
    let select = if select.0.is_none() { &default } else { select };
    let mut o = Obj::open(out, select, u.extra.as_deref());
    o.guid("id", Some(u.id))
        .str("displayName", &u.display_name)
        .str("userPrincipalName", &u.user_principal_name)
        .bool("accountEnabled", u.account_enabled)
        .raw("assignedPlans", |o| {
            o.push(b'[');
            for (i, p) in u.assigned_plans.iter().enumerate() {
                if i > 0 {
                    o.push(b',');
                }
                let all = Select(None);
                let mut po = Obj::open(o, &all, None);
                po.str("assignedDateTime", &p.assigned_date_time)
                    .str("capabilityStatus", &p.capability_status)
                    .str("service", &p.service)
                    .guid("servicePlanId", Some(p.service_plan_id))
                    .close();
            }
            o.push(b']');
        })
        .opt_str(
            "signInSessionsValidFromDateTime",
            u.sign_in_sessions_valid_from.as_deref(),
        )
        .close();
}

/// `{"id":..,"@removed":{"reason":"changed"}}` as users/delta reports a deleted user.
pub fn removed(out: &mut Vec<u8>, odata_type: Option<&str>, id: &str, reason: &str) {
    out.push(b'{');
    if let Some(t) = odata_type {
        out.extend_from_slice(b"\"@odata.type\":");
        write_str(out, t);
        out.push(b',');
    }
    out.extend_from_slice(b"\"id\":");
    write_str(out, id);
    out.extend_from_slice(b",\"@removed\":{\"reason\":");
    write_str(out, reason);
    out.extend_from_slice(b"}}");
}

/// A member as `members`, `transitiveMembers` and `members@delta` list it.
pub fn member(out: &mut Vec<u8>, m: &Member, users: &[User], groups: &[Group], select: &Select) {
    match m {
        Member::User(id) => {
            let u = users.iter().find(|u| u.id == *id);
            let mut o = Obj::open(out, select, None);
            o.annotation("@odata.type", "#microsoft.graph.user")
                .guid("id", Some(*id));
            if let Some(u) = u {
                o.str("displayName", &u.display_name)
                    .str("userPrincipalName", &u.user_principal_name);
            }
            o.close();
        }
        Member::Group(id) => {
            let g = groups.iter().find(|g| g.id == *id);
            let mut o = Obj::open(out, select, None);
            o.annotation("@odata.type", "#microsoft.graph.group")
                .str("id", id);
            if let Some(g) = g {
                o.str("displayName", &g.display_name);
            }
            o.close();
        }
    }
}

pub fn device(out: &mut Vec<u8>, d: &Device, select: &Select) {
    let mut o = Obj::open(out, select, d.extra.as_deref());
    o.annotation("@odata.type", "#microsoft.graph.managedDevice")
        .guid("id", Some(d.id))
        .raw("userId", |o| match d.user_id {
            Some(g) => write_guid(o, g),
            None => o.extend_from_slice(b"null"),
        })
        .str("deviceName", &d.device_name)
        .str("managedDeviceOwnerType", "company")
        .str("lastSyncDateTime", &d.last_sync_date_time)
        .str("operatingSystem", &d.operating_system)
        .str("complianceState", &d.compliance_state)
        .str("jailBroken", &d.jail_broken)
        .str("managementState", &d.management_state)
        .str("osVersion", &d.os_version)
        .raw("azureADDeviceId", |o| match d.azure_ad_device_id {
            Some(g) => write_guid(o, g),
            // Intune reports the all-zero GUID for devices not registered in Entra.
            None => write_str(o, "00000000-0000-0000-0000-000000000000"),
        })
        .str(
            "complianceGracePeriodExpirationDateTime",
            &d.compliance_grace_period_expiration_date_time,
        )
        .close();
}

fn app_identifier(out: &mut Vec<u8>, a: &AppRef) {
    let all = Select(None);
    let mut o = Obj::open(out, &all, None);
    match a.platform {
        Platform::Ios => o
            .annotation("@odata.type", "#microsoft.graph.iosMobileAppIdentifier")
            .str("bundleId", &a.id),
        Platform::Android => o
            .annotation("@odata.type", "#microsoft.graph.androidMobileAppIdentifier")
            .str("packageId", &a.id),
    };
    o.close();
}

/// A `managedMobileApp` (`id` is `<bundle id>.ios` / `<package id>.android` in real data).
pub fn mobile_app(out: &mut Vec<u8>, a: &AppRef) {
    let all = Select(None);
    let mut o = Obj::open(out, &all, None);
    o.str("id", &format!("{}.{}", a.id, a.platform.name()))
        .str("version", "-518090279")
        .raw("mobileAppIdentifier", |o| app_identifier(o, a))
        .close();
}

pub fn assignment(out: &mut Vec<u8>, policy_id: &str, i: usize, t: &Target) {
    let all = Select(None);
    let mut o = Obj::open(out, &all, None);
    o.str("id", &format!("{policy_id}_{i}")).raw("target", |o| {
        let mut t_o = Obj::open(o, &all, None);
        match t {
            Target::Include(g) => t_o
                .annotation("@odata.type", "#microsoft.graph.groupAssignmentTarget")
                .str("groupId", g),
            Target::Exclude(g) => t_o
                .annotation(
                    "@odata.type",
                    "#microsoft.graph.exclusionGroupAssignmentTarget",
                )
                .str("groupId", g),
            Target::AllLicensedUsers => t_o.annotation(
                "@odata.type",
                "#microsoft.graph.allLicensedUsersAssignmentTarget",
            ),
        };
        t_o.close();
    });
    o.close();
}

/// `expand_apps` / `expand_assignments`: navigation properties appear only when expanded.
pub fn policy(
    out: &mut Vec<u8>,
    p: &Policy,
    select: &Select,
    expand_apps: bool,
    expand_assignments: bool,
) {
    let odata_type = match p.platform {
        Platform::Ios => "#microsoft.graph.iosManagedAppProtection",
        Platform::Android => "#microsoft.graph.androidManagedAppProtection",
    };
    let mut o = Obj::open(out, select, p.extra.as_deref());
    o.annotation("@odata.type", odata_type)
        .str("id", &p.id)
        .str("displayName", &p.display_name)
        .str(
            "periodOfflineBeforeAccessCheck",
            &p.period_offline_before_access_check,
        )
        .str(
            "periodOnlineBeforeAccessCheck",
            &p.period_online_before_access_check,
        )
        .bool("pinRequired", p.pin_required)
        .opt_str(
            "minimumRequiredOsVersion",
            p.minimum_required_os_version.as_deref(),
        )
        .opt_str(
            "minimumRequiredAppVersion",
            p.minimum_required_app_version.as_deref(),
        )
        .bool("deviceComplianceRequired", p.device_compliance_required)
        .bool("isAssigned", !p.assignments.is_empty());
    if expand_apps {
        o.raw("apps", |o| {
            o.push(b'[');
            for (i, a) in p.apps.iter().enumerate() {
                if i > 0 {
                    o.push(b',');
                }
                mobile_app(o, a);
            }
            o.push(b']');
        });
    }
    if expand_assignments {
        o.raw("assignments", |o| {
            o.push(b'[');
            for (i, t) in p.assignments.iter().enumerate() {
                if i > 0 {
                    o.push(b',');
                }
                assignment(o, &p.id, i, t);
            }
            o.push(b']');
        });
    }
    o.close();
}

pub fn registration(out: &mut Vec<u8>, r: &Registration, select: &Select, beta: bool) {
    let odata_type = match r.app.platform {
        Platform::Ios => "#microsoft.graph.iosManagedAppRegistration",
        Platform::Android => "#microsoft.graph.androidManagedAppRegistration",
    };
    let mut o = Obj::open(out, select, r.extra.as_deref());
    o.annotation("@odata.type", odata_type)
        .str("createdDateTime", &r.created_date_time)
        .str("lastSyncDateTime", &r.last_sync_date_time)
        .str("applicationVersion", &r.application_version)
        .str("managementSdkVersion", "19.0.1")
        .str("platformVersion", &r.platform_version)
        .str("deviceType", r.app.platform.name())
        .str("deviceTag", &r.device_tag)
        .str("deviceName", "device")
        .raw("flaggedReasons", |o| {
            o.push(b'[');
            for (i, f) in r.flagged_reasons.iter().enumerate() {
                if i > 0 {
                    o.push(b',');
                }
                write_str(o, f);
            }
            o.push(b']');
        })
        .guid("userId", Some(r.user_id))
        .raw("appIdentifier", |o| app_identifier(o, &r.app))
        .guid("id", Some(r.id))
        .str("version", "1");
    if beta {
        // "Value could be empty even when the host device is Azure Active Directory registered."
        o.raw("azureADDeviceId", |o| match r.azure_ad_device_id {
            Some(g) => write_guid(o, g),
            None => write_str(o, ""),
        })
        .raw("managedDeviceId", |o| match r.managed_device_id {
            Some(g) => write_guid(o, g),
            None => write_str(o, ""),
        });
    }
    o.close();
}
