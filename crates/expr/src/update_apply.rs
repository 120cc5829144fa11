//! Applying an [`Update`] to an item, with DynamoDB's semantics:
//!
//! - every `SET` value is computed from the item *before* the update (so `SET a = b, b = a`
//!   swaps);
//! - then `SET` actions apply in order, `REMOVE`s (highest list index first, so removing
//!   `a[0], a[1]` removes the two original first elements), then `ADD`s, then `DELETE`s;
//! - a path's parent must exist and be a map (name step) or a list (index step), else "The
//!   document path provided in the update expression is invalid for update"; `SET a[i]` past
//!   the end of a list appends; `REMOVE` of an absent element does nothing;
//! - `ADD` adds to a number or unions a set, creating the attribute when absent; `DELETE`
//!   subtracts from a set and removes the attribute when the set becomes empty.

use crate::ast::{Path, PathElem};
use crate::document::{self, Parent};
use crate::update::{Action, SetValue, Term, Update};
use meridian_model::{ApiError, AttributeValue, Item};

fn invalid_path() -> ApiError {
    ApiError::validation(
        "The document path provided in the update expression is invalid for update",
    )
}

fn bad_type() -> ApiError {
    ApiError::validation("An operand in the update expression has an incorrect data type")
}

impl Update {
    /// Applies the update to the current item (`None`: absent) and returns the new item.
    pub fn apply(&self, old: Option<&Item>) -> Result<Item, ApiError> {
        let empty = Item::new();
        let base = old.unwrap_or(&empty);
        let mut sets = Vec::new();
        for a in &self.actions {
            if let Action::Set(path, v) = a {
                sets.push((path, set_value(v, base)?));
            }
        }
        // Several `SET a[i]` past the end of one list append in index order, not in the
        // order written (paths cannot overlap, so sorting changes nothing else).
        sets.sort_by(|x, y| x.0.cmp(y.0));
        let mut item = base.clone();
        for (path, v) in sets {
            write(&mut item, path, Some(v))?;
        }
        let mut removes: Vec<&Path> = self
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Remove(p) => Some(p),
                _ => None,
            })
            .collect();
        removes.sort_by(|a, b| b.cmp(a));
        for p in removes {
            write(&mut item, p, None)?;
        }
        for a in &self.actions {
            if let Action::Add(p, v) = a {
                let new = add(current(&mut item, p)?, v)?;
                write(&mut item, p, Some(new))?;
            }
        }
        for a in &self.actions {
            if let Action::Delete(p, v) = a
                && let Some(cur) = current(&mut item, p)?
            {
                let new = delete(cur, v)?;
                write(&mut item, p, new)?;
            }
        }
        Ok(item)
    }
}

/// The value at `path`, checking that its parent exists.
fn current<'i>(item: &'i mut Item, path: &Path) -> Result<Option<&'i AttributeValue>, ApiError> {
    if document::parent_mut(item, path).is_none() {
        return Err(invalid_path());
    }
    Ok(document::get(item, path))
}

/// Sets (`Some`) or removes (`None`) the value at `path`.
fn write(item: &mut Item, path: &Path, v: Option<AttributeValue>) -> Result<(), ApiError> {
    let last = path.0.last().ok_or_else(invalid_path)?;
    let parent = document::parent_mut(item, path).ok_or_else(invalid_path)?;
    match (parent, last, v) {
        (Parent::Item(m), PathElem::Attr(a), Some(v))
        | (Parent::Value(AttributeValue::M(m)), PathElem::Attr(a), Some(v)) => {
            m.insert(a.clone(), v);
        }
        (Parent::Item(m), PathElem::Attr(a), None)
        | (Parent::Value(AttributeValue::M(m)), PathElem::Attr(a), None) => {
            m.remove(a);
        }
        (Parent::Value(AttributeValue::L(l)), PathElem::Index(i), Some(v)) => match l.get_mut(*i) {
            Some(slot) => *slot = v,
            None => l.push(v),
        },
        (Parent::Value(AttributeValue::L(l)), PathElem::Index(i), None) => {
            if *i < l.len() {
                l.remove(*i);
            }
        }
        _ => return Err(invalid_path()),
    }
    Ok(())
}

fn set_value(v: &SetValue, item: &Item) -> Result<AttributeValue, ApiError> {
    let num = |t: &Term| match term(t, item)? {
        AttributeValue::N(n) => Ok(n),
        _ => Err(bad_type()),
    };
    Ok(match v {
        SetValue::Term(t) => term(t, item)?,
        SetValue::Plus(a, b) => AttributeValue::N(num(a)?.add(&num(b)?)?),
        SetValue::Minus(a, b) => AttributeValue::N(num(a)?.sub(&num(b)?)?),
    })
}

fn term(t: &Term, item: &Item) -> Result<AttributeValue, ApiError> {
    Ok(match t {
        Term::Value(v) => v.clone(),
        Term::Path(p) => document::get(item, p).cloned().ok_or_else(|| {
            ApiError::validation(
                "The provided expression refers to an attribute that does not exist in the item",
            )
        })?,
        Term::IfNotExists(p, default) => match document::get(item, p) {
            Some(v) => v.clone(),
            None => term(default, item)?,
        },
        Term::ListAppend(a, b) => match (term(a, item)?, term(b, item)?) {
            (AttributeValue::L(mut a), AttributeValue::L(b)) => {
                a.extend(b);
                AttributeValue::L(a)
            }
            _ => return Err(bad_type()),
        },
    })
}

fn add(cur: Option<&AttributeValue>, v: &AttributeValue) -> Result<AttributeValue, ApiError> {
    use AttributeValue as V;
    Ok(match (cur, v) {
        (None, v @ (V::N(_) | V::Ss(_) | V::Ns(_) | V::Bs(_))) => v.clone(),
        (Some(V::N(a)), V::N(b)) => V::N(a.add(b)?),
        (Some(V::Ss(a)), V::Ss(b)) => V::Ss(a.union(b).cloned().collect()),
        (Some(V::Ns(a)), V::Ns(b)) => V::Ns(a.union(b).cloned().collect()),
        (Some(V::Bs(a)), V::Bs(b)) => V::Bs(a.union(b).cloned().collect()),
        _ => return Err(bad_type()),
    })
}

/// The set left after `DELETE`, `None` when it is empty (the attribute is removed).
fn delete(cur: &AttributeValue, v: &AttributeValue) -> Result<Option<AttributeValue>, ApiError> {
    use AttributeValue as V;
    Ok(match (cur, v) {
        (V::Ss(a), V::Ss(b)) => Some(V::Ss(a.difference(b).cloned().collect())),
        (V::Ns(a), V::Ns(b)) => Some(V::Ns(a.difference(b).cloned().collect())),
        (V::Bs(a), V::Bs(b)) => Some(V::Bs(a.difference(b).cloned().collect())),
        _ => return Err(bad_type()),
    }
    .filter(|s| match s {
        V::Ss(s) => !s.is_empty(),
        V::Ns(s) => !s.is_empty(),
        V::Bs(s) => !s.is_empty(),
        _ => true,
    }))
}
