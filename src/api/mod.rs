//! The programmatic front ends: a REST API with an event stream (`grym-synth serve`) and a
//! Model Context Protocol server for LLMs (`grym-synth mcp`). Both drive the engine only
//! through its handle.

pub mod error;
pub mod mcp;
pub mod rest;
pub mod security;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use utoipa::OpenApi;

use crate::engine::Engine;
use error::ApiError;
use rest::{ApiState, SharedState};
use security::Roots;

/// Largest request body accepted (a workflow of several thousand steps fits).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// How the server is set up.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub bind: SocketAddr,
    /// Bearer token every request must present; required for a non-loopback bind.
    pub token: Option<String>,
    /// Folders that audio paths in requests must stay inside.
    pub roots: Vec<PathBuf>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "grym-synth", description = "Design and run AI audio pipelines: workflows, executions, tasks, operations, templates, versions and live events."),
    paths(
        rest::list_workflows, rest::create_workflow, rest::get_workflow, rest::update_workflow,
        rest::delete_workflow, rest::validate_workflow, rest::execute_workflow,
        rest::list_executions, rest::get_execution, rest::cancel_execution, rest::execution_events,
        rest::list_tasks, rest::get_task, rest::get_task_status, rest::list_operations,
        rest::list_templates, rest::list_versions, rest::get_version, rest::diff_version,
        rest::rollback, rest::get_artifact, rest::all_events, rest::health,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The OpenAPI document, generated from the handlers' declarations.
pub fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// The API's routes over `engine`.
pub fn router(engine: Engine, token: Option<String>, roots: &[PathBuf]) -> Router {
    let state: SharedState = Arc::new(ApiState {
        engine,
        roots: Roots::new(roots),
        token,
    });
    Router::new()
        .route(
            "/api/workflows",
            get(rest::list_workflows).post(rest::create_workflow),
        )
        .route("/api/workflows/validate", post(rest::validate_workflow))
        .route(
            "/api/workflows/{id}",
            get(rest::get_workflow)
                .put(rest::update_workflow)
                .delete(rest::delete_workflow),
        )
        .route("/api/workflows/{id}/execute", post(rest::execute_workflow))
        .route("/api/workflows/{id}/versions", get(rest::list_versions))
        .route(
            "/api/workflows/{id}/versions/{version}",
            get(rest::get_version),
        )
        .route(
            "/api/workflows/{id}/versions/{version}/diff",
            get(rest::diff_version),
        )
        .route("/api/workflows/{id}/rollback", post(rest::rollback))
        .route("/api/executions", get(rest::list_executions))
        .route(
            "/api/executions/{id}",
            get(rest::get_execution).delete(rest::cancel_execution),
        )
        .route("/api/executions/{id}/events", get(rest::execution_events))
        .route("/api/events", get(rest::all_events))
        .route("/api/tasks", get(rest::list_tasks))
        .route("/api/tasks/{id}", get(rest::get_task))
        .route("/api/tasks/{id}/status", get(rest::get_task_status))
        .route("/api/operations", get(rest::list_operations))
        .route("/api/templates", get(rest::list_templates))
        .route("/api/artifacts/{hash}", get(rest::get_artifact))
        .route("/api/health", get(rest::health))
        .route(
            "/api/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], openapi_json()) }),
        )
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            require_token,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn require_token(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    if let Some(expected) = &state.token {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !security::token_matches(expected, presented) {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong bearer token (Authorization: Bearer <token>)",
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// Serves the API until the process is stopped. Refuses a non-loopback bind without a token.
pub fn serve(engine: Engine, config: ApiConfig) -> anyhow::Result<()> {
    security::check_bind(config.bind, config.token.as_deref()).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("grym-api")
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))?;
        let local = listener.local_addr()?;
        eprintln!("grym-synth API on http://{local}/api (OpenAPI at /api/openapi.json)");
        let app = router(engine, config.token, &config.roots);
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok(())
    })
}

/// The API served from a thread of this process (the editor's "Serve API" switch); stops
/// when stopped or dropped.
pub struct ServerHandle {
    pub addr: std::net::SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerHandle {
    /// Stops accepting requests, lets those in flight finish, and waits for the thread.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Starts serving the API on a thread of its own and returns once it listens (or could
/// not: the address is taken, or a non-loopback bind has no token).
pub fn spawn(engine: Engine, config: ApiConfig) -> anyhow::Result<ServerHandle> {
    security::check_bind(config.bind, config.token.as_deref()).map_err(anyhow::Error::msg)?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<anyhow::Result<std::net::SocketAddr>>();
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("grym-api".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .thread_name("grym-api-worker")
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.into()));
                    return;
                }
            };
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::bind(config.bind).await {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready_tx.send(Err(anyhow::anyhow!(
                            "cannot listen on {}: {e}",
                            config.bind
                        )));
                        return;
                    }
                };
                match listener.local_addr() {
                    Ok(addr) => {
                        let _ = ready_tx.send(Ok(addr));
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                }
                let app = router(engine, config.token, &config.roots);
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = shutdown_rx.await;
                    })
                    .await
                {
                    tracing::error!("the API server stopped: {e}");
                }
            });
        })?;
    match ready_rx.recv() {
        Ok(Ok(addr)) => Ok(ServerHandle {
            addr,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            anyhow::bail!("the API thread ended before it listened")
        }
    }
}
