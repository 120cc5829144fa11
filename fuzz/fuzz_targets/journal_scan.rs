//! The engine's journal as Meridian reads it before opening (a damaged disk is hostile input):
//! any bytes are scanned without a panic, and damage is never reported past the data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meridian_storage::journal::scan;

fuzz_target!(|data: &[u8]| {
    let s = scan(data);
    if let Some((offset, _)) = s.bad {
        assert!(offset <= data.len() as u64);
    }
});
