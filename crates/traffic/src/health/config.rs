//! Health-check configuration: one strict struct, units in field names.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// How endpoints are checked. The defaults detect a dead endpoint in about
/// `fall × interval + timeout` = 3 × 250 ms + 200 ms ≈ 1 s, inside the 2 s budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Time between two checks of one endpoint.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// A check not finished within this time fails.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Consecutive failures that turn a healthy endpoint unhealthy.
    #[serde(default = "default_fall")]
    pub fall: u32,
    /// Consecutive successes that turn an unhealthy endpoint healthy again.
    #[serde(default = "default_rise")]
    pub rise: u32,
    /// The endpoints (usually one per region).
    #[serde(default)]
    pub endpoints: Vec<EndpointConfig>,
    /// The CA bundle (PEM) `https://` endpoints' certificates are checked against.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
}

fn default_interval_ms() -> u64 {
    250
}
fn default_timeout_ms() -> u64 {
    200
}
fn default_fall() -> u32 {
    3
}
fn default_rise() -> u32 {
    2
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            interval_ms: default_interval_ms(),
            timeout_ms: default_timeout_ms(),
            fall: default_fall(),
            rise: default_rise(),
            endpoints: Vec::new(),
            ca_file: None,
        }
    }
}

/// One checked endpoint. Exactly one of `http_url` and `tcp_addr` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// The name routing refers to (`health_check = "us-east"`).
    pub name: String,
    /// HTTP check: `GET` this URL (e.g. `http://10.0.0.1:8000/health`); healthy on 2xx.
    #[serde(default)]
    pub http_url: Option<String>,
    /// HTTP check: the response body must also contain this text.
    #[serde(default)]
    pub expect_body: Option<String>,
    /// TCP check: healthy when a connection to `host:port` opens.
    #[serde(default)]
    pub tcp_addr: Option<String>,
}

/// A validated check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// HTTP `GET` returning 2xx (and containing `expect_body`, if set).
    Http {
        /// Parsed URL.
        uri: http::Uri,
        /// Required body substring.
        expect_body: Option<String>,
    },
    /// TCP connect.
    Tcp {
        /// `host:port`.
        addr: String,
    },
}

impl HealthConfig {
    /// The check interval.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }

    /// The check timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Validates thresholds and endpoints, returning each endpoint's check.
    pub fn validate(&self) -> Result<Vec<(String, Check)>, ConfigError> {
        let bad = |m: String| Err(ConfigError::new("health", m));
        if self.interval_ms == 0 || self.timeout_ms == 0 || self.fall == 0 || self.rise == 0 {
            return bad("interval_ms, timeout_ms, fall and rise must be positive".into());
        }
        let mut out: Vec<(String, Check)> = Vec::new();
        for e in &self.endpoints {
            if e.name.is_empty() || out.iter().any(|(n, _)| *n == e.name) {
                return bad(format!("endpoint name {:?} is empty or repeated", e.name));
            }
            let check = match (&e.http_url, &e.tcp_addr) {
                (Some(url), None) => {
                    let uri: http::Uri = url.parse().map_err(|err| {
                        ConfigError::new("health", format!("{}: http_url {url:?}: {err}", e.name))
                    })?;
                    let https = uri.scheme_str() == Some("https");
                    if !(https || uri.scheme_str() == Some("http")) || uri.host().is_none() {
                        return bad(format!(
                            "{}: http_url must be http(s)://host[:port]/path",
                            e.name
                        ));
                    }
                    if https && self.ca_file.is_none() {
                        return bad(format!(
                            "{}: an https:// http_url needs ca_file (the CA bundle to check it against)",
                            e.name
                        ));
                    }
                    Check::Http {
                        uri,
                        expect_body: e.expect_body.clone(),
                    }
                }
                (None, Some(addr)) if e.expect_body.is_none() => Check::Tcp { addr: addr.clone() },
                _ => {
                    return bad(format!(
                        "{}: set exactly one of http_url and tcp_addr (expect_body only with http_url)",
                        e.name
                    ));
                }
            };
            out.push((e.name.clone(), check));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_detect_within_two_seconds() {
        let c = HealthConfig::default();
        assert!(c.fall as u64 * c.interval_ms + c.timeout_ms <= 2000);
    }

    #[test]
    fn parses_and_validates() {
        let c: HealthConfig = toml::from_str(
            r#"
            interval_ms = 100
            [[endpoints]]
            name = "us-east"
            http_url = "http://127.0.0.1:8000/health"
            expect_body = "ok"
            [[endpoints]]
            name = "eu-west"
            tcp_addr = "127.0.0.1:8001"
            "#,
        )
        .expect("parse");
        assert_eq!(
            (c.interval_ms, c.timeout_ms, c.fall, c.rise),
            (100, 200, 3, 2)
        );
        let checks = c.validate().expect("valid");
        assert!(matches!(checks[1].1, Check::Tcp { .. }));
    }

    #[test]
    fn rejects_bad_configs() {
        let cases = [
            "intervall_ms = 5",
            "fall = 0",
            "[[endpoints]]\nname = \"a\"",
            "[[endpoints]]\nname = \"a\"\nhttp_url = \"http://x/\"\ntcp_addr = \"x:1\"",
            "[[endpoints]]\nname = \"a\"\ntcp_addr = \"x:1\"\nexpect_body = \"ok\"",
            "[[endpoints]]\nname = \"a\"\nhttp_url = \"https://x/health\"",
            "[[endpoints]]\nname = \"a\"\ntcp_addr = \"x:1\"\n[[endpoints]]\nname = \"a\"\ntcp_addr = \"x:2\"",
        ];
        for case in cases {
            let parsed = toml::from_str::<HealthConfig>(case);
            assert!(
                parsed.map(|c| c.validate().is_err()).unwrap_or(true),
                "{case}"
            );
        }
    }
}
