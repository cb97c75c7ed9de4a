//! `GET /openapi.json`: the HTTP API as an OpenAPI 3.1 document, built from
//! the route table (paths, methods, roles, parameters, examples) and the
//! proto's descriptors (each message's proto3 JSON fields, types and
//! comments), so it describes exactly what is served from the one proto.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorSet, SourceCodeInfo};
use serde_json::{Map, Value, json};

use super::ApiError;
use super::table::{Body, Route};
use crate::auth::Role;
use crate::error::Error;
use crate::proto;

pub(super) const ROUTES: &[Route] = &[Route {
    method: "get",
    path: "/openapi.json",
    summary: "This document: the HTTP API as OpenAPI 3.1",
    role: None,
    params: &[],
    request: None,
    response: Body::Text("application/json"),
    handler: || get(document),
}];

const PACKAGE: &str = "wenda.v1";

async fn document() -> Result<impl IntoResponse, ApiError> {
    static DOCUMENT: OnceLock<Result<String, String>> = OnceLock::new();
    let built = DOCUMENT.get_or_init(|| {
        build(super::ROUTE_TABLES)
            .map(|doc| doc.to_string())
            .map_err(|err| err.to_string())
    });
    match built {
        Ok(text) => Ok(([(CONTENT_TYPE, "application/json")], text.as_str())),
        Err(message) => Err(Error::Internal(message.clone()).into()),
    }
}

/// The OpenAPI document for `tables`.
pub fn build(tables: &[&[Route]]) -> Result<Value, Error> {
    let set = FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET)
        .map_err(|err| Error::Internal(format!("the proto's descriptor set: {err}")))?;
    let mut schemas = Map::new();
    for file in set.file.iter().filter(|f| f.package() == PACKAGE) {
        let comments = Comments::of(file.source_code_info.as_ref());
        for (i, message) in file.message_type.iter().enumerate() {
            schemas.insert(
                message.name().to_string(),
                message_schema(message, &comments, &[4, i as i32]),
            );
        }
        for (i, enumeration) in file.enum_type.iter().enumerate() {
            let names: Vec<&str> = enumeration.value.iter().map(|v| v.name()).collect();
            let mut schema = json!({"type": "string", "enum": names});
            comments.describe(&mut schema, &[5, i as i32]);
            schemas.insert(enumeration.name().to_string(), schema);
        }
    }
    schemas.insert("Error".into(), super::error::schema());
    for (name, schema) in super::openai::schemas() {
        schemas.insert(name.into(), schema);
    }

    let mut paths: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for route in tables.iter().flat_map(|t| t.iter()) {
        paths
            .entry(route.path)
            .or_default()
            .insert(route.method.into(), operation(route)?);
    }
    Ok(json!({
        "openapi": "3.1.0",
        "info": {
            "title": "wenda",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Semantic question answering over multilingual articles, with citations. \
                The HTTP/JSON API beside gRPC (proto/wenda/v1/wenda.proto): the same calls, with \
                bodies in the proto3 JSON mapping (camelCase names, enums by name, 64-bit integers \
                as strings, default values omitted). Tokens, when the server has them, are bearer \
                tokens: read for reading, admin for writing.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }))
}

fn operation(route: &Route) -> Result<Value, Error> {
    let mut op = Map::new();
    op.insert("summary".into(), route.summary.into());
    op.insert("operationId".into(), operation_id(route).into());
    let (security, role, needs) = match route.role {
        None => (json!([]), "none", "No token needed."),
        Some(Role::Read) => (
            json!([{"bearer": []}]),
            "read",
            "Needs a read or admin token when the server has tokens.",
        ),
        Some(Role::Admin) => (
            json!([{"bearer": []}]),
            "admin",
            "Needs an admin token when the server has tokens.",
        ),
    };
    op.insert("description".into(), needs.into());
    op.insert("security".into(), security);
    op.insert("x-wenda-role".into(), role.into());
    if !route.params.is_empty() {
        let params: Vec<Value> = route
            .params
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "in": p.location,
                    "required": p.location == "path",
                    "description": p.description,
                    "schema": {"type": p.kind},
                    "example": p.example,
                })
            })
            .collect();
        op.insert("parameters".into(), params.into());
    }
    if let Some(body) = route.request {
        op.insert(
            "requestBody".into(),
            json!({"required": true, "content": content(body)?}),
        );
    }
    op.insert(
        "responses".into(),
        json!({
            "200": {"description": "Success", "content": content(route.response)?},
            "default": {
                "description": "An error: the gRPC status as an HTTP status, with the gRPC code, message and field violations",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        }),
    );
    Ok(op.into())
}

/// `post /v1/documents/{id}` → `post_v1_documents_id`.
fn operation_id(route: &Route) -> String {
    let path: String = route
        .path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let words: Vec<&str> = path.split('_').filter(|w| !w.is_empty()).collect();
    let name = if words.is_empty() {
        "root".to_string()
    } else {
        words.join("_")
    };
    format!("{}_{}", route.method, name)
}

fn content(body: Body) -> Result<Value, Error> {
    let (media, schema, example) = match body {
        Body::Message(name, example) | Body::Schema(name, example) => (
            "application/json",
            json!({"$ref": format!("#/components/schemas/{name}")}),
            example,
        ),
        // This document itself is the one JSON body that is not a message.
        Body::Text(media) if media.starts_with("application/json") => {
            (media, json!({"type": "object"}), "")
        }
        Body::Text(media) => (media, json!({"type": "string"}), ""),
    };
    let mut entry = json!({"schema": schema});
    if !example.is_empty() {
        let parsed: Value = serde_json::from_str(example)
            .map_err(|err| Error::Internal(format!("an OpenAPI example is not JSON: {err}")))?;
        entry["example"] = parsed;
    }
    Ok(json!({ media: entry }))
}

fn message_schema(message: &DescriptorProto, comments: &Comments, path: &[i32]) -> Value {
    let map_entries: BTreeMap<&str, &DescriptorProto> = message
        .nested_type
        .iter()
        .filter(|n| n.options.as_ref().is_some_and(|o| o.map_entry()))
        .map(|n| (n.name(), n))
        .collect();
    let mut properties = Map::new();
    for (i, field) in message.field.iter().enumerate() {
        let mut schema = field_schema(field, &map_entries);
        let mut field_path = path.to_vec();
        field_path.extend([2, i as i32]);
        comments.describe(&mut schema, &field_path);
        properties.insert(field.json_name().to_string(), schema);
    }
    let mut schema = json!({
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
    });
    comments.describe(&mut schema, path);
    schema
}

fn field_schema(
    field: &FieldDescriptorProto,
    map_entries: &BTreeMap<&str, &DescriptorProto>,
) -> Value {
    let schema = match field.r#type() {
        Type::Double | Type::Float => json!({"type": "number"}),
        Type::Int32 | Type::Sint32 | Type::Sfixed32 => {
            json!({"type": "integer", "format": "int32"})
        }
        Type::Uint32 | Type::Fixed32 => json!({"type": "integer", "minimum": 0}),
        // The proto3 JSON mapping writes 64-bit integers as strings (and
        // reads either).
        Type::Int64 | Type::Sint64 | Type::Sfixed64 => {
            json!({"type": ["string", "integer"], "format": "int64"})
        }
        Type::Uint64 | Type::Fixed64 => {
            json!({"type": ["string", "integer"], "pattern": "^[0-9]+$", "minimum": 0})
        }
        Type::Bool => json!({"type": "boolean"}),
        Type::String => json!({"type": "string"}),
        Type::Bytes => json!({"type": "string", "contentEncoding": "base64"}),
        Type::Enum | Type::Message | Type::Group => {
            let name = field.type_name().rsplit('.').next().unwrap_or_default();
            if let Some(entry) = map_entries.get(name) {
                let value = entry
                    .field
                    .iter()
                    .find(|f| f.number() == 2)
                    .map(|f| field_schema(f, map_entries))
                    .unwrap_or_else(|| json!({}));
                return json!({"type": "object", "additionalProperties": value});
            }
            json!({"$ref": format!("#/components/schemas/{name}")})
        }
    };
    if field.label() == Label::Repeated {
        json!({"type": "array", "items": schema})
    } else {
        schema
    }
}

/// The proto's comments by descriptor path.
struct Comments(BTreeMap<Vec<i32>, String>);

impl Comments {
    fn of(info: Option<&SourceCodeInfo>) -> Self {
        let mut comments = BTreeMap::new();
        for location in info.map(|i| i.location.as_slice()).unwrap_or_default() {
            if let Some(text) = location.leading_comments.as_deref() {
                let text = text
                    .lines()
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(" ")
                    .trim()
                    .to_string();
                if !text.is_empty() {
                    comments.insert(location.path.clone(), text);
                }
            }
        }
        Self(comments)
    }

    fn describe(&self, schema: &mut Value, path: &[i32]) {
        if let Some(text) = self.0.get(path) {
            schema["description"] = text.clone().into();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_field_and_route_is_described() {
        let doc = build(crate::http::ROUTE_TABLES).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let search = &schemas["SearchRequest"];
        assert_eq!(search["properties"]["topK"]["type"], "integer");
        assert_eq!(search["properties"]["languages"]["type"], "array");
        assert_eq!(
            search["properties"]["mode"]["$ref"],
            "#/components/schemas/SearchMode"
        );
        assert!(
            search["properties"]["query"]["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "proto comments become descriptions"
        );
        let info = &schemas["InfoResponse"]["properties"]["passagesPerLanguage"];
        assert_eq!(info["type"], "object");
        assert_eq!(info["additionalProperties"]["type"][0], "string");
        // Every $ref points at a schema that exists.
        let text = doc.to_string();
        for piece in text.split("#/components/schemas/").skip(1) {
            let name: String = piece.chars().take_while(|c| *c != '"').collect();
            assert!(schemas.contains_key(&name), "dangling $ref {name}");
        }
        let paths = doc["paths"].as_object().unwrap();
        let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
        let routes: usize = crate::http::ROUTE_TABLES.iter().map(|t| t.len()).sum();
        assert_eq!(operations, routes);
        assert_eq!(
            paths["/v1/documents/{id}"]["delete"]["security"][0]["bearer"],
            json!([])
        );
    }
}
