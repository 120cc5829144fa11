//! Table-driven tests of every policy against clients on different continents and health states.

use std::collections::{BTreeMap, BTreeSet};

use crate::*;

const REGIONS: [(&str, f64, f64); 3] = [
    ("us-east", 39.0, -77.5),
    ("eu-west", 53.3, -6.3),
    ("ap-southeast", 1.35, 103.8),
];

fn client(country: &str) -> Client {
    let c = Country::new(country).ok();
    Client {
        ip: None,
        location: ClientLocation {
            country: c,
            continent: c.and_then(continent_of),
            coordinates: c.and_then(country_centre),
        },
    }
}

fn targets(policy: Policy) -> Vec<Target<&'static str>> {
    REGIONS
        .iter()
        .enumerate()
        .map(|(n, (name, lat, lon))| {
            let mut t = Target::new(*name, *name);
            t.health_check = Some(name.to_string());
            match policy {
                Policy::Weighted => t.weight = Some([70, 20, 10][n]),
                Policy::Latency => t.region = Some(name.to_string()),
                Policy::Geoproximity => {
                    t.coordinates = Some(Coordinates {
                        lat: *lat,
                        lon: *lon,
                    })
                }
                Policy::Geolocation => {
                    t.location = Some(match n {
                        0 => GeoLocation::Continent(Continent::NA),
                        1 => GeoLocation::Continent(Continent::EU),
                        _ => GeoLocation::Default,
                    })
                }
                _ => {}
            }
            t
        })
        .collect()
}

fn latency_table() -> LatencyTable {
    let row = |continents: Vec<Continent>, ms: [u32; 3]| LatencyRow {
        networks: vec![],
        countries: vec![],
        continents,
        latency_ms: REGIONS
            .iter()
            .zip(ms)
            .map(|((r, _, _), ms)| (r.to_string(), ms))
            .collect(),
    };
    LatencyTable {
        rows: vec![
            row(vec![Continent::NA, Continent::SA], [10, 80, 200]),
            row(vec![Continent::EU, Continent::AF], [80, 10, 150]),
            row(vec![], [150, 150, 20]), // default: everyone else (Asia, Oceania)
        ],
    }
}

/// Runs one decision; `down` lists unhealthy regions, `pct` operator weights.
fn run(
    policy: Policy,
    who: &str,
    down: &[&str],
    pct: &[(&str, u8)],
    seed: u64,
) -> Vec<&'static str> {
    let t = targets(policy);
    validate(policy, &t).expect("valid targets");
    let c = client(who);
    let lat = latency_table();
    let health = |name: &str| Availability {
        healthy: !down.contains(&name),
        weight_pct: pct
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(100, |(_, p)| *p),
    };
    let inputs = Inputs {
        client: &c,
        latency: &lat,
        health: &health,
    };
    let d = decide(policy, &t, &inputs, &mut SplitMix64::new(seed));
    d.chosen.iter().map(|&i| t[i].values).collect()
}

#[test]
fn single_answer_policies_table() {
    use Policy::*;
    let cases: &[(Policy, &str, &[&str], &str)] = &[
        // policy, client country, unhealthy regions, expected answer
        (Latency, "US", &[], "us-east"),
        (Latency, "BR", &[], "us-east"),
        (Latency, "DE", &[], "eu-west"),
        (Latency, "ZA", &[], "eu-west"),
        (Latency, "JP", &[], "ap-southeast"),
        (Latency, "AU", &[], "ap-southeast"),
        (Latency, "DE", &["eu-west"], "us-east"),
        (Latency, "JP", &["ap-southeast"], "us-east"), // tie 150/150: config order
        (
            Latency,
            "US",
            &["us-east", "eu-west", "ap-southeast"],
            "us-east",
        ), // fail open
        (Geoproximity, "US", &[], "us-east"),
        (Geoproximity, "FR", &[], "eu-west"),
        (Geoproximity, "IN", &[], "ap-southeast"),
        (Geoproximity, "AU", &[], "ap-southeast"),
        (Geoproximity, "FR", &["eu-west"], "us-east"),
        (Geolocation, "US", &[], "us-east"),
        (Geolocation, "MX", &[], "us-east"),
        (Geolocation, "DE", &[], "eu-west"),
        (Geolocation, "JP", &[], "ap-southeast"), // default
        (Geolocation, "DE", &["eu-west"], "ap-southeast"), // falls back to default
        (Geolocation, "ZZ", &[], "ap-southeast"), // unknown client → default
    ];
    for (n, (policy, who, down, want)) in cases.iter().enumerate() {
        let got = run(*policy, who, down, &[], n as u64);
        assert_eq!(
            got,
            vec![*want],
            "case {n}: {policy:?} client={who} down={down:?}"
        );
    }
}

#[test]
fn failover_table() {
    let t = {
        let mut p = Target::new("p", "primary");
        p.failover = Some(FailoverRole::Primary);
        p.health_check = Some("a".into());
        let mut s = Target::new("s", "secondary");
        s.failover = Some(FailoverRole::Secondary);
        s.health_check = Some("b".into());
        vec![s, p] // order in config does not matter
    };
    validate(Policy::Failover, &t).expect("valid");
    let cases: &[(&[&str], &str, bool)] = &[
        (&[], "primary", false),
        (&["a"], "secondary", false),
        (&["b"], "primary", false),
        (&["a", "b"], "primary", true), // both down: primary, like Route 53
    ];
    for (down, want, fail_open) in cases {
        let c = client("US");
        let lat = LatencyTable::default();
        let health = |n: &str| {
            if down.contains(&n) {
                Availability::DOWN
            } else {
                Availability::UP
            }
        };
        let inputs = Inputs {
            client: &c,
            latency: &lat,
            health: &health,
        };
        let d = decide(Policy::Failover, &t, &inputs, &mut SplitMix64::new(1));
        assert_eq!(
            d.chosen.iter().map(|&i| t[i].values).collect::<Vec<_>>(),
            vec![*want],
            "down={down:?}"
        );
        assert_eq!(d.fail_open, *fail_open);
    }
}

#[test]
fn geolocation_without_default_gives_no_answer() {
    let mut t = targets(Policy::Geolocation);
    t.pop();
    let c = client("JP");
    let lat = LatencyTable::default();
    let health = |_: &str| Availability::UP;
    let inputs = Inputs {
        client: &c,
        latency: &lat,
        health: &health,
    };
    assert!(
        decide(Policy::Geolocation, &t, &inputs, &mut SplitMix64::new(0))
            .chosen
            .is_empty()
    );
}

#[test]
fn geolocation_country_beats_continent() {
    let mut t = targets(Policy::Geolocation);
    let mut de = Target::new("de", "de-only");
    de.location = Some(GeoLocation::Country(Country::new("DE").expect("cc")));
    t.push(de);
    validate(Policy::Geolocation, &t).expect("valid");
    let c = client("DE");
    let lat = LatencyTable::default();
    let health = |_: &str| Availability::UP;
    let inputs = Inputs {
        client: &c,
        latency: &lat,
        health: &health,
    };
    let d = decide(Policy::Geolocation, &t, &inputs, &mut SplitMix64::new(0));
    assert_eq!(t[d.chosen[0]].values, "de-only");
}

#[test]
fn geolocation_repeated_location_is_a_failover_chain() {
    // Europe: eu-west, then us-east when eu-west is unhealthy (the control plane derives these
    // chains for geolocation combined with health-checked failover).
    let eu = GeoLocation::Continent(Continent::EU);
    let mut t = Vec::new();
    for region in ["eu-west", "us-east"] {
        let mut x = Target::new(format!("EU/{region}"), region);
        x.location = Some(eu);
        x.health_check = Some(region.to_string());
        t.push(x);
    }
    validate(Policy::Geolocation, &t).expect("valid");
    let mut split = t.clone();
    let mut other = Target::new("default", "x");
    other.location = Some(GeoLocation::Default);
    split.insert(1, other);
    assert!(validate(Policy::Geolocation, &split).is_err());
    let c = client("DE");
    let lat = LatencyTable::default();
    for (down, want) in [("nobody", "eu-west"), ("eu-west", "us-east")] {
        let health = |name: &str| {
            if name == down {
                Availability {
                    healthy: false,
                    weight_pct: 100,
                }
            } else {
                Availability::UP
            }
        };
        let inputs = Inputs {
            client: &c,
            latency: &lat,
            health: &health,
        };
        let d = decide(Policy::Geolocation, &t, &inputs, &mut SplitMix64::new(0));
        assert_eq!(t[d.chosen[0]].values, want);
    }
}

#[test]
fn geoproximity_bias_grows_a_region() {
    // A client in Poland is nearer eu-west; a large positive bias on us-east wins it over.
    let mut t = targets(Policy::Geoproximity);
    assert_eq!(
        run(Policy::Geoproximity, "PL", &[], &[], 0),
        vec!["eu-west"]
    );
    t[0].bias = Some(90);
    validate(Policy::Geoproximity, &t).expect("valid");
    let c = client("PL");
    let lat = LatencyTable::default();
    let health = |_: &str| Availability::UP;
    let inputs = Inputs {
        client: &c,
        latency: &lat,
        health: &health,
    };
    let d = decide(Policy::Geoproximity, &t, &inputs, &mut SplitMix64::new(0));
    assert_eq!(t[d.chosen[0]].values, "us-east");
}

fn histogram(
    policy: Policy,
    down: &[&str],
    pct: &[(&str, u8)],
    seed: u64,
    n: u64,
) -> BTreeMap<&'static str, u64> {
    let mut h = BTreeMap::new();
    for i in 0..n {
        for r in run(policy, "DE", down, pct, seed.wrapping_add(i)) {
            *h.entry(r).or_insert(0) += 1;
        }
    }
    h
}

#[test]
fn weighted_follows_weights_health_and_operator_share() {
    let seed = 0x5eed_0001;
    eprintln!("seed = {seed:#x}");
    let h = histogram(Policy::Weighted, &[], &[], seed, 10_000);
    let share = |r: &str, h: &BTreeMap<&str, u64>| *h.get(r).unwrap_or(&0) as f64 / 10_000.0;
    assert!((share("us-east", &h) - 0.7).abs() < 0.03, "{h:?}");
    assert!((share("eu-west", &h) - 0.2).abs() < 0.03, "{h:?}");
    assert!((share("ap-southeast", &h) - 0.1).abs() < 0.03, "{h:?}");

    let h = histogram(Policy::Weighted, &["us-east"], &[], seed, 10_000);
    assert_eq!(h.get("us-east"), None, "{h:?}");
    assert!((share("eu-west", &h) - 2.0 / 3.0).abs() < 0.03, "{h:?}");

    // Operator shifts us-east to 0%: drained completely.
    let h = histogram(Policy::Weighted, &[], &[("us-east", 0)], seed, 2_000);
    assert_eq!(h.get("us-east"), None, "{h:?}");

    // Same seed, same answers.
    assert_eq!(
        run(Policy::Weighted, "DE", &[], &[], seed),
        run(Policy::Weighted, "DE", &[], &[], seed)
    );
}

#[test]
fn operator_weight_shifts_single_answer_policies_gradually() {
    let seed = 0x5eed_0002;
    eprintln!("seed = {seed:#x}");
    let h = histogram(Policy::Latency, &[], &[("eu-west", 25)], seed, 10_000);
    let eu = *h.get("eu-west").unwrap_or(&0) as f64 / 10_000.0;
    assert!((eu - 0.25).abs() < 0.03, "{h:?}");
    assert_eq!(
        histogram(Policy::Latency, &[], &[("eu-west", 0)], seed, 500).get("eu-west"),
        None
    );
    // Every region drained: still answer (nearest), never nothing.
    let all = [("us-east", 0), ("eu-west", 0), ("ap-southeast", 0)];
    assert_eq!(run(Policy::Latency, "DE", &[], &all, seed), vec!["eu-west"]);
}

#[test]
fn simple_and_multivalue_drop_unhealthy() {
    assert_eq!(
        run(Policy::Simple, "DE", &[], &[], 0),
        vec!["us-east", "eu-west", "ap-southeast"]
    );
    assert_eq!(
        run(Policy::Simple, "DE", &["eu-west"], &[], 0),
        vec!["us-east", "ap-southeast"]
    );
    assert_eq!(
        run(
            Policy::Simple,
            "DE",
            &["us-east", "eu-west", "ap-southeast"],
            &[],
            0
        )
        .len(),
        3
    );
    let got: BTreeSet<_> = run(Policy::Multivalue, "DE", &["ap-southeast"], &[], 3)
        .into_iter()
        .collect();
    assert_eq!(got, BTreeSet::from(["us-east", "eu-west"]));
}

#[test]
fn multivalue_caps_at_eight_and_shuffles() {
    let seed = 0x5eed_0003;
    eprintln!("seed = {seed:#x}");
    let t: Vec<Target<usize>> = (0..12).map(|i| Target::new(format!("t{i}"), i)).collect();
    validate(Policy::Multivalue, &t).expect("valid");
    let c = client("DE");
    let lat = LatencyTable::default();
    let health = |_: &str| Availability::UP;
    let inputs = Inputs {
        client: &c,
        latency: &lat,
        health: &health,
    };
    let mut firsts = BTreeSet::new();
    let mut rng = SplitMix64::new(seed);
    for _ in 0..50 {
        let d = decide(Policy::Multivalue, &t, &inputs, &mut rng);
        assert_eq!(d.chosen.len(), MULTIVALUE_MAX);
        assert_eq!(
            d.chosen.iter().collect::<BTreeSet<_>>().len(),
            MULTIVALUE_MAX
        );
        firsts.insert(d.chosen[0]);
    }
    assert!(firsts.len() > 4, "answers are not shuffled: {firsts:?}");
}

#[test]
fn validate_rejects_mismatched_attributes() {
    let mut t = targets(Policy::Weighted);
    assert!(validate(Policy::Latency, &t).is_err());
    t[0].weight = Some(256);
    assert!(validate(Policy::Weighted, &t).is_err());
    let t = targets(Policy::Simple);
    assert!(validate(Policy::Simple, &t).is_ok());
    assert!(validate(Policy::Weighted, &t).is_err());
    let mut t = targets(Policy::Geoproximity);
    t[1].bias = Some(100);
    assert!(validate(Policy::Geoproximity, &t).is_err());
    let mut t = targets(Policy::Simple);
    t[1].id = t[0].id.clone();
    assert!(validate(Policy::Simple, &t).is_err());
    assert!(validate::<()>(Policy::Simple, &[]).is_err());
}

#[test]
fn target_config_is_strict() {
    let ok = r#"id = "a"
values = ["192.0.2.1"]
weight = 5
health_check = "us-east""#;
    let t: Target<Vec<String>> = toml::from_str(ok).expect("parse");
    assert_eq!(t.weight, Some(5));
    let loc: Target<Vec<String>> =
        toml::from_str("id = \"a\"\nvalues = []\nlocation = { country = \"de\" }").expect("parse");
    assert_eq!(
        loc.location,
        Some(GeoLocation::Country(Country::new("DE").expect("cc")))
    );
    let def: Target<Vec<String>> =
        toml::from_str("id = \"a\"\nvalues = []\nlocation = \"default\"").expect("parse");
    assert_eq!(def.location, Some(GeoLocation::Default));
    assert!(toml::from_str::<Target<Vec<String>>>("id = \"a\"\nvalues = []\nwieght = 5").is_err());
}
