//! `[[policies]]`: accepted forms and every refusal naming key and line.

use std::time::Duration;

use crate::config::validate::testkit::{last_line_of, ok, refused, refused_at, with};
use crate::config::{Grant, GrantControl, GrantOperator, Platform, PolicyMode, Selector};

/// A policy appended to the base config (whose only route has resource "api").
fn policy(body: &str) -> String {
    with(&format!(
        "[approved_apps]\nids = [\"app-1\"]\n[[policies]]\nname = \"p\"\n{body}"
    ))
}

/// A valid policy with `extra` lines added.
fn valid(extra: &str) -> String {
    policy(&format!(
        "resources = [\"api\"]\ninclude_users = [\"all\"]\n{extra}"
    ))
}

#[test]
fn accepts_every_key() {
    let c = ok(&policy(
        "mode = \"report_only\"\nresources = [\"api\"]\ninclude_users = [\"u1\", \"u2\"]\ninclude_groups = [\"g1\"]\nexclude_users = [\"u3\"]\nexclude_groups = [\"break-glass\"]\nclient_apps = [\"app-1\"]\nplatforms = [\"iOS\", \"android\", \"ios\"]\nlocations = { include = [\"192.0.2.0/24\"], exclude = [\"10.0.0.0/8\", \"2001:db8::/32\"] }\ngrant = { operator = \"any\", controls = [\"approved_app\", \"app_protection\", \"compliant_device\", \"mfa\"], auth_context = \"c1\" }\nsession = { sign_in_frequency = \"8h\" }\nremediation = { enabled = false, window = \"0s\" }\n",
    ));
    let p = &c.policies[0];
    assert_eq!((p.name.as_str(), p.mode), ("p", PolicyMode::ReportOnly));
    assert_eq!(p.resources, Selector::Some(vec!["api".into()]));
    assert_eq!(
        p.include_users,
        Selector::Some(vec!["u1".into(), "u2".into()])
    );
    assert_eq!(
        (
            p.include_groups.as_slice(),
            p.exclude_users.as_slice(),
            p.exclude_groups.as_slice()
        ),
        (
            &["g1".to_owned()][..],
            &["u3".to_owned()][..],
            &["break-glass".to_owned()][..]
        )
    );
    assert_eq!(p.client_apps, ["app-1"]);
    assert_eq!(p.platforms, [Platform::Ios, Platform::Android]);
    assert_eq!(p.locations.include.len(), 1);
    assert_eq!(p.locations.exclude.len(), 2);
    assert_eq!(
        p.grant,
        Grant::Controls {
            operator: GrantOperator::Any,
            controls: vec![
                GrantControl::ApprovedApp,
                GrantControl::AppProtection,
                GrantControl::CompliantDevice,
                GrantControl::Mfa
            ],
            auth_context: Some("c1".into()),
        }
    );
    assert_eq!(p.sign_in_frequency, Some(Duration::from_secs(8 * 3600)));
    assert!(!p.remediation.enabled);
    assert_eq!(p.remediation.window, Duration::ZERO);
}

#[test]
fn all_selectors_and_block() {
    let c = ok(&policy(
        "resources = [\"all\"]\ninclude_groups = [\"g\"]\ngrant = { block = true }\n",
    ));
    let p = &c.policies[0];
    assert_eq!(
        (
            p.resources.clone(),
            p.include_users.clone(),
            p.grant.clone()
        ),
        (Selector::All, Selector::Some(vec![]), Grant::Block)
    );
}

#[test]
fn resources_must_exist() {
    let line = refused(
        &valid("grant = { block = true }\n").replace("[\"api\"]", "[\"api\", \"payroll\"]"),
        "payroll",
        "policies[0].resources[1]",
        "no route has resource \"payroll\"",
    );
    assert!(line.contains("\"api\""), "lists known resources: {line}");
    let text = policy("include_users = [\"all\"]\ngrant = { block = true }\n");
    refused_at(
        &text,
        last_line_of(&text, "[[policies]]"),
        "policies[0].resources",
        "missing (required)",
    );
    refused(
        &policy("resources = []\ninclude_users = [\"all\"]\ngrant = { block = true }\n"),
        "resources = []",
        "policies[0].resources",
        "at least one resource",
    );
}

#[test]
fn all_cannot_be_mixed() {
    refused(
        &policy(
            "resources = [\"api\", \"all\"]\ninclude_users = [\"all\"]\ngrant = { block = true }\n",
        ),
        "resources",
        "policies[0].resources",
        "\"all\" cannot be mixed",
    );
    refused(
        &policy(
            "resources = [\"api\"]\ninclude_users = [\"u1\", \"all\"]\ngrant = { block = true }\n",
        ),
        "include_users",
        "policies[0].include_users",
        "\"all\" cannot be mixed",
    );
    refused(
        &valid("exclude_users = [\"all\"]\ngrant = { block = true }\n"),
        "exclude_users",
        "policies[0].exclude_users",
        "not allowed in an exclude list",
    );
}

#[test]
fn a_policy_must_include_someone() {
    let text = policy("resources = [\"api\"]\ngrant = { block = true }\n");
    refused_at(
        &text,
        last_line_of(&text, "[[policies]]"),
        "policies[0]",
        "applies to no one",
    );
}

#[test]
fn names_are_required_and_unique() {
    let text = with(
        "[[policies]]\nresources = [\"api\"]\ninclude_users = [\"all\"]\ngrant = { block = true }\n",
    );
    refused_at(
        &text,
        last_line_of(&text, "[[policies]]"),
        "policies[0].name",
        "missing (required)",
    );
    let text = format!(
        "{}[[policies]]\nname = \"p\"\nresources = [\"api\"]\ninclude_users = [\"all\"]\ngrant = {{ block = true }}\n",
        valid("grant = { block = true }\n")
    );
    refused_at(
        &text,
        last_line_of(&text, "name = \"p\""),
        "policies[1].name",
        "\"p\" is already policies[0]",
    );
}

#[test]
fn mode_platforms_and_locations_are_checked() {
    refused(
        &valid("mode = \"on\"\ngrant = { block = true }\n"),
        "\"on\"",
        "policies[0].mode",
        "is not one of \"enabled\", \"report_only\", \"disabled\"",
    );
    refused(
        &valid("platforms = [\"ios\", \"symbian\"]\ngrant = { block = true }\n"),
        "symbian",
        "policies[0].platforms[1]",
        "unknown platform \"symbian\"",
    );
    refused(
        &valid("locations = { include = [\"office\"] }\ngrant = { block = true }\n"),
        "office",
        "policies[0].locations.include[0]",
        "is not a CIDR",
    );
    refused(
        &valid("locations = { exclude = [\"10.0.0.0/40\"] }\ngrant = { block = true }\n"),
        "10.0.0.0/40",
        "policies[0].locations.exclude[0]",
        "is not a CIDR",
    );
}

#[test]
fn grant_is_required() {
    let text = valid("");
    refused_at(
        &text,
        last_line_of(&text, "[[policies]]"),
        "policies[0].grant",
        "missing (required)",
    );
}

#[test]
fn grant_is_exactly_one_of_block_or_controls() {
    refused(
        &valid("grant = { block = false }\n"),
        "grant",
        "policies[0].grant",
        "needs either block = true or a non-empty controls list",
    );
    refused(
        &valid("grant = { controls = [] }\n"),
        "grant",
        "policies[0].grant",
        "needs either block = true",
    );
    refused(
        &valid("grant = { operator = \"all\" }\n"),
        "grant",
        "policies[0].grant",
        "needs either block = true",
    );
    refused(
        &valid("grant = { block = true, controls = [\"mfa\"] }\n"),
        "grant",
        "policies[0].grant.controls",
        "not allowed with block = true",
    );
    refused(
        &valid("grant = { block = true, operator = \"any\" }\n"),
        "grant",
        "policies[0].grant.operator",
        "not allowed with block = true",
    );
}

#[test]
fn grant_controls_operator_and_auth_context_are_checked() {
    let line = refused(
        &valid("grant = { controls = [\"mfa\", \"managed_device\"] }\n"),
        "grant",
        "policies[0].grant.controls[1]",
        "unknown control \"managed_device\"",
    );
    assert!(
        line.contains("valid: mfa, compliant_device, approved_app, app_protection"),
        "{line}"
    );
    refused(
        &valid("grant = { operator = \"and\", controls = [\"mfa\"] }\n"),
        "grant",
        "policies[0].grant.operator",
        "is not one of \"all\", \"any\"",
    );
    refused(
        &valid("grant = { controls = [\"compliant_device\"], auth_context = \"c1\" }\n"),
        "grant",
        "policies[0].grant.auth_context",
        "only allowed when controls include \"mfa\"",
    );
    refused(
        &valid("grant = { controls = [\"mfa\"], auth_context = \"c1\\\", x=\\\"\" }\n"),
        "grant",
        "policies[0].grant.auth_context",
        "is not an authentication context id",
    );
}

#[test]
fn approved_app_needs_approved_apps() {
    let text = with(
        "[[policies]]\nname = \"p\"\nresources = [\"api\"]\ninclude_users = [\"all\"]\ngrant = { controls = [\"approved_app\"] }\n",
    );
    refused(
        &text,
        "approved_app",
        "policies[0].grant.controls[0]",
        "approved_app needs [approved_apps] ids",
    );
}

#[test]
fn session_and_remediation_durations_are_checked() {
    refused(
        &valid("grant = { block = true }\nsession = { sign_in_frequency = \"0s\" }\n"),
        "sign_in_frequency",
        "policies[0].session.sign_in_frequency",
        "greater than zero",
    );
    refused(
        &valid("grant = { block = true }\nremediation = { window = \"15\" }\n"),
        "window",
        "policies[0].remediation.window",
        "missing unit",
    );
}
