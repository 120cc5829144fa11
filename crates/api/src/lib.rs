//! The region server's HTTP front end.
//!
//! Request path: [`server`] accepts `POST /` (load shedding, body limit, SigV4) →
//! [`dispatch`] maps `X-Amz-Target` to one of the [`ops`] (one file per DynamoDB operation,
//! each `parse → apply → encode`) → the operation reads the store directly or hands a pure
//! read-modify-write closure to the store's single writer. Every failure is an
//! [`meridian_model::ApiError`], turned into DynamoDB's JSON error in one place
//! ([`server::error_response`]).
//!
//! Also served: `GET /health`, `GET /metrics` (Prometheus text) and `/admin/*` for operators
//! and tests.

mod admin;
pub mod dispatch;
mod metrics;
pub mod ops;
pub mod server;
mod state;

pub use server::{router, serve};
pub use state::{ApiConfig, AppState};
