//! The one path normaliser: request paths (the `route` step) and `path_prefix` (config
//! validation) go through the same rule, so a prefix and a request path compare equal
//! exactly when they name the same resource. It lives here, at the bottom of the
//! dependency order, because validation needs it and everything else may use config.

use std::borrow::Cow;

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    NotAbsolute,
    BadEscape,
    Backslash,
    DotSegmentParameters,
}

impl PathError {
    pub fn as_str(self) -> &'static str {
        match self {
            PathError::NotAbsolute => "request path must start with /",
            PathError::BadEscape => "malformed percent-encoding in path",
            PathError::Backslash => "backslash in path",
            PathError::DotSegmentParameters => "dot-segment with ; parameters in path",
        }
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Normalise a request path (RFC 3986 6.2.2): decode percent-encoded unreserved
/// characters, upper-case the remaining escapes, remove dot-segments, and merge repeated
/// slashes. `%2F` stays encoded (it is data, not a separator). Borrowed when already normal.
pub fn normalize_path(path: &str) -> Result<Cow<'_, str>, PathError> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    if bytes.contains(&b'\\') {
        return Err(PathError::Backslash);
    }
    let needs_work = bytes.contains(&b'%')
        || bytes.contains(&b';')
        || path.contains("//")
        || path.contains("/./")
        || path.contains("/../")
        || path.ends_with("/.")
        || path.ends_with("/..");
    if !needs_work {
        return Ok(Cow::Borrowed(path));
    }
    // Pass 1: escapes.
    let mut decoded = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let (h, l) = match (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => (h, l),
                _ => return Err(PathError::BadEscape),
            };
            let v = h * 16 + l;
            if is_unreserved(v) {
                decoded.push(v as char);
            } else if v == b'\\' {
                return Err(PathError::Backslash);
            } else {
                decoded.push('%');
                decoded.push(char::from(b"0123456789ABCDEF"[(v >> 4) as usize]));
                decoded.push(char::from(b"0123456789ABCDEF"[(v & 15) as usize]));
            }
            i += 3;
        } else {
            // The path is &str and we only split at ASCII bytes, so pushing the char
            // starting here keeps UTF-8 intact.
            let ch_len = utf8_len(b);
            decoded.push_str(&path[i..i + ch_len]);
            i += ch_len;
        }
    }
    // Pass 2: segments.
    let mut out: Vec<&str> = Vec::new();
    let mut trailing_slash = decoded.ends_with('/');
    for seg in decoded.split('/') {
        // `..;x` / `.;x`: servlet containers (Tomcat, Jetty) drop the `;` parameters and
        // treat these as dot-segments, so a router that did not would route `/public/..;/admin`
        // to /public while the upstream serves /admin.
        if let Some((name, _)) = seg.split_once(';')
            && (name == "." || name == "..")
        {
            return Err(PathError::DotSegmentParameters);
        }
        match seg {
            "" => {}
            "." => trailing_slash = true,
            ".." => {
                out.pop();
                trailing_slash = true;
            }
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    if decoded.ends_with('/') {
        trailing_slash = true;
    }
    let mut norm = String::with_capacity(decoded.len());
    for s in &out {
        norm.push('/');
        norm.push_str(s);
    }
    if trailing_slash || norm.is_empty() {
        norm.push('/');
    }
    Ok(Cow::Owned(norm))
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}
