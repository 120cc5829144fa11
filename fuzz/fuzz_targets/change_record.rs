//! A change-log record (stored in the log, shipped inside batches): both decoders fail cleanly
//! or decode, and what decodes re-encodes to a record that decodes to the same change.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meridian_storage::record::{decode_change, decode_received_change, encode_change};

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = decode_change(7, data) {
        assert_eq!(decode_change(7, &encode_change(&e)).ok(), Some(e));
    }
    let _ = decode_received_change(7, data);
});
