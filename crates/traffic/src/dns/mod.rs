//! The policy DNS server's data: its config and the compiled zones that answer a query from
//! the routing policies and a health snapshot.

pub mod config;
pub mod zone;

pub use config::{DnsConfig, RecordKind, RecordSetConfig, SoaConfig, ZoneConfig};
pub use zone::{Answer, Zones};
