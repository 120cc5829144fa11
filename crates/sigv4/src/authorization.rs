//! Parsing the `Authorization` header of a SigV4-signed request.

use crate::SigV4Error;

/// The only signing algorithm DynamoDB accepts.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The fixed last element of a SigV4 credential scope.
const TERMINATOR: &str = "aws4_request";

/// A parsed `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The access key id, the first element of `Credential`.
    pub access_key: String,
    /// The scope date, `YYYYMMDD`.
    pub date: String,
    /// The region the client signed for.
    pub region: String,
    /// The service the client signed for (`dynamodb` for real clients).
    pub service: String,
    /// The signed header names, lower-cased, in the order the client listed them.
    pub signed_headers: Vec<String>,
    /// The hex signature the client sent.
    pub signature: String,
}

impl Authorization {
    /// The credential scope, `date/region/service/aws4_request`, as it appears in the string to sign.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/{TERMINATOR}",
            self.date, self.region, self.service
        )
    }
}

/// Parses an `Authorization` header value.
///
/// Parameters may be separated by commas, spaces or both; unknown parameters are ignored and the
/// first occurrence of a repeated one wins. Errors carry the messages AWS sends.
pub fn parse_authorization(value: &str) -> Result<Authorization, SigV4Error> {
    let value = value.trim();
    let (algorithm, params) = value
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((value, ""));

    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    let is_separator = |c: char| c == ',' || c.is_ascii_whitespace();
    for pair in params.split(is_separator).filter(|p| !p.is_empty()) {
        let Some((key, val)) = pair.split_once('=') else {
            return Err(SigV4Error::incomplete(
                "Invalid key=value pair (missing equal-sign) in Authorization header",
            ));
        };
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        slot.get_or_insert(val);
    }

    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        // AWS lists the missing parameters in this order.
        let missing = [
            ("Credential", credential.is_none()),
            ("Signature", signature.is_none()),
            ("SignedHeaders", signed_headers.is_none()),
        ]
        .into_iter()
        .filter(|(_, absent)| *absent)
        .map(|(name, _)| format!("Authorization header requires '{name}' parameter."))
        .collect::<Vec<_>>();
        return Err(SigV4Error::IncompleteSignature(missing.join(" ")));
    };
    if algorithm != ALGORITHM {
        return Err(SigV4Error::IncompleteSignature(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'"
        )));
    }

    let parts = credential.split('/').collect::<Vec<_>>();
    let [access_key, date, region, service, terminator] = parts.as_slice() else {
        return Err(SigV4Error::IncompleteSignature(format!(
            "Credential must have exactly 5 slash-delimited elements, \
             e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    };
    if *terminator != TERMINATOR {
        return Err(SigV4Error::InvalidSignature(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'."
        )));
    }

    Ok(Authorization {
        access_key: (*access_key).to_owned(),
        date: (*date).to_owned(),
        region: (*region).to_owned(),
        service: (*service).to_owned(),
        signed_headers: signed_headers
            .split(';')
            .map(str::to_ascii_lowercase)
            .collect(),
        signature: signature.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_sdk_header() {
        let auth = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/dynamodb/aws4_request, \
             SignedHeaders=Host;x-amz-date, Signature=abc",
        )
        .expect("valid header");
        assert_eq!(auth.access_key, "AKID");
        assert_eq!(auth.scope(), "20150830/us-east-1/dynamodb/aws4_request");
        assert_eq!(auth.signed_headers, ["host", "x-amz-date"]);
        assert_eq!(auth.signature, "abc");
    }

    #[test]
    fn accepts_bare_commas_and_ignores_unknown_parameters() {
        let auth = parse_authorization(
            "AWS4-HMAC-SHA256 Foo=bar,Credential=A/d/r/s/aws4_request,SignedHeaders=host,Signature=s",
        )
        .expect("valid header");
        assert_eq!((auth.region.as_str(), auth.service.as_str()), ("r", "s"));
    }

    #[test]
    fn names_every_missing_parameter_like_aws() {
        let err = parse_authorization("AWS4-HMAC-SHA256 SignedHeaders=host").expect_err("missing");
        assert_eq!(
            err.to_string(),
            "Authorization header requires 'Credential' parameter. \
             Authorization header requires 'Signature' parameter."
        );
    }
}
