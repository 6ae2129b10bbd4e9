//! An API Gateway v2 event (JSON) through webhook-verify's `incoming` and `route`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| orderhub_fuzz::http::incoming(bytes));
