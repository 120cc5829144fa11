//! Entries set aside because they can never apply (`protocol::batch::Quarantined`).
//!
//! Each is written to `<dir>/<peer>-<seq>.change` (the record as received) with the reason in
//! `<peer>-<seq>.reason`, and fsynced, before the batch around it is applied and acknowledged:
//! nothing a peer sent is dropped unseen, and the stream goes on. The link's status counts the
//! files of its peer and keeps the region's alarm raised until an operator has looked at them
//! and removed them.

use crate::Ctx;
use crate::conn::LinkError;
use crate::protocol::batch::Quarantined;
use crate::status::PeerLabel;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Sets aside the entries `peer` sent that can never apply — logged, counted and (with a
/// quarantine directory) kept durably — before the batch around them is acknowledged.
pub(crate) async fn set_aside(
    ctx: &Ctx,
    peer: &str,
    entries: Vec<Quarantined>,
) -> Result<(), LinkError> {
    if entries.is_empty() {
        return Ok(());
    }
    for q in &entries {
        tracing::error!(peer = %peer, seq = q.seq, reason = %q.reason, "replicated entry quarantined: it cannot apply");
    }
    ctx.links
        .metrics
        .quarantined
        .get_or_create(&PeerLabel {
            peer: peer.to_owned(),
        })
        .inc_by(entries.len() as u64);
    let Some(dir) = ctx.config.quarantine_dir.clone() else {
        return Ok(());
    };
    let peer = peer.to_owned();
    tokio::task::spawn_blocking(move || keep(&dir, &peer, &entries))
        .await
        .map_err(|_| LinkError::Closed("quarantine writer panicked"))?
        .map_err(LinkError::Io)
}

/// Writes `entries` from `peer` into `dir` durably.
pub(crate) fn keep(dir: &Path, peer: &str, entries: &[Quarantined]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for q in entries {
        for (ext, bytes) in [
            ("change", q.record.as_slice()),
            ("reason", q.reason.as_bytes()),
        ] {
            let mut f = std::fs::File::create(dir.join(format!("{peer}-{}.{ext}", q.seq)))?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
    }
    std::fs::File::open(dir)?.sync_all()
}

/// Quarantined entries in `dir`, per peer.
pub(crate) fn count(dir: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Ok(files) = std::fs::read_dir(dir) else {
        return out;
    };
    for f in files.flatten() {
        let name = f.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".change")) else {
            continue;
        };
        if let Some((peer, _seq)) = stem.rsplit_once('-') {
            *out.entry(peer.to_owned()).or_insert(0) += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_entries_are_counted_per_peer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let q = |seq| Quarantined {
            seq,
            reason: "zero timestamp".into(),
            record: vec![1, 2, 3],
        };
        keep(dir.path(), "us-east", &[q(4), q(9)]).expect("kept");
        keep(dir.path(), "eu", &[q(1)]).expect("kept");
        let n = count(dir.path());
        assert_eq!(n.get("us-east"), Some(&2));
        assert_eq!(n.get("eu"), Some(&1));
        let reason = std::fs::read_to_string(dir.path().join("us-east-9.reason")).expect("file");
        assert_eq!(reason, "zero timestamp");
        assert_eq!(
            std::fs::read(dir.path().join("eu-1.change")).expect("file"),
            vec![1, 2, 3]
        );
        assert!(count(&dir.path().join("missing")).is_empty());
    }
}
