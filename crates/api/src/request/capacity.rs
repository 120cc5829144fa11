//! `ReturnConsumedCapacity`: plausible capacity units, computed the way DynamoDB bills them.
//!
//! Meridian does not meter or throttle by capacity; these numbers only let code that logs or
//! asserts on `ConsumedCapacity` run unchanged. Writes cost one unit per started KB of the
//! larger of the old and new item (at least one); reads cost one unit per started 4 KB, half of
//! that when eventually consistent (at least half a unit); transactional reads and writes cost
//! twice as much.

use super::common::Req;
use meridian_model::ApiError;
use serde_json::{Map, Value, json};

/// Transactions cost twice the plain units.
pub const TRANSACTIONAL: f64 = 2.0;

/// `ReturnConsumedCapacity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// No `ConsumedCapacity` in the response.
    #[default]
    None,
    /// Table totals.
    Total,
    /// Totals plus a per-table (and, later, per-index) breakdown.
    Indexes,
}

impl Mode {
    /// Reads `ReturnConsumedCapacity`.
    pub fn from_req(req: &Req) -> Result<Mode, ApiError> {
        match req.str("ReturnConsumedCapacity")? {
            None | Some("NONE") => Ok(Mode::None),
            Some("TOTAL") => Ok(Mode::Total),
            Some("INDEXES") => Ok(Mode::Indexes),
            Some(other) => Err(ApiError::validation(format!(
                "1 validation error detected: Value '{other}' at 'returnConsumedCapacity' failed to satisfy constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]"
            ))),
        }
    }
}

/// Write units for an item of `bytes` (the larger of old and new).
pub fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

/// Read units for `bytes` read at once.
pub fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

/// Units consumed on one table by one request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Consumed {
    /// Table name.
    pub table: String,
    /// Read units.
    pub read: f64,
    /// Write units.
    pub write: f64,
}

impl Consumed {
    /// Read units on `table`.
    pub fn read(table: &str, units: f64) -> Self {
        Consumed {
            table: table.to_owned(),
            read: units,
            write: 0.0,
        }
    }

    /// Write units on `table`.
    pub fn write(table: &str, units: f64) -> Self {
        Consumed {
            table: table.to_owned(),
            read: 0.0,
            write: units,
        }
    }

    /// The `ConsumedCapacity` object, or `None` when not asked for.
    pub fn to_json(&self, mode: Mode) -> Option<Value> {
        if mode == Mode::None {
            return None;
        }
        let mut units = Map::new();
        units.insert("CapacityUnits".into(), json!(self.read + self.write));
        if self.read > 0.0 {
            units.insert("ReadCapacityUnits".into(), json!(self.read));
        }
        if self.write > 0.0 {
            units.insert("WriteCapacityUnits".into(), json!(self.write));
        }
        let mut out = Map::new();
        out.insert("TableName".into(), json!(self.table));
        out.extend(units.clone());
        if mode == Mode::Indexes {
            out.insert("Table".into(), Value::Object(units));
        }
        Some(Value::Object(out))
    }
}

/// Adds `ConsumedCapacity` (one object) to a response.
pub fn attach(out: &mut Value, mode: Mode, consumed: &Consumed) {
    if let (Some(cc), Some(o)) = (consumed.to_json(mode), out.as_object_mut()) {
        o.insert("ConsumedCapacity".into(), cc);
    }
}

/// Adds `ConsumedCapacity` (a list, one entry per table, in first-use order) to a response of a
/// multi-table operation.
pub fn attach_list(out: &mut Value, mode: Mode, parts: &[Consumed]) {
    if mode == Mode::None {
        return;
    }
    let mut merged: Vec<Consumed> = Vec::new();
    for p in parts {
        match merged.iter_mut().find(|m| m.table == p.table) {
            Some(m) => {
                m.read += p.read;
                m.write += p.write;
            }
            None => merged.push(p.clone()),
        }
    }
    let list: Vec<Value> = merged.iter().filter_map(|c| c.to_json(mode)).collect();
    if let Some(o) = out.as_object_mut() {
        o.insert("ConsumedCapacity".into(), Value::Array(list));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_round_up() {
        assert_eq!(write_units(0), 1.0);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
        assert_eq!(read_units(0, false), 0.5);
        assert_eq!(read_units(4096, true), 1.0);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(read_units(4097, false), 1.0);
    }

    #[test]
    fn shapes() {
        let c = Consumed::write("t", 2.0);
        assert_eq!(c.to_json(Mode::None), None);
        assert_eq!(
            c.to_json(Mode::Total),
            Some(json!({"TableName": "t", "CapacityUnits": 2.0, "WriteCapacityUnits": 2.0}))
        );
        let idx = c.to_json(Mode::Indexes).unwrap_or_default();
        assert_eq!(idx["Table"]["CapacityUnits"], json!(2.0));
    }

    #[test]
    fn list_merges_tables() {
        let mut out = json!({});
        attach_list(
            &mut out,
            Mode::Total,
            &[
                Consumed::write("a", 1.0),
                Consumed::write("b", 2.0),
                Consumed::read("a", 0.5),
            ],
        );
        assert_eq!(out["ConsumedCapacity"][0]["CapacityUnits"], json!(1.5));
        assert_eq!(out["ConsumedCapacity"][1]["TableName"], json!("b"));
    }
}
