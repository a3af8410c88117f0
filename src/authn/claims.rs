//! The [`Principal`] from a *verified* payload, with the issuer's claim names.
//!
//! One pass over the JSON object with a visitor that knows which member names matter for
//! this issuer: no `serde_json::Value` tree, strings borrowed where the input allows.
//! Types are strict: a claim of the wrong JSON type refuses the token rather than being
//! silently skipped (the class of bug where a string `exp` was never checked), and a
//! duplicated member refuses it too, so the token means one thing to everyone reading it.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::error::{TokenRefusal, refuse};
use super::jose::{Peek, Text, set_once};
use super::principal::Principal;
use crate::config::ClaimNames;

/// Which member of the payload a key names, for one issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Exp,
    Nbf,
    Iat,
    AuthTime,
    Iss,
    Tid,
    Jti,
    User,
    ClientApp,
    Device,
    Groups,
    Sub,
    AppId,
    ClaimNames,
    HasGroups,
    Amr,
    Acrs,
    XmsCc,
    Scp,
    Roles,
    Ignore,
}

fn slot(names: &ClaimNames, key: &str) -> Slot {
    // Registered claims first, so a configured name can never shadow `exp` or `iss`.
    match key {
        "exp" => return Slot::Exp,
        "nbf" => return Slot::Nbf,
        "iat" => return Slot::Iat,
        "auth_time" => return Slot::AuthTime,
        "iss" => return Slot::Iss,
        "tid" => return Slot::Tid,
        "jti" => return Slot::Jti,
        _ => {}
    }
    if key == names.user {
        return Slot::User;
    }
    if key == names.client_app {
        return Slot::ClientApp;
    }
    if key == names.device {
        return Slot::Device;
    }
    if key == names.groups {
        return Slot::Groups;
    }
    match key {
        "sub" => Slot::Sub,
        "appid" => Slot::AppId,
        "_claim_names" => Slot::ClaimNames,
        "hasgroups" => Slot::HasGroups,
        "amr" => Slot::Amr,
        "acrs" => Slot::Acrs,
        "xms_cc" => Slot::XmsCc,
        "scp" => Slot::Scp,
        "roles" => Slot::Roles,
        _ => Slot::Ignore,
    }
}

/// Everything read from the payload, before fallbacks are applied.
#[derive(Default)]
struct Raw<'de> {
    exp: Option<NumericDate>,
    nbf: Option<NumericDate>,
    iat: Option<NumericDate>,
    auth_time: Option<NumericDate>,
    iss: Option<Text<'de>>,
    tid: Option<Text<'de>>,
    jti: Option<Text<'de>>,
    user: Option<Text<'de>>,
    client_app: Option<Text<'de>>,
    device: Option<Text<'de>>,
    groups: Option<Vec<String>>,
    sub: Option<Text<'de>>,
    appid: Option<Text<'de>>,
    claim_names_groups: Option<bool>,
    hasgroups: Option<bool>,
    amr: Option<Vec<String>>,
    acrs: Option<Vec<String>>,
    xms_cc: Option<StrOrList>,
    scp: Option<Text<'de>>,
    roles: Option<Vec<String>>,
}

/// The payload, parsed once with one issuer's claim names.
pub(crate) struct Claims<'de>(Raw<'de>);

/// Parse the payload JSON (strict types, no duplicate members, an object only).
pub(crate) fn parse<'de>(
    payload: &'de [u8],
    names: &ClaimNames,
) -> Result<Claims<'de>, TokenRefusal> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let raw = de
        .deserialize_map(ClaimsVisitor { names })
        .map_err(|_| refuse::CLAIMS)?;
    de.end().map_err(|_| refuse::CLAIMS)?;
    Ok(Claims(raw))
}

/// Build the principal from the verified payload JSON.
///
/// `token_hash_id` is the log-safe id used when the token has no `jti`.
pub(crate) fn principal(
    payload: &[u8],
    names: &ClaimNames,
    issuer_index: usize,
    issuer: &Arc<str>,
    token_hash_id: impl FnOnce() -> String,
) -> Result<Principal, TokenRefusal> {
    parse(payload, names)?.into_principal(issuer_index, issuer, token_hash_id)
}

impl Claims<'_> {
    /// `iss` and `tid`, to choose the issuer (same result as [`super::jose::peek`]).
    pub(crate) fn peek(&self) -> Result<Peek, TokenRefusal> {
        let iss = self.0.iss.as_ref().ok_or(refuse::ISSUER)?;
        Ok(Peek {
            iss: iss.0.as_ref().to_owned(),
            tid: self.0.tid.as_ref().map(|t| t.0.as_ref().to_owned()),
        })
    }

    /// Call only once the signature has verified.
    pub(crate) fn into_principal(
        self,
        issuer_index: usize,
        issuer: &Arc<str>,
        token_hash_id: impl FnOnce() -> String,
    ) -> Result<Principal, TokenRefusal> {
        let raw = self.0;
        let exp = raw.exp.ok_or(refuse::CLAIMS)?.0;
        // The issuer was chosen by this exact `iss`; re-check it rather than trust the caller.
        match &raw.iss {
            Some(Text(iss)) if iss.as_ref() == issuer.as_ref() => {}
            _ => return Err(refuse::ISSUER),
        }
        let user = raw
            .user
            .or(raw.sub)
            .map(|t| t.0.into_owned())
            .filter(|u| !u.is_empty())
            .ok_or(refuse::CLAIMS)?;
        let xms_cc_cp1 = match &raw.xms_cc {
            Some(StrOrList::One(s)) => s == "cp1",
            Some(StrOrList::Many(v)) => v.iter().any(|s| s == "cp1"),
            None => false,
        };
        Ok(Principal {
            issuer_index,
            issuer: Arc::clone(issuer),
            user,
            tenant: raw.tid.map(|t| t.0.to_ascii_lowercase()),
            client_app: raw.client_app.or(raw.appid).map(|t| t.0.into_owned()),
            device: raw.device.map(|t| t.0.into_owned()),
            // No `groups` claim at all (many apps and providers never emit one) says
            // nothing about membership, just as an overage does not.
            groups_incomplete: raw.groups.is_none()
                || raw.claim_names_groups.unwrap_or(false)
                || raw.hasgroups.unwrap_or(false),
            groups: raw.groups.unwrap_or_default(),
            amr: raw.amr.unwrap_or_default(),
            acrs: raw.acrs.unwrap_or_default(),
            auth_time: raw.auth_time.map(|d| d.0),
            iat: raw.iat.map(|d| d.0),
            exp,
            nbf: raw.nbf.map(|d| d.0),
            cae_capable: xms_cc_cp1,
            identity: Default::default(),
            scopes: raw
                .scp
                .map(|t| {
                    t.0.split(' ')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            roles: raw.roles.unwrap_or_default(),
            token_id: match raw.jti {
                Some(Text(j)) if !j.is_empty() => j.into_owned(),
                _ => token_hash_id(),
            },
        })
    }
}

struct ClaimsVisitor<'n> {
    names: &'n ClaimNames,
}

impl<'de> Visitor<'de> for ClaimsVisitor<'_> {
    type Value = Raw<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JWT claims object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut r = Raw::default();
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            let m = &mut map;
            match slot(self.names, &key) {
                Slot::Exp => set_once(m, &mut r.exp, "exp")?,
                Slot::Nbf => set_once(m, &mut r.nbf, "nbf")?,
                Slot::Iat => set_once(m, &mut r.iat, "iat")?,
                Slot::AuthTime => set_once(m, &mut r.auth_time, "auth_time")?,
                Slot::Iss => set_once(m, &mut r.iss, "iss")?,
                Slot::Tid => set_once(m, &mut r.tid, "tid")?,
                Slot::Jti => set_once(m, &mut r.jti, "jti")?,
                Slot::User => set_once(m, &mut r.user, "user")?,
                Slot::ClientApp => set_once(m, &mut r.client_app, "client_app")?,
                Slot::Device => set_once(m, &mut r.device, "device")?,
                Slot::Groups => set_once(m, &mut r.groups, "groups")?,
                Slot::Sub => set_once(m, &mut r.sub, "sub")?,
                Slot::AppId => set_once(m, &mut r.appid, "appid")?,
                Slot::ClaimNames => {
                    if r.claim_names_groups.is_some() {
                        return Err(de::Error::duplicate_field("_claim_names"));
                    }
                    r.claim_names_groups = Some(m.next_value_seed(HasMember("groups"))?);
                }
                Slot::HasGroups => set_once(m, &mut r.hasgroups, "hasgroups")?,
                Slot::Amr => set_once(m, &mut r.amr, "amr")?,
                Slot::Acrs => set_once(m, &mut r.acrs, "acrs")?,
                Slot::XmsCc => set_once(m, &mut r.xms_cc, "xms_cc")?,
                Slot::Scp => set_once(m, &mut r.scp, "scp")?,
                Slot::Roles => set_once(m, &mut r.roles, "roles")?,
                Slot::Ignore => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(r)
    }
}

/// RFC 7519 NumericDate: a JSON number of seconds (fractions rounded down). Strings,
/// negatives and non-finite values are refused.
struct NumericDate(i64);

impl<'de> de::Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = NumericDate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a NumericDate")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumericDate, E> {
                i64::try_from(v)
                    .map(NumericDate)
                    .map_err(|_| E::custom("date out of range"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NumericDate, E> {
                if v < 0 {
                    return Err(E::custom("negative date"));
                }
                Ok(NumericDate(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NumericDate, E> {
                // 2^53: the largest range where every integer is exact; far beyond year 9999.
                if v.is_finite() && (0.0..9.0e15).contains(&v) {
                    Ok(NumericDate(v.floor() as i64))
                } else {
                    Err(E::custom("date out of range"))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// `xms_cc`: Entra sends an array; some stacks send one string.
enum StrOrList {
    One(String),
    Many(Vec<String>),
}

impl<'de> de::Deserialize<'de> for StrOrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrOrList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StrOrList, E> {
                Ok(StrOrList::One(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrOrList, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(StrOrList::Many(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Whether an object has a member with this name (values skipped). Used for
/// `_claim_names.groups`, the marker of an Entra groups overage.
struct HasMember(&'static str);

impl<'de> DeserializeSeed<'de> for HasMember {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for HasMember {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(Text(k)) = map.next_key::<Text<'de>>()? {
            found |= k.as_ref() == self.0;
            map.next_value::<IgnoredAny>()?;
        }
        Ok(found)
    }
}

/// Lower-case hex of the first 8 bytes of the token's SHA-256: a log-safe token id.
pub(crate) fn short_hash_id(digest: &[u8; 32]) -> String {
    let mut s = String::with_capacity(16);
    for b in &digest[..8] {
        s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        s.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    s
}

#[cfg(test)]
#[path = "claims_tests.rs"]
mod tests;
