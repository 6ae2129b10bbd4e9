//! `sources::parse` of a jd row pulled by order-sync (a `PulledPayload`: the row in its envelope).
#![no_main]

use domain::model::ids::Source;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|payload: &[u8]| {
    let _ = orderhub_fuzz::parse(Source::Jd, payload, &[]);
});
