//! (4) Request paths: `route::normalize_path` never panics, and what it returns is
//! absolute, free of empty and dot segments (also percent-encoded ones), and normal
//! already (normalising again changes nothing).

use accessgate::route::normalize_path;
use proptest::prelude::*;
use proptest::sample::select;

use super::run;

fn path_input() -> impl Strategy<Value = String> {
    let atom = select(vec![
        "/", "/", "/", ".", "..", "%", "%2e", "%2E", "%2f", "%2F", "%5c", "%5C", "%25", "%41",
        "%7e", "%zz", "%2", "a", "b", "é", "日", "\\", "~", "-", ";", "%00", "%c3%a9", "%2e%2E",
    ]);
    prop_oneof![
        4 => prop::collection::vec(atom.clone(), 0..20).prop_map(|v| format!("/{}", v.concat())),
        1 => prop::collection::vec(atom, 0..20).prop_map(|v| v.concat()),
        1 => any::<String>(),
        1 => any::<String>().prop_map(|s| format!("/{s}")),
    ]
}

#[test]
fn normalize_path_output_is_normal_and_idempotent() {
    run(1000, path_input(), |input| {
        let out = match normalize_path(&input) {
            Ok(out) => out,
            Err(_) => {
                // Only these make a path unusable.
                prop_assert!(
                    !input.starts_with('/') || input.contains('\\') || input.contains('%')
                );
                return Ok(());
            }
        };
        prop_assert!(out.starts_with('/'), "{input:?} -> {out:?}");
        prop_assert!(!out.contains("//"), "{input:?} -> {out:?}");
        prop_assert!(
            !out.contains("/./") && !out.contains("/../"),
            "{input:?} -> {out:?}"
        );
        prop_assert!(
            !out.ends_with("/..") && !out.ends_with("/."),
            "{input:?} -> {out:?}"
        );
        prop_assert!(
            !out.to_ascii_uppercase().contains("%2E"),
            "{input:?} -> {out:?}"
        );
        prop_assert!(!out.contains('\\'), "{input:?} -> {out:?}");
        let again = normalize_path(&out);
        prop_assert_eq!(
            again.as_deref(),
            Ok(out.as_ref()),
            "not idempotent for {:?}",
            input
        );
        Ok(())
    });
}
