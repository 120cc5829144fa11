//! `ExpressionAttributeNames` / `ExpressionAttributeValues`, shared by every expression of one
//! request: resolves `#n` and `:v`, remembers which were used, and reports unused ones once all
//! expressions are parsed.

use meridian_model::{ApiError, AttributeValue};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

/// The placeholders of one request.
#[derive(Debug, Default)]
pub struct Attrs<'a> {
    names: Option<BTreeMap<&'a str, &'a str>>,
    values: Option<BTreeMap<&'a str, &'a AttributeValue>>,
    used_names: Mutex<BTreeSet<&'a str>>,
    used_values: Mutex<BTreeSet<&'a str>>,
}

impl<'a> Attrs<'a> {
    /// Wraps the request's maps (`None` when the parameter is absent).
    pub fn new(
        names: Option<&'a HashMap<String, String>>,
        values: Option<&'a HashMap<String, AttributeValue>>,
    ) -> Self {
        Self::from_iters(names.map(|m| m.iter()), values.map(|m| m.iter()))
    }

    /// Like [`Attrs::new`], from any maps (e.g. `BTreeMap`s or an `Item`).
    pub fn from_iters<N, V>(names: Option<N>, values: Option<V>) -> Self
    where
        N: IntoIterator<Item = (&'a String, &'a String)>,
        V: IntoIterator<Item = (&'a String, &'a AttributeValue)>,
    {
        Attrs {
            names: names.map(|n| {
                n.into_iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect()
            }),
            values: values.map(|v| v.into_iter().map(|(k, v)| (k.as_str(), v)).collect()),
            used_names: Mutex::default(),
            used_values: Mutex::default(),
        }
    }

    /// No placeholders at all.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Checks the maps themselves, before any expression is parsed: not empty when given, and
    /// keys of the form `#[0-9A-Za-z_]+` / `:[0-9A-Za-z_]+`.
    pub fn validate(&self) -> Result<(), ApiError> {
        if let Some(names) = &self.names {
            if names.is_empty() {
                return Err(ApiError::validation(
                    "ExpressionAttributeNames must not be empty",
                ));
            }
            if let Some(k) = names.keys().find(|k| !valid_key(k, '#')) {
                return Err(ApiError::validation(format!(
                    "ExpressionAttributeNames contains invalid key: Syntax error; key: \"{k}\""
                )));
            }
            if let Some(v) = names
                .values()
                .find(|v| v.len() > meridian_model::value::MAX_ATTRIBUTE_NAME_BYTES)
            {
                meridian_model::value::check_attribute_name(v)?;
            }
        }
        if let Some(values) = &self.values {
            if values.is_empty() {
                return Err(ApiError::validation(
                    "ExpressionAttributeValues must not be empty",
                ));
            }
            if let Some(k) = values.keys().find(|k| !valid_key(k, ':')) {
                return Err(ApiError::validation(format!(
                    "ExpressionAttributeValues contains invalid key: Syntax error; key: \"{k}\""
                )));
            }
        }
        Ok(())
    }

    /// Resolves `#n` (with its `#`), marking it used.
    pub fn name(&self, placeholder: &str) -> Option<&'a str> {
        let (k, v) = self.names.as_ref()?.get_key_value(placeholder)?;
        lock(&self.used_names).insert(k);
        Some(v)
    }

    /// Resolves `:v` (with its `:`), marking it used.
    pub fn value(&self, placeholder: &str) -> Option<&'a AttributeValue> {
        let (k, v) = self.values.as_ref()?.get_key_value(placeholder)?;
        lock(&self.used_values).insert(k);
        Some(v)
    }

    /// After every expression of the request is parsed: refuses names or values that none used.
    pub fn check_all_used(&self) -> Result<(), ApiError> {
        let unused = |all: Option<Vec<&str>>, used: &BTreeSet<&str>| -> Vec<String> {
            all.unwrap_or_default()
                .into_iter()
                .filter(|k| !used.contains(k))
                .map(str::to_owned)
                .collect()
        };
        let names = unused(
            self.names.as_ref().map(|m| m.keys().copied().collect()),
            &lock(&self.used_names),
        );
        if !names.is_empty() {
            return Err(ApiError::validation(format!(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
                names.join(", ")
            )));
        }
        let values = unused(
            self.values.as_ref().map(|m| m.keys().copied().collect()),
            &lock(&self.used_values),
        );
        if !values.is_empty() {
            return Err(ApiError::validation(format!(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
                values.join(", ")
            )));
        }
        Ok(())
    }
}

fn valid_key(k: &str, sigil: char) -> bool {
    k.strip_prefix(sigil).is_some_and(|rest| {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

/// The set behind a mutex (shared with a big-stack parser thread; never contended).
fn lock<'m, 'a>(m: &'m Mutex<BTreeSet<&'a str>>) -> MutexGuard<'m, BTreeSet<&'a str>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
