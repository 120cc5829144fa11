//! Which links exist and which changes each link carries. Pure.
//!
//! - **Mesh:** every region links to every peer, both ways, and ships only the changes that
//!   originated locally (`origin == self`). A change therefore travels exactly one hop and can
//!   never come back.
//! - **Star:** spokes link only to the hub. A spoke ships its own changes to the hub; the hub
//!   ships every change in its log to each spoke **except** those whose origin is that spoke.
//!   A change travels at most two hops (spoke → hub → other spokes) and never returns to its
//!   origin.
//!
//! Per origin, every link delivers changes in origin-sequence order (a mesh link carries one
//! origin in log order; the hub logs each spoke's changes in the order that spoke's link
//! delivered them), which is what the receiver's per-origin dedup watermark needs.

use serde::{Deserialize, Serialize};

/// How the regions are linked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Topology {
    /// Every region to every other.
    Mesh,
    /// Every region to one hub.
    Star {
        /// The hub region.
        hub: String,
    },
}

impl Topology {
    /// Whether `me` should run a sync-out towards `peer`.
    pub fn sends_to(&self, me: &str, peer: &str) -> bool {
        if me == peer {
            return false;
        }
        match self {
            Topology::Mesh => true,
            Topology::Star { hub } => me == hub || peer == hub,
        }
    }

    /// Whether `me` accepts a sync-in from `peer` (the same pairs, the other way).
    pub fn accepts_from(&self, me: &str, peer: &str) -> bool {
        self.sends_to(peer, me)
    }

    /// Whether the link `me → dest` carries a change that originated at `origin`.
    pub fn ships(&self, me: &str, dest: &str, origin: &str) -> bool {
        if origin == dest {
            return false;
        }
        match self {
            Topology::Mesh => origin == me,
            Topology::Star { hub } if me == hub => true,
            Topology::Star { hub } => dest == hub && origin == me,
        }
    }

    /// Whether `me` ships changes that originated elsewhere (a star's hub), and so must keep
    /// them in its change log. Everyone else ships only its own changes.
    pub fn forwards(&self, me: &str) -> bool {
        matches!(self, Topology::Star { hub } if hub == me)
    }

    /// `mesh` or `star`.
    pub fn kind(&self) -> &'static str {
        match self {
            Topology::Mesh => "mesh",
            Topology::Star { .. } => "star",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const REGIONS: [&str; 4] = ["a", "b", "c", "d"];

    /// Every path a change from `origin` can take: each region receives it at most once over
    /// the links, never at its origin, and every region gets it.
    fn deliveries(t: &Topology, origin: &str) -> Vec<String> {
        let mut received = vec![origin.to_owned()];
        let mut frontier = vec![origin.to_owned()];
        let mut deliveries = Vec::new();
        while let Some(at) = frontier.pop() {
            for dest in REGIONS {
                if t.sends_to(&at, dest) && t.ships(&at, dest, origin) {
                    deliveries.push(dest.to_owned());
                    if !received.iter().any(|r| r == dest) {
                        received.push(dest.to_owned());
                        frontier.push(dest.to_owned());
                    }
                }
            }
        }
        deliveries
    }

    /// A mesh and two stars (hubs at either end of the region list).
    fn topologies() -> [Topology; 3] {
        [
            Topology::Mesh,
            Topology::Star { hub: "a".into() },
            Topology::Star { hub: "c".into() },
        ]
    }

    #[test]
    fn mesh_and_star_deliver_every_change_once_everywhere_and_never_back() {
        for t in topologies() {
            for origin in REGIONS {
                let mut d = deliveries(&t, origin);
                d.sort();
                let mut want: Vec<String> = REGIONS
                    .iter()
                    .filter(|r| **r != origin)
                    .map(|r| r.to_string())
                    .collect();
                want.sort();
                assert_eq!(d, want, "{t:?} origin {origin}");
            }
        }
    }

    #[test]
    fn spokes_only_talk_to_the_hub() {
        let t = Topology::Star { hub: "a".into() };
        assert!(t.sends_to("b", "a") && t.sends_to("a", "b"));
        assert!(!t.sends_to("b", "c"));
        assert!(!t.accepts_from("b", "c"));
        assert!(t.accepts_from("a", "c"));
        assert!(!t.ships("b", "a", "c"), "a spoke never forwards");
    }

    /// `forwards` (which decides whether received changes are logged) is exactly "some link
    /// of this region carries a change that originated elsewhere".
    #[test]
    fn a_region_forwards_exactly_when_one_of_its_links_ships_anothers_change() {
        for t in topologies() {
            for me in REGIONS {
                let ships_others = REGIONS.iter().any(|dest| {
                    t.sends_to(me, dest) && REGIONS.iter().any(|o| *o != me && t.ships(me, dest, o))
                });
                assert_eq!(t.forwards(me), ships_others, "{t:?} at {me}");
            }
        }
    }

    proptest! {
        #[test]
        fn nothing_is_ever_shipped_back_to_its_origin(
            me in prop::sample::select(REGIONS.to_vec()),
            dest in prop::sample::select(REGIONS.to_vec()),
            hub in prop::sample::select(REGIONS.to_vec()),
            star in any::<bool>(),
        ) {
            let t = if star { Topology::Star { hub: hub.into() } } else { Topology::Mesh };
            prop_assert!(!t.ships(me, dest, dest));
        }
    }
}
