//! The crate's one error type, and its one exhaustive mapping to gRPC status
//! codes (no wildcard arm: a new variant does not compile until mapped).

use tonic_types::{ErrorDetails, StatusExt};

/// A bad field in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The request is malformed; each violation names its field.
    #[error("invalid request: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    #[error("not found: {0}")]
    NotFound(String),
    /// Too much work in flight: the client should back off and retry.
    #[error("overloaded: {0}")]
    Overloaded(String),
    /// Not ready yet, or shutting down.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// No valid credentials were presented.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The credentials do not allow this call.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The request's deadline passed before it finished.
    #[error("deadline exceeded")]
    DeadlineExceeded,
    /// The model files or ONNX Runtime failed.
    #[error("model: {0}")]
    Model(String),
    /// The embedded database failed.
    #[error("storage: {0}")]
    Storage(String),
    /// The vector index failed or disagrees with the store.
    #[error("index: {0}")]
    Index(String),
    #[error("io: {0}")]
    Io(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn describe(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// One bad field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Self::Io(err.to_string())
    }
}

macro_rules! storage_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(err: $t) -> Self {
                Self::Storage(err.to_string())
            }
        }
    )*};
}
storage_errors!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

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
            Error::Overloaded(_) => tonic::Status::resource_exhausted(message),
            Error::Unavailable(_) => tonic::Status::unavailable(message),
            Error::DeadlineExceeded => tonic::Status::deadline_exceeded(message),
            Error::Unauthenticated(_) => tonic::Status::unauthenticated(message),
            Error::PermissionDenied(_) => tonic::Status::permission_denied(message),
            Error::Model(_) | Error::Storage(_) | Error::Index(_) | Error::Io(_) => {
                tonic::Status::internal(message)
            }
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
        assert_eq!(code(Error::DeadlineExceeded), tonic::Code::DeadlineExceeded);
        assert_eq!(code(Error::Storage("x".into())), tonic::Code::Internal);
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
