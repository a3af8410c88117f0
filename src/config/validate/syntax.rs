//! From TOML text to the file model, with errors that name the key path and line.
//!
//! The `toml` crate reports *where* a problem is (a byte span) and *what* it is, but not
//! which key holds it ("unknown field `adress`"). We parse the document once more into its
//! spanned tree and walk it to find the key path at that span, so the operator reads
//! `config.toml:7:1: unknown key "adress" in [listen]` instead of a bare serde message.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::ctx::Ctx;
use crate::config::file::FileConfig;

/// Parse the text into the file model; on failure, record every error found and return None.
pub(crate) fn parse_file(ctx: &mut Ctx<'_>, text: &str) -> Option<FileConfig> {
    // Syntax first, with recovery so that several syntax errors show at once.
    let (document, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        for e in &syntax_errors {
            let span = e.span();
            let mut message = e.message().trim().to_owned();
            if message == "duplicate key"
                && let Some(key) = span.as_ref().and_then(|s| text.get(s.clone()))
            {
                message = format!("duplicate key {key:?} (a key or table may be given only once)");
            }
            ctx.error_at(span, "", format!("TOML syntax error: {message}"));
        }
        return None;
    }
    match toml::from_str::<FileConfig>(text) {
        Ok(file) => Some(file),
        Err(e) => {
            let span = e.span();
            let path = span
                .as_ref()
                .and_then(|s| locate(document.get_ref(), s.start))
                .unwrap_or_default();
            let (key, message) = describe(&path, e.message());
            ctx.error_at(span, &key, message);
            None
        }
    }
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Render a key path the way messages name keys: `routes[1].grant.controls`.
fn render(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Turn a serde message and the key path it points at into (key, message).
fn describe(path: &[Segment], message: &str) -> (String, String) {
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((name, expected)) = rest.split_once('`')
    {
        let parent = match path.last() {
            Some(Segment::Key(k)) if k == name => &path[..path.len() - 1],
            _ => path,
        };
        let place = match parent {
            [] => "at the top level".to_owned(),
            [Segment::Key(section)] => format!("in [{section}]"),
            _ => format!("in {}", render(parent)),
        };
        let expected = expected
            .trim_start_matches(',')
            .trim()
            .replace('`', "\"")
            .replace("expected one of", "valid keys:")
            .replace("expected", "valid key:")
            .replace("there are no fields", "this table takes no keys");
        return (
            String::new(),
            format!("unknown key {name:?} {place}; {expected}"),
        );
    }
    let key = render(path);
    let mut message = friendlier(message);
    if ["issuers", "routes", "policies"].contains(&key.as_str())
        && message.contains("expected an array")
    {
        message.push_str(&format!(" (write [[{key}]] for each entry)"));
    }
    (key, message)
}

/// Say "an integer" rather than "i64", "a table" rather than "struct ListenFile".
fn friendlier(message: &str) -> String {
    let mut out = message
        .replace("expected i64", "expected an integer")
        .replace("expected f64", "expected a number")
        .replace("expected a sequence", "expected an array")
        .replace("invalid type: sequence", "invalid type: array")
        .replace("invalid type: map", "invalid type: table");
    if let Some(i) = out.find("expected struct ") {
        out.replace_range(i.., "expected a table");
    }
    out
}

/// The deepest key path whose key or value holds `offset`.
///
/// Standard tables (`[listen]`) are spanned by their header only and their keys live
/// elsewhere in the file, so the walk descends into every table rather than only into
/// spans that contain the offset; keys and scalar values never overlap, so the first
/// hit is the only one.
fn locate(table: &DeTable<'_>, offset: usize) -> Option<Vec<Segment>> {
    let mut path = Vec::new();
    locate_in_table(table, offset, &mut path).then_some(path)
}

fn contains(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && (offset < span.end || span.is_empty() && offset == span.start)
}

fn locate_in_table(table: &DeTable<'_>, offset: usize, path: &mut Vec<Segment>) -> bool {
    for (key, value) in table {
        path.push(Segment::Key(key.get_ref().to_string()));
        if contains(&key.span(), offset) || locate_in_value(value, offset, path) {
            return true;
        }
        path.pop();
    }
    false
}

fn locate_in_value(value: &Spanned<DeValue<'_>>, offset: usize, path: &mut Vec<Segment>) -> bool {
    let deeper = match value.get_ref() {
        DeValue::Table(table) => locate_in_table(table, offset, path),
        DeValue::Array(items) => {
            let mut found = false;
            for (i, item) in items.iter().enumerate() {
                path.push(Segment::Index(i));
                if locate_in_value(item, offset, path) {
                    found = true;
                    break;
                }
                path.pop();
            }
            found
        }
        _ => false,
    };
    deeper || contains(&value.span(), offset)
}
