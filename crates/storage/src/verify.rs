//! `meridian region verify`: reads a stopped region's whole store and reports what is damaged.
//!
//! The journals are checked first, without opening the engine (opening it would truncate a
//! damaged journal). If they are sound, the engine opens the store and every entry of every
//! keyspace is read: each table block's checksum is checked as it is read.

use crate::StoreError;
use fjall::{Database, KeyspaceCreateOptions};
use std::path::Path;

/// What a verification found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Journal damage before a tail (the tables were then not read).
    pub journal: Option<crate::journal::Damage>,
    /// Per keyspace: entries read, or the error that stopped the read.
    pub keyspaces: Vec<(String, Result<u64, String>)>,
}

impl VerifyReport {
    /// Whether nothing is damaged.
    pub fn ok(&self) -> bool {
        self.journal.is_none() && self.keyspaces.iter().all(|(_, r)| r.is_ok())
    }
}

/// Verifies the store at `path` (the region must be stopped: the engine locks its directory).
pub fn verify(path: &Path) -> Result<VerifyReport, StoreError> {
    if !path.is_dir() {
        return Err(StoreError::Corrupt(format!(
            "{} is not a data directory",
            path.display()
        )));
    }
    let journal = crate::journal::check(path)
        .map_err(|e| StoreError::Corrupt(format!("reading the journals: {e}")))?;
    if journal.is_some() {
        return Ok(VerifyReport {
            journal,
            keyspaces: Vec::new(),
        });
    }
    let db = Database::builder(path).worker_threads(1).open()?;
    let mut names: Vec<String> = db
        .list_keyspace_names()
        .iter()
        .map(|n| AsRef::<str>::as_ref(n).to_owned())
        .collect();
    names.sort();
    let mut keyspaces = Vec::new();
    for name in names {
        let ks = db.keyspace(&name, KeyspaceCreateOptions::default)?;
        let mut n = 0u64;
        let mut result = Ok(0);
        for kv in ks.iter() {
            match kv.into_inner() {
                Ok(_) => n += 1,
                Err(e) => {
                    result = Err(format!("after {n} entries: {e}"));
                    break;
                }
            }
        }
        keyspaces.push((name, result.map(|_: u64| n)));
    }
    Ok(VerifyReport {
        journal: None,
        keyspaces,
    })
}
