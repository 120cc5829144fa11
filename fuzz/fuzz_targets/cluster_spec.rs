//! The cluster spec (what `meridian apply` and the control plane accept): any text is refused
//! with a positioned error or accepted, never a panic; an accepted spec also derives every
//! role's configuration and splits into its public part and secrets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meridian_control::{dns_config, gateway_config, parse_spec, region_plan, store::redact};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = parse_spec(text) else {
        return;
    };
    for r in &spec.regions {
        let _ = region_plan(&spec, &r.name);
    }
    let _ = dns_config(&spec);
    let _ = gateway_config(&spec);
    let (public, _) = redact(text).expect("a valid spec is valid TOML");
    assert!(parse_spec(&public).is_ok(), "the served part of a valid spec parses");
});
