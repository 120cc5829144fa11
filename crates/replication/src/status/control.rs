//! The operator's switches for the links with one peer: pause, delay, drop, and the fault
//! hooks the drills turn on.

use serde::Serialize;

/// The operator's switches for the links with one peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Control {
    /// Sync-out sends nothing new; sync-in closes the peer's window.
    pub paused: bool,
    /// Extra one-way delay added to every batch before it is sent.
    pub delay_ms: u64,
    /// Bumped by every drop request: drivers close their connection when it changes.
    pub drops: u64,
    /// Fault hook: sync-out sends every batch frame twice.
    pub duplicate: bool,
    /// Fault hook: sync-out swaps consecutive batch frames (a held-back batch is released
    /// after the next one, or at the next heartbeat tick).
    pub reorder: bool,
    /// Fault hook: sync-out turns Byzantine — its batches claim changes of another origin, or
    /// carry versions an hour ahead, by turns (`byzantine.rs`); the peer must refuse them.
    pub byzantine: bool,
}
