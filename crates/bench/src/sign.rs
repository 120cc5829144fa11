//! AWS Signature Version 4 for the requests the load generators send: the header form
//! (`Authorization` + `X-Amz-Date`), signed by `meridian-sigv4` — the code the region server
//! verifies with — plus the request time and a per-day signing-key cache.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// A request time in the two forms SigV4 uses: `YYYYMMDDTHHMMSSZ` and its `YYYYMMDD` prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmzDate(String);

impl AmzDate {
    /// The current UTC time.
    pub fn now() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self::from_unix_secs(secs)
    }

    /// The UTC time `secs` seconds after the Unix epoch.
    pub fn from_unix_secs(secs: u64) -> Self {
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let (y, m, d) = civil_from_days(days);
        Self(format!(
            "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        ))
    }

    /// `YYYYMMDDTHHMMSSZ`, the value of the `X-Amz-Date` header.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `YYYYMMDD`, the date in the credential scope.
    pub fn date(&self) -> &str {
        self.0.get(..8).unwrap_or(&self.0)
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
/// Howard Hinnant's `civil_from_days`, restricted to dates after the epoch.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// The parts of an HTTP request that SigV4 covers.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// Already URI-encoded, e.g. `/`.
    pub path: &'a str,
    /// Already URI-encoded `k=v&k=v`, in any order; empty for none.
    pub query: &'a str,
    /// Every header to sign, `host` and `x-amz-date` included; names in any case.
    pub headers: &'a [(&'a str, &'a str)],
    pub payload: &'a [u8],
}

/// Signs requests for one access key, region and service.
#[derive(Debug)]
pub struct Signer {
    access_key: String,
    secret_key: String,
    region: String,
    service: String,
    /// The signing key of the last date used. The key changes once a day and costs four HMACs
    /// to derive, so it is cached. A `std` mutex is right here: it is never held across an
    /// `.await` and is uncontended (one signer per connection).
    key_cache: Mutex<Option<(String, [u8; 32])>>,
}

/// The SigV4 credentials every load generator signs with (`--access-key`, `--secret-key`,
/// `--signing-region`). The defaults suit Meridian and DynamoDB Local, which accept any key.
#[derive(clap::Args, Debug, Clone)]
pub struct SignArgs {
    /// SigV4 access key id.
    #[arg(long, default_value = "meridian")]
    pub access_key: String,
    /// SigV4 secret access key.
    #[arg(long, default_value = "meridian")]
    pub secret_key: String,
    /// SigV4 signing region.
    #[arg(long, default_value = "us-east-1")]
    pub signing_region: String,
}

impl Default for SignArgs {
    fn default() -> Self {
        Self {
            access_key: "meridian".into(),
            secret_key: "meridian".into(),
            signing_region: "us-east-1".into(),
        }
    }
}

impl SignArgs {
    /// A signer for DynamoDB with these credentials.
    pub fn signer(&self) -> Signer {
        Signer::new(
            &self.access_key,
            &self.secret_key,
            &self.signing_region,
            "dynamodb",
        )
    }
}

impl Signer {
    pub fn new(access_key: &str, secret_key: &str, region: &str, service: &str) -> Self {
        Self {
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            key_cache: Mutex::new(None),
        }
    }

    /// The `Authorization` header value for `req` signed at `date`. `req.headers` must contain
    /// an `x-amz-date` header equal to `date`. The canonical request and signature come from
    /// `meridian-sigv4`, the same code that verifies requests in the region server.
    pub fn authorization(&self, req: &Request<'_>, date: &AmzDate) -> String {
        let headers: Vec<(&str, &[u8])> = req
            .headers
            .iter()
            .map(|(name, value)| (*name, value.as_bytes()))
            .collect();
        let parts = meridian_sigv4::RequestParts {
            method: req.method,
            path: req.path,
            query: req.query,
            headers: &headers,
        };
        let key = self.signing_key(date.date());
        meridian_sigv4::authorization(
            &parts,
            req.payload,
            date.as_str(),
            &meridian_sigv4::Credentials {
                access_key: &self.access_key,
                region: &self.region,
                service: &self.service,
                key: &key,
            },
        )
    }

    fn signing_key(&self, date: &str) -> [u8; 32] {
        // A poisoned cache only means another signing panicked; the cached value is still whole.
        let mut cache = self
            .key_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((cached_date, key)) = cache.as_ref()
            && cached_date == date
        {
            return *key;
        }
        let key = meridian_sigv4::signing_key(&self.secret_key, date, &self.region, &self.service);
        *cache = Some((date.to_owned(), key));
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2015-08-30T12:36:00Z, the time of AWS's SigV4 test suite.
    const SUITE_TIME: u64 = 1_440_938_160;

    fn suite_signer() -> Signer {
        Signer::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "us-east-1",
            "service",
        )
    }

    fn suite_sign(method: &str, query: &str) -> String {
        let date = AmzDate::from_unix_secs(SUITE_TIME);
        let headers = [
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", date.as_str()),
        ];
        let req = Request {
            method,
            path: "/",
            query,
            headers: &headers,
            payload: b"",
        };
        suite_signer().authorization(&req, &date)
    }

    fn suite_authorization(signature: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature={signature}"
        )
    }

    #[test]
    fn formats_the_suite_time() {
        let date = AmzDate::from_unix_secs(SUITE_TIME);
        assert_eq!(date.as_str(), "20150830T123600Z");
        assert_eq!(date.date(), "20150830");
    }

    #[test]
    fn formats_leap_days_and_year_ends() {
        assert_eq!(AmzDate::from_unix_secs(0).as_str(), "19700101T000000Z");
        // 2024-02-29T23:59:59Z
        assert_eq!(
            AmzDate::from_unix_secs(1_709_251_199).as_str(),
            "20240229T235959Z"
        );
        // 2000-12-31T00:00:00Z (a leap century)
        assert_eq!(
            AmzDate::from_unix_secs(978_220_800).as_str(),
            "20001231T000000Z"
        );
    }

    #[test]
    fn matches_aws_get_vanilla() {
        assert_eq!(
            suite_sign("GET", ""),
            suite_authorization("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        );
    }

    #[test]
    fn matches_aws_post_vanilla() {
        assert_eq!(
            suite_sign("POST", ""),
            suite_authorization("5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")
        );
    }

    #[test]
    fn matches_aws_get_vanilla_query_order_key_case() {
        assert_eq!(
            suite_sign("GET", "Param2=value2&Param1=value1"),
            suite_authorization("b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")
        );
    }

    /// A request exactly as the load generator sends it, signed by botocore 1.43
    /// (`SigV4Auth(Credentials("meridian", "meridian"), "dynamodb", "us-east-1")` at
    /// 2026-01-02T03:04:05Z) — the signer DynamoDB's own clients use.
    #[test]
    fn matches_botocore_for_a_dynamodb_request() {
        let date = AmzDate::from_unix_secs(1_767_323_045);
        assert_eq!(date.as_str(), "20260102T030405Z");
        let headers = [
            ("content-type", "application/x-amz-json-1.0"),
            ("host", "127.0.0.1:8000"),
            ("x-amz-date", date.as_str()),
            ("x-amz-target", "DynamoDB_20120810.GetItem"),
        ];
        let req = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            payload: br#"{"TableName":"bench","Key":{"pk":{"S":"k1"}}}"#,
        };
        let signer = Signer::new("meridian", "meridian", "us-east-1", "dynamodb");
        assert_eq!(
            signer.authorization(&req, &date),
            "AWS4-HMAC-SHA256 Credential=meridian/20260102/us-east-1/dynamodb/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
             Signature=8c66d5e4a5cca287c1087c74dbd9c9c7da4aa3fc352f9bf6884389899c5977ed"
        );
    }

    #[test]
    fn cached_key_is_reused_only_for_the_same_date() {
        let signer = suite_signer();
        let a = signer.signing_key("20150830");
        let b = signer.signing_key("20150831");
        assert_ne!(a, b);
        assert_eq!(signer.signing_key("20150830"), a);
    }
}
