//! What operators see and run around the pipeline: metrics, the admin listener, process
//! logging, and the one outbound HTTPS client recipe of the cold paths.

pub mod admin;
pub mod metrics;
pub mod outbound;
pub mod telemetry;
