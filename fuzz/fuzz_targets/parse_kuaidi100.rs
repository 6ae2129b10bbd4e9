//! `sources::parse` of a kuaidi100 payload, with the callback URL's query (which names the order).
#![no_main]

use domain::model::ids::Source;
use libfuzzer_sys::fuzz_target;
use orderhub_fuzz::QueryPayload;

fuzz_target!(|input: QueryPayload<'_>| {
    let _ = orderhub_fuzz::parse(Source::Kuaidi100, input.payload, &input.query());
});
