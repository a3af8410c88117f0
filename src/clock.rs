//! The one wall clock. Token lifetimes (`authenticate`), sign-in frequency and
//! remediation deadlines (`authorize`), state freshness (`state`), the decision log's
//! timestamp and What If's default time all read it here, so they agree on what "now"
//! is and on how it rounds (whole seconds, floor; 0 before 1970). Tests that need
//! another time pass one in: nothing below reads the clock on its own.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now.
pub fn now() -> SystemTime {
    SystemTime::now()
}

/// Whole seconds since the Unix epoch (0 before it).
pub fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Whole seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    unix_secs(now())
}

/// Now as RFC 3339 (UTC), for log lines.
pub fn now_rfc3339() -> String {
    rfc3339(now())
}

/// `t` as RFC 3339 (UTC): the decision log reads the clock on the request task and formats
/// the time later, on its writer thread.
pub fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn seconds_floor_and_times_before_the_epoch_are_zero() {
        let t = UNIX_EPOCH + Duration::from_millis(1_999);
        assert_eq!((unix_secs(t), unix_ms(t)), (1, 1_999));
        let before = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!((unix_secs(before), unix_ms(before)), (0, 0));
        assert!(now_rfc3339().ends_with('Z'), "{}", now_rfc3339());
    }
}
