//! The tenant the double serves: plain structs, compact enough that a 100k-user /
//! 300k-device / 300k-registration tenant costs tens of MB (ids are 16 bytes, repeated
//! strings are shared `Arc<str>`), because the sync benchmark measures the peak memory of
//! the process that also hosts the double.

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

/// Shared immutable text: the generator hands the same allocation to thousands of records.
pub type Text = Arc<str>;

/// A GUID kept as 16 bytes (alignment 1, so `Option<Guid>` is 17 bytes, not 32).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// Parses the 8-4-4-4-12 hex form (any case); `None` for anything else.
    pub fn parse(s: &str) -> Option<Guid> {
        let b = s.as_bytes();
        if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
            return None;
        }
        let mut out = [0u8; 16];
        let mut n = 0;
        let mut hi: Option<u8> = None;
        for &c in b {
            if c == b'-' {
                continue;
            }
            let v = (c as char).to_digit(16)? as u8;
            match hi.take() {
                None => hi = Some(v),
                Some(h) => {
                    out[n] = (h << 4) | v;
                    n += 1;
                }
            }
        }
        Some(Guid(out))
    }

    /// Like [`Guid::parse`] for ids written in test code.
    pub fn of(s: &str) -> Guid {
        Guid::parse(s).unwrap_or_else(|| panic!("not a GUID: {s:?}"))
    }

    /// A version-4-shaped GUID from 128 random bits.
    pub fn from_bits(v: u128) -> Guid {
        let mut b = v.to_be_bytes();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Guid(b)
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `assignedPlan` as Graph spells it.
#[derive(Clone, Debug)]
pub struct AssignedPlan {
    pub assigned_date_time: Text,
    /// `Enabled`, `Warning`, `Suspended`, `LockedOut`, `Deleted`.
    pub capability_status: Text,
    pub service: Text,
    pub service_plan_id: Guid,
}

/// An Entra user. `changed` / `removed` drive users/delta; set them only through
/// [`crate::graph_double::Handle`] so the version bookkeeping stays right.
#[derive(Clone, Debug)]
pub struct User {
    pub id: Guid,
    pub display_name: Text,
    pub user_principal_name: Text,
    pub account_enabled: bool,
    pub assigned_plans: Vec<AssignedPlan>,
    pub sign_in_sessions_valid_from: Option<Text>,
    /// Extra or overriding JSON fields (e.g. a malformed value a test wants served).
    pub extra: Option<Box<Map<String, Value>>>,
    pub(crate) changed: u64,
    pub(crate) removed: bool,
}

impl User {
    pub fn new(id: &str) -> User {
        User {
            id: Guid::of(id),
            display_name: "Test User".into(),
            user_principal_name: format!("{id}@contoso.example").into(),
            account_enabled: true,
            assigned_plans: Vec::new(),
            sign_in_sessions_valid_from: None,
            extra: None,
            changed: 0,
            removed: false,
        }
    }

    /// Adds an enabled Intune Plan 1 (INTUNE_A) service plan.
    pub fn licensed(mut self) -> User {
        self.assigned_plans.push(AssignedPlan {
            assigned_date_time: "2025-01-01T00:00:00Z".into(),
            capability_status: "Enabled".into(),
            service: "SCO".into(),
            service_plan_id: Guid::of(INTUNE_A),
        });
        self
    }

    pub fn is_removed(&self) -> bool {
        self.removed
    }
}

/// Intune Plan 1 (research/graph.md section 5).
pub const INTUNE_A: &str = "c1ec4a95-1f05-45b3-a911-aa3fa01094f5";

/// A direct member of a group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Member {
    User(Guid),
    Group(String),
}

#[derive(Clone, Debug)]
pub struct Group {
    pub id: String,
    pub display_name: String,
    pub members: Vec<Member>,
}

impl Group {
    pub fn new(id: &str, members: Vec<Member>) -> Group {
        Group {
            id: id.to_string(),
            display_name: id.to_string(),
            members,
        }
    }
}

/// An Intune `managedDevice`.
#[derive(Clone, Debug)]
pub struct Device {
    pub id: Guid,
    pub azure_ad_device_id: Option<Guid>,
    pub user_id: Option<Guid>,
    pub device_name: Text,
    /// `unknown`, `compliant`, `noncompliant`, `conflict`, `error`, `inGracePeriod`, `configManager`.
    pub compliance_state: Text,
    pub operating_system: Text,
    pub os_version: Text,
    pub last_sync_date_time: Text,
    pub jail_broken: Text,
    pub management_state: Text,
    pub compliance_grace_period_expiration_date_time: Text,
    pub extra: Option<Box<Map<String, Value>>>,
}

impl Device {
    pub fn new(azure_ad_device_id: &str, user: &str) -> Device {
        let aad = Guid::of(azure_ad_device_id);
        // The Intune id differs from the Entra device id (research section 2).
        let mut id = aad.0;
        id[0] ^= 0x5a;
        Device {
            id: Guid(id),
            azure_ad_device_id: Some(aad),
            user_id: Some(Guid::of(user)),
            device_name: "iPhone".into(),
            compliance_state: "compliant".into(),
            operating_system: "iOS".into(),
            os_version: "17.4".into(),
            last_sync_date_time: "2026-11-30T08:00:00.0000000Z".into(),
            jail_broken: "False".into(),
            management_state: "managed".into(),
            compliance_grace_period_expiration_date_time: "9999-12-31T23:59:59.9999999Z".into(),
            extra: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Platform {
    Ios,
    Android,
}

impl Platform {
    pub fn name(self) -> &'static str {
        match self {
            Platform::Ios => "ios",
            Platform::Android => "android",
        }
    }
}

/// `mobileAppIdentifier`: a bundle id (iOS) or package id (Android).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AppRef {
    pub platform: Platform,
    pub id: Text,
}

impl AppRef {
    pub fn ios(bundle_id: &str) -> AppRef {
        AppRef {
            platform: Platform::Ios,
            id: bundle_id.into(),
        }
    }
    pub fn android(package_id: &str) -> AppRef {
        AppRef {
            platform: Platform::Android,
            id: package_id.into(),
        }
    }
}

/// An assignment target of an app protection policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `#microsoft.graph.groupAssignmentTarget`
    Include(String),
    /// `#microsoft.graph.exclusionGroupAssignmentTarget`
    Exclude(String),
    /// `#microsoft.graph.allLicensedUsersAssignmentTarget`
    AllLicensedUsers,
}

/// An iOS or Android managed app protection (the platform picks the collection).
#[derive(Clone, Debug)]
pub struct Policy {
    pub id: String,
    pub platform: Platform,
    pub display_name: String,
    pub period_offline_before_access_check: String,
    pub period_online_before_access_check: String,
    pub pin_required: bool,
    pub minimum_required_os_version: Option<String>,
    pub minimum_required_app_version: Option<String>,
    pub device_compliance_required: bool,
    pub apps: Vec<AppRef>,
    pub assignments: Vec<Target>,
    pub extra: Option<Box<Map<String, Value>>>,
}

impl Policy {
    pub fn new(
        id: &str,
        platform: Platform,
        apps: Vec<AppRef>,
        assignments: Vec<Target>,
    ) -> Policy {
        Policy {
            id: id.to_string(),
            platform,
            display_name: format!("{id} (test)"),
            period_offline_before_access_check: "PT12H".into(),
            period_online_before_access_check: "PT30M".into(),
            pin_required: true,
            minimum_required_os_version: None,
            minimum_required_app_version: None,
            device_compliance_required: true,
            apps,
            assignments,
            extra: None,
        }
    }
}

/// A `managedAppRegistration` (`@odata.type` ios/androidManagedAppRegistration from `app`).
#[derive(Clone, Debug)]
pub struct Registration {
    pub id: Guid,
    pub user_id: Guid,
    pub app: AppRef,
    /// Beta only (v1.0 has no such property).
    pub azure_ad_device_id: Option<Guid>,
    /// Beta only.
    pub managed_device_id: Option<Guid>,
    pub application_version: Text,
    pub platform_version: Text,
    pub flagged_reasons: Vec<Text>,
    pub last_sync_date_time: Text,
    pub created_date_time: Text,
    pub device_tag: Text,
    pub extra: Option<Box<Map<String, Value>>>,
}

impl Registration {
    pub fn new(id: &str, user: &str, app: AppRef) -> Registration {
        Registration {
            id: Guid::of(id),
            user_id: Guid::of(user),
            app,
            azure_ad_device_id: None,
            managed_device_id: None,
            application_version: "5.2.0".into(),
            platform_version: "17.4".into(),
            flagged_reasons: Vec::new(),
            last_sync_date_time: "2026-11-30T08:00:00.0000000Z".into(),
            created_date_time: "2025-06-01T10:00:00.0000000Z".into(),
            device_tag: "".into(),
            extra: None,
        }
    }
}

/// Everything the double serves. Build it directly (tests) or with
/// [`crate::graph_double::generate`] (benchmark), then hand it to `GraphDouble::start`.
#[derive(Clone, Debug, Default)]
pub struct Tenant {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub devices: Vec<Device>,
    pub policies: Vec<Policy>,
    pub registrations: Vec<Registration>,
    /// Bumped on every user or membership change; users/groups delta tokens carry it.
    pub(crate) version: u64,
    pub(crate) member_log: Vec<MemberChange>,
}

#[derive(Clone, Debug)]
pub(crate) struct MemberChange {
    pub version: u64,
    pub group: String,
    pub member: Member,
    pub added: bool,
}

impl Tenant {
    pub fn user_index(&self, id: Guid) -> Option<usize> {
        self.users.iter().position(|u| u.id == id)
    }
    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.id == id)
    }
}
