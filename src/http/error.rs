//! Errors as HTTP responses: the gRPC code of the crate's one mapping
//! (`grpc::status`), turned into the usual HTTP status, with a JSON body
//! carrying the code, the message and any field violations.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::Error;

/// An error on its way to an HTTP client.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        Self(err)
    }
}

/// The usual gRPC → HTTP mapping (as in grpc-gateway).
pub fn http_status(code: tonic::Code) -> StatusCode {
    use tonic::Code;
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The gRPC code's name as the proto spells it (`INVALID_ARGUMENT`).
fn code_name(code: tonic::Code) -> String {
    let camel = format!("{code:?}");
    let mut name = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let violations: Vec<_> = match &self.0 {
            Error::InvalidArgument(v) => v
                .iter()
                .map(|v| json!({"field": v.field, "description": v.description}))
                .collect(),
            _ => Vec::new(),
        };
        let message = self.0.to_string();
        let code = tonic::Status::from(self.0).code();
        let body = json!({
            "error": {
                "code": code as i32,
                "status": code_name(code),
                "message": message,
                "fieldViolations": violations,
            }
        });
        (http_status(code), Json(body)).into_response()
    }
}

/// The error body's JSON Schema, for `/openapi.json`.
pub(super) fn schema() -> serde_json::Value {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "status", "message"],
            "properties": {
                "code": {"type": "integer", "description": "The gRPC status code."},
                "status": {"type": "string", "description": "Its name, such as INVALID_ARGUMENT."},
                "message": {"type": "string"},
                "fieldViolations": {"type": "array", "items": {
                    "type": "object",
                    "properties": {"field": {"type": "string"}, "description": {"type": "string"}},
                }},
            },
        }},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_the_usual_statuses() {
        let status = |e: Error| ApiError(e).into_response().status();
        assert_eq!(
            status(Error::invalid("top_k", "too big")),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(Error::Unauthenticated("x".into())),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(Error::PermissionDenied("x".into())),
            StatusCode::FORBIDDEN
        );
        assert_eq!(status(Error::NotFound("x".into())), StatusCode::NOT_FOUND);
        assert_eq!(
            status(Error::Overloaded("x".into())),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            status(Error::Unavailable("x".into())),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(Error::Internal("x".into())),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(code_name(tonic::Code::InvalidArgument), "INVALID_ARGUMENT");
        assert_eq!(code_name(tonic::Code::NotFound), "NOT_FOUND");
    }
}
