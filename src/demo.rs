//! `accessgate demo`: the gateway on the embedded demo config with a built-in echo
//! upstream on loopback, plus ready-to-paste curl commands. (Being written.)

use std::process::ExitCode;

/// Run the demo until Ctrl-C.
pub fn run(_upstream_port: u16) -> ExitCode {
    eprintln!("demo: not available yet");
    ExitCode::FAILURE
}
