//! Record-level diff of two `state.json` documents -> change batch documents
//! (`policy::state_batch`), critical changes first.
//!
//! The index keeps each record's byte range in its document, not a parsed copy, so a
//! million-record round costs its keys and ranges, and a changed record is shipped as the
//! very text the source produced. Records are compared by that text: the source writes
//! them the same way each round, so equal text is equal content (a reformatted source
//! costs a large batch once, never a missed change).

use std::borrow::Cow;
use std::ops::Range;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::policy::fasthash::FastMap;
use crate::policy::values::fold;

/// Records per batch the publisher writes (far below `MAX_BATCH_RECORDS`): a follower
/// applies a batch in one step, and a small batch reaches the fleet sooner.
pub const BATCH_RECORDS: usize = 1_000;

/// user x app x device (device empty when absent), folded.
pub type RegKey = (Box<str>, Box<str>, Box<str>);

/// One document, indexed by record key.
#[derive(Debug, Clone, Default)]
pub struct Records {
    pub doc: Bytes,
    pub(super) users: FastMap<Box<str>, Range<usize>>,
    pub(super) devices: FastMap<Box<str>, Range<usize>>,
    policies: FastMap<Box<str>, Range<usize>>,
    pub(super) regs: FastMap<RegKey, Range<usize>>,
}

/// Records published ahead of their round (`super::early`), on top of a [`Records`]:
/// the state as published is `Records` with these texts in place of (or beside) its own.
#[derive(Debug, Clone, Default)]
pub struct Early {
    pub(super) users: FastMap<Box<str>, Box<[u8]>>,
    pub(super) devices: FastMap<Box<str>, Box<[u8]>>,
    pub(super) regs: FastMap<RegKey, Box<[u8]>>,
}

impl Early {
    /// Records published early and not yet folded into a round's diff.
    pub fn len(&self) -> usize {
        self.users.len() + self.devices.len() + self.regs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc<'a> {
    #[serde(default, borrow)]
    users: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    devices: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    app_protection_policies: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    app_registrations: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct IdKey<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
}

#[derive(Deserialize)]
struct DeviceKey<'a> {
    #[serde(borrow, rename = "azureADDeviceId")]
    id: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegKeyRaw<'a> {
    #[serde(borrow)]
    user_id: Cow<'a, str>,
    #[serde(borrow)]
    app_id: Cow<'a, str>,
    #[serde(default, borrow, rename = "azureADDeviceId")]
    device_id: Option<Cow<'a, str>>,
}

pub(super) fn folded(s: &str) -> Box<str> {
    fold(s).into_owned().into_boxed_str()
}

impl Records {
    /// Index a document that already loaded as a `PolicyState` (so it is valid).
    pub fn index(doc: Bytes) -> Result<Self, String> {
        let parsed: Doc<'_> = serde_json::from_slice(&doc).map_err(|e| e.to_string())?;
        let base = doc.as_ptr() as usize;
        let range = |r: &RawValue| {
            let start = r.get().as_ptr() as usize - base;
            start..start + r.get().len()
        };
        let mut out = Records::default();
        for r in &parsed.users {
            let k: IdKey<'_> = serde_json::from_str(r.get()).map_err(|e| e.to_string())?;
            out.users.insert(folded(&k.id), range(r));
        }
        for r in &parsed.devices {
            let k: DeviceKey<'_> = serde_json::from_str(r.get()).map_err(|e| e.to_string())?;
            out.devices.insert(folded(&k.id), range(r));
        }
        for r in &parsed.app_protection_policies {
            let k: IdKey<'_> = serde_json::from_str(r.get()).map_err(|e| e.to_string())?;
            out.policies.insert(k.id.as_ref().into(), range(r));
        }
        for r in &parsed.app_registrations {
            let k: RegKeyRaw<'_> = serde_json::from_str(r.get()).map_err(|e| e.to_string())?;
            let dev = k.device_id.as_deref().unwrap_or("");
            out.regs.insert(
                (folded(&k.user_id), folded(&k.app_id), folded(dev)),
                range(r),
            );
        }
        drop(parsed);
        out.doc = doc;
        Ok(out)
    }

    pub(super) fn text(&self, r: &Range<usize>) -> &[u8] {
        self.doc.get(r.clone()).unwrap_or(b"null")
    }

    /// Records in this document.
    pub fn len(&self) -> usize {
        self.users.len() + self.devices.len() + self.policies.len() + self.regs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A change of one record, with whether it tightens access (published first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    User,
    Device,
    Policy,
    Registration,
}

pub(super) struct Change<'a> {
    pub(super) kind: Kind,
    /// The record's text (upsert) or its key as JSON (removal).
    pub(super) upsert: Option<&'a [u8]>,
    pub(super) removal: Option<String>,
}

/// Does this record, as it now is, take access away (so it must not wait for the end of
/// the round)? A disabled user, moved revocation, a failing device or registration, a
/// changed app protection policy. The one rule: the end-of-round diff and the early
/// publisher (`super::early`) both ask it.
pub(super) fn critical(kind: Kind, new: &[u8], old: Option<&[u8]>) -> bool {
    let v: serde_json::Value = match serde_json::from_slice(new) {
        Ok(v) => v,
        Err(_) => return true,
    };
    let field = |k: &str| v.get(k);
    match kind {
        Kind::User => {
            let old_revoke = old
                .and_then(|o| serde_json::from_slice::<serde_json::Value>(o).ok())
                .and_then(|o| o.get("revokeSessionsAfter").cloned());
            field("accountEnabled") == Some(&serde_json::Value::Bool(false))
                || (old.is_some()
                    && field("revokeSessionsAfter").cloned().unwrap_or_default()
                        != old_revoke.unwrap_or_default())
        }
        Kind::Device => !matches!(
            field("complianceState").and_then(|c| c.as_str()),
            Some("compliant" | "inGracePeriod")
        ),
        Kind::Registration => {
            !matches!(
                field("complianceState").and_then(|c| c.as_str()),
                Some("compliant" | "inGracePeriod")
            ) || field("flaggedReasons")
                .and_then(|f| f.as_array())
                .is_some_and(|a| a.iter().any(|x| x.as_str() != Some("none")))
        }
        Kind::Policy => true,
    }
}

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// The batch documents that take `old` to `new`: critical changes first (removals and
/// records that now fail), then the rest, each at most [`BATCH_RECORDS`] records. Users
/// come before the registrations that name them, so every batch applies on its own.
pub fn diff(old: &Records, new: &Records) -> Vec<Vec<u8>> {
    diff_with(old, &Early::default(), new)
}

/// [`diff`] from the state as published: `old` with the records published early on top,
/// so that an early record the round confirms is not sent again, and one it changed or
/// dropped is sent (or removed) like any other.
pub fn diff_with(old: &Records, early: &Early, new: &Records) -> Vec<Vec<u8>> {
    let mut critical_changes: Vec<Change<'_>> = Vec::new();
    let mut rest: Vec<Change<'_>> = Vec::new();
    // Users new this round: a registration naming one waits for the user's batch.
    let mut new_users: crate::policy::fasthash::FastSet<&str> = Default::default();
    macro_rules! scan {
        ($kind:expr, $new:expr, $old:expr, $early:expr, $removal:expr) => {
            for (k, r) in $new.iter() {
                let text = new.text(r);
                let before = match $early.get(k) {
                    Some(t) => Some(&t[..]),
                    None => $old.get(k).map(|o| old.text(o)),
                };
                if before == Some(text) {
                    continue;
                }
                let c = Change {
                    kind: $kind,
                    upsert: Some(text),
                    removal: None,
                };
                if critical($kind, text, before) {
                    critical_changes.push(c);
                } else {
                    rest.push(c);
                }
            }
            let early_only = $early.keys().filter(|k| !$old.contains_key(*k));
            for k in $old.keys().chain(early_only) {
                if !$new.contains_key(k) {
                    critical_changes.push(Change {
                        kind: $kind,
                        upsert: None,
                        removal: Some($removal(k)),
                    });
                }
            }
        };
    }
    for k in new.users.keys() {
        if !old.users.contains_key(k) {
            new_users.insert(k);
        }
    }
    let no_policies: FastMap<Box<str>, Box<[u8]>> = FastMap::default();
    scan!(Kind::User, new.users, old.users, early.users, |k: &str| {
        json_str(k)
    });
    scan!(
        Kind::Device,
        new.devices,
        old.devices,
        early.devices,
        |k: &str| { json_str(k) }
    );
    scan!(
        Kind::Policy,
        new.policies,
        old.policies,
        no_policies,
        |k: &str| { json_str(k) }
    );
    scan!(
        Kind::Registration,
        new.regs,
        old.regs,
        early.regs,
        |k: &RegKey| {
            let dev = if k.2.is_empty() {
                "null".to_owned()
            } else {
                json_str(&k.2)
            };
            format!(
                "{{\"userId\":{},\"appId\":{},\"azureADDeviceId\":{dev}}}",
                json_str(&k.0),
                json_str(&k.1)
            )
        }
    );
    // A critical registration of a user first seen this round goes with the rest (after
    // its user); so does a critical upsert of a new user (its registrations follow it).
    let (mut early, mut late): (Vec<_>, Vec<_>) =
        critical_changes
            .into_iter()
            .partition(|c| match (c.kind, c.upsert) {
                (Kind::Registration, Some(text)) => serde_json::from_slice::<RegKeyRaw<'_>>(text)
                    .is_ok_and(|k| !new_users.contains(folded(&k.user_id).as_ref())),
                (Kind::User, Some(text)) => serde_json::from_slice::<IdKey<'_>>(text)
                    .is_ok_and(|k| !new_users.contains(folded(&k.id).as_ref())),
                _ => true,
            });
    late.append(&mut rest);
    // Kind order inside each group: users, devices, policies, registrations.
    early.sort_by_key(|c| c.kind);
    late.sort_by_key(|c| c.kind);
    let mut out = Vec::new();
    for group in [early, late] {
        for chunk in group.chunks(BATCH_RECORDS) {
            out.push(batch_doc(chunk));
        }
    }
    out
}

pub(super) fn batch_doc(changes: &[Change<'_>]) -> Vec<u8> {
    let names = [
        (Kind::User, "users"),
        (Kind::Device, "devices"),
        (Kind::Policy, "appProtectionPolicies"),
        (Kind::Registration, "appRegistrations"),
    ];
    let mut out: Vec<u8> = Vec::with_capacity(
        changes
            .iter()
            .map(|c| c.upsert.map_or(64, <[u8]>::len) + 1)
            .sum::<usize>()
            + 128,
    );
    out.push(b'{');
    let mut first_section = true;
    let mut section = |out: &mut Vec<u8>, name: &str, items: Vec<&[u8]>| {
        if items.is_empty() {
            return;
        }
        if !std::mem::replace(&mut first_section, false) {
            out.push(b',');
        }
        out.extend_from_slice(format!("\"{name}\":[").as_bytes());
        for (i, t) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(t);
        }
        out.push(b']');
    };
    for (kind, name) in names {
        let items: Vec<&[u8]> = changes
            .iter()
            .filter(|c| c.kind == kind)
            .filter_map(|c| c.upsert)
            .collect();
        section(&mut out, name, items);
    }
    let removed: Vec<(&str, Vec<&[u8]>)> = names
        .iter()
        .map(|&(kind, name)| {
            (
                name,
                changes
                    .iter()
                    .filter(|c| c.kind == kind)
                    .filter_map(|c| c.removal.as_deref().map(str::as_bytes))
                    .collect(),
            )
        })
        .collect();
    if removed.iter().any(|(_, v)| !v.is_empty()) {
        if !first_section {
            out.push(b',');
        }
        out.extend_from_slice(b"\"removed\":{");
        let mut first = true;
        for (name, items) in removed {
            if items.is_empty() {
                continue;
            }
            if !std::mem::replace(&mut first, false) {
                out.push(b',');
            }
            out.extend_from_slice(format!("\"{name}\":[").as_bytes());
            for (i, t) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(t);
            }
            out.push(b']');
        }
        out.push(b'}');
    }
    out.push(b'}');
    out
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
