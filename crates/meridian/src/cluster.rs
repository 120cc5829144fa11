//! `cluster.json`: what `meridian up` runs and where — the file operator commands read.
//!
//! `meridian up` writes it atomically (temp + rename) after start-up and whenever a process id
//! or state changes. Operator commands take `--cluster PATH` (default
//! `./meridian-data/cluster.json`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use meridian_control::Http;
pub use meridian_control::cluster_file::{
    ClusterFile, ControlEntry, DnsEntry, GatewayEntry, ProcState, RegionEntry, UpEntry,
};

/// `--cluster PATH`, shared by the operator commands.
#[derive(Args, Debug, Clone)]
pub struct ClusterArg {
    /// The cluster file written by `meridian up`.
    #[arg(long, default_value = "./meridian-data/cluster.json")]
    pub cluster: PathBuf,
}

impl ClusterArg {
    /// Loads the file.
    pub fn load(&self) -> anyhow::Result<ClusterFile> {
        ClusterFile::load(&self.cluster)
    }
}

/// The HTTP client operator commands use against the cluster of `file`: short timeouts (a dead
/// component must not hang a command), presenting the cluster's admin token.
pub fn http(file: &ClusterFile) -> anyhow::Result<Http> {
    file.http(Duration::from_secs(3))
}

/// The admin token named by `MERIDIAN_ADMIN_TOKEN_FILE`, for commands pointed at a component
/// without a cluster file.
pub fn env_token() -> anyhow::Result<Option<meridian_auth::AdminToken>> {
    std::env::var_os(meridian_auth::TOKEN_FILE_ENV)
        .map(|p| meridian_auth::AdminToken::load(std::path::Path::new(&p)))
        .transpose()
        .map_err(anyhow::Error::from)
}

/// Runs an operator command's future on a small runtime, logging warnings only.
pub fn block_on<T>(fut: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    crate::init_logging("warn");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(fut)
}
