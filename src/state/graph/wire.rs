//! Graph's JSON, as research/graph.md documents it, decoded leniently: unknown fields are
//! ignored and enum-like values stay strings (Graph adds values, e.g. beta flag reasons),
//! so a new value is mapped fail-closed in [`super::map`] instead of failing the page.
//! A field of the wrong JSON type still fails the page (that is not Graph).

use serde::Deserialize;

/// `users/delta` with `$select=id,accountEnabled,assignedPlans,signInSessionsValidFromDateTime`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphUser {
    pub id: String,
    #[serde(default)]
    pub account_enabled: Option<bool>,
    #[serde(default)]
    pub assigned_plans: Option<Vec<AssignedPlan>>,
    #[serde(default)]
    pub sign_in_sessions_valid_from_date_time: Option<String>,
    /// Present (`{"reason": "changed" | "deleted"}`) when the user left the directory.
    #[serde(default, rename = "@removed")]
    pub removed: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignedPlan {
    #[serde(default)]
    pub service_plan_id: Option<String>,
    #[serde(default)]
    pub capability_status: Option<String>,
}

/// `groups/{id}/transitiveMembers?$select=id`: users, groups, devices, contacts...
#[derive(Debug, Clone, Deserialize)]
pub struct DirectoryObject {
    #[serde(default, rename = "@odata.type")]
    pub odata_type: Option<String>,
    pub id: String,
}

/// `deviceManagement/managedDevices` with `$select`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedDevice {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default, rename = "azureADDeviceId")]
    pub azure_ad_device_id: Option<String>,
    #[serde(default)]
    pub compliance_state: Option<String>,
    #[serde(default)]
    pub operating_system: Option<String>,
    #[serde(default)]
    pub os_version: Option<String>,
}

/// `mobileAppIdentifier`: `bundleId` (iOS) or `packageId` (Android).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppIdentifier {
    #[serde(default, rename = "@odata.type")]
    pub odata_type: Option<String>,
    #[serde(default)]
    pub bundle_id: Option<String>,
    #[serde(default)]
    pub package_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedMobileApp {
    #[serde(default)]
    pub mobile_app_identifier: Option<AppIdentifier>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentTarget {
    #[serde(default, rename = "@odata.type")]
    pub odata_type: Option<String>,
    #[serde(default)]
    pub group_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Assignment {
    #[serde(default)]
    pub target: Option<AssignmentTarget>,
}

/// `ios|androidManagedAppProtections?$expand=apps,assignments`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppProtection {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub period_offline_before_access_check: Option<String>,
    #[serde(default)]
    pub pin_required: Option<bool>,
    #[serde(default)]
    pub minimum_required_os_version: Option<String>,
    #[serde(default)]
    pub minimum_required_app_version: Option<String>,
    #[serde(default)]
    pub apps: Option<Vec<ManagedMobileApp>>,
    #[serde(default)]
    pub assignments: Option<Vec<Assignment>>,
}

/// `deviceAppManagement/managedAppRegistrations`. `azureADDeviceId` exists only in beta;
/// read when present.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRegistration {
    #[serde(default, rename = "@odata.type")]
    pub odata_type: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub app_identifier: Option<AppIdentifier>,
    #[serde(default, rename = "azureADDeviceId")]
    pub azure_ad_device_id: Option<String>,
    #[serde(default)]
    pub application_version: Option<String>,
    #[serde(default)]
    pub platform_version: Option<String>,
    #[serde(default)]
    pub flagged_reasons: Option<Vec<String>>,
    #[serde(default)]
    pub last_sync_date_time: Option<String>,
}
