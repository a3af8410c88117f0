//! dhat's profile, folded by owner: for each allocation site still live when the profile
//! was written, the first frame that is not the allocator, a collection or a buffer type
//! (`alloc`, `core`, `std`, `bytes`, ...) names who asked for the memory.

use serde_json::{Value, json};

/// Frames that allocate on someone else's behalf.
const PASS_THROUGH: [&str; 14] = [
    "alloc::", "core::", "std::", "bytes::", "dhat::", "hashbrown::", "slab::", "indexmap::",
    "__rust", "<T as ", "<&", "backtrace::", "tokio::runtime::task::", "smallvec::",
];

/// The symbol of a dhat frame string (`0xADDR: SYMBOL (FILE:LINE:COL)`).
fn symbol(frame: &str) -> &str {
    let s = frame.split_once(": ").map_or(frame, |(_, s)| s);
    s.rsplit_once(" (").map_or(s, |(s, _)| s)
}

fn passes_through(sym: &str) -> bool {
    let s = sym.trim_start_matches('<');
    PASS_THROUGH.iter().any(|p| s.starts_with(p.trim_start_matches('<')))
        || sym.starts_with("<T as ")
        || sym.starts_with("<&")
}

/// Sites holding at least one block per connection, heaviest first: `{owner, bytes_per_conn,
/// blocks_per_conn}`. Two sites with the same owner are summed.
pub fn from_profile(path: &std::path::Path, n: usize) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let ftbl: Vec<&str> = v["ftbl"]
        .as_array()
        .ok_or("dhat profile without ftbl")?
        .iter()
        .map(|f| f.as_str().unwrap_or(""))
        .collect();
    let mut owners: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    for pp in v["pps"].as_array().ok_or("dhat profile without pps")? {
        let eb = pp["eb"].as_u64().unwrap_or(0);
        let ebk = pp["ebk"].as_u64().unwrap_or(0);
        if eb == 0 {
            continue;
        }
        let frames = pp["fs"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let owner = frames
            .iter()
            .filter_map(|i| i.as_u64().and_then(|i| ftbl.get(i as usize)))
            .map(|f| symbol(f))
            .find(|s| !passes_through(s))
            .unwrap_or("?");
        let e = owners.entry(owner.to_owned()).or_default();
        e.0 += eb;
        e.1 += ebk;
    }
    let n64 = n as u64;
    let mut rows: Vec<(String, u64, u64)> = owners
        .into_iter()
        .filter(|(_, (_, k))| *k >= n64)
        .map(|(o, (b, k))| (o, b, k))
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1));
    Ok(Value::Array(
        rows.into_iter()
            .map(|(o, b, k)| {
                json!({
                    "owner": o,
                    "bytes_per_conn": b as f64 / n as f64,
                    "blocks_per_conn": k as f64 / n as f64,
                })
            })
            .collect(),
    ))
}

/// One variant's result as text: the totals, then its sites.
pub fn summary_line(r: &Value) -> String {
    let mut s = format!(
        "{:<44} {:>9.0} B/conn {:>6.1} blocks/conn",
        r["variant"].as_str().unwrap_or("?"),
        r["bytes_per_conn"].as_f64().unwrap_or(0.0),
        r["blocks_per_conn"].as_f64().unwrap_or(0.0)
    );
    for site in r["sites"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let owner = site["owner"].as_str().unwrap_or("?");
        let owner: String = owner.chars().take(110).collect();
        s.push_str(&format!(
            "\n    {:>8.0} B {:>5.1} blk  {owner}",
            site["bytes_per_conn"].as_f64().unwrap_or(0.0),
            site["blocks_per_conn"].as_f64().unwrap_or(0.0),
        ));
    }
    s
}
