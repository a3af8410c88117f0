//! Graph collections, one page per request. A page is rendered from the tenant when it is
//! asked for; the `$skiptoken` / `$deltatoken` carries the position and the query (as
//! Graph's opaque tokens do), so nothing is held between pages.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::faults::Collection;
use super::model::{Guid, Member, Platform, Tenant};
use super::render::{self, Select};

/// The state behind a `$skiptoken` / `$deltatoken`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Cursor {
    /// Collection name: a token is refused on another collection.
    pub c: String,
    /// Resource in the path (group id, user id, policy id) when there is one.
    pub r: Option<String>,
    pub offset: usize,
    pub page: u32,
    pub size: usize,
    pub select: Option<Vec<String>>,
    pub expand: (bool, bool),
    pub beta: bool,
    /// Delta: changes after this version (0 = full round) ...
    pub since: u64,
    /// ... up to this one (the next deltaLink's `since`).
    pub upto: u64,
    /// Delta epoch the token belongs to (older = expired, 410).
    pub epoch: u64,
    /// groups/delta `$filter=id eq '..'` ids.
    pub ids: Option<Vec<String>>,
    /// This cursor is a deltaLink (a new round starts from it).
    pub delta_link: bool,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }
    pub fn decode(token: &str) -> Option<Cursor> {
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// A rendered page: the JSON body and how many items it holds.
pub struct Page {
    pub body: Vec<u8>,
    pub items: usize,
}

/// What comes after a page.
enum Next {
    More(Cursor),
    Delta(Cursor),
    End,
}

fn page_json(
    base: &str,
    context: &str,
    path: &str,
    items: &[u8],
    count: usize,
    next: Next,
    link_first: bool,
) -> Page {
    let mut out = Vec::with_capacity(items.len() + 512);
    out.extend_from_slice(b"{\"@odata.context\":");
    render::write_str(&mut out, &format!("{base}/$metadata#{context}"));
    let link = match &next {
        Next::More(c) => Some((
            "@odata.nextLink",
            format!("{base}/{path}?$skiptoken={}", c.encode()),
        )),
        Next::Delta(c) => Some((
            "@odata.deltaLink",
            format!("{base}/{path}?$deltatoken={}", c.encode()),
        )),
        Next::End => None,
    };
    let write_link = |out: &mut Vec<u8>| {
        if let Some((k, v)) = &link {
            out.push(b',');
            render::write_str(out, k);
            out.push(b':');
            render::write_str(out, v);
        }
    };
    if link_first {
        write_link(&mut out);
    }
    out.extend_from_slice(b",\"value\":[");
    out.extend_from_slice(items);
    out.push(b']');
    if !link_first {
        write_link(&mut out);
    }
    out.push(b'}');
    Page {
        body: out,
        items: count,
    }
}

/// Appends items from an index range; `emit` writes item `i` and says whether it wrote.
fn fill(
    cur: &Cursor,
    len: usize,
    mut emit: impl FnMut(&mut Vec<u8>, usize) -> bool,
) -> (Vec<u8>, usize, usize) {
    let mut out = Vec::new();
    let mut n = 0;
    let mut i = cur.offset;
    while i < len && n < cur.size {
        let mark = out.len();
        if n > 0 {
            out.push(b',');
        }
        if emit(&mut out, i) {
            n += 1;
        } else {
            out.truncate(mark);
        }
        i += 1;
    }
    (out, n, i)
}

fn more(cur: &Cursor, next_offset: usize) -> Cursor {
    Cursor {
        offset: next_offset,
        page: cur.page + 1,
        delta_link: false,
        ..cur.clone()
    }
}

/// Where the collection lives under `/{version}/`.
fn path_of(c: Collection, r: Option<&str>) -> String {
    match (c, r) {
        (Collection::Users, _) => "users".into(),
        (Collection::UsersDelta, _) => "users/delta".into(),
        (Collection::GroupsDelta, _) => "groups/delta".into(),
        (Collection::GroupMembers, Some(g)) => format!("groups/{g}/members"),
        (Collection::GroupTransitiveMembers, Some(g)) => format!("groups/{g}/transitiveMembers"),
        (Collection::UserTransitiveMemberOf, Some(u)) => format!("users/{u}/transitiveMemberOf"),
        (Collection::ManagedDevices, _) => "deviceManagement/managedDevices".into(),
        (Collection::IosManagedAppProtections, _) => {
            "deviceAppManagement/iosManagedAppProtections".into()
        }
        (Collection::AndroidManagedAppProtections, _) => {
            "deviceAppManagement/androidManagedAppProtections".into()
        }
        (Collection::ManagedAppRegistrations, _) => {
            "deviceAppManagement/managedAppRegistrations".into()
        }
        _ => "unknown".into(),
    }
}

/// Direct members of `group`, transitively: users and nested groups, each once.
pub fn closure(t: &Tenant, group: &str) -> Vec<Member> {
    let mut out = Vec::new();
    let mut seen: HashSet<Member> = HashSet::new();
    let mut seen_groups: HashSet<&str> = HashSet::from([group]);
    let mut queue: VecDeque<&str> = VecDeque::from([group]);
    while let Some(g) = queue.pop_front() {
        let Some(g) = t.group(g) else { continue };
        for m in &g.members {
            if let Member::Group(id) = m
                && seen_groups.insert(id.as_str())
            {
                queue.push_back(id.as_str());
            }
            if seen.insert(m.clone()) {
                out.push(m.clone());
            }
        }
    }
    out
}

/// Renders page `cur` of collection `c`. `closures` caches transitive closures by group
/// (valid for the tenant version it was computed at).
pub fn render(
    t: &Tenant,
    c: Collection,
    cur: &Cursor,
    base: &str,
    cast: Option<&str>,
    closures: &mut HashMap<String, (u64, Arc<Vec<Member>>)>,
) -> Page {
    let version = if cur.beta { "beta" } else { "v1.0" };
    let base_v = format!("{base}/{version}");
    let path = path_of(c, cur.r.as_deref());
    let select = Select(cur.select.clone());
    match c {
        Collection::Users => {
            let (items, n, next) = fill(cur, t.users.len(), |o, i| {
                let u = &t.users[i];
                if u.is_removed() {
                    return false;
                }
                render::user(o, u, &select);
                true
            });
            let nx = if next < t.users.len() {
                Next::More(more(cur, next))
            } else {
                Next::End
            };
            page_json(&base_v, "users", &path, &items, n, nx, true)
        }
        Collection::UsersDelta => {
            let (items, n, next) = fill(cur, t.users.len(), |o, i| {
                let u = &t.users[i];
                let changed = cur.since == 0 || u.changed > cur.since;
                if !changed || (cur.since == 0 && u.is_removed()) {
                    return false;
                }
                if u.is_removed() {
                    render::removed(o, None, &u.id.to_string(), "changed");
                } else {
                    render::user(o, u, &select);
                }
                true
            });
            let nx = if next < t.users.len() {
                Next::More(more(cur, next))
            } else {
                Next::Delta(delta_link(cur))
            };
            page_json(&base_v, "users", &path, &items, n, nx, true)
        }
        Collection::GroupsDelta => groups_delta(t, cur, &base_v, &path, &select),
        Collection::GroupMembers | Collection::GroupTransitiveMembers => {
            let g = cur.r.clone().unwrap_or_default();
            let members: Arc<Vec<Member>> = if c == Collection::GroupMembers {
                Arc::new(t.group(&g).map(|g| g.members.clone()).unwrap_or_default())
            } else {
                match closures.get(&g) {
                    Some((v, m)) if *v == t.version => m.clone(),
                    _ => {
                        let m = Arc::new(closure(t, &g));
                        closures.insert(g.clone(), (t.version, m.clone()));
                        m
                    }
                }
            };
            let (items, n, next) = fill(cur, members.len(), |o, i| {
                let m = &members[i];
                let keep = match cast {
                    Some("microsoft.graph.user") => matches!(m, Member::User(_)),
                    Some("microsoft.graph.group") => matches!(m, Member::Group(_)),
                    _ => true,
                };
                if keep {
                    render::member(o, m, &t.users, &t.groups, &select);
                }
                keep
            });
            let nx = if next < members.len() {
                Next::More(more(cur, next))
            } else {
                Next::End
            };
            page_json(&base_v, "directoryObjects", &path, &items, n, nx, true)
        }
        Collection::UserTransitiveMemberOf => {
            let user = cur.r.as_deref().and_then(Guid::parse);
            let mut groups: Vec<&str> = Vec::new();
            for g in &t.groups {
                let cl = match closures.get(&g.id) {
                    Some((v, m)) if *v == t.version => m.clone(),
                    _ => {
                        let m = Arc::new(closure(t, &g.id));
                        closures.insert(g.id.clone(), (t.version, m.clone()));
                        m
                    }
                };
                if user.is_some_and(|u| cl.contains(&Member::User(u))) {
                    groups.push(&g.id);
                }
            }
            let (items, n, next) = fill(cur, groups.len(), |o, i| {
                render::member(
                    o,
                    &Member::Group(groups[i].to_string()),
                    &t.users,
                    &t.groups,
                    &select,
                );
                true
            });
            let nx = if next < groups.len() {
                Next::More(more(cur, next))
            } else {
                Next::End
            };
            page_json(&base_v, "directoryObjects", &path, &items, n, nx, true)
        }
        Collection::ManagedDevices => {
            let (items, n, next) = fill(cur, t.devices.len(), |o, i| {
                render::device(o, &t.devices[i], &select);
                true
            });
            let nx = if next < t.devices.len() {
                Next::More(more(cur, next))
            } else {
                Next::End
            };
            page_json(
                &base_v,
                "deviceManagement/managedDevices",
                &path,
                &items,
                n,
                nx,
                false,
            )
        }
        Collection::IosManagedAppProtections | Collection::AndroidManagedAppProtections => {
            let platform = if c == Collection::IosManagedAppProtections {
                Platform::Ios
            } else {
                Platform::Android
            };
            let (items, n, next) = fill(cur, t.policies.len(), |o, i| {
                let p = &t.policies[i];
                if p.platform != platform {
                    return false;
                }
                render::policy(o, p, &select, cur.expand.0, cur.expand.1);
                true
            });
            let nx = if next < t.policies.len() {
                Next::More(more(cur, next))
            } else {
                Next::End
            };
            let ctx = format!(
                "deviceAppManagement/{}",
                path.trim_start_matches("deviceAppManagement/")
            );
            page_json(&base_v, &ctx, &path, &items, n, nx, false)
        }
        Collection::ManagedAppRegistrations => {
            let (items, n, next) = fill(cur, t.registrations.len(), |o, i| {
                render::registration(o, &t.registrations[i], &select, cur.beta);
                true
            });
            let len = t.registrations.len();
            let nx = if next < len {
                Next::More(more(cur, next))
            } else {
                Next::End
            };
            page_json(
                &base_v,
                "deviceAppManagement/managedAppRegistrations",
                &path,
                &items,
                n,
                nx,
                false,
            )
        }
        Collection::Token | Collection::Unknown => Page {
            body: b"{}".to_vec(),
            items: 0,
        },
    }
}

fn delta_link(cur: &Cursor) -> Cursor {
    Cursor {
        offset: 0,
        page: 0,
        since: cur.upto,
        delta_link: true,
        ..cur.clone()
    }
}

/// groups/delta: a full round lists each group with its direct members in
/// `members@delta`, a large group spread over several pages (the same group object again,
/// more members: research section 5); a later round lists only membership changes, removals
/// with `@removed`.
fn groups_delta(t: &Tenant, cur: &Cursor, base_v: &str, path: &str, select: &Select) -> Page {
    let wanted = |id: &str| {
        cur.ids
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|x| x == id))
    };
    // (group, member, removed) in order; a group with no members still appears once.
    let mut rows: Vec<(&str, Option<&Member>, bool)> = Vec::new();
    if cur.since == 0 {
        for g in t.groups.iter().filter(|g| wanted(&g.id)) {
            if g.members.is_empty() {
                rows.push((&g.id, None, false));
            }
            for m in &g.members {
                rows.push((&g.id, Some(m), false));
            }
        }
    } else {
        for ch in t
            .member_log
            .iter()
            .filter(|ch| ch.version > cur.since && ch.version <= cur.upto && wanted(&ch.group))
        {
            rows.push((&ch.group, Some(&ch.member), !ch.added));
        }
        rows.sort_by_key(|r| r.0);
    }
    let members_selected = select
        .0
        .as_ref()
        .is_none_or(|s| s.iter().any(|f| f.eq_ignore_ascii_case("members")));
    let name_selected = select
        .0
        .as_ref()
        .is_none_or(|s| s.iter().any(|f| f.eq_ignore_ascii_case("displayName")));
    let end = (cur.offset + cur.size).min(rows.len());
    let mut out = Vec::new();
    let mut n = 0;
    let mut i = cur.offset;
    let id_only = Select(Some(vec!["id".into()]));
    while i < end {
        let gid = rows[i].0;
        let mut j = i;
        while j < end && rows[j].0 == gid {
            j += 1;
        }
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"id\":");
        render::write_str(&mut out, gid);
        if name_selected {
            let name = t.group(gid).map(|g| g.display_name.as_str()).unwrap_or(gid);
            out.extend_from_slice(b",\"displayName\":");
            render::write_str(&mut out, name);
        }
        if members_selected {
            out.extend_from_slice(b",\"members@delta\":[");
            let mut first = true;
            for (_, m, removed) in &rows[i..j] {
                let Some(m) = m else { continue };
                if !first {
                    out.push(b',');
                }
                first = false;
                if *removed {
                    let (ty, id) = match m {
                        Member::User(u) => ("#microsoft.graph.user", u.to_string()),
                        Member::Group(g) => ("#microsoft.graph.group", g.clone()),
                    };
                    render::removed(&mut out, Some(ty), &id, "deleted");
                } else {
                    render::member(&mut out, m, &t.users, &t.groups, &id_only);
                }
            }
            out.push(b']');
        }
        out.push(b'}');
        n += 1;
        i = j;
    }
    let nx = if end < rows.len() {
        Next::More(more(cur, end))
    } else {
        Next::Delta(delta_link(cur))
    };
    page_json(base_v, "groups", path, &out, n, nx, true)
}
