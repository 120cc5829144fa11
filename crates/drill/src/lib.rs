//! Failure drills (FMEA) as a product command: `meridian drill [SCENARIO|all]`.
//!
//! A drill starts its own local cluster (or attaches to one), runs a recorded workload through
//! real clients — through the gateway with pinned users and directly in every region — injects
//! one fault, removes it, and checks the invariants: convergence, no acknowledged write lost,
//! exact counters, availability seen through the gateway, and recovery; it measures time to
//! detect and time to recover. The result is an FMEA table (Markdown and JSON) with SVG plots
//! of replication lag and client success over time.
//!
//! Layers, pure first:
//! - [`ledger`], [`invariants`], [`timing`], [`report`], [`plot`], [`spec`] — data and pure
//!   functions over it (unit-tested without sockets);
//! - [`faults`] — the fault operations, shared with `meridian fault` and `meridian region
//!   drain`;
//! - [`harness`] (the cluster), [`workload`] (the clients), [`sessions`] (pinned users who
//!   check they read their own writes), [`sampler`] (lag and health every
//!   250 ms), [`collect`] (change logs, scans, digests) — thin I/O;
//! - [`scenarios`] (one file per scenario), [`runner`] (one scenario end to end), [`suite`]
//!   (a whole run), [`progress`].

pub mod collect;
pub mod faults;
pub mod harness;
pub mod invariants;
pub mod ledger;
pub mod plot;
pub mod progress;
pub mod report;
pub mod runner;
pub mod sampler;
pub mod scenarios;
pub mod sessions;
pub mod spec;
pub mod suite;
pub mod timing;
pub mod workload;

pub use report::{Report, Status};
pub use scenarios::Name;
pub use suite::{Options, run};
