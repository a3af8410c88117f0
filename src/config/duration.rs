//! Duration strings: the config's own short form (`"250ms"`, `"90s"`, `"1h30m"`) and the
//! ISO-8601 form Microsoft Graph uses in policy state (`"PT12H"`).
//!
//! Both parsers are hand-written rather than delegated to `humantime` so that the accepted
//! grammar is exactly the documented one (no spaces, no fractions, no "years"), every
//! overflow is an error instead of a wrap, and each rejection says what was expected.

use std::time::Duration;

/// Config-file units, largest first: a string must use them in this order, each once.
const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parse a config duration: one or more `<whole number><unit>` parts, units `d`, `h`, `m`,
/// `s`, `ms`, largest first, each at most once (`"250ms"`, `"90s"`, `"15m"`, `"8h"`,
/// `"1d"`, `"1h30m"`). `"0s"` is a valid zero; whether zero is allowed is the caller's call.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const HINT: &str =
        "expected a duration like \"250ms\", \"90s\", \"15m\", \"8h\", \"1d\" or \"1h30m\"";
    if text.is_empty() {
        return Err(format!("empty duration ({HINT})"));
    }
    if text.starts_with('-') {
        return Err(format!("\"{text}\": a duration cannot be negative"));
    }
    let bytes = text.as_bytes();
    let mut pos = 0;
    let mut total_ms: u64 = 0;
    // Index into UNITS of the last unit seen: the next must come strictly after it.
    let mut last_unit: Option<usize> = None;
    while pos < bytes.len() {
        let digits_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos == digits_start {
            return Err(format!("\"{text}\": {HINT}"));
        }
        let number: u64 = text[digits_start..pos]
            .parse()
            .map_err(|_| format!("\"{text}\": number too large"))?;
        let unit_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_alphabetic() {
            pos += 1;
        }
        let unit = &text[unit_start..pos];
        if unit.is_empty() {
            return Err(if pos < bytes.len() && bytes[pos] == b'.' {
                format!(
                    "\"{text}\": use whole numbers of a smaller unit (e.g. \"1h30m\", not \"1.5h\")"
                )
            } else if pos == bytes.len() {
                format!("\"{text}\": missing unit (ms, s, m, h or d), e.g. \"{number}s\"")
            } else {
                format!("\"{text}\": {HINT}")
            });
        }
        let Some(index) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(format!(
                "\"{text}\": unknown unit \"{unit}\" (use ms, s, m, h or d)"
            ));
        };
        if last_unit.is_some_and(|last| index <= last) {
            return Err(format!(
                "\"{text}\": units must go from largest to smallest, each once (e.g. \"1h30m\")"
            ));
        }
        last_unit = Some(index);
        total_ms = number
            .checked_mul(UNITS[index].1)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| format!("\"{text}\": duration too large"))?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Parse an ISO-8601 duration as Microsoft Graph writes it: `P[nW][nD][T[nH][nM][n[.f]S]]`
/// (`"PT12H"`, `"P1D"`, `"PT30M"`, `"PT1H30M"`, `"PT0.5S"`). Years and months are refused
/// because their length depends on the calendar; signs are refused because a negative
/// period has no meaning in policy state.
pub fn parse_iso8601(text: &str) -> Result<Duration, String> {
    let upper = text.to_ascii_uppercase();
    let Some(rest) = upper.strip_prefix('P') else {
        return Err(format!(
            "\"{text}\" is not an ISO-8601 duration (expected e.g. \"PT12H\", \"P1D\", \"PT30M\")"
        ));
    };
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) => {
            if time.is_empty() {
                return Err(format!("\"{text}\": nothing after \"T\""));
            }
            (date, Some(time))
        }
        None => (rest, None),
    };
    if date.is_empty() && time.is_none() {
        return Err(format!(
            "\"{text}\": an ISO-8601 duration needs at least one part"
        ));
    }
    let mut total = Duration::ZERO;
    total = add_parts(text, date, &[('W', 604_800), ('D', 86_400)], total)?;
    if let Some(time) = time {
        total = add_parts(text, time, &[('H', 3_600), ('M', 60), ('S', 1)], total)?;
    }
    Ok(total)
}

/// Add the `<number><designator>` parts of one ISO-8601 section (date or time) to `total`.
/// Designators must appear in the order of `units`, each at most once; only seconds (the
/// last designator of the time section) may carry a fraction.
fn add_parts(
    text: &str,
    mut section: &str,
    units: &[(char, u64)],
    mut total: Duration,
) -> Result<Duration, String> {
    let mut next_unit = 0;
    while !section.is_empty() {
        let Some(end) = section.find(|c: char| !c.is_ascii_digit() && c != '.') else {
            return Err(format!("\"{text}\": number without a designator"));
        };
        let (number, tail) = section.split_at(end);
        let mut chars = tail.chars();
        let designator = chars.next().unwrap_or(' ');
        section = chars.as_str();
        let Some(offset) = units[next_unit..]
            .iter()
            .position(|(d, _)| *d == designator)
        else {
            return Err(match designator {
                'Y' | 'M' if units[0].0 == 'W' => format!(
                    "\"{text}\": years and months have no fixed length; use days (e.g. \"P30D\")"
                ),
                _ => format!(
                    "\"{text}\": \"{designator}\" is out of order, repeated or not an ISO-8601 designator"
                ),
            });
        };
        let index = next_unit + offset;
        next_unit = index + 1;
        let seconds_per_unit = units[index].1;
        let part = if number.contains('.') {
            if designator != 'S' {
                return Err(format!("\"{text}\": only seconds may have a fraction"));
            }
            let secs: f64 = number
                .parse()
                .map_err(|_| format!("\"{text}\": \"{number}\" is not a number"))?;
            Duration::try_from_secs_f64(secs)
                .map_err(|_| format!("\"{text}\": \"{number}\" is out of range"))?
        } else {
            if number.is_empty() {
                return Err(format!("\"{text}\": \"{designator}\" without a number"));
            }
            let n: u64 = number
                .parse()
                .map_err(|_| format!("\"{text}\": number too large"))?;
            let secs = n
                .checked_mul(seconds_per_unit)
                .ok_or_else(|| format!("\"{text}\": duration too large"))?;
            Duration::from_secs(secs)
        };
        total = total
            .checked_add(part)
            .ok_or_else(|| format!("\"{text}\": duration too large"))?;
    }
    Ok(total)
}

/// Format a duration in the config's own form (`"1h30m"`, `"250ms"`, `"0s"`), so summaries
/// and messages echo values the way an operator writes them.
pub fn format_duration(duration: Duration) -> String {
    let mut ms = duration.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (name, unit_ms) in UNITS {
        let unit_ms = u128::from(unit_ms);
        let count = ms / unit_ms;
        if count > 0 {
            out.push_str(&format!("{count}{name}"));
            ms %= unit_ms;
        }
    }
    out
}

#[cfg(test)]
#[path = "duration_tests.rs"]
mod tests;
