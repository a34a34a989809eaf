//! `POST /oauth/token` (RFC 6749 §3.2).

use axum::extract::State;
use axum::Json;
use doorward_proto::TokenResponse;

use crate::extract::ClientRequest;
use crate::response::token::{NoStore, TokenError};
use crate::state::AppState;

pub(crate) async fn token(
    State(app): State<AppState>,
    ClientRequest(request): ClientRequest,
) -> Result<NoStore<Json<TokenResponse>>, TokenError> {
    Ok(NoStore(Json(app.engine.token(&request).await?)))
}
