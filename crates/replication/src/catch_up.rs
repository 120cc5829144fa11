//! Whether this region has caught up with its peers since it came back. Pure.
//!
//! A region that restarts, or whose links come back after a partition or an outage, holds
//! less than its peers: a user routed to it at once could miss their own write made elsewhere
//! meanwhile. So the region reports `catching_up` (and its health check fails, taking it out of
//! routing) until, from every peer that ships to it and is reachable, it has applied everything
//! that peer held when the link came back: the sender's head at the link's first report after
//! it (re)connected. A link whose lag is already under a configured bound counts too.
//!
//! A peer that has not linked within `wait_ms` of the start does not hold the region back (it
//! may be down); nor does one whose link drops before it caught up. When such a peer links
//! later, the region catches up with it then.

use std::collections::BTreeMap;

/// The gate's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CatchUpConfig {
    /// Off: the region reports serving as soon as it listens.
    pub enabled: bool,
    /// How long after the start a peer that has not linked yet still holds the region back.
    pub wait_ms: u64,
    /// A link whose lag is at most this is caught up (0: only reaching the target counts).
    pub lag_ms: u64,
}

impl Default for CatchUpConfig {
    fn default() -> Self {
        CatchUpConfig {
            enabled: true,
            // a little above the longest reconnect delay of the peers' sync-outs (5 s)
            wait_ms: 6_000,
            lag_ms: 0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    /// Not linked since the start.
    Unheard,
    /// Linked; its first report (the sender's head) not seen yet.
    Linked,
    /// Applying up to the sender's head at the first report.
    Behind { target: u64 },
    /// Caught up, or its link dropped before it did.
    Done,
    /// One of its batches was refused here (invalid, or versions too far ahead): it never
    /// holds the region back again in this process's life, however often it relinks.
    Refused,
}

/// The gate of one region over the peers that ship to it.
#[derive(Clone, Debug)]
pub struct CatchUp {
    cfg: CatchUpConfig,
    started_ms: u64,
    links: BTreeMap<String, Link>,
}

/// What the gate says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Caught up with every reachable peer.
    Serving,
    /// Still applying what these peers held when their links came back (or waiting for
    /// them to link, within the wait).
    CatchingUp {
        /// The peers it waits for.
        waiting_for: Vec<String>,
    },
}

impl CatchUp {
    /// A region started at `now_ms`, shipped to by `peers`.
    pub fn new(cfg: CatchUpConfig, peers: impl IntoIterator<Item = String>, now_ms: u64) -> Self {
        CatchUp {
            cfg,
            started_ms: now_ms,
            links: peers.into_iter().map(|p| (p, Link::Unheard)).collect(),
        }
    }

    /// The link from `peer` (re)connected: the region catches up with it again.
    pub fn on_linked(&mut self, peer: &str) {
        if let Some(l) = self.links.get_mut(peer)
            && *l != Link::Refused
        {
            *l = Link::Linked;
        }
    }

    /// The link from `peer` reports the sender's head, what is acknowledged here and the lag.
    pub fn on_report(&mut self, peer: &str, sender_head: u64, acked: u64, lag_ms: u64) {
        let Some(l) = self.links.get_mut(peer) else {
            return;
        };
        if *l == Link::Linked {
            *l = Link::Behind {
                target: sender_head,
            };
        }
        if let Link::Behind { target } = *l
            && (acked >= target || (self.cfg.lag_ms > 0 && lag_ms <= self.cfg.lag_ms))
        {
            *l = Link::Done;
        }
    }

    /// The link from `peer` dropped: an unreachable peer does not hold the region back.
    pub fn on_unlinked(&mut self, peer: &str) {
        if let Some(l) = self.links.get_mut(peer)
            && !matches!(*l, Link::Unheard | Link::Refused)
        {
            *l = Link::Done;
        }
    }

    /// A batch from `peer` was refused (invalid, or its clock too far ahead): what it holds
    /// cannot be applied here, so waiting for it would keep the region out of routing for as
    /// long as the peer misbehaves — an honest region taken out by a faulty one. It no longer
    /// holds the region back (its alarm stays up on the link).
    pub fn on_refused(&mut self, peer: &str) {
        if let Some(l) = self.links.get_mut(peer) {
            *l = Link::Refused;
        }
    }

    /// Whether the region is caught up at `now_ms`.
    pub fn readiness(&self, now_ms: u64) -> Readiness {
        if !self.cfg.enabled {
            return Readiness::Serving;
        }
        let waiting = now_ms.saturating_sub(self.started_ms) < self.cfg.wait_ms;
        let waiting_for: Vec<String> = self
            .links
            .iter()
            .filter(|(_, l)| match l {
                Link::Unheard => waiting,
                Link::Linked | Link::Behind { .. } => true,
                Link::Done | Link::Refused => false,
            })
            .map(|(p, _)| p.clone())
            .collect();
        if waiting_for.is_empty() {
            Readiness::Serving
        } else {
            Readiness::CatchingUp { waiting_for }
        }
    }
}

/// The `catch-up` worker: evaluates the gate every 250 ms, keeps
/// `meridian_replication_catching_up` current and logs each change.
pub(crate) struct Watch {
    ctx: std::sync::Arc<crate::Ctx>,
    last: Option<Readiness>,
}

impl Watch {
    pub(crate) fn new(ctx: std::sync::Arc<crate::Ctx>) -> Self {
        Watch { ctx, last: None }
    }
}

impl meridian_worker::Worker for Watch {
    async fn step(&mut self) -> Result<meridian_worker::Next, String> {
        let now = self.ctx.readiness();
        if self.last.as_ref() != Some(&now) {
            match &now {
                Readiness::Serving => {
                    tracing::info!("caught up with every reachable peer: serving")
                }
                Readiness::CatchingUp { waiting_for } => {
                    tracing::info!(?waiting_for, "catching up with peers before serving")
                }
            }
            let up = i64::from(matches!(now, Readiness::CatchingUp { .. }));
            self.ctx.links.metrics.catching_up.set(up);
            self.last = Some(now);
        }
        Ok(meridian_worker::Next::After(
            std::time::Duration::from_millis(250),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(cfg: CatchUpConfig) -> CatchUp {
        CatchUp::new(cfg, ["a".to_owned(), "b".to_owned()], 1_000)
    }

    fn waiting(g: &CatchUp, now: u64) -> Vec<String> {
        match g.readiness(now) {
            Readiness::Serving => Vec::new(),
            Readiness::CatchingUp { waiting_for } => waiting_for,
        }
    }

    #[test]
    fn serves_once_every_linked_peer_is_applied_through_its_head_at_the_link() {
        let mut g = gate(CatchUpConfig::default());
        assert_eq!(waiting(&g, 1_000), ["a", "b"]);
        g.on_linked("a");
        g.on_linked("b");
        // the first report fixes the target: the sender's head then
        g.on_report("a", 100, 10, 5_000);
        g.on_report("b", 50, 50, 0);
        assert_eq!(waiting(&g, 1_100), ["a"]);
        // the sender keeps writing; reaching the first head is enough
        g.on_report("a", 180, 99, 3_000);
        assert_eq!(waiting(&g, 1_200), ["a"]);
        g.on_report("a", 200, 100, 2_000);
        assert_eq!(g.readiness(1_300), Readiness::Serving);
        // a link that comes back catches up again
        g.on_linked("b");
        assert_eq!(waiting(&g, 1_400), ["b"]);
        g.on_report("b", 70, 70, 0);
        assert_eq!(g.readiness(1_500), Readiness::Serving);
    }

    #[test]
    fn a_peer_that_never_links_or_drops_does_not_hold_the_region_back() {
        let mut g = gate(CatchUpConfig::default());
        g.on_linked("a");
        g.on_report("a", 5, 5, 0);
        assert_eq!(waiting(&g, 6_999), ["b"]);
        assert_eq!(g.readiness(7_000), Readiness::Serving);
        // b links late, behind; then its link drops before it caught up
        g.on_linked("b");
        g.on_report("b", 9, 1, 100);
        assert_eq!(waiting(&g, 8_000), ["b"]);
        g.on_unlinked("b");
        assert_eq!(g.readiness(8_000), Readiness::Serving);
    }

    #[test]
    fn a_peer_whose_batches_are_refused_never_holds_the_region_back() {
        let mut g = gate(CatchUpConfig::default());
        g.on_linked("a");
        g.on_report("a", 5, 5, 0);
        g.on_linked("b");
        g.on_report("b", 90, 10, 100);
        assert_eq!(waiting(&g, 1_000), ["b"]);
        g.on_refused("b");
        assert_eq!(g.readiness(1_000), Readiness::Serving);
        // it relinks and reports, as a refused peer does over and over
        g.on_unlinked("b");
        g.on_linked("b");
        g.on_report("b", 95, 10, 100);
        assert_eq!(g.readiness(1_100), Readiness::Serving);
    }

    #[test]
    fn a_lag_bound_and_the_switch() {
        let cfg = CatchUpConfig {
            lag_ms: 200,
            ..CatchUpConfig::default()
        };
        let mut g = gate(cfg);
        g.on_linked("a");
        g.on_linked("b");
        g.on_report("a", 100, 0, 150);
        g.on_report("b", 100, 0, 250);
        assert_eq!(waiting(&g, 1_000), ["b"]);
        let off = gate(CatchUpConfig {
            enabled: false,
            ..CatchUpConfig::default()
        });
        assert_eq!(off.readiness(1_000), Readiness::Serving);
    }
}
