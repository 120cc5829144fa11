//! Known-good signatures: cases from AWS's SigV4 test suite (`AKIDEXAMPLE`, 2015-08-30
//! 12:36:00 UTC, `us-east-1`, service `service`) and DynamoDB requests signed by botocore 1.43.

use meridian_sigv4::{KeyStore, RequestParts, SigV4Error, Verified, verify};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const NOW: u64 = 1_440_938_160; // 20150830T123600Z
const HOST: (&str, &str) = ("Host", "example.amazonaws.com");
const DATE: (&str, &str) = ("X-Amz-Date", "20150830T123600Z");
const DDB_HOST: (&str, &str) = ("Host", "dynamodb.us-east-1.amazonaws.com");
const DDB_BODY: &str = r#"{"TableName":"Music","Key":{"Artist":{"S":"No One You Know"}}}"#;
const DDB_JSON: (&str, &str) = ("Content-Type", "application/x-amz-json-1.0");
const DDB_TARGET: (&str, &str) = ("X-Amz-Target", "DynamoDB_20120810.GetItem");
const STS_TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
const HL: &str = "host;x-amz-date";

struct Vector {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    query: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    service: &'static str,
    signed: &'static str,
    signature: &'static str,
}

const fn v(name: &'static str, method: &'static str, signature: &'static str) -> Vector {
    Vector {
        name,
        method,
        path: "/",
        query: "",
        headers: &[HOST, DATE],
        body: "",
        service: "service",
        signed: HL,
        signature,
    }
}

fn vectors() -> Vec<Vector> {
    vec![
        v(
            "get-vanilla",
            "GET",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        v(
            "post-vanilla",
            "POST",
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        ),
        Vector {
            headers: &[
                ("HOST", "example.amazonaws.com"),
                ("x-AMZ-date", "20150830T123600Z"),
            ],
            ..v(
                "post-header-key-case",
                "POST",
                "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            )
        },
        Vector {
            query: "Param2=value2&Param1=value1",
            ..v(
                "get-vanilla-query-order-key-case",
                "GET",
                "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            )
        },
        Vector {
            query: "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            ..v(
                "get-vanilla-query-unreserved",
                "GET",
                "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
            )
        },
        Vector {
            query: "%E1%88%B4=bar",
            ..v(
                "get-vanilla-utf8-query",
                "GET",
                "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
            )
        },
        Vector {
            query: "Param1=value1",
            ..v(
                "post-vanilla-query",
                "POST",
                "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
            )
        },
        Vector {
            query: "%40%23%24%25%5E=&%2B=%2F%2C%3F%3E%3C%60%22%3B%3A%5C%7C%5D%5B%7B%7D",
            ..v(
                "post-vanilla-query-nonunreserved",
                "POST",
                "66c82657c86e26fb25238d0e69f011edc4c6df5ae71119d7cb98ed9b87393c1e",
            )
        },
        Vector {
            path: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            ..v(
                "get-unreserved",
                "GET",
                "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
            )
        },
        // The suite signs the decoded path; a real request would carry `/%E1%88%B4`.
        Vector {
            path: "/ሴ",
            ..v(
                "get-utf8",
                "GET",
                "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
            )
        },
        Vector {
            headers: &[
                HOST,
                ("My-Header1", "value2"),
                ("My-Header1", "value2"),
                ("My-Header1", "value1"),
                DATE,
            ],
            signed: "host;my-header1;x-amz-date",
            ..v(
                "get-header-key-duplicate",
                "GET",
                "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
            )
        },
        Vector {
            headers: &[
                HOST,
                ("My-Header1", "value4"),
                ("My-Header1", "value1"),
                ("My-Header1", "value3"),
                ("My-Header1", "value2"),
                DATE,
            ],
            signed: "host;my-header1;x-amz-date",
            ..v(
                "get-header-value-order",
                "GET",
                "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
            )
        },
        Vector {
            headers: &[
                HOST,
                ("My-Header1", " value1"),
                ("My-Header2", " \"a   b   c\""),
                DATE,
            ],
            signed: "host;my-header1;my-header2;x-amz-date",
            ..v(
                "get-header-value-trim",
                "GET",
                "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
            )
        },
        Vector {
            headers: &[HOST, ("My-Header1", "VALUE1"), DATE],
            signed: "host;my-header1;x-amz-date",
            ..v(
                "post-header-value-case",
                "POST",
                "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
            )
        },
        Vector {
            headers: &[HOST, DATE, ("X-Amz-Security-Token", STS_TOKEN)],
            signed: "host;x-amz-date;x-amz-security-token",
            ..v(
                "post-sts-header-before",
                "POST",
                "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
            )
        },
        Vector {
            headers: &[HOST, DATE, ("X-Amz-Security-Token", STS_TOKEN)],
            ..v(
                "post-sts-header-after",
                "POST",
                "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            )
        },
        Vector {
            headers: &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                HOST,
                DATE,
            ],
            body: "Param1=value1",
            signed: "content-type;host;x-amz-date",
            ..v(
                "post-x-www-form-urlencoded",
                "POST",
                "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
            )
        },
        Vector {
            headers: &[DDB_JSON, DDB_TARGET, DATE, DDB_HOST],
            body: DDB_BODY,
            service: "dynamodb",
            signed: "content-type;host;x-amz-date;x-amz-target",
            ..v(
                "dynamodb-get-item",
                "POST",
                "8f7f881da342a2248a8974230730e2272147514a723fde369cef9cba47a72208",
            )
        },
        Vector {
            headers: &[
                DDB_JSON,
                DDB_TARGET,
                DATE,
                ("X-Amz-Security-Token", "FQoGZXIvYXdzEXAMPLETOKEN"),
                DDB_HOST,
            ],
            body: DDB_BODY,
            service: "dynamodb",
            signed: "content-type;host;x-amz-date;x-amz-security-token;x-amz-target",
            ..v(
                "dynamodb-get-item-session-token",
                "POST",
                "e52d13d88bb42657007a0e1f4f34ddd7d36103195ccef09fcf83d6d489807fae",
            )
        },
    ]
}

fn check(vector: &Vector, body: &[u8], secret: &str) -> Result<Verified, SigV4Error> {
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/{}/aws4_request, \
         SignedHeaders={}, Signature={}",
        vector.service, vector.signed, vector.signature
    );
    let mut headers: Vec<(&str, &[u8])> = vector
        .headers
        .iter()
        .map(|(n, v)| (*n, v.as_bytes()))
        .collect();
    headers.push(("Authorization", authorization.as_bytes()));
    let req = RequestParts {
        method: vector.method,
        path: vector.path,
        query: vector.query,
        headers: &headers,
    };
    let mut keys = KeyStore::new();
    keys.insert("AKIDEXAMPLE", secret);
    verify(&req, body, &keys, NOW, vector.service)
}

#[test]
fn every_vector_verifies() {
    for vector in vectors() {
        let verified = check(&vector, vector.body.as_bytes(), SECRET);
        let expected = Verified::Verified {
            access_key: "AKIDEXAMPLE".into(),
        };
        assert_eq!(verified, Ok(expected), "{}", vector.name);
    }
}

#[test]
fn every_vector_fails_with_another_body_or_secret() {
    for vector in vectors() {
        let body = format!("{} ", vector.body);
        let mismatch = Err(SigV4Error::SignatureDoesNotMatch);
        assert_eq!(
            check(&vector, body.as_bytes(), SECRET),
            mismatch,
            "{}",
            vector.name
        );
        let wrong = check(
            &vector,
            vector.body.as_bytes(),
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEz",
        );
        assert_eq!(wrong, mismatch, "{}", vector.name);
    }
}
