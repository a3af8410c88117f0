//! Critical changes published as they are read (issue 11): the records of one Graph page
//! (`state::graph::early`) compared with the state as published, and those that take
//! access away sent at once as an ordinary change batch, through the same lease-checked
//! script, on the same stream and version chain as every other batch. Followers cannot
//! tell an early batch from any other, and need not.
//!
//! Only what tightens goes early, decided by the one rule the end-of-round diff uses
//! ([`super::diff`]'s `critical`):
//! - a user the published state has: its published record with `accountEnabled` and
//!   `licensed` only ever turned off and `revokeSessionsAfter` only ever moved later by
//!   what was read, and its published groups (groups are read later in the round: they
//!   change at the round's end, never early). A user new to the state waits for the
//!   round (its groups and registrations come with it).
//! - a device or registration: the record as read, when the rule calls it critical (it
//!   fails). A registration of a user the published state lacks waits for the round.
//! - removals and app protection policies always wait for the round's end (a removal is
//!   only known once a collection is read to its end; a policy change can loosen as well
//!   as tighten, and its groups are read after it).
//!
//! What was published early is kept as an [`Early`] overlay until a round's diff folds it
//! in (`diff_with`), so the round's end neither resends those records nor undoes them; a
//! round that fails keeps them (they are true in Graph) and the next round's diff starts
//! from them.

use std::borrow::Cow;

use super::diff::{
    BATCH_RECORDS, Change, Early, Kind, Records, RegKey, batch_doc, critical, folded,
};
use super::{PublishError, RedisPublisher};
use crate::policy::RawUser;
use crate::policy::values::parse_rfc3339;
use crate::state::graph::{Mapped, Page};

/// The state as published, one record's text at a time (keys folded, registrations by
/// user x app x device with "" for none): `sync`'s published [`Records`], or a gateway's
/// last Graph round ([`Mapped`], serialised on demand, the same text `sync` would publish).
pub trait Published {
    fn user(&self, id: &str) -> Option<Cow<'_, [u8]>>;
    fn device(&self, id: &str) -> Option<Cow<'_, [u8]>>;
    fn registration(&self, key: &RegKey) -> Option<Cow<'_, [u8]>>;
    fn has_user(&self, id: &str) -> bool {
        self.user(id).is_some()
    }
}

impl Published for Records {
    fn user(&self, id: &str) -> Option<Cow<'_, [u8]>> {
        self.users.get(id).map(|r| Cow::Borrowed(self.text(r)))
    }
    fn device(&self, id: &str) -> Option<Cow<'_, [u8]>> {
        self.devices.get(id).map(|r| Cow::Borrowed(self.text(r)))
    }
    fn registration(&self, key: &RegKey) -> Option<Cow<'_, [u8]>> {
        self.regs.get(key).map(|r| Cow::Borrowed(self.text(r)))
    }
}

impl Published for Mapped {
    fn has_user(&self, id: &str) -> bool {
        self.users.contains_key(id)
    }
    fn user(&self, id: &str) -> Option<Cow<'_, [u8]>> {
        self.users
            .get(id)
            .and_then(|r| ser(r).ok())
            .map(|b| Cow::Owned(b.into()))
    }
    fn device(&self, id: &str) -> Option<Cow<'_, [u8]>> {
        self.devices
            .get(id)
            .and_then(|r| ser(r).ok())
            .map(|b| Cow::Owned(b.into()))
    }
    fn registration(&self, (u, a, d): &RegKey) -> Option<Cow<'_, [u8]>> {
        self.registrations
            .get(&crate::state::graph::map::registration_key(u, a, d))
            .and_then(|r| ser(r).ok())
            .map(|b| Cow::Owned(b.into()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    User(Box<str>),
    Device(Box<str>),
    Registration(RegKey),
}

impl Key {
    fn kind(&self) -> Kind {
        match self {
            Key::User(_) => Kind::User,
            Key::Device(_) => Kind::Device,
            Key::Registration(_) => Kind::Registration,
        }
    }
}

/// The critical records of one page, not yet published.
#[derive(Debug, Default)]
pub struct Pending {
    items: Vec<(Key, Box<[u8]>)>,
}

impl Pending {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The batch documents, at most [`BATCH_RECORDS`] records each.
    pub fn batches(&self) -> Vec<Vec<u8>> {
        self.items
            .chunks(BATCH_RECORDS)
            .map(|chunk| {
                let changes: Vec<Change<'_>> = chunk
                    .iter()
                    .map(|(k, text)| Change {
                        kind: k.kind(),
                        upsert: Some(text),
                        removal: None,
                    })
                    .collect();
                batch_doc(&changes)
            })
            .collect()
    }
}

impl Early {
    /// Record what `p` holds as published (call only once it is applied everywhere it goes).
    pub fn record(&mut self, p: &Pending) {
        self.commit(&p.items);
    }

    /// Record `items` as published (call only once their batch is in the stream).
    fn commit(&mut self, items: &[(Key, Box<[u8]>)]) {
        for (k, text) in items {
            match k {
                Key::User(id) => self.users.insert(id.clone(), text.clone()),
                Key::Device(id) => self.devices.insert(id.clone(), text.clone()),
                Key::Registration(r) => self.regs.insert(r.clone(), text.clone()),
            };
        }
    }
}

/// The later of two revocation moments; an unreadable one never moves it.
fn later<'a>(published: Option<Cow<'a, str>>, read: Option<&Cow<'_, str>>) -> Option<Cow<'a, str>> {
    let p = published.as_deref().and_then(parse_rfc3339);
    match (read, read.and_then(|r| parse_rfc3339(r))) {
        (Some(r), Some(t)) if p.is_none_or(|p| t > p) => Some(Cow::Owned(r.to_string())),
        _ => published,
    }
}

/// What of `page` takes access away from the state as published (`published` with
/// `early` on top).
pub fn pending(
    published: &(impl Published + ?Sized),
    early: &Early,
    page: &Page,
) -> Result<Pending, String> {
    let mut out = Pending::default();
    match page {
        Page::Users(users) => {
            for u in users {
                let key = folded(&u.id);
                let current = match early.users.get(&key) {
                    Some(t) => Some(Cow::Borrowed(&t[..])),
                    None => published.user(&key),
                };
                let Some(current) = current.as_deref() else {
                    continue;
                };
                let cur: RawUser<'_> = serde_json::from_slice(current)
                    .map_err(|e| format!("published user {}: {e}", u.id))?;
                let tightened = RawUser {
                    id: cur.id.clone(),
                    account_enabled: cur.account_enabled && u.account_enabled,
                    licensed: cur.licensed && u.licensed,
                    groups: cur.groups.clone(),
                    revoke_sessions_after: later(
                        cur.revoke_sessions_after.clone(),
                        u.revoke_sessions_after.as_ref(),
                    ),
                };
                let text = ser(&tightened)?;
                if *text != *current && critical(Kind::User, &text, Some(current)) {
                    out.items.push((Key::User(key), text));
                }
            }
        }
        Page::Devices(devices) => {
            for d in devices {
                let key = folded(&d.device_id);
                let current = match early.devices.get(&key) {
                    Some(t) => Some(Cow::Borrowed(&t[..])),
                    None => published.device(&key),
                };
                let current = current.as_deref();
                let text = ser(d)?;
                if current != Some(&text[..]) && critical(Kind::Device, &text, current) {
                    out.items.push((Key::Device(key), text));
                }
            }
        }
        Page::Registrations(regs) => {
            for r in regs {
                let user = folded(&r.user_id);
                let user_known = early.users.contains_key(&user) || published.has_user(&user);
                if !user_known {
                    continue;
                }
                let key: RegKey = (
                    user,
                    folded(&r.app_id),
                    folded(r.device_id.as_deref().unwrap_or("")),
                );
                let current = match early.regs.get(&key) {
                    Some(t) => Some(Cow::Borrowed(&t[..])),
                    None => published.registration(&key),
                };
                let current = current.as_deref();
                let text = ser(r)?;
                if current != Some(&text[..]) && critical(Kind::Registration, &text, current) {
                    out.items.push((Key::Registration(key), text));
                }
            }
        }
    }
    Ok(out)
}

fn ser<T: serde::Serialize>(v: &T) -> Result<Box<[u8]>, String> {
    serde_json::to_vec(v)
        .map(Vec::into_boxed_slice)
        .map_err(|e| format!("early record: {e}"))
}

/// Publish what of `page` takes access away, batch by batch, recording each published
/// batch in `early`. `at_ms` is the moment the published state was last confirmed as a
/// whole (the last good round), not now: an early batch must not make followers count a
/// half-read round as fresh. Returns the records published. On an error nothing more is
/// published and `early` holds exactly what reached the stream.
pub async fn publish_page(
    publisher: &mut RedisPublisher,
    published: &Records,
    early: &mut Early,
    page: &Page,
    at_ms: i64,
) -> Result<usize, PublishError> {
    let p = pending(published, early, page).map_err(PublishError::Redis)?;
    let mut sent = 0;
    for (doc, items) in p.batches().iter().zip(p.items.chunks(BATCH_RECORDS)) {
        publisher.publish_batch(doc, at_ms).await?;
        early.commit(items);
        sent += items.len();
    }
    Ok(sent)
}

#[cfg(test)]
#[path = "early_tests.rs"]
mod tests;
