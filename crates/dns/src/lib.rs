//! Meridian's authoritative policy DNS server, on hickory-server 0.26 with its own
//! `RequestHandler`.
//!
//! Each query is answered per client: the client's location comes from its EDNS Client Subnet
//! (else the source address) through `meridian-routing`'s locator, each target's health comes
//! from a `meridian-health` snapshot, and the record set's Route 53-style policy picks the
//! answer. Responses are authoritative, carry low TTLs, echo the ECS option with a scope prefix,
//! and follow the usual authority rules: names outside our zones get REFUSED, missing names
//! NXDOMAIN with the SOA, malformed messages FORMERR (hickory decodes; we never panic).
//!
//! Layers: [`config`] (strict TOML) → [`zone`] (compiled zones, pure answers) → [`handler`]
//! (hickory glue, EDNS/ECS) → `udp` (one answering loop per `SO_REUSEPORT` socket, each with
//! its own memo of deterministic answers, `cache`) and hickory's TCP server → [`server`]
//! (sockets) → [`args`] (the `meridian dns` role).

pub mod args;
mod cache;
pub mod handler;
pub mod metrics;
pub mod server;
mod udp;

pub use args::{DnsArgs, Ended, run, run_with, run_with_admin, run_with_updates};
pub use meridian_traffic::dns::{Answer, Zones};
pub use meridian_traffic::dns::{DnsConfig, RecordKind, RecordSetConfig, SoaConfig, ZoneConfig};
pub use meridian_traffic::dns::{config, zone};
pub use server::{DnsServer, serve};
