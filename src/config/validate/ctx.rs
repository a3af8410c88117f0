//! The validation context: collects every error with its key path and line, and the small
//! value checks (durations, integers, paths, lists, keywords) every section shares.
//!
//! Each helper records an error and returns a fallback instead of stopping, so one run
//! reports everything wrong with a file. The fallback never escapes: [`Ctx::finish`] turns
//! any recorded error into a failed load.

use std::fmt::Display;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use crate::config::duration::{format_duration, parse_duration};
use crate::config::file::{Str, StrList};

/// Whether a duration of zero makes sense for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Zero {
    Allowed,
    Refused,
}

/// Error collector bound to one config text.
pub(crate) struct Ctx<'a> {
    text: &'a str,
    /// How the file is named in messages (as the caller gave it).
    display: String,
    /// Folder relative paths resolve against (absolute).
    base_dir: PathBuf,
    /// (byte offset, message): sorted by offset at the end so output follows the file.
    errors: Vec<(Option<usize>, String)>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(text: &'a str, display: String, base_dir: PathBuf) -> Self {
        Self {
            text,
            display,
            base_dir,
            errors: Vec::new(),
        }
    }

    /// Record an error at a byte span (or with no location), naming the key path.
    pub(crate) fn error_at(
        &mut self,
        span: Option<Range<usize>>,
        key: &str,
        message: impl Display,
    ) {
        let offset = span.as_ref().map(|s| s.start);
        let location = match span {
            Some(span) => {
                let (line, col) = line_col(self.text, span.start);
                format!("{}:{line}:{col}", self.display)
            }
            None => self.display.clone(),
        };
        let line = if key.is_empty() {
            format!("{location}: {message}")
        } else {
            format!("{location}: {key}: {message}")
        };
        // One error per line in the joined output: never let a message break that.
        self.errors.push((offset, line.replace(['\n', '\r'], " ")));
    }

    /// Record an error at a spanned value.
    pub(crate) fn error<T>(&mut self, at: &Spanned<T>, key: &str, message: impl Display) {
        self.error_at(Some(at.span()), key, message);
    }

    /// Record an error with no place in the file (e.g. a missing section).
    pub(crate) fn error_nowhere(&mut self, key: &str, message: impl Display) {
        self.error_at(None, key, message);
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// All recorded errors: those without a place first, then in file order.
    pub(crate) fn finish(mut self) -> Vec<String> {
        self.errors.sort_by_key(|(offset, _)| *offset);
        self.errors
            .into_iter()
            .map(|(_, message)| message)
            .collect()
    }

    /// A duration value, or `default` when the key is absent.
    pub(crate) fn duration(
        &mut self,
        value: Option<&Str>,
        key: &str,
        default: Duration,
        zero: Zero,
    ) -> Duration {
        let Some(value) = value else { return default };
        match parse_duration(value.get_ref()) {
            Ok(d) if d.is_zero() && zero == Zero::Refused => {
                self.error(value, key, "must be greater than zero");
                default
            }
            Ok(d) => d,
            Err(e) => {
                self.error(value, key, e);
                default
            }
        }
    }

    /// A duration that must not exceed `max` (a limit that protects something).
    pub(crate) fn duration_at_most(
        &mut self,
        value: Option<&Str>,
        key: &str,
        default: Duration,
        zero: Zero,
        max: Duration,
    ) -> Duration {
        let d = self.duration(value, key, default, zero);
        if let Some(value) = value
            && d > max
        {
            self.error(
                value,
                key,
                format!("must be at most {}", format_duration(max)),
            );
            return default;
        }
        d
    }

    /// An integer in `min..=max`, or `default` when absent.
    pub(crate) fn int(
        &mut self,
        value: Option<&Spanned<i64>>,
        key: &str,
        default: i64,
        min: i64,
        max: i64,
    ) -> i64 {
        let Some(value) = value else { return default };
        let n = *value.get_ref();
        if n < min || n > max {
            self.error(
                value,
                key,
                format!("{n} is out of range (allowed {min}..={max})"),
            );
            return default;
        }
        n
    }

    /// A required key of a table: the value, or an error at the table's header.
    pub(crate) fn required<'v, T, U>(
        &mut self,
        table: &Spanned<T>,
        value: Option<&'v U>,
        key: &str,
    ) -> Option<&'v U> {
        if value.is_none() {
            self.error(table, key, "missing (required)");
        }
        value
    }

    /// A non-empty string without surrounding whitespace (names, ids).
    pub(crate) fn text(&mut self, value: &Str, key: &str) -> Option<String> {
        let s = value.get_ref();
        if s.is_empty() {
            self.error(value, key, "must not be empty");
            None
        } else if s.trim() != s {
            self.error(
                value,
                key,
                format!("{s:?} has leading or trailing whitespace"),
            );
            None
        } else if s.chars().any(char::is_control) {
            self.error(value, key, format!("{s:?} contains control characters"));
            None
        } else {
            Some(s.clone())
        }
    }

    /// A list of non-empty strings (ids, names); duplicates are dropped, order kept.
    pub(crate) fn text_list(&mut self, value: Option<&StrList>, key: &str) -> Vec<String> {
        let Some(list) = value else { return Vec::new() };
        let mut out: Vec<String> = Vec::with_capacity(list.get_ref().len());
        for (i, item) in list.get_ref().iter().enumerate() {
            if let Some(s) = self.text(item, &format!("{key}[{i}]"))
                && !out.contains(&s)
            {
                out.push(s);
            }
        }
        out
    }

    /// A path, resolved against the config file's folder when relative.
    pub(crate) fn path(&mut self, value: &Str, key: &str) -> Option<PathBuf> {
        let s = value.get_ref();
        if s.trim().is_empty() {
            self.error(value, key, "must not be empty");
            return None;
        }
        Some(self.resolve(Path::new(s)))
    }

    /// Resolve a path against the config file's folder.
    pub(crate) fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    /// One of a closed set of keywords; the error lists them.
    pub(crate) fn keyword<T: Copy>(
        &mut self,
        value: Option<&Str>,
        key: &str,
        choices: &[(&str, T)],
        default: T,
    ) -> T {
        let Some(value) = value else { return default };
        if let Some((_, v)) = choices.iter().find(|(name, _)| *name == value.get_ref()) {
            return *v;
        }
        let names: Vec<String> = choices.iter().map(|(n, _)| format!("{n:?}")).collect();
        self.error(
            value,
            key,
            format!("{:?} is not one of {}", value.get_ref(), names.join(", ")),
        );
        default
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    // Offsets come from the parser and sit on char boundaries; stay safe if one does not.
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}
