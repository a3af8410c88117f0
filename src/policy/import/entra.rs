//! Entra Conditional Access objects as Microsoft Graph returns them
//! (`GET /identity/conditionalAccess/policies` and `/namedLocations`, v1.0).
//!
//! The model is deliberately loose: enum values stay strings and unknown fields are kept
//! (`other`), because Graph adds values and properties over time. Parsing must never be the
//! place where a new Graph feature disappears: [`super::map`] looks at every value and at
//! every unknown property, and refuses a policy it cannot translate faithfully.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// A list property (`null`, absent and `[]` all mean "none").
pub type List = Option<Vec<String>>;

/// Properties this model does not know, with their values (`@odata.*` annotations included).
pub type Other = BTreeMap<String, Value>;

/// One `conditionalAccessPolicy`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub id: Option<String>,
    pub display_name: Option<String>,
    /// `enabled` | `disabled` | `enabledForReportingButNotEnforced`.
    pub state: Option<String>,
    pub conditions: Option<Conditions>,
    pub grant_controls: Option<GrantControls>,
    pub session_controls: Option<SessionControls>,
}

/// `conditionalAccessConditionSet`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conditions {
    pub users: Option<Users>,
    pub applications: Option<Applications>,
    /// Workload identities (service principals): kept raw, never mapped.
    pub client_applications: Option<Value>,
    pub client_app_types: List,
    pub platforms: Option<Platforms>,
    pub locations: Option<Locations>,
    pub devices: Option<Value>,
    pub sign_in_risk_levels: List,
    pub user_risk_levels: List,
    pub service_principal_risk_levels: List,
    pub insider_risk_levels: Option<Value>,
    pub authentication_flows: Option<Value>,
    #[serde(flatten)]
    pub other: Other,
}

/// `conditionalAccessUsers`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Users {
    pub include_users: List,
    pub exclude_users: List,
    pub include_groups: List,
    pub exclude_groups: List,
    pub include_roles: List,
    pub exclude_roles: List,
    pub include_guests_or_external_users: Option<Value>,
    pub exclude_guests_or_external_users: Option<Value>,
    #[serde(flatten)]
    pub other: Other,
}

/// `conditionalAccessApplications`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Applications {
    pub include_applications: List,
    pub exclude_applications: List,
    pub include_user_actions: List,
    pub include_authentication_context_class_references: List,
    pub application_filter: Option<Value>,
    #[serde(flatten)]
    pub other: Other,
}

/// `conditionalAccessPlatforms`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Platforms {
    pub include_platforms: List,
    pub exclude_platforms: List,
    #[serde(flatten)]
    pub other: Other,
}

/// `conditionalAccessLocations`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Locations {
    pub include_locations: List,
    pub exclude_locations: List,
    #[serde(flatten)]
    pub other: Other,
}

/// `conditionalAccessGrantControls`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantControls {
    /// A plain string in Graph's schema: `AND` or `OR`.
    pub operator: Option<String>,
    pub built_in_controls: List,
    pub custom_authentication_factors: List,
    pub terms_of_use: List,
    /// A navigation property that real responses inline (`null` or an object).
    pub authentication_strength: Option<Value>,
    #[serde(flatten)]
    pub other: Other,
}

/// `conditionalAccessSessionControls`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionControls {
    pub sign_in_frequency: Option<SignInFrequency>,
    pub application_enforced_restrictions: Option<Value>,
    pub persistent_browser: Option<Value>,
    pub disable_resilience_defaults: Option<Value>,
    pub cloud_app_security: Option<Value>,
    #[serde(flatten)]
    pub other: Other,
}

/// `signInFrequencySessionControl`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInFrequency {
    pub is_enabled: Option<bool>,
    /// `hours` | `days`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub value: Option<i64>,
    /// `primaryAndSecondaryAuthentication` | `secondaryAuthentication`.
    pub authentication_type: Option<String>,
    /// `timeBased` | `everyTime`.
    pub frequency_interval: Option<String>,
    #[serde(flatten)]
    pub other: Other,
}

/// One `namedLocation` (`ipNamedLocation` or `countryNamedLocation`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedLocation {
    #[serde(rename = "@odata.type")]
    pub odata_type: Option<String>,
    pub id: Option<String>,
    pub display_name: Option<String>,
    pub is_trusted: Option<bool>,
    pub ip_ranges: Option<Vec<IpRange>>,
    pub countries_and_regions: List,
    #[serde(flatten)]
    pub other: Other,
}

/// `iPv4CidrRange` / `iPv6CidrRange`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpRange {
    pub cidr_address: Option<String>,
    #[serde(flatten)]
    pub other: Other,
}

/// One Graph collection page as a file holds it: `{"value": [...]}` (with its `@odata.*`
/// annotations) or a bare array.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub items: Vec<Value>,
    /// `@odata.nextLink`: present when this page is not the last.
    pub next_link: Option<String>,
}

/// Read a page. Items stay raw so that one malformed policy is refused on its own instead
/// of failing the whole file.
pub fn page(bytes: &[u8]) -> Result<Page, String> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e})"))?;
    match doc {
        Value::Array(items) => Ok(Page {
            items,
            next_link: None,
        }),
        Value::Object(mut map) => {
            let next_link = match map.remove("@odata.nextLink") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s),
                Some(_) => return Err("\"@odata.nextLink\" is not a string".to_owned()),
            };
            match map.remove("value") {
                Some(Value::Array(items)) => Ok(Page { items, next_link }),
                Some(_) => Err("\"value\" is not an array".to_owned()),
                None => Err(
                    "expected a Graph collection ({\"value\": [...]}) or a JSON array".to_owned(),
                ),
            }
        }
        _ => Err("expected a Graph collection ({\"value\": [...]}) or a JSON array".to_owned()),
    }
}

/// Whether a raw value says anything: `null`, `false`, `""`, `"none"`, `[]`, `{}` and
/// objects holding only such values (or `@odata.*` annotations) say nothing. Used to tell
/// an unset condition (Graph sends many as empty shells) from one the import would drop.
pub fn meaningful(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(_) => true,
        Value::String(s) => !s.is_empty() && !s.eq_ignore_ascii_case("none"),
        Value::Array(a) => a.iter().any(meaningful),
        Value::Object(o) => o.iter().any(|(k, v)| !k.starts_with('@') && meaningful(v)),
    }
}

/// The unknown properties of `other` that say something (annotations skipped).
pub fn unknown_keys(other: &Other) -> Vec<&str> {
    other
        .iter()
        .filter(|(k, v)| !k.contains('@') && meaningful(v))
        .map(|(k, _)| k.as_str())
        .collect()
}
