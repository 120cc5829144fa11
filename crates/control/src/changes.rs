//! What a new spec version asks of a running cluster, field by field. Every field is either
//! applied live by the components it concerns — tables by the regions' agents; DNS, gateway
//! and health settings by the DNS server's and gateway's agents (which keep their health
//! state, drains and counters) — or needs processes started again, which a running cluster
//! cannot do by itself. `meridian apply` refuses a version with any field of the second kind,
//! naming the field and what it takes; `meridian up --config` applies anything, since it starts
//! every component from the version it applies. So no component ever reports a version whose
//! parts it does not run.

use std::collections::BTreeMap;

use crate::error::SpecError;
use crate::spec::{ClusterSpec, TableSpec};
use crate::validate::{Seg, locate, render_path};

/// What a restart-only change takes.
const RESTART: &str = "stop `meridian up` and start it again with `meridian up --config FILE` \
                       (a running cluster cannot apply it)";

/// A field a running cluster cannot apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Where, as a path into the new spec (`regions[1].port`).
    pub path: Vec<Seg>,
    /// What changed and what it takes.
    pub message: String,
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_owned())
}

/// Every field of `new` that a cluster running `old` cannot apply live.
pub fn refusals(old: &ClusterSpec, new: &ClusterSpec) -> Vec<Refusal> {
    let mut out = Vec::new();
    let mut refuse = |path: Vec<Seg>, what: String, takes: &str| {
        out.push(Refusal {
            path,
            message: format!("{what}: {takes}"),
        });
    };
    let old_regions: BTreeMap<&str, _> = old.regions.iter().map(|r| (r.name.as_str(), r)).collect();
    for (i, r) in new.regions.iter().enumerate() {
        let at = |field: &str| vec![key("regions"), Seg::Index(i), key(field)];
        let Some(o) = old_regions.get(r.name.as_str()) else {
            refuse(
                vec![key("regions"), Seg::Index(i)],
                format!("adding region {}", r.name),
                RESTART,
            );
            continue;
        };
        let fields = [
            ("id", o.id != r.id, format!("{:?} → {:?}", o.id, r.id)),
            (
                "address",
                o.address != r.address,
                format!("{} → {}", o.address, r.address),
            ),
            ("port", o.port != r.port, format!("{} → {}", o.port, r.port)),
            (
                "replication_port",
                o.replication_port != r.replication_port,
                format!("{} → {}", o.replication_port, r.replication_port),
            ),
        ];
        for (field, changed, how) in fields {
            if changed {
                refuse(
                    at(field),
                    format!("changing {}'s {field} ({how})", r.name),
                    "the region must be started again on it; until then DNS and the gateway \
                     would route to an address it does not listen on. Stop `meridian up` and \
                     start it with `meridian up --config FILE`",
                );
            }
        }
    }
    for o in &old.regions {
        if !new.regions.iter().any(|r| r.name == o.name) {
            refuse(
                vec![key("regions")],
                format!("removing region {}", o.name),
                RESTART,
            );
        }
    }
    if old.topology != new.topology {
        refuse(
            vec![key("topology")],
            "changing the topology (mode, hub or lag alarm)".into(),
            RESTART,
        );
    }
    if old.links != new.links {
        refuse(
            vec![key("links")],
            "changing link latencies".into(),
            "they are set when `meridian up` starts the links; change one live with \
             `meridian fault delay A B MS`, or restart with `meridian up --config FILE`",
        );
    }
    tables(old, new, &mut refuse);
    if old.control != new.control {
        refuse(
            vec![key("control")],
            "changing the control plane's address or poll interval".into(),
            RESTART,
        );
    }
    for (section, o, n) in [
        (
            "dns",
            (old.dns.listen, old.dns.admin_listen),
            (new.dns.listen, new.dns.admin_listen),
        ),
        (
            "gateway",
            (old.gateway.listen, old.gateway.admin_listen),
            (new.gateway.listen, new.gateway.admin_listen),
        ),
    ] {
        if o != n {
            refuse(
                vec![
                    key(section),
                    key(if o.0 != n.0 { "listen" } else { "admin_listen" }),
                ],
                format!("changing the {section} listen addresses"),
                RESTART,
            );
        }
    }
    if old.secrets != new.secrets {
        refuse(
            vec![key("secrets")],
            "changing the replication secret or the access keys".into(),
            "every region reads them when it starts; restart with `meridian up --config FILE`",
        );
    }
    out
}

/// New tables and new indexes of existing tables are created live; a table's keys, billing or
/// existing indexes cannot change through the spec, and a table left out of it would not be
/// deleted, so both are refused.
fn tables(old: &ClusterSpec, new: &ClusterSpec, refuse: &mut impl FnMut(Vec<Seg>, String, &str)) {
    let old_tables: BTreeMap<&str, &TableSpec> =
        old.tables.iter().map(|t| (t.name.as_str(), t)).collect();
    for (i, t) in new.tables.iter().enumerate() {
        let Some(o) = old_tables.get(t.name.as_str()) else {
            continue;
        };
        let path = vec![key("tables"), Seg::Index(i)];
        if o.partition_key != t.partition_key || o.sort_key != t.sort_key {
            refuse(
                path,
                format!("changing table {}'s key schema", t.name),
                "a table's keys never change: declare a new table (and copy the items)",
            );
        } else if let Some(g) = o
            .global_secondary_indexes
            .iter()
            .find(|g| !t.global_secondary_indexes.contains(g))
        {
            refuse(
                path,
                format!("changing or removing index {} of table {}", g.name, t.name),
                "the regions add declared indexes only; delete it with UpdateTable \
                 (GlobalSecondaryIndexUpdates Delete), then declare the new one",
            );
        } else if o.billing_mode != t.billing_mode
            || o.read_capacity_units != t.read_capacity_units
            || o.write_capacity_units != t.write_capacity_units
        {
            refuse(
                path,
                format!("changing table {}'s billing", t.name),
                "the regions create missing tables only; change it with UpdateTable",
            );
        }
    }
    for o in &old.tables {
        if !new.tables.iter().any(|t| t.name == o.name) {
            refuse(
                vec![key("tables")],
                format!("removing table {} from the spec", o.name),
                "it would not be deleted; delete it with DeleteTable, and leave it in the spec \
                 until then",
            );
        }
    }
}

/// The refusals as one spec error (the first located in `text`; all of them in the message).
pub fn refusal_error(text: &str, refusals: &[Refusal]) -> Option<SpecError> {
    let first = refusals.first()?;
    let message = refusals
        .iter()
        .map(|r| format!("{}: {}", render_path(&r.path), r.message))
        .collect::<Vec<_>>()
        .join("; ");
    Some(SpecError::at(
        text,
        locate(text, &first.path),
        render_path(&first.path),
        format!("a running cluster cannot apply this version — {message}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::parse_spec;

    const BASE: &str = include_str!("../../../examples/cluster.toml");

    fn changed(edit: impl Fn(&str) -> String) -> Vec<String> {
        let old = parse_spec(BASE).expect("base");
        let text = edit(BASE);
        let new = parse_spec(&text).unwrap_or_else(|e| panic!("{e}"));
        refusals(&old, &new)
            .into_iter()
            .map(|r| render_path(&r.path))
            .collect()
    }

    #[test]
    fn live_fields_are_accepted_and_restart_fields_refused_by_path() {
        let cases: &[(&str, &str, &str, &[&str])] = &[
            ("nothing", "", "", &[]),
            ("dns ttl", "ttl_secs = 5", "ttl_secs = 30", &[]),
            (
                "health interval",
                "interval_ms = 250",
                "interval_ms = 400",
                &[],
            ),
            (
                "eu-west port",
                "127.0.2.1\"\nport = 8000",
                "127.0.2.1\"\nport = 8001",
                &["regions[1].port"],
            ),
            (
                "a link latency",
                "one_way_ms = 35",
                "one_way_ms = 36",
                &["links"],
            ),
            (
                "dns listen",
                "127.0.0.1:8053",
                "127.0.0.1:8054",
                &["dns.listen"],
            ),
        ];
        for (what, from, to, want) in cases {
            let got = changed(|t| {
                if from.is_empty() {
                    return t.to_owned();
                }
                assert!(t.contains(from), "{what}: {from:?} not in the example");
                t.replacen(from, to, 1)
            });
            assert_eq!(got, *want, "{what}");
        }
    }

    #[test]
    fn tables_added_live_schema_changes_and_removals_refused() {
        let gsi = changed(|t| {
            t.replacen(
                "billing_mode = \"PAY_PER_REQUEST\"\n",
                "billing_mode = \"PAY_PER_REQUEST\"\n[[tables.global_secondary_indexes]]\n\
                 name = \"by_owner\"\npartition_key = { name = \"owner\", type = \"S\" }\n",
                1,
            )
        });
        assert!(gsi.is_empty(), "adding an index is live: {gsi:?}");
        let add = changed(|t| {
            format!(
                "{t}\n[[tables]]\nname = \"extra\"\npartition_key = {{ name = \"id\", type = \"S\" }}\n"
            )
        });
        assert!(add.is_empty(), "{add:?}");
        let schema = changed(|t| {
            t.replacen(
                "name = \"pk\", type = \"S\"",
                "name = \"pk\", type = \"N\"",
                1,
            )
        });
        assert_eq!(schema, ["tables[0]"]);
        let old = parse_spec(BASE).expect("base");
        let mut new = old.clone();
        new.tables.clear();
        let r = refusals(&old, &new);
        assert_eq!(r.len(), 1);
        assert!(r[0].message.contains("DeleteTable"), "{r:?}");
        let e = refusal_error(BASE, &r).expect("error");
        assert!(
            e.to_string().contains("a running cluster cannot apply"),
            "{e}"
        );
    }
}
