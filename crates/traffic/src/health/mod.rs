//! The health checker's data: config, hysteresis and the published snapshot.
//!
//! - [`config`]: strict [`HealthConfig`]; defaults (interval 250 ms, timeout 200 ms, fall 3,
//!   rise 2) notice a dead region in about one second.
//! - [`hysteresis`]: the up/down state machine, so one lost packet moves no traffic.
//! - [`snapshot`]: what the DNS server and the gateway read.

pub mod config;
pub mod hysteresis;
pub mod snapshot;

pub use config::{Check, EndpointConfig, HealthConfig};
pub use hysteresis::Hysteresis;

/// Why a health check failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckFailure {
    /// What went wrong, for the status and the log.
    pub reason: String,
    /// The endpoint answered that it takes no traffic now (HTTP 503: draining, catching up):
    /// it goes down at once instead of after `fall` failures.
    pub refused: bool,
}

impl From<String> for CheckFailure {
    fn from(reason: String) -> Self {
        CheckFailure {
            reason,
            refused: false,
        }
    }
}

impl From<&str> for CheckFailure {
    fn from(reason: &str) -> Self {
        reason.to_owned().into()
    }
}
pub use snapshot::{AdminState, EndpointStatus, HealthSnapshot};
