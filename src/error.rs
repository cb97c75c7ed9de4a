//! The crate's one error type. Each transport maps it exhaustively (no
//! wildcard arm: a new variant does not compile until mapped); the gRPC
//! mapping is `grpc::status`.

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
    /// The model files or ONNX Runtime failed.
    #[error("model: {0}")]
    Model(String),
    /// The embedded database failed.
    #[error("storage: {0}")]
    Storage(String),
    /// The disk holding the store is full: nothing was written.
    #[error("storage full: {0}")]
    StorageFull(String),
    /// The write was decided on documents another replica changed before it
    /// committed: nothing was written; a retry decides again.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The vector index failed or disagrees with the store.
    #[error("index: {0}")]
    Index(String),
    #[error("io: {0}")]
    Io(String),
    /// A bug: a background task panicked.
    #[error("internal: {0}")]
    Internal(String),
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
