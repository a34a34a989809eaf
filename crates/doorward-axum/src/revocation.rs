//! `POST /oauth/revoke` (RFC 7009 §2): 200 with an empty body whether or not the token existed.

use axum::extract::State;
use axum::http::StatusCode;

use crate::extract::ClientRequest;
use crate::response::token::{NoStore, TokenError};
use crate::state::AppState;

pub(crate) async fn revoke(
    State(app): State<AppState>,
    ClientRequest(request): ClientRequest,
) -> Result<NoStore<StatusCode>, TokenError> {
    app.engine.revoke(&request).await?;
    Ok(NoStore(StatusCode::OK))
}
