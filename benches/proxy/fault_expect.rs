//! What the fault soak expects: token classes, the world as the harness last changed it
//! (with, for each change, whether the gateway has applied it yet), and the answers that
//! are right for a class in a world.
//!
//! A change the gateway has not applied yet is a window: both the old and the new answer
//! are right. Once applied (a deterministic signal, see `fault_servers`) exactly one is.
//! A request is judged against every world that existed between its send and its answer,
//! so a change landing while it was in flight never makes a right answer look wrong.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

/// The caller kinds every connection cycles through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A good user on a compliant device: 200.
    Good,
    /// A user whose device the state turns noncompliant and back: 200 / 403 remediate.
    Flip,
    /// A user in the group a `block` policy names: 403 `block_policy`.
    Blocked,
    /// No `Authorization`: 401 `Bearer realm="accessgate"`.
    NoToken,
    /// Signed with the current key, expired an hour ago: 401 `invalid_token`.
    Expired,
    /// The good token with one signature character changed: 401 `invalid_token`.
    Forged,
    /// A good user's token signed with the key before the current one: 200 while that
    /// key is published, 401 `invalid_token` once it is withdrawn (before the first
    /// rotation: a key that was never published).
    PrevKey,
}

pub const CLASSES: [Class; 7] = [
    Class::Good,
    Class::Flip,
    Class::Blocked,
    Class::NoToken,
    Class::Expired,
    Class::Forged,
    Class::PrevKey,
];

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::Flip => "flip",
            Self::Blocked => "blocked",
            Self::NoToken => "no-token",
            Self::Expired => "expired",
            Self::Forged => "forged",
            Self::PrevKey => "prev-key",
        }
    }

    pub fn index(self) -> usize {
        CLASSES.iter().position(|c| *c == self).unwrap_or(0)
    }
}

/// What a response was, read from its status, headers and body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 200 and the echo upstream saw the expected user.
    Allow,
    /// 401 with exactly `Bearer realm="accessgate"`.
    NoToken,
    /// 401 with `error="invalid_token"`.
    Invalid,
    /// 403 `reason` = `block_policy`.
    Block,
    /// 403 `reason` = `device_noncompliant` with `Retry-After` and `remediation_deadline`.
    Remediate,
    /// 502 / 504: the upstream was not there.
    Unservable,
    /// Anything else (a 200 for the wrong user included).
    Other,
}

impl Outcome {
    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accept(u16);

impl Accept {
    pub fn with(self, o: Outcome) -> Self {
        Self(self.0 | o.bit())
    }
    pub fn union(self, o: Self) -> Self {
        Self(self.0 | o.0)
    }
    pub fn has(self, o: Outcome) -> bool {
        self.0 & o.bit() != 0
    }
}

/// A value the harness changes, and whether the gateway has applied the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change<T> {
    pub old: T,
    pub new: T,
    pub applied: bool,
}

impl<T: Copy + PartialEq> Change<T> {
    pub fn settled(v: T) -> Self {
        Self {
            old: v,
            new: v,
            applied: true,
        }
    }
    /// A new value, not yet applied.
    pub fn to(self, v: T) -> Self {
        Self {
            old: self.current(),
            new: v,
            applied: false,
        }
    }
    pub fn applied(self) -> Self {
        Self {
            applied: true,
            ..self
        }
    }
    /// The value to assume once applied (or before the first change).
    pub fn current(&self) -> T {
        self.new
    }
    /// Every value a gateway may be acting on now.
    pub fn possible(&self) -> impl Iterator<Item = T> + '_ {
        let old = (!self.applied && self.old != self.new).then_some(self.old);
        std::iter::once(self.new).chain(old)
    }
}

/// Key generations published by the key server, as a bit set (generation < 64).
pub type KeySet = u64;

/// The world at one moment of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct World {
    /// The upstream is down (or only just back): 502 / 504 are "unservable" for a 200.
    pub upstream_down: bool,
    pub jwks: Change<KeySet>,
    /// The key generation the harness signs with now (`PrevKey` uses the one before).
    pub sign_gen: usize,
    /// The flip user's device is noncompliant.
    pub flip_noncompliant: Change<bool>,
    /// Which certificate generation new handshakes must see.
    pub cert: Change<usize>,
}

impl World {
    /// The right answers for a request of `class` whose token was signed with `key_gen`.
    pub fn accept(&self, class: Class, key_gen: usize) -> Accept {
        let none = Accept::default();
        let allow = if self.upstream_down {
            none.with(Outcome::Allow).with(Outcome::Unservable)
        } else {
            none.with(Outcome::Allow)
        };
        // The answer for a correctly signed token, given the key is known.
        let signed = |ok: Accept| {
            let mut a = none;
            for set in self.jwks.possible() {
                let published = key_gen < 64 && set & (1 << key_gen) != 0;
                a = a.union(if published {
                    ok
                } else {
                    none.with(Outcome::Invalid)
                });
            }
            a
        };
        match class {
            Class::Good | Class::PrevKey => signed(allow),
            Class::Blocked => signed(none.with(Outcome::Block)),
            Class::Flip => {
                let mut a = none;
                for nc in self.flip_noncompliant.possible() {
                    a = a.union(if nc {
                        none.with(Outcome::Remediate)
                    } else {
                        allow
                    });
                }
                signed(a)
            }
            Class::NoToken => none.with(Outcome::NoToken),
            Class::Expired | Class::Forged => none.with(Outcome::Invalid),
        }
    }

    /// Certificate generations a new connection may see.
    pub fn cert_ok(&self, generation: usize) -> bool {
        self.cert.possible().any(|g| g == generation)
    }
}

/// Every world of the run, in order; requests read the version at send and at answer.
pub struct History {
    worlds: RwLock<Vec<Arc<World>>>,
    current: AtomicUsize,
}

impl History {
    pub fn new(first: World) -> Self {
        Self {
            worlds: RwLock::new(vec![Arc::new(first)]),
            current: AtomicUsize::new(0),
        }
    }

    pub fn version(&self) -> usize {
        self.current.load(Ordering::Acquire)
    }

    pub fn get(&self, v: usize) -> Arc<World> {
        let w = self.worlds.read().unwrap_or_else(PoisonError::into_inner);
        w.get(v)
            .or(w.last())
            .cloned()
            .unwrap_or_else(|| Arc::new(self.now_fallback()))
    }

    fn now_fallback(&self) -> World {
        World {
            upstream_down: false,
            jwks: Change::settled(0),
            sign_gen: 0,
            flip_noncompliant: Change::settled(false),
            cert: Change::settled(0),
        }
    }

    /// Publish a changed world (the controller is the only writer).
    pub fn update(&self, f: impl FnOnce(&mut World)) {
        let mut w = self.worlds.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = w.last().map_or_else(|| self.now_fallback(), |l| **l);
        f(&mut next);
        w.push(Arc::new(next));
        self.current.store(w.len() - 1, Ordering::Release);
    }

    /// The right answers over the worlds `from..=to`.
    pub fn accept(&self, from: usize, to: usize, class: Class, key_gen: usize) -> Accept {
        let w = self.worlds.read().unwrap_or_else(PoisonError::into_inner);
        let mut a = Accept::default();
        for world in w.iter().take(to.saturating_add(1)).skip(from) {
            a = a.union(world.accept(class, key_gen));
        }
        a
    }

    /// Whether a certificate generation was right in any world `from..=to`.
    pub fn cert_ok(&self, from: usize, to: usize, generation: usize) -> bool {
        let w = self.worlds.read().unwrap_or_else(PoisonError::into_inner);
        w.iter()
            .take(to.saturating_add(1))
            .skip(from)
            .any(|world| world.cert_ok(generation))
    }

    pub fn len(&self) -> usize {
        self.worlds
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}
