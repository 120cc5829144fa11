//! ProjectionExpression: `path (, path)*`, and projecting an item onto it.
//!
//! The result keeps the nesting of each path (`a.b` yields `{a: {b: …}}`); elements projected
//! out of one list keep their relative order and are compacted (`a[3], a[1]` of a list yields
//! a two-element list: element 1, then element 3). Paths that do not resolve are left out, and
//! a map or list none of whose projected children exist is left out too.

use crate::ast::{Path, PathElem};
use crate::document;
use crate::parser::{Parser, check_paths};
use crate::{Attrs, ExprKind};
use meridian_model::{ApiError, AttributeValue, Item};
use std::collections::BTreeMap;

/// A parsed ProjectionExpression.
#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    paths: Vec<Path>,
}

/// Parses a ProjectionExpression.
pub fn parse_projection(src: &str, attrs: &Attrs<'_>) -> Result<Projection, ApiError> {
    let mut p = Parser::new(src, ExprKind::Projection, attrs, &[])?;
    let mut paths = vec![p.path()?];
    while p.eat(&crate::lexer::Tok::Comma) {
        paths.push(p.path()?);
    }
    p.expect_end()?;
    check_paths(&mut p, &paths);
    p.finish()?;
    Ok(Projection { paths })
}

/// The projection tree: leaves are requested paths; inner nodes have named and indexed
/// children (a path set never has both at one node, [`check_paths`] refuses it).
#[derive(Default, Debug)]
struct Node {
    leaf: bool,
    names: BTreeMap<String, Node>,
    indexes: BTreeMap<usize, Node>,
}

impl Projection {
    /// Projects from explicit paths (e.g. the paths an update touched, for `UPDATED_NEW`).
    pub fn from_paths(paths: Vec<Path>) -> Projection {
        Projection { paths }
    }

    /// The requested paths, in order.
    pub fn paths(&self) -> &[Path] {
        &self.paths
    }

    /// The top-level attribute names the projection reads (for index projections and
    /// `Select` checks).
    pub fn top_level_attrs(&self) -> std::collections::BTreeSet<String> {
        self.paths.iter().map(|p| p.top().to_owned()).collect()
    }

    /// Projects `item`.
    pub fn apply(&self, item: &Item) -> Item {
        if self.paths.iter().all(|p| p.0.len() == 1) {
            return self
                .paths
                .iter()
                .filter_map(|p| document::get(item, p).map(|v| (p.top().to_owned(), v.clone())))
                .collect();
        }
        let mut root = Node::default();
        for p in &self.paths {
            let mut n = &mut root;
            for e in &p.0 {
                n = match e {
                    PathElem::Attr(a) => n.names.entry(a.clone()).or_default(),
                    PathElem::Index(i) => n.indexes.entry(*i).or_default(),
                };
            }
            n.leaf = true;
        }
        let mut out = Item::new();
        for (name, child) in &root.names {
            if let Some(v) = item.get(name).and_then(|v| project(v, child)) {
                out.insert(name.clone(), v);
            }
        }
        out
    }
}

fn project(v: &AttributeValue, n: &Node) -> Option<AttributeValue> {
    if n.leaf {
        return Some(v.clone());
    }
    match v {
        AttributeValue::M(m) => {
            let out: Item = n
                .names
                .iter()
                .filter_map(|(k, c)| m.get(k).and_then(|v| project(v, c)).map(|v| (k.clone(), v)))
                .collect();
            (!out.is_empty()).then_some(AttributeValue::M(out))
        }
        AttributeValue::L(l) => {
            let out: Vec<AttributeValue> = n
                .indexes
                .iter()
                .filter_map(|(i, c)| l.get(*i).and_then(|v| project(v, c)))
                .collect();
            (!out.is_empty()).then_some(AttributeValue::L(out))
        }
        _ => None,
    }
}
