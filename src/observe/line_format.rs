//! The decision log line's formatter, run on the writer thread for every line.
//!
//! Why it is hand-written: in the proxy bench the writer shares one core with the gateway
//! and the upstream, so its CPU per line is taken straight from request throughput. The
//! general tools (`time`'s RFC 3339 formatter, `write!` and its `fmt` machinery, a per-char
//! escaper) cost several microseconds per line; this writes the same bytes straight into
//! the batch buffer: the date and time of day are formatted once per second (the
//! fraction is appended per line), integers go through `itoa`, and the escaper copies
//! runs that need no escaping in one piece. The output is byte for byte what the previous
//! formatter wrote (`line_format_tests.rs` keeps that formatter as the reference and
//! compares the two on generated records).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use super::decision_log::Line;
use crate::authorize::AuthzOutcome;

/// Appends `l` as one JSON line, newline included.
pub(super) fn write_line(l: &Line, s: &mut String) {
    s.reserve(LINE_GUESS);
    s.push_str("{\"ts\":\"");
    push_timestamp(s, l.at);
    s.push_str("\",\"decision_id\":\"");
    l.id.push_hex(s);
    s.push_str("\",\"method\":");
    push_json_str(s, l.facts.method().as_str());
    s.push_str(",\"host\":");
    push_json_str(s, l.facts.host());
    s.push_str(",\"path\":");
    push_json_str(s, l.facts.path());
    if let Some(rm) = &l.route {
        let r = &rm.route().config;
        s.push_str(",\"route\":");
        push_json_str(s, &r.name);
        s.push_str(",\"resource\":");
        push_json_str(s, &r.resource);
    }
    s.push_str(",\"status\":");
    push_u64(s, u64::from(l.status));
    if let Some(len) = l.bytes {
        s.push_str(",\"bytes\":");
        push_u64(s, len);
    }
    s.push_str(",\"decision\":");
    push_json_str(s, l.verdict.outcome.as_str());
    if !l.verdict.reason.is_empty() {
        s.push_str(",\"reason\":");
        push_json_str(s, l.verdict.reason);
    }
    if let Some(p) = &l.principal {
        s.push_str(",\"user\":");
        push_json_str(s, &p.user);
        if let Some(a) = &p.client_app {
            s.push_str(",\"app\":");
            push_json_str(s, a);
        }
        if let Some(d) = &p.device {
            s.push_str(",\"device\":");
            push_json_str(s, d);
        }
        s.push_str(",\"token_id\":");
        push_json_str(s, &p.token_id);
    }
    if let Some(ip) = l.client_ip {
        s.push_str(",\"client_ip\":\"");
        push_ip(s, ip);
        s.push('"');
    }
    if let Some(o) = &l.authz {
        push_policies(s, o);
    }
    for (phase, took) in l.phases.iter() {
        s.push_str(",\"");
        s.push_str(phase.as_str());
        s.push_str("_us\":");
        push_u128(s, took.as_micros());
    }
    s.push_str(",\"total_us\":");
    push_u128(s, l.total.as_micros());
    s.push_str("}\n");
}

/// Room for a typical line with a few policies, so a batch buffer grows at most once per
/// line (it is reused across batches, so this rarely allocates at all).
const LINE_GUESS: usize = 512;

/// `,"policies":[...]` (applied policies only) and `,"state_fail_open":true`: the same
/// text as `authorize::write_outcome`, in one pass without `write!`. Mode, result and
/// reason are fixed identifiers (no escaping, as there).
fn push_policies(s: &mut String, o: &AuthzOutcome) {
    s.push_str(",\"policies\":[");
    let mut first = true;
    for (name, mode, result, reason) in o.applied() {
        if !first {
            s.push(',');
        }
        first = false;
        s.push_str("{\"name\":");
        push_json_str(s, name);
        s.push_str(",\"mode\":\"");
        s.push_str(mode);
        s.push_str("\",\"result\":\"");
        s.push_str(result.as_str());
        s.push_str("\",\"reason\":\"");
        s.push_str(reason);
        s.push_str("\"}");
    }
    s.push(']');
    if o.evaluation.fail_open {
        s.push_str(",\"state_fail_open\":true");
    }
}

/// What each byte needs inside a JSON string: 0 = nothing, `u` = `\u00XX`, else the
/// letter after the backslash. Only ASCII bytes are ever escaped, so a run between two
/// escaped bytes always starts and ends on a char boundary.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `s` as a quoted JSON string: the same escapes as `respond::push_json_str` (`\"`, `\\`,
/// `\n`, `\r`, `\t`, other control characters as `\u00xx`, everything else as is).
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let mut start = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        let esc = ESCAPE[usize::from(b)];
        if esc == 0 {
            continue;
        }
        // `b` is ASCII, so `start..i` lies on char boundaries; `get` cannot miss.
        out.push_str(s.get(start..i).unwrap_or_default());
        out.push('\\');
        if esc == b'u' {
            out.push_str("u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push(char::from(esc));
        }
        start = i + 1;
    }
    out.push_str(s.get(start..).unwrap_or_default());
    out.push('"');
}

fn push_u64(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

fn push_u128(out: &mut String, n: u128) {
    match u64::try_from(n) {
        Ok(n) => push_u64(out, n),
        Err(_) => out.push_str(itoa::Buffer::new().format(n)),
    }
}

fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_u64(out, u64::from(o));
            }
        }
        // Rare behind most gateways, and its text form (RFC 5952 zero compression) is
        // std's to get right.
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// The first second `time` refuses to format as RFC 3339 (year 10000).
const YEAR_10000: u64 = 253_402_300_800;
/// Seconds from 0000-01-01T00:00:00Z to the epoch: earlier years are refused too.
const YEAR_0: u64 = 62_167_219_200;

/// The last second formatted on this thread (the writer's), `YYYY-MM-DDTHH:MM:SS`.
struct Second {
    unix: u64,
    text: String,
}

thread_local! {
    static SECOND: RefCell<Second> = const {
        RefCell::new(Second { unix: u64::MAX, text: String::new() })
    };
}

/// `t` as RFC 3339 UTC exactly as `clock::rfc3339` writes it (`time`'s formatter):
/// seconds, then `.` and the nanoseconds without trailing zeros when there are any, `Z`.
/// Times before 1970 (never `now()`) take that formatter itself. Years it cannot format
/// give an empty `ts` as it does, including years past 9999, where `time` would panic.
fn push_timestamp(out: &mut String, t: SystemTime) {
    let since = match t.duration_since(UNIX_EPOCH) {
        Ok(d) if d.as_secs() < YEAR_10000 => d,
        Ok(_) => return,
        Err(e) => {
            if e.duration() <= std::time::Duration::from_secs(YEAR_0) {
                out.push_str(&crate::clock::rfc3339(t));
            }
            return;
        }
    };
    let unix = since.as_secs();
    let cached = SECOND.try_with(|c| {
        let mut c = c.borrow_mut();
        if c.unix != unix {
            c.text.clear();
            push_date_time(&mut c.text, unix);
            c.unix = unix;
        }
        out.push_str(&c.text);
    });
    if cached.is_err() {
        push_date_time(out, unix);
    }
    let nanos = since.subsec_nanos();
    if nanos != 0 {
        out.push('.');
        let mut digits = [0u8; 9];
        let mut n = nanos;
        for d in digits.iter_mut().rev() {
            *d = (n % 10) as u8;
            n /= 10;
        }
        let used = digits.iter().rposition(|&d| d != 0).map_or(0, |i| i + 1);
        for &d in digits.iter().take(used) {
            out.push(char::from(b'0' + d));
        }
    }
    out.push('Z');
}

/// `YYYY-MM-DDTHH:MM:SS` for `unix` seconds (below [`YEAR_10000`]).
fn push_date_time(out: &mut String, unix: u64) {
    let (y, m, d) = civil_from_days(unix / 86_400);
    let tod = unix % 86_400;
    push_padded(out, y, 4);
    out.push('-');
    push_padded(out, m, 2);
    out.push('-');
    push_padded(out, d, 2);
    out.push('T');
    push_padded(out, tod / 3600, 2);
    out.push(':');
    push_padded(out, tod / 60 % 60, 2);
    out.push(':');
    push_padded(out, tod % 60, 2);
}

fn push_padded(out: &mut String, n: u64, width: u32) {
    let mut div = 10u64.pow(width.saturating_sub(1));
    while div > 0 {
        out.push(char::from(b'0' + (n / div % 10) as u8));
        div /= 10;
    }
}

/// Year, month, day of the proleptic Gregorian calendar for days since 1970-01-01
/// (Howard Hinnant's `civil_from_days`, for days >= 0).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
#[path = "line_format_tests.rs"]
mod tests;
