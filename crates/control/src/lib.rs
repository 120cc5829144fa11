//! Meridian's control plane: one declarative place to describe a cluster, which the data plane
//! can live without.
//!
//! - [`spec`]: the cluster spec (strict TOML) — regions with addresses and coordinates,
//!   topology, link latencies, tables, DNS, gateway pinning, health checks, secrets.
//! - [`validate`]: parsing with positions ([`parse_spec`]) and semantic checks.
//! - [`changes`]: what a new version asks of a running cluster — live, or refused by `apply`
//!   with the field and what it takes.
//! - [`derive`]: spec → each role's config (`DnsConfig`, `GatewayConfig`, a [`RegionPlan`]).
//! - [`store`] and [`server`]: every applied spec is a new numbered, fsynced version, served
//!   over HTTP with the versions components report.
//! - [`agent`]: the config agent each role runs — poll, apply, persist, report, and start from
//!   the persisted version when the control plane is away (static stability).
//! - [`client`]: the typed HTTP client the agents, operator commands and tests use.
//! - [`cluster_file`]: `cluster.json`, where a running local cluster keeps its processes.
//!
//! The control plane depends on the roles' config types (it derives them); no role depends on
//! it — the binary wires an agent into each role.

pub mod agent;
pub mod changes;
pub mod client;
pub mod cluster_file;
pub mod derive;
pub mod error;
pub mod server;
pub mod spec;
pub mod store;
pub mod validate;

pub use agent::{AgentOptions, Applied, ConfigAgent, ConfigStatus, Source};
pub use client::{ControlClient, Http, HttpResponse, Report};
pub use derive::{RegionPlan, dns_config, gateway_config, region_plan};
pub use error::{ControlError, SpecError};
pub use server::{ControlState, router, serve};
pub use spec::ClusterSpec;
pub use store::{SpecStore, StoredSpec};
pub use validate::{parse_spec, validate};
