//! An in-process Microsoft Graph + Entra token endpoint double, for the Graph connector's
//! tests and its sync benchmark. JSON shapes, field names and examples follow
//! `research/graph.md` (sections 1-5, 7). Depends only on crates in Cargo.toml, on nothing
//! in `tests/support`, so a bench can include it too:
//! `#[path = "../tests/graph_double/mod.rs"] mod graph_double;`
//!
//! # Start it
//! ```ignore
//! let double = GraphDouble::start(tenant, DoubleConfig::default()).await;
//! double.url();        // "http://127.0.0.1:PORT": both [graph] login_url and graph_url
//! double.token_url();  // "{url}/{tenant_id}/oauth2/v2.0/token"
//! let h = double.handle();   // Clone + Send: mutate, inject faults, read counters
//! ```
//! It binds 127.0.0.1:0 and stops when the `GraphDouble` drops. `DoubleConfig` holds the
//! tenant id, client id, the accepted secret and/or certificate (`CertCredential`: DER for
//! the `x5t#S256` check, public key PEM to verify the PS256 signature), the token
//! lifetime and the page sizes (Intune 1000; directory 100; members 100).
//!
//! # What it serves
//! - `POST /{tenant}/oauth2/v2.0/token`: `grant_type=client_credentials`, `client_id`,
//!   `scope` = `{url}/.default` (or `https://graph.microsoft.com/.default`), and either
//!   `client_secret` (form or HTTP Basic) or `client_assertion_type` jwt-bearer +
//!   `client_assertion` (PS256, `x5t#S256`, aud = the token URL, iss = sub = client id,
//!   short `exp`, unique `jti`). 200 `{"token_type":"Bearer","expires_in":N,
//!   "ext_expires_in":N,"access_token":"..."}`; 400 `invalid_client` (AADSTS7000215 /
//!   AADSTS700027 body) when the credential is refused. Every request is kept
//!   ([`Handle::token_requests`], assertion header and claims decoded).
//! - Under `/v1.0/` and `/beta/`, bearer token required (401 `InvalidAuthenticationToken`
//!   without one, or with an unknown or expired one):
//!   `users`, `users/delta` (nextLinks, then a deltaLink; following it gives changed users
//!   and `{"id":..,"@removed":{"reason":"changed"}}`; `$deltatoken=latest`; an expired token
//!   answers 410 `syncStateNotFound` with `Location`), `users/{id}/transitiveMemberOf`,
//!   `groups/delta` (`$filter=id eq '..' or ..` up to 50, direct members in
//!   `members@delta`, a large group repeated across pages, removals with `@removed`),
//!   `groups/{id}/members`, `groups/{id}/transitiveMembers` (nested groups resolved; both
//!   take a `/microsoft.graph.user` cast), `deviceManagement/managedDevices`,
//!   `deviceAppManagement/iosManagedAppProtections` and `androidManagedAppProtections`
//!   (`apps` / `assignments` only with `$expand=apps,assignments`),
//!   `deviceAppManagement/managedAppRegistrations` (`azureADDeviceId` and
//!   `managedDeviceId` only under `/beta/`; v1.0 answers 400 if they are selected).
//! - `$select` is honoured (unselected fields omitted; users' `accountEnabled`,
//!   `assignedPlans`, `signInSessionsValidFromDateTime` only when selected; an unknown
//!   name is a 400); `$top` (directory max 999, Intune max = its page size); `Prefer:
//!   odata.maxpagesize=N` on directory collections; Intune ignores `$filter` (as the real
//!   one silently does). Pages chain with `@odata.nextLink` whose `$skiptoken` is opaque.
//!
//! # Mutate, break, count (through [`Handle`])
//! - Tenant changes: `update_user`, `set_sign_in_sessions_valid_from`, `set_account_enabled`,
//!   `add_user`, `remove_user`, `add_member`, `remove_member`, `update_device`,
//!   `set_device_compliance`, `update_registration`, `add_registration`,
//!   `remove_registration`, `update_policy`, or anything through `with_tenant` (devices,
//!   policies, registrations have no delta, so any edit is seen on the next read).
//! - Faults ([`Fault`]): `throttle` (N 429s, with or without `Retry-After`),
//!   `unavailable` (503), `status`, `fail_page` (page k of a collection answers 500...),
//!   `garbage_page` / `body_page` (a 200 that is not a page), `slow` (a delay; a long one
//!   is a hang), `hold` (page k waits until the test opens a [`Gate`]: a round held
//!   open); `Collection::Token` targets the token endpoint. Also
//!   `refuse_credentials(true)`, `revoke_access_tokens()` (next Graph call 401s),
//!   `expire_delta_tokens()` (the next delta link answers 410).
//! - Counters ([`Counters`]): requests per collection and status, pages and items served
//!   per collection (`requests(c) == pages(c)` when nothing failed); `requests()` logs
//!   the last 10 000 requests with their headers.
//!
//! Mutations land between pages; mutating a group's members *during* a groups/delta
//! full round can shift its paging (the real service gives no ordering promise either).
//! [`generate`] builds the benchmark tenant (100k users, 300k devices, 300k
//! registrations) compactly; pages are rendered on demand, never held.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

mod faults;
mod generate;
mod model;
mod pages;
mod query;
mod render;
mod serve;
mod token;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

#[allow(unused_imports)]
pub use faults::{Collection, Counters, Fault, FaultAction, Gate};
#[allow(unused_imports)]
pub use generate::{
    AZURE_APP_ANDROID_PACKAGE, AZURE_APP_CLIENT_ID, AZURE_APP_IOS_BUNDLE, Generated, generate,
};
#[allow(unused_imports)]
pub use model::{
    AppRef, AssignedPlan, Device, Group, Guid, INTUNE_A, Member, Platform, Policy, Registration,
    Target, Tenant, Text, User,
};
#[allow(unused_imports)]
pub use serve::{DoubleConfig, RequestRecord};
#[allow(unused_imports)]
pub use token::{ASSERTION_TYPE, CertCredential, TokenRequest};

use serve::{Shared, State};

/// The running double. Dropping it stops the server.
pub struct GraphDouble {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl GraphDouble {
    pub async fn start(mut tenant: Tenant, config: DoubleConfig) -> GraphDouble {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        // Version 0 means "full round" in a delta cursor; real versions start at 1.
        tenant.version = tenant.version.max(1);
        let nonce = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u16(addr.port());
            h.finish()
        };
        let shared = Arc::new(Shared {
            base_url: format!("http://{addr}"),
            state: Mutex::new(State {
                tenant,
                config,
                faults: Vec::new(),
                counters: Counters::default(),
                tokens: HashMap::new(),
                token_requests: Vec::new(),
                seen_jti: HashSet::new(),
                log: VecDeque::new(),
                refuse_credentials: false,
                delta_epoch: 1,
                next_token: 0,
                nonce,
                closures: HashMap::new(),
            }),
        });
        let sh = shared.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let sh = sh.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req| serve::handle(sh.clone(), req));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
                while conns.try_join_next().is_some() {}
            }
        });
        GraphDouble { addr, shared, task }
    }

    /// Base URL for both `login_url` and `graph_url`.
    pub fn url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// Graph root with version, e.g. `http://127.0.0.1:PORT/v1.0`.
    pub fn graph_v1(&self) -> String {
        format!("{}/v1.0", self.shared.base_url)
    }

    pub fn token_url(&self) -> String {
        let tenant = self.shared.lock().config.tenant_id.clone();
        format!("{}/{tenant}/oauth2/v2.0/token", self.shared.base_url)
    }

    pub fn handle(&self) -> Handle {
        Handle {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for GraphDouble {
    fn drop(&mut self) {
        // Aborting the accept loop drops the JoinSet, which aborts every connection.
        self.task.abort();
    }
}

/// Mutations, faults and counters of a running double (cheap to clone).
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    /// Any change to the tenant. Users and memberships changed here are NOT reported by
    /// delta rounds: use the dedicated methods for those.
    pub fn with_tenant<R>(&self, f: impl FnOnce(&mut Tenant) -> R) -> R {
        f(&mut self.shared.lock().tenant)
    }

    /// Changes a user and marks it changed for users/delta.
    pub fn update_user(&self, id: &str, f: impl FnOnce(&mut User)) {
        let g = Guid::of(id);
        let mut st = self.shared.lock();
        let t = &mut st.tenant;
        t.version += 1;
        let v = t.version;
        let u = t
            .users
            .iter_mut()
            .find(|u| u.id == g)
            .unwrap_or_else(|| panic!("no user {id}"));
        f(u);
        u.changed = v;
    }

    pub fn set_sign_in_sessions_valid_from(&self, user: &str, when: &str) {
        self.update_user(user, |u| u.sign_in_sessions_valid_from = Some(when.into()));
    }

    pub fn set_account_enabled(&self, user: &str, enabled: bool) {
        self.update_user(user, |u| u.account_enabled = enabled);
    }

    pub fn add_user(&self, mut u: User) {
        let mut st = self.shared.lock();
        st.tenant.version += 1;
        u.changed = st.tenant.version;
        u.removed = false;
        st.tenant.users.push(u);
    }

    /// Deletes a user: gone from full rounds, `@removed` in the next delta round.
    pub fn remove_user(&self, id: &str) {
        self.update_user(id, |u| u.removed = true);
    }

    pub fn add_member(&self, group: &str, m: Member) {
        self.change_member(group, m, true);
    }

    pub fn remove_member(&self, group: &str, m: Member) {
        self.change_member(group, m, false);
    }

    fn change_member(&self, group: &str, m: Member, added: bool) {
        let mut st = self.shared.lock();
        let t = &mut st.tenant;
        t.version += 1;
        let version = t.version;
        let g = t
            .groups
            .iter_mut()
            .find(|g| g.id == group)
            .unwrap_or_else(|| panic!("no group {group}"));
        if added {
            if !g.members.contains(&m) {
                g.members.push(m.clone());
            }
        } else {
            g.members.retain(|x| *x != m);
        }
        t.member_log.push(model::MemberChange {
            version,
            group: group.to_string(),
            member: m,
            added,
        });
    }

    /// Changes the device whose `azureADDeviceId` (or Intune `id`) is `id`.
    pub fn update_device(&self, id: &str, f: impl FnOnce(&mut Device)) {
        let g = Guid::of(id);
        let mut st = self.shared.lock();
        let d = st
            .tenant
            .devices
            .iter_mut()
            .find(|d| d.azure_ad_device_id == Some(g) || d.id == g)
            .unwrap_or_else(|| panic!("no device {id}"));
        f(d);
    }

    pub fn set_device_compliance(&self, id: &str, state: &str) {
        self.update_device(id, |d| d.compliance_state = state.into());
    }

    pub fn update_registration(&self, id: &str, f: impl FnOnce(&mut Registration)) {
        let g = Guid::of(id);
        let mut st = self.shared.lock();
        let r = st
            .tenant
            .registrations
            .iter_mut()
            .find(|r| r.id == g)
            .unwrap_or_else(|| panic!("no registration {id}"));
        f(r);
    }

    pub fn add_registration(&self, r: Registration) {
        self.shared.lock().tenant.registrations.push(r);
    }

    pub fn remove_registration(&self, id: &str) {
        let g = Guid::of(id);
        self.shared
            .lock()
            .tenant
            .registrations
            .retain(|r| r.id != g);
    }

    pub fn update_policy(&self, id: &str, f: impl FnOnce(&mut Policy)) {
        let mut st = self.shared.lock();
        let p = st
            .tenant
            .policies
            .iter_mut()
            .find(|p| p.id == id)
            .unwrap_or_else(|| panic!("no policy {id}"));
        f(p);
    }

    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Faults not yet spent.
    pub fn pending_faults(&self) -> usize {
        self.shared.lock().faults.len()
    }

    /// Every token request from now on is refused with `invalid_client` (or accepted again).
    pub fn refuse_credentials(&self, refuse: bool) {
        self.shared.lock().refuse_credentials = refuse;
    }

    /// Forgets every access token issued so far: the next Graph request with one is a 401.
    pub fn revoke_access_tokens(&self) {
        self.shared.lock().tokens.clear();
    }

    /// Every delta token (and delta nextLink) issued so far answers 410 Gone from now on.
    pub fn expire_delta_tokens(&self) {
        self.shared.lock().delta_epoch += 1;
    }

    pub fn counters(&self) -> Counters {
        self.shared.lock().counters.clone()
    }

    pub fn reset_counters(&self) {
        let mut st = self.shared.lock();
        st.counters = Counters::default();
        st.log.clear();
    }

    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.shared.lock().token_requests.clone()
    }

    /// The last requests (up to 10 000), oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().log.iter().cloned().collect()
    }
}
