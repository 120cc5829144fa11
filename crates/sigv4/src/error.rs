//! Why a request failed authentication, as DynamoDB names it on the wire.

/// Every way a request can fail SigV4 verification.
///
/// Each variant is one DynamoDB `__type` (see [`SigV4Error::code`]); the `Display` text is the
/// `message` DynamoDB sends, so the API layer can map any variant to the wire in one place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// No `Authorization` header at all.
    #[error("Request is missing Authentication Token")]
    MissingAuthenticationToken,
    /// The `Authorization` header or `X-Amz-Date` is missing a part or is malformed.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The access key id is not in the key store.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// The signature is well formed but does not match the one we computed.
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. \
         Consult the service documentation for details."
    )]
    SignatureDoesNotMatch,
    /// The request is outside the 15-minute window, or its credential scope is wrong.
    #[error("{0}")]
    InvalidSignature(String),
}

impl SigV4Error {
    /// The short DynamoDB error code, the part of `__type` after `#`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            Self::IncompleteSignature(_) => "IncompleteSignatureException",
            Self::UnrecognizedClient => "UnrecognizedClientException",
            Self::SignatureDoesNotMatch | Self::InvalidSignature(_) => "InvalidSignatureException",
        }
    }

    /// The namespace DynamoDB puts before [`code`](Self::code) in `__type`.
    pub fn namespace(&self) -> &'static str {
        "com.amazon.coral.service#"
    }

    pub(crate) fn incomplete(message: &str) -> Self {
        Self::IncompleteSignature(message.to_owned())
    }

    /// The HTTP status DynamoDB answers with; 400 for every authentication failure.
    pub fn status(&self) -> u16 {
        400
    }
}

#[cfg(test)]
mod tests {
    use super::SigV4Error;

    #[test]
    fn every_variant_maps_to_a_dynamodb_type() {
        let cases = [
            (
                SigV4Error::MissingAuthenticationToken,
                "MissingAuthenticationTokenException",
            ),
            (
                SigV4Error::IncompleteSignature("x".into()),
                "IncompleteSignatureException",
            ),
            (
                SigV4Error::UnrecognizedClient,
                "UnrecognizedClientException",
            ),
            (
                SigV4Error::SignatureDoesNotMatch,
                "InvalidSignatureException",
            ),
            (
                SigV4Error::InvalidSignature("x".into()),
                "InvalidSignatureException",
            ),
        ];
        for (err, code) in cases {
            assert_eq!(err.code(), code);
            assert_eq!(err.namespace(), "com.amazon.coral.service#");
            assert_eq!(err.status(), 400);
        }
        assert_eq!(
            SigV4Error::SignatureDoesNotMatch.to_string(),
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. \
             Consult the service documentation for details."
        );
    }
}
