//! The charts on disk: `latency-h1.svg`, `latency-h2.svg` and `report.html` (the table
//! and the same SVGs inline, so the one file can be mailed or attached as it is).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::chart;
use crate::report::Row;

/// Write the charts and the report into `dir`; returns the paths written.
pub fn write(
    dir: &Path,
    rows: &[Row],
    heading: &str,
    notes: &[String],
) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    let mut svgs = Vec::new();
    for (proto, name) in [("h1", "HTTP/1.1"), ("h2", "HTTP/2")] {
        let title = format!("accessgate proxy bench, {name}: latency by percentile");
        if let Some(svg) = chart::svg(rows, proto, &title)? {
            let path = dir.join(format!("latency-{proto}.svg"));
            std::fs::write(&path, &svg).map_err(|e| format!("{}: {e}", path.display()))?;
            written.push(path);
            svgs.push(svg);
        }
    }
    let path = dir.join("report.html");
    std::fs::write(&path, page(rows, heading, notes, &svgs))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    written.push(path);
    Ok(written)
}

fn page(rows: &[Row], heading: &str, notes: &[String], svgs: &[String]) -> String {
    let mut s = String::new();
    s.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>accessgate proxy bench</title><style>\
         body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
         th,td{border:1px solid #ccc;padding:3px 8px}td.n{text-align:right}\
         th{background:#f4f4f4}.flag{color:#b00}</style></head><body>\n",
    );
    let _ = writeln!(
        s,
        "<h1>accessgate proxy bench</h1>\n<p>{}</p>",
        esc(heading)
    );
    s.push_str(
        "<table><tr><th>scenario</th><th>proto</th><th>mode</th><th>conns</th>\
         <th>req/s</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th>\
         <th>errors</th><th>server CPU</th><th>us/req</th></tr>\n",
    );
    for r in rows {
        let cpu = r
            .server_cpu
            .map_or_else(|| "-".to_owned(), |c| format!("{:.0}%", c * 100.0));
        let per = r
            .server_us_per_req()
            .map_or_else(|| "-".to_owned(), |c| format!("{c:.1}"));
        let class = if r.flagged() { " class=\"flag\"" } else { "" };
        let _ = write!(
            s,
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}x{}</td>\
             <td class=\"n\">{:.0}</td>",
            esc(&r.label),
            r.proto,
            r.mode,
            r.conns,
            r.streams,
            r.rps
        );
        for us in r.pct_us {
            let _ = write!(s, "<td class=\"n\">{:.2}</td>", us as f64 / 1000.0);
        }
        let _ = writeln!(
            s,
            "<td class=\"n\">{}</td><td class=\"n\">{cpu}</td><td class=\"n\">{per}</td></tr>",
            r.errors + r.non2xx
        );
    }
    s.push_str("</table>\n");
    let phases = crate::phases::table(rows);
    if !phases.is_empty() {
        let _ = writeln!(s, "<pre>{}</pre>", esc(&phases));
    }
    for n in notes {
        let _ = writeln!(s, "<p>{}</p>", esc(n));
    }
    for svg in svgs {
        let _ = writeln!(s, "<div>{}</div>", strip_xml_decl(svg));
    }
    s.push_str("</body></html>\n");
    s
}

/// An SVG file may start with an XML declaration, which is not allowed inside HTML.
fn strip_xml_decl(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}
