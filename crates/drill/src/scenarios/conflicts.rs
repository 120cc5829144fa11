//! Concurrent conflicting writes to hot keys: every client, through the gateway and directly
//! in every region, writes the same four keys as fast as it can. Every region must settle on
//! the same winner per key (last writer wins on the HLC version) and no acknowledged write may
//! be lost — each must be the winner or be superseded by a later version.

use super::Def;
use crate::timing::Signal;
use crate::workload::Mix;

pub(super) fn def() -> Def {
    Def {
        fault: "all clients write the same 4 hot keys concurrently in every region".into(),
        signal: Signal::CounterRises {
            families: vec!["meridian_replication_stale_entries".into()],
        },
        slo_pct: 99.0,
        mix: Mix::Hot,
        metrics: true,
    }
}
