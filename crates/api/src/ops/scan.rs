//! `Scan`.

use crate::request::common::{Placeholders, Req, condition, projection, table};
use crate::request::paging::{
    PageSpec, Source, after_start, exclusive_start, exclusive_start_in_index, page,
    parse_select_and_limit, source_for,
};
use crate::state::AppState;
use meridian_expr::ExprKind;
use meridian_model::ApiError;
use serde_json::Value;
use std::ops::Bound;

/// Most segments of a parallel scan.
pub const MAX_SEGMENTS: i64 = 1_000_000;

/// The storage-key range of segment `seg` of `total`: a slice of the 32-bit partition-hash
/// space that leads every storage key.
pub fn segment_range(seg: u64, total: u64) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let space: u64 = 1 << 32;
    let lo = seg * space / total;
    let hi = (seg + 1) * space / total;
    let lo = Bound::Included((lo as u32).to_be_bytes().to_vec());
    let hi = if hi >= space {
        Bound::Unbounded
    } else {
        Bound::Excluded((hi as u32).to_be_bytes().to_vec())
    };
    (lo, hi)
}

fn segments(req: &Req) -> Result<Option<(u64, u64)>, ApiError> {
    match (req.int("Segment")?, req.int("TotalSegments")?) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(ApiError::validation(
            "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
        )),
        (None, Some(_)) => Err(ApiError::validation(
            "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
        )),
        (Some(s), Some(t)) => {
            if !(1..=MAX_SEGMENTS).contains(&t) {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{t}' at 'totalSegments' failed to satisfy constraint: Member must have value {}",
                    if t < 1 {
                        "greater than or equal to 1"
                    } else {
                        "less than or equal to 1000000"
                    }
                )));
            }
            if s < 0 {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{s}' at 'segment' failed to satisfy constraint: Member must have value greater than or equal to 0"
                )));
            }
            if s >= t {
                return Err(ApiError::validation(format!(
                    "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {s} is not less than TotalSegments: {t}"
                )));
            }
            Ok(Some((s as u64, t as u64)))
        }
    }
}

/// Whether a storage key lies inside a segment's range.
fn in_range((lo, hi): &(Bound<Vec<u8>>, Bound<Vec<u8>>), k: &[u8]) -> bool {
    let above = match lo {
        Bound::Included(l) => k >= l.as_slice(),
        Bound::Excluded(l) => k > l.as_slice(),
        Bound::Unbounded => true,
    };
    let below = match hi {
        Bound::Included(h) => k <= h.as_slice(),
        Bound::Excluded(h) => k < h.as_slice(),
        Bound::Unbounded => true,
    };
    above && below
}

/// Reads a table (or one segment of it) a page at a time.
pub async fn handle(state: &AppState, mut req: Req<'_>) -> Result<Value, ApiError> {
    let t = table(state, req.req_str("TableName", "tableName")?)?;
    crate::request::legacy::translate(&mut req, crate::request::legacy::Op::Scan, &t.key_schema)?;
    let consistent = req.bool("ConsistentRead")?.unwrap_or(false);
    let capacity = crate::request::capacity::Mode::from_req(&req)?;
    let seg = segments(&req)?;
    let ph = Placeholders::from_req(&req)?;
    let attrs = ph.attrs()?;
    let filter = condition(&req, "FilterExpression", ExprKind::Filter, &attrs)?;
    let proj = projection(&req, &attrs)?;
    attrs.check_all_used()?;
    let index_name = req.str("IndexName")?;
    let (select, limit) = parse_select_and_limit(&req, proj.is_some(), index_name.is_some())?;
    let source = source_for(t.clone(), index_name, req.str("Select")?, proj.is_some())?;
    crate::request::paging::check_consistent(&source, consistent)?;
    let range = match seg {
        Some((s, total)) => segment_range(s, total),
        None => (Bound::Unbounded, Bound::Unbounded),
    };
    let start = match &source {
        Source::Index { index, .. } => exclusive_start_in_index(&req, &t, index)?,
        Source::Table(_) => exclusive_start(&req, &t.key_schema)?,
    };
    if let (Some((s, total)), Some(k)) = (seg, &start)
        && !in_range(&range, k)
    {
        return Err(ApiError::validation(format!(
            "The provided Exclusive start key does not map to the provided Segment: TotalSegments: {total}; Segment: {s}"
        )));
    }
    let range = after_start(range, start, false);
    let spec = PageSpec {
        limit,
        filter,
        projection: proj,
        select,
        reverse: false,
        capacity,
        consistent,
    };
    page(state, source, range, spec).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_tile_the_hash_space() {
        for total in [1u64, 2, 3, 7, 1000] {
            let mut expected_lo: Vec<u8> = vec![0, 0, 0, 0];
            for s in 0..total {
                let (lo, hi) = segment_range(s, total);
                assert_eq!(lo, Bound::Included(expected_lo.clone()));
                match hi {
                    Bound::Excluded(h) => expected_lo = h,
                    Bound::Unbounded => assert_eq!(s, total - 1),
                    Bound::Included(_) => panic!("inclusive upper bound"),
                }
            }
        }
    }
}
