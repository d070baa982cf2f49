//! Wraps a service's routes with what every service answers the same way: health probes,
//! JSON 404/405, the request limits, and the server-span layer.

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, Request, State},
    http::StatusCode,
    middleware,
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::json;

use crate::{
    Db, json_error,
    limits::{Enforcer, Limits},
};

/// The settings of [`with_common_routes`], from [`crate::CommonConfig::route_settings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSettings {
    /// `DEMO_FAULTS`, checked on every traced route (see [`crate::demo`]).
    pub demo_faults: bool,
    pub limits: Limits,
}

/// The service's routes inside the layers every request meets (innermost first): demo
/// faults, JSON 404/405, the limits, the server span. The health probes are merged beside
/// them, outside those layers: compose asks every few seconds, and an orchestrator must
/// reach a busy service, so the probes are neither traced nor limited.
pub fn with_common_routes(routes: Router, db: Db, settings: RouteSettings) -> Router {
    let RouteSettings {
        demo_faults,
        limits,
    } = settings;
    let enforcer = Enforcer::new(limits);
    let traced = routes
        .layer(middleware::from_fn(move |request, next| {
            crate::demo::check_faults(demo_faults, request, next)
        }))
        // A body streamed without Content-Length meets the same limit once it is read.
        .layer(DefaultBodyLimit::max(
            crate::limits::MAX_BODY_BYTES as usize,
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Inside the server span: a refused request is traced like any other answer.
        .layer(middleware::from_fn(move |request, next| {
            enforcer.clone().enforce(request, next)
        }))
        .layer(middleware::from_fn(telemetry::server::trace_http));
    let probes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(db);
    probes.merge(traced)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(db): State<Db>) -> Response {
    match db.ping().await {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(_) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "database not reachable".into(),
        ),
    }
}

async fn not_found(request: Request) -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {} {}", request.method(), request.uri().path()),
    )
}

async fn method_not_allowed(request: Request) -> Response {
    json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}
