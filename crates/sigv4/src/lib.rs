//! AWS Signature Version 4 for DynamoDB JSON-protocol requests: verification of incoming
//! requests, and signing of outgoing ones (the load generators and drills) with the same
//! canonical request, so the two can never disagree.
//!
//! A pure crate: no sockets, no clock, no async. The API layer hands [`verify`] the request's
//! method, path, query, headers and body plus the current time, and gets back who signed it or
//! a [`SigV4Error`] that already is a DynamoDB error (`__type`, message, HTTP status). Clients
//! derive a key with [`signing_key`] (once a day) and call [`authorization`].
//!
//! - [`parse_authorization`] reads the `Authorization` header.
//! - [`KeyStore`] maps access key ids to secrets. An empty store means "open" mode, like
//!   DynamoDB Local: any well-formed signed request is accepted without checking the signature.
//! - [`verify`] checks, in AWS's order: the header is complete, the key is known, the credential
//!   scope date matches `X-Amz-Date`, the request is within 15 minutes of now, and the signature
//!   matches (compared in constant time).
//!
//! The payload hash is always computed from the body received; a client that signed
//! `UNSIGNED-PAYLOAD` (never the case for DynamoDB SDKs) fails the signature check.

mod amz_date;
mod authorization;
mod canonical;
mod error;

use std::collections::BTreeMap;
use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use authorization::{ALGORITHM, Authorization, parse_authorization};
pub use error::SigV4Error;

/// How far `X-Amz-Date` may be from the server's clock, either way (DynamoDB's window).
pub const MAX_SKEW_SECS: i64 = 15 * 60;

const DATE_MISSING: &str =
    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.";
const HOST_NOT_SIGNED: &str =
    "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.";

/// The parts of an HTTP request that SigV4 signs, borrowed from whatever HTTP stack carries it.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// `POST` for DynamoDB.
    pub method: &'a str,
    /// The path as received on the wire (still percent-encoded); `/` for DynamoDB.
    pub path: &'a str,
    /// The raw query string without `?`; empty for DynamoDB.
    pub query: &'a str,
    /// Every header in arrival order; names in any case, a name may repeat.
    pub headers: &'a [(&'a str, &'a [u8])],
}

impl<'a> RequestParts<'a> {
    /// The first value of the header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// Access key id → secret access key. `Debug` shows key ids only, never secrets.
#[derive(Clone, Default)]
pub struct KeyStore {
    secrets: BTreeMap<String, String>,
}

impl KeyStore {
    /// An empty store: [`verify`] runs in open mode.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces the secret of `access_key`.
    pub fn insert(&mut self, access_key: impl Into<String>, secret: impl Into<String>) {
        self.secrets.insert(access_key.into(), secret.into());
    }

    /// True when no key is configured, i.e. signatures are not checked.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    fn secret(&self, access_key: &str) -> Option<&str> {
        self.secrets.get(access_key).map(String::as_str)
    }
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.secrets.keys()).finish()
    }
}

/// Who made a request that passed [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// The key store is empty; the signature was not checked.
    Open {
        /// The access key id the client claimed.
        access_key: String,
    },
    /// The signature was checked against the key's secret.
    Verified {
        /// The access key id that signed the request.
        access_key: String,
    },
}

impl Verified {
    /// The access key id, checked or not.
    pub fn access_key(&self) -> &str {
        match self {
            Self::Open { access_key } | Self::Verified { access_key } => access_key,
        }
    }
}

/// The service DynamoDB requests are signed for: what the region server passes to [`verify`].
pub const DYNAMODB: &str = "dynamodb";

/// Verifies the SigV4 signature of a request whose body is `body`, at `now_unix_secs`; its
/// credential scope must name `service` (a signature for another service is refused, as
/// DynamoDB refuses it).
///
/// With an empty `keys`, only checks that `Authorization` parses and `X-Amz-Date` is present.
pub fn verify(
    req: &RequestParts<'_>,
    body: &[u8],
    keys: &KeyStore,
    now_unix_secs: u64,
    service: &str,
) -> Result<Verified, SigV4Error> {
    let header = req
        .header("authorization")
        .ok_or(SigV4Error::MissingAuthenticationToken)?;
    let amz_date = req.header("x-amz-date");
    let auth = match parse_authorization(&String::from_utf8_lossy(header)) {
        Ok(auth) => auth,
        // AWS reports a missing date together with missing parameters.
        Err(SigV4Error::IncompleteSignature(msg)) if amz_date.is_none() => {
            return Err(SigV4Error::IncompleteSignature(format!(
                "{msg} {DATE_MISSING}"
            )));
        }
        Err(err) => return Err(err),
    };
    let amz_date = amz_date.ok_or_else(|| SigV4Error::incomplete(DATE_MISSING))?;
    if keys.is_empty() {
        return Ok(Verified::Open {
            access_key: auth.access_key,
        });
    }

    let amz_date = String::from_utf8_lossy(amz_date);
    let amz_date = amz_date.trim();
    let request_time = amz_date::parse(amz_date).ok_or_else(|| {
        SigV4Error::IncompleteSignature(format!(
            "Date must be in ISO-8601 'basic format'. Got '{amz_date}'. \
             See http://en.wikipedia.org/wiki/ISO_8601"
        ))
    })?;
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(SigV4Error::incomplete(HOST_NOT_SIGNED));
    }
    let secret = keys
        .secret(&auth.access_key)
        .ok_or(SigV4Error::UnrecognizedClient)?;
    if auth.service != service {
        return Err(SigV4Error::InvalidSignature(format!(
            "Credential should be scoped to correct service: '{service}'. "
        )));
    }
    let day = amz_date.get(..8).unwrap_or(amz_date);
    if auth.date != day {
        return Err(SigV4Error::InvalidSignature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '{}' != '{day}', from '{amz_date}'.",
            auth.date
        )));
    }
    check_skew(
        request_time,
        i64::try_from(now_unix_secs).unwrap_or(i64::MAX),
    )?;

    let payload_hash = hex::encode(Sha256::digest(body));
    let canonical = canonical::canonical_request(req, &auth.signed_headers, &payload_hash)
        .ok_or(SigV4Error::SignatureDoesNotMatch)?;
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{}\n{}",
        auth.scope(),
        hex::encode(Sha256::digest(&canonical))
    );
    let key = signing_key(secret, &auth.date, &auth.region, &auth.service);
    let expected = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    if bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        Ok(Verified::Verified {
            access_key: auth.access_key,
        })
    } else {
        Err(SigV4Error::SignatureDoesNotMatch)
    }
}

/// Rejects a request more than [`MAX_SKEW_SECS`] away from `now`, with AWS's wording.
fn check_skew(request_time: i64, now: i64) -> Result<(), SigV4Error> {
    let (earliest, latest) = (
        now.saturating_sub(MAX_SKEW_SECS),
        now.saturating_add(MAX_SKEW_SECS),
    );
    let (stamp, minutes) = (amz_date::format, MAX_SKEW_SECS / 60);
    if request_time < earliest {
        return Err(SigV4Error::InvalidSignature(format!(
            "Signature expired: {} is now earlier than {} ({} - {minutes} min.)",
            stamp(request_time),
            stamp(earliest),
            stamp(now)
        )));
    }
    if request_time > latest {
        return Err(SigV4Error::InvalidSignature(format!(
            "Signature not yet current: {} is still later than {} ({} + {minutes} min.)",
            stamp(request_time),
            stamp(latest),
            stamp(now)
        )));
    }
    Ok(())
}

/// The signing key of a day (`date` = `YYYYMMDD`), region and service:
/// `HMAC("AWS4" + secret, date) → region → service → "aws4_request"`. Four HMACs; a client
/// derives it once per day and reuses it.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// What a client signs with: its access key id, the credential scope and that scope's key.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    /// Access key id.
    pub access_key: &'a str,
    /// Region of the scope (DynamoDB's `us-east-1`, …).
    pub region: &'a str,
    /// Service of the scope (`dynamodb`).
    pub service: &'a str,
    /// [`signing_key`] of `amz_date`'s day, `region` and `service`.
    pub key: &'a [u8; 32],
}

/// The `Authorization` header value for `req` with `payload`, signed at `amz_date`
/// (`YYYYMMDDTHHMMSSZ`, which must also be the request's `x-amz-date` header). Every header of
/// `req` is signed (`host` and `x-amz-date` must be among them). The canonical request is the
/// one [`verify`] rebuilds.
pub fn authorization(
    req: &RequestParts<'_>,
    payload: &[u8],
    amz_date: &str,
    creds: &Credentials<'_>,
) -> String {
    let mut signed: Vec<String> = req
        .headers
        .iter()
        .map(|(name, _)| name.to_ascii_lowercase())
        .collect();
    signed.sort();
    signed.dedup();
    let payload_hash = hex::encode(Sha256::digest(payload));
    // Every name in `signed` comes from `req.headers`, so the canonical request always exists.
    let canonical = canonical::canonical_request(req, &signed, &payload_hash).unwrap_or_default();
    let scope = format!(
        "{}/{}/{}/aws4_request",
        amz_date.get(..8).unwrap_or(amz_date),
        creds.region,
        creds.service
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(&canonical))
    );
    let signature = hex::encode(hmac(creds.key, string_to_sign.as_bytes()));
    format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
        creds.access_key,
        signed.join(";")
    )
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC hashes over-long keys and pads short ones, so every key length is valid.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}
