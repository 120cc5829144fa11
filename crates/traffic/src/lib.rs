//! The traffic plane's decisions, as plain data and pure functions.
//!
//! - [`health`]: the health checker's config, the up/down hysteresis and the shared snapshot
//!   the DNS server and the gateway read.
//! - [`dns`]: the policy DNS server's config and its compiled zones (query → answer).
//! - [`gateway`]: the gateway's config, what a request is ([`gateway::operation`]) and where
//!   it may go ([`gateway::plan`]).
//!
//! The servers (`meridian-health`, `meridian-dns`, `meridian-gateway`) add the sockets; the
//! control plane, the drills and the cluster benchmarks use this crate alone, so they depend
//! on the traffic plane's data, never on its servers.

pub mod dns;
pub mod gateway;
pub mod health;

/// A traffic role's configuration is invalid; `role` names it (`health`, `dns`, `gateway`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{role} config: {message}")]
pub struct ConfigError {
    /// The role whose configuration this is.
    pub role: &'static str,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(role: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            role,
            message: message.into(),
        }
    }
}
