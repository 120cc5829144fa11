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
    /// The API's token (every route but `/health` requires it).
    #[command(flatten)]
    admin: meridian_auth::AdminTokenArg,
}

pub fn run(args: ControlArgs) -> anyhow::Result<()> {
    let log = args.log.clone();
    crate::async_main(&log, async move {
        let guard = args.admin.guard()?;
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
