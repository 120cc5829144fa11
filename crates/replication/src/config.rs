//! Membership and link settings of one region, and the strict `[replication]` TOML section.

use crate::outbound::OutboundConfig;
use crate::protocol::batch::check_region_name;
use crate::topology::Topology;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::net::SocketAddr;

/// One peer region.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// The peer's region name.
    pub name: String,
    /// The peer's replication listener, `HOST:PORT` (resolved at each connect).
    pub endpoint: String,
    /// The shared secret of the links with this peer (both directions).
    pub secret: String,
}

impl std::fmt::Debug for PeerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerConfig")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Everything [`crate::start`] needs.
#[derive(Clone, Debug)]
pub struct ReplicationConfig {
    /// This region's name.
    pub region: String,
    /// Where the sync-in listener binds.
    pub listen: SocketAddr,
    /// The other regions.
    pub peers: Vec<PeerConfig>,
    /// Mesh or star.
    pub topology: Topology,
    /// Lag (ms) above which a link raises its alarm flag.
    pub lag_alarm_ms: u64,
    /// Batch and window sizes, ack timeout.
    pub outbound: OutboundConfig,
    /// A quiet link sends a heartbeat this often.
    pub heartbeat_ms: u64,
    /// A link that hears nothing for this long is dropped (and reconnects).
    pub idle_timeout_ms: u64,
    /// First reconnect delay.
    pub backoff_initial_ms: u64,
    /// Longest reconnect delay.
    pub backoff_max_ms: u64,
    /// Change-log entries are kept at least this long (and until every peer acknowledged
    /// them); then garbage collection purges them.
    pub changelog_retention_secs: u64,
    /// How often garbage collection runs.
    pub changelog_gc_interval_ms: u64,
    /// A new region takes its first snapshot once every peer that ships to it has linked to
    /// it (from then on none of them purges what the new region still needs); after this
    /// long it takes it from whichever peer links, even if some never did.
    pub bootstrap_wait_secs: u64,
    /// TLS on every link (mutual, TLS 1.3; `crate::tls`); plaintext without.
    pub tls: Option<crate::tls::TlsFiles>,
    /// Where entries that can never apply are kept (`crate::quarantine`); without it they are
    /// logged, in part, and counted only.
    pub quarantine_dir: Option<std::path::PathBuf>,
    /// The catch-up gate: the region reports `catching_up` after it comes back until it has
    /// applied what its peers held then (`crate::catch_up`).
    pub catch_up: crate::catch_up::CatchUpConfig,
}

impl ReplicationConfig {
    /// Defaults for a region with these peers.
    pub fn new(region: impl Into<String>, listen: SocketAddr, peers: Vec<PeerConfig>) -> Self {
        Self {
            region: region.into(),
            listen,
            peers,
            topology: Topology::Mesh,
            lag_alarm_ms: 5_000,
            outbound: OutboundConfig::default(),
            heartbeat_ms: 500,
            idle_timeout_ms: 10_000,
            backoff_initial_ms: 100,
            backoff_max_ms: 5_000,
            changelog_retention_secs: 3_600,
            changelog_gc_interval_ms: 10_000,
            bootstrap_wait_secs: 60,
            tls: None,
            quarantine_dir: None,
            catch_up: crate::catch_up::CatchUpConfig::default(),
        }
    }

    /// Checks names, duplicates, secrets and the hub.
    pub fn validate(&self) -> Result<(), String> {
        check_region_name(&self.region).map_err(|e| e.to_string())?;
        let mut seen = BTreeSet::new();
        for p in &self.peers {
            check_region_name(&p.name).map_err(|e| e.to_string())?;
            if p.name == self.region {
                return Err(format!("peer {} is this region", p.name));
            }
            if !seen.insert(p.name.as_str()) {
                return Err(format!("peer {} listed twice", p.name));
            }
            if p.secret.is_empty() {
                return Err(format!(
                    "peer {} has no secret (--replication-secret or peers[].secret)",
                    p.name
                ));
            }
            if !p.endpoint.contains(':') {
                return Err(format!("peer {} endpoint must be HOST:PORT", p.name));
            }
        }
        if let Topology::Star { hub } = &self.topology
            && hub != &self.region
            && !seen.contains(hub.as_str())
        {
            return Err(format!("star hub {hub} is neither this region nor a peer"));
        }
        Ok(())
    }

    /// The peer named `name`.
    pub fn peer(&self, name: &str) -> Option<&PeerConfig> {
        self.peers.iter().find(|p| p.name == name)
    }
}

/// The `[replication]` section of `region.toml`.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct ReplicationSection {
    /// Sync-in listener, `HOST:PORT`.
    pub listen: Option<SocketAddr>,
    /// `mesh` (default) or `star`.
    pub topology: Option<String>,
    /// The hub of a star.
    pub hub: Option<String>,
    /// Secret of every peer that does not set its own.
    pub secret: Option<String>,
    /// Lag alarm threshold in milliseconds.
    pub lag_alarm_ms: Option<u64>,
    /// Heartbeat interval in milliseconds.
    pub heartbeat_ms: Option<u64>,
    /// Most unacknowledged batches per link.
    pub window_batches: Option<u32>,
    /// Most unacknowledged bytes per link.
    pub window_bytes: Option<u64>,
    /// Most entries per batch.
    pub batch_entries: Option<usize>,
    /// Keep change-log entries at least this many seconds (default 3600).
    pub changelog_retention_secs: Option<u64>,
    /// Garbage-collection interval in milliseconds (default 10000).
    pub changelog_gc_interval_ms: Option<u64>,
    /// Longest wait of a new region for all its peers before its first snapshot (default 60).
    pub bootstrap_wait_secs: Option<u64>,
    /// Report `catching_up` after coming back until caught up with the peers (default true).
    pub catch_up: Option<bool>,
    /// How long after the start a peer that has not linked yet holds the region back, in
    /// milliseconds (default 6000).
    pub catch_up_wait_ms: Option<u64>,
    /// A link whose lag is at most this many milliseconds counts as caught up (default 0:
    /// only having applied the peer's head at the link counts).
    pub catch_up_lag_ms: Option<u64>,
    /// The peers.
    #[serde(default)]
    pub peers: Vec<PeerSection>,
}

/// One `[[replication.peers]]` entry.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct PeerSection {
    /// Region name.
    pub name: String,
    /// Replication endpoint, `HOST:PORT`.
    pub endpoint: String,
    /// Secret of the links with this peer (defaults to the section's `secret`).
    pub secret: Option<String>,
}

/// Parses `mesh` / `star` (with its hub).
pub fn parse_topology(kind: Option<&str>, hub: Option<&str>) -> Result<Topology, String> {
    match (kind.unwrap_or("mesh"), hub) {
        ("mesh", None) => Ok(Topology::Mesh),
        ("mesh", Some(_)) => Err("--hub only applies to --topology star".into()),
        ("star", Some(h)) => Ok(Topology::Star { hub: h.to_owned() }),
        ("star", None) => Err("--topology star needs --hub NAME".into()),
        (other, _) => Err(format!("unknown topology {other:?} (mesh | star)")),
    }
}

/// Parses a `--peer NAME=HOST:PORT` flag.
pub fn parse_peer_flag(s: &str) -> Result<(String, String), String> {
    let (name, endpoint) = s
        .split_once('=')
        .ok_or_else(|| format!("--peer takes NAME=HOST:PORT, got {s:?}"))?;
    Ok((name.trim().to_owned(), endpoint.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(name: &str) -> PeerConfig {
        PeerConfig {
            name: name.into(),
            endpoint: "127.0.0.1:1".into(),
            secret: "s".into(),
        }
    }

    #[test]
    fn validation() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut c = ReplicationConfig::new("a", addr, vec![peer("b"), peer("c")]);
        assert!(c.validate().is_ok());
        c.topology = Topology::Star { hub: "z".into() };
        assert!(c.validate().is_err());
        c.topology = Topology::Star { hub: "b".into() };
        assert!(c.validate().is_ok());
        c.peers.push(peer("b"));
        assert!(c.validate().is_err());
        let mut c = ReplicationConfig::new("a", addr, vec![peer("a")]);
        assert!(c.validate().is_err());
        c.peers = vec![PeerConfig {
            secret: String::new(),
            ..peer("b")
        }];
        assert!(c.validate().is_err());
        assert!(format!("{:?}", peer("b")).contains("redacted"));
    }

    #[test]
    fn flags() {
        assert_eq!(
            parse_peer_flag("eu=127.0.0.1:9").expect("peer"),
            ("eu".into(), "127.0.0.1:9".into())
        );
        assert!(parse_peer_flag("eu").is_err());
        assert_eq!(parse_topology(None, None), Ok(Topology::Mesh));
        assert_eq!(
            parse_topology(Some("star"), Some("a")),
            Ok(Topology::Star { hub: "a".into() })
        );
        assert!(parse_topology(Some("star"), None).is_err());
        assert!(parse_topology(Some("ring"), None).is_err());
    }
}
