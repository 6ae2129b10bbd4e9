//! `sources::parse` of a app payload.
#![no_main]

use domain::model::ids::Source;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|payload: &[u8]| {
    let _ = orderhub_fuzz::parse(Source::App, payload, &[]);
});
