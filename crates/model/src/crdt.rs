//! Counters that merge across regions, and the merge of two states of one item.
//!
//! Items merge by **last writer wins** on their version — except attributes updated with
//! `ADD <number>`, which become **counters**: each region's increments are kept apart (a
//! PN-counter per attribute), so concurrent increments from different regions all count.
//!
//! ## Semantics (what users see)
//!
//! - `ADD x :n` on a number increments region *R*'s share of `x`. Concurrent `ADD`s in
//!   different regions all count, whatever the order their changes arrive in.
//! - `SET x = v` or `REMOVE x` **resets** the counter: its epoch becomes the version of that
//!   write and the shares start from zero on top of `v` (or absent). Increments made
//!   concurrently against the older epoch are dropped — the later reset wins.
//! - `PutItem` (a whole-item replace) resets every counter of the item the same way: the
//!   item's epoch becomes the put's version and counters of older epochs are dropped.
//! - An `UpdateItem` that **creates** the item (it did not exist) starts its counters at the
//!   epoch of the tombstone it replaces, or at the smallest version when there is none — not at
//!   its own version: creating an item is not a reset, so when two regions create the same
//!   counter concurrently, both regions' increments count ([`creation_epoch`]).
//! - `DeleteItem` leaves a tombstone that wins or loses against the item's state by last writer
//!   wins, counters included.
//! - Other attributes follow the item: the state with the later version provides them.
//!
//! ## Algebra
//!
//! [`merge`] is a join: commutative, associative and idempotent (property-tested below), so
//! every region converges to the same bytes whatever order, and however often, changes arrive.
//! The join takes the later version's attributes, the larger item epoch, drops counters whose
//! epoch is older than it, and per counter keeps the larger epoch or — for equal epochs — the
//! per-region maximum of the increments and of the decrements.

use crate::number::Number;
use crate::value::{AttributeValue, Item};
use meridian_core::Version;
use std::collections::BTreeMap;

/// One counter attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counter {
    /// The write that last reset it (`None`: the write that stores this state).
    pub epoch: Option<Version>,
    /// Its value at the reset (absent after `REMOVE`).
    pub base: Option<AttributeValue>,
    /// Sum of positive increments per region since the reset.
    pub pos: BTreeMap<String, Number>,
    /// Sum of negative increments (as positive numbers) per region since the reset.
    pub neg: BTreeMap<String, Number>,
}

impl Counter {
    /// The value users see: `base + Σ pos − Σ neg` (absent if nothing was ever added to an
    /// absent base).
    pub fn value(&self) -> Option<AttributeValue> {
        if self.pos.is_empty() && self.neg.is_empty() {
            return self.base.clone();
        }
        let mut total = match &self.base {
            Some(AttributeValue::N(n)) => n.clone(),
            _ => Number::from(0),
        };
        for n in self.pos.values() {
            total = total.add(n).unwrap_or(total);
        }
        for n in self.neg.values() {
            total = total.sub(n).unwrap_or(total);
        }
        Some(AttributeValue::N(total))
    }
}

/// The counter metadata of one item (kept beside its attributes, never shown to clients).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Crdt {
    /// The write that last replaced the whole item (`None`: the write that stores this state).
    pub epoch: Option<Version>,
    /// Counter attributes.
    pub counters: BTreeMap<String, Counter>,
    /// After a merge: the *plain* value (absent = `None`) of counter attributes whose visible
    /// value is derived from the counter and differs — what the attribute falls back to if its
    /// counter is later dropped by a reset. Empty for states written by clients.
    pub shadow: BTreeMap<String, Option<AttributeValue>>,
}

impl Crdt {
    /// Fills every `None` epoch with `v`, the version of the write that stores this state.
    pub fn stamp(&mut self, v: &Version) {
        if self.epoch.is_none() {
            self.epoch = Some(v.clone());
        }
        for c in self.counters.values_mut() {
            if c.epoch.is_none() {
                c.epoch = Some(v.clone());
            }
        }
    }
}

/// What one `UpdateItem` action does to counters.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// `SET x = …` or `REMOVE x` on a top-level attribute: reset it.
    Reset(String),
    /// `ADD x :n` with a number on a top-level attribute: increment this region's share.
    Add(String, Number),
}

/// The epoch of an item that an `UpdateItem` creates: the version of the tombstone it replaces,
/// else the smallest version. Concurrent creations in two regions then share an epoch and
/// their counters join per region instead of the later creation dropping the other's
/// increments; a delete still drops the increments made before it.
pub fn creation_epoch(tombstone: Option<&Version>) -> Version {
    tombstone.cloned().unwrap_or_else(|| Version {
        ts: meridian_core::Timestamp(0),
        region: String::new(),
    })
}

/// The counter metadata after a local `UpdateItem` whose result is `new_item`.
///
/// `old` is the stored state before the update (`None` if the item did not exist: the result's
/// epochs are then unset, for the writer to stamp with [`creation_epoch`]).
pub fn after_update(
    old: Option<(&Version, &Item, Option<&Crdt>)>,
    new_item: &Item,
    effects: &[Effect],
    region: &str,
) -> Crdt {
    let mut c = match old {
        Some((_, _, Some(c))) => c.clone(),
        Some((v, _, None)) => Crdt {
            epoch: Some(v.clone()),
            ..Crdt::default()
        },
        None => Crdt::default(),
    };
    // A client's write sees the visible item: it is its own plain state.
    c.shadow.clear();
    let old_item = old.map(|(_, i, _)| i);
    for e in effects {
        match e {
            Effect::Reset(x) => {
                // A reset is recorded for counters, and for numbers another region may be
                // incrementing concurrently (so the later reset wins there too).
                let was_number = old_item
                    .and_then(|i| i.get(x))
                    .is_some_and(|v| matches!(v, AttributeValue::N(_)));
                if c.counters.contains_key(x) || was_number {
                    c.counters.insert(
                        x.clone(),
                        Counter {
                            epoch: None,
                            base: new_item.get(x).cloned(),
                            pos: BTreeMap::new(),
                            neg: BTreeMap::new(),
                        },
                    );
                }
            }
            Effect::Add(x, n) => {
                let epoch = c.epoch.clone();
                let counter = c.counters.entry(x.clone()).or_insert_with(|| Counter {
                    epoch,
                    base: old_item.and_then(|i| i.get(x)).cloned(),
                    pos: BTreeMap::new(),
                    neg: BTreeMap::new(),
                });
                let (side, amount) = match n.signum() {
                    -1 => (
                        &mut counter.neg,
                        Number::from(0).sub(n).unwrap_or_else(|_| n.clone()),
                    ),
                    _ => (&mut counter.pos, n.clone()),
                };
                let cur = side
                    .entry(region.to_owned())
                    .or_insert_with(|| Number::from(0));
                if let Ok(sum) = cur.add(&amount) {
                    *cur = sum;
                }
            }
        }
    }
    c
}

/// One stored state of an item: its version, visible attributes and counter metadata (`None`
/// = no counters, epoch = `version`).
#[derive(Clone, Debug, PartialEq)]
pub struct State {
    /// Version of the write that produced it.
    pub version: Version,
    /// Attributes as clients see them.
    pub item: Item,
    /// Counter metadata, stamped (no `None` epochs).
    pub crdt: Option<Crdt>,
}

impl State {
    /// The attributes as the write that produced this state saw them (the visible item with
    /// the shadowed values restored).
    pub fn plain(&self) -> Item {
        let mut item = self.item.clone();
        for (name, v) in self.crdt.iter().flat_map(|c| c.shadow.iter()) {
            match v {
                Some(v) => item.insert(name.clone(), v.clone()),
                None => item.remove(name),
            };
        }
        item
    }

    fn epoch(&self) -> &Version {
        self.crdt
            .as_ref()
            .and_then(|c| c.epoch.as_ref())
            .unwrap_or(&self.version)
    }
}

fn join_counter(a: &Counter, b: &Counter) -> Counter {
    match a.epoch.cmp(&b.epoch) {
        std::cmp::Ordering::Greater => a.clone(),
        std::cmp::Ordering::Less => b.clone(),
        std::cmp::Ordering::Equal => {
            let max = |x: &BTreeMap<String, Number>, y: &BTreeMap<String, Number>| {
                let mut out = x.clone();
                for (r, n) in y {
                    match out.get(r) {
                        Some(m) if m >= n => {}
                        _ => {
                            out.insert(r.clone(), n.clone());
                        }
                    }
                }
                out
            };
            // Same epoch = same resetting write, so the bases agree; take the larger for a
            // deterministic result if they ever do not.
            let base = std::cmp::max(a.base.clone(), b.base.clone());
            Counter {
                epoch: a.epoch.clone(),
                base,
                pos: max(&a.pos, &b.pos),
                neg: max(&a.neg, &b.neg),
            }
        }
    }
}

/// The join of two states of one item (see the module docs).
pub fn merge(a: &State, b: &State) -> State {
    if a.crdt.is_none() && b.crdt.is_none() {
        return if a.version >= b.version {
            a.clone()
        } else {
            b.clone()
        };
    }
    let winner = if a.version >= b.version { a } else { b };
    let epoch = std::cmp::max(a.epoch(), b.epoch()).clone();
    let mut counters: BTreeMap<String, Counter> = BTreeMap::new();
    for side in [a, b] {
        for (name, c) in side.crdt.iter().flat_map(|c| c.counters.iter()) {
            if c.epoch.as_ref().is_some_and(|e| *e < epoch) {
                continue;
            }
            let joined = match counters.get(name) {
                Some(existing) => join_counter(existing, c),
                None => c.clone(),
            };
            counters.insert(name.clone(), joined);
        }
    }
    // The winner's plain attributes, overlaid with the merged counters' values.
    let plain = winner.plain();
    let mut item = plain.clone();
    let mut shadow = BTreeMap::new();
    for (name, c) in &counters {
        let value = c.value();
        if value.as_ref() != plain.get(name) {
            shadow.insert(name.clone(), plain.get(name).cloned());
        }
        match value {
            Some(v) => item.insert(name.clone(), v),
            None => item.remove(name),
        };
    }
    State {
        version: std::cmp::max(&a.version, &b.version).clone(),
        item,
        crdt: Some(Crdt {
            epoch: Some(epoch),
            counters,
            shadow,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_core::Timestamp;
    use proptest::prelude::*;

    fn v(ts: u64, r: &str) -> Version {
        Version {
            ts: Timestamp(ts),
            region: r.into(),
        }
    }

    fn n(x: i64) -> Number {
        Number::from(x)
    }

    /// Simulates regions applying local ADDs/SETs/PUTs and exchanging states in random order.
    fn local_op(
        state: Option<&State>,
        op: u8,
        amount: i64,
        version: Version,
        region: &str,
    ) -> State {
        let old = state.map(|s| (&s.version, &s.item, s.crdt.as_ref()));
        let mut item = state.map(|s| s.item.clone()).unwrap_or_default();
        let effects = match op {
            0 | 1 => vec![Effect::Add("c".into(), n(amount))],
            2 => {
                item.insert("c".into(), AttributeValue::N(n(amount)));
                vec![Effect::Reset("c".into())]
            }
            _ => {
                item.insert("other".into(), AttributeValue::N(n(amount)));
                vec![]
            }
        };
        if let Some(Effect::Add(_, a)) = effects.first() {
            let cur = match item.get("c") {
                Some(AttributeValue::N(x)) => x.clone(),
                _ => n(0),
            };
            item.insert("c".into(), AttributeValue::N(cur.add(a).expect("add")));
        }
        let mut crdt = after_update(old, &item, &effects, region);
        crdt.stamp(&version);
        State {
            version,
            item,
            crdt: Some(crdt),
        }
    }

    #[test]
    fn concurrent_increments_from_every_region_all_count() {
        let base = local_op(None, 2, 10, v(1, "a"), "a"); // SET c = 10
        let a = local_op(Some(&base), 0, 5, v(2, "a"), "a");
        let b = local_op(Some(&base), 0, 7, v(3, "b"), "b");
        let c = local_op(Some(&base), 0, -2, v(4, "c"), "c");
        let ab = merge(&a, &b);
        let all = merge(&ab, &c);
        assert_eq!(all.item["c"], AttributeValue::N(n(20)));
        assert_eq!(merge(&c, &merge(&b, &a)), all);
    }

    #[test]
    fn a_later_reset_wins_over_concurrent_increments() {
        let base = local_op(None, 2, 10, v(1, "a"), "a");
        let inc = local_op(Some(&base), 0, 5, v(2, "b"), "b");
        let reset = local_op(Some(&base), 2, 100, v(3, "a"), "a");
        assert_eq!(merge(&inc, &reset).item["c"], AttributeValue::N(n(100)));
        // increments made after seeing the reset count
        let after = local_op(Some(&reset), 0, 1, v(4, "b"), "b");
        assert_eq!(
            merge(&merge(&inc, &reset), &after).item["c"],
            AttributeValue::N(n(101))
        );
    }

    #[test]
    fn increments_survive_a_concurrent_update_of_another_attribute() {
        let base = local_op(None, 2, 0, v(1, "a"), "a");
        let inc = local_op(Some(&base), 0, 3, v(2, "b"), "b");
        let other = local_op(Some(&base), 3, 9, v(3, "a"), "a");
        let m = merge(&inc, &other);
        assert_eq!(m.item["c"], AttributeValue::N(n(3)));
        assert_eq!(m.item["other"], AttributeValue::N(n(9)));
    }

    fn states() -> impl Strategy<Value = Vec<State>> {
        proptest::collection::vec((0u8..4, -5i64..6, 0usize..3), 1..12).prop_map(|ops| {
            // three regions that sometimes sync, producing a history of states
            let regions = ["a", "b", "c"];
            let mut latest: [Option<State>; 3] = [None, None, None];
            let mut out = Vec::new();
            for (i, (op, amount, r)) in ops.into_iter().enumerate() {
                let s = local_op(
                    latest[r].as_ref(),
                    op,
                    amount,
                    v(i as u64 + 1, regions[r]),
                    regions[r],
                );
                latest[r] = Some(s.clone());
                if i % 3 == 2 {
                    // region r learns everything so far
                    let merged = out
                        .iter()
                        .fold(s.clone(), |acc: State, x: &State| merge(&acc, x));
                    latest[r] = Some(merged);
                }
                out.push(s);
            }
            out
        })
    }

    #[test]
    fn codec_round_trip() {
        let base = local_op(None, 2, 10, v(1, "a"), "a");
        let a = local_op(Some(&base), 0, -5, v(2, "a"), "a");
        let m = merge(&a, &local_op(Some(&base), 0, 3, v(3, "b"), "b"));
        for c in [
            a.crdt.expect("crdt"),
            m.crdt.expect("crdt"),
            Crdt::default(),
        ] {
            let mut out = Vec::new();
            codec::encode(&c, &mut out);
            let mut r = crate::codec::Reader::new(&out);
            assert_eq!(codec::read(&mut r).expect("read"), c);
            assert!(r.remaining().is_empty());
        }
    }

    proptest! {
        #[test]
        fn merge_is_a_join(s in states()) {
            for a in &s {
                prop_assert_eq!(&merge(a, a), a, "idempotent");
                for b in &s {
                    prop_assert_eq!(merge(a, b), merge(b, a), "commutative");
                    for c in &s {
                        prop_assert_eq!(merge(&merge(a, b), c), merge(a, &merge(b, c)), "associative");
                    }
                }
            }
        }
    }
}

/// Binary form of counter metadata (inside item and change records; see
/// `docs/design/storage.md`).
pub mod codec {
    use super::{Counter, Crdt};
    use crate::codec::{DecodeError, Reader, encode_value, put_len_bytes, put_varint, read_value};
    use crate::number::Number;
    use meridian_core::{Timestamp, Version};
    use std::collections::BTreeMap;

    fn put_version(out: &mut Vec<u8>, v: Option<&Version>) {
        match v {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                out.extend_from_slice(&v.ts.0.to_be_bytes());
                put_len_bytes(out, v.region.as_bytes());
            }
        }
    }

    fn read_version(r: &mut Reader<'_>) -> Result<Option<Version>, DecodeError> {
        match r.u8()? {
            0 => Ok(None),
            1 => Ok(Some(Version {
                ts: Timestamp(r.u64_be()?),
                region: r.string()?,
            })),
            _ => Err(DecodeError("bad version tag")),
        }
    }

    fn put_shares(out: &mut Vec<u8>, m: &BTreeMap<String, Number>) {
        put_varint(out, m.len() as u64);
        for (region, n) in m {
            put_len_bytes(out, region.as_bytes());
            put_len_bytes(out, n.to_string().as_bytes());
        }
    }

    fn read_shares(r: &mut Reader<'_>) -> Result<BTreeMap<String, Number>, DecodeError> {
        let mut m = BTreeMap::new();
        for _ in 0..r.varint()? {
            let region = r.string()?;
            let n = Number::parse(&r.string()?).map_err(|_| DecodeError("bad share"))?;
            m.insert(region, n);
        }
        Ok(m)
    }

    fn put_opt_value(out: &mut Vec<u8>, v: Option<&crate::AttributeValue>) {
        match v {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                encode_value(v, out);
            }
        }
    }

    fn read_opt_value(r: &mut Reader<'_>) -> Result<Option<crate::AttributeValue>, DecodeError> {
        match r.u8()? {
            0 => Ok(None),
            1 => Ok(Some(read_value(r, 1)?)),
            _ => Err(DecodeError("bad optional value")),
        }
    }

    /// `version(epoch) ‖ varint(n) (name counter)* ‖ varint(m) (name opt_value)*` where
    /// `counter := version(epoch) ‖ opt_value(base) ‖ shares(pos) ‖ shares(neg)`.
    pub fn encode(c: &Crdt, out: &mut Vec<u8>) {
        put_version(out, c.epoch.as_ref());
        put_varint(out, c.counters.len() as u64);
        for (name, counter) in &c.counters {
            put_len_bytes(out, name.as_bytes());
            put_version(out, counter.epoch.as_ref());
            put_opt_value(out, counter.base.as_ref());
            put_shares(out, &counter.pos);
            put_shares(out, &counter.neg);
        }
        put_varint(out, c.shadow.len() as u64);
        for (name, v) in &c.shadow {
            put_len_bytes(out, name.as_bytes());
            put_opt_value(out, v.as_ref());
        }
    }

    /// Reads what [`encode`] wrote.
    pub fn read(r: &mut Reader<'_>) -> Result<Crdt, DecodeError> {
        let epoch = read_version(r)?;
        let mut counters = BTreeMap::new();
        for _ in 0..r.varint()? {
            let name = r.string()?;
            let counter = Counter {
                epoch: read_version(r)?,
                base: read_opt_value(r)?,
                pos: read_shares(r)?,
                neg: read_shares(r)?,
            };
            counters.insert(name, counter);
        }
        let mut shadow = BTreeMap::new();
        for _ in 0..r.varint()? {
            let name = r.string()?;
            shadow.insert(name, read_opt_value(r)?);
        }
        Ok(Crdt {
            epoch,
            counters,
            shadow,
        })
    }
}
