//! Small value parsers the state model needs: dotted versions, RFC 3339 timestamps, and
//! case folding of directory ids. (ISO-8601 durations: `crate::config::duration`.)

use std::borrow::Cow;
use std::cmp::Ordering;

/// A dotted numeric version (`"16.0"`, `"5.2.0"`, `"10.0.19045.3803"`), compared part by
/// part as numbers, so `"16.0" < "16.10"` and `"16" == "16.0"`.
///
/// Stored inline (no heap) because a million app registrations carry two each. Up to
/// [`Version::MAX_PARTS`] parts; anything else does not parse, and an unparsable version in
/// a record counts as "too low" against any minimum (fail closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version {
    parts: [u32; Version::MAX_PARTS],
}

impl Version {
    pub const MAX_PARTS: usize = 4;

    /// Parse the leading dotted-numeric part. A trailing build note after whitespace or
    /// `(` (`"17.4 (21E219)"`) is ignored; any other non-digit makes the version invalid,
    /// so `"5.2.0-beta"` is not silently read as `5.2.0`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let end = s.find([' ', '(']).unwrap_or(s.len());
        let core = &s[..end];
        if core.is_empty() {
            return None;
        }
        let mut parts = [0u32; Self::MAX_PARTS];
        for (i, p) in core.split('.').enumerate() {
            if i >= Self::MAX_PARTS || p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            parts[i] = p.parse().ok()?;
        }
        Some(Self { parts })
    }

    /// True when `self` is at least `min`.
    pub fn at_least(&self, min: &Version) -> bool {
        self.cmp(min) != Ordering::Less
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts.cmp(&other.parts)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let last = self.parts.iter().rposition(|&p| p != 0).unwrap_or(0).max(1);
        for (i, p) in self.parts[..=last].iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// RFC 3339 timestamp to unix seconds (fractions dropped).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// Directory ids (object ids, device ids, app ids, group ids) compare case-insensitively:
/// Entra GUIDs are lower-case in tokens but tools do not always keep that. Borrowed
/// unless the input has an upper-case ASCII letter, so the hot path does not allocate.
pub fn fold(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("16.0") < v("16.10"));
        assert!(v("16.9") < v("16.10"));
        assert_eq!(v("16"), v("16.0.0"));
        assert!(v("17.4.1").at_least(&v("17.4")));
        assert!(!v("5.1.9").at_least(&v("5.2")));
        assert_eq!(v("17.4 (21E219)"), v("17.4"));
        assert_eq!(v("10.0.19045.3803").to_string(), "10.0.19045.3803");
        assert_eq!(v("16.0").to_string(), "16.0");
    }

    #[test]
    fn bad_versions_do_not_parse() {
        for s in [
            "",
            "abc",
            "5.2.0-beta",
            "1..2",
            "1.2.3.4.5",
            ".1",
            "99999999999",
        ] {
            assert_eq!(Version::parse(s), None, "{s:?}");
        }
    }

    #[test]
    fn rfc3339_timestamps() {
        assert_eq!(parse_rfc3339("1970-01-01T00:01:00Z"), Some(60));
        assert_eq!(
            parse_rfc3339("2026-11-27T09:00:00.1234567Z"),
            Some(1_795_770_000)
        );
        assert_eq!(
            parse_rfc3339("2026-11-27T10:00:00+01:00"),
            Some(1_795_770_000)
        );
        assert_eq!(parse_rfc3339("2026-11-27"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn fold_borrows_lower_case() {
        assert!(matches!(fold("abc-1"), Cow::Borrowed(_)));
        assert_eq!(fold("ABC-1"), "abc-1");
    }
}
