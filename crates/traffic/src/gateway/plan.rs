//! Where a request goes, as a pure function: the user's home region, then the order in which
//! regions are tried given their health and operator weights.

use std::collections::BTreeMap;

use crate::health::HealthSnapshot;
use meridian_routing::{Client, LatencyRow, LatencyTable, Policy, Random, Target, continent_of};

use super::config::{GatewayConfig, PinningConfig};

/// The regions to try, best first, and what that means for a pinned request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Region names in the order to try them. Every region appears once: healthy ones the
    /// operator has not shifted away first, then shifted ones, then unhealthy ones (their
    /// health may be stale; trying them beats failing).
    pub order: Vec<String>,
    /// The user's home region, when the request is pinned.
    pub home: Option<String>,
    /// Whether the home region is healthy and not drained.
    pub home_available: bool,
}

/// The static part of routing, built once from configuration.
#[derive(Debug, Clone)]
pub struct Router {
    /// Nearest first.
    nearest: Vec<String>,
    failover_orders: BTreeMap<String, Vec<String>>,
    pinning: PinningConfig,
}

impl Router {
    /// Builds the router; `nearest` ranks regions by configured latency (via the latency
    /// policy of `meridian-routing`, with this gateway as the only client).
    pub fn new(config: &GatewayConfig) -> Self {
        let targets: Vec<Target<()>> = config
            .regions
            .iter()
            .map(|r| {
                let mut t = Target::new(r.name.clone(), ());
                t.region = Some(r.name.clone());
                t
            })
            .collect();
        let table = LatencyTable {
            rows: vec![LatencyRow {
                networks: vec![],
                countries: vec![],
                continents: vec![],
                latency_ms: config
                    .regions
                    .iter()
                    .filter_map(|r| Some((r.name.clone(), r.latency_ms?)))
                    .collect(),
            }],
        };
        let nearest = meridian_routing::rank(Policy::Latency, &targets, &Client::default(), &table)
            .into_iter()
            .filter_map(|i| targets.get(i).map(|t| t.id.clone()))
            .collect();
        let failover_orders = config
            .regions
            .iter()
            .map(|r| (r.name.clone(), r.failover_order.clone()))
            .collect();
        Router {
            nearest,
            failover_orders,
            pinning: config.pinning.clone(),
        }
    }

    /// Regions nearest first.
    pub fn nearest(&self) -> &[String] {
        &self.nearest
    }

    /// The home region of `user`: its registration country's region, else its continent's.
    pub fn home_region(&self, user: &str) -> Option<&str> {
        let country = self.pinning.users.get(user)?;
        self.pinning
            .country_regions
            .get(country)
            .or_else(|| self.pinning.continent_regions.get(&continent_of(*country)?))
            .map(String::as_str)
    }

    /// The preference order before health: home, its failover order, then the rest nearest-first.
    fn preference(&self, home: Option<&str>) -> Vec<String> {
        let mut order: Vec<String> = Vec::with_capacity(self.nearest.len());
        let mut push = |name: &str| {
            if !order.iter().any(|n| n == name) {
                order.push(name.to_string());
            }
        };
        if let Some(home) = home {
            push(home);
            for n in self.failover_orders.get(home).into_iter().flatten() {
                push(n);
            }
        }
        for n in &self.nearest {
            push(n);
        }
        order
    }

    /// Plans one request. A partial operator weight (1–99) moves that share of *unpinned*
    /// requests to the next region; a pinned request stays home while home is healthy and
    /// not drained, because moving a user's writes is what pinning exists to avoid.
    pub fn plan(&self, home: Option<&str>, health: &HealthSnapshot, rng: &mut dyn Random) -> Plan {
        let mut first = Vec::new();
        let mut shifted = Vec::new();
        let mut unhealthy = Vec::new();
        let mut home_available = false;
        for name in self.preference(home) {
            let (healthy, pct) = health.availability(&name);
            let is_home = Some(name.as_str()) == home;
            if !healthy {
                unhealthy.push(name);
            } else if is_home && pct > 0 {
                home_available = true;
                first.push(name);
            } else if pct >= 100 || (pct > 0 && rng.below(100) < u64::from(pct)) {
                first.push(name);
            } else {
                shifted.push(name);
            }
        }
        first.extend(shifted);
        first.extend(unhealthy);
        Plan {
            order: first,
            home: home.map(str::to_string),
            home_available,
        }
    }
}

/// A plan's order for a request carrying a session token: the first region stays first (home,
/// when available), then the regions that took the session's writes, latest first (they hold
/// them), then the rest. A region that has not applied the token refuses and the next is
/// tried.
pub fn with_session(order: &[String], origins: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(order.len());
    let mut push = |name: &str| {
        if order.iter().any(|n| n == name) && !out.iter().any(|n| n == name) {
            out.push(name.to_owned());
        }
    };
    if let Some(first) = order.first() {
        push(first);
    }
    for o in origins {
        push(o);
    }
    for n in order {
        push(n);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{AdminState, EndpointStatus};
    use meridian_routing::SplitMix64;

    fn config() -> GatewayConfig {
        GatewayConfig::from_toml(
            r#"
            listen = "127.0.0.1:0"
            [[health.endpoints]]
            name = "us-east"
            tcp_addr = "127.0.0.1:1"
            [[health.endpoints]]
            name = "eu-west"
            tcp_addr = "127.0.0.1:1"
            [[health.endpoints]]
            name = "ap-southeast"
            tcp_addr = "127.0.0.1:1"
            [[regions]]
            name = "us-east"
            endpoint = "http://127.0.0.1:1"
            latency_ms = 40
            failover_order = ["ap-southeast"]
            [[regions]]
            name = "eu-west"
            endpoint = "http://127.0.0.1:1"
            latency_ms = 5
            [[regions]]
            name = "ap-southeast"
            endpoint = "http://127.0.0.1:1"
            latency_ms = 150
            [pinning]
            users = { alice = "DE", bob = "US", chen = "SG", dora = "PL", eve = "ZZ" }
            country_regions = { DE = "eu-west", US = "us-east", SG = "ap-southeast" }
            continent_regions = { EU = "eu-west" }
            "#,
        )
        .expect("config")
    }

    /// (region, checks healthy, operator override, weight %)
    type State<'a> = (&'a str, bool, AdminState, u8);

    /// (home, region states, expected order, home available)
    type Case<'a> = (Option<&'a str>, &'a [State<'a>], &'a [&'a str], bool);

    fn snapshot(states: &[State<'_>]) -> HealthSnapshot {
        let mut s = HealthSnapshot::all_healthy(["us-east", "eu-west", "ap-southeast"]);
        for (name, healthy, admin, weight_pct) in states {
            s.endpoints.insert(
                name.to_string(),
                EndpointStatus {
                    checks_healthy: Some(*healthy),
                    admin: *admin,
                    weight_pct: *weight_pct,
                    ..Default::default()
                },
            );
        }
        s
    }

    #[test]
    fn home_regions() {
        let r = Router::new(&config());
        let cases = [
            ("alice", Some("eu-west")),
            ("bob", Some("us-east")),
            ("chen", Some("ap-southeast")),
            ("dora", Some("eu-west")),
            ("eve", None),
            ("zed", None),
        ];
        for (user, want) in cases {
            assert_eq!(r.home_region(user), want, "{user}");
        }
        assert_eq!(r.nearest(), ["eu-west", "us-east", "ap-southeast"]);
    }

    #[test]
    fn plans_table() {
        use AdminState::*;
        let r = Router::new(&config());
        let cases: &[Case<'_>] = &[
            (None, &[], &["eu-west", "us-east", "ap-southeast"], false),
            (
                Some("us-east"),
                &[],
                &["us-east", "ap-southeast", "eu-west"],
                true,
            ),
            (
                Some("us-east"),
                &[("us-east", false, Auto, 100)],
                &["ap-southeast", "eu-west", "us-east"],
                false,
            ),
            (
                Some("us-east"),
                &[("us-east", true, Drain, 100)],
                &["ap-southeast", "eu-west", "us-east"],
                false,
            ),
            (
                Some("us-east"),
                &[("us-east", true, Auto, 10)],
                &["us-east", "ap-southeast", "eu-west"],
                true,
            ),
            (
                None,
                &[("eu-west", true, Drain, 100)],
                &["us-east", "ap-southeast", "eu-west"],
                false,
            ),
            (
                None,
                &[("eu-west", true, Down, 100)],
                &["us-east", "ap-southeast", "eu-west"],
                false,
            ),
            (
                None,
                &[
                    ("eu-west", false, Auto, 100),
                    ("us-east", false, Auto, 100),
                    ("ap-southeast", false, Auto, 100),
                ],
                &["eu-west", "us-east", "ap-southeast"],
                false,
            ),
        ];
        for (n, (home, states, want, home_ok)) in cases.iter().enumerate() {
            let plan = r.plan(*home, &snapshot(states), &mut SplitMix64::new(n as u64));
            assert_eq!(
                plan.order,
                want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "case {n}"
            );
            assert_eq!(plan.home_available, *home_ok, "case {n}");
        }
    }

    #[test]
    fn session_origins_follow_the_first_region() {
        let order: Vec<String> = ["eu-west", "us-east", "ap-southeast"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let cases: &[(&[&str], &[&str])] = &[
            (&[], &["eu-west", "us-east", "ap-southeast"]),
            (&["ap-southeast"], &["eu-west", "ap-southeast", "us-east"]),
            (
                &["ap-southeast", "us-east"],
                &["eu-west", "ap-southeast", "us-east"],
            ),
            (&["eu-west"], &["eu-west", "us-east", "ap-southeast"]),
            (&["gone"], &["eu-west", "us-east", "ap-southeast"]),
        ];
        for (origins, want) in cases {
            assert_eq!(with_session(&order, origins), *want, "{origins:?}");
        }
    }

    #[test]
    fn partial_weight_shifts_that_share_of_unpinned_requests() {
        let seed = 0x6a7e;
        eprintln!("seed = {seed:#x}");
        let r = Router::new(&config());
        let snap = snapshot(&[("eu-west", true, AdminState::Auto, 30)]);
        let mut rng = SplitMix64::new(seed);
        let kept = (0..10_000)
            .filter(|_| r.plan(None, &snap, &mut rng).order[0] == "eu-west")
            .count();
        assert!(
            (2_700..=3_300).contains(&kept),
            "eu-west kept {kept}/10000 at weight 30"
        );
    }
}
