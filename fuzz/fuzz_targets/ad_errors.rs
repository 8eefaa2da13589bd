//! AD refusal texts and bind data codes decode to a fixed reason without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ssprd::directory::active_directory::{bind_outcome, refusal_reason};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let r = refusal_reason(&text);
    assert!(!r.code().is_empty() && !r.message().is_empty());
    let _ = bind_outcome(&text);
});
