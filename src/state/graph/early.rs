//! The connector's side of "critical changes first" (issue 11): each page's records,
//! mapped as far as the round knows them when the page arrives, handed to a [`PageHook`]
//! before the round ends. The hook decides what (if anything) to publish early; the
//! connector only reads, so it stays testable without Redis.
//!
//! What a record carries when it is handed over, and why:
//! - users: `accountEnabled`, `licensed` and `revokeSessionsAfter` as read, but no groups
//!   (groups are read after users, so they are not known yet: `groups` is empty and a hook
//!   must keep the groups it already has);
//! - devices: the whole record, with its noncompliant-since moment from the ledger (or the
//!   round's start, the moment the round's end will give it too);
//! - registrations: the whole record with its compliance derived from this round's app
//!   protection policies (read before registrations), only for users this round knows (the
//!   round's end drops the others as well). A later page of the same user x app x device
//!   may merge into it; a merge only ever makes it stricter, and the round's end carries
//!   the merged record.
//!
//! A hook is called on the connector's task, between two page requests: it must be
//! cheap and never block (queue the page, or drop it: the round's end covers it anyway).

use crate::policy::{RawDevice, RawRegistration, RawUser};

/// One page's mapped records (see the module docs for what each kind carries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    Users(Vec<RawUser<'static>>),
    Devices(Vec<RawDevice<'static>>),
    Registrations(Vec<RawRegistration<'static>>),
}

impl Page {
    pub fn len(&self) -> usize {
        match self {
            Page::Users(v) => v.len(),
            Page::Devices(v) => v.len(),
            Page::Registrations(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Sees each page of a round as it is read (before the round is known to succeed).
pub trait PageHook: Send + Sync {
    fn page(&self, page: Page);
}

/// A hook that forwards pages to a bounded queue, dropping a page when the queue is full
/// (never blocking the read; the end of the round publishes what a dropped page held).
#[derive(Debug, Clone)]
pub struct QueueHook(pub tokio::sync::mpsc::Sender<Page>);

impl PageHook for QueueHook {
    fn page(&self, page: Page) {
        if page.is_empty() {
            return;
        }
        if let Err(tokio::sync::mpsc::error::TrySendError::Full(p)) = self.0.try_send(page) {
            tracing::debug!(
                records = p.len(),
                "early page queue full; the page waits for the end of its round"
            );
        }
    }
}
