//! The shape of a route table entry: how a route is served (its handler)
//! and how `/openapi.json` describes it (summary, role, parameters,
//! bodies). Every route is one [`Route`], so the router and the OpenAPI
//! document are built from the same list and cannot disagree.

use axum::Router;
use axum::routing::MethodRouter;

use super::AppState;
use crate::auth::Role;

/// One HTTP route.
pub struct Route {
    /// Lower-case HTTP method, as OpenAPI spells it.
    pub method: &'static str,
    /// The path in axum's and OpenAPI's shared `{param}` syntax.
    pub path: &'static str,
    pub summary: &'static str,
    /// The token role it needs when tokens are configured; `None`: open.
    pub role: Option<Role>,
    pub params: &'static [Param],
    pub request: Option<Body>,
    pub response: Body,
    pub handler: fn() -> MethodRouter<AppState>,
}

/// A request or response body.
#[derive(Clone, Copy)]
pub enum Body {
    /// A proto message of `wenda.v1` in the proto3 JSON mapping, with an
    /// example (`""`: none).
    Message(&'static str, &'static str),
    /// A schema of the HTTP API's own (`components.schemas`), with an
    /// example (`""`: none).
    Schema(&'static str, &'static str),
    /// Anything else, by media type (text, HTML, scripts).
    Text(&'static str),
}

/// A path or query parameter.
#[derive(Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub location: &'static str,
    /// JSON Schema type: `string` or `integer`.
    pub kind: &'static str,
    pub description: &'static str,
    pub example: &'static str,
}

impl Param {
    const fn new(
        name: &'static str,
        location: &'static str,
        kind: &'static str,
        description: &'static str,
        example: &'static str,
    ) -> Self {
        Self {
            name,
            location,
            kind,
            description,
            example,
        }
    }

    pub const fn path(
        name: &'static str,
        description: &'static str,
        example: &'static str,
    ) -> Self {
        Self::new(name, "path", "string", description, example)
    }

    pub const fn query(
        name: &'static str,
        description: &'static str,
        example: &'static str,
    ) -> Self {
        Self::new(name, "query", "string", description, example)
    }

    pub const fn query_integer(
        name: &'static str,
        description: &'static str,
        example: &'static str,
    ) -> Self {
        Self::new(name, "query", "integer", description, example)
    }
}

/// The router serving every route of `routes`; routes sharing a path are
/// merged into one method router (axum panics on a method given twice,
/// which the tests would catch).
pub fn router(routes: &[&[Route]]) -> Router<AppState> {
    routes
        .iter()
        .flat_map(|table| table.iter())
        .fold(Router::new(), |router, route| {
            router.route(route.path, (route.handler)())
        })
}
