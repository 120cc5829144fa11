//! `cluster.json`: what `meridian up` runs and where — the file operator commands, drills and
//! benchmarks read.
//!
//! `meridian up` writes it atomically (temp + rename) after start-up and whenever a process id
//! or state changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterFile {
    /// Cluster name from the spec.
    pub name: String,
    /// The data directory (absolute).
    pub data_dir: PathBuf,
    /// The spec version `up` started with.
    pub spec_version: Option<u64>,
    /// Whether the region servers run replication (their binary has the flags).
    pub replication: bool,
    /// The supervisor itself.
    pub up: UpEntry,
    /// The control plane.
    pub control: ControlEntry,
    /// The regions.
    pub regions: Vec<RegionEntry>,
    /// The DNS server.
    pub dns: DnsEntry,
    /// The gateway.
    pub gateway: GatewayEntry,
    /// Emulated one-way latency per directed link (ms).
    pub links: BTreeMap<String, BTreeMap<String, u64>>,
    /// The cluster's admin token file (mode 0600): every admin endpoint requires the token,
    /// and the operator commands read it from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token_file: Option<PathBuf>,
}

/// `meridian up`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpEntry {
    /// Its pid.
    pub pid: u32,
    /// Its admin API (`POST /v1/restart/{name}`, `GET /v1/cluster`).
    pub endpoint: String,
}

/// State shared by every supervised process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProcState {
    /// Process id while running.
    pub pid: Option<u32>,
    /// `starting`, `running`, `exited (…)`, `stopped`.
    pub status: String,
    /// Its log file.
    pub log: PathBuf,
}

/// The control plane.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControlEntry {
    /// Base URL of its API.
    pub endpoint: String,
    /// Process.
    #[serde(flatten)]
    pub proc: ProcState,
}

/// One region.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegionEntry {
    /// Region name.
    pub name: String,
    /// Region id (unique IDs).
    pub id: u16,
    /// DynamoDB endpoint URL.
    pub endpoint: String,
    /// Replication address.
    pub replication: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Process.
    #[serde(flatten)]
    pub proc: ProcState,
}

/// The DNS server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DnsEntry {
    /// UDP/TCP `host:port`.
    pub addr: String,
    /// The global name.
    pub name: String,
    /// Admin API base URL.
    pub admin: String,
    /// Process.
    #[serde(flatten)]
    pub proc: ProcState,
}

/// The gateway.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GatewayEntry {
    /// DynamoDB endpoint URL.
    pub endpoint: String,
    /// Admin API base URL.
    pub admin: String,
    /// Process.
    #[serde(flatten)]
    pub proc: ProcState,
}

impl ClusterFile {
    /// Reads a cluster file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading {} (is `meridian up` running? pass --cluster PATH)",
                path.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Writes it atomically.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        crate::store::atomic_write(path, format!("{text}\n").as_bytes())?;
        Ok(())
    }

    /// The cluster's admin token, if the file names one.
    pub fn admin_token(&self) -> anyhow::Result<Option<meridian_auth::AdminToken>> {
        self.admin_token_file
            .as_deref()
            .map(meridian_auth::AdminToken::load)
            .transpose()
            .map_err(anyhow::Error::from)
    }

    /// An HTTP client for this cluster's components, each request giving up after `timeout`
    /// and presenting the cluster's admin token.
    pub fn http(&self, timeout: std::time::Duration) -> anyhow::Result<crate::Http> {
        Ok(crate::Http::new(timeout).with_token(self.admin_token()?.as_ref()))
    }

    /// A region by name.
    pub fn region(&self, name: &str) -> anyhow::Result<&RegionEntry> {
        self.regions
            .iter()
            .find(|r| r.name == name)
            .with_context(|| {
                let names: Vec<&str> = self.regions.iter().map(|r| r.name.as_str()).collect();
                format!("no region {name:?} (regions: {})", names.join(", "))
            })
    }
}
