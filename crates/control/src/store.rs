//! The control plane's durable history of specs: every applied spec is a new numbered version.
//!
//! On disk, `DIR/specs/00000001.toml`, `00000002.toml`, … hold the exact text that was
//! validated. A version is written to a temporary file, fsynced, renamed into place and the
//! directory fsynced, so after a crash a version is either entirely there or absent. Versions
//! are never rewritten. A failed write is reported and leaves the store unchanged.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::ControlError;
use crate::validate::parse_spec;

/// Writes `bytes` to `path` atomically: temp file + fsync + rename + directory fsync.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), ControlError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir)
        .map_err(|e| ControlError::io(format!("creating {}", dir.display()), e))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let io = |what: &str, e| ControlError::io(format!("{what} {}", tmp.display()), e);
    {
        let mut f = fs::File::create(&tmp).map_err(|e| io("creating", e))?;
        f.write_all(bytes).map_err(|e| io("writing", e))?;
        f.sync_all().map_err(|e| io("syncing", e))?;
    }
    fs::rename(&tmp, path)
        .map_err(|e| ControlError::io(format!("renaming into {}", path.display()), e))?;
    if let Ok(d) = fs::File::open(dir) {
        d.sync_all()
            .map_err(|e| ControlError::io(format!("syncing {}", dir.display()), e))?;
    }
    Ok(())
}

/// One stored version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSpec {
    /// Version number, from 1.
    pub version: u64,
    /// The spec's TOML text, exactly as validated.
    pub text: String,
}

/// The versioned spec store.
pub struct SpecStore {
    dir: PathBuf,
    // A std Mutex: held only around small file operations, never across `.await`; it also
    // serializes version numbering.
    latest: Mutex<Option<StoredSpec>>,
}

fn file_name(version: u64) -> String {
    format!("{version:08}.toml")
}

impl SpecStore {
    /// Opens (or creates) the store under `data_dir/specs`.
    pub fn open(data_dir: &Path) -> Result<Self, ControlError> {
        let dir = data_dir.join("specs");
        fs::create_dir_all(&dir)
            .map_err(|e| ControlError::io(format!("creating {}", dir.display()), e))?;
        let mut latest = None;
        let entries = fs::read_dir(&dir)
            .map_err(|e| ControlError::io(format!("reading {}", dir.display()), e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(v) = name
                .strip_suffix(".toml")
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            if latest.is_none_or(|l| v > l) {
                latest = Some(v);
            }
        }
        let store = SpecStore {
            dir,
            latest: Mutex::new(None),
        };
        if let Some(v) = latest {
            let spec = store.read(v)?;
            *store.lock()? = Some(spec);
        }
        Ok(store)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Option<StoredSpec>>, ControlError> {
        self.latest
            .lock()
            .map_err(|_| ControlError::Remote("spec store lock poisoned".into()))
    }

    /// Validates `text` and stores it as the next version. With `if_changed`, an identical
    /// text to the latest version returns that version instead of a new one.
    pub fn put(&self, text: &str, if_changed: bool) -> Result<(u64, bool), ControlError> {
        parse_spec(text)?;
        let mut latest = self.lock()?;
        if if_changed
            && let Some(l) = latest.as_ref()
            && l.text == text
        {
            return Ok((l.version, false));
        }
        let version = latest.as_ref().map_or(1, |l| l.version + 1);
        atomic_write(&self.dir.join(file_name(version)), text.as_bytes())?;
        *latest = Some(StoredSpec {
            version,
            text: text.to_owned(),
        });
        Ok((version, true))
    }

    /// The latest version.
    pub fn latest(&self) -> Result<Option<StoredSpec>, ControlError> {
        Ok(self.lock()?.clone())
    }

    /// A version by number.
    pub fn read(&self, version: u64) -> Result<StoredSpec, ControlError> {
        let path = self.dir.join(file_name(version));
        match fs::read_to_string(&path) {
            Ok(text) => Ok(StoredSpec { version, text }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(ControlError::UnknownVersion(version))
            }
            Err(e) => Err(ControlError::io(format!("reading {}", path.display()), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
[[regions]]
name = "us-east"
address = "127.0.1.1"
lat = 38.9
lon = -77.0
continent = "NA"
"#;

    #[test]
    fn versions_survive_reopen_and_bad_specs_are_not_stored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SpecStore::open(dir.path()).expect("open");
        assert_eq!(store.latest().expect("latest"), None);
        assert_eq!(store.put(SPEC, false).expect("put"), (1, true));
        assert_eq!(store.put(SPEC, true).expect("put"), (1, false));
        assert_eq!(store.put(SPEC, false).expect("put"), (2, true));
        assert!(store.put("regions = 3", false).is_err());
        drop(store);
        let store = SpecStore::open(dir.path()).expect("reopen");
        let latest = store.latest().expect("latest").expect("some");
        assert_eq!((latest.version, latest.text.as_str()), (2, SPEC));
        assert_eq!(store.read(1).expect("v1").text, SPEC);
        assert!(matches!(
            store.read(9),
            Err(ControlError::UnknownVersion(9))
        ));
    }
}
