//! Meridian's gateway: a hyper reverse proxy in front of the regions' DynamoDB API.
//!
//! A request goes to its user's *home region* when pinning applies — the user named by a
//! configured header or by the partition key of the item it touches (GetItem, PutItem,
//! UpdateItem, DeleteItem, Query), the home region from user → registration country → region
//! — and otherwise to the nearest healthy region. When the home region is unavailable, reads
//! fail over in the configured order and idempotent reads are retried transparently on
//! connection failure or 5xx; writes fail over or are refused with a DynamoDB-format
//! `ServiceUnavailableException`, per `write_failover`. Requests are forwarded unchanged
//! (Host and every other header, identical body bytes), so SigV4 signatures still verify; the
//! one header the gateway adds is its own, `x-meridian-session-remembered`: the session token
//! of the pinned user's latest write, so that its reads go to a region that has applied it
//! (read-your-writes; a region that has not refuses and the next is tried).
//! Operator drain and weights come from `meridian-health` and its admin API.
//!
//! Layers: [`config`] → [`operation`] and [`plan`] (pure: what the request is, where it may
//! go) → [`proxy`] (hyper I/O) → [`args`] (the `meridian gateway` role).

pub mod args;
pub mod error;
pub mod metrics;
pub mod proxy;

pub use args::{GatewayArgs, RunningGateway, run};
pub use error::GatewayError;
pub use meridian_traffic::gateway::{
    GatewayConfig, PinningConfig, RegionConfig, TablePinning, WriteFailover,
};
pub use meridian_traffic::gateway::{Plan, Router};
pub use meridian_traffic::gateway::{REGION_HEADER, config, operation, plan};
pub use proxy::Gateway;
