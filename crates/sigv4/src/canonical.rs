//! The SigV4 canonical request: the exact bytes a client hashed before signing.
//!
//! ```text
//! METHOD \n canonical URI \n canonical query \n name:value \n … \n \n signed;headers \n payload hash
//! ```

use crate::RequestParts;

/// Builds the canonical request over `signed_headers` (lower-case names).
///
/// `None` if a signed header is absent from the request: the client cannot have signed it.
pub(crate) fn canonical_request(
    req: &RequestParts<'_>,
    signed_headers: &[String],
    payload_hash: &str,
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(req.method.as_bytes());
    out.push(b'\n');
    if req.path.is_empty() {
        out.push(b'/');
    }
    // Services other than S3 sign the path as the client saw it, encoded once more: a path
    // that arrives as `/a%20b` was signed as `/a%2520b`. DynamoDB only ever uses `/`.
    encode_into(req.path.as_bytes(), true, &mut out);
    out.push(b'\n');
    canonical_query_into(req.query, &mut out);
    out.push(b'\n');
    for name in signed_headers {
        let mut values = req
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .peekable();
        values.peek()?;
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        for (i, (_, value)) in values.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            canonical_value_into(value, &mut out);
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(signed_headers.join(";").as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    Some(out)
}

/// Trims a header value and collapses each run of whitespace inside it to one space.
fn canonical_value_into(value: &[u8], out: &mut Vec<u8>) {
    let words = value
        .split(u8::is_ascii_whitespace)
        .filter(|w| !w.is_empty());
    for (i, word) in words.enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(word);
    }
}

/// Decodes then re-encodes each `name=value` pair (so any client spelling of an escape signs
/// the same), sorts the pairs by name then value, and joins them with `&`.
fn canonical_query_into(query: &str, out: &mut Vec<u8>) {
    let mut pairs = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let mut encoded = (Vec::new(), Vec::new());
            encode_into(&percent_decode(name), false, &mut encoded.0);
            encode_into(&percent_decode(value), false, &mut encoded.1);
            encoded
        })
        .collect::<Vec<_>>();
    pairs.sort();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(name);
        out.push(b'=');
        out.extend_from_slice(value);
    }
}

/// SigV4 URI encoding: every byte but `A-Z a-z 0-9 - _ . ~` (and `/` if `keep_slash`) becomes
/// `%XX` with upper-case hex.
fn encode_into(bytes: &[u8], keep_slash: bool, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b);
        } else {
            out.push(b'%');
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xF)]);
        }
    }
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits is kept as it is.
fn percent_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if let (b'%', [hi, lo, after @ ..]) = (b, tail)
            && let (Some(hi), Some(lo)) = (hex_value(*hi), hex_value(*lo))
        {
            out.push(hi << 4 | lo);
            rest = after;
            continue;
        }
        out.push(b);
        rest = tail;
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(path: &str, query: &str, headers: &[(&str, &[u8])], signed: &[&str]) -> String {
        let req = RequestParts {
            method: "POST",
            path,
            query,
            headers,
        };
        let signed = signed.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let bytes = canonical_request(&req, &signed, "HASH").expect("headers present");
        String::from_utf8(bytes).expect("utf-8")
    }

    #[test]
    fn matches_the_suite_post_x_www_form_urlencoded() {
        let headers: &[(&str, &[u8])] = &[
            ("Content-Type", b"application/x-www-form-urlencoded"),
            ("Host", b"example.amazonaws.com"),
            ("X-Amz-Date", b"20150830T123600Z"),
        ];
        let signed = ["content-type", "host", "x-amz-date"];
        assert_eq!(
            canonical("/", "", headers, &signed),
            "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\n\
             host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
             content-type;host;x-amz-date\nHASH"
        );
    }

    #[test]
    fn trims_collapses_and_joins_header_values() {
        let headers: &[(&str, &[u8])] = &[("a", b"  x \t  y "), ("A", b"z"), ("b", b"")];
        assert_eq!(
            canonical("", "", headers, &["a", "b"]),
            "POST\n/\n\na:x y,z\nb:\n\na;b\nHASH"
        );
    }

    #[test]
    fn encodes_path_and_normalises_query() {
        let query = "b=2&a=%7e%2B+&a=1&&c&%zz=%";
        assert_eq!(
            canonical("/a b/ሴ%20", query, &[], &[]),
            "POST\n/a%20b/%E1%88%B4%2520\n%25zz=%25&a=1&a=~%2B%2B&b=2&c=\n\n\nHASH"
        );
    }

    #[test]
    fn refuses_a_signed_header_that_is_absent() {
        let req = RequestParts {
            method: "POST",
            path: "/",
            query: "",
            headers: &[("host", b"h")],
        };
        assert_eq!(canonical_request(&req, &["x-amz-target".into()], "h"), None);
    }
}
