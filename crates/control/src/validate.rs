//! Parsing and semantic validation of a [`ClusterSpec`], with file positions.
//!
//! Syntax and type errors come from the `toml` crate with their span. Semantic errors are found
//! on the typed spec as a path (`regions[1].name`), then located in the text by walking the
//! document's spanned tree, so every refusal names a line and column.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

use crate::error::SpecError;
use crate::spec::{BillingMode, ClusterSpec, TopologyMode};

/// Region names with a meaning of their own in operator commands.
pub const RESERVED_NAMES: [&str; 4] = ["control", "dns", "gateway", "up"];

/// The largest region id: 10 bits, as in `meridian_core::snowflake`.
pub const MAX_REGION_ID: u16 = 1023;

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A semantic problem at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where.
    pub path: Vec<Seg>,
    /// What.
    pub message: String,
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_owned())
}

/// Renders a path as `regions[1].name`.
pub fn render_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A table's indexes: names valid and unique, keys named and typed consistently with the
/// table's, `non_key_attributes` exactly with `INCLUDE`.
fn validate_indexes(i: usize, t: &crate::spec::TableSpec) -> Result<(), Violation> {
    use crate::spec::ProjectionSpec;
    let mut names = BTreeSet::new();
    let mut types: BTreeMap<&str, crate::spec::KeyAttrType> = BTreeMap::new();
    types.insert(&t.partition_key.name, t.partition_key.ty);
    if let Some(sk) = &t.sort_key {
        types.insert(&sk.name, sk.ty);
    }
    for (j, g) in t.global_secondary_indexes.iter().enumerate() {
        let at = |k: &str| {
            vec![
                key("tables"),
                Seg::Index(i),
                key("global_secondary_indexes"),
                Seg::Index(j),
                key(k),
            ]
        };
        let fail = |path, message: String| Err(Violation { path, message });
        if !is_table_name(&g.name) {
            return fail(
                at("name"),
                format!(
                    "index name {:?} must be 3-255 characters of [a-zA-Z0-9_.-]",
                    g.name
                ),
            );
        }
        if !names.insert(g.name.as_str()) {
            return fail(at("name"), format!("index {:?} is declared twice", g.name));
        }
        for (field, k) in [
            ("partition_key", Some(&g.partition_key)),
            ("sort_key", g.sort_key.as_ref()),
        ] {
            let Some(k) = k else { continue };
            if k.name.is_empty() || k.name.len() > 255 {
                return fail(at(field), "key attribute names are 1-255 bytes".into());
            }
            if let Some(ty) = types.insert(&k.name, k.ty)
                && ty != k.ty
            {
                return fail(
                    at(field),
                    format!("attribute {:?} is declared with two types", k.name),
                );
            }
        }
        if g.sort_key
            .as_ref()
            .is_some_and(|s| s.name == g.partition_key.name)
        {
            return fail(
                at("sort_key"),
                "the sort key must differ from the partition key".into(),
            );
        }
        let include = g.projection == ProjectionSpec::INCLUDE;
        if include == g.non_key_attributes.is_empty() {
            return fail(
                at("non_key_attributes"),
                "non_key_attributes go with projection = \"INCLUDE\", and only with it".into(),
            );
        }
    }
    Ok(())
}

/// Parses and validates a spec: the only way a spec enters the system.
pub fn parse_spec(text: &str) -> Result<ClusterSpec, SpecError> {
    let spec: ClusterSpec = toml::from_str(text)
        .map_err(|e| SpecError::at(text, e.span(), String::new(), e.message().to_owned()))?;
    validate(&spec)
        .map_err(|v| SpecError::at(text, locate(text, &v.path), render_path(&v.path), v.message))?;
    Ok(spec)
}

/// The span of the deepest part of `path` present in `text` (the value at the end of it when
/// present, else the nearest enclosing key).
pub fn locate(text: &str, path: &[Seg]) -> Option<Range<usize>> {
    let doc = DeTable::parse(text).ok()?;
    let mut best: Option<Range<usize>> = None;
    let mut table: Option<&DeTable<'_>> = Some(doc.get_ref());
    let mut value: Option<&DeValue<'_>> = None;
    for seg in path {
        match seg {
            Seg::Key(k) => {
                let t = match (table, value) {
                    (Some(t), None) => t,
                    (_, Some(DeValue::Table(t))) => t,
                    _ => break,
                };
                let Some((kspan, v)) = t
                    .iter()
                    .find(|(name, _)| name.get_ref().as_ref() == k.as_str())
                    .map(|(name, v)| (name.span(), v))
                else {
                    break;
                };
                best = Some(if is_scalar(v.get_ref()) {
                    v.span()
                } else {
                    kspan
                });
                table = None;
                value = Some(v.get_ref());
            }
            Seg::Index(i) => {
                let Some(DeValue::Array(a)) = value else {
                    break;
                };
                let Some(v) = a.get(*i) else { break };
                best = Some(v.span());
                // Inside an array of tables, the first key of the element is a better anchor
                // than the element's own span (which may cover the header only).
                if let DeValue::Table(t) = v.get_ref()
                    && let Some((k, _)) = t.iter().min_by_key(|(k, _)| k.span().start)
                {
                    best = Some(k.span());
                }
                value = Some(v.get_ref());
            }
        }
    }
    best
}

fn is_scalar(v: &DeValue<'_>) -> bool {
    !matches!(v, DeValue::Table(_) | DeValue::Array(_))
}

fn is_region_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn is_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn is_dns_name(name: &str) -> bool {
    let n = name.trim_end_matches('.');
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Checks the meaning of a parsed spec; the first problem found is returned.
pub fn validate(spec: &ClusterSpec) -> Result<(), Violation> {
    let fail = |path: Vec<Seg>, message: String| Err(Violation { path, message });
    if spec.regions.is_empty() {
        return fail(
            vec![key("regions")],
            "at least one region is required".into(),
        );
    }
    let names: Vec<&str> = spec.regions.iter().map(|r| r.name.as_str()).collect();
    let known = |n: &str| names.contains(&n);
    let mut ids = BTreeSet::new();
    let mut addrs: BTreeMap<SocketAddr, String> = BTreeMap::new();
    for (i, r) in spec.regions.iter().enumerate() {
        let at = |k: &str| vec![key("regions"), Seg::Index(i), key(k)];
        if !is_region_name(&r.name) {
            return fail(
                at("name"),
                format!(
                    "region name {:?} must be 1-63 lowercase letters, digits or '-'",
                    r.name
                ),
            );
        }
        if RESERVED_NAMES.contains(&r.name.as_str()) {
            return fail(at("name"), format!("region name {:?} is reserved", r.name));
        }
        if names[..i].contains(&r.name.as_str()) {
            return fail(at("name"), format!("region {:?} is declared twice", r.name));
        }
        let id = r.id.unwrap_or(i as u16 + 1);
        if id > MAX_REGION_ID {
            return fail(at("id"), format!("region id {id} is out of range 0..=1023"));
        }
        if !ids.insert(id) {
            return fail(at("id"), format!("region id {id} is used twice"));
        }
        if r.address.is_unspecified() || r.address.is_multicast() {
            return fail(
                at("address"),
                format!("{} is not a usable unicast address", r.address),
            );
        }
        if r.port == 0 || r.replication_port == 0 {
            return fail(at("port"), "ports must be non-zero".into());
        }
        if r.port == r.replication_port {
            return fail(
                at("replication_port"),
                "replication_port must differ from port".into(),
            );
        }
        for (field, addr) in [
            ("port", r.api_addr()),
            ("replication_port", r.replication_addr()),
        ] {
            if let Some(other) = addrs.insert(addr, format!("regions[{i}].{field}")) {
                return fail(at(field), format!("{addr} is also used by {other}"));
            }
        }
        if !r.lat.is_finite() || !(-90.0..=90.0).contains(&r.lat) {
            return fail(at("lat"), format!("latitude {} is outside -90..=90", r.lat));
        }
        if !r.lon.is_finite() || !(-180.0..=180.0).contains(&r.lon) {
            return fail(
                at("lon"),
                format!("longitude {} is outside -180..=180", r.lon),
            );
        }
    }

    let topo = &spec.topology;
    match (topo.mode, &topo.hub) {
        (TopologyMode::Star, None) => {
            return fail(
                vec![key("topology"), key("mode")],
                "a star topology needs `hub`".into(),
            );
        }
        (TopologyMode::Star, Some(hub)) if !known(hub) => {
            return fail(
                vec![key("topology"), key("hub")],
                format!("hub {hub:?} is not a declared region"),
            );
        }
        (TopologyMode::Mesh, Some(_)) => {
            return fail(
                vec![key("topology"), key("hub")],
                "`hub` is only allowed with mode = \"star\"".into(),
            );
        }
        _ => {}
    }

    const MAX_LATENCY_MS: u64 = 10_000;
    if spec.links.default_one_way_ms > MAX_LATENCY_MS {
        return fail(
            vec![key("links"), key("default_one_way_ms")],
            format!("one-way latency must be at most {MAX_LATENCY_MS} ms"),
        );
    }
    let mut pairs = BTreeSet::new();
    for (i, p) in spec.links.pairs.iter().enumerate() {
        let at = |k: &str| vec![key("links"), key("pairs"), Seg::Index(i), key(k)];
        for name in &p.between {
            if !known(name) {
                return fail(at("between"), format!("{name:?} is not a declared region"));
            }
        }
        let [a, b] = &p.between;
        if a == b {
            return fail(at("between"), "a link joins two different regions".into());
        }
        let pair = if a < b { (a, b) } else { (b, a) };
        if !pairs.insert(pair) {
            return fail(
                at("between"),
                format!("the link {a} <-> {b} is listed twice"),
            );
        }
        if p.one_way_ms > MAX_LATENCY_MS {
            return fail(
                at("one_way_ms"),
                format!("one-way latency must be at most {MAX_LATENCY_MS} ms"),
            );
        }
    }

    let mut tables = BTreeSet::new();
    for (i, t) in spec.tables.iter().enumerate() {
        let at = |k: &str| vec![key("tables"), Seg::Index(i), key(k)];
        if !is_table_name(&t.name) {
            return fail(
                at("name"),
                format!(
                    "table name {:?} must be 3-255 characters of [a-zA-Z0-9_.-]",
                    t.name
                ),
            );
        }
        if !tables.insert(t.name.as_str()) {
            return fail(at("name"), format!("table {:?} is declared twice", t.name));
        }
        if t.partition_key.name.is_empty() || t.partition_key.name.len() > 255 {
            return fail(
                at("partition_key"),
                "key attribute names are 1-255 bytes".into(),
            );
        }
        if let Some(sk) = &t.sort_key {
            if sk.name.is_empty() || sk.name.len() > 255 {
                return fail(at("sort_key"), "key attribute names are 1-255 bytes".into());
            }
            if sk.name == t.partition_key.name {
                return fail(
                    at("sort_key"),
                    "the sort key must differ from the partition key".into(),
                );
            }
        }
        let units = [t.read_capacity_units, t.write_capacity_units];
        match t.billing_mode {
            BillingMode::PAY_PER_REQUEST if units.iter().any(Option::is_some) => {
                return fail(
                    at("billing_mode"),
                    "capacity units are only allowed with PROVISIONED".into(),
                );
            }
            BillingMode::PROVISIONED if units.iter().any(|u| u.is_none_or(|u| u == 0)) => {
                return fail(
                    at("billing_mode"),
                    "PROVISIONED needs read_capacity_units and write_capacity_units >= 1".into(),
                );
            }
            _ => {}
        }
        validate_indexes(i, t)?;
    }

    let c = &spec.control;
    if c.poll_interval_ms == 0 || c.poll_interval_ms > 3_600_000 {
        return fail(
            vec![key("control"), key("poll_interval_ms")],
            "poll_interval_ms must be 1..=3600000".into(),
        );
    }

    let d = &spec.dns;
    if !is_dns_name(&d.zone) {
        return fail(
            vec![key("dns"), key("zone")],
            format!("{:?} is not a domain name", d.zone),
        );
    }
    let zone = d.zone.trim_end_matches('.').to_ascii_lowercase();
    let name = d.name.trim_end_matches('.').to_ascii_lowercase();
    if !is_dns_name(&d.name) || !(name == zone || name.ends_with(&format!(".{zone}"))) {
        return fail(
            vec![key("dns"), key("name")],
            format!("{:?} is not a name inside zone {:?}", d.name, d.zone),
        );
    }
    if d.ttl_secs > 86_400 {
        return fail(
            vec![key("dns"), key("ttl_secs")],
            "ttl_secs must be at most 86400".into(),
        );
    }
    for (continent, region) in &d.continents {
        if !known(region) {
            return fail(
                vec![key("dns"), key("continents"), key(continent.code())],
                format!("{region:?} is not a declared region"),
            );
        }
    }
    for (country, region) in &d.countries {
        if !meridian_routing::is_iso_country(*country) {
            return fail(
                vec![key("dns"), key("countries"), key(country.as_str())],
                format!("{country} is not an ISO 3166 country code"),
            );
        }
        if !known(region) {
            return fail(
                vec![key("dns"), key("countries"), key(country.as_str())],
                format!("{region:?} is not a declared region"),
            );
        }
    }
    if let Some(region) = &d.default_region
        && !known(region)
    {
        return fail(
            vec![key("dns"), key("default_region")],
            format!("{region:?} is not a declared region"),
        );
    }

    let g = &spec.gateway;
    if let Some(region) = &g.region
        && !known(region)
    {
        return fail(
            vec![key("gateway"), key("region")],
            format!("{region:?} is not a declared region"),
        );
    }
    for (country, region) in &g.pinning.country_regions {
        if !known(region) {
            return fail(
                vec![
                    key("gateway"),
                    key("pinning"),
                    key("country_regions"),
                    key(country.as_str()),
                ],
                format!("{region:?} is not a declared region"),
            );
        }
    }
    for (continent, region) in &g.pinning.continent_regions {
        if !known(region) {
            return fail(
                vec![
                    key("gateway"),
                    key("pinning"),
                    key("continent_regions"),
                    key(continent.code()),
                ],
                format!("{region:?} is not a declared region"),
            );
        }
    }

    let h = &spec.health;
    for (field, v) in [
        ("interval_ms", h.interval_ms),
        ("timeout_ms", h.timeout_ms),
        ("fall", u64::from(h.fall)),
        ("rise", u64::from(h.rise)),
    ] {
        if v == 0 {
            return fail(
                vec![key("health"), key(field)],
                format!("{field} must be positive"),
            );
        }
    }
    if h.timeout_ms > h.interval_ms * 10 {
        return fail(
            vec![key("health"), key("timeout_ms")],
            "timeout_ms must be at most 10 × interval_ms".into(),
        );
    }

    if let Some(secret) = &spec.secrets.replication
        && secret.len() < 8
    {
        return fail(
            vec![key("secrets"), key("replication")],
            "the replication secret must be at least 8 characters".into(),
        );
    }
    for (i, k) in spec.secrets.access_keys.iter().enumerate() {
        if k.id.is_empty() || k.secret.is_empty() || k.id.contains(':') {
            return fail(
                vec![key("secrets"), key("access_keys"), Seg::Index(i), key("id")],
                "access keys need a non-empty id (without ':') and secret".into(),
            );
        }
    }

    // Every listener of the cluster must be distinct.
    let listeners = [
        ("control.listen", c.listen),
        ("dns.listen", d.listen),
        ("dns.admin_listen", d.admin_listen),
        ("gateway.listen", g.listen),
        ("gateway.admin_listen", g.admin_listen),
    ];
    for (i, (name, addr)) in listeners.iter().enumerate() {
        let clash = listeners[..i]
            .iter()
            .find(|(_, a)| a == addr)
            .map(|(n, _)| n.to_string())
            .or_else(|| addrs.get(addr).cloned());
        if let Some(other) = clash {
            let path: Vec<Seg> = name.split('.').map(key).collect();
            return fail(path, format!("{addr} is also used by {other}"));
        }
    }
    Ok(())
}
