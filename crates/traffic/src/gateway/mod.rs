//! The gateway's data: its config, what a request is ([`operation`]) and where it may go
//! ([`plan`]), and the session tokens it remembers per user ([`sessions`]).

pub mod config;
pub mod operation;
pub mod plan;
pub mod sessions;

pub use config::{GatewayConfig, PinningConfig, RegionConfig, TablePinning, WriteFailover};
pub use plan::{Plan, Router, with_session};
pub use sessions::Sessions;

/// The response header naming the region that served a request through the gateway.
pub const REGION_HEADER: &str = "x-meridian-region";
