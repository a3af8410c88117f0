//! File model -> runtime config. (Stub: being written.)

use std::path::Path;

use super::Config;

/// A config error: names the key (dotted path) and the line when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Read and validate a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        message: format!("{}: {e}", path.display()),
    })?;
    parse_str(&text, path)
}

/// Validate config text as if read from `source` (relative paths resolve against its folder).
pub fn parse_str(_text: &str, _source: &Path) -> Result<Config, ConfigError> {
    Err(ConfigError {
        message: "config parsing not yet implemented".into(),
    })
}
