//! dhat's profile, folded by owner: for each allocation site still live when the profile
//! was written, the first frame that is not the allocator, a collection, a buffer type or
//! tokio's task machinery names who asked for the memory (in release builds most frames
//! are inlined and carry a bare function name, so frames are judged by their source file).

use serde_json::{Value, json};

/// Source files (as dhat prints them: `crate-version/src/...`, or `src/...`, `alloc/...`
/// for the standard library) of code that allocates on someone else's behalf.
const PASS_THROUGH: [&str; 12] = [
    "dhat-",
    "alloc/",
    "core/",
    "std/",
    "src/",
    "bytes-",
    "hashbrown-",
    "slab-",
    "indexmap-",
    "smallvec-",
    "conn_memory.rs",
    "/rustc/",
];

/// tokio files that only carry a spawn through to the task allocation.
const TOKIO_TASK: [&str; 4] = [
    "/src/runtime/task/",
    "/src/runtime/scheduler/",
    "/src/task/spawn.rs",
    "/src/runtime/context",
];

/// `(symbol, file:line)` of a dhat frame string (`0xADDR: SYMBOL (FILE:LINE:COL)`).
fn parts(frame: &str) -> (&str, &str) {
    let s = frame.split_once(": ").map_or(frame, |(_, s)| s);
    match s.rsplit_once(" (") {
        Some((sym, loc)) => {
            let loc = loc.trim_end_matches(')');
            let loc = loc.rsplit_once(':').map_or(loc, |(l, _col)| l);
            (sym, loc)
        }
        None => (s, ""),
    }
}

fn passes_through(file: &str) -> bool {
    let f = file.rsplit_once("/wt-").map_or(file, |(_, f)| f);
    PASS_THROUGH
        .iter()
        .any(|p| f.starts_with(p) || f.contains("conn_memory.rs"))
        || (f.starts_with("tokio-") && TOKIO_TASK.iter().any(|t| f.contains(t)))
}

/// `function (file:line)`, the function without its generic arguments.
fn label(sym: &str, file: &str) -> String {
    let short = sym.split('<').next().unwrap_or(sym);
    format!("{short} ({file})")
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
            .map(|f| parts(f))
            .find(|(_, file)| !passes_through(file))
            .map_or_else(|| "?".to_owned(), |(sym, file)| label(sym, file));
        let e = owners.entry(owner).or_default();
        e.0 += eb;
        e.1 += ebk;
    }
    let n64 = n as u64;
    let mut rows: Vec<(String, u64, u64)> = owners
        .into_iter()
        .filter(|(_, (_, k))| *k >= n64)
        .map(|(o, (b, k))| (o, b, k))
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
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
