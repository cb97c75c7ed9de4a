//! The web page at `/` for people trying questions in a browser: one HTML
//! file, its script and its style sheet (`src/http/page/`), compiled into
//! the binary so nothing is fetched from anywhere at run time. The page
//! calls the JSON routes like any other client. Its Content-Security-Policy
//! allows nothing but this origin: no inline script, no other host.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS,
};
use axum::response::IntoResponse;
use axum::routing::get;

use super::table::{Body, Route};

const CSP: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

pub(super) const ROUTES: &[Route] = &[
    Route {
        method: "get",
        path: "/",
        summary: "The web page: ask a question, read the cited passages and their documents",
        role: None,
        params: &[],
        request: None,
        response: Body::Text(HTML),
        handler: || get(|| async { asset(HTML, include_str!("page/index.html")) }),
    },
    Route {
        method: "get",
        path: "/assets/page.js",
        summary: "The web page's script",
        role: None,
        params: &[],
        request: None,
        response: Body::Text(JS),
        handler: || get(|| async { asset(JS, include_str!("page/page.js")) }),
    },
    Route {
        method: "get",
        path: "/assets/page.css",
        summary: "The web page's style sheet",
        role: None,
        params: &[],
        request: None,
        response: Body::Text(CSS),
        handler: || get(|| async { asset(CSS, include_str!("page/page.css")) }),
    },
];

/// A page file with its type and the page's security headers. `no-cache`:
/// a browser revalidates, so a new binary's page is never mixed with an old
/// script.
fn asset(media: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, media),
            (CONTENT_SECURITY_POLICY, CSP),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
