//! The admin plane's credential.
//!
//! Every endpoint other than the DynamoDB API and the health, metrics and ID endpoints is an
//! admin endpoint: a region's `/admin/*` (change log, anti-entropy, replication status and fault
//! hooks, drain), the control plane's API, the DNS server's and the gateway's admin ports and
//! `meridian up`'s admin API. They read every item, write around SigV4, hand out secrets and
//! move traffic, so none of them is anonymous:
//!
//! - a component given an [`AdminToken`] (a file only its owner may read, `--admin-token-file`)
//!   answers an admin request only when it carries `Authorization: Bearer <token>`, compared in
//!   constant time;
//! - a component given none answers admin requests from loopback clients only, and says so when
//!   it starts ([`AdminGuard::LoopbackOnly`]) — a development setting, never a network one.
//!
//! `meridian up` creates one token for its cluster (`DIR/secrets/admin-token`, mode 0600), hands
//! its path to every component it starts and records it in `cluster.json`, where the operator
//! commands find it. `docs/security.md` draws the whole trust boundary.

mod http;

pub use http::{protect, require_admin};

use std::fmt;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Environment variable naming the admin token file (the flags' fallback).
pub const TOKEN_FILE_ENV: &str = "MERIDIAN_ADMIN_TOKEN_FILE";

/// Shortest token accepted from a file.
const MIN_TOKEN_CHARS: usize = 16;

/// Why a token file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Reading or creating the file failed.
    #[error("admin token file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Others may read the file (as Garage refuses a readable `rpc_secret_file`).
    #[error(
        "admin token file {path} may be read by other users (mode {mode:o}); make it the owner's only: chmod 600 {path}"
    )]
    Readable {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file holds too short a token.
    #[error("admin token file {path} holds no token of at least {MIN_TOKEN_CHARS} characters")]
    TooShort {
        /// The file.
        path: PathBuf,
    },
}

/// The operator token. Its `Debug` form never shows it.
pub struct AdminToken {
    secret: String,
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    /// Reads a token file: one line, at least 16 characters, readable by its owner only.
    pub fn load(path: &Path) -> Result<AdminToken, TokenError> {
        let io = |source| TokenError::Io {
            path: path.to_owned(),
            source,
        };
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(TokenError::Readable {
                path: path.to_owned(),
                mode: mode & 0o777,
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let secret = text.trim();
        if secret.len() < MIN_TOKEN_CHARS || secret.contains(char::is_whitespace) {
            return Err(TokenError::TooShort {
                path: path.to_owned(),
            });
        }
        Ok(AdminToken {
            secret: secret.to_owned(),
        })
    }

    /// Reads the token file, or creates it (mode 0600, 32 random bytes in hex, its directory
    /// mode 0700) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<AdminToken, TokenError> {
        if path.exists() {
            return AdminToken::load(path);
        }
        let io = |source| TokenError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        let mut bytes = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut bytes);
        let secret = hex::encode(bytes);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        writeln!(f, "{secret}").map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok(AdminToken { secret })
    }

    /// The `Authorization` header value that proves it.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.secret)
    }

    /// Whether an `Authorization` header value is this token's bearer header (constant time in
    /// the token's bytes).
    pub fn matches(&self, authorization: &[u8]) -> bool {
        let Some(given) = authorization.strip_prefix(b"Bearer ") else {
            return false;
        };
        given.ct_eq(self.secret.as_bytes()).into()
    }
}

/// Why an admin request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// A token is configured and the request carries none.
    #[error("this is an admin endpoint: send Authorization: Bearer <admin token>")]
    NoToken,
    /// The request carries another token.
    #[error("wrong admin token")]
    WrongToken,
    /// No token is configured and the client is not on a loopback address.
    #[error(
        "no admin token is configured (--admin-token-file): admin endpoints answer loopback clients only"
    )]
    NotLoopback,
}

impl Denied {
    /// The HTTP status of the refusal.
    pub fn status(self) -> u16 {
        match self {
            Denied::NoToken | Denied::WrongToken => 401,
            Denied::NotLoopback => 403,
        }
    }
}

/// `--admin-token-file`, shared by every component that serves admin endpoints.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct AdminTokenArg {
    /// The cluster's admin token (a file only its owner may read): the admin endpoints
    /// require it, and it is presented to the other components. Without one, admin endpoints
    /// answer loopback clients only.
    #[arg(long, env = TOKEN_FILE_ENV)]
    pub admin_token_file: Option<PathBuf>,
}

impl AdminTokenArg {
    /// Who may call the component's admin endpoints.
    pub fn guard(&self) -> Result<AdminGuard, TokenError> {
        AdminGuard::from_file(self.admin_token_file.as_deref())
    }
}

/// Who may call a component's admin endpoints.
#[derive(Clone, Debug, Default)]
pub enum AdminGuard {
    /// Callers that present this token.
    Token(Arc<AdminToken>),
    /// Callers on a loopback address (no token configured).
    #[default]
    LoopbackOnly,
}

impl AdminGuard {
    /// The guard of a component given a token file (`--admin-token-file`, which reads
    /// [`TOKEN_FILE_ENV`] too); without one, loopback only, logged as a warning.
    pub fn from_file(path: Option<&Path>) -> Result<AdminGuard, TokenError> {
        match path {
            Some(p) => Ok(AdminGuard::Token(Arc::new(AdminToken::load(p)?))),
            None => {
                tracing::warn!(
                    "no admin token configured (--admin-token-file): admin endpoints answer loopback clients only"
                );
                Ok(AdminGuard::LoopbackOnly)
            }
        }
    }

    /// The token, if one is configured (clients of other components present it too).
    pub fn token(&self) -> Option<&Arc<AdminToken>> {
        match self {
            AdminGuard::Token(t) => Some(t),
            AdminGuard::LoopbackOnly => None,
        }
    }

    /// Decides one admin request from its `Authorization` header and its client's address.
    pub fn check(
        &self,
        authorization: Option<&[u8]>,
        client: Option<IpAddr>,
    ) -> Result<(), Denied> {
        match self {
            AdminGuard::Token(t) => match authorization {
                None => Err(Denied::NoToken),
                Some(h) if t.matches(h) => Ok(()),
                Some(_) => Err(Denied::WrongToken),
            },
            AdminGuard::LoopbackOnly if client.is_some_and(|ip| ip.is_loopback()) => Ok(()),
            AdminGuard::LoopbackOnly => Err(Denied::NotLoopback),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_token_is_private_and_checked_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secrets").join("admin-token");
        let t = AdminToken::load_or_create(&path).expect("created");
        let mode = std::fs::metadata(&path).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = AdminToken::load_or_create(&path).expect("read back");
        assert_eq!(t.bearer(), again.bearer());
        let guard = AdminGuard::Token(Arc::new(t));
        let remote = Some(IpAddr::from([10, 0, 0, 7]));
        assert_eq!(guard.check(Some(again.bearer().as_bytes()), remote), Ok(()));
        assert_eq!(guard.check(None, remote), Err(Denied::NoToken));
        let mut wrong = again.bearer();
        wrong.pop();
        wrong.push('x');
        assert_eq!(
            guard.check(Some(wrong.as_bytes()), remote),
            Err(Denied::WrongToken)
        );
        let bare = again.bearer().replace("Bearer ", "");
        assert_eq!(
            guard.check(Some(bare.as_bytes()), remote),
            Err(Denied::WrongToken)
        );
        // a token is required even from loopback
        let local = Some(IpAddr::from([127, 0, 0, 1]));
        assert_eq!(guard.check(None, local), Err(Denied::NoToken));
        assert!(!format!("{:?}", guard).contains(&bare));
    }

    #[test]
    fn a_token_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "0123456789abcdef0123\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = AdminToken::load(&path).expect_err("world-readable");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(AdminToken::load(&path).is_ok());
        std::fs::write(&path, "short\n").expect("write");
        assert!(matches!(
            AdminToken::load(&path),
            Err(TokenError::TooShort { .. })
        ));
    }

    #[test]
    fn without_a_token_only_loopback_clients_pass() {
        let g = AdminGuard::LoopbackOnly;
        assert_eq!(g.check(None, Some(IpAddr::from([127, 0, 2, 1]))), Ok(()));
        assert_eq!(g.check(None, Some("::1".parse().expect("ip"))), Ok(()));
        assert_eq!(
            g.check(None, Some(IpAddr::from([192, 168, 1, 2]))),
            Err(Denied::NotLoopback)
        );
        assert_eq!(g.check(None, None), Err(Denied::NotLoopback));
    }
}
