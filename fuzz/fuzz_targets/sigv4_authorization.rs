//! The SigV4 `Authorization` header, and a whole request's verification with arbitrary
//! header values: every input is refused with a SigV4 error or accepted, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meridian_sigv4::{KeyStore, RequestParts, parse_authorization, verify};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_authorization(&text);
    // The same bytes as the header of a request to a server holding one key.
    let mut keys = KeyStore::new();
    keys.insert("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    let (auth, date) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"20150830T123600Z"[..]),
    };
    let headers: Vec<(&str, &[u8])> = vec![
        ("authorization", auth),
        ("x-amz-date", date),
        ("host", b"example.amazonaws.com"),
    ];
    let req = RequestParts {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
    };
    let _ = verify(&req, b"{}", &keys, 1_440_938_160, "dynamodb");
});
