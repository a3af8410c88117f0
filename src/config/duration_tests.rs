use std::time::Duration;

use super::*;

#[test]
fn parses_each_unit() {
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(15 * 60)));
    assert_eq!(parse_duration("8h"), Ok(Duration::from_secs(8 * 3600)));
    assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
    assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
}

#[test]
fn parses_combinations_largest_first() {
    assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(
        parse_duration("1d2h3m4s5ms"),
        Ok(Duration::from_millis(
            ((86_400 + 2 * 3600 + 3 * 60 + 4) * 1000) + 5
        ))
    );
}

#[test]
fn rejects_garbage_with_a_reason() {
    let cases = [
        ("", "empty"),
        ("-5s", "negative"),
        ("90", "missing unit"),
        ("1.5h", "whole numbers"),
        ("5 s", "expected a duration"),
        ("10y", "unknown unit \"y\""),
        ("s", "expected a duration"),
        ("30m1h", "largest to smallest"),
        ("1m30m", "largest to smallest"),
        ("99999999999999999999s", "too large"),
        ("999999999999999d", "too large"),
        ("1h ", "expected a duration"),
    ];
    for (input, needle) in cases {
        let err = parse_duration(input).expect_err(input);
        assert!(err.contains(needle), "{input:?}: {err}");
    }
}

#[test]
fn iso8601_accepts_graph_forms() {
    assert_eq!(parse_iso8601("PT12H"), Ok(Duration::from_secs(12 * 3600)));
    assert_eq!(parse_iso8601("P1D"), Ok(Duration::from_secs(86_400)));
    assert_eq!(parse_iso8601("PT30M"), Ok(Duration::from_secs(1800)));
    assert_eq!(parse_iso8601("PT1H30M"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_iso8601("P1DT1H"), Ok(Duration::from_secs(90_000)));
    assert_eq!(parse_iso8601("P2W"), Ok(Duration::from_secs(14 * 86_400)));
    assert_eq!(parse_iso8601("PT0S"), Ok(Duration::ZERO));
    assert_eq!(parse_iso8601("PT0.5S"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_iso8601("pt15m"), Ok(Duration::from_secs(900)));
}

#[test]
fn iso8601_rejects_what_has_no_fixed_meaning() {
    let cases = [
        ("", "not an ISO-8601 duration"),
        ("12H", "not an ISO-8601 duration"),
        ("-PT1H", "not an ISO-8601 duration"),
        ("P", "at least one part"),
        ("PT", "nothing after"),
        ("P1Y", "no fixed length"),
        ("P1M", "no fixed length"),
        ("PT1H1H", "out of order"),
        ("PT30M1H", "out of order"),
        ("PT1.5H", "only seconds"),
        ("PT12", "without a designator"),
        ("PTH", "without a number"),
        ("PT1X", "not an ISO-8601 designator"),
        ("P99999999999999999999D", "too large"),
        ("P999999999999999W", "too large"),
        ("PT1.2.3S", "is not a number"),
    ];
    for (input, needle) in cases {
        let err = parse_iso8601(input).expect_err(input);
        assert!(err.contains(needle), "{input:?}: {err}");
    }
}

#[test]
fn format_round_trips() {
    for text in [
        "0s",
        "250ms",
        "90s",
        "15m",
        "8h",
        "1d",
        "1h30m",
        "1d2h3m4s5ms",
    ] {
        let parsed = parse_duration(text).expect(text);
        let formatted = format_duration(parsed);
        assert_eq!(
            parse_duration(&formatted),
            Ok(parsed),
            "{text} -> {formatted}"
        );
    }
    assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
}

proptest::proptest! {
    /// Arbitrary text never panics either parser.
    #[test]
    fn parsers_never_panic(text in ".{0,24}") {
        let _ = parse_duration(&text);
        let _ = parse_iso8601(&text);
    }

    /// Whatever the config parser accepts, its formatting parses back to the same value.
    #[test]
    fn formatted_durations_parse_back(ms in 0u64..10_000_000_000) {
        let d = Duration::from_millis(ms);
        proptest::prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
    }
}
