//! Record-by-record changes between two rounds ([`super::Mapped`]), for a publisher that
//! sends only what changed (issue 11: one connector, many gateways). Both maps are sorted
//! by key, so one merge walk finds every change without hashing or copying records.

use std::collections::BTreeMap;
use std::collections::btree_map::Iter;
use std::iter::Peekable;

use super::Mapped;
use crate::policy::{RawAppPolicy, RawDevice, RawRegistration, RawUser};

/// One changed record of one kind: new or different (`Upsert`), or gone (`Remove`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<'a, T> {
    Upsert(&'a str, &'a T),
    Remove(&'a str),
}

/// Every change from `prev` to `next`, in key order.
pub fn changes<'a, T: PartialEq>(
    prev: &'a BTreeMap<String, T>,
    next: &'a BTreeMap<String, T>,
) -> Vec<Change<'a, T>> {
    let mut a: Peekable<Iter<'a, String, T>> = prev.iter().peekable();
    let mut b: Peekable<Iter<'a, String, T>> = next.iter().peekable();
    let mut out = Vec::new();
    loop {
        match (a.peek(), b.peek()) {
            (None, None) => return out,
            (Some((k, _)), None) => {
                out.push(Change::Remove(k.as_str()));
                a.next();
            }
            (None, Some((k, v))) => {
                out.push(Change::Upsert(k.as_str(), *v));
                b.next();
            }
            (Some((ka, va)), Some((kb, vb))) => match ka.cmp(kb) {
                std::cmp::Ordering::Less => {
                    out.push(Change::Remove(ka.as_str()));
                    a.next();
                }
                std::cmp::Ordering::Greater => {
                    out.push(Change::Upsert(kb.as_str(), *vb));
                    b.next();
                }
                std::cmp::Ordering::Equal => {
                    if va != vb {
                        out.push(Change::Upsert(kb.as_str(), *vb));
                    }
                    a.next();
                    b.next();
                }
            },
        }
    }
}

/// The changes of every kind between two rounds.
#[derive(Debug, Default)]
pub struct RoundChanges<'a> {
    pub users: Vec<Change<'a, RawUser<'static>>>,
    pub devices: Vec<Change<'a, RawDevice<'static>>>,
    pub app_policies: Vec<Change<'a, RawAppPolicy<'static>>>,
    pub registrations: Vec<Change<'a, RawRegistration<'static>>>,
}

impl RoundChanges<'_> {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
            && self.devices.is_empty()
            && self.app_policies.is_empty()
            && self.registrations.is_empty()
    }
}

impl Mapped {
    /// What changed from `prev` (the last round) to `self`.
    pub fn changes_since<'a>(&'a self, prev: &'a Mapped) -> RoundChanges<'a> {
        RoundChanges {
            users: changes(&prev.users, &self.users),
            devices: changes(&prev.devices, &self.devices),
            app_policies: changes(&prev.app_policies, &self.app_policies),
            registrations: changes(&prev.registrations, &self.registrations),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_upserts_and_removals_in_key_order() {
        let m = |kv: &[(&str, i32)]| -> BTreeMap<String, i32> {
            kv.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
        };
        let prev = m(&[("a", 1), ("b", 2), ("d", 4)]);
        let next = m(&[("b", 2), ("c", 3), ("d", 5)]);
        assert_eq!(
            changes(&prev, &next),
            [
                Change::Remove("a"),
                Change::Upsert("c", &3),
                Change::Upsert("d", &5)
            ]
        );
        assert!(changes(&next, &next).is_empty());
        assert_eq!(changes(&m(&[]), &m(&[("x", 1)])), [Change::Upsert("x", &1)]);
        assert_eq!(changes(&m(&[("x", 1)]), &m(&[])), [Change::Remove("x")]);
        assert!(
            Mapped::default()
                .changes_since(&Mapped::default())
                .is_empty()
        );
    }
}
