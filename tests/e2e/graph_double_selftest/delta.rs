//! users/delta and groups/delta rounds, 410 on an expired token, nested groups.

use super::*;

#[tokio::test]
async fn users_delta_reports_changes_and_expires() {
    let mut t = Tenant::default();
    for i in 0..30 {
        t.users
            .push(User::new(&format!("{i:08x}-1111-4111-8111-111111111111")).licensed());
    }
    let d = GraphDouble::start(
        t,
        DoubleConfig {
            directory_page_size: 10,
            ..DoubleConfig::default()
        },
    )
    .await;
    let h = d.handle();
    let c = client();
    let tok = token(&c, &d).await;
    let first = format!(
        "{}/users/delta?$select=id,accountEnabled,signInSessionsValidFromDateTime",
        d.graph_v1()
    );
    let (all, delta, pages) = read_all(&c, &first, &tok).await;
    assert_eq!((all.len(), pages), (30, 3));
    let delta = delta.expect("a deltaLink ends the round");

    let u = |i: u32| format!("{i:08x}-1111-4111-8111-111111111111");
    h.set_account_enabled(&u(3), false);
    h.set_sign_in_sessions_valid_from(&u(4), "2026-12-01T09:00:00Z");
    h.remove_user(&u(5));
    let (changes, delta2, _) = read_all(&c, &delta, &tok).await;
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert_eq!(changes[0]["accountEnabled"], false);
    assert_eq!(
        changes[1]["signInSessionsValidFromDateTime"],
        "2026-12-01T09:00:00Z"
    );
    assert_eq!(changes[2]["@removed"]["reason"], "changed");
    let (none, delta3, _) = read_all(&c, &delta2.unwrap(), &tok).await;
    assert!(none.is_empty());

    h.expire_delta_tokens();
    let r = get(&c, &delta3.unwrap(), &tok).await;
    assert_eq!(r.status, 410);
    assert!(
        r.headers["location"]
            .to_str()
            .unwrap()
            .ends_with("/v1.0/users/delta")
    );
    let (again, _, _) = read_all(&c, &first, &tok).await;
    assert_eq!(
        again.len(),
        29,
        "a full resync no longer lists the removed user"
    );

    let latest = get(
        &c,
        &format!("{}/users/delta?$deltatoken=latest", d.graph_v1()),
        &tok,
    )
    .await;
    let lj = latest.json.unwrap();
    assert!(lj["value"].as_array().unwrap().is_empty());
    h.set_account_enabled(&u(7), false);
    let (after, _, _) = read_all(&c, lj["@odata.deltaLink"].as_str().unwrap(), &tok).await;
    assert_eq!(after.len(), 1);
}

#[tokio::test]
async fn groups_nest_and_groups_delta_tracks_membership() {
    let g = small();
    let all = g.groups[0].clone();
    let contractors = g.groups[3].clone();
    let d = GraphDouble::start(g.tenant, DoubleConfig::default()).await;
    let h = d.handle();
    let c = client();
    let tok = token(&c, &d).await;
    let base = d.graph_v1();

    let (direct, _, _) =
        read_all(&c, &format!("{base}/groups/{all}/members?$select=id"), &tok).await;
    assert_eq!(direct.len(), 2, "two nested groups, no direct users");
    let (trans, _, _) = read_all(
        &c,
        &format!("{base}/groups/{all}/transitiveMembers/microsoft.graph.user?$select=id&$top=999"),
        &tok,
    )
    .await;
    assert_eq!(
        trans.len(),
        250,
        "every user is in EU, US or contractors (nested in US)"
    );
    let (with_groups, _, _) =
        read_all(&c, &format!("{base}/groups/{all}/transitiveMembers"), &tok).await;
    assert_eq!(with_groups.len(), 253);
    assert_eq!(
        get(&c, &format!("{base}/groups/nope/members"), &tok)
            .await
            .status,
        404
    );

    let (cmembers, _, _) =
        read_all(&c, &format!("{base}/groups/{contractors}/members"), &tok).await;
    let someone = cmembers[0]["id"].as_str().unwrap().to_string();
    let (memberof, _, _) = read_all(
        &c,
        &format!("{base}/users/{someone}/transitiveMemberOf"),
        &tok,
    )
    .await;
    let ids: Vec<&str> = memberof.iter().map(|g| g["id"].as_str().unwrap()).collect();
    assert!(
        ids.contains(&all.as_str()) && ids.contains(&contractors.as_str()),
        "{ids:?}"
    );

    let filter = format!("id eq '{all}' or id eq '{contractors}'");
    let q = percent_encoding::utf8_percent_encode(&filter, percent_encoding::NON_ALPHANUMERIC);
    let (full, delta, _) = read_all(
        &c,
        &format!("{base}/groups/delta?$select=id,members&$filter={q}"),
        &tok,
    )
    .await;
    let members: usize = full
        .iter()
        .map(|g| g["members@delta"].as_array().unwrap().len())
        .sum();
    assert_eq!(members, 2 + cmembers.len());
    h.remove_member(&contractors, Member::User(Guid::of(&someone)));
    let (changes, _, _) = read_all(&c, &delta.unwrap(), &tok).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["id"], contractors.as_str());
    assert_eq!(
        changes[0]["members@delta"][0]["@removed"]["reason"],
        "deleted"
    );
    assert_eq!(changes[0]["members@delta"][0]["id"], someone.as_str());
    let (trans2, _, _) = read_all(
        &c,
        &format!("{base}/groups/{all}/transitiveMembers/microsoft.graph.user?$top=999"),
        &tok,
    )
    .await;
    assert_eq!(trans2.len(), 249);
}
