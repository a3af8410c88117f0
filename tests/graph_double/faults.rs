//! What a test can make the double do wrong, and what it counts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Each endpoint family the double serves; faults and counters are keyed by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Collection {
    /// `POST /{tenant}/oauth2/v2.0/token`
    Token,
    /// `GET /users` (plain list)
    Users,
    /// `GET /users/delta`
    UsersDelta,
    /// `GET /users/{id}/transitiveMemberOf`
    UserTransitiveMemberOf,
    /// `GET /groups/delta`
    GroupsDelta,
    /// `GET /groups/{id}/members`
    GroupMembers,
    /// `GET /groups/{id}/transitiveMembers`
    GroupTransitiveMembers,
    /// `GET /deviceManagement/managedDevices`
    ManagedDevices,
    /// `GET /deviceAppManagement/iosManagedAppProtections` (and `/{id}/apps|assignments`)
    IosManagedAppProtections,
    /// `GET /deviceAppManagement/androidManagedAppProtections` (and `/{id}/apps|assignments`)
    AndroidManagedAppProtections,
    /// `GET /deviceAppManagement/managedAppRegistrations`
    ManagedAppRegistrations,
    /// Anything else (answered 404 / 405).
    Unknown,
}

impl Collection {
    pub fn name(self) -> &'static str {
        match self {
            Collection::Token => "token",
            Collection::Users => "users",
            Collection::UsersDelta => "users/delta",
            Collection::UserTransitiveMemberOf => "users/transitiveMemberOf",
            Collection::GroupsDelta => "groups/delta",
            Collection::GroupMembers => "groups/members",
            Collection::GroupTransitiveMembers => "groups/transitiveMembers",
            Collection::ManagedDevices => "managedDevices",
            Collection::IosManagedAppProtections => "iosManagedAppProtections",
            Collection::AndroidManagedAppProtections => "androidManagedAppProtections",
            Collection::ManagedAppRegistrations => "managedAppRegistrations",
            Collection::Unknown => "unknown",
        }
    }
}

/// What a matching request gets instead of (or before) its normal answer.
#[derive(Clone, Debug)]
pub enum FaultAction {
    /// This status with Graph's error body; `Retry-After: n` when given.
    Status { code: u16, retry_after: Option<u64> },
    /// A 200 with this body as-is (garbage JSON, a wrong shape, a truncated page...).
    Body(String),
    /// Wait, then answer normally ("slow responses"; a long wait is a hang).
    Delay(Duration),
    /// Hold the answer until the test opens the gate (at most [`Gate::MAX_HOLD`]): a
    /// round that cannot end until the test says so.
    Hold(Gate),
}

/// A gate a held request waits at; the test opens it. Counts who is waiting, so a test
/// can prove the request is still held when it checks something.
#[derive(Clone, Debug)]
pub struct Gate(Arc<GateInner>);

#[derive(Debug)]
struct GateInner {
    open: tokio::sync::watch::Sender<bool>,
    waiting: AtomicUsize,
}

impl Default for Gate {
    fn default() -> Self {
        Gate(Arc::new(GateInner {
            open: tokio::sync::watch::Sender::new(false),
            waiting: AtomicUsize::new(0),
        }))
    }
}

impl Gate {
    /// A held request is answered after this even if the gate stays shut (no test hangs).
    pub const MAX_HOLD: Duration = Duration::from_secs(60);

    pub fn open(&self) {
        self.0.open.send_replace(true);
    }

    /// Requests waiting at the gate right now.
    pub fn waiting(&self) -> usize {
        self.0.waiting.load(Ordering::SeqCst)
    }

    pub(crate) async fn pass(&self) {
        let mut rx = self.0.open.subscribe();
        self.0.waiting.fetch_add(1, Ordering::SeqCst);
        let _ = tokio::time::timeout(Self::MAX_HOLD, rx.wait_for(|open| *open)).await;
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What the server waits for before it answers.
#[derive(Clone, Debug)]
pub(crate) enum Wait {
    Sleep(Duration),
    Gate(Gate),
}

impl Wait {
    pub(crate) async fn run(self) {
        match self {
            Wait::Sleep(d) => tokio::time::sleep(d).await,
            Wait::Gate(g) => g.pass().await,
        }
    }
}

/// A fault: fires on requests for `collection` (and, when `page` is set, only on that
/// 0-based page of a round), `times` times, then is spent.
#[derive(Clone, Debug)]
pub struct Fault {
    pub collection: Collection,
    pub page: Option<u32>,
    pub times: u32,
    pub action: FaultAction,
}

impl Fault {
    /// `n` 429s, with `Retry-After: secs` when given.
    pub fn throttle(collection: Collection, n: u32, retry_after: Option<u64>) -> Fault {
        Fault {
            collection,
            page: None,
            times: n,
            action: FaultAction::Status {
                code: 429,
                retry_after,
            },
        }
    }
    /// `n` 503s (no `Retry-After`).
    pub fn unavailable(collection: Collection, n: u32) -> Fault {
        Fault::status(collection, 503, n)
    }
    /// `n` answers with `code`.
    pub fn status(collection: Collection, code: u16, n: u32) -> Fault {
        Fault {
            collection,
            page: None,
            times: n,
            action: FaultAction::Status {
                code,
                retry_after: None,
            },
        }
    }
    /// Page `page` of the next round answers `code` (once): a collection failing midway.
    pub fn fail_page(collection: Collection, page: u32, code: u16) -> Fault {
        Fault {
            page: Some(page),
            ..Fault::status(collection, code, 1)
        }
    }
    /// Page `page` answers 200 with a body that is not JSON (once).
    pub fn garbage_page(collection: Collection, page: u32) -> Fault {
        Fault::body_page(collection, page, "{\"value\":[{\"id\":\"trunc")
    }
    /// Page `page` answers 200 with `body` (once).
    pub fn body_page(collection: Collection, page: u32, body: &str) -> Fault {
        Fault {
            collection,
            page: Some(page),
            times: 1,
            action: FaultAction::Body(body.to_string()),
        }
    }
    /// The next `n` requests wait `delay` before answering.
    pub fn slow(collection: Collection, delay: Duration, n: u32) -> Fault {
        Fault {
            collection,
            page: None,
            times: n,
            action: FaultAction::Delay(delay),
        }
    }
    /// Page `page` of the next round is held until `gate` opens (once).
    pub fn hold(collection: Collection, page: u32, gate: &Gate) -> Fault {
        Fault {
            collection,
            page: Some(page),
            times: 1,
            action: FaultAction::Hold(gate.clone()),
        }
    }
    /// Restricts the fault to one page.
    pub fn on_page(mut self, page: u32) -> Fault {
        self.page = Some(page);
        self
    }
}

/// Requests by collection and status, and successful pages by collection.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub requests: BTreeMap<(Collection, u16), u64>,
    pub pages: BTreeMap<Collection, u64>,
    /// Items written across all pages, by collection.
    pub items: BTreeMap<Collection, u64>,
}

impl Counters {
    /// Every request for `c`, whatever its status.
    pub fn requests(&self, c: Collection) -> u64 {
        self.requests
            .iter()
            .filter(|((cc, _), _)| *cc == c)
            .map(|(_, n)| n)
            .sum()
    }
    pub fn requests_with(&self, c: Collection, status: u16) -> u64 {
        self.requests.get(&(c, status)).copied().unwrap_or(0)
    }
    /// Pages answered 200 with a real page (faults excluded).
    pub fn pages(&self, c: Collection) -> u64 {
        self.pages.get(&c).copied().unwrap_or(0)
    }
    pub fn items(&self, c: Collection) -> u64 {
        self.items.get(&c).copied().unwrap_or(0)
    }
    /// Every collection that saw a request.
    pub fn collections(&self) -> Vec<Collection> {
        let mut v: Vec<Collection> = self.requests.keys().map(|(c, _)| *c).collect();
        v.dedup();
        v
    }
}
