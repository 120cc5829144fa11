//! The Byzantine fault hook (`POST /admin/links/{peer}/byzantine?on=true`, fault injection
//! only): the sync-out sends batches a compromised peer could send — by turns, one whose
//! changes claim another region as their origin (forged GTIDs), and one whose versions are an
//! hour ahead of every clock. A receiver must refuse both whole, apply nothing of them, keep its
//! clock, and name the peer in its alarm; the honest changes flow again once the hook is off.

use crate::protocol::ProtocolError;
use crate::protocol::batch::{self, BatchHeader};
use crate::protocol::frame::Batch;
use meridian_core::Timestamp;
use meridian_storage::RawChange;

/// How far ahead a forged version is.
const AHEAD_MS: u64 = 3_600_000;

/// The forged form of a batch: `turn` even forges origins (as `other`), odd moves versions an
/// hour ahead. Entries that do not decode are sent as they are.
pub(crate) fn forge(
    header: BatchHeader,
    entries: &[RawChange],
    other: &str,
    turn: u64,
) -> Result<Batch, ProtocolError> {
    let forged: Vec<_> = entries
        .iter()
        .filter_map(|e| e.decode().ok())
        .map(|mut e| {
            if turn.is_multiple_of(2) {
                e.gtid.origin = other.to_owned();
            } else {
                let ts = e.version.ts;
                e.version.ts = Timestamp::new(ts.physical_ms() + AHEAD_MS, ts.logical());
            }
            e
        })
        .collect();
    batch::build(header, &forged)
}
