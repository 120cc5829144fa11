//! Load generator for any endpoint speaking DynamoDB's JSON protocol: Meridian's region server,
//! AWS's DynamoDB Local, dynalite.
//!
//! `meridian bench kv` creates a table, then drives `PutItem` and `GetItem` over N keep-alive
//! HTTP/1.1 connections (one task and one socket each, one request in flight per socket) and
//! reports throughput and latency percentiles per operation. Every request carries a real SigV4
//! signature, because the servers compared here insist on one.
//!
//! Layers, bottom up:
//! - [`sign`]: SigV4 signing (pure, tested against AWS's published vectors).
//! - [`item`]: item and request-body generation.
//! - [`client`]: one signed HTTP/1.1 connection (hyper), for setup and the other tools.
//! - [`wire`]: a lean signed HTTP/1.1 connection, for the timed phases of `kv`.
//! - [`table`]: create the table and wait for `ACTIVE`.
//! - [`kv`]: the timed put and get phases; [`report`]: what they measured.
//! - [`load`]: `meridian bench load`, a bulk load with `BatchWriteItem` (fills a table before
//!   measuring data at rest, e.g. the server's memory after 1M items).

pub mod client;
pub mod item;
pub mod kv;
pub mod load;
pub mod report;
pub mod sign;
pub mod table;
pub mod wire;

pub use kv::{KvArgs, run_kv};
pub use load::{LoadArgs, LoadReport, run_load};
pub use report::{KvReport, OpReport};
