//! Email and phone parsing: never panics; accepted values are stable under a second pass
//! and mask without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ssprd::method::contact::{ContactKind, mask, normalise};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    for kind in [ContactKind::Email, ContactKind::Mobile, ContactKind::Office] {
        if let Ok(v) = normalise(kind, &s) {
            assert_eq!(normalise(kind, &v).as_deref(), Ok(v.as_str()), "stable");
            if kind != ContactKind::Email {
                assert!(v.starts_with('+') && v[1..].bytes().all(|b| b.is_ascii_digit()));
            }
            let _ = mask(kind, &v);
        }
    }
});
