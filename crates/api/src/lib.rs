//! The region server's HTTP front end.
//!
//! Request path: [`server`] accepts `POST /` (load shedding, body limit, SigV4) →
//! [`dispatch`] maps `X-Amz-Target` to one of the [`ops`] (one file per DynamoDB operation,
//! each `parse → apply → encode`, over the shared helpers in [`request`]) → the operation reads the store directly or hands a pure
//! read-modify-write closure to the store's single writer. Every failure is an
//! [`meridian_model::ApiError`], turned into DynamoDB's JSON error in one place
//! ([`server::error_response`]).
//!
//! Background work: [`ttl`]'s `ttl-expirer` worker deletes expired items through the normal
//! write path; `GET /admin/workers` lists every worker of the region.
//!
//! Read-your-writes: [`session`] refuses an item request whose session token this region has
//! not applied yet and answers every write with this region's mark.
//!
//! Also served: `GET /health`, `GET /metrics` (Prometheus text) and `/admin/*` for operators
//! and tests.

mod admin;
pub mod dispatch;
pub mod ids;
mod metrics;
pub mod ops;
pub mod request;
pub mod server;
mod session;
mod state;
pub mod ttl;

pub use server::{router, serve, serve_with};
pub use state::{ApiConfig, AppState, Covers, Readiness};
pub use ttl::spawn_ttl_expirer;
