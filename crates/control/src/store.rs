//! The control plane's durable history of specs: every applied spec is a new numbered version.
//!
//! On disk, `DIR/specs/00000001.toml`, `00000002.toml`, … hold the text that was validated
//! without its `[secrets]` table (comments and layout kept): that is all the API ever serves.
//! The secrets are stored apart, in `DIR/secrets/00000001.toml`, … (mode 0600, directory 0700),
//! and never leave the server. A version is written to a temporary file, fsynced, renamed into
//! place and the directory fsynced, so after a crash a version is either entirely there or
//! absent. Versions are never rewritten. A failed write is reported and leaves the store
//! unchanged.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::ControlError;
use crate::validate::parse_spec;

/// Writes `bytes` to `path` atomically: temp file + fsync + rename + directory fsync.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), ControlError> {
    atomic_write_mode(path, bytes, 0o644)
}

/// [`atomic_write`] of a file created with `mode`.
fn atomic_write_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ControlError> {
    use std::os::unix::fs::OpenOptionsExt;
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
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| io("creating", e))?;
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
    /// The spec's TOML text as validated, without its `[secrets]` ([`redact`]).
    pub text: String,
}

/// Splits a spec's text into what may be served — everything but the `[secrets]` table, with
/// comments and layout kept — and the secrets (that table alone, as TOML; `None` without one).
pub fn redact(text: &str) -> Result<(String, Option<String>), ControlError> {
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| ControlError::Remote(format!("spec TOML: {e}")))?;
    let secrets = doc.remove("secrets").map(|item| {
        let mut alone = toml_edit::DocumentMut::new();
        alone.insert("secrets", item);
        alone.to_string()
    });
    Ok((doc.to_string(), secrets))
}

/// The versioned spec store.
pub struct SpecStore {
    dir: PathBuf,
    secrets_dir: PathBuf,
    /// The latest version's secrets (what `put` compares a new spec's with).
    latest_secrets: Mutex<Option<String>>,
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
        let secrets_dir = data_dir.join("secrets");
        let store = SpecStore {
            dir,
            secrets_dir,
            latest_secrets: Mutex::new(None),
            latest: Mutex::new(None),
        };
        if let Some(v) = latest {
            let spec = store.read(v)?;
            let secrets = match fs::read_to_string(store.secrets_dir.join(file_name(v))) {
                Ok(s) => Some(s),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(ControlError::io("reading the latest secrets", e)),
            };
            *store.lock()? = Some(spec);
            if let Ok(mut s) = store.latest_secrets.lock() {
                *s = secrets;
            }
        }
        Ok(store)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Option<StoredSpec>>, ControlError> {
        self.latest
            .lock()
            .map_err(|_| ControlError::Remote("spec store lock poisoned".into()))
    }

    /// Validates `text` and stores it as the next version, its secrets apart ([`redact`]).
    /// With `if_changed`, a spec identical to the latest version (secrets included) returns
    /// that version instead of a new one. Without `restart` (a running cluster), a version
    /// with a field the cluster cannot apply live is refused ([`crate::changes`]).
    pub fn put(
        &self,
        text: &str,
        if_changed: bool,
        restart: bool,
    ) -> Result<(u64, bool), ControlError> {
        let spec = parse_spec(text)?;
        let (public, secrets) = redact(text)?;
        let mut latest = self.lock()?;
        let mut latest_secrets = self
            .latest_secrets
            .lock()
            .map_err(|_| ControlError::Remote("spec store lock poisoned".into()))?;
        if !restart && let Some(l) = latest.as_ref() {
            let old_text = format!("{}\n{}", l.text, latest_secrets.as_deref().unwrap_or(""));
            if let Ok(old) = parse_spec(&old_text) {
                let refused = crate::changes::refusals(&old, &spec);
                if let Some(e) = crate::changes::refusal_error(text, &refused) {
                    return Err(e.into());
                }
            }
        }
        if if_changed
            && let Some(l) = latest.as_ref()
            && l.text == public
            && *latest_secrets == secrets
        {
            return Ok((l.version, false));
        }
        let version = latest.as_ref().map_or(1, |l| l.version + 1);
        if let Some(s) = &secrets {
            fs::create_dir_all(&self.secrets_dir).map_err(|e| {
                ControlError::io(format!("creating {}", self.secrets_dir.display()), e)
            })?;
            fs::set_permissions(&self.secrets_dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| ControlError::io("protecting the secrets directory", e))?;
            atomic_write_mode(
                &self.secrets_dir.join(file_name(version)),
                s.as_bytes(),
                0o600,
            )?;
        }
        atomic_write(&self.dir.join(file_name(version)), public.as_bytes())?;
        *latest = Some(StoredSpec {
            version,
            text: public,
        });
        *latest_secrets = secrets;
        Ok((version, true))
    }

    /// The secrets of `version` of the store under `data_dir`, read from disk by a process of
    /// the same owner (`meridian up`, which runs the control plane); never served.
    pub fn read_secrets(data_dir: &Path, version: u64) -> Result<Option<String>, ControlError> {
        let path = data_dir.join("secrets").join(file_name(version));
        match fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ControlError::io(format!("reading {}", path.display()), e)),
        }
    }

    /// The latest version.
    pub fn latest(&self) -> Result<Option<StoredSpec>, ControlError> {
        Ok(self.lock()?.clone())
    }

    /// A version by number.
    pub fn read(&self, version: u64) -> Result<StoredSpec, ControlError> {
        let path = self.dir.join(file_name(version));
        match fs::read_to_string(&path) {
            // Redacted on the way out too: a version stored by a build that kept secrets in
            // the spec never serves them.
            Ok(text) => Ok(StoredSpec {
                version,
                text: redact(&text)?.0,
            }),
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
        assert_eq!(store.put(SPEC, false, true).expect("put"), (1, true));
        assert_eq!(store.put(SPEC, true, true).expect("put"), (1, false));
        assert_eq!(store.put(SPEC, false, true).expect("put"), (2, true));
        assert!(store.put("regions = 3", false, true).is_err());
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

    #[test]
    fn secrets_are_stored_apart_and_never_in_a_served_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SpecStore::open(dir.path()).expect("open");
        let with =
            format!("{SPEC}\n# the links' secret\n[secrets]\nreplication = \"very-secret-1\"\n");
        assert_eq!(store.put(&with, true, true).expect("put"), (1, true));
        let served = store.latest().expect("latest").expect("some").text;
        assert!(
            !served.contains("very-secret") && !served.contains("[secrets]"),
            "{served}"
        );
        assert!(served.contains("us-east"));
        parse_spec(&served).expect("the served spec parses");
        let kept = dir.path().join("secrets").join("00000001.toml");
        assert!(
            fs::read_to_string(&kept)
                .expect("kept")
                .contains("very-secret-1")
        );
        let mode = fs::metadata(&kept).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // unchanged, then only the secret changed: a new version
        assert_eq!(store.put(&with, true, true).expect("put"), (1, false));
        let rotated = with.replace("very-secret-1", "very-secret-2");
        assert_eq!(store.put(&rotated, true, true).expect("put"), (2, true));
        drop(store);
        let store = SpecStore::open(dir.path()).expect("reopen");
        assert_eq!(store.put(&rotated, true, true).expect("put"), (2, false));
        // dotted and inline forms are secrets too
        let dotted = format!("secrets.replication = \"very-secret-3\"\n{SPEC}");
        let (public, secrets) = redact(&dotted).expect("redact");
        assert!(!public.contains("very-secret"), "{public}");
        assert!(secrets.expect("secrets").contains("very-secret-3"));
    }
}
