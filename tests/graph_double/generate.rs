//! A deterministic, realistic tenant for the sync benchmark: users with Intune plans (and
//! the look-alike INTUNE_O365 plan that does NOT license Intune APP), nested groups, an iOS
//! and an Android app protection policy, managed devices across iOS / Android / Windows
//! with Graph's compliance states, app registrations of mapped and unmapped apps.
//! Repeated values (versions, timestamps, names) are shared `Arc<str>`s so the model stays
//! small; JSON is rendered per page by the server.

use std::sync::Arc;

use super::model::{
    AppRef, AssignedPlan, Device, Group, Guid, INTUNE_A, Member, Platform, Policy, Registration,
    Target, Tenant, Text, User,
};

/// The Azure mobile app's client id (research/graph.md section 4).
pub const AZURE_APP_CLIENT_ID: &str = "0c1307d4-29d6-4389-a11c-5cbe7f65d7fa";
/// Its Android package id (research section 4).
pub const AZURE_APP_ANDROID_PACKAGE: &str = "com.microsoft.azure";
/// A PLACEHOLDER: the Azure app's real iOS bundle id is unconfirmed (research section 4:
/// read it from a managedAppRegistration in a real tenant). Only for generated data.
pub const AZURE_APP_IOS_BUNDLE: &str = "example.placeholder.azure-ios";
/// A line-of-business app the generated tenant also maps.
pub const FIELD_APP_CLIENT_ID: &str = "7d1e3c5a-9b2f-4c6d-8e0a-1f2b3c4d5e6f";
pub const FIELD_APP_ID: &str = "com.contoso.field";
/// Outlook's iOS bundle id (research section 3 example); left unmapped on purpose, so a
/// sync exercises "unmapped apps are left out and counted".
pub const UNMAPPED_APP_ID: &str = "com.microsoft.office.outlook";
/// "Mobile Device Management for Office 365": not Intune APP (research section 5).
pub const INTUNE_O365: &str = "882e1d05-acd1-4ccb-8708-6ee03664b117";

/// What [`generate`] made, with the ids a benchmark or test config needs.
pub struct Generated {
    pub tenant: Tenant,
    /// `[[graph.apps]]` entries: (client id, iOS bundle ids, Android package ids).
    pub apps: Vec<(&'static str, Vec<&'static str>, Vec<&'static str>)>,
    /// Groups the app protection policies assign (includes and excludes).
    pub policy_groups: Vec<String>,
    /// Every group id, parents first.
    pub groups: Vec<String>,
}

/// splitmix64: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn guid(&mut self) -> Guid {
        Guid::from_bits(((self.next() as u128) << 64) | self.next() as u128)
    }
    /// Per-mille draw.
    fn permille(&mut self) -> u64 {
        self.next() % 1000
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[(self.next() % v.len() as u64) as usize]
    }
}

fn texts(v: &[&str]) -> Vec<Text> {
    v.iter().map(|s| Text::from(*s)).collect()
}

/// 4096 timestamps between 2026-09-01 and 2026-11-30, Graph's 7-digit fraction.
fn timestamps(rng: &mut Rng) -> Vec<Text> {
    let start = 1_788_220_800i64; // 2026-09-01T00:00:00Z
    (0..4096)
        .map(|_| {
            let secs = start + (rng.next() % (90 * 86_400)) as i64;
            let ticks = rng.next() % 10_000_000;
            let t = time::OffsetDateTime::from_unix_timestamp(secs)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            Text::from(format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{ticks:07}Z",
                t.year(),
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ))
        })
        .collect()
}

/// `users` users, `devices` managed devices (spread over the users), `registrations` app
/// registrations (each on one of the devices, with its user), from `seed`.
pub fn generate(users: usize, devices: usize, registrations: usize, seed: u64) -> Generated {
    let mut rng = Rng(seed);
    let stamps = timestamps(&mut rng);
    let enabled: Text = "Enabled".into();
    let warning: Text = "Warning".into();
    let suspended: Text = "Suspended".into();
    let sco: Text = "SCO".into();
    let plan_date: Text = "2025-03-01T10:00:00Z".into();
    let display: Text = "Generated User".into();

    let g = |rng: &mut Rng| rng.guid().to_string();
    let (all, eu, us, contractors, break_glass, exclusions) = (
        g(&mut rng),
        g(&mut rng),
        g(&mut rng),
        g(&mut rng),
        g(&mut rng),
        g(&mut rng),
    );
    let mut members_eu = Vec::new();
    let mut members_us = Vec::new();
    let mut members_contractors = Vec::new();
    let mut members_bg = Vec::new();
    let mut members_excl = vec![Member::Group(break_glass.clone())];

    let mut tenant = Tenant::default();
    tenant.users.reserve_exact(users);
    for i in 0..users {
        let id = rng.guid();
        let mut plans = Vec::with_capacity(2);
        let p = rng.permille();
        let status = match p {
            0..920 => Some(enabled.clone()),
            920..940 => Some(warning.clone()),
            940..960 => Some(suspended.clone()),
            _ => None,
        };
        if let Some(capability_status) = status {
            plans.push(AssignedPlan {
                assigned_date_time: plan_date.clone(),
                capability_status,
                service: sco.clone(),
                service_plan_id: Guid::of(INTUNE_A),
            });
        }
        if rng.permille() < 300 {
            plans.push(AssignedPlan {
                assigned_date_time: plan_date.clone(),
                capability_status: enabled.clone(),
                service: sco.clone(),
                service_plan_id: Guid::of(INTUNE_O365),
            });
        }
        let m = Member::User(id);
        match rng.permille() {
            0..450 => members_eu.push(m.clone()),
            450..900 => members_us.push(m.clone()),
            _ => members_contractors.push(m.clone()),
        }
        if i < 5 {
            members_bg.push(m.clone());
        } else if i < 205 {
            members_excl.push(m);
        }
        tenant.users.push(User {
            id,
            display_name: display.clone(),
            user_principal_name: format!("user{i}@contoso.example").into(),
            account_enabled: rng.permille() >= 20,
            assigned_plans: plans,
            sign_in_sessions_valid_from: Some(rng.pick(&stamps).clone()),
            extra: None,
            changed: 0,
            removed: false,
        });
    }
    let groups = vec![
        Group {
            id: all.clone(),
            display_name: "All mobile staff".into(),
            members: vec![Member::Group(eu.clone()), Member::Group(us.clone())],
        },
        Group {
            id: eu.clone(),
            display_name: "Mobile staff EU".into(),
            members: members_eu,
        },
        Group {
            id: us.clone(),
            display_name: "Mobile staff US".into(),
            members: {
                let mut m = members_us;
                m.push(Member::Group(contractors.clone()));
                m
            },
        },
        Group {
            id: contractors.clone(),
            display_name: "US contractors".into(),
            members: members_contractors,
        },
        Group {
            id: break_glass.clone(),
            display_name: "Break glass".into(),
            members: members_bg,
        },
        Group {
            id: exclusions.clone(),
            display_name: "APP exclusions".into(),
            members: members_excl,
        },
    ];
    let group_ids = groups.iter().map(|g| g.id.clone()).collect();
    tenant.groups = groups;

    let ios_versions = texts(&["17.4", "17.5.1", "16.7.8", "18.1", "15.8"]);
    let android_versions = texts(&["14", "13", "12", "9"]);
    let windows_versions = texts(&["10.0.22631.3447", "10.0.19045.4291"]);
    let (ios, android, windows): (Text, Text, Text) =
        ("iOS".into(), "Android".into(), "Windows".into());
    let states = texts(&[
        "compliant",
        "noncompliant",
        "inGracePeriod",
        "unknown",
        "error",
        "conflict",
    ]);
    let names = texts(&["iPhone", "iPad", "Pixel 8", "Galaxy S23", "DESKTOP-7Q2K9LM"]);
    let (jb_false, jb_true, jb_unknown): (Text, Text, Text) =
        ("False".into(), "True".into(), "Unknown".into());
    let managed: Text = "managed".into();
    let never: Text = "9999-12-31T23:59:59.9999999Z".into();
    tenant.devices.reserve_exact(devices);
    for i in 0..devices {
        let user = if users == 0 || rng.permille() < 20 {
            None
        } else {
            Some(tenant.users[(i * 7919 + (rng.next() % 3) as usize) % users].id)
        };
        let os_draw = rng.permille();
        let (os, version) = match os_draw {
            0..450 => (ios.clone(), rng.pick(&ios_versions).clone()),
            450..850 => (android.clone(), rng.pick(&android_versions).clone()),
            _ => (windows.clone(), rng.pick(&windows_versions).clone()),
        };
        let state = match rng.permille() {
            0..900 => &states[0],
            900..940 => &states[1],
            940..960 => &states[2],
            960..980 => &states[3],
            980..990 => &states[4],
            _ => &states[5],
        };
        let jail = match (os_draw >= 850, rng.permille()) {
            (true, _) => jb_unknown.clone(),
            (false, 0..2) => jb_true.clone(),
            _ => jb_false.clone(),
        };
        tenant.devices.push(Device {
            id: rng.guid(),
            azure_ad_device_id: if rng.permille() < 10 {
                None
            } else {
                Some(rng.guid())
            },
            user_id: user,
            device_name: rng.pick(&names).clone(),
            compliance_state: state.clone(),
            operating_system: os,
            os_version: version,
            last_sync_date_time: rng.pick(&stamps).clone(),
            jail_broken: jail,
            management_state: managed.clone(),
            compliance_grace_period_expiration_date_time: never.clone(),
            extra: None,
        });
    }

    let app = |p: Platform, id: &str| AppRef {
        platform: p,
        id: Arc::from(id),
    };
    let apps_ios = [
        app(Platform::Ios, AZURE_APP_IOS_BUNDLE),
        app(Platform::Ios, FIELD_APP_ID),
        app(Platform::Ios, UNMAPPED_APP_ID),
    ];
    let apps_android = [
        app(Platform::Android, AZURE_APP_ANDROID_PACKAGE),
        app(Platform::Android, FIELD_APP_ID),
        app(Platform::Android, UNMAPPED_APP_ID),
    ];
    let targets = vec![
        Target::Include(all.clone()),
        Target::Exclude(exclusions.clone()),
    ];
    let mut ios_policy = Policy::new(
        "T_3f9b2c71-6a4d-4e8f-9b1a-2c3d4e5f6a7b",
        Platform::Ios,
        apps_ios.to_vec(),
        targets.clone(),
    );
    ios_policy.display_name = "iOS APP - all mobile staff".into();
    ios_policy.minimum_required_os_version = Some("16.0".into());
    ios_policy.minimum_required_app_version = Some("5.0".into());
    let mut android_policy = Policy::new(
        "T_8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
        Platform::Android,
        apps_android.to_vec(),
        targets,
    );
    android_policy.display_name = "Android APP - all mobile staff".into();
    android_policy.minimum_required_os_version = Some("10.0".into());
    tenant.policies = vec![ios_policy, android_policy];

    let app_versions = texts(&["5.2.0", "5.1.3", "4.9.1"]);
    let sdk_tags = texts(&["", "A1B2C3", "D4E5F6"]);
    let rooted: Text = "rootedDevice".into();
    tenant.registrations.reserve_exact(registrations);
    for j in 0..registrations {
        let (user, device) = if devices == 0 {
            (tenant.users.get(j % users.max(1)).map(|u| u.id), None)
        } else {
            let d = &tenant.devices[j % devices];
            (d.user_id, Some(d))
        };
        let platform = match device.map(|d| &*d.operating_system) {
            Some("Android") => Platform::Android,
            _ => Platform::Ios,
        };
        let apps = if platform == Platform::Ios {
            &apps_ios
        } else {
            &apps_android
        };
        let a = match rng.permille() {
            0..600 => &apps[0],
            600..900 => &apps[1],
            _ => &apps[2],
        };
        let linked = rng.permille() < 850;
        tenant.registrations.push(Registration {
            id: rng.guid(),
            user_id: user.unwrap_or_else(|| rng.guid()),
            app: a.clone(),
            azure_ad_device_id: device.and_then(|d| d.azure_ad_device_id).filter(|_| linked),
            managed_device_id: device.map(|d| d.id).filter(|_| linked),
            application_version: rng.pick(&app_versions).clone(),
            platform_version: device
                .map(|d| d.os_version.clone())
                .unwrap_or_else(|| ios_versions[0].clone()),
            flagged_reasons: if rng.permille() < 5 {
                vec![rooted.clone()]
            } else {
                Vec::new()
            },
            last_sync_date_time: rng.pick(&stamps).clone(),
            created_date_time: plan_date.clone(),
            device_tag: rng.pick(&sdk_tags).clone(),
            extra: None,
        });
    }

    Generated {
        tenant,
        apps: vec![
            (
                AZURE_APP_CLIENT_ID,
                vec![AZURE_APP_IOS_BUNDLE],
                vec![AZURE_APP_ANDROID_PACKAGE],
            ),
            (FIELD_APP_CLIENT_ID, vec![FIELD_APP_ID], vec![FIELD_APP_ID]),
        ],
        policy_groups: vec![all, exclusions],
        groups: group_ids,
    }
}
