//! `POST /oauth/introspect` (RFC 7662 §2).

use axum::extract::State;
use axum::Json;
use doorward_core::introspection::Introspection;

use crate::extract::ClientRequest;
use crate::response::token::{NoStore, TokenError};
use crate::state::AppState;

pub(crate) async fn introspect(
    State(app): State<AppState>,
    ClientRequest(request): ClientRequest,
) -> Result<NoStore<Json<Introspection>>, TokenError> {
    Ok(NoStore(Json(app.engine.introspect(&request).await?)))
}
