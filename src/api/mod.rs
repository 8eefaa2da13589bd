//! The gRPC API (package `ssprd.v1`): generated types, the service adapters
//! ([`registration`], [`reset`], [`admin`]), client roles ([`auth`]), the checks of every
//! request's wire format ([`wire`]), and the single mapping
//! from [`ServiceError`] to `tonic::Status` with a `google.rpc.ErrorInfo` detail (domain
//! [`ERROR_DOMAIN`], a machine-readable reason) and a human message.

pub mod admin;
pub mod auth;
pub mod registration;
pub mod reset;
pub mod wire;

use crate::service::ServiceError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Generated protobuf and tonic code.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("ssprd.v1");
}

/// Encoded descriptor set of the protos, for the reflection service.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/ssprd_descriptor.bin"));

/// `ErrorInfo.domain` of every error ssprd returns.
pub const ERROR_DOMAIN: &str = "ssprd";

/// The gRPC code and machine-readable reason of each service error.
pub fn code_and_reason(e: &ServiceError) -> (Code, &'static str) {
    use ServiceError as E;
    let code = match e {
        E::InvalidArgument { .. }
        | E::CodeInvalid
        | E::PasswordRefused(_)
        | E::PasswordRules(_)
        | E::InvalidPolicy(_) => Code::InvalidArgument,
        E::InvalidCredentials | E::RegistrationTokenInvalid => Code::Unauthenticated,
        E::SignInPaused { .. } => Code::ResourceExhausted,
        E::FlowInvalid | E::UserNotFound => Code::NotFound,
        E::NotVerified(_)
        | E::MethodNotEnabled(_)
        | E::MethodNotAvailable
        | E::DeliveryRefused
        | E::DeliveryNotConfigured
        | E::NothingToConfirm(_)
        | E::CodeExpired
        | E::NotInScope
        | E::AlreadyCompleted => Code::FailedPrecondition,
        E::DeliveryUnavailable
        | E::DirectoryUnavailable
        | E::OutcomePending
        | E::StoreUnavailable => Code::Unavailable,
        E::TooManyCodes
        | E::SendsThrottled { .. }
        | E::VerificationsInProgress
        | E::TooManyAttempts
        | E::Blocked { .. }
        | E::ClientRateLimited => Code::ResourceExhausted,
        E::DirectoryFailed => Code::Internal,
        E::PolicyConflict(_) | E::Contended => Code::Aborted,
    };
    (code, e.reason())
}

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Self {
        let (code, reason) = code_and_reason(&e);
        let mut details = ErrorDetails::new();
        details.set_error_info(reason, ERROR_DOMAIN, std::collections::HashMap::new());
        if let ServiceError::InvalidArgument { field, message, .. } = &e {
            details.add_bad_request_violation(*field, message.clone());
        }
        let retry = match &e {
            ServiceError::SendsThrottled { retry_after_secs } => Some(*retry_after_secs),
            ServiceError::SignInPaused { retry_after_secs } => *retry_after_secs,
            ServiceError::VerificationsInProgress => Some(1),
            ServiceError::Blocked { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        if let Some(secs) = retry {
            details.set_retry_info(Some(std::time::Duration::from_secs(secs)));
        }
        if let ServiceError::InvalidPolicy(problems) = &e {
            for (field, why) in problems {
                details.add_bad_request_violation(format!("policy.{field}"), why.clone());
            }
        }
        Status::with_error_details(code, e.to_string(), details)
    }
}

/// A status with `ErrorInfo` (domain [`ERROR_DOMAIN`], `reason`) — and a `BadRequest`
/// violation of `field`, when given — for errors that are not the service's (the wire
/// checks, deadlines).
pub fn status(code: Code, reason: &str, field: Option<&str>, message: String) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, ERROR_DOMAIN, std::collections::HashMap::new());
    if let Some(field) = field {
        details.add_bad_request_violation(field, message.clone());
    }
    Status::with_error_details(code, message, details)
}

/// The proto enum value of a method.
pub(crate) fn method_pb(m: crate::method::Method) -> pb::Method {
    use crate::method::Method as M;
    match m {
        M::SecurityQuestions => pb::Method::SecurityQuestions,
        M::Email => pb::Method::Email,
        M::MobileSms => pb::Method::MobileSms,
        M::MobileVoice => pb::Method::MobileVoice,
        M::OfficeVoice => pb::Method::OfficeVoice,
        M::AuthenticatorCode => pb::Method::AuthenticatorCode,
    }
}

/// The method of a proto enum value; INVALID_ARGUMENT for unknown or unsupported values.
pub(crate) fn method_from_pb(field: &'static str, v: i32) -> Result<crate::method::Method, Status> {
    use crate::method::Method as M;
    match pb::Method::try_from(v) {
        Ok(pb::Method::SecurityQuestions) => Ok(M::SecurityQuestions),
        Ok(pb::Method::Email) => Ok(M::Email),
        Ok(pb::Method::MobileSms) => Ok(M::MobileSms),
        Ok(pb::Method::MobileVoice) => Ok(M::MobileVoice),
        Ok(pb::Method::OfficeVoice) => Ok(M::OfficeVoice),
        Ok(pb::Method::AuthenticatorCode) => Ok(M::AuthenticatorCode),
        _ => Err(invalid(field, "METHOD_INVALID", "not a supported method")),
    }
}

/// A request-shape error (before the service layer is reached).
pub(crate) fn invalid(field: &'static str, reason: &'static str, message: &str) -> Status {
    ServiceError::InvalidArgument {
        field,
        reason,
        message: message.to_string(),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use prost::Message;

    fn messages() -> Vec<(String, Vec<String>)> {
        let fds = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET).unwrap();
        fds.file
            .iter()
            .filter(|f| f.package() == "ssprd.v1")
            .flat_map(|f| f.message_type.iter())
            .map(|m| {
                (
                    m.name().to_string(),
                    m.field.iter().map(|f| f.name().to_string()).collect(),
                )
            })
            .collect()
    }

    /// Security item 10: after StartReset, requests carry the flow id, never a username;
    /// item 18: no request carries a client-supplied time.
    #[test]
    fn later_steps_take_no_username_and_no_request_takes_a_time() {
        let msgs = messages();
        for name in [
            "SendCodeRequest",
            "VerifyMethodRequest",
            "CompleteResetRequest",
            "UnlockAccountRequest",
        ] {
            let (_, fields) = msgs.iter().find(|(n, _)| n == name).expect(name);
            assert!(fields.contains(&"flow_id".to_string()), "{name}");
            for f in fields {
                assert!(
                    !["username", "user", "login", "dn"].contains(&f.as_str()),
                    "{name}.{f}"
                );
            }
        }
        for (name, fields) in msgs.iter().filter(|(n, _)| n.ends_with("Request")) {
            for f in fields {
                assert!(
                    !(f.contains("time") || f.ends_with("_at")),
                    "{name}.{f}: requests must not carry a client time"
                );
            }
        }
    }
}
