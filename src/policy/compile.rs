//! Policies compiled at load into the indexed form evaluation walks.
//!
//! Everything a request would otherwise hash per policy is resolved once here: each
//! resource maps to the list of policies that can apply to it (plus the `all`-resource
//! ones, merged in config order); user ids, client app ids and group ids named by any
//! policy are numbered ("slots"), so a request looks its user, app and groups up once and
//! each policy then checks small sorted slices or a bitset.

use super::fasthash::{FastMap, FastSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use ipnet::IpNet;

use crate::config::{
    ChallengeStyle, Config, Grant, GrantControl, GrantOperator, IssuerConfig, Platform,
    PolicyConfig, PolicyMode, Selector,
};

use super::state::PolicyState;
use super::values::fold;

/// A grant in evaluation form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompiledGrant {
    Block,
    Controls {
        /// `true` = operator `all` (Graph AND), `false` = `any` (OR).
        all: bool,
        controls: Box<[GrantControl]>,
        auth_context: Option<Arc<str>>,
    },
}

/// One policy, ready to evaluate.
#[derive(Debug)]
pub struct CompiledPolicy {
    pub name: Arc<str>,
    pub mode: PolicyMode,
    pub(crate) all_users: bool,
    pub(crate) include_users: Box<[u32]>,
    pub(crate) include_groups: Box<[u32]>,
    pub(crate) exclude_users: Box<[u32]>,
    pub(crate) exclude_groups: Box<[u32]>,
    /// `None` = any client app.
    pub(crate) client_apps: Option<Box<[u32]>>,
    /// Bit per [`Platform`]; 0 = any platform.
    pub(crate) platforms: u8,
    pub(crate) include_locations: Box<[IpNet]>,
    pub(crate) exclude_locations: Box<[IpNet]>,
    pub(crate) grant: CompiledGrant,
    pub(crate) sign_in_frequency: Option<i64>,
    pub(crate) remediation_enabled: bool,
    pub(crate) remediation_window: i64,
    /// The policy as configured (for What If output).
    pub config: PolicyConfig,
}

/// How an issuer's tokens are challenged (from `[[issuers]]`).
#[derive(Debug, Clone)]
pub(crate) struct IssuerChallenge {
    pub style: ChallengeStyle,
    pub authorization_uri: Option<Arc<str>>,
}

/// State group id -> policy-set group slot, for one (policy set, state) pair.
#[derive(Debug)]
pub(crate) struct GroupBinding {
    pub state_generation: u64,
    pub to_slot: Box<[u32]>,
}

pub(crate) const NO_SLOT: u32 = u32::MAX;

static SET_IDS: AtomicU64 = AtomicU64::new(1);

/// All policies of one config version, compiled and indexed.
#[derive(Debug)]
pub struct PolicySet {
    id: u64,
    pub(crate) policies: Vec<CompiledPolicy>,
    by_resource: FastMap<Box<str>, Box<[u32]>>,
    all_resources: Box<[u32]>,
    pub(crate) user_slots: FastMap<Box<str>, u32>,
    pub(crate) app_slots: FastMap<Box<str>, u32>,
    pub(crate) group_slots: FastMap<Box<str>, u32>,
    pub(crate) group_names: Vec<Box<str>>,
    approved_apps: FastSet<Box<str>>,
    pub(crate) issuers: Vec<IssuerChallenge>,
    /// Cache of the group binding for the newest state seen; rebuilt when state changes.
    binding: ArcSwapOption<GroupBinding>,
}

impl Default for PolicySet {
    fn default() -> Self {
        Self::empty_unchecked()
    }
}

fn platform_bit(p: Platform) -> u8 {
    match p {
        Platform::Ios => 1,
        Platform::Android => 2,
        Platform::Windows => 4,
        Platform::Macos => 8,
        Platform::Linux => 16,
    }
}

pub(crate) fn platform_matches(mask: u8, p: Option<Platform>) -> bool {
    match p {
        // An unknown platform matches any platform condition: unknown never loosens.
        None => true,
        Some(p) => mask == 0 || mask & platform_bit(p) != 0,
    }
}

fn slots(
    map: &mut FastMap<Box<str>, u32>,
    names: Option<&mut Vec<Box<str>>>,
    ids: &[String],
) -> Box<[u32]> {
    let mut names = names;
    let mut v: Vec<u32> = ids
        .iter()
        .map(|id| {
            let id = fold(id);
            if let Some(&s) = map.get(id.as_ref()) {
                return s;
            }
            let s = map.len() as u32;
            let boxed: Box<str> = id.as_ref().into();
            if let Some(n) = names.as_deref_mut() {
                n.push(boxed.clone());
            }
            map.insert(boxed, s);
            s
        })
        .collect();
    v.sort_unstable();
    v.dedup();
    v.into_boxed_slice()
}

impl PolicySet {
    fn empty_unchecked() -> Self {
        Self {
            id: SET_IDS.fetch_add(1, Ordering::Relaxed),
            policies: Vec::new(),
            by_resource: FastMap::default(),
            all_resources: Box::new([]),
            user_slots: FastMap::default(),
            app_slots: FastMap::default(),
            group_slots: FastMap::default(),
            group_names: Vec::new(),
            approved_apps: FastSet::default(),
            issuers: Vec::new(),
            binding: ArcSwapOption::empty(),
        }
    }

    /// Compile the policies of a validated config.
    pub fn compile(config: &Config) -> Result<Self, String> {
        Self::from_parts(&config.policies, &config.approved_apps, &config.issuers)
    }

    /// Compile from the pieces of a config (tests, benches, What If).
    pub fn from_parts(
        policies: &[PolicyConfig],
        approved_apps: &[String],
        issuers: &[IssuerConfig],
    ) -> Result<Self, String> {
        let mut set = Self::empty_unchecked();
        let mut names = FastSet::default();
        let mut by_resource: FastMap<Box<str>, Vec<u32>> = FastMap::default();
        let mut all = Vec::new();
        for (i, p) in policies.iter().enumerate() {
            if !names.insert(p.name.as_str()) {
                return Err(format!("policies[{i}]: duplicate policy name {:?}", p.name));
            }
            let idx = u32::try_from(i).map_err(|_| "too many policies".to_owned())?;
            match &p.resources {
                Selector::All => all.push(idx),
                Selector::Some(rs) => {
                    for r in rs {
                        let list = by_resource.entry(r.as_str().into()).or_default();
                        if list.last() != Some(&idx) {
                            list.push(idx);
                        }
                    }
                }
            }
            let grant = match &p.grant {
                Grant::Block => CompiledGrant::Block,
                Grant::Controls {
                    operator,
                    controls,
                    auth_context,
                } => {
                    if controls.is_empty() {
                        return Err(format!("policy {:?}: grant has no controls", p.name));
                    }
                    CompiledGrant::Controls {
                        all: *operator == GrantOperator::All,
                        controls: controls.clone().into_boxed_slice(),
                        auth_context: auth_context.as_deref().map(Arc::from),
                    }
                }
            };
            let (all_users, include_users) = match &p.include_users {
                Selector::All => (true, Box::default()),
                Selector::Some(u) => (false, slots(&mut set.user_slots, None, u)),
            };
            let compiled = CompiledPolicy {
                name: Arc::from(p.name.as_str()),
                mode: p.mode,
                all_users,
                include_users,
                include_groups: slots(
                    &mut set.group_slots,
                    Some(&mut set.group_names),
                    &p.include_groups,
                ),
                exclude_users: slots(&mut set.user_slots, None, &p.exclude_users),
                exclude_groups: slots(
                    &mut set.group_slots,
                    Some(&mut set.group_names),
                    &p.exclude_groups,
                ),
                client_apps: (!p.client_apps.is_empty())
                    .then(|| slots(&mut set.app_slots, None, &p.client_apps)),
                platforms: p.platforms.iter().fold(0, |m, &pl| m | platform_bit(pl)),
                include_locations: p.locations.include.clone().into_boxed_slice(),
                exclude_locations: p.locations.exclude.clone().into_boxed_slice(),
                grant,
                sign_in_frequency: p
                    .sign_in_frequency
                    .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
                remediation_enabled: p.remediation.enabled,
                remediation_window: i64::try_from(p.remediation.window.as_secs())
                    .unwrap_or(i64::MAX),
                config: p.clone(),
            };
            set.policies.push(compiled);
        }
        // Each resource's list holds its own policies and the `all` ones, in config order,
        // so evaluation order (and "first policy wins a tie") is the file's order.
        set.by_resource = by_resource
            .into_iter()
            .map(|(r, mut v)| {
                v.extend_from_slice(&all);
                v.sort_unstable();
                v.dedup();
                (r, v.into_boxed_slice())
            })
            .collect();
        set.all_resources = all.into_boxed_slice();
        set.approved_apps = approved_apps
            .iter()
            .map(|a| fold(a).as_ref().into())
            .collect();
        set.issuers = issuers
            .iter()
            .map(|i| IssuerChallenge {
                style: i.challenge,
                authorization_uri: i.authorization_uri.as_deref().map(Arc::from),
            })
            .collect();
        Ok(set)
    }

    /// Process-wide unique id of this compiled set.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn policies(&self) -> &[CompiledPolicy] {
        &self.policies
    }

    pub fn policy(&self, index: u32) -> Option<&CompiledPolicy> {
        self.policies.get(index as usize)
    }

    /// Indexes (config order) of the policies that can apply to `resource`.
    pub fn candidates(&self, resource: &str) -> &[u32] {
        self.by_resource
            .get(resource)
            .map(|b| &b[..])
            .unwrap_or(&self.all_resources)
    }

    pub fn is_approved_app(&self, app: &str) -> bool {
        self.approved_apps.contains(fold(app).as_ref())
    }

    pub(crate) fn issuer(&self, index: usize) -> IssuerChallenge {
        self.issuers.get(index).cloned().unwrap_or(IssuerChallenge {
            style: ChallengeStyle::Entra,
            authorization_uri: None,
        })
    }

    /// Run `f` with the group binding for `state`, building (and caching) it when the
    /// cached one belongs to another state. The cache keeps the newest state's binding, so
    /// requests still finishing on an older state never evict it.
    pub(crate) fn with_binding<R>(
        &self,
        state: &PolicyState,
        f: impl FnOnce(&GroupBinding) -> R,
    ) -> R {
        {
            let guard = self.binding.load();
            if let Some(b) = guard.as_deref()
                && b.state_generation == state.generation()
            {
                return f(b);
            }
        }
        let mut to_slot = vec![NO_SLOT; state.group_count()].into_boxed_slice();
        for (name, &slot) in &self.group_slots {
            if let Some(g) = state.group_index(name)
                && let Some(t) = to_slot.get_mut(g as usize)
            {
                *t = slot;
            }
        }
        let fresh = Arc::new(GroupBinding {
            state_generation: state.generation(),
            to_slot,
        });
        let newer = self
            .binding
            .load()
            .as_deref()
            .is_none_or(|b| b.state_generation < state.generation());
        if newer {
            self.binding.store(Some(fresh.clone()));
        }
        f(&fresh)
    }
}
