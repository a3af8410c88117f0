//! Policy state: what the organisation's management service knows (users, devices, app
//! protection policies, app registrations), compacted and indexed for O(1) lookups.
//!
//! The file model is DESIGN.md's `state.json` with Microsoft Graph's field names; parsing
//! and validation live in [`super::state_load`]. This is the loaded form: ids are interned
//! to `u32` so that a million devices and a million app registrations fit in a few hundred
//! megabytes, enums are one byte, versions are inline, timestamps are unix seconds.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::Platform;

use super::fasthash::FastMap;
use super::values::{Version, fold};

/// Graph `complianceState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComplianceState {
    Unknown,
    Compliant,
    Noncompliant,
    Conflict,
    Error,
    InGracePeriod,
    ConfigManager,
}

impl ComplianceState {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "unknown" => Self::Unknown,
            "compliant" => Self::Compliant,
            "noncompliant" => Self::Noncompliant,
            "conflict" => Self::Conflict,
            "error" => Self::Error,
            "inGracePeriod" => Self::InGracePeriod,
            "configManager" => Self::ConfigManager,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Compliant => "compliant",
            Self::Noncompliant => "noncompliant",
            Self::Conflict => "conflict",
            Self::Error => "error",
            Self::InGracePeriod => "inGracePeriod",
            Self::ConfigManager => "configManager",
        }
    }

    /// `compliant` and `inGracePeriod` satisfy a compliance requirement; nothing else does.
    pub fn is_compliant(self) -> bool {
        matches!(self, Self::Compliant | Self::InGracePeriod)
    }
}

/// A record's `remediation`: is automatic remediation still under way?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RemediationState {
    /// Under way: the policy's remediation window applies.
    Pending,
    /// Gave up: the sign-out moment is `noncompliantSince` itself.
    Failed,
    /// Not offered for this record: as `Failed`.
    Disabled,
}

impl RemediationState {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "failed" => Self::Failed,
            "disabled" => Self::Disabled,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Failed => "failed",
            Self::Disabled => "disabled",
        }
    }
}

/// A user (`users[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub account_enabled: bool,
    pub licensed: bool,
    /// Interned group ids, sorted and deduplicated (binary search).
    pub(crate) groups: Box<[u32]>,
    /// Tokens issued before this moment (unix seconds) are no longer accepted.
    pub revoke_sessions_after: Option<i64>,
}

impl User {
    /// Interned group ids (sorted).
    pub fn group_ids(&self) -> &[u32] {
        &self.groups
    }

    fn in_any(&self, groups: &[u32]) -> bool {
        groups.iter().any(|g| self.groups.binary_search(g).is_ok())
    }
}

/// A managed device (`devices[]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device {
    pub compliance: ComplianceState,
    /// From `operatingSystem`; `None` when absent or not a platform policies can name.
    pub platform: Option<Platform>,
    pub os_version: Option<Version>,
    pub noncompliant_since: Option<i64>,
    pub remediation: RemediationState,
}

/// An Intune app protection policy (`appProtectionPolicies[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppProtectionPolicy {
    pub id: Box<str>,
    pub display_name: Box<str>,
    pub platform: Platform,
    /// Interned app ids.
    pub(crate) apps: Box<[u32]>,
    /// Interned group ids.
    pub(crate) include_groups: Box<[u32]>,
    pub(crate) exclude_groups: Box<[u32]>,
    /// `periodOfflineBeforeAccessCheck` in seconds.
    pub offline_period: i64,
    pub pin_required: bool,
    pub minimum_app_version: Option<Version>,
    pub minimum_os_version: Option<Version>,
}

impl AppProtectionPolicy {
    /// Includes the user through a group and does not exclude them (exclude wins).
    pub fn covers(&self, user: &User) -> bool {
        user.in_any(&self.include_groups) && !user.in_any(&self.exclude_groups)
    }
}

/// An app registration: one per user x app x device (`appRegistrations[]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppRegistration {
    pub platform: Option<Platform>,
    pub app_version: Option<Version>,
    pub os_version: Option<Version>,
    /// `flaggedReasons` holds `rootedDevice` (or the Android bootloader / ROM flags).
    pub rooted: bool,
    pub last_sync: Option<i64>,
    pub compliance: ComplianceState,
    pub noncompliant_since: Option<i64>,
    pub remediation: RemediationState,
}

/// Device slot for app registrations without a device id.
pub(crate) const NO_DEVICE: u32 = u32::MAX;

static GENERATION: AtomicU64 = AtomicU64::new(1);

/// The loaded, validated, indexed policy state. Immutable once built.
#[derive(Debug, Default)]
pub struct PolicyState {
    /// Unique per loaded state (process-wide), so caches keyed on it never confuse two.
    pub(crate) generation: u64,
    pub(crate) user_ids: FastMap<Box<str>, u32>,
    pub(crate) users: Vec<Option<User>>,
    pub(crate) group_ids: FastMap<Box<str>, u32>,
    pub(crate) device_ids: FastMap<Box<str>, u32>,
    pub(crate) devices: Vec<Option<Device>>,
    pub(crate) app_ids: FastMap<Box<str>, u32>,
    pub(crate) app_policies: Vec<AppProtectionPolicy>,
    /// App index -> indexes into `app_policies` that target it.
    pub(crate) app_policies_by_app: Vec<Box<[u32]>>,
    pub(crate) registrations: FastMap<(u32, u32, u32), AppRegistration>,
}

/// Record counts, for `accessgate check` and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StateCounts {
    pub users: usize,
    pub devices: usize,
    pub app_protection_policies: usize,
    pub app_registrations: usize,
    pub groups: usize,
}

impl std::fmt::Display for StateCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} users, {} devices, {} app protection policies, {} app registrations, {} groups",
            self.users,
            self.devices,
            self.app_protection_policies,
            self.app_registrations,
            self.groups
        )
    }
}

impl PolicyState {
    /// An empty state (no users, no devices): every state-dependent control fails.
    pub fn empty() -> Self {
        Self {
            generation: next_generation(),
            ..Self::default()
        }
    }

    /// Process-wide unique id of this loaded state.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn counts(&self) -> StateCounts {
        StateCounts {
            users: self.users.iter().filter(|u| u.is_some()).count(),
            devices: self.devices.iter().filter(|d| d.is_some()).count(),
            app_protection_policies: self.app_policies.len(),
            app_registrations: self.registrations.len(),
            groups: self.group_ids.len(),
        }
    }

    /// The interned index of a user present in `users` (not merely referenced).
    pub fn user_index(&self, id: &str) -> Option<u32> {
        let i = *self.user_ids.get(fold(id).as_ref())?;
        self.users.get(i as usize)?.as_ref().map(|_| i)
    }

    pub fn user_at(&self, index: u32) -> Option<&User> {
        self.users.get(index as usize)?.as_ref()
    }

    pub fn user(&self, id: &str) -> Option<&User> {
        self.user_at(self.user_index(id)?)
    }

    pub fn device(&self, id: &str) -> Option<&Device> {
        let i = *self.device_ids.get(fold(id).as_ref())?;
        self.devices.get(i as usize)?.as_ref()
    }

    /// Interned id of a group name that appears somewhere in state.
    pub fn group_index(&self, id: &str) -> Option<u32> {
        self.group_ids.get(fold(id).as_ref()).copied()
    }

    /// Number of interned groups (ids are `0..group_count()`).
    pub fn group_count(&self) -> usize {
        self.group_ids.len()
    }

    /// The app registration for user x app x device. A token's device finds that device's
    /// registration; failing that (or without a device) the registration recorded without a
    /// device id, which matches by user and app only (DESIGN.md: Graph v1.0 gives
    /// registrations no device id). A token's device never falls back to another device's
    /// registration. A source with several device-less registrations of one user and app
    /// must merge them into one that passes only if every one does (the loader refuses
    /// duplicates; the Graph connector merges).
    pub fn registration(
        &self,
        user: u32,
        app: &str,
        device: Option<&str>,
    ) -> Option<&AppRegistration> {
        let app = *self.app_ids.get(fold(app).as_ref())?;
        let exact = device
            .and_then(|d| self.device_ids.get(fold(d).as_ref()))
            .and_then(|&dev| self.registrations.get(&(user, app, dev)));
        exact.or_else(|| self.registrations.get(&(user, app, NO_DEVICE)))
    }

    /// App protection policies whose `apps` list this client app.
    pub fn app_policies_for(&self, app: &str) -> impl Iterator<Item = &AppProtectionPolicy> {
        let list: &[u32] = self
            .app_ids
            .get(fold(app).as_ref())
            .and_then(|&i| self.app_policies_by_app.get(i as usize))
            .map(|b| &b[..])
            .unwrap_or(&[]);
        list.iter()
            .filter_map(|&i| self.app_policies.get(i as usize))
    }
}

pub(crate) fn next_generation() -> u64 {
    GENERATION.fetch_add(1, Ordering::Relaxed)
}
