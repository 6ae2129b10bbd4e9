//! The `inbound` queue's wire format: `serde_json::from_str::<InboundMessage>`, then its payload
//! through its source's parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = orderhub_fuzz::inbound_message(bytes);
});
