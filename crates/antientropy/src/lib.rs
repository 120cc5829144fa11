//! Anti-entropy: find and repair divergence between two regions' copies of a table.
//!
//! Replication keeps regions converged; anti-entropy is the safety net when something went
//! wrong outside the protocol (a restored backup, a bug, a change-log entry purged too early).
//!
//! A table's storage keys start with a 32-bit partition hash, so its first byte splits the table
//! into 256 **buckets** of similar size. The [`digest`] of a bucket is a SHA-256 over the exact
//! bytes of every item state and tombstone in it, in key order — equal digests mean equal
//! contents, byte for byte. Two regions compare their 256 bucket digests, exchange the full
//! states of the buckets that differ, and each applies the other's states through
//! `Store::repair` (the same merge / last-writer-wins as replication, so a stale state is
//! ignored and applying is idempotent).
//!
//! HTTP endpoints (merged into the region server): `GET /admin/ae/digest?table=`,
//! `GET /admin/ae/bucket?table=&bucket=`, `POST /admin/ae/apply?table=`, and the operator call
//! `POST /admin/anti-entropy?peer=NAME[&table=]` that runs a repair against a configured peer
//! ([`Peers`]: a name, never a URL from the request, so the call cannot be pointed at an
//! arbitrary host) and reports what it repaired on each side. Every one of them is an admin
//! endpoint (the region's admin guard); a repair presents the cluster's admin token to the peer.

pub mod digest;
mod http;
mod repair;

pub use http::{Peers, router};
pub use repair::{RepairReport, run_repair};
