//! Every way `verify` refuses a request, with the `__type` and message DynamoDB would send, and
//! a fuzz-style property that no input makes it panic.

use meridian_sigv4::{KeyStore, RequestParts, SigV4Error, Verified, parse_authorization, verify};
use proptest::prelude::*;

const NOW: u64 = 1_440_938_160; // 20150830T123600Z
const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/dynamodb/aws4_request, \
    SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
    Signature=8f7f881da342a2248a8974230730e2272147514a723fde369cef9cba47a72208";
const BODY: &[u8] = br#"{"TableName":"Music","Key":{"Artist":{"S":"No One You Know"}}}"#;
const MISMATCH: &str = "The request signature we calculated does not match the signature you \
    provided. Check your AWS Secret Access Key and signing method. \
    Consult the service documentation for details.";

/// A botocore-signed GetItem, with `changes` applied: `Some` replaces or adds, `None` removes.
fn verify_with(
    changes: &[(&str, Option<&str>)],
    keys: &KeyStore,
    now: u64,
) -> Result<Verified, SigV4Error> {
    let mut headers = vec![
        ("Content-Type", "application/x-amz-json-1.0"),
        ("X-Amz-Target", "DynamoDB_20120810.GetItem"),
        ("X-Amz-Date", "20150830T123600Z"),
        ("Host", "dynamodb.us-east-1.amazonaws.com"),
        ("Authorization", AUTH),
    ];
    for (name, value) in changes {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        if let Some(value) = value {
            headers.push((name, value));
        }
    }
    let headers: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
    let req = RequestParts {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
    };
    verify(&req, BODY, keys, now, meridian_sigv4::DYNAMODB)
}

fn keys() -> KeyStore {
    let mut keys = KeyStore::new();
    keys.insert("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    keys
}

/// Runs `verify_with` and returns `(code, message)` of the error.
fn refuse(changes: &[(&str, Option<&str>)], now: u64) -> (&'static str, String) {
    let err = verify_with(changes, &keys(), now).expect_err("request must be refused");
    assert_eq!(
        (err.namespace(), err.status()),
        ("com.amazon.coral.service#", 400)
    );
    (err.code(), err.to_string())
}

fn auth(s: &str) -> [(&str, Option<&str>); 1] {
    [("Authorization", Some(s))]
}

#[test]
fn the_unchanged_request_verifies() {
    let verified = verify_with(&[], &keys(), NOW).expect("valid");
    assert_eq!(
        verified,
        Verified::Verified {
            access_key: "AKIDEXAMPLE".into()
        }
    );
    assert_eq!(verified.access_key(), "AKIDEXAMPLE");
    assert_eq!(
        format!("{:?}", keys()),
        r#"{"AKIDEXAMPLE"}"#,
        "Debug must not show secrets"
    );
}

#[test]
fn missing_authorization() {
    let expected = (
        "MissingAuthenticationTokenException",
        "Request is missing Authentication Token".into(),
    );
    assert_eq!(refuse(&[("Authorization", None)], NOW), expected);
}

#[test]
fn incomplete_authorization() {
    let incomplete = |changes: &[(&str, Option<&str>)], message: &str| {
        assert_eq!(
            refuse(changes, NOW),
            ("IncompleteSignatureException", message.to_owned())
        );
    };
    incomplete(
        &[
            ("Authorization", Some("AWS4-HMAC-SHA256")),
            ("X-Amz-Date", None),
        ],
        "Authorization header requires 'Credential' parameter. \
         Authorization header requires 'Signature' parameter. \
         Authorization header requires 'SignedHeaders' parameter. \
         Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    );
    incomplete(
        &[("X-Amz-Date", None)],
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    );
    incomplete(
        &auth("Basic dXNlcjpwYXNz"),
        "Invalid key=value pair (missing equal-sign) in Authorization header",
    );
    incomplete(
        &auth(
            "AWS4-HMAC-SHA512 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, Signature=0",
        ),
        "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'",
    );
    incomplete(
        &auth(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/dynamodb, SignedHeaders=host, Signature=0",
        ),
        "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, \
         got 'AKIDEXAMPLE/20150830/us-east-1/dynamodb'",
    );
    incomplete(
        &[("X-Amz-Date", Some("2015-08-30T12:36:00Z"))],
        "Date must be in ISO-8601 'basic format'. Got '2015-08-30T12:36:00Z'. \
         See http://en.wikipedia.org/wiki/ISO_8601",
    );
    incomplete(
        &auth(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/dynamodb/aws4_request, SignedHeaders=x-amz-date, Signature=0",
        ),
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
    );
}

#[test]
fn unknown_access_key() {
    let other = AUTH.replace("AKIDEXAMPLE", "AKIDOTHER");
    let expected = (
        "UnrecognizedClientException",
        "The security token included in the request is invalid.".into(),
    );
    assert_eq!(refuse(&auth(&other), NOW), expected);
}

#[test]
fn invalid_signature() {
    let invalid = |changes: &[(&str, Option<&str>)], now: u64, message: &str| {
        assert_eq!(
            refuse(changes, now),
            ("InvalidSignatureException", message.to_owned())
        );
    };
    invalid(&auth(&AUTH.replace("8f7f", "9f7f")), NOW, MISMATCH);
    invalid(&auth(&AUTH.replace("8f7f881d", "8F7F881D")), NOW, MISMATCH);
    invalid(
        &[("X-Amz-Target", Some("DynamoDB_20120810.DeleteItem"))],
        NOW,
        MISMATCH,
    );
    invalid(&[("X-Amz-Target", None)], NOW, MISMATCH);
    // A signature made for another service (here a valid one: only the scope is wrong).
    invalid(
        &auth(&AUTH.replace("/dynamodb/", "/s3/")),
        NOW,
        "Credential should be scoped to correct service: 'dynamodb'. ",
    );
    invalid(
        &auth(&AUTH.replace("aws4_request", "aws5_request")),
        NOW,
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'.",
    );
    invalid(
        &[("X-Amz-Date", Some("20150831T000100Z"))],
        NOW + 11 * 3600,
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
         '20150830' != '20150831', from '20150831T000100Z'.",
    );
    invalid(
        &[],
        NOW + 16 * 60,
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123700Z \
         (20150830T125200Z - 15 min.)",
    );
    invalid(
        &[],
        NOW - 16 * 60,
        "Signature not yet current: 20150830T123600Z is still later than 20150830T123500Z \
         (20150830T122000Z + 15 min.)",
    );
}

#[test]
fn fifteen_minutes_either_way_is_still_current() {
    for now in [NOW - 15 * 60, NOW + 15 * 60] {
        assert!(verify_with(&[], &keys(), now).is_ok(), "{now}");
    }
}

#[test]
fn an_empty_key_store_accepts_any_well_formed_request() {
    let open = KeyStore::new();
    let forged = AUTH
        .replace("AKIDEXAMPLE", "anyone")
        .replace("8f7f", "0000");
    let verified = verify_with(&auth(&forged), &open, u64::MAX);
    assert_eq!(
        verified,
        Ok(Verified::Open {
            access_key: "anyone".into()
        })
    );
    for changes in [
        vec![("Authorization", None)],
        vec![("X-Amz-Date", None)],
        auth("AWS4-HMAC-SHA256 x").to_vec(),
    ] {
        assert!(verify_with(&changes, &open, NOW).is_err(), "{changes:?}");
    }
}

proptest! {
    #[test]
    fn parse_authorization_never_panics(value in any::<String>(), tail in "[ ,=/;a-zA-Z0-9]{0,80}") {
        let _ = parse_authorization(&value);
        let _ = parse_authorization(&format!("AWS4-HMAC-SHA256 {tail}"));
    }

    #[test]
    fn verify_never_panics(
        headers in proptest::collection::vec(("[a-zA-Z-]{0,16}", proptest::collection::vec(any::<u8>(), 0..40)), 0..8),
        credential in prop_oneof![Just("AKIDEXAMPLE/20150830/r/s/aws4_request".to_owned()), "[A-Za-z0-9/_]{0,40}"],
        signed in prop_oneof![Just("host;x-amz-date".to_owned()), "[a-z;-]{0,30}"],
        date in prop_oneof![Just("20150830T123600Z".to_owned()), "[0-9TZ]{0,18}"],
        path in any::<String>(),
        query in any::<String>(),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        now in prop_oneof![Just(NOW), any::<u64>()],
    ) {
        let authorization = format!("AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={signed}, Signature=00");
        let mut all: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
        all.push(("authorization", authorization.as_bytes()));
        all.push(("x-amz-date", date.as_bytes()));
        let req = RequestParts { method: "POST", path: &path, query: &query, headers: &all };
        for store in [KeyStore::new(), keys()] {
            let _ = verify(&req, &body, &store, now, "dynamodb");
            let _ = verify(&RequestParts { headers: &all[..headers.len()], ..req }, &body, &store, now, "dynamodb");
        }
    }
}
