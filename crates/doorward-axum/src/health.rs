//! `GET /healthz` and `GET /readyz`, for load balancers and orchestrators.
//!
//! - `/healthz`: the process answers (200 `ok`); nothing is checked, so a slow database never
//!   gets a live server restarted.
//! - `/readyz`: the server can do its work: the store answers a read within 2 s, and every
//!   configured signing algorithm has an active key. 200 with the checks as JSON, else 503
//!   with the same JSON saying what failed (never an error's details: they are logged).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use doorward_core::keys::KeyStage;
use doorward_core::ports::ClientRef;
use doorward_core::Engine;
use serde_json::json;

/// How long the store may take to answer `/readyz`.
const STORE_DEADLINE: Duration = Duration::from_secs(2);

/// The two routes, over `engine`.
pub fn routes(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(engine)
}

async fn healthz() -> Response {
    no_store((StatusCode::OK, "ok\n").into_response())
}

async fn readyz(State(engine): State<Arc<Engine>>) -> Response {
    let probe = engine
        .store()
        .find_client(ClientRef::Key("readyz@doorward"));
    let store = match tokio::time::timeout(STORE_DEADLINE, probe).await {
        Ok(Ok(_)) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readyz: the store failed");
            "failing"
        }
        Err(_) => {
            tracing::warn!("readyz: the store did not answer within 2 s");
            "slow"
        }
    };
    let active: Vec<_> = engine
        .key_status()
        .into_iter()
        .filter(|k| k.stage == KeyStage::Active)
        .map(|k| k.alg)
        .collect();
    let missing: Vec<&str> = engine
        .signing_algs()
        .into_iter()
        .filter(|alg| !active.contains(alg))
        .map(|alg| alg.as_str())
        .collect();
    let ready = store == "ok" && missing.is_empty();
    let keys = if missing.is_empty() {
        "ok".to_owned()
    } else {
        format!("no active key for {}", missing.join(", "))
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "unready" },
        "checks": { "store": store, "keys": keys },
    });
    no_store((status, Json(body)).into_response())
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
