//! Every request message decodes from arbitrary bytes without panicking, and the
//! validators the API applies to its fields (login, tokens, new password) never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use prost::Message;
use ssprd::api::pb;
use ssprd::secret::Secret;
use ssprd::service::{check_login, check_new_password, token_hash};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = pb::StartResetRequest::decode(data) {
        let _ = check_login(&r.username);
    }
    if let Ok(r) = pb::VerifyMethodRequest::decode(data) {
        let _ = token_hash(&r.flow_id, "flow_id");
    }
    if let Ok(r) = pb::CompleteResetRequest::decode(data) {
        let _ = token_hash(&r.flow_id, "flow_id");
        let _ = check_new_password(&Secret::new(r.new_password));
    }
    let _ = pb::BeginRegistrationRequest::decode(data);
    let _ = pb::SetSecurityQuestionsRequest::decode(data);
    let _ = pb::AddContactRequest::decode(data);
    let _ = pb::SendCodeRequest::decode(data);
    let _ = pb::GetPasswordPolicyRequest::decode(data);
});
