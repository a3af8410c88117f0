//! The config file model (serde).
