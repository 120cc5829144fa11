//! The gateway's data: its config, what a request is ([`operation`]) and where it may go
//! ([`plan`]).

pub mod config;
pub mod operation;
pub mod plan;

pub use config::{GatewayConfig, PinningConfig, RegionConfig, TablePinning, WriteFailover};
pub use plan::{Plan, Router};

/// The response header naming the region that served a request through the gateway.
pub const REGION_HEADER: &str = "x-meridian-region";
