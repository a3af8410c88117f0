//! Imported policies as `[[policies]]` TOML, in the keys and spellings `check` accepts.
//!
//! Each policy is preceded by comments naming the Entra policy (id, displayName, state)
//! and the notes a reviewer must read. Text from Graph only ever appears in comments
//! stripped of control characters, or in TOML basic strings escaped here, so a display
//! name cannot inject TOML.

use std::fmt::Write as _;
use std::time::Duration;

use super::{Imported, Outcome};
use crate::config::{Grant, GrantOperator, PolicyConfig, Selector};

/// The whole output: a header, then every imported policy in input order. Skipped and
/// refused policies appear as comments only, so the file tells the whole story.
pub fn toml(outcomes: &[Outcome]) -> String {
    let mut out = String::from(
        "# Imported from Entra Conditional Access by `accessgate import-policies`.\n\
         # Review before use, and keep the policies under test with `accessgate test-policies`.\n",
    );
    for o in outcomes {
        out.push('\n');
        match o {
            Outcome::Imported(p) => policy(&mut out, p),
            Outcome::Skipped {
                entra_id,
                display_name,
                reason,
            } => {
                heading(&mut out, entra_id, display_name);
                let _ = writeln!(out, "# skipped: {}", comment(reason));
            }
            Outcome::Refused {
                entra_id,
                display_name,
                reasons,
            } => {
                heading(&mut out, entra_id, display_name);
                out.push_str("# NOT IMPORTED:\n");
                for r in reasons {
                    let _ = writeln!(out, "#   - {}", comment(r));
                }
            }
        }
    }
    out
}

fn heading(out: &mut String, id: &str, display_name: &str) {
    let _ = writeln!(
        out,
        "# Entra policy {}: {:?}",
        comment(id),
        comment(display_name)
    );
}

fn policy(out: &mut String, i: &Imported) {
    let p = &i.policy;
    heading(out, &i.entra_id, &i.display_name);
    for n in &i.notes {
        let _ = writeln!(out, "# note: {}", comment(n));
    }
    out.push_str("[[policies]]\n");
    let _ = writeln!(out, "name = {}", string(&p.name));
    let _ = writeln!(out, "mode = {}", string(p.mode.as_str()));
    let _ = writeln!(out, "resources = {}", selector(&p.resources));
    users(out, p);
    if !p.platforms.is_empty() {
        let names: Vec<&str> = p.platforms.iter().map(|x| x.as_str()).collect();
        let _ = writeln!(out, "platforms = {}", list(&names));
    }
    let (inc, exc) = (&p.locations.include, &p.locations.exclude);
    if !inc.is_empty() || !exc.is_empty() {
        let mut parts = Vec::new();
        for (key, nets) in [("include", inc), ("exclude", exc)] {
            if !nets.is_empty() {
                let texts: Vec<String> = nets.iter().map(ToString::to_string).collect();
                parts.push(format!("{key} = {}", list(&texts)));
            }
        }
        let _ = writeln!(out, "locations = {{ {} }}", parts.join(", "));
    }
    match &p.grant {
        Grant::Block => out.push_str("grant = { block = true }\n"),
        Grant::Controls {
            operator, controls, ..
        } => {
            let op = match operator {
                GrantOperator::All => "all",
                GrantOperator::Any => "any",
            };
            let names: Vec<&str> = controls.iter().map(|c| c.as_str()).collect();
            let _ = writeln!(
                out,
                "grant = {{ operator = {}, controls = {} }}",
                string(op),
                list(&names)
            );
        }
    }
    if let Some(d) = p.sign_in_frequency {
        let _ = writeln!(
            out,
            "session = {{ sign_in_frequency = {} }}",
            string(&duration(d))
        );
    }
}

fn users(out: &mut String, p: &PolicyConfig) {
    match &p.include_users {
        Selector::All => out.push_str("include_users = [\"all\"]\n"),
        Selector::Some(ids) if !ids.is_empty() => {
            let _ = writeln!(out, "include_users = {}", list(ids));
        }
        Selector::Some(_) => {}
    }
    for (key, ids) in [
        ("include_groups", &p.include_groups),
        ("exclude_users", &p.exclude_users),
        ("exclude_groups", &p.exclude_groups),
    ] {
        if !ids.is_empty() {
            let _ = writeln!(out, "{key} = {}", list(ids));
        }
    }
}

fn selector(s: &Selector) -> String {
    match s {
        Selector::All => "[\"all\"]".to_owned(),
        Selector::Some(v) => list(v),
    }
}

/// Whole days or hours when exact, else minutes (every-time frequency), else seconds.
pub(crate) fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".to_owned(),
        _ if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

fn list<S: AsRef<str>>(items: &[S]) -> String {
    let parts: Vec<String> = items.iter().map(|s| string(s.as_ref())).collect();
    format!("[{}]", parts.join(", "))
}

/// A TOML basic string.
pub(crate) fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text for a `#` comment: one line, no control characters.
fn comment(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
