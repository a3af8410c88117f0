//! (3) The config: the shipped configs with lines deleted, duplicated, swapped or added
//! and bytes changed. `config::parse_str` returns Ok or messages that each name the file
//! and line; it never panics.

use proptest::prelude::*;
use proptest::sample::{Index, select};

use super::{Tally, manifest_path, run};

#[derive(Debug, Clone)]
enum CfgMut {
    DeleteLine(Index),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    InsertLine(Index, &'static str),
    Byte(Index, u8),
}

fn cfg_mut() -> impl Strategy<Value = CfgMut> {
    prop_oneof![
        3 => any::<Index>().prop_map(CfgMut::DeleteLine),
        3 => any::<Index>().prop_map(CfgMut::DuplicateLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| CfgMut::SwapLines(a, b)),
        2 => (any::<Index>(), select(vec![
            "[[routes]]", "[[issuers]]", "[[policies]]", "[listen]", "x = 1", "address = 5",
            "path_prefix = \"\"", "upstream = \"ftp://x\"", "clock_skew = \"-5s\"",
            "max_header_bytes = 0", "algorithms = [\"none\"]", "grant = { block = \"yes\" }",
            "mode = \"maybe\"", "window = \"99999999999999999999d\"", "issuer = \"{tenantid}\"",
            "duration = \"1h1h\"", "[", "= =", "\"", "a.b.c = 1",
        ])).prop_map(|(i, l)| CfgMut::InsertLine(i, l)),
        4 => (any::<Index>(), prop_oneof![select(b"\"[]{}=#,.0 \n\\".to_vec()), any::<u8>()])
            .prop_map(|(i, b)| CfgMut::Byte(i, b)),
    ]
}

fn mutate_config(text: &str, muts: &[CfgMut]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for m in muts {
        let n = lines.len().max(1);
        match m {
            CfgMut::DeleteLine(i) if !lines.is_empty() => {
                lines.remove(i.index(n));
            }
            CfgMut::DuplicateLine(i) if !lines.is_empty() => {
                let at = i.index(n);
                lines.insert(at, lines[at].clone());
            }
            CfgMut::SwapLines(a, b) if !lines.is_empty() => lines.swap(a.index(n), b.index(n)),
            CfgMut::InsertLine(i, l) => {
                lines.insert(i.index(n + 1).min(lines.len()), (*l).to_owned())
            }
            CfgMut::Byte(i, b) => {
                let mut bytes = lines.join("\n").into_bytes();
                if !bytes.is_empty() {
                    let at = i.index(bytes.len());
                    bytes[at] = *b;
                }
                lines = String::from_utf8_lossy(&bytes)
                    .lines()
                    .map(str::to_owned)
                    .collect();
            }
            _ => {}
        }
    }
    lines.join("\n")
}

fn config_never_panics(file: &str) {
    let path = manifest_path(file);
    let text = std::fs::read_to_string(&path).unwrap();
    if let Err(e) = accessgate::config::parse_str(&text, &path) {
        panic!("{file} itself does not parse: {e}");
    }
    let tally = Tally::default();
    run(300, prop::collection::vec(cfg_mut(), 1..5), |muts| {
        let mutated = mutate_config(&text, &muts);
        let parsed = accessgate::config::parse_str(&mutated, &path);
        tally.count(&parsed);
        if let Err(e) = parsed {
            // Every message names the file and the line (and column) it is about.
            let prefix = format!("{}:", path.display());
            for line in e.to_string().lines() {
                let located = line.strip_prefix(&prefix).is_some_and(|rest| {
                    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                    digits > 0 && rest[digits..].starts_with(':')
                });
                prop_assert!(located, "message without file and line: {line:?}");
            }
        }
        Ok(())
    });
    tally.assert_both(file);
}

#[test]
fn mutated_demo_config_never_panics() {
    config_never_panics("config/demo.toml");
}

#[test]
fn mutated_example_config_never_panics() {
    config_never_panics("config/accessgate.toml");
}
