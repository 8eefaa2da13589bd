//! The gRPC API (package `ssprd.v1`): generated types, the service adapters, and the single
//! mapping from [`ServiceError`] to `tonic::Status` with a `google.rpc.ErrorInfo` detail
//! (domain [`ERROR_DOMAIN`], a machine-readable reason) and a human message.

pub mod registration;
pub mod reset;

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
    match e {
        E::InvalidArgument { reason, .. } => (Code::InvalidArgument, reason),
        E::InvalidCredentials => (Code::Unauthenticated, "INVALID_CREDENTIALS"),
        E::RegistrationTokenInvalid => (Code::Unauthenticated, "REGISTRATION_TOKEN_INVALID"),
        E::FlowInvalid => (Code::NotFound, "FLOW_INVALID"),
        E::NotVerified { .. } => (Code::FailedPrecondition, "METHODS_NOT_VERIFIED"),
        E::TooManyAttempts => (Code::ResourceExhausted, "TOO_MANY_ATTEMPTS"),
        E::Blocked => (Code::ResourceExhausted, "SSPR_BLOCKED"),
        E::PasswordRefused(r) => (Code::InvalidArgument, r.code()),
        E::DirectoryUnavailable => (Code::Unavailable, "DIRECTORY_UNAVAILABLE"),
        E::DirectoryFailed => (Code::Internal, "DIRECTORY_ERROR"),
        E::StoreUnavailable => (Code::Unavailable, "STORE_UNAVAILABLE"),
    }
}

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Self {
        let (code, reason) = code_and_reason(&e);
        let mut details = ErrorDetails::new();
        details.set_error_info(reason, ERROR_DOMAIN, std::collections::HashMap::new());
        if let ServiceError::InvalidArgument { field, message, .. } = &e {
            details.add_bad_request_violation(*field, message.clone());
        }
        Status::with_error_details(code, e.to_string(), details)
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
