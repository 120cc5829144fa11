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
pub use snapshot::{AdminState, EndpointStatus, HealthSnapshot};
