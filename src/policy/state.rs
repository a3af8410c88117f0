//! Policy state: what the organisation's management service knows (users, devices, app
//! protection policies, app registrations), compacted and indexed for O(1) lookups.
//!
//! The file model is DESIGN.md's `state.json` with Microsoft Graph's field names; parsing
//! and validation live in [`super::state_load`]. This is the loaded form: ids are interned
//! to `u32` so that a million devices and a million app registrations fit in a few hundred
//! megabytes, enums are one byte, versions are inline, timestamps are unix seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::Platform;

use super::fasthash::FastMap;
use super::state_overlay::Overlay;
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
///
/// A loaded document is the `base`; a state that had change batches applied shares that
/// base with its predecessors and holds the changed records in `overlay`, which every
/// lookup consults first (see [`super::state_overlay`]).
#[derive(Debug, Default)]
pub struct PolicyState {
    /// Unique per loaded state (process-wide), so caches keyed on it never confuse two.
    pub(crate) generation: u64,
    pub(crate) base: Arc<StateBase>,
    pub(crate) overlay: Option<Arc<Overlay>>,
}

/// The bulk of a loaded state: interned ids and the records they index.
#[derive(Debug, Default, Clone)]
pub(crate) struct StateBase {
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
        let b = &*self.base;
        let mut users = b.users.iter().filter(|u| u.is_some()).count();
        let mut devices = b.devices.iter().filter(|d| d.is_some()).count();
        let mut app_registrations = b.registrations.len();
        let mut app_protection_policies = b.app_policies.len();
        if let Some(o) = self.overlay.as_deref() {
            let delta = |was: bool, is: bool| (usize::from(is), usize::from(was));
            for (&i, u) in &o.users {
                let was = b.users.get(i as usize).is_some_and(Option::is_some);
                let (add, sub) = delta(was, u.is_some());
                users = (users + add).saturating_sub(sub);
            }
            for (&i, d) in &o.devices {
                let was = b.devices.get(i as usize).is_some_and(Option::is_some);
                let (add, sub) = delta(was, d.is_some());
                devices = (devices + add).saturating_sub(sub);
            }
            for (k, r) in &o.registrations {
                let (add, sub) = delta(b.registrations.contains_key(k), r.is_some());
                app_registrations = (app_registrations + add).saturating_sub(sub);
            }
            if let Some(p) = &o.app_policies {
                app_protection_policies = p.list.len();
            }
        }
        StateCounts {
            users,
            devices,
            app_protection_policies,
            app_registrations,
            groups: self.group_count(),
        }
    }

    /// Id -> interned index: the base's map, then (only after a batch) the overlay's.
    #[inline]
    fn find(
        &self,
        id: &str,
        base: impl Fn(&StateBase) -> &FastMap<Box<str>, u32>,
        extra: impl Fn(&Overlay) -> &FastMap<Box<str>, u32>,
    ) -> Option<u32> {
        let id = fold(id);
        if let Some(&i) = base(&self.base).get(id.as_ref()) {
            return Some(i);
        }
        extra(self.overlay.as_deref()?).get(id.as_ref()).copied()
    }

    /// The interned index of a user present in `users` (not merely referenced).
    pub fn user_index(&self, id: &str) -> Option<u32> {
        let i = self.find(id, |b| &b.user_ids, |o| &o.user_ids)?;
        self.user_at(i).map(|_| i)
    }

    #[inline]
    pub fn user_at(&self, index: u32) -> Option<&User> {
        if let Some(o) = self.overlay.as_deref()
            && let Some(u) = o.users.get(&index)
        {
            return u.as_ref();
        }
        self.base.users.get(index as usize)?.as_ref()
    }

    pub fn user(&self, id: &str) -> Option<&User> {
        self.user_at(self.user_index(id)?)
    }

    pub fn device(&self, id: &str) -> Option<&Device> {
        let i = self.find(id, |b| &b.device_ids, |o| &o.device_ids)?;
        if let Some(o) = self.overlay.as_deref()
            && let Some(d) = o.devices.get(&i)
        {
            return d.as_ref();
        }
        self.base.devices.get(i as usize)?.as_ref()
    }

    /// Interned id of a group name that appears somewhere in state.
    pub fn group_index(&self, id: &str) -> Option<u32> {
        self.find(id, |b| &b.group_ids, |o| &o.group_ids)
    }

    /// Number of interned groups (ids are `0..group_count()`).
    pub fn group_count(&self) -> usize {
        self.base.group_ids.len() + self.overlay.as_deref().map_or(0, |o| o.group_ids.len())
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
        let app = self.find(app, |b| &b.app_ids, |o| &o.app_ids)?;
        let exact = device
            .and_then(|d| self.find(d, |b| &b.device_ids, |o| &o.device_ids))
            .and_then(|dev| self.registration_at((user, app, dev)));
        exact.or_else(|| self.registration_at((user, app, NO_DEVICE)))
    }

    /// A registration by interned key: the overlay (a tombstone hides the base's), then
    /// the base.
    fn registration_at(&self, key: (u32, u32, u32)) -> Option<&AppRegistration> {
        if let Some(o) = self.overlay.as_deref()
            && let Some(r) = o.registrations.get(&key)
        {
            return r.as_ref();
        }
        self.base.registrations.get(&key)
    }

    /// App protection policies whose `apps` list this client app.
    pub fn app_policies_for(&self, app: &str) -> impl Iterator<Item = &AppProtectionPolicy> {
        let (list, by_app): (&[AppProtectionPolicy], &[Box<[u32]>]) = match self
            .overlay
            .as_deref()
            .and_then(|o| o.app_policies.as_deref())
        {
            Some(p) => (&p.list, &p.by_app),
            None => (&self.base.app_policies, &self.base.app_policies_by_app),
        };
        let idx: &[u32] = self
            .find(app, |b| &b.app_ids, |o| &o.app_ids)
            .and_then(|i| by_app.get(i as usize))
            .map(|b| &b[..])
            .unwrap_or(&[]);
        idx.iter().filter_map(move |&i| list.get(i as usize))
    }
}

pub(crate) fn next_generation() -> u64 {
    GENERATION.fetch_add(1, Ordering::Relaxed)
}
