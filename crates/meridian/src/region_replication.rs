//! The replication part of `meridian region`: flags, the `[replication]` TOML section, and how
//! they merge (flags win) into a [`ReplicationConfig`].

use anyhow::Context;
use clap::Args;
use meridian_replication::config::{parse_peer_flag, parse_topology};
use meridian_replication::{PeerConfig, ReplicationConfig, ReplicationSection};
use std::net::SocketAddr;

/// Replication flags of `meridian region`.
#[derive(Args, Debug, Default)]
pub struct ReplicationArgs {
    /// Where this region accepts replication links from its peers (`HOST:PORT`). Replication
    /// is on when this (or `[replication] listen`) is set.
    #[arg(long)]
    replication_listen: Option<SocketAddr>,
    /// A peer region as `NAME=HOST:PORT` (its replication listener). Repeatable; replaces the
    /// peers of the config file when given.
    #[arg(long = "peer")]
    peers: Vec<String>,
    /// Shared secret of every link (per-peer secrets: `[[replication.peers]] secret`).
    #[arg(long, env = "MERIDIAN_REPLICATION_SECRET")]
    replication_secret: Option<String>,
    /// `mesh` (every region to every region) or `star` (every region to `--hub`).
    #[arg(long)]
    topology: Option<String>,
    /// The hub region of a star topology.
    #[arg(long)]
    hub: Option<String>,
    /// Lag in milliseconds above which a link raises its alarm flag.
    #[arg(long)]
    lag_alarm_ms: Option<u64>,
    /// Keep change-log entries at least this many seconds, and until every peer has
    /// acknowledged them; older ones are purged (default 3600). A peer that joins later is
    /// seeded from a snapshot.
    #[arg(long)]
    changelog_retention_secs: Option<u64>,
    /// How often change-log garbage collection runs, in milliseconds (default 10000).
    #[arg(long)]
    changelog_gc_interval_ms: Option<u64>,
    /// Report `serving` as soon as the region listens, without first catching up with its
    /// peers (by default `/health` says `catching_up`, a 503, until the region has applied
    /// what every reachable peer held when its link came back).
    #[arg(long)]
    no_catch_up_gate: bool,
    /// How long after the start a peer that has not linked yet holds the region back, in
    /// milliseconds (default 6000).
    #[arg(long)]
    catch_up_wait_ms: Option<u64>,
    /// A link whose lag is at most this many milliseconds counts as caught up (default 0:
    /// only having applied the peer's head at the link counts).
    #[arg(long)]
    catch_up_lag_ms: Option<u64>,
    /// This region's link certificate (PEM, naming the region): with `--tls-key` and
    /// `--tls-ca`, every link is TLS 1.3 with mutual authentication.
    #[arg(long)]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of `--tls-cert` (PEM).
    #[arg(long)]
    tls_key: Option<std::path::PathBuf>,
    /// The CA that signs every region's link certificate (PEM).
    #[arg(long)]
    tls_ca: Option<std::path::PathBuf>,
}

/// Merges flags over the file section; `None` when replication is not configured.
pub fn resolve(
    region: &str,
    args: &ReplicationArgs,
    file: Option<&ReplicationSection>,
) -> anyhow::Result<Option<ReplicationConfig>> {
    let empty = ReplicationSection::default();
    let file = file.unwrap_or(&empty);
    let Some(listen) = args.replication_listen.or(file.listen) else {
        if !args.peers.is_empty() || !file.peers.is_empty() {
            anyhow::bail!("peers are configured but not --replication-listen");
        }
        return Ok(None);
    };
    let default_secret = args.replication_secret.clone().or(file.secret.clone());
    let peers: Vec<PeerConfig> = if args.peers.is_empty() {
        file.peers
            .iter()
            .map(|p| PeerConfig {
                name: p.name.clone(),
                endpoint: p.endpoint.clone(),
                secret: p
                    .secret
                    .clone()
                    .or(default_secret.clone())
                    .unwrap_or_default(),
            })
            .collect()
    } else {
        args.peers
            .iter()
            .map(|s| {
                let (name, endpoint) = parse_peer_flag(s).map_err(anyhow::Error::msg)?;
                // a per-peer secret from the file still applies to a peer named on the command line
                let secret = file
                    .peers
                    .iter()
                    .find(|p| p.name == name)
                    .and_then(|p| p.secret.clone())
                    .or(default_secret.clone())
                    .unwrap_or_default();
                Ok(PeerConfig {
                    name,
                    endpoint,
                    secret,
                })
            })
            .collect::<anyhow::Result<_>>()?
    };
    let topology = parse_topology(
        args.topology.as_deref().or(file.topology.as_deref()),
        args.hub.as_deref().or(file.hub.as_deref()),
    )
    .map_err(anyhow::Error::msg)?;
    let mut config = ReplicationConfig::new(region, listen, peers);
    config.topology = topology;
    config.tls = match (&args.tls_cert, &args.tls_key, &args.tls_ca) {
        (Some(cert), Some(key), Some(ca)) => Some(meridian_replication::tls::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            ca: ca.clone(),
        }),
        (None, None, None) => None,
        _ => anyhow::bail!("link TLS needs all of --tls-cert, --tls-key and --tls-ca"),
    };
    if let Some(ms) = args.lag_alarm_ms.or(file.lag_alarm_ms) {
        config.lag_alarm_ms = ms;
    }
    if let Some(secs) = args
        .changelog_retention_secs
        .or(file.changelog_retention_secs)
    {
        config.changelog_retention_secs = secs;
    }
    if let Some(secs) = file.bootstrap_wait_secs {
        config.bootstrap_wait_secs = secs;
    }
    if args.no_catch_up_gate || file.catch_up == Some(false) {
        config.catch_up.enabled = false;
    }
    if let Some(ms) = args.catch_up_wait_ms.or(file.catch_up_wait_ms) {
        config.catch_up.wait_ms = ms;
    }
    if let Some(ms) = args.catch_up_lag_ms.or(file.catch_up_lag_ms) {
        config.catch_up.lag_ms = ms;
    }
    if let Some(ms) = args
        .changelog_gc_interval_ms
        .or(file.changelog_gc_interval_ms)
    {
        config.changelog_gc_interval_ms = ms.max(10);
    }
    if let Some(ms) = file.heartbeat_ms {
        config.heartbeat_ms = ms.max(10);
    }
    if let Some(n) = file.window_batches {
        config.outbound.window.max_batches = n.max(1);
    }
    if let Some(n) = file.window_bytes {
        config.outbound.window.max_bytes = n.max(1);
    }
    if let Some(n) = file.batch_entries {
        config.outbound.max_batch_entries = n.max(1);
    }
    config
        .validate()
        .map_err(anyhow::Error::msg)
        .context("replication settings")?;
    Ok(Some(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses_strictly_and_resolves() {
        let text = include_str!("../../../examples/region-replicated.toml");
        let file: crate::region::RegionConfig = toml::from_str(text).expect("example parses");
        let section = file.replication.expect("[replication]");
        let c = resolve("us-east", &ReplicationArgs::default(), Some(&section))
            .expect("valid")
            .expect("replication on");
        assert_eq!(c.peers.len(), 2);
        assert_eq!(c.peers[0].secret, "change-me-to-a-long-random-string");
        assert_eq!(c.peers[1].secret, "a-secret-only-for-the-ap-south-links");
        assert_eq!(c.outbound.max_batch_entries, 512);
        // unknown keys are refused
        let bad = format!("{text}\nbogus = 1\n");
        assert!(toml::from_str::<crate::region::RegionConfig>(&bad).is_err());
        let bad = text.replace("heartbeat_ms", "heartbeat_msec");
        assert!(toml::from_str::<crate::region::RegionConfig>(&bad).is_err());
    }

    #[test]
    fn flags_win_and_secrets_fall_back() {
        let file: ReplicationSection = toml::from_str(
            r#"
            listen = "127.0.0.1:7000"
            secret = "shared"
            [[peers]]
            name = "eu"
            endpoint = "127.0.0.1:7001"
            secret = "eu-only"
            "#,
        )
        .expect("toml");
        let args = ReplicationArgs {
            peers: vec!["eu=127.0.0.1:9001".into(), "ap=127.0.0.1:9002".into()],
            topology: Some("star".into()),
            hub: Some("us".into()),
            ..Default::default()
        };
        let c = resolve("us", &args, Some(&file)).expect("ok").expect("on");
        assert_eq!(c.listen.port(), 7000);
        assert_eq!(c.peers[0].endpoint, "127.0.0.1:9001");
        assert_eq!(c.peers[0].secret, "eu-only");
        assert_eq!(c.peers[1].secret, "shared");
        assert!(
            resolve("us", &ReplicationArgs::default(), None)
                .expect("ok")
                .is_none()
        );
    }
}
