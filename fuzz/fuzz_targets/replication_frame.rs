//! A replication frame as it arrives on a link, before and after authentication: decoding and,
//! for a batch, opening it (decompression, entry decoding, the order and origin checks) must
//! fail cleanly or succeed, never panic; a decoded frame re-encodes to one that decodes alike.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meridian_replication::Topology;
use meridian_replication::protocol::{Frame, batch, frame};

fuzz_target!(|data: &[u8]| {
    let Ok(f) = frame::decode(data) else {
        return;
    };
    if let Ok(bytes) = frame::encode(&f) {
        assert!(frame::decode(&bytes).is_ok());
    }
    if let Frame::Batch(b) = &f
        && let Ok(opened) = batch::open(b, "receiver")
    {
        let _ = batch::check_origins(&opened.entries, &Topology::Mesh, "sender", "receiver");
    }
});
