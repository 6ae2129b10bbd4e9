//! `sources::open` of a youzan callback (arbitrary or correctly signed), then `parse` of what opened.
#![no_main]

use domain::model::ids::Source;
use libfuzzer_sys::fuzz_target;
use orderhub_fuzz::CallbackInput;

fuzz_target!(|input: CallbackInput<'_>| {
    let _ = orderhub_fuzz::open(Source::Youzan, &input);
});
