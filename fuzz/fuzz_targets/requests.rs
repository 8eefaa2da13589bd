//! Every request message decodes from arbitrary bytes without panicking; the validators the
//! API applies to its fields (login, tokens, new password) never panic; and the wire check
//! (`api::wire`) refuses every message the generated decoders refuse, so a malformed request
//! is INVALID_ARGUMENT before any service's decoder could answer INTERNAL.
#![no_main]
use libfuzzer_sys::fuzz_target;
use prost::Message;
use ssprd::api::{pb, wire::Methods};
use ssprd::secret::Secret;
use ssprd::service::{check_login, check_new_password, token_hash};
use std::sync::LazyLock;

static METHODS: LazyLock<Methods> = LazyLock::new(Methods::served);

/// Decodes `data` as `T`; if that fails, the wire check for `path` must fail too.
fn same_verdict<T: Message + Default>(path: &str, data: &[u8]) -> Option<T> {
    let decoded = T::decode(data).ok();
    let checked = METHODS.check_message(path, data).expect(path);
    if decoded.is_none() {
        assert!(checked.is_err(), "{path}: the wire check passed what prost refuses");
    }
    decoded
}

fuzz_target!(|data: &[u8]| {
    if let Some(r) = same_verdict::<pb::StartResetRequest>("/ssprd.v1.ResetService/StartReset", data) {
        let _ = check_login(&r.username);
    }
    if let Some(r) =
        same_verdict::<pb::VerifyMethodRequest>("/ssprd.v1.ResetService/VerifyMethod", data)
    {
        let _ = token_hash(&r.flow_id, "flow_id");
    }
    if let Some(r) =
        same_verdict::<pb::CompleteResetRequest>("/ssprd.v1.ResetService/CompleteReset", data)
    {
        let _ = token_hash(&r.flow_id, "flow_id");
        let _ = check_new_password(&Secret::new(r.new_password));
    }
    same_verdict::<pb::BeginRegistrationRequest>(
        "/ssprd.v1.RegistrationService/BeginRegistration",
        data,
    );
    same_verdict::<pb::SetSecurityQuestionsRequest>(
        "/ssprd.v1.RegistrationService/SetSecurityQuestions",
        data,
    );
    same_verdict::<pb::AddContactRequest>("/ssprd.v1.RegistrationService/AddContact", data);
    same_verdict::<pb::SendCodeRequest>("/ssprd.v1.ResetService/SendCode", data);
    same_verdict::<pb::GetPasswordPolicyRequest>("/ssprd.v1.ResetService/GetPasswordPolicy", data);
    same_verdict::<pb::UpdatePolicyRequest>("/ssprd.v1.AdminService/UpdatePolicy", data);
    same_verdict::<pb::QueryAuditRequest>("/ssprd.v1.AdminService/QueryAudit", data);
});
