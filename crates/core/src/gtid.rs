//! Global transaction ids.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The global id of one change: the region where it was first committed, and its position in
/// that region's change log. Unique across the cluster; per origin, sequences have no gaps.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Gtid {
    /// The region that accepted the write from a client.
    pub origin: String,
    /// Position in the origin's change log, starting at 1.
    pub seq: u64,
}

impl fmt::Debug for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.origin, self.seq)
    }
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
