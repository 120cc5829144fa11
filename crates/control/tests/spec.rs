//! Parse tests of every example spec in the repository, and of malformed specs: each refusal
//! names the exact line and column, and nothing is stored.

use std::path::PathBuf;

use meridian_control::derive::{continent_homes, create_table_request};
use meridian_control::{SpecStore, dns_config, gateway_config, parse_spec, region_plan};
use meridian_routing::Continent;

fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("cluster") && n.ends_with(".toml"))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_example_spec_parses_and_derives() {
    let files = examples();
    assert!(files.len() >= 2, "examples/cluster*.toml: {files:?}");
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read");
        let spec = parse_spec(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let dns = dns_config(&spec).unwrap_or_else(|e| panic!("{}: dns: {e}", path.display()));
        assert_eq!(dns.zones.len(), 1);
        let gw = gateway_config(&spec).unwrap_or_else(|e| panic!("{}: gw: {e}", path.display()));
        assert_eq!(gw.regions.len(), spec.regions.len());
        for r in &spec.regions {
            let plan = region_plan(&spec, &r.name).expect("plan");
            assert_eq!(plan.peers.len(), spec.regions.len() - 1);
            assert!(plan.base_args().contains(&r.api_addr().to_string()));
        }
        for t in &spec.tables {
            assert_eq!(create_table_request(t)["TableName"], t.name.as_str());
        }
    }
}

#[test]
fn default_layout_is_three_regions_with_geolocation() {
    let text = include_str!("../../../examples/cluster.toml");
    let spec = parse_spec(text).expect("valid");
    let names: Vec<&str> = spec.regions.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["us-east", "eu-west", "ap-southeast"]);
    let homes = continent_homes(&spec);
    for (c, r) in [
        (Continent::NA, "us-east"),
        (Continent::SA, "us-east"),
        (Continent::EU, "eu-west"),
        (Continent::AF, "eu-west"),
        (Continent::AS, "ap-southeast"),
        (Continent::OC, "ap-southeast"),
    ] {
        assert_eq!(homes.get(&c).map(String::as_str), Some(r), "{c}");
    }
    assert_eq!(spec.link_latency_ms("eu-west", "us-east"), 35);
    assert_eq!(spec.link_latency_ms("ap-southeast", "eu-west"), 70);
    assert_eq!(spec.link_latency_ms("us-east", "ap-southeast"), 100);
    // The geolocation record of the global name: 7 continents + 16 countries + the default,
    // each a chain over the 3 regions.
    let dns = dns_config(&spec).expect("dns");
    let record = &dns.zones[0].records[0];
    assert_eq!(record.name, "dynamodb.meridian.test.");
    assert_eq!(record.targets.len(), (7 + 16 + 1) * 3);
    let plan = region_plan(&spec, "eu-west").expect("plan");
    assert_eq!(plan.link_delays_ms.get("ap-southeast"), Some(&70));
}

#[test]
fn star_example_has_a_hub() {
    let text = include_str!("../../../examples/cluster-star.toml");
    let spec = parse_spec(text).expect("valid");
    assert_eq!(spec.regions.len(), 4);
    let plan = region_plan(&spec, "sa-east").expect("plan");
    let args = plan.replication_args();
    assert!(args.windows(2).any(|w| w == ["--topology", "star"]));
    assert!(args.windows(2).any(|w| w == ["--hub", "us-east"]));
    // A spoke has a link, and so a delay, only towards the hub; the hub towards every spoke.
    let delays: Vec<&str> = plan.link_delays_ms.keys().map(String::as_str).collect();
    assert_eq!(delays, ["us-east"]);
    let hub = region_plan(&spec, "us-east").expect("plan");
    assert_eq!(hub.link_delays_ms.len(), 3);
    // Explicit ids are optional: position + 1.
    assert_eq!(spec.region_id("sa-east"), Some(4));
    // South America's home is the region on that continent.
    assert_eq!(
        continent_homes(&spec)
            .get(&Continent::SA)
            .map(String::as_str),
        Some("sa-east")
    );
}

const BASE: &str = r#"[[regions]]
name = "us-east"
address = "127.0.1.1"
lat = 38.9
lon = -77.4
continent = "NA"

[[regions]]
name = "eu-west"
address = "127.0.2.1"
lat = 53.3
lon = -6.3
continent = "EU"
"#;

/// Each malformed spec, the line and column reported, and a fragment of the message.
#[test]
fn malformed_specs_are_refused_with_exact_positions() {
    let cases: &[(&str, usize, usize, &str)] = &[
        // Syntax.
        ("[[regions]\nname = 1", 1, 11, "unclosed array table"),
        // Unknown key, in a region (line 7 of the text below).
        (
            "[[regions]]\nname = \"a\"\naddress = \"127.0.1.1\"\nlat = 1.0\nlon = 2.0\ncontinent = \"NA\"\ncolour = \"red\"\n",
            7,
            1,
            "unknown field `colour`",
        ),
        // Bad value types and enums.
        (
            "[[regions]]\nname = \"a\"\naddress = \"not-an-ip\"\nlat = 1.0\nlon = 2.0\ncontinent = \"NA\"\n",
            3,
            11,
            "invalid IP address",
        ),
        (
            "[[regions]]\nname = \"a\"\naddress = \"127.0.1.1\"\nlat = 1.0\nlon = 2.0\ncontinent = \"XX\"\n",
            6,
            13,
            "unknown variant",
        ),
        // Missing required field.
        ("[[regions]]\nname = \"a\"\n", 1, 1, "missing field"),
    ];
    for (text, line, column, fragment) in cases {
        let err = parse_spec(text).expect_err(text);
        assert_eq!(
            (err.line, err.column),
            (Some(*line), Some(*column)),
            "{text:?}: {err}"
        );
        assert!(err.message.contains(fragment), "{text:?}: {err}");
    }
}

#[test]
fn semantic_errors_point_at_the_offending_value() {
    // (appended text, line, column, path, message fragment)
    let cases: &[(&str, usize, usize, &str, &str)] = &[
        (
            "\n[[regions]]\nname = \"us-east\"\naddress = \"127.0.3.1\"\nlat = 0.0\nlon = 0.0\ncontinent = \"AS\"\n",
            16,
            8,
            "regions[2].name",
            "declared twice",
        ),
        (
            "\n[[regions]]\nname = \"ap\"\naddress = \"127.0.3.1\"\nlat = 95.0\nlon = 0.0\ncontinent = \"AS\"\n",
            18,
            7,
            "regions[2].lat",
            "outside -90..=90",
        ),
        (
            "\n[topology]\nmode = \"star\"\nhub = \"mars\"\n",
            17,
            7,
            "topology.hub",
            "not a declared region",
        ),
        (
            "\n[topology]\nmode = \"star\"\n",
            16,
            8,
            "topology.mode",
            "needs `hub`",
        ),
        (
            "\n[[links.pairs]]\nbetween = [\"us-east\", \"moon\"]\none_way_ms = 5\n",
            16,
            1,
            "links.pairs[0].between",
            "\"moon\" is not a declared region",
        ),
        (
            "\n[[tables]]\nname = \"t\"\npartition_key = { name = \"pk\", type = \"S\" }\n",
            16,
            8,
            "tables[0].name",
            "3-255 characters",
        ),
        (
            "\n[[tables]]\nname = \"orders\"\npartition_key = { name = \"pk\", type = \"S\" }\nsort_key = { name = \"pk\", type = \"N\" }\n",
            18,
            1,
            "tables[0].sort_key",
            "must differ",
        ),
        (
            "\n[[tables]]\nname = \"orders\"\npartition_key = { name = \"pk\", type = \"S\" }\nbilling_mode = \"PROVISIONED\"\n",
            18,
            16,
            "tables[0].billing_mode",
            "PROVISIONED needs",
        ),
        (
            "\n[dns]\nname = \"dynamodb.example.com\"\n",
            16,
            8,
            "dns.name",
            "inside zone",
        ),
        (
            "\n[dns.continents]\nEU = \"eu-central\"\n",
            16,
            6,
            "dns.continents.EU",
            "not a declared region",
        ),
        (
            "\n[gateway]\nlisten = \"127.0.0.1:7100\"\n",
            16,
            10,
            "gateway.listen",
            "also used by control.listen",
        ),
    ];
    for (extra, line, column, path, fragment) in cases {
        let text = format!("{BASE}{extra}");
        let err = parse_spec(&text).expect_err(extra);
        assert_eq!(err.path, *path, "{extra:?}: {err}");
        assert_eq!(
            (err.line, err.column),
            (Some(*line), Some(*column)),
            "{extra:?}: {err}"
        );
        assert!(err.message.contains(fragment), "{extra:?}: {err}");
        assert!(
            err.to_string()
                .starts_with(&format!("line {line}, column {column}: {path}: "))
        );
    }
}

#[test]
fn refused_specs_are_not_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SpecStore::open(dir.path()).expect("open");
    let bad = format!("{BASE}\n[topology]\nmode = \"star\"\n");
    assert!(store.put(&bad, false, true).is_err());
    assert_eq!(store.latest().expect("latest"), None);
    assert_eq!(
        std::fs::read_dir(dir.path().join("specs"))
            .expect("dir")
            .count(),
        0
    );
    assert_eq!(store.put(BASE, false, true).expect("good").0, 1);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

    /// Specs come from operators and over the control plane's API: any change to a valid spec
    /// is refused with an error or accepted, never a panic; an accepted one derives every
    /// role's configuration and its served part (without secrets) parses too.
    #[test]
    fn any_edit_of_a_valid_spec_is_refused_or_derives_cleanly(
        at in 0usize..4000,
        len in 0usize..40,
        insert in "[ -~\n]{0,12}",
    ) {
        let text = include_str!("../../../examples/cluster.toml");
        let mut chars: Vec<char> = text.chars().collect();
        let at = at % chars.len();
        let end = (at + len).min(chars.len());
        chars.splice(at..end, insert.chars());
        let edited: String = chars.into_iter().collect();
        if let Ok(spec) = meridian_control::parse_spec(&edited) {
            for r in &spec.regions {
                let _ = meridian_control::region_plan(&spec, &r.name);
            }
            let _ = meridian_control::dns_config(&spec);
            let _ = meridian_control::gateway_config(&spec);
            let (public, _) = meridian_control::store::redact(&edited).expect("valid TOML");
            proptest::prop_assert!(meridian_control::parse_spec(&public).is_ok());
        }
    }
}

#[test]
fn a_running_cluster_refuses_what_it_cannot_apply_live_and_up_accepts_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SpecStore::open(dir.path()).expect("open");
    assert_eq!(store.put(BASE, false, false).expect("first").0, 1);
    let moved = BASE.replacen(
        "address = \"127.0.2.1\"\n",
        "address = \"127.0.2.1\"\nport = 8001\n",
        1,
    );
    assert_ne!(moved, BASE);
    match store.put(&moved, false, false) {
        Err(meridian_control::ControlError::Spec(e)) => {
            assert!(e.path.ends_with(".port"), "{e}");
            assert!(
                e.line.is_some() && e.message.contains("meridian up --config"),
                "{e}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(store.latest().expect("latest").map(|s| s.version), Some(1));
    // `meridian up --config` starts every component from the version it applies
    assert_eq!(store.put(&moved, false, true).expect("restart").0, 2);
}

#[test]
fn declared_indexes_are_validated_and_derived() {
    let table =
        "\n[[tables]]\nname = \"orders\"\npartition_key = { name = \"pk\", type = \"S\" }\n";
    let gsi = |body: &str| format!("{BASE}{table}[[tables.global_secondary_indexes]]\n{body}");
    let good = gsi(
        "name = \"by_owner\"\npartition_key = { name = \"owner\", type = \"S\" }\n\
                    sort_key = { name = \"pk\", type = \"S\" }\nprojection = \"INCLUDE\"\n\
                    non_key_attributes = [\"total\"]\n",
    );
    let spec = parse_spec(&good).unwrap_or_else(|e| panic!("{e}"));
    let req = create_table_request(&spec.tables[0]);
    assert_eq!(
        req["AttributeDefinitions"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(req["GlobalSecondaryIndexes"][0]["IndexName"], "by_owner");
    assert_eq!(
        req["GlobalSecondaryIndexes"][0]["Projection"]["NonKeyAttributes"][0],
        "total"
    );
    let bad: &[(&str, &str)] = &[
        (
            "name = \"x\"\npartition_key = { name = \"owner\", type = \"S\" }\n",
            "index name",
        ),
        (
            "name = \"by_pk\"\npartition_key = { name = \"pk\", type = \"N\" }\n",
            "two types",
        ),
        (
            "name = \"by_owner\"\npartition_key = { name = \"owner\", type = \"S\" }\n\
             projection = \"INCLUDE\"\n",
            "non_key_attributes",
        ),
    ];
    for (body, want) in bad {
        let e = parse_spec(&gsi(body)).expect_err(body);
        assert!(e.to_string().contains(want), "{body}: {e}");
        assert!(
            e.path.starts_with("tables[0].global_secondary_indexes[0]"),
            "{e}"
        );
    }
}
