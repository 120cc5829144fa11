//! `meridian apply -f spec.toml`: validate a cluster spec locally, then store it at the control
//! plane as a new version; every component picks it up on its next poll.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use meridian_control::{ControlClient, parse_spec};

use crate::cluster::{ClusterArg, block_on};

/// Flags of `meridian apply`.
#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// The cluster spec (TOML).
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    #[command(flatten)]
    cluster: ClusterArg,
    /// The control plane's URL (instead of the one in the cluster file).
    #[arg(long)]
    control: Option<String>,
}

pub fn run(args: ApplyArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    // Refuse locally first: the same validation the control plane runs, with positions.
    if let Err(e) = parse_spec(&text) {
        anyhow::bail!("{}: {e}\nnothing was applied", args.file.display());
    }
    let (url, token) = match &args.control {
        Some(u) => (u.clone(), crate::cluster::env_token()?),
        None => {
            let file = args.cluster.load()?;
            (file.control.endpoint.clone(), file.admin_token()?)
        }
    };
    block_on(async move {
        let client = ControlClient::new(&url, Duration::from_secs(5)).with_token(token.as_ref());
        let (version, created) = client
            .apply(&text, true, false)
            .await
            .with_context(|| format!("applying {} at {url}", args.file.display()))?;
        if created {
            println!("applied {} as spec version {version}", args.file.display());
        } else {
            println!(
                "unchanged: {} is already spec version {version}",
                args.file.display()
            );
        }
        Ok(())
    })
}
