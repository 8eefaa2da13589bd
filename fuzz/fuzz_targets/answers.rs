//! Answer normalisation is idempotent and length-checked without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ssprd::method::questions::{normalise, normalise_checked};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let once = normalise(&s);
    let twice = normalise(once.expose());
    assert_eq!(once.expose(), twice.expose(), "normalisation is idempotent");
    assert!(!once.expose().starts_with(' ') && !once.expose().ends_with(' '));
    let _ = normalise_checked(&s);
});
