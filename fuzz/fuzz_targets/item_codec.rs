//! The binary item codec (on disk and between regions): arbitrary bytes must decode or fail
//! cleanly, and what decodes must re-encode to bytes that decode to the same item.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meridian_model::codec::{decode_item, item_to_bytes};

fuzz_target!(|data: &[u8]| {
    if let Ok(item) = decode_item(data) {
        let bytes = item_to_bytes(&item);
        assert_eq!(decode_item(&bytes).ok(), Some(item));
    }
});
