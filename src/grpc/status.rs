//! The one mapping of the crate's [`Error`] to gRPC status codes: no
//! wildcard arm, so a new variant does not compile until it is mapped. Bad
//! fields travel as `google.rpc.BadRequest` field violations.

use tonic_types::{ErrorDetails, StatusExt};

use crate::error::Error;

impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        let message = err.to_string();
        match err {
            Error::InvalidArgument(violations) => {
                let mut details = ErrorDetails::new();
                for v in &violations {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
                tonic::Status::with_error_details(tonic::Code::InvalidArgument, message, details)
            }
            Error::NotFound(_) => tonic::Status::not_found(message),
            Error::Overloaded(_) | Error::StorageFull(_) => {
                tonic::Status::resource_exhausted(message)
            }
            Error::Unavailable(_) => tonic::Status::unavailable(message),
            Error::Conflict(_) => tonic::Status::aborted(message),
            Error::Unauthenticated(_) => tonic::Status::unauthenticated(message),
            Error::PermissionDenied(_) => tonic::Status::permission_denied(message),
            Error::Model(_)
            | Error::Storage(_)
            | Error::Index(_)
            | Error::Io(_)
            | Error::Internal(_) => tonic::Status::internal(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_field_details() {
        let status: tonic::Status = Error::invalid("top_k", "must be at most 100").into();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let details = status.get_error_details();
        let bad = details.bad_request().expect("bad request details");
        assert_eq!(bad.field_violations[0].field, "top_k");
    }

    #[test]
    fn codes() {
        let code = |e: Error| tonic::Status::from(e).code();
        assert_eq!(code(Error::NotFound("x".into())), tonic::Code::NotFound);
        assert_eq!(
            code(Error::Overloaded("x".into())),
            tonic::Code::ResourceExhausted
        );
        assert_eq!(
            code(Error::Unavailable("x".into())),
            tonic::Code::Unavailable
        );
        assert_eq!(code(Error::Conflict("x".into())), tonic::Code::Aborted);
        assert_eq!(code(Error::Internal("x".into())), tonic::Code::Internal);
        assert_eq!(code(Error::Storage("x".into())), tonic::Code::Internal);
        assert_eq!(
            code(Error::StorageFull("x".into())),
            tonic::Code::ResourceExhausted
        );
        assert_eq!(
            code(Error::Unauthenticated("x".into())),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            code(Error::PermissionDenied("x".into())),
            tonic::Code::PermissionDenied
        );
    }
}
