//! `meridian control`: the control plane server (versioned cluster specs, component reports).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use meridian_control::{ControlState, SpecStore};

/// Flags of `meridian control`.
#[derive(Args, Debug)]
pub struct ControlArgs {
    /// Address of the HTTP API.
    #[arg(long, default_value = "127.0.0.1:7100")]
    listen: SocketAddr,
    /// Where versions are stored (`DIR/specs/NNNNNNNN.toml`).
    #[arg(long, default_value = "./meridian-data/control")]
    data_dir: PathBuf,
    /// Log filter (`RUST_LOG` syntax).
    #[arg(long, env = "MERIDIAN_LOG", default_value = "info")]
    log: String,
    /// The cluster's admin token (a file only its owner may read): every route but `/health`
    /// requires it. Without one, the API answers loopback clients only.
    #[arg(long, env = meridian_auth::TOKEN_FILE_ENV)]
    admin_token_file: Option<PathBuf>,
}

pub fn run(args: ControlArgs) -> anyhow::Result<()> {
    let log = args.log.clone();
    crate::async_main(&log, async move {
        let guard = meridian_auth::AdminGuard::from_file(args.admin_token_file.as_deref())?;
        let store = SpecStore::open(&args.data_dir)
            .with_context(|| format!("opening {}", args.data_dir.display()))?;
        let latest = store.latest()?.map(|s| s.version);
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, ?latest, "control plane listening");
        println!("meridian control listening on http://{addr}");
        meridian_control::serve(
            listener,
            ControlState::new(store).with_admin(guard),
            crate::region::shutdown_signal(),
        )
        .await?;
        Ok(())
    })
}
