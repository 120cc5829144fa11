//! Route 53's routing policies as pure functions: given the targets of one record set, where the
//! client is, each target's health and a source of randomness, which targets answer.
//!
//! Every policy first *ranks* targets by preference (independent of health), then *admits* them
//! against health and operator weight:
//! - a target without a health check is always healthy;
//! - `weight_pct` (0–100, from operator overrides) shifts traffic away gradually: 0 drains it,
//!   50 sends half of the clients that would pick it to the next choice;
//! - when nothing healthy is left, the answer *fails open* like Route 53 (it answers as if every
//!   target were healthy) rather than sending no answer at all.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::RoutingError;
use crate::latency::LatencyTable;
use crate::location::{ClientLocation, Continent, Coordinates, Country};
use crate::rng::Random;

/// Most records a multivalue answer returns.
pub const MULTIVALUE_MAX: usize = 8;

/// A routing policy, as in Route 53.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Every healthy target.
    Simple,
    /// The primary while it is healthy, else the secondary.
    Failover,
    /// One target, chosen at random in proportion to its weight.
    Weighted,
    /// The target in the region with the lowest latency from the client's network.
    Latency,
    /// The target for the client's country, else continent, else the default.
    Geolocation,
    /// The target nearest to the client, distances scaled by each target's bias.
    Geoproximity,
    /// Up to eight healthy targets, in random order.
    Multivalue,
}

/// A target's role in a failover pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailoverRole {
    /// Serves while healthy.
    Primary,
    /// Serves when the primary is unhealthy.
    Secondary,
}

/// The place a geolocation target serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GeoLocation {
    /// Clients in this country.
    Country(Country),
    /// Clients on this continent.
    Continent(Continent),
    /// Clients matched by no other target.
    Default,
}

/// One answer candidate of a record set (a Route 53 "record" with a set identifier).
///
/// `V` is what the caller answers with (IP addresses, TXT strings, a backend URL); routing never
/// looks at it. Policy attributes not used by the record set's policy must be left unset
/// ([`validate`] checks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target<V> {
    /// Set identifier, unique within the record set.
    pub id: String,
    /// The caller's payload.
    pub values: V,
    /// Name of the health check (usually a region) gating this target; none = always healthy.
    #[serde(default)]
    pub health_check: Option<String>,
    /// Weighted policy: relative weight 0–255.
    #[serde(default)]
    pub weight: Option<u32>,
    /// Failover policy: primary or secondary.
    #[serde(default)]
    pub failover: Option<FailoverRole>,
    /// Latency policy: the region whose latency applies.
    #[serde(default)]
    pub region: Option<String>,
    /// Geolocation policy: the place served.
    #[serde(default)]
    pub location: Option<GeoLocation>,
    /// Geoproximity policy: where the target is.
    #[serde(default)]
    pub coordinates: Option<Coordinates>,
    /// Geoproximity policy: −99..=99; positive grows the target's area, negative shrinks it.
    #[serde(default)]
    pub bias: Option<i32>,
}

impl<V> Target<V> {
    /// A target with only an id and a payload.
    pub fn new(id: impl Into<String>, values: V) -> Self {
        Target {
            id: id.into(),
            values,
            health_check: None,
            weight: None,
            failover: None,
            region: None,
            location: None,
            coordinates: None,
            bias: None,
        }
    }
}

/// A target's current health as routing sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Availability {
    /// Passing its health checks and not marked down.
    pub healthy: bool,
    /// Operator traffic share, 0 (drained) to 100.
    pub weight_pct: u8,
}

impl Availability {
    /// Healthy at full weight.
    pub const UP: Availability = Availability {
        healthy: true,
        weight_pct: 100,
    };
    /// Unhealthy.
    pub const DOWN: Availability = Availability {
        healthy: false,
        weight_pct: 100,
    };
}

/// Who is asking.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Client {
    /// The client's (or its subnet's) address.
    pub ip: Option<IpAddr>,
    /// Where it is.
    pub location: ClientLocation,
}

/// Everything a decision reads besides the targets.
pub struct Inputs<'a> {
    /// Who is asking.
    pub client: &'a Client,
    /// Latencies for the latency policy.
    pub latency: &'a LatencyTable,
    /// Health by health-check name.
    pub health: &'a dyn Fn(&str) -> Availability,
}

/// The outcome: indices into the targets, in answer order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// Chosen targets.
    pub chosen: Vec<usize>,
    /// True when no candidate was healthy and the answer ignores health.
    pub fail_open: bool,
}

fn availability<V>(t: &Target<V>, health: &dyn Fn(&str) -> Availability) -> Availability {
    match &t.health_check {
        Some(name) => health(name),
        None => Availability::UP,
    }
}

fn biased_distance(client: Coordinates, target: Coordinates, bias: i32) -> f64 {
    // Route 53: biased distance = actual distance × (1 − bias/100).
    client.distance_km(&target) * (1.0 - f64::from(bias.clamp(-99, 99)) / 100.0)
}

/// Targets in order of preference for this client, ignoring health. Targets a policy cannot
/// serve to this client (a geolocation target for another place) are left out.
pub fn rank<V>(
    policy: Policy,
    targets: &[Target<V>],
    client: &Client,
    latency: &LatencyTable,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..targets.len()).collect();
    let at = |i: usize| targets.get(i);
    match policy {
        Policy::Simple | Policy::Multivalue | Policy::Weighted => {}
        Policy::Failover => {
            order.sort_by_key(|&i| at(i).and_then(|t| t.failover) != Some(FailoverRole::Primary));
        }
        Policy::Latency => {
            let row = latency.row_for(client.ip, &client.location);
            order.sort_by_key(|&i| {
                let region = at(i).and_then(|t| t.region.as_deref());
                row.and_then(|r| r.latency_ms.get(region?).copied())
                    .unwrap_or(u32::MAX)
            });
        }
        Policy::Geolocation => {
            let loc = client.location;
            let specificity = |i: usize| match at(i).and_then(|t| t.location) {
                Some(GeoLocation::Country(c)) if Some(c) == loc.country => Some(0),
                Some(GeoLocation::Continent(c)) if Some(c) == loc.continent => Some(1),
                Some(GeoLocation::Default) => Some(2),
                _ => None,
            };
            order.retain(|&i| specificity(i).is_some());
            order.sort_by_key(|&i| specificity(i));
        }
        Policy::Geoproximity => {
            if let Some(here) = client.location.coordinates {
                let dist = |i: usize| {
                    at(i)
                        .and_then(|t| {
                            Some(biased_distance(here, t.coordinates?, t.bias.unwrap_or(0)))
                        })
                        .unwrap_or(f64::INFINITY)
                };
                order.sort_by(|&a, &b| dist(a).total_cmp(&dist(b)));
            }
        }
    }
    order
}

/// Decides which targets answer. Deterministic for a given `rng` state.
pub fn decide<V>(
    policy: Policy,
    targets: &[Target<V>],
    inputs: &Inputs<'_>,
    rng: &mut dyn Random,
) -> Decision {
    let ranked = rank(policy, targets, inputs.client, inputs.latency);
    let avail: Vec<(usize, Availability)> = ranked
        .iter()
        .filter_map(|&i| Some((i, availability(targets.get(i)?, inputs.health))))
        .collect();
    let healthy: Vec<(usize, Availability)> =
        avail.iter().copied().filter(|(_, a)| a.healthy).collect();
    let fail_open = healthy.is_empty() && !avail.is_empty();
    // Candidates in tiers: healthy and not drained, else healthy, else everything (fail open).
    let serving: Vec<(usize, Availability)> = {
        let undrained: Vec<_> = healthy
            .iter()
            .copied()
            .filter(|(_, a)| a.weight_pct > 0)
            .collect();
        if !undrained.is_empty() {
            undrained
        } else if !healthy.is_empty() {
            healthy.clone()
        } else {
            avail.clone()
        }
    };
    let chosen = match policy {
        Policy::Simple => serving.iter().map(|(i, _)| *i).collect(),
        Policy::Multivalue => {
            let mut all: Vec<usize> = serving.iter().map(|(i, _)| *i).collect();
            shuffle(&mut all, rng);
            all.truncate(MULTIVALUE_MAX);
            all
        }
        Policy::Weighted => pick_weighted(targets, &serving, rng).into_iter().collect(),
        Policy::Failover | Policy::Latency | Policy::Geolocation | Policy::Geoproximity => {
            admit_first(&serving, rng).into_iter().collect()
        }
    };
    Decision { chosen, fail_open }
}

/// Walks candidates in preference order; each is taken with probability `weight_pct`%.
fn admit_first(candidates: &[(usize, Availability)], rng: &mut dyn Random) -> Option<usize> {
    for (i, a) in candidates {
        if a.weight_pct >= 100 || rng.below(100) < u64::from(a.weight_pct) {
            return Some(*i);
        }
    }
    candidates.first().map(|(i, _)| *i)
}

fn pick_weighted<V>(
    targets: &[Target<V>],
    candidates: &[(usize, Availability)],
    rng: &mut dyn Random,
) -> Option<usize> {
    let effective: Vec<(usize, u64)> = candidates
        .iter()
        .map(|(i, a)| {
            let w = targets.get(*i).and_then(|t| t.weight).unwrap_or(0);
            (*i, u64::from(w) * u64::from(a.weight_pct.min(100)))
        })
        .collect();
    let total: u64 = effective.iter().map(|(_, w)| w).sum();
    if total == 0 {
        // Route 53: when every weight is zero, targets are chosen with equal probability.
        let n = candidates.len() as u64;
        return candidates.get(rng.below(n) as usize).map(|(i, _)| *i);
    }
    let mut x = rng.below(total);
    for (i, w) in effective {
        if x < w {
            return Some(i);
        }
        x -= w;
    }
    None
}

fn shuffle(v: &mut [usize], rng: &mut dyn Random) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

/// Checks that a record set's targets carry exactly the attributes its policy needs.
pub fn validate<V>(policy: Policy, targets: &[Target<V>]) -> Result<(), RoutingError> {
    let err = |id: &str, msg: &str| {
        Err(RoutingError::InvalidTarget {
            id: id.to_string(),
            reason: msg.to_string(),
        })
    };
    if targets.is_empty() {
        return err("", "a record set needs at least one target");
    }
    let mut ids = std::collections::BTreeSet::new();
    let mut locations = Vec::new();
    for t in targets {
        if !ids.insert(t.id.as_str()) {
            return err(&t.id, "duplicate target id");
        }
        let uses = |attr: bool, wanted: Policy| attr != (policy == wanted);
        if uses(t.weight.is_some(), Policy::Weighted) {
            return err(
                &t.id,
                "`weight` is required by, and only allowed with, policy weighted",
            );
        }
        if uses(t.failover.is_some(), Policy::Failover) {
            return err(
                &t.id,
                "`failover` is required by, and only allowed with, policy failover",
            );
        }
        if uses(t.region.is_some(), Policy::Latency) {
            return err(
                &t.id,
                "`region` is required by, and only allowed with, policy latency",
            );
        }
        if uses(t.location.is_some(), Policy::Geolocation) {
            return err(
                &t.id,
                "`location` is required by, and only allowed with, policy geolocation",
            );
        }
        if uses(t.coordinates.is_some(), Policy::Geoproximity) {
            return err(
                &t.id,
                "`coordinates` is required by, and only allowed with, policy geoproximity",
            );
        }
        if t.bias.is_some() && policy != Policy::Geoproximity {
            return err(&t.id, "`bias` is only allowed with policy geoproximity");
        }
        if t.weight.is_some_and(|w| w > 255) {
            return err(&t.id, "weight must be 0..=255");
        }
        if t.bias.is_some_and(|b| !(-99..=99).contains(&b)) {
            return err(&t.id, "bias must be -99..=99");
        }
        if let Some(loc) = t.location
            && locations.last() != Some(&loc)
        {
            // Targets that repeat a location must be adjacent: they form that location's
            // failover chain (geolocation combined with health-checked failover), tried in
            // the order listed — [`rank`] sorts stably.
            if locations.contains(&loc) {
                return err(
                    &t.id,
                    "targets serving the same location must be listed together",
                );
            }
            locations.push(loc);
        }
    }
    if policy == Policy::Failover {
        let primaries = targets
            .iter()
            .filter(|t| t.failover == Some(FailoverRole::Primary))
            .count();
        if primaries != 1 || targets.len() > 2 {
            return err(
                "",
                "failover needs exactly one primary and at most one secondary",
            );
        }
    }
    Ok(())
}
