//! Compact JWS structure and the JOSE header, checked *before* any key is touched.
//!
//! jsonwebtoken verifies the signature and the registered claims; this module makes the
//! decisions it cannot: exactly three parts, `alg` never `none`/HS*, `crit` refused, and the
//! header parameters that name keys by URL or inline (`jku`, `x5u`, `jwk`, `x5c`) are never
//! read at all. It also peeks at `iss`/`tid` in the (unverified) payload, only to choose
//! which issuer's keys to verify with; nothing else is read before the signature check.
//!
//! The JSON visitors accept objects only (serde's derived structs would also accept arrays)
//! and refuse duplicate members, so the header and payload mean exactly one thing.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::error::{RefusalReason, TokenRefusal, refuse};
use crate::config::JwsAlgorithm;

const NONE_ALG: TokenRefusal =
    TokenRefusal::new(RefusalReason::Algorithm, "unsigned tokens are not accepted");
const HMAC_ALG: TokenRefusal = TokenRefusal::new(
    RefusalReason::Algorithm,
    "symmetric signing algorithms are not accepted",
);
const UNSUPPORTED_ALG: TokenRefusal =
    TokenRefusal::new(RefusalReason::Algorithm, "unsupported signing algorithm");
const CRIT: TokenRefusal = TokenRefusal::new(
    RefusalReason::Header,
    "critical header parameters are not supported",
);
const BAD_HEADER: TokenRefusal = TokenRefusal::new(RefusalReason::Header, "malformed token header");

/// The three base64url parts of a compact JWS.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts<'a> {
    pub header: &'a str,
    pub payload: &'a str,
}

/// Exactly three non-empty, dot-separated parts (a JWE has five; "signature removed" has an
/// empty third part).
pub(crate) fn split(token: &str) -> Result<Parts<'_>, TokenRefusal> {
    let mut it = token.split('.');
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(h), Some(p), Some(s), None) if !h.is_empty() && !p.is_empty() && !s.is_empty() => {
            Ok(Parts {
                header: h,
                payload: p,
            })
        }
        _ => Err(refuse::MALFORMED),
    }
}

/// Strict base64url without padding (the JWS encoding).
pub(crate) fn b64_decode(part: &str) -> Result<Vec<u8>, TokenRefusal> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| refuse::MALFORMED)
}

/// The JOSE header parameters accessgate acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JoseHeader {
    pub alg: JwsAlgorithm,
    pub kid: Option<String>,
}

/// Decode and check the header: `alg` present and an asymmetric algorithm accessgate knows,
/// no `crit`. Everything else (including `jku`, `x5u`, `jwk`, `x5c`) is skipped unread.
pub(crate) fn parse_header(part: &str) -> Result<JoseHeader, TokenRefusal> {
    let bytes = b64_decode(part)?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let raw = de.deserialize_map(HeaderVisitor).map_err(|_| BAD_HEADER)?;
    de.end().map_err(|_| BAD_HEADER)?;
    if raw.crit {
        return Err(CRIT);
    }
    let Some(alg) = raw.alg else {
        return Err(BAD_HEADER);
    };
    let alg = classify_alg(&alg)?;
    Ok(JoseHeader {
        alg,
        kid: raw.kid.map(Cow::into_owned),
    })
}

/// `none` and every HMAC algorithm are refused whatever the configuration says: with public
/// keys from a JWKS, HS* would let anyone holding the public key forge tokens.
pub(crate) fn classify_alg(alg: &str) -> Result<JwsAlgorithm, TokenRefusal> {
    if alg.eq_ignore_ascii_case("none") {
        return Err(NONE_ALG);
    }
    if alg.len() >= 2 && alg.as_bytes()[..2].eq_ignore_ascii_case(b"hs") {
        return Err(HMAC_ALG);
    }
    JwsAlgorithm::parse(alg).ok_or(UNSUPPORTED_ALG)
}

/// The two payload claims read before the signature check, to choose the issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Peek {
    pub iss: String,
    pub tid: Option<String>,
}

/// Read `iss` (required string) and `tid` (optional string) from the unverified payload.
/// Every other member is skipped; the full claims are read only after verification.
pub(crate) fn peek(payload: &[u8]) -> Result<Peek, TokenRefusal> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let (iss, tid) = de
        .deserialize_map(PeekVisitor)
        .map_err(|_| refuse::CLAIMS)?;
    de.end().map_err(|_| refuse::CLAIMS)?;
    let iss = iss.ok_or(refuse::ISSUER)?;
    Ok(Peek {
        iss: iss.into_owned(),
        tid: tid.map(Cow::into_owned),
    })
}

/// A JSON string, borrowed from the input when it has no escapes.
pub(crate) struct Text<'de>(pub Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Deserialize one value of `T` into `slot`, refusing a second occurrence of the member.
pub(crate) fn set_once<'de, A, T>(
    map: &mut A,
    slot: &mut Option<T>,
    name: &'static str,
) -> Result<(), A::Error>
where
    A: MapAccess<'de>,
    T: de::Deserialize<'de>,
{
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

struct RawHeader<'de> {
    alg: Option<Cow<'de, str>>,
    kid: Option<Cow<'de, str>>,
    crit: bool,
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = RawHeader<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JOSE header object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut alg: Option<Text<'de>> = None;
        let mut kid: Option<Text<'de>> = None;
        let mut crit = false;
        let mut seen_crit = false;
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            match key.as_ref() {
                "alg" => set_once(&mut map, &mut alg, "alg")?,
                "kid" => set_once(&mut map, &mut kid, "kid")?,
                "crit" => {
                    if seen_crit {
                        return Err(de::Error::duplicate_field("crit"));
                    }
                    seen_crit = true;
                    // Present in any form (even `null` or `[]`) means refuse.
                    map.next_value::<IgnoredAny>()?;
                    crit = true;
                }
                // jku, x5u, jwk, x5c and everything else: never used, never fetched.
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(RawHeader {
            alg: alg.map(|t| t.0),
            kid: kid.map(|t| t.0),
            crit,
        })
    }
}

struct PeekVisitor;

impl<'de> Visitor<'de> for PeekVisitor {
    type Value = (Option<Cow<'de, str>>, Option<Cow<'de, str>>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JWT claims object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut iss: Option<Text<'de>> = None;
        let mut tid: Option<Text<'de>> = None;
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            match key.as_ref() {
                "iss" => set_once(&mut map, &mut iss, "iss")?,
                "tid" => set_once(&mut map, &mut tid, "tid")?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok((iss.map(|t| t.0), tid.map(|t| t.0)))
    }
}

#[cfg(test)]
#[path = "jose_tests.rs"]
mod tests;
