//! The Graph double checks itself with a plain hyper client: token issue and refusal,
//! bearer checks, paging, `$select`, `$expand`, v1.0 vs beta, 429 / mid-collection
//! faults, users and groups delta with 410, nested groups, the client assertion checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod assertion;
mod delta;

use crate::graph_double::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

type C = Client<HttpConnector, Full<Bytes>>;

fn client() -> C {
    Client::builder(TokioExecutor::new()).build_http()
}

struct Resp {
    status: u16,
    headers: http::HeaderMap,
    json: Option<Value>,
    text: String,
}

async fn send(c: &C, method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    let mut b = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = c
        .request(b.body(Full::new(Bytes::from(body.to_string()))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Resp {
        status,
        headers,
        json: serde_json::from_slice(&bytes).ok(),
        text,
    }
}

async fn token_with(c: &C, d: &GraphDouble, form: &str) -> Resp {
    let h = [("content-type", "application/x-www-form-urlencoded")];
    send(c, "POST", &d.token_url(), &h, form).await
}

fn secret_form(d: &GraphDouble, secret: &str) -> String {
    let cfg = DoubleConfig::default();
    format!(
        "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
        cfg.client_id,
        percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC),
        percent_encoding::utf8_percent_encode(
            &format!("{}/.default", d.url()),
            percent_encoding::NON_ALPHANUMERIC
        ),
    )
}

async fn token(c: &C, d: &GraphDouble) -> String {
    let r = token_with(c, d, &secret_form(d, "double-secret~value")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn get(c: &C, url: &str, tok: &str) -> Resp {
    send(
        c,
        "GET",
        url,
        &[("authorization", &format!("Bearer {tok}"))],
        "",
    )
    .await
}

/// Follows nextLinks (bounded); returns the items and the final deltaLink if any.
async fn read_all(c: &C, first: &str, tok: &str) -> (Vec<Value>, Option<String>, usize) {
    let mut items = Vec::new();
    let mut url = first.to_string();
    for pages in 1..=10_000 {
        let r = get(c, &url, tok).await;
        assert_eq!(r.status, 200, "{url}: {}", r.text);
        let j = r.json.unwrap();
        items.extend(j["value"].as_array().unwrap().iter().cloned());
        match j["@odata.nextLink"].as_str() {
            Some(n) => url = n.to_string(),
            None => {
                return (
                    items,
                    j["@odata.deltaLink"].as_str().map(str::to_string),
                    pages,
                );
            }
        }
    }
    panic!("paging never ended");
}

fn small() -> Generated {
    generate(250, 2500, 1200, 7)
}

#[tokio::test]
async fn token_endpoint_issues_and_refuses() {
    let d = GraphDouble::start(Tenant::default(), DoubleConfig::default()).await;
    let c = client();
    let ok = token_with(&c, &d, &secret_form(&d, "double-secret~value")).await;
    assert_eq!(ok.status, 200);
    let j = ok.json.unwrap();
    assert_eq!(j["token_type"], "Bearer");
    assert_eq!(j["expires_in"], 3599);
    assert_eq!(j["ext_expires_in"], 3599);
    let tok = j["access_token"].as_str().unwrap().to_string();

    let bad = token_with(&c, &d, &secret_form(&d, "wrong")).await;
    assert_eq!(bad.status, 400);
    let bj = bad.json.unwrap();
    assert_eq!(bj["error"], "invalid_client");
    assert!(
        bj["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000215")
    );
    assert_eq!(bj["error_codes"][0], 7000215);

    d.handle().refuse_credentials(true);
    let refused = token_with(&c, &d, &secret_form(&d, "double-secret~value")).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json.unwrap()["error"], "invalid_client");
    d.handle().refuse_credentials(false);

    let wrong_scope = token_with(
        &c,
        &d,
        &secret_form(&d, "double-secret~value").replace("%2Edefault", "%2Eother"),
    )
    .await;
    assert_eq!(wrong_scope.status, 400, "{}", wrong_scope.text);
    assert_eq!(wrong_scope.json.unwrap()["error"], "invalid_scope");

    let recorded = d.handle().token_requests();
    assert_eq!(recorded.len(), 4);
    assert!(recorded[0].refused.is_none());
    assert!(recorded[1].refused.as_deref().unwrap().contains("7000215"));
    assert_eq!(recorded[0].form["grant_type"], "client_credentials");

    // Graph: no token, an unknown token, a revoked token are all 401.
    let url = format!("{}/deviceManagement/managedDevices", d.graph_v1());
    let none = send(&c, "GET", &url, &[], "").await;
    assert_eq!(none.status, 401);
    assert_eq!(
        none.json.unwrap()["error"]["code"],
        "InvalidAuthenticationToken"
    );
    assert_eq!(get(&c, &url, "made-up").await.status, 401);
    assert_eq!(get(&c, &url, &tok).await.status, 200);
    d.handle().revoke_access_tokens();
    assert_eq!(get(&c, &url, &tok).await.status, 401);
    let n = d.handle().counters();
    assert_eq!(n.requests_with(Collection::ManagedDevices, 401), 3);
    assert_eq!(n.requests_with(Collection::Token, 400), 3);
}

#[tokio::test]
async fn expired_access_token_is_refused() {
    let cfg = DoubleConfig {
        token_lifetime: std::time::Duration::from_millis(1),
        ..DoubleConfig::default()
    };
    let d = GraphDouble::start(Tenant::default(), cfg).await;
    let c = client();
    let r = token_with(&c, &d, &secret_form(&d, "double-secret~value")).await;
    let tok = r.json.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let r = get(&c, &format!("{}/users", d.graph_v1()), &tok).await;
    assert_eq!(r.status, 401);
    assert!(r.text.contains("expired"), "{}", r.text);
}

#[tokio::test]
async fn pages_follow_next_links_and_select_trims_fields() {
    let g = small();
    let d = GraphDouble::start(g.tenant, DoubleConfig::default()).await;
    let c = client();
    let tok = token(&c, &d).await;
    let base = d.graph_v1();

    let (devices, delta, pages) = read_all(
        &c,
        &format!(
            "{base}/deviceManagement/managedDevices?$select=id,azureADDeviceId,complianceState"
        ),
        &tok,
    )
    .await;
    assert_eq!((devices.len(), pages, delta), (2500, 3, None));
    let first = devices[0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["@odata.type", "azureADDeviceId", "complianceState", "id"]
    );

    // Users: the three fields that matter come only when selected.
    let (plain, _, _) = read_all(&c, &format!("{base}/users"), &tok).await;
    assert_eq!(plain.len(), 250);
    assert!(
        plain
            .iter()
            .all(|u| u.get("accountEnabled").is_none() && u.get("assignedPlans").is_none())
    );
    let (sel, _, upages) = read_all(
        &c,
        &format!("{base}/users?$select=id,accountEnabled,assignedPlans,signInSessionsValidFromDateTime&$top=100"),
        &tok,
    )
    .await;
    assert_eq!((sel.len(), upages), (250, 3));
    assert!(
        sel.iter()
            .all(|u| u["accountEnabled"].is_boolean() && u["assignedPlans"].is_array())
    );
    assert!(sel.iter().all(|u| u.get("displayName").is_none()));
    let licensed = sel
        .iter()
        .filter(|u| {
            u["assignedPlans"].as_array().unwrap().iter().any(|p| {
                p["servicePlanId"] == INTUNE_A
                    && matches!(p["capabilityStatus"].as_str(), Some("Enabled" | "Warning"))
            })
        })
        .count();
    assert!(licensed > 150 && licensed < 250, "{licensed}");

    // An unknown property and an oversized $top are 400s, as Graph answers them.
    let r = get(&c, &format!("{base}/users?$select=id,noSuchField"), &tok).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        get(&c, &format!("{base}/users?$top=1000"), &tok)
            .await
            .status,
        400
    );
    // A skiptoken from one collection is no good on another.
    let r = get(
        &c,
        &format!("{base}/deviceManagement/managedDevices?$top=10"),
        &tok,
    )
    .await;
    let next = r.json.unwrap()["@odata.nextLink"]
        .as_str()
        .unwrap()
        .to_string();
    let tok_part = next.split("$skiptoken=").nth(1).unwrap();
    let r = get(
        &c,
        &format!("{base}/deviceAppManagement/managedAppRegistrations?$skiptoken={tok_part}"),
        &tok,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        get(&c, &format!("{base}/users?$skiptoken=garbage!"), &tok)
            .await
            .status,
        400
    );

    let n = d.handle().counters();
    assert_eq!(
        n.requests(Collection::ManagedDevices),
        n.pages(Collection::ManagedDevices)
    );
    assert_eq!(n.items(Collection::ManagedDevices), 2500 + 10);
}

#[tokio::test]
async fn registrations_have_device_ids_only_in_beta_and_policies_expand() {
    let g = small();
    let d = GraphDouble::start(g.tenant, DoubleConfig::default()).await;
    let c = client();
    let tok = token(&c, &d).await;
    let url = |v: &str, q: &str| {
        format!(
            "{}/{v}/deviceAppManagement/managedAppRegistrations{q}",
            d.url()
        )
    };

    let (v1, _, _) = read_all(&c, &url("v1.0", ""), &tok).await;
    assert_eq!(v1.len(), 1200);
    assert!(v1.iter().all(|r| r.get("azureADDeviceId").is_none()));
    assert!(
        v1[0]["@odata.type"]
            .as_str()
            .unwrap()
            .ends_with("ManagedAppRegistration")
    );
    assert_eq!(
        get(&c, &url("v1.0", "?$select=id,azureADDeviceId"), &tok)
            .await
            .status,
        400
    );
    let (beta, _, _) = read_all(
        &c,
        &url("beta", "?$select=id,userId,appIdentifier,azureADDeviceId"),
        &tok,
    )
    .await;
    let with_device = beta
        .iter()
        .filter(|r| r["azureADDeviceId"].as_str().is_some_and(|s| !s.is_empty()))
        .count();
    assert!(with_device > 900 && with_device < 1200, "{with_device}");
    assert!(
        beta.iter()
            .any(|r| r["appIdentifier"]["packageId"] == AZURE_APP_ANDROID_PACKAGE)
    );

    let p = format!(
        "{}/deviceAppManagement/iosManagedAppProtections",
        d.graph_v1()
    );
    let (plain, _, _) = read_all(&c, &p, &tok).await;
    assert_eq!(plain.len(), 1);
    assert!(plain[0].get("apps").is_none() && plain[0].get("assignments").is_none());
    let (exp, _, _) = read_all(&c, &format!("{p}?$expand=apps,assignments"), &tok).await;
    let pol = &exp[0];
    assert_eq!(
        pol["@odata.type"],
        "#microsoft.graph.iosManagedAppProtection"
    );
    assert_eq!(pol["periodOfflineBeforeAccessCheck"], "PT12H");
    assert_eq!(
        pol["apps"][0]["mobileAppIdentifier"]["@odata.type"],
        "#microsoft.graph.iosMobileAppIdentifier"
    );
    let targets: Vec<&str> = pol["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["target"]["@odata.type"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        [
            "#microsoft.graph.groupAssignmentTarget",
            "#microsoft.graph.exclusionGroupAssignmentTarget"
        ]
    );
    let (android, _, _) = read_all(
        &c,
        &format!(
            "{}/deviceAppManagement/androidManagedAppProtections?$expand=apps",
            d.graph_v1()
        ),
        &tok,
    )
    .await;
    assert_eq!(
        android[0]["apps"][0]["mobileAppIdentifier"]["packageId"],
        AZURE_APP_ANDROID_PACKAGE
    );
    assert!(android[0].get("assignments").is_none());
}

#[tokio::test]
async fn throttling_and_mid_collection_faults() {
    let g = small();
    let d = GraphDouble::start(g.tenant, DoubleConfig::default()).await;
    let h = d.handle();
    let c = client();
    let tok = token(&c, &d).await;
    let url = format!("{}/deviceManagement/managedDevices", d.graph_v1());

    h.inject(Fault::throttle(Collection::ManagedDevices, 1, Some(2)));
    h.inject(Fault::throttle(Collection::ManagedDevices, 1, None));
    let r = get(&c, &url, &tok).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["retry-after"], "2");
    assert_eq!(r.json.unwrap()["error"]["code"], "TooManyRequests");
    let r = get(&c, &url, &tok).await;
    assert_eq!(r.status, 429);
    assert!(r.headers.get("retry-after").is_none());
    assert_eq!(h.pending_faults(), 0);

    h.inject(Fault::fail_page(Collection::ManagedDevices, 1, 500));
    let p0 = get(&c, &url, &tok).await;
    assert_eq!(p0.status, 200);
    let next = p0.json.unwrap()["@odata.nextLink"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(get(&c, &next, &tok).await.status, 500);
    assert_eq!(get(&c, &next, &tok).await.status, 200, "the fault is spent");

    h.inject(Fault::garbage_page(Collection::ManagedDevices, 0));
    let g = get(&c, &url, &tok).await;
    assert_eq!(g.status, 200);
    assert!(g.json.is_none(), "garbage must not parse: {}", g.text);

    h.inject(Fault::unavailable(Collection::Token, 1));
    let t = token_with(&c, &d, &secret_form(&d, "double-secret~value")).await;
    assert_eq!(t.status, 503);

    let n = h.counters();
    assert_eq!(n.requests_with(Collection::ManagedDevices, 429), 2);
    assert_eq!(n.requests_with(Collection::ManagedDevices, 500), 1);
    assert_eq!(n.pages(Collection::ManagedDevices), 2);
    assert_eq!(n.requests(Collection::ManagedDevices), 6);
}

#[test]
fn generator_is_deterministic_and_realistic() {
    let a = generate(1000, 3000, 3000, 42);
    let b = generate(1000, 3000, 3000, 42);
    assert_eq!(a.tenant.users[17].id, b.tenant.users[17].id);
    assert_eq!(
        a.tenant.devices[2999].azure_ad_device_id,
        b.tenant.devices[2999].azure_ad_device_id
    );
    let c = generate(1000, 3000, 3000, 43);
    assert_ne!(a.tenant.users[17].id, c.tenant.users[17].id);
    let t = &a.tenant;
    assert_eq!(
        (
            t.users.len(),
            t.devices.len(),
            t.registrations.len(),
            t.policies.len()
        ),
        (1000, 3000, 3000, 2)
    );
    let noncompliant = t
        .devices
        .iter()
        .filter(|d| &*d.compliance_state != "compliant")
        .count();
    assert!(noncompliant > 100 && noncompliant < 600, "{noncompliant}");
    let azure = t
        .registrations
        .iter()
        .filter(|r| &*r.app.id == AZURE_APP_ANDROID_PACKAGE)
        .count();
    assert!(azure > 0);
    assert!(
        t.registrations
            .iter()
            .any(|r| r.flagged_reasons.iter().any(|f| &**f == "rootedDevice"))
    );
    assert_eq!(a.apps[0].0, AZURE_APP_CLIENT_ID);
}
