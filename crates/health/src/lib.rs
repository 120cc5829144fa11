//! Meridian's health checker: is each region (endpoint) fit to receive traffic?
//!
//! - [`config`]: strict [`HealthConfig`]; defaults (interval 250 ms, timeout 200 ms, fall 3,
//!   rise 2) notice a dead region in about one second.
//! - [`hysteresis`]: the pure up/down state machine, so one lost packet moves no traffic.
//! - [`probe`]: HTTP (`2xx` from `/health`, optional body match) and TCP checks.
//! - [`monitor`]: [`HealthMonitor`] runs the checks, holds operator overrides (down, drain,
//!   weight 0–100) and publishes an `Arc<HealthSnapshot>` on a `watch` channel that the DNS
//!   server and the gateway read; Prometheus gauges `meridian_health_*`.
//! - [`admin`]: the HTTP admin API (`/admin/status`, `/metrics`, drain/undrain/weight).
//!
//! This crate knows nothing of routing policies or of the data plane.

pub mod admin;
pub mod monitor;
pub mod probe;
pub mod tls;

pub use admin::{AdminApi, RoleAdmin, StatusHook};
pub use meridian_traffic::health::{AdminState, EndpointStatus, HealthSnapshot};
pub use meridian_traffic::health::{Check, CheckFailure, EndpointConfig, HealthConfig, Hysteresis};
pub use meridian_traffic::health::{config, hysteresis, snapshot};
pub use monitor::HealthMonitor;

/// Errors of the health layer.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// Invalid configuration.
    #[error("health config: {0}")]
    Config(String),
    /// No endpoint has this name.
    #[error("unknown endpoint {0:?}")]
    UnknownEndpoint(String),
    /// A weight above 100.
    #[error("weight must be 0..=100, got {0}")]
    InvalidWeight(u8),
    /// A weight that is not a number.
    #[error("weight must be a number 0..=100, got {0:?}")]
    InvalidWeightText(String),
    /// A thread panicked while holding the state lock; the state is unknown, stop.
    #[error("health state lock poisoned")]
    Poisoned,
}

impl From<meridian_traffic::ConfigError> for HealthError {
    fn from(e: meridian_traffic::ConfigError) -> Self {
        HealthError::Config(e.message)
    }
}
