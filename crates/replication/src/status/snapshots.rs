//! Snapshot bookkeeping: which peer a snapshot is being installed from (one at a time, claimed
//! by one sync-in connection), which peers owe one, and what was installed.

use serde::Serialize;
use std::collections::BTreeMap;

/// Snapshot bookkeeping of the sync-in side.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Snapshots {
    /// The peer a snapshot is being installed from (one at a time).
    pub installing_from: Option<String>,
    /// The sync-in connection (generation) installing it.
    #[serde(skip)]
    pub claim: u64,
    /// Peers whose next connection starts with a snapshot: this region became a replica of
    /// an existing table, or it is new and the peer purged what it needs.
    pub wanted_from: std::collections::BTreeSet<String>,
    /// Peers that purged changes this region (not new) never received: its data is stale —
    /// items deleted meanwhile may have lost their tombstones — so it must not be patched up
    /// from a snapshot. The remedy is to restart it with an empty data directory (it is then
    /// seeded from a snapshot like a new region). Peer → the peer's message.
    pub stale_from: BTreeMap<String, String>,
    /// Snapshots installed since start.
    pub installed: Vec<InstalledSnapshot>,
    /// Peers that have linked to this region since it started (a new region waits for all of
    /// them before it takes its first snapshot).
    pub linked: std::collections::BTreeSet<String>,
}

/// One installed snapshot.
#[derive(Clone, Debug, Serialize)]
pub struct InstalledSnapshot {
    /// The peer it came from.
    pub peer: String,
    /// Entries (tables, items and tombstones) in it.
    pub entries: u64,
    /// The peer's change-log head it corresponds to.
    pub head: u64,
    /// Per origin, the highest sequence whose effect it held: each origin's stream resumed
    /// right after it.
    pub watermarks: std::collections::BTreeMap<String, u64>,
    /// How long it took to receive and install, in ms.
    pub millis: u64,
}
